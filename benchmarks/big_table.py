#!/usr/bin/env python
"""Does the hot path stay flat as finished jobs pile up? EXPLAIN ANALYZE at 0 and 10,000,000 rows.

    python benchmarks/big_table.py                    # 10,000,000 finished rows (~10 minutes, ~9 GB)
    python benchmarks/big_table.py --rows 1000000     # a smaller table
    python benchmarks/big_table.py --repeat 5         # burst runs per size (best kept; default 3)

Uses its own database (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/djjobs_bench_big),
created and migrated when missing; its job table is truncated. PostgreSQL only.

For each table size it puts 20,000 READY jobs in place and measures, in rolled-back
transactions (nothing changes), the statements a worker runs for every batch of jobs: the
claim, the batched completion, the rescue sweep's lookup, and the health endpoint's queries;
then a real `run_workers --burst` drains the 20,000 jobs. It prints each statement's median
time, the plan's access paths and the buffers it touched, side by side for both sizes.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/djjobs_bench_big")

# After DATABASE_URL is set: run.py only defaults it. FILLER marks the filled rows.
from benchmarks.run import FILLER, fill_finished  # noqa: E402

READY_JOBS = 20_000
BATCH = 100  # jobs per claim and per completion, as a busy worker does with short jobs
SAMPLES = 9


def setup_django() -> None:
    import django
    import psycopg
    from django.conf import settings

    settings_dict = None
    try:
        django.setup()
        from django.db import connection

        settings_dict = connection.settings_dict
        connection.ensure_connection()
    except Exception as exc:  # the database is missing: create it
        if settings_dict is None or "does not exist" not in str(exc):
            raise
        name = settings_dict["NAME"]
        with psycopg.connect(
            host=settings_dict["HOST"] or "127.0.0.1",
            port=settings_dict["PORT"] or 5432,
            user=settings_dict["USER"],
            password=settings_dict["PASSWORD"] or None,
            dbname="postgres",
            autocommit=True,
        ) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("big_table.py measures PostgreSQL plans: point DATABASE_URL at a PostgreSQL database.")
    call_command("migrate", verbosity=0)
    assert settings.DATABASES


def sql(statement: str, params=()):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


def fill(rows: int) -> float:
    """Insert ``rows`` finished jobs (95% SUCCESSFUL, 5% FAILED, over 14 days) in chunks of 1,000,000."""
    started = time.perf_counter()
    done = 0
    while done < rows:
        n = min(1_000_000, rows - done)
        fill_finished(n, days=14, failed_every=20, first=done, total=rows)
        done += n
        print(f"    {done:,} / {rows:,} rows ({time.perf_counter() - started:.0f} s)", flush=True)
    return time.perf_counter() - started


def enqueue_ready() -> None:
    from benchmarks.bench_tasks import noop

    noop.enqueue_many([()] * READY_JOBS)


def captured(func, *args):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        result = func(*args)
    return result, [q["sql"] for q in ctx.captured_queries]


def explain(statement: str) -> tuple[float, str, str]:
    """(execution ms, access paths, shared buffers hit+read) of one EXPLAIN ANALYZE run."""
    rows = sql("EXPLAIN (ANALYZE, BUFFERS) " + statement)
    plan = "\n".join(r[0] for r in rows)
    ms = next((float(line.split(":")[1].split()[0]) for line in plan.splitlines() if "Execution Time" in line), 0.0)
    paths = []
    for line in plan.splitlines():
        for node in (
            "Seq Scan",
            "Index Only Scan",
            "Bitmap Heap Scan",
            "Index Scan",
            "Sort",
            "Hash Join",
            "Nested Loop",
        ):
            if node in line:
                index = line.split(" using ")[1].split()[0] if " using " in line else ""
                paths.append(f"{node}{' ' + index if index else ''}")
                break
    buffers = next((line.strip().replace("Buffers: ", "") for line in plan.splitlines() if "Buffers:" in line), "")
    return ms, " > ".join(dict.fromkeys(paths)), buffers


def measure() -> list[tuple[str, float, str, str]]:
    """Median execution time, access paths and buffers of each hot statement (all rolled back)."""
    from django.db import transaction

    from djjobs.http.health import report as health_report
    from djjobs.lifecycle.finish import complete_successes
    from djjobs.maintenance.rescuer import rescue_expired
    from djjobs.worker.claim import claim
    from djjobs.worker.executor import Outcome

    statements = {}
    with transaction.atomic():
        jobs, queries = captured(claim, "bench-big", None, BATCH, 30.0)
        statements["claim 100 (CTE, FOR UPDATE SKIP LOCKED)"] = (queries[-1], None)
        items = [(job, Outcome(return_value=None, return_json="null")) for job in jobs]
        _, queries = captured(complete_successes, items, "bench-big")
        statements["complete 100 (one guarded UPDATE)"] = (queries[-1], "claim 100 (CTE, FOR UPDATE SKIP LOCKED)")
        _, queries = captured(rescue_expired)
        statements["rescue sweep lookup"] = (next(q for q in queries if "SELECT" in q.upper()), None)
        transaction.set_rollback(True)
    with transaction.atomic():
        _, queries = captured(health_report)
        for i, query in enumerate(q for q in queries if q.lstrip().upper().startswith("SELECT")):
            statements[f"health query {i + 1}"] = (query, None)
        transaction.set_rollback(True)

    results = []
    for name, (statement, before) in statements.items():
        runs = []
        for _ in range(SAMPLES):
            with transaction.atomic():
                if before:  # the completion needs the rows claimed with the same lease token
                    sql(statements[before][0])
                runs.append(explain(statement))
                transaction.set_rollback(True)
        ms = statistics.median(r[0] for r in runs)
        results.append((name, ms, runs[-1][1], runs[-1][2]))
    return results


def burst() -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "django", "run_workers", "--burst", "-v", "0", "--settings=benchmarks.settings"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    wall = time.perf_counter() - started
    left = sql("SELECT count(*) FROM djjobs_job WHERE worker_id <> %s AND status <> 'SUCCESSFUL'", [FILLER])[0][0]
    if left:
        print(f"  !! {left} jobs not SUCCESSFUL after the burst", flush=True)
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="finished rows of the big table")
    parser.add_argument("--repeat", type=int, default=3, help="burst runs per table size; the fastest is kept")
    args = parser.parse_args()
    import compileall

    compileall.compile_dir(str(ROOT / "djjobs"), quiet=1)  # as run.py does: workers start from bytecode
    setup_django()
    from django.db import connection

    version = sql("SHOW server_version")[0][0]
    print(
        f"big table benchmark: PostgreSQL {version} ({connection.settings_dict['NAME']}), {os.cpu_count()} CPUs",
        flush=True,
    )

    table = {}
    for label, rows in (("empty", 0), (f"{args.rows:,} finished", args.rows)):
        sql("TRUNCATE djjobs_job CASCADE")
        if rows:
            print(f"\n[fill] {rows:,} finished jobs", flush=True)
            seconds = fill(rows)
            print(f"    filled in {seconds:.0f} s", flush=True)
        walls = []
        for run in range(args.repeat):
            sql("DELETE FROM djjobs_job WHERE worker_id <> %s", [FILLER])
            enqueue_ready()
            # Settled state: statistics fresh, dead rows gone, no checkpoint of the fill in flight.
            sql("VACUUM ANALYZE djjobs_job")
            sql("CHECKPOINT")
            if run == 0:
                size = sql("SELECT pg_size_pretty(pg_total_relation_size('djjobs_job'))")[0][0]
                print(f"\n[{label}] table with indexes: {size}; {READY_JOBS:,} READY jobs", flush=True)
                results = measure()
                for name, ms, paths, buffers in results:
                    print(f"    {name}: {ms:.2f} ms  [{paths}]  buffers {buffers}", flush=True)
            walls.append(burst())
            print(
                f"    run_workers --burst drained {READY_JOBS:,} jobs in {walls[-1]:.2f} s "
                f"({READY_JOBS / walls[-1]:,.0f} jobs/s, start-up included)",
                flush=True,
            )
        table[label] = (results, min(walls), size)

    (small_label, (small, small_wall, small_size)), (big_label, (big, big_wall, big_size)) = table.items()
    print(
        f"\nstatement medians of {SAMPLES} EXPLAIN ANALYZE runs (rolled back), ms; table sizes "
        f"{small_size} vs {big_size}\n"
    )
    width = max(len(name) for name, *_ in small)
    print(f"{'statement':<{width}}  {small_label:>10}  {big_label:>20}  ratio  access path ({big_label})")
    for (name, a, _, _), (_, b, paths, _) in zip(small, big):
        print(f"{name:<{width}}  {a:>10.2f}  {b:>20.2f}  {b / a if a else float('nan'):>5.2f}  {paths}")
    label = f"burst worker, jobs/s (best of {args.repeat})"
    print(
        f"{label:<{width}}  {READY_JOBS / small_wall:>10,.0f}  {READY_JOBS / big_wall:>20,.0f}  "
        f"{small_wall / big_wall:>5.2f}"
    )


if __name__ == "__main__":
    main()
