"""The Schedule admin: when each schedule fires (in words and in its own time zone), its last
run, a live preview of the next fire times, and actions that call djjobs.schedules.tick."""

import copy
from datetime import datetime

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import JsonResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_time
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from .. import audit
from ..models import Job, Schedule
from ..operations import Answer
from ..schedules import sync, tick
from ..schedules.cron import Timing, TimingError
from ..schedules.text import describe, relative
from .action_guard import ActionGuard
from .display import STYLESHEET, job_link, moment, status_badge
from .list_guard import ListGuard
from .schedule_form import ScheduleForm

PREVIEW_COUNT = 5


def _when(moment, zone, now) -> str:
    return f"{timezone.localtime(moment, zone):%Y-%m-%d %H:%M:%S %Z} ({relative(moment, now)})"


def _toggle(modeladmin, request, queryset, change, verb) -> None:
    """Enable or disable each schedule (``change``), recording those that changed."""
    answers = {schedule: change(schedule) for schedule in queryset}
    audit.record_many(request.user, [s for s, answer in answers.items() if answer == Answer.DONE], verb)
    _report(modeladmin, request, list(answers.values()), verb)


def _compact(moment, zone, now) -> str:
    """A list cell's time: short (14:05 today, else 2026-12-06 02:00) and how far from now; the
    whole time, in the schedule's zone, in the tooltip."""
    shown = timezone.localtime(moment, zone)
    short = (
        shown.strftime("%H:%M") if shown.date() == timezone.localtime(now, zone).date() else f"{shown:%Y-%m-%d %H:%M}"
    )
    return format_html(
        '<span class="djjobs-time" title="{}">{}</span> <span class="quiet">{}</span>',
        _when(moment, zone, now),
        short,
        relative(moment, now),
    )


def _report(modeladmin, request, answers, verb) -> None:
    done = sum(answer == Answer.DONE for answer in answers)
    modeladmin.message_user(request, f"{verb} {done} schedule(s).", messages.SUCCESS if done else messages.WARNING)
    if len(answers) > done:
        modeladmin.message_user(
            request,
            f"{len(answers) - done} schedule(s) unchanged (already {verb.lower()}, or a one-off "
            "whose run is done: give it a new 'run once at').",
            messages.WARNING,
        )


@admin.action(description=_("Enable selected schedules"), permissions=["change"])
def enable_schedules(modeladmin, request, queryset):
    _toggle(modeladmin, request, queryset, tick.enable, "Enabled")


@admin.action(description=_("Disable selected schedules"), permissions=["change"])
def disable_schedules(modeladmin, request, queryset):
    _toggle(modeladmin, request, queryset, tick.disable, "Disabled")


@admin.action(description=_("Run selected schedules now"), permissions=["change"])
def run_schedules_now(modeladmin, request, queryset):
    for schedule in queryset:
        try:
            job = tick.run_now(schedule)
        except tick.ScheduleError as exc:
            modeladmin.message_user(request, f"Schedule {schedule.name} not run: {exc}", messages.ERROR)
        else:
            audit.record(request.user, schedule, f"Run now: enqueued job {job.pk}")
            url = reverse("admin:djjobs_job_change", args=[job.pk])
            modeladmin.message_user(
                request,
                format_html('Schedule {}: enqueued job <a href="{}">{}</a>.', schedule.name, url, job.pk),
                messages.SUCCESS,
            )


@admin.action(description=_("Reset selected schedules to their code declaration"), permissions=["change"])
def reset_to_code(modeladmin, request, queryset):
    reset = 0
    for schedule in queryset:
        try:
            sync.reset(schedule)
            reset += 1
            audit.record(request.user, schedule, "Reset to its code declaration")
        except ValueError as exc:
            modeladmin.message_user(request, f"Schedule {schedule.name} not reset: {exc}.", messages.WARNING)
    if reset:
        modeladmin.message_user(request, f"Reset {reset} schedule(s) to their code declaration.", messages.SUCCESS)


# The schedule's latest jobs shown on its page.
RECENT_JOBS = 10


@admin.register(Schedule)
class ScheduleAdmin(ListGuard, ActionGuard, admin.ModelAdmin):
    form = ScheduleForm
    change_form_template = "djjobs/admin/schedule_change_form.html"
    list_display = ("name", "task", "when", "time_zone", "next_run", "last_run", "enabled", "source")
    list_editable = ("enabled",)
    list_filter = ("enabled", "code_managed", "overlap", "misfire")
    search_fields = ("name", "task_path", "description")
    actions = [enable_schedules, disable_schedules, run_schedules_now, reset_to_code]
    readonly_fields = (
        "preview",
        "next_run_display",
        "last_run_display",
        "skips_display",
        "code_display",
        "recent_jobs",
    )
    fieldsets = [
        (None, {"fields": ("name", "task_path", "description", "enabled")}),
        (
            _("When"),
            {
                "fields": ("cron", "interval", "run_at", "time_zone", "preview"),
                "description": _(
                    "Give one of cron, interval or run once at. Cron fires on the wall clock of "
                    "the time zone (DST: a skipped time fires when the clocks jump, a repeated "
                    "one at its first occurrence); an interval counts elapsed seconds."
                ),
            },
        ),
        (_("The jobs it enqueues"), {"fields": ("args", "kwargs", "queue_name", "priority")}),
        (_("Policies"), {"fields": ("overlap", "misfire")}),
    ]
    state_fieldset = (_("State"), {"fields": ("next_run_display", "last_run_display", "skips_display", "code_display")})
    # A read-only block, not an inline: an inline is left out of a POST (its formset would
    # have to validate), so a rejected save would lose it.
    jobs_fieldset = (_("Recent jobs (latest %(n)d)") % {"n": RECENT_JOBS}, {"fields": ("recent_jobs",)})

    class Media:
        css = {"all": (STYLESHEET,)}  # the jobs' status badges, as on the job screens

    def get_fieldsets(self, request, obj=None):
        return [*self.fieldsets, self.state_fieldset, self.jobs_fieldset] if obj is not None else self.fieldsets

    def get_object(self, request, object_id, from_field=None):
        schedule = super().get_object(request, object_id, from_field)
        if schedule is not None:
            # The row as stored: a rejected save leaves the form's values on the instance, and
            # the page's state (overridden or not) must not claim what was not saved.
            schedule.stored = copy.copy(schedule)
        return schedule

    def get_queryset(self, request):
        last_status = Job.objects.filter(pk=OuterRef("last_job_id")).values("status")[:1]
        return super().get_queryset(request).annotate(last_status=Subquery(last_status))

    def get_urls(self):
        preview = path("preview/", self.admin_site.admin_view(self.preview_view), name="djjobs_schedule_preview")
        return [preview, *super().get_urls()]

    # -- columns -------------------------------------------------------------------------

    @admin.display(description=_("task"), ordering="task_path")
    def task(self, schedule):
        return format_html('<span title="{}">{}</span>', schedule.task_path, schedule.task_path.rsplit(".", 1)[-1])

    @admin.display(description=_("when"))
    def when(self, schedule):
        return describe(schedule.cron, schedule.interval, schedule.run_at, schedule.zone)

    @admin.display(description=_("next run"), ordering="next_run_at")
    def next_run(self, schedule):
        if schedule.next_run_at is None:
            return "-"
        return _compact(schedule.next_run_at, schedule.zone, timezone.now())

    @admin.display(description=_("last run"), ordering="last_run_at")
    def last_run(self, schedule):
        if schedule.last_run_at is None:
            return "-"
        fired = _compact(schedule.last_run_at, schedule.zone, timezone.now())
        status = getattr(schedule, "last_status", None)
        if status is None:
            return fired  # no job, or pruned
        url = reverse("admin:djjobs_job_change", args=[schedule.last_job_id])
        return format_html('{} <a href="{}" class="djjobs-status djjobs-{}">{}</a>', fired, url, status.lower(), status)

    @admin.display(description=_("source"), ordering="code_managed")
    def source(self, schedule):
        if not schedule.code_managed:
            return "admin"
        overridden = schedule.overridden_fields()
        return format_html("code, <strong>overridden</strong> ({})", ", ".join(overridden)) if overridden else "code"

    # -- change form ---------------------------------------------------------------------

    @admin.display(description=_("next fire times"))
    def preview(self, schedule):
        url = reverse("admin:djjobs_schedule_preview")
        if schedule is None or schedule.pk is None:
            return format_html(
                '<div id="djjobs-preview" data-url="{}"><p>{}</p></div>',
                url,
                "Fill in cron, interval or run once at to see the next fire times.",
            )
        return format_html('<div id="djjobs-preview" data-url="{}">{}</div>', url, _preview_html(schedule))

    @admin.display(description=_("recent jobs"))
    def recent_jobs(self, schedule):
        jobs = list(
            Job.objects.filter(schedule=schedule.pk)
            .only("id", "task_path", "status", "scheduled_for", "enqueued_at", "finished_at", "attempts")
            .order_by("-enqueued_at")[:RECENT_JOBS]
        )
        if not jobs:
            return "No job yet."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    job_link(job.pk, job.pk),
                    status_badge(job.status),
                    moment(job.scheduled_for),
                    moment(job.enqueued_at),
                    moment(job.finished_at),
                    job.attempts,
                )
                for job in jobs
            ),
        )
        all_jobs = f"{reverse('admin:djjobs_job_changelist')}?{urlencode({'schedule': schedule.pk})}"
        return format_html(
            '<table class="djjobs-recent-jobs"><thead><tr><th>job</th><th>status</th><th>fire time</th>'
            "<th>enqueued</th><th>finished</th><th>attempts</th></tr></thead><tbody>{}</tbody></table>"
            '<p><a href="{}">All its jobs</a></p>',
            rows,
            all_jobs,
        )

    @admin.display(description=_("next run"))
    def next_run_display(self, schedule):
        if not schedule.enabled:
            return "- (disabled)"
        return "-" if schedule.next_run_at is None else _when(schedule.next_run_at, schedule.zone, timezone.now())

    @admin.display(description=_("last run"))
    def last_run_display(self, schedule):
        if schedule.last_run_at is None:
            return "-"
        job = schedule.last_job
        fired = timezone.localtime(schedule.last_run_at, schedule.zone).strftime("%Y-%m-%d %H:%M:%S %Z")
        if job is None:
            return f"{fired} (its job was pruned)"
        url = reverse("admin:djjobs_job_change", args=[job.pk])
        return format_html('{}: <a href="{}">{}</a> {}', fired, url, job.pk, status_badge(job.status))

    @admin.display(description=_("skipped runs"))
    def skips_display(self, schedule):
        if not schedule.skipped_runs:
            return "0"
        when = timezone.localtime(schedule.last_skipped_at, schedule.zone).strftime("%Y-%m-%d %H:%M:%S %Z")
        return format_html("{} in all; last at {}: {}", schedule.skipped_runs, when, schedule.last_skip_reason)

    @admin.display(description=_("declared in code"))
    def code_display(self, schedule):
        schedule = getattr(schedule, "stored", schedule)
        if not schedule.code_managed:
            return "No: made in the admin; migrate never changes it."
        overridden = schedule.overridden_fields()
        if not overridden:
            return "Yes: migrate keeps it as the code declares it. Changes made here are kept as overrides."
        code = schedule.code_definition or {}
        return format_html(
            "Yes, <strong>overridden here</strong>: migrate keeps these changes (the action "
            "<em>Reset to code declaration</em> drops them):<ul>{}</ul>",
            format_html_join("", "<li>{}: code says {}</li>", ((name, _show(code.get(name))) for name in overridden)),
        )

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        if form.changed_data == ["enabled"]:  # the list's toggle: the same functions as the actions
            answer = (tick.enable if obj.enabled else tick.disable)(obj)
            if answer != Answer.DONE:
                self.message_user(
                    request,
                    f"Schedule {obj.name} not {'enabled' if obj.enabled else 'disabled'} "
                    "(a one-off whose run is done needs a new 'run once at').",
                    messages.WARNING,
                )
            return
        # Only what the form changed: a worker may be firing this schedule meanwhile.
        obj.save(update_fields=[*form.changed_data, "updated_at"])

    # -- the preview view ----------------------------------------------------------------

    def preview_view(self, request):
        """JSON: the description and next fire times of the timing in the query string."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        params = request.GET
        try:
            timing = _timing_from(params)
        except TimingError as exc:
            return JsonResponse({"ok": False, "errors": [str(exc)]})
        now = timezone.now()
        times = [timing.run_at] if timing.one_off else timing.upcoming(now, PREVIEW_COUNT)
        return JsonResponse(
            {
                "ok": True,
                "description": describe(
                    timing.cron.text if timing.cron else "", timing.interval, timing.run_at, timing.zone
                ),
                "times": [_when(t, timing.zone, now) for t in times],
            }
        )


def _timing_from(params) -> Timing:
    interval = params.get("interval", "").strip()
    if interval:
        try:
            interval = int(interval)
        except ValueError:
            raise TimingError(f"The interval is a whole number of seconds, got {interval!r}.") from None
    run_at = None
    date, time = params.get("run_at_0", "").strip(), params.get("run_at_1", "").strip()
    if date or time:
        parsed_date, parsed_time = parse_date(date) if date else None, parse_time(time) if time else None
        if parsed_date is None or parsed_time is None:
            raise TimingError("Run once at needs a date (YYYY-MM-DD) and a time (HH:MM:SS).")
        run_at = datetime.combine(parsed_date, parsed_time)
    return Timing.build(
        cron=params.get("cron", "").strip(),
        interval=interval if interval != "" else None,
        run_at=run_at,
        time_zone=params.get("time_zone", "").strip(),
    )


def _preview_html(schedule):
    try:
        timing = schedule.timing()
    except TimingError as exc:
        return format_html('<p class="errornote">{}</p>', exc)
    now = timezone.now()
    times = [timing.run_at] if timing.one_off else timing.upcoming(now, PREVIEW_COUNT)
    return format_html(
        "<p>{}</p><ol>{}</ol>",
        describe(schedule.cron, schedule.interval, schedule.run_at, timing.zone),
        format_html_join("", "<li>{}</li>", ((_when(t, timing.zone, now),) for t in times)),
    )


def _show(value) -> str:
    return "(empty)" if value in (None, "", [], {}) else repr(value)
