"""The one insert path: every job row djjobs writes is made here, whoever asks for it.

Producers: ``JobsBackend.enqueue``/``enqueue_many`` (so ``task.enqueue()``, and through it named
events and model-change triggers), the scheduler's tick and ``run_now``, and workflows (their
steps at ``start()`` and their compensations). Each insert gets the same:

- **validation**: the task (``backend.validate_task``: Django's rules and djjobs' options; and
  ``check_findable``: workers find it by its dotted path) and the arguments (``encode_payload``:
  djjobs.payload's rules and ``MAX_PAYLOAD_BYTES``), all before anything is written;
- **columns**: ``columns()``, the task's options over the DJJOBS defaults, plus the provenance
  stamp (djjobs.provenance: the event or trigger being handled), plus the producer's own
  ``fields`` (schedule, workflow step, status);
- **TaskResult**: built before the INSERT (a refused call writes nothing);
- **signal**: ``task_enqueued`` once per job inserted, when ``signal_gate.wanted`` says a
  receiver would do something with it (Django's own receiver logs at DEBUG).

Three writes implement it: one prepared INSERT (a single job), COPY or executemany (many jobs;
db/bulk.py), and the ORM in a savepoint for a job that may meet a unique constraint (a
unique key, a schedule's fire time).
"""

import dataclasses
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, overload

from django.db import IntegrityError, OperationalError, connections, router, transaction
from django.utils import timezone

from .. import conf, flow
from ..compat import BaseTaskBackend, InvalidTask, Task, TaskResult, task_enqueued
from ..db import fast
from ..exceptions import TaskNotFound
from ..ids import uuid7, uuid7_texts
from ..payload import byte_size, encode
from ..provenance import stamped_fields
from ..registry import resolve_task
from ..results import make_result
from ..signal_gate import wanted
from ..states import ACTIVE, JobStatus

if TYPE_CHECKING:
    from ..models import Job

# A payload as the insert path writes it: (args, kwargs, args JSON text, kwargs JSON text).
Payload = tuple[list[Any], dict[str, Any], str, str]


# -- the public entry points -------------------------------------------------------------------


def enqueue(backend: BaseTaskBackend, task: Task, args: Sequence[Any], kwargs: dict[str, Any]) -> TaskResult:
    """``JobsBackend.enqueue``: insert one job in the caller's transaction (a unique key: the
    active job holding it is returned instead). The measured hot path: keep it lean."""
    backend.validate_task(task)
    check_findable(task)
    # Everything that can fail is done before the INSERT (the TaskResult too: Django's
    # TaskResult normalises args and kwargs recursively), so a refused call writes nothing
    # even outside a transaction.
    if getattr(task, "unique_key", None) or flow.uses_flow(task):
        return insert(task, args, kwargs, backend=backend, checked=True)[1]
    if getattr(task, "debounce", None) is not None:
        raise InvalidTask("debounce needs unique_key: the key names the job that later enqueues update.")
    # One plain INSERT of prepared values: the ORM's model instance and SQL compiler cost more
    # than the statement itself.
    from ..db.bulk import insert_jobs  # models: once Django's apps are loaded

    common = columns(backend, task, timezone.now())
    row = (uuid7(), *encode_payload(args, kwargs))
    result = _result(_Row(common, *row[:3]), task)
    insert_jobs(common, [row])
    if wanted(task_enqueued, type(backend), logging.DEBUG):
        task_enqueued.send(type(backend), task_result=result)
    return result


def enqueue_many(backend: BaseTaskBackend, task: Task, calls: Iterable[Any]) -> Sequence[TaskResult]:
    """``JobsBackend.enqueue_many``: one job per call (a tuple/list of args or a dict of kwargs)
    in one statement (COPY on PostgreSQL), in the caller's transaction; all or nothing."""
    from ..db.bulk import insert_jobs  # models: once Django's apps are loaded

    backend.validate_task(task)
    check_findable(task)
    if getattr(task, "unique_key", None):
        raise InvalidTask("unique_key applies to a single job: use enqueue() for unique jobs.")
    if flow.uses_flow(task):
        return _enqueue_each(backend, task, calls)
    common = columns(backend, task, timezone.now())
    limit = conf.get("MAX_PAYLOAD_BYTES")
    # A call without arguments (the usual fan-out of a no-argument task) needs no encoding:
    # its payload is a constant (6 bytes, refused only by an absurdly low limit).
    empty_ok = limit >= 6
    payloads: list[Payload] = []
    append = payloads.append
    for call in calls:
        if empty_ok and not call and type(call) in _EMPTY_CALL_TYPES:
            append(([], {}, "[]", "{}"))
        else:
            append(encode_payload(*split_call(call), limit=limit))
    if not payloads:
        return []
    rows = [(id_, *payload) for id_, payload in zip(uuid7_texts(len(payloads)), payloads)]
    # One TaskResult made the usual way, the others as copies of it with their own id and
    # arguments: every other field is the same for the whole batch. Made before the INSERT.
    first = _result(_Row(common, *rows[0][:3]), task)
    results: Sequence[TaskResult]
    if fast.enabled():
        # Made when first looked at: most callers of a big fan-out never read them.
        results = EnqueuedResults(first, rows)
    else:  # public API only: each TaskResult made by its constructor
        results = [first, *(_result(_Row(common, *row[:3]), task) for row in rows[1:])]
    insert_jobs(common, rows)
    if wanted(task_enqueued, type(backend), logging.DEBUG):
        for result in results:
            task_enqueued.send(type(backend), task_result=result)
    return results


def _enqueue_each(backend: BaseTaskBackend, task: Task, calls: Iterable[Any]) -> list[TaskResult]:
    """enqueue_many() of a task under flow control: each job gets its own keys (and FIFO jobs
    their place in their key's order), one insert each, all in one transaction."""
    from ..models import Job  # models: once Django's apps are loaded

    calls = [split_call(call) for call in calls]
    with transaction.atomic(using=router.db_for_write(Job)):
        return [insert(task, args, kwargs, backend=backend, checked=True)[1] for args, kwargs in calls]


def insert(
    task: Task,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    backend: BaseTaskBackend | None = None,
    now: datetime | None = None,
    fields: dict[str, Any] | None = None,
    guarded: bool | None = None,
    holder: bool = True,
    payload: Payload | None = None,
    checked: bool = False,
) -> tuple["Job | _Row", TaskResult]:
    """Insert one job of ``task`` for a producer other than the plain enqueue; returns (row,
    TaskResult). ``row`` is the Job (guarded) or a light row with its id and columns.

    - ``fields``: the producer's columns over the task's (``run_after``, ``status``,
      ``schedule_id``, ``workflow_run_id``...);
    - ``guarded``: insert with the ORM in a savepoint, as a job that may meet a unique
      constraint must be (default: when the job has a unique key). On a conflict with
      ``holder`` and a unique key, the active job holding the key is returned (unique
      enqueue; no signal); otherwise the IntegrityError is raised, the savepoint rolled back;
    - ``payload``: arguments already encoded by the producer (a workflow's context); else
      ``args``/``kwargs`` are checked by ``encode_payload``;
    - ``checked``: the task was validated by the caller already.
    """
    backend = backend or task.get_backend()
    if not checked:
        check_task(backend, task)
    common = columns(backend, task, now or timezone.now())
    if fields:
        common.update(fields)
    if payload is None:
        payload = encode_payload(args, {} if kwargs is None else kwargs)
    if flow.uses_flow(task):
        common.update(flow.job_fields(task, payload[0], payload[1]))
    debounce = flow.seconds("debounce", getattr(task, "debounce", None))
    if debounce is not None:
        if not common.get("unique_key"):
            raise InvalidTask("debounce needs unique_key: the key names the job that later enqueues update.")
        return _insert_debounced(task, backend, common, payload, debounce)
    if guarded is None:
        guarded = bool(common.get("unique_key") or common.get("fifo_key"))
    if guarded:
        from ..models import Job  # models: once Django's apps are loaded

        job = Job(args=payload[0], kwargs=payload[1], **common)
        row: Job | _Row = job
        result = _result(job, task)
        inserted = _insert_guarded(job, holder)
        if inserted is not job:  # the active job that holds the key: not inserted, no signal
            return inserted, make_result(inserted, task if inserted.task_path == task.module_path else None)
    else:
        from ..db.bulk import insert_jobs  # models: once Django's apps are loaded

        row_values = (uuid7(), *payload)
        row = _Row(common, *row_values[:3])
        result = _result(row, task)
        insert_jobs(common, [row_values])
    if wanted(task_enqueued, type(backend), logging.DEBUG):
        task_enqueued.send(type(backend), task_result=result)
    return row, result


def _insert_debounced(
    task: Task, backend: BaseTaskBackend, common: dict[str, Any], payload: Payload, debounce: float
) -> tuple["Job", TaskResult]:
    """A debounced enqueue: the key's job that has not started yet (READY, first attempt) takes
    these arguments and moves to now + debounce (never past its first enqueue + debounce_max);
    without one, a new job is made, due in ``debounce``. The key is a debounce key, not a unique
    key: it is held only until the job starts, so a change made while it runs makes a new job
    and is never lost. Returns (row, TaskResult); task_enqueued is sent for a new job only."""
    from ..models import Job  # models: once Django's apps are loaded

    limit = flow.seconds("debounce_max", getattr(task, "debounce_max", None))
    key = common.pop("unique_key")
    now = common["enqueued_at"]
    using = router.db_for_write(Job)
    common.update(debounce_key=key, run_after=now + timedelta(seconds=debounce))
    for _ in range(5):
        pending = Job.objects.using(using).filter(debounce_key=key, status=JobStatus.READY, attempts=0)
        found = pending.values_list("pk", "enqueued_at").first()
        if found is not None:
            pk, first = found
            run_after = now + timedelta(seconds=debounce)
            if limit is not None:
                run_after = min(run_after, first + timedelta(seconds=limit))
            if pending.filter(pk=pk).update(args=payload[0], kwargs=payload[1], run_after=run_after):
                row = Job.objects.using(using).get(pk=pk)
                return row, make_result(row, task if row.task_path == task.module_path else None)
            continue  # it started meanwhile: a new job
        row = Job(args=payload[0], kwargs=payload[1], **common)
        result = _result(row, task)
        try:
            with transaction.atomic(using=using):
                row.save(force_insert=True)
        except IntegrityError:
            continue  # another enqueuer made the key's job meanwhile: update that one
        if wanted(task_enqueued, type(backend), logging.DEBUG):
            task_enqueued.send(type(backend), task_result=result)
        return row, result
    raise InvalidTask(f"Could not enqueue debounced job {key!r}: the key is contended.")


def insert_unfindable(task_path: str, kwargs: dict[str, Any], now: datetime, **fields: Any) -> None:
    """A job whose task no longer imports (a workflow's compensation renamed since the run
    started): written so that it fails saying why. No TaskResult nor signal: there is no task."""
    from ..models import Job  # models: once Django's apps are loaded

    Job.objects.create(
        task_path=task_path,
        status=JobStatus.READY,
        run_after=now,
        enqueued_at=now,
        kwargs=kwargs,
        max_attempts=1,
        **fields,
    )


# -- the checks and the columns, shared by every producer ----------------------------------------


def check_task(backend: BaseTaskBackend, task: Task) -> None:
    """Every rule a task must meet to be enqueued on ``backend``; InvalidTask says which not."""
    backend.validate_task(task)
    check_findable(task)


def check_findable(task: Task) -> None:
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


def encode_payload(args: Iterable[Any], kwargs: dict[str, Any], limit: int | None = None) -> Payload:
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
        raise InvalidTask(
            f"Task arguments are {size} bytes encoded; the limit is {limit} (DJJOBS['MAX_PAYLOAD_BYTES'])."
        )
    return args, kwargs, args_text, kwargs_text


def columns(backend: BaseTaskBackend, task: Task, now: datetime) -> dict[str, Any]:
    """The columns of a job that come from the task, the moment and its cause (an event or a
    trigger being handled: see provenance), not from the call."""
    return {
        **stamped_fields(task.module_path),
        "task_path": task.module_path,
        "backend": backend.alias,
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


def split_call(call: Any) -> tuple[list[Any], dict[str, Any]]:
    """One item of enqueue_many(): a tuple/list of args or a dict of kwargs."""
    if isinstance(call, dict):
        return [], call
    if isinstance(call, (list, tuple)):
        return list(call), {}
    raise InvalidTask(f"enqueue_many() items are tuples of args or dicts of kwargs, got {call!r}.")


# -- the writes and the results ------------------------------------------------------------------


def _insert_guarded(job: "Job", holder: bool) -> "Job":
    """Insert ``job`` in a savepoint; with ``holder``, a unique key already held returns the
    active job holding it (a partial unique index decides). Otherwise IntegrityError.

    A FIFO job takes the next number of the sequence and goes in READY when its key is free,
    WAITING behind the key's active job otherwise (a partial unique index decides that too, so
    two concurrent enqueuers of a free key cannot both make a READY job)."""
    from ..models import Job  # models: once Django's apps are loaded

    using = router.db_for_write(Job)
    if job.fifo_key is not None:
        job.fifo_seq = fifo_sequence(using, job.fifo_key)
        if (
            job.status == JobStatus.READY
            and Job.objects.filter(fifo_key=job.fifo_key, status=JobStatus.WAITING).exists()
        ):
            # Jobs of the key wait already (their release is due, see release_stranded_fifo):
            # this one goes behind them, never ahead.
            job.status = JobStatus.WAITING
    first_status = job.status
    own_transaction = not connections[using].in_atomic_block
    for attempt in range(5):
        try:
            with transaction.atomic(using=using):
                job.save(force_insert=True)
            return job
        except OperationalError as exc:
            # MariaDB/MySQL: of two transactions waiting on each other's locks of a unique index
            # (a FIFO key released by a worker while this INSERT checks it), InnoDB ends one
            # (error 1213) and rolls it back whole. When that was this INSERT's own transaction,
            # nothing else was lost: it is tried again. In the caller's transaction, the caller
            # must retry the transaction, as for any deadlock.
            if not (own_transaction and attempt < 4 and _is_deadlock(exc, using)):
                raise
        except IntegrityError:
            if holder and job.unique_key:
                existing = Job.objects.filter(unique_key=job.unique_key, status__in=ACTIVE).first()
                if existing is not None:
                    return existing
            elif job.fifo_key is None or job.status != JobStatus.READY:
                raise
            if job.fifo_key is not None and job.status == JobStatus.READY:
                if Job.objects.filter(fifo_key=job.fifo_key).holding_fifo_key().exists():
                    job.status = JobStatus.WAITING  # behind the key's active job
                    continue
                if attempt and not (holder and job.unique_key):
                    raise  # not the FIFO key's constraint (that one's holder would be there)
            # The holder ended between our INSERT and SELECT: try again.
            job.status = first_status
    raise InvalidTask(f"Could not enqueue job {job.unique_key or job.fifo_key!r}: the key is contended.")


def _is_deadlock(exc: OperationalError, using: str) -> bool:
    return connections[using].vendor == "mysql" and bool(exc.args) and exc.args[0] == MYSQL_DEADLOCK


MYSQL_DEADLOCK = 1213  # ER_LOCK_DEADLOCK


def fifo_sequence(using: str, key: str) -> int:
    """The next number of the FIFO order: PostgreSQL's sequence (monotonic for every enqueuer);
    elsewhere the key's last number plus one (SQLite's writers take turns; on MariaDB two
    enqueuers of one key at the same instant may share a number, then the job ids order them)."""
    from ..db import statements  # imports the models: once Django's apps are loaded

    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(statements.FIFO_NEXTVAL)
        else:
            cursor.execute(statements.of(connection).FIFO_NEXT_SEQ, [key])
        return cursor.fetchone()[0]


def _result(job: "Job | _Row", task: Task) -> TaskResult:
    """make_result() for a job about to be inserted. Django's TaskResult normalises args and
    kwargs recursively: with DJJOBS['MAX_JSON_DEPTH'] raised near Python's recursion limit, a
    deep value fails here, as InvalidTask and before anything is written."""
    try:
        return make_result(job, task)
    except RecursionError:
        raise InvalidTask(
            "Task arguments are nested too deeply for Python's recursion limit: lower DJJOBS['MAX_JSON_DEPTH']."
        ) from None


_RESULT_FIELDS = tuple(f.name for f in dataclasses.fields(TaskResult))
_OWN_FIELDS = ("id", "args", "kwargs", "errors", "worker_ids")
_EMPTY_CALL_TYPES = (tuple, list, dict)


class EnqueuedResults(Sequence[TaskResult]):
    """What ``enqueue_many()`` returns: the jobs' TaskResults, in call order, as a read-only
    sequence (index, slice, iterate, ``len``, compare with a list). They are made the first time
    one is read, all at once: a fan-out whose results nobody reads does not pay for 1,000
    objects (about 3 ms per 1,000 jobs, a sixth of the call)."""

    __slots__ = ("_first", "_made", "_rows")

    def __init__(self, first: TaskResult, rows: list[Any]) -> None:
        self._first, self._rows = first, rows
        self._made: list[TaskResult] | None = None

    def _results(self) -> list[TaskResult]:
        if self._made is None:
            self._made = _results_like(self._first, self._rows)
            self._rows = []
        return self._made

    def __len__(self) -> int:
        return len(self._made) if self._made is not None else len(self._rows)

    @overload
    def __getitem__(self, index: int) -> TaskResult: ...
    @overload
    def __getitem__(self, index: slice) -> list[TaskResult]: ...
    def __getitem__(self, index: int | slice) -> TaskResult | list[TaskResult]:
        return self._results()[index]

    def __iter__(self) -> Iterator[TaskResult]:
        return iter(self._results())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple, EnqueuedResults)):
            return self._results() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # a sequence that compares by value

    def __repr__(self) -> str:
        return repr(self._results())


def _results_like(first: TaskResult, rows: Sequence[tuple[Any, ...]]) -> list[TaskResult]:
    """``first`` and a TaskResult for each other job of an enqueue_many batch: the fields every
    job of the batch shares, read from ``first`` once, and its own id and arguments, as a worker
    will read them back (TaskResult.__post_init__ would make tuples lists too). One loop, no
    call per job but the setters: this is most of a 1,000-job call's Python time."""
    shared = _shared_fields(first)
    set_id, set_args, set_kwargs, set_errors, set_worker_ids = (_setter(name) for name in _OWN_FIELDS)
    new, loads = object.__new__, json.loads
    results = [first]
    append = results.append
    for id_, _args, _kwargs, args_text, kwargs_text in rows[1:]:
        result = new(TaskResult)
        for set_field, value in shared:
            set_field(result, value)
        set_id(result, id_ if type(id_) is str else str(id_))
        set_args(result, loads(args_text) if args_text != "[]" else [])
        set_kwargs(result, loads(kwargs_text) if kwargs_text != "{}" else {})
        set_errors(result, [])
        set_worker_ids(result, [])
        append(result)
    return results


def _shared_fields(template: TaskResult) -> list[tuple[Callable[[TaskResult, Any], None], Any]]:
    """(setter, value) for each TaskResult field the jobs of a batch share, read from
    ``template`` once."""
    return [(_setter(name), getattr(template, name)) for name in _RESULT_FIELDS if name not in _OWN_FIELDS]


def _setter(name: str) -> Callable[[TaskResult, Any], None]:
    """The setter of TaskResult's field ``name`` (djjobs.db.fast.field_setter)."""
    return fast.field_setter(TaskResult, name)


class _Row:
    """A job inserted by the plain INSERT or COPY, with the attributes make_result() reads."""

    started_at = finished_at = last_attempted_at = return_value = None

    def __init__(self, common: dict[str, Any], id_: Any, args: list[Any], kwargs: dict[str, Any]) -> None:
        self.__dict__.update(common)
        self.id, self.args, self.kwargs = id_, args, kwargs
        self.errors: list[dict[str, Any]] = []
        self.worker_ids: list[str] = []


def _option(task: Task, name: str, setting: str) -> Any:
    value = getattr(task, name, None)
    return conf.get(setting) if value is None else value
