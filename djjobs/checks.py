"""System checks for djjobs. Ids are stable: djjobs.E001..., djjobs.W001...

The backend's own (djjobs.E001, E002, W001, W002: djjobs installed, a database it supports,
configured for it) are JobsBackend.check(), which Django runs with these."""

import inspect
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.db import models

from . import conf, triggers
from .backend import JobsBackend
from .compat import Task
from .registry import declared_tasks
from .schedules.sync import problems

# -- settings (djjobs.E300..., djjobs.W301...) -------------------------------------------------

# Reported by their own checks: HTTP_TOKENS by check_http_tokens, SCHEDULES by check_schedules.
_OWN_CHECK_IDS = {"djjobs.E104", "djjobs.E202"}


@checks.register()
def check_settings(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """DJJOBS is a dict, each of its keys is known and has a valid value (djjobs.conf.RULES)."""
    return [
        (checks.Error if problem.is_error else checks.Warning)(problem.message, hint=problem.hint, id=problem.id)
        for problem in conf.validate(getattr(settings, "DJJOBS", {}))
        if problem.id not in _OWN_CHECK_IDS
    ]


# -- triggers, events and HTTP endpoints (djjobs.E101..., djjobs.W101...) --------------------------


@checks.register()
def check_triggers(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
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
