"""One job's turn on a worker: started signal, execute, complete, finished signal, log lines."""

import logging

from django.db import connections

from ..compat import task_finished, task_started
from ..registry import resolve_task
from ..results import make_result
from ..states import JobStatus
from .complete import complete
from .executor import execute

logger = logging.getLogger("djjobs")


def process(job, worker_id: str, sender=None) -> str | None:
    """Run a claimed job to its next state; returns that status, or None if the lease was lost."""
    sender = sender or _backend_class()
    task = _task_or_none(job.task_path)
    if task is not None and task_started.has_listeners(sender):
        task_started.send(sender, task_result=make_result(job, task))
    if logger.isEnabledFor(logging.INFO):
        logger.info("job started task=%s id=%s attempt=%d/%d", job.task_path, job.id, job.attempts, job.max_attempts)
    in_atomic = _atomic_state()
    outcome = execute(job, task)
    _reset_broken_connections(in_atomic)
    if not complete(job, outcome, worker_id):
        logger.warning("job result dropped task=%s id=%s: no longer owned by %s (rescued or cancelled)",
                       job.task_path, job.id, worker_id)
        return None
    _log_finish(job, outcome)
    if task is not None and job.status != JobStatus.READY and task_finished.has_listeners(sender):
        _send_finished(sender, make_result(job, task), outcome.error)
    return job.status


def _send_finished(sender, result, error) -> None:
    # Django sends task_finished inside the exception handler, so receivers can log exc_info.
    if error is None:
        task_finished.send(sender, task_result=result)
        return
    try:
        raise error
    except BaseException:
        task_finished.send(sender, task_result=result)


def _task_or_none(path):
    try:
        return resolve_task(path)
    except Exception:  # reported by execute() as the job's error
        return None


def _backend_class():
    from ..backend import JobsBackend

    return JobsBackend


def _log_finish(job, outcome) -> None:
    if outcome.succeeded:
        if logger.isEnabledFor(logging.INFO):
            logger.info("job succeeded task=%s id=%s attempt=%d duration=%.3fs",
                        job.task_path, job.id, job.attempts, outcome.duration)
        return
    error = f"{type(outcome.error).__name__}: {outcome.error}"
    if job.status == JobStatus.READY:
        logger.warning("job failed, will retry task=%s id=%s attempt=%d/%d duration=%.3fs at=%s error=%s",
                       job.task_path, job.id, job.attempts, job.max_attempts, outcome.duration,
                       job.run_after.isoformat(), error)
    else:
        logger.error("job failed task=%s id=%s attempt=%d/%d duration=%.3fs error=%s",
                     job.task_path, job.id, job.attempts, job.max_attempts, outcome.duration, error)


def _atomic_state() -> dict[str, bool]:
    return {c.alias: c.in_atomic_block for c in connections.all(initialized_only=True)}


def _reset_broken_connections(in_atomic_before: dict[str, bool]) -> None:
    """A task that broke its thread's connection (or left a transaction open) must not poison the next job."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        leaked = connection.in_atomic_block and not in_atomic_before.get(connection.alias, False)
        if leaked or (connection.errors_occurred and not connection.is_usable()):
            connection.close()
