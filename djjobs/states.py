"""Job statuses and what Django's TaskResult sees of them. Pure: no ORM, no I/O."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from .compat import TaskResultStatus


class JobStatus(models.TextChoices):
    # Enqueued and waiting for a worker (run_after may still be in the future).
    READY = "READY", _("Ready")
    # Claimed by a worker and executing.
    RUNNING = "RUNNING", _("Running")
    # Finished and returned a value.
    SUCCESSFUL = "SUCCESSFUL", _("Successful")
    # Out of attempts or not retryable: the dead letter, with every attempt's error kept.
    FAILED = "FAILED", _("Failed")
    # Stopped by an operator or code before it finished.
    CANCELLED = "CANCELLED", _("Cancelled")
    # A workflow step whose predecessors have not finished; not claimable.
    WAITING = "WAITING", _("Waiting")


# Statuses in which a job still has work ahead of it.
ACTIVE = frozenset({JobStatus.READY, JobStatus.RUNNING, JobStatus.WAITING})
FINISHED = frozenset({JobStatus.SUCCESSFUL, JobStatus.FAILED, JobStatus.CANCELLED})

# The allowed transitions between them: djjobs.lifecycle.transitions.TRANSITIONS.

# What Django's four TaskResult statuses see of ours.
TO_TASK_STATUS = {
    JobStatus.READY: TaskResultStatus.READY,
    JobStatus.WAITING: TaskResultStatus.READY,
    JobStatus.RUNNING: TaskResultStatus.RUNNING,
    JobStatus.SUCCESSFUL: TaskResultStatus.SUCCESSFUL,
    JobStatus.FAILED: TaskResultStatus.FAILED,
    JobStatus.CANCELLED: TaskResultStatus.FAILED,
}
