"""Job statuses and the transitions between them. Pure: no ORM, no I/O."""

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

# Allowed transitions: every guarded UPDATE in djjobs moves along one of these edges.
TRANSITIONS: dict[str, frozenset[str]] = {
    JobStatus.WAITING: frozenset({JobStatus.READY, JobStatus.CANCELLED}),
    JobStatus.READY: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED}),
    JobStatus.RUNNING: frozenset(
        {JobStatus.SUCCESSFUL, JobStatus.READY, JobStatus.FAILED, JobStatus.CANCELLED}
    ),
    JobStatus.FAILED: frozenset({JobStatus.READY}),  # an operator's retry
    JobStatus.CANCELLED: frozenset({JobStatus.READY}),  # an operator's retry
    JobStatus.SUCCESSFUL: frozenset(),
}

# What Django's four TaskResult statuses see of ours.
TO_TASK_STATUS = {
    JobStatus.READY: TaskResultStatus.READY,
    JobStatus.WAITING: TaskResultStatus.READY,
    JobStatus.RUNNING: TaskResultStatus.RUNNING,
    JobStatus.SUCCESSFUL: TaskResultStatus.SUCCESSFUL,
    JobStatus.FAILED: TaskResultStatus.FAILED,
    JobStatus.CANCELLED: TaskResultStatus.FAILED,
}


def can_transition(source: str, target: str) -> bool:
    """Whether a job may move from ``source`` to ``target``."""
    return target in TRANSITIONS.get(source, frozenset())
