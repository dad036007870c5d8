"""System checks: stable ids, messages that say how to fix."""

import pytest
from django.db import connection
from django.test import override_settings

from djjobs.checks import check_backend
from djjobs.compat import task_backends


def _ids():
    return [m.id for m in check_backend(task_backends["default"])]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite options")
def test_recommended_sqlite_options_pass():
    assert _ids() == []


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite options")
def test_sqlite_without_timeout_or_immediate_warns(monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", {})
    messages = check_backend(task_backends["default"])
    assert [m.id for m in messages] == ["djjobs.W001", "djjobs.W002"]
    assert "transaction_mode" in messages[1].hint


def test_missing_app_is_an_error():
    installed = ["django.contrib.contenttypes", "django.contrib.auth"]
    with override_settings(INSTALLED_APPS=installed):
        messages = check_backend(task_backends["default"])
    assert [m.id for m in messages] == ["djjobs.E001"]
    assert "INSTALLED_APPS" in messages[0].hint
