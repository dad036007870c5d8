"""Riding out a database that is away: the one helper for the worker's loop and threads, the
supervisor, the completer and a job's own completion.

- ``Outage.ride_out(func)`` repeats a write (a guarded, idempotent UPDATE: repeating it is
  harmless) on errors of the connection or the server, with a backoff of 0.2 s doubling to
  2 s, while the lease lasts; past that the error propagates and the job is rescued later.
- ``Outage.guard(func)`` runs one step of a loop: on a database error it logs (at most once a
  second), drops the connections and returns None; the loop tries again on its next turn.
"""

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import DatabaseError, InterfaceError, OperationalError, connections

from .. import conf

logger = logging.getLogger("djjobs")

# Errors of the connection or the server, not of what is written: the same write may succeed
# later, so it is repeated while the lease lasts. Any other error of a write (DataError,
# IntegrityError, a UnicodeEncodeError of the driver...) would fail again the same way.
TRANSIENT = (OperationalError, InterfaceError)

_R = TypeVar("_R")

FIRST_DELAY = 0.2
MAX_DELAY = 2.0


def close_connections(keep_atomic: bool = False) -> None:
    """Drop this thread's connections (the next query reconnects); ``keep_atomic``: not one
    inside a transaction block (an atomic task's, whose caller decides)."""
    for connection in connections.all(initialized_only=True):
        if not (keep_atomic and connection.in_atomic_block):
            connection.close()


class Outage:
    def __init__(self, name: str = "djjobs", wait: Callable[[float], object] | None = None) -> None:
        self.name = name  # who logs: "worker w1", "supervisor s1"
        self.wait = wait  # guard(): how the loop pauses after an error (None: it does not)
        self._last_error = 0.0

    def ride_out(
        self,
        func: Callable[..., _R],
        *args: Any,
        on_retry: Callable[[BaseException, float], None] | None = None,
        keep_atomic: bool = False,
    ) -> _R:
        """``func(*args)``, repeated on TRANSIENT errors while the lease lasts. ``on_retry(exc,
        delay)`` is called before each pause (to log, or to narrow what is left to write)."""
        deadline = time.monotonic() + conf.get("LEASE_SECONDS")
        delay = FIRST_DELAY
        while True:
            try:
                return func(*args)
            except TRANSIENT as exc:
                close_connections(keep_atomic)
                if time.monotonic() + delay > deadline:
                    raise
                if on_retry is not None:
                    on_retry(exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, MAX_DELAY)

    def guard(self, func: Callable[..., _R], *args: Any) -> _R | None:
        """One database step of a loop; on a database error: log (at most once a second),
        reconnect, pause (``wait``), and return None."""
        try:
            return func(*args)
        except (DatabaseError, InterfaceError) as exc:
            now = time.monotonic()
            if now - self._last_error >= 1.0:
                logger.error(
                    "%s: database error in %s: %s", self.name, getattr(func, "__name__", "step"), str(exc).strip()
                )
                self._last_error = now
            close_connections()
            if self.wait is not None:
                self.wait(min(1.0, conf.get("POLL_INTERVAL")))
            return None
