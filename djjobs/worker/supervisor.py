"""Process mode: a supervisor with N forked worker processes.

The supervisor restarts a child that dies and releases the jobs it held at once (no need
to wait for their leases), recycles children after ``max_jobs_per_child`` jobs, kills a
child whose job ran past its timeout or ignored a cancellation past the grace period, and
forwards SIGTERM for a graceful stop. It runs no jobs itself.
"""

import logging
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connections
from django.utils import timezone

from .. import conf
from ..lifecycle.finish import kill_cancelled, release_lost, time_out
from ..lifecycle.outage import Outage
from ..logs import flush_all as flush_logs
from ..models import Job, Worker
from ..states import JobStatus
from .runner import Runner, default_worker_id

logger = logging.getLogger("djjobs")

CHECK_INTERVAL = 0.25  # seconds between the supervisor's looks at its children
FAST_CRASH = 1.0  # a child that dies younger than this is restarted only after a pause


@dataclass
class _Child:
    slot: int
    worker_id: str
    pid: int
    started: float = field(default_factory=time.monotonic)


class Supervisor:
    def __init__(
        self,
        *,
        processes: int,
        queues: list[str] | None = None,
        concurrency: int | None = None,
        burst: bool = False,
        max_jobs_per_child: int | None = None,
        worker_id: str | None = None,
    ):
        self.processes = processes
        self.worker_kwargs: dict[str, Any] = {
            "queues": queues,
            "concurrency": concurrency,
            "burst": burst,
            "max_jobs": max_jobs_per_child,
        }
        self.burst = burst
        self.base_id = (worker_id or default_worker_id())[:52]
        self.children: dict[int, _Child] = {}  # pid -> child
        self.stopping = threading.Event()
        self._signals = 0
        self._generation = 0
        self._outage = Outage(f"supervisor {self.base_id}")
        self._exit_code = 0

    def run(self) -> int:
        self._install_signal_handlers()
        logger.info("supervisor %s starting %d worker process(es)", self.base_id, self.processes)
        for slot in range(self.processes):
            self._spawn(slot)
        while self.children:
            self._reap()
            # Also while stopping: a graceful stop still kills a job that overstays its
            # timeout (or ignores its cancellation) instead of waiting for it.
            self._guarded(self._enforce_limits)
            if self.children:
                flush_logs()
                time.sleep(CHECK_INTERVAL)
        connections.close_all()
        logger.info("supervisor %s stopped", self.base_id)
        flush_logs()
        return self._exit_code

    # -- children ------------------------------------------------------------------------

    def _spawn(self, slot: int) -> None:
        self._generation += 1
        worker_id = f"{self.base_id}-{slot}.{self._generation}"
        connections.close_all()  # a child must never share the parent's connections
        flush_logs()  # or the child would inherit, and write again, the lines waiting to be written
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child
            code = 1
            try:
                # Its own process group: a terminal's Ctrl-C reaches the supervisor only, which
                # forwards one SIGTERM (two signals would make the child exit at once).
                os.setpgid(0, 0)
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, signal.SIG_DFL)
                random.seed()
                code = Runner(worker_id=worker_id, thread_timeouts=False, parent_pid=parent, **self.worker_kwargs).run()
            except BaseException:
                logger.exception("worker process %s crashed", worker_id)
            finally:
                flush_logs()  # os._exit skips logging's own flush at exit
                os._exit(code)
        self.children[pid] = _Child(slot, worker_id, pid)
        logger.info("supervisor %s: started worker %s (pid %d)", self.base_id, worker_id, pid)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is not None:
                self._on_exit(child, os.waitstatus_to_exitcode(status))

    def _on_exit(self, child: _Child, code: int) -> None:
        """A child ended: release what it held, and replace it unless we are stopping."""
        released = self._guarded(self._release, child, f"worker process exited with code {code}")
        if code != 0 or released:
            logger.warning(
                "supervisor %s: worker %s (pid %d) exited with code %d; %d job(s) released",
                self.base_id,
                child.worker_id,
                child.pid,
                code,
                released or 0,
            )
        if self.stopping.is_set() or (self.burst and code == 0):
            return
        if self.burst and code > 0:
            # It ended by itself (the database unreachable, or it crashed): another would do the
            # same. Only a child killed by a signal is replaced, to finish the work.
            self._exit_code = code
            return
        if time.monotonic() - child.started < FAST_CRASH and code != 0:
            self.stopping.wait(FAST_CRASH)  # do not spin on a child that cannot start
            if self.stopping.is_set():
                return  # a stop arrived during the pause
        self._spawn(child.slot)

    def _release(self, child: _Child, why: str) -> int:
        Worker.objects.filter(id=child.worker_id, stopped_at__isnull=True).update(stopped_at=timezone.now())
        released = total = 0
        while True:  # in batches, until none of the child's jobs is left RUNNING
            released = release_lost(Job.objects.filter(worker_id=child.worker_id), why, batch=500)
            total += released
            if not released:
                return total

    # -- timeouts and cancellation -------------------------------------------------------

    def _enforce_limits(self) -> None:
        """Kill a child whose job overstayed its timeout or ignored a cancellation."""
        by_worker = {c.worker_id: c for c in self.children.values()}
        now = timezone.now()
        grace = timedelta(seconds=conf.get("CANCEL_GRACE_SECONDS"))
        rows = Job.objects.filter(status=JobStatus.RUNNING, worker_id__in=list(by_worker)).exclude(
            timeout__isnull=True, cancel_requested_at__isnull=True
        )
        for job in rows:
            started = job.last_attempted_at  # set by every claim: a RUNNING job has it
            if job.timeout and started is not None and started + timedelta(seconds=job.timeout) <= now:
                self._kill_for(by_worker[job.worker_id], job, "timeout")
            elif job.cancel_requested_at and job.cancel_requested_at + grace <= now:
                self._kill_for(by_worker[job.worker_id], job, "cancel")

    def _kill_for(self, child: _Child, job, reason: str) -> None:
        if child.pid not in self.children:
            return  # already killed for another of its jobs
        os.kill(child.pid, signal.SIGKILL)
        os.waitpid(child.pid, 0)
        del self.children[child.pid]
        if reason == "timeout":
            time_out(job, child.worker_id, child.pid)
        else:
            kill_cancelled(job)
        logger.error(
            "supervisor %s: killed worker %s (pid %d): job %s %s",
            self.base_id,
            child.worker_id,
            child.pid,
            job.id,
            "timed out" if reason == "timeout" else "ignored its cancellation",
        )
        self._on_exit(child, -signal.SIGKILL)

    # -- signals and the database --------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        self._signals += 1
        if self._signals > 1:
            logger.warning("supervisor %s: second signal, killing workers", self.base_id)
            for pid in list(self.children):
                _kill(pid, signal.SIGKILL)
            os._exit(1)
        logger.info(
            "supervisor %s: %s received, stopping workers gracefully", self.base_id, signal.Signals(signum).name
        )
        self.stopping.set()
        for pid in list(self.children):
            _kill(pid, signal.SIGTERM)

    def _guarded(self, func, *args):
        return self._outage.guard(func, *args)


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
