"""Act on every job a filter matches: retry, cancel or delete them all, however many there are.

``retry_matching()``, ``cancel_matching()`` and ``delete_matching()`` take a Job queryset (the
admin's filtered list, the CLI's ``--all-matching``) and walk it in primary-key order, ``batch``
rows at a time. Each batch is its own short transaction: its rows are read, sorted into those the
action applies to and those it skips (each skip with its reason), and the first are written with
the very writes a single job's operation uses (``djjobs.lifecycle.finish``: guarded UPDATEs
checked against the state table, FIFO keys released or queued behind, workflow runs moved on).
So a million matching rows never make one long transaction, never lock the table, and a job a
worker or another operator changed meanwhile is reported as such, not overwritten.

The rules are those of ``djjobs.operations``: a workflow's step is not retried (its failure made
the run compensate, which a retry cannot undo); a retried FIFO job whose key another job holds
waits behind it (WAITING); a cancelled RUNNING job is asked to stop; only finished jobs are
deleted, and not the steps of a workflow run still under way.

Each function returns a ``Report``: how many changed and, for every other job, why not, one
count per reason (two reasons are never merged into one sentence).
"""

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.db import IntegrityError, router, transaction
from django.db.models import Q, QuerySet

from . import audit
from .lifecycle import finish
from .lifecycle.transitions import CANCELLABLE, RETRYABLE
from .models import Job
from .models.workflow import ACTIVE_RUN
from .states import ACTIVE, FINISHED, JobStatus

# Rows per transaction: small enough that a batch takes milliseconds and holds no lock for long.
BATCH = 1000


class Skip(StrEnum):
    """Why a matching job was left as it was (the report's keys, stable for scripts)."""

    SUCCEEDED = "succeeded"
    NOT_FINISHED = "not_finished"
    WORKFLOW_STEP = "workflow_step"
    UNIQUE_KEY_HELD = "unique_key_held"
    FINISHED = "finished"
    ALREADY_ASKED = "already_asked"
    RUN_UNDER_WAY = "run_under_way"
    CHANGED_MEANWHILE = "changed_meanwhile"


# What each skip means, and what to do instead where there is something to do.
REASONS = {
    Skip.SUCCEEDED: "SUCCESSFUL: nothing to retry",
    Skip.NOT_FINISHED: "not finished yet (READY, RUNNING or WAITING)",
    Skip.WORKFLOW_STEP: (
        "a workflow's step: its failure made the run compensate, which a retry cannot undo "
        "(start the workflow again; a failed compensation can be retried)"
    ),
    Skip.UNIQUE_KEY_HELD: "another active job holds the same unique key (retry once it has finished)",
    Skip.FINISHED: "already finished",
    Skip.ALREADY_ASKED: "RUNNING and already asked to stop",
    Skip.RUN_UNDER_WAY: (
        "a step of a workflow run still under way: its result is part of the run (delete it once the run has ended)"
    ),
    Skip.CHANGED_MEANWHILE: "changed or deleted meanwhile (a worker, the pruner or another operator acted first)",
}

# For delete, "not finished" says what to do about it.
DELETE_REASONS = {**REASONS, Skip.NOT_FINISHED: "not finished (cancel them first)"}

VERBS = {"retry": "Retried", "cancel": "Cancelled", "delete": "Deleted"}


@dataclass
class Report:
    """What an action did to the jobs it matched."""

    action: str  # "retry", "cancel" or "delete"
    changed: int = 0
    requested: int = 0  # cancel: RUNNING jobs asked to stop (they decide when)
    skipped: Counter = field(default_factory=Counter)  # Skip -> how many
    batches: int = 0

    def skip(self, reason: Skip, n: int = 1) -> None:
        if n:
            self.skipped[reason] += n

    @property
    def matched(self) -> int:
        return self.changed + self.requested + sum(self.skipped.values())

    def reasons(self) -> list[tuple[Skip, int, str]]:
        """(reason, how many, what it means) for each reason some job was skipped, most first."""
        wording = DELETE_REASONS if self.action == "delete" else REASONS
        return [(skip, n, wording[skip]) for skip, n in self.skipped.most_common() if n]

    def lines(self) -> list[str]:
        """The report as sentences, one per fact."""
        lines = [f"{VERBS[self.action]} {self.changed:,} job(s)."]
        if self.requested:
            lines.append(
                f"Asked {self.requested:,} running job(s) to stop: each stops at its next cancellation check "
                "(or is stopped after the grace period in process mode)."
            )
        lines.extend(f"Skipped {n:,}: {text}." for _skip, n, text in self.reasons())
        return lines

    def as_dict(self) -> dict:
        return {
            "action": self.action,
            "matched": self.matched,
            "changed": self.changed,
            "requested": self.requested,
            "skipped": {str(skip): n for skip, n, _text in self.reasons()},
            "batches": self.batches,
        }


Progress = Callable[[Report], None]
# One batch's rows (Job.values(*_FIELDS)): what a batch action reads of each job.
Rows = list[dict[str, Any]]


def retry_matching(
    jobs: QuerySet[Job], *, batch: int = BATCH, progress: Progress | None = None, user: Any = None
) -> Report:
    """Retry every FAILED or CANCELLED job of ``jobs`` (operations.retry's rules, in batches)."""
    return _act(jobs, "retry", _retry_batch, batch, progress, user)


def cancel_matching(
    jobs: QuerySet[Job], *, batch: int = BATCH, progress: Progress | None = None, user: Any = None
) -> Report:
    """Cancel every READY or WAITING job of ``jobs`` and ask the RUNNING ones to stop
    (operations.cancel's rules, in batches)."""
    return _act(jobs, "cancel", _cancel_batch, batch, progress, user)


def delete_matching(
    jobs: QuerySet[Job], *, batch: int = BATCH, progress: Progress | None = None, user: Any = None
) -> Report:
    """Delete every finished job of ``jobs``, but the steps of workflow runs still under way."""
    return _act(jobs, "delete", _delete_batch, batch, progress, user)


# -- the walk ---------------------------------------------------------------------------------

_FIELDS = ("pk", "status", "workflow_role", "cancel_requested_at", "fifo_key", "fifo_hold", "workflow_run__status")


def _act(
    jobs: QuerySet[Job],
    action: str,
    act_on: Callable[[Rows, Report, str], list[Any]],
    batch: int,
    progress: Progress | None,
    user: Any = None,
) -> Report:
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}.")
    report = Report(action)
    using = router.db_for_write(Job)
    jobs = jobs.using(using).order_by("pk")
    last = None
    while True:
        with transaction.atomic(using=using):
            page = jobs if last is None else jobs.filter(pk__gt=last)
            rows = list(page.values(*_FIELDS)[:batch])
            if not rows:
                break
            touched = act_on(rows, report, using)
            if user is not None and touched:
                _record(action, touched, user, using)
        report.batches += 1
        last = rows[-1]["pk"]
        if progress is not None:
            progress(report)
        if len(rows) < batch:
            break
    return report


# The History entry of each job an action changed (djjobs.audit), as the admin's actions word it.
AUDIT_MESSAGES = {
    "retry": "Retried (all matching): sent back to the queue",
    "cancel": "Cancelled or asked to stop (all matching)",
    "delete": "Deleted (all matching)",
}


def _record(action: str, touched: list[Any], user: Any, using: str) -> None:
    """Record, as done by ``user``, the action on the jobs of ``touched`` it changed: a retried
    job is READY or WAITING again, a cancelled one CANCELLED or asked to stop, a deleted one gone."""
    jobs = _of(touched, using)
    if action == "retry":
        changed = list(jobs.filter(status__in=(JobStatus.READY, JobStatus.WAITING)).only("id", "task_path", "status"))
    elif action == "cancel":
        changed = list(
            jobs.filter(Q(status=JobStatus.CANCELLED) | Q(cancel_requested_at__isnull=False)).only(
                "id", "task_path", "status"
            )
        )
    else:
        kept = set(jobs.values_list("pk", flat=True))
        changed = [Job(pk=pk, task_path="", status="") for pk in touched if pk not in kept]
    if changed:
        audit.record_many(
            user, changed, AUDIT_MESSAGES[action], flag=audit.DELETION if action == "delete" else audit.CHANGE
        )


def _of(ids: Iterable[Any], using: str) -> QuerySet[Job]:
    return Job.objects.using(using).filter(pk__in=ids)


# -- one batch, in its transaction --------------------------------------------------------------


def _retry_batch(rows: Rows, report: Report, using: str) -> list[Any]:
    eligible: list[Any] = []
    for row in rows:
        if row["status"] == JobStatus.SUCCESSFUL:
            report.skip(Skip.SUCCEEDED)
        elif row["status"] not in RETRYABLE:
            report.skip(Skip.NOT_FINISHED)
        elif row["workflow_role"] == "step":
            report.skip(Skip.WORKFLOW_STEP)
        else:
            eligible.append(row["pk"])
    if not eligible:
        return []
    held = 0
    try:
        with transaction.atomic(using=using):
            changed = finish.retry(_of(eligible, using).exclude(workflow_role="step"))
    except IntegrityError:
        # Some job's unique key is held by another active job: one at a time, to know which.
        changed = 0
        for pk in eligible:
            try:
                with transaction.atomic(using=using):
                    changed += finish.retry(_of([pk], using).exclude(workflow_role="step"))
            except IntegrityError:
                held += 1
    report.changed += changed
    report.skip(Skip.UNIQUE_KEY_HELD, held)
    report.skip(Skip.CHANGED_MEANWHILE, len(eligible) - changed - held)
    return eligible


def _cancel_batch(rows: Rows, report: Report, using: str) -> list[Any]:
    now_ids: list[Any] = []
    running: list[Any] = []
    for row in rows:
        status = row["status"]
        if status in CANCELLABLE or (status == JobStatus.FAILED and row["fifo_hold"] and row["fifo_key"]):
            now_ids.append(row["pk"])  # a FAILED job holding its FIFO key: cancelling lets the key move on
        elif status == JobStatus.RUNNING:
            if row["cancel_requested_at"] is None:
                running.append(row["pk"])
            else:
                report.skip(Skip.ALREADY_ASKED)
        else:
            report.skip(Skip.FINISHED)
    cancelled = finish.cancel_now(_of(now_ids, using)) if now_ids else 0
    requested = finish.request_cancel(_of(running, using)) if running else 0
    report.changed += cancelled
    report.requested += requested
    report.skip(Skip.CHANGED_MEANWHILE, len(now_ids) - cancelled + len(running) - requested)
    return now_ids + running


def _delete_batch(rows: Rows, report: Report, using: str) -> list[Any]:
    eligible: list[Any] = []
    for row in rows:
        if row["status"] in ACTIVE:
            report.skip(Skip.NOT_FINISHED)
        elif row["workflow_run__status"] in ACTIVE_RUN:
            report.skip(Skip.RUN_UNDER_WAY)
        else:
            eligible.append(row["pk"])
    if not eligible:
        return []
    # The DELETE re-checks both conditions: a job made active meanwhile stays.
    _total, per_model = (
        _of(eligible, using).filter(status__in=FINISHED).exclude(workflow_run__status__in=ACTIVE_RUN).delete()
    )
    deleted = per_model.get(Job._meta.label, 0)
    report.changed += deleted
    report.skip(Skip.CHANGED_MEANWHILE, len(eligible) - deleted)
    return eligible
