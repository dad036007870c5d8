"""Atomic tasks, checkpoints, timeouts, the worker row, pruning and database hiccups."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import OperationalError
from django.test import override_settings
from django.utils import timezone

from djjobs.maintenance.pruner import prune
from djjobs.models import Job, Worker
from djjobs.testing import run_jobs
from djjobs.worker.runner import Runner
from tests.testapp import tasks
from tests.testapp.models import Execution


@pytest.mark.django_db
class TestAtomic:
    def test_success_commits_the_writes_with_the_completion(self):
        result = tasks.atomic_record.enqueue()
        run_jobs()
        assert Job.objects.get(pk=result.id).status == "SUCCESSFUL"
        assert Execution.objects.filter(label="atomic").count() == 1

    def test_lost_lease_rolls_back_the_task_writes(self):
        result = tasks.atomic_record.enqueue(steal_lease=True)
        run_jobs()
        job = Job.objects.get(pk=result.id)
        assert job.status == "RUNNING"  # not completed by us; the new owner will finish it
        assert Execution.objects.count() == 0

    def test_failure_rolls_back_the_writes_and_records_the_error(self):
        result = tasks.atomic_record.enqueue(fail=True)
        run_jobs()
        job = Job.objects.get(pk=result.id)
        assert job.status == "FAILED" and job.errors[0]["message"] == "atomic failure"
        assert Execution.objects.count() == 0


@pytest.mark.django_db
def test_checkpoint_lets_a_retry_resume_where_the_last_attempt_stopped():
    result = tasks.checkpointed.enqueue(chunks=5, crash_at=3)
    assert run_jobs() == 2
    job = Job.objects.get(pk=result.id)
    assert (job.status, job.checkpoint, job.return_value) == ("SUCCESSFUL", {"done": 5}, 3)
    labels = list(Execution.objects.order_by("id").values_list("label", "attempt"))
    assert labels == [("chunk-0", 1), ("chunk-1", 1), ("chunk-2", 1), ("chunk-3", 2), ("chunk-4", 2)]


@pytest.mark.django_db(transaction=True)
def test_timeout_fails_the_attempt_on_time_in_thread_mode():
    result = tasks.overstays.enqueue(seconds=1.5)
    started = timezone.now()
    Runner(burst=True, concurrency=1).run()
    job = Job.objects.get(pk=result.id)
    assert job.status == "FAILED"
    assert job.errors[0]["exception_class_path"] == "djjobs.exceptions.JobTimeout"
    assert "timeout of 0.3s" in job.errors[0]["message"]
    assert job.finished_at - started < timedelta(seconds=1.2)  # failed on time, not when the code returned
    assert job.return_value is None  # the late result was dropped


@pytest.mark.django_db(transaction=True)
def test_worker_records_itself():
    tasks.add.enqueue_many([(1, 1), (2, 2)])
    tasks.discards.enqueue()
    Runner(burst=True, concurrency=2, worker_id="w-rec").run()
    row = Worker.objects.get()
    assert (row.id, row.concurrency, row.jobs_done, row.jobs_failed) == ("w-rec", 2, 2, 1)
    assert row.stopped_at is not None and not row.is_alive
    assert row.pid > 0 and row.hostname


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["batched success", "immediate failure"])
def test_completion_rides_out_a_database_error(monkeypatch, path):
    from djjobs.worker import completer as completer_module
    from djjobs.worker import turn as process_module

    module, name = (
        (completer_module, "complete_successes") if path == "batched success" else (process_module, "complete")
    )
    calls = []
    real = getattr(module, name)

    def flaky(*args):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(*args)

    monkeypatch.setattr(module, name, flaky)
    if path == "batched success":
        tasks.record_job.enqueue("once")
    else:
        tasks.discards.enqueue()
    Runner(burst=True, concurrency=1).run()
    job = Job.objects.get()
    assert job.status == ("SUCCESSFUL" if path == "batched success" else "FAILED")
    assert job.attempts == 1  # the task ran once; only its completion was repeated
    assert len(calls) == 2


@pytest.mark.django_db(transaction=True)
def test_batched_completion_honours_leases():
    """A success whose lease was taken meanwhile is not written by the batch."""
    import uuid

    from djjobs.lifecycle.finish import complete_successes
    from djjobs.worker.claim import claim
    from djjobs.worker.executor import Outcome

    tasks.add.enqueue_many([(1, 1), (2, 2), (3, 3)])
    jobs = claim("w", None, 3, 30)
    Job.objects.filter(pk=jobs[1].id).update(lease_token=uuid.uuid4())  # rescued and re-claimed
    done = complete_successes([(j, Outcome(return_value=i, return_json=str(i))) for i, j in enumerate(jobs)], "w")
    assert done == {jobs[0].key, jobs[2].key}
    assert dict(Job.objects.values_list("id", "status")) == {
        jobs[0].id: "SUCCESSFUL",
        jobs[1].id: "RUNNING",
        jobs[2].id: "SUCCESSFUL",
    }
    assert Job.objects.get(pk=jobs[2].id).return_value == 2


@pytest.mark.django_db
class TestPrune:
    def _finished(self, status, days_ago):
        return Job.objects.create(task_path="x.y", status=status, finished_at=timezone.now() - timedelta(days=days_ago))

    def test_deletes_only_finished_jobs_past_retention(self):
        self._finished("SUCCESSFUL", 15)
        keep_recent = self._finished("SUCCESSFUL", 13)
        keep_failed = self._finished("FAILED", 30)
        self._finished("FAILED", 91)
        self._finished("CANCELLED", 91)
        active = Job.objects.create(task_path="x.y", status="READY")
        counts = prune(batch_size=1)
        assert counts == {"SUCCESSFUL": 1, "FAILED": 1, "CANCELLED": 1, "workflow runs": 0, "events": 0, "workers": 0}
        assert set(Job.objects.values_list("pk", flat=True)) == {keep_recent.pk, keep_failed.pk, active.pk}

    def test_none_keeps_for_ever_and_dry_run_deletes_nothing(self):
        self._finished("SUCCESSFUL", 400)
        with override_settings(DJJOBS={"RETENTION_DAYS": {"SUCCESSFUL": None}, "EVENT_RETENTION_DAYS": None}):
            assert prune() == {"workers": 0}
        assert prune(dry_run=True)["SUCCESSFUL"] == 1
        assert Job.objects.count() == 1

    def test_command(self, capsys):
        self._finished("SUCCESSFUL", 20)
        call_command("prune_jobs", "--dry-run")
        assert "Would delete 1 successful" in capsys.readouterr().out
        call_command("prune_jobs")
        assert "Deleted 1 successful" in capsys.readouterr().out
        assert Job.objects.count() == 0

    def test_old_events_are_deleted_and_their_jobs_keep_running(self):
        from djjobs.models import Event

        old = Event.objects.create(
            name="order.paid", occurred_at=timezone.now() - timedelta(days=91), idempotency_key="pay-1"
        )
        recent = Event.objects.create(name="order.paid", occurred_at=timezone.now() - timedelta(days=89))
        job = Job.objects.create(task_path="x.y", status="READY", event=old)
        assert prune(dry_run=True)["events"] == 1
        assert prune(batch_size=1)["events"] == 1
        assert list(Event.objects.values_list("pk", flat=True)) == [recent.pk]
        job.refresh_from_db()
        assert (job.status, job.event_id) == ("READY", None)
        with override_settings(DJJOBS={"EVENT_RETENTION_DAYS": 30}):
            assert prune()["events"] == 1

    def test_dead_worker_rows_are_deleted(self):
        Worker.objects.create(
            id="old", hostname="h", pid=1, concurrency=1, last_heartbeat_at=timezone.now() - timedelta(hours=2)
        )
        Worker.objects.create(id="new", hostname="h", pid=2, concurrency=1)
        assert prune()["workers"] == 1
        assert list(Worker.objects.values_list("id", flat=True)) == ["new"]


@pytest.mark.django_db(transaction=True)
def test_unclaim_gives_jobs_back_as_if_never_claimed():
    import uuid

    from djjobs.lifecycle.finish import unclaim
    from djjobs.worker.claim import claim

    tasks.add.enqueue_many([(1, 1), (2, 2), (3, 3)])
    jobs = claim("w-give", None, 3, 30)
    Job.objects.filter(pk=jobs[2].id).update(lease_token=uuid.uuid4())  # no longer ours: left alone
    assert unclaim(jobs) == 2
    for job in jobs[:2]:
        row = Job.objects.get(pk=job.id)
        assert (
            row.status,
            row.attempts,
            row.started_at,
            row.last_attempted_at,
            row.worker_id,
            row.worker_ids,
            row.lease_token,
        ) == ("READY", 0, None, None, "", [], None)
        assert row.run_after == job.run_after  # its place in the queue is kept
    assert Job.objects.get(pk=jobs[2].id).status == "RUNNING"


@pytest.mark.django_db(transaction=True)
def test_a_stopping_worker_gives_its_prefetched_jobs_back(monkeypatch):
    import threading

    from djjobs.worker import runner

    given_back = threading.Event()
    real_unclaim = runner.unclaim

    def unclaim(jobs):
        try:
            return real_unclaim(jobs)
        finally:
            given_back.set()

    monkeypatch.setattr(runner, "unclaim", unclaim)
    tasks.GATE_STARTED.clear()
    tasks.GATE_RELEASE.clear()
    gate = tasks.gate.using(priority=10).enqueue()
    tasks.add.enqueue_many([(i, i) for i in range(30)])
    worker = Runner(concurrency=1, worker_id="w-prefetch")
    worker._avg_duration = 0.001  # short jobs seen: the worker prefetches
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        assert tasks.GATE_STARTED.wait(10)
        assert Job.objects.filter(status="RUNNING").count() > 1  # the gate and prefetched jobs
        worker.stop()
        assert given_back.wait(10)  # while the gate still holds the only thread
    finally:
        tasks.GATE_RELEASE.set()
        thread.join(10)
    assert not thread.is_alive()
    assert Job.objects.get(pk=gate.id).status == "SUCCESSFUL"
    others = Job.objects.exclude(pk=gate.id)
    assert others.filter(status="READY", attempts=0, worker_ids=[]).count() == 30
    assert worker.claimed_total == 1


@pytest.mark.django_db(transaction=True)
def test_a_task_that_leaves_a_transaction_open_does_not_poison_the_next_job_on_its_thread():
    """The job thread's connection is closed after such a task (its writes roll back, as they
    were never committed), and the next jobs on the same thread run and commit normally."""
    leaky = tasks.leaves_a_transaction_open.enqueue("leaked")
    tasks.record.using(priority=-1).enqueue("after")  # claimed after the leaky one
    tasks.record.using(priority=-2).enqueue("after again")
    Runner(burst=True, concurrency=1).run()
    assert Job.objects.get(pk=leaky.id).status == "SUCCESSFUL"  # the task returned; its rows did not commit
    assert sorted(Execution.objects.values_list("label", flat=True)) == ["after", "after again"]
    assert set(Job.objects.values_list("status", flat=True)) == {"SUCCESSFUL"}
