"""djjobs: a durable, observable job system in your Django database.

The public API; everything else is reachable through its module.
"""

import uuid
from typing import TYPE_CHECKING, Any

from . import triggers
from .exceptions import Discard, Retry
from .tasks import JobTask, task

if TYPE_CHECKING:
    from .events import Published
    from .operations import Answer


def cancel(job_id: uuid.UUID | str) -> "Answer":
    """Cancel a READY/WAITING job, or ask a RUNNING one to stop. See djjobs.operations."""
    from .operations import cancel as _cancel  # not at the top: djjobs is imported before the models are ready

    return _cancel(job_id)


def retry(job_id: uuid.UUID | str) -> "Answer":
    """Send a FAILED/CANCELLED job back to READY. See djjobs.operations."""
    from .operations import retry as _retry  # not at the top: djjobs is imported before the models are ready

    return _retry(job_id)


def run_now(job_id: uuid.UUID | str) -> "Answer":
    """Make a READY job due now. See djjobs.operations."""
    from .operations import run_now as _run_now  # not at the top: djjobs is imported before the models are ready

    return _run_now(job_id)


def pause_queue(name: str) -> bool:
    """Pause a queue: it keeps accepting jobs, no worker claims from it. See djjobs.queues."""
    from .queues import pause_queue as _pause

    return _pause(name)


def resume_queue(name: str) -> bool:
    """Resume a paused queue. See djjobs.queues."""
    from .queues import resume_queue as _resume

    return _resume(name)


def publish(name: str, payload: Any = None, idempotency_key: str | None = None) -> "Published":
    """Record the event ``name`` and enqueue one job per subscribed task. See djjobs.events."""
    from .events import publish as _publish  # not at the top: djjobs is imported before the models are ready

    return _publish(name, payload, idempotency_key)


__all__ = [
    "Discard",
    "JobTask",
    "Retry",
    "cancel",
    "pause_queue",
    "publish",
    "resume_queue",
    "retry",
    "run_now",
    "task",
    "triggers",
]
