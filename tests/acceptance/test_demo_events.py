"""The demo's trigger and endpoints, as a user sees them: an order's page follows its receipt job."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="the demo runs on SQLite; checked in the SQLite run"
)

ORDER_SCRIPT = r"""
import json, re, django
django.setup()
from django.test import Client
from demo_project.shop.models import Order, Product
from djjobs.models import Job

client = Client()
product = Product.objects.first()
response = client.post("/orders/", {"product": product.pk, "quantity": 1, "email": "a@example.com"})
order = Order.objects.latest("pk")
assert response.status_code == 302 and response["Location"] == f"/orders/{order.pk}/", response
job = Job.objects.get(pk=order.receipt_job_id)
assert job.trigger == "shop.Order.create:demo_project.shop.tasks.send_receipt", job.trigger
page = client.get(response["Location"]).content.decode()
url = json.loads(re.search(r'<script id="status-url" type="application/json">(.*?)</script>', page).group(1))
assert url.startswith(f"/jobs/{job.pk}/?token="), url
status = Client().get(url)  # a visitor: no login
assert status.status_code == 200 and status.json()["status"] == "READY", status.content
assert Client().get(f"/jobs/{job.pk}/").status_code == 403  # without the signature
print(json.dumps({"url": url}))
"""

STATUS_SCRIPT = r"""
import json, sys, django
django.setup()
from django.test import Client
status = Client().get(sys.argv[1])
health = Client().get("/jobs/health/")
print(json.dumps({"job": status.json(), "health": health.status_code, "health_keys": sorted(health.json())}))
"""


def _run(args, env):
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_order_page_follows_the_receipt_job_through_its_status_url(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "demo_project.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("DJJOBS_TEST_DB_NAME", None)
    _run([sys.executable, "manage.py", "migrate", "--noinput"], env)
    _run([sys.executable, "manage.py", "demo_setup"], env)
    url = json.loads(_run([sys.executable, "-c", ORDER_SCRIPT], env).strip().splitlines()[-1])["url"]
    _run([sys.executable, "manage.py", "run_workers", "--burst", "-v", "0"], env)
    seen = json.loads(_run([sys.executable, "-c", STATUS_SCRIPT, url], env).strip().splitlines()[-1])
    assert seen["job"]["status"] == "SUCCESSFUL" and seen["job"]["progress"] == 100.0
    assert seen["job"]["progress_message"] == "sent" and seen["job"]["finished"] is True
    assert seen["health"] == 503  # the --burst worker has stopped: nobody heartbeats any more
    assert "workers" in seen["health_keys"]
