"""Named events (choreography): ``publish()`` inserts one job per subscribed task.

A task subscribes with ``@task(subscribe="order.validated")`` (or a tuple of names) and is
called with ``event={"name", "payload", "id", "occurred_at"}``. The Event row and its jobs are
inserted in the caller's transaction: roll back and neither exists. An event published from a
running job records that job as its cause, so a chain of reactions can be followed back.
"""

from collections.abc import Iterable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import IntegrityError, router, transaction

from .. import conf
from ..compat import Task, TaskResult
from ..context import current_job_id
from ..models import Event
from ..payload import storable, to_json
from ..provenance import stamping
from ..registry import declared_tasks


class InvalidEvent(ValueError):
    """publish() was given a bad name, payload or idempotency key; nothing was written."""


class Published(list[TaskResult]):
    """The TaskResults of one publish(), one per subscriber; ``event`` is the Event row.

    ``duplicate`` is True when the idempotency key was already used: then nothing new was
    inserted and the list holds the jobs the first publication enqueued.
    """

    def __init__(self, results: Iterable[TaskResult], event: Event, duplicate: bool = False) -> None:
        super().__init__(results)
        self.event = event
        self.duplicate = duplicate


def subscribers(name: str) -> list[Task]:
    """The declared tasks subscribed to ``name``, by dotted path."""
    found: list[Task] = []
    for _path, task in sorted(declared_tasks().items()):
        names = getattr(task, "subscribe", None) or ()
        if name in ((names,) if isinstance(names, str) else names):
            found.append(task)
    return found


def publish(name: str, payload: Any = None, idempotency_key: str | None = None) -> Published:
    """Record the event ``name`` and enqueue one job per subscriber, in the caller's transaction."""
    payload = _validate(name, payload, idempotency_key)
    tasks = subscribers(name)
    event = Event(
        name=name,
        payload=payload,
        idempotency_key=idempotency_key,
        cause_job_id=current_job_id.get(),
        subscribers=[t.module_path for t in tasks],
    )
    with transaction.atomic(using=router.db_for_write(Event)):
        first = _insert(event)
        if first is not event:
            return Published([job.to_task_result() for job in first.jobs.order_by("task_path")], first, True)
        return Published([_enqueue(task, event) for task in tasks], event)


async def apublish(name: str, payload: Any = None, idempotency_key: str | None = None) -> Published:
    return await sync_to_async(publish)(name, payload, idempotency_key)


def _insert(event: Event) -> Event:
    """Insert ``event``; with an idempotency key already used, return the first event instead."""
    if event.idempotency_key is None:
        event.save(force_insert=True)
        return event
    try:
        with transaction.atomic(using=router.db_for_write(Event)):
            event.save(force_insert=True)
        return event
    except IntegrityError:
        return Event.objects.get(name=event.name, idempotency_key=event.idempotency_key)


def _enqueue(task: Task, event: Event) -> TaskResult:
    with stamping(task.module_path, event_id=event.pk):
        return task.enqueue(event=event.as_argument())


def _validate(name: str, payload: Any, key: str | None) -> Any:
    if not isinstance(name, str) or not name or len(name) > 200 or not storable(name):
        raise InvalidEvent(
            f"An event name is a non-empty string of at most 200 characters, without NUL "
            f"or lone surrogates, got {name!r}."
        )
    if key is not None and (not isinstance(key, str) or not key or len(key) > 255 or not storable(key)):
        raise InvalidEvent(
            f"idempotency_key must be a non-empty string of at most 255 characters, without "
            f"NUL or lone surrogates, got {key!r}."
        )
    payload = {} if payload is None else payload
    # Subscribers get the payload two levels down (kwargs {"event": {"payload": ...}}), and
    # DJJOBS['MAX_JSON_DEPTH'] applies to their kwargs: refuse here what their enqueue would.
    try:
        payload, size = to_json(payload, "An event payload", nested=2)
    except ValueError as exc:
        if " is nested more than " not in str(exc):  # not the depth: the message says what
            raise InvalidEvent(str(exc)) from None
        depth = conf.get("MAX_JSON_DEPTH")
        raise InvalidEvent(
            f"An event payload is nested more than {depth - 2} levels deep: subscribers get it "
            f"inside their event= argument, two levels down, and DJJOBS['MAX_JSON_DEPTH'] "
            f"({depth}) applies to that."
        ) from None
    limit = conf.get("MAX_PAYLOAD_BYTES")
    if size > limit:
        raise InvalidEvent(f"The payload is {size} bytes encoded; the limit is {limit} (DJJOBS['MAX_PAYLOAD_BYTES']).")
    return payload
