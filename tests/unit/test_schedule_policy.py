"""djjobs.schedules.policy: what a due schedule fires at a frozen ``now``, without a database:
on-time runs, each misfire policy, the lateness bound and the cap, overlap skip, one-offs."""

from datetime import UTC, datetime, timedelta

from djjobs.schedules.cron import Timing
from djjobs.schedules.policy import Misfire, Overlap, plan

NOW = datetime(2024, 5, 6, 10, 30, 0, 400000, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
EVERY_MINUTE = Timing.build(cron="* * * * *")


def at(minutes_ago) -> datetime:
    return NOW.replace(microsecond=0) - timedelta(minutes=minutes_ago)


def test_not_due_fires_nothing():
    decided = plan(EVERY_MINUTE, NOW + MINUTE, NOW)
    assert decided.fire == [] and decided.next_run_at == NOW + MINUTE


def test_on_time_fire_runs_and_moves_on():
    decided = plan(EVERY_MINUTE, at(0), NOW)
    assert decided.fire == [at(0)]
    assert decided.next_run_at == at(-1)
    assert decided.skipped == 0 and decided.reasons == []


def test_late_ticks_within_the_grace_all_run_under_every_policy():
    every_second = Timing.build(cron="* * * * * *")
    due = NOW.replace(microsecond=0) - timedelta(seconds=3)
    for misfire in Misfire:
        decided = plan(every_second, due, NOW, misfire=misfire)
        assert decided.fire == [due + timedelta(seconds=i) for i in range(4)], misfire
        assert decided.skipped == 0


def test_run_once_fires_one_catch_up_run_for_the_latest_misfire():
    hourly = Timing.build(cron="0 * * * *")
    due = NOW.replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)  # 05:00, workers were down
    decided = plan(hourly, due, NOW, misfire=Misfire.RUN_ONCE)
    assert decided.fire == [NOW.replace(minute=0, second=0, microsecond=0)]  # 10:00, 30 min late
    assert decided.skipped == 5  # 05:00 .. 09:00
    assert decided.next_run_at == NOW.replace(hour=11, minute=0, second=0, microsecond=0)
    assert "5 missed run(s) not caught up (misfire: run_once)" in decided.reasons


def test_run_once_with_a_run_on_time_adds_no_second_run():
    decided = plan(EVERY_MINUTE, at(10), NOW, misfire=Misfire.RUN_ONCE)
    assert decided.fire == [at(0)]  # on time; it is the catch-up run too
    assert decided.skipped == 10


def test_skip_drops_every_misfire_and_resumes():
    hourly = Timing.build(cron="0 * * * *")
    due = NOW.replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
    decided = plan(hourly, due, NOW, misfire=Misfire.SKIP)
    assert decided.fire == []
    assert decided.skipped == 6
    assert decided.next_run_at == NOW.replace(hour=11, minute=0, second=0, microsecond=0)
    decided = plan(EVERY_MINUTE, at(10), NOW, misfire=Misfire.SKIP)
    assert decided.fire == [at(0)]  # the run on time still runs
    assert decided.skipped == 10


def test_run_all_fires_every_misfire_oldest_first():
    decided = plan(EVERY_MINUTE, at(10), NOW, misfire=Misfire.RUN_ALL)
    assert decided.fire == [at(m) for m in range(10, -1, -1)]
    assert decided.skipped == 0


def test_run_all_is_capped_to_the_latest():
    decided = plan(EVERY_MINUTE, at(300), NOW, misfire=Misfire.RUN_ALL, cap=100)
    assert decided.fire == [at(m) for m in range(100, -1, -1)]  # 100 catch-up runs + the one on time
    assert decided.skipped == 200


def test_max_lateness_bounds_catch_up():
    decided = plan(EVERY_MINUTE, at(30), NOW, misfire=Misfire.RUN_ALL, max_lateness=300)
    assert decided.fire == [at(m) for m in range(4, -1, -1)]  # at(5) is 300.4 s late
    assert decided.skipped == 26  # 30 misfires (10:00 .. 10:29), 4 caught up
    daily = Timing.build(cron="0 2 * * *")
    due = NOW.replace(hour=2, minute=0, second=0, microsecond=0)  # 8.5 h ago
    assert plan(daily, due, NOW, misfire=Misfire.RUN_ONCE).fire == [due]
    late = plan(daily, due, NOW, misfire=Misfire.RUN_ONCE, max_lateness=3600)
    assert late.fire == [] and late.skipped == 1
    assert "later than DJJOBS['SCHEDULE_MAX_LATENESS']" in late.reasons[0]


def test_interval_misfires_counted_exactly():
    every_second = Timing.build(interval=1)
    due = NOW.replace(microsecond=0) - timedelta(hours=2)
    decided = plan(every_second, due, NOW, misfire=Misfire.SKIP)
    # NOW is 10:30:00.4: 10:29:01 .. 10:30:00 are within the 60 s grace; 08:30:00 .. 10:29:00 are not.
    assert decided.skipped == 7141
    assert len(decided.fire) == 60


def test_overlap_skip_while_previous_run_is_active():
    decided = plan(EVERY_MINUTE, at(0), NOW, overlap=Overlap.SKIP, previous_active=True)
    assert decided.fire == [] and decided.skipped == 1
    assert decided.next_run_at == at(-1)
    assert decided.reasons == ["the previous run was still READY or RUNNING (overlap: skip)"]


def test_overlap_skip_fires_when_previous_run_finished_and_allow_always_fires():
    assert plan(EVERY_MINUTE, at(0), NOW, overlap=Overlap.SKIP, previous_active=False).fire == [at(0)]
    assert plan(EVERY_MINUTE, at(0), NOW, overlap=Overlap.ALLOW, previous_active=True).fire == [at(0)]


def test_overlap_skip_keeps_one_run_of_a_catch_up():
    decided = plan(EVERY_MINUTE, at(10), NOW, misfire=Misfire.RUN_ALL, overlap=Overlap.SKIP)
    assert decided.fire == [at(0)]
    assert decided.skipped == 10


def test_one_off_fires_once_then_has_no_next_run():
    run_at = NOW - timedelta(seconds=0.2)
    once = Timing.build(run_at=run_at)
    decided = plan(once, run_at, NOW)
    assert decided.fire == [run_at]
    assert decided.next_run_at is None  # the scheduler disables it


def test_one_off_missed_under_each_policy():
    run_at = NOW - timedelta(hours=2)
    once = Timing.build(run_at=run_at)
    assert plan(once, run_at, NOW, misfire=Misfire.RUN_ONCE).fire == [run_at]
    assert plan(once, run_at, NOW, misfire=Misfire.RUN_ALL).fire == [run_at]
    skipped = plan(once, run_at, NOW, misfire=Misfire.SKIP)
    assert skipped.fire == [] and skipped.skipped == 1 and skipped.next_run_at is None
