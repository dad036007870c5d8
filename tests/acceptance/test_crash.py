"""Acceptance: crashes, signals and outages against real ``run_workers`` processes.

kill -9 of worker processes under load (process mode), SIGSTOP past the lease, SIGTERM while
busy, poison jobs, a job that kills its own process, timeouts and cancellation enforced by the
supervisor, checkpoints across a kill, and a database that drops every connection (PostgreSQL).

Every wait is a bounded poll of database state, of a process or of a log
(``conftest.wait_until``). The only sleeps pace the injected faults (a kill every 1-2 s, a
connection purge every second); they never wait for work to happen.
"""

import os
import random
import signal
import sqlite3
import statistics
import subprocess
import time
import uuid
from collections import Counter, defaultdict
from datetime import datetime

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone

import djjobs
from djjobs.models import Job, Worker
from djjobs.operations import Answer
from djjobs.states import JobStatus
from tests.acceptance import fast_settings
from tests.testapp.models import Execution
from tests.testapp.tasks import (
    always_fails,
    atomic_load,
    chunks_with_checkpoint,
    cooperative_cancel,
    exits_worker_once,
    ignores_cancel,
    kills_own_worker,
    load_record,
    overstays_30s,
    plain_load,
    record_job,
    slow_record,
)

from .conftest import process_state, wait_until

pytestmark = [pytest.mark.acceptance]

FAST = "tests.acceptance.fast_settings"
WORKER_LOST = "djjobs.exceptions.WorkerLost"
CHILD_KILLED = "worker process exited with code -9"  # the WorkerLost message of the supervisor's release
CHILD_KILLED_LOG = "exited with code -9;"  # the supervisor's log line for it


# -- helpers ---------------------------------------------------------------------------------


def statuses(ids=None) -> Counter:
    jobs = Job.objects.all() if ids is None else Job.objects.filter(id__in=list(ids))
    return Counter(jobs.values_list("status", flat=True))


def executions(job_id, label=None) -> list:
    rows = Execution.objects.filter(job_id=str(job_id))
    if label is not None:
        rows = rows.filter(label=label)
    return list(rows.order_by("id").values_list("label", "attempt", "pid"))


def wait_children(supervisor, count, exclude=(), timeout=30.0) -> set:
    """Wait until the supervisor has exactly ``count`` worker processes, none of them in ``exclude``.

    A worker process is a live child that registered its Worker row (other short-lived
    children, such as a helper a library runs while Django starts, are left out).
    """
    exclude = set(exclude)

    def ready():
        children = supervisor.children()
        registered = set(Worker.objects.filter(pid__in=children, stopped_at__isnull=True).values_list("pid", flat=True))
        workers = children & registered
        return workers if len(workers) == count and not workers & exclude else None

    return wait_until(ready, timeout=timeout, message=f"{count} worker process(es)", workers=[supervisor])


def worker_pids() -> dict:
    """Worker id -> pid, from the rows every worker process registers as it starts."""
    return dict(Worker.objects.values_list("id", "pid"))


def spread(values) -> str:
    if not values:
        return "n=0"
    return f"n={len(values)} min={min(values):.3f}s median={statistics.median(values):.3f}s max={max(values):.3f}s"


def seconds(delta) -> float:
    return delta.total_seconds()


def _sqlite_write_lock_free() -> bool:
    probe = sqlite3.connect(connection.settings_dict["NAME"], timeout=0.2, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        probe.close()


def sigstop(worker) -> None:
    """SIGSTOP the worker and wait until it is stopped.

    On SQLite, a process stopped while it holds the database's write lock (a heartbeat or a
    rescue sweep in flight, a few ms a second) would block every other process until the busy
    timeout: if the lock is held, let it run on for a moment and stop it again.
    """
    for _ in range(100):
        os.kill(worker.pid, signal.SIGSTOP)
        wait_until(lambda: process_state(worker.pid) == "T", timeout=10, message="the worker to stop")
        if connection.vendor != "sqlite" or _sqlite_write_lock_free():
            return
        os.kill(worker.pid, signal.SIGCONT)
        time.sleep(0.02)  # let it finish its write (pacing a retry, not waiting for work)
    pytest.fail("could not stop the worker outside SQLite's write lock")


# -- 1. kill -9 of worker processes under load -------------------------------------------------


def busy_children(children, pids, task=None, timeout=0.0) -> set:
    """The children running a job (of ``task``), polled for up to ``timeout`` s until there is one."""
    deadline = time.monotonic() + timeout
    while True:
        running = Job.objects.filter(status=JobStatus.RUNNING)
        if task is not None:
            running = running.filter(task_path=task.module_path)
        busy = {pids.get(w) for w in running.values_list("worker_id", flat=True)} & children
        if busy or time.monotonic() >= deadline:
            return busy
        time.sleep(0.01)  # a polling interval


@pytest.mark.timeout(240)
def test_kill_9_children_under_load_loses_nothing(workers, capsys, tmp_path):
    """2,000 jobs (20-200 ms) + 200 atomic jobs on --processes 2 --concurrency 4; 15 children kill -9'd."""
    kills_wanted = 15
    rng = random.Random(20240601)
    load_ids, atomic_ids = [], []
    marker = tmp_path / "atomic-runs.txt"  # a line per atomic run that inserted its row, committed or not
    for _ in range(10):  # interleaved, so atomic jobs run all along the load
        load_ids += [r.id for r in load_record.enqueue_many([{"ms": rng.randint(20, 200)} for _ in range(200)])]
        # Shorter: on SQLite an atomic task holds the database's write lock while it runs.
        atomic_ids += [
            r.id
            for r in atomic_load.enqueue_many([{"ms": rng.randint(10, 60), "marker": str(marker)} for _ in range(20)])
        ]
    total = len(load_ids) + len(atomic_ids)
    assert Job.objects.count() == total == 2200

    # Default settings (a 30 s lease): a killed child's jobs come back quickly only if the
    # supervisor releases them at once.
    started = time.monotonic()
    supervisor = workers("--processes", "2", "--concurrency", "4", "--worker-id", "load")
    wait_children(supervisor, 2)

    kills: dict[int, datetime] = {}  # child pid -> when it was killed
    unfinished_at_kill = []
    for n in range(kills_wanted):
        time.sleep(rng.uniform(1.0, 2.0))  # the pace of the kills, not a wait for work
        children = wait_children(supervisor, 2, exclude=kills)
        pids = worker_pids()
        # Every other kill aims at a child running an atomic job (its transaction open), if one
        # does within 3 s; the others at any busy child.
        busy = busy_children(children, pids, atomic_load if n % 2 else None, timeout=3.0 if n % 2 else 0)
        victim = rng.choice(sorted(busy or busy_children(children, pids) or children))
        unfinished_at_kill.append(Job.objects.exclude(status=JobStatus.SUCCESSFUL).count())
        kills[victim] = timezone.now()
        os.kill(victim, signal.SIGKILL)
    kills_done = time.monotonic()

    wait_until(
        lambda: Job.objects.filter(status=JobStatus.SUCCESSFUL).count() == total,
        timeout=150,
        message=f"{total} jobs SUCCESSFUL",
        workers=[supervisor],
    )
    elapsed = time.monotonic() - started
    assert supervisor.stop(timeout=30) == 0, supervisor.log()

    # Every kill hit a loaded system.
    assert min(unfinished_at_kill) > 0, unfinished_at_kill
    # Nothing lost, nothing left RUNNING, everything SUCCESSFUL.
    assert Job.objects.count() == total
    assert statuses() == {JobStatus.SUCCESSFUL: total}
    # Two children at first, one replacement per kill, and no other child died.
    log = supervisor.text()
    assert log.count(CHILD_KILLED_LOG) == kills_wanted, log[-5000:]
    pids = worker_pids()
    assert len(pids) == 2 + kills_wanted, pids
    killed_ids = {w for w, pid in pids.items() if pid in kills}
    assert len(killed_ids) == kills_wanted

    # Each failed attempt is a WorkerLost from the supervisor's release of a killed child.
    release_latency, rerun_latency = [], []
    starts = {
        (job_id, attempt): created
        for job_id, attempt, created in Execution.objects.values_list("job_id", "attempt", "created")
    }
    lost_jobs = 0
    for job in Job.objects.only("id", "attempts", "errors", "worker_ids", "last_attempted_at"):
        # An error of a job claimed ahead (prefetched) whose attempt was given back is not counted.
        counted = [e for e in job.errors if e.get("counted", True)]
        assert len(counted) == job.attempts - 1, (job.id, job.attempts, job.errors)
        assert len(job.worker_ids) == job.attempts
        lost_jobs += bool(job.errors)
        for error in job.errors:
            assert error["exception_class_path"] == WORKER_LOST, error
            assert CHILD_KILLED in error["message"], error
            assert error["worker_id"] in killed_ids, error
            killed_at = kills[pids[error["worker_id"]]]
            release_latency.append(seconds(datetime.fromisoformat(error["at"]) - killed_at))
            following = error["attempt"] + (1 if error.get("counted", True) else 0)
            rerun = job.last_attempted_at if following == job.attempts else starts.get((str(job.id), following))
            if rerun is not None:  # None: the next attempt was claimed but killed before it started
                rerun_latency.append(seconds(rerun - killed_at))
    assert lost_jobs > 0
    assert min(release_latency) >= 0
    # Released by the supervisor at once, not by the lease (30 s) running out.
    assert max(release_latency) < 5, spread(release_latency)

    # Every load job ran; each run that did not finish was on a killed process.
    runs = defaultdict(list)
    for job_id, attempt, pid in (
        Execution.objects.filter(label="load").order_by("attempt").values_list("job_id", "attempt", "pid")
    ):
        runs[job_id].append((attempt, pid))
    assert len(runs) == len(load_ids) == 2000
    assert set(runs) == {str(i) for i in load_ids}
    duplicated = 0
    final = {str(j.id): (j.attempts, pids[j.worker_id]) for j in Job.objects.filter(id__in=load_ids)}
    for job_id, job_runs in runs.items():
        attempts = [a for a, _ in job_runs]
        assert attempts == sorted(attempts), job_runs  # an attempt given back runs again under its number
        assert job_runs[-1] == final[job_id], (job_runs, final[job_id])  # the successful run
        if len(job_runs) > 1:
            duplicated += 1
            assert all(pid in kills for _, pid in job_runs[:-1]), job_runs

    # Atomic jobs: exactly one committed row each, by the attempt that succeeded.
    atomic_rows = Counter(Execution.objects.filter(label="atomic").values_list("job_id", flat=True))
    assert atomic_rows == Counter({str(i): 1 for i in atomic_ids})
    atomic_final = {str(j.id): (j.attempts, pids[j.worker_id]) for j in Job.objects.filter(id__in=atomic_ids)}
    for job_id, attempt, pid in Execution.objects.filter(label="atomic").values_list("job_id", "attempt", "pid"):
        assert (attempt, pid) == atomic_final[job_id]
    atomic_rerun = sum(1 for a, _ in atomic_final.values() if a > 1)
    assert atomic_rerun >= 1  # some atomic jobs were on a killed child
    inserted = marker.read_text().count("start ")
    assert inserted >= len(atomic_ids)

    with capsys.disabled():
        print(
            f"\n[kill -9 under load] {total} jobs, {kills_wanted} children killed in "
            f"{kills_done - started:.1f}s, all done in {elapsed:.1f}s ({connection.vendor}); "
            f"{lost_jobs} jobs lost an attempt, {duplicated} load jobs ran twice+, "
            f"{atomic_rerun} atomic jobs re-ran, {inserted - len(atomic_ids)} atomic rows inserted by killed runs "
            f"and rolled back; "
            f"unfinished at the kills {unfinished_at_kill[0]}..{unfinished_at_kill[-1]}"
        )
        print(f"[kill -9 under load] kill -> release (WorkerLost recorded): {spread(release_latency)}")
        print(f"[kill -9 under load] kill -> next attempt starts:          {spread(rerun_latency)}")


# -- 2. SIGSTOP past the lease: the late completion is rejected ---------------------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "resume",
    [
        "after",  # SIGCONT once the new owner completed the job: the status guard rejects A
        "during",  # SIGCONT while the new owner still runs it: only the lease token tells them apart
    ],
)
@pytest.mark.parametrize(
    "atomic",
    [
        # A SIGSTOPped atomic task holds SQLite's write lock (its transaction is open): on SQLite
        # every other process would wait for it, so this one runs on PostgreSQL and MariaDB/MySQL only.
        pytest.param(True, marks=pytest.mark.concurrent, id="atomic"),
        pytest.param(False, id="plain"),
    ],
)
def test_sigstopped_worker_loses_its_job_and_cannot_complete_it(workers, tmp_path, atomic, resume):
    task, label = (atomic_load, "atomic") if atomic else (plain_load, "plain")
    marker = tmp_path / "runs.txt"
    marker.touch()
    a = workers("--concurrency", "1", "--worker-id", "stopped", settings=FAST)
    result = task.enqueue(ms=2000 if resume == "after" else 3000, marker=str(marker))
    wait_until(
        lambda: marker.read_text().count("start") == 1, timeout=60, message="the job to start on worker A", workers=[a]
    )
    sigstop(a)
    job = Job.objects.get(id=result.id)
    assert (job.status, job.attempts, job.worker_ids) == (JobStatus.RUNNING, 1, ["stopped"])

    b = workers("--concurrency", "1", "--worker-id", "rescuer", settings=FAST)
    if resume == "during":
        wait_until(
            lambda: marker.read_text().count("start") == 2,
            timeout=60,
            message="worker B to rescue the job and start it",
            workers=[b],
        )
        assert process_state(a.pid) == "T"  # A stayed stopped all along
        os.kill(a.pid, signal.SIGCONT)
        wait_until(
            lambda: "job result dropped" in a.text(),
            timeout=30,
            message="worker A to drop its late result",
            workers=[a],
        )
        job = Job.objects.get(id=result.id)
        # A's completion changed nothing: the job is still B's, running.
        assert (job.status, job.attempts, job.worker_id) == (JobStatus.RUNNING, 2, "rescuer")
        assert job.lease_token is not None and job.return_value is None and job.finished_at is None
        # Atomic: A's row rolled back and B's is not committed yet.
        assert executions(result.id) == ([] if atomic else [(label, 1, a.pid), (label, 2, b.pid)])

    done = wait_until(
        lambda: Job.objects.filter(id=result.id, status=JobStatus.SUCCESSFUL).first(),
        timeout=60,
        message="worker B to complete the job",
        workers=[b],
    )
    if resume == "after":
        assert process_state(a.pid) == "T"  # A stayed stopped all along
    assert done.attempts == 2
    assert done.worker_ids == ["stopped", "rescuer"]
    assert done.return_value == {"pid": b.pid}
    assert [(e["attempt"], e["exception_class_path"], e["worker_id"]) for e in done.errors] == [
        (1, WORKER_LOST, "stopped")
    ]
    assert "lease expired" in done.errors[0]["message"]
    expected_rows = [(label, 2, b.pid)] if atomic else [(label, 1, a.pid), (label, 2, b.pid)]
    assert executions(result.id) == expected_rows

    if resume == "after":
        os.kill(a.pid, signal.SIGCONT)
        wait_until(
            lambda: "job result dropped" in a.text(),
            timeout=30,
            message="worker A to drop its late result",
            workers=[a],
        )
    ends = [f"end {b.pid} 2", f"end {a.pid} 1"] if resume == "after" else [f"end {a.pid} 1", f"end {b.pid} 2"]
    assert marker.read_text().split("\n") == [f"start {a.pid} 1", f"start {b.pid} 2", *ends, ""]

    after = Job.objects.get(id=result.id)
    fields = ("status", "attempts", "worker_ids", "worker_id", "return_value", "finished_at", "errors", "lease_token")
    assert {f: getattr(after, f) for f in fields} == {f: getattr(done, f) for f in fields}
    # The atomic run of A rolled back: its row is not there (exactly-once DB effects).
    assert executions(result.id) == expected_rows
    assert a.stop() == 0, a.log()
    assert b.stop() == 0, b.log()
    assert "Traceback" not in a.text() + b.text()


# -- 3. SIGTERM while busy, 20 times ------------------------------------------------------------


@pytest.mark.timeout(150)
def test_sigterm_20_times_while_busy_runs_every_job_once(workers, capsys):
    """20 workers, each SIGTERMed while it runs jobs; even rounds thread mode, odd --processes 1."""
    rounds, longest = 20, 0.5
    # The longest job, plus time to stop threads, unregister and exit (0.2-0.7 s on an idle
    # machine; a few seconds on a loaded 2-CPU one).
    grace = longest + 4.5
    rng = random.Random(3)
    results = slow_record.enqueue_many([{"seconds": round(rng.uniform(0.2, longest), 3)} for _ in range(80)])
    ids = {r.id for r in results}

    def start(i):
        name = f"term-{i:02d}"
        mode = ("--processes", "1") if i % 2 else ()
        return name, workers(*mode, "--concurrency", "2", "--worker-id", name)

    def pids_of(name):  # the process running the jobs: the worker itself, or its child
        return set(Worker.objects.filter(Q(id=name) | Q(id__startswith=f"{name}-")).values_list("pid", flat=True))

    started = time.monotonic()
    exits, in_flight = [], 0
    for i in range(rounds):
        # One at a time: a worker starting up meanwhile would slow this one's exit on a small machine.
        current_name, current = start(i)
        wait_until(
            lambda: Execution.objects.filter(pid__in=pids_of(current_name), label="start").exists(),  # noqa: B023 - waited on now
            timeout=30,
            message=f"worker {current_name} to start a job",
            workers=[current],
        )
        signalled_at = timezone.now()
        signalled = time.monotonic()
        current.signal(signal.SIGTERM)
        assert current.wait(timeout=grace) == 0, current.log()
        exits.append(time.monotonic() - signalled)
        pids = pids_of(current_name)
        assert len(pids) == 1, pids  # one process ran its jobs (in process mode: one child, never replaced)
        # It was busy: a job it ran ended after the signal (it finished it before exiting).
        late_ends = Execution.objects.filter(pid__in=pids, label="end", created__gt=signalled_at).count()
        assert late_ends >= 1, executions_of_pids(pids)
        in_flight += late_ends
        # Everything it started, it finished.
        labels = Counter(Execution.objects.filter(pid__in=pids).values_list("label", flat=True))
        assert labels["start"] == labels["end"] >= 1, labels
    loop = time.monotonic() - started

    drain = workers("--burst", "--concurrency", "4", "--worker-id", "drain")
    assert drain.wait(timeout=60) == 0, drain.log()

    assert statuses(ids) == {JobStatus.SUCCESSFUL: len(ids)}
    assert set(Job.objects.values_list("attempts", flat=True)) == {1}
    assert all(errors == [] for errors in Job.objects.values_list("errors", flat=True))
    per_job = Counter(Execution.objects.values_list("job_id", "label"))
    assert per_job == Counter({(str(i), label): 1 for i in ids for label in ("start", "end")})  # no duplicates
    by_worker = Counter(w[0][: len("term-00")] for w in Job.objects.values_list("worker_ids", flat=True))
    assert all(by_worker[f"term-{i:02d}"] >= 1 for i in range(rounds)), by_worker
    with capsys.disabled():
        print(
            f"\n[SIGTERM x{rounds}] {loop:.1f}s; {in_flight} jobs finished after their SIGTERM; "
            f"exit after SIGTERM {spread(exits)} (grace {grace}s); "
            f"{len(ids) - by_worker['drain']} jobs by the signalled workers, "
            f"{by_worker['drain']} by the final --burst ({connection.vendor})"
        )


def executions_of_pids(pids):
    return list(Execution.objects.filter(pid__in=pids).values_list("job_id", "label", "created"))


# -- 5. poison jobs ----------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_poison_job_fails_after_exactly_5_attempts_while_500_neighbours_succeed(workers):
    poison = always_fails.enqueue()
    good = {r.id for r in record_job.enqueue_many([{"label": f"n{i}"} for i in range(500)])}
    worker = workers("--concurrency", "4", "--worker-id", "poison")
    wait_until(lambda: Job.objects.finished().count() == 501, timeout=90, message="501 jobs finished", workers=[worker])
    assert worker.stop() == 0, worker.log()

    job = Job.objects.get(id=poison.id)
    assert job.status == JobStatus.FAILED
    assert job.attempts == 5 and job.max_attempts == 5
    assert [(e["attempt"], e["exception_class_path"], e["message"]) for e in job.errors] == [
        (n, "builtins.RuntimeError", "boom") for n in range(1, 6)
    ]
    assert job.finished_at is not None
    assert statuses(good) == {JobStatus.SUCCESSFUL: 500}
    assert set(Job.objects.filter(id__in=good).values_list("attempts", flat=True)) == {1}
    assert Execution.objects.count() == 500
    assert set(Execution.objects.values_list("job_id", flat=True)) == {str(i) for i in good}


@pytest.mark.timeout(120)
def test_job_that_kills_its_worker_process_fails_after_3_attempts_and_the_supervisor_goes_on(workers):
    supervisor = workers("--processes", "1", "--concurrency", "1", "--worker-id", "victim")
    wait_children(supervisor, 1)
    result = kills_own_worker.enqueue()
    wait_until(
        lambda: Job.objects.filter(id=result.id, status=JobStatus.FAILED).exists(),
        timeout=60,
        message="the self-killing job to fail",
        workers=[supervisor],
    )

    job = Job.objects.get(id=result.id)
    assert job.attempts == 3 and job.max_attempts == 3
    assert [(e["attempt"], e["exception_class_path"]) for e in job.errors] == [(n, WORKER_LOST) for n in (1, 2, 3)]
    assert all(CHILD_KILLED in e["message"] for e in job.errors), job.errors
    runs = executions(result.id)
    assert [(label, attempt) for label, attempt, _ in runs] == [("suicide", 1), ("suicide", 2), ("suicide", 3)]
    killed = {pid for _, _, pid in runs}
    assert len(killed) == 3  # each attempt killed a fresh worker process

    # The supervisor lives on with a fresh child, which does other work.
    assert supervisor.proc.poll() is None
    (child,) = wait_children(supervisor, 1, exclude=killed)
    others = {r.id for r in record_job.enqueue_many([{"label": f"after-{i}"} for i in range(10)])}
    wait_until(
        lambda: statuses(others) == {JobStatus.SUCCESSFUL: 10},
        timeout=60,
        message="10 jobs after the poison one",
        workers=[supervisor],
    )
    assert set(Execution.objects.filter(job_id__in=[str(i) for i in others]).values_list("pid", flat=True)) == {child}
    assert supervisor.text().count(CHILD_KILLED_LOG) == 3
    assert supervisor.stop() == 0, supervisor.log()


# -- 5b. a lost worker's prefetched jobs, and its jobs whose cancellation was requested -------


@pytest.mark.timeout(120)
def test_os_exit_in_thread_mode_costs_no_attempt_to_the_prefetched_jobs_that_never_started(workers, tmp_path):
    """Thread mode, --concurrency 2: 60 short jobs (the worker learns they are short and
    prefetches), a 1 s job, a job that os._exit()s the process, then 50 more short jobs, all
    max_attempts=1 and enqueued in one transaction. The jobs claimed ahead that the dead
    worker never started get their attempt back: every one of them succeeds on the next worker."""
    marker = tmp_path / "exited"
    with transaction.atomic():
        warm = [
            r.id for r in record_job.using(max_attempts=1).enqueue_many([{"label": f"warm-{i}"} for i in range(60)])
        ]
        # Busy the other thread while the job below kills the worker: the jobs after them wait.
        blocker = slow_record.enqueue(seconds=1.0)
        exiting = exits_worker_once.enqueue(marker=str(marker))
        after = [
            r.id for r in record_job.using(max_attempts=1).enqueue_many([{"label": f"after-{i}"} for i in range(50)])
        ]
    first = workers("--concurrency", "2", "--worker-id", "exits", settings=FAST)
    assert first.wait(60) == 3, first.log()  # os._exit(3) in the task
    assert marker.exists()
    held = Job.objects.filter(status=JobStatus.RUNNING, worker_id="exits")
    ahead = set(held.filter(claimed_ahead=True).values_list("id", flat=True))
    assert ahead, "the dead worker held no prefetched job: the test did not test the refund"

    second = workers("--concurrency", "2", "--worker-id", "after", settings=FAST)
    everything = [*warm, blocker.id, exiting.id, *after]
    wait_until(
        lambda: Job.objects.finished().count() == len(everything),
        timeout=60,
        message="every job finished",
        workers=[second],
    )
    assert second.stop() == 0, second.log()

    # Which jobs the dead worker had started: record_job records each run (autocommit) first.
    started = {uuid.UUID(j) for j in Execution.objects.filter(pid=first.pid).values_list("job_id", flat=True)}
    short = [*warm, *after]
    never_started = {uuid.UUID(str(i)) for i in short} - started
    held_unstarted = ahead - started
    assert held_unstarted, "every prefetched job had started: the test did not test the refund"
    # Every job the dead worker had not started ran once, on the second worker, and succeeded.
    for job in Job.objects.filter(id__in=never_started):
        assert (job.status, job.attempts, job.worker_ids) == (JobStatus.SUCCESSFUL, 1, ["after"]), job.errors
    for job in Job.objects.filter(id__in=held_unstarted):
        [error] = job.errors  # recorded, and not counted
        assert (error["exception_class_path"], error["counted"], error["worker_id"]) == (WORKER_LOST, False, "exits")
    # A job it had started (on its other thread, or finished with the completion not yet
    # written) spent its only attempt, unless it was claimed ahead (then it ran again).
    for job in Job.objects.filter(id__in=started & {uuid.UUID(str(i)) for i in short}):
        if job.status == JobStatus.FAILED:
            assert "counted" not in job.errors[0] and job.attempts == 1
        else:
            assert job.status == JobStatus.SUCCESSFUL
    # The job that killed its worker: counted if it was claimed directly (FAILED, its only
    # attempt), given back once if it was claimed ahead (its second run returns).
    job = Job.objects.get(id=exiting.id)
    if job.status == JobStatus.FAILED:
        assert job.attempts == 1 and job.errors[0]["exception_class_path"] == WORKER_LOST
    else:
        assert (job.status, job.return_value, job.errors[0]["counted"]) == (JobStatus.SUCCESSFUL, "second run", False)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_a_job_whose_cancellation_was_requested_ends_cancelled_when_its_worker_dies(workers, mode):
    """The worker is kill -9'd while it runs a job that ignores its cancellation request: the
    rescuer (thread mode) or the supervisor (process mode) ends it CANCELLED; it never runs again."""
    result = ignores_cancel.using(max_attempts=3).enqueue(seconds=60)
    extra = ("--processes", "1") if mode == "processes" else ()
    worker = workers("--concurrency", "1", "--worker-id", "doomed", *extra, settings=FAST)
    wait_until(lambda: executions(result.id, "start"), timeout=30, message="the job to start", workers=[worker])
    assert djjobs.cancel(result.id) == Answer.REQUESTED
    if mode == "processes":
        child = wait_children(worker, 1)
        os.kill(child.pop(), signal.SIGKILL)  # the supervisor releases the child's job at once
    else:
        worker.kill()
    rescuer = worker if mode == "processes" else workers("--concurrency", "1", "--worker-id", "rescuer", settings=FAST)
    wait_until(
        lambda: Job.objects.filter(id=result.id).exclude(status=JobStatus.RUNNING).exists(),
        timeout=30,
        message="the lost job to be released",
        workers=[rescuer],
    )
    job = Job.objects.get(id=result.id)
    assert job.status == JobStatus.CANCELLED and job.finished_at is not None
    assert job.attempts == 1
    [error] = job.errors
    assert error["exception_class_path"] == WORKER_LOST and "cancellation" in error["message"]
    assert [label for label, _, _ in executions(result.id)] == ["start"]  # it did not run again
    assert rescuer.stop() == 0, rescuer.log()


# -- 6. timeouts and cancellation in process mode ----------------------------------------------


@pytest.mark.timeout(120)
def test_timeout_kills_the_worker_process_and_fails_the_job(workers):
    supervisor = workers("--processes", "1", "--concurrency", "2", "--worker-id", "timeouts")
    (first,) = wait_children(supervisor, 1)
    result = overstays_30s.enqueue()
    wait_until(
        lambda: Job.objects.filter(id=result.id, status=JobStatus.FAILED).exists(),
        timeout=30,
        message="the job to time out",
        workers=[supervisor],
    )

    job = Job.objects.get(id=result.id)
    assert job.attempts == 1 and job.timeout == 2
    assert [(e["attempt"], e["exception_class_path"]) for e in job.errors] == [(1, "djjobs.exceptions.JobTimeout")]
    took = seconds(job.finished_at - job.last_attempted_at)
    assert 2 <= took < 3, took
    assert executions(result.id) == [("start", 1, first)]  # killed in its sleep: no "end"

    (second,) = wait_children(supervisor, 1, exclude={first})
    assert process_state(first) is None  # killed and reaped
    others = {r.id for r in record_job.enqueue_many([{"label": f"after-{i}"} for i in range(5)])}
    wait_until(
        lambda: statuses(others) == {JobStatus.SUCCESSFUL: 5},
        timeout=60,
        message="5 jobs after the timeout",
        workers=[supervisor],
    )
    assert set(Execution.objects.filter(label__startswith="after-").values_list("pid", flat=True)) == {second}
    assert "timed out" in supervisor.text()
    assert supervisor.stop() == 0, supervisor.log()


@pytest.mark.timeout(120)
def test_cancellation_in_process_mode_stubborn_killed_after_grace_cooperative_stops(workers):
    grace = fast_settings.CANCEL_GRACE_SECONDS
    supervisor = workers("--processes", "2", "--concurrency", "1", "--worker-id", "cancels", settings=FAST)
    wait_children(supervisor, 2)
    stubborn = ignores_cancel.enqueue(seconds=30.0)
    cooperative = cooperative_cancel.enqueue(seconds=30.0)
    wait_until(
        lambda: Execution.objects.filter(label="start").count() == 2,
        timeout=30,
        message="both jobs to start",
        workers=[supervisor],
    )
    ((_, _, stubborn_pid),) = executions(stubborn.id)
    ((_, _, cooperative_pid),) = executions(cooperative.id)
    assert stubborn_pid != cooperative_pid

    assert djjobs.cancel(stubborn.id) == Answer.REQUESTED
    assert djjobs.cancel(cooperative.id) == Answer.REQUESTED
    wait_until(
        lambda: statuses([stubborn.id, cooperative.id]) == {JobStatus.CANCELLED: 2},
        timeout=30,
        message="both jobs CANCELLED",
        workers=[supervisor],
    )

    job = Job.objects.get(id=cooperative.id)
    stopped_in = seconds(job.finished_at - job.cancel_requested_at)
    assert stopped_in < grace, stopped_in
    assert [(e["attempt"], e["exception_class_path"]) for e in job.errors] == [(1, "builtins.RuntimeError")]
    assert executions(cooperative.id) == [("start", 1, cooperative_pid), ("stopping", 1, cooperative_pid)]

    job = Job.objects.get(id=stubborn.id)
    killed_in = seconds(job.finished_at - job.cancel_requested_at)
    assert grace <= killed_in < grace + 1.5, killed_in
    assert executions(stubborn.id) == [("start", 1, stubborn_pid)]
    assert job.lease_token is None

    # Only the stubborn job's process was killed and replaced.
    children = wait_children(supervisor, 2, exclude={stubborn_pid})
    assert cooperative_pid in children
    log = supervisor.text()
    assert log.count("ignored its cancellation") == 1 and str(stubborn.id) in log
    assert supervisor.stop() == 0, supervisor.log()


# -- graceful stop in process mode (found while writing the tests above) ----------------------


def exit_code_within(worker, seconds) -> int:
    """The exit code; an AssertionError (not pytest.fail) if the process is still running after ``seconds``."""
    try:
        return worker.proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {seconds}s after SIGTERM\n{worker.log()}") from None


@pytest.mark.timeout(120)
def test_sigterm_while_the_supervisor_pauses_after_a_fast_crash_stops_it(workers):
    supervisor = workers("--processes", "1", "--concurrency", "1", "--worker-id", "pause")
    wait_children(supervisor, 1)
    # The second attempt's child dies within FAST_CRASH (1 s) of starting: the supervisor
    # pauses 1 s before replacing it. After that death the job is FAILED: nothing is left to run.
    result = kills_own_worker.using(max_attempts=2).enqueue()
    wait_until(
        lambda: supervisor.text().count(CHILD_KILLED_LOG) == 2,
        timeout=60,
        interval=0.01,
        message="the second child to die",
        workers=[supervisor],
    )
    if supervisor.children() or "pause-0.3" in supervisor.text():
        pytest.skip("missed the supervisor's 1 s restart pause (a loaded machine)")
    supervisor.signal(signal.SIGTERM)  # inside the pause

    code = exit_code_within(supervisor, 5)
    assert code == 0
    assert "pause-0.3" not in supervisor.text()  # nothing was started after the SIGTERM
    assert Worker.objects.count() == 2
    job = Job.objects.get(id=result.id)
    assert (job.status, job.attempts) == (JobStatus.FAILED, 2)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["thread", "process"])
def test_sigterm_still_enforces_timeouts(workers, mode):
    if mode == "thread":
        worker = workers("--concurrency", "1", "--worker-id", "tstop")
    else:
        worker = workers("--processes", "1", "--concurrency", "1", "--worker-id", "tstop")
    result = overstays_30s.enqueue()  # timeout=2, sleeps 30 s
    wait_until(
        lambda: Execution.objects.filter(job_id=result.id, label="start").exists(),
        timeout=60,
        message="the job to start",
        workers=[worker],
    )
    worker.signal(signal.SIGTERM)

    code = exit_code_within(worker, 2 + 4)
    assert code == 0
    job = Job.objects.get(id=result.id)
    assert job.status == JobStatus.FAILED
    assert [e["exception_class_path"] for e in job.errors] == ["djjobs.exceptions.JobTimeout"]
    assert seconds(job.finished_at - job.last_attempted_at) < 3


@pytest.mark.timeout(120)
def test_kill_9_of_the_supervisor_its_workers_finish_their_jobs_and_exit(workers):
    supervisor = workers("--processes", "2", "--concurrency", "2", "--worker-id", "orphans", settings=FAST)
    children = wait_children(supervisor, 2)
    results = slow_record.enqueue_many([{"seconds": 1.0}] * 8)
    wait_until(
        lambda: Execution.objects.filter(label="start").count() == 4,
        timeout=30,
        message="4 jobs running",
        workers=[supervisor],
    )
    os.kill(supervisor.pid, signal.SIGKILL)
    supervisor.proc.wait(timeout=30)

    # Orphaned, each worker process notices its supervisor is gone, finishes its jobs and exits.
    wait_until(
        lambda: all(process_state(pid) in (None, "Z") for pid in children),
        timeout=1.0 + 10,
        message="the orphaned worker processes to exit",
    )
    running = {str(i) for i in Execution.objects.filter(label="start").values_list("job_id", flat=True)}
    assert len(running) == 4
    assert statuses(running) == {JobStatus.SUCCESSFUL: 4}
    assert Counter(Execution.objects.values_list("label", flat=True)) == {"start": 4, "end": 4}
    rest = {r.id for r in results} - running
    assert statuses(rest) == {JobStatus.READY: 4}  # nothing claimed after the supervisor died
    assert set(Job.objects.filter(id__in=rest).values_list("attempts", flat=True)) == {0}
    assert Worker.objects.filter(stopped_at__isnull=True).count() == 0  # both unregistered
    assert set(Worker.objects.values_list("pid", flat=True)) == children


# -- 7. checkpoints across a kill -9 ------------------------------------------------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["thread", "process"])
def test_checkpointed_job_resumes_after_kill_9(workers, mode):
    chunks = 10
    if mode == "thread":  # the lease expires, another worker rescues the job
        first = workers("--concurrency", "1", "--worker-id", "chunks-a", settings=FAST)
    else:  # the supervisor releases the job at once; its next child resumes it
        first = workers("--processes", "1", "--concurrency", "1", "--worker-id", "chunks", settings=FAST)
    result = chunks_with_checkpoint.enqueue(chunks=chunks, seconds=0.3)
    wait_until(
        lambda: Execution.objects.filter(job_id=result.id).count() >= 3,
        timeout=60,
        message="3 chunks done",
        workers=[first],
    )
    (_, _, victim), *_ = executions(result.id)
    os.kill(victim, signal.SIGKILL)

    if mode == "thread":
        first.proc.wait(timeout=30)
        job = Job.objects.get(id=result.id)  # nobody runs it until the lease expires
        assert job.status == JobStatus.RUNNING
        checkpoint = job.checkpoint["next"]
        second = workers("--concurrency", "1", "--worker-id", "chunks-b", settings=FAST)
        watch = [second]
    else:
        checkpoint = None
        watch = [first]
    wait_until(
        lambda: Job.objects.filter(id=result.id, status=JobStatus.SUCCESSFUL).exists(),
        timeout=60,
        message="the job to finish",
        workers=watch,
    )

    job = Job.objects.get(id=result.id)
    assert job.attempts == 2
    assert [(e["attempt"], e["exception_class_path"]) for e in job.errors] == [(1, WORKER_LOST)]
    assert job.checkpoint == {"next": chunks}
    runs = executions(result.id)
    before = [label for label, attempt, pid in runs if attempt == 1 and pid == victim]
    after = [label for label, attempt, pid in runs if attempt == 2 and pid != victim]
    assert len(before) + len(after) == len(runs)
    done_before = len(before)
    assert done_before >= 3
    assert before == [f"chunk-{n}" for n in range(done_before)]  # in order, none skipped
    # The second attempt starts where the last checkpoint pointed: the chunk after the last
    # one recorded, or that one again if it was killed between the row and the checkpoint.
    resumed_at = int(after[0].removeprefix("chunk-"))
    assert resumed_at in (done_before - 1, done_before), (before, after)
    if checkpoint is not None:
        assert resumed_at == checkpoint
    assert job.return_value == resumed_at
    assert after == [f"chunk-{n}" for n in range(resumed_at, chunks)]
    counts = Counter(label for label, _, _ in runs)
    assert set(counts) == {f"chunk-{n}" for n in range(chunks)}
    assert sum(counts.values()) - chunks <= 1  # at most the chunk in flight ran twice
    for worker in watch:
        assert worker.stop() == 0, worker.log()


# -- 8. the database drops every connection, repeatedly (PostgreSQL) ----------------------------


def _terminate_other_connections() -> int:
    """Every other connection to the test database killed by the server; how many."""
    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            cursor.execute(
                "SELECT id FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()"
            )
            killed = 0
            for (pid,) in cursor.fetchall():
                try:
                    cursor.execute(f"KILL CONNECTION {int(pid)}")
                    killed += 1
                except DatabaseError:  # it ended meanwhile
                    pass
            return killed
        cursor.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@pytest.mark.concurrent
@pytest.mark.timeout(180)
def test_database_connections_terminated_5_times_mid_run(workers, capsys):
    rng = random.Random(8)
    ids = {r.id for r in load_record.enqueue_many([{"ms": rng.randint(5, 30)} for _ in range(1000)])}
    worker = workers("--concurrency", "4", "--worker-id", "outage", settings=FAST)
    wait_until(
        lambda: Job.objects.filter(status=JobStatus.SUCCESSFUL).count() >= 100,
        timeout=60,
        message="100 jobs done",
        workers=[worker],
    )

    terminated, unfinished = [], []
    for _ in range(5):
        terminated.append(_terminate_other_connections())
        unfinished.append(Job.objects.exclude(status=JobStatus.SUCCESSFUL).count())
        time.sleep(1.0)  # the pace of the outages, not a wait for work
    assert min(unfinished) > 0, unfinished  # every purge hit the worker mid-run
    assert min(terminated) >= 1, terminated

    wait_until(
        lambda: Job.objects.filter(status=JobStatus.SUCCESSFUL).count() == 1000,
        timeout=120,
        message="1,000 jobs SUCCESSFUL",
        workers=[worker],
    )
    assert worker.proc.poll() is None  # it never exited
    log = worker.text()
    db_errors = sum("database error" in line for line in log.splitlines())
    assert worker.stop() == 0, worker.log()

    assert statuses() == {JobStatus.SUCCESSFUL: 1000}
    assert Execution.objects.values("job_id").distinct().count() == 1000
    assert set(Execution.objects.values_list("job_id", flat=True)) == {str(i) for i in ids}
    reruns = Execution.objects.count() - 1000
    assert db_errors <= 3 * len(terminated), log[-5000:]
    attempts = Counter(Job.objects.values_list("attempts", flat=True))
    causes = Counter(
        e["exception_class_path"] for errors in Job.objects.values_list("errors", flat=True) for e in errors
    )
    with capsys.disabled():
        print(
            f"\n[connections terminated] backends killed per purge {terminated}; jobs left at each "
            f"{unfinished}; 'database error' log lines {db_errors}; runs beyond one per job {reruns}; "
            f"attempts {dict(sorted(attempts.items()))}; failed attempts {dict(causes)}"
        )
