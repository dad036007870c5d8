"""The pure part of a job's life (djjobs.lifecycle.transitions), table-driven: for every path
and outcome, the resulting status, attempts, error entry, task_finished and workflow advance;
and the state table itself (a transition not in it raises)."""

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from djjobs.exceptions import Discard, InvalidReturnValue, JobTimeout, Retry
from djjobs.lifecycle import transitions as t
from djjobs.states import JobStatus
from djjobs.worker.executor import Outcome

R, W, RUN = JobStatus.READY, JobStatus.WAITING, JobStatus.RUNNING
OK, FAIL, CXL = JobStatus.SUCCESSFUL, JobStatus.FAILED, JobStatus.CANCELLED
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class FakeJob:
    attempts: int = 1
    max_attempts: int = 3
    retry_backoff: float = 1.0
    errors: list = field(default_factory=list)
    claimed_ahead: bool = False
    cancel_requested_at: datetime | None = None
    worker_id: str = "w1"
    worker_ids: list = field(default_factory=lambda: ["w1"])
    timeout: float = 2.0


UNCOUNTED = {"exception_class_path": t.WORKER_LOST, "counted": False}


def _attempt_path(job, outcome, cancel_requested, kind):
    """complete / timeout: (status, attempts, error kind) as the write would leave the row."""
    status, delay = t.decide(job, outcome, cancel_requested)
    if status == R:
        assert delay is not None and delay >= 0
    return status, job.attempts, (None if outcome.succeeded else kind)


def _rescue_path(job):
    changes = t.lost_worker_changes(job, "gone", NOW)
    entry = changes["errors"][-1]
    kind = "WorkerLost" + ("(uncounted)" if entry.get("counted") is False else "")
    assert entry["exception_class_path"] == t.WORKER_LOST and len(changes["errors"]) == len(job.errors) + 1
    assert ("finished_at" in changes) == t.ends(changes["status"])
    return changes["status"], changes.get("attempts", job.attempts), kind


def _timeout(job):
    message = t.timeout_message(job.attempts, job.timeout)
    return Outcome(error=JobTimeout(message), traceback=t.timeout_traceback(message))


# path, scenario, job, run -> expected (status, attempts, error kind, task_finished, advance of its run)
CASES = [
    (
        "complete",
        "success",
        FakeJob(),
        lambda j: _attempt_path(j, Outcome(return_value=1), False, "attempt"),
        (OK, 1, None, True, True),
    ),
    (
        "complete",
        "success though cancel requested",
        FakeJob(),
        lambda j: _attempt_path(j, Outcome(return_value=1), True, "attempt"),
        (OK, 1, None, True, True),
    ),
    (
        "complete",
        "error, attempts left",
        FakeJob(),
        lambda j: _attempt_path(j, Outcome(error=ValueError("x")), False, "attempt"),
        (R, 1, "attempt", False, False),
    ),
    (
        "complete",
        "Retry(delay), attempts left",
        FakeJob(),
        lambda j: _attempt_path(j, Outcome(error=Retry(delay=5)), False, "attempt"),
        (R, 1, "attempt", False, False),
    ),
    (
        "complete",
        "error, attempts spent",
        FakeJob(attempts=3),
        lambda j: _attempt_path(j, Outcome(error=ValueError("x")), False, "attempt"),
        (FAIL, 3, "attempt", True, True),
    ),
    (
        "complete",
        "Discard",
        FakeJob(),
        lambda j: _attempt_path(j, Outcome(error=Discard("no")), False, "attempt"),
        (FAIL, 1, "attempt", True, True),
    ),
    (
        "complete",
        "bad return value",
        FakeJob(),
        lambda j: _attempt_path(j, Outcome(error=InvalidReturnValue("x")), False, "attempt"),
        (FAIL, 1, "attempt", True, True),
    ),
    (
        "complete",
        "error, cancel requested",
        FakeJob(),
        lambda j: _attempt_path(j, Outcome(error=ValueError("x")), True, "attempt"),
        (CXL, 1, "attempt", True, True),
    ),
    (
        "timeout",
        "attempts left",
        FakeJob(),
        lambda j: _attempt_path(j, _timeout(j), False, "JobTimeout"),
        (R, 1, "JobTimeout", False, False),
    ),
    (
        "timeout",
        "attempts spent",
        FakeJob(attempts=3),
        lambda j: _attempt_path(j, _timeout(j), False, "JobTimeout"),
        (FAIL, 3, "JobTimeout", True, True),
    ),
    (
        "timeout",
        "cancel requested",
        FakeJob(),
        lambda j: _attempt_path(j, _timeout(j), True, "JobTimeout"),
        (CXL, 1, "JobTimeout", True, True),
    ),
    ("rescue", "direct, attempts left", FakeJob(), _rescue_path, (R, 1, "WorkerLost", False, False)),
    ("rescue", "direct, attempts spent", FakeJob(attempts=3), _rescue_path, (FAIL, 3, "WorkerLost", True, True)),
    (
        "rescue",
        "claimed ahead, first loss",
        FakeJob(claimed_ahead=True, attempts=3),
        _rescue_path,
        (R, 2, "WorkerLost(uncounted)", False, False),
    ),
    (
        "rescue",
        "claimed ahead, second loss, spent",
        FakeJob(claimed_ahead=True, attempts=3, errors=[UNCOUNTED]),
        _rescue_path,
        (FAIL, 3, "WorkerLost", True, True),
    ),
    ("rescue", "cancel requested", FakeJob(cancel_requested_at=NOW), _rescue_path, (CXL, 1, "WorkerLost", True, True)),
    (
        "rescue",
        "claimed ahead, cancel requested",
        FakeJob(claimed_ahead=True, cancel_requested_at=NOW),
        _rescue_path,
        (CXL, 1, "WorkerLost", True, True),
    ),
    (
        "kill_cancel",
        "ignored its cancellation",
        FakeJob(cancel_requested_at=NOW),
        lambda j: (CXL, j.attempts, None),
        (CXL, 1, None, True, True),
    ),
    ("cancel", "READY", FakeJob(attempts=0), lambda j: (CXL, j.attempts, None), (CXL, 0, None, True, True)),
    ("stop_run", "WAITING", FakeJob(attempts=0), lambda j: (CXL, j.attempts, None), (CXL, 0, None, True, True)),
    (
        "unclaim",
        "prefetched, never started",
        FakeJob(),
        lambda j: (R, j.attempts - 1, None),
        (R, 0, None, False, False),
    ),
    ("release_step", "next group", FakeJob(attempts=0), lambda j: (R, j.attempts, None), (R, 0, None, False, False)),
]


@pytest.mark.parametrize("path, scenario, job, run, expected", CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_every_path_and_outcome(path, scenario, job, run, expected):
    status, attempts, kind = run(job)
    assert (status, attempts, kind, t.ends(status), t.advances(status, True, path)) == expected
    # Whatever the path decided is an edge of its own and of the table.
    starts, ends = t.PATHS[path]
    assert status in ends
    for source in starts:
        t.check(source, status, path)
    assert not t.advances(status, False, path)  # not a workflow's job: nothing to advance


def test_retry_goes_back_to_ready_with_an_attempt_left_and_advances_its_run():
    for source in (FAIL, CXL):
        t.check(source, R, "retry")
    assert t.retry_max_attempts(3, 3) == 4 and t.retry_max_attempts(5, 1) == 5
    assert not t.ends(R) and t.advances(R, True, "retry")


@pytest.mark.parametrize(
    "status, answer", [(R, "cancel"), (W, "cancel"), (RUN, "request"), (OK, None), (FAIL, None), (CXL, None)]
)
def test_cancel_by_status(status, answer):
    assert t.on_cancel(status) == answer


@pytest.mark.parametrize("source, target", [(OK, R), (FAIL, RUN), (W, RUN), (W, OK), (R, OK), (CXL, FAIL), (OK, CXL)])
def test_a_transition_not_in_the_table_raises(source, target):
    assert not t.can_transition(source, target)
    with pytest.raises(t.IllegalTransition):
        t.check(source, target)


@pytest.mark.parametrize(
    "path, source, target",
    [("unclaim", RUN, FAIL), ("batch", RUN, FAIL), ("cancel", RUN, CXL), ("retry", OK, R), ("rescue", R, FAIL)],
)
def test_a_transition_its_path_does_not_make_raises(path, source, target):
    with pytest.raises(t.IllegalTransition):
        t.check(source, target, path)


def test_the_table_covers_every_status_and_every_path_moves_along_it():
    assert set(t.TRANSITIONS) == set(JobStatus.values)
    assert t.TRANSITIONS[OK] == frozenset()  # a success is final
    for path, (starts, ends) in t.PATHS.items():
        for source in starts:
            for target in ends:
                assert t.can_transition(source, target), (path, source, target)


def test_error_builders():
    entry = t.attempt_error(2, "x.Err", "bad\x00" + "m" * 3000, "tb", "w1", NOW)
    assert entry["attempt"] == 2 and entry["exception_class_path"] == "x.Err" and "\x00" not in entry["message"]
    assert len(entry["message"]) < 2010 and entry["at"] == NOW.isoformat() and entry["worker_id"] == "w1"
    assert t.timeout_message(2, 1.5) == "attempt 2 ran past its timeout of 1.5s"
    assert t.timeout_message(2, 1.5, 42).endswith("; worker process 42 was killed")
    assert t.timeout_traceback("m") == "djjobs.exceptions.JobTimeout: m\n"
    lost = t.worker_lost_error(FakeJob(), "why", t.Lost(CXL, False), NOW)
    assert lost["message"] == "worker 'w1' lost: why; its cancellation had been requested" and "counted" not in lost
    refunded = t.worker_lost_error(FakeJob(claimed_ahead=True), "why", t.Lost(R, True), NOW)
    assert refunded["counted"] is False and "not counted (once per job)" in refunded["message"]


def test_a_refund_of_a_first_attempt_is_as_if_never_claimed():
    changes = t.lost_worker_changes(FakeJob(claimed_ahead=True, attempts=1), "gone", NOW)
    assert changes["attempts"] == 0 and changes["started_at"] is None and changes["worker_id"] == ""
    assert changes["worker_ids"] == [] and changes["claimed_ahead"] is False and "finished_at" not in changes
