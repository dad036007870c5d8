"""Batched completion: successful outcomes are written many at a time.

One guarded UPDATE (and one commit, the part that waits for the disk) for every success that
arrived while the previous batch was being written: no timer, so an idle worker completes a
job at once and a busy one amortises its commits. Failures and retries are written
immediately by the job's own thread; atomic tasks complete inside their own transaction.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable

from django.db import DatabaseError, InterfaceError, connections

from .. import conf
from .complete import complete_successes

logger = logging.getLogger("djjobs")

MAX_BATCH = 500


class Completer(threading.Thread):
    def __init__(self, worker_id: str, on_done: Callable[[object, object, bool], None]):
        super().__init__(name="djjobs-completer", daemon=True)
        self.worker_id = worker_id
        self.on_done = on_done
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()

    def submit(self, job, outcome) -> None:
        self.inbox.put((job, outcome))

    def stop(self) -> None:
        """Write what is queued, then end."""
        self.inbox.put(None)

    def run(self) -> None:
        try:
            stopping = False
            while not stopping:
                item = self.inbox.get()
                if item is None:
                    break
                batch = [item]
                while len(batch) < MAX_BATCH:
                    try:
                        item = self.inbox.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stopping = True
                        break
                    batch.append(item)
                self._flush(batch)
        finally:
            connections.close_all()

    def _flush(self, batch: list) -> None:
        done = self._write(batch)
        for job, outcome in batch:
            try:
                self.on_done(job, outcome, job.key in done)
            except Exception:  # a receiver of task_finished failed: not the queue's business
                logger.exception("after completing job %s", job.id)

    def _write(self, batch: list) -> set:
        """complete_successes(), riding out a database outage while the leases last."""
        deadline = time.monotonic() + conf.get("LEASE_SECONDS")
        delay = 0.2
        while True:
            try:
                return complete_successes(batch, self.worker_id)
            except (DatabaseError, InterfaceError) as exc:
                for connection in connections.all(initialized_only=True):
                    connection.close()
                if time.monotonic() + delay > deadline:
                    logger.error("could not complete %d job(s): %s; they will be rescued", len(batch), exc)
                    return set()
                logger.warning("completing %d job(s) failed (%s); retrying in %.1fs", len(batch),
                               str(exc).strip(), delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
