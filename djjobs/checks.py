"""System checks for djjobs. Ids are stable: djjobs.E001..., djjobs.W001..."""

from django.apps import apps
from django.core import checks
from django.db import connections, router


SQLITE_OPTIONS = {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}


def check_backend(backend) -> list[checks.CheckMessage]:
    errors = []
    if not apps.is_installed("djjobs"):
        errors.append(
            checks.Error(
                f"TASKS[{backend.alias!r}] uses djjobs.backend.JobsBackend but 'djjobs' is not installed.",
                hint="Add 'djjobs' to INSTALLED_APPS and run migrate.",
                id="djjobs.E001",
            )
        )
        return errors
    from .models import Job

    connection = connections[router.db_for_write(Job)]
    options = connection.settings_dict.get("OPTIONS", {})
    if connection.vendor == "sqlite" and not options.get("timeout"):
        errors.append(
            checks.Warning(
                "SQLite without a busy timeout: workers and web requests will see 'database is locked'.",
                hint=f"Set DATABASES[{connection.alias!r}]['OPTIONS'] = {SQLITE_OPTIONS} (djjobs README, 'SQLite').",
                id="djjobs.W001",
            )
        )
    if connection.vendor == "sqlite" and str(options.get("transaction_mode", "")).upper() != "IMMEDIATE":
        errors.append(
            checks.Warning(
                "SQLite transactions are DEFERRED: one that reads and then writes fails at once with "
                "'database is locked' when another process wrote meanwhile (the busy timeout does not help).",
                hint=f"Set DATABASES[{connection.alias!r}]['OPTIONS'] = {SQLITE_OPTIONS} (djjobs README, 'SQLite').",
                id="djjobs.W002",
            )
        )
    if connection.vendor not in ("sqlite", "postgresql"):
        errors.append(
            checks.Error(
                f"djjobs supports PostgreSQL and SQLite, not {connection.vendor}.",
                hint="Route djjobs' models to a PostgreSQL or SQLite database.",
                id="djjobs.E002",
            )
        )
    return errors
