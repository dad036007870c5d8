"""Starting a run: its row and a job per step, in the caller's transaction (like enqueue()).

The first group's jobs are READY at once, the others WAITING until advance() releases them.
"""

from collections.abc import Sequence
from typing import Any, Protocol

from django.db import transaction
from django.utils import timezone

from .. import conf
from ..backend import JobsBackend
from ..compat import InvalidTask, Task
from ..lifecycle import insert
from ..models import WorkflowRun
from ..payload import byte_size, encode
from ..states import JobStatus
from .jobs import STEP, accepted, backend_of, insert_job
from .progress import advance


class _Step(Protocol):
    """What start_run() reads of a Step (definition.py, the layer above, which calls it)."""

    @property
    def name(self) -> str: ...
    @property
    def task(self) -> Task: ...
    @property
    def compensate(self) -> Task | None: ...
    @property
    def kwargs(self) -> dict[str, Any]: ...
    @property
    def when(self) -> str | None: ...


class _Workflow(Protocol):
    """What start_run() reads of a Workflow."""

    @property
    def name(self) -> str: ...
    @property
    def groups(self) -> Sequence[Sequence[_Step]]: ...
    def plan(self) -> list[list[dict[str, Any]]]: ...


def start_run(workflow: _Workflow, input: dict[str, Any]) -> WorkflowRun:
    """Start a run of ``workflow`` with ``input`` as its context; the WorkflowRun."""
    try:
        text = encode(input, "Workflow input")
    except ValueError as exc:
        raise InvalidTask(str(exc)) from None
    limit = conf.get("MAX_PAYLOAD_BYTES")
    if byte_size(text) > limit:
        raise InvalidTask(
            f"Workflow input is {byte_size(text)} bytes encoded; the limit is {limit} (DJJOBS['MAX_PAYLOAD_BYTES'])."
        )
    for group in workflow.groups:
        for step in group:
            for task in filter(None, (step.task, step.compensate)):
                backend = backend_of(task)
                if not isinstance(backend, JobsBackend):
                    raise InvalidTask(
                        f"Step {step.name!r}: {task.module_path} uses the TASKS backend "
                        f"{task.backend!r}, which is not djjobs; a workflow's jobs live in djjobs."
                    )
                insert.check_task(backend, task)
    now = timezone.now()
    with transaction.atomic():
        run = WorkflowRun.objects.create(
            name=workflow.name, plan=workflow.plan(), input=input, context=input, created_at=now
        )
        # The first group is READY at once, unless a step of it has a when= condition: then
        # advance() decides, as for any later group (and may skip to the next one).
        conditional = any(step.when for step in workflow.groups[0])
        for index, group in enumerate(workflow.groups):
            for step in group:
                if index == 0 and not conditional:
                    kwargs = accepted(step.task, {**input, **step.kwargs})
                    insert_job(run, step.task, step.name, STEP, JobStatus.READY, kwargs, now)
                else:
                    insert_job(run, step.task, step.name, STEP, JobStatus.WAITING, {}, now)
        if conditional:
            advance(run.pk)
            run.refresh_from_db()
    return run
