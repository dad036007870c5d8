"""Rescue: give RUNNING jobs whose worker is gone back to the queue (or to FAILED when spent)."""

import logging

from django.db import transaction
from django.utils import timezone

from ..states import JobStatus

logger = logging.getLogger("djjobs")


def rescue_expired(batch: int = 100) -> int:
    """Release RUNNING jobs whose lease expired: their worker stopped heartbeating."""
    from ..models import Job

    expired = Job.objects.filter(status=JobStatus.RUNNING, lease_expires_at__lt=timezone.now())
    rescued = release(expired, "its lease expired before the job finished", batch)
    if rescued:
        logger.warning("rescued %d job(s) whose worker was lost", rescued)
    return rescued


def release(jobs, why: str, batch: int = 100) -> int:
    """Return these RUNNING jobs to READY, counting the lost attempt; FAILED if none remain.

    Rows are locked with SKIP LOCKED so rescuers on many workers split the work; each
    change is guarded by the lease token it saw, so a worker completing at the same
    instant wins or loses cleanly. A job that kills its worker every time therefore ends
    FAILED after max_attempts, not in a loop.
    """
    from ..models import Job

    now = timezone.now()
    released = 0
    with transaction.atomic():
        rows = list(
            jobs.select_for_update(skip_locked=True)
            .filter(status=JobStatus.RUNNING)
            .only("id", "attempts", "max_attempts", "errors", "lease_token", "worker_id", "workflow_run_id")[:batch]
        )
        runs = set()
        for job in rows:
            error = {
                "attempt": job.attempts,
                "exception_class_path": "djjobs.exceptions.WorkerLost",
                "message": f"worker {job.worker_id!r} lost: {why}",
                "traceback": "",
                "worker_id": job.worker_id,
                "at": now.isoformat(),
            }
            spent = job.attempts >= job.max_attempts
            changes = {
                "status": JobStatus.FAILED if spent else JobStatus.READY,
                "errors": [*job.errors, error],
                "lease_token": None,
                "lease_expires_at": None,
            }
            if spent:
                changes["finished_at"] = now
            # A released job keeps its run_after: it goes back to its place near the front
            # of the queue, not behind the backlog that built up meanwhile.
            changed = Job.objects.filter(
                id=job.id, status=JobStatus.RUNNING, lease_token=job.lease_token
            ).update(**changes)
            released += changed
            if changed and spent and job.workflow_run_id is not None:
                runs.add(job.workflow_run_id)
        if runs:  # a workflow step out of attempts: its run moves on in this transaction
            from ..workflows import advance

            for run_id in sorted(runs):
                advance(run_id)
    return released
