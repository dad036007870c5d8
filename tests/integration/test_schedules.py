"""Schedules on the database (SQLite and PostgreSQL): tick() fires each fire time exactly once,
the unique constraint behind it, policies through the tick, operations, and model validation.

``tick(now=...)`` takes the clock as an argument: these tests freeze it by passing it.
"""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from djjobs.models import Job, Schedule
from djjobs.operations import Answer
from djjobs.schedules import tick as scheduler
from djjobs.testing import run_jobs
from tests.testapp.models import Execution

pytestmark = pytest.mark.django_db

RECORD = "tests.testapp.tasks.record_job"


def make(name="every-minute", **fields) -> Schedule:
    values = {"task_path": RECORD, "cron": "* * * * *", "time_zone": "UTC", **fields}
    schedule = Schedule(name=name, **values)
    schedule.full_clean()
    schedule.save()
    return schedule


def due(schedule, when) -> Schedule:
    """Make ``schedule`` due at ``when`` (as a tick that did not happen would leave it)."""
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=when)
    return Schedule.objects.get(pk=schedule.pk)


def minute(now=None) -> datetime:
    return (now or timezone.now()).replace(second=0, microsecond=0)


# -- firing ------------------------------------------------------------------------------------


def test_saving_computes_the_first_run():
    schedule = make()
    assert schedule.next_run_at == minute() + timedelta(minutes=1)
    schedule.cron = "0 2 * * *"
    schedule.save()
    assert schedule.next_run_at.hour == 2 and schedule.next_run_at > timezone.now()
    schedule.enabled = False
    schedule.save()
    assert Schedule.objects.get(pk=schedule.pk).next_run_at is None


def test_tick_fires_a_due_schedule_once_and_moves_it_on():
    fire = minute()
    schedule = due(make(kwargs={"label": "x"}), fire)
    now = fire + timedelta(seconds=0.5)
    assert scheduler.tick(now) == 1
    job = Job.objects.get()
    assert (job.schedule_id, job.scheduled_for, job.run_after) == (schedule.pk, fire, fire)
    assert job.task_path == RECORD and job.kwargs == {"label": "x"} and job.status == "READY"
    schedule.refresh_from_db()
    assert schedule.next_run_at == fire + timedelta(minutes=1)
    assert (schedule.last_run_at, schedule.last_job_id) == (fire, job.id)
    assert scheduler.tick(now) == 0  # the same frozen instant: nothing left to fire
    assert scheduler.tick(now + timedelta(seconds=20)) == 0
    assert Job.objects.count() == 1
    run_jobs()
    assert Execution.objects.get().label == "x"


def test_not_due_and_disabled_schedules_do_not_fire():
    make("later")
    disabled = make("off", enabled=False)
    Schedule.objects.filter(pk=disabled.pk).update(next_run_at=timezone.now() - timedelta(seconds=1))
    assert scheduler.tick() == 0
    assert not Job.objects.exists()


def test_the_unique_constraint_allows_one_job_per_fire_time():
    schedule = make()
    fire = minute()
    Job.objects.create(task_path=RECORD, schedule=schedule, scheduled_for=fire)
    Job.objects.create(task_path=RECORD, schedule=schedule, scheduled_for=fire + timedelta(minutes=1))
    Job.objects.create(task_path=RECORD)  # jobs without a schedule are not constrained
    Job.objects.create(task_path=RECORD)
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.create(task_path=RECORD, schedule=schedule, scheduled_for=fire)


def test_a_rewound_schedule_never_fires_a_time_twice():
    fire = minute()
    schedule = due(make(), fire)
    scheduler.tick(fire + timedelta(seconds=1))
    due(schedule, fire)  # e.g. a stale admin save wrote the old next run back
    assert scheduler.tick(fire + timedelta(seconds=2)) == 0
    assert Job.objects.filter(schedule=schedule, scheduled_for=fire).count() == 1
    schedule.refresh_from_db()
    assert schedule.next_run_at == fire + timedelta(minutes=1) and schedule.skipped_runs == 0


def test_queue_and_priority_overrides():
    schedule = due(make(queue_name="urgent", priority=50), minute())
    scheduler.tick(schedule.next_run_at + timedelta(seconds=1))
    job = Job.objects.get()
    assert (job.queue_name, job.priority) == ("urgent", 50)


def test_one_off_fires_once_and_disables_itself():
    run_at = timezone.now() + timedelta(minutes=5)
    schedule = make("once", cron="", run_at=run_at)
    assert schedule.next_run_at == run_at
    assert scheduler.tick(run_at - timedelta(seconds=1)) == 0
    assert scheduler.tick(run_at + timedelta(seconds=1)) == 1
    schedule.refresh_from_db()
    assert (schedule.enabled, schedule.next_run_at, schedule.last_run_at) == (False, None, run_at)
    assert scheduler.tick(run_at + timedelta(minutes=1)) == 0
    assert scheduler.enable(schedule) == Answer.NOT_ALLOWED  # its run is done
    schedule.enabled = True
    with pytest.raises(ValidationError, match="already ran"):
        schedule.full_clean()


def test_overlap_skip_records_the_skip_until_the_previous_run_finished():
    fire = minute()
    schedule = due(make(overlap="skip"), fire)
    assert scheduler.tick(fire + timedelta(seconds=1)) == 1
    schedule = due(schedule, fire + timedelta(minutes=1))
    assert scheduler.tick(fire + timedelta(minutes=1, seconds=1)) == 0  # the first job is still READY
    schedule.refresh_from_db()
    assert schedule.skipped_runs == 1
    assert schedule.last_skip_reason == "the previous run was still READY or RUNNING (overlap: skip)"
    assert schedule.next_run_at == fire + timedelta(minutes=2)
    run_jobs()
    assert scheduler.tick(fire + timedelta(minutes=2, seconds=1)) == 1


def test_misfires_through_the_tick():
    now = minute() + timedelta(seconds=30)
    down_since = minute() - timedelta(minutes=10)
    run_all = due(make("all", misfire="run_all"), down_since)
    skip = due(make("skip", misfire="skip"), down_since)
    once = due(make("once", misfire="run_once", cron="*/5 * * * *"), down_since)
    scheduler.tick(now)
    assert Job.objects.filter(schedule=run_all).count() == 11  # 10 missed + the one on time
    assert Job.objects.filter(schedule=skip).count() == 1  # only the one on time
    # run_once: exactly one run, for the latest 5-minute mark: on time if it is within the
    # 60 s grace, else as the one catch-up run (and no catch-up when a run is on time).
    marks = [down_since] + [down_since + timedelta(minutes=m) for m in range(1, 11) if (down_since.minute + m) % 5 == 0]
    latest = max(t for t in marks if t <= now)
    assert list(Job.objects.filter(schedule=once).values_list("scheduled_for", flat=True)) == [latest]
    skip.refresh_from_db()
    assert skip.skipped_runs == 10 and "not caught up (misfire: skip)" in skip.last_skip_reason
    run_all.refresh_from_db()
    assert run_all.last_run_at == minute() and run_all.skipped_runs == 0


def test_a_task_that_went_away_is_skipped_with_the_reason():
    schedule = due(make(), minute())
    Schedule.objects.filter(pk=schedule.pk).update(task_path="tests.testapp.tasks.removed_task")
    assert scheduler.tick(minute() + timedelta(seconds=1)) == 0
    schedule.refresh_from_db()
    assert schedule.skipped_runs == 1 and "Unknown task" in schedule.last_skip_reason
    assert schedule.next_run_at == minute() + timedelta(minutes=1)


def test_a_row_with_bad_timing_is_disabled_with_the_reason():
    schedule = due(make(), minute())
    Schedule.objects.filter(pk=schedule.pk).update(cron="99 * * * *")  # written around validation
    scheduler.tick(minute() + timedelta(seconds=1))
    schedule.refresh_from_db()
    assert not schedule.enabled and "minute field '99'" in schedule.last_skip_reason


# -- exactly once under concurrency (a second connection per ticker) -------------------------------


def _tick_in_threads(count, now):
    barrier = threading.Barrier(count)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(scheduler.tick(now))
        except Exception as exc:  # noqa: BLE001  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_ticks_fire_each_time_once():
    now = timezone.now()
    schedules = [due(make(f"s{i}", cron="* * * * * *"), now - timedelta(seconds=5)) for i in range(5)]
    results = _tick_in_threads(4, now)
    assert sum(results) == 5 * 6  # 5 schedules x 6 fire times (now-5s .. now)
    for schedule in schedules:
        fires = list(Job.objects.filter(schedule=schedule).values_list("scheduled_for", flat=True))
        assert len(fires) == len(set(fires)) == 6


@pytest.mark.concurrent
@pytest.mark.django_db(transaction=True)
def test_a_locked_schedule_is_skipped_not_waited_for():
    schedule = due(make(), minute())
    locked, release = threading.Event(), threading.Event()

    def hold_lock():
        with transaction.atomic():
            Schedule.objects.select_for_update().get(pk=schedule.pk)
            locked.set()
            release.wait(10)
        connections.close_all()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    locked.wait(10)
    try:
        started = timezone.now()
        assert scheduler.tick(minute() + timedelta(seconds=1)) == 0  # SKIP LOCKED: no wait
        assert (timezone.now() - started).total_seconds() < 2
    finally:
        release.set()
        holder.join(10)
    assert scheduler.tick(minute() + timedelta(seconds=1)) == 1


# -- operations --------------------------------------------------------------------------------


def test_run_now_enqueues_without_moving_the_schedule():
    schedule = make(enabled=False, kwargs={"label": "now"})
    job = scheduler.run_now(schedule)
    assert (job.schedule_id, job.kwargs) == (schedule.pk, {"label": "now"})
    assert job.scheduled_for is not None
    schedule.refresh_from_db()
    assert schedule.next_run_at is None and schedule.last_job_id == job.id
    Schedule.objects.filter(pk=schedule.pk).update(task_path="nope.gone")
    schedule.refresh_from_db()
    with pytest.raises(scheduler.ScheduleError, match="Unknown task"):
        scheduler.run_now(schedule)


def test_enable_and_disable():
    schedule = make()
    assert scheduler.disable(schedule) == Answer.DONE
    assert scheduler.disable(schedule) == Answer.NOT_ALLOWED
    schedule.refresh_from_db()
    assert (schedule.enabled, schedule.next_run_at) == (False, None)
    assert scheduler.enable(schedule) == Answer.DONE
    schedule.refresh_from_db()
    assert schedule.enabled and schedule.next_run_at == minute() + timedelta(minutes=1)
    assert scheduler.enable(schedule) == Answer.NOT_ALLOWED


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"cron": "61 * * * *"}, "cron", "the minute field '61' is not valid"),
        ({"cron": "* * *"}, "cron", "has 3 field(s)"),
        ({"task_path": "tests.testapp.tasks.nope"}, "task_path", "Unknown task"),
        ({"task_path": "tests.testapp.tasks.not_a_task"}, "task_path", "is not a task"),
        ({"task_path": ""}, "task_path", "This field cannot be blank."),
        ({"args": {"a": 1}}, "args", "args must be a JSON list"),
        ({"kwargs": [1]}, "kwargs", "kwargs must be a JSON object"),
        ({"cron": "", "interval": 0}, "interval", "at least 1 second, got 0"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "Unknown time zone 'Mars/Olympus'"),
        ({"cron": ""}, "__all__", "Give exactly one of cron, interval and run once at (none is set)"),
        ({"interval": 60}, "__all__", "(cron and interval are set)"),
        ({"queue_name": "nope"}, "queue_name", "Queue 'nope' is not valid"),
        ({"priority": 500}, "priority", "between -100 and 100"),
        ({"misfire": "later"}, "misfire", "is not a valid choice"),
    ],
)
def test_model_validation_says_what_is_wrong(fields, field, message):
    schedule = Schedule(name="bad", **{"task_path": RECORD, "cron": "* * * * *", "time_zone": "UTC", **fields})
    with pytest.raises(ValidationError) as caught:
        schedule.full_clean()
    assert any(message in text for text in caught.value.message_dict[field]), caught.value.message_dict
    assert not Schedule.objects.filter(name="bad").exists()


def test_database_constraints_back_the_validation():
    with pytest.raises(IntegrityError), transaction.atomic():
        Schedule.objects.create(name="two", task_path=RECORD, cron="* * * * *", interval=5)
    with pytest.raises(IntegrityError), transaction.atomic():
        Schedule.objects.create(name="none", task_path=RECORD)


def test_time_zone_defaults_to_settings(settings):
    settings.TIME_ZONE = "Europe/London"
    assert Schedule(name="tz", task_path=RECORD, cron="0 2 * * *").time_zone == "Europe/London"


def test_fire_times_in_the_schedules_zone():
    schedule = make(cron="0 9 * * *", time_zone="America/New_York")
    local = timezone.localtime(schedule.next_run_at, schedule.zone)
    assert (local.hour, local.minute) == (9, 0)
    assert len(schedule.upcoming(5)) == 5 and schedule.upcoming(5)[0] == schedule.next_run_at


def test_connection_is_not_left_in_a_transaction():
    scheduler.tick(datetime(2000, 1, 1, tzinfo=UTC))
    assert not connection.in_atomic_block or connection.savepoint_ids is not None


def test_a_failing_schedule_does_not_stop_the_tick(monkeypatch):
    broken, fine = due(make("broken"), minute()), due(make("fine"), minute())
    fire = scheduler._fire

    def fire_or_fail(schedule, now):
        if schedule.pk == broken.pk:
            raise RuntimeError("a bug")
        return fire(schedule, now)

    monkeypatch.setattr(scheduler, "_fire", fire_or_fail)
    assert scheduler.tick(minute() + timedelta(seconds=1)) == 1
    assert Job.objects.filter(schedule=fine).count() == 1
    assert Schedule.objects.get(pk=broken.pk).next_run_at == minute()  # rolled back: still due
