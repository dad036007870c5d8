"""What makes a schedule valid, with a message per field that says what is wrong.

One implementation for the model's ``clean()`` (so the admin form and ``manage.py schedules``
get it) and for code declarations (the system check and the sync on migrate).
"""

from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeGuard

from django.core.exceptions import NON_FIELD_ERRORS

from .. import conf
from ..backend import JobsBackend
from ..compat import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY, InvalidTask, Task
from ..exceptions import TaskNotFound
from ..payload import byte_size, encode
from ..registry import resolve_task
from .cron import TimingError, check_interval, get_zone, parse_cron

if TYPE_CHECKING:
    from ..models import Schedule


def validate_schedule(schedule: "Schedule") -> dict[str, list[str]]:
    """Problems of ``schedule`` (a Schedule, saved or not) by field name; {} when it is valid."""
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    for field, message in _timing_problems(schedule):
        add(field, message)
    for field, message in _payload_problems(schedule.args, schedule.kwargs):
        add(field, message)
    priority = schedule.priority  # not an int: the field's own validation says so
    if _is_int(priority) and not TASK_MIN_PRIORITY <= priority <= TASK_MAX_PRIORITY:
        add(
            "priority",
            f"Priority must be between {TASK_MIN_PRIORITY} and {TASK_MAX_PRIORITY}, got {schedule.priority}.",
        )
    task, problem = find_task(schedule.task_path)
    if problem:
        add("task_path", problem)
    elif task is not None and schedule.queue_name:  # no problem: a task
        try:
            task.get_backend().validate_task(replace(task, queue_name=schedule.queue_name))
        except InvalidTask as exc:
            add("queue_name", f"{exc} Use one of the backend's QUEUES, or leave it blank for the task's own queue.")
    return errors


def find_task(path: str) -> tuple[Task | None, str]:
    """The djjobs task at ``path``, or a message saying why there is none."""
    if not path:
        return None, "Name the task by its dotted path, e.g. myapp.tasks.send_report."
    try:
        task = resolve_task(path)
    except TaskNotFound as exc:
        return None, f"Unknown task: {exc}"
    try:
        backend = task.get_backend()
    except Exception as exc:  # noqa: BLE001 - an alias missing from TASKS, or its backend failing to load
        return None, f"Task {path} uses the backend {task.backend!r}, which cannot be loaded: {exc}"
    if not isinstance(backend, JobsBackend):
        return None, f"Task {path} uses the backend {task.backend!r}, which is not djjobs.backend.JobsBackend."
    return task, ""


def _timing_problems(schedule: "Schedule") -> Iterator[tuple[str, str]]:
    try:
        get_zone(schedule.time_zone)
    except TimingError as exc:
        yield "time_zone", str(exc)
    given = [name for name in ("cron", "interval", "run_at") if getattr(schedule, name) not in (None, "")]
    if len(given) != 1:
        which = "none is set" if not given else f"{' and '.join(given)} are set"
        yield NON_FIELD_ERRORS, f"Give exactly one of cron, interval and run once at ({which})."
    if schedule.cron:
        try:
            parse_cron(schedule.cron)
        except TimingError as exc:
            yield "cron", str(exc)
    if schedule.interval is not None:
        try:
            check_interval(schedule.interval)
        except TimingError as exc:
            yield "interval", str(exc)
    ran = schedule.last_run_at
    if schedule.run_at is not None and schedule.enabled and ran is not None and schedule.run_at <= ran:
        yield (
            "run_at",
            (
                f"This one-off already ran (for {ran:%Y-%m-%d %H:%M:%S %Z}); give it a later "
                "time to run it again, or leave it disabled."
            ),
        )


def _payload_problems(args: Any, kwargs: Any) -> Iterator[tuple[str, str]]:
    if not isinstance(args, list):
        yield "args", f'args must be a JSON list, e.g. [1, "two"]; got {type(args).__name__}.'
    if not isinstance(kwargs, dict):
        yield "kwargs", f'kwargs must be a JSON object, e.g. {{"days": 7}}; got {type(kwargs).__name__}.'
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        return
    # Encoded as enqueue() does (djjobs.lifecycle.insert.encode_payload): the same rules, the same size, and
    # the args list and the kwargs dict are the first level of DJJOBS['MAX_JSON_DEPTH'].
    size = 2
    for field, value in (("args", args), ("kwargs", kwargs)):
        try:
            size += byte_size(encode(value, "Task arguments"))
        except ValueError as exc:
            yield field, str(exc)
            return
    limit = conf.get("MAX_PAYLOAD_BYTES")
    if _is_int(limit) and size > limit:  # not an int: djjobs.E301 reports the setting
        yield "args", f"args and kwargs are {size} bytes encoded; the limit is {limit} (DJJOBS['MAX_PAYLOAD_BYTES'])."


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
