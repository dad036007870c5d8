"""run_workers as a command, in-process: option validation and a threaded --burst run."""

from datetime import UTC
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from djjobs.models import Job
from djjobs.worker.runner import Runner
from tests.testapp import tasks
from tests.testapp.models import Execution


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--concurrency", "0"], "--concurrency must be from 1 to 1000, got 0."),
        (["--max-jobs", "0"], "--max-jobs must be at least 1"),
        (["--max-jobs", "-5"], "--max-jobs must be at least 1, got -5."),
        (["--processes", "0"], "--processes must be from 1 to 1000, got 0."),
        (["--processes", "1", "--max-jobs-per-child", "0"], "--max-jobs-per-child must be at least 1, got 0."),
        (["--queues", "default,nope"], "Unknown queue(s) nope"),
        (["--backend", "missing"], "Unknown TASKS backend"),
        (["--worker-id", "x" * 65], "--worker-id must be 1 to 64"),
        (["--worker-id", "a\x00b"], "--worker-id must be printable text"),
        (["--worker-id", "a\nb"], "--worker-id must be printable text"),
    ],
)
def test_bad_options_are_refused(argv, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("run_workers", *argv)


@pytest.mark.django_db(transaction=True)
def test_burst_runs_every_due_job_on_threads_and_returns():
    tasks.record_ctx.enqueue_many([(str(i),) for i in range(40)])
    tasks.flaky.enqueue(succeed_on=2)
    call_command("run_workers", "--burst", "--concurrency", "4", "--worker-id", "burst-1", verbosity=0)
    assert Job.objects.exclude(status="SUCCESSFUL").count() == 0
    assert Execution.objects.count() == 40
    assert Execution.objects.values("job_id").distinct().count() == 40
    assert set(Job.objects.values_list("worker_id", flat=True)) == {"burst-1"}


@pytest.mark.django_db(transaction=True)
def test_burst_waits_for_a_retry_that_fails_while_a_claim_finds_nothing(monkeypatch):
    """The claim that finds nothing may run while the only busy job fails and becomes due
    again; burst must not take "nothing claimed, nothing busy now" for "all done"."""
    import threading

    from djjobs.worker import runner

    looked, counted = threading.Event(), threading.Event()
    real_claim, real_attempt, real_count = runner.claim, runner.attempt, Runner._count
    worker = Runner(concurrency=4, burst=True)

    def attempt_once_the_loop_is_claiming(job, *args):
        if job.attempts == 1:  # the first attempt: let the loop claim (and find nothing) first
            worker._wakeup.set()
            assert looked.wait(10), "the loop never claimed while the job ran"
        return real_attempt(job, *args)

    def claim_then_let_the_failure_land(*args, **kwargs):
        jobs = real_claim(*args, **kwargs)
        if not jobs and not looked.is_set():
            looked.set()
            assert counted.wait(10), "the first attempt never ended"
        return jobs

    def count(self, job, status):
        real_count(self, job, status)
        counted.set()

    monkeypatch.setattr(runner, "attempt", attempt_once_the_loop_is_claiming)
    monkeypatch.setattr(runner, "claim", claim_then_let_the_failure_land)
    monkeypatch.setattr(Runner, "_count", count)
    result = tasks.flaky.enqueue(succeed_on=2)
    assert worker.run() == 0
    job = Job.objects.get(pk=result.id)
    assert (job.status, job.attempts) == ("SUCCESSFUL", 2)


@pytest.mark.django_db(transaction=True)
def test_queues_option_limits_what_is_claimed():
    tasks.add.enqueue(1, 1)
    email = tasks.send_receipt.enqueue(7)
    call_command("run_workers", "--burst", "--queues", "emails", verbosity=0)
    assert Job.objects.get(pk=email.id).status == "SUCCESSFUL"
    assert Job.objects.filter(queue_name="default", status="READY").count() == 1


@pytest.mark.django_db(transaction=True)
def test_max_jobs_stops_after_that_many_claims():
    tasks.add.enqueue_many([(i, i) for i in range(5)])
    worker = Runner(concurrency=1, max_jobs=3)
    assert worker.run() == 0
    assert Job.objects.filter(status="SUCCESSFUL").count() == 3
    assert Job.objects.filter(status="READY").count() == 2


@pytest.mark.django_db(transaction=True)
def test_future_jobs_are_left_for_later_by_burst():
    from datetime import timedelta

    later = tasks.add.using(run_after=timedelta(hours=1)).enqueue(1, 1)
    call_command("run_workers", "--burst", verbosity=0)
    assert Job.objects.get(pk=later.id).status == "READY"


# -- run_workers: options that would serve every queue or exhaust the machine -------------------


@pytest.fixture
def no_worker(monkeypatch):
    """A worker that would start fails the test instead of serving."""
    from djjobs.worker.supervisor import Supervisor

    monkeypatch.setattr(Runner, "run", lambda self: pytest.fail("the worker started"))
    monkeypatch.setattr(Supervisor, "run", lambda self: pytest.fail("the supervisor started"))


@pytest.mark.parametrize("queues", [",,,", ",", "", "  ", "default,,emails", "default,", " ,default"])
def test_an_empty_queue_name_is_refused_not_read_as_every_queue(no_worker, queues):
    with pytest.raises(CommandError, match="has an empty queue name") as caught:
        call_command("run_workers", "--burst", "--queues", queues)
    assert "leave --queues out to serve every queue" in str(caught.value)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--concurrency", "99999999999999999999"], "--concurrency must be from 1 to 1000, got 99999999999999999999."),
        (["--concurrency", "1001"], "--concurrency must be from 1 to 1000, got 1001."),
        (["--processes", "99999999999999999999"], "--processes must be from 1 to 1000, got 99999999999999999999."),
        (["--processes", "1001"], "--processes must be from 1 to 1000, got 1001."),
    ],
)
def test_concurrency_and_processes_are_bounded(no_worker, argv, message):
    with pytest.raises(CommandError) as caught:
        call_command("run_workers", "--burst", *argv)
    assert str(caught.value) == message


# -- schedules: --count and --args -------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("count", ["0", "-5", "1001", "100000000"])
def test_schedules_count_is_bounded(count):
    with pytest.raises(CommandError) as caught:
        call_command("schedules", "--count", count)
    assert str(caught.value) == f"--count must be from 1 to 1000, got {count}."


def _add(*argv):
    call_command("schedules", "--add", "s", "--task", "tests.testapp.tasks.record", "--interval", "60", *argv)


def _nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.django_db
@pytest.mark.parametrize(
    "argv,message",
    [
        (["--args", _nested(65)], "--args is nested more than 64 levels deep (DJJOBS['MAX_JSON_DEPTH'])."),
        (["--kwargs", '{"a":' * 65 + "1" + "}" * 65], "--kwargs is nested more than 64 levels deep"),
        (["--args", _nested(100000)], "--args is nested too deeply to be read; the limit is 64 levels"),
        (["--args", '["a\\u0000b"]'], "--args must not contain the NUL character"),
        (["--kwargs", '{"a\\u0000": 1}'], "--kwargs must not contain the NUL character"),
        (["--args", '["\\ud800"]'], "--args must be valid Unicode: it contains a lone surrogate"),
        (["--args", "[" + "1" * 5000 + "]"], "--args cannot be read: Exceeds the limit"),
        (["--args", "[1"], "--args is not valid JSON"),
    ],
)
def test_schedules_add_refuses_args_a_job_could_not_store(argv, message):
    from djjobs.models import Schedule

    with pytest.raises(CommandError) as caught:
        _add(*argv)
    assert message in str(caught.value)
    assert not Schedule.objects.filter(name="s").exists()


@pytest.mark.django_db
def test_schedules_add_refuses_args_deeper_than_a_smaller_max_json_depth(settings):
    settings.DJJOBS = {**settings.DJJOBS, "MAX_JSON_DEPTH": 3}
    with pytest.raises(CommandError, match=r"nested more than 3 levels deep"):
        _add("--args", _nested(4))
    _add("--args", _nested(3))


@pytest.mark.django_db
def test_schedules_add_accepts_args_exactly_as_deep_as_enqueue_does():
    """The args list is the first level, as for enqueue(): 64 levels in all are accepted."""
    import json

    from djjobs.models import Schedule

    deepest = _nested(64)
    _add("--args", deepest)
    assert Schedule.objects.get(name="s").args == json.loads(deepest)
    assert tasks.record.enqueue(*json.loads(deepest)).args == json.loads(deepest)


# -- help that says what djjobs does (issue 18, defect 13) --------------------------------------


def _help(name: str) -> str:
    from django.core.management import load_command_class

    return " ".join(load_command_class("djjobs", name).create_parser("manage.py", name).format_help().split())


def test_run_workers_help_gives_numbers_and_meanings(settings):
    settings.DJJOBS = {**settings.DJJOBS, "CONCURRENCY": 6}
    text = _help("run_workers")
    assert "(default 6: DJJOBS['CONCURRENCY'])" in text
    assert "0 warnings and errors only" in text and "a line per job started and finished" in text
    assert "0=minimal output" not in text  # Django's generic wording is replaced
    assert "then exit: 0 when done, 1 if the database could not be asked" in text


def test_prune_jobs_help_gives_the_retention_and_batch_size(settings):
    settings.DJJOBS = {**settings.DJJOBS, "RETENTION_DAYS": {"SUCCESSFUL": 7, "FAILED": 30, "CANCELLED": None}}
    text = _help("prune_jobs")
    assert "SUCCESSFUL 7 days, FAILED 30 days; CANCELLED kept for ever; events 90 days" in text
    assert "Rows per delete transaction (default 1000)." in text


@pytest.mark.django_db
def test_prune_jobs_dry_run_says_how_old(capsys):
    from datetime import timedelta

    from django.utils import timezone

    tasks.add.enqueue(1, 2)
    Job.objects.update(status="SUCCESSFUL", finished_at=timezone.now() - timedelta(days=20))
    call_command("prune_jobs", "--dry-run")
    out = capsys.readouterr().out
    assert "Would delete 1 successful (finished more than 14 days ago; the oldest 20 days ago)" in out
    assert "Would delete 0 failed (finished more than 90 days ago)" in out
    assert Job.objects.count() == 1


@pytest.mark.django_db
def test_schedules_description_has_help_and_a_one_off_names_its_zone_once():
    from datetime import datetime

    from djjobs.models import Schedule

    assert "--description DESCRIPTION What the schedule is for" in _help("schedules")
    Schedule.objects.create(
        name="once", task_path="tests.testapp.tasks.record", run_at=datetime(2030, 1, 1, 9, tzinfo=UTC), time_zone="UTC"
    )
    out = StringIO()
    call_command("schedules", stdout=out)
    assert "Once, at 2030-01-01 09:00:00 UTC\n" in out.getvalue()
    assert "UTC (UTC)" not in out.getvalue()
