"""What an operator can do to jobs: retry, cancel, run now, delete.

Each action calls the operation code uses (``djjobs.operations``), job by job, and reports how
many jobs changed and, for the others, why not (the operations' guarded UPDATEs decide, so an
operator racing a worker gets an honest answer). Delete is guarded too: only finished jobs
go, in one DELETE whose WHERE re-checks the status.
"""

from collections import Counter
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from .. import audit, conf, matching, operations
from ..models import Job
from ..models.workflow import ACTIVE_RUN
from ..operations import Answer
from ..states import FINISHED, JobStatus
from .display import job_url

# One action changes at most this many selected jobs one by one (each its own guarded UPDATE);
# beyond it ("Select all N jobs" on a big list), every matching job is acted on in batches.
ACTION_LIMIT = 1000

# Not an Answer of the operations: a retry refused because the job is a workflow's step.
STEP = "step"

# (verb for the jobs that changed, why a job with each other answer did not)
WORDING: dict[str, tuple[str, dict[Any, str]]] = {
    "retry": (
        "Retried",
        {
            Answer.NOT_ALLOWED: "not FAILED or CANCELLED: only a job that ended so can be retried",
            STEP: "steps of a workflow run, which a retry cannot undo (their run compensated): start "
            "the workflow again, or retry a failed compensation on its run's page",
            Answer.CONFLICT: "another active job holds the same unique key",
        },
    ),
    "cancel": ("Cancelled", {Answer.NOT_ALLOWED: "already finished"}),
    "run_now": ("Moved to now", {Answer.NOT_ALLOWED: "not READY"}),
}
GONE = "no longer exist"

# What each operation's History entry says, by answer (only jobs that changed are recorded).
AUDIT = {
    "retry": {Answer.DONE: "Retried: sent back to the queue, due now"},
    "cancel": {Answer.DONE: "Cancelled", Answer.REQUESTED: "Cancellation requested (the job was running)"},
    "run_now": {Answer.DONE: "Run now: made due at once"},
}

OPERATIONS = {"retry": operations.retry, "cancel": operations.cancel, "run_now": operations.run_now}


def selected_ids(modeladmin, request, queryset) -> list | None:
    """The selected jobs' ids, or None when there are more than ACTION_LIMIT: then the action
    goes over every matching job in batches (all_matching), after a confirmation page."""
    ids = list(queryset.order_by().values_list("pk", flat=True)[: ACTION_LIMIT + 1])
    return None if len(ids) > ACTION_LIMIT else ids


# The actions over every job the list's filters match ("Select all N jobs"), by djjobs.matching.
MATCHING = {"retry": matching.retry_matching, "cancel": matching.cancel_matching, "delete": matching.delete_matching}
BULK_WORDS = {
    "retry": ("retry", "FAILED and CANCELLED jobs go back to the queue, due now; the others are left as they are."),
    "cancel": ("cancel", "READY and WAITING jobs are cancelled now; RUNNING ones are asked to stop."),
    "delete": ("delete", "Finished jobs are deleted, with their results and errors; unfinished ones are kept."),
}


def all_matching(modeladmin, request, queryset, name: str, action: str):
    """More jobs than one action changes one by one: confirm with their count, then act on all of
    them in short batches (each its own transaction), recorded in each job's History, and report
    what changed and, one line per reason, what did not."""
    if request.POST.get("post") != "yes":
        verb, explanation = BULK_WORDS[name]
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": _("Act on every matching job"),
            "home_label": _("Home"),
            "opts": modeladmin.model._meta,
            "count": queryset.count(),
            "verb": verb,
            "explanation": explanation,
            "action": action,
            "any_id": queryset.order_by().values_list("pk", flat=True).first(),
            "back": request.get_full_path(),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "djjobs/admin/job_bulk_confirmation.html", context)
    report = MATCHING[name](queryset, user=request.user)
    lines = report.lines()
    modeladmin.message_user(request, lines[0], messages.SUCCESS if report.changed else messages.WARNING)
    for line in lines[1:]:
        modeladmin.message_user(request, line, messages.WARNING if line.startswith("Skipped") else messages.SUCCESS)
    return None


def run(name: str, job_ids, user=None) -> Counter:
    """Apply the operation ``name`` to each job; how many jobs had each answer. Each job that
    changed is recorded in its History, as done by ``user``."""
    operation = OPERATIONS[name]
    answers: dict[Any, Any] = {job_id: operation(job_id) for job_id in job_ids}
    if name == "retry":  # two reasons behind NOT_ALLOWED, each with its own way out
        refused = [job_id for job_id, answer in answers.items() if answer == Answer.NOT_ALLOWED]
        steps = Job.objects.filter(pk__in=refused, workflow_role="step", status__in=FINISHED - {JobStatus.SUCCESSFUL})
        for job_id in steps.values_list("pk", flat=True):
            answers[job_id if job_id in answers else str(job_id)] = STEP
    for answer, message in AUDIT[name].items():
        changed = [job_id for job_id, given in answers.items() if given == answer]
        if changed:
            audit.record_many(user, Job.objects.filter(pk__in=changed).only("id", "task_path", "status"), message)
    return Counter(answers.values())


def report(modeladmin, request, name: str, answers: Counter) -> None:
    verb, reasons = WORDING[name]
    done, requested = answers[Answer.DONE], answers[Answer.REQUESTED]
    if done or not requested:
        modeladmin.message_user(request, f"{verb} {done} job(s).", messages.SUCCESS if done else messages.WARNING)
    if requested:
        modeladmin.message_user(request, cancel_requested_text(requested), messages.SUCCESS)
    why = [
        f"{n} {reasons.get(answer, GONE)}"
        for answer, n in sorted(answers.items())
        if answer not in (Answer.DONE, Answer.REQUESTED)
    ]
    if why:
        unchanged = sum(answers.values()) - done - requested
        modeladmin.message_user(request, f"{unchanged} job(s) unchanged: {'; '.join(why)}.", messages.WARNING)


def cancel_requested_text(requested: int) -> str:
    """What asking running jobs to stop does, in an operator's words."""
    grace = conf.get("CANCEL_GRACE_SECONDS")
    return (
        f"Asked {requested} running job(s) to stop. A job stops where its task checks for "
        "cancellation and then ends CANCELLED. A task that never checks keeps running: with "
        f"process workers it is stopped {grace:g} s later and ends CANCELLED; with thread workers "
        'it runs to its end and keeps its outcome. The list marks these jobs "cancel requested".'
    )


def _operation_action(name, action_name, description):
    @admin.action(description=description, permissions=["change"])
    def action(modeladmin, request, queryset):
        ids = selected_ids(modeladmin, request, queryset)
        if ids is None and name in MATCHING:
            return all_matching(modeladmin, request, queryset, name, action_name)
        if ids is None:
            modeladmin.message_user(
                request,
                f"Select at most {number_format(ACTION_LIMIT, force_grouping=True)} jobs at once "
                "(narrow the list with its filters); nothing was changed.",
                messages.ERROR,
            )
            return None
        report(modeladmin, request, name, run(name, ids, request.user))
        return None

    action.__name__ = action.__qualname__ = action_name
    return action


retry_jobs = _operation_action("retry", "retry_jobs", _("Retry selected jobs"))
cancel_jobs = _operation_action("cancel", "cancel_jobs", _("Cancel selected jobs"))
run_jobs_now = _operation_action("run_now", "run_jobs_now", _("Run selected jobs now"))


def delete_finished(job_ids, user=None) -> int:
    """Delete those of ``job_ids`` that are finished; how many went. One guarded DELETE: a job
    that a worker or an operator made active meanwhile stays. Each job deleted is recorded as
    deleted by ``user``."""
    # A step of a workflow still under way stays: its result is part of the run's context.
    deletable = Job.objects.filter(pk__in=list(job_ids), status__in=FINISHED).exclude(
        workflow_run__status__in=ACTIVE_RUN
    )
    with transaction.atomic():
        candidates = list(deletable.only("id", "task_path", "status"))
        deleted, _by_model = deletable.delete()
        if candidates and user is not None:
            kept = set(Job.objects.filter(pk__in=[job.pk for job in candidates]).values_list("pk", flat=True))
            audit.record_many(user, [job for job in candidates if job.pk not in kept], "Deleted", flag=audit.DELETION)
    return deleted


@admin.action(description=_("Delete selected finished jobs"), permissions=["delete"])
def delete_selected(modeladmin, request, queryset):
    """The site's delete action (same name), for jobs: asks first, on a page saying what goes
    and what stays, then deletes the finished ones."""
    ids = selected_ids(modeladmin, request, queryset)
    if ids is None:
        return all_matching(modeladmin, request, queryset, "delete", "delete_selected")
    if request.POST.get("post") != "yes":
        finished = Job.objects.filter(pk__in=ids, status__in=FINISHED).count()
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": _("Delete jobs?"),
            "opts": modeladmin.model._meta,
            "ids": ids,
            "finished": finished,
            "active": len(ids) - finished,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "djjobs/admin/job_delete_confirmation.html", context)
    deleted = delete_finished(ids, request.user)
    modeladmin.message_user(request, f"Deleted {deleted} job(s).", messages.SUCCESS if deleted else messages.WARNING)
    if len(ids) > deleted:
        modeladmin.message_user(
            request,
            f"{len(ids) - deleted} job(s) kept: not finished (cancel them first), a step of a "
            "workflow still under way, or already gone.",
            messages.WARNING,
        )
    return None


ACTIONS = [retry_jobs, cancel_jobs, run_jobs_now, delete_selected]


def operation_view(modeladmin, request, object_id, name):
    """POST from a job's detail page: the same operation as the list's action, for one job."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if name not in OPERATIONS or not modeladmin.has_change_permission(request):
        raise PermissionDenied
    report(modeladmin, request, name, run(name, [object_id], request.user))
    return HttpResponseRedirect(job_url(object_id))
