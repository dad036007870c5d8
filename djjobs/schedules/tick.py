"""tick(): fire due schedules exactly once, whatever the number of workers; and the operations on
a schedule that the admin and ``manage.py schedules`` share: run_now(), enable(), disable().

Every worker ticks (every ``SCHEDULER_INTERVAL``). A tick takes one due schedule at a time
with ``FOR UPDATE SKIP LOCKED`` (SQLite: inside its IMMEDIATE transaction), inserts one job per
fire time under the unique constraint (schedule, scheduled_for), and moves ``next_run_at`` on,
all in one transaction: a worker killed half-way leaves nothing behind, and two workers can
never both fire the same time. There is no leader to elect or to lose.
"""

import logging
from datetime import datetime
from typing import Any

from django.db import DatabaseError, IntegrityError, router, transaction
from django.db.models import F
from django.utils import timezone

from .. import conf
from ..compat import InvalidTask, Task
from ..lifecycle import insert
from ..models import Job, Schedule
from ..operations import Answer
from ..states import ACTIVE
from .cron import TimingError
from .policy import Overlap, plan
from .validation import find_task

logger = logging.getLogger("djjobs")

# At most this many schedules are fired by one tick; the rest wait for the next one.
TICK_BATCH = 100


class ScheduleError(Exception):
    """A schedule cannot be run now; the message says why."""


class _Changed(Exception):
    """The schedule row changed under the tick (it cannot while the row is locked): roll back."""


def tick(now: datetime | None = None) -> int:
    """Fire every due schedule; returns how many jobs were enqueued."""
    now = now or timezone.now()
    if not Schedule.objects.due(now).exists():  # the usual answer, without taking a lock
        return 0
    alias = router.db_for_write(Schedule)
    fired = 0
    failed: list[int] = []  # the schedules whose fire raised, left for the next tick
    for _ in range(TICK_BATCH):
        schedule = None
        try:
            with transaction.atomic(using=alias):
                schedule = (
                    Schedule.objects.select_for_update(skip_locked=True)
                    .due(now)
                    .exclude(pk__in=failed)
                    .order_by("next_run_at")
                    .first()
                )
                if schedule is None:
                    break
                fired += _fire(schedule, now)
        except DatabaseError:
            raise  # the worker logs it, reconnects and ticks again
        except Exception as exc:  # a bug must not stop the worker, nor the other schedules
            if schedule is None:
                raise
            failed.append(schedule.pk)
            logger.exception(
                "schedule %s could not fire (rolled back; tried again next tick): %s",
                getattr(schedule, "name", "?"),
                exc,
            )
    return fired


def _fire(schedule: Schedule, now: datetime) -> int:
    """Enqueue the runs of one locked, due schedule and move it on; returns the jobs enqueued."""
    try:
        timing = schedule.timing()
    except TimingError as exc:  # written around validation: it can never fire, say why
        logger.error("schedule %s disabled: %s", schedule.name, exc)
        _record(schedule, next_run_at=None, enabled=False, skipped=1, reason=str(exc), now=now)
        return 0
    task, problem = find_task(schedule.task_path)
    due_at = schedule.next_run_at
    assert due_at is not None, "a due schedule has its next run"
    previous_active = schedule.overlap == Overlap.SKIP and schedule.jobs.filter(status__in=ACTIVE).exists()
    decided = plan(
        timing,
        due_at,
        now,
        misfire=schedule.misfire,
        overlap=schedule.overlap,
        previous_active=previous_active,
        grace=conf.get("SCHEDULE_MISFIRE_GRACE"),
        max_lateness=conf.get("SCHEDULE_MAX_LATENESS"),
        cap=conf.get("SCHEDULE_CATCH_UP_MAX"),
    )
    skipped, reasons, enqueued = decided.skipped, list(decided.reasons), 0
    last: tuple[datetime, Job] | None = None
    for when in decided.fire:
        job, reason = _enqueue(schedule, task, when, now) if task else (None, problem)
        if job is not None:
            last, enqueued = (when, job), enqueued + 1
        elif reason:
            skipped += 1
            reasons.append(reason)
    for reason in reasons:
        logger.warning("schedule %s skipped a run: %s", schedule.name, reason)
    _record(
        schedule,
        now=now,
        next_run_at=decided.next_run_at,
        last=last,
        skipped=skipped,
        reason=reasons[-1] if reasons else "",
        enabled=False if timing.one_off and decided.next_run_at is None else None,
    )
    return enqueued


def _record(
    schedule: Schedule,
    *,
    now: datetime,
    next_run_at: datetime | None,
    last: tuple[datetime, Job] | None = None,
    skipped: int = 0,
    reason: str = "",
    enabled: bool | None = None,
) -> None:
    """Move the schedule on with one UPDATE guarded by the next_run_at this tick read."""
    changes: dict[str, Any] = {"next_run_at": next_run_at}
    if last is not None:
        changes.update(last_run_at=last[0], last_job_id=last[1].id)
    if skipped:
        changes.update(skipped_runs=F("skipped_runs") + skipped, last_skipped_at=now, last_skip_reason=reason[:255])
    if enabled is not None:
        changes["enabled"] = enabled
    guard = Schedule.objects.filter(pk=schedule.pk, enabled=True, next_run_at=schedule.next_run_at)
    if guard.update(**changes) != 1:
        raise _Changed(schedule.name)


def _enqueue(schedule: Schedule, task: Task, when: datetime, now: datetime) -> tuple[Job | None, str]:
    """Insert the job of one fire time through the insert path, in a savepoint. Returns (job, "")
    when inserted, (None, reason) when it cannot be, and (None, "") when that fire time already
    has its job."""
    overrides: dict[str, Any] = {}
    if schedule.queue_name:
        overrides["queue_name"] = schedule.queue_name
    if schedule.priority is not None:
        overrides["priority"] = schedule.priority
    task = task.using(**overrides) if overrides else task
    try:
        job, _result = insert.insert(
            task,
            schedule.args,
            schedule.kwargs,
            now=now,
            guarded=True,
            holder=False,
            fields={"run_after": when, "schedule_id": schedule.pk, "scheduled_for": when},
        )
    except InvalidTask as exc:
        return None, f"cannot enqueue {schedule.task_path}: {exc}"
    except IntegrityError:
        if Job.objects.filter(schedule_id=schedule.pk, scheduled_for=when).exists():
            return None, ""  # this fire time has its job already: the constraint did its work
        key = getattr(task, "unique_key", None)
        return None, f"an active job holds the task's unique key {key!r}"
    assert isinstance(job, Job), "a guarded insert makes a Job"
    return job, ""


# -- operations (admin actions, manage.py schedules) --------------------------------------------


def run_now(schedule: Schedule) -> Job:
    """Enqueue one run of ``schedule`` now, enabled or not, whatever its overlap policy; returns
    the Job. Its next run does not move. ScheduleError says why it cannot run."""
    task, problem = find_task(schedule.task_path)
    if task is None:  # find_task() says why
        raise ScheduleError(problem)
    now = timezone.now()
    with transaction.atomic(using=router.db_for_write(Job)):
        job, reason = _enqueue(schedule, task, now, now)
        if job is None:
            raise ScheduleError(reason or "a run for this instant exists already; try again")
        if not Schedule.objects.filter(pk=schedule.pk).update(last_run_at=now, last_job_id=job.id):
            raise ScheduleError(f"schedule {schedule.name!r} no longer exists")
    logger.info("schedule %s run now: job %s", schedule.name, job.id)
    return job


def enable(schedule: Schedule) -> Answer:
    """Enable a disabled schedule; it fires next at its next fire time from now (a one-off at
    its run_at, unless that run happened already). Nothing missed while disabled is caught up."""
    try:
        first = schedule.first_run_at(timezone.now())
    except TimingError:
        return Answer.NOT_ALLOWED
    if first is None:
        return Answer.NOT_ALLOWED  # a one-off whose run is done: give it a new run_at
    if Schedule.objects.filter(pk=schedule.pk, enabled=False).update(enabled=True, next_run_at=first):
        return Answer.DONE
    return Answer.NOT_ALLOWED if Schedule.objects.filter(pk=schedule.pk).exists() else Answer.NOT_FOUND


def disable(schedule: Schedule) -> Answer:
    """Disable a schedule: it fires no more until enabled."""
    if Schedule.objects.filter(pk=schedule.pk, enabled=True).update(enabled=False, next_run_at=None):
        return Answer.DONE
    return Answer.NOT_ALLOWED if Schedule.objects.filter(pk=schedule.pk).exists() else Answer.NOT_FOUND
