"""The Worker admin: live and recently dead workers and what each is running now.

Read-only: the rows are written by the workers themselves (heartbeats); rows of workers not
heard from for an hour are pruned, so the list is the live ones and the recently dead.
"""

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from ..models import Job, Worker
from ..schedules.text import relative
from ..states import JobStatus
from .action_guard import ActionGuard
from .display import STYLESHEET, job_url, moment, short_time, status_badge
from .list_guard import ListGuard

# Running jobs named per worker in the list; the rest are a link to the job list.
RUNNING_SHOWN = 5


def state(worker) -> str:
    if worker.stopped_at is not None:
        return "stopped"
    return "alive" if worker.is_alive else "lost"


class StateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [
            ("alive", _("alive")),
            ("dead", _("stopped or lost")),
            ("stopped", _("stopped")),
            ("lost", _("lost (no heartbeat)")),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "alive":
            return queryset.alive()
        if value == "dead":
            return queryset.dead()
        if value == "stopped":
            return queryset.filter(stopped_at__isnull=False)
        if value == "lost":
            return queryset.dead().filter(stopped_at__isnull=True)
        return queryset


def attach_running(workers: list) -> list:
    """Set ``running_jobs`` on each worker: its RUNNING jobs, read in one query for all of them
    (through the partial index of RUNNING jobs)."""
    jobs = (
        Job.objects.filter(status=JobStatus.RUNNING, worker_id__in=[w.pk for w in workers])
        .only("id", "task_path", "worker_id", "progress", "progress_message")
        .order_by("last_attempted_at")
    )
    by_worker: dict[str, list] = {}
    for job in jobs:
        by_worker.setdefault(job.worker_id, []).append(job)
    for worker in workers:
        worker.running_jobs = by_worker.get(worker.pk, [])
    return workers


class WorkerChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        self.result_list = attach_running(list(self.result_list))


ATTEMPTS_HELP = _(
    "Since this worker started, counted per attempt: a job retried after a failure counts each "
    "failed attempt (the dashboard and the job list count jobs)."
)


@admin.register(Worker)
class WorkerAdmin(ListGuard, ActionGuard, admin.ModelAdmin):
    list_display = (
        "id",
        "state_badge",
        "hostname",
        "pid",
        "queues_display",
        "threads",
        "running_now",
        "attempts_succeeded",
        "attempts_failed",
        "started",
        "last_heartbeat",
    )
    list_filter = (StateFilter, "hostname")
    search_fields = ("=id", "hostname")
    fields = (
        "id",
        "state_badge",
        "hostname",
        "pid",
        "queues_display",
        "concurrency",
        "running_now",
        "attempts_succeeded",
        "attempts_failed",
        "started",
        "last_heartbeat",
        "stopped",
    )
    readonly_fields = fields

    class Media:
        css = {"all": (STYLESHEET,)}

    def get_changelist(self, request, **kwargs):
        return WorkerChangeList

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": _("Workers"), **(extra_context or {})})

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Read-only: workers write their own rows, and prune_jobs removes those of stopped or
        # lost workers; deleting a live worker's row would only make it write the row again.
        return False

    @admin.display(description=_("state"))
    def state_badge(self, worker):
        return status_badge(state(worker))

    @admin.display(description=_("queues"))
    def queues_display(self, worker):
        return ", ".join(worker.queues) or _("every queue")

    @admin.display(description=_("running now"))
    def running_now(self, worker):
        jobs = getattr(worker, "running_jobs", None)
        if jobs is None:
            jobs = attach_running([worker])[0].running_jobs
        if not jobs:
            return "-"
        links = format_html_join(
            mark_safe("<br>"),
            '<a href="{}">{}</a>{}',
            (
                (job_url(job.pk), job.task_name, f" ({job.progress:.0f}%)" if job.progress is not None else "")
                for job in jobs[:RUNNING_SHOWN]
            ),
        )
        if len(jobs) > RUNNING_SHOWN:
            url = f"{reverse('admin:djjobs_job_changelist')}?{urlencode({'status': 'RUNNING', 'worker_id': worker.pk})}"
            links = format_html('{}<br><a href="{}">and {} more</a>', links, url, len(jobs) - RUNNING_SHOWN)
        return links

    @admin.display(description=_("threads"), ordering="concurrency")
    def threads(self, worker):
        return worker.concurrency

    # The worker's counters count attempts, not jobs: a job that failed twice and then succeeded
    # is two failed attempts and one success here, one successful job on the dashboard.
    @admin.display(description=_("attempts succeeded"), ordering="jobs_done")
    def attempts_succeeded(self, worker):
        return format_html('<span title="{}">{}</span>', ATTEMPTS_HELP, worker.jobs_done)

    @admin.display(description=_("attempts failed"), ordering="jobs_failed")
    def attempts_failed(self, worker):
        return format_html('<span title="{}">{}</span>', ATTEMPTS_HELP, worker.jobs_failed)

    @admin.display(description=_("started"), ordering="started_at")
    def started(self, worker):
        return short_time(worker.started_at)

    @admin.display(description=_("last heartbeat"), ordering="last_heartbeat_at")
    def last_heartbeat(self, worker):
        return format_html(
            '{} <span class="quiet">({})</span>',
            short_time(worker.last_heartbeat_at),
            relative(worker.last_heartbeat_at, timezone.now()),
        )

    @admin.display(description=_("stopped"))
    def stopped(self, worker):
        return moment(worker.stopped_at)
