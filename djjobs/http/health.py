"""Health: what the health endpoint and the metrics report, read cheaply from any size of table.

The numbers come from the read model of counts (djjobs.db.counts, shared with the dashboard):
the oldest due job exact from the claim index's first entry per priority; due jobs counted as a
claim would read them, the first ``HEALTH_COUNT_LIMIT`` in claim order grouped by queue (a bounded
count: exact below the limit, "at least the limit" at it); FAILED jobs of the last hour counted the
same bounded way on the (status, finished_at) index.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Max
from django.utils import timezone

from .. import conf
from ..backend import JobsBackend
from ..compat import task_backends
from ..db import counts
from ..models import Worker


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
    now = now or timezone.now()
    limit = int(conf.get("HEALTH_COUNT_LIMIT"))
    last = Worker.objects.filter(stopped_at__isnull=True).aggregate(last=Max("last_heartbeat_at"))["last"]
    failed = counts.failed_last_hour(now, limit)
    queues = dict.fromkeys(sorted(configured_queues()), 0)
    queues.update(counts.due_by_queue(now, limit))
    return Snapshot(
        at=now,
        workers_alive=Worker.objects.alive(now).count(),
        last_heartbeat_at=last,
        failed_last_hour=failed,
        count_limit=limit,
        oldest_due_at=counts.oldest_due_at(now),
        queues=queues,
    )


def problems(snap: Snapshot, max_due_age: float) -> list[str]:
    """Why the system is unhealthy (empty: healthy). Pure."""
    found = []
    if snap.workers_alive == 0:
        found.append("no worker has sent a heartbeat recently")
    oldest = snap.oldest_due_at
    if oldest is not None and (snap.at - oldest).total_seconds() > max_due_age:
        found.append(
            f"the oldest due job has waited {(snap.at - oldest).total_seconds():.0f}s (more than {max_due_age:g}s)"
        )
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
        "thresholds": {
            "max_due_age_seconds": max_due_age,
            "worker_heartbeat_seconds": 3 * float(conf.get("HEARTBEAT_INTERVAL")),
        },
    }, not found


def configured_queues() -> set[str]:
    """The QUEUES of every djjobs backend (a backend allowing any queue adds none)."""
    names: set[str] = set()
    for backend in task_backends.all():
        if isinstance(backend, JobsBackend):
            names.update(backend.queues or ())
    return names


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else round(max(0.0, (now - then).total_seconds()), 3)
