"""Execute: run the task's code for a claimed job, outside any transaction. Writes no rows."""

import inspect
import json
import time
import traceback
from dataclasses import dataclass
from typing import Any

from ..compat import Task
from ..context import JobContext, current_job_id
from ..exceptions import InvalidReturnValue
from ..payload import encode
from ..registry import resolve_task
from ..results import make_result


@dataclass(slots=True)
class Outcome:
    """What one attempt produced: a JSON return value, or the exception it raised."""

    return_value: Any = None
    return_json: str = "null"  # return_value as JSON text, for batched completion
    error: BaseException | None = None
    traceback: str = ""
    duration: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.error is None


_callers: dict[int, tuple[Task, Any]] = {}


def _caller(task: Task):
    """What runs the task: ``task.call``, or for a plain function the function itself.

    Task.call() asks inspect whether the function is a coroutine function on every call;
    the answer does not change, so it is asked once per task object here.
    """
    entry = _callers.get(id(task))
    if entry is not None and entry[0] is task:
        return entry[1]
    call = task.call
    if type(task).call is Task.call and not inspect.iscoroutinefunction(task.func):
        call = task.func
    _callers[id(task)] = (task, call)
    return call


def execute(job, task: Task | None = None) -> Outcome:
    """Run ``job``; any exception (including a task that cannot be found) becomes the outcome."""
    started = time.monotonic()
    running = current_job_id.set(job.id)
    try:
        task = task or resolve_task(job.task_path)
        if job.takes_context:
            context = JobContext(
                task_result=make_result(job, task),
                job_id=job.id,
                lease_token=job.lease_token,
                checkpoint=job.checkpoint,
            )
            value = _caller(task)(context, *job.args, **job.kwargs)
        else:
            value = _caller(task)(*job.args, **job.kwargs)
        if value is None:  # most tasks return nothing
            return Outcome(duration=time.monotonic() - started)
        try:
            text = encode(value, "The return value")
        except ValueError as exc:
            raise InvalidReturnValue(str(exc)) from None
        if not isinstance(value, (str, int, float, bool, type(None))):
            value = json.loads(text)  # as it will read back: tuples become lists
        return Outcome(return_value=value, return_json=text, duration=time.monotonic() - started)
    except BaseException as exc:  # noqa: BLE001 - a task's SystemExit fails the job, not the worker
        if isinstance(exc, KeyboardInterrupt):
            raise
        return Outcome(
            error=exc,
            traceback="".join(traceback.format_exception(exc)),
            duration=time.monotonic() - started,
        )
    finally:
        current_job_id.reset(running)
