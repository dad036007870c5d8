"""Helpers of the acceptance tests: real ``manage.py run_workers`` processes on the test database.

Every test here uses ``transactional_db``: what the test process writes is committed, so the
worker processes (separate connections) see it, and what they write is visible to the test.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]  # the repository: manage.py lives here


def wait_until(predicate, timeout=60.0, interval=0.05, message="condition", workers=()):
    """Poll ``predicate`` until it returns a truthy value (returned), or fail after ``timeout`` s.

    A worker in ``workers`` that exits meanwhile fails the wait at once, with its log.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        for worker in workers:
            if worker.proc.poll() is not None:
                pytest.fail(f"worker exited with {worker.proc.returncode} while waiting for {message}\n{worker.log()}")
        if time.monotonic() >= deadline:
            logs = "\n".join(w.log() for w in workers)
            pytest.fail(f"timed out after {timeout}s waiting for {message}\n{logs}")
        time.sleep(interval)  # a polling interval, not a wait for work


def process_state(pid: int) -> str | None:
    """The one-letter state in /proc/<pid>/stat (R, S, T stopped, Z zombie...), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def live_children(pid: int) -> set[int]:
    """Direct children of ``pid`` (read from /proc/<pid>/task/*/children), zombies left out."""
    pids = set()
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            pids.update(int(p) for p in path.read_text().split())
        except OSError:  # the thread ended meanwhile
            pass
    return {p for p in pids if process_state(p) not in (None, "Z")}


class WorkerProcess:
    """One ``python manage.py run_workers`` process; its stdout and stderr go to a file."""

    def __init__(self, args, settings, log_path, db_name=None):
        self.args = list(args)
        self.log_path = log_path
        env = dict(os.environ)
        env["DJANGO_SETTINGS_MODULE"] = settings
        env["DJJOBS_TEST_DB_NAME"] = db_name or str(connection.settings_dict["NAME"])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        self._log_file = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "run_workers", *self.args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def text(self) -> str:
        """The whole log."""
        return Path(self.log_path).read_text(errors="replace")

    def log(self) -> str:
        """The log's tail, headed by the command line and exit code: for failure messages."""
        text = self.text()
        return f"--- worker pid {self.pid} {' '.join(self.args)} (exit {self.proc.poll()}) log:\n{text[-6000:]}"

    def wait_started(self, timeout=30.0) -> None:
        """Wait until the worker logged that it starts its loop (Django is set up, it claims next)."""
        wait_until(
            lambda: "starting:" in self.text(), timeout=timeout, message=f"worker {self.pid} to start", workers=[self]
        )

    def signal(self, signum) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout) -> int:
        """The exit code; fails the test (with the log) if the process is still running after ``timeout`` s."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker {self.pid} still running after {timeout}s\n{self.log()}")

    def stop(self, timeout=30.0) -> int:
        """SIGTERM (graceful) and wait for the exit code."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def children(self) -> set[int]:
        """Pids of this process's live children (the worker processes of ``--processes N``)."""
        return live_children(self.pid) if self.proc.poll() is None else set()

    def kill(self) -> None:
        """SIGKILL the process and, for a supervisor, its worker processes (their own process groups)."""
        if self.proc.poll() is None:
            # Stopped first, so it cannot fork a replacement between the listing and the kill.
            os.kill(self.pid, signal.SIGSTOP)
            children = self.children()
            self.proc.kill()
            self.proc.wait(timeout=30)
            for pid in children:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def close(self) -> None:
        self.kill()
        self._log_file.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def workers(request, transactional_db, tmp_path):
    """``workers(*args, settings=..., db_name=...)`` starts a run_workers process (on the test
    database unless ``db_name`` names another); all are killed at teardown.

    The fixture depends on ``transactional_db`` so the processes are gone before the tables
    are flushed (and before the PostgreSQL test database is dropped). When the test failed,
    the workers' logs are printed.
    """
    started: list[WorkerProcess] = []

    def start(*args, settings="tests.settings", db_name=None) -> WorkerProcess:
        worker = WorkerProcess(args, settings, tmp_path / f"worker-{len(started) + 1}.log", db_name)
        started.append(worker)
        return worker

    yield start

    for worker in started:
        worker.close()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for worker in started:
            print(worker.log())
