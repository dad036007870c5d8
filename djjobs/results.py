"""Building Django's standard TaskResult from a job row (or a claimed job)."""

from dataclasses import replace
from typing import Any

from .compat import Task, TaskError, TaskResult
from .registry import resolve_task
from .states import TO_TASK_STATUS


def _task_for(task: Task | None, job: Any) -> Task:
    task = task or resolve_task(job.task_path)
    if task.queue_name == job.queue_name and task.priority == job.priority and task.backend == job.backend:
        return task
    try:
        return replace(task, queue_name=job.queue_name, priority=job.priority, backend=job.backend)
    except Exception:  # noqa: BLE001 - the settings changed since the job was enqueued: keep the task as declared
        return task


def job_key(job: Any) -> str:
    """The job id as text: a claimed job carries it made once (``key``), a Job row does not."""
    return getattr(job, "key", None) or str(job.id)


def make_result(job: Any, task: Task | None = None, return_value: Any = None) -> TaskResult:
    """A TaskResult for anything with the Job's attributes (a Job or a ClaimedJob)."""
    result: TaskResult = TaskResult(
        task=_task_for(task, job),
        id=job_key(job),
        status=TO_TASK_STATUS[job.status],
        enqueued_at=job.enqueued_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        last_attempted_at=job.last_attempted_at,
        args=job.args,
        kwargs=job.kwargs,
        backend=job.backend,
        errors=[
            TaskError(exception_class_path=e["exception_class_path"], traceback=e.get("traceback", ""))
            for e in job.errors
        ],
        worker_ids=list(job.worker_ids),
    )
    object.__setattr__(result, "_return_value", job.return_value if return_value is None else return_value)
    return result
