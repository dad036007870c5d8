"""The Event admin (read-only), with each event's subscriber jobs, cause chain and reactions.
The triggers list is its own entry of the admin (djjobs.admin.screens)."""

import json

from django.contrib import admin
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView

from ..models import Event, Job
from .action_guard import ActionGuard
from .display import STYLESHEET, status_badge
from .list_guard import ListGuard


def _job_link(job) -> str:
    url = reverse("admin:djjobs_job_change", args=[job.pk])
    return format_html('<a href="{}">{}</a> {}', url, job.task_name, status_badge(job.status))


def _event_link(event) -> str:
    return format_html('<a href="{}">{}</a>', reverse("admin:djjobs_event_change", args=[event.pk]), event.name)


@admin.register(Event)
class EventAdmin(ListGuard, ActionGuard, admin.ModelAdmin):
    list_display = ("name", "occurred_at", "job_count", "cause", "idempotency_key")
    search_fields = ("=id", "name", "=idempotency_key")
    list_per_page = 50
    show_full_result_count = False
    list_select_related = ("cause_job",)
    change_list_template = "djjobs/admin/event_change_list.html"
    fields = (
        "id",
        "name",
        "occurred_at",
        "idempotency_key",
        "payload_pretty",
        "subscribers_display",
        "subscriber_jobs",
        "cause_chain_display",
        "reactions",
    )
    readonly_fields = fields

    class Media:
        css = {"all": (STYLESHEET,)}  # the jobs' status badges, as on the job screens

    def get_queryset(self, request):
        # A correlated subquery (not a JOIN + GROUP BY): the changelist's COUNT(*) drops it.
        jobs = Job.objects.filter(event=OuterRef("pk")).order_by().values("event").annotate(n=Count("pk")).values("n")
        return super().get_queryset(request).annotate(job_total=Coalesce(Subquery(jobs), 0))

    def get_urls(self):
        # The triggers list's first address; it lives at trigger/ of the app (admin.screens).
        view = RedirectView.as_view(pattern_name="admin:djjobs_triggers", query_string=True)
        return [path("triggers/", view), *super().get_urls()]

    @admin.display(description=_("jobs"), ordering="job_total")
    def job_count(self, event):
        return event.job_total

    @admin.display(description=_("caused by"))
    def cause(self, event):
        return _job_link(event.cause_job) if event.cause_job_id and event.cause_job else "-"

    @admin.display(description=_("payload"))
    def payload_pretty(self, event):
        return format_html('<pre class="djjobs-json">{}</pre>', json.dumps(event.payload, indent=2))

    @admin.display(description=_("subscribed tasks"))
    def subscribers_display(self, event):
        return ", ".join(event.subscribers) or _("nobody (recorded only)")

    @admin.display(description=_("subscriber jobs"))
    def subscriber_jobs(self, event):
        jobs = Job.objects.filter(event=event).order_by("task_path")
        return format_html_join(mark_safe("<br>"), "{}", ((_job_link(job),) for job in jobs)) or "-"

    @admin.display(description=_("cause chain"))
    def cause_chain_display(self, event):
        """Root cause first: event -> job that published the next event -> ..."""
        steps = []
        for step_event, job in event.cause_chain():
            if job is not None:
                steps.append(_job_link(job))
            steps.append(
                _event_link(step_event) if step_event.pk != event.pk else format_html("<strong>{}</strong>", event.name)
            )
        return format_html_join(" &rarr; ", "{}", ((s,) for s in steps))

    @admin.display(description=_("reactions"))
    def reactions(self, event):
        """Events that this event's jobs published."""
        children = Event.objects.filter(cause_job__event=event).select_related("cause_job").order_by("occurred_at")
        return (
            format_html_join(
                mark_safe("<br>"), "{} by {}", ((_event_link(e), _job_link(e.cause_job)) for e in children)
            )
            or "-"
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
