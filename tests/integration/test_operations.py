"""cancel(), retry(), run_now() and the rescuer."""

from datetime import timedelta

import pytest
from django.utils import timezone

import djjobs
from djjobs.maintenance.rescuer import rescue_expired
from djjobs.models import Job
from djjobs.operations import Answer
from djjobs.testing import run_jobs
from djjobs.worker.claim import claim
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def test_cancel_ready_job():
    result = tasks.add.enqueue(1, 2)
    assert djjobs.cancel(result.id) == Answer.DONE
    job = Job.objects.get()
    assert job.status == "CANCELLED" and job.finished_at is not None
    assert run_jobs() == 0
    assert djjobs.cancel(result.id) == Answer.NOT_ALLOWED


def test_cancel_running_job_requests_a_stop():
    tasks.add.enqueue(1, 2)
    (claimed,) = claim("w", None, 1, 30)
    assert djjobs.cancel(claimed.id) == Answer.REQUESTED
    job = Job.objects.get()
    assert job.status == "RUNNING" and job.cancel_requested_at is not None
    assert djjobs.cancel(claimed.id) == Answer.REQUESTED  # asking twice is harmless


def test_cancel_unknown_job():
    assert djjobs.cancel("01a200b6-0000-7000-8000-000000000000") == Answer.NOT_FOUND
    assert djjobs.cancel("garbage") == Answer.NOT_FOUND


def test_retry_dead_letter_grants_another_attempt():
    result = tasks.always_fails.enqueue()
    run_jobs()
    assert Job.objects.get().status == "FAILED"
    assert djjobs.retry(result.id) == Answer.DONE
    job = Job.objects.get()
    assert (job.status, job.max_attempts, job.finished_at) == ("READY", 6, None)
    assert run_jobs() == 1
    job.refresh_from_db()
    assert (job.status, job.attempts, len(job.errors)) == ("FAILED", 6, 6)


def test_retry_refuses_active_and_successful_jobs():
    result = tasks.add.enqueue(1, 2)
    assert djjobs.retry(result.id) == Answer.NOT_ALLOWED
    run_jobs()
    assert djjobs.retry(result.id) == Answer.NOT_ALLOWED


def test_retry_conflicting_unique_key():
    first = tasks.add.using(unique_key="k").enqueue(1, 2)
    djjobs.cancel(first.id)
    tasks.add.using(unique_key="k").enqueue(1, 2)
    assert djjobs.retry(first.id) == Answer.CONFLICT
    assert Job.objects.get(pk=first.id).status == "CANCELLED"


def test_run_now_moves_run_after():
    result = tasks.add.using(run_after=timedelta(hours=1)).enqueue(1, 2)
    assert run_jobs() == 0
    assert djjobs.run_now(result.id) == Answer.DONE
    assert run_jobs() == 1


class TestRescue:
    def _expire(self):
        Job.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    def test_expired_lease_returns_job_to_ready_with_worker_lost(self):
        tasks.add.enqueue(1, 2)
        run_after = Job.objects.get().run_after
        claim("dead-worker", None, 1, 30)
        assert rescue_expired() == 0  # lease still valid
        self._expire()
        assert rescue_expired() == 1
        job = Job.objects.get()
        assert (job.status, job.attempts, job.lease_token) == ("READY", 1, None)
        assert job.run_after == run_after  # back at its place in the queue, not behind the backlog
        assert job.errors[0]["exception_class_path"] == "djjobs.exceptions.WorkerLost"
        assert "dead-worker" in job.errors[0]["message"]
        assert run_jobs() == 1
        job.refresh_from_db()
        assert (job.status, job.attempts) == ("SUCCESSFUL", 2)

    def test_expired_job_without_attempts_left_fails(self):
        tasks.add.using(max_attempts=1).enqueue(1, 2)
        claim("dead-worker", None, 1, 30)
        self._expire()
        assert rescue_expired() == 1
        job = Job.objects.get()
        assert job.status == "FAILED" and job.finished_at is not None
