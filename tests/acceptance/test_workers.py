"""Acceptance: real ``manage.py run_workers`` processes against the test database.

Run on SQLite (default) and on PostgreSQL (``DATABASE_URL=postgres://...``). Waits are bounded
polls of database state or ``Popen.wait(timeout=...)``; timed assertions are deliberately loose.
"""

import signal
import subprocess
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection

from djjobs.models import Job
from djjobs.states import JobStatus
from tests.acceptance import fast_settings
from tests.testapp.models import Execution
from tests.testapp.tasks import record_job, slow_record

from .conftest import wait_until

pytestmark = [pytest.mark.acceptance]

FAST = "tests.acceptance.fast_settings"


def statuses(ids=None) -> Counter:
    jobs = Job.objects.all() if ids is None else Job.objects.filter(id__in=list(ids))
    return Counter(jobs.values_list("status", flat=True))


def running_ids() -> set:
    return set(Job.objects.filter(status=JobStatus.RUNNING).values_list("id", flat=True))


# -- 1. two workers drain 2,000 jobs, each exactly once ---------------------------------------


@pytest.mark.timeout(180)
@pytest.mark.parametrize("threads", ["4", "8"])
def test_two_workers_drain_2000_jobs_exactly_once(workers, capsys, threads):
    """Batched claims with prefetch (the jobs are short) never hand a job to two workers."""
    a = workers("--concurrency", threads, "--worker-id", "acc-a")
    b = workers("--concurrency", threads, "--worker-id", "acc-b")
    a.wait_started()
    b.wait_started()

    started = time.monotonic()
    results = record_job.enqueue_many([{"label": str(i)} for i in range(2000)])
    assert len(results) == 2000
    assert Job.objects.count() == 2000

    wait_until(
        lambda: Job.objects.filter(status=JobStatus.SUCCESSFUL).count() == 2000,
        timeout=120,
        message="2,000 jobs SUCCESSFUL",
        workers=[a, b],
    )
    elapsed = time.monotonic() - started

    assert a.stop() == 0, a.log()
    assert b.stop() == 0, b.log()
    for worker in (a, b):  # no database errors (busy, locked, serialization) along the way
        bad = [line for line in worker.text().splitlines() if "Traceback" in line or "database error" in line]
        assert bad == [], bad[:20]

    assert statuses() == {JobStatus.SUCCESSFUL: 2000}
    assert set(Job.objects.values_list("attempts", flat=True)) == {1}
    assert Execution.objects.count() == 2000
    assert Execution.objects.values("job_id").distinct().count() == 2000
    assert set(Execution.objects.values_list("job_id", flat=True)) == {r.id for r in results}
    assert set(Execution.objects.values_list("label", flat=True)) == {str(i) for i in range(2000)}

    per_worker = Counter(ids[0] for ids in Job.objects.values_list("worker_ids", flat=True) if len(ids) == 1)
    assert sum(per_worker.values()) == 2000  # each job went to exactly one worker
    assert set(per_worker) == {"acc-a", "acc-b"}, per_worker  # both workers took part
    per_pid = Counter(Execution.objects.values_list("pid", flat=True))
    assert set(per_pid) == {a.pid, b.pid}, per_pid
    assert per_pid[a.pid] == per_worker["acc-a"] and per_pid[b.pid] == per_worker["acc-b"]
    with capsys.disabled():
        print(
            f"\n[drain] 2,000 jobs in {elapsed:.1f}s by two workers x {threads} threads {dict(per_worker)} "
            f"({connection.vendor})"
        )


@pytest.mark.timeout(120)
def test_out_of_the_box_logging_writes_each_job_line_exactly_once(workers):
    """run_workers' own batching handler: every start and success line appears, once, though
    lines are written in batches and the worker processes are forked from a supervisor."""
    worker = workers("--processes", "2", "--concurrency", "2", settings="tests.acceptance.default_logging_settings")
    worker.wait_started()
    results = record_job.enqueue_many([{"label": str(i)} for i in range(300)])
    wait_until(
        lambda: Job.objects.filter(status=JobStatus.SUCCESSFUL).count() == 300,
        timeout=60,
        message="300 jobs SUCCESSFUL",
        workers=[worker],
    )
    assert worker.stop() == 0, worker.log()
    text = worker.text()
    for result in results:
        assert text.count(f"job started task=tests.testapp.tasks.record_job id={result.id} attempt=1/") == 1
        assert text.count(f"job succeeded task=tests.testapp.tasks.record_job id={result.id} attempt=1 ") == 1
    assert text.count("supervisor") >= 2 and "INFO djjobs" in text, text[-2000:]


# -- 2. --burst ------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_burst_exits_0_when_nothing_is_due_and_leaves_future_jobs(workers):
    due = [record_job.enqueue(label=f"due-{i}") for i in range(3)]
    future = record_job.using(run_after=timedelta(hours=1)).enqueue(label="future")

    worker = workers("--burst", "--concurrency", "2")
    assert worker.wait(timeout=60) == 0, worker.log()

    assert statuses(r.id for r in due) == {JobStatus.SUCCESSFUL: 3}
    job = Job.objects.get(id=future.id)
    assert job.status == JobStatus.READY
    assert job.attempts == 0
    assert job.worker_ids == []
    assert sorted(Execution.objects.values_list("label", flat=True)) == ["due-0", "due-1", "due-2"]


@pytest.mark.timeout(120)
def test_burst_with_an_empty_queue_exits_0(workers):
    worker = workers("--burst")
    assert worker.wait(timeout=60) == 0, worker.log()
    assert Job.objects.count() == 0


@pytest.mark.timeout(120)
@pytest.mark.parametrize("processes", [[], ["--processes", "2"]], ids=["threads", "processes"])
def test_burst_exits_1_when_the_database_cannot_be_reached(workers, tmp_path, processes):
    """Not 0 as if nothing were due: a cron'd --burst must show that it could not look."""
    skip = []
    if connection.vendor == "postgresql":
        unreachable = "djjobs_no_such_database"
    else:  # a file that is not a database: each connection fails
        unreachable = tmp_path / "not-a-database.sqlite3"
        unreachable.write_bytes(b"this is not an SQLite database file" * 100)
        skip = ["--skip-checks"]  # Django's model checks connect to SQLite (and would fail first)
    worker = workers("--burst", *processes, *skip, db_name=str(unreachable))
    assert worker.wait(timeout=60) == 1, worker.log()
    assert "burst ends, the database could not be asked what is due (3 tries)" in worker.text(), worker.log()


# -- 3. SIGTERM: finish the running jobs, claim nothing more, exit 0 --------------------------


@pytest.mark.timeout(120)
def test_sigterm_finishes_running_jobs_and_claims_no_more(workers):
    # Priorities fix which two jobs are claimed first; their durations differ, so after the
    # short one ends a slot stays free for ~2.5 s while the worker drains the long one.
    short = slow_record.using(priority=10).enqueue(seconds=1.5)
    long = slow_record.using(priority=5).enqueue(seconds=4.0)
    rest = {r.id for r in slow_record.enqueue_many([{"seconds": 1.0}] * 3)}
    worker = workers("--concurrency", "2")

    # Both slots busy, and both tasks inside their sleep.
    wait_until(
        lambda: Execution.objects.filter(label="start").count() == 2,
        timeout=60,
        message="2 jobs RUNNING",
        workers=[worker],
    )
    assert {str(i) for i in running_ids()} == {short.id, long.id}
    assert not Execution.objects.filter(label="end").exists(), "too slow: the short job ended before SIGTERM"
    signalled = time.monotonic()
    worker.signal(signal.SIGTERM)

    assert worker.wait(timeout=30) == 0, worker.log()
    took = time.monotonic() - signalled
    assert took < 20, took

    # The two running jobs finished normally...
    assert statuses([short.id, long.id]) == {JobStatus.SUCCESSFUL: 2}
    ends = list(Execution.objects.filter(label="end").order_by("id").values_list("job_id", flat=True))
    assert ends == [short.id, long.id]
    assert Counter(Execution.objects.values_list("label", flat=True)) == {"start": 2, "end": 2}
    # ...and the other three were never claimed, though a slot was free after the short one.
    assert statuses(rest) == {JobStatus.READY: 3}
    assert set(Job.objects.filter(id__in=list(rest)).values_list("attempts", flat=True)) == {0}
    assert Job.objects.filter(status=JobStatus.RUNNING).count() == 0


# -- 4. a second signal exits at once ---------------------------------------------------------


@pytest.mark.timeout(120)
def test_second_signal_exits_at_once_and_leaves_the_job_running(workers):
    worker = workers("--concurrency", "1")
    result = slow_record.enqueue(seconds=30.0)
    wait_until(
        lambda: Execution.objects.filter(job_id=result.id, label="start").exists(),
        timeout=60,
        message="the 30 s job to start",
        workers=[worker],
    )

    worker.signal(signal.SIGTERM)
    # The first signal is graceful: the worker waits for its 30 s job.
    with pytest.raises(subprocess.TimeoutExpired):
        worker.proc.wait(timeout=1.5)

    signalled = time.monotonic()
    worker.signal(signal.SIGINT)
    code = worker.wait(timeout=15)
    took = time.monotonic() - signalled
    assert code == 1, worker.log()
    assert took < 5, took

    job = Job.objects.get(id=result.id)
    assert job.status == JobStatus.RUNNING  # left to lease expiry and the rescuer
    assert job.attempts == 1
    assert job.lease_token is not None
    assert job.finished_at is None
    assert list(Execution.objects.values_list("label", flat=True)) == ["start"]


# -- 5. kill -9: the lease expires, another worker rescues and re-runs the job ---------------


@pytest.mark.timeout(120)
def test_kill_9_job_is_rescued_and_rerun(workers, capsys):
    a = workers("--concurrency", "1", "--worker-id", "doomed", settings=FAST)
    result = slow_record.enqueue(seconds=4.0)
    wait_until(
        lambda: Execution.objects.filter(job_id=result.id, label="start").exists(),
        timeout=60,
        message="the job to start on worker A",
        workers=[a],
    )

    a.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    a.proc.wait(timeout=30)
    assert a.proc.returncode == -signal.SIGKILL
    job = Job.objects.get(id=result.id)
    assert job.status == JobStatus.RUNNING and job.attempts == 1 and job.worker_ids == ["doomed"]

    b = workers("--concurrency", "1", "--worker-id", "rescuer", settings=FAST)
    wait_until(
        lambda: Job.objects.filter(id=result.id, status=JobStatus.RUNNING, attempts=2).exists(),
        timeout=60,
        message="the job to run again",
        workers=[b],
    )
    recovery = time.monotonic() - killed
    wait_until(
        lambda: Job.objects.filter(id=result.id, status=JobStatus.SUCCESSFUL).exists(),
        timeout=60,
        message="the job to succeed on worker B",
        workers=[b],
    )
    assert b.stop() == 0, b.log()

    job = Job.objects.get(id=result.id)
    assert job.status == JobStatus.SUCCESSFUL
    assert job.attempts == 2
    assert job.worker_ids == ["doomed", "rescuer"]
    assert job.return_value == 4.0
    assert len(job.errors) == 1
    assert job.errors[0]["exception_class_path"] == "djjobs.exceptions.WorkerLost"
    assert job.errors[0]["attempt"] == 1
    assert job.errors[0]["worker_id"] == "doomed"
    runs = list(Execution.objects.order_by("id").values_list("label", "attempt", "pid"))
    assert runs == [("start", 1, a.pid), ("start", 2, b.pid), ("end", 2, b.pid)]

    bound = fast_settings.LEASE_SECONDS + fast_settings.RESCUE_INTERVAL + 10
    with capsys.disabled():
        print(
            f"\n[kill -9 recovery] {recovery:.2f}s from SIGKILL to RUNNING again "
            f"(lease {fast_settings.LEASE_SECONDS}s, rescue every {fast_settings.RESCUE_INTERVAL}s, "
            f"bound {bound}s, {connection.vendor})"
        )
    assert recovery < bound, recovery


# -- 6. heartbeats keep a job longer than the lease ------------------------------------------


@pytest.mark.timeout(120)
def test_job_longer_than_the_lease_runs_exactly_once(workers):
    a = workers("--concurrency", "2", "--worker-id", "hb-a", settings=FAST)
    b = workers("--concurrency", "2", "--worker-id", "hb-b", settings=FAST)
    a.wait_started()
    b.wait_started()
    seconds = 2 * fast_settings.LEASE_SECONDS  # 6 s, with a 3 s lease renewed every second
    result = slow_record.enqueue(seconds=float(seconds))

    wait_until(
        lambda: Job.objects.filter(id=result.id, status=JobStatus.SUCCESSFUL).exists(),
        timeout=60,
        message="the long job to succeed",
        workers=[a, b],
    )
    assert a.stop() == 0, a.log()
    assert b.stop() == 0, b.log()

    job = Job.objects.get(id=result.id)
    assert job.status == JobStatus.SUCCESSFUL
    assert job.attempts == 1
    assert job.errors == []
    assert len(job.worker_ids) == 1
    assert job.duration >= timedelta(seconds=seconds)
    runs = list(Execution.objects.order_by("id").values_list("label", "attempt"))
    assert runs == [("start", 1), ("end", 1)]
    assert Execution.objects.values("pid").distinct().count() == 1


# -- 7. unique_key under concurrent enqueuers ------------------------------------------------


@pytest.mark.timeout(120)
def test_unique_key_under_20_concurrent_enqueuers(transactional_db):
    threads_count = 20
    key = "acceptance-unique-key"
    barrier = threading.Barrier(threads_count)
    ids, errors = [], []
    lock = threading.Lock()

    def enqueue():
        try:
            barrier.wait(timeout=30)
            result = record_job.using(unique_key=key).enqueue(label="unique")
            with lock:
                ids.append(result.id)
        except Exception as exc:  # noqa: BLE001 - reported below
            with lock:
                errors.append(repr(exc))
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=enqueue) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not any(t.is_alive() for t in threads)

    assert errors == []
    assert len(ids) == threads_count
    jobs = list(Job.objects.filter(unique_key=key))
    assert len(jobs) == 1
    assert Job.objects.count() == 1
    assert set(ids) == {str(jobs[0].id)}  # every enqueuer got the one job's result
