"""The Job admin: read-only rows; changes only through the same operations code uses."""

import json

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from .. import operations
from ..models import Job
from ..operations import Outcome


def _apply(modeladmin, request, queryset, operation, verb):
    results = [operation(job_id) for job_id in queryset.values_list("id", flat=True)]
    done = sum(r in (Outcome.DONE, Outcome.REQUESTED) for r in results)
    skipped = len(results) - done
    modeladmin.message_user(request, f"{verb} {done} job(s).", messages.SUCCESS if done else messages.WARNING)
    if skipped:
        reasons = {r.value for r in results if r not in (Outcome.DONE, Outcome.REQUESTED)}
        modeladmin.message_user(
            request, f"{skipped} job(s) unchanged: {', '.join(sorted(reasons))} (their status does not allow it).",
            messages.WARNING,
        )


@admin.action(description=_("Retry selected jobs"), permissions=["change"])
def retry_jobs(modeladmin, request, queryset):
    _apply(modeladmin, request, queryset, operations.retry, "Retried")


@admin.action(description=_("Cancel selected jobs"), permissions=["change"])
def cancel_jobs(modeladmin, request, queryset):
    _apply(modeladmin, request, queryset, operations.cancel, "Cancelled")


@admin.action(description=_("Run selected jobs now"), permissions=["change"])
def run_jobs_now(modeladmin, request, queryset):
    _apply(modeladmin, request, queryset, operations.run_now, "Moved to now")


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("task_name", "status", "queue_name", "priority", "attempts_display", "run_after",
                    "enqueued_at", "finished_at", "progress_display")
    list_filter = ("status", "queue_name")
    search_fields = ("=id", "task_path", "=unique_key")
    actions = [retry_jobs, cancel_jobs, run_jobs_now]
    list_per_page = 50
    show_full_result_count = False
    readonly_fields = ("id", "task_path", "status", "queue_name", "priority", "backend", "unique_key",
                       "args_pretty", "kwargs_pretty", "return_value_pretty", "attempts", "max_attempts",
                       "retry_backoff", "timeout", "run_after", "enqueued_at", "started_at",
                       "last_attempted_at", "finished_at", "worker_id", "worker_ids", "lease_expires_at",
                       "progress", "progress_message", "checkpoint", "cancel_requested_at", "errors_display")
    exclude = ("args", "kwargs", "return_value", "errors", "lease_token", "takes_context")

    @admin.display(description=_("attempts"))
    def attempts_display(self, job):
        return f"{job.attempts}/{job.max_attempts}"

    @admin.display(description=_("progress"))
    def progress_display(self, job):
        return "" if job.progress is None else f"{job.progress:.0f}%"

    @admin.display(description=_("args"))
    def args_pretty(self, job):
        return format_html("<pre>{}</pre>", json.dumps(job.args, indent=2))

    @admin.display(description=_("kwargs"))
    def kwargs_pretty(self, job):
        return format_html("<pre>{}</pre>", json.dumps(job.kwargs, indent=2))

    @admin.display(description=_("return value"))
    def return_value_pretty(self, job):
        return format_html("<pre>{}</pre>", json.dumps(job.return_value, indent=2))

    @admin.display(description=_("errors"))
    def errors_display(self, job):
        if not job.errors:
            return "-"
        return format_html_join(
            "",
            "<div><strong>attempt {}: {}</strong>: {}<pre>{}</pre></div>",
            ((e.get("attempt"), e.get("exception_class_path"), e.get("message", ""), e.get("traceback", ""))
             for e in job.errors),
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Actions need change permission; the detail page itself never writes the row
        # (a form save would race the worker that owns it).
        return obj is None and super().has_change_permission(request, obj)
