"""The Worker admin: read-only; rows are written by the workers themselves."""

from django.contrib import admin
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from ..models import Worker
from ..states import JobStatus


class AliveFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "alive"

    def lookups(self, request, model_admin):
        return [("yes", _("alive")), ("no", _("stopped or lost"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.alive()
        if self.value() == "no":
            return queryset.dead()
        return queryset


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = ("id", "alive", "hostname", "pid", "queues_display", "concurrency", "running",
                    "jobs_done", "jobs_failed", "started_at", "last_heartbeat_at", "stopped_at")
    list_filter = (AliveFilter, "hostname")
    search_fields = ("=id", "hostname")

    def get_queryset(self, request):
        from ..models import Job

        running = (
            Job.objects.filter(worker_id=OuterRef("pk"), status=JobStatus.RUNNING)
            .order_by().values("worker_id").annotate(n=Count("id")).values("n")
        )
        return super().get_queryset(request).annotate(running_jobs=Coalesce(Subquery(running), 0))

    @admin.display(boolean=True, description=_("alive"))
    def alive(self, worker):
        return worker.is_alive

    @admin.display(description=_("queues"))
    def queues_display(self, worker):
        return ", ".join(worker.queues) or "*"

    @admin.display(description=_("running jobs"), ordering="running_jobs")
    def running(self, worker):
        return worker.running_jobs

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
