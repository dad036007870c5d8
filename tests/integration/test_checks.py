"""System checks: stable ids, messages that say how to fix."""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.test import override_settings

from djjobs.compat import task_backends
from djjobs.worker.runner import Runner
from djjobs.worker.supervisor import Supervisor

ROOT = Path(__file__).resolve().parents[2]


def _ids():
    return [m.id for m in task_backends["default"].check()]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite options")
def test_recommended_sqlite_options_pass():
    assert _ids() == []


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite options")
def test_sqlite_without_timeout_or_immediate_warns(monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", {})
    messages = task_backends["default"].check()
    assert [m.id for m in messages] == ["djjobs.W001", "djjobs.W002"]
    assert "transaction_mode" in messages[1].hint


@pytest.mark.skipif(connection.vendor != "mysql", reason="MariaDB/MySQL options")
def test_recommended_mysql_options_pass():
    assert _ids() == []


@pytest.mark.skipif(connection.vendor != "mysql", reason="MariaDB/MySQL options")
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"charset": "utf8mb4"}, []),  # Django's default level is READ COMMITTED
        ({"charset": "utf8mb4", "isolation_level": "repeatable read"}, ["djjobs.W003"]),
        ({}, ["djjobs.W004"]),  # Django's default charset is utf8 (utf8mb3)
        ({"charset": "utf8", "isolation_level": "serializable"}, ["djjobs.W003", "djjobs.W004"]),
    ],
)
def test_mysql_isolation_level_and_charset_warn(monkeypatch, options, expected):
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", options)
    messages = task_backends["default"].check()
    assert [m.id for m in messages] == expected
    assert all("OPTIONS" in m.hint for m in messages)


def test_missing_app_is_an_error():
    installed = ["django.contrib.contenttypes", "django.contrib.auth"]
    with override_settings(INSTALLED_APPS=installed):
        messages = task_backends["default"].check()
    assert [m.id for m in messages] == ["djjobs.E001"]
    assert "INSTALLED_APPS" in messages[0].hint


# -- DJJOBS settings: checked at check, migrate, runserver and run_workers -----------------------

# The reproductions of issue 13: `manage.py check` passed (or crashed) with each of them.
DANGEROUS = [
    ("LEASE_SECONDS", -1),
    ("LEASE_SECONDS", 0),
    ("LEASE_SECONDS", "30"),
    ("HEARTBEAT_INTERVAL", 0),
    ("HEARTBEAT_INTERVAL", "x"),
    ("HEARTBEAT_INTERVAL", 30),
    ("POLL_INTERVAL", -1),
    ("POLL_INTERVAL", "1"),
    ("CONCURRENCY", 0),
    ("CONCURRENCY", "4"),
    ("MAX_ATTEMPTS", 0),
    ("RETENTION_DAYS", {"SUCCESSFUL": -1}),
    ("STATUS_URL_MAX_AGE", "x"),
    ("HTTP_TOKEN_HEADER", 123),
    ("HEALTH_COUNT_LIMIT", -1),
    ("METRICS_PUBLIC", "False"),
    ("MAX_PAYLOAD_BYTES", "big"),
    ("MAX_JSON_DEPTH", "64"),
    ("MAX_RETURN_VALUE_BYTES", 0),
]


@pytest.fixture
def no_worker(monkeypatch):
    """A worker that would start fails the test instead of serving."""
    monkeypatch.setattr(Runner, "run", lambda self: pytest.fail("the worker started"))
    monkeypatch.setattr(Supervisor, "run", lambda self: pytest.fail("the supervisor started"))


@pytest.mark.parametrize("key,value", DANGEROUS)
def test_check_refuses_each_dangerous_setting_naming_key_value_and_fix(settings, key, value):
    settings.DJJOBS = {**settings.DJJOBS, key: value}
    with pytest.raises(SystemCheckError) as caught:
        call_command("check")
    text = str(caught.value)
    assert f"DJJOBS[{key!r}]" in text and repr(value) in text
    assert "HINT: " in text and ("(djjobs.E301)" in text or "(djjobs.E302)" in text)


@pytest.mark.parametrize("configured", [[], None, "LEASE_SECONDS=30"])
def test_check_reports_djjobs_that_is_not_a_dict_without_crashing(settings, configured):
    settings.DJJOBS = configured
    with pytest.raises(SystemCheckError) as caught:
        call_command("check")
    assert "(djjobs.E300) settings.DJJOBS is" in str(caught.value)
    assert "(djjobs.E301)" not in str(caught.value)  # nothing else is reported for it


def test_check_survives_wrong_types_in_schedules_and_tokens(settings):
    """Every check reading DJJOBS copes with a value of the wrong type (no TypeError)."""
    settings.DJJOBS = {
        **settings.DJJOBS,
        "MAX_PAYLOAD_BYTES": "big",
        "MAX_JSON_DEPTH": None,
        "HTTP_TOKENS": {1: None},
        "SCHEDULES": {
            "s": {"task": "tests.testapp.tasks.add", "cron": "0 2 * * *", "priority": "high", "args": [[[1]]]}
        },
    }
    with pytest.raises(SystemCheckError) as caught:
        call_command("check")
    assert "(djjobs.E104) DJJOBS['HTTP_TOKENS'] is a dict: a token is an int" in str(caught.value)
    settings.DJJOBS = {**settings.DJJOBS, "MAX_PAYLOAD_BYTES": 100, "MAX_JSON_DEPTH": 2, "HTTP_TOKENS": {}}
    with pytest.raises(SystemCheckError) as caught:
        call_command("check")
    text = str(caught.value)
    assert "(djjobs.E201) DJJOBS['SCHEDULES']['s']:" in text and "nested more than 2 levels" in text
    assert "priority" in text


def test_check_warns_about_an_unknown_key_naming_the_closest(settings):
    settings.DJJOBS = {**settings.DJJOBS, "LEASE_SECOND": 60}
    err = StringIO()
    call_command("check", stderr=err)
    assert (
        "(djjobs.W301) DJJOBS has the unknown key 'LEASE_SECOND', which is ignored: did you mean 'LEASE_SECONDS'?"
    ) in err.getvalue()
    assert "HINT: Rename it to 'LEASE_SECONDS', or remove it." in err.getvalue()


def test_a_heartbeat_over_half_the_lease_warns_unless_silenced(settings):
    settings.DJJOBS = {**settings.DJJOBS, "HEARTBEAT_INTERVAL": 20}
    err = StringIO()
    call_command("check", stderr=err)
    assert "(djjobs.W302) DJJOBS['HEARTBEAT_INTERVAL'] (20) is more than half" in err.getvalue()
    settings.SILENCED_SYSTEM_CHECKS = ["djjobs.W302"]
    out = StringIO()
    call_command("check", stdout=out, stderr=out)
    assert "djjobs.W302" not in out.getvalue() and "1 silenced" in out.getvalue()


@pytest.mark.django_db
def test_migrate_refuses_dangerous_settings(settings):
    settings.DJJOBS = {**settings.DJJOBS, "HEARTBEAT_INTERVAL": 60}
    with pytest.raises(SystemCheckError, match=r"djjobs\.E302"):
        call_command("migrate", skip_checks=False, verbosity=0)


@pytest.mark.django_db
def test_runserver_refuses_dangerous_settings(settings, monkeypatch):
    from django.core.management.commands import runserver

    served = []
    monkeypatch.setattr(runserver, "run", lambda *args, **kwargs: served.append(args))
    settings.DJJOBS = {**settings.DJJOBS, "METRICS_PUBLIC": "False"}
    with pytest.raises(SystemCheckError, match=r"DJJOBS\['METRICS_PUBLIC'\] is 'False'"):
        call_command("runserver", "127.0.0.1:0", use_reloader=False, skip_checks=False, stdout=StringIO())
    assert served == []


@pytest.mark.parametrize("skip_checks", [True, False])
def test_run_workers_refuses_to_start_with_dangerous_settings(settings, no_worker, skip_checks):
    settings.DJJOBS = {**settings.DJJOBS, "LEASE_SECONDS": 10, "HEARTBEAT_INTERVAL": 10}
    with pytest.raises(CommandError, match=r"djjobs\.E302") as caught:
        call_command("run_workers", "--burst", skip_checks=skip_checks)
    assert "HINT: Make DJJOBS['HEARTBEAT_INTERVAL'] at most a third" in str(caught.value)
    settings.DJJOBS = {**settings.DJJOBS, "LEASE_SECONDS": 10, "HEARTBEAT_INTERVAL": 5, "CONCURRENCY": 0}
    with pytest.raises(CommandError, match=r"\(djjobs\.E301\) DJJOBS\['CONCURRENCY'\] is 0"):
        call_command("run_workers", "--burst", "--processes", "2", skip_checks=skip_checks)


def test_run_workers_starts_despite_warnings(settings, monkeypatch):
    started = []
    monkeypatch.setattr(Runner, "run", lambda self: started.append(self) or 0)
    settings.DJJOBS = {**settings.DJJOBS, "LEASE_SECOND": 10, "HEARTBEAT_INTERVAL": 20}
    call_command("run_workers", "--burst")
    assert len(started) == 1


def _manage(tmp_path, djjobs: str, *argv) -> subprocess.CompletedProcess:
    """manage.py with tests.settings but DJJOBS = ``djjobs`` and a database of its own."""
    (tmp_path / "bad_settings.py").write_text(
        "from tests.settings import *  # noqa\n"
        "DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', "
        f"'NAME': {str(tmp_path / 'db.sqlite3')!r}}}}}\n"
        f"DJJOBS = {djjobs}\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "DJANGO_SETTINGS_MODULE": "bad_settings"}
    return subprocess.run(
        [sys.executable, "-m", "django", *argv], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


def test_manage_py_check_with_djjobs_a_list_is_an_error_not_a_traceback(tmp_path):
    done = _manage(tmp_path, "[]", "check")
    assert done.returncode == 1
    assert "(djjobs.E300) settings.DJJOBS is [] (a list): it must be a dict." in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("skip", [[], ["--skip-checks"]])
def test_manage_py_run_workers_refuses_to_start(tmp_path, skip):
    done = _manage(tmp_path, "{'HEARTBEAT_INTERVAL': 45, 'POLL_INTERVAL': 'x'}", "run_workers", "--burst", *skip)
    assert done.returncode == 1
    assert "djjobs.E302" in done.stderr and "DJJOBS['POLL_INTERVAL'] is 'x'" in done.stderr
    assert ("Refusing to start" in done.stderr) == bool(skip)
    assert "Traceback" not in done.stderr and "starting: queues=" not in done.stderr


# -- runtime: what the checks report is also refused where it is used ----------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("public", ["False", "True", 1, "yes"])
def test_metrics_are_not_public_unless_metrics_public_is_true(client, settings, public):
    settings.DJJOBS = {**settings.DJJOBS, "METRICS_PUBLIC": public}
    assert client.get("/jobs/metrics/").status_code == 403
    settings.DJJOBS = {**settings.DJJOBS, "METRICS_PUBLIC": True}
    assert client.get("/jobs/metrics/").status_code != 403
