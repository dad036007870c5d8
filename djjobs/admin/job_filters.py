"""The job list's filters. Their choices never read the job table (a DISTINCT over millions of
rows would be a full scan): statuses are the model's, queues come from the settings and the
declared tasks, tasks from the registry. Each filter has an index that also gives the list's
order (see migration 0005), so a filtered first page reads about one page of index entries."""

from datetime import timedelta

from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..http.health import configured_queues
from ..registry import declared_tasks
from ..states import JobStatus


class _ChoiceFilter(admin.SimpleListFilter):
    """A filter on one column whose choices are known without a query."""

    field: str

    def choices_for(self, request) -> list[tuple[str, str]]:
        raise NotImplementedError

    def lookups(self, request, model_admin):
        choices = self.choices_for(request)
        current = self.value()
        if current and current not in {value for value, _label in choices}:
            choices.append((current, current))  # e.g. a queue no longer configured
        return choices

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.field: value}) if value else queryset


class StatusFilter(_ChoiceFilter):
    title = _("status")
    parameter_name = "status"
    field = "status"

    def choices_for(self, request):
        return list(JobStatus.choices)


def known_queues() -> list[str]:
    """The configured queues and those of the declared tasks."""
    names = set(configured_queues())
    names.update(task.queue_name for task in declared_tasks().values())
    return sorted(names)


class QueueFilter(_ChoiceFilter):
    title = _("queue")
    parameter_name = "queue"
    field = "queue_name"

    def choices_for(self, request):
        return [(name, name) for name in known_queues()]


class TaskFilter(_ChoiceFilter):
    title = _("task")
    parameter_name = "task"
    field = "task_path"

    def choices_for(self, request):
        """Each task by its function's name; by its dotted path where two share a name."""
        paths = sorted(declared_tasks(), key=lambda p: (p.rsplit(".", 1)[-1], p))
        names = [p.rsplit(".", 1)[-1] for p in paths]
        return [(p, p if names.count(n) > 1 else n) for p, n in zip(paths, names)]


RANGES = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}


class _RecentFilter(admin.SimpleListFilter):
    field: str

    def lookups(self, request, model_admin):
        return [("hour", _("last hour")), ("day", _("last 24 hours")), ("week", _("last 7 days"))]

    def queryset(self, request, queryset):
        span = RANGES.get(self.value() or "")
        if span is None:
            return queryset
        return queryset.filter(**{f"{self.field}__gte": timezone.now() - span})


class EnqueuedFilter(_RecentFilter):
    title = _("enqueued")
    parameter_name = "enqueued"
    field = "enqueued_at"


class FinishedFilter(_RecentFilter):
    """Recently finished jobs, newest finished first (see JobAdmin.get_ordering)."""

    title = _("finished")
    parameter_name = "finished"
    field = "finished_at"


class DueFilter(admin.SimpleListFilter):
    """READY jobs that a worker could take now, or that wait for their run_after."""

    title = _("ready jobs")
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("now", _("due now")), ("later", _("scheduled for later"))]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "now":
            return queryset.filter(status=JobStatus.READY, run_after__lte=now)
        if self.value() == "later":
            return queryset.filter(status=JobStatus.READY, run_after__gt=now)
        return queryset


LIST_FILTERS = (StatusFilter, QueueFilter, TaskFilter, EnqueuedFilter, FinishedFilter, DueFilter)
