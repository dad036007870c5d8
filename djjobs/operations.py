"""cancel(), retry(), run_now(): one implementation for code, the admin and endpoints.

Each is a guarded UPDATE (djjobs.lifecycle.finish) whose row count decides the answer, so two
operators (or an operator and a worker) acting at the same instant cannot both win.
"""

import uuid
from enum import StrEnum
from typing import TYPE_CHECKING

from django.db import IntegrityError

from .lifecycle import finish
from .states import JobStatus

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from .models import Job


class Outcome(StrEnum):
    DONE = "done"  # the job changed as asked
    REQUESTED = "requested"  # a RUNNING job was asked to stop; it decides when
    NOT_ALLOWED = "not_allowed"  # the job's status does not allow it
    CONFLICT = "conflict"  # another active job holds the same unique_key
    NOT_FOUND = "not_found"


def _jobs(job_id: uuid.UUID | str) -> "QuerySet[Job]":
    from .models import Job

    try:
        return Job.objects.filter(pk=uuid.UUID(str(job_id)))
    except ValueError:
        return Job.objects.none()


def cancel(job_id: uuid.UUID | str) -> Outcome:
    """Cancel a READY/WAITING job now; ask a RUNNING job to stop (``context.is_cancelled()``)."""
    jobs = _jobs(job_id)
    if finish.cancel_now(jobs):  # a workflow's step: its run compensates
        return Outcome.DONE
    if finish.request_cancel(jobs):
        return Outcome.REQUESTED
    if jobs.filter(status=JobStatus.RUNNING).exists():
        return Outcome.REQUESTED  # already requested
    return Outcome.NOT_ALLOWED if jobs.exists() else Outcome.NOT_FOUND


def retry(job_id: uuid.UUID | str) -> Outcome:
    """Send a FAILED or CANCELLED job back to READY, due now, with at least one attempt left.

    Not a workflow's step: its failure made the run compensate, which a retry cannot undo
    (a compensation can be retried: the run's compensations go on from there)."""
    jobs = _jobs(job_id)
    try:
        changed = finish.retry(jobs.exclude(workflow_role="step"))
    except IntegrityError:
        return Outcome.CONFLICT
    if changed:
        return Outcome.DONE
    return Outcome.NOT_ALLOWED if jobs.exists() else Outcome.NOT_FOUND


def run_now(job_id: uuid.UUID | str) -> Outcome:
    """Make a READY job due at once (its run_after moves to now)."""
    jobs = _jobs(job_id)
    if finish.run_now(jobs):
        return Outcome.DONE
    return Outcome.NOT_ALLOWED if jobs.exists() else Outcome.NOT_FOUND
