#!/usr/bin/env python
"""The admin on a big job table: fills PostgreSQL with 1,000,000 jobs and measures the pages.

Run from the repository root:

    python benchmarks/admin_scale.py                 # fill once (kept for later runs), measure
    python benchmarks/admin_scale.py --refill        # empty the job table and fill it again
    python benchmarks/admin_scale.py --explain       # also EXPLAIN ANALYZE each page's job-table queries
    python benchmarks/admin_scale.py --rows 200000 --runs 9
    python benchmarks/admin_scale.py --screenshots docs/screenshots   # and PNGs of three screens

The database is ADMIN_BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/djjobs_admin_bench), created when missing and migrated; its
job table is this script's own (TRUNCATEd on --refill or when its size differs from --rows).

The fill is one ``INSERT ... SELECT generate_series``: 30 days of jobs, the last hour busy
(about 1,000 a minute), a backlog of due READY jobs among the newest, some scheduled for later,
RUNNING jobs on four live workers, WAITING workflow steps, about 4% FAILED with three attempts' tracebacks each,
1.5% CANCELLED, the rest SUCCESSFUL; five queues (one used only by old jobs, one empty) and ten
tasks of very different frequency. Then VACUUM ANALYZE (the server may run no autovacuum).

Each page is requested in-process with Django's test Client, logged in as a superuser: one
warm-up, then the median of ``--runs`` requests, with the number of SQL queries and the
slowest query. Not a test: pytest never collects it.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if __name__ == "__main__":
    # Run as the module benchmarks.admin_scale, so that its tasks have importable dotted paths.
    from benchmarks.admin_scale import main

    sys.exit(main())

import environ  # noqa: E402
from django.conf import settings  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/djjobs_admin_bench"
QUEUES = ["default", "emails", "urgent", "reports", "bulk"]  # reports: old jobs only; bulk: none at all
TARGET_MS = 300
PASSWORD = "bench"  # of the superuser "bench", for --screenshots

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="djjobs-admin-bench-not-secret",
        USE_TZ=True,
        TIME_ZONE="UTC",
        ALLOWED_HOSTS=["*"],
        DATABASES={"default": environ.Env.db_url_config(os.environ.get("ADMIN_BENCH_DATABASE_URL", DEFAULT_URL))},
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "djjobs",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        ROOT_URLCONF=__name__,
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        TASKS={"default": {"BACKEND": "djjobs.backend.JobsBackend", "QUEUES": QUEUES}},
        DJJOBS={"LISTEN": False},
        LOGGING={"version": 1, "disable_existing_loggers": False, "loggers": {"djjobs": {"level": "WARNING"}}},
    )

import django  # noqa: E402

django.setup()

from django.contrib import admin  # noqa: E402
from django.urls import path  # noqa: E402

from djjobs import task  # noqa: E402

urlpatterns = [path("admin/", admin.site.urls)]


# The shop's tasks: declared, so the admin's task filter lists them (the fill only names them).
@task()
def sync_stock(): ...
@task()
def resize_image(): ...
@task()
def charge_payment(): ...
@task()
def rebuild_search_index(): ...
@task()
def legacy_import(): ...
@task(queue_name="emails")
def send_receipt(): ...
@task(queue_name="emails")
def send_newsletter(): ...
@task(queue_name="urgent")
def fraud_check(): ...
@task(queue_name="urgent")
def refund(): ...
@task(queue_name="reports")
def nightly_report(): ...


TASK = f"{__name__}."  # prefix of the dotted paths in the fill

# -- the fill ----------------------------------------------------------------------------

FILL = """
INSERT INTO djjobs_job (id, task_path, backend, queue_name, priority, status, args, kwargs, takes_context,
    run_after, enqueued_at, started_at, last_attempted_at, finished_at, attempts, max_attempts, retry_backoff,
    timeout, unique_key, worker_id, lease_token, lease_expires_at, cancel_requested_at, return_value, errors,
    worker_ids, progress, progress_message, checkpoint, event_id, trigger, schedule_id, scheduled_for)
WITH base AS (
    SELECT i, random() AS rs, random() AS rq, random() AS rt, random() AS rd,
           CASE WHEN i <= %(old)s
                THEN %(now)s - interval '30 days' + (interval '30 days' - interval '1 hour') * ((i - 1)::float8 / %(old)s)
                ELSE %(now)s - interval '1 hour' + interval '1 hour' * ((i - %(old)s)::float8 / %(hour)s) END AS enq
    FROM generate_series(1, %(rows)s) AS i
), shaped AS (
    SELECT b.*,
        -- the newest jobs: a backlog, the higher priorities and luckier ones already run
        CASE WHEN i > %(rows)s - %(backlog)s AND rs >= 0.4 THEN 'READY'
             WHEN i > %(rows)s - %(backlog)s AND rs >= 0.3984 THEN 'RUNNING'
             WHEN rs < 0.004 AND enq > %(now)s - interval '7 days' THEN 'LATER'
             WHEN rs < 0.006 AND enq > %(now)s - interval '1 day' THEN 'WAITING'
             WHEN rs < 0.046 THEN 'FAILED'
             WHEN rs < 0.061 THEN 'CANCELLED'
             ELSE 'SUCCESSFUL' END AS state,
        CASE WHEN rq < 0.55 THEN 'default' WHEN rq < 0.85 THEN 'emails'
             WHEN rq < 0.995 OR enq > %(now)s - interval '7 days' THEN 'urgent' ELSE 'reports' END AS queue
    FROM base b
), tasked AS (
    SELECT s.*,
        CASE queue
            WHEN 'default' THEN CASE WHEN rt < 0.0009 AND enq < %(now)s - interval '20 days' THEN 'legacy_import'
                                     WHEN rt < 0.40 THEN 'sync_stock' WHEN rt < 0.70 THEN 'resize_image'
                                     WHEN rt < 0.90 THEN 'charge_payment' ELSE 'rebuild_search_index' END
            WHEN 'emails' THEN CASE WHEN rt < 0.75 THEN 'send_receipt' ELSE 'send_newsletter' END
            WHEN 'urgent' THEN CASE WHEN rt < 0.8 THEN 'fraud_check' ELSE 'refund' END
            ELSE 'nightly_report' END AS task,
        CASE WHEN state = 'FAILED' THEN 3 WHEN state IN ('READY', 'LATER', 'WAITING') THEN 0
             WHEN state = 'SUCCESSFUL' AND rd < 0.08 THEN 2 ELSE 1 END AS tries,
        enq + (0.05 + rd * 2) * interval '1 second' AS started
    FROM shaped s
), timed AS (
    -- attempt k starts 2 s after attempt k - 1 and fails 0.5 s into it, on worker (i + k) mod 4
    SELECT t.*,
        started + GREATEST(tries - 1, 0) * interval '2 seconds' AS last_start,
        started + GREATEST(tries - 1, 0) * interval '2 seconds'
            + CASE WHEN state = 'FAILED' THEN 0.5 ELSE 0.01 + rt * 3 END * interval '1 second' AS finished
    FROM tasked t
)
SELECT
    (lpad(to_hex((extract(epoch FROM enq) * 1000)::bigint), 12, '0') || '7' || substr(md5(i::text), 1, 3)
        || '8' || substr(md5(i::text), 4, 15))::uuid,
    %(prefix)s || task, 'default', queue,
    CASE WHEN queue = 'urgent' THEN 50 WHEN rt > 0.98 THEN -10 WHEN rt > 0.9 THEN 10 ELSE 0 END,
    CASE state WHEN 'LATER' THEN 'READY' ELSE state END,
    jsonb_build_array(i), CASE WHEN task = 'send_receipt' THEN jsonb_build_object('order_id', i) ELSE '{}'::jsonb END,
    task = 'resize_image',
    CASE WHEN state = 'LATER' THEN %(now)s + rd * interval '7 days' ELSE enq END,
    enq,
    CASE WHEN tries = 0 THEN NULL ELSE started END,
    CASE WHEN tries = 0 THEN NULL ELSE last_start END,
    CASE WHEN state IN ('SUCCESSFUL', 'FAILED', 'CANCELLED') THEN finished END,
    tries, 3, 1.0, NULL,
    CASE WHEN task = 'send_receipt' THEN 'receipt-' || i END,
    CASE WHEN tries = 0 THEN '' ELSE 'bench-worker-' || ((i + tries) %% 4) END,
    CASE WHEN state = 'RUNNING' THEN gen_random_uuid() END,
    CASE WHEN state = 'RUNNING' THEN %(now)s + interval '30 seconds' END,
    NULL,
    CASE WHEN state = 'SUCCESSFUL' THEN jsonb_build_object('ok', true, 'items', (i %% 97)) END,
    CASE WHEN state = 'FAILED' THEN (
            SELECT jsonb_agg(jsonb_build_object(
                'attempt', a, 'exception_class_path', err.cls, 'message', err.msg || ' (attempt ' || a || ')',
                'traceback', 'Traceback (most recent call last):' || E'\\n' ||
                    '  File "/srv/shop/djjobs/worker/executor.py", line 47, in execute' || E'\\n' ||
                    '    value = task.call(*job.args, **job.kwargs)' || E'\\n' ||
                    '  File "/srv/shop/shop/tasks.py", line ' || (40 + length(task)) || ', in ' || task || E'\\n' ||
                    '    response = client.post(url, json=payload, timeout=10)' || E'\\n' ||
                    '  File "/srv/venv/lib/python3.12/site-packages/httpx/_client.py", line 1145, in post' || E'\\n' ||
                    '    return self.request("POST", url, json=json, timeout=timeout)' || E'\\n' ||
                    err.cls || ': ' || err.msg,
                'worker_id', 'bench-worker-' || ((i + a) %% 4),
                'started_at', to_char((started + ((a - 1) * 2) * interval '1 second') AT TIME ZONE 'UTC',
                                      'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
                'at', to_char((started + ((a - 1) * 2 + 0.5) * interval '1 second') AT TIME ZONE 'UTC',
                              'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')))
            FROM generate_series(1, 3) AS a,
                 LATERAL (SELECT CASE WHEN task IN ('charge_payment', 'refund') THEN 'shop.payments.GatewayTimeout'
                                      WHEN task = 'send_receipt' THEN 'smtplib.SMTPServerDisconnected'
                                      WHEN task = 'legacy_import' THEN 'KeyError'
                                      ELSE 'httpx.ConnectError' END AS cls,
                                 CASE WHEN task IN ('charge_payment', 'refund') THEN 'payment gateway did not answer in 10 s'
                                      WHEN task = 'send_receipt' THEN 'Connection unexpectedly closed'
                                      WHEN task = 'legacy_import' THEN '''customer_ref'''
                                      ELSE '[Errno 111] Connection refused' END AS msg) AS err)
         WHEN state = 'SUCCESSFUL' AND rd < 0.08 THEN jsonb_build_array(jsonb_build_object(
                'attempt', 1, 'exception_class_path', 'httpx.ConnectError', 'message', '[Errno 111] Connection refused',
                'traceback', 'Traceback (most recent call last):' || E'\\n' || 'httpx.ConnectError: [Errno 111] Connection refused',
                'worker_id', 'bench-worker-' || ((i + 1) %% 4),
                'started_at', to_char(started AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
                'at', to_char((started + interval '0.5 seconds') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')))
         ELSE '[]'::jsonb END,
    (SELECT COALESCE(jsonb_agg('bench-worker-' || ((i + a) %% 4) ORDER BY a), '[]'::jsonb)
     FROM generate_series(1, tries) AS a),
    CASE WHEN state = 'RUNNING' THEN round((rd * 100)::numeric, 0) WHEN task = 'rebuild_search_index' AND state = 'SUCCESSFUL' THEN 100 END,
    CASE WHEN state = 'RUNNING' THEN 'batch ' || (i %% 20) || ' of 20' ELSE '' END,
    NULL, NULL,
    CASE WHEN task = 'charge_payment' AND rt > 0.85 THEN 'shop.Order:update:paid' END,
    NULL, NULL
FROM timed
"""


def ensure_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    config = environ.Env.db_url_config(url)
    kwargs = {
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **{k: v for k, v in kwargs.items() if v}) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))
            print(f"created database {config['NAME']}")


def fill(rows: int) -> None:
    from django.db import connection
    from django.utils import timezone

    from djjobs.models import Worker

    hour = min(60_000, max(rows // 16, 1))
    now = timezone.now()
    params = {
        "rows": rows,
        "hour": hour,
        "old": rows - hour,
        "backlog": min(25_000, rows // 40),
        "now": now,
        "prefix": TASK,
    }
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE djjobs_job CASCADE")
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(FILL, params)
    Worker.objects.all().delete()
    for n in range(4):
        Worker.objects.create(
            id=f"bench-worker-{n}",
            hostname=f"app-{n // 2 + 1}",
            pid=1000 + n,
            queues=[] if n % 2 else ["default", "emails"],
            concurrency=16,
            started_at=now - timedelta(hours=1),
            jobs_done=25_000 + n,
            jobs_failed=900 + n,
        )
    Worker.objects.create(
        id="bench-worker-old",
        hostname="app-9",
        pid=999,
        concurrency=16,
        started_at=now - timedelta(hours=2),
        last_heartbeat_at=now - timedelta(minutes=30),
    )
    print(f"filled {rows:,} jobs in {time.perf_counter() - started:.0f} s")


def vacuum_analyze() -> None:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE djjobs_job")
        cursor.execute("VACUUM ANALYZE djjobs_worker")
    print(f"VACUUM ANALYZE in {time.perf_counter() - started:.0f} s")


def job_count() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM djjobs_job")
        return cursor.fetchone()[0]


# -- the measurements --------------------------------------------------------------------


def pages() -> list[tuple[str, str]]:
    from djjobs.models import Job

    failed = Job.objects.filter(status="FAILED").order_by("-enqueued_at").values_list("pk", flat=True).first()
    succeeded = Job.objects.filter(status="SUCCESSFUL").order_by("enqueued_at").values_list("pk", flat=True).first()
    receipt = (
        Job.objects.filter(unique_key__isnull=False)
        .order_by("enqueued_at")
        .values_list("unique_key", flat=True)
        .first()
    )
    jobs = "/admin/djjobs/job/"
    found = [
        ("job list, first page", jobs),
        ("job list, page 2", f"{jobs}?p=2"),
        ("job list, page 200 (last listed)", f"{jobs}?p=200"),
        ("job list, oldest first", f"{jobs}?o=7"),
    ]
    found += [
        (f"filter status={s}", f"{jobs}?status={s}")
        for s in ("READY", "RUNNING", "WAITING", "FAILED", "CANCELLED", "SUCCESSFUL")
    ]
    found += [(f"filter queue={q}", f"{jobs}?queue={q}") for q in QUEUES]
    found += [
        (f"filter task={t}", f"{jobs}?task={TASK}{t}") for t in ("send_receipt", "nightly_report", "legacy_import")
    ]
    found += [(f"filter enqueued={r}", f"{jobs}?enqueued={r}") for r in ("hour", "day", "week")]
    found += [(f"filter finished={r}", f"{jobs}?finished={r}") for r in ("hour", "day", "week")]
    found += [(f"filter due={d}", f"{jobs}?due={d}") for d in ("now", "later")]
    found += [
        ("filter status=FAILED&queue=emails", f"{jobs}?status=FAILED&queue=emails"),
        ("filter status=FAILED&task=legacy_import", f"{jobs}?status=FAILED&task={TASK}legacy_import"),
        ("filter status=FAILED&finished=day", f"{jobs}?status=FAILED&finished=day"),
        ("search by id", f"{jobs}?q={failed}"),
        ("search by unique key", f"{jobs}?q={receipt}"),
        ("search by task name", f"{jobs}?q=refund"),
        ("job detail (FAILED, 3 tracebacks)", f"{jobs}{failed}/change/"),
        ("job detail (SUCCESSFUL)", f"{jobs}{succeeded}/change/"),
        ("dashboard", "/admin/djjobs/dashboard/"),
        ("worker list", "/admin/djjobs/worker/"),
    ]
    return found


def measure(client, url: str, runs: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm-up: templates, caches, the plan of each statement
    times, cpu, sql_ms, counts, captured = [], [], [], set(), None
    for _ in range(runs):
        with CaptureQueriesContext(connection) as queries:
            started, started_cpu = time.perf_counter(), time.process_time()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
        captured = queries.captured_queries
        counts.add(len(captured))
        sql_ms.append(sum(float(q["time"]) for q in captured) * 1000)
    slowest = max(captured, key=lambda q: float(q["time"]))
    return {
        "ms": statistics.median(times),
        "cpu_ms": statistics.median(cpu),
        "sql_ms": statistics.median(sql_ms),
        "queries": "/".join(str(n) for n in sorted(counts)),
        "slowest_ms": float(slowest["time"]) * 1000,
        "job_sql": job_queries(captured),
    }


def explain(sql: str) -> str:
    """One line per plan: its scans (with their index) and its execution time."""
    import json

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    scans = []

    def walk(node):
        if "Scan" in node["Node Type"]:
            target = node.get("Index Name") or node.get("Relation Name") or ""
            scans.append(
                f"{node['Node Type']}{' Backward' if node.get('Scan Direction') == 'Backward' else ''} {target}".strip()
            )
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return f"{plan[0]['Execution Time']:.1f} ms: {'; '.join(dict.fromkeys(scans))}"


def job_queries(captured) -> list[str]:
    """The statements of a page that read the job table (EXPLAIN estimates left out)."""
    return [
        q["sql"]
        for q in captured
        if "djjobs_job" in q["sql"] and q["sql"].lstrip().upper().startswith(("SELECT", "WITH"))
    ]


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def screenshots(directory: Path, password: str) -> None:
    """PNGs of the dashboard, the job list and a failed job's page on the filled table, taken
    with Playwright and Debian's Chromium against a live server on the benchmark database."""
    import tempfile

    from django.test.testcases import LiveServerThread, _StaticFilesHandler
    from django.test.utils import override_settings
    from django.utils import timezone
    from playwright.sync_api import sync_playwright

    import djjobs
    from djjobs.models import Job, Worker

    static = Path(tempfile.mkdtemp(prefix="djjobs-static-"))
    (static / "admin").symlink_to(Path(django.__file__).parent / "contrib" / "admin" / "static" / "admin")
    (static / "djjobs").symlink_to(Path(djjobs.__file__).parent / "static" / "djjobs")
    failed = Job.objects.filter(status="FAILED").order_by("-enqueued_at").values_list("pk", flat=True).first()
    Worker.objects.filter(stopped_at__isnull=True).exclude(pk="bench-worker-old").update(
        last_heartbeat_at=timezone.now()
    )
    directory.mkdir(parents=True, exist_ok=True)
    with override_settings(STATIC_URL="/static/", STATIC_ROOT=str(static)):
        server = LiveServerThread("127.0.0.1", _StaticFilesHandler)
        server.daemon = True
        server.start()
        server.is_ready.wait()
        base = f"http://127.0.0.1:{server.port}"
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.add_init_script("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
                page.goto(f"{base}/admin/login/?next=/admin/")
                page.fill("#id_username", "bench")
                page.fill("#id_password", password)
                page.click("input[type=submit]")
                page.wait_for_url("**/admin/")
                for name, path, full in (
                    ("dashboard", "/admin/djjobs/dashboard/?refresh=0", True),
                    ("job-list", "/admin/djjobs/job/", False),
                    ("job-detail-failed", f"/admin/djjobs/job/{failed}/change/", True),
                ):
                    page.goto(base + path)
                    page.screenshot(path=str(directory / f"{name}.png"), full_page=full)
                    print(f"screenshot {directory / f'{name}.png'}")
                browser.close()
        finally:
            server.terminate()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--refill", action="store_true", help="empty the job table and fill it again")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE each page's queries on the job table")
    parser.add_argument("--only", help="measure only pages whose name contains this text")
    parser.add_argument(
        "--screenshots",
        type=Path,
        metavar="DIR",
        help="after measuring, save PNGs of the dashboard, job list and a failed job here "
        "(needs playwright and /usr/bin/chromium)",
    )
    args = parser.parse_args(argv)

    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    ensure_database(os.environ.get("ADMIN_BENCH_DATABASE_URL", DEFAULT_URL))
    call_command("migrate", verbosity=0)
    if args.refill or job_count() != args.rows:
        fill(args.rows)
        vacuum_analyze()
    user, _created = User.objects.get_or_create(username="bench")
    user.is_staff = user.is_superuser = True
    user.set_password(PASSWORD)
    user.save()
    if args.screenshots:  # first: the chart's last hour is freshest right after a fill
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # ORM reads while Playwright's event loop runs
        screenshots(args.screenshots, PASSWORD)
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    client = Client()
    client.force_login(user)

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        server = cursor.fetchone()[0].split(" on ")[0]
    print(
        f"\n{job_count():,} jobs · {server} · Django {django.get_version()} · Python {sys.version.split()[0]}"
        f" · median of {args.runs} · target < {TARGET_MS} ms · load average {os.getloadavg()[0]:.1f}"
        f" on {os.cpu_count()} CPUs\n"
    )
    print(
        "ms: wall clock of the request in-process; CPU: this process (Django, templates); SQL: the queries as the"
        " client saw them; slowest: the slowest query.\n"
    )
    print(f"| {'page':<42} | {'ms':>6} | {'CPU ms':>6} | {'SQL ms':>6} | {'queries':>7} | {'slowest':>7} |")
    print(f"|{'-' * 44}|{'-' * 7}:|{'-' * 7}:|{'-' * 7}:|{'-' * 8}:|{'-' * 8}:|")
    slow, plans = [], []
    for name, url in pages():
        if args.only and args.only not in name:
            continue
        result = measure(client, url, args.runs)
        flag = "" if result["ms"] < TARGET_MS else "  <-- over target"
        print(
            f"| {name:<42} | {result['ms']:>6.0f} | {result['cpu_ms']:>6.0f} | {result['sql_ms']:>6.1f} | "
            f"{result['queries']:>7} | {result['slowest_ms']:>7.1f} |{flag}",
            flush=True,
        )
        if result["ms"] >= TARGET_MS:
            slow.append(name)
        if args.explain:
            plans.append((name, [explain(sql) for sql in result["job_sql"]]))
    if plans:
        print("\nEXPLAIN ANALYZE of each page's queries on the job table: execution time, scans:")
    for name, lines in plans:
        print(f"\n{name}")
        for line in lines:
            print(f"    {line}")
    print(
        f"\n{'all pages under ' + str(TARGET_MS) + ' ms' if not slow else 'over target: ' + ', '.join(slow)}"
        f" (load average {os.getloadavg()[0]:.1f} at the end)"
    )

    return 1 if slow else 0
