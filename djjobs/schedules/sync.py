"""Code-declared schedules: ``@task(schedule="*/5 * * * *")`` and ``DJJOBS["SCHEDULES"]``,
written to the database after every ``migrate`` (post_migrate).

- A declaration that has no row yet is created, marked code-managed.
- A code-managed row takes the declaration's new values, field by field, except the fields an
  admin changed (they differ from the last declaration synced): those are *overridden* and
  kept, and the admin shows them as such. ``reset()`` puts the declaration back.
- A code-managed row no longer declared is deleted (its jobs stay), unless an admin changed
  it: then it becomes an ordinary admin-managed schedule.
- Rows made in the admin are never touched; a declaration with the same name is reported.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.apps import AppConfig
from django.core.exceptions import ValidationError
from django.db import connections, router
from django.utils.dateparse import parse_datetime

from .. import conf
from ..models import Schedule
from ..registry import declared_tasks
from .cron import TimingError, get_zone, localize

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

    from ..models import Schedule

logger = logging.getLogger("djjobs")

KEYS = {
    "task",
    "cron",
    "interval",
    "run_at",
    "time_zone",
    "args",
    "kwargs",
    "queue_name",
    "priority",
    "overlap",
    "misfire",
    "description",
    "enabled",
}


@dataclass(frozen=True)
class Declaration:
    name: str
    source: str  # where it is declared, for messages
    values: dict  # Schedule field values


@dataclass
class Report:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    overridden: list[str] = field(default_factory=list)  # kept admin edits
    deleted: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)  # no longer declared, kept as admin-managed
    conflicts: list[str] = field(default_factory=list)  # an admin-made row has the declared name

    def lines(self) -> list[str]:
        labels = [
            ("created", self.created),
            ("updated", self.updated),
            ("kept admin changes of", self.overridden),
            ("deleted (no longer declared)", self.deleted),
            ("released to the admin (no longer declared, changed in the admin)", self.released),
            ("not synced (an admin-made schedule has the name)", self.conflicts),
        ]
        return [f"  Schedules {label}: {', '.join(names)}" for label, names in labels if names]


def declarations() -> tuple[list[Declaration], list[str]]:
    """Every schedule declared in code, and the problems of those that cannot be read."""
    found: dict[str, Declaration] = {}
    problems = []
    for path, task in sorted(declared_tasks().items()):
        spec = getattr(task, "schedule", None)
        if spec is None:
            continue
        source = f"@task(schedule={spec!r}) on {path}"
        if isinstance(spec, bool) or not isinstance(spec, (str, int)):
            problems.append(f"{source}: schedule must be a cron string (or an interval in seconds).")
            continue
        timing = {"interval": spec} if isinstance(spec, int) else {"cron": spec}
        found[path] = Declaration(path, source, {"task_path": path, **timing})
    entries = conf.get("SCHEDULES") or {}
    if not isinstance(entries, dict):
        return list(found.values()), [*problems, "DJJOBS['SCHEDULES'] must be a dict of {name: {...}}."]
    for name, spec in entries.items():
        declaration, problem = _from_setting(name, spec)
        if problem:
            problems.append(problem)
        elif name in found:
            problems.append(f"DJJOBS['SCHEDULES'][{name!r}]: the name is taken by {found[name].source}.")
        elif declaration is not None:  # no problem: a declaration
            found[name] = declaration
    return list(found.values()), problems


def _declared_names() -> set[str]:
    entries = conf.get("SCHEDULES") or {}
    names = set(entries) if isinstance(entries, dict) else set()
    return names | {path for path, task in declared_tasks().items() if getattr(task, "schedule", None) is not None}


def _from_setting(name: Any, spec: Any) -> tuple[Declaration | None, str]:
    source = f"DJJOBS['SCHEDULES'][{name!r}]"
    if not isinstance(name, str) or not name or len(name) > 255:
        return None, f"{source}: the name must be a string of 1 to 255 characters."
    if not isinstance(spec, dict):
        return None, f"{source} must be a dict such as {{'task': 'app.tasks.f', 'cron': '0 2 * * *'}}."
    unknown = set(spec) - KEYS
    if unknown:
        return None, f"{source}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(KEYS))}."
    if "task" not in spec:
        return None, f"{source}: 'task' (the task's dotted path) is required."
    values = {("task_path" if key == "task" else key): value for key, value in spec.items()}
    if isinstance(values.get("run_at"), str):
        parsed = parse_datetime(values["run_at"])
        if parsed is None:
            return None, f"{source}: run_at {values['run_at']!r} is not an ISO date and time (2030-01-01T09:00)."
        values["run_at"] = parsed
    if values.get("run_at") is not None and not isinstance(values["run_at"], datetime):
        return None, f"{source}: run_at must be a datetime or an ISO string, got {values['run_at']!r}."
    return Declaration(name, source, values), ""


def build(declaration: Declaration) -> "Schedule":
    """An unsaved Schedule holding the declaration (naive run_at read in its time zone)."""
    schedule = Schedule(name=declaration.name, code_managed=True, **declaration.values)
    if schedule.run_at is not None and schedule.run_at.tzinfo is None:
        try:
            schedule.run_at = localize(schedule.run_at, get_zone(schedule.time_zone))
        except TimingError:
            pass  # validation reports the zone
    return schedule


def problems() -> list[str]:
    """Every problem of the declarations, each naming its declaration (for the system check)."""
    found, messages = declarations()
    for declaration in found:
        try:
            build(declaration).full_clean(exclude=["name"], validate_unique=False, validate_constraints=False)
        except ValidationError as exc:
            details = "; ".join(
                f"{'' if key == '__all__' else key + ': '}{' '.join(errors)}"
                for key, errors in exc.message_dict.items()
            )
            messages.append(f"{declaration.source}: {details}")
    return messages


def sync(using: str = "default") -> Report:
    """Write the valid declarations to the database ``using`` (see the module docstring)."""
    report = Report()
    found, _ = declarations()
    rows = {row.name: row for row in Schedule.objects.using(using).filter(name__in=[d.name for d in found])}
    for declaration in found:
        wanted = build(declaration)
        try:
            wanted.full_clean(exclude=["name"], validate_unique=False, validate_constraints=False)
        except ValidationError as exc:  # the system check (djjobs.E201) reports it
            logger.error("%s is not synced: %s", declaration.source, exc)
            continue
        _apply(rows.get(declaration.name), wanted, using, report)
    declared = _declared_names()  # an invalid declaration keeps its row until it is fixed
    for row in Schedule.objects.using(using).code_managed().exclude(name__in=declared):
        if row.overridden_fields():
            Schedule.objects.using(using).filter(pk=row.pk).update(code_managed=False)
            report.released.append(row.name)
        else:
            row.delete()
            report.deleted.append(row.name)
    return report


def _apply(row: "Schedule | None", wanted: "Schedule", using: str, report: Report) -> None:
    definition = wanted.definition()
    if row is None:
        wanted.code_definition = definition
        wanted.save(using=using, force_insert=True)
        report.created.append(wanted.name)
        return
    if not row.code_managed:
        report.conflicts.append(row.name)
        return
    mine, before = row.definition(), row.code_definition or {}
    kept = [name for name in definition if mine.get(name) != before.get(name)]
    changed = [name for name in definition if name not in kept and mine.get(name) != definition[name]]
    for name in changed:
        setattr(row, name, getattr(wanted, name))
    if "run_at" in changed:  # a new one-off time: it runs again
        row.enabled = wanted.enabled
        changed.append("enabled")
    if changed or before != definition:
        row.code_definition = definition
        # Only these columns: a worker may be firing the schedule during the deploy.
        row.save(using=using, update_fields=[*changed, "code_definition", "updated_at"])
        if changed:
            report.updated.append(row.name)
    if kept:
        report.overridden.append(f"{row.name} ({', '.join(kept)})")


def reset(schedule: "Schedule") -> None:
    """Put a code-managed schedule back to its declaration, dropping the admin's changes."""
    if not schedule.code_managed or not schedule.code_definition:
        raise ValueError(f"schedule {schedule.name!r} is not declared in code")
    found = {d.name: d for d in declarations()[0]}
    if schedule.name not in found:
        raise ValueError(f"schedule {schedule.name!r} is no longer declared in code")
    wanted = build(found[schedule.name])
    for name in wanted.definition():
        setattr(schedule, name, getattr(wanted, name))
    schedule.code_definition = wanted.definition()
    schedule.save(update_fields=[*wanted.definition(), "code_definition", "updated_at"])


def on_post_migrate(
    sender: AppConfig,
    using: str = "default",
    verbosity: int = 1,
    stdout: "SupportsWrite[str] | None" = None,
    **kwargs: Any,
) -> None:
    """post_migrate receiver (connected in DjjobsConfig.ready)."""
    if not router.allow_migrate_model(using, Schedule):
        return
    if Schedule._meta.db_table not in connections[using].introspection.table_names():
        return  # migrated back past 0003
    report = sync(using)
    if verbosity >= 1 and stdout is not None:
        for line in report.lines():
            stdout.write(line + "\n")
