"""The worker loop: claim into free thread slots, run, complete; heartbeats, rescue, OS signals."""

import logging
import os
import random
import signal
import socket
import threading
import time
import queue
from datetime import timedelta

from django.db import DatabaseError, InterfaceError, connections
from django.utils import timezone
from django.utils.crypto import get_random_string

from .. import conf
from ..maintenance.rescuer import rescue_expired
from ..states import JobStatus
from .claim import claim
from .process import process

logger = logging.getLogger("djjobs")


def default_worker_id() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{get_random_string(6)}"


class Worker:
    """One worker process: a claiming loop plus ``concurrency`` threads running jobs."""

    def __init__(
        self,
        *,
        queues: list[str] | None = None,
        concurrency: int | None = None,
        burst: bool = False,
        max_jobs: int | None = None,
        worker_id: str | None = None,
    ):
        self.queues = sorted(queues) if queues else None
        self.concurrency = concurrency or conf.get("CONCURRENCY")
        self.burst = burst
        self.max_jobs = max_jobs
        self.worker_id = worker_id or default_worker_id()
        self.lease_seconds = conf.get("LEASE_SECONDS")
        self.claimed_total = 0
        self.stopping = threading.Event()
        self._wakeup = threading.Event()
        self._lock = threading.Lock()
        self._running: dict = {}  # job id -> lease token
        self._signals = 0
        self._last_db_error = 0.0

    # -- public --------------------------------------------------------------------------

    def run(self) -> int:
        """Work until stopped (or, with burst, until nothing is due); returns the exit code."""
        self._install_signal_handlers()
        logger.info("worker %s starting: queues=%s concurrency=%d%s", self.worker_id,
                    ",".join(self.queues or ["*"]), self.concurrency, " burst" if self.burst else "")
        heartbeat = threading.Thread(target=self._heartbeat_loop, name="djjobs-heartbeat", daemon=True)
        heartbeat.start()
        inbox: queue.SimpleQueue = queue.SimpleQueue()
        threads = [
            threading.Thread(target=self._job_thread, args=(inbox,), name=f"djjobs-job-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        for thread in threads:
            thread.start()
        try:
            self._loop(inbox)
        finally:
            for _ in threads:
                inbox.put(None)
            for thread in threads:
                thread.join()  # graceful: running jobs finish
            self.stopping.set()
            heartbeat.join(timeout=5)
            connections.close_all()
        logger.info("worker %s stopped after %d job(s)", self.worker_id, self.claimed_total)
        return 0

    def stop(self) -> None:
        self.stopping.set()
        self._wakeup.set()

    # -- the loop ------------------------------------------------------------------------

    def _loop(self, inbox) -> None:
        next_rescue = 0.0
        while not self.stopping.is_set():
            if time.monotonic() >= next_rescue:
                self._guarded(rescue_expired)
                next_rescue = time.monotonic() + conf.get("RESCUE_INTERVAL")
            free = self.concurrency - len(self._running)
            if self.max_jobs is not None:
                free = min(free, self.max_jobs - self.claimed_total)
            jobs = self._guarded(claim, self.worker_id, self.queues, free, self.lease_seconds) or []
            for job in jobs:
                with self._lock:
                    self._running[job.id] = job.lease_token
                self.claimed_total += 1
                inbox.put(job)
            if self.max_jobs is not None and self.claimed_total >= self.max_jobs:
                break
            with self._lock:
                idle = not self._running
            if self.burst and not jobs and idle:
                break
            # Sleep until a job finishes (a slot is free; in burst mode a retry may be due)
            # or the poll interval passes (new jobs, rescue).
            self._wakeup.wait(self._poll_delay())
            self._wakeup.clear()

    def _job_thread(self, inbox) -> None:
        """One of ``concurrency`` threads: runs jobs from the inbox until told to stop."""
        try:
            while (job := inbox.get()) is not None:
                self._run_one(job)
        finally:
            connections.close_all()  # this thread's connections

    def _run_one(self, job) -> None:
        try:
            process(job, self.worker_id)
        except Exception:  # a database error while completing: the lease will expire and rescue it
            logger.exception("worker %s could not complete job %s", self.worker_id, job.id)
            connections.close_all()
        finally:
            with self._lock:
                self._running.pop(job.id, None)
            self._wakeup.set()

    def _poll_delay(self) -> float:
        interval = conf.get("POLL_INTERVAL")
        return interval * random.uniform(0.9, 1.1)

    def _guarded(self, func, *args):
        """Call a database step; on a database error log (at most once a second), reconnect, go on."""
        try:
            return func(*args)
        except (DatabaseError, InterfaceError) as exc:
            now = time.monotonic()
            if now - self._last_db_error >= 1.0:
                logger.error("worker %s: database error in %s: %s", self.worker_id, func.__name__, exc)
                self._last_db_error = now
            for connection in connections.all(initialized_only=True):
                connection.close()
            self.stopping.wait(min(1.0, conf.get("POLL_INTERVAL")))
            return None

    # -- heartbeats ----------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        interval = conf.get("HEARTBEAT_INTERVAL")
        while not self.stopping.wait(interval):
            self._guarded(self._renew_leases)
        connections.close_all()

    def _renew_leases(self) -> int:
        from ..models import Job

        with self._lock:
            running = dict(self._running)
        if not running:
            return 0
        return Job.objects.filter(
            id__in=list(running), status=JobStatus.RUNNING, lease_token__in=set(running.values())
        ).update(lease_expires_at=timezone.now() + timedelta(seconds=self.lease_seconds))

    # -- signals -------------------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        self._signals += 1
        if self._signals > 1:
            logger.warning("worker %s: second signal, exiting now; running jobs will be rescued", self.worker_id)
            os._exit(1)
        logger.info("worker %s: %s received, finishing %d running job(s)", self.worker_id,
                    signal.Signals(signum).name, len(self._running))
        self.stop()
