"""How a worker answers SIGTERM and SIGINT (no process: the handler is called as the kernel would)."""

import signal

import pytest

from djjobs.worker import runner
from djjobs.worker.runner import Runner


@pytest.fixture
def exits(monkeypatch):
    codes = []
    monkeypatch.setattr(runner.os, "_exit", codes.append)
    return codes


def test_a_second_signal_makes_a_lone_worker_exit_at_once(exits):
    worker = Runner(concurrency=1, worker_id="lone")
    worker._on_signal(signal.SIGTERM, None)
    assert worker.stopping.is_set() and exits == []
    worker._on_signal(signal.SIGTERM, None)
    assert exits == [1]


def test_a_supervisors_worker_keeps_draining_on_a_second_sigterm(exits):
    """Under systemd (KillMode=control-group) a supervisor's worker gets SIGTERM from systemd and
    again from the supervisor: it must go on finishing its jobs, not drop them."""
    worker = Runner(concurrency=1, worker_id="child", parent_pid=1)
    worker._on_signal(signal.SIGTERM, None)
    worker._on_signal(signal.SIGTERM, None)
    assert worker.stopping.is_set() and exits == []
    worker._on_signal(signal.SIGINT, None)  # not one systemd or the supervisor sends: at once
    assert exits == [1]
