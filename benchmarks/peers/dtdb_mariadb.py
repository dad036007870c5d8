"""django-tasks-db on MariaDB/MySQL: processing throughput, as benchmarks/run.py's phase 2 measures djjobs.

The peers' harness (run_peer.py) speaks PostgreSQL only; this measures the one case the MariaDB
comparison needs (docs/explanation/databases.md): N pre-enqueued no-op jobs processed by 1 and
2 ``db_worker --batch`` processes (``--interval 0.1 --no-startup-delay``, CONN_MAX_AGE=600: the
peer's best settings, as in the PostgreSQL comparison), wall clock from spawn to the last exit.
Run it in a virtualenv with the peer's pins and mysqlclient (not djjobs' own):

    python -m venv /tmp/peer && /tmp/peer/bin/pip install django-tasks-db==0.13.0 Django==6.0.10 mysqlclient
    BENCH_PEER_DB_URL=mysql://root@127.0.0.1:3306/djjobs_bench_dtdb /tmp/peer/bin/python benchmarks/peers/dtdb_mariadb.py

The database is created when missing; its job table is emptied before each case.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "benchmarks.peers.django_tasks_db_settings"
TABLE = "django_tasks_database_dbtaskresult"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--workers", default="1,2", help="comma-separated process counts (default 1,2)")
    args = parser.parse_args()
    url = os.environ.setdefault("BENCH_PEER_DB_URL", "mysql://root@127.0.0.1:3306/djjobs_bench_dtdb")
    parts = urlsplit(url)
    import MySQLdb

    admin = MySQLdb.connect(
        host=parts.hostname or "127.0.0.1", port=parts.port or 3306, user=unquote(parts.username or "root")
    )
    admin.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{unquote(parts.path.lstrip('/'))}` CHARACTER SET utf8mb4")
    admin.close()

    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from benchmarks.peers import django_tasks_db_tasks as tasks

    call_command("migrate", verbosity=0)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [str(Path(sys.executable).with_name("django-admin")), "db_worker", f"--settings={SETTINGS}"]
    command += ["--interval=0.1", "--no-startup-delay", "--batch"]
    print(f"django-tasks-db on {connection.vendor} ({connection.mysql_version}), {args.jobs:,} noop jobs")
    for workers in (int(w) for w in args.workers.split(",")):
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {TABLE}")
        with transaction.atomic():
            for _ in range(args.jobs):
                tasks.noop.enqueue()
        started = time.perf_counter()
        procs = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL) for _ in range(workers)]
        for proc in procs:
            proc.wait()
        wall = time.perf_counter() - started
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT status, COUNT(*) FROM {TABLE} GROUP BY status")
            counts = dict(cursor.fetchall())
        print(f"  {workers} x db_worker --batch: {args.jobs / wall:,.0f} jobs/s ({wall:.1f} s; {counts})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
