"""One job's turn on a worker: started signal, execute, complete, finished signal, log lines."""

import logging

from django.db import connections, transaction

from ..backend import JobsBackend
from ..compat import task_started
from ..db import fast
from ..exceptions import LeaseLost
from ..lifecycle.finish import adopt, complete, send_finished, task_or_none, unstorable
from ..lifecycle.outage import TRANSIENT, Outage
from ..logs import direct_handler
from ..payload import clean_text
from ..results import job_key, make_result
from ..signal_gate import wanted
from ..states import FINISHED, JobStatus
from .executor import exception_message, execute

logger = logging.getLogger("djjobs")


def process(job, worker_id: str, sender=None) -> str | None:
    """Run a claimed job to its next state; returns that status, or None if the lease was lost."""
    outcome, completed = attempt(job, worker_id, sender)
    if completed is None:
        completed = complete_with_retry(job, outcome, worker_id)
    return finish(job, outcome, completed, worker_id, sender)


def attempt(job, worker_id: str, sender=None, in_atomic: dict[str, bool] | None = None):
    """Started signal and log line, then run the task: (outcome, completed).

    ``completed`` is None when the outcome still has to be written (always, except for
    atomic tasks, which complete inside their own transaction). ``in_atomic``: which of the
    thread's connections are inside a transaction block now (a worker's job thread knows:
    none); looked up when not given.
    """
    sender = sender or JobsBackend
    task = task_or_none(job.task_path)
    if task is not None and wanted(task_started, sender, logging.INFO):
        try:
            task_started.send(sender, task_result=make_result(job, task))
        except Exception:  # a receiver's failure is not the job's: it runs all the same
            logger.exception("a task_started receiver failed for job %s; the job runs all the same", job_key(job))
    if logger.isEnabledFor(logging.INFO):
        _info("job started task=%s id=%s attempt=%d/%d", job.task_path, job_key(job), job.attempts, job.max_attempts)
    if in_atomic is None:
        in_atomic = _atomic_state()
    if getattr(task, "atomic", False):
        outcome, completed = _execute_atomic(job, task, worker_id)
    else:
        outcome, completed = execute(job, task), None
    _reset_broken_connections(in_atomic)
    return outcome, completed


def finish(job, outcome, completed: bool | None, worker_id: str, sender=None) -> str | None:
    """After the completion was written (or not): log line and finished signal.

    ``completed``: True if written, False if the job was no longer ours (the guarded UPDATE
    matched no row), None if it could not be written (the error was logged where it happened).
    """
    if not completed:
        if completed is None:
            logger.error(
                "job result not recorded task=%s id=%s: the database refused it (see above); "
                "the job will be rescued when its lease expires",
                job.task_path,
                job.id,
            )
        else:
            logger.warning(
                "job result dropped task=%s id=%s: no longer owned by %s (rescued or cancelled)",
                job.task_path,
                job.id,
                worker_id,
            )
        return None
    _log_finish(job, outcome)
    if job.status in FINISHED:  # transitions.ends(), inlined on the hot path: the signal rule
        send_finished(job, outcome, sender)
    return job.status


def complete_with_retry(job, outcome, worker_id: str) -> bool:
    """Complete, riding out a database outage while the lease lasts; user code never re-runs.

    The completion is a guarded UPDATE, so repeating it is harmless. If the database stays
    away past the lease, the error propagates: the job is rescued and runs again
    (at-least-once), never lost and never completed twice.

    A success the database refuses for another reason than the connection (its value, a
    trigger, the driver) is recorded instead as an InvalidReturnValue failure (and ``outcome``
    becomes it); a failure that cannot be written raises at once (the lease decides).
    """

    def on_retry(exc, delay):
        logger.warning("job %s: completion failed (%s); retrying in %.1fs", job.id, str(exc).strip(), delay)

    try:
        return _OUTAGE.ride_out(complete, job, outcome, worker_id, on_retry=on_retry, keep_atomic=True)
    except TRANSIENT:
        raise
    except Exception as exc:
        if not outcome.succeeded:
            raise
        failure = unstorable(outcome, exc)
        logger.error(
            "job %s: its return value could not be stored (%s); failing it as InvalidReturnValue",
            job_key(job),
            failure.error,
        )
        completed = complete_with_retry(job, failure, worker_id)
        if completed:
            adopt(outcome, failure)
        return completed


_OUTAGE = Outage()


class _Rollback(Exception):
    pass


def _execute_atomic(job, task, worker_id):
    """Run the body and its guarded completion in one transaction (exactly-once DB effects).

    Success commits the task's writes together with SUCCESSFUL, or nothing at all when the
    lease was lost meanwhile. A failure rolls the task's writes back; the failure itself is
    then recorded by the ordinary completion, outside.
    """
    outcome = refused = None
    try:
        with transaction.atomic():
            outcome = execute(job, task)
            if not outcome.succeeded:
                raise _Rollback
            try:
                completed = complete(job, outcome, worker_id)
            except TRANSIENT:
                raise
            except Exception as exc:  # noqa: BLE001 - the success cannot be stored: recorded as a failure, outside
                refused = exc
                raise _Rollback from None
            if not completed:
                raise LeaseLost(f"job {job.id} is no longer owned by {worker_id}")
            return outcome, True
    except _Rollback:
        assert outcome is not None, "_Rollback is raised once execute() returned"
        if refused is not None:
            failure = unstorable(outcome, refused)
            logger.error(
                "job %s: its return value could not be stored (%s); failing it as InvalidReturnValue",
                job_key(job),
                failure.error,
            )
            adopt(outcome, failure)
        return outcome, None
    except LeaseLost:
        return outcome, False


def _info(msg: str, *args) -> None:
    """logger.info() for the two per-job lines, once the caller checked the level.

    These lines are the worker's hottest log calls. With run_workers' default handler the
    line is written directly (logs.direct_handler()); otherwise the record is made and
    handled as logger.info() would (the logger's own makeRecord, filters and handlers),
    naming the caller's file, line and function, but without findCaller()'s walk up the stack.
    """
    handler = direct_handler(logger, logging.INFO)
    if handler is not None:  # run_workers' default set-up: the same line, without a LogRecord
        handler.write_line(logging.INFO, logger.name, msg % args)
        return
    if not fast.enabled():
        logger.info(msg, *args, stacklevel=2)
        return
    frame = fast.caller_frame()
    code = frame.f_code
    logger.handle(
        logger.makeRecord(logger.name, logging.INFO, code.co_filename, frame.f_lineno, msg, args, None, code.co_name)
    )


def _log_finish(job, outcome) -> None:
    if outcome.succeeded:
        if logger.isEnabledFor(logging.INFO):
            _info(
                "job succeeded task=%s id=%s attempt=%d duration=%.3fs",
                job.task_path,
                job_key(job),
                job.attempts,
                outcome.duration,
            )
        return
    error = clean_text(f"{type(outcome.error).__name__}: {exception_message(outcome.error)}")
    if job.status == JobStatus.READY:
        logger.warning(
            "job failed, will retry task=%s id=%s attempt=%d/%d duration=%.3fs at=%s error=%s",
            job.task_path,
            job.id,
            job.attempts,
            job.max_attempts,
            outcome.duration,
            job.run_after.isoformat(),
            error,
        )
    else:
        logger.error(
            "job failed task=%s id=%s attempt=%d/%d duration=%.3fs error=%s",
            job.task_path,
            job.id,
            job.attempts,
            job.max_attempts,
            outcome.duration,
            error,
        )


def _atomic_state() -> dict[str, bool]:
    return {c.alias: c.in_atomic_block for c in connections.all(initialized_only=True)}


def _reset_broken_connections(in_atomic_before: dict[str, bool]) -> None:
    """A task that broke its thread's connection (or left a transaction open) must not poison the next job."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        leaked = connection.in_atomic_block and not in_atomic_before.get(connection.alias, False)
        if leaked:
            # The task entered transaction.atomic() and never left it. Closing the connection
            # rolls its writes back; Django's bookkeeping is left as if the block had ended,
            # so the thread's next query reconnects (connect() resets the atomic state) instead
            # of failing on a connection closed inside a transaction.
            connection.in_atomic_block = False
            connection.close()
        elif connection.errors_occurred and not connection.is_usable():
            connection.close()
