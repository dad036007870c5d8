#!/usr/bin/env python
"""djjobs benchmarks: enqueue and processing throughput, pick-up latency, worker memory, big tables, peers.

Run from the repository root:

    python benchmarks/run.py [--jobs 20000] [--quick] [--only enqueue,process,latency,claim,peers] [--profile]
                             [--no-peers | --peers procrastinate,pgqueuer]

The database is DATABASE_URL (default postgres://postgres@127.0.0.1:5432/djjobs_bench). It is
created when missing and migrated; the job table is TRUNCATED between phases, so never point
this at a database whose jobs you want to keep. Workers are real ``run_workers`` processes
started with the interpreter running this script.

A full run also measures the peers django-tasks-db, Procrastinate and PgQueuer the same way
(phases 1-4), installed from PyPI into benchmarks/.venv-peers, each on its own database
``<DATABASE_URL's name>_<peer>`` on the same server, and ends with the ratios of djjobs to each
(benchmarks/peers/, benchmarks/README.md).

Not a test: pytest never collects it (testpaths = ["tests"]).
"""

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")

from benchmarks.measure import OthersCpu, SampledProcess, mib, percentile, rate  # noqa: E402
from benchmarks.settings import DEFAULT_DATABASE_URL  # noqa: E402  (no side effects)

os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)

NOOP = "benchmarks.bench_tasks.noop"
FILLER = "bench-filler"  # worker_id of the finished rows phase 5 inserts


# -- sizes -------------------------------------------------------------------------------


@dataclass
class Sizes:
    enqueue_single: int = 2_000
    enqueue_bulk: int = 20_000
    process: int = 20_000
    latency: int = 200
    latency_gap_ms: tuple = (10, 50)
    finished_rows: int = 1_000_000
    claim_jobs: int = 5_000
    profile_jobs: int = 5_000
    repeat: int = 1  # runs of each processing case; the fastest is reported

    @classmethod
    def make(cls, args) -> "Sizes":
        if args.quick:
            sizes = cls(
                enqueue_single=200,
                enqueue_bulk=2_000,
                process=1_000,
                latency=20,
                finished_rows=100_000,
                claim_jobs=500,
                profile_jobs=500,
            )
        else:
            sizes = cls()
        if args.jobs is not None:
            sizes.enqueue_bulk = sizes.process = args.jobs
        sizes.repeat = max(1, args.repeat)
        return sizes


# -- results table -----------------------------------------------------------------------


@dataclass
class Row:
    phase: str
    case: str
    jobs: int | None
    wall: float | None
    result: str
    notes: str = ""
    others_cpu: float | None = None  # % of the machine's CPU used by other processes meanwhile
    cpu: str = ""  # CPU ms per job: our Python processes + our database backends


@dataclass
class Report:
    rows: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)  # djjobs' numbers the peer ratios (phase 6) divide

    def add(self, *args, **kwargs) -> Row:
        row = Row(*args, **kwargs)
        self.rows.append(row)
        others = "" if row.others_cpu is None else f" [other processes used {row.others_cpu:.0f}% CPU meanwhile]"
        others += f" [CPU ms/job: {row.cpu}]" if row.cpu else ""
        print(f"  -> {row.case}: {row.result}" + (f"  ({row.notes})" if row.notes else "") + others, flush=True)
        return row

    def render(self) -> str:
        header = ("phase", "case", "jobs", "wall s", "result", "CPU ms/job", "others' CPU", "notes")
        lines = [
            (
                r.phase,
                r.case,
                "" if r.jobs is None else f"{r.jobs:,}",
                "" if r.wall is None else f"{r.wall:.2f}",
                r.result,
                r.cpu,
                "" if r.others_cpu is None else f"{r.others_cpu:.0f}%",
                r.notes,
            )
            for r in sorted(self.rows, key=lambda r: r.phase.split()[0])  # stable: phase order
        ]
        widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
        right = {2, 3, 6}

        def fmt(cells):
            out = []
            for i, cell in enumerate(cells):
                out.append(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]))
            return "  ".join(out).rstrip()

        rule = "  ".join("-" * w for w in widths)
        return "\n".join([fmt(header), rule, *(fmt(line) for line in lines)])


# -- database ----------------------------------------------------------------------------


def ensure_database(recreate: bool = False) -> str:
    """Create the PostgreSQL database when missing (SQLite creates its file itself).

    ``recreate`` drops it first (or deletes the SQLite file): for a schema that changed under
    an unreleased migration.
    """
    import environ

    config = environ.Env.db_url_config(os.environ["DATABASE_URL"])
    engine = config["ENGINE"]
    if "postgresql" in engine:
        import psycopg
        from psycopg import sql

        kwargs = {
            "host": config.get("HOST") or None,
            "port": config.get("PORT") or None,
            "user": config.get("USER") or None,
            "password": config.get("PASSWORD") or None,
            "dbname": "postgres",
            "autocommit": True,
        }
        with psycopg.connect(**{k: v for k, v in kwargs.items() if v is not None}) as conn:
            name = sql.Identifier(config["NAME"])
            if recreate:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
                print(f"dropped database {config['NAME']}")
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
                print(f"created database {config['NAME']}")
    elif "mysql" in engine:
        import MySQLdb

        kwargs = {"host": config.get("HOST") or "127.0.0.1", "user": config.get("USER") or "root"}
        if config.get("PORT"):
            kwargs["port"] = int(config["PORT"])
        if config.get("PASSWORD"):
            kwargs["password"] = config["PASSWORD"]
        conn = MySQLdb.connect(**kwargs)
        try:
            cursor = conn.cursor()
            if recreate:
                cursor.execute(f"DROP DATABASE IF EXISTS `{config['NAME']}`")
                print(f"dropped database {config['NAME']}")
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{config['NAME']}` CHARACTER SET utf8mb4")
        finally:
            conn.close()
    elif "sqlite" in engine:
        path = Path(config["NAME"])
        if recreate:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
    return engine


def setup_django() -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    check_schema()
    vacuum_database()


def vacuum_database() -> None:
    """Start from a vacuumed database, catalogs included, as each peer's does: with autovacuum
    off (as on the machine these numbers come from) the dead rows that earlier runs' TRUNCATEs
    leave in pg_class and friends slow every later run, more so for a table with more indexes."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM")


def server_notes() -> str:
    """PostgreSQL settings that move these numbers."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return ""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('synchronous_commit', 'autovacuum', 'shared_buffers') ORDER BY name"
        )
        return "; PG " + ", ".join(f"{k}={v}" for k, v in cursor.fetchall())


def check_schema() -> None:
    """Stop early when the table lacks a model column or index (a migration edited after it was applied)."""
    from django.db import connection

    from djjobs.models import Job

    table = Job._meta.db_table
    with connection.cursor() as cursor:
        columns = {c.name for c in connection.introspection.get_table_description(cursor, table)}
        constraints = connection.introspection.get_constraints(cursor, table)
    problems = [f"column {f.column}" for f in Job._meta.concrete_fields if f.column not in columns]
    for index in Job._meta.indexes:
        fields = [name.lstrip("-") for name in index.fields]
        expected = [Job._meta.get_field(name).column for name in fields]
        found = constraints.get(index.name)
        if found is None or found.get("columns") != expected:
            problems.append(f"index {index.name} ({', '.join(index.fields)})")
    if problems:
        sys.exit(
            f"{table} differs from the model: {'; '.join(problems)}. The migrations changed after this "
            f"database was migrated: run again with --recreate-db (drops the benchmark database)."
        )


def job_table() -> str:
    from djjobs.models import Job

    return Job._meta.db_table


def vendor() -> str:
    from django.db import connection

    return connection.vendor


def truncate() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {job_table()} CASCADE")
        elif connection.vendor == "mysql":
            cursor.execute("SET FOREIGN_KEY_CHECKS = 0")
            cursor.execute(f"TRUNCATE {job_table()}")
            cursor.execute("SET FOREIGN_KEY_CHECKS = 1")
        else:
            cursor.execute(f"DELETE FROM {job_table()}")


def analyze(vacuum: bool = False) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"{'VACUUM ' if vacuum else ''}ANALYZE {job_table()}")
        elif connection.vendor == "mysql":
            cursor.execute(f"ANALYZE TABLE {job_table()}")
            cursor.fetchall()
        else:
            cursor.execute("ANALYZE")


def status_counts() -> dict:
    from django.db.models import Count

    from djjobs.models import Job

    return dict(Job.objects.values_list("status").annotate(n=Count("id")).order_by())


def db_window():
    """Seconds from the first claim to the last completion of the benchmark's successful jobs."""
    from django.db.models import Max, Min

    from djjobs.models import Job

    agg = (
        Job.objects.filter(status="SUCCESSFUL")
        .exclude(worker_id=FILLER)
        .aggregate(first=Min("started_at"), last=Max("finished_at"))
    )
    if agg["first"] is None or agg["last"] is None:
        return None
    return (agg["last"] - agg["first"]).total_seconds()


def fill_finished(n: int, *, days: int = 1, failed_every: int = 0, first: int = 0, total: int | None = None) -> float:
    """Insert ``n`` SUCCESSFUL jobs with one INSERT ... SELECT; returns seconds taken.

    The column list comes from the Job model, so new columns get their model default.
    PostgreSQL only: the rows' times are spread over the last ``days`` days, every
    ``failed_every``-th row is FAILED instead, and a big fill made of several calls passes
    each chunk's ``first`` row and the ``total`` so the chunks' times follow one another.
    """
    from django.db import connection

    from djjobs.models import Job

    pg = connection.vendor == "postgresql"
    if pg:
        # Time-ordered ids like djjobs' own UUIDv7 (48 bits of ms, version 7, variant 8).
        span = f"interval '{int(days)} days'"
        row_source = (
            f"SELECT g, now() - {span} + (g + %s) * ({span} / %s) AS t, "
            "md5(g::text || random()::text) AS h FROM generate_series(1, %s) AS g"
        )
        source_params = [first, total or n, n]
        ts = "t"
        special = {
            "id": (
                "(lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || '7' "
                "|| substr(h, 1, 3) || '8' || substr(h, 4, 15))::uuid"
            ),
            "finished_at": "t + interval '2 milliseconds'",
        }
        if failed_every:
            special["status"] = f"CASE WHEN g %% {int(failed_every)} = 0 THEN 'FAILED' ELSE 'SUCCESSFUL' END"
        prefix = ""
    else:
        row_source = "SELECT strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now', '-1 day') AS t, x FROM g"
        source_params = []
        ts = "t"
        special = {"id": "lower(hex(randomblob(16)))", "finished_at": "t"}
        prefix = "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < %s) "
    values = {
        "task_path": NOOP,
        "backend": "default",
        "queue_name": "default",
        "priority": 0,
        "status": "SUCCESSFUL",
        "attempts": 1,
        "worker_id": FILLER,
        "worker_ids": [FILLER],
    }
    columns, exprs, params = [], [], []
    for f in Job._meta.concrete_fields:
        columns.append(connection.ops.quote_name(f.column))
        if f.name in special:
            exprs.append(special[f.name])
        elif f.name in ("run_after", "enqueued_at", "started_at", "last_attempted_at"):
            exprs.append(ts)
        elif f.name in values or f.has_default():
            value = values[f.name] if f.name in values else f.get_default()
            exprs.append("%s")
            params.append(f.get_db_prep_save(value, connection))
        else:
            exprs.append("NULL")
    sql = f"{prefix}INSERT INTO {job_table()} ({', '.join(columns)}) SELECT {', '.join(exprs)} FROM ({row_source}) AS s"
    all_params = ([n] + params + source_params) if not pg else (params + source_params)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(sql, all_params)
    return time.perf_counter() - started


def probe_claim(samples: int = 15) -> tuple[str, str]:
    """Time djjobs' own claim() in a rolled-back transaction; EXPLAIN ANALYZE the SQL it ran.

    Returns (summary for the table, the plan). Nothing is claimed for real.
    """
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from djjobs.worker.claim import claim

    limit = djjobs_setting("CONCURRENCY")
    times, captured = [], []
    try:
        for _ in range(samples):
            with transaction.atomic():
                with CaptureQueriesContext(connection) as ctx:
                    started = time.perf_counter()
                    claimed = claim("bench-probe", ["default"], limit, 30.0)
                    times.append((time.perf_counter() - started) * 1000)
                captured = [q["sql"] for q in ctx.captured_queries]
                transaction.set_rollback(True)
    except Exception as exc:  # noqa: BLE001 - a probe, not the benchmark
        return f"claim probe failed: {exc}", ""
    summary = f"claim() of {limit}: median {statistics.median(times):.2f} ms ({len(claimed)} got)"
    plan = ""
    sql = next((q for q in captured if "SKIP LOCKED" in q.upper() or "UPDATE" in q.upper()), None)
    if sql and connection.vendor == "postgresql":
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                plan = "\n".join(row[0] for row in cursor.fetchall())
            transaction.set_rollback(True)
        nodes = [n for n in ("Seq Scan", "Bitmap Heap Scan", "Index Scan", "Index Only Scan", "Sort") if n in plan]
        summary += f"; plan: {' + '.join(nodes)}"
    return summary, plan


# -- a shared machine ------------------------------------------------------------------


def others_cpu() -> OthersCpu:
    from django.db import connection

    return OthersCpu(str(connection.settings_dict["NAME"]))


# -- workers -----------------------------------------------------------------------------


def worker_command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "django", "run_workers", "--settings=benchmarks.settings", *extra]


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    return env


class WorkerProcess(SampledProcess):
    """A run_workers process whose peak RSS is followed in /proc/<pid>/status (VmHWM)."""

    def __init__(self, *extra: str):
        super().__init__(worker_command(*extra), cwd=ROOT, env=child_env())


def run_burst(workers: int, *extra: str, timeout: float = 1800) -> tuple[float, list[WorkerProcess]]:
    """Start ``workers`` burst workers at once; wall seconds until the last one exits."""
    started = time.perf_counter()
    procs = [WorkerProcess("--burst", *extra) for _ in range(workers)]
    for proc in procs:
        proc.wait(timeout)
    return time.perf_counter() - started, procs


def enqueue_noops(n: int) -> None:
    from benchmarks.bench_tasks import noop

    for start in range(0, n, 20_000):
        noop.enqueue_many([()] * min(20_000, n - start))


def check_done(expected: int, what: str) -> str:
    from djjobs.models import Job

    counts = status_counts()
    done = Job.objects.filter(status="SUCCESSFUL").exclude(worker_id=FILLER).count()
    if done != expected:
        print(f"  !! {what}: {done:,} of {expected:,} jobs SUCCESSFUL; statuses: {counts}", flush=True)
        return f"ONLY {done:,}/{expected:,} done"
    return ""


def djjobs_setting(name: str):
    from djjobs import conf

    return conf.get(name)


# -- phases ------------------------------------------------------------------------------


def phase_enqueue(report: Report, sizes: Sizes) -> None:
    from django.db import connection

    from benchmarks.bench_tasks import noop

    print(
        f"\n[1] enqueue throughput: noop.enqueue() x {sizes.enqueue_single:,} in autocommit "
        f"(one INSERT + COMMIT each); noop.enqueue_many() of {sizes.enqueue_bulk:,} calls "
        f"(one COPY on PostgreSQL), one call",
        flush=True,
    )
    assert connection.get_autocommit()
    truncate()
    noop.enqueue()  # warm-up: connection, imports, prepared statement caches
    truncate()

    with others_cpu() as others:
        started = time.perf_counter()
        for _ in range(sizes.enqueue_single):
            noop.enqueue()
        wall = time.perf_counter() - started
    report.metrics["enqueue_single"] = sizes.enqueue_single / wall
    report.add(
        "1 enqueue",
        "enqueue(), 1 job/transaction",
        sizes.enqueue_single,
        wall,
        rate(sizes.enqueue_single, wall),
        f"{wall / sizes.enqueue_single * 1000:.2f} ms/job",
        others.percent,
        others.per_job(sizes.enqueue_single, "self"),
    )
    truncate()

    with others_cpu() as others:
        started = time.perf_counter()
        noop.enqueue_many([()] * sizes.enqueue_bulk)
        wall = time.perf_counter() - started
    report.metrics["enqueue_bulk"] = sizes.enqueue_bulk / wall
    report.add(
        "1 enqueue",
        "enqueue_many(), 1 call",
        sizes.enqueue_bulk,
        wall,
        rate(sizes.enqueue_bulk, wall),
        "one COPY" if connection.vendor == "postgresql" else "one executemany INSERT",
        others.percent,
        others.per_job(sizes.enqueue_bulk, "self"),
    )
    truncate()

    # The same jobs in calls of 1,000 (autocommit: a transaction each), where a call's own cost shows.
    calls = max(1, sizes.enqueue_bulk // 1_000)
    with others_cpu() as others:
        started = time.perf_counter()
        for _ in range(calls):
            noop.enqueue_many([()] * 1_000)
        wall = time.perf_counter() - started
    report.metrics["enqueue_bulk_1000"] = calls * 1_000 / wall
    report.add(
        "1 enqueue",
        "enqueue_many(), calls of 1,000",
        calls * 1_000,
        wall,
        rate(calls * 1_000, wall),
        f"{wall / calls * 1000:.1f} ms/call",
        others.percent,
        others.per_job(calls * 1_000, "self"),
    )
    truncate()


@dataclass
class BurstResult:
    wall: float
    window: float | None
    problem: str
    others: "OthersCpu"
    procs: list


def measure_bursts(n: int, workers: int, extra: tuple, label: str, repeat: int, prepare) -> tuple[BurstResult, str]:
    """Run ``repeat`` times (``prepare()`` puts n READY jobs in place); the fastest run, and the spread."""
    results = []
    for _ in range(repeat):
        prepare()
        with others_cpu() as others:
            wall, procs = run_burst(workers, *extra)
        results.append(BurstResult(wall, db_window(), check_done(n, label), others, procs))
    best = min(results, key=lambda r: r.wall)
    spread = ""
    if repeat > 1:
        rates = sorted(n / r.wall for r in results)
        spread = f"best of {repeat} ({rates[0]:,.0f}..{rates[-1]:,.0f} jobs/s)"
    return best, spread


def phase_process(report: Report, sizes: Sizes) -> None:
    n = sizes.process
    concurrency = djjobs_setting("CONCURRENCY")
    print(
        f"\n[2] processing throughput: {n:,} pre-enqueued noop jobs, N x `run_workers --burst` "
        f"(concurrency {concurrency} threads each, default verbosity), wall clock from spawn to last exit, "
        f"start-up included; 'steady' = jobs / (last finished_at - first started_at) from the rows; "
        f"the claim() probe runs djjobs' claim with {n:,} READY jobs in a rolled-back transaction"
        f"{f'; each case run {sizes.repeat} times, the fastest kept' if sizes.repeat > 1 else ''}",
        flush=True,
    )
    truncate()
    with others_cpu() as others:
        wall_empty, _ = run_burst(1)
    report.add(
        "2 process",
        "start-up: 1 --burst worker, empty queue",
        0,
        wall_empty,
        f"{wall_empty:.2f} s",
        "python start, django.setup(), checks, first claim, exit",
        others.percent,
    )

    def prepare():
        truncate()
        enqueue_noops(n)
        analyze()

    prepare()
    summary, plan = probe_claim()
    print("    " + summary + ("\n      " + plan.replace("\n", "\n      ") if plan else ""), flush=True)
    report.add(
        "2 process", f"claim() probe, {n:,} READY", None, None, summary.split(";")[0], summary.partition("; ")[2]
    )
    for workers in (1, 2):
        label = f"{workers} x run_workers --burst"
        best, spread = measure_bursts(n, workers, (), label, sizes.repeat, prepare)
        steady = f"steady {rate(n, best.window)}" if best.window else "steady n/a"
        report.add(
            "2 process",
            label,
            n,
            best.wall,
            rate(n, best.wall),
            "; ".join(x for x in (best.problem, steady, spread) if x),
            best.others.percent,
            best.others.per_job(n),
        )
        if not best.problem:
            report.metrics[f"process_{workers}"] = n / best.wall
        peak = max(best.procs, key=lambda p: p.vm_hwm_kib or 0)
        if workers == 1 and peak.vm_hwm_kib:
            report.metrics["rss_drain_1"] = peak.vm_hwm_kib
        report.add(
            "4 memory",
            f"--burst worker draining {n:,} jobs ({workers} procs), peak RSS",
            None,
            None,
            mib(peak.vm_hwm_kib),
            "VmHWM of the largest",
        )
    truncate()


def phase_flow(report: Report, sizes: Sizes) -> None:
    """Flow control's cost: 2 burst workers on n jobs of a no-op, free, then under each rule."""
    from benchmarks.bench_tasks import fifo_noop, limited_noop, noop, rated_noop

    n = sizes.process
    print(
        f"\n[6] flow control: {n:,} pre-enqueued no-op jobs, 2 x `run_workers --burst`, free and under each "
        "rule (FIFO over 100 keys; concurrency=50; rate_limit=5000/s); wall clock from spawn to last exit",
        flush=True,
    )
    cases = [
        ("free (no option)", lambda: noop.enqueue_many([()] * n)),
        ("FIFO, 100 keys", lambda: fifo_noop.enqueue_many([(i % 100,) for i in range(n)])),
        ("concurrency=50", lambda: limited_noop.enqueue_many([()] * n)),
        ("rate_limit=5000/s", lambda: rated_noop.enqueue_many([()] * n)),
    ]
    free = None
    for label, fill in cases:

        def prepare(fill=fill):
            truncate()
            fill()
            analyze()

        best, spread = measure_bursts(n, 2, (), label, sizes.repeat, prepare)
        jobs_per_s = n / best.wall
        if free is None:
            free = jobs_per_s
        note = f"{jobs_per_s / free:.2f}x free" if free else ""
        report.add(
            "6 flow",
            f"2 x --burst, {label}",
            n,
            best.wall,
            rate(n, best.wall),
            "; ".join(x for x in (best.problem, note, spread) if x),
        )
        if not best.problem:
            report.metrics[f"flow_{label.split()[0].split(',')[0].split('=')[0].lower()}"] = jobs_per_s
    truncate()


def phase_latency(report: Report, sizes: Sizes) -> None:
    from benchmarks.bench_tasks import stamp
    from djjobs.models import Job

    n = sizes.latency
    low, high = sizes.latency_gap_ms
    poll = djjobs_setting("POLL_INTERVAL")
    try:
        listen = djjobs_setting("LISTEN") and vendor() == "postgresql"
    except KeyError:  # a djjobs without LISTEN/NOTIFY
        listen = False
    print(
        f"\n[3] pick-up latency: 1 idle `run_workers` (not burst, concurrency "
        f"{djjobs_setting('CONCURRENCY')}, POLL_INTERVAL {poll}s, LISTEN/NOTIFY {'on' if listen else 'off'}), "
        f"{n} `stamp` jobs enqueued one at a "
        f"time (autocommit) with a random {low}-{high} ms gap.\n"
        f"    latency = time.time() recorded by the task as it starts (its return value) minus "
        f"time.time() right after enqueue() returned (just after COMMIT; on a loaded machine the enqueuer "
        f"may be descheduled past the task's start, hence a negative min), same machine clock; "
        f"second row: started_at - enqueued_at as djjobs stored them",
        flush=True,
    )
    truncate()
    others = others_cpu().__enter__()
    worker = WorkerProcess()
    try:
        warm = stamp.enqueue()  # the worker is up once it ran this one
        deadline = time.monotonic() + 60
        while not Job.objects.filter(id=warm.id, status="SUCCESSFUL").exists():
            if time.monotonic() > deadline or worker.popen.poll() is not None:
                raise RuntimeError("the latency worker did not start")
            time.sleep(0.05)
        committed, called = {}, {}
        rng = random.Random(42)
        for _ in range(n):
            time.sleep(rng.uniform(low, high) / 1000)
            before = time.time()
            result = stamp.enqueue()
            committed[result.id] = time.time()
            called[result.id] = before
        deadline = time.monotonic() + 120
        while Job.objects.filter(id__in=list(committed)).exclude(status="SUCCESSFUL").exists():
            if time.monotonic() > deadline:
                raise RuntimeError("latency jobs did not finish in 120 s")
            time.sleep(0.05)
    finally:
        worker.terminate()
        others.__exit__(None, None, None)
    rows = Job.objects.filter(id__in=list(committed)).values_list("id", "return_value", "started_at", "enqueued_at")
    task_ms = sorted((ret - committed[str(id_)]) * 1000 for id_, ret, _, _ in rows)
    call_ms = sorted((ret - called[str(id_)]) * 1000 for id_, ret, _, _ in rows)
    db_ms = sorted((s - e).total_seconds() * 1000 for _, _, s, e in rows)
    report.metrics["latency_median"] = statistics.median(task_ms)
    report.metrics["latency_p99"] = percentile(task_ms, 99)
    report.add(
        "3 latency",
        "enqueue -> task start (task clock)",
        len(task_ms),
        None,
        f"median {statistics.median(task_ms):.1f} ms, p99 {percentile(task_ms, 99):.1f} ms",
        f"min {task_ms[0]:.1f} ms, max {task_ms[-1]:.0f} ms; from the enqueue() call: median "
        f"{statistics.median(call_ms):.1f} ms, p99 {percentile(call_ms, 99):.1f} ms; "
        f"LISTEN {'on' if listen else 'off'}, poll {poll} s",
        others.percent,
    )
    report.add(
        "3 latency",
        "started_at - enqueued_at (rows)",
        len(db_ms),
        None,
        f"median {statistics.median(db_ms):.1f} ms, p99 {percentile(db_ms, 99):.1f} ms",
    )
    report.add("4 memory", "idle worker (latency phase), peak RSS", None, None, mib(worker.vm_hwm_kib), "VmHWM")
    truncate()


def phase_claim(report: Report, sizes: Sizes) -> None:
    n = sizes.claim_jobs
    print(
        f"\n[5] claim with a big table: {n:,} noop jobs, 1 x `run_workers --burst`, on an empty table vs "
        f"one holding {sizes.finished_rows:,} SUCCESSFUL jobs (one INSERT ... SELECT, then VACUUM ANALYZE); "
        f"claim() probed with {n:,} READY jobs; the empty table also with `-v 0` (logging's cost)"
        f"{f'; each case run {sizes.repeat} times, the fastest kept' if sizes.repeat > 1 else ''}",
        flush=True,
    )
    from djjobs.models import Job

    results = {}
    cases = [
        ("empty table", 0, ()),
        ("empty table, -v 0", 0, ("-v", "0")),
        (f"+{sizes.finished_rows:,} finished", sizes.finished_rows, ()),
    ]
    for label, filler, extra in cases:
        truncate()
        note = ""
        if filler:
            seconds = fill_finished(filler)
            note = f"fill {seconds:.1f} s; "

        def prepare():
            Job.objects.exclude(worker_id=FILLER).delete()  # the previous repetition's jobs
            analyze(vacuum=True)
            enqueue_noops(n)
            analyze()

        prepare()
        summary, plan = probe_claim()
        print(f"    {label}: {summary}" + ("\n      " + plan.replace("\n", "\n      ") if plan else ""), flush=True)
        best, spread = measure_bursts(n, 1, extra, label, sizes.repeat, prepare)
        results[label] = n / best.wall
        if extra:
            note += "no per-job INFO log lines; "
        problem = f"{best.problem}; " if best.problem else ""
        report.add(
            "5 big table",
            f"1 worker, {label}",
            n,
            best.wall,
            rate(n, best.wall),
            f"{problem}{note}steady {rate(n, best.window) if best.window else 'n/a'}; {summary}"
            f"{'; ' + spread if spread else ''}",
            best.others.percent,
            best.others.per_job(n),
        )
    empty, _, full = results.values()
    report.add(
        "5 big table",
        "finished rows / empty table",
        None,
        None,
        f"{full / empty:.2f}x",
        "throughput ratio; 1.00x = no effect",
    )
    truncate()


# -- peers -------------------------------------------------------------------------------

# (metric, table case, unit, higher is better): djjobs' Report.metrics vs each peer's run_peer.py metrics.
RATIOS = (
    ("enqueue_single", "enqueue, 1 job/transaction", "jobs/s", True),
    ("enqueue_bulk", "enqueue, bulk", "jobs/s", True),
    ("enqueue_bulk_1000", "enqueue, bulk in calls of 1,000", "jobs/s", True),
    ("process_1", "process, 1 worker process", "jobs/s", True),
    ("process_2", "process, 2 worker processes", "jobs/s", True),
    ("latency_median", "pick-up latency, median", "ms", False),
    ("latency_p99", "pick-up latency, p99", "ms", False),
    ("rss_drain_1", "peak RSS, 1 worker draining", "MiB", False),
)


def phase_peers(report: Report, sizes: Sizes, peers: list[str]) -> list[dict]:
    """Phases 1-4 for each peer, in its own virtualenv and database (benchmarks/peers/)."""
    from benchmarks.peers import REQUIREMENTS, VENV, peer_db_url, run_peers

    db_url = os.environ["DATABASE_URL"]
    databases = ", ".join(peer_db_url(db_url, p).rsplit("/", 1)[1] for p in peers)
    print(
        f"\n[peers] {', '.join(peers)}: from PyPI in {VENV.relative_to(ROOT)} ({', '.join(REQUIREMENTS)}), "
        f"each on its own database on the same server ({databases}), "
        f"measured as djjobs is in phases 1-4 by benchmarks/peers/run_peer.py, with the same sizes; "
        f"their tables are truncated between phases",
        flush=True,
    )
    payload = {
        "enqueue_single": sizes.enqueue_single,
        "enqueue_bulk": sizes.enqueue_bulk,
        "process": sizes.process,
        "latency": sizes.latency,
        "latency_gap_ms": list(sizes.latency_gap_ms),
        "repeat": sizes.repeat,
    }
    results = run_peers(payload, db_url, peers)
    for result in results:
        name = result["peer"]
        if result.get("error"):
            reason = " ".join(str(result["error"]).split())  # one line
            report.add("0 peers", name, None, None, f"NOT MEASURED: {reason[:400]}")
        else:
            report.add(
                "0 peers",
                f"{name} {result.get('version')}",
                None,
                None,
                "measured",
                f"Python {result.get('python')}; settings: {result.get('settings')}",
            )
        for row in result.get("rows", []):  # the driver printed them as they came
            report.rows.append(Row(**row))
    return results


def phase_ratios(report: Report, rounds: list[tuple[dict, list[dict] | None]]) -> None:
    """djjobs against each peer, per metric: with one round, that round's ratio; with several,
    each round's ratio (djjobs and the peer measured minutes apart), their median, and the
    ratio of the two best values."""
    if not any(not r.get("error") for _mine, results in rounds for r in results or []):
        return
    print(
        "\n[6] ratios of djjobs to each peer, every one oriented so that >1 means djjobs is better: "
        "throughput djjobs / peer, latency and peak RSS peer / djjobs"
        + (f"; {len(rounds)} rounds: each round's ratio, the median, and best vs best" if len(rounds) > 1 else ""),
        flush=True,
    )

    def show(value, unit):
        if value is None:
            return "n/a"
        if unit == "jobs/s":
            return f"{value:,.0f} jobs/s"
        if unit == "MiB":
            return mib(value)
        return f"{value:.1f} ms"

    def ratio(mine, theirs, higher_is_better):
        if not mine or not theirs or mine <= 0 or theirs <= 0:
            return None
        return mine / theirs if higher_is_better else theirs / mine

    peers = [r["peer"] for r in rounds[-1][1] or []]
    for key, label, unit, higher_is_better in RATIOS:
        best = max if higher_is_better else min
        parts, values = [], []
        mine_all = [m.get(key) for m, _results in rounds if m.get(key)]
        mine_best = best(mine_all) if mine_all else None
        for peer in peers:
            per_round, theirs_all = [], []
            for mine, results in rounds:
                result = next((r for r in results or [] if r["peer"] == peer and not r.get("error")), None)
                theirs = result.get("metrics", {}).get(key) if result else None
                if theirs:
                    theirs_all.append(theirs)
                per_round.append(ratio(mine.get(key), theirs, higher_is_better))
            theirs_best = best(theirs_all) if theirs_all else None
            values.append(f"{peer} {show(theirs_best, unit)}")
            known = [r for r in per_round if r is not None]
            if not known:
                parts.append(f"{peer} n/a")
            elif len(rounds) == 1:
                parts.append(f"{peer} {known[0]:.2f}x")
            else:
                each = ", ".join("n/a" if r is None else f"{r:.2f}" for r in per_round)
                parts.append(
                    f"{peer} {statistics.median(known):.2f}x median ({each}; best vs best "
                    f"{ratio(mine_best, theirs_best, higher_is_better) or 0:.2f}x)"
                )
        direction = "djjobs / peer" if higher_is_better else "peer / djjobs"
        notes = f"djjobs {show(mine_best, unit)}" + ("" if mine_best else " (not measured in this run)")
        if len(rounds) > 1:
            notes += " (best of the rounds)"
        report.add("6 ratios", f"{label} ({direction})", None, None, ", ".join(parts), f"{notes}; {', '.join(values)}")


# -- profile -----------------------------------------------------------------------------


def find_py_spy() -> str | None:
    import shutil

    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def phase_profile(report: Report, sizes: Sizes) -> None:
    n = sizes.profile_jobs
    py_spy = find_py_spy()
    if py_spy:
        runs = [
            ("wall", ["--idle"], "py-spy, wall clock incl. idle, per thread role"),
            ("cpu", [], "py-spy, on-CPU samples only, every thread added up"),
        ]
        tool = "py-spy twice: wall clock (idle included) per thread, then on-CPU only"
    else:
        runs = [("cprofile", [], "cProfile")]
        tool = "cProfile (py-spy not found)"
    print(f"\n[P] profile: one `run_workers --burst` draining {n:,} noop jobs under {tool}", flush=True)
    for kind, flags, label in runs:
        truncate()
        enqueue_noops(n)
        analyze()
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "worker.prof"
            with others_cpu() as others:
                started = time.perf_counter()
                if py_spy:
                    cmd = [
                        py_spy,
                        "record",
                        *flags,
                        "--threads",
                        "--format",
                        "raw",
                        "--rate",
                        "200",
                        "--output",
                        str(out),
                        "--",
                        *worker_command("--burst"),
                    ]
                else:
                    cmd = [sys.executable, str(Path(__file__).resolve()), "--profile-child", str(out)]
                subprocess.run(
                    cmd, cwd=ROOT, env=child_env(), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                wall = time.perf_counter() - started
            problem = check_done(n, "profiled worker")
            report.add(
                "P profile",
                f"1 x run_workers --burst, {label}",
                n,
                wall,
                rate(n, wall),
                problem or "profiler overhead included (py CPU includes the profiler)",
                others.percent,
                others.per_job(n),
            )
            if kind == "wall":
                print(summarize_py_spy(out, 15), flush=True)
            elif kind == "cpu":
                print(summarize_py_spy(out, 15, by_thread=False), flush=True)
                print(
                    "  (py-spy counts a thread as active when the OS says it is runnable: on an oversubscribed "
                    "machine, threads waiting for a core or for the GIL count too, which inflates blocking "
                    "frames such as Worker._job_thread or Connection.wait)",
                    flush=True,
                )
            else:
                print(summarize_cprofile(out, 15), flush=True)
    truncate()


def summarize_py_spy(path: Path, top: int, by_thread: bool = True) -> str:
    """Top functions by inclusive (cumulative) and own share of each thread role's samples
    (or, ``by_thread=False``, of all samples together)."""
    import re
    from collections import Counter, defaultdict

    inclusive, own, total = defaultdict(Counter), defaultdict(Counter), Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        head = frames[0]
        thread = head.split(": ", 1)[1] if head.startswith("thread") and ": " in head else head
        thread_role = re.sub(r"-\d+$", "", thread)  # djjobs-job-0, -1... -> djjobs-job
        role = thread_role if by_thread else "all threads"
        n = int(count)
        total[role] += n
        names = [re.sub(r":\d+\)$", ")", f) for f in frames[1:]]
        if not by_thread:
            names = [f"[{thread_role}]", *names]  # the thread role as the root frame
        for name in set(names):
            inclusive[role][name] += n
        if names:
            own[role][names[-1]] += n
    lines = []
    for role, samples in total.most_common():
        if samples < 50:
            continue
        lines.append(
            f"\n  {'thread ' if by_thread else ''}{role}: {samples:,} samples"
            f"{' (all threads of the role added up)' if by_thread else ' on CPU'}"
        )
        lines.append(f"    top {top} by cumulative share (frames present in every sample left out):")
        ranked = [(name, n) for name, n in inclusive[role].most_common() if n < samples]
        for name, n in ranked[:top]:
            lines.append(f"      {100 * n / samples:5.1f}%  {name}")
        lines.append("    top 10 by own share (where the thread actually is):")
        for name, n in own[role].most_common(10):
            lines.append(f"      {100 * n / samples:5.1f}%  {name}")
    return "\n".join(lines)


def summarize_cprofile(path: Path, top: int) -> str:
    import io
    import pstats

    parts = []
    for key in ("cumulative", "tottime"):
        buf = io.StringIO()
        pstats.Stats(str(path), stream=buf).strip_dirs().sort_stats(key).print_stats(top)
        text = buf.getvalue()
        parts.append(f"\n  top {top} by {key}:\n" + text[text.find("   ncalls") :])
    if sys.version_info >= (3, 12):
        parts.append(
            "  (Python >= 3.12: one cProfile sees every thread through sys.monitoring, and calls of "
            "threads that interleave are charged to each other: install py-spy for a faithful profile)"
        )
    return "\n".join(parts)


def profile_child(out: str) -> None:
    """Run one burst worker in this process under cProfile, then save the stats (no py-spy)."""
    import cProfile
    import pstats

    import django

    django.setup()
    from django.core.management import call_command

    from djjobs.worker import runner

    main_profile = cProfile.Profile()
    profiles = [main_profile]
    if sys.version_info < (3, 12):  # per-thread profilers; 3.12's cProfile already sees every thread
        original = runner.Runner._job_thread

        def profiled_job_thread(self, inbox):
            prof = cProfile.Profile()
            profiles.append(prof)
            prof.enable()
            try:
                return original(self, inbox)
            finally:
                prof.disable()

        runner.Runner._job_thread = profiled_job_thread
    main_profile.enable()
    call_command("run_workers", "--burst")
    main_profile.disable()
    stats = pstats.Stats(main_profile)
    for prof in profiles[1:]:
        stats.add(prof)
    stats.dump_stats(out)


# -- main --------------------------------------------------------------------------------

WHAT_IF_INDEX = "bench_whatif_claim_idx"
WHAT_IF_INDEX_SQL = "(priority DESC, run_after, id) WHERE status = 'READY'"

PHASES = {
    "enqueue": phase_enqueue,
    "flow": phase_flow,
    "process": phase_process,
    "latency": phase_latency,
    "claim": phase_claim,
    "profile": phase_profile,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, help="jobs for bulk enqueue and processing throughput (default 20,000)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of under a minute")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each processing case (phases 2 and 5) this many times and keep the fastest: "
        "on a shared machine the slower runs measure the neighbours",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the chosen phases this many times in turn, djjobs then each peer each time, "
        "and report the ratios of every round: on a machine whose speed drifts, "
        "alternating is what makes djjobs' and a peer's numbers comparable",
    )
    parser.add_argument(
        "--only", help=f"comma-separated phases among {', '.join(PHASES)}, peers (default: all but profile)"
    )
    parser.add_argument(
        "--no-peers",
        action="store_true",
        help="skip the peers (django-tasks-db, Procrastinate, PgQueuer), which a full run measures too",
    )
    parser.add_argument(
        "--peers", help="comma-separated peers to measure among django-tasks-db, procrastinate, pgqueuer (default: all)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="also profile one burst worker (py-spy when installed, else cProfile)"
    )
    parser.add_argument(
        "--what-if-claim-index",
        action="store_true",
        help=f"add a claim index djjobs lacks ({WHAT_IF_INDEX_SQL}) for the run, then drop it: "
        "measures the fix, not djjobs as shipped",
    )
    parser.add_argument(
        "--what-if-async-commit",
        action="store_true",
        help="ALTER DATABASE ... SET synchronous_commit = off for the run, then RESET: measures "
        "what the WAL flush per claim/complete costs (not djjobs as shipped)",
    )
    parser.add_argument(
        "--recreate-db", action="store_true", help="drop and recreate the benchmark database first (its data is lost)"
    )
    parser.add_argument("--profile-child", metavar="OUT", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.profile_child:
        profile_child(args.profile_child)
        return 0

    default = [*(p for p in PHASES if p != "profile"), "peers"]
    names = [p.strip() for p in args.only.split(",")] if args.only else default
    if args.profile and "profile" not in names:
        names.append("profile")
    if args.no_peers and "peers" in names:
        names.remove("peers")
    unknown = set(names) - set(PHASES) - {"peers"}
    if unknown:
        parser.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    from benchmarks.peers import peer_names

    try:
        peers = peer_names(args.peers)
    except ValueError as exc:
        parser.error(str(exc))
    sizes = Sizes.make(args)

    # An editable install has no bytecode until something writes it (and PYTHONDONTWRITEBYTECODE,
    # often set in CI shells, stops the workers from doing so): compile djjobs once, as pip does
    # for installed packages such as the peers, so every worker start does not compile it again.
    import compileall

    compileall.compile_dir(str(ROOT / "djjobs"), quiet=1)
    compileall.compile_dir(str(ROOT / "benchmarks"), quiet=1, maxlevels=1)
    ensure_database(recreate=args.recreate_db)
    setup_django()
    import django
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            db = f"PostgreSQL {cursor.fetchone()[0]}"
        elif connection.vendor == "mysql":
            cursor.execute("SELECT VERSION(), @@innodb_flush_log_at_trx_commit")
            version, flush = cursor.fetchone()
            db = f"{'MariaDB' if connection.mysql_is_mariadb else 'MySQL'} {version}, innodb_flush_log_at_trx_commit={flush}"
        else:
            cursor.execute("SELECT sqlite_version()")
            db = f"SQLite {cursor.fetchone()[0]}"
    try:
        async_commit = djjobs_setting("ASYNC_COMMIT")
    except KeyError:  # a djjobs without it
        async_commit = "n/a"
    header = (
        f"djjobs benchmark: {db} ({connection.settings_dict['NAME']}), Django {django.get_version()}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs; DJJOBS CONCURRENCY="
        f"{djjobs_setting('CONCURRENCY')}, POLL_INTERVAL={djjobs_setting('POLL_INTERVAL')}s, "
        f"ASYNC_COMMIT={async_commit}{'; --quick' if args.quick else ''}{server_notes()}"
        f"{'; peers: ' + ', '.join(peers) if 'peers' in names else ''}"
    )

    if args.what_if_async_commit:
        if connection.vendor != "postgresql":
            parser.error("--what-if-async-commit needs PostgreSQL")
        header += "; WHAT-IF: synchronous_commit=off for the benchmark database (not djjobs as shipped)"
        with connection.cursor() as cursor:
            name = connection.ops.quote_name(connection.settings_dict["NAME"])
            cursor.execute(f"ALTER DATABASE {name} SET synchronous_commit = off")
            cursor.execute("SET synchronous_commit = off")
    if args.what_if_claim_index:
        header += f"; WHAT-IF: extra index {WHAT_IF_INDEX_SQL} (not djjobs as shipped)"
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE INDEX IF NOT EXISTS {WHAT_IF_INDEX} ON {job_table()} {WHAT_IF_INDEX_SQL}")
    print(header, flush=True)

    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    report = Report()
    started = time.perf_counter()
    try:
        rounds = []  # per round: (djjobs' metrics, the peers' results or None)
        for number in range(1, args.rounds + 1):
            if args.rounds > 1:
                print(f"\n=== round {number} of {args.rounds} ===", flush=True)
            first_row = len(report.rows)
            report.metrics = {}
            peer_results = None
            for name in names:
                if name == "peers":
                    peer_results = phase_peers(report, sizes, peers)
                else:
                    PHASES[name](report, sizes)
            if args.rounds > 1:
                for row in report.rows[first_row:]:
                    row.case = f"{row.case} [round {number}]"
            rounds.append((dict(report.metrics), peer_results))
        if rounds[-1][1] is not None:
            phase_ratios(report, rounds)
    finally:
        truncate()
        if args.what_if_claim_index:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP INDEX IF EXISTS {WHAT_IF_INDEX}")
        if args.what_if_async_commit:
            with connection.cursor() as cursor:
                name = connection.ops.quote_name(connection.settings_dict["NAME"])
                cursor.execute(f"ALTER DATABASE {name} RESET synchronous_commit")
    print(f"\n{header}\n")
    print(report.render())
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
