"""manage.py schedules: list schedules with their next fire times; run, add, enable or disable one."""

import json
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ... import conf
from ...models import Schedule
from ...operations import Answer
from ...payload import encode
from ...schedules import tick
from ...schedules.cron import TimingError, get_zone, localize
from ...schedules.text import describe

COUNT_MAX = 1000  # fire times listed per schedule


class Command(BaseCommand):
    help = (
        "List schedules with their next fire times (default), or: --run NAME (enqueue one run now), "
        "--enable/--disable NAME, --add NAME --task PATH (--cron EXPR | --interval SECONDS | --run-at TIME)."
    )

    def add_arguments(self, parser):
        act = parser.add_mutually_exclusive_group()
        act.add_argument("--run", metavar="NAME", help="Enqueue one run of this schedule now.")
        act.add_argument("--enable", metavar="NAME", help="Enable this schedule.")
        act.add_argument("--disable", metavar="NAME", help="Disable this schedule.")
        act.add_argument("--add", metavar="NAME", help="Create a schedule with this name (see the options below).")
        parser.add_argument(
            "--count", type=int, default=5, help=f"Fire times listed per schedule, 1 to {COUNT_MAX} (default 5)."
        )
        new = parser.add_argument_group("--add")
        new.add_argument("--task", help="The task's dotted path.")
        new.add_argument("--cron", default="", help="Cron expression, 5 fields or 6 with seconds last.")
        new.add_argument("--interval", type=int, help="Every N seconds.")
        new.add_argument("--run-at", help="One run at this ISO date and time (in --time-zone when it has no offset).")
        new.add_argument("--time-zone", help="IANA time zone (default: settings.TIME_ZONE).")
        # dest: "args" is the name Django gives a command's positional arguments.
        new.add_argument("--args", dest="job_args", default="[]", help="JSON list of positional arguments.")
        new.add_argument("--kwargs", dest="job_kwargs", default="{}", help="JSON object of keyword arguments.")
        new.add_argument("--queue", default="", help="Queue of its jobs (default: the task's).")
        new.add_argument("--priority", type=int, help="Priority of its jobs, -100..100 (default: the task's).")
        new.add_argument("--overlap", default="allow", help="allow or skip.")
        new.add_argument("--misfire", default="run_once", help="run_once, skip or run_all.")
        new.add_argument("--description", default="", help="What the schedule is for, shown in the admin.")
        new.add_argument("--disabled", action="store_true", help="Create it disabled.")

    def handle(self, *args, **options):
        if not 1 <= options["count"] <= COUNT_MAX:
            raise CommandError(f"--count must be from 1 to {COUNT_MAX}, got {options['count']}.")
        if options["run"]:
            return self._run(options["run"])
        if options["enable"] or options["disable"]:
            return self._toggle(options["enable"] or options["disable"], enable=bool(options["enable"]))
        if options["add"]:
            return self._add(options["add"], options)
        return self._list(options["count"])

    # -- list ----------------------------------------------------------------------------

    def _list(self, count: int) -> None:
        schedules = list(Schedule.objects.order_by("name"))
        if not schedules:
            self.stdout.write(
                "No schedules. Add one in the admin, with --add, or declare one in code (docs/schedules.md)."
            )
            return
        now = timezone.now()
        for schedule in schedules:
            zone = schedule.zone
            flags = ["enabled" if schedule.enabled else "disabled", "code" if schedule.code_managed else "admin"]
            if schedule.overridden_fields():
                flags.append("overridden: " + ", ".join(schedule.overridden_fields()))
            self.stdout.write(
                self.style.MIGRATE_HEADING(schedule.name) + f"  [{'; '.join(flags)}]  {schedule.task_path}"
            )
            when = describe(schedule.cron, schedule.interval, schedule.run_at, zone)
            if not when.endswith(schedule.time_zone):  # a one-off's time names its zone already
                when = f"{when} ({schedule.time_zone})"
            self.stdout.write(f"    {when}")
            times = schedule.upcoming(count, now)
            shown = ", ".join(f"{timezone.localtime(t, zone):%Y-%m-%d %H:%M:%S %Z}" for t in times)
            self.stdout.write(f"    next: {shown or '-'}")
            if schedule.last_run_at:
                job = schedule.last_job
                status = f"{job.status} (job {job.pk})" if job else "(job pruned)"
                self.stdout.write(
                    f"    last: {timezone.localtime(schedule.last_run_at, zone):%Y-%m-%d %H:%M:%S %Z} {status}"
                )
            if schedule.skipped_runs:
                self.stdout.write(f"    skipped: {schedule.skipped_runs}, last: {schedule.last_skip_reason}")

    # -- operations ----------------------------------------------------------------------

    def _get(self, name: str):
        try:
            return Schedule.objects.get(name=name)
        except Schedule.DoesNotExist:
            known = ", ".join(Schedule.objects.order_by("name").values_list("name", flat=True)[:20]) or "none"
            raise CommandError(f"No schedule named {name!r}. Schedules: {known}.") from None

    def _run(self, name: str) -> None:
        schedule = self._get(name)
        try:
            job = tick.run_now(schedule)
        except tick.ScheduleError as exc:
            raise CommandError(f"Schedule {name!r} cannot run: {exc}") from None
        self.stdout.write(self.style.SUCCESS(f"Enqueued job {job.pk} of {schedule.task_path} (schedule {name!r})."))

    def _toggle(self, name: str, *, enable: bool) -> None:
        schedule = self._get(name)
        answer = (tick.enable if enable else tick.disable)(schedule)
        verb = "enabled" if enable else "disabled"
        if answer != Answer.DONE:
            raise CommandError(
                f"Schedule {name!r} was not {verb}: it is {verb} already"
                + (", or a one-off whose run is done." if enable else ".")
            )
        self.stdout.write(self.style.SUCCESS(f"Schedule {name!r} {verb}."))

    def _add(self, name: str, options) -> None:
        schedule = Schedule(
            name=name,
            task_path=options["task"] or "",
            cron=options["cron"],
            interval=options["interval"],
            args=_json(options["job_args"], "--args"),
            kwargs=_json(options["job_kwargs"], "--kwargs"),
            queue_name=options["queue"],
            priority=options["priority"],
            overlap=options["overlap"],
            misfire=options["misfire"],
            description=options["description"],
            enabled=not options["disabled"],
        )
        if options["time_zone"]:
            schedule.time_zone = options["time_zone"]
        if options["run_at"]:
            schedule.run_at = _run_at(options["run_at"], schedule.time_zone)
        try:
            schedule.full_clean()
        except ValidationError as exc:
            problems = "\n".join(
                f"  {'' if field == '__all__' else field + ': '}{' '.join(messages)}"
                for field, messages in exc.message_dict.items()
            )
            raise CommandError(f"Schedule {name!r} not saved:\n{problems}") from None
        schedule.save()
        first = schedule.next_run_at
        shown = f"{timezone.localtime(first, schedule.zone):%Y-%m-%d %H:%M:%S %Z}" if first else "-"
        self.stdout.write(self.style.SUCCESS(f"Created schedule {name!r}; next run {shown}."))


def _json(text: str, option: str):
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{option} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from None
    except RecursionError:
        raise CommandError(
            f"{option} is nested too deeply to be read; the limit is "
            f"{conf.get('MAX_JSON_DEPTH')} levels (DJJOBS['MAX_JSON_DEPTH'])."
        ) from None
    except ValueError as exc:  # e.g. a number of more than 4300 digits
        raise CommandError(f"{option} cannot be read: {exc}.") from None
    try:  # what a job may store (nesting, NUL, lone surrogates), before anything walks it recursively
        encode(value, option)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    return value


def _run_at(text: str, zone_name: str) -> datetime:
    parsed = parse_datetime(text)
    if parsed is None:
        raise CommandError(f"--run-at {text!r} is not an ISO date and time, e.g. 2030-01-01T09:00.")
    if parsed.tzinfo is not None:
        return parsed
    try:
        return localize(parsed, get_zone(zone_name))
    except TimingError as exc:
        raise CommandError(f"--time-zone: {exc}") from None
