"""The Job admin: the list (badges, filters, search, actions), the read-only detail page and
the dashboard's URL.

Rows never change through a form: only through the actions (``job_actions``), which call the
same operations as code. Built for tables of millions of rows: no COUNT(*) over the table
(``paginator``), filter choices that never read it (``job_filters``), an index for every
filter in the list's order (migration 0005), search by equality (index lookups, no LIKE).
"""

import uuid
from typing import Any

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404, JsonResponse
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView

from .. import audit
from ..models import Job, Worker
from ..registry import declared_tasks
from ..schedules.text import relative
from ..states import FINISHED, JobStatus
from . import job_actions, job_detail
from .action_guard import ActionGuard
from .display import STYLESHEET, duration_text, local, moment_field, progress_bar, short_time
from .job_filters import LIST_FILTERS
from .list_guard import ListGuard
from .paginator import EstimatedPaginator

# Columns the list never shows: JSON that may be large (tracebacks, payloads).
HEAVY = ("args", "kwargs", "return_value", "errors", "checkpoint", "worker_ids", "lease_token")

# The times of the "All fields" block.
TIMES = (
    "run_after",
    "enqueued_at",
    "started_at",
    "last_attempted_at",
    "finished_at",
    "lease_expires_at",
    "cancel_requested_at",
    "scheduled_for",
)

# The detail page's buttons: operation -> (label, statuses it applies to).
BUTTONS = {
    "retry": (_("Retry"), {JobStatus.FAILED, JobStatus.CANCELLED}),
    "cancel": (_("Cancel"), {JobStatus.READY, JobStatus.WAITING, JobStatus.RUNNING}),
    "run_now": (_("Run now"), {JobStatus.READY}),
}


# What a job's page updates live while the job is not finished (admin display methods).
LIVE_FIELDS = (
    "status_badge",
    "attempts_display",
    "progress_detail",
    "worker_display",
    "timeline",
    "return_value_pretty",
    "errors_display",
    "finished_at_moment",
    "cancel_requested_at_moment",
)
LIVE_SECONDS = 3  # between two updates of a job's page; ?live= chooses (1 to 60)


def _live_seconds(request) -> int:
    try:
        return max(1, min(int(request.GET.get("live", LIVE_SECONDS)), 60))
    except ValueError:
        return LIVE_SECONDS


class JobChangeList(ChangeList):
    def get_queryset(self, request, *args, **kwargs):
        return super().get_queryset(request, *args, **kwargs).defer(*HEAVY)


@admin.register(Job)
class JobAdmin(ListGuard, ActionGuard, admin.ModelAdmin):
    list_display = (
        "status_badge",
        "task",
        "queue_display",
        "attempts_display",
        "run_after_display",
        "enqueued",
        "duration_display",
        "progress_display",
    )
    list_display_links = ("task",)
    list_filter = LIST_FILTERS
    # ?schedule=, ?trigger=, ?workflow_run=, ?worker_id=: the links of schedules, triggers,
    # workflow runs and workers to their jobs (each an index); ?event= likewise.
    link_lookups = ("schedule", "trigger", "workflow_run", "worker_id", "event")
    search_fields = ("=id", "=task_path", "=unique_key")  # shows the box; get_search_results decides
    search_help_text = _("A job id, a unique key, or a task: its dotted path, or part of a declared task's path.")
    actions = job_actions.ACTIONS
    list_per_page = 50
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facets count every filter choice over the table
    paginator = EstimatedPaginator
    ordering = ("-enqueued_at",)
    sortable_by = ("enqueued",)  # only orders an index gives
    change_list_template = "djjobs/admin/job_change_list.html"
    change_form_template = "djjobs/admin/job_change_form.html"
    fieldsets = [
        (
            None,
            {
                "fields": (
                    "id",
                    "task_path",
                    "status_badge",
                    "queue_name",
                    "priority",
                    "attempts_display",
                    "progress_detail",
                    "worker_display",
                    "origin",
                )
            },
        ),
        (_("Timeline"), {"fields": ("timeline",)}),
        (
            _("Arguments and result"),
            {"fields": ("args_pretty", "kwargs_pretty", "return_value_pretty", "checkpoint_pretty")},
        ),
        (_("Errors"), {"fields": ("errors_display",)}),
        (
            _("All fields"),
            {
                "classes": ("collapse",),
                "fields": (
                    "backend",
                    "unique_key",
                    "max_attempts",
                    "retry_backoff",
                    "timeout",
                    "takes_context",
                    *(f"{name}_moment" for name in TIMES),
                    "worker_ids",
                ),
            },
        ),
    ]
    # Every entry of the fieldsets above is one field name (none is a tuple of fields on one line).
    readonly_fields = [name for _title, options in fieldsets for name in options["fields"]]  # type: ignore[misc]

    # The row's times, in the format of the rest of the page.
    run_after_moment = moment_field("run_after", _("run after"))
    enqueued_at_moment = moment_field("enqueued_at", _("enqueued at"))
    started_at_moment = moment_field("started_at", _("started at"))
    last_attempted_at_moment = moment_field("last_attempted_at", _("last attempted at"))
    finished_at_moment = moment_field("finished_at", _("finished at"))
    lease_expires_at_moment = moment_field("lease_expires_at", _("lease expires at"))
    cancel_requested_at_moment = moment_field("cancel_requested_at", _("cancel requested at"))
    scheduled_for_moment = moment_field("scheduled_for", _("scheduled for"))

    class Media:
        css = {"all": (STYLESHEET,)}

    # -- permissions ---------------------------------------------------------------------

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Change permission is what the actions need; a job's page never saves the row (a
        # form save would race the worker that owns it), so it is read-only for everyone.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        # A job a worker may be running, or is about to run, is cancelled first.
        if obj is not None and obj.status not in (JobStatus.SUCCESSFUL, JobStatus.FAILED, JobStatus.CANCELLED):
            return False
        if obj is not None and obj.workflow_run_id is not None and not obj.workflow_run.is_finished:
            return False  # its result is part of a run still under way
        return super().has_delete_permission(request, obj)

    # -- the list --------------------------------------------------------------------------

    def get_changelist(self, request, **kwargs):
        return JobChangeList

    def get_ordering(self, request):
        # Recently finished jobs are listed newest finished first (the filter's index order).
        if request.GET.get("finished") and not request.GET.get("o"):
            return ("-finished_at",)
        return super().get_ordering(request)

    def get_search_results(self, request, queryset, search_term):
        """Equality only, each an index lookup: the id, the unique key, the task's dotted path,
        or any declared task whose path contains the term (matched in memory, not in SQL)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        lowered = term.lower()
        paths = {term, *(p for p in declared_tasks() if lowered in p.lower())}
        condition = Q(unique_key=term) | Q(task_path__in=sorted(paths))
        try:
            condition |= Q(pk=uuid.UUID(term))
        except ValueError:
            pass
        return queryset.filter(condition), False

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": _("Jobs"), **(extra_context or {})})

    def action_checkbox(self, job):
        # Django renders a form widget's template for each row's checkbox; the same markup
        # written directly costs a fraction of that, on the page every operator opens.
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            job.pk,
            f"Select this job for an action - {job}",
        )

    @admin.display(description=_("status"))
    def status_badge(self, job):
        return job_detail.status_html(job)

    @admin.display(description=_("task"))
    def task(self, job):
        return format_html('<span title="{}">{}</span>', job.task_path, job.task_name)

    @admin.display(description=_("queue"))
    def queue_display(self, job):
        """The queue, and the priority when it is not the default: one column, so that the list
        fits a laptop screen."""
        if not job.priority:
            return job.queue_name
        return format_html(
            '{} <span class="quiet" title="priority {}">p{}</span>', job.queue_name, job.priority, job.priority
        )

    @admin.display(description=_("attempts"))
    def attempts_display(self, job):
        return f"{job.attempts}/{job.max_attempts}"

    @admin.display(description=_("run after"))
    def run_after_display(self, job):
        if job.run_after is None:
            return "-"
        if job.status in (JobStatus.READY, JobStatus.WAITING):  # when a worker may take it
            shown = local(job.run_after).strftime("%Y-%m-%d %H:%M:%S %Z").strip()
            return format_html(
                '<span class="djjobs-time" title="{}">{}</span>', shown, relative(job.run_after, timezone.now())
            )
        return format_html('<span class="quiet">{}</span>', short_time(job.run_after))

    @admin.display(description=_("enqueued"), ordering="enqueued_at")
    def enqueued(self, job):
        return short_time(job.enqueued_at)

    @admin.display(description=_("duration"))
    def duration_display(self, job):
        """The run time of the job's last attempt: never the time it sat in the queue or FAILED
        (the job's page adds up every attempt)."""
        if job.last_attempted_at is None:
            return "-"
        if job.status == JobStatus.RUNNING:
            return format_html(
                '<span class="quiet">running {}</span>', duration_text(timezone.now() - job.last_attempted_at)
            )
        # A job cancelled while queued ended long after its last attempt: that wait is not a run.
        ran_to_its_end = job.status in (JobStatus.SUCCESSFUL, JobStatus.FAILED) or job.cancel_requested_at is not None
        if job.finished_at is None or not ran_to_its_end:
            return "-"
        text = duration_text(job.finished_at - job.last_attempted_at)
        if job.attempts > 1:
            return format_html(
                '<span title="{}">{}</span>', f"the last of {job.attempts} attempts (the job's page adds them up)", text
            )
        return text

    @admin.display(description=_("progress"))
    def progress_display(self, job):
        return progress_bar(job.progress, job.progress_message)

    # -- the detail page -----------------------------------------------------------------

    def get_object(self, request, object_id, from_field=None):
        # Its schedule and event come in the same query (the page names them).
        try:
            return (
                self.get_queryset(request)
                .select_related("schedule", "event", "workflow_run")
                .get(pk=uuid.UUID(str(object_id)))
            )
        except (Job.DoesNotExist, ValueError, ValidationError):
            return None

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["djjobs_buttons"] = self._buttons(request, obj) if obj is not None else []
        if obj is not None:
            context["djjobs_live"] = {
                "url": reverse("admin:djjobs_job_live", args=[obj.pk]),
                "seconds": 0 if obj.status in FINISHED else _live_seconds(request),
            }
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _buttons(self, request, job) -> list[tuple[str, Any]]:
        if not self.has_change_permission(request):
            return []
        return [
            (reverse("admin:djjobs_job_operation", args=[job.pk, name]), label)
            for name, (label, statuses) in BUTTONS.items()
            if job.status in statuses
        ]

    def _known_workers(self, job) -> set[str]:
        """Which of the job's workers still have a Worker row (one query per page)."""
        if not hasattr(job, "_djjobs_known_workers"):
            ids = {job.worker_id, *(job.worker_ids or []), *(e.get("worker_id") for e in job.errors or [])}
            ids = {i for i in ids if i}
            found = Worker.objects.filter(pk__in=ids).values_list("pk", flat=True) if ids else []
            job._djjobs_known_workers = set(found)
        return job._djjobs_known_workers

    @admin.display(description=_("progress"))
    def progress_detail(self, job):
        if job.progress is None:
            return "-"
        return format_html("{} {}", progress_bar(job.progress, job.progress_message), job.progress_message)

    @admin.display(description=_("worker"))
    def worker_display(self, job):
        return job_detail.worker_link(job.worker_id, self._known_workers(job))

    @admin.display(description=_("came from"))
    def origin(self, job):
        return job_detail.origin_html(job)

    @admin.display(description=_("timeline"))
    def timeline(self, job):
        return job_detail.timeline_html(job, self._known_workers(job), audit.history(job))

    @admin.display(description=_("args"))
    def args_pretty(self, job):
        return job_detail.pretty_json(job.args)

    @admin.display(description=_("kwargs"))
    def kwargs_pretty(self, job):
        return job_detail.pretty_json(job.kwargs)

    @admin.display(description=_("return value"))
    def return_value_pretty(self, job):
        return job_detail.pretty_json(job.return_value) if job.status == JobStatus.SUCCESSFUL else "-"

    @admin.display(description=_("checkpoint"))
    def checkpoint_pretty(self, job):
        return "-" if job.checkpoint is None else job_detail.pretty_json(job.checkpoint)

    @admin.display(description=_("errors"))
    def errors_display(self, job):
        return job_detail.errors_html(job.errors, self._known_workers(job))

    # -- extra views ---------------------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            # The dashboard's first address; it lives at dashboard/ of the app (admin.screens).
            path("dashboard/", RedirectView.as_view(pattern_name="admin:djjobs_dashboard", query_string=True)),
            path("<path:object_id>/operation/<str:name>/", wrap(self.operation_view), name="djjobs_job_operation"),
            path("<path:object_id>/live/", wrap(self.live_view), name="djjobs_job_live"),
            *super().get_urls(),
        ]

    def live_view(self, request, object_id):
        """The job page's changing fields and buttons as JSON: the page's script polls this
        while the job is not finished and swaps them in."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        job = self.get_object(request, object_id)
        if job is None:
            raise Http404
        fields = {name: str(getattr(self, name)(job)) for name in LIVE_FIELDS}
        buttons = render_to_string(
            "djjobs/admin/job_buttons.html", {"djjobs_buttons": self._buttons(request, job)}, request
        )
        return JsonResponse(
            {"status": job.status, "finished": job.status in FINISHED, "fields": fields, "buttons": buttons}
        )

    def operation_view(self, request, object_id, name):
        return job_actions.operation_view(self, request, object_id, name)
