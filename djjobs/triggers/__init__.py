"""Model-change triggers: (model, create/update/delete, condition) -> task.

    triggers.on_create(Order, send_receipt, args=lambda order: [order.pk])
    triggers.on_update(Order, notify_shipped, when=triggers.changed("status", to="shipped"))
    triggers.on_delete(Order, purge_files, args=lambda order: [order.pk])

Each also decorates a task (put it above ``@task``). The receivers run on Django's post_save
and post_delete, so the job is inserted in the writer's transaction: roll back and there is
no job, and workers see it only once the write commits. ``changed()`` compares with the
values loaded from the database, remembered on post_init, so it costs no query for an
instance fetched normally. ``bulk_create()``, ``update()`` and raw SQL send no signals: call
``fire()`` after them.
"""

import copy
import hashlib
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from types import TracebackType
from typing import Any, TypeVar, cast, overload

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models
from django.db.models import Count, Max
from django.db.models.signals import post_delete, post_init, post_save, pre_save

from .. import flow
from ..compat import InvalidTask, Task, TaskResult
from ..provenance import stamping
from ..tasks import JobTask
from .conditions import CREATE, DELETE, UPDATE, Change, Condition, as_condition, changed, evaluating

__all__ = [
    "CREATE",
    "DELETE",
    "UPDATE",
    "Condition",
    "Trigger",
    "changed",
    "connect",
    "fire",
    "is_suppressed",
    "on_create",
    "on_delete",
    "on_update",
    "register",
    "registered",
    "stats",
    "suppressed",
    "triggered",
    "unregister",
]

logger = logging.getLogger("djjobs")

EVENTS = (CREATE, UPDATE, DELETE)

_LOADED = "_djjobs_loaded"  # instance.__dict__ key: watched values as last loaded or saved
_FIRED = "_djjobs_fired"  # instance.__dict__ key: ids of the jobs of the last save/delete (picklable)

# What on_create/on_update/on_delete take: args and kwargs as values or as callables of the
# instance; ``when`` a Condition (changed(...)) or a callable(instance) -> bool.
Args = Callable[[Any], Sequence[Any]] | Sequence[Any] | None
Kwargs = Callable[[Any], Mapping[str, Any]] | Mapping[str, Any] | None
When = Condition | Callable[[Any], bool] | None
# debounce and debounce_max: a timedelta or a number of seconds (djjobs.flow).
Duration = timedelta | float | None
_T = TypeVar("_T", bound=Task)
_F = TypeVar("_F", bound=Callable[..., Any])

_suppressed: ContextVar[bool] = ContextVar("djjobs_triggers_suppressed", default=False)


# -- triggers --------------------------------------------------------------------------------


@dataclass(eq=False)
class Trigger:
    """One declaration: when ``event`` happens to a ``model`` instance and ``when`` holds, enqueue ``task``."""

    name: str
    model: Any  # a model class, or "app_label.ModelName" until the app registry resolves it
    event: str
    task: Task
    args: Args = None
    kwargs: Kwargs = None
    when: Condition | None = None
    unique: bool = False
    debounce: Any = None  # a burst of saves of one row becomes one job (djjobs.flow)
    debounce_max: Any = None

    @property
    def model_label(self) -> str:
        return self.model if isinstance(self.model, str) else self.model._meta.label

    @property
    def condition(self) -> str:
        return "always" if self.when is None else str(self.when)

    def applies(self, instance: models.Model) -> bool:
        return self.when is None or self.when(instance)

    def arguments(self, instance: models.Model) -> tuple[list[Any], dict[str, Any]]:
        args = self.args(instance) if callable(self.args) else self.args
        kwargs = self.kwargs(instance) if callable(self.kwargs) else self.kwargs
        if args is None and kwargs is None:
            args = [_json_pk(instance.pk)]
        return list(args or ()), dict(kwargs or {})

    def unique_key(self, instance: models.Model) -> str:
        key = f"djjobs.trigger:{self.name}:{instance.pk}"
        if len(key) <= 255:
            return key
        return "djjobs.trigger:" + hashlib.sha256(key.encode()).hexdigest()

    def enqueue(self, instance: models.Model) -> TaskResult:
        """Insert this trigger's job for ``instance`` (in the current transaction)."""
        args, kwargs = self.arguments(instance)
        # unique=True or a debounce: a JobTask (_build() checked), whose using() takes unique_key.
        task: Task
        if self.debounce is not None:
            task = cast(JobTask, self.task).using(
                unique_key=self.unique_key(instance), debounce=self.debounce, debounce_max=self.debounce_max
            )
        elif self.unique:
            task = cast(JobTask, self.task).using(unique_key=self.unique_key(instance))
        else:
            task = self.task
        with stamping(self.task.module_path, trigger=self.name):
            return task.enqueue(*args, **kwargs)


def _json_pk(pk: Any) -> int | str:
    return pk if isinstance(pk, (int, str)) else str(pk)


_registry: dict[str, Trigger] = {}
_connected = False
_cache: dict[tuple[type, str], tuple[Trigger, ...]] = {}
_watched_cache: dict[type, tuple[str, ...]] = {}


@overload
def on_create(
    model: type[models.Model] | str,
    task: Task,
    *,
    args: Args = None,
    kwargs: Kwargs = None,
    when: When = None,
    unique: bool = False,
    name: str | None = None,
    debounce: Duration = None,
    debounce_max: Duration = None,
) -> Trigger: ...


@overload
def on_create(
    model: type[models.Model] | str,
    task: None = None,
    *,
    args: Args = None,
    kwargs: Kwargs = None,
    when: When = None,
    unique: bool = False,
    name: str | None = None,
    debounce: Duration = None,
    debounce_max: Duration = None,
) -> Callable[[_T], _T]: ...


def on_create(
    model: type[models.Model] | str,
    task: Task | None = None,
    *,
    args: Args = None,
    kwargs: Kwargs = None,
    when: When = None,
    unique: bool = False,
    name: str | None = None,
    debounce: Duration = None,
    debounce_max: Duration = None,
) -> Trigger | Callable[[_T], _T]:
    """Enqueue ``task`` when an instance of ``model`` is created. Without ``task``: a decorator."""
    return _declare(
        CREATE,
        model,
        task,
        args=args,
        kwargs=kwargs,
        when=when,
        unique=unique,
        name=name,
        debounce=debounce,
        debounce_max=debounce_max,
    )


@overload
def on_update(
    model: type[models.Model] | str,
    task: Task,
    *,
    args: Args = None,
    kwargs: Kwargs = None,
    when: When = None,
    unique: bool = False,
    name: str | None = None,
    debounce: Duration = None,
    debounce_max: Duration = None,
) -> Trigger: ...


@overload
def on_update(
    model: type[models.Model] | str,
    task: None = None,
    *,
    args: Args = None,
    kwargs: Kwargs = None,
    when: When = None,
    unique: bool = False,
    name: str | None = None,
    debounce: Duration = None,
    debounce_max: Duration = None,
) -> Callable[[_T], _T]: ...


def on_update(
    model: type[models.Model] | str,
    task: Task | None = None,
    *,
    args: Args = None,
    kwargs: Kwargs = None,
    when: When = None,
    unique: bool = False,
    name: str | None = None,
    debounce: Duration = None,
    debounce_max: Duration = None,
) -> Trigger | Callable[[_T], _T]:
    """Enqueue ``task`` when an existing instance of ``model`` is saved (and ``when`` holds)."""
    return _declare(
        UPDATE,
        model,
        task,
        args=args,
        kwargs=kwargs,
        when=when,
        unique=unique,
        name=name,
        debounce=debounce,
        debounce_max=debounce_max,
    )


@overload
def on_delete(
    model: type[models.Model] | str,
    task: Task,
    *,
    args: Args = None,
    kwargs: Kwargs = None,
    when: When = None,
    unique: bool = False,
    name: str | None = None,
    debounce: Duration = None,
    debounce_max: Duration = None,
) -> Trigger: ...


@overload
def on_delete(
    model: type[models.Model] | str,
    task: None = None,
    *,
    args: Args = None,
    kwargs: Kwargs = None,
    when: When = None,
    unique: bool = False,
    name: str | None = None,
    debounce: Duration = None,
    debounce_max: Duration = None,
) -> Callable[[_T], _T]: ...


def on_delete(
    model: type[models.Model] | str,
    task: Task | None = None,
    *,
    args: Args = None,
    kwargs: Kwargs = None,
    when: When = None,
    unique: bool = False,
    name: str | None = None,
    debounce: Duration = None,
    debounce_max: Duration = None,
) -> Trigger | Callable[[_T], _T]:
    """Enqueue ``task`` when an instance of ``model`` is deleted. Without ``task``: a decorator."""
    return _declare(
        DELETE,
        model,
        task,
        args=args,
        kwargs=kwargs,
        when=when,
        unique=unique,
        name=name,
        debounce=debounce,
        debounce_max=debounce_max,
    )


def _declare(
    event: str, model: type[models.Model] | str, task: Task | None, **options: Any
) -> Trigger | Callable[[_T], _T]:
    if task is None:

        def decorator(task: _T) -> _T:
            _declare(event, model, task, **options)
            return task

        return decorator
    return register(_build(event, model, task, **options))


def _build(
    event: str,
    model: type[models.Model] | str,
    task: Task,
    *,
    args: Args,
    kwargs: Kwargs,
    when: When,
    unique: bool,
    name: str | None,
    debounce: Duration = None,
    debounce_max: Duration = None,
) -> Trigger:
    if not isinstance(task, Task):
        raise ImproperlyConfigured(
            f"A trigger enqueues a task, got {task!r}: put @triggers.on_{event}(...) above @task."
        )
    if not (isinstance(model, str) or (inspect.isclass(model) and issubclass(model, models.Model))):
        raise ImproperlyConfigured(f"A trigger's model is a model class or 'app_label.Model', got {model!r}.")
    condition = None if when is None else as_condition(when)
    if event == DELETE and condition is not None and condition.fields:
        raise ImproperlyConfigured("changed() has no meaning for on_delete: a deleted row has no new values.")
    if (unique or debounce is not None) and not hasattr(task, "unique_key"):
        raise ImproperlyConfigured(f"unique=True and debounce need a djjobs task; {task.module_path} is not one.")
    try:
        flow.check_debounce(debounce, debounce_max)
    except InvalidTask as exc:
        raise ImproperlyConfigured(f"A trigger's {exc}") from None
    trigger = Trigger(
        name="",
        model=model,
        event=event,
        task=task,
        args=args,
        kwargs=kwargs,
        when=condition,
        unique=unique,
        debounce=debounce,
        debounce_max=debounce_max,
    )
    trigger.name = name or f"{trigger.model_label}.{event}:{task.module_path}"
    if len(trigger.name) > 255:
        raise ImproperlyConfigured(f"A trigger name is at most 255 characters: {trigger.name!r}.")
    return trigger


def register(trigger: Trigger) -> Trigger:
    """Add ``trigger`` (replacing one of the same name) and connect its receivers if Django is ready."""
    _registry[trigger.name] = trigger
    _forget()
    if _connected:
        _connect(trigger)
    return trigger


def unregister(trigger: Trigger | str) -> None:
    _registry.pop(trigger if isinstance(trigger, str) else trigger.name, None)
    _forget()


def registered() -> list[Trigger]:
    """Every registered trigger, by name."""
    return [_registry[name] for name in sorted(_registry)]


def connect() -> None:
    """Connect the receivers of every trigger (AppConfig.ready); later registrations connect at once."""
    global _connected
    _connected = True
    for trigger in list(_registry.values()):
        _connect(trigger)


def resolve_model(trigger: Trigger) -> type[models.Model] | None:
    """The trigger's model class, or None if its label names no installed model."""
    if not isinstance(trigger.model, str):
        return trigger.model
    try:
        return apps.get_model(trigger.model)
    except (LookupError, ValueError):
        return None


def _connect(trigger: Trigger) -> None:
    model = resolve_model(trigger)
    if model is None:
        logger.error("trigger %s: no installed model %r (see check djjobs.E101)", trigger.name, trigger.model)
        return
    trigger.model = model
    _forget()
    for cls in apps.get_models():
        if issubclass(cls, model):
            _connect_model(cls)


def _connect_model(cls: type[models.Model]) -> None:
    uid = f"djjobs.triggers:{cls._meta.label}"
    post_save.connect(_after_save, sender=cls, weak=False, dispatch_uid=uid)
    # Only models that need them: a post_delete receiver turns off Django's fast deletes, and
    # a post_init receiver runs for every instance loaded.
    if _for(cls, DELETE):
        post_delete.connect(_after_delete, sender=cls, weak=False, dispatch_uid=uid)
    if _watched(cls):
        post_init.connect(_remember, sender=cls, weak=False, dispatch_uid=uid)
        pre_save.connect(_before_save, sender=cls, weak=False, dispatch_uid=uid)


def _forget() -> None:
    _cache.clear()
    _watched_cache.clear()


def _for(sender: type[models.Model], event: str) -> tuple[Trigger, ...]:
    """The triggers of ``event`` on ``sender`` or a model it inherits from (proxies included)."""
    key = (sender, event)
    if key not in _cache:
        _cache[key] = tuple(
            t
            for t in _registry.values()
            if t.event == event and not isinstance(t.model, str) and issubclass(sender, t.model)
        )
    return _cache[key]


def _watched(sender: type[models.Model]) -> tuple[str, ...]:
    """Attribute names whose loaded values the update triggers of ``sender`` compare with."""
    if sender not in _watched_cache:
        names: set[str] = set()
        for trigger in _for(sender, UPDATE):
            for field in trigger.when.fields if trigger.when is not None else ():
                try:
                    found = sender._meta.get_field(field)
                except FieldDoesNotExist:
                    found = None
                # A reverse relation (no attname, no column) is no field to compare either.
                if isinstance(found, models.Field):
                    names.add(found.attname)
                else:
                    logger.error("trigger %s: %s has no field %r", trigger.name, sender._meta.label, field)
        _watched_cache[sender] = tuple(sorted(names))
    return _watched_cache[sender]


# -- receivers -------------------------------------------------------------------------------


def _remember(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    """post_init: remember the watched values as loaded (deferred fields are left out)."""
    values = instance.__dict__
    instance.__dict__[_LOADED] = {a: _copy(values[a]) for a in _watched(sender) if a in values}


def _before_save(
    sender: type[models.Model],
    instance: models.Model,
    raw: bool = False,
    using: str | None = None,
    update_fields: Iterable[str] | None = None,
    **kwargs: Any,
) -> None:
    """pre_save: fetch the previous values that were not loaded (deferred fields, or an instance
    built in memory with an existing key). One query, and only in those cases."""
    if raw:
        return
    remembered = instance.__dict__.get(_LOADED) or {}
    if instance._state.adding:
        if instance.pk is None or _pk_has_default(sender):
            return  # an INSERT: there is no previous row
        remembered = {}  # values set in memory are not the database's
    missing = [a for a in _watched(sender) if a not in remembered and _written(sender, a, update_fields)]
    if missing:
        row = sender._base_manager.using(using).filter(pk=instance.pk).values(*missing).first()
        remembered = {**remembered, **(row or {})}
    instance.__dict__[_LOADED] = remembered


def _after_save(
    sender: type[models.Model],
    instance: models.Model,
    created: bool,
    raw: bool = False,
    update_fields: Iterable[str] | None = None,
    **kwargs: Any,
) -> None:
    if raw:  # loaddata: fixtures are not events
        return
    try:
        _run(sender, CREATE if created else UPDATE, instance, update_fields)
    finally:
        _remember_saved(sender, instance, update_fields)


def _after_delete(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    _run(sender, DELETE, instance, None)


def _run(
    sender: type[models.Model], event: str, instance: models.Model, update_fields: Iterable[str] | None
) -> list[TaskResult]:
    triggers = _for(sender, event)
    if not triggers or _suppressed.get():
        return []
    fields = None if update_fields is None else frozenset(update_fields)
    with evaluating(Change(event, instance.__dict__.get(_LOADED) or {}, fields)):
        results = [trigger.enqueue(instance) for trigger in triggers if trigger.applies(instance)]
    instance.__dict__[_FIRED] = tuple(result.id for result in results)
    return results


def _remember_saved(sender: type[models.Model], instance: models.Model, update_fields: Iterable[str] | None) -> None:
    """After a save the database holds what was written: that is the next save's previous value."""
    watched = _watched(sender)
    if not watched:
        return
    remembered = dict(instance.__dict__.get(_LOADED) or {})
    for attname in watched:
        if attname in instance.__dict__ and _written(sender, attname, update_fields):
            remembered[attname] = _copy(instance.__dict__[attname])
    instance.__dict__[_LOADED] = remembered


def _written(sender: type[models.Model], attname: str, update_fields: Iterable[str] | None) -> bool:
    if update_fields is None:
        return True
    field = next(f for f in sender._meta.concrete_fields if f.attname == attname)
    return field.name in update_fields or attname in update_fields


def _pk_has_default(sender: type[models.Model]) -> bool:
    pk = sender._meta.pk
    return pk.has_default() or getattr(pk, "has_db_default", lambda: False)()


def _copy(value: Any) -> Any:
    # A JSON dict changed in place must still compare different from what was loaded.
    return copy.deepcopy(value) if isinstance(value, (dict, list)) else value


# -- bulk paths, suppression, introspection ----------------------------------------------------


def fire(
    event: str, instances: models.Model | Iterable[models.Model], *, update_fields: Iterable[str] | None = None
) -> list[TaskResult]:
    """Run the ``event`` triggers for ``instances`` as save()/delete() would have.

    For writes that send no signals: ``bulk_create`` (``fire("create", objs)``), ``bulk_update``
    (``fire("update", objs, update_fields=fields)``: ``changed()`` compares with what each
    instance loaded), ``QuerySet.update()``/``delete()`` or raw SQL (load the instances first).
    The jobs are inserted in the caller's transaction; ``suppressed()`` applies.
    """
    if event not in EVENTS:
        raise ValueError(f"event is one of {', '.join(EVENTS)}, got {event!r}.")
    if isinstance(instances, models.Model):
        instances = [instances]
    fields = None if update_fields is None else frozenset(update_fields)
    results: list[TaskResult] = []
    for instance in instances:
        results.extend(_run(type(instance), event, instance, fields))
        if event != DELETE:
            _remember_saved(type(instance), instance, fields)
    return results


def triggered(instance: models.Model) -> list[str]:
    """The ids of the jobs the last save(), delete() or fire() of ``instance`` enqueued.

    Ids, not TaskResults, so that the instance stays picklable (caches pickle model instances).
    """
    return list(instance.__dict__.get(_FIRED, ()))


def is_suppressed() -> bool:
    return _suppressed.get()


class suppressed:  # noqa: N801 - used like contextlib.suppress
    """Turn triggers off in this thread or task: ``with triggers.suppressed():`` or ``@triggers.suppressed()``.

    A ContextVar holds the switch, so other threads and other asyncio tasks are unaffected.
    """

    def __init__(self) -> None:
        self._tokens: list[Token[bool]] = []

    def __enter__(self) -> "suppressed":
        self._tokens.append(_suppressed.set(True))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _suppressed.reset(self._tokens.pop())

    async def __aenter__(self) -> "suppressed":
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, function: _F) -> _F:
        if inspect.iscoroutinefunction(function):

            @wraps(function)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with suppressed():
                    return await function(*args, **kwargs)

            return cast(_F, async_wrapper)

        @wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with suppressed():
                return function(*args, **kwargs)

        return cast(_F, wrapper)


def stats(names: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """{trigger name: {"jobs": n, "last_enqueued_at": datetime}} over the jobs still kept.

    One GROUP BY on the partial index of Job.trigger: jobs pruned by RETENTION_DAYS no longer count.
    """
    from ..models import Job  # not at the top: djjobs imports triggers before the models are ready

    names = list(_registry) if names is None else list(names)
    rows = (
        Job.objects.filter(trigger__in=names)
        .order_by()
        .values("trigger")
        .annotate(jobs=Count("pk"), last_enqueued_at=Max("enqueued_at"))
    )
    found = {row["trigger"]: {"jobs": row["jobs"], "last_enqueued_at": row["last_enqueued_at"]} for row in rows}
    return {name: found.get(name, {"jobs": 0, "last_enqueued_at": None}) for name in names}
