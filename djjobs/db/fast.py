"""The speed-ups that rely on private or undocumented APIs, in one place, behind one switch.

djjobs' hot paths (enqueue, claim, run, complete) are several times cheaper with these. Each is
a function here that names the API it relies on and the versions it was checked against, and
has a public-API fallback that its caller uses when ``enabled()`` is False:

- ``DJJOBS["FAST_PATHS"] = False`` turns them all off (a Django or psycopg upgrade that breaks
  one is then a settings change away from working, slower);
- CI runs the integration suite once with them off, so both ways stay correct.

What relies on what:

=========================  ==========================================  ===============================
speed-up                   private or undocumented API                 public fallback
=========================  ==========================================  ===============================
kept cursor (``execute``)  psycopg.Cursor on ``connection.connection``  ``connection.cursor()``
                           and BaseDatabaseWrapper's checks
                           (``close_if_health_check_failed``,
                           ``validate_thread_sharing``,
                           ``validate_no_broken_transaction``,
                           ``wrap_database_errors``)
signal gate                ``Signal._live_receivers(sender)``          ``Signal.has_listeners()``
(``live_receivers``)
direct log lines           run_workers' own handler (djjobs.logs)      ``logger.info()``
(logs.direct_handler)
caller's frame             ``sys._getframe``                           ``logger.info()``
(``caller_frame``)
TaskResult copies          the dataclass's slot descriptors            ``TaskResult(...)`` per job
(``field_setter``)         (``vars(TaskResult)[name].__set__``)
COPY for enqueue_many      Django's ``CursorWrapper.cursor`` (the      ``executemany`` of the INSERT
(db/bulk.py)              psycopg cursor) and ``queries_log``
=========================  ==========================================  ===============================

Checked against Django 5.2.19 and 6.1.3, psycopg 3.2/3.3, CPython 3.11-3.13.
"""

import sys
import weakref
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.dispatch import Signal
from django.utils.asyncio import async_unsafe

from .. import conf

if TYPE_CHECKING:
    import psycopg

_cursors: "weakref.WeakKeyDictionary[Any, psycopg.Cursor[Any]]" = (
    weakref.WeakKeyDictionary()
)  # psycopg connection -> cursor


def enabled() -> bool:
    """Whether the speed-ups are on (``DJJOBS["FAST_PATHS"]``, default True)."""
    return conf.get("FAST_PATHS") is not False


# -- a kept server-side-binding cursor (djjobs.db.bound) -------------------------------------------


@async_unsafe
def execute(connection: BaseDatabaseWrapper, sql: str, params: Any) -> "psycopg.Cursor[Any]":
    """Execute ``sql`` (``%s`` placeholders) on one psycopg cursor kept per connection, with the
    parameters sent apart from the SQL; return the psycopg cursor (to fetch from).

    Relies on: ``connection.connection`` being a psycopg 3 connection, and Django's
    BaseDatabaseWrapper methods that its own CursorWrapper calls before a statement
    (``close_if_health_check_failed``, ``ensure_connection``, ``validate_thread_sharing``,
    ``validate_no_broken_transaction``) and ``wrap_database_errors`` (error translation).
    Fallback: ``connection.cursor().execute()`` (djjobs.db.bound.run)."""
    import psycopg  # PostgreSQL only: a SQLite site need not have psycopg

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    connection.validate_no_broken_transaction()
    raw = connection.connection
    cursor = _cursors.get(raw)
    if cursor is None or cursor.closed:
        cursor = _cursors[raw] = psycopg.Cursor(raw)
    with connection.wrap_database_errors:
        cursor.execute(sql, params)
    return cursor


# -- which receivers a signal would call (djjobs.signal_gate) -----------------------------------


def live_receivers(signal: Signal, sender: Any) -> tuple[list[Any], list[Any]] | None:
    """(sync receivers, async receivers) ``signal.send(sender)`` would call, or None when not
    known (the speed-ups are off, or Django's private API changed).

    Relies on: ``Signal._live_receivers(sender)`` returning that pair (Django >= 5.0).
    Fallback: the caller asks ``Signal.has_listeners(sender)`` and sends whenever anyone listens."""
    if not enabled():
        return None
    try:
        sync, async_ = signal._live_receivers(sender)
    except Exception:  # noqa: BLE001 - another Django's private API: let the caller be safe
        return None
    return sync, async_


# -- the caller's frame, for log records made without findCaller() (djjobs.worker.turn) ------


def caller_frame(depth: int = 2) -> FrameType:
    """The frame ``depth`` levels up from the caller of this function (1: that caller's caller).

    Relies on: ``sys._getframe`` (CPython; documented as an implementation detail).
    Fallback: the caller logs with ``logger.info()``, which finds the frame itself."""
    return sys._getframe(depth)


# -- TaskResult copies for enqueue_many (djjobs.lifecycle.insert) -----------------------------


def field_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """A setter of the frozen dataclass ``cls``'s field ``name`` that bypasses its __setattr__:
    the slot descriptor's ``__set__`` (a C call) where ``cls`` has __slots__ (TaskResult has, in
    Django 6 and the backport), else ``object.__setattr__``.

    Relies on: the field being a slot of the class (Django 6.0/6.1, django-tasks 0.9+), and
    that TaskResult's __post_init__ does nothing a copy needs (it normalises args/kwargs, which
    the caller sets already normalised). Fallback: the caller builds each TaskResult."""
    setter = getattr(vars(cls).get(name), "__set__", None)
    if setter is None:

        def setter(obj: Any, value: Any, _name: str = name) -> None:
            object.__setattr__(obj, _name, value)

    return setter
