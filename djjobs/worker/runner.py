"""The worker loop: claim into free thread slots, run, complete; heartbeats, rescue, OS signals."""

import copy
import logging
import os
import queue
import random
import signal
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.db import connections
from django.utils import timezone
from django.utils.crypto import get_random_string

from .. import conf
from ..db.notify import Listener, listen_supported
from ..lifecycle.finish import time_out, unclaim
from ..lifecycle.outage import Outage
from ..logs import flush_all as flush_logs
from ..maintenance.pruner import prune
from ..maintenance.rescuer import rescue_expired
from ..models import Job, Worker
from ..queues import ensure_queues
from ..schedules.tick import tick
from ..states import JobStatus
from . import gate
from .claim import claim
from .completer import Completer
from .turn import attempt, complete_with_retry, finish

logger = logging.getLogger("djjobs")


# A burst run whose claims fail this many times in a row (database unreachable) exits 1
# instead of reporting "nothing due" with 0.
BURST_CLAIM_TRIES = 3

# Jobs shorter than this on average are prefetched (claimed ahead of free threads), as many
# as the threads get through in about PREFETCH_SECONDS, at most PREFETCH_MAX per worker.
PREFETCH_BELOW_SECONDS = 0.05
PREFETCH_SECONDS = 0.05
PREFETCH_MAX = 200

_NOT_IN_ATOMIC: dict[str, bool] = {}


def default_worker_id() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{get_random_string(6)}"


@dataclass(slots=True)
class _Running:
    job: object
    deadline: float | None  # time.monotonic() past which the attempt has timed out
    finished: bool = False  # the task returned; its completion is queued for the completer


class Runner:
    """One worker process: a claiming loop plus ``concurrency`` threads running jobs."""

    def __init__(
        self,
        *,
        queues: list[str] | None = None,
        concurrency: int | None = None,
        burst: bool = False,
        max_jobs: int | None = None,
        worker_id: str | None = None,
        thread_timeouts: bool = True,
        parent_pid: int | None = None,
    ):
        self.queues = sorted(queues) if queues else None
        # In process mode the supervisor enforces timeouts by killing the process instead.
        self.thread_timeouts = thread_timeouts
        # A forked child stops when its supervisor is gone (its parent pid changes).
        self.parent_pid = parent_pid
        self.concurrency = concurrency or conf.get("CONCURRENCY")
        self.burst = burst
        self.max_jobs = max_jobs
        self.worker_id = worker_id or default_worker_id()
        self.lease_seconds = conf.get("LEASE_SECONDS")
        self.claimed_total = 0
        self.done = 0
        self.failed = 0
        self.stopping = threading.Event()
        self._wakeup = threading.Event()
        self._lock = threading.Lock()
        # Keyed by the job id's text (ClaimedJob.key): a str hashes once, a UUID on every lookup.
        self._running: dict = {}  # job key -> _Running, for heartbeats and timeouts
        self._timed: dict = {}  # job key -> _Running, the started ones with a deadline still running
        self._wake_at_busy = 0  # a finished job wakes the loop when _busy is down to this (a claim is due)
        self._busy = 0  # jobs claimed and not yet returned by their thread (queued or running)
        self._signals = 0
        self._outage = Outage(f"worker {self.worker_id}", self.stopping.wait)
        self._exit_code = 0
        self._avg_duration = 1.0  # seconds, moving average of recent jobs; no prefetch until known
        self._completer = None
        self._crashed = threading.Event()  # one of the worker's threads died: see _start()

    # -- public --------------------------------------------------------------------------

    def run(self) -> int:
        """Work until stopped (or, with burst, until nothing is due); returns the exit code."""
        self._install_signal_handlers()
        logger.info(
            "worker %s starting: queues=%s concurrency=%d%s",
            self.worker_id,
            ",".join(self.queues or ["*"]),
            self.concurrency,
            " burst" if self.burst else "",
        )
        self._guarded(self._register)
        heartbeat = self._start(threading.Thread(target=self._heartbeat_loop, name="djjobs-heartbeat", daemon=True))
        if conf.get("LISTEN") and not self.burst and listen_supported():
            self._start(Listener(self.queues, self._wakeup.set, self.stopping))
        inbox: queue.SimpleQueue = queue.SimpleQueue()
        threads = [
            self._start(threading.Thread(target=self._job_thread, args=(inbox,), name=f"djjobs-job-{i}", daemon=True))
            for i in range(self.concurrency)
        ]
        self._completer = self._start(Completer(self.worker_id, self._completed))
        try:
            self._loop(inbox)
        finally:
            if self.stopping.is_set():
                self._give_back(inbox)
            for _ in threads:
                inbox.put(None)
            if not self._crashed.is_set():
                self._drain(threads)
            self._completer.stop()
            # After a crash, what is queued gets a moment to be written; running jobs are left
            # to the rescuer (their leases are no longer renewed).
            self._completer.join(timeout=5 if self._crashed.is_set() else None)
            self.stopping.set()
            heartbeat.join(timeout=5)
            self._guarded(self._unregister)
            connections.close_all()
        logger.info("worker %s stopped after %d job(s)", self.worker_id, self.claimed_total)
        flush_logs()
        return self._exit_code

    def stop(self) -> None:
        self.stopping.set()
        self._wakeup.set()

    # -- the thread guard ----------------------------------------------------------------

    def _start(self, thread: threading.Thread) -> threading.Thread:
        """Start one of the worker's threads (job threads, completer, heartbeat, listener) under
        the guard: an exception that escapes its ``run()`` takes the worker down (_crash)."""
        run = thread.run

        def guarded() -> None:
            try:
                run()
            except BaseException:  # noqa: BLE001 - whatever it is, the thread is gone
                self._crash(thread)

        thread.run = guarded
        thread.start()
        return thread

    def _crash(self, thread: threading.Thread) -> None:
        """A worker thread died: a worker missing its completer, heartbeat or a job thread would
        live on holding leases it renews for jobs it never finishes. So it stops claiming and
        heartbeating (its jobs' leases expire and the rescuer takes them), gives its prefetched
        jobs back, and exits with code 1, for systemd or the supervisor to start a fresh one."""
        logger.critical(
            "worker %s: thread %s died; the worker stops (exit code 1) so that it is "
            "restarted, and its running jobs will be rescued",
            self.worker_id,
            thread.name,
            exc_info=True,  # noqa: LOG014 - called from an except block
        )
        self._exit_code = 1
        self._crashed.set()
        self.stop()

    # -- the loop ------------------------------------------------------------------------

    def _loop(self, inbox) -> None:
        now = time.monotonic()
        next_rescue = now
        next_prune = now + random.uniform(0, conf.get("PRUNE_INTERVAL"))  # spread workers out
        next_tick = now
        claim_failures = 0
        while not self.stopping.is_set():
            if self.parent_pid is not None and os.getppid() != self.parent_pid:
                logger.warning("worker %s: supervisor is gone, stopping", self.worker_id)
                break
            now = time.monotonic()
            if now >= next_rescue:
                self._guarded(rescue_expired)
                next_rescue = now + conf.get("RESCUE_INTERVAL")
            if now >= next_prune and not self.burst:
                self._guarded(prune, 1000, 10)
                next_prune = now + conf.get("PRUNE_INTERVAL")
            if now >= next_tick:
                self._guarded(tick)
                next_tick = now + conf.get("SCHEDULER_INTERVAL")
            self._enforce_timeouts()
            capacity = self.concurrency + self._prefetch()
            free = capacity - self._busy
            if self.max_jobs is not None:
                free = min(free, self.max_jobs - self.claimed_total)
            # Claim in batches: wait until half the capacity is free (or all, when idle), so
            # a busy worker does not pay one claim round trip and commit per finished job.
            batch = max(1, capacity // 2)
            self._wake_at_busy = capacity - batch
            if free < batch and self._busy:
                free = 0
            # Read before the claim: a job that fails while the claim runs may be due again
            # (a retry) once its thread is done, so "nothing claimed and nothing busy" must
            # mean nothing was busy when the claim looked.
            # A success handed to the completer is not written yet: until it is, the job is in
            # _running, and what its completion releases (a FIFO key's next job) is not due yet.
            with self._lock:
                idle = self._busy == 0 and not self._running
            # Jobs beyond the idle threads are claimed ahead: if this worker is lost before it
            # starts them, the rescuer gives their attempt back (claim.py, rescuer.py).
            direct = self.concurrency - self._busy
            jobs = self._guarded(claim, self.worker_id, self.queues, free, self.lease_seconds, True, direct)
            claim_failures = claim_failures + 1 if jobs is None else 0
            jobs = jobs or []
            for job in jobs:
                with self._lock:
                    self._busy += 1
                    self._running[job.key] = _Running(job, None)  # the timeout runs from the start
                self.claimed_total += 1
                inbox.put(job)
            if self.max_jobs is not None and self.claimed_total >= self.max_jobs:
                break
            if self.burst and not jobs and idle and gate.rate_held():
                # Due jobs wait for a rate limit's window: they start within its period.
                self._wakeup.wait(0.05)
                continue
            if self.burst and not jobs and idle:
                if claim_failures and claim_failures < BURST_CLAIM_TRIES:
                    continue  # _guarded waited a moment: ask again
                if claim_failures:
                    logger.error(
                        "worker %s: burst ends, the database could not be asked what is due (%d tries)",
                        self.worker_id,
                        claim_failures,
                    )
                    self._exit_code = 1
                break
            flush_logs()  # an idle worker's log lines appear now, a busy one's once per claim
            # Sleep until a job finishes (a slot is free; in burst mode a retry may be due),
            # the poll interval passes (new jobs, rescue), the next timeout or the next tick.
            self._wakeup.wait(max(0.0, min(self._sleep_time(), next_tick - time.monotonic())))
            self._wakeup.clear()

    def _sleep_time(self) -> float:
        delay = conf.get("POLL_INTERVAL") * random.uniform(0.9, 1.1)
        if not self.thread_timeouts or not self._timed:
            return delay
        with self._lock:
            deadlines = [r.deadline for r in self._timed.values()]
        if deadlines:
            delay = max(0.0, min(delay, min(deadlines) - time.monotonic()))
        return delay

    def _drain(self, threads) -> None:
        """Graceful stop: wait for running jobs, still enforcing their timeouts."""
        while any(t.is_alive() for t in threads) and not self._crashed.is_set():
            self._enforce_timeouts()
            with self._lock:
                if self._busy and not self._running:
                    break  # only timed-out jobs are left: their results would be dropped anyway
            flush_logs()
            self._wakeup.wait(min(self._sleep_time(), 0.5) or 0.05)
            self._wakeup.clear()

    def _give_back(self, inbox) -> None:
        """Stopping: prefetched jobs no thread has started go back to the queue at once."""
        waiting = []
        while True:
            try:
                waiting.append(inbox.get_nowait())
            except queue.Empty:
                break
        if not waiting:
            return
        given = self._guarded(unclaim, waiting)
        with self._lock:
            for job in waiting:
                self._running.pop(job.key, None)
            self._busy -= len(waiting)
        self.claimed_total -= len(waiting)
        logger.info("worker %s: %d prefetched job(s) given back to the queue", self.worker_id, given or 0)

    def _job_thread(self, inbox) -> None:
        """One of ``concurrency`` threads: runs jobs from the inbox until told to stop."""
        try:
            while (job := inbox.get()) is not None:
                self._run_one(job)
        finally:
            connections.close_all()  # this thread's connections
            self._wakeup.set()  # a draining worker sees this thread end at once

    def _prefetch(self) -> int:
        """Jobs claimed beyond the free threads, waiting in the inbox.

        Only while jobs are short (recent average under PREFETCH_BELOW_SECONDS): then claims
        come in batches and cost less per job; the shorter the jobs, the bigger the batch
        (about PREFETCH_SECONDS of work, at most PREFETCH_MAX jobs). Long jobs are not
        hoarded: other workers may run them sooner, and their timeouts are measured from the
        claim in process mode.
        """
        average = self._avg_duration
        if average >= PREFETCH_BELOW_SECONDS:
            return 0
        ahead = int(self.concurrency * PREFETCH_SECONDS / max(average, 1e-4))
        return max(self.concurrency, min(PREFETCH_MAX, ahead))

    def _run_one(self, job) -> None:
        status = None
        deferred = False
        started = time.monotonic()
        if job.timeout:
            with self._lock:
                if (running := self._running.get(job.key)) is not None:
                    running.deadline = started + job.timeout
                    self._timed[job.key] = running
        try:
            # A job thread runs nothing but jobs, and each attempt closes a transaction its
            # task left open: no connection of this thread is inside one now.
            outcome, completed = attempt(job, self.worker_id, None, _NOT_IN_ATOMIC)
            self._avg_duration = 0.9 * self._avg_duration + 0.1 * (time.monotonic() - started)
            # Batched unless a workflow's run must move on in the completion's transaction.
            if completed is None and outcome.succeeded and self._completer is not None and job.workflow_run_id is None:
                with self._lock:
                    if (running := self._running.get(job.key)) is not None:
                        running.finished = True
                    self._timed.pop(job.key, None)
                self._completer.submit(job, outcome)  # the slot is free now; the lease is still renewed
                deferred = True
                return
            if completed is None:
                completed = complete_with_retry(job, outcome, self.worker_id)
            status = finish(job, outcome, completed, self.worker_id)
        except Exception:
            logger.exception(
                "worker %s could not run or complete job %s; it will be rescued when its lease expires",
                self.worker_id,
                job.id,
            )
            connections.close_all()
        finally:
            with self._lock:
                self._busy -= 1
                if not deferred:
                    self._count(job, status)
                wake = self._busy <= self._wake_at_busy
            # Not on every job: the loop would only find too few free slots to claim.
            if wake and not self._wakeup.is_set():
                self._wakeup.set()

    def _completed(self, job, outcome, completed: bool) -> None:
        """The completer wrote (or could not write) a batched success."""
        status = finish(job, outcome, completed, self.worker_id)
        with self._lock:
            self._count(job, status)
        # Written: the slot it held under a limit is free, its key's next job may be READY, a
        # burst worker may be done. The loop looks (it claims only when enough slots are free).
        if not self._wakeup.is_set():
            self._wakeup.set()

    def _count(self, job, status) -> None:
        # Called with the lock held.
        self._running.pop(job.key, None)
        self._timed.pop(job.key, None)
        if status == JobStatus.SUCCESSFUL:
            self.done += 1
        elif status in (JobStatus.FAILED, JobStatus.READY):
            self.failed += 1

    # -- timeouts ------------------------------------------------------------------------

    def _enforce_timeouts(self) -> None:
        """Fail attempts past their timeout on time. A thread cannot be killed: the task's
        code runs on, its slot stays busy, and its late result is dropped by the lease guard."""
        if not self.thread_timeouts:
            return
        if not self._timed:
            return
        now = time.monotonic()
        with self._lock:
            expired = [r for r in self._timed.values() if r.deadline <= now and not r.finished]
        for running in expired:
            job = copy.copy(running.job)
            completed = self._guarded(time_out, job, self.worker_id)  # task_finished when it ended
            if completed is None:
                continue  # database unreachable: try again on the next turn
            with self._lock:  # timed out, or no longer ours (cancelled, rescued): stop watching
                self._running.pop(job.key, None)
                self._timed.pop(job.key, None)
            if completed:
                logger.error(
                    "job timed out task=%s id=%s attempt=%d/%d timeout=%gs, now %s",
                    job.task_path,
                    job.id,
                    job.attempts,
                    job.max_attempts,
                    job.timeout,
                    job.status,
                )

    # -- database guard ------------------------------------------------------------------

    def _guarded(self, func, *args):
        """Call a database step; on a database error log (at most once a second), reconnect, go on."""
        return self._outage.guard(func, *args)

    # -- heartbeats and the worker row ---------------------------------------------------

    def _register(self) -> None:
        Worker.objects.update_or_create(
            id=self.worker_id,
            defaults={
                "hostname": socket.gethostname()[:255],
                "pid": os.getpid(),
                "queues": self.queues or [],
                "concurrency": self.concurrency,
                "started_at": timezone.now(),
                "last_heartbeat_at": timezone.now(),
                "stopped_at": None,
            },
        )
        # Its queues appear in the admin's Queues screen (to pause or limit) from its start.
        ensure_queues(self.queues or ())

    def _unregister(self) -> None:
        Worker.objects.filter(id=self.worker_id).update(
            stopped_at=timezone.now(), jobs_done=self.done, jobs_failed=self.failed
        )

    def _heartbeat_loop(self) -> None:
        interval = conf.get("HEARTBEAT_INTERVAL")
        if not (isinstance(interval, (int, float)) and 0 < interval < self.lease_seconds):  # djjobs.E301/E302
            logger.warning(
                "DJJOBS['HEARTBEAT_INTERVAL'] %r is not between 0 and LEASE_SECONDS (%s): renewing "
                "leases every %s s instead",
                interval,
                self.lease_seconds,
                self.lease_seconds / 3,
            )
            interval = self.lease_seconds / 3
        while not self.stopping.wait(interval):
            self._guarded(self._heartbeat)
        connections.close_all()

    def _heartbeat(self) -> None:
        if self._crashed.is_set():
            return  # a dead worker's leases must expire
        now = timezone.now()
        with self._lock:
            running = {job_id: r.job.lease_token for job_id, r in self._running.items()}
        if running:
            Job.objects.filter(
                id__in=list(running), status=JobStatus.RUNNING, lease_token__in=set(running.values())
            ).update(lease_expires_at=now + timedelta(seconds=self.lease_seconds))
        updated = Worker.objects.filter(id=self.worker_id).update(
            last_heartbeat_at=now, jobs_done=self.done, jobs_failed=self.failed
        )
        if not updated:  # pruned while we were unreachable: come back
            self._register()

    # -- signals -------------------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        self._signals += 1
        if self._signals > 1 and self.parent_pid is not None and signum == signal.SIGTERM:
            # A supervisor's worker process: systemd's default KillMode=control-group sends
            # SIGTERM to every process of the service, and the supervisor forwards its own, so a
            # second SIGTERM is no hurry; the supervisor escalates with SIGKILL when it must.
            logger.info("worker %s: %s received again, still finishing its jobs", self.worker_id, "SIGTERM")
            return
        if self._signals > 1:
            logger.warning("worker %s: second signal, exiting now; running jobs will be rescued", self.worker_id)
            os._exit(1)
        logger.info(
            "worker %s: %s received, finishing %d running job(s)",
            self.worker_id,
            signal.Signals(signum).name,
            self._busy,
        )
        self.stop()
