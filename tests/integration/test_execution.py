"""Claim, execute, complete: retries, dead letter, results and signals, in the test's transaction."""

import uuid
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from djjobs.compat import TaskResultStatus, task_finished, task_started
from djjobs.lifecycle.finish import complete
from djjobs.models import Job
from djjobs.testing import TEST_WORKER_ID, assert_enqueued, assert_not_enqueued, run_jobs
from djjobs.worker.claim import claim
from djjobs.worker.executor import Outcome
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def test_successful_job_stores_its_return_value():
    result = tasks.add.enqueue(2, 3)
    assert run_jobs() == 1
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 5
    assert result.attempts == 1 and result.worker_ids == [TEST_WORKER_ID]
    assert result.started_at and result.finished_at and result.last_attempted_at
    job = Job.objects.get()
    assert job.status == "SUCCESSFUL" and job.lease_token is None


def test_flaky_job_succeeds_on_its_third_attempt_with_two_errors_kept():
    result = tasks.flaky.enqueue(succeed_on=3)
    assert run_jobs() == 3
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 3
    assert [e.exception_class_path for e in result.errors] == ["builtins.ConnectionError"] * 2
    job = Job.objects.get()
    assert [e["attempt"] for e in job.errors] == [1, 2]
    assert "flaky failure on attempt 2" in job.errors[1]["message"]
    assert "Traceback" in job.errors[0]["traceback"]


def test_poison_job_is_dead_lettered_after_max_attempts_with_every_error():
    result = tasks.always_fails.enqueue()
    neighbour = tasks.add.enqueue(1, 1)
    assert run_jobs() == 6
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    job = Job.objects.get(pk=result.id)
    assert (job.status, job.attempts, len(job.errors)) == ("FAILED", 5, 5)
    assert job.finished_at is not None
    with pytest.raises(ValueError, match="failed"):
        result.return_value  # noqa: B018 - the property raises
    assert tasks.add.get_result(neighbour.id).return_value == 2


def test_backoff_delays_the_next_attempt():
    with override_settings(DJJOBS={"RETRY_BACKOFF": 60.0}):
        tasks.always_fails.enqueue()
        before = timezone.now()
        assert run_jobs() == 1  # the retry is not due yet
    job = Job.objects.get()
    assert job.status == "READY" and job.attempts == 1
    assert before + timedelta(seconds=30) <= job.run_after <= timezone.now() + timedelta(seconds=60)


def test_discard_fails_at_once():
    tasks.discards.enqueue()
    assert run_jobs() == 1
    job = Job.objects.get()
    assert (job.status, job.attempts) == ("FAILED", 1)
    assert job.errors[0]["exception_class_path"] == "djjobs.exceptions.Discard"


def test_retry_exception_asks_for_another_attempt():
    result = tasks.asks_retry.enqueue()
    assert run_jobs() == 2
    result.refresh()
    assert result.return_value == "retried" and result.attempts == 2
    assert result.errors[0].exception_class_path == "djjobs.exceptions.Retry"


@pytest.mark.parametrize("task_name", ["returns_nan", "returns_object"])
def test_return_value_that_is_not_json_fails_the_job_without_retry(task_name):
    getattr(tasks, task_name).enqueue()
    assert run_jobs() == 1
    job = Job.objects.get()
    assert (job.status, job.return_value) == ("FAILED", None)
    assert job.errors[0]["exception_class_path"] == "djjobs.exceptions.InvalidReturnValue"
    assert "JSON-serialisable" in job.errors[0]["message"]


def test_missing_task_fails_that_job_and_the_worker_goes_on():
    Job.objects.create(task_path="tests.testapp.tasks.removed_in_last_deploy", max_attempts=1)
    Job.objects.create(task_path="tests.testapp.tasks.not_a_task", max_attempts=1)
    good = tasks.add.enqueue(1, 2)
    assert run_jobs() == 3
    missing, not_task = Job.objects.exclude(pk=good.id).order_by("enqueued_at")
    assert missing.status == "FAILED" and "cannot be imported" in missing.errors[0]["message"]
    assert missing.errors[0]["exception_class_path"] == "djjobs.exceptions.TaskNotFound"
    assert "is not a task" in not_task.errors[0]["message"]
    assert tasks.add.get_result(good.id).return_value == 3


def test_async_task_runs():
    result = tasks.async_add.enqueue(3, 4)
    run_jobs()
    assert tasks.async_add.get_result(result.id).return_value == 7


def test_context_progress_is_recorded():
    result = tasks.with_progress.enqueue(steps=4)
    run_jobs()
    job = Job.objects.get(pk=result.id)
    assert (job.progress, job.progress_message, job.return_value) == (100.0, "step 4 of 4", 1)


def test_claim_order_is_priority_then_run_after():
    now = timezone.now()
    low = tasks.add.using(priority=-5).enqueue(1, 1)
    high = tasks.add.using(priority=50).enqueue(1, 1)
    old = tasks.add.using(run_after=now - timedelta(minutes=5)).enqueue(1, 1)
    new = tasks.add.using(run_after=now - timedelta(minutes=1)).enqueue(1, 1)
    tasks.add.using(run_after=now + timedelta(minutes=1)).enqueue(1, 1)  # not due
    claimed = claim("w", None, 10, 30)
    assert [str(j.id) for j in claimed] == [high.id, old.id, new.id, low.id]


def test_claim_honours_queues_and_limit():
    tasks.add.enqueue(1, 1)
    tasks.send_receipt.enqueue(1)
    tasks.send_receipt.enqueue(2)
    claimed = claim("w", ["emails"], 1, 30)
    assert len(claimed) == 1 and claimed[0].queue_name == "emails"
    assert Job.objects.filter(status="RUNNING").count() == 1
    assert run_jobs(queues=["emails"]) == 1
    assert_enqueued(tasks.add, args=[1, 1], count=1)


def test_claim_sets_lease_and_counts_the_attempt():
    tasks.add.enqueue(1, 1)
    (job,) = claim("worker-1", None, 5, 30)
    row = Job.objects.get()
    assert (row.status, row.attempts, row.worker_id, row.worker_ids) == ("RUNNING", 1, "worker-1", ["worker-1"])
    assert row.lease_token == job.lease_token
    assert timezone.now() + timedelta(seconds=25) < row.lease_expires_at <= timezone.now() + timedelta(seconds=31)
    assert claim("worker-2", None, 5, 30) == []


def test_late_completion_is_dropped():
    tasks.add.enqueue(1, 1)
    (job,) = claim("worker-1", None, 1, 30)
    Job.objects.filter(pk=job.id).update(lease_token=uuid.uuid4())  # rescued and re-claimed meanwhile
    assert complete(job, Outcome(return_value=2), "worker-1") is False
    assert Job.objects.get().status == "RUNNING"


@pytest.mark.postgresql
def test_claim_and_complete_are_one_query_each(django_assert_num_queries):
    # The worker's look at paused and limited queues (djjobs.queues.look) is read once a
    # second, not per claim: read it first, as a running worker would have.
    from django.db import router

    from djjobs.queues import look

    look(router.db_for_write(Job))
    tasks.add.enqueue(1, 1)
    with django_assert_num_queries(1):
        (job,) = claim("w", None, 10, 30)
    with django_assert_num_queries(1):
        assert complete(job, Outcome(return_value=2), "w")


def test_started_and_finished_signals_are_sent():
    seen = []

    def on_started(sender, task_result, **kwargs):
        seen.append(("started", task_result.status))

    def on_finished(sender, task_result, **kwargs):
        seen.append(("finished", task_result.status))

    task_started.connect(on_started)
    task_finished.connect(on_finished)
    try:
        tasks.add.enqueue(1, 1)
        tasks.discards.enqueue()
        run_jobs()
    finally:
        task_started.disconnect(on_started)
        task_finished.disconnect(on_finished)
    assert seen == [
        ("started", TaskResultStatus.RUNNING),
        ("finished", TaskResultStatus.SUCCESSFUL),
        ("started", TaskResultStatus.RUNNING),
        ("finished", TaskResultStatus.FAILED),
    ]


def test_testing_helpers():
    tasks.add.enqueue(1, 2)
    assert_enqueued(tasks.add, args=[1, 2])
    assert_enqueued("tests.testapp.tasks.add", count=1)
    assert_not_enqueued(tasks.send_receipt)
    with pytest.raises(AssertionError, match="expected 2 job"):
        assert_enqueued(tasks.add, count=2)
