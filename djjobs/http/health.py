"""Health: what the health endpoint and the metrics report, read cheaply from any size of table.

No query counts a whole table; everything READY is read through the partial claim index
(priority desc, run_after, id WHERE status = 'READY'). The priorities with READY jobs are found
by a loose index scan (one probe each), and per priority the earliest run_after is the first
entry: so the oldest due job is exact. Due jobs are counted as a claim would read them: the
first ``HEALTH_COUNT_LIMIT`` due jobs in claim order, grouped by queue (a bounded count: exact
below the limit, "at least the limit" at it). FAILED jobs of the last hour are counted the same
bounded way on the (status, finished_at) index.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connections, router
from django.db.models import Max
from django.utils import timezone

from .. import conf


@dataclass
class Snapshot:
    at: datetime
    workers_alive: int
    last_heartbeat_at: datetime | None
    failed_last_hour: int
    count_limit: int
    oldest_due_at: datetime | None = None  # run_after of the due READY job that has waited longest
    queues: dict[str, int] = field(default_factory=dict)  # due READY jobs per queue, bounded

    @property
    def due(self) -> int:
        return sum(self.queues.values())


def snapshot(now: datetime | None = None) -> Snapshot:
    """Read the numbers: five queries, each an index probe or a bounded scan."""
    from ..models import Job, Worker

    now = now or timezone.now()
    limit = int(conf.get("HEALTH_COUNT_LIMIT"))
    last = Worker.objects.filter(stopped_at__isnull=True).aggregate(last=Max("last_heartbeat_at"))["last"]
    failed = (Job.objects.filter(status="FAILED", finished_at__gte=now - timedelta(hours=1))
              .order_by().values("pk")[:limit].count())
    connection = connections[router.db_for_read(Job)]
    table = connection.ops.quote_name(Job._meta.db_table)
    queues = dict.fromkeys(sorted(configured_queues()), 0)
    queues.update(_due_by_queue(connection, table, now, limit))
    return Snapshot(at=now, workers_alive=Worker.objects.alive(now).count(), last_heartbeat_at=last,
                    failed_last_hour=failed, count_limit=limit, oldest_due_at=_oldest_due(connection, table, now),
                    queues=queues)


def problems(snap: Snapshot, max_due_age: float) -> list[str]:
    """Why the system is unhealthy (empty: healthy). Pure."""
    found = []
    if snap.workers_alive == 0:
        found.append("no worker has sent a heartbeat recently")
    oldest = snap.oldest_due_at
    if oldest is not None and (snap.at - oldest).total_seconds() > max_due_age:
        found.append(f"the oldest due job has waited {(snap.at - oldest).total_seconds():.0f}s "
                     f"(more than {max_due_age:g}s)")
    return found


def report(now: datetime | None = None) -> tuple[dict, bool]:
    """The health endpoint's JSON and whether it is healthy."""
    snap = snapshot(now)
    max_due_age = float(conf.get("HEALTH_MAX_DUE_AGE"))
    found = problems(snap, max_due_age)
    oldest = snap.oldest_due_at
    return {
        "status": "fail" if found else "ok",
        "problems": found,
        "checked_at": snap.at.isoformat(),
        "workers": {
            "alive": snap.workers_alive,
            "last_heartbeat_age_seconds": _age(snap.at, snap.last_heartbeat_at),
        },
        "oldest_due_age_seconds": _age(snap.at, oldest),
        "due": snap.due,
        "failed_last_hour": snap.failed_last_hour,
        "queues": {name: {"due": due} for name, due in snap.queues.items()},
        "count_limit": snap.count_limit,
        "thresholds": {"max_due_age_seconds": max_due_age,
                       "worker_heartbeat_seconds": 3 * float(conf.get("HEARTBEAT_INTERVAL"))},
    }, not found


def configured_queues() -> set[str]:
    """The QUEUES of every djjobs backend (a backend allowing any queue adds none)."""
    from ..backend import JobsBackend
    from ..compat import task_backends

    names = set()
    for backend in task_backends.all():
        if isinstance(backend, JobsBackend):
            names.update(backend.queues or ())
    return names


def _age(now, then) -> float | None:
    return None if then is None else round(max(0.0, (now - then).total_seconds()), 3)


# The literal status = 'READY' (not a parameter) lets SQLite use the partial claim index too.

_PRIORITIES = """
WITH RECURSIVE p(v) AS (
    SELECT MAX(priority) FROM {table} WHERE status = 'READY'
    UNION ALL
    SELECT (SELECT MAX(priority) FROM {table} WHERE status = 'READY' AND priority < p.v)
    FROM p WHERE p.v IS NOT NULL
)
SELECT v, (SELECT MIN(run_after) FROM {table} WHERE status = 'READY' AND priority = p.v)
FROM p WHERE v IS NOT NULL
"""

_DUE_BY_QUEUE = """
SELECT queue_name, COUNT(*) FROM (
    SELECT queue_name FROM {table} WHERE status = 'READY' AND run_after <= %s
    ORDER BY priority DESC, run_after, id LIMIT %s
) AS next_due GROUP BY queue_name
"""


def _oldest_due(connection, table, now) -> datetime | None:
    """The earliest run_after that is due: per priority the first index entry, one probe each."""
    with connection.cursor() as cursor:
        cursor.execute(_PRIORITIES.format(table=table))
        firsts = [_datetime(connection, first) for _, first in cursor.fetchall()]
    return min((first for first in firsts if first is not None and first <= now), default=None)


def _due_by_queue(connection, table, now, limit) -> dict[str, int]:
    """Due jobs per queue among the first ``limit`` in claim order: what a claim would read."""
    with connection.cursor() as cursor:
        cursor.execute(_DUE_BY_QUEUE.format(table=table), [connection.ops.adapt_datetimefield_value(now), limit])
        return dict(cursor.fetchall())


def _datetime(connection, value):
    if value is None or isinstance(value, datetime):
        return value
    return connection.ops.convert_datetimefield_value(value, None, connection)
