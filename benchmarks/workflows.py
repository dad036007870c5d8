#!/usr/bin/env python
"""What running jobs as a workflow costs: starting runs, and draining their steps.

    python benchmarks/workflows.py                  # 2,000 runs of a 4-step no-op workflow
    python benchmarks/workflows.py --runs 500 --repeat 3

Uses the benchmark database (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/djjobs_bench,
created and migrated when missing; its jobs and workflow runs are deleted). The workflow
(benchmarks/bench_workflows.py ``pipeline``) is step a, then b1 and b2 in parallel, then c, each a
no-op task. It measures ``pipeline.start()`` one run per transaction, then N x
``run_workers --burst`` draining every run (wall clock from spawn to exit, start-up included),
and the same number of plain no-op jobs drained the same way, and prints a table.
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/djjobs_bench")

from benchmarks.run import ensure_database, run_burst, setup_django  # noqa: E402


def clear() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("TRUNCATE djjobs_job, djjobs_workflowrun CASCADE")
        else:
            cursor.execute("DELETE FROM djjobs_job")
            cursor.execute("DELETE FROM djjobs_workflowrun")
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE djjobs_job")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000, help="workflow runs (default 2,000: 8,000 step jobs)")
    parser.add_argument("--repeat", type=int, default=2, help="drains per case; the fastest is kept (default 2)")
    args = parser.parse_args()

    import compileall

    compileall.compile_dir(str(ROOT / "djjobs"), quiet=1)
    compileall.compile_dir(str(ROOT / "benchmarks"), quiet=1, maxlevels=1)
    ensure_database()
    setup_django()
    from django.db import connection

    from benchmarks.bench_tasks import noop
    from benchmarks.bench_workflows import pipeline
    from djjobs.models import Job, RunStatus, WorkflowRun

    n, steps = args.runs, args.runs * 4
    rows = []

    clear()
    started = time.perf_counter()
    for i in range(n):
        pipeline.start(n=i)
    wall = time.perf_counter() - started
    rows.append(
        (
            "start()",
            "1 run per transaction (run row + 4 job rows)",
            f"{n:,} runs",
            f"{wall:.2f}",
            f"{n / wall:,.0f} runs/s",
            f"{wall / n * 1000:.2f} ms/run",
        )
    )

    def drain_runs(workers):
        best = None
        for _ in range(args.repeat):
            clear()
            for i in range(n):
                pipeline.start(n=i)
            wall, _procs = run_burst(workers, "-v", "0")
            done = WorkflowRun.objects.filter(status=RunStatus.SUCCESSFUL).count()
            if done != n:
                raise SystemExit(f"only {done:,} of {n:,} runs SUCCESSFUL")
            best = wall if best is None else min(best, wall)
        return best

    def drain_jobs(workers):
        best = None
        for _ in range(args.repeat):
            clear()
            noop.enqueue_many([()] * steps)
            wall, _procs = run_burst(workers, "-v", "0")
            assert Job.objects.filter(status="SUCCESSFUL").count() == steps
            best = wall if best is None else min(best, wall)
        return best

    for workers in (1, 2):
        wall = drain_runs(workers)
        rows.append(
            (
                f"drain, {workers} proc",
                f"{n:,} runs x 4 no-op steps, `run_workers --burst -v 0`",
                f"{steps:,} steps",
                f"{wall:.2f}",
                f"{steps / wall:,.0f} steps/s",
                f"{n / wall:,.0f} runs/s",
            )
        )
        plain = drain_jobs(workers)
        rows.append(
            (
                f"drain, {workers} proc",
                f"{steps:,} plain no-op jobs, same command",
                f"{steps:,} jobs",
                f"{plain:.2f}",
                f"{steps / plain:,.0f} jobs/s",
                f"workflow / plain {plain / wall:.2f}x",
            )
        )
    clear()

    header = ("case", "what", "size", "wall s", "rate", "notes")
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    vendor = connection.vendor
    print(f"\ndjjobs workflows benchmark ({vendor}, {connection.settings_dict['NAME']}, {os.cpu_count()} CPUs)\n")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
