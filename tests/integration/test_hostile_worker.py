"""Hostile outcomes on the worker side (issue 13): unstorable return values and error messages,
exceptions whose str() raises, a batched write that fails for one job, worker threads that die,
and task_finished for timeouts. Real worker processes: tests/acceptance/test_hostile.py."""

import threading

import pytest
from django.test import override_settings

from djjobs.compat import task_finished
from djjobs.lifecycle import finish as complete_module
from djjobs.lifecycle.finish import complete_successes
from djjobs.models import Job
from djjobs.testing import run_jobs
from djjobs.worker import completer as completer_module
from djjobs.worker.claim import claim
from djjobs.worker.executor import Outcome
from djjobs.worker.runner import Runner
from tests.poison import poison_trigger
from tests.settings import DJJOBS
from tests.testapp import tasks

INVALID = "djjobs.exceptions.InvalidReturnValue"
PLACEHOLDER = "<unprintable EvilStr: __str__ raised RuntimeError>"


def _job(result):
    return Job.objects.get(pk=result.id)


# -- return values ---------------------------------------------------------------------------


@pytest.mark.django_db
@override_settings(DJJOBS={**DJJOBS, "MAX_RETURN_VALUE_BYTES": 1000})
@pytest.mark.parametrize(
    "kind, says",
    [
        ("nul", "NUL"),
        ("nul_key", "NUL"),
        ("surrogate", "surrogate"),
        ("deep", "nested more than 64 levels"),
        ("big", "1003 bytes as JSON, more than DJJOBS['MAX_RETURN_VALUE_BYTES'] (1000)"),
        ("big_unicode", "1004 bytes as JSON"),  # 501 characters, 1004 bytes with the quotes
    ],
)
def test_an_unstorable_return_value_fails_the_job_as_invalid_return_value_without_retry(kind, says):
    result = tasks.hostile_return.enqueue(kind)  # max_attempts=2
    assert run_jobs() == 1
    job = _job(result)
    assert (job.status, job.attempts, job.return_value) == ("FAILED", 1, None)
    [error] = job.errors
    assert error["exception_class_path"] == INVALID
    assert says in error["message"], error["message"]


@pytest.mark.django_db
@override_settings(DJJOBS={**DJJOBS, "MAX_RETURN_VALUE_BYTES": 1000})
def test_a_return_value_of_exactly_the_limit_is_stored():
    result = tasks.add.enqueue("x" * 499, "y" * 499)  # "xx...yy" is 1000 bytes as JSON
    assert run_jobs() == 1
    assert _job(result).return_value == "x" * 499 + "y" * 499


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["nul", "surrogate"])
def test_an_unstorable_checkpoint_is_refused_to_the_task(kind):
    result = tasks.hostile_checkpoint.enqueue(kind)
    run_jobs()
    job = _job(result)
    assert (job.status, job.return_value, job.checkpoint) == ("SUCCESSFUL", "ValueError", None)


@pytest.mark.django_db(transaction=True)
def test_a_success_the_database_refuses_is_failed_as_invalid_return_value():
    """The job's own completion (not batched: run_jobs, workflow steps) fails on a trigger."""
    with poison_trigger():
        result = tasks.hostile_return.enqueue("poison")
        other = tasks.add.enqueue(1, 2)
        with override_settings(DJJOBS={**DJJOBS, "LEASE_SECONDS": 1}):  # bounded on the code before
            assert run_jobs() == 2
    job = _job(result)
    assert (job.status, job.attempts, job.return_value) == ("FAILED", 1, None)
    [error] = job.errors
    assert error["exception_class_path"] == INVALID
    assert "could not be stored" in error["message"] and "poisoned return value" in error["message"]
    assert "poisoned return value" in error["traceback"]  # the refused write's own traceback
    assert _job(other).return_value == 3


@pytest.mark.django_db(transaction=True)
def test_an_atomic_task_whose_success_the_database_refuses_fails_and_its_writes_roll_back(monkeypatch):
    from tests.testapp.models import Execution

    real = complete_module.complete

    def refusing(job, outcome, worker_id):
        if outcome.succeeded:
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return real(job, outcome, worker_id)

    monkeypatch.setattr("djjobs.worker.turn.complete", refusing)
    result = tasks.atomic_record.enqueue()
    assert run_jobs() == 1
    job = _job(result)
    assert (job.status, job.errors[0]["exception_class_path"]) == ("FAILED", INVALID)
    assert "UnicodeEncodeError" in job.errors[0]["message"]
    assert Execution.objects.count() == 0


# -- a batch that fails for one job -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_batched_write_refused_for_one_job_writes_the_others_and_fails_that_one():
    with poison_trigger():
        tasks.add.enqueue_many([(1, 1), (2, 2), (3, 3)])
        jobs = claim("w", None, 3, 30)
        outcomes = [
            Outcome(return_value=1, return_json="1"),
            Outcome(return_value={"poison": True}, return_json='{"poison":true}'),
            Outcome(return_value=3, return_json="3"),
        ]
        done = complete_successes(list(zip(jobs, outcomes)), "w")
    assert done == {j.key for j in jobs}  # written: two successes and the failure
    rows = {j.id: j for j in Job.objects.all()}
    assert [rows[j.id].status for j in jobs] == ["SUCCESSFUL", "FAILED", "SUCCESSFUL"]
    assert [rows[j.id].return_value for j in jobs] == [1, None, 3]
    bad = rows[jobs[1].id]
    assert bad.errors[0]["exception_class_path"] == INVALID
    assert "poisoned return value" in bad.errors[0]["message"]
    # The caller's outcome (logged, sent with task_finished) is the failure that was recorded.
    assert not outcomes[1].succeeded and outcomes[1].return_value is None
    assert (jobs[1].status, jobs[0].status) == ("FAILED", "SUCCESSFUL")


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_a_lone_surrogate_the_driver_cannot_encode_fails_only_its_job():
    """What killed the completer on PostgreSQL: psycopg raises UnicodeEncodeError (no DatabaseError)
    for a lone surrogate. A value executor.encode() now refuses: it is forced in here."""
    tasks.add.enqueue_many([(1, 1), (2, 2), (3, 3)])
    jobs = claim("w", None, 3, 30)
    outcomes = [
        Outcome(return_value=1, return_json="1"),
        Outcome(return_value={"v": "\ud800"}, return_json='{"v":"\ud800"}'),
        Outcome(return_value=3, return_json="3"),
    ]
    done = complete_successes(list(zip(jobs, outcomes)), "w")
    assert done == {j.key for j in jobs}
    statuses = dict(Job.objects.values_list("id", "status"))
    assert [statuses[j.id] for j in jobs] == ["SUCCESSFUL", "FAILED", "SUCCESSFUL"]
    error = Job.objects.get(pk=jobs[1].id).errors[0]
    assert error["exception_class_path"] == INVALID and "UnicodeEncodeError" in error["message"]


@pytest.mark.django_db(transaction=True)
def test_the_completer_writes_a_batch_one_by_one_when_the_driver_refuses_it(monkeypatch):
    """A UnicodeEncodeError (not a DatabaseError) from the batched statement, for a batch with
    the job returning "boom": the completer lives on, only that job fails."""
    real = complete_module._write_successes

    def refusing(items, worker_id):
        if any(outcome.return_value == "boom" for _, outcome in items):
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return real(items, worker_id)

    monkeypatch.setattr(complete_module, "_write_successes", refusing)
    boom = tasks.record_job.enqueue("boom")
    others = tasks.record_job.enqueue_many([(f"n{i}",) for i in range(20)])
    assert Runner(burst=True, concurrency=2).run() == 0
    assert Job.objects.get(pk=boom.id).status == "FAILED"
    error = Job.objects.get(pk=boom.id).errors[0]
    assert error["exception_class_path"] == INVALID and "UnicodeEncodeError" in error["message"]
    assert set(Job.objects.filter(pk__in=[r.id for r in others]).values_list("status", flat=True)) == {"SUCCESSFUL"}


@pytest.mark.django_db(transaction=True)
def test_a_write_error_that_is_no_values_fault_fails_no_job(monkeypatch, caplog):
    """A ProgrammingError (say, a column missing during a rolling deploy) from every write of
    the job returning "boom": its success is not turned into InvalidReturnValue; the job stays
    RUNNING for the rescuer, and the other jobs of its batch are written."""
    from django.db import ProgrammingError

    real = complete_module._write_successes

    def broken(items, worker_id):
        if any(outcome.return_value == "boom" for _, outcome in items):
            raise ProgrammingError('column "x" does not exist')
        return real(items, worker_id)

    monkeypatch.setattr(complete_module, "_write_successes", broken)
    first = tasks.record_job.enqueue_many([(f"a{i}",) for i in range(10)])
    boom = tasks.record_job.enqueue("boom")
    others = [*first, *tasks.record_job.enqueue_many([(f"n{i}",) for i in range(10)])]
    assert Runner(burst=True, concurrency=2).run() == 0
    job = Job.objects.get(pk=boom.id)
    assert (job.status, job.errors) == ("RUNNING", [])
    assert set(Job.objects.filter(pk__in=[r.id for r in others]).values_list("status", flat=True)) == {"SUCCESSFUL"}
    assert "ProgrammingError" in caplog.text and "InvalidReturnValue" not in caplog.text


@pytest.mark.django_db(transaction=True)
def test_an_error_escaping_a_batch_leaves_its_jobs_to_the_rescuer_and_the_completer_lives_on(monkeypatch, caplog):
    real = completer_module.complete_successes
    refused = []  # the jobs of the batches the bug made fail

    def buggy(items, *args):
        if any(outcome.return_value == "boom" for _, outcome in items):
            refused.extend(str(job.id) for job, _ in items)
            raise RuntimeError("a bug in the completion")
        return real(items, *args)

    monkeypatch.setattr(completer_module, "complete_successes", buggy)
    boom = tasks.record_job.using(priority=10).enqueue("boom")  # claimed first
    others = tasks.record_job.enqueue_many([(f"n{i}",) for i in range(5)])
    assert Runner(burst=True, concurrency=1).run() == 0  # the same completer writes the later batches
    # boom's batch (boom alone, or with a job that finished before the completer woke, on a busy
    # machine) is left RUNNING: its leases expire and the rescuer takes it; every other job is written.
    statuses = dict(Job.objects.values_list("id", "status"))
    assert str(boom.id) in refused and len(refused) < 6
    assert {str(k) for k, v in statuses.items() if v == "RUNNING"} == set(refused)
    assert {str(k) for k, v in statuses.items() if v == "SUCCESSFUL"} == {str(r.id) for r in others} - set(refused)
    text = caplog.text
    assert f"could not complete {len(refused)} job(s)" in text and "RuntimeError: a bug in the completion" in text
    assert "job result not recorded" in text and "no longer owned" not in text


# -- errors whose message cannot be stored, or printed ------------------------------------------


@pytest.mark.django_db
def test_an_error_message_with_nul_and_a_lone_surrogate_is_stored_escaped():
    result = tasks.hostile_error_message.enqueue()
    with override_settings(DJJOBS={**DJJOBS, "LEASE_SECONDS": 1}):  # bounded on the code before
        assert run_jobs() == 1
    job = _job(result)
    assert job.status == "FAILED"
    [error] = job.errors
    assert error["exception_class_path"] == "builtins.ValueError"
    assert error["message"] == "bad\\x00value \\ud800 end"
    assert "ValueError: bad\\x00value \\ud800 end" in error["traceback"]


@pytest.mark.django_db
def test_an_exception_whose_str_raises_is_recorded_with_a_placeholder_and_retried(caplog):
    seen = []

    def receiver(sender, task_result, **kwargs):
        seen.append((task_result.status, [e.exception_class_path for e in task_result.errors]))

    task_finished.connect(receiver)
    try:
        result = tasks.hostile_evil_str.enqueue()  # max_attempts=2
        assert run_jobs() == 2
    finally:
        task_finished.disconnect(receiver)
    job = _job(result)
    assert (job.status, job.attempts) == ("FAILED", 2)
    assert [(e["attempt"], e["exception_class_path"], e["message"]) for e in job.errors] == [
        (1, "tests.testapp.tasks.EvilStr", PLACEHOLDER),
        (2, "tests.testapp.tasks.EvilStr", PLACEHOLDER),
    ]
    assert all('raise EvilStr("hidden")' in e["traceback"] for e in job.errors)
    assert seen == [("FAILED", ["tests.testapp.tasks.EvilStr"] * 2)]
    assert f"error=EvilStr: {PLACEHOLDER}" in caplog.text  # the worker's log line


@pytest.mark.django_db
def test_a_traceback_that_cannot_be_formatted_still_fails_the_job(monkeypatch):
    import traceback

    def broken(*args, **kwargs):
        raise RuntimeError("traceback module broken")

    monkeypatch.setattr(traceback, "format_exception", broken)
    result = tasks.discards.enqueue()
    run_jobs()
    [error] = _job(result).errors
    assert error["exception_class_path"] == "djjobs.exceptions.Discard"
    assert error["traceback"] == (
        "djjobs.exceptions.Discard: not worth retrying\n(the traceback could not be formatted: RuntimeError)\n"
    )


@pytest.mark.django_db
def test_a_failing_task_finished_receiver_does_not_undo_the_completion(caplog):
    def receiver(sender, task_result, **kwargs):
        raise RuntimeError("receiver bug")

    task_finished.connect(receiver)
    try:
        result = tasks.add.enqueue(1, 2)
        assert run_jobs() == 1  # no exception out of the worker's step
    finally:
        task_finished.disconnect(receiver)
    assert _job(result).status == "SUCCESSFUL"
    assert "a task_finished receiver failed" in caplog.text


@pytest.mark.django_db
def test_a_failing_task_started_receiver_does_not_stop_the_job(caplog):
    from djjobs.compat import task_started

    def receiver(sender, task_result, **kwargs):
        raise RuntimeError("receiver bug")

    task_started.connect(receiver)
    try:
        result = tasks.add.enqueue(1, 2)
        assert run_jobs() == 1
    finally:
        task_started.disconnect(receiver)
    job = _job(result)
    assert (job.status, job.return_value, job.attempts) == ("SUCCESSFUL", 3, 1)
    assert "a task_started receiver failed" in caplog.text and "receiver bug" in caplog.text


# -- a worker thread that dies takes the worker down --------------------------------------------


class _Bug(Exception):
    pass


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("thread", ["completer", "job", "heartbeat"])
def test_a_worker_thread_that_dies_stops_the_worker_with_exit_code_1(monkeypatch, caplog, thread):
    from djjobs.worker.completer import Completer

    def bug(*args, **kwargs):
        raise _Bug(f"a bug in the {thread} thread")

    if thread == "completer":
        monkeypatch.setattr(Completer, "_flush", bug)
    elif thread == "job":
        monkeypatch.setattr(Runner, "_run_one", bug)
    else:
        monkeypatch.setattr(Runner, "_heartbeat", bug)
    result = tasks.record_job.enqueue("x")
    worker = Runner(concurrency=1, worker_id=f"w-dies-{thread}")  # not burst: it would run on
    codes = []
    with override_settings(DJJOBS={**DJJOBS, "HEARTBEAT_INTERVAL": 0.05, "POLL_INTERVAL": 0.05}):
        runner = threading.Thread(target=lambda: codes.append(worker.run()))
        runner.start()
        runner.join(15)
        if runner.is_alive():  # the code before: the worker lived on without the thread
            worker.stop()
            runner.join(15)
    assert codes == [1], caplog.text
    record = next(r for r in caplog.records if "died" in r.getMessage())
    assert f"thread djjobs-{'job-0' if thread == 'job' else thread} died" in record.getMessage()
    assert record.exc_info and record.exc_info[0] is _Bug  # logged with its traceback
    if thread != "heartbeat":
        # Claimed (or run), never completed: left RUNNING, its lease no longer renewed.
        assert Job.objects.get(pk=result.id).status == "RUNNING"
    from djjobs.models import Worker

    assert Worker.objects.get(id=f"w-dies-{thread}").stopped_at is not None


# -- task_finished for a timeout -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_timeout_in_thread_mode_sends_task_finished_once_when_the_job_fails():
    seen = []

    def receiver(sender, task_result, **kwargs):
        seen.append((task_result.id, task_result.status))

    task_finished.connect(receiver)
    try:
        result = tasks.hostile_overstays.enqueue(seconds=1.5)  # timeout 0.5 s, max_attempts=2
        Runner(burst=True, concurrency=2).run()
    finally:
        task_finished.disconnect(receiver)
    job = _job(result)
    assert (job.status, job.attempts) == ("FAILED", 2)
    assert [e["exception_class_path"] for e in job.errors] == ["djjobs.exceptions.JobTimeout"] * 2
    assert seen == [(str(result.id), "FAILED")]  # not for the first attempt (READY), once for the second
