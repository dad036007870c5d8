"""Every path that changes a job's status, written on the database (djjobs.lifecycle.finish):
the row it leaves, and task_finished sent once (after commit) exactly when the job ended."""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

import djjobs
from djjobs.compat import task_finished
from djjobs.lifecycle import finish
from djjobs.lifecycle.transitions import IllegalTransition
from djjobs.maintenance.rescuer import rescue_expired
from djjobs.models import Job, RunStatus, WorkflowRun
from djjobs.operations import Answer
from djjobs.states import JobStatus
from djjobs.worker import turn as process
from djjobs.worker.claim import claim
from djjobs.worker.executor import execute
from djjobs.workflows import cancel_run
from tests.testapp import tasks
from tests.testapp.workflows import checkout

pytestmark = pytest.mark.django_db(transaction=True)  # task_finished is sent on commit

WORKER_LOST = "djjobs.exceptions.WorkerLost"
JOB_TIMEOUT = "djjobs.exceptions.JobTimeout"


@pytest.fixture
def finished():
    """The task_finished signals sent: job id -> how many times, and the statuses they told."""
    sent = Counter()
    statuses = {}

    def receiver(sender, task_result, **kwargs):
        sent[task_result.id] += 1
        statuses[task_result.id] = task_result.status

    task_finished.connect(receiver)
    sent.statuses = statuses
    yield sent
    task_finished.disconnect(receiver)


def row(job_id) -> Job:
    return Job.objects.get(pk=job_id)


def kinds(job) -> list[str]:
    return [entry["exception_class_path"].rsplit(".", 1)[-1] for entry in job.errors]


def expire_leases():
    Job.objects.filter(status=JobStatus.RUNNING).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def claim_one(direct=None, worker="w1"):
    [job] = claim(worker, None, 1, 30, direct=direct)
    return job


# -- the worker's completion ------------------------------------------------------------------


def test_complete_success(finished):
    result = tasks.add.enqueue(1, 2)
    assert process.process(claim_one(), "w1") == JobStatus.SUCCESSFUL
    job = row(result.id)
    assert (job.status, job.attempts, job.return_value, job.errors, job.lease_token) == ("SUCCESSFUL", 1, 3, [], None)
    assert finished == {result.id: 1}


def test_complete_failure(finished):
    result = tasks.discards.enqueue()
    assert process.process(claim_one(), "w1") == JobStatus.FAILED
    job = row(result.id)
    assert (job.status, job.attempts, kinds(job)) == ("FAILED", 1, ["Discard"]) and job.finished_at
    assert finished == {result.id: 1}


def test_complete_retry(finished):
    result = tasks.always_fails.enqueue()
    assert process.process(claim_one(), "w1") == JobStatus.READY
    job = row(result.id)
    assert (job.status, job.attempts, len(job.errors), job.finished_at, job.lease_token) == ("READY", 1, 1, None, None)
    assert job.run_after > timezone.now() - timedelta(seconds=1)
    assert finished == {}  # not between retries


def test_complete_with_cancel_requested(finished):
    result = tasks.always_fails.enqueue()
    claimed = claim_one()
    assert djjobs.cancel(result.id) == Answer.REQUESTED
    assert process.process(claimed, "w1") == JobStatus.CANCELLED
    job = row(result.id)
    assert (job.status, job.attempts, len(job.errors)) == ("CANCELLED", 1, 1)
    assert finished == {result.id: 1}


def test_a_late_completion_writes_nothing_and_sends_nothing(finished):
    result = tasks.add.enqueue(1, 2)
    claimed = claim_one()
    expire_leases()
    rescue_expired()
    assert process.process(claimed, "w1") is None  # the lease was lost: dropped
    assert row(result.id).status == "READY" and finished == {}


def test_batched_success(finished):
    results = tasks.add.enqueue_many([(i, i) for i in range(3)])
    jobs = claim("w1", None, 3, 30)
    items = [(job, execute(job)) for job in jobs]
    done = finish.complete_successes(items, "w1")
    assert done == {job.key for job in jobs}
    for job, outcome in items:  # what the completer's callback does
        process.finish(job, outcome, True, "w1")
    assert {(j.status, j.attempts) for j in Job.objects.all()} == {("SUCCESSFUL", 1)}
    assert sorted(j.return_value for j in Job.objects.all()) == [0, 2, 4]
    assert finished == {r.id: 1 for r in results}


# -- rescue (and the supervisor's dead child: the same release) -------------------------------


def test_rescue_direct(finished):
    result = tasks.record.using(max_attempts=3).enqueue(label="x")
    claim_one()
    expire_leases()
    assert rescue_expired() == 1
    job = row(result.id)
    assert (job.status, job.attempts, kinds(job)) == ("READY", 1, ["WorkerLost"])
    assert "counted" not in job.errors[0] and job.lease_token is None
    assert finished == {}


def test_rescue_claimed_ahead(finished):
    result = tasks.record.using(max_attempts=1).enqueue(label="x")
    claim_one(direct=0)
    expire_leases()
    assert rescue_expired() == 1
    job = row(result.id)
    assert (job.status, job.attempts, kinds(job), job.errors[0]["counted"]) == ("READY", 0, ["WorkerLost"], False)
    assert finished == {}


def test_rescue_cancel_requested(finished):
    result = tasks.record.using(max_attempts=3).enqueue(label="x")
    claim_one()
    djjobs.cancel(result.id)
    expire_leases()
    assert rescue_expired() == 1
    job = row(result.id)
    assert (job.status, job.attempts, kinds(job)) == ("CANCELLED", 1, ["WorkerLost"]) and job.finished_at
    assert finished == {result.id: 1}


def test_rescue_spent(finished):
    result = tasks.record.using(max_attempts=1).enqueue(label="x")
    claim_one()
    expire_leases()
    assert rescue_expired() == 1
    job = row(result.id)
    assert (job.status, job.attempts, kinds(job)) == ("FAILED", 1, ["WorkerLost"]) and job.finished_at
    assert finished == {result.id: 1} and finished.statuses[result.id] == "FAILED"


def test_supervisor_releases_a_dead_childs_jobs(finished):
    spent = tasks.record.using(max_attempts=1).enqueue(label="spent")
    left = tasks.record.using(max_attempts=2).enqueue(label="left")
    claim("child-1", None, 2, 30)
    assert finish.release_lost(Job.objects.filter(worker_id="child-1"), "worker process exited with code -9") == 2
    assert (row(spent.id).status, row(left.id).status) == ("FAILED", "READY")
    assert finished == {spent.id: 1}


# -- the supervisor's kills and thread-mode timeouts ------------------------------------------


def test_supervisor_timeout(finished):
    result = tasks.overstays.enqueue()  # max_attempts=1, timeout=0.3
    claim_one(worker="child-1")
    assert finish.time_out(row(result.id), "child-1", pid=4242)
    job = row(result.id)
    assert (job.status, job.attempts, kinds(job)) == ("FAILED", 1, ["JobTimeout"])
    assert job.errors[0]["message"].endswith("worker process 4242 was killed")
    assert finished == {result.id: 1}


def test_thread_mode_timeout_with_attempts_left(finished):
    result = tasks.overstays.using(max_attempts=2).enqueue()
    claimed = claim_one()
    assert finish.time_out(claimed, "w1")
    job = row(result.id)
    assert (job.status, job.attempts, kinds(job)) == ("READY", 1, ["JobTimeout"])
    assert finished == {}
    assert not finish.time_out(claimed, "w1")  # no longer RUNNING under that lease


def test_supervisor_cancel(finished):
    result = tasks.ignores_cancel.enqueue()
    claim_one(worker="child-1")
    djjobs.cancel(result.id)
    assert finish.kill_cancelled(row(result.id))
    job = row(result.id)
    assert (job.status, job.attempts, job.errors, job.lease_token) == ("CANCELLED", 1, [], None) and job.finished_at
    assert not finish.kill_cancelled(job)  # once
    assert finished == {result.id: 1}


# -- cancel, retry, run now -------------------------------------------------------------------


def test_cancel(finished):
    result = tasks.add.using(run_after=timedelta(hours=1)).enqueue(1, 2)
    assert djjobs.cancel(result.id) == Answer.DONE
    job = row(result.id)
    assert (job.status, job.attempts) == ("CANCELLED", 0) and job.finished_at
    assert djjobs.cancel(result.id) == Answer.NOT_ALLOWED
    assert finished == {result.id: 1}


def test_retry(finished):
    result = tasks.discards.using(max_attempts=1).enqueue()
    process.process(claim_one(), "w1")
    assert djjobs.retry(result.id) == Answer.DONE
    job = row(result.id)
    assert (job.status, job.attempts, job.max_attempts, job.finished_at) == ("READY", 1, 2, None)
    assert finished == {result.id: 1}  # its failure's, none for the retry


def test_run_now(finished):
    result = tasks.add.using(run_after=timedelta(hours=1)).enqueue(1, 2)
    assert djjobs.run_now(result.id) == Answer.DONE
    job = row(result.id)
    assert job.status == "READY" and job.run_after <= timezone.now()
    assert finished == {}


def test_unclaim(finished):
    results = tasks.add.enqueue_many([(1, 1), (2, 2)])
    jobs = claim("w1", None, 2, 30, direct=0)
    assert finish.unclaim(jobs) == 2
    assert {(j.status, j.attempts, j.lease_token, j.worker_id) for j in Job.objects.all()} == {("READY", 0, None, "")}
    assert finish.unclaim(jobs) == 0  # guarded by the lease
    assert finished == {} and len(results) == 2


# -- workflow steps ---------------------------------------------------------------------------


def test_a_workflow_step_stop(finished):
    run = checkout.start(order_id=1)
    process.process(claim_one(), "w1")  # reserve succeeds: charge and notify are READY
    charge = Job.objects.get(workflow_run=run, workflow_step="charge")
    assert djjobs.cancel(charge.pk) == Answer.DONE  # the run stops in the same transaction
    steps = {j.workflow_step: j.status for j in Job.objects.filter(workflow_run=run, workflow_role="step")}
    assert steps == {"reserve": "SUCCESSFUL", "charge": "CANCELLED", "notify": "CANCELLED", "ship": "CANCELLED"}
    assert WorkflowRun.objects.get(pk=run.pk).status == RunStatus.COMPENSATING
    assert Job.objects.get(workflow_run=run, workflow_role="compensate").status == "READY"
    ids = {str(j.pk) for j in Job.objects.filter(workflow_run=run, workflow_role="step")}
    assert finished == dict.fromkeys(ids, 1)


def test_cancel_run_cancels_the_steps_not_started(finished):
    run = checkout.start(order_id=2)
    assert cancel_run(run.pk)
    assert set(Job.objects.filter(workflow_run=run).values_list("status", flat=True)) == {"CANCELLED"}
    assert finished == {str(j.pk): 1 for j in Job.objects.filter(workflow_run=run)}


# -- the table is real ------------------------------------------------------------------------


def test_a_write_not_in_the_table_raises_and_writes_nothing(finished):
    result = tasks.add.enqueue(1, 2)
    process.process(claim_one(), "w1")
    with pytest.raises(IllegalTransition):
        finish.write(Job.objects.filter(pk=result.id), JobStatus.SUCCESSFUL, JobStatus.READY, "retry")
    with pytest.raises(IllegalTransition):
        finish.write(Job.objects.filter(pk=result.id), JobStatus.SUCCESSFUL, None, "x", status=JobStatus.READY)
    assert row(result.id).status == "SUCCESSFUL"
