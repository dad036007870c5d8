"""Rescue: give RUNNING jobs whose lease expired back to the queue (or to FAILED when spent)."""

import logging

from django.db import transaction
from django.utils import timezone

from ..states import JobStatus

logger = logging.getLogger("djjobs")


def rescue_expired(batch: int = 100) -> int:
    """Return expired RUNNING jobs to READY, counting the lost attempt; FAILED if none remain.

    Rows are locked with SKIP LOCKED so rescuers on many workers split the work; each
    change is guarded by the lease token it saw, so a worker completing at the same
    instant wins or loses cleanly.
    """
    from ..models import Job

    now = timezone.now()
    rescued = 0
    with transaction.atomic():
        expired = list(
            Job.objects.select_for_update(skip_locked=True)
            .filter(status=JobStatus.RUNNING, lease_expires_at__lt=now)
            .only("id", "attempts", "max_attempts", "errors", "lease_token", "worker_id")[:batch]
        )
        for job in expired:
            error = {
                "attempt": job.attempts,
                "exception_class_path": "djjobs.exceptions.WorkerLost",
                "message": f"worker {job.worker_id!r} lost: its lease expired before the job finished",
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
            changes["finished_at" if spent else "run_after"] = now
            rescued += Job.objects.filter(
                id=job.id, status=JobStatus.RUNNING, lease_token=job.lease_token
            ).update(**changes)
    if rescued:
        logger.warning("rescued %d job(s) whose worker was lost", rescued)
    return rescued
