"""Acting on every matching job (djjobs.matching): batches, the single-job rules, one count per reason."""

import time

import pytest
from django.db import connection
from django.utils import timezone

from djjobs.matching import Skip, cancel_matching, delete_matching, retry_matching
from djjobs.models import Job
from djjobs.testing import run_jobs
from djjobs.worker.claim import claim
from tests.testapp import tasks
from tests.testapp.workflows import three

pytestmark = pytest.mark.django_db


def _statuses():
    return sorted(Job.objects.values_list("status", flat=True))


def test_retry_matching_retries_in_batches_and_says_why_each_other_job_was_skipped():
    failed = [tasks.always_fails.enqueue() for _ in range(3)]
    run_jobs()
    tasks.add.enqueue(1, 2)
    run_jobs()  # one SUCCESSFUL
    tasks.add.enqueue(3, 4)  # one READY
    cancelled = tasks.add.using(unique_key="k").enqueue(1, 2)
    Job.objects.filter(pk=cancelled.id).update(status="CANCELLED", finished_at=timezone.now())
    tasks.add.using(unique_key="k").enqueue(1, 2)  # now holds the key
    seen = []

    report = retry_matching(Job.objects.all(), batch=2, progress=lambda r: seen.append(r.matched))

    assert report.changed == 3
    assert report.skipped == {Skip.SUCCEEDED: 1, Skip.NOT_FINISHED: 2, Skip.UNIQUE_KEY_HELD: 1}
    assert report.matched == Job.objects.count() == 7
    assert seen == [2, 4, 6, 7] and report.batches == 4
    assert set(Job.objects.filter(pk__in=[r.id for r in failed]).values_list("status", flat=True)) == {"READY"}
    assert Job.objects.get(pk=cancelled.id).status == "CANCELLED"
    assert report.reasons()[0][2] == "not finished yet (READY, RUNNING or WAITING)"


def test_retry_matching_leaves_a_workflows_failed_step_and_says_what_to_do():
    three.start(fail_at="c")
    run_jobs()
    step = Job.objects.get(workflow_step="c", workflow_role="step")
    assert step.status == "FAILED"

    report = retry_matching(Job.objects.filter(status="FAILED"))

    step.refresh_from_db()
    assert step.status == "FAILED"
    # b's compensation failed once (wf_undo_once_broken): it is retried; the step is not.
    assert report.changed == 1
    assert report.skipped == {Skip.WORKFLOW_STEP: 1}
    assert "start the workflow again" in report.lines()[-1]


def test_retry_matching_queues_a_fifo_job_behind_the_one_holding_its_key():
    first = tasks.fifo_held.enqueue("acct", 1)
    run_jobs()
    assert Job.objects.get(pk=first.id).status == "FAILED"  # and it keeps its key (hold)
    Job.objects.filter(pk=first.id).update(status="CANCELLED")  # now the key is free...
    second = tasks.fifo_held.enqueue("acct", 2)  # ...and this one holds it

    report = retry_matching(Job.objects.filter(pk=first.id))

    assert report.changed == 1
    assert Job.objects.get(pk=first.id).status == "WAITING"
    assert Job.objects.get(pk=second.id).status == "READY"


def test_cancel_matching_cancels_waiting_work_and_asks_running_jobs_to_stop():
    for i in range(3):
        tasks.add.enqueue(i, i)
    (running, asked) = claim("w", None, 2, 30)
    Job.objects.filter(pk=asked.id).update(cancel_requested_at=timezone.now())
    tasks.add.enqueue(9, 9)
    run_jobs()  # the two READY ones end SUCCESSFUL
    ready = [tasks.add.enqueue(1, 1) for _ in range(2)]

    report = cancel_matching(Job.objects.all(), batch=3)

    assert (report.changed, report.requested) == (2, 1)
    assert report.skipped == {Skip.FINISHED: 2, Skip.ALREADY_ASKED: 1}
    assert {Job.objects.get(pk=r.id).status for r in ready} == {"CANCELLED"}
    job = Job.objects.get(pk=running.id)
    assert job.status == "RUNNING" and job.cancel_requested_at is not None
    assert report.as_dict()["skipped"] == {"finished": 2, "already_asked": 1}


def test_delete_matching_deletes_finished_jobs_only_and_keeps_a_running_runs_steps():
    tasks.add.enqueue(1, 2)
    tasks.always_fails.enqueue()
    run_jobs()
    three.start()
    run_jobs(max_jobs=1)  # step a done, its run under way
    tasks.add.enqueue(3, 4)  # READY

    report = delete_matching(Job.objects.all(), batch=2)

    assert report.changed == 2
    assert report.skipped == {Skip.NOT_FINISHED: 3, Skip.RUN_UNDER_WAY: 1}
    assert "cancel them first" in " ".join(report.lines())
    assert _statuses() == ["READY", "READY", "SUCCESSFUL", "WAITING"]


def test_nothing_matching_is_an_empty_report():
    report = retry_matching(Job.objects.none())
    assert (report.matched, report.changed, report.batches) == (0, 0, 0)
    with pytest.raises(ValueError, match="batch must be at least 1"):
        retry_matching(Job.objects.all(), batch=0)


def _clone(job_id, times: int) -> None:
    """The same row, ``times`` times over with new ids, written by PostgreSQL itself: the test
    is about the walk, not about enqueuing. (The ids are random, so the walk's order is not the
    enqueue order; any order will do.)"""
    columns = ", ".join(connection.ops.quote_name(f.column) for f in Job._meta.concrete_fields if f.column != "id")
    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            # 10^5 rows from five cross-joined digits (MySQL caps recursive CTEs at 1,000 levels).
            digits = "(SELECT 0 AS d UNION ALL " + " UNION ALL ".join(f"SELECT {d}" for d in range(1, 10)) + ")"
            joined = ", ".join(f"{digits} AS d{i}" for i in range(5))
            cursor.execute(
                f"INSERT INTO {Job._meta.db_table} (id, {columns}) "
                f"SELECT REPLACE(UUID(), '-', ''), {columns} FROM {Job._meta.db_table}, "
                f"(SELECT 1 FROM {joined} LIMIT %s) AS n WHERE id = %s",
                [times, str(job_id) if connection.features.has_native_uuid_field else job_id.hex],
            )
            return
        cursor.execute(
            f"INSERT INTO {Job._meta.db_table} (id, {columns}) "
            f"SELECT md5(random()::text || n::text)::uuid, {columns} "
            f"FROM {Job._meta.db_table}, generate_series(1, %s) AS n WHERE id = %s",
            [times, job_id],
        )


@pytest.mark.concurrent
def test_retry_matching_walks_100000_jobs_in_short_batches():
    template = tasks.always_fails.using(queue_name="default").enqueue()
    run_jobs()
    _clone(template.id, 99_999)
    assert Job.objects.filter(status="FAILED").count() == 100_000
    tasks.add.enqueue(1, 2)  # not matched by the filter
    batches = []
    started = time.monotonic()

    report = retry_matching(
        Job.objects.filter(status="FAILED", task_path=template.task.module_path),
        batch=5000,
        progress=lambda r: batches.append(r.changed),
    )

    assert report.changed == report.matched == 100_000 and not report.skipped
    assert report.batches == len(batches) == 20
    assert batches == sorted(batches) and batches[-1] == 100_000
    assert Job.objects.filter(status="READY").count() == 100_001
    assert time.monotonic() - started < 120
