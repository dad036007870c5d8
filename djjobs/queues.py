"""Queues as things operators manage: pause, resume, limits, and what each queue holds.

A paused queue keeps accepting jobs; no worker claims from it until it is resumed. Limits are
cluster-wide: at most ``concurrency`` RUNNING jobs of the queue, at most ``rate_limit`` starts
in any window of its period. Workers read these rows at each claim (worker/gate.py): a change
takes effect within a second (the plain claim's look at which queues to skip), no restart.
Code, the ``queues`` command and the admin all come here.
"""

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import router, transaction
from django.db.models import Count, Min, Q
from django.utils import timezone

from . import conf, flow
from .compat import InvalidTask
from .models import Job, Queue
from .states import JobStatus

_UNSET = object()


def check_name(name: object) -> str:
    if not isinstance(name, str) or not name or len(name) > 64 or "\x00" in name:
        raise InvalidTask(f"A queue name is a non-empty string of at most 64 characters, got {name!r}.")
    return name


def pause_queue(name: str) -> bool:
    """Pause queue ``name`` (made if new): its jobs wait until resume_queue(). True if it was
    running before."""
    return _set_paused(check_name(name), True)


def resume_queue(name: str) -> bool:
    """Resume queue ``name``: workers claim from it again. True if it was paused."""
    return _set_paused(check_name(name), False)


def _set_paused(name: str, paused: bool) -> bool:
    with transaction.atomic(using=_db()):
        row, _created = Queue.objects.select_for_update().get_or_create(name=name)
        changed = row.paused != paused
        if changed:
            row.paused = paused
            row.save(update_fields=["paused", "updated_at"])
    _forget()
    return changed


def set_queue_limits(name: str, *, concurrency: Any = _UNSET, rate_limit: Any = _UNSET) -> Queue:
    """Set (a value) or clear (None) queue ``name``'s concurrency and rate limits; a limit not
    given is left as it is. A cleared limit falls back to DJJOBS["QUEUE_LIMITS"]. InvalidTask
    for a bad value, writing nothing. Returns the Queue row."""
    check_name(name)
    if concurrency is not _UNSET:
        flow.check_concurrency(concurrency)
    if rate_limit is not _UNSET:
        flow.check_rate(rate_limit)
    with transaction.atomic(using=_db()):
        row, _created = Queue.objects.select_for_update().get_or_create(name=name)
        if concurrency is not _UNSET:
            row.concurrency = concurrency
        if rate_limit is not _UNSET:
            row.rate_limit = (rate_limit or "").strip()
        row.save()
    _forget()
    return row


def ensure_queues(names: Iterable[Any]) -> None:
    """Make a row for each queue in ``names`` that has none (a worker's queues at start)."""
    names = [name for name in names if isinstance(name, str) and name and len(name) <= 64]
    if names:
        Queue.objects.using(_db()).bulk_create([Queue(name=name) for name in names], ignore_conflicts=True)


@dataclass
class QueueState:
    """One queue as the admin, the command and the metrics show it."""

    name: str
    paused: bool
    concurrency: int | None  # effective: the row's, else the setting's
    rate_limit: str  # effective, "" for none
    concurrency_from: str  # "admin", "settings" or ""
    rate_limit_from: str
    ready: int
    due: int
    running: int
    waiting: int
    oldest_due: datetime | None

    @property
    def oldest_due_age(self) -> float | None:
        return None if self.oldest_due is None else max(0.0, (timezone.now() - self.oldest_due).total_seconds())


def queue_states() -> list[QueueState]:
    """Every queue with a row, a setting or an active job: its state and counts (one grouped
    query over active jobs, through the status indexes)."""
    now = timezone.now()
    rows = (
        Job.objects.filter(status__in=(JobStatus.READY, JobStatus.RUNNING, JobStatus.WAITING))
        .values("queue_name")
        .annotate(
            ready=Count("id", filter=Q(status=JobStatus.READY)),
            due=Count("id", filter=Q(status=JobStatus.READY, run_after__lte=now)),
            running=Count("id", filter=Q(status=JobStatus.RUNNING)),
            waiting=Count("id", filter=Q(status=JobStatus.WAITING)),
            oldest_due=Min("run_after", filter=Q(status=JobStatus.READY, run_after__lte=now)),
        )
    )
    counts: dict[str, Any] = {row["queue_name"]: row for row in rows}
    configured = conf.get("QUEUE_LIMITS") or {}
    stored = {row.name: row for row in Queue.objects.all()}
    states = []
    for name in sorted(set(counts) | set(stored) | set(configured)):
        row, setting, count = stored.get(name), configured.get(name) or {}, counts.get(name) or {}
        concurrency, concurrency_from = _effective(row and row.concurrency, setting.get("concurrency"))
        rate, rate_from = _effective(row and row.rate_limit, setting.get("rate_limit"))
        states.append(
            QueueState(
                name=name,
                paused=bool(row and row.paused),
                concurrency=concurrency,
                rate_limit=rate or "",
                concurrency_from=concurrency_from,
                rate_limit_from=rate_from,
                ready=count.get("ready", 0),
                due=count.get("due", 0),
                running=count.get("running", 0),
                waiting=count.get("waiting", 0),
                oldest_due=count.get("oldest_due"),
            )
        )
    return states


def _effective(stored: Any, configured: Any) -> tuple[Any, str]:
    if stored:
        return stored, "admin"
    if configured:
        return configured, "settings"
    return None, ""


# -- what workers read at each claim (djjobs.worker.gate, djjobs.worker.claim) ---------------------

# How often a worker looks whether anything is limited or paused at all (seconds). Between
# looks, the plain claim skips the queues last seen paused or limited; limited jobs are never
# taken by it (it filters them out), so a stale look only delays, never breaks, a limit.
LOOK_INTERVAL = 1.0


@dataclass(slots=True)
class QueueRules:
    paused: frozenset = frozenset()
    concurrency: dict = field(default_factory=dict)  # queue -> N
    rate: dict = field(default_factory=dict)  # queue -> (N, period seconds, text)

    @property
    def limited(self) -> frozenset:
        return frozenset(self.concurrency) | frozenset(self.rate)


@dataclass(slots=True)
class Look:
    rules: QueueRules
    concurrency_seen: bool  # READY jobs under a concurrency limit exist
    rate_seen: bool  # READY jobs under a rate limit exist
    at: float

    @property
    def limited_jobs(self) -> bool:
        return self.concurrency_seen or self.rate_seen

    @property
    def skip(self) -> frozenset:
        """Queues the plain claim leaves alone: paused ones, and limited ones (claimed here)."""
        return self.rules.paused | self.rules.limited

    @property
    def needed(self) -> bool:
        return self.limited_jobs or bool(self.rules.limited)


_looks: dict[str, Look] = {}


def look(alias: str) -> Look:
    """What the plain claim must skip and whether the limited claim has anything to do, read at
    most every LOOK_INTERVAL seconds per process and database."""
    seen = _looks.get(alias)
    now = time.monotonic()
    if seen is not None and now - seen.at < LOOK_INTERVAL:
        return seen
    ready = Job.objects.using(alias).filter(status=JobStatus.READY)
    seen = _looks[alias] = Look(
        queue_rules(alias),
        ready.filter(concurrency_key__isnull=False).exists(),
        ready.filter(rate_key__isnull=False).exists(),
        now,
    )
    return seen


def forget() -> None:
    """Look again at the next claim (a queue was paused, resumed or limited in this process)."""
    _looks.clear()


def queue_rules(alias: str) -> QueueRules:
    """Paused queues and queue limits: a Queue row's limit over DJJOBS["QUEUE_LIMITS"]."""
    configured = conf.get("QUEUE_LIMITS") or {}
    concurrency = {name: limits["concurrency"] for name, limits in configured.items() if limits.get("concurrency")}
    rate = {name: limits["rate_limit"] for name, limits in configured.items() if limits.get("rate_limit")}
    paused = set()
    for name, is_paused, row_concurrency, row_rate in Queue.objects.using(alias).values_list(
        "name", "paused", "concurrency", "rate_limit"
    ):
        if is_paused:
            paused.add(name)
        if row_concurrency:
            concurrency[name] = row_concurrency
        if row_rate:
            rate[name] = row_rate
    rates = {}
    for name, text in rate.items():
        try:
            rates[name] = (*flow.parse_rate(text), text)
        except ValueError:
            continue  # refused on save; a bad value in settings is reported by the checks
    return QueueRules(frozenset(paused), concurrency, rates)


def _db() -> str:
    return router.db_for_write(Queue)


def _forget() -> None:
    forget()  # this process's own claims see the change at once
