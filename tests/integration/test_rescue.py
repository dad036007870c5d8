"""Rescue of jobs whose worker is lost: what the attempt costs, and cancellations it honours.

The claim tells which jobs go straight to an idle thread and which are claimed ahead
(prefetched); the rescuer gives a claimed-ahead job its attempt back once, and ends a job
whose cancellation was requested CANCELLED instead of running it again.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from djjobs import operations
from djjobs.maintenance.rescuer import rescue_expired
from djjobs.models import Job
from djjobs.states import JobStatus
from djjobs.worker.claim import claim
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

WORKER_LOST = "djjobs.exceptions.WorkerLost"


def expire_leases():
    Job.objects.filter(status=JobStatus.RUNNING).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def test_claim_marks_the_jobs_beyond_the_idle_threads_as_claimed_ahead_and_lists_them_last():
    low = tasks.record.using(priority=-5).enqueue(label="low")
    mid = tasks.record.enqueue(label="mid")
    high = tasks.record.using(priority=5).enqueue(label="high")
    jobs = claim("w", None, 3, 30, direct=1)
    assert str(jobs[0].id) == high.id and not jobs[0].claimed_ahead
    assert {str(j.id) for j in jobs[1:]} == {mid.id, low.id}
    assert all(j.claimed_ahead for j in jobs[1:])
    stored = dict(Job.objects.values_list("id", "claimed_ahead"))
    assert {str(k): v for k, v in stored.items()} == {high.id: False, mid.id: True, low.id: True}
    assert all(j.attempts == 1 for j in jobs)  # counted at claim, as always


@pytest.mark.parametrize("direct", [None, 5, 0])
def test_claim_direct_bounds(direct):
    tasks.record.enqueue_many([{"label": str(i)} for i in range(3)])
    jobs = claim("w", None, 3, 30, direct=direct)
    expect_ahead = direct == 0
    assert [j.claimed_ahead for j in jobs] == [expect_ahead] * 3
    assert set(Job.objects.values_list("claimed_ahead", flat=True)) == {expect_ahead}


def test_a_claimed_ahead_job_of_a_lost_worker_gets_its_attempt_back_once():
    result = tasks.record.using(max_attempts=1).enqueue(label="x")
    [job] = claim("lost-1", None, 1, 30, direct=0)
    assert job.claimed_ahead and job.attempts == 1
    expire_leases()
    assert rescue_expired() == 1
    row = Job.objects.get(pk=result.id)
    # As if never claimed: READY, no attempt spent, no start time, the lost worker not among its workers.
    assert (row.status, row.attempts, row.started_at, row.worker_ids) == (JobStatus.READY, 0, None, [])
    assert not row.claimed_ahead and row.lease_token is None
    [error] = row.errors
    assert error["exception_class_path"] == WORKER_LOST and error["counted"] is False
    assert error["worker_id"] == "lost-1" and "not counted" in error["message"]

    # The second loss counts, even claimed ahead: a job that kills its worker still ends FAILED.
    [job] = claim("lost-2", None, 1, 30, direct=0)
    assert job.attempts == 1
    expire_leases()
    assert rescue_expired() == 1
    row = Job.objects.get(pk=result.id)
    assert (row.status, row.attempts) == (JobStatus.FAILED, 1)
    assert [e.get("counted", True) for e in row.errors] == [False, True]
    assert row.worker_ids == ["lost-2"]


def test_a_directly_claimed_job_of_a_lost_worker_spends_its_attempt():
    result = tasks.record.using(max_attempts=2).enqueue(label="x")
    claim("lost", None, 1, 30, direct=1)
    expire_leases()
    assert rescue_expired() == 1
    row = Job.objects.get(pk=result.id)
    assert (row.status, row.attempts, row.worker_ids) == (JobStatus.READY, 1, ["lost"])
    assert "counted" not in row.errors[0]
    claim("lost-again", None, 1, 30)
    expire_leases()
    rescue_expired()
    row = Job.objects.get(pk=result.id)
    assert (row.status, row.attempts) == (JobStatus.FAILED, 2)


@pytest.mark.parametrize("ahead", [False, True])
def test_a_lost_job_whose_cancellation_was_requested_ends_cancelled(ahead):
    result = tasks.record.using(max_attempts=5).enqueue(label="x")
    claim("lost", None, 1, 30, direct=0 if ahead else 1)
    assert operations.cancel(result.id) == operations.Answer.REQUESTED
    expire_leases()
    assert rescue_expired() == 1
    row = Job.objects.get(pk=result.id)
    assert row.status == JobStatus.CANCELLED and row.finished_at is not None
    assert row.errors[-1]["exception_class_path"] == WORKER_LOST
    assert "cancellation" in row.errors[-1]["message"]
    assert not claim("other", None, 1, 30)  # it does not run again


def test_graceful_give_back_of_a_claimed_ahead_job_still_restores_it():
    from djjobs.lifecycle.finish import unclaim

    result = tasks.record.enqueue(label="x")
    [job] = claim("w", None, 1, 30, direct=0)
    assert unclaim([job]) == 1
    row = Job.objects.get(pk=result.id)
    assert (row.status, row.attempts, row.errors) == (JobStatus.READY, 0, [])
