"""System checks for djjobs. Ids are stable: djjobs.E001..., djjobs.W001..."""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.apps import AppConfig, apps
from django.core import checks
from django.db import connections, models, router

from .compat import Task

if TYPE_CHECKING:
    from .backend import JobsBackend

SQLITE_OPTIONS = {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}


def check_backend(backend: "JobsBackend") -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
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
                hint=f"Set DATABASES[{connection.alias!r}]['OPTIONS'] = {SQLITE_OPTIONS} (djjobs docs, tutorial/first-task.md, 'SQLite').",
                id="djjobs.W001",
            )
        )
    if connection.vendor == "sqlite" and str(options.get("transaction_mode", "")).upper() != "IMMEDIATE":
        errors.append(
            checks.Warning(
                "SQLite transactions are DEFERRED: one that reads and then writes fails at once with "
                "'database is locked' when another process wrote meanwhile (the busy timeout does not help).",
                hint=f"Set DATABASES[{connection.alias!r}]['OPTIONS'] = {SQLITE_OPTIONS} (djjobs docs, tutorial/first-task.md, 'SQLite').",
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


# -- settings (djjobs.E300..., djjobs.W301...) -------------------------------------------------

# Reported by their own checks: HTTP_TOKENS by check_http_tokens, SCHEDULES by check_schedules.
_OWN_CHECK_IDS = {"djjobs.E104", "djjobs.E202"}


@checks.register()
def check_settings(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """DJJOBS is a dict, each of its keys is known and has a valid value (djjobs.conf.RULES)."""
    from django.conf import settings

    from . import conf

    return [
        (checks.Error if problem.is_error else checks.Warning)(problem.message, hint=problem.hint, id=problem.id)
        for problem in conf.validate(getattr(settings, "DJJOBS", {}))
        if problem.id not in _OWN_CHECK_IDS
    ]


# -- triggers, events and HTTP endpoints (djjobs.E101..., djjobs.W101...) --------------------------


@checks.register()
def check_triggers(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from . import triggers

    errors: list[checks.CheckMessage] = []
    for trigger in triggers.registered():
        model = triggers.resolve_model(trigger)
        if model is None:
            errors.append(
                checks.Error(
                    f"Trigger {trigger.name!r} names the model {trigger.model!r}, which is not installed.",
                    hint="Pass the model class, or 'app_label.ModelName' of an app in INSTALLED_APPS.",
                    id="djjobs.E101",
                )
            )
            continue
        for field in sorted(trigger.when.fields if trigger.when is not None else ()):
            if not _has_field(model, field):
                errors.append(
                    checks.Error(
                        f"Trigger {trigger.name!r}: changed({field!r}) names no field of {model._meta.label}.",
                        hint="Name a concrete field of the model (a ForeignKey by its name or its attname).",
                        id="djjobs.E102",
                    )
                )
        errors.extend(_backend_warning(trigger.task, f"Trigger {trigger.name!r}"))
    return errors


@checks.register()
def check_subscribers(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    import inspect

    from .registry import declared_tasks

    errors: list[checks.CheckMessage] = []
    for path, task in sorted(declared_tasks().items()):
        subscribe = getattr(task, "subscribe", None)
        if not subscribe:
            continue
        try:
            parameters = inspect.signature(task.func).parameters
        except (TypeError, ValueError):  # pragma: no cover - builtins
            continue
        accepts = "event" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        if not accepts:
            errors.append(
                checks.Error(
                    f"Task {path} subscribes to {subscribe!r} but takes no 'event' argument.",
                    hint="Subscribers are called with event={'name', 'payload', 'id', 'occurred_at'}: add an 'event' parameter.",
                    id="djjobs.E103",
                )
            )
        errors.extend(_backend_warning(task, f"Subscriber {path}"))
    return errors


@checks.register()
def check_http_tokens(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from . import conf

    tokens = conf.get("HTTP_TOKENS")
    problem = conf.check("HTTP_TOKENS", tokens)
    if problem is not None:
        return [
            checks.Error(
                problem.message,
                hint="A dict of {token: username}, e.g. "
                "{env('JOBS_API_TOKEN'): 'api-bot'}; keep tokens out of the code.",
                id=problem.id,
            )
        ]
    if any(len(token) < 32 for token in tokens or ()):
        return [
            checks.Warning(
                "A token in DJJOBS['HTTP_TOKENS'] is shorter than 32 characters: it can be guessed.",
                hint="Generate tokens with: python -c 'import secrets; print(secrets.token_urlsafe(32))'.",
                id="djjobs.W101",
            )
        ]
    return []


def _has_field(model: type[models.Model], name: str) -> bool:
    return any(name in (f.name, f.attname) for f in model._meta.concrete_fields)


def _backend_warning(task: Task, what: str) -> list[checks.CheckMessage]:
    from .backend import JobsBackend

    try:
        backend = task.get_backend()
    except Exception:  # noqa: BLE001 - an unknown alias is reported by Django's own checks
        return []
    if isinstance(backend, JobsBackend):
        return []
    return [
        checks.Warning(
            f"{what} enqueues {task.module_path} on backend {task.backend!r}, which is not djjobs: "
            "its job is not inserted in the writer's transaction.",
            hint="Give the task a backend whose BACKEND is djjobs.backend.JobsBackend.",
            id="djjobs.W102",
        )
    ]


# -- schedules (djjobs.E201...) ----------------------------------------------------------------


@checks.register()
def check_schedules(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Code-declared schedules (@task(schedule=...), DJJOBS['SCHEDULES']) that migrate cannot sync."""
    from . import conf
    from .schedules.sync import problems

    if any(conf.check(key, conf.get(key)) for key in ("MAX_PAYLOAD_BYTES", "MAX_JSON_DEPTH")):
        return []  # djjobs.E301 reports the setting the declarations are checked against
    errors: list[checks.CheckMessage] = []
    for message in problems():
        if message.startswith("DJJOBS['SCHEDULES'] must be"):
            errors.append(
                checks.Error(
                    message,
                    hint="For example {'nightly': {'task': 'app.tasks.report', "
                    "'cron': '0 2 * * *'}} (docs/schedules.md).",
                    id="djjobs.E202",
                )
            )
        else:
            errors.append(
                checks.Error(
                    message,
                    hint="Fix the declaration; until then migrate does not create or update that schedule.",
                    id="djjobs.E201",
                )
            )
    return errors
