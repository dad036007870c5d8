"""PostgreSQL LISTEN/NOTIFY wake-ups. Polling stays the safety net everywhere.

A database trigger (migration 0002) runs ``pg_notify('djjobs', <queue>)`` when a job
becomes READY and due: on INSERT, and on UPDATE to READY (a retry, a rescue, an operator's
retry or run-now). The notification is part of the writer's transaction: sent at commit,
never for a rollback, and with no extra round trip for the writer. Each worker keeps one
extra connection that LISTENs and wakes its claiming loop.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.db import connections, router

from .. import conf
from ..models import Job
from .statements import LISTEN, NOTIFY_CHANNEL

if TYPE_CHECKING:
    import psycopg

logger = logging.getLogger("djjobs")

CHANNEL = NOTIFY_CHANNEL  # the channel migration 0002's trigger notifies


def listen_supported() -> bool:
    return connections[router.db_for_write(Job)].vendor == "postgresql"


def _connect() -> "psycopg.Connection[Any]":
    import psycopg  # PostgreSQL only: a SQLite site need not have psycopg

    url = conf.get("LISTEN_DATABASE_URL")
    if url:
        return psycopg.connect(url, autocommit=True)

    params = connections[router.db_for_write(Job)].get_connection_params()
    for key in ("cursor_factory", "context", "pool", "prepare_threshold"):
        params.pop(key, None)
    return psycopg.connect(autocommit=True, **params)


class Listener(threading.Thread):
    """LISTENs on its own connection and calls ``wake()`` for notifications of our queues."""

    def __init__(self, queues: list[str] | None, wake: Callable[[], None], stopping: threading.Event):
        super().__init__(name="djjobs-listener", daemon=True)
        self.queues = set(queues) if queues else None
        self.wake = wake
        self.stopping = stopping
        self.connected = threading.Event()

    def run(self) -> None:
        last_error = 0.0
        while not self.stopping.is_set():
            try:
                with _connect() as conn:
                    conn.execute(LISTEN)
                    self.connected.set()
                    self.wake()  # anything enqueued while we were not listening
                    while not self.stopping.is_set():
                        for note in conn.notifies(timeout=0.5):
                            if self.queues is None or note.payload in self.queues:
                                self.wake()
            except Exception as exc:  # noqa: BLE001 - the database went away: poll meanwhile, reconnect
                self.connected.clear()
                if time.monotonic() - last_error >= 1.0:
                    logger.error("listener: %s; falling back to polling until reconnected", str(exc).strip())
                    last_error = time.monotonic()
                self.stopping.wait(1.0)
