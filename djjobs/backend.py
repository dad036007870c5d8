"""JobsBackend: Django's Tasks backend that stores every job as a row in the project's database."""

import dataclasses
import json
import logging
import uuid
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import conf
from .compat import (
    BaseTaskBackend,
    InvalidTask,
    Task,
    TaskResult,
    TaskResultDoesNotExist,
    task_enqueued,
)
from .exceptions import TaskNotFound
from .payload import byte_size, encode
from .provenance import stamped_fields
from .registry import resolve_task
from .signal_gate import wanted
from .results import make_result
from .ids import uuid7, uuid7_texts
from .states import ACTIVE, JobStatus
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
        if max_attempts is not None and (not isinstance(max_attempts, int) or isinstance(max_attempts, bool)
                                         or not 1 <= max_attempts <= conf.WHOLE_MAX):
            raise InvalidTask(
                f"max_attempts must be a whole number from 1 to {conf.WHOLE_MAX}, got {max_attempts!r}.")
        for name in ("retry_backoff", "timeout"):
            value = getattr(task, name, None)
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                      or not 0 <= value <= conf.SECONDS_MAX):
                raise InvalidTask(
                    f"{name} must be a number of seconds from 0 to {conf.SECONDS_MAX} (a year), got {value!r}.")
        key = getattr(task, "unique_key", None)
        if key is not None and (not isinstance(key, str) or not key or len(key) > 255):
            raise InvalidTask("unique_key must be a non-empty string of at most 255 characters.")
        if key is not None and not storable(key):
            raise InvalidTask("unique_key must not contain the NUL character (\\x00) or a lone surrogate.")
        if not self.queues:  # QUEUES = []: any queue name, but one the queue_name column can hold
            name = task.queue_name
            if not isinstance(name, str) or not name or len(name) > 64 or not storable(name):
                raise InvalidTask(f"queue_name must be a non-empty string of at most 64 characters, without "
                                  f"NUL or lone surrogates, got {name!r}.")

    # -- enqueue -------------------------------------------------------------------------

    def enqueue(self, task: Task, args, kwargs) -> TaskResult:
        """Insert the job in the caller's transaction: if it rolls back, the job never existed."""
        self.validate_task(task)
        _check_findable(task)
        # Everything that can fail is done before the INSERT (the TaskResult too: Django's
        # TaskResult normalises args and kwargs recursively), so a refused call writes nothing
        # even outside a transaction.
        if getattr(task, "unique_key", None):
            job = self._build_job(task, args, kwargs, timezone.now())
            result = _result(job, task)
            inserted = self._insert_unique(job)
            if inserted is not job:  # the active job that holds the key
                result = make_result(inserted, task if inserted.task_path == task.module_path else None)
        else:
            # One plain INSERT of prepared values: the ORM's model instance and SQL compiler
            # cost more than the statement itself.
            from .models.bulk import insert_jobs

            common = self._common_values(task, timezone.now())
            row = (uuid7(), *self._encoded_payload(args, kwargs))
            result = _result(_Row(common, *row[:3]), task)
            insert_jobs(common, [row])
        if wanted(task_enqueued, type(self), logging.DEBUG):
            task_enqueued.send(type(self), task_result=result)
        return result

    def enqueue_many(self, task: Task, calls) -> list[TaskResult]:
        """Insert one job per call in one statement (COPY on PostgreSQL), in the caller's transaction."""
        from .models.bulk import insert_jobs

        self.validate_task(task)
        _check_findable(task)
        if getattr(task, "unique_key", None):
            raise InvalidTask("unique_key applies to a single job: use enqueue() for unique jobs.")
        common = self._common_values(task, timezone.now())
        limit = conf.get("MAX_PAYLOAD_BYTES")
        payloads = [self._encoded_payload(*_split_call(call), limit=limit) for call in calls]
        rows = [(id_, *payload) for id_, payload in zip(uuid7_texts(len(payloads)), payloads)]
        if not rows:
            return []
        # One TaskResult made the usual way, the others as copies of it with their own id and
        # arguments: every other field is the same for the whole batch. Made before the INSERT,
        # as in enqueue().
        first = _result(_Row(common, *rows[0][:3]), task)
        shared = _shared_fields(first)
        results = [first, *(_result_like(shared, id_, args_text, kwargs_text)
                             for id_, _args, _kwargs, args_text, kwargs_text in rows[1:])]
        insert_jobs(common, rows)
        if wanted(task_enqueued, type(self), logging.DEBUG):  # Django's own receiver logs at DEBUG
            for result in results:
                task_enqueued.send(type(self), task_result=result)
        return results

    def _payload(self, args, kwargs) -> tuple[list, dict]:
        args, kwargs, args_text, kwargs_text = self._encoded_payload(args, kwargs)
        return json.loads(args_text), json.loads(kwargs_text)

    def _encoded_payload(self, args, kwargs, limit=None) -> tuple[list, dict, str, str]:
        """(args, kwargs, their JSON texts), after checking they are plain JSON and not too big."""
        args, kwargs = list(args), dict(kwargs)
        try:
            args_text = encode(args, "Task arguments") if args else "[]"
            kwargs_text = encode(kwargs, "Task arguments") if kwargs else "{}"
        except ValueError as exc:
            raise InvalidTask(str(exc)) from None
        size = byte_size(args_text) + byte_size(kwargs_text) + 2
        limit = conf.get("MAX_PAYLOAD_BYTES") if limit is None else limit
        if size > limit:
            raise InvalidTask(f"Task arguments are {size} bytes encoded; the limit is {limit} (DJJOBS['MAX_PAYLOAD_BYTES']).")
        return args, kwargs, args_text, kwargs_text

    def _common_values(self, task: Task, now) -> dict:
        """The columns of a job that come from the task, the moment and its cause (an event or
        a trigger being handled: see provenance), not from the call."""
        return {
            **stamped_fields(task.module_path),
            "task_path": task.module_path,
            "backend": self.alias,
            "queue_name": task.queue_name,
            "priority": task.priority,
            "status": JobStatus.READY,
            "takes_context": task.takes_context,
            "run_after": task.run_after or now,
            "enqueued_at": now,
            "max_attempts": _option(task, "max_attempts", "MAX_ATTEMPTS"),
            "retry_backoff": _option(task, "retry_backoff", "RETRY_BACKOFF"),
            "timeout": _option(task, "timeout", "TIMEOUT"),
            "unique_key": getattr(task, "unique_key", None),
        }

    def _build_job(self, task: Task, args, kwargs, now):
        from .models import Job

        args, kwargs = self._payload(args, kwargs)
        return Job(args=args, kwargs=kwargs, **self._common_values(task, now))

    def _insert_unique(self, job):
        """Insert, or return the active job holding the same unique key (a partial unique index)."""
        from .models import Job

        for _ in range(5):
            try:
                with transaction.atomic():
                    job.save(force_insert=True)
                return job
            except IntegrityError:
                existing = Job.objects.filter(unique_key=job.unique_key, status__in=ACTIVE).first()
                if existing is not None:
                    return existing
                # The holder finished between our INSERT and SELECT: try again.
        raise InvalidTask(f"Could not enqueue unique job {job.unique_key!r}: the key is contended.")

    # -- results -------------------------------------------------------------------------

    def get_result(self, result_id) -> TaskResult:
        from .models import Job

        try:
            job = Job.objects.get(pk=uuid.UUID(str(result_id)))
        except (ValueError, Job.DoesNotExist):
            raise TaskResultDoesNotExist(result_id) from None
        return make_result(job)

    def check(self, **kwargs):
        from .checks import check_backend

        return check_backend(self)


def storable(text: str) -> bool:
    """Whether a text column can hold ``text``: no NUL (PostgreSQL refuses it) and no lone
    surrogate (not UTF-8)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _result(job, task: Task) -> TaskResult:
    """make_result() for a job about to be inserted. Django's TaskResult normalises args and
    kwargs recursively: with DJJOBS['MAX_JSON_DEPTH'] raised near Python's recursion limit, a
    deep value fails here, as InvalidTask and before anything is written."""
    try:
        return make_result(job, task)
    except RecursionError:
        raise InvalidTask(
            "Task arguments are nested too deeply for Python's recursion limit: lower DJJOBS['MAX_JSON_DEPTH']."
        ) from None


def _check_findable(task: Task) -> None:
    """Workers find a job's task by its dotted path: refuse a task they could not find."""
    try:
        found = resolve_task(task.module_path)
    except TaskNotFound as exc:
        raise InvalidTask(f"Unknown task: {exc}") from None
    if found.func is not task.func:
        raise InvalidTask(
            f"Unknown task: {task.module_path!r} names another object; define the task at module "
            "level under the function's own name."
        )


_RESULT_FIELDS = tuple(f.name for f in dataclasses.fields(TaskResult))


def _result_like(shared, id_, args_text, kwargs_text) -> TaskResult:
    """A TaskResult for another job of an enqueue_many batch: the fields every job of the
    batch shares (``shared``, from _shared_fields()) and its own id and arguments, as a worker
    will read them back (TaskResult.__post_init__ would make tuples lists too)."""
    result = object.__new__(TaskResult)
    for set_field, value in shared:
        set_field(result, value)
    put = object.__setattr__
    put(result, "id", str(id_))
    put(result, "args", json.loads(args_text) if args_text != "[]" else [])
    put(result, "kwargs", json.loads(kwargs_text) if kwargs_text != "{}" else {})
    put(result, "errors", [])
    put(result, "worker_ids", [])
    return result


_OWN_FIELDS = frozenset({"id", "args", "kwargs", "errors", "worker_ids"})


def _shared_fields(template: TaskResult) -> list:
    """(setter, value) for each TaskResult field the jobs of a batch share, read from
    ``template`` once. The setter is the field's slot descriptor (TaskResult has __slots__ in
    Django 6 and the backport: a C call, and it bypasses the frozen dataclass's __setattr__),
    else a plain object.__setattr__."""
    pairs = []
    for name in _RESULT_FIELDS:
        if name in _OWN_FIELDS:
            continue
        descriptor = vars(TaskResult).get(name)
        setter = getattr(descriptor, "__set__", None)
        if setter is None:
            def setter(obj, value, _name=name):
                object.__setattr__(obj, _name, value)
        pairs.append((setter, getattr(template, name)))
    return pairs


class _Row:
    """A job inserted by enqueue_many, with the attributes make_result() reads."""

    started_at = finished_at = last_attempted_at = return_value = None

    def __init__(self, common, id_, args, kwargs):
        self.__dict__.update(common)
        self.id, self.args, self.kwargs = id_, args, kwargs
        self.errors, self.worker_ids = [], []


def _option(task: Task, name: str, setting: str):
    value = getattr(task, name, None)
    return conf.get(setting) if value is None else value


def _split_call(call) -> tuple[list, dict]:
    if isinstance(call, dict):
        return [], call
    if isinstance(call, (list, tuple)):
        return list(call), {}
    raise InvalidTask(f"enqueue_many() items are tuples of args or dicts of kwargs, got {call!r}.")
