"""The WorkflowRun admin: each run's steps group by group with their jobs, its context, why it
stopped; and an action that cancels runs (their completed steps are compensated).

Read-only: runs are written by djjobs.workflows. The cancel action needs the change
permission on workflow runs.
"""

import json
from typing import cast

from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from .. import audit
from ..models import Job, WorkflowRun
from ..models.workflow import ACTIVE_RUN
from ..states import JobStatus
from ..workflows import COMPENSATE, STEP, cancel_run
from .action_guard import ActionGuard
from .display import STYLESHEET, job_link, moment_field, short_time, status_badge
from .list_guard import ListGuard

ACTION_LIMIT = 100

# How much of a run's input its list row shows, and its tooltip.
INPUT_SHOWN = 60
INPUT_TOOLTIP = 500


@admin.action(description=_("Cancel selected runs (compensate their completed steps)"), permissions=["cancel"])
def cancel_runs(modeladmin, request, queryset):
    ids = list(queryset.order_by().values_list("pk", flat=True)[: ACTION_LIMIT + 1])
    if len(ids) > ACTION_LIMIT:
        modeladmin.message_user(request, f"Select at most {ACTION_LIMIT} runs at once.", messages.ERROR)
        return
    reason = f"cancelled by {request.user.get_username()} in the admin"
    done = [run_id for run_id in ids if cancel_run(run_id, reason)]
    audit.record_many(
        request.user, WorkflowRun.objects.filter(pk__in=done), "Cancelled (its completed steps compensated)"
    )
    cancelled = len(done)
    modeladmin.message_user(
        request,
        f"Cancelled {cancelled} run(s); their completed steps are being compensated.",
        messages.SUCCESS if cancelled else messages.WARNING,
    )
    if len(ids) > cancelled:
        modeladmin.message_user(request, f"{len(ids) - cancelled} run(s) left alone: not running.", messages.WARNING)


@admin.register(WorkflowRun)
class WorkflowRunAdmin(ListGuard, ActionGuard, admin.ModelAdmin):
    list_display = ("name", "input_summary", "status_badge", "progress", "created", "finished", "reason_short")
    list_filter = ("status", "name")
    search_fields = ("=id", "name")
    list_per_page = 50
    show_full_result_count = False
    actions = [cancel_runs]
    fieldsets = [
        (None, {"fields": ("id", "name", "status_badge", "reason", "created_at_display", "finished_at_display")}),
        (_("Steps"), {"fields": ("steps_table",)}),  # the whole width: no label beside it
        (_("Input and context"), {"fields": ("input_pretty", "context_pretty")}),
    ]
    readonly_fields = [name for _title, options in fieldsets for name in cast(tuple[str, ...], options["fields"])]

    created_at_display = moment_field("created_at", _("started"))
    finished_at_display = moment_field("finished_at", _("finished"))

    class Media:
        css = {"all": (STYLESHEET,)}

    def get_queryset(self, request):
        steps = Job.objects.filter(workflow_run=OuterRef("pk"), workflow_role=STEP).order_by().values("workflow_run")
        return (
            super()
            .get_queryset(request)
            .annotate(
                step_total=Coalesce(Subquery(steps.annotate(n=Count("pk")).values("n")), 0),
                step_done=Coalesce(
                    Subquery(steps.filter(status=JobStatus.SUCCESSFUL).annotate(n=Count("pk")).values("n")), 0
                ),
            )
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # nothing on a run is edited by hand

    def has_delete_permission(self, request, obj=None):
        # A run under way is cancelled first: deleting it would delete the jobs workers run.
        if obj is not None and not obj.is_finished:
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset):
        queryset.exclude(status__in=ACTIVE_RUN).delete()

    def has_cancel_permission(self, request):
        return request.user.has_perm("djjobs.change_workflowrun")

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, run):
        return status_badge(run.status)

    @admin.display(description=_("input"))
    def input_summary(self, run):
        """What tells runs of one workflow apart: their input (``order_id=1042``), cut short,
        whole in the tooltip."""
        data = run.input if isinstance(run.input, dict) else {"input": run.input}
        if not data:
            return "-"
        shown = ", ".join(f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in data.items())
        whole = json.dumps(data, ensure_ascii=False)
        return format_html(
            '<span class="djjobs-cut" title="{}">{}</span>',
            whole[:INPUT_TOOLTIP] + ("…" if len(whole) > INPUT_TOOLTIP else ""),
            shown[:INPUT_SHOWN] + ("…" if len(shown) > INPUT_SHOWN else ""),
        )

    @admin.display(description=_("steps done"))
    def progress(self, run):
        return f"{run.step_done}/{run.step_total}"

    @admin.display(description=_("started"), ordering="created_at")
    def created(self, run):
        return short_time(run.created_at)

    @admin.display(description=_("finished"), ordering="finished_at")
    def finished(self, run):
        return short_time(run.finished_at)

    @admin.display(description=_("why it stopped"))
    def reason_short(self, run):
        return (run.reason[:80] + "…") if len(run.reason) > 80 else (run.reason or "-")

    @admin.display(description=_("steps"))
    def steps_table(self, run):
        """Group by group: each step's job and, when it has one, its compensation's job."""
        jobs = {
            (j.workflow_role, j.workflow_step): j
            for j in Job.objects.filter(workflow_run=run).only(
                "id", "status", "attempts", "max_attempts", "workflow_role", "workflow_step", "task_path"
            )
        }
        rows = []
        for number, group in enumerate(run.plan, start=1):
            for spec in group:
                step, undo = jobs.get((STEP, spec["name"])), jobs.get((COMPENSATE, spec["name"]))
                skipped = spec["name"] in run.skipped
                rows.append(
                    (
                        number,
                        spec["name"],
                        spec["task"],
                        _job_cell(step) if step else (_skipped(spec) if skipped else "-"),
                        f"{step.attempts}/{step.max_attempts}" if step else "-",
                        spec["compensate"] or "-",
                        _job_cell(undo) if undo else "-",
                    )
                )
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td>"
            "<td><code>{}</code></td><td>{}</td></tr>",
            rows,
        )
        jobs_url = f"{reverse('admin:djjobs_job_changelist')}?{urlencode({'workflow_run': run.pk})}"
        return format_html(
            '<table class="djjobs-steps"><thead><tr><th>group</th><th>step</th><th>task</th><th>job</th>'
            "<th>attempts</th><th>compensation</th><th>its job</th></tr></thead><tbody>{}</tbody></table>"
            '<p><a href="{}">These jobs in the job list</a></p>',
            body,
            jobs_url,
        )

    @admin.display(description=_("input"))
    def input_pretty(self, run):
        return format_html('<pre class="djjobs-json">{}</pre>', json.dumps(run.input, indent=2))

    @admin.display(description=_("context (input + what the steps returned)"))
    def context_pretty(self, run):
        return format_html('<pre class="djjobs-json">{}</pre>', json.dumps(run.context, indent=2))


def _skipped(spec) -> str:
    return format_html('<span class="quiet">skipped: {} was false</span>', spec.get("when"))


def _job_cell(job) -> str:
    return format_html("{} {}", job_link(job.pk, str(job.pk)[:8] + "…"), status_badge(job.status))
