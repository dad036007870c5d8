"""Conditions of triggers (``when=``): tests of an instance being saved. Pure: no queries.

``changed(field, from_=..., to=...)`` reads the previous values that djjobs.triggers remembered
when the instance was loaded; the save being evaluated is published in a ContextVar, so
conditions stay plain ``condition(instance) -> bool`` callables, like a user's lambda.
"""

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db import models

CREATE, UPDATE, DELETE = "create", "update", "delete"

_ABSENT = object()  # "not given" / "no known previous value"


@dataclass(frozen=True, slots=True)
class Change:
    """What the conditions of one save see: the event, the previous values, update_fields."""

    event: str
    previous: Mapping[str, Any]
    update_fields: frozenset[str] | None


_change: ContextVar[Change | None] = ContextVar("djjobs_trigger_change", default=None)


@contextmanager
def evaluating(change: Change) -> Iterator[None]:
    """Conditions called inside this block judge ``change``."""
    token = _change.set(change)
    try:
        yield
    finally:
        _change.reset(token)


class Condition:
    """A ``when=`` test of an instance being saved; combine with ``&`` and ``|``."""

    fields: frozenset[str] = frozenset()  # field names whose loaded values must be remembered

    def __call__(self, instance: models.Model) -> bool:
        raise NotImplementedError

    def __and__(self, other: "Condition | Callable[[Any], bool]") -> "Condition":
        return _Combined(all, " & ", (self, as_condition(other)))

    def __or__(self, other: "Condition | Callable[[Any], bool]") -> "Condition":
        return _Combined(any, " | ", (self, as_condition(other)))

    def __rand__(self, other: "Condition | Callable[[Any], bool]") -> "Condition":
        return as_condition(other) & self

    def __ror__(self, other: "Condition | Callable[[Any], bool]") -> "Condition":
        return as_condition(other) | self


class changed(Condition):  # noqa: N801 - reads as a phrase: when=changed("status", to="shipped")
    """True when ``field`` changed in this save (optionally from ``from_`` and/or to ``to``).

    The previous value is the one loaded from the database (or written by this instance's last
    save). On create there is no previous value: the condition holds when ``from_`` is not
    given and the new value matches ``to``.
    """

    def __init__(self, field: str, *, from_: Any = _ABSENT, to: Any = _ABSENT) -> None:
        self.field = field
        self.from_ = from_
        self.to = to
        self.fields = frozenset({field})

    def __call__(self, instance: models.Model) -> bool:
        change = _change.get()
        if change is None:
            raise RuntimeError("changed() is evaluated by triggers while a save or fire() runs.")
        # A concrete field (check djjobs.E102): a reverse relation has no attname.
        field = cast("models.Field[Any, Any]", type(instance)._meta.get_field(self.field))
        if field.attname not in instance.__dict__:
            return False  # deferred and never set: save() did not write it
        if change.update_fields is not None and not {field.name, field.attname} & change.update_fields:
            return False  # not written by this save
        new = _normal(field, instance.__dict__[field.attname])
        old = change.previous.get(field.attname, _ABSENT) if change.event == UPDATE else _ABSENT
        if old is not _ABSENT and _normal(field, old) == new:
            return False
        if self.from_ is not _ABSENT and (old is _ABSENT or _normal(field, old) != _normal(field, self.from_)):
            return False
        return self.to is _ABSENT or new == _normal(field, self.to)

    def __str__(self) -> str:
        parts = [repr(self.field)]
        if self.from_ is not _ABSENT:
            parts.append(f"from_={self.from_!r}")
        if self.to is not _ABSENT:
            parts.append(f"to={self.to!r}")
        return f"changed({', '.join(parts)})"


class _Callable(Condition):
    def __init__(self, function: Callable[[Any], bool]) -> None:
        self.function = function

    def __call__(self, instance: models.Model) -> bool:
        return bool(self.function(instance))

    def __str__(self) -> str:
        return getattr(self.function, "__qualname__", repr(self.function))


class _Combined(Condition):
    def __init__(self, how: Callable[[Iterable[bool]], bool], separator: str, parts: tuple[Condition, ...]) -> None:
        self.how, self.separator, self.parts = how, separator, parts
        self.fields = frozenset().union(*(p.fields for p in parts))

    def __call__(self, instance: models.Model) -> bool:
        return self.how(part(instance) for part in self.parts)

    def __str__(self) -> str:
        return "(" + self.separator.join(str(p) for p in self.parts) + ")"


def as_condition(when: Condition | Callable[[Any], bool]) -> Condition:
    if isinstance(when, Condition):
        return when
    if callable(when):
        return _Callable(when)
    raise TypeError(f"when= takes changed(...) or a callable(instance) -> bool, got {when!r}.")


def _normal(field: "models.Field[Any, Any]", value: Any) -> Any:
    """Compare like with like: "9.50" and Decimal("9.50"), a related instance and its key."""
    if isinstance(value, models.Model):
        value = value.pk
    try:
        return field.to_python(value)
    except (ValidationError, TypeError, ValueError):
        return value
