"""Provenance: stamp a job with what caused it (an event, a trigger) in the INSERT that creates it.

``task.enqueue()`` stays the one way a job is inserted (validation, unique keys, signals); while
``stamping(task_path, **fields)`` is active, the Job row that enqueue inserts for that task gets
``fields`` set by a pre_save receiver, so no extra query is needed.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_stamp: ContextVar[tuple[str, dict[str, Any]] | None] = ContextVar("djjobs_stamp", default=None)


@contextmanager
def stamping(task_path: str, **fields: Any) -> Iterator[None]:
    """Jobs of ``task_path`` inserted inside this block get ``fields`` (e.g. event_id, trigger)."""
    token = _stamp.set((task_path, fields))
    try:
        yield
    finally:
        _stamp.reset(token)


def stamp_job(sender, instance, raw=False, **kwargs) -> None:
    """pre_save receiver of Job: apply the active stamp to a new row of the stamped task."""
    stamp = _stamp.get()
    if stamp is None or raw or not instance._state.adding or instance.task_path != stamp[0]:
        return
    for name, value in stamp[1].items():
        setattr(instance, name, value)


def connect() -> None:
    from django.db.models.signals import pre_save

    from .models import Job

    pre_save.connect(stamp_job, sender=Job, dispatch_uid="djjobs.provenance.stamp_job")
