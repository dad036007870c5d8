"""The tutorial's first part, replayed from its page: a new project, its files, a view, a worker.

docs/tutorial/first-task.md builds a project from an empty directory. This test does the same
in a temporary directory, in subprocesses (the project has its own settings and SQLite
database, not the test suite's): ``startproject`` and ``startapp``, the page's settings blocks
merged into the generated settings.py, every block whose first line names a file
(``# shop/tasks.py``, ``<!-- shop/templates/shop/order.html -->``) written to that file, then
``makemigrations``, ``migrate`` and ``check``, an order placed through the view, and
``run_workers --burst``, whose job must succeed and do what the task says. Part 2 (PostgreSQL,
a process manager) is tried by hand; see docs/development.md.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import django
import pytest

from .test_docs_examples import ROOT, blocks_of

PAGE = ROOT / "docs" / "tutorial" / "first-task.md"
FILE_LINE = re.compile(r"^(?:# |<!-- )(?P<path>[\w/.]+\.(?:py|html))\b")


def _run(site: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "mysite.settings"}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, *args], cwd=site, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def _replace(source: str, start: str, end: str, new: str) -> str:
    """``source`` with the statement from ``start`` to the next ``end`` replaced by ``new``."""
    a = source.index(start)
    b = source.index(end, a) + len(end)
    return source[:a] + new + source[b:]


@pytest.mark.timeout(300)
def test_the_tutorial_runs_as_written(tmp_path):
    site = tmp_path / "shop-site"
    site.mkdir()
    _run(site, "-m", "django", "startproject", "mysite", ".")
    _run(site, "manage.py", "startapp", "shop")

    # The steps, up to "7. What next" (the page goes on with the task API in more depth).
    end = next(i for i, line in enumerate(PAGE.read_text().splitlines(), 1) if line.startswith("## 7."))
    blocks = [b for b in blocks_of(PAGE) if b.line < end]

    settings = site / "mysite" / "settings.py"
    text = settings.read_text()
    written = []
    for block in blocks:
        if block.mode == "settings" and block.code.startswith("INSTALLED_APPS"):
            text = _replace(text, "INSTALLED_APPS = [", "\n]\n", block.code)
        elif block.mode == "settings" and block.code.startswith("DATABASES"):
            text = _replace(text, "DATABASES = {", "\n}\n", block.code)
        elif match := FILE_LINE.match(block.code):
            path = site / match["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.code)
            written.append(match["path"])
    if django.VERSION < (6, 1):  # the page: "on Django 6.0 and 5.2 add EMAIL_BACKEND = ..."
        text += '\nEMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"\n'
    settings.write_text(text)
    assert sorted(written) == [
        "mysite/urls.py",
        "shop/admin.py",
        "shop/models.py",
        "shop/tasks.py",
        "shop/templates/shop/order.html",
        "shop/views.py",
    ]
    assert '"djjobs"' in text and "djjobs.backend.JobsBackend" in text and "IMMEDIATE" in text

    _run(site, "manage.py", "makemigrations", "shop")
    _run(site, "manage.py", "migrate")
    assert "no issues" in _run(site, "manage.py", "check")

    placed = _run(
        site,
        "manage.py",
        "shell",
        "-c",
        "from django.test import Client; page = Client(HTTP_HOST='localhost').post("
        "'/', {'email': 'ada@example.com', 'total': '9.50'}).content.decode(); print(page)",
    )
    job_id = re.search(r"Order #1 placed: receipt job ([0-9a-f-]{36})", placed)[1]

    log = _run(site, "manage.py", "run_workers", "--burst")
    assert f"job succeeded task=shop.tasks.send_receipt id={job_id}" in log
    assert "Subject: Your order #1" in log and "To: ada@example.com" in log  # the console e-mail

    state = _run(
        site,
        "manage.py",
        "shell",
        "-c",
        "from shop.models import Order; from djjobs.models import Job; "
        f"job = Job.objects.get(pk='{job_id}'); "
        "print(job.status, job.return_value, Order.objects.get(pk=1).receipt_sent_at is not None)",
    )
    assert "SUCCESSFUL {'sent_to': 'ada@example.com'} True" in state
