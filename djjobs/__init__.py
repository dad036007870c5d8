"""djjobs: a durable, observable job system in your Django database.

The public API; everything else is reachable through its module.
"""

from . import triggers
from .exceptions import Discard, Retry
from .tasks import JobTask, task


def cancel(job_id):
    """Cancel a READY/WAITING job, or ask a RUNNING one to stop. See djjobs.operations."""
    from .operations import cancel as _cancel  # not at the top: djjobs is imported before the models are ready

    return _cancel(job_id)


def retry(job_id):
    """Send a FAILED/CANCELLED job back to READY. See djjobs.operations."""
    from .operations import retry as _retry  # not at the top: djjobs is imported before the models are ready

    return _retry(job_id)


def run_now(job_id):
    """Make a READY job due now. See djjobs.operations."""
    from .operations import run_now as _run_now  # not at the top: djjobs is imported before the models are ready

    return _run_now(job_id)


def pause_queue(name):
    """Pause a queue: it keeps accepting jobs, no worker claims from it. See djjobs.queues."""
    from .queues import pause_queue as _pause

    return _pause(name)


def resume_queue(name):
    """Resume a paused queue. See djjobs.queues."""
    from .queues import resume_queue as _resume

    return _resume(name)


def publish(name, payload=None, idempotency_key=None):
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
