"""Exceptions of djjobs. ``Retry`` and ``Discard`` are raised by task code to steer retries."""

from datetime import timedelta

from .compat import InvalidTask


class Retry(Exception):
    """Raise from a task to ask for another attempt, after ``delay`` (seconds or timedelta).

    The attempt counts: a job that keeps raising Retry still ends FAILED after max_attempts.
    """

    def __init__(self, delay: float | timedelta | None = None, reason: str = ""):
        if isinstance(delay, timedelta):
            delay = delay.total_seconds()
        self.delay = delay
        super().__init__(reason or (f"retry requested in {delay}s" if delay is not None else "retry requested"))


class Discard(Exception):
    """Raise from a task to fail the job at once, without further attempts."""


class TaskNotFound(Exception):
    """A job's task path no longer imports to a task (code deployed without it)."""


class InvalidReturnValue(Exception):
    """A task returned a value that cannot be stored as JSON."""


class LeaseLost(Exception):
    """The job was rescued or cancelled while this worker ran it; its result is dropped."""


class WorkerLost(Exception):
    """Recorded on a job whose worker stopped heartbeating (crash, kill -9, lost machine)."""


class JobTimeout(Exception):
    """Recorded on an attempt that ran past its task's ``timeout``."""


__all__ = [
    "Discard",
    "InvalidReturnValue",
    "InvalidTask",
    "JobTimeout",
    "LeaseLost",
    "Retry",
    "TaskNotFound",
    "WorkerLost",
]
