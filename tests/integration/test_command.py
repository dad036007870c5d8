"""run_workers as a command, in-process: option validation and a threaded --burst run."""

import pytest
from django.core.management import CommandError, call_command

from djjobs.models import Job
from djjobs.worker.runner import Worker
from tests.testapp import tasks
from tests.testapp.models import Execution


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--concurrency", "0"], "--concurrency must be at least 1"),
        (["--max-jobs", "0"], "--max-jobs must be at least 1"),
        (["--queues", "default,nope"], "Unknown queue(s) nope"),
        (["--backend", "missing"], "Unknown TASKS backend"),
        (["--worker-id", "x" * 65], "--worker-id must be 1 to 64"),
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
    real_claim, real_attempt, real_count = runner.claim, runner.attempt, Worker._count
    worker = Worker(concurrency=4, burst=True)

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
    monkeypatch.setattr(Worker, "_count", count)
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
    worker = Worker(concurrency=1, max_jobs=3)
    assert worker.run() == 0
    assert Job.objects.filter(status="SUCCESSFUL").count() == 3
    assert Job.objects.filter(status="READY").count() == 2


@pytest.mark.django_db(transaction=True)
def test_future_jobs_are_left_for_later_by_burst():
    from datetime import timedelta

    later = tasks.add.using(run_after=timedelta(hours=1)).enqueue(1, 1)
    call_command("run_workers", "--burst", verbosity=0)
    assert Job.objects.get(pk=later.id).status == "READY"
