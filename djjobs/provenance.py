"""Provenance: stamp a job with what caused it (an event, a trigger) in the INSERT that creates it.

``task.enqueue()`` stays the one way a job is inserted (validation, unique keys, signals); while
``stamping(task_path, **fields)`` is active, the Job rows that enqueue (and enqueue_many) insert
for that task get ``fields``: the backend adds ``stamped_fields()`` to the columns it writes, and
a pre_save receiver does the same for rows saved through the ORM, so no extra query is needed.
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


def stamped_fields(task_path: str) -> dict[str, Any]:
    """The fields the active stamp gives to a new job of ``task_path`` (usually none)."""
    stamp = _stamp.get()
    return stamp[1] if stamp is not None and stamp[0] == task_path else {}


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
