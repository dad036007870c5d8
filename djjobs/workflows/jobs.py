"""A run's jobs: inserting a step's (or a compensation's) job, and the arguments it gets.

Shared by start (the first jobs) and advance (the next steps' arguments, the compensations).
"""

import inspect
import json
from datetime import datetime
from typing import Any

from ..compat import BaseTaskBackend, Task, task_backends
from ..exceptions import TaskNotFound
from ..lifecycle import insert
from ..models import WorkflowRun
from ..payload import encode
from ..registry import resolve_task
from ..states import JobStatus

# A job's workflow_role: one of the run's steps, or the compensation of one.
STEP, COMPENSATE = "step", "compensate"


def backend_of(task: Task) -> BaseTaskBackend:
    return task_backends[task.backend]


def accepted(task: Task, context: dict[str, Any]) -> dict[str, Any]:
    """The context's keys the task's function takes as keyword arguments."""
    try:
        parameters = list(inspect.signature(task.func).parameters.values())
    except (TypeError, ValueError):
        return dict(context)
    if getattr(task, "takes_context", False) and parameters:
        parameters = parameters[1:]  # the TaskContext
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return dict(context)
    names = {
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    return {k: v for k, v in context.items() if k in names}


def kwargs_for(path: str, spec: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """A step's arguments as its group comes up: the context, its own kwargs winning."""
    values = {**context, **spec.get("kwargs", {})}
    try:
        return accepted(resolve_task(path), values)
    except TaskNotFound:
        return values  # the job fails with TaskNotFound, which says why


def insert_job(
    run: WorkflowRun,
    task: Task,
    name: str,
    role: str,
    status: str,
    kwargs: dict[str, Any],
    now: datetime,
    *,
    from_context: bool = False,
) -> None:
    """A step's (or a compensation's) job, through the one insert path (its task was checked by
    start()). At start() its kwargs are checked as any task's arguments; later ones come from
    the run's context and are written as context_text() says."""
    payload: insert.Payload | None = (
        ([], kwargs, "[]", context_text(kwargs) if kwargs else "{}") if from_context else None
    )
    insert.insert(
        task,
        (),
        kwargs,
        backend=backend_of(task),
        now=now,
        checked=True,
        guarded=False,
        payload=payload,
        fields={
            "status": status,
            "unique_key": None,
            "run_after": now,
            "workflow_run_id": run.pk,
            "workflow_step": name,
            "workflow_role": role,
        },
    )


def context_text(kwargs: dict[str, Any]) -> str:
    """A step's kwargs from the run's context, as JSON text. The context is the input and what
    the steps returned, each checked when it was stored; but a step's non-dict return value
    sits one level down in it, so the context may be one level deeper than
    DJJOBS['MAX_JSON_DEPTH'] (or the setting was lowered since). That is written anyway: the
    completion that advances the run must not fail over it."""
    try:
        return encode(kwargs, "Workflow context")
    except ValueError:
        return json.dumps(kwargs, ensure_ascii=False, separators=(",", ":"))


def insert_compensation(run: WorkflowRun, spec: dict[str, Any], context: dict[str, Any], now: datetime) -> None:
    """A step's compensation job; when its task no longer imports, a job that fails saying so."""
    path, name = spec["compensate"], spec["name"]
    kwargs = kwargs_for(path, spec, context)
    try:
        task = resolve_task(path)
    except TaskNotFound:
        insert.insert_unfindable(
            path, kwargs, now, workflow_run_id=run.pk, workflow_step=name, workflow_role=COMPENSATE
        )
        return
    insert_job(run, task, name, COMPENSATE, JobStatus.READY, kwargs, now, from_context=True)
