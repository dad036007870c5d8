"""Execute: run the task's code for a claimed job, outside any transaction. Writes no rows."""

import inspect
import json
import time
from typing import Any

from .. import conf
from ..compat import Task
from ..context import JobContext, current_job_id
from ..exceptions import InvalidReturnValue
from ..lifecycle.outcome import Outcome, exception_class_path, exception_message, format_traceback  # noqa: F401
from ..payload import byte_size, encode
from ..registry import resolve_task
from ..results import make_result

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
        limit = conf.get("MAX_RETURN_VALUE_BYTES")
        # A character is at most 4 bytes: only a long text is measured.
        if limit is not None and len(text) * 4 > limit and (size := byte_size(text)) > limit:
            raise InvalidReturnValue(
                f"The return value is {size} bytes as JSON, more than DJJOBS['MAX_RETURN_VALUE_BYTES'] "
                f"({limit}). Store a large result elsewhere (a file, a model) and return a reference to it."
            )
        if not isinstance(value, (str, int, float, bool, type(None))):
            value = json.loads(text)  # as it will read back: tuples become lists
        return Outcome(return_value=value, return_json=text, duration=time.monotonic() - started)
    except BaseException as exc:  # a task's SystemExit fails the job, not the worker
        if isinstance(exc, KeyboardInterrupt):
            raise
        return Outcome(error=exc, traceback=format_traceback(exc), duration=time.monotonic() - started)
    finally:
        current_job_id.reset(running)
