"""Code-declared schedules synced on migrate, their system checks, and ``manage.py schedules``."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from djjobs.checks import check_schedules
from djjobs.models import Job, Schedule
from djjobs.schedules.sync import sync

pytestmark = pytest.mark.django_db

RECORD = "tests.testapp.tasks.record_job"
DECLARED = "tests.testapp.tasks.new_year_report"


def settings_with(**schedules):
    from django.conf import settings

    return override_settings(DJJOBS={**settings.DJJOBS, "SCHEDULES": schedules})


def migrate() -> str:
    out = StringIO()
    call_command("migrate", verbosity=1, stdout=out)
    return out.getvalue()


# -- sync on migrate ---------------------------------------------------------------------------


def test_task_declared_schedule_exists_after_migrate():
    schedule = Schedule.objects.get(name=DECLARED)  # the test database was migrated
    assert schedule.code_managed and schedule.cron == "0 3 1 1 *" and schedule.task_path == DECLARED
    assert schedule.time_zone == "UTC" and schedule.enabled and schedule.next_run_at.month == 1
    assert schedule.overridden_fields() == []


def test_settings_schedules_are_created_updated_and_deleted_on_migrate():
    nightly = {
        "task": RECORD,
        "cron": "0 2 * * *",
        "time_zone": "Europe/London",
        "kwargs": {"label": "n"},
        "queue_name": "urgent",
        "description": "The nightly report",
    }
    with settings_with(nightly=nightly, ping={"task": RECORD, "interval": 30}):
        assert "Schedules created: nightly, ping" in migrate()
    row = Schedule.objects.get(name="nightly")
    assert (row.code_managed, row.kwargs, row.queue_name, row.time_zone) == (
        True,
        {"label": "n"},
        "urgent",
        "Europe/London",
    )
    assert Schedule.objects.get(name="ping").interval == 30
    with settings_with(nightly={**nightly, "cron": "0 3 * * *"}, ping={"task": RECORD, "interval": 30}):
        assert "Schedules updated: nightly" in migrate()
        assert "Schedules updated" not in migrate()  # nothing changed the second time
    row.refresh_from_db()
    assert row.cron == "0 3 * * *" and timezone.localtime(row.next_run_at, row.zone).hour == 3
    with settings_with(nightly={**nightly, "cron": "0 3 * * *"}):
        assert "Schedules deleted (no longer declared): ping" in migrate()
    assert not Schedule.objects.filter(name="ping").exists()


def test_admin_edits_of_code_schedules_are_kept_and_shown_as_overridden():
    spec = {"task": RECORD, "cron": "0 2 * * *", "kwargs": {"days": 1}}
    with settings_with(report=spec):
        migrate()
        row = Schedule.objects.get(name="report")
        row.cron = "30 4 * * *"  # an operator moved it in the admin
        row.save()
        assert row.overridden_fields() == ["cron"]
    # The code changes both the cron and the kwargs: the admin's cron stays, the kwargs follow the code.
    with settings_with(report={**spec, "cron": "0 5 * * *", "kwargs": {"days": 2}}):
        out = migrate()
    assert "Schedules updated: report" in out and "kept admin changes of: report (cron)" in out
    row.refresh_from_db()
    assert (row.cron, row.kwargs) == ("30 4 * * *", {"days": 2})
    assert row.overridden_fields() == ["cron"] and row.code_definition["cron"] == "0 5 * * *"
    # No longer declared, but changed in the admin: it stays, as an admin-managed schedule.
    out = migrate()
    assert "released to the admin" in out
    row.refresh_from_db()
    assert not row.code_managed and row.cron == "30 4 * * *"


def test_admin_made_schedules_are_never_touched():
    Schedule.objects.create(name="mine", task_path=RECORD, cron="0 1 * * *", time_zone="UTC")
    with settings_with(mine={"task": RECORD, "cron": "0 9 * * *"}):
        out = migrate()
    assert "not synced (an admin-made schedule has the name): mine" in out
    row = Schedule.objects.get(name="mine")
    assert (row.cron, row.code_managed) == ("0 1 * * *", False)
    assert migrate().count("mine") == 0  # not declared any more: still not touched
    assert Schedule.objects.filter(name="mine").exists()


def test_one_off_declared_in_settings_runs_once_and_is_not_overridden_by_firing():
    from djjobs.schedules import tick as scheduler

    run_at = (timezone.now() + timedelta(minutes=5)).replace(microsecond=0)
    with settings_with(remind={"task": RECORD, "run_at": run_at.isoformat()}):
        migrate()
        scheduler.tick(run_at + timedelta(seconds=1))
        row = Schedule.objects.get(name="remind")
        assert not row.enabled and row.overridden_fields() == []
        assert "Schedules updated" not in migrate()  # firing is not an edit: nothing to sync
    assert Job.objects.filter(schedule=row).count() == 1


def test_sync_skips_invalid_declarations_and_the_check_reports_them():
    with settings_with(
        bad={"task": RECORD, "cron": "0 25 * * *"},
        worse={"task": "nope.gone", "interval": 0},
        odd={"task": RECORD, "cron": "* * * * *", "colour": "red"},
        good={"task": RECORD, "interval": 60},
    ):
        report = sync()
        errors = check_schedules()
    assert report.created == ["good"]
    assert not Schedule.objects.filter(name__in=["bad", "worse", "odd"]).exists()
    messages = {e.msg for e in errors}
    assert {e.id for e in errors} == {"djjobs.E201"}
    assert any(
        "DJJOBS['SCHEDULES']['bad']: cron: Cron expression '0 25 * * *' is not valid: the hour field" in m
        for m in messages
    )
    assert any("['worse']" in m and "Unknown task" in m and "at least 1 second" in m for m in messages)
    assert any("['odd']: unknown key(s) colour" in m for m in messages)


def test_a_broken_declaration_keeps_its_row_until_fixed():
    with settings_with(report={"task": RECORD, "cron": "0 2 * * *"}):
        migrate()
    with settings_with(report={"task": RECORD, "cron": "0 2 * * *", "colour": "red"}):
        migrate()
    assert Schedule.objects.get(name="report").cron == "0 2 * * *"


def test_check_accepts_valid_declarations_and_rejects_a_non_dict():
    assert check_schedules() == []
    from django.conf import settings

    with override_settings(DJJOBS={**settings.DJJOBS, "SCHEDULES": ["nightly"]}):
        assert [e.id for e in check_schedules()] == ["djjobs.E202"]


# -- manage.py schedules -----------------------------------------------------------------------


def schedules(*argv) -> str:
    out = StringIO()
    call_command("schedules", *argv, stdout=out)
    return out.getvalue()


def test_list_shows_next_five_fire_times():
    Schedule.objects.create(name="nightly", task_path=RECORD, cron="0 2 * * *", time_zone="Europe/London")
    out = schedules()
    assert "nightly  [enabled; admin]  tests.testapp.tasks.record_job" in out
    assert "At 02:00, every day (Europe/London)" in out
    line = next(line for line in out.splitlines() if "nightly" in out and line.strip().startswith("next:"))
    assert line.count("02:00:00") == 5
    assert f"{DECLARED}  [enabled; code]" in out


def test_run_enqueues_one_now():
    Schedule.objects.create(name="nightly", task_path=RECORD, cron="0 2 * * *", time_zone="UTC")
    out = schedules("--run", "nightly")
    job = Job.objects.get()
    assert f"Enqueued job {job.pk}" in out and job.schedule.name == "nightly"
    assert "last: " in schedules() and "READY (job" in schedules()


def test_run_unknown_name_says_which_exist():
    Schedule.objects.create(name="nightly", task_path=RECORD, cron="0 2 * * *", time_zone="UTC")
    with pytest.raises(CommandError, match=r"No schedule named 'nope'\. Schedules: nightly, tests\.testapp"):
        schedules("--run", "nope")


def test_add_enable_disable():
    out = schedules("--add", "ping", "--task", RECORD, "--interval", "30", "--kwargs", '{"label": "p"}')
    assert "Created schedule 'ping'; next run" in out
    row = Schedule.objects.get(name="ping")
    assert (row.interval, row.kwargs, row.time_zone) == (30, {"label": "p"}, "UTC")
    assert "disabled" in schedules("--disable", "ping") and not Schedule.objects.get(name="ping").enabled
    with pytest.raises(CommandError, match="was not disabled: it is disabled already"):
        schedules("--disable", "ping")
    assert "enabled" in schedules("--enable", "ping") and Schedule.objects.get(name="ping").enabled
    out = schedules("--add", "once", "--task", RECORD, "--run-at", "2030-07-01T09:00", "--time-zone", "Europe/London")
    assert "next run 2030-07-01 09:00:00 BST" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--cron", "0 25 * * *"], "cron: Cron expression '0 25 * * *' is not valid: the hour field '25'"),
        (["--cron", "* * *"], "has 3 field(s)"),
        (["--cron", "* * * * *", "--task", "nope.gone"], "task_path: Unknown task"),
        (["--interval", "0"], "interval: The interval must be at least 1 second, got 0"),
        (["--cron", "* * * * *", "--time-zone", "Mars/Olympus"], "time_zone: Unknown time zone 'Mars/Olympus'"),
        (["--cron", "* * * * *", "--args", "[1,"], "--args is not valid JSON"),
        (["--cron", "* * * * *", "--kwargs", "[1]"], "kwargs: kwargs must be a JSON object"),
        ([], "Give exactly one of cron, interval and run once at (none is set)"),
        (["--cron", "* * * * *", "--interval", "5"], "(cron and interval are set)"),
        (["--run-at", "next tuesday"], "--run-at 'next tuesday' is not an ISO date and time"),
        (["--cron", "* * * * *", "--misfire", "later"], "misfire: Value 'later' is not a valid choice"),
    ],
)
def test_add_rejects_bad_input_and_saves_nothing(argv, message):
    base = ["--add", "bad"] + ([] if "--task" in argv else ["--task", RECORD])
    with pytest.raises(CommandError) as caught:
        schedules(*base, *argv)
    assert message in str(caught.value)
    assert not Schedule.objects.filter(name="bad").exists()
