"""Acceptance: schedules fired by real ``run_workers`` processes on PostgreSQL and MariaDB/MySQL,
exactly once per tick while workers are killed with SIGKILL and restarted."""

import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from djjobs.models import Job, Schedule
from djjobs.states import JobStatus
from tests.testapp.models import Execution

from .conftest import wait_until

pytestmark = [pytest.mark.acceptance, pytest.mark.concurrent]

FAST = "tests.acceptance.fast_settings"  # 3 s leases: a killed worker's jobs come back quickly
RUN_SECONDS = 30
KILL_EVERY = 10


@pytest.mark.timeout(180)
def test_every_second_schedules_fire_each_tick_exactly_once_through_kill_9(workers, capsys):
    started = [workers("--concurrency", "2", "--worker-id", f"sched-{i}", settings=FAST) for i in range(3)]
    for worker in started:
        worker.wait_started()
    # Five schedules firing every second: three 1-second intervals, two 6-field (seconds) crons.
    schedules = [
        Schedule.objects.create(
            name=f"tick-{i}",
            task_path="tests.testapp.tasks.record_job",
            kwargs={"label": f"tick-{i}"},
            time_zone="UTC",
            **({"interval": 1} if i < 3 else {"cron": "* * * * * *"}),
        )
        for i in range(5)
    ]
    first = {s.pk: s.next_run_at for s in schedules}

    alive = list(started)
    begin = time.monotonic()
    kills = 0
    for round_ in range(1, RUN_SECONDS // KILL_EVERY):
        time.sleep(max(0.0, begin + round_ * KILL_EVERY - time.monotonic()))
        victim = alive.pop(0)
        victim.kill()  # SIGKILL: no cleanup, maybe in the middle of a tick's transaction
        kills += 1
        alive.append(workers("--concurrency", "2", "--worker-id", f"sched-restart-{round_}", settings=FAST))
    time.sleep(max(0.0, begin + RUN_SECONDS - time.monotonic()))
    end = timezone.now().replace(microsecond=0)

    # Every fire time up to ``end`` has been handled once each schedule's next run is past it.
    wait_until(
        lambda: all(s.next_run_at > end for s in Schedule.objects.filter(pk__in=first)),
        timeout=30,
        message="the schedules to pass the end of the run",
        workers=alive,
    )
    Schedule.objects.filter(pk__in=first).update(enabled=False)

    expected_total = duplicates = missing = extra = 0
    for pk, first_fire in first.items():
        expected = {first_fire + timedelta(seconds=s) for s in range(int((end - first_fire).total_seconds()) + 1)}
        fired = list(Job.objects.filter(schedule_id=pk, scheduled_for__lte=end).values_list("scheduled_for", flat=True))
        counts = Counter(fired)
        expected_total += len(expected)
        duplicates += sum(n - 1 for n in counts.values())
        missing += len(expected - set(counts))
        extra += len(set(counts) - expected)

    fired_ids = list(Job.objects.filter(schedule_id__in=first, scheduled_for__lte=end).values_list("id", flat=True))
    wait_until(
        lambda: Job.objects.filter(id__in=fired_ids, status=JobStatus.SUCCESSFUL).count() == len(fired_ids),
        timeout=60,
        message="every fired job to succeed (the killed workers' jobs are rescued)",
        workers=alive,
    )
    runs = Counter(Execution.objects.filter(job_id__in=[str(i) for i in fired_ids]).values_list("job_id", flat=True))
    rerun = sum(1 for n in runs.values() if n > 1)
    for worker in alive:
        assert worker.stop() == 0, worker.log()
    with capsys.disabled():
        print(
            f"\n[schedules] {len(first)} schedules x {RUN_SECONDS}+ s, 3 workers, {kills} kill -9 + restarts "
            f"({connection.vendor}): fires expected {expected_total}, recorded {len(fired_ids)}, "
            f"duplicates {duplicates}, missing {missing}, extra {extra}; jobs re-run after a kill {rerun}"
        )
    assert (duplicates, missing, extra) == (0, 0, 0)
    assert len(fired_ids) == expected_total
    assert len(runs) == len(fired_ids)  # every fired job ran (a killed worker's job may run twice: at-least-once)
