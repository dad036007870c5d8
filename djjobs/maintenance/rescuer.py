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

    Two exceptions to "the attempt counts":
    - a job whose cancellation was requested ends CANCELLED, as its worker would have decided;
    - a job claimed ahead of a free thread (prefetched) may never have started: its attempt
      is given back, once. The worker cannot prove afterwards that it had not started it, so
      a second loss counts: a prefetched job that kills its worker gets one run more, at most.
    """
    from ..models import Job

    now = timezone.now()
    released = 0
    with transaction.atomic():
        rows = list(
            jobs.select_for_update(skip_locked=True)
            .filter(status=JobStatus.RUNNING)
            .only("id", "attempts", "max_attempts", "errors", "lease_token", "worker_id", "worker_ids",
                  "workflow_run_id", "cancel_requested_at", "claimed_ahead")[:batch]
        )
        runs = set()
        for job in rows:
            changes = _released(job, why, now)
            # A released job keeps its run_after: it goes back to its place near the front
            # of the queue, not behind the backlog that built up meanwhile.
            changed = Job.objects.filter(
                id=job.id, status=JobStatus.RUNNING, lease_token=job.lease_token
            ).update(**changes)
            released += changed
            if changed and changes["status"] != JobStatus.READY and job.workflow_run_id is not None:
                runs.add(job.workflow_run_id)
        if runs:  # a workflow step that ended: its run moves on in this transaction
            from ..workflows import advance

            for run_id in sorted(runs):
                advance(run_id)
    return released


def _released(job, why: str, now) -> dict:
    """The changes that release one lost RUNNING job (pure but for the clock it is given)."""
    refund = (job.claimed_ahead and job.cancel_requested_at is None
              and not any(entry.get("counted") is False for entry in job.errors))
    error = {
        "attempt": job.attempts,
        "exception_class_path": "djjobs.exceptions.WorkerLost",
        "message": f"worker {job.worker_id!r} lost: {why}",
        "traceback": "",
        "worker_id": job.worker_id,
        "at": now.isoformat(),
    }
    changes = {"lease_token": None, "lease_expires_at": None, "claimed_ahead": False}
    if refund:
        error["message"] += ("; the job was claimed ahead and may not have started: "
                             "this attempt is not counted (once per job)")
        error["counted"] = False
        changes.update(status=JobStatus.READY, attempts=job.attempts - 1)
        if job.attempts <= 1:  # as if never claimed
            changes.update(started_at=None, last_attempted_at=None, worker_id="")
        if job.worker_ids:
            changes["worker_ids"] = job.worker_ids[:-1]
    elif job.cancel_requested_at is not None:
        error["message"] += "; its cancellation had been requested"
        changes.update(status=JobStatus.CANCELLED, finished_at=now)
    elif job.attempts >= job.max_attempts:
        changes.update(status=JobStatus.FAILED, finished_at=now)
    else:
        changes["status"] = JobStatus.READY
    changes["errors"] = [*job.errors, error]
    return changes
