"""Acceptance: hostile outcomes against real ``run_workers`` processes (issue 13).

A return value the database cannot store, among 80 neighbours enqueued in the same transaction:
only its job fails (InvalidReturnValue), never its batch. An exception whose ``str()`` raises
and an error message with NUL and a lone surrogate are recorded as they are (class, traceback,
a placeholder or escaped message), with the retry policy, never as WorkerLost. A job that fails
by timeout (thread mode and process mode) sends task_finished once, when it is FAILED. A worker
thread that dies takes its worker down (exit code 1), and its job is rescued.

Every wait is a ``--burst`` run or a bounded poll (``conftest.wait_until``).
"""

import pytest
from django.db import transaction
from django.utils import timezone

from djjobs.models import Job
from djjobs.states import JobStatus
from tests.poison import poison_trigger
from tests.testapp.tasks import (
    hostile_error_message,
    hostile_evil_str,
    hostile_interrupts,
    hostile_noop,
    hostile_overstays,
    hostile_return,
)

from .conftest import wait_until

pytestmark = [pytest.mark.acceptance]

FAST = "tests.acceptance.fast_settings"
INVALID = "djjobs.exceptions.InvalidReturnValue"
WORKER_LOST = "djjobs.exceptions.WorkerLost"


def _neighbours_and(enqueue_bad):
    """80 no-op jobs (max_attempts=1) around the bad one, all in one transaction."""
    with transaction.atomic():
        before = [r.id for r in hostile_noop.enqueue_many([()] * 40)]
        bad = enqueue_bad()
        after = [r.id for r in hostile_noop.enqueue_many([()] * 40)]
    return bad, before + after


def _no_worker_lost():
    return not any(
        e["exception_class_path"] == WORKER_LOST
        for errors in Job.objects.values_list("errors", flat=True)
        for e in errors
    )


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "kind, says",
    [
        ("nul", "NUL character"),
        ("surrogate", "lone surrogate"),
        ("poison", "could not be stored"),  # refused by the database itself: the batched write fails
    ],
)
def test_a_return_value_that_cannot_be_stored_fails_only_its_own_job(workers, kind, says):
    with poison_trigger():
        bad, good = _neighbours_and(lambda: hostile_return.enqueue(kind))  # max_attempts=2
        worker = workers("--burst", "--concurrency", "4", settings=FAST)
        assert worker.wait(90) == 0, worker.log()

    statuses = dict(Job.objects.filter(id__in=good).values_list("id", "status"))
    assert list(statuses.values()).count(JobStatus.SUCCESSFUL) == 80, worker.log()
    assert set(Job.objects.filter(id__in=good).values_list("attempts", flat=True)) == {1}
    job = Job.objects.get(id=bad.id)
    assert (job.status, job.attempts, job.return_value) == (JobStatus.FAILED, 1, None), (job.errors, worker.log())
    [error] = job.errors
    assert error["exception_class_path"] == INVALID
    assert says in error["message"], error["message"]
    assert _no_worker_lost()
    log = worker.text()
    assert "no longer owned" not in log and "died" not in log, log


@pytest.mark.timeout(120)
def test_an_exception_whose_str_raises_is_recorded_and_retried_never_worker_lost(workers):
    result = hostile_evil_str.enqueue()  # max_attempts=2
    worker = workers("--burst", "--concurrency", "2", settings=FAST)
    assert worker.wait(60) == 0, worker.log()

    job = Job.objects.get(id=result.id)
    assert (job.status, job.attempts) == (JobStatus.FAILED, 2), (job.errors, worker.log())
    placeholder = "<unprintable EvilStr: __str__ raised RuntimeError>"
    assert [(e["attempt"], e["exception_class_path"], e["message"]) for e in job.errors] == [
        (1, "tests.testapp.tasks.EvilStr", placeholder),
        (2, "tests.testapp.tasks.EvilStr", placeholder),
    ]
    for error in job.errors:
        assert 'raise EvilStr("hidden")' in error["traceback"] and "EvilStr" in error["traceback"].splitlines()[-1]
    assert len(set(job.worker_ids)) == 1  # both attempts on the live worker
    assert _no_worker_lost()
    assert f"error=EvilStr: {placeholder}" in worker.text()


@pytest.mark.timeout(120)
def test_an_error_message_with_nul_and_a_lone_surrogate_is_stored_escaped(workers):
    bad, good = _neighbours_and(hostile_error_message.enqueue)
    worker = workers("--burst", "--concurrency", "4", settings=FAST)
    assert worker.wait(60) == 0, worker.log()

    job = Job.objects.get(id=bad.id)
    assert (job.status, job.attempts) == (JobStatus.FAILED, 1), (job.errors, worker.log())
    [error] = job.errors
    assert (error["exception_class_path"], error["message"]) == ("builtins.ValueError", "bad\\x00value \\ud800 end")
    assert "ValueError: bad\\x00value \\ud800 end" in error["traceback"]
    assert Job.objects.filter(id__in=good, status=JobStatus.SUCCESSFUL).count() == 80
    assert _no_worker_lost()


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "mode", [("--concurrency", "2"), ("--processes", "1", "--concurrency", "1")], ids=["thread mode", "process mode"]
)
def test_a_job_that_fails_by_timeout_sends_task_finished_once(workers, tmp_path, monkeypatch, mode):
    """A task_finished receiver of the test app (tests.testapp.tasks._record_finished) writes
    "<id> <status>" per signal to a file: the timed-out job's line appears once, FAILED, after
    its second attempt (not after the first, which goes back to READY); a normal job's too."""
    finished = tmp_path / "finished.txt"
    monkeypatch.setenv("DJJOBS_TEST_FINISHED_FILE", str(finished))
    overstays = hostile_overstays.enqueue(seconds=3.0)  # timeout 0.5 s, max_attempts=2
    noop = hostile_noop.enqueue()
    worker = workers("--burst", *mode, settings=FAST)
    assert worker.wait(90) == 0, worker.log()

    job = Job.objects.get(id=overstays.id)
    assert (job.status, job.attempts) == (JobStatus.FAILED, 2), (job.errors, worker.log())
    assert [e["exception_class_path"] for e in job.errors] == ["djjobs.exceptions.JobTimeout"] * 2
    lines = sorted(finished.read_text().splitlines()) if finished.exists() else []
    assert lines == sorted([f"{overstays.id} FAILED", f"{noop.id} SUCCESSFUL"]), worker.log()


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "mode", [("--concurrency", "2"), ("--processes", "1", "--concurrency", "2")], ids=["thread mode", "process mode"]
)
def test_a_worker_thread_that_dies_takes_the_worker_down_and_its_job_is_rescued(workers, mode):
    """A task raising KeyboardInterrupt ends its job thread (the executor lets it through): the
    worker logs it with its traceback and exits with code 1 instead of living on without the
    thread; its job is released (process mode: by the supervisor at once; thread mode: by the
    rescuer once its lease, no longer renewed, expires)."""
    from djjobs.maintenance.rescuer import rescue_expired

    result = hostile_interrupts.enqueue()  # max_attempts=1
    worker = workers("--burst", *mode, settings=FAST)
    assert worker.wait(60) == 1, worker.log()
    log = worker.text()
    assert "thread djjobs-job-" in log and "died" in log and "KeyboardInterrupt" in log, log
    assert "Traceback" in log and "raise KeyboardInterrupt" in log, log

    if "--processes" not in mode:
        job = Job.objects.get(id=result.id)
        assert job.status == JobStatus.RUNNING  # left to the rescuer: its lease is not renewed
        wait_until(
            lambda: Job.objects.get(id=result.id).lease_expires_at < timezone.now(),
            timeout=30,
            message="the dead worker's lease to expire",
        )
        assert rescue_expired() == 1
    job = Job.objects.get(id=result.id)
    assert job.status != JobStatus.RUNNING
    assert job.errors[-1]["exception_class_path"] == WORKER_LOST
