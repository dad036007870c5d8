"""Retention: delete finished jobs past their age, in small batches that never hold the table."""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from .. import conf
from ..models import Event, Job, RunStatus, Worker, WorkflowRun
from ..states import JobStatus

logger = logging.getLogger("djjobs")

# Worker rows not heard from for this long are deleted.
DEAD_WORKER_RETENTION = timedelta(hours=1)


def prune(batch_size: int = 1000, max_batches: int | None = None, dry_run: bool = False) -> dict[str, int]:
    """Delete finished jobs older than DJJOBS['RETENTION_DAYS'] allows; returns counts per status.

    Each batch is its own short transaction; rows are picked with SKIP LOCKED so several
    workers pruning at once split the work instead of waiting on each other.
    """
    now = timezone.now()
    counts: dict[str, int] = {}
    for status, days in conf.get("RETENTION_DAYS").items():
        if days is None:
            continue
        if status not in (JobStatus.SUCCESSFUL, JobStatus.FAILED, JobStatus.CANCELLED):
            raise ValueError(f"DJJOBS['RETENTION_DAYS'] has {status!r}; only finished statuses can be pruned.")
        cutoff = now - timedelta(days=days)
        counts[status] = _prune_status(status, cutoff, batch_size, max_batches, dry_run)
    if any(conf.get("RETENTION_DAYS").get(s) is not None for s in (JobStatus.SUCCESSFUL, JobStatus.FAILED)):
        counts["workflow runs"] = _prune_runs(now, batch_size, max_batches, dry_run)
    event_days = conf.get("EVENT_RETENTION_DAYS")
    if event_days is not None:
        counts["events"] = _prune_events(now - timedelta(days=event_days), batch_size, max_batches, dry_run)
    counts["workers"] = 0 if dry_run else _prune_workers(now)
    if any(counts.values()):
        logger.info("pruned %s", ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    return counts


def _prune_status(status, cutoff, batch_size, max_batches, dry_run) -> int:
    # A workflow's jobs go with their run (_prune_runs): its steps' results are its context.
    old = Job.objects.filter(status=status, finished_at__lt=cutoff, workflow_run__isnull=True)
    if status == JobStatus.FAILED:
        # A FAILED job holding its FIFO key (fifo_on_failure="hold") waits for an operator: kept.
        old = old.exclude(fifo_hold=True, fifo_key__isnull=False)
    return _delete_in_batches(
        old, lambda ids: Job.objects.filter(id__in=ids).delete()[0], batch_size, max_batches, dry_run
    )


def _prune_runs(now, batch_size, max_batches, dry_run) -> int:
    """Finished workflow runs, with their jobs, once past the retention of the status they map
    to (SUCCESSFUL: SUCCESSFUL's; COMPENSATED and FAILED: FAILED's)."""
    days = conf.get("RETENTION_DAYS")
    deleted = 0
    for statuses, job_status in (
        ([RunStatus.SUCCESSFUL], JobStatus.SUCCESSFUL),
        ([RunStatus.COMPENSATED, RunStatus.FAILED], JobStatus.FAILED),
    ):
        if days.get(job_status) is None:
            continue
        old = WorkflowRun.objects.filter(status__in=statuses, finished_at__lt=now - timedelta(days=days[job_status]))

        def delete(ids) -> int:
            Job.objects.filter(workflow_run_id__in=ids).delete()
            return WorkflowRun.objects.filter(id__in=ids).delete()[0]

        deleted += _delete_in_batches(old, delete, batch_size, max_batches, dry_run)
    return deleted


def _prune_events(cutoff, batch_size, max_batches, dry_run) -> int:
    """Events older than the cutoff; jobs still pointing at one lose the link (SET_NULL)."""

    def delete(ids) -> int:
        Job.objects.filter(event_id__in=ids).update(event_id=None)
        return Event.objects.filter(id__in=ids).delete()[0]

    old = Event.objects.filter(occurred_at__lt=cutoff)
    return _delete_in_batches(old, delete, batch_size, max_batches, dry_run)


def _delete_in_batches(old, delete, batch_size, max_batches, dry_run) -> int:
    """Delete the rows of ``old`` (a queryset) ``batch_size`` at a time, each batch its own
    transaction with its rows picked FOR UPDATE SKIP LOCKED; returns how many went."""
    if dry_run:
        return old.count()
    deleted = batches = 0
    while max_batches is None or batches < max_batches:
        with transaction.atomic():
            ids = list(old.select_for_update(skip_locked=True).order_by().values_list("id", flat=True)[:batch_size])
            if ids:
                deleted += delete(ids)
        batches += 1
        if len(ids) < batch_size:
            break
    return deleted


def _prune_workers(now) -> int:
    return Worker.objects.filter(last_heartbeat_at__lt=now - DEAD_WORKER_RETENTION).delete()[0]
