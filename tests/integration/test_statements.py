"""The named statements of djjobs.db.statements on PostgreSQL: the claim and the read model's
READY scans still read the partial claim index (status written as a literal, table from _meta)."""

import json
import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from djjobs.db import statements
from djjobs.models import Job
from tests.testapp import tasks

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db]


def _plan(sql, params) -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        # A test table is tiny: forbid the sequential scan so the plan shows which index the
        # statement *can* use (a predicate that did not match the partial index would show another).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        return json.dumps(cursor.fetchone()[0])


def _a_busy_table():
    """Statistics of a table with a backlog: 2,000 READY jobs (more than any statement's LIMIT)
    beside finished ones. With a few rows the planner is indifferent between reading the claim
    index in order and sorting what another index finds, and picks either."""
    results = tasks.add.enqueue_many([(1, 2)] * 3000)
    finished = [r.id for r in results[:1000]]
    Job.objects.filter(pk__in=finished).update(status="SUCCESSFUL", finished_at=timezone.now())
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE djjobs_job")


@pytest.mark.parametrize("queues", [False, True])
@pytest.mark.parametrize("direct", [False, True])
def test_the_claim_reads_the_claim_index(queues, direct):
    _a_busy_table()
    now = timezone.now()
    params = {
        "queues": ["default"],
        "limit": 10,
        "worker": "w",
        "worker_json": '["w"]',
        "token": uuid.uuid4(),
        "now": now,
        "expires": now + timedelta(seconds=60),
        "direct": 2,
    }
    assert "djjobs_job_claim_idx" in _plan(statements.of(connection).claim_pg(queues, direct), params)


def test_the_read_models_ready_scans_read_the_claim_index():
    _a_busy_table()
    sql = statements.of(connection)
    assert "djjobs_job_claim_idx" in _plan(sql.READY_HEADS, [])
    assert "djjobs_job_claim_idx" in _plan(sql.DUE_BY_QUEUE, [timezone.now(), 100])
