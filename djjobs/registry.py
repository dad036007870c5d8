"""Finding a task from the dotted path stored on a job, cached per path; and every declared task."""

from functools import cache

from django.utils.module_loading import import_string

from .compat import Task
from .exceptions import TaskNotFound


@cache
def resolve_task(path: str) -> Task:
    """The Task object a job's task_path names; TaskNotFound when it no longer imports."""
    try:
        obj = import_string(path)
    except ImportError as exc:
        raise TaskNotFound(f"Task {path!r} cannot be imported: {exc}. Was it removed or renamed?") from exc
    if not isinstance(obj, Task):
        raise TaskNotFound(f"{path!r} is not a task (decorate it with @djjobs.task).")
    return obj


# Every JobTask as declared (the first one made for a function; ``using()`` copies are not
# declarations), by dotted path: schedules, event subscriptions and the HTTP endpoint read it.
_declared: dict[str, Task] = {}


def declare(task: Task) -> None:
    _declared.setdefault(task.module_path, task)


def declared_tasks() -> dict[str, Task]:
    """Declared tasks by dotted path. Only tasks whose modules were imported are known: import
    them in ``AppConfig.ready()`` (djjobs imports each installed app's ``tasks`` module)."""
    return dict(_declared)
