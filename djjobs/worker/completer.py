"""Batched completion: successful outcomes are written many at a time.

One guarded UPDATE (and one commit, the part that waits for the disk) for every success that
arrived while the previous batch was being written: no timer, so an idle worker completes a
job at once and a busy one amortises its commits. Failures and retries are written
immediately by the job's own thread; atomic tasks complete inside their own transaction.

No error ends the completer: a batch the database refuses is written one job at a time
(complete_successes), a connection lost is ridden out while the leases last, and anything
else is logged with its traceback and leaves that batch's jobs to the rescuer. What still
escapes run() (a bug) is caught by the worker's thread guard, which stops the worker.
"""

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from django.db import connections

from ..lifecycle.finish import complete_successes
from ..lifecycle.outage import TRANSIENT, Outage, close_connections
from ..states import JobStatus

logger = logging.getLogger("djjobs")

MAX_BATCH = 500


class Completer(threading.Thread):
    """``on_done(job, outcome, completed)`` is called for every job submitted, ``completed``
    True (written: SUCCESSFUL, or FAILED when its result could not be stored, its outcome
    then says so), False (no longer this worker's) or None (not written: a database error)."""

    def __init__(self, worker_id: str, on_done: Callable[[Any, Any, bool | None], None]):
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
        refused: set = set()
        done = self._write(batch, refused)
        for job, outcome in batch:
            key = job.key
            try:
                self.on_done(job, outcome, True if key in done else (None if key in refused else False))
            except Exception:  # a receiver of task_finished failed: not the queue's business
                logger.exception("after completing job %s", job.id)

    def _write(self, batch: list, refused: set) -> set:
        """complete_successes(), riding out a database outage while the leases last; the keys
        written. Those of jobs that could not be written are added to ``refused``."""
        done: set = set()
        pending = [batch]

        def write():
            return done | complete_successes(pending[0], self.worker_id, refused)

        def on_retry(exc, delay):
            pending[0] = _written_apart(pending[0], done)
            logger.warning(
                "completing %d job(s) failed (%s); retrying in %.1fs", len(pending[0]), str(exc).strip(), delay
            )

        try:
            return _OUTAGE.ride_out(write, on_retry=on_retry)
        except TRANSIENT as exc:
            left = _written_apart(pending[0], done)
            logger.error(
                "could not complete %d job(s): %s; they will be rescued when their leases expire",
                len(left),
                str(exc).strip(),
            )
        except Exception:  # a bug, or a driver's surprise: this batch only
            left = _written_apart(pending[0], done)
            logger.exception("could not complete %d job(s); they will be rescued when their leases expire", len(left))
            close_connections()
        refused.update(job.key for job, _ in left)
        return done


_OUTAGE = Outage()


def _written_apart(pending: list, done: set) -> list:
    """After an error: the jobs of ``pending`` still to be written. Those written one at a time
    before it (complete_successes' fallback; no longer RUNNING) have their keys added to ``done``."""
    if all(job.status == JobStatus.RUNNING for job, _ in pending):
        return pending
    done.update(job.key for job, _ in pending if job.status != JobStatus.RUNNING)
    return [item for item in pending if item[0].status == JobStatus.RUNNING]
