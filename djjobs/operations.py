"""cancel(), retry(), run_now(): one implementation for code, the admin and endpoints.

Each is a guarded UPDATE (djjobs.lifecycle.finish) whose row count decides the answer, so two
operators (or an operator and a worker) acting at the same instant cannot both win.
"""

import uuid
from enum import StrEnum

from django.db import IntegrityError
from django.db.models import QuerySet

from .lifecycle import finish
from .models import Job
from .states import JobStatus


class Answer(StrEnum):
    DONE = "done"  # the job changed as asked
    REQUESTED = "requested"  # a RUNNING job was asked to stop; it decides when
    NOT_ALLOWED = "not_allowed"  # the job's status does not allow it
    CONFLICT = "conflict"  # another active job holds the same unique_key
    NOT_FOUND = "not_found"


def _jobs(job_id: uuid.UUID | str) -> QuerySet[Job]:
    try:
        return Job.objects.filter(pk=uuid.UUID(str(job_id)))
    except ValueError:
        return Job.objects.none()


def cancel(job_id: uuid.UUID | str) -> Answer:
    """Cancel a READY/WAITING job now; ask a RUNNING job to stop (``context.is_cancelled()``)."""
    jobs = _jobs(job_id)
    if finish.cancel_now(jobs):  # a workflow's step: its run compensates
        return Answer.DONE
    if finish.request_cancel(jobs):
        return Answer.REQUESTED
    if jobs.filter(status=JobStatus.RUNNING).exists():
        return Answer.REQUESTED  # already requested
    return Answer.NOT_ALLOWED if jobs.exists() else Answer.NOT_FOUND


def retry(job_id: uuid.UUID | str) -> Answer:
    """Send a FAILED or CANCELLED job back to READY, due now, with at least one attempt left.

    Not a workflow's step: its failure made the run compensate, which a retry cannot undo
    (a compensation can be retried: the run's compensations go on from there)."""
    jobs = _jobs(job_id)
    try:
        changed = finish.retry(jobs.exclude(workflow_role="step"))
    except IntegrityError:
        return Answer.CONFLICT
    if changed:
        return Answer.DONE
    return Answer.NOT_ALLOWED if jobs.exists() else Answer.NOT_FOUND


def run_now(job_id: uuid.UUID | str) -> Answer:
    """Make a READY job due at once (its run_after moves to now)."""
    jobs = _jobs(job_id)
    if finish.run_now(jobs):
        return Answer.DONE
    return Answer.NOT_ALLOWED if jobs.exists() else Answer.NOT_FOUND
