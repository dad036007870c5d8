"""A job's life, decided: the state table, the decisions of every path that changes a job's
status, and the error records they write. Pure: no ORM, no I/O (the clock is a parameter).

Every write of a status (djjobs.lifecycle.finish) is checked against TRANSITIONS before it is
made: a write that is not an edge of the table raises IllegalTransition and changes nothing.

The paths, and what each decides (tests/unit/test_lifecycle.py enumerates them):

============  ===================  ==========================================================
path          from                 to
============  ===================  ==========================================================
complete      RUNNING (owner)      SUCCESSFUL; READY (retry after backoff); FAILED (spent,
                                   Discard, bad return value); CANCELLED (cancel requested)
batch         RUNNING (owner)      SUCCESSFUL (successes only, many per statement)
timeout       RUNNING (owner)      as complete, for a JobTimeout failure
rescue        RUNNING (any owner   READY (attempts left, or claimed ahead: refunded once);
              whose worker is      FAILED (spent); CANCELLED (cancel requested)
              lost)
kill_cancel   RUNNING (owner)      CANCELLED (process mode: ignored its cancellation)
cancel        READY, WAITING       CANCELLED (RUNNING: only the request is recorded)
              FAILED (holding its  CANCELLED (fifo_on_failure="hold": the key moves on)
              FIFO key)
stop_run      READY, WAITING       CANCELLED (a workflow run stops: its steps not started)
retry         FAILED, CANCELLED    READY (due now, at least one attempt left); WAITING (its FIFO
                                   key is held by another job: it runs after that one)
release_step  WAITING              READY (a workflow's next group)
unclaim       RUNNING (owner)      READY (prefetched, never started: the attempt refunded)
fifo_next     WAITING              READY (the job holding its FIFO key ended: the next one runs)
============  ===================  ==========================================================

Signals: a path that ends a job (SUCCESSFUL, FAILED or CANCELLED) sends Django's
``task_finished`` once, after its transaction commits. FIFO: a path that ends a job releases
its key in the same transaction (fifo_next; not a FAILED job holding its key). Workflow: a path that ends a step of a
run (or retries one of its jobs) advances the run in the same transaction.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .. import conf
from ..exceptions import Discard, InvalidReturnValue
from ..payload import clean_text
from ..retry_policy import next_delay
from ..states import FINISHED, JobStatus
from .outcome import Outcome

READY, RUNNING, WAITING = JobStatus.READY, JobStatus.RUNNING, JobStatus.WAITING
SUCCESSFUL, FAILED, CANCELLED = JobStatus.SUCCESSFUL, JobStatus.FAILED, JobStatus.CANCELLED

# The allowed transitions: every guarded UPDATE of a status moves along one of these edges.
TRANSITIONS: dict[str, frozenset[str]] = {
    WAITING: frozenset({READY, CANCELLED}),
    READY: frozenset({RUNNING, CANCELLED}),
    RUNNING: frozenset({SUCCESSFUL, READY, FAILED, CANCELLED}),
    FAILED: frozenset({READY, WAITING, CANCELLED}),  # an operator's retry; cancel of a held FIFO key
    CANCELLED: frozenset({READY, WAITING}),  # an operator's retry
    SUCCESSFUL: frozenset(),
}

# Each path that writes a status: the statuses it starts from and those it may end in.
PATHS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "claim": (frozenset({READY}), frozenset({RUNNING})),
    "complete": (frozenset({RUNNING}), frozenset({SUCCESSFUL, READY, FAILED, CANCELLED})),
    "batch": (frozenset({RUNNING}), frozenset({SUCCESSFUL})),
    "timeout": (frozenset({RUNNING}), frozenset({READY, FAILED, CANCELLED})),
    "rescue": (frozenset({RUNNING}), frozenset({READY, FAILED, CANCELLED})),
    "kill_cancel": (frozenset({RUNNING}), frozenset({CANCELLED})),
    "cancel": (frozenset({READY, WAITING, FAILED}), frozenset({CANCELLED})),
    "stop_run": (frozenset({READY, WAITING}), frozenset({CANCELLED})),
    "retry": (frozenset({FAILED, CANCELLED}), frozenset({READY, WAITING})),
    "release_step": (frozenset({WAITING}), frozenset({READY})),
    "unclaim": (frozenset({RUNNING}), frozenset({READY})),
    "fifo_next": (frozenset({WAITING}), frozenset({READY})),
}

# Failures that another attempt cannot fix.
NOT_RETRYABLE = (Discard, InvalidReturnValue)

WORKER_LOST = "djjobs.exceptions.WorkerLost"
JOB_TIMEOUT = "djjobs.exceptions.JobTimeout"


class IllegalTransition(Exception):
    """A write asked for a status change that is not in TRANSITIONS (or not its path's)."""


def can_transition(source: str, target: str) -> bool:
    """Whether a job may move from ``source`` to ``target``."""
    return target in TRANSITIONS.get(source, frozenset())


def check(sources: str | Iterable[str], target: str, path: str | None = None) -> None:
    """Raise IllegalTransition unless every one of ``sources`` may move to ``target`` (on
    ``path``, when given)."""
    if isinstance(sources, str):
        sources = (sources,)
    for source in sources:
        if not can_transition(source, target):
            raise IllegalTransition(f"a job cannot go from {source} to {target}")
    if path is not None:
        starts, ends = PATHS[path]
        if target not in ends or not set(sources) <= starts:
            raise IllegalTransition(f"{path} cannot move a job from {'/'.join(sources)} to {target}")


def ends(status: str) -> bool:
    """The signal rule: a write that leaves a job in ``status`` sends task_finished (on commit)."""
    return status in FINISHED


def advances(status: str, in_run: bool, path: str = "complete") -> bool:
    """The workflow rule: the job's run moves on in the same transaction when one of its jobs
    ends, or (retry) when an ended one goes back to the queue."""
    return in_run and (status in FINISHED or path == "retry")


# -- an attempt's outcome (complete, timeout) -----------------------------------------------


def decide(job: Any, outcome: Outcome, cancel_requested: bool = False) -> tuple[str, float | None]:
    """(next status, retry delay in seconds) for an attempt's outcome.

    A failed attempt of a job whose cancellation was requested ends CANCELLED: the task
    most likely stopped because it saw ``context.is_cancelled()``.
    """
    error = outcome.error
    if error is None:  # outcome.succeeded
        return SUCCESSFUL, None
    if cancel_requested:
        return CANCELLED, None
    if isinstance(error, NOT_RETRYABLE):
        return FAILED, None
    delay = next_delay(job.attempts, job.max_attempts, job.retry_backoff, conf.get("RETRY_BACKOFF_MAX"), error)
    return (FAILED, None) if delay is None else (READY, delay)


def attempt_error(
    attempt: int,
    class_path: str,
    message: str,
    traceback: str,
    worker_id: str,
    at: datetime,
    started_at: datetime | None = None,
) -> dict[str, Any]:
    """The error record of a failed attempt (an exception of the task, or a JobTimeout),
    storable whatever the exception held (NUL, lone surrogates). ``started_at``: when the
    attempt started (the job's last_attempted_at), kept so that every attempt's start and run
    time stay known after the next attempt overwrites last_attempted_at."""
    entry = {
        "attempt": attempt,
        "exception_class_path": clean_text(class_path),
        "message": clean_text(message[:2000]),
        "traceback": clean_text(traceback),
        "worker_id": worker_id,
        "at": at.isoformat(),
    }
    if started_at is not None:
        entry["started_at"] = started_at.isoformat()
    return entry


def timeout_message(attempt: int, timeout: float, pid: int | None = None) -> str:
    """The JobTimeout's message: thread mode (no pid) or process mode (the process killed)."""
    text = f"attempt {attempt} ran past its timeout of {timeout:g}s"
    return text if pid is None else f"{text}; worker process {pid} was killed"


def timeout_traceback(message: str) -> str:
    return f"{JOB_TIMEOUT}: {message}\n"


# -- a lost worker (rescue, the supervisor's dead child) ------------------------------------


@dataclass(frozen=True, slots=True)
class Lost:
    """What becomes of a RUNNING job whose worker is lost."""

    status: str
    refund: bool  # its attempt is given back: claimed ahead, maybe never started (once per job)


def after_lost_worker(job: Any) -> Lost:
    """A job claimed ahead of a free thread (prefetched) may never have started: its attempt is
    given back, once (the worker cannot prove afterwards that it had not started it, so a second
    loss counts). Otherwise the attempt counts: a job whose cancellation was requested ends
    CANCELLED, as its worker would have decided; one without attempts left ends FAILED."""
    cancel_requested = job.cancel_requested_at is not None
    if job.claimed_ahead and not cancel_requested and not any(entry.get("counted") is False for entry in job.errors):
        return Lost(READY, True)
    if cancel_requested:
        return Lost(CANCELLED, False)
    if job.attempts >= job.max_attempts:
        return Lost(FAILED, False)
    return Lost(READY, False)


def worker_lost_error(job: Any, why: str, lost: Lost, at: datetime) -> dict[str, Any]:
    """The WorkerLost error record of a lost worker's job."""
    message = f"worker {job.worker_id!r} lost: {why}"
    entry = {
        "attempt": job.attempts,
        "exception_class_path": WORKER_LOST,
        "message": message,
        "traceback": "",
        "worker_id": job.worker_id,
        "at": at.isoformat(),
    }
    started_at = getattr(job, "last_attempted_at", None)
    if started_at is not None:
        entry["started_at"] = started_at.isoformat()
    if lost.refund:
        entry["message"] += (
            "; the job was claimed ahead and may not have started: this attempt is not counted (once per job)"
        )
        entry["counted"] = False
    elif lost.status == CANCELLED:
        entry["message"] += "; its cancellation had been requested"
    return entry


def lost_worker_changes(job: Any, why: str, now: datetime) -> dict[str, Any]:
    """The changes that release one lost RUNNING job. A released job keeps its run_after: it
    goes back to its place near the front of the queue, not behind the backlog."""
    lost = after_lost_worker(job)
    changes: dict[str, Any] = {
        "status": lost.status,
        "lease_token": None,
        "lease_expires_at": None,
        "claimed_ahead": False,
    }
    if lost.refund:
        changes["attempts"] = job.attempts - 1
        if job.attempts <= 1:  # as if never claimed
            changes.update(started_at=None, last_attempted_at=None, worker_id="")
        if job.worker_ids:
            changes["worker_ids"] = job.worker_ids[:-1]
    elif lost.status != READY:
        changes["finished_at"] = now
    changes["errors"] = [*job.errors, worker_lost_error(job, why, lost, now)]
    return changes


# -- an operator's cancel and retry ---------------------------------------------------------

CANCELLABLE = frozenset({READY, WAITING})  # cancelled at once
REQUESTABLE = frozenset({RUNNING})  # asked to stop; its worker decides
RETRYABLE = frozenset({FAILED, CANCELLED})


def on_cancel(status: str) -> str | None:
    """cancel() of a job in ``status``: "cancel" (CANCELLED now), "request" (a RUNNING job is
    asked to stop) or None (already finished)."""
    if status in CANCELLABLE:
        return "cancel"
    if status in REQUESTABLE:
        return "request"
    return None


def retry_max_attempts(max_attempts: int, attempts: int) -> int:
    """A retried job has at least one attempt left."""
    return max(max_attempts, attempts + 1)
