"""Every write that changes a job's status: one guarded UPDATE per transition.

``write()`` is the guard every path uses: the transition is checked against the state table
(djjobs.lifecycle.transitions; a write that is not an edge raises IllegalTransition), the
UPDATE is filtered by the status it expects and, for a RUNNING job, by its owner's lease
token, and its row count is the answer: zero rows means the job was no longer in that state
or no longer this owner's (a late result is dropped, never written over the new owner's).

Around it, for every path: the error record (transitions' builders), the workflow advance in
the same transaction when the job belongs to a run, and Django's ``task_finished`` once the
job ended (SUCCESSFUL, FAILED or CANCELLED), after the transaction commits. The worker's own
completion keeps its fast path: it sends from its thread (worker/turn.finish, gated by
signal_gate.wanted) once the write is done; the other paths send on commit here.

The batched completion of successes (the worker's hot path: one UPDATE of three unnested
arrays on PostgreSQL) is written here too, guarded the same way, row by row.
"""

import logging
import operator
import uuid
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any, cast

from django.core.exceptions import ImproperlyConfigured
from django.db import DataError, IntegrityError, connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Greatest
from django.utils import timezone

from .. import conf
from ..backend import JobsBackend
from ..compat import BaseTaskBackend, Task, TaskResult, task_finished
from ..db import bound, statements
from ..exceptions import InvalidReturnValue, JobTimeout, WorkerLost
from ..models import Job
from ..payload import clean_text
from ..registry import resolve_task
from ..results import job_key, make_result
from ..signal_gate import wanted
from ..states import FINISHED, JobStatus
from . import transitions as t
from .outage import TRANSIENT
from .outcome import Outcome, exception_class_path, exception_message, format_traceback

logger = logging.getLogger("djjobs")

READY, RUNNING, WAITING = JobStatus.READY, JobStatus.RUNNING, JobStatus.WAITING
SUCCESSFUL, FAILED, CANCELLED = JobStatus.SUCCESSFUL, JobStatus.FAILED, JobStatus.CANCELLED

# Errors of a write that are the written value's fault: a job whose own write fails with one of
# these is failed as InvalidReturnValue. Any other (a ProgrammingError during a rolling deploy,
# say) is nobody's value's fault: it propagates, and the job is rescued when its lease expires.
VALUE_ERRORS = (DataError, IntegrityError, UnicodeError, ValueError)

_ANY_OWNER = object()
_UNKNOWN = object()


# -- the guard --------------------------------------------------------------------------------


def write(
    jobs: QuerySet[Job],
    source: str | Iterable[str],
    target: str | None,
    path: str,
    token: Any = _ANY_OWNER,
    fifo: Any = _UNKNOWN,
    **changes: Any,
) -> int:
    """The one guarded UPDATE: ``jobs`` (a Job queryset) that are in ``source`` (a status, or
    several) — and, when ``token`` is given, still hold that lease — move to ``target`` with
    ``changes``. ``target`` None: a write that keeps the status (run now, a cancel request).
    Returns the row count; raises IllegalTransition, writing nothing, for a move the table
    (or the path) does not allow.

    A job that ends lets the next job of its FIFO key run, in the same transaction (release_fifo;
    a FAILED job with fifo_on_failure="hold" keeps its key). ``fifo``: the caller knows the job
    has no FIFO key (None) or has one (its key); by default it is read, for ending writes only."""
    if target is not None:
        t.check(source, target, path)
        changes["status"] = target
    elif "status" in changes:
        raise t.IllegalTransition(f"{path}: a status is written through target=, checked against the table")
    if isinstance(source, str):
        jobs = jobs.filter(status=source)
    else:
        jobs = jobs.filter(status__in=list(source))
    if token is not _ANY_OWNER:
        jobs = jobs.filter(lease_token=token)
    if target not in FINISHED or fifo is None:
        return jobs.update(**changes)
    with transaction.atomic(using=jobs.db):
        # fifo_key__isnull=False: each key is a string.
        keys = cast(
            list[tuple[str, bool]], list(jobs.filter(fifo_key__isnull=False).values_list("fifo_key", "fifo_hold"))
        )
        count = jobs.update(**changes)
        if count:
            for key, hold in keys:
                if not (hold and target == FAILED):
                    release_fifo(key, jobs.db)
        return count


def release_fifo(key: str, using: str) -> bool:
    """The job holding FIFO ``key`` ended: the next WAITING job of the key (by its sequence
    number) becomes READY, unless the key is held again (its unique constraint decides: a
    concurrent enqueuer that found the key free made a READY job, and that one holds it).
    Runs in the caller's transaction. True if a job was released."""
    if Job.objects.filter(fifo_key=key).holding_fifo_key().exists():
        return False
    following = list(
        Job.objects.filter(fifo_key=key, status=WAITING).order_by("fifo_seq", "id").values_list("pk", flat=True)[:1]
    )
    if not following:
        return False
    try:
        with transaction.atomic(using=using):
            return bool(write(Job.objects.filter(pk=following[0]), WAITING, READY, "fifo_next"))
    except IntegrityError:
        return False


def release_stranded_fifo(limit: int = 1000) -> int:
    """Keys with WAITING jobs and no job holding them: a job enqueued behind a key's last job
    while that one ended (neither transaction saw the other's row). The rescuer's sweep calls
    this; each key's next job is released. Returns how many were."""
    keys = cast(  # fifo_key__isnull=False: each key is a string
        "QuerySet[Job, str]",
        Job.objects.filter(status=WAITING, fifo_key__isnull=False)
        .exclude(fifo_key__in=Job.objects.holding_fifo_key().values("fifo_key"))
        .values_list("fifo_key", flat=True)
        .order_by("fifo_key")
        .distinct()[:limit],
    )
    using = router.db_for_write(Job)
    released = 0
    for key in list(keys):
        with transaction.atomic(using=using):
            released += release_fifo(key, using)
    return released


# -- the workflow advance ---------------------------------------------------------------------

_advance_run: Callable[[uuid.UUID], None] | None = None


def advance_runs_with(advance: Callable[[uuid.UUID], None]) -> None:
    """Hand in the function that moves a workflow run on (djjobs.workflows.advance, set by
    DjjobsConfig.ready()): the workflows sit above the life cycle, so they are called through
    this rather than imported. It is called with a run's id inside the transaction that wrote
    one of the run's jobs, so a step is never done with its successors left unreleased."""
    global _advance_run
    _advance_run = advance


def _advance(run_id: uuid.UUID) -> None:
    """A workflow's job ended (or was retried): its run moves on, in the caller's transaction."""
    if _advance_run is None:
        raise ImproperlyConfigured("A workflow's job changed before djjobs' AppConfig.ready() ran.")
    _advance_run(run_id)


# -- task_finished ----------------------------------------------------------------------------


def task_or_none(path: str) -> Task | None:
    try:
        return resolve_task(path)
    except Exception:  # noqa: BLE001 - reported by execute() as the job's error
        return None


def send_finished(job: Any, outcome: Outcome | None = None, sender: type[BaseTaskBackend] | None = None) -> None:
    """Django's task_finished for a job that reached SUCCESSFUL, FAILED or CANCELLED, when a
    receiver would do something with it (signal_gate). A receiver's exception is logged: the
    job's outcome is recorded already, and the caller goes on."""
    sender = sender or JobsBackend
    task = task_or_none(job.task_path)
    level = logging.INFO if job.status == SUCCESSFUL else logging.ERROR  # as Django logs it
    if task is not None and wanted(task_finished, sender, level):
        error = outcome.error if outcome is not None else _recorded_error(job)
        try:
            _send(sender, make_result(job, task), error)
        except Exception:
            logger.exception("job %s: a task_finished receiver failed", job_key(job))


# The error of the job whose task_finished is being sent (for OneLineFailure).
_sending_error: ContextVar[BaseException | None] = ContextVar("djjobs_sending_error", default=None)


def _send(sender: type[BaseTaskBackend], result: TaskResult, error: BaseException | None) -> None:
    # Django sends task_finished inside the exception handler, so receivers can read exc_info.
    if error is None:
        task_finished.send(sender, task_result=result)
        return
    traceback, context = error.__traceback__, error.__context__
    try:
        raise error
    except BaseException:  # noqa: BLE001 - raised only to send inside its handler, as Django does
        # Raising put this frame on top of the task's traceback; receivers see the task's own
        # (sys.exc_info() reads the handled exception's __traceback__).
        error.__traceback__, error.__context__ = traceback, context
        token = _sending_error.set(error)
        try:
            task_finished.send(sender, task_result=result)
        finally:
            _sending_error.reset(token)


class OneLineFailure(logging.Filter):
    """Django's own task_finished receiver logs a failed task at ERROR with its traceback.

    For a djjobs job that is one more copy of a traceback the job's row keeps (the admin and
    ``manage.py jobs show`` print it), and the worker has said what failed already ("job
    failed ... error=..."): a worker's log of failures would be mostly tracebacks, which read
    as if the worker crashed. On Django's loggers (``django.tasks``, ``django_tasks``) this
    filter makes that record one line, the error's class and message at its end; receivers
    still get ``sys.exc_info()``. Records not sent by djjobs are left as they are.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = _sending_error.get()
        if error is not None and record.exc_info and record.exc_info[1] is error:
            record.msg = f"{record.msg} error=%s"
            record.args = (*(record.args or ()), clean_text(f"{type(error).__name__}: {exception_message(error)}"))
            record.exc_info = record.exc_text = None
        return True


ONE_LINE_FAILURE = OneLineFailure()


def shorten_failure_lines() -> None:
    """Put OneLineFailure on Django's task loggers (DjjobsConfig.ready(); idempotent)."""
    for name in ("django.tasks", "django_tasks"):
        logging.getLogger(name).addFilter(ONE_LINE_FAILURE)


def _recorded_error(job: Any) -> BaseException | None:
    """For exc_info: the exception a job's last error entry names, when djjobs made it."""
    if job.status == SUCCESSFUL or not job.errors:
        return None
    last = job.errors[-1]
    kind = {t.WORKER_LOST: WorkerLost, t.JOB_TIMEOUT: JobTimeout}.get(last.get("exception_class_path"))
    return kind(last.get("message", "")) if kind is not None else None


def _listening() -> bool:
    sender = JobsBackend
    return wanted(task_finished, sender, logging.ERROR) or wanted(task_finished, sender, logging.INFO)


def finished_on_commit(ids: Iterable[uuid.UUID], using: str | None = None) -> None:
    """task_finished for the jobs ``ids`` that ended in this transaction, sent once it commits
    (at once outside a transaction), with their rows as committed."""
    ids = list(ids)
    if not ids or not _listening():
        return

    def send() -> None:
        for job in Job.objects.using(using).filter(id__in=ids, status__in=list(FINISHED)):
            send_finished(job)

    transaction.on_commit(send, using=using)


# -- the worker's completion ------------------------------------------------------------------


def error_entry(job: Any, outcome: Outcome, worker_id: str, at: datetime | None = None) -> dict[str, Any]:
    """The error record of a failed attempt, storable whatever the exception holds (NUL, lone
    surrogates, a __str__ that raises)."""
    exc = outcome.error
    assert exc is not None, "an error entry records a failed attempt"
    return t.attempt_error(
        job.attempts,
        exception_class_path(exc),
        exception_message(exc),
        outcome.traceback,
        worker_id,
        at or timezone.now(),
        started_at=getattr(job, "last_attempted_at", None),
    )


def complete(job: Any, outcome: Outcome, worker_id: str) -> bool:
    """Write an attempt's outcome onto the job (and onto ``job`` itself); False if the lease
    was lost. A workflow's job advances its run in the same transaction. Sends no signal:
    the worker does (process.finish), once this returned."""
    now = timezone.now()
    mine = Job.objects.filter(id=job.id)
    # Failures are rare: one extra read to honour a cancellation request is cheap there.
    cancel_requested = (
        not outcome.succeeded
        and mine.filter(status=RUNNING, lease_token=job.lease_token, cancel_requested_at__isnull=False).exists()
    )
    status, delay = t.decide(job, outcome, cancel_requested)
    changes: dict[str, Any] = {"lease_token": None, "lease_expires_at": None}
    if status == SUCCESSFUL:
        changes.update(return_value=outcome.return_value, finished_at=now)
    else:
        changes["errors"] = [*job.errors, error_entry(job, outcome, worker_id, now)]
        if status == READY:
            assert delay is not None, "decide() gives a retry its delay"
            changes["run_after"] = now + timedelta(seconds=delay)
        else:
            changes["finished_at"] = now
    run_id = getattr(job, "workflow_run_id", None)
    if run_id is not None and t.advances(status, True):
        connection = transaction.get_connection(mine.db)
        outermost = not connection.in_atomic_block  # not inside an atomic task's transaction
        with transaction.atomic(using=mine.db):
            if outermost:
                _relax_this_transaction(connection)
            if not write(mine, RUNNING, status, "complete", job.lease_token, fifo=_fifo_of(job), **changes):
                return False
            _advance(run_id)
    elif not write(mine, RUNNING, status, "complete", job.lease_token, fifo=_fifo_of(job), **changes):
        return False
    changes["status"] = status
    for name, value in changes.items():
        if hasattr(job, name):
            setattr(job, name, value)
    return True


def _relax_this_transaction(connection: BaseDatabaseWrapper) -> None:
    """PostgreSQL with ASYNC_COMMIT: this transaction's commit does not wait for the WAL flush
    (``SET LOCAL``: the connection's later transactions, the task's included, are unaffected).
    As for batched completions, a database crash can then only make the step run again."""
    if connection.vendor == "postgresql" and conf.get("ASYNC_COMMIT"):
        with connection.cursor() as cursor:
            cursor.execute(statements.RELAX_THIS_TRANSACTION)


def unstorable(outcome: Outcome, exc: BaseException) -> Outcome:
    """The failure to record for a success whose write the database (or its driver) refused:
    InvalidReturnValue (not retried), saying why, with the refused write's traceback."""
    error = InvalidReturnValue(
        clean_text(f"The return value could not be stored: {exception_class_path(exc)}: {exception_message(exc)}")
    )
    error.__cause__ = exc
    return Outcome(error=error, traceback=format_traceback(error), duration=outcome.duration)


def adopt(outcome: Outcome, failure: Outcome) -> None:
    """Make ``outcome`` (a success that could not be stored) the ``failure`` that was recorded
    instead, so that the log line and task_finished tell what the job's row says."""
    outcome.return_value, outcome.return_json = None, "null"
    outcome.error, outcome.traceback = failure.error, failure.traceback


def time_out(job: Any, worker_id: str, pid: int | None = None) -> bool:
    """Fail an attempt that ran past its timeout (thread mode: ``pid`` None; process mode: the
    process ``pid`` was killed) with a JobTimeout, retried per its policy; task_finished when it
    ended. False if the job was no longer this worker's. Database errors propagate."""
    message = t.timeout_message(job.attempts, job.timeout, pid)
    outcome = Outcome(
        error=JobTimeout(message), traceback=t.timeout_traceback(message), duration=job.timeout if pid is None else 0.0
    )
    if not complete(job, outcome, worker_id):
        return False
    if t.ends(job.status):
        send_finished(job, outcome)  # as the worker would have, had the job ended there
    return True


def relax_commits(connection: BaseDatabaseWrapper) -> None:
    """PostgreSQL: this connection's commits need not wait for the WAL flush (DJJOBS['ASYNC_COMMIT']).

    Used only on the worker's own connections (claims, batched completions, sweeps), never
    on those that run task code. A database crash can then forget the last few milliseconds
    of them: a forgotten claim leaves the job READY, a forgotten completion leaves it RUNNING
    until it is rescued; either way the job runs again (at-least-once), and atomic tasks,
    which complete in their own durable transaction, are unaffected.
    """
    if connection.vendor != "postgresql" or not conf.get("ASYNC_COMMIT"):
        return
    connection.ensure_connection()
    raw = connection.connection
    if getattr(connection, "_djjobs_relaxed", None) is not raw:
        with connection.cursor() as cursor:
            cursor.execute(statements.RELAX_CONNECTION)
        connection._djjobs_relaxed = raw  # type: ignore[attr-defined]  # djjobs' own mark on the connection


# -- batched completion of successes ----------------------------------------------------------


def _fifo_of(job: Any) -> Any:
    """What write() needs to know of a job's FIFO key: a claimed job carries it (None: none)."""
    return getattr(job, "fifo_key", _UNKNOWN)


def complete_successes(items: list[tuple[Any, Outcome]], worker_id: str, refused: set[str] | None = None) -> set[str]:
    """Write many successful outcomes; returns the keys (id text) written.

    One guarded UPDATE (_write_successes). If the database refuses it for another reason than
    the connection (TRANSIENT errors propagate: the caller repeats the write), the jobs are
    written again one at a time, so that a value one job returned never fails the others; the
    job whose own write fails is failed as InvalidReturnValue (complete(), guarded as any
    failure: its outcome becomes that failure, see adopt()) and is among the keys returned.
    A job whose failure cannot be written either is logged and its key added to ``refused``:
    its lease expires and the rescuer takes it.
    """
    try:
        return _write_successes(items, worker_id)
    except TRANSIENT:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the driver raises for one value
        if len(items) > 1:
            logger.warning(
                "completing %d job(s) in one statement failed (%s: %s); writing them one at a time",
                len(items),
                type(exc).__name__,
                clean_text(exception_message(exc)).strip(),
            )
        first_error = exc
    done: set[str] = set()
    for item in items:
        job, outcome = item
        if len(items) > 1:
            try:
                done |= _write_successes([item], worker_id)
                continue
            except TRANSIENT:
                raise
            except Exception as exc:  # noqa: BLE001
                error = exc
        else:
            error = first_error
        if not isinstance(error, VALUE_ERRORS):  # not the value's fault: left to the rescuer
            if len(items) == 1:
                raise error
            logger.error(
                "job %s: its completion could not be written (%s: %s); it will be rescued when its lease expires",
                job_key(job),
                type(error).__name__,
                clean_text(exception_message(error)).strip(),
            )
            if refused is not None:
                refused.add(job_key(job))
            continue
        failure = unstorable(outcome, error)
        logger.error(
            "job %s: its return value could not be stored (%s); failing it as InvalidReturnValue",
            job_key(job),
            failure.error,
        )
        try:
            if complete(job, failure, worker_id):
                adopt(outcome, failure)
                done.add(job_key(job))
        except TRANSIENT:
            raise
        except Exception:
            logger.exception(
                "job %s: its failure could not be stored either; it will be rescued when its lease expires",
                job_key(job),
            )
            if refused is not None:
                refused.add(job_key(job))
    return done


# statements.SUCCESSES_PG is that transition, for every row: three arrays, not a VALUES row per
# job, so its text is the same for every batch (the driver parses it once) and there are 3
# parameters, not 3 per job.
t.check(RUNNING, SUCCESSFUL, "batch")


def _write_successes(items: list[tuple[Any, Outcome]], worker_id: str) -> set[str]:
    """Write many successful outcomes with one guarded UPDATE; returns the keys (id text) written.

    ``items`` are (job, outcome) pairs. Each row is still guarded by its own lease token, so
    a job rescued meanwhile is left alone (and reported by its absence from the result).
    """
    if not items:
        return set()
    now = timezone.now()
    connection = connections[router.db_for_write(Job)]
    keys = None
    if connection.vendor == "postgresql":
        # FIFO jobs release their keys' next jobs in the transaction of their completion.
        keys = {job.fifo_key for job, _ in items if getattr(job, "fifo_key", None)}
    if keys:
        relax_commits(connection)  # the completer's own connection
        with transaction.atomic(using=connection.alias):
            done = _write_successes_pg(connection, items, now)
            _release_fifo_pg(connection, sorted(keys))
    elif connection.vendor == "postgresql":
        relax_commits(connection)  # the completer's own connection
        done = _write_successes_pg(connection, items, now)
    elif connection.vendor == "mysql" and not any(getattr(job, "fifo_key", None) for job, _ in items):
        done = _write_successes_mysql(connection, items, now)
    else:  # SQLite: one transaction, so one write lock and one sync for the batch
        done = _write_each(Job, connection, items, now)
    for job, _outcome in items:
        if job_key(job) in done:
            job.status, job.finished_at = SUCCESSFUL, now
            job.return_value = _outcome.return_value
    return done


def _write_successes_pg(connection: BaseDatabaseWrapper, items: list[tuple[Any, Outcome]], now: datetime) -> set[str]:
    """statements.SUCCESSES_PG for ``items``; the keys (id text) written."""
    # Ids and tokens go as text (made once per job and per claim), not as UUID objects.
    ids, tokens, values = [], [], []
    token_texts: dict[int, str] = {}
    for job, outcome in items:
        ids.append(job_key(job))
        token = job.lease_token
        text = token_texts.get(id(token))
        if text is None:
            text = token_texts[id(token)] = str(token)
        tokens.append(text)
        values.append(None if outcome.return_value is None else outcome.return_json)
    return {
        row[0]
        for row in bound.run(connection, statements.of(connection).SUCCESSES_PG, [now, ids, tokens, values], fetch=True)
    }


def _write_successes_mysql(connection: BaseDatabaseWrapper, items: list[Any], now: datetime) -> set[str]:
    """statements.successes_mysql for ``items`` (no FIFO job among them: those release their
    keys job by job); the keys (id text) written. MariaDB/MySQL have no UPDATE ... RETURNING:
    when fewer rows matched than were sent (a job rescued meanwhile), the written ones are read
    back by the completion's own finished_at, in the same transaction."""
    text = str if connection.features.has_native_uuid_field else operator.attrgetter("hex")
    params: list[Any] = []
    for job, outcome in items:
        params += (text(job.id), text(job.lease_token), None if outcome.return_value is None else outcome.return_json)
    finished_at = connection.ops.adapt_datetimefield_value(now)
    sql = statements.of(connection)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(sql.successes_mysql(len(items)), [*params, finished_at])
        if cursor.rowcount == len(items):
            return {job_key(job) for job, _ in items}
        ids = [text(job.id) for job, _ in items]
        cursor.execute(sql.succeeded_at_mysql(len(ids)), [finished_at, *ids])
        written = {uuid.UUID(str(row[0])) for row in cursor.fetchall()}
    return {job_key(job) for job, _ in items if job.id in written}


# statements.RELEASE_FIFO_PG is that transition, for the next job of each key.
t.check(WAITING, READY, "fifo_next")


def _release_fifo_pg(connection: BaseDatabaseWrapper, keys: list[str]) -> None:
    """The next job of each of ``keys`` (their jobs just ended) READY, in one statement; key by
    key when a concurrent enqueuer took one of the keys meanwhile (release_fifo decides)."""
    try:
        with transaction.atomic(using=connection.alias):
            with connection.cursor() as cursor:
                cursor.execute(statements.of(connection).RELEASE_FIFO_PG, [keys])
    except IntegrityError:
        for key in keys:
            release_fifo(key, connection.alias)


def _write_each(
    Job: type[Job], connection: BaseDatabaseWrapper, items: list[tuple[Any, Outcome]], now: datetime
) -> set[str]:
    """Successes written one guarded UPDATE each, in one transaction."""
    done: set[str] = set()
    with transaction.atomic(using=connection.alias):
        for job, outcome in items:
            if write(
                Job.objects.filter(id=job.id),
                RUNNING,
                SUCCESSFUL,
                "batch",
                job.lease_token,
                fifo=_fifo_of(job),
                return_value=outcome.return_value,
                finished_at=now,
                lease_token=None,
                lease_expires_at=None,
            ):
                done.add(job_key(job))
    return done


# -- a lost worker: rescue, the supervisor's dead child ---------------------------------------


def release_lost(jobs: QuerySet[Job], why: str, batch: int = 100) -> int:
    """Return these RUNNING jobs (their worker is lost) to READY, counting the lost attempt;
    FAILED if none remain, CANCELLED if their cancellation was requested, an attempt given back
    once to a job claimed ahead (transitions.after_lost_worker). Returns how many changed.

    Rows are locked with SKIP LOCKED so rescuers on many workers split the work; each
    change is guarded by the lease token it saw, so a worker completing at the same
    instant wins or loses cleanly. Ended jobs send task_finished once this commits.
    """
    now = timezone.now()
    released = 0
    with transaction.atomic():
        rows = list(
            jobs.select_for_update(skip_locked=True)
            .filter(status=RUNNING)
            .only(
                "id",
                "attempts",
                "max_attempts",
                "errors",
                "lease_token",
                "worker_id",
                "worker_ids",
                "workflow_run_id",
                "cancel_requested_at",
                "claimed_ahead",
                "last_attempted_at",
            )[:batch]
        )
        runs, ended = set(), []
        for job in rows:
            changes = t.lost_worker_changes(job, why, now)
            status = changes.pop("status")
            changed = write(Job.objects.filter(id=job.id), RUNNING, status, "rescue", job.lease_token, **changes)
            released += changed
            if changed and t.ends(status):
                ended.append(job.id)
                run_id = job.workflow_run_id
                if run_id is not None and t.advances(status, True):
                    runs.add(run_id)
        for run_id in sorted(runs):  # a workflow step that ended: its run moves on in this transaction
            _advance(run_id)
        finished_on_commit(ended)
    return released


def kill_cancelled(job: Any) -> bool:
    """Process mode: the job ignored its cancellation and its process was killed: CANCELLED."""
    with transaction.atomic():
        if not write(
            Job.objects.filter(id=job.id),
            RUNNING,
            CANCELLED,
            "kill_cancel",
            job.lease_token,
            finished_at=timezone.now(),
            lease_token=None,
            lease_expires_at=None,
        ):
            return False
        if job.workflow_run_id is not None:
            _advance(job.workflow_run_id)
        finished_on_commit([job.id])
    return True


# -- give-back of prefetched jobs -------------------------------------------------------------

t.check(RUNNING, READY, "unclaim")  # statements.unclaim_pg/_sqlite are that transition, for every row


def unclaim(jobs: Iterable[Any]) -> int:
    """Give claimed jobs that never started back to the queue, as if never claimed.

    A worker stopping gracefully does this with the jobs it prefetched: their attempt is
    not counted and they keep their place (run_after). Guarded by status and lease token,
    like a completion. Returns how many were given back.
    """
    jobs = list(jobs)
    if not jobs:
        return 0
    connection = connections[router.db_for_write(Job)]
    if connection.vendor == "postgresql":
        params = [value for job in jobs for value in (job.id, job.lease_token)]
        sql = statements.of(connection).unclaim_pg(len(jobs))
    elif connection.vendor == "mysql":
        # MariaDB >= 10.7 stores UUIDs in its UUID type, MySQL in char(32).
        text = str if connection.features.has_native_uuid_field else operator.attrgetter("hex")
        ids = [text(job.id) for job in jobs]
        params = ids + [value for job in jobs for value in (text(job.id), text(job.lease_token))]
        sql = statements.of(connection).unclaim_mysql(len(jobs))
    else:
        params = [value for job in jobs for value in (job.id.hex, job.lease_token.hex)]
        sql = statements.of(connection).unclaim_sqlite(len(jobs))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# -- an operator's cancel, retry and run now --------------------------------------------------


def cancel_now(jobs: QuerySet[Job]) -> int:
    """READY or WAITING jobs -> CANCELLED, and FAILED jobs holding their FIFO key (the key moves
    on); a workflow's step makes its run compensate. Returns how many were cancelled."""
    with transaction.atomic(using=jobs.db):
        ids = list(
            jobs.filter(
                Q(status__in=list(t.CANCELLABLE)) | Q(status=FAILED, fifo_hold=True, fifo_key__isnull=False)
            ).values_list("id", flat=True)
        )
        cancelled = (
            write(jobs.filter(id__in=ids), t.CANCELLABLE | {FAILED}, CANCELLED, "cancel", finished_at=timezone.now())
            if ids
            else 0
        )
        if not cancelled:
            return 0
        _advance_runs_of(jobs)
        finished_on_commit(ids, jobs.db)
    return cancelled


def request_cancel(jobs: QuerySet[Job]) -> int:
    """Ask RUNNING jobs to stop (``context.is_cancelled()``); not a change of status. Returns
    how many had not been asked yet."""
    return write(
        jobs.filter(cancel_requested_at__isnull=True), RUNNING, None, "cancel", cancel_requested_at=timezone.now()
    )


def retry(jobs: QuerySet[Job]) -> int:
    """FAILED or CANCELLED jobs -> READY, due now, with at least one attempt left
    (transitions.retry_max_attempts); a job whose FIFO key another job holds -> WAITING, behind
    it. IntegrityError: another active job holds the unique key."""
    changes = {
        "run_after": timezone.now(),
        "finished_at": None,
        "cancel_requested_at": None,
        "max_attempts": Greatest(F("max_attempts"), F("attempts") + 1),
    }
    with transaction.atomic(using=jobs.db):
        changed = write(jobs.filter(fifo_key__isnull=True), t.RETRYABLE, READY, "retry", **changes)
        for pk in jobs.filter(fifo_key__isnull=False, status__in=list(t.RETRYABLE)).values_list("pk", flat=True):
            one = jobs.filter(pk=pk)
            try:
                with transaction.atomic(using=jobs.db):
                    changed += write(one, t.RETRYABLE, READY, "retry", **changes)
            except IntegrityError:
                if one.filter(unique_key__isnull=False).exists():
                    raise
                changed += write(one, t.RETRYABLE, WAITING, "retry", **changes)
        if changed:
            _advance_runs_of(jobs)
    return changed


def run_now(jobs: QuerySet[Job]) -> int:
    """Make READY jobs due at once (their run_after moves to now); not a change of status."""
    return write(jobs, READY, None, "run_now", run_after=timezone.now())


def _advance_runs_of(jobs: QuerySet[Job]) -> None:
    for run_id in sorted(set(jobs.exclude(workflow_run_id=None).values_list("workflow_run_id", flat=True))):
        _advance(run_id)


# -- workflow steps ---------------------------------------------------------------------------


def stop_steps(steps: QuerySet[Job], now: datetime) -> None:
    """A workflow run stops: its steps not started (WAITING, READY) are CANCELLED; its running
    ones are asked to stop. A running step's row may be locked by its own completion, which
    will advance the run itself: it is skipped rather than waited for (lock order: job, then run)."""
    waiting = steps.filter(status__in=list(t.CANCELLABLE))
    ids = list(waiting.values_list("id", flat=True)) if _listening() else None
    write(
        waiting if ids is None else Job.objects.filter(id__in=ids),
        t.CANCELLABLE,
        CANCELLED,
        "stop_run",
        finished_at=now,
    )
    if ids:
        finished_on_commit(ids)
    running = list(
        steps.filter(status=RUNNING, cancel_requested_at__isnull=True)
        .select_for_update(skip_locked=True)
        .values_list("id", flat=True)
    )
    if running:
        write(Job.objects.filter(id__in=running), RUNNING, None, "stop_run", cancel_requested_at=now)


def release_steps(ids: Iterable[uuid.UUID], now: datetime, **changes: Any) -> int:
    """A workflow's next steps: WAITING -> READY, due now."""
    return write(Job.objects.filter(pk__in=ids), WAITING, READY, "release_step", run_after=now, **changes)


def skip_steps(ids: Iterable[uuid.UUID]) -> int:
    """Steps whose when= condition is false as their group comes up: their WAITING jobs never
    run and are deleted (the run records their names)."""
    return Job.objects.filter(pk__in=ids, status=WAITING).delete()[0]
