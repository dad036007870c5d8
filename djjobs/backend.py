"""JobsBackend: Django's Tasks backend that stores every job as a row in the project's database."""

import uuid
from datetime import datetime
from typing import Any

from django.core.checks import CheckMessage

from . import conf
from .compat import BaseTaskBackend, InvalidTask, Task, TaskResult, TaskResultDoesNotExist
from .lifecycle import insert
from .payload import storable
from .results import make_result
from .tasks import JobTask


class JobsBackend(BaseTaskBackend):
    task_class = JobTask

    # Jobs can wait for a run_after time.
    supports_defer = True
    # Coroutine functions run on the worker through async_to_sync.
    supports_async_task = True
    # Results live in the database and can be read from any process.
    supports_get_result = True
    # Workers claim higher priorities first.
    supports_priority = True

    def validate_task(self, task: Task) -> None:
        if task.run_after is not None and not isinstance(task.run_after, datetime):
            raise InvalidTask("run_after must be a datetime or a timedelta.")
        super().validate_task(task)
        max_attempts = getattr(task, "max_attempts", None)
        # The bounds of the settings of the same names (djjobs.conf): a 32-bit column; no NaN,
        # no infinity, nothing a timedelta or a thread's wait in the worker cannot hold.
        if max_attempts is not None and (
            not isinstance(max_attempts, int)
            or isinstance(max_attempts, bool)
            or not 1 <= max_attempts <= conf.WHOLE_MAX
        ):
            raise InvalidTask(f"max_attempts must be a whole number from 1 to {conf.WHOLE_MAX}, got {max_attempts!r}.")
        for name in ("retry_backoff", "timeout"):
            value = getattr(task, name, None)
            if value is not None and (
                not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= conf.SECONDS_MAX
            ):
                raise InvalidTask(
                    f"{name} must be a number of seconds from 0 to {conf.SECONDS_MAX} (a year), got {value!r}."
                )
        key = getattr(task, "unique_key", None)
        if key is not None and (not isinstance(key, str) or not key or len(key) > 255):
            raise InvalidTask("unique_key must be a non-empty string of at most 255 characters.")
        if key is not None and not storable(key):
            raise InvalidTask("unique_key must not contain the NUL character (\\x00) or a lone surrogate.")
        if not self.queues:  # QUEUES = []: any queue name, but one the queue_name column can hold
            name = task.queue_name
            if not isinstance(name, str) or not name or len(name) > 64 or not storable(name):
                raise InvalidTask(
                    f"queue_name must be a non-empty string of at most 64 characters, without "
                    f"NUL or lone surrogates, got {name!r}."
                )

    # -- enqueue: the one insert path (lifecycle/insert.py) --------------------------------
    # Its two entry points take the backend first, so they are these methods as they are, with
    # no call in between: enqueue() is the measured hot path.

    # enqueue(task, args, kwargs): insert the job in the caller's transaction (roll back and it
    # never existed); a unique key already held returns the active job holding it.
    enqueue = insert.enqueue
    # enqueue_many(task, calls): one job per call in one statement (COPY on PostgreSQL).
    enqueue_many = insert.enqueue_many

    # -- results -------------------------------------------------------------------------

    def get_result(self, result_id: str) -> TaskResult:
        from .models import Job

        try:
            job = Job.objects.get(pk=uuid.UUID(str(result_id)))
        except (ValueError, Job.DoesNotExist):
            raise TaskResultDoesNotExist(result_id) from None
        return make_result(job)

    def check(self, **kwargs: Any) -> list[CheckMessage]:
        from .checks import check_backend

        return check_backend(self)
