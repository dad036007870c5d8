"""djjobs: a durable, observable job system in your Django database.

The public API; everything else is reachable through its module.
"""

from .exceptions import Discard, Retry
from .tasks import JobTask, task

__all__ = ["Discard", "JobTask", "Retry", "task"]
