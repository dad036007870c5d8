"""Finding a task from the dotted path stored on a job, cached per path."""

from functools import lru_cache

from django.utils.module_loading import import_string

from .compat import Task
from .exceptions import TaskNotFound


@lru_cache(maxsize=None)
def resolve_task(path: str) -> Task:
    """The Task object a job's task_path names; TaskNotFound when it no longer imports."""
    try:
        obj = import_string(path)
    except ImportError as exc:
        raise TaskNotFound(f"Task {path!r} cannot be imported: {exc}. Was it removed or renamed?") from exc
    if not isinstance(obj, Task):
        raise TaskNotFound(f"{path!r} is not a task (decorate it with @djjobs.task).")
    return obj
