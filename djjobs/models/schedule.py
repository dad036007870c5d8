"""The Schedule row: when to enqueue which task, and where its firing stands."""

from collections.abc import Callable, Collection
from datetime import UTC, datetime, tzinfo
from typing import Any, Self

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..compat import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY
from ..schedules.cron import Timing, TimingError, get_zone
from ..schedules.policy import Misfire, Overlap
from .job import Job

# What a code declaration sets; a code-managed row whose values differ from its declaration
# was edited in the admin ("overridden") and keeps those edits on the next migrate.
DEFINITION_FIELDS = (
    "task_path",
    "args",
    "kwargs",
    "cron",
    "interval",
    "run_at",
    "time_zone",
    "enabled",
    "queue_name",
    "priority",
    "overlap",
    "misfire",
    "description",
)
TIMING_FIELDS = ("cron", "interval", "run_at", "time_zone", "enabled")


def default_time_zone() -> str:
    return settings.TIME_ZONE or "UTC"


class ScheduleQuerySet(models.QuerySet):
    def enabled(self) -> Self:
        return self.filter(enabled=True)

    def due(self, now: datetime | None = None) -> Self:
        return self.enabled().filter(next_run_at__lte=now or timezone.now())

    def code_managed(self) -> Self:
        return self.filter(code_managed=True)


class Schedule(models.Model):
    name = models.CharField(_("name"), max_length=255, unique=True)
    task_path = models.CharField(_("task"), max_length=255, help_text=_("Dotted path of a djjobs task."))
    args = models.JSONField(default=list, blank=True, help_text=_("A JSON list of positional arguments."))
    kwargs = models.JSONField(default=dict, blank=True, help_text=_("A JSON object of keyword arguments."))

    # When: exactly one of cron, interval and run_at (see djjobs.schedules.cron for the DST rule).
    cron = models.CharField(
        _("cron"),
        max_length=120,
        blank=True,
        default="",
        help_text=_("5 fields (minute hour day month weekday), or 6 with seconds last; e.g. 0 2 * * *"),
    )
    interval = models.PositiveIntegerField(
        _("interval (seconds)"),
        null=True,
        blank=True,
        help_text=_("Every N seconds, at the multiples of N since 1970-01-01 UTC."),
    )
    run_at = models.DateTimeField(
        _("run once at"),
        null=True,
        blank=True,
        help_text=_("One run at this time; the schedule disables itself after it."),
    )
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        default=default_time_zone,
        help_text=_("IANA name, e.g. Europe/London; cron and run_at are read in it."),
    )
    enabled = models.BooleanField(_("enabled"), default=True)

    # The jobs it enqueues: blank/null take the task's own queue and priority.
    queue_name = models.CharField(_("queue"), max_length=64, blank=True, default="")
    priority = models.SmallIntegerField(_("priority"), null=True, blank=True, help_text=_("-100..100"))
    overlap = models.CharField(
        _("overlap"),
        max_length=10,
        choices=[(o.value, o.value) for o in Overlap],
        default=Overlap.ALLOW.value,
        help_text=_("skip: do not fire while the previous run is READY or RUNNING."),
    )
    misfire = models.CharField(
        _("misfire"),
        max_length=10,
        choices=[(m.value, m.value) for m in Misfire],
        default=Misfire.RUN_ONCE.value,
        help_text=_("Runs missed while no worker ran: one catch-up run, none, or all."),
    )
    description = models.TextField(_("description"), blank=True, default="")

    # Firing state, written by the scheduler.
    next_run_at = models.DateTimeField(_("next run"), null=True, blank=True)
    last_run_at = models.DateTimeField(_("last run"), null=True, blank=True, help_text=_("Its fire time."))
    # Not a foreign key: pruning old jobs must not have to look at (or wait for) schedules.
    last_job_id = models.UUIDField(_("last job"), null=True, blank=True, editable=False)
    skipped_runs = models.PositiveIntegerField(_("skipped runs"), default=0)
    last_skipped_at = models.DateTimeField(_("last skipped"), null=True, blank=True)
    last_skip_reason = models.CharField(_("last skip reason"), max_length=255, blank=True, default="")

    # Declared in code (@task(schedule=...) or DJJOBS["SCHEDULES"]) and synced on migrate.
    code_managed = models.BooleanField(_("code-managed"), default=False, editable=False)
    code_definition = models.JSONField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScheduleQuerySet.as_manager()

    class Meta:
        verbose_name = _("schedule")
        verbose_name_plural = _("schedules")
        ordering = ["name"]
        indexes = [
            # The tick: enabled schedules by next run.
            models.Index(fields=["next_run_at"], condition=Q(enabled=True), name="djjobs_schedule_due_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    (~Q(cron="") & Q(interval__isnull=True) & Q(run_at__isnull=True))
                    | (Q(cron="") & Q(interval__isnull=False) & Q(run_at__isnull=True))
                    | (Q(cron="") & Q(interval__isnull=True) & Q(run_at__isnull=False))
                ),
                name="djjobs_schedule_one_timing",
            ),
            models.CheckConstraint(
                condition=Q(interval__isnull=True) | Q(interval__gte=1), name="djjobs_schedule_interval_positive"
            ),
            models.CheckConstraint(
                condition=Q(priority__isnull=True)
                | Q(priority__gte=TASK_MIN_PRIORITY, priority__lte=TASK_MAX_PRIORITY),
                name="djjobs_schedule_priority_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def from_db(
        cls, db: str | None, field_names: Collection[str], values: Collection[Any], **kwargs: Any
    ) -> Self:  # kwargs: Django 6.1's fetch_mode
        instance = super().from_db(db, field_names, values, **kwargs)
        instance._loaded_timing = instance._timing_values()
        return instance

    # -- timing --------------------------------------------------------------------------

    def timing(self) -> Timing:
        """The validated timing; TimingError says what is wrong."""
        return Timing.build(cron=self.cron, interval=self.interval, run_at=self.run_at, time_zone=self.time_zone)

    @property
    def zone(self) -> tzinfo:
        try:
            return get_zone(self.time_zone)
        except TimingError:
            return timezone.get_default_timezone()

    @property
    def is_one_off(self) -> bool:
        return self.run_at is not None

    def upcoming(self, count: int = 5, now: datetime | None = None) -> list[datetime]:
        """The next ``count`` fire times (the stored next run first); [] if disabled or invalid."""
        if not self.enabled:
            return []
        try:
            timing = self.timing()
        except TimingError:
            return []
        now = now or timezone.now()
        start = self.next_run_at or self.first_run_at(now)
        if start is None:
            return []
        return [start, *timing.upcoming(start, count - 1)] if count > 1 else [start]

    def first_run_at(self, now: datetime) -> datetime | None:
        """When a newly saved or enabled schedule fires first: a one-off at its run_at (even a
        past one, unless it already ran), the others at their next fire time after now."""
        timing = self.timing()
        if timing.run_at is not None:  # a one-off
            ran = self.last_run_at is not None and self.last_run_at >= timing.run_at
            return None if ran else timing.run_at
        return timing.next_after(now)

    @property
    def last_job(self) -> Job | None:
        """The job of the last run, if it still exists (old jobs are pruned)."""
        return Job.objects.filter(pk=self.last_job_id).first() if self.last_job_id else None

    def _timing_values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in TIMING_FIELDS)

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Recompute next_run_at when the timing or the enabled flag changed (or on creation)."""
        if self._state.adding or self._timing_values() != getattr(self, "_loaded_timing", None):
            try:
                self.next_run_at = self.first_run_at(timezone.now()) if self.enabled else None
            except TimingError:
                self.next_run_at = None  # invalid rows never fire; clean() reports why
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "next_run_at"}
        super().save(*args, **kwargs)
        self._loaded_timing = self._timing_values()

    # -- validation ----------------------------------------------------------------------

    # The one validation the admin, ``manage.py schedules`` and code-declared sync share
    # (djjobs.schedules.validation.validate_schedule). It looks the task's backend up, a layer
    # above the models, so DjjobsConfig.ready() hands it in rather than this module importing it.
    _validate: "Callable[[Schedule], dict[str, list[str]]] | None" = None

    @classmethod
    def validate_with(cls, validate: "Callable[[Schedule], dict[str, list[str]]]") -> None:
        cls._validate = staticmethod(validate)

    def clean(self) -> None:
        assert self._validate is not None, "DjjobsConfig.ready() hands it in"
        errors = self._validate(self)
        if errors:
            raise ValidationError(errors)

    # -- code declarations ---------------------------------------------------------------

    def definition(self) -> dict:
        """The declared part of the row as JSON, comparable with code_definition."""
        values = {name: getattr(self, name) for name in DEFINITION_FIELDS}
        values["run_at"] = self.run_at.astimezone(UTC).isoformat() if self.run_at else None
        # A one-off that fired disabled itself; that is not an admin edit.
        values["enabled"] = self.enabled or (self.is_one_off and self.last_run_at is not None)
        return values

    def overridden_fields(self) -> list[str]:
        """The declared fields an admin changed on a code-managed schedule."""
        if not self.code_managed or not self.code_definition:
            return []
        mine = self.definition()
        return [name for name in DEFINITION_FIELDS if mine.get(name) != self.code_definition.get(name)]
