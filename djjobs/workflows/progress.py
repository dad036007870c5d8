"""A run's progress: when one of its jobs finishes (or is cancelled, or retried), ``advance()``
brings the run up to date in the same transaction; a step that ended FAILED or CANCELLED stops
the run and its compensations run one at a time in reverse order; ``cancel_run()`` stops it
from outside.

Locks: the job row first (its completion), then the run row (``advance``), never the other
way round; ``advance`` skips rows it would have to wait for.
"""

import logging
import uuid
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..lifecycle import finish
from ..models import Job, RunStatus, WorkflowRun
from ..states import JobStatus
from .jobs import STEP, context_text, insert_compensation, kwargs_for

logger = logging.getLogger("djjobs")

_STOPPED = (JobStatus.FAILED, JobStatus.CANCELLED)


def advance(run_id: uuid.UUID | str) -> None:
    """Bring the run up to date with its jobs' statuses; idempotent. Called inside the
    transaction that finished one of its jobs (or cancelled, or retried one)."""
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
    with transaction.atomic():
        run = WorkflowRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status != RunStatus.RUNNING:
            return False
        _stop(run, reason, timezone.now())
        advance(run_id)  # the compensations begin in the same transaction: no run is left stalled
    return True


def _run_forward(run: WorkflowRun, steps: dict[str | None, Job], now: datetime) -> None:
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
                kwargs = kwargs_for(spec["task"], spec, context)
                by_kwargs.setdefault(context_text(kwargs), (kwargs, []))[1].append(job.pk)
        for kwargs, ids in by_kwargs.values():
            finish.release_steps(ids, now, kwargs=kwargs)
        changes: dict[str, Any] = {"context": context} if context != run.context else {}
        if skipped != run.skipped:
            changes["skipped"] = skipped
        if changes:
            _save(run, **changes)
        return
    _save(run, context=context, skipped=skipped, status=RunStatus.SUCCESSFUL, finished_at=now)


def _jobs_of(run: WorkflowRun) -> tuple[dict[str | None, Job], dict[str | None, Job]]:
    """The run's step jobs and compensation jobs, each by step name."""
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


def _stop(run: WorkflowRun, reason: str, now: datetime) -> None:
    """RUNNING -> COMPENSATING: cancel the steps not started, ask the running ones to stop."""
    logger.warning("workflow %s %s: %s; compensating", run.name, run.pk, reason)
    # The steps not started end CANCELLED, the running ones are asked to stop (lifecycle.finish).
    finish.stop_steps(Job.objects.filter(workflow_run_id=run.pk, workflow_role=STEP), now)
    _save(run, status=RunStatus.COMPENSATING, reason=reason)


def _compensate(run: WorkflowRun, steps: dict[str | None, Job], undos: dict[str | None, Job], now: datetime) -> None:
    """Once no step runs: the next compensation in reverse order, or the run's end."""
    if any(j.status in (JobStatus.READY, JobStatus.RUNNING, JobStatus.WAITING) for j in steps.values()):
        return  # a step asked to stop has not finished yet: its completion advances the run
    context = _context(run, steps)
    for spec in reversed(_flat(run.plan)):
        step = steps.get(spec["name"])
        if not spec["compensate"] or step is None or step.status != JobStatus.SUCCESSFUL:
            continue
        undo = undos.get(spec["name"])
        if undo is None:
            insert_compensation(run, spec, context, now)
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


def _context(run: WorkflowRun, steps: dict[str | None, Job]) -> dict[str, Any]:
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


def _ended(job: Job) -> str:
    if job.status == JobStatus.FAILED and job.errors:
        last = job.errors[-1]
        return f"failed ({last.get('exception_class_path', '').rsplit('.', 1)[-1]}: {last.get('message', '')})"[:500]
    return job.status.lower()


def _save(run: WorkflowRun, **changes: Any) -> None:
    for name, value in changes.items():
        setattr(run, name, value)
    run.save(update_fields=list(changes))
