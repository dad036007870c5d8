"""Enqueueing through Django's standard Tasks API, and the TaskResult it gives back."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from djjobs.backend import JobsBackend
from djjobs.compat import TaskResultStatus, task_enqueued
from djjobs.models import Job
from djjobs.tasks import JobTask
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def test_enqueue_stores_a_ready_job_and_returns_a_standard_result():
    result = tasks.add.enqueue(1, b=2)
    job = Job.objects.get()
    assert result.id == str(job.id)
    assert result.status == TaskResultStatus.READY
    assert (job.task_path, job.args, job.kwargs) == ("tests.testapp.tasks.add", [1], {"b": 2})
    assert job.status == "READY" and job.queue_name == "default" and job.priority == 0
    assert job.run_after <= timezone.now()
    assert result.args == [1] and result.kwargs == {"b": 2}


def test_decorator_options_are_stored_on_the_job():
    tasks.send_receipt.enqueue(42)
    job = Job.objects.get()
    assert (job.queue_name, job.priority, job.max_attempts, job.retry_backoff, job.timeout) == (
        "emails",
        10,
        5,
        2.0,
        30.0,
    )


def test_using_accepts_timedelta_and_datetime_run_after():
    before = timezone.now()
    tasks.send_receipt.using(run_after=timedelta(minutes=5)).enqueue(43)
    at = datetime(2030, 1, 1, tzinfo=UTC)
    tasks.send_receipt.using(run_after=at).enqueue(44)
    first, second = Job.objects.order_by("run_after")
    assert before + timedelta(minutes=5) <= first.run_after <= timezone.now() + timedelta(minutes=5)
    assert second.run_after == at


def test_using_overrides_priority_queue_and_unique_key():
    result = tasks.send_receipt.using(priority=50, queue_name="urgent", unique_key="receipt-44").enqueue(44)
    job = Job.objects.get(pk=result.id)
    assert (job.priority, job.queue_name, job.unique_key) == (50, "urgent", "receipt-44")
    assert result.task.priority == 50 and result.task.queue_name == "urgent"


def test_get_result_reads_the_job():
    result = tasks.add.enqueue(2, 3)
    fetched = tasks.add.get_result(result.id)
    assert fetched.id == result.id and fetched.status == TaskResultStatus.READY
    assert fetched.task.func is tasks.add.func


def test_get_result_of_unknown_or_malformed_id_raises():
    from djjobs.compat import TaskResultDoesNotExist

    with pytest.raises(TaskResultDoesNotExist):
        tasks.add.get_result("01a200b6-0000-7000-8000-000000000000")
    with pytest.raises(TaskResultDoesNotExist):
        tasks.add.get_result("not-a-uuid")


def test_enqueue_many_inserts_every_job_in_one_query(django_assert_num_queries):
    with django_assert_num_queries(1):
        results = tasks.send_receipt.enqueue_many([(45,), (46,), {"order_id": 47}])
    assert [r.args for r in results] == [[45], [46], []]
    assert results[2].kwargs == {"order_id": 47}
    assert Job.objects.count() == 3
    assert set(Job.objects.values_list("queue_name", flat=True)) == {"emails"}


def test_enqueue_is_one_insert(django_assert_num_queries):
    with django_assert_num_queries(1):
        tasks.add.enqueue(1, 2)


def test_plain_django_task_uses_jobs_backend_and_settings_defaults():
    from djjobs.testing import run_jobs

    assert isinstance(tasks.plain_django, JobTask)
    with override_settings(DJJOBS={"MAX_ATTEMPTS": 7, "RETRY_BACKOFF": 3.5}):
        result = tasks.plain_django.enqueue(21)
    job = Job.objects.get()
    assert (job.max_attempts, job.retry_backoff, job.timeout) == (7, 3.5, None)
    run_jobs()
    assert tasks.plain_django.get_result(result.id).return_value == 42


def test_enqueue_in_a_rolled_back_transaction_leaves_no_job():
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with transaction.atomic():
            tasks.add.enqueue(1, 2)
            assert Job.objects.count() == 1
            raise Boom
    assert Job.objects.count() == 0


def test_task_enqueued_signal_is_sent():
    received = []

    def receiver(sender, task_result, **kwargs):
        received.append((sender, task_result.id))

    task_enqueued.connect(receiver)
    try:
        result = tasks.add.enqueue(1, 2)
        tasks.add.enqueue_many([(3, 4)])
    finally:
        task_enqueued.disconnect(receiver)
    assert received[0] == (JobsBackend, result.id)
    assert len(received) == 2


class TestUniqueKey:
    def test_second_enqueue_returns_the_active_job(self):
        first = tasks.add.using(unique_key="k").enqueue(1, 2)
        second = tasks.add.using(unique_key="k").enqueue(3, 4)
        assert first.id == second.id
        assert Job.objects.count() == 1
        assert second.args == [1, 2]

    def test_key_is_free_again_once_the_job_finished(self):
        from djjobs.testing import run_jobs

        first = tasks.add.using(unique_key="k").enqueue(1, 2)
        assert run_jobs() == 1
        second = tasks.add.using(unique_key="k").enqueue(1, 2)
        assert first.id != second.id
        assert Job.objects.count() == 2

    def test_enqueue_many_refuses_unique_keys(self):
        from djjobs.compat import InvalidTask

        with pytest.raises(InvalidTask, match="unique_key"):
            tasks.add.using(unique_key="k").enqueue_many([(1, 2)])
        assert Job.objects.count() == 0


def test_enqueue_many_round_trips_awkward_text():
    awkward = 'tab\there, back\\slash, new\nline, "quotes", é, 😀, \\N'
    results = tasks.add.enqueue_many([(awkward, {"k": [awkward, None, 1.5, True]})])
    job = Job.objects.get(pk=results[0].id)
    assert job.args == [awkward, {"k": [awkward, None, 1.5, True]}]
    assert results[0].args == job.args


@pytest.mark.django_db
def test_jobs_inserted_inside_a_stamp_record_their_cause():
    """enqueue() and enqueue_many() write the stamp's fields in their INSERT; other tasks are untouched."""
    from djjobs.provenance import stamping

    with stamping(tasks.add.module_path, trigger="order.created"):
        many = tasks.add.enqueue_many([(i, i) for i in range(25)])  # COPY on PostgreSQL
        one = tasks.add.enqueue(5, 6)
        other = tasks.record.enqueue()
    stamped = Job.objects.filter(pk__in=[r.id for r in [*many, one]])
    assert list(stamped.values_list("trigger", flat=True)) == ["order.created"] * 26
    assert Job.objects.get(pk=other.id).trigger is None


@pytest.mark.postgresql
def test_hot_statements_use_the_kept_cursor_unless_someone_watches(settings):
    settings.DJJOBS = {**settings.DJJOBS, "FAST_PATHS": True}  # a test of the speed-up itself
    """djjobs.db.bound: a single enqueue and a batched completion go through one kept cursor per
    connection; an execute_wrapper (an APM, the debug toolbar) sees them through Django's."""
    from django.db import connection

    from djjobs.db import fast
    from djjobs.lifecycle.finish import complete_successes
    from djjobs.worker.claim import claim
    from djjobs.worker.executor import Outcome

    tasks.add.enqueue(1, 2)
    kept = fast._cursors.get(connection.connection)
    assert kept is not None and not kept.closed
    tasks.add.enqueue(3, 4)
    assert fast._cursors.get(connection.connection) is kept  # the same cursor, not a new one

    seen = []

    def watcher(execute, sql, params, many, context):
        seen.append(sql.split()[0])
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watcher):
        tasks.add.enqueue(5, 6)
        jobs = claim("w", None, 3, 30)
        done = complete_successes([(job, Outcome(return_value=7, return_json="7")) for job in jobs], "w")
    assert seen.count("INSERT") == 1 and seen.count("UPDATE") == 1  # the enqueue and the completion
    assert done == {job.key for job in jobs}
    assert sorted(Job.objects.values_list("args", flat=True)) == [[1, 2], [3, 4], [5, 6]]
    assert set(Job.objects.values_list("status", "return_value")) == {("SUCCESSFUL", 7)}


@pytest.mark.postgresql
def test_a_database_error_on_the_kept_cursor_is_djangos_and_the_transaction_recovers(settings):
    settings.DJJOBS = {**settings.DJJOBS, "FAST_PATHS": True}  # a test of the speed-up itself
    from django.db import IntegrityError, connection

    from djjobs.db import fast

    tasks.add.enqueue(1, 2)
    job_id = Job.objects.get().id
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            fast.execute(connection, "INSERT INTO djjobs_job (id) SELECT id FROM djjobs_job WHERE id = %s", [job_id])
    tasks.add.enqueue(3, 4)  # the connection is usable again
    assert Job.objects.count() == 2


def test_jobs_of_different_options_in_turn_each_store_their_own():
    """The INSERT adapts a task's constant values once per distinct set (db/bulk.py): jobs
    enqueued in turn with different options must not share them."""
    variants = [
        tasks.add.using(priority=5, queue_name="default"),
        tasks.add.using(priority=6),
        tasks.add.using(priority=5, queue_name="emails"),
        tasks.send_receipt,
        tasks.add.using(max_attempts=2, timeout=1.5),
        tasks.add.using(max_attempts=2, timeout=2),
    ]
    ids = [variant.enqueue(1, 2).id for _round in range(2) for variant in variants]
    stored = {
        str(j.id): (j.task_path.rsplit(".", 1)[1], j.priority, j.queue_name, j.max_attempts, j.timeout)
        for j in Job.objects.all()
    }
    expected = [
        ("add", 5, "default", 3, None),
        ("add", 6, "default", 3, None),
        ("add", 5, "emails", 3, None),
        ("send_receipt", 10, "emails", 5, 30.0),
        ("add", 0, "default", 2, 1.5),
        ("add", 0, "default", 2, 2.0),
    ]
    assert [stored[i] for i in ids] == expected * 2
