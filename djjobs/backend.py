"""JobsBackend: Django's Tasks backend that stores every job as a row in the project's database."""

import uuid
from datetime import datetime
from typing import Any

from django.apps import apps
from django.core import checks
from django.db import connections, router

from . import conf, flow
from .compat import BaseTaskBackend, InvalidTask, Task, TaskResult, TaskResultDoesNotExist
from .lifecycle import insert
from .payload import storable
from .results import make_result
from .tasks import JobTask

SQLITE_OPTIONS = {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}


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
        flow.check_options(task)
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
        from .models import Job  # not at the top: the backend loads when a task is declared

        try:
            job = Job.objects.get(pk=uuid.UUID(str(result_id)))
        except (ValueError, Job.DoesNotExist):
            raise TaskResultDoesNotExist(result_id) from None
        return make_result(job)

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        """The backend's own checks, which Django runs with the project's (djjobs.checks): djjobs
        installed, and a database it supports, configured for it."""
        errors: list[checks.CheckMessage] = []
        if not apps.is_installed("djjobs"):
            errors.append(
                checks.Error(
                    f"TASKS[{self.alias!r}] uses djjobs.backend.JobsBackend but 'djjobs' is not installed.",
                    hint="Add 'djjobs' to INSTALLED_APPS and run migrate.",
                    id="djjobs.E001",
                )
            )
            return errors
        # Not at the top: the backend loads when a task is declared, maybe before the models
        # (and without djjobs in INSTALLED_APPS, its models cannot be imported at all).
        from .models import Job

        connection = connections[router.db_for_write(Job)]
        options = connection.settings_dict.get("OPTIONS", {})
        sqlite_hint = (
            f"Set DATABASES[{connection.alias!r}]['OPTIONS'] = {SQLITE_OPTIONS} "
            "(djjobs docs, tutorial/first-task.md, 'SQLite')."
        )
        if connection.vendor == "sqlite" and not options.get("timeout"):
            errors.append(
                checks.Warning(
                    "SQLite without a busy timeout: workers and web requests will see 'database is locked'.",
                    hint=sqlite_hint,
                    id="djjobs.W001",
                )
            )
        if connection.vendor == "sqlite" and str(options.get("transaction_mode", "")).upper() != "IMMEDIATE":
            errors.append(
                checks.Warning(
                    "SQLite transactions are DEFERRED: one that reads and then writes fails at once with "
                    "'database is locked' when another process wrote meanwhile (the busy timeout does not help).",
                    hint=sqlite_hint,
                    id="djjobs.W002",
                )
            )
        if connection.vendor == "mysql":
            errors += _mysql_warnings(connection.alias, options)
        if connection.vendor not in ("sqlite", "postgresql", "mysql"):
            errors.append(
                checks.Error(
                    f"djjobs supports PostgreSQL, MariaDB, MySQL and SQLite, not {connection.vendor}.",
                    hint="Route djjobs' models to a PostgreSQL, MariaDB, MySQL or SQLite database.",
                    id="djjobs.E002",
                )
            )
        return errors


def _mysql_warnings(alias: str, options: dict) -> list[checks.CheckMessage]:
    """MariaDB/MySQL: READ COMMITTED (Django's default there) and utf8mb4 (not Django's default)."""
    warnings: list[checks.CheckMessage] = []
    # Django sets the level on every connection it opens: "read committed" unless OPTIONS say otherwise.
    level = str(options.get("isolation_level") or "read committed").lower()
    if level != "read committed":
        warnings.append(
            checks.Warning(
                f"DATABASES[{alias!r}] uses the {level.upper()} isolation level: under REPEATABLE READ, InnoDB's "
                "gap and next-key locks make claims, completions and unique enqueues wait on each other and "
                "deadlock, and a worker's reads would see the snapshot of its transaction's start.",
                hint=f"Remove 'isolation_level' from DATABASES[{alias!r}]['OPTIONS'] or set it to 'read committed'.",
                id="djjobs.W003",
            )
        )
    # Django's default charset on MySQL is utf8 (utf8mb3): no emoji or other 4-byte characters.
    charset = str(options.get("charset") or "utf8").lower()
    if charset != "utf8mb4":
        warnings.append(
            checks.Warning(
                f"DATABASES[{alias!r}] connects with charset {charset!r}: arguments, results and errors with "
                "characters outside the Basic Multilingual Plane (emoji) would be refused or mangled.",
                hint=f"Set DATABASES[{alias!r}]['OPTIONS']['charset'] = 'utf8mb4' (and create the database "
                "with CHARACTER SET utf8mb4).",
                id="djjobs.W004",
            )
        )
    return warnings
