"""Health: what the health endpoint and the metrics report, read cheaply from any size of table.

No query counts a whole table. Queues with READY jobs are found by a loose index scan of the
claim index (one index probe per queue); per queue, its priorities the same way, then per
priority the earliest run_after (one probe) and the due jobs counted with a LIMIT
(``HEALTH_COUNT_LIMIT``): a depth equal to the limit means "at least that many". FAILED jobs of
the last hour are counted the same bounded way on the (status, finished_at) index.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connections, router
from django.db.models import Max
from django.utils import timezone

from . import conf

# At most this many queues are reported (a guard against a runaway number of queue names).
MAX_QUEUES = 100


@dataclass
class QueueDepth:
    due: int = 0  # due READY jobs, counted up to the limit
    oldest_due_at: datetime | None = None  # run_after of the job that has waited longest


@dataclass
class Snapshot:
    at: datetime
    workers_alive: int
    last_heartbeat_at: datetime | None
    failed_last_hour: int
    count_limit: int
    queues: dict[str, QueueDepth] = field(default_factory=dict)

    @property
    def oldest_due_at(self) -> datetime | None:
        return min((q.oldest_due_at for q in self.queues.values() if q.oldest_due_at), default=None)


def snapshot(now: datetime | None = None) -> Snapshot:
    """Read the numbers (a handful of index probes; see the module docstring)."""
    from .models import Job, Worker

    now = now or timezone.now()
    limit = int(conf.get("HEALTH_COUNT_LIMIT"))
    last = Worker.objects.filter(stopped_at__isnull=True).aggregate(last=Max("last_heartbeat_at"))["last"]
    failed = (Job.objects.filter(status="FAILED", finished_at__gte=now - timedelta(hours=1))
              .order_by().values("pk")[:limit].count())
    result = Snapshot(at=now, workers_alive=Worker.objects.alive(now).count(), last_heartbeat_at=last,
                      failed_last_hour=failed, count_limit=limit)
    connection = connections[router.db_for_read(Job)]
    for queue in sorted(configured_queues() | _ready_queues(connection, Job._meta.db_table))[:MAX_QUEUES]:
        result.queues[queue] = _depth(connection, Job._meta.db_table, queue, now, limit)
    return result


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
        "failed_last_hour": snap.failed_last_hour,
        "queues": {name: {"due": q.due, "oldest_due_age_seconds": _age(snap.at, q.oldest_due_at)}
                   for name, q in snap.queues.items()},
        "count_limit": snap.count_limit,
        "thresholds": {"max_due_age_seconds": max_due_age,
                       "worker_heartbeat_seconds": 3 * float(conf.get("HEARTBEAT_INTERVAL"))},
    }, not found


def configured_queues() -> set[str]:
    """The QUEUES of every djjobs backend (a backend allowing any queue adds none)."""
    from .backend import JobsBackend
    from .compat import task_backends

    names = set()
    for backend in task_backends.all():
        if isinstance(backend, JobsBackend):
            names.update(backend.queues or ())
    return names


def _age(now, then) -> float | None:
    return None if then is None else round(max(0.0, (now - then).total_seconds()), 3)


# The literal status = 'READY' (not a parameter) lets SQLite use the partial claim index too.

_READY_QUEUES = """
WITH RECURSIVE q(name) AS (
    SELECT MIN(queue_name) FROM {table} WHERE status = 'READY'
    UNION ALL
    SELECT (SELECT MIN(queue_name) FROM {table} WHERE status = 'READY' AND queue_name > q.name)
    FROM q WHERE q.name IS NOT NULL
)
SELECT name FROM q WHERE name IS NOT NULL LIMIT {limit}
"""

_PRIORITIES = """
WITH RECURSIVE p(v) AS (
    SELECT MAX(priority) FROM {table} WHERE status = 'READY' AND queue_name = %s
    UNION ALL
    SELECT (SELECT MAX(priority) FROM {table} WHERE status = 'READY' AND queue_name = %s AND priority < p.v)
    FROM p WHERE p.v IS NOT NULL
)
SELECT v,
    (SELECT MIN(run_after) FROM {table} WHERE status = 'READY' AND queue_name = %s AND priority = p.v)
FROM p WHERE v IS NOT NULL
"""

_DUE = """
SELECT COUNT(*) FROM (
    SELECT 1 FROM {table} WHERE status = 'READY' AND queue_name = %s AND priority = %s AND run_after <= %s LIMIT %s
) AS due
"""


def _ready_queues(connection, table) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(_READY_QUEUES.format(table=connection.ops.quote_name(table), limit=MAX_QUEUES))
        return {row[0] for row in cursor.fetchall()}


def _depth(connection, table, queue, now, limit) -> QueueDepth:
    """One queue: its priorities by a loose index scan, then per due priority a bounded count."""
    table = connection.ops.quote_name(table)
    depth = QueueDepth()
    with connection.cursor() as cursor:
        cursor.execute(_PRIORITIES.format(table=table), [queue, queue, queue])
        firsts = [(priority, _datetime(connection, first)) for priority, first in cursor.fetchall()]
        for priority, first in firsts:
            if first is None or first > now:
                continue  # nothing of this priority is due yet
            depth.oldest_due_at = min(first, depth.oldest_due_at or first)
            if depth.due >= limit:
                continue
            cursor.execute(_DUE.format(table=table),
                           [queue, priority, connection.ops.adapt_datetimefield_value(now), limit - depth.due])
            depth.due += cursor.fetchone()[0]
    return depth


def _datetime(connection, value):
    if value is None or isinstance(value, datetime):
        return value
    return connection.ops.convert_datetimefield_value(value, None, connection)
