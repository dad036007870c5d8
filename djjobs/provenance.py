"""Provenance: stamp a job with what caused it (an event, a trigger) in the INSERT that creates it.

``task.enqueue()`` stays the one way an event's or a trigger's job is inserted (validation,
unique keys, signals); while ``stamping(task_path, **fields)`` is active, the jobs of that task
that the insert path (djjobs.lifecycle.insert) writes get ``fields``: it adds
``stamped_fields()`` to the columns of every job it inserts, whichever write it uses (the plain
INSERT, COPY, or the ORM for a unique job), so no extra query is needed. Schedules and
workflows set their own columns (schedule_id, workflow_run_id...) through the same path.
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
