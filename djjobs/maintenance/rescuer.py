"""Rescue: give RUNNING jobs whose worker is gone back to the queue (or end them).

What becomes of each job is decided by djjobs.lifecycle.transitions.after_lost_worker and
written by djjobs.lifecycle.finish.release_lost (the supervisor uses it too, for a dead
worker process's jobs). The same sweep releases FIFO keys left with waiting jobs and no
holder (release_stranded_fifo: a job enqueued behind a key's last job as that one ended).
"""

import logging

from django.utils import timezone

from ..lifecycle.finish import release_lost, release_stranded_fifo
from ..models import Job
from ..states import JobStatus

logger = logging.getLogger("djjobs")


def rescue_expired(batch: int = 100) -> int:
    """Release RUNNING jobs whose lease expired: their worker stopped heartbeating."""
    expired = Job.objects.filter(status=JobStatus.RUNNING, lease_expires_at__lt=timezone.now())
    rescued = release_lost(expired, "its lease expired before the job finished", batch)
    if rescued:
        logger.warning("rescued %d job(s) whose worker was lost", rescued)
    released = release_stranded_fifo()
    if released:
        logger.info("released the next job of %d FIFO key(s) left without a running job", released)
    return rescued
