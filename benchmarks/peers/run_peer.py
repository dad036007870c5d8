#!/usr/bin/env python
"""Measure one peer job queue the way benchmarks/run.py measures djjobs (phases 1-4).

Run with the peers' virtualenv's python (``benchmarks/peers/__init__.py`` does), from anywhere:

    benchmarks/.venv-peers/bin/python benchmarks/peers/run_peer.py procrastinate \\
        --db-url postgres://postgres@127.0.0.1:5432/djjobs_bench_procrastinate \\
        --sizes-json '{"enqueue_single": 200, "enqueue_bulk": 2000, "process": 1000, "latency": 20}' \\
        --json-out /tmp/procrastinate.json

The database is created when missing and the peer's schema installed with the peer's own
command; its tables are TRUNCATED between phases. Prints progress; writes the rows and the
numbers the ratios need as JSON.
"""

import argparse
import importlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.measure import OthersCpu, SampledProcess, mib, percentile, rate  # noqa: E402
from benchmarks.peers.common import db_name  # noqa: E402

MODULES = {
    "django-tasks-db": "benchmarks.peers.django_tasks_db_peer",
    "procrastinate": "benchmarks.peers.procrastinate_peer",
    "pgqueuer": "benchmarks.peers.pgqueuer_peer",
}
DEFAULT_SIZES = {
    "enqueue_single": 2_000,
    "enqueue_bulk": 20_000,
    "process": 20_000,
    "latency": 200,
    "latency_gap_ms": [10, 50],
    "repeat": 1,
}
CHUNK = 20_000  # jobs per bulk call when pre-enqueueing (as run.py's enqueue_noops)
WORKER_TIMEOUT = 1800.0
EXIT_GRACE = 30.0  # seconds a drain-mode worker may linger once every job is done


class Output:
    def __init__(self, peer: str):
        self.data = {
            "peer": peer,
            "version": None,
            "settings": "",
            "setup": "",
            "rows": [],
            "metrics": {},
            "error": None,
            "python": platform.python_version(),
        }

    def add(self, phase, case, jobs, wall, result, notes="", others_cpu=None, cpu=""):
        row = {
            "phase": phase,
            "case": case,
            "jobs": jobs,
            "wall": wall,
            "result": result,
            "notes": notes,
            "others_cpu": others_cpu,
            "cpu": cpu,
        }
        self.data["rows"].append(row)
        extra = "" if others_cpu is None else f" [other processes used {others_cpu:.0f}% CPU meanwhile]"
        extra += f" [CPU ms/job: {cpu}]" if cpu else ""
        print(f"  -> {case}: {result}" + (f"  ({notes})" if notes else "") + extra, flush=True)

    def metric(self, name, value):
        self.data["metrics"][name] = value

    def write(self, path):
        Path(path).write_text(json.dumps(self.data, indent=1, default=str))


# -- helpers -------------------------------------------------------------------------------


def cpu_meter(peer) -> OthersCpu:
    return OthersCpu(db_name(peer.url))


def check_done(peer, expected: int) -> str:
    done = peer.done_count()
    if done != expected:
        counts = peer.status_counts()
        print(f"  !! {peer.name}: {done:,} of {expected:,} jobs done; statuses: {counts}", flush=True)
        return f"ONLY {done:,}/{expected:,} done ({counts})"
    return ""


def check_enqueued(peer, expected: int) -> str:
    found = peer.admin.execute(f"SELECT count(*) FROM {peer.job_table}").fetchone()[0]
    return "" if found == expected else f"{found:,} rows for {expected:,} enqueued"


def start_workers(peer, count: int, drain: bool, env_extra: dict | None = None, command=None) -> list:
    env = peer.worker_env()
    env.update(env_extra or {})
    command = command or peer.worker_command(drain=drain)
    procs = []
    for _ in range(count):
        proc = SampledProcess(command, cwd=ROOT, env=env)
        proc.label = f"{peer.name} worker"
        procs.append(proc)
    return procs


def drain(peer, procs: list, n: int, started: float) -> tuple[float, str]:
    """Wait for drain-mode workers to exit: wall seconds since ``started`` (perf_counter before the
    first spawn) and a problem, if any.

    Should a worker not exit once all ``n`` jobs are done (it should: each peer is started in its
    own exit-when-empty mode), it gets EXIT_GRACE seconds, then SIGTERM, and the wall clock is the
    moment the jobs were seen done (a count every second).
    """
    deadline = time.monotonic() + WORKER_TIMEOUT
    all_done_at = None
    next_check = 0.0
    while any(p.popen.poll() is None for p in procs):
        now = time.monotonic()
        if now > deadline:
            for p in procs:
                p.terminate(10)
            raise TimeoutError(f"workers still running after {WORKER_TIMEOUT:.0f} s")
        if all_done_at is None and now >= next_check:
            if peer.done_count() >= n:
                all_done_at = time.perf_counter()
            next_check = now + 1.0
        if all_done_at is not None and time.perf_counter() - all_done_at > EXIT_GRACE:
            for p in procs:
                p.terminate(30, quiet_codes=(-15, 143, 1))
            return all_done_at - started, f"workers did not exit {EXIT_GRACE:.0f} s after the last job: stopped"
        running = next((p for p in procs if p.popen.poll() is None), None)
        if running is not None:
            try:
                running.popen.wait(0.02)  # returns as soon as it exits: the wall clock is not rounded up
            except subprocess.TimeoutExpired:
                pass
    wall = time.perf_counter() - started
    codes = [p.wait(10) for p in procs]
    bad = [c for c in codes if c != 0]
    return wall, (f"worker exit codes {codes}" if bad else "")


# -- phases --------------------------------------------------------------------------------


def phase_enqueue(peer, sizes, out: Output) -> None:
    n1, n2 = sizes["enqueue_single"], sizes["enqueue_bulk"]
    print(
        f"\n[1] {peer.name} enqueue throughput: {peer.single_case} x {n1:,} in autocommit; "
        f"{peer.bulk_case} of {n2:,} jobs ({peer.bulk_note})",
        flush=True,
    )
    peer.truncate()
    peer.enqueue_one()  # warm-up: connection, imports, statement caches
    peer.truncate()

    with cpu_meter(peer) as others:
        started = time.perf_counter()
        peer.enqueue_singles(n1)
        wall = time.perf_counter() - started
    problem = check_enqueued(peer, n1)
    out.add(
        "1 enqueue",
        f"{peer.name}: {peer.single_case}",
        n1,
        wall,
        rate(n1, wall),
        "; ".join(x for x in (problem, f"{wall / n1 * 1000:.2f} ms/job") if x),
        others.percent,
        others.per_job(n1, "self"),
    )
    out.metric("enqueue_single", n1 / wall)
    peer.truncate()

    with cpu_meter(peer) as others:
        started = time.perf_counter()
        peer.enqueue_many(n2)
        wall = time.perf_counter() - started
    problem = check_enqueued(peer, n2)
    out.add(
        "1 enqueue",
        f"{peer.name}: {peer.bulk_case}",
        n2,
        wall,
        rate(n2, wall),
        "; ".join(x for x in (problem, peer.bulk_note) if x),
        others.percent,
        others.per_job(n2, "self"),
    )
    out.metric("enqueue_bulk", n2 / wall)
    peer.truncate()

    # The same jobs in calls of 1,000 (each its own transaction), where a call's own cost shows:
    # djjobs' run.py measures its enqueue_many() the same way.
    calls = max(1, n2 // 1_000)
    with cpu_meter(peer) as others:
        started = time.perf_counter()
        for _ in range(calls):
            peer.enqueue_many(1_000)
        wall = time.perf_counter() - started
    problem = check_enqueued(peer, calls * 1_000)
    out.add(
        "1 enqueue",
        f"{peer.name}: {peer.bulk_case}, calls of 1,000",
        calls * 1_000,
        wall,
        rate(calls * 1_000, wall),
        "; ".join(x for x in (problem, f"{wall / calls * 1000:.1f} ms/call") if x),
        others.percent,
        others.per_job(calls * 1_000, "self"),
    )
    out.metric("enqueue_bulk_1000", calls * 1_000 / wall)
    peer.truncate()


def phase_process(peer, sizes, out: Output) -> None:
    n = sizes["process"]
    repeat = max(1, sizes.get("repeat", 1))
    command = " ".join(Path(peer.worker_command(drain=True)[0]).name.split() + peer.worker_command(drain=True)[1:])
    print(
        f"\n[2] {peer.name} processing throughput: {n:,} pre-enqueued noop jobs, N x `{command}` "
        f"started at once, wall clock from spawn to the last exit, start-up included"
        f"{f'; each case run {repeat} times, the fastest kept' if repeat > 1 else ''}",
        flush=True,
    )
    peer.truncate()
    with cpu_meter(peer) as others:
        started = time.perf_counter()
        procs = start_workers(peer, 1, drain=True)
        wall, problem = drain(peer, procs, 0, started)
    out.add(
        "2 process",
        f"{peer.name}: start-up: 1 worker, empty queue",
        0,
        wall,
        f"{wall:.2f} s",
        problem or "python start, imports, connect, first fetch, exit",
        others.percent,
    )

    def prepare():
        peer.truncate()
        for start in range(0, n, CHUNK):
            peer.enqueue_many(min(CHUNK, n - start))
        peer.analyze()

    for workers in (1, 2):
        results = []
        for _ in range(repeat):
            prepare()
            with cpu_meter(peer) as others:
                started = time.perf_counter()
                procs = start_workers(peer, workers, drain=True)
                wall, problem = drain(peer, procs, n, started)
            window, window_what = peer.window()
            problem = "; ".join(x for x in (check_done(peer, n), problem) if x)
            results.append((wall, window, window_what, problem, others, procs))
        wall, window, window_what, problem, others, procs = min(results, key=lambda r: r[0])
        spread = ""
        if repeat > 1:
            rates = sorted(n / r[0] for r in results)
            spread = f"best of {repeat} ({rates[0]:,.0f}..{rates[-1]:,.0f} jobs/s)"
        steady = f"steady {rate(n, window)} ({window_what})" if window else "steady n/a"
        out.add(
            "2 process",
            f"{peer.name}: {workers} x {peer.drain_note}",
            n,
            wall,
            rate(n, wall),
            "; ".join(x for x in (problem, steady, spread) if x),
            others.percent,
            others.per_job(n),
        )
        if not problem:
            out.metric(f"process_{workers}", n / wall)
        peak = max(procs, key=lambda p: p.vm_hwm_kib or 0)
        out.add(
            "4 memory",
            f"{peer.name}: worker draining {n:,} jobs ({workers} procs), peak RSS",
            None,
            None,
            mib(peak.vm_hwm_kib),
            "VmHWM of the largest",
        )
        if workers == 1 and peak.vm_hwm_kib:
            out.metric("rss_drain_1", peak.vm_hwm_kib)
    peer.truncate()


def measure_latency(peer, sizes, command=None, env_extra=None) -> tuple[list, list, object, object]:
    """One idle worker; the warm-up job, then ``latency`` stamp jobs with random gaps.

    Returns (task-clock latencies ms sorted, from-the-call latencies ms sorted, worker, others).
    """
    n = sizes["latency"]
    low, high = sizes.get("latency_gap_ms", (10, 50))
    peer.truncate()
    Path(peer.stamp_file).unlink(missing_ok=True)
    others = cpu_meter(peer).__enter__()
    (worker,) = start_workers(peer, 1, drain=False, env_extra=env_extra, command=command)
    committed, called = {}, {}
    try:
        warm = peer.enqueue_stamp("warm")  # the worker is up once it ran this one
        deadline = time.monotonic() + 60
        while warm not in peer.stamps([warm]):
            if time.monotonic() > deadline or worker.popen.poll() is not None:
                raise RuntimeError(
                    f"the latency worker did not start (exit code {worker.popen.poll()}): "
                    f"{worker.stderr[-500:] if worker.popen.poll() is not None else ''}"
                )
            time.sleep(0.05)
        rng = random.Random(42)
        for i in range(n):
            time.sleep(rng.uniform(low, high) / 1000)
            before = time.time()
            key = peer.enqueue_stamp(f"job{i}")
            committed[key] = time.time()
            called[key] = before
        keys = list(committed)
        deadline = time.monotonic() + 120
        while len(stamps := peer.stamps(keys)) < n or any(k not in stamps for k in keys):
            if time.monotonic() > deadline:
                raise RuntimeError(f"latency jobs did not start in 120 s ({len(stamps)} of {n})")
            time.sleep(0.05)
    finally:
        worker.terminate(30, quiet_codes=(-15, 143, 1))
        others.__exit__(None, None, None)
    task_ms = sorted((stamps[k] - committed[k]) * 1000 for k in keys)
    call_ms = sorted((stamps[k] - called[k]) * 1000 for k in keys)
    return task_ms, call_ms, worker, others


def phase_latency(peer, sizes, out: Output) -> None:
    n = sizes["latency"]
    low, high = sizes.get("latency_gap_ms", (10, 50))
    print(
        f"\n[3] {peer.name} pick-up latency: 1 idle worker (`{' '.join(peer.worker_command(drain=False)[1:])}`), "
        f"{n} stamp jobs enqueued one at a time (autocommit) with a random {low}-{high} ms gap; latency = "
        f"time.time() at the task's start ({peer.stamp_note}) minus time.time() right after the enqueue "
        f"call returned",
        flush=True,
    )
    task_ms, call_ms, worker, others = measure_latency(peer, sizes)
    out.add(
        "3 latency",
        f"{peer.name}: enqueue -> task start (task clock)",
        len(task_ms),
        None,
        f"median {statistics.median(task_ms):.1f} ms, p99 {percentile(task_ms, 99):.1f} ms",
        f"min {task_ms[0]:.1f} ms, max {task_ms[-1]:.0f} ms; from the enqueue call: median "
        f"{statistics.median(call_ms):.1f} ms, p99 {percentile(call_ms, 99):.1f} ms; best settings",
        others.percent,
    )
    out.metric("latency_median", statistics.median(task_ms))
    out.metric("latency_p99", percentile(task_ms, 99))
    out.add(
        "4 memory", f"{peer.name}: idle worker (latency phase), peak RSS", None, None, mib(worker.vm_hwm_kib), "VmHWM"
    )
    defaults = peer.default_latency_worker()
    if defaults:
        command, label, env_extra = defaults
        task_ms, call_ms, worker, others = measure_latency(peer, sizes, command, env_extra)
        out.add(
            "3 latency",
            f"{peer.name}: enqueue -> task start, {label}",
            len(task_ms),
            None,
            f"median {statistics.median(task_ms):.1f} ms, p99 {percentile(task_ms, 99):.1f} ms",
            f"min {task_ms[0]:.1f} ms, max {task_ms[-1]:.0f} ms; not used for the ratios",
            others.percent,
        )
    peer.truncate()


PHASES = (("1 enqueue", phase_enqueue), ("2 process", phase_process), ("3 latency", phase_latency))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("peer", choices=sorted(MODULES))
    parser.add_argument("--db-url", required=True, help="the peer's own PostgreSQL database (created when missing)")
    parser.add_argument("--sizes-json", default="{}", help="job counts, as run.py's Sizes (JSON object)")
    parser.add_argument("--json-out", required=True, help="where the rows and metrics go")
    args = parser.parse_args()
    sizes = {**DEFAULT_SIZES, **json.loads(args.sizes_json)}
    out = Output(args.peer)
    os.environ["BENCH_PEER_DB_URL"] = args.db_url
    with tempfile.TemporaryDirectory(prefix=f"djjobs-peer-{args.peer}-") as tmp:
        stamp_file = str(Path(tmp) / "stamps")
        peer = None
        try:
            module = importlib.import_module(MODULES[args.peer])
            peer = module.PEER(args.db_url, stamp_file)
            out.data["version"] = peer.version
            print(
                f"\n== {peer.name} {peer.version} (Python {platform.python_version()}), database "
                f"{db_name(args.db_url)}",
                flush=True,
            )
            out.data["setup"] = peer.setup()
            peer.open()
            out.data["settings"] = peer.settings()
            print(f"   settings: {out.data['settings']}", flush=True)
        except Exception as exc:  # noqa: BLE001 - reported in the table, the benchmark goes on
            traceback.print_exc()
            out.data["error"] = f"setup failed: {type(exc).__name__}: {exc}"
            out.write(args.json_out)
            if peer is not None:
                peer.close()
            return 1
        try:
            for label, phase in PHASES:
                try:
                    phase(peer, sizes, out)
                except Exception as exc:  # noqa: BLE001
                    traceback.print_exc()
                    reason = " ".join(f"FAILED: {type(exc).__name__}: {exc}".split())[:300]
                    out.add(label, f"{peer.name}: {label.split()[1]} phase", None, None, reason)
        finally:
            try:
                peer.truncate()
            finally:
                peer.close()
                out.write(args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
