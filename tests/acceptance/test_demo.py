"""The demo project, as `make demo` runs it: check, migrate, demo_setup, pages, and its jobs.

It runs in subprocesses with its own SQLite file, like a new user's first minutes.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="the demo runs on SQLite; checked in the SQLite run"
)

CLIENT_SCRIPT = r"""
import django
django.setup()
from django.test import Client
from demo_project.shop.models import Order, Product
from djjobs.models import Job

client = Client()
assert client.get("/").status_code == 200
product = Product.objects.first()
response = client.post("/orders/", {"product": product.pk, "quantity": 2, "email": "a@example.com"})
assert response.status_code == 302, response.status_code
assert client.post("/orders/", {"product": product.pk, "quantity": 0, "email": "x"}).status_code == 400
assert client.post("/jobs/report/", {"days": 1}).status_code == 302
assert client.post("/jobs/flaky/").status_code == 302
assert client.post("/jobs/poison/").status_code == 302
assert client.post("/jobs/fulfilment/").status_code == 302
page = client.get("/jobs/").content.decode()
assert 'http-equiv="refresh"' in page and "send_receipt" in page
order = Order.objects.latest("pk")
# Job ids link to the job's admin page, in the flash messages and on /jobs/ (issue 18, defect 14).
report = Job.objects.get(task_path__endswith=".build_report")
assert f'enqueued as job <a href="/admin/djjobs/job/{report.pk}/change/">{report.pk}</a>' in page  # flash message
assert f'<a class="muted" href="/admin/djjobs/job/{order.receipt_job_id}/change/">' in page  # the table
assert '<a href="/admin/djjobs/workflowrun/' in page  # the workflow run's flash message
assert client.get("/favicon.ico").status_code == 204 and 'rel="icon"' in page
Job.objects.filter(pk=order.receipt_job_id).update(status="SUCCESSFUL", return_value={"sent": True, "to": None})
assert "<code>{&quot;sent&quot;: true, &quot;to&quot;: null}</code>" in client.get("/jobs/").content.decode()
Job.objects.filter(pk=order.receipt_job_id).update(status="READY", return_value=None)
assert Job.objects.filter(pk=order.receipt_job_id, status="READY").exists()
print("client ok", Job.objects.count())
"""

STATUS_SCRIPT = r"""
import django
django.setup()
from djjobs.models import Job
# The jobs the client caused; the demo's schedules (an every-minute clean-up) may fire meanwhile.
print(",".join(sorted(f"{j.task_name}={j.status}:{j.attempts}"
                      for j in Job.objects.filter(schedule=None, workflow_run=None))))
"""

RUNS_SCRIPT = r"""
import django
django.setup()
from djjobs.models import Job, WorkflowRun
runs = WorkflowRun.objects.order_by("created_at")
print(";".join(f"{r.name}={r.status}" for r in runs))
declined = WorkflowRun.objects.get(input__order_ref="DEMO-2")
print(",".join(sorted(f"{j.workflow_step}/{j.workflow_role}={j.status}" for j in Job.objects.filter(workflow_run=declined))))
"""


def _run(args, env, timeout=60):
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_demo_end_to_end(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "demo_project.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("DJJOBS_TEST_DB_NAME", None)
    manage = [sys.executable, "manage.py"]
    assert "no issues" in _run([*manage, "check"], env)
    assert "Schedules created: demo_project.shop.tasks.clean_up, nightly-report" in _run(
        [*manage, "migrate", "--noinput"], env
    )
    first = _run([*manage, "demo_setup"], env)
    assert "admin" in first and "http://127.0.0.1:8000/admin/" in first
    _run([*manage, "demo_setup"], env)  # idempotent
    listed = _run([*manage, "schedules"], env)  # the nightly report, the clean-up and the one-off reminder
    assert "At 02:00, every day (Europe/London)" in listed and "Every minute (UTC)" in listed and "Once, at" in listed
    assert "Started two 'fulfilment' workflow runs" in first
    assert "client ok" in _run([sys.executable, "-c", CLIENT_SCRIPT], env)

    # Retries of the flaky and poison jobs come due after their backoff: burst until settled.
    expected = {"build_report=SUCCESSFUL:1", "flaky_sync=SUCCESSFUL:3", "poison=FAILED:3", "send_receipt=SUCCESSFUL:1"}
    deadline = time.monotonic() + 90
    while True:
        _run([*manage, "run_workers", "--burst", "-v", "0"], env)
        statuses = set(_run([sys.executable, "-c", STATUS_SCRIPT], env).strip().split(","))
        runs = _run([sys.executable, "-c", RUNS_SCRIPT], env).strip().splitlines()
        if (
            statuses == expected and runs[0] == "fulfilment=SUCCESSFUL;fulfilment=COMPENSATED;fulfilment=SUCCESSFUL"
        ) or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # a retry's backoff (0.5-2 s) must pass before the next burst
    assert statuses == expected
    # The demo's workflow runs: DEMO-1 shipped; DEMO-2's card was declined (twice: two
    # attempts) and its reservation released; the one started from the page shipped.
    assert runs[0] == "fulfilment=SUCCESSFUL;fulfilment=COMPENSATED;fulfilment=SUCCESSFUL"
    assert set(runs[1].split(",")) == {
        "charge/step=FAILED",
        "packing_slip/step=SUCCESSFUL",
        "ship/step=CANCELLED",
        "reserve/step=SUCCESSFUL",
        "reserve/compensate=SUCCESSFUL",
    }
