"""MariaDB/MySQL's own ways to the guarantees PostgreSQL gets from partial indexes and RETURNING
(docs/explanation/databases.md): the generated key columns of migration 0010, the claim in
three statements, the batched completion in one."""

import uuid

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from djjobs.lifecycle.finish import complete_successes
from djjobs.models import Job
from djjobs.queues import look
from djjobs.worker.claim import claim
from djjobs.worker.executor import Outcome
from tests.testapp import tasks

pytestmark = [
    pytest.mark.skipif(connection.vendor != "mysql", reason="MariaDB/MySQL only"),
    pytest.mark.django_db,
]


def _generated(job_id) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT unique_active_key, fifo_active_key, debounce_ready_key FROM djjobs_job WHERE id = %s",
            [str(job_id) if connection.features.has_native_uuid_field else job_id.hex],
        )
        return cursor.fetchone()


def test_the_unique_key_is_held_while_active_and_freed_when_finished():
    first = Job.objects.create(task_path="x.y", unique_key="k", status="READY")
    assert _generated(first.id)[0] == "k"
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.create(task_path="x.y", unique_key="k", status="WAITING")
    Job.objects.filter(pk=first.pk).update(status="SUCCESSFUL")
    assert _generated(first.id)[0] is None
    Job.objects.create(task_path="x.y", unique_key="k", status="READY")  # the key is free again
    Job.objects.create(task_path="x.y", unique_key="k", status="CANCELLED")  # finished rows never hold it


def test_the_fifo_key_is_held_by_ready_running_and_a_holding_failure():
    held = Job.objects.create(task_path="x.y", fifo_key="f", status="FAILED", fifo_hold=True)
    assert _generated(held.id)[1] == "f"
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.create(task_path="x.y", fifo_key="f", status="READY")
    Job.objects.create(task_path="x.y", fifo_key="f", status="WAITING")  # waiting jobs queue behind it
    Job.objects.filter(pk=held.pk).update(fifo_hold=False)
    Job.objects.create(task_path="x.y", fifo_key="f", status="READY")


def test_the_debounce_key_is_held_until_the_job_starts():
    waiting = Job.objects.create(task_path="x.y", debounce_key="d", status="READY", attempts=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.create(task_path="x.y", debounce_key="d", status="READY", attempts=0)
    Job.objects.filter(pk=waiting.pk).update(status="RUNNING", attempts=1)
    assert _generated(waiting.id)[2] is None
    Job.objects.create(task_path="x.y", debounce_key="d", status="READY", attempts=0)


def _statements(captured) -> list[str]:
    """The statements run, without the test transaction's savepoints."""
    return [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]


def test_the_claim_is_three_statements_and_the_batched_completion_one():
    tasks.add.enqueue_many([(i, i) for i in range(5)])
    look(connection.alias)  # a running worker's look at the queues, read once a second, not per claim
    with CaptureQueriesContext(connection) as captured:
        jobs = claim("w", None, 5, 30)
    claim_sql = _statements(captured)
    assert len(claim_sql) == 3  # SELECT ... SKIP LOCKED, UPDATE by id, the rows read back
    assert "FOR UPDATE SKIP LOCKED" in claim_sql[0] and claim_sql[1].lstrip().startswith("UPDATE")
    assert len(jobs) == 5 and {j.worker_ids[-1] for j in jobs} == {"w"}
    with CaptureQueriesContext(connection) as captured:
        done = complete_successes([(j, Outcome(return_value=i, return_json=str(i))) for i, j in enumerate(jobs)], "w")
    assert len(_statements(captured)) == 1  # UPDATE ... JOIN (the batch)
    assert done == {j.key for j in jobs}
    assert sorted(Job.objects.values_list("return_value", flat=True)) == [0, 1, 2, 3, 4]


def test_a_batch_with_a_lost_lease_reads_back_what_it_wrote():
    tasks.add.enqueue_many([(1, 1), (2, 2)])
    jobs = claim("w", None, 2, 30)
    Job.objects.filter(pk=jobs[0].id).update(lease_token=uuid.uuid4())  # rescued and re-claimed
    with CaptureQueriesContext(connection) as captured:
        done = complete_successes([(j, Outcome(return_value=None, return_json="null")) for j in jobs], "w")
    assert len(_statements(captured)) == 2  # the UPDATE matched 1 of 2: which one, read back
    assert done == {jobs[1].key}
    assert Job.objects.get(pk=jobs[0].id).status == "RUNNING"


def test_enqueue_many_is_multi_row_inserts_of_at_most_500_rows():
    with CaptureQueriesContext(connection) as captured:
        results = tasks.add.enqueue_many([(i, i) for i in range(1_200)])
    inserts = [sql for sql in _statements(captured) if sql.startswith("INSERT")]
    assert len(inserts) == 3  # 500 + 500 + 200 rows, in one transaction
    assert len(results) == Job.objects.count() == 1_200
    assert sorted(Job.objects.values_list("args", flat=True))[:2] == [[0, 0], [1, 1]]


@pytest.mark.django_db(transaction=True)
def test_an_enqueue_in_its_own_transaction_is_tried_again_after_a_deadlock(monkeypatch):
    from django.db import OperationalError

    real_save, raised = Job.save, []

    def save(self, *args, **kwargs):
        if not raised:  # InnoDB chose this INSERT's transaction to end a deadlock
            raised.append(True)
            raise OperationalError(1213, "Deadlock found when trying to get lock; try restarting transaction")
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(Job, "save", save)
    result = tasks.fifo_record.enqueue("a", 1, ms=0)
    assert raised and Job.objects.get().id == uuid.UUID(str(result.id))
    # In the caller's transaction InnoDB rolled the whole transaction back: the caller retries it.
    raised.clear()
    with pytest.raises(OperationalError), transaction.atomic():
        tasks.fifo_record.enqueue("a", 2, ms=0)
