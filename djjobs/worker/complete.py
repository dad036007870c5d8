"""Complete: record an attempt's outcome with one UPDATE guarded by status and lease token.

Zero rows updated means the job is no longer ours (rescued after our lease expired, or
cancelled): the late result is dropped, never written over the new owner's state.
"""

import logging
from datetime import timedelta

from django.db import DataError, IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from .. import bound, conf
from ..exceptions import Discard, InvalidReturnValue
from ..payload import clean_text
from ..results import job_key
from ..retry_policy import next_delay
from ..states import JobStatus
from .executor import Outcome, exception_class_path, exception_message, format_traceback

logger = logging.getLogger("djjobs")

# Failures that another attempt cannot fix.
NOT_RETRYABLE = (Discard, InvalidReturnValue)

# Errors of the connection or the server, not of what is written: the same write may succeed
# later, so it is repeated while the lease lasts. Any other error of a write (DataError,
# IntegrityError, a UnicodeEncodeError of the driver...) would fail again the same way.
TRANSIENT = (OperationalError, InterfaceError)
# Errors of a write that are the written value's fault: a job whose own write fails with one of
# these is failed as InvalidReturnValue. Any other (a ProgrammingError during a rolling deploy,
# say) is nobody's value's fault: it propagates, and the job is rescued when its lease expires.
VALUE_ERRORS = (DataError, IntegrityError, UnicodeError, ValueError)


def error_entry(job, outcome: Outcome, worker_id: str) -> dict:
    """The error record of a failed attempt, storable whatever the exception holds (NUL, lone
    surrogates, a __str__ that raises)."""
    exc = outcome.error
    return {
        "attempt": job.attempts,
        "exception_class_path": clean_text(exception_class_path(exc)),
        "message": clean_text(exception_message(exc)[:2000]),
        "traceback": clean_text(outcome.traceback),
        "worker_id": worker_id,
        "at": timezone.now().isoformat(),
    }


def decide(job, outcome: Outcome, cancel_requested: bool = False) -> tuple[str, float | None]:
    """(next status, retry delay in seconds) for an attempt's outcome. Pure.

    A failed attempt of a job whose cancellation was requested ends CANCELLED: the task
    most likely stopped because it saw ``context.is_cancelled()``.
    """
    if outcome.succeeded:
        return JobStatus.SUCCESSFUL, None
    if cancel_requested:
        return JobStatus.CANCELLED, None
    if isinstance(outcome.error, NOT_RETRYABLE):
        return JobStatus.FAILED, None
    delay = next_delay(
        job.attempts, job.max_attempts, job.retry_backoff, conf.get("RETRY_BACKOFF_MAX"), outcome.error
    )
    return (JobStatus.FAILED, None) if delay is None else (JobStatus.READY, delay)


def complete(job, outcome: Outcome, worker_id: str) -> bool:
    """Write the outcome onto the job (and onto ``job`` itself); False if the lease was lost."""
    from ..models import Job

    now = timezone.now()
    owned = Job.objects.filter(id=job.id, status=JobStatus.RUNNING, lease_token=job.lease_token)
    # Failures are rare: one extra read to honour a cancellation request is cheap there.
    cancel_requested = not outcome.succeeded and owned.filter(cancel_requested_at__isnull=False).exists()
    status, delay = decide(job, outcome, cancel_requested)
    changes = {"status": status, "lease_token": None, "lease_expires_at": None}
    if status == JobStatus.SUCCESSFUL:
        changes.update(return_value=outcome.return_value, finished_at=now)
    else:
        changes["errors"] = [*job.errors, error_entry(job, outcome, worker_id)]
        if status == JobStatus.READY:
            changes["run_after"] = now + timedelta(seconds=delay)
        else:
            changes["finished_at"] = now
    run_id = getattr(job, "workflow_run_id", None)
    if run_id is not None and status != JobStatus.READY:
        # A workflow's step: the run moves on in the same transaction (djjobs.workflows).
        from ..workflows import advance

        connection = transaction.get_connection(owned.db)
        outermost = not connection.in_atomic_block  # not inside an atomic task's transaction
        with transaction.atomic(using=owned.db):
            if outermost:
                _relax_this_transaction(connection)
            if not owned.update(**changes):
                return False
            advance(run_id)
    elif not owned.update(**changes):
        return False
    for name, value in changes.items():
        if hasattr(job, name):
            setattr(job, name, value)
    return True



def _relax_this_transaction(connection) -> None:
    """PostgreSQL with ASYNC_COMMIT: this transaction's commit does not wait for the WAL flush
    (``SET LOCAL``: the connection's later transactions, the task's included, are unaffected).
    As for batched completions, a database crash can then only make the step run again."""
    if connection.vendor == "postgresql" and conf.get("ASYNC_COMMIT"):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO off")


def unstorable(outcome: Outcome, exc: BaseException) -> Outcome:
    """The failure to record for a success whose write the database (or its driver) refused:
    InvalidReturnValue (not retried), saying why, with the refused write's traceback."""
    error = InvalidReturnValue(clean_text(
        f"The return value could not be stored: {exception_class_path(exc)}: {exception_message(exc)}"
    ))
    error.__cause__ = exc
    return Outcome(error=error, traceback=format_traceback(error), duration=outcome.duration)


def adopt(outcome: Outcome, failure: Outcome) -> None:
    """Make ``outcome`` (a success that could not be stored) the ``failure`` that was recorded
    instead, so that the log line and task_finished tell what the job's row says."""
    outcome.return_value, outcome.return_json = None, "null"
    outcome.error, outcome.traceback = failure.error, failure.traceback


def complete_successes(items: list, worker_id: str, refused: set | None = None) -> set[str]:
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
            logger.warning("completing %d job(s) in one statement failed (%s: %s); writing them one at a time",
                           len(items), type(exc).__name__, clean_text(exception_message(exc)).strip())
        first_error = exc
    done = set()
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
            logger.error("job %s: its completion could not be written (%s: %s); it will be rescued when "
                         "its lease expires", job_key(job), type(error).__name__,
                         clean_text(exception_message(error)).strip())
            if refused is not None:
                refused.add(job_key(job))
            continue
        failure = unstorable(outcome, error)
        logger.error("job %s: its return value could not be stored (%s); failing it as InvalidReturnValue",
                     job_key(job), failure.error)
        try:
            if complete(job, failure, worker_id):
                adopt(outcome, failure)
                done.add(job_key(job))
        except TRANSIENT:
            raise
        except Exception:  # noqa: BLE001
            logger.exception("job %s: its failure could not be stored either; it will be rescued when "
                             "its lease expires", job_key(job))
            if refused is not None:
                refused.add(job_key(job))
    return done


def _write_successes(items: list, worker_id: str) -> set[str]:
    """Write many successful outcomes with one guarded UPDATE; returns the keys (id text) written.

    ``items`` are (job, outcome) pairs. Each row is still guarded by its own lease token, so
    a job rescued meanwhile is left alone (and reported by its absence from the result).
    """
    from django.db import connections, router, transaction

    from ..models import Job

    if not items:
        return set()
    now = timezone.now()
    connection = connections[router.db_for_write(Job)]
    if connection.vendor == "postgresql":
        from .claim import relax_commits

        relax_commits(connection)  # the completer's own connection
        # Three arrays, not a VALUES row per job: the statement's text is the same for every
        # batch, so the driver parses it once, and there are 3 parameters, not 3 per job.
        # Ids and tokens go as text (made once per job and per claim), not as UUID objects.
        ids, tokens, values = [], [], []
        token_texts = {}
        for job, outcome in items:
            ids.append(job_key(job))
            token = job.lease_token
            text = token_texts.get(id(token))
            if text is None:
                text = token_texts[id(token)] = str(token)
            tokens.append(text)
            values.append(None if outcome.return_value is None else outcome.return_json)
        sql = """UPDATE djjobs_job AS j SET status = 'SUCCESSFUL', return_value = v.rv, finished_at = %s,
                        lease_token = NULL, lease_expires_at = NULL
                    FROM unnest(%s::text[]::uuid[], %s::text[]::uuid[], %s::text[]::jsonb[]) AS v(id, token, rv)
                    WHERE j.id = v.id AND j.status = 'RUNNING' AND j.lease_token = v.token
                    RETURNING j.id::text"""
        done = {row[0] for row in bound.run(connection, sql, [now, ids, tokens, values], fetch=True)}
    else:  # SQLite: one transaction, so one write lock and one sync for the batch
        done = set()
        with transaction.atomic(using=connection.alias):
            for job, outcome in items:
                if Job.objects.filter(id=job.id, status=JobStatus.RUNNING, lease_token=job.lease_token).update(
                    status=JobStatus.SUCCESSFUL, return_value=outcome.return_value, finished_at=now,
                    lease_token=None, lease_expires_at=None,
                ):
                    done.add(job_key(job))
    for job, _outcome in items:
        if job_key(job) in done:
            job.status, job.finished_at = JobStatus.SUCCESSFUL, now
            job.return_value = _outcome.return_value
    return done
