"""The read model of counts: what the health endpoint, the Prometheus metrics and the admin
dashboard know about the job table, read the same way for all three, from any size of table.

No query counts a whole table. Everything READY is read through the partial claim index
(priority desc, run_after, id WHERE status = READY): the priorities with READY jobs are found by a
loose index scan (one probe each), and per priority the first entry is the job a claim would take
next, so "the oldest due job" is exact. Every other number is a *bounded* count: the rows of one
status read through an index up to a limit, exact below it and "at least the limit" at it (the
callers pass their limit: ``HEALTH_COUNT_LIMIT`` for health and metrics, the dashboard's
``COUNT_LIMIT + 1``). "Failed in the last hour" is one statement text for all three.

The statements are djjobs.db.statements'; this module runs them and converts what SQLite returns
as text.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import overload

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper

from ..models.job import Job
from . import statements

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class ReadyHead:
    """The first READY job of one priority in claim order."""

    priority: int
    id: uuid.UUID
    run_after: datetime


def _connection() -> BaseDatabaseWrapper:
    return connections[router.db_for_read(Job)]


def ready_heads() -> list[ReadyHead]:
    """Per priority with READY jobs, highest first, its first job in claim order (one probe each)."""
    connection = _connection()
    with connection.cursor() as cursor:
        cursor.execute(statements.of(connection).READY_HEADS)
        rows = cursor.fetchall()
    return [
        ReadyHead(
            priority, id_ if isinstance(id_, uuid.UUID) else uuid.UUID(str(id_)), _datetime(connection, run_after)
        )
        for priority, id_, run_after in rows
        if id_ is not None
    ]


def oldest_due_at(now: datetime, heads: list[ReadyHead] | None = None) -> datetime | None:
    """The run_after of the due READY job that has waited longest (None: nothing is due)."""
    heads = ready_heads() if heads is None else heads
    return min((h.run_after for h in heads if h.run_after <= now), default=None)


def due_by_queue(now: datetime, limit: int) -> dict[str, int]:
    """Due READY jobs per queue among the first ``limit`` in claim order: what a claim would read."""
    connection = _connection()
    with connection.cursor() as cursor:
        cursor.execute(statements.of(connection).DUE_BY_QUEUE, [connection.ops.adapt_datetimefield_value(now), limit])
        return dict(cursor.fetchall())


def failed_since(since: datetime, limit: int) -> int:
    """FAILED jobs that finished at or after ``since``, counted up to ``limit``."""
    connection = _connection()
    with connection.cursor() as cursor:
        cursor.execute(statements.of(connection).FAILED_SINCE, [connection.ops.adapt_datetimefield_value(since), limit])
        return int(cursor.fetchone()[0])


def failed_last_hour(now: datetime, limit: int) -> int:
    """FAILED jobs of the last hour, counted up to ``limit``."""
    return failed_since(now - HOUR, limit)


def bounded_counts(now: datetime, limit: int) -> dict[tuple[str, str | None, int], int]:
    """{(part, queue or None, due 0/1): rows}, each part counted up to ``limit`` rows, in one
    statement. Parts: each status (READY, RUNNING, WAITING per queue, READY split into due
    now (1) and later (0); the others in total, queue None), and SUCCESSFUL_HOUR / FAILED_HOUR
    per queue (jobs that ended so in the last hour)."""
    connection = _connection()
    adapt = connection.ops.adapt_datetimefield_value
    hour_ago = adapt(now - HOUR)
    params = [adapt(now), limit, adapt(now), limit, limit, limit, limit, limit, hour_ago, limit, hour_ago, limit]
    with connection.cursor() as cursor:
        cursor.execute(statements.of(connection).BOUNDED_COUNTS, params)
        return {(part, queue, int(due)): n for part, queue, due, n in cursor.fetchall() if n}


def top_failing(since: datetime, limit: int, top: int) -> list[tuple[str, int, datetime]]:
    """(task path, failures, latest failure) of the ``top`` tasks with most FAILED jobs among the
    last ``limit`` failures since ``since``, most first."""
    connection = _connection()
    with connection.cursor() as cursor:
        cursor.execute(
            statements.of(connection).TOP_FAILING, [connection.ops.adapt_datetimefield_value(since), limit, top]
        )
        return [(path, n, _datetime(connection, last)) for path, n, last in cursor.fetchall()]


@overload
def _datetime(connection: BaseDatabaseWrapper, value: None) -> None: ...


@overload
def _datetime(connection: BaseDatabaseWrapper, value: datetime | str) -> datetime: ...


def _datetime(connection: BaseDatabaseWrapper, value: datetime | str | None) -> datetime | None:
    """A datetime read by raw SQL (SQLite returns text, MariaDB/MySQL a naive UTC datetime)."""
    if value is None or (isinstance(value, datetime) and value.tzinfo is not None):
        return value
    # SQLite's operations have it (PostgreSQL, which has not, returns datetimes).
    return connection.ops.convert_datetimefield_value(value, None, connection)  # type: ignore[attr-defined]
