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
    from .operations import Outcome


def cancel(job_id: uuid.UUID | str) -> "Outcome":
    """Cancel a READY/WAITING job, or ask a RUNNING one to stop. See djjobs.operations."""
    from .operations import cancel as _cancel

    return _cancel(job_id)


def retry(job_id: uuid.UUID | str) -> "Outcome":
    """Send a FAILED/CANCELLED job back to READY. See djjobs.operations."""
    from .operations import retry as _retry

    return _retry(job_id)


def run_now(job_id: uuid.UUID | str) -> "Outcome":
    """Make a READY job due now. See djjobs.operations."""
    from .operations import run_now as _run_now

    return _run_now(job_id)


def publish(name: str, payload: Any = None, idempotency_key: str | None = None) -> "Published":
    """Record the event ``name`` and enqueue one job per subscribed task. See djjobs.events."""
    from .events import publish as _publish

    return _publish(name, payload, idempotency_key)


__all__ = ["Discard", "JobTask", "Retry", "cancel", "publish", "retry", "run_now", "task", "triggers"]
