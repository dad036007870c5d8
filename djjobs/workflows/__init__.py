"""Workflows: steps that run group after group, and compensations that undo them when one fails.

    from djjobs.workflows import Step, Workflow

    checkout = Workflow("checkout", [
        Step("reserve", reserve_stock, compensate=release_stock),
        [Step("charge", charge_card, compensate=refund_card), Step("notify", notify_warehouse)],
        Step("ship", ship_order),
    ])
    run = checkout.start(order_id=42)  # in the caller's transaction, like enqueue()

A run is a WorkflowRun row; each step is a Job pointing at it. ``start()`` inserts every step:
the first group READY, the others WAITING. When a step's job finishes, ``advance()`` runs in
the same transaction as the completion (one commit: a step is never done with its successors
left unreleased): it merges what the step returned into the run's context and, once every
step of the group succeeded, releases the next group (WAITING -> READY).

The context starts as ``start()``'s keyword arguments; a step that returns a dict adds its
keys, any other non-None return value is stored under the step's name. Each step's job gets
the context's keys its function accepts (every key if it takes ``**kwargs``).

A step that ends FAILED (its retries spent) or CANCELLED stops the run: the steps not started
are cancelled, running ones are asked to stop (``context.is_cancelled()``), and once none
runs, the compensations of the steps that succeeded run one at a time in reverse order, each
as a job of the run, with the context as it is then. All done: COMPENSATED. A compensation
that fails leaves the run FAILED; retrying that job resumes the compensations.

Locks: the job row first (its completion), then the run row (``advance``), never the other
way round; ``advance`` skips rows it would have to wait for.
"""

import inspect
import json
import logging
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, overload

from django.db import transaction
from django.utils import timezone

from .. import conf
from ..backend import JobsBackend
from ..compat import BaseTaskBackend, InvalidTask, Task, task_backends
from ..exceptions import TaskNotFound
from ..lifecycle import finish, insert
from ..payload import byte_size, encode, storable
from ..registry import resolve_task
from ..states import JobStatus

if TYPE_CHECKING:
    from ..models import Job, WorkflowRun

logger = logging.getLogger("djjobs")

STEP, COMPENSATE = "step", "compensate"
_STOPPED = (JobStatus.FAILED, JobStatus.CANCELLED)


class Step:
    """One step: a task, the name it has in the run (default: the task's function name),
    keyword arguments of its own (JSON; they win over the context's, and its compensation gets
    them too), and optionally the task that undoes it."""

    @overload
    def __init__(
        self,
        name_or_task: Task,
        task: None = None,
        *,
        kwargs: dict[str, Any] | None = None,
        compensate: Task | None = None,
        when: str | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self,
        name_or_task: str,
        task: Task,
        *,
        kwargs: dict[str, Any] | None = None,
        compensate: Task | None = None,
        when: str | None = None,
    ) -> None: ...

    def __init__(
        self,
        name_or_task: Any,  # Step(task) or Step(name, task); anything else is refused below
        task: Any = None,
        *,
        kwargs: dict[str, Any] | None = None,
        compensate: Task | None = None,
        when: str | None = None,
    ) -> None:
        if task is None:
            name_or_task, task = getattr(name_or_task, "name", None), name_or_task
        if not isinstance(task, Task):
            raise InvalidTask(f"A workflow step runs a task (decorate it with @djjobs.task), got {task!r}.")
        if compensate is not None and not isinstance(compensate, Task):
            raise InvalidTask(f"compensate= takes a task (decorate it with @djjobs.task), got {compensate!r}.")
        name = name_or_task
        if (
            not isinstance(name, str)
            or not name
            or len(name) > 100
            or not name.replace("_", "").replace("-", "").isalnum()
        ):
            raise InvalidTask(f"A step name is 1 to 100 letters, digits, '_' or '-', got {name!r}.")
        kwargs = dict(kwargs or {})
        try:
            encode(kwargs, f"Step {name!r}'s kwargs")
        except ValueError as exc:
            raise InvalidTask(str(exc)) from None
        if when is not None and (not isinstance(when, str) or not when):
            raise InvalidTask(f"when= names a key of the run's context, got {when!r}.")
        self.name, self.task, self.compensate, self.kwargs, self.when = name, task, compensate, kwargs, when

    def __repr__(self) -> str:
        return f"Step({self.name!r}, {self.task.module_path})"


class Workflow:
    """A named list of groups; a group is a Step or a list of Steps that run in parallel."""

    def __init__(self, name: str, steps: Iterable[Step | list[Step] | tuple[Step, ...]]) -> None:
        if not isinstance(name, str) or not name or len(name) > 200 or not storable(name):
            raise InvalidTask(
                f"A workflow name is a non-empty string of at most 200 characters, without NUL "
                f"or lone surrogates, got {name!r}."
            )
        groups = []
        for group in steps:
            group = list(group) if isinstance(group, (list, tuple)) else [group]
            if not group:
                raise InvalidTask(f"Workflow {name!r} has an empty group of steps.")
            for step in group:
                if not isinstance(step, Step):
                    raise InvalidTask(f"Workflow {name!r}: a group holds Steps, got {step!r}.")
            groups.append(group)
        if not groups:
            raise InvalidTask(f"Workflow {name!r} has no steps.")
        names = [step.name for group in groups for step in group]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InvalidTask(f"Workflow {name!r} names more than one step {', '.join(map(repr, duplicates))}.")
        self.name, self.groups = name, groups

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, {len(self.groups)} group(s))"

    def plan(self) -> list[list[dict[str, Any]]]:
        return [
            [
                {
                    "name": s.name,
                    "task": s.task.module_path,
                    "kwargs": s.kwargs,
                    "compensate": s.compensate.module_path if s.compensate else None,
                    "when": s.when,
                }
                for s in group
            ]
            for group in self.groups
        ]

    def start(self, **input: Any) -> "WorkflowRun":
        """Start a run: its row and a job per step, in the caller's transaction; the WorkflowRun."""
        from ..models import WorkflowRun

        try:
            text = encode(input, "Workflow input")
        except ValueError as exc:
            raise InvalidTask(str(exc)) from None
        limit = conf.get("MAX_PAYLOAD_BYTES")
        if byte_size(text) > limit:
            raise InvalidTask(
                f"Workflow input is {byte_size(text)} bytes encoded; the limit is {limit} "
                "(DJJOBS['MAX_PAYLOAD_BYTES'])."
            )
        for group in self.groups:
            for step in group:
                for task in filter(None, (step.task, step.compensate)):
                    backend = _backend(task)
                    if not isinstance(backend, JobsBackend):
                        raise InvalidTask(
                            f"Step {step.name!r}: {task.module_path} uses the TASKS backend "
                            f"{task.backend!r}, which is not djjobs; a workflow's jobs live in djjobs."
                        )
                    insert.check_task(backend, task)
        now = timezone.now()
        with transaction.atomic():
            run = WorkflowRun.objects.create(
                name=self.name, plan=self.plan(), input=input, context=input, created_at=now
            )
            # The first group is READY at once, unless a step of it has a when= condition: then
            # advance() decides, as for any later group (and may skip to the next one).
            conditional = any(step.when for step in self.groups[0])
            for index, group in enumerate(self.groups):
                for step in group:
                    if index == 0 and not conditional:
                        kwargs = _accepted(step.task, {**input, **step.kwargs})
                        _insert(run, step.task, step.name, STEP, JobStatus.READY, kwargs, now)
                    else:
                        _insert(run, step.task, step.name, STEP, JobStatus.WAITING, {}, now)
            if conditional:
                advance(run.pk)
                run.refresh_from_db()
        return run


# -- moving a run on ------------------------------------------------------------------------


def advance(run_id: uuid.UUID | str) -> None:
    """Bring the run up to date with its jobs' statuses; idempotent. Called inside the
    transaction that finished one of its jobs (or cancelled, or retried one)."""
    from ..models import RunStatus, WorkflowRun

    # No savepoint: inside a completion, a failure here must undo the completion too.
    with transaction.atomic(savepoint=False):
        run = WorkflowRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            return
        steps, undos = _jobs_of(run)
        now = timezone.now()
        if run.status == RunStatus.RUNNING:
            stopped = next(
                (
                    steps[s["name"]]
                    for s in _flat(run.plan)
                    if s["name"] in steps and steps[s["name"]].status in _STOPPED
                ),
                None,
            )
            if stopped is None:
                _run_forward(run, steps, now)
                return
            _stop(run, f"step {stopped.workflow_step!r} {_ended(stopped)}", now)
            steps, undos = _jobs_of(run)  # as _stop left them
        if run.status in (RunStatus.COMPENSATING, RunStatus.FAILED):
            _compensate(run, steps, undos, now)


def cancel_run(run_id: uuid.UUID | str, reason: str = "cancelled") -> bool:
    """Stop a running run and compensate what it did; False if it was not running."""
    from ..models import RunStatus, WorkflowRun

    with transaction.atomic():
        run = WorkflowRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status != RunStatus.RUNNING:
            return False
        _stop(run, reason, timezone.now())
        advance(run_id)  # the compensations begin in the same transaction: no run is left stalled
    return True


def _run_forward(run: "WorkflowRun", steps: "dict[str | None, Job]", now: datetime) -> None:
    from ..models import RunStatus

    context = _context(run, steps)
    skipped = list(run.skipped)
    for group in run.plan:
        # A step whose when= key is false in the context as its group comes up is skipped:
        # its job is deleted (it never ran) and its name recorded on the run.
        dropped = [
            steps.pop(spec["name"])
            for spec in group
            if spec.get("when")
            and not context.get(spec["when"])
            and spec["name"] not in skipped
            and spec["name"] in steps
            and steps[spec["name"]].status == JobStatus.WAITING
        ]
        if dropped:
            finish.skip_steps([j.pk for j in dropped])
            skipped += [j.workflow_step for j in dropped]
        pending = [(spec, steps.get(spec["name"])) for spec in group if spec["name"] not in skipped]
        if all(j is not None and j.status == JobStatus.SUCCESSFUL for _spec, j in pending):
            continue
        # Release the group's waiting steps: one UPDATE per distinct set of arguments.
        by_kwargs: dict[str, tuple[dict, list]] = {}
        for spec, job in pending:
            if job is not None and job.status == JobStatus.WAITING:
                kwargs = _kwargs_for(spec["task"], spec, context)
                by_kwargs.setdefault(_context_text(kwargs), (kwargs, []))[1].append(job.pk)
        for kwargs, ids in by_kwargs.values():
            finish.release_steps(ids, now, kwargs=kwargs)
        changes: dict[str, Any] = {"context": context} if context != run.context else {}
        if skipped != run.skipped:
            changes["skipped"] = skipped
        if changes:
            _save(run, **changes)
        return
    _save(run, context=context, skipped=skipped, status=RunStatus.SUCCESSFUL, finished_at=now)


def _jobs_of(run: "WorkflowRun") -> "tuple[dict[str | None, Job], dict[str | None, Job]]":
    """The run's step jobs and compensation jobs, each by step name."""
    from ..models import Job

    jobs = Job.objects.filter(workflow_run_id=run.pk).only(
        "id",
        "status",
        "task_path",
        "takes_context",
        "return_value",
        "errors",
        "workflow_step",
        "workflow_role",
        "cancel_requested_at",
    )
    steps: dict[str | None, Job] = {}
    undos: dict[str | None, Job] = {}
    for job in jobs:
        (steps if job.workflow_role == STEP else undos)[job.workflow_step] = job
    return steps, undos


def _stop(run: "WorkflowRun", reason: str, now: datetime) -> None:
    """RUNNING -> COMPENSATING: cancel the steps not started, ask the running ones to stop."""
    from ..models import Job, RunStatus

    logger.warning("workflow %s %s: %s; compensating", run.name, run.pk, reason)
    # The steps not started end CANCELLED, the running ones are asked to stop (lifecycle.finish).
    finish.stop_steps(Job.objects.filter(workflow_run_id=run.pk, workflow_role=STEP), now)
    _save(run, status=RunStatus.COMPENSATING, reason=reason)


def _compensate(
    run: "WorkflowRun", steps: "dict[str | None, Job]", undos: "dict[str | None, Job]", now: datetime
) -> None:
    """Once no step runs: the next compensation in reverse order, or the run's end."""
    from ..models import RunStatus

    if any(j.status in (JobStatus.READY, JobStatus.RUNNING, JobStatus.WAITING) for j in steps.values()):
        return  # a step asked to stop has not finished yet: its completion advances the run
    context = _context(run, steps)
    for spec in reversed(_flat(run.plan)):
        step = steps.get(spec["name"])
        if not spec["compensate"] or step is None or step.status != JobStatus.SUCCESSFUL:
            continue
        undo = undos.get(spec["name"])
        if undo is None:
            _insert_by_path(run, spec, context, now)
            _save(run, context=context, status=RunStatus.COMPENSATING, finished_at=None)
            return
        if undo.status == JobStatus.SUCCESSFUL:
            continue
        if undo.status in _STOPPED:
            if run.status != RunStatus.FAILED:
                _save(
                    run,
                    status=RunStatus.FAILED,
                    finished_at=now,
                    reason=f"{run.reason}; compensation of {spec['name']!r} {_ended(undo)}",
                )
            return
        _save(run, status=RunStatus.COMPENSATING, finished_at=None)  # under way (perhaps retried)
        return
    _save(run, context=context, status=RunStatus.COMPENSATED, finished_at=now)


# -- helpers --------------------------------------------------------------------------------


def _flat(plan: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [spec for group in plan for spec in group]


def _context(run: "WorkflowRun", steps: "dict[str | None, Job]") -> dict[str, Any]:
    """The input, then what each succeeded step returned, in the plan's order (not the order
    they finished in, so parallel steps merge the same way every time)."""
    context = dict(run.input)
    for spec in _flat(run.plan):
        job = steps.get(spec["name"])
        if job is None or job.status != JobStatus.SUCCESSFUL or job.return_value is None:
            continue
        if isinstance(job.return_value, dict):
            context.update(job.return_value)
        else:
            context[spec["name"]] = job.return_value
    return context


def _ended(job: "Job") -> str:
    if job.status == JobStatus.FAILED and job.errors:
        last = job.errors[-1]
        return f"failed ({last.get('exception_class_path', '').rsplit('.', 1)[-1]}: {last.get('message', '')})"[:500]
    return job.status.lower()


def _save(run: "WorkflowRun", **changes: Any) -> None:
    for name, value in changes.items():
        setattr(run, name, value)
    run.save(update_fields=list(changes))


def _accepted(task: Task, context: dict[str, Any]) -> dict[str, Any]:
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


def _kwargs_for(path: str, spec: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    values = {**context, **spec.get("kwargs", {})}
    try:
        return _accepted(resolve_task(path), values)
    except TaskNotFound:
        return values  # the job fails with TaskNotFound, which says why


def _backend(task: Task) -> BaseTaskBackend:
    return task_backends[task.backend]


def _insert(
    run: "WorkflowRun",
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
    the run's context and are written as _context_text() says."""
    payload: insert.Payload | None = (
        ([], kwargs, "[]", _context_text(kwargs) if kwargs else "{}") if from_context else None
    )
    insert.insert(
        task,
        (),
        kwargs,
        backend=_backend(task),
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


def _context_text(kwargs: dict[str, Any]) -> str:
    """A step's kwargs from the run's context, as JSON text. The context is the input and what
    the steps returned, each checked when it was stored; but a step's non-dict return value
    sits one level down in it, so the context may be one level deeper than
    DJJOBS['MAX_JSON_DEPTH'] (or the setting was lowered since). That is written anyway: the
    completion that advances the run must not fail over it."""
    try:
        return encode(kwargs, "Workflow context")
    except ValueError:
        return json.dumps(kwargs, ensure_ascii=False, separators=(",", ":"))


def _insert_by_path(run: "WorkflowRun", spec: dict[str, Any], context: dict[str, Any], now: datetime) -> None:
    """A step's compensation job; when its task no longer imports, a job that fails saying so."""
    path, name = spec["compensate"], spec["name"]
    kwargs = _kwargs_for(path, spec, context)
    try:
        task = resolve_task(path)
    except TaskNotFound:
        insert.insert_unfindable(
            path, kwargs, now, workflow_run_id=run.pk, workflow_step=name, workflow_role=COMPENSATE
        )
        return
    _insert(run, task, name, COMPENSATE, JobStatus.READY, kwargs, now, from_context=True)
