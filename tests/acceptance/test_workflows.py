"""Acceptance: workflows run by real ``run_workers`` processes, also while children are kill -9'd.

Each step's task records an Execution row as it starts (tests/testapp/workflows.py), so the
order of the rows says whether a step ever started before its predecessors had succeeded.
"""

import os
import random
import signal
import time
from collections import Counter

import pytest

from djjobs.models import Job, RunStatus, WorkflowRun
from djjobs.states import JobStatus
from tests.testapp.models import Execution
from tests.testapp.workflows import checkout, slow

from .conftest import wait_until
from .test_crash import wait_children

pytestmark = [pytest.mark.acceptance]

FAST = "tests.acceptance.fast_settings"


def finished_runs() -> int:
    return WorkflowRun.objects.exclude(status__in=[RunStatus.RUNNING, RunStatus.COMPENSATING]).count()


@pytest.mark.timeout(180)
def test_runs_succeed_or_compensate_on_two_workers(workers):
    runs = {n: checkout.start(order_id=n, fail=n % 2 == 1) for n in range(40)}
    a = workers("--concurrency", "4", "--worker-id", "wf-a")
    b = workers("--concurrency", "4", "--worker-id", "wf-b")
    wait_until(lambda: finished_runs() == 40, timeout=120, message="40 runs finished", workers=[a, b])
    assert a.stop() == 0, a.log()
    assert b.stop() == 0, b.log()

    statuses = {n: WorkflowRun.objects.get(pk=run.pk).status for n, run in runs.items()}
    assert Counter(statuses.values()) == {RunStatus.SUCCESSFUL: 20, RunStatus.COMPENSATED: 20}
    labels = Counter(Execution.objects.values_list("label", flat=True))
    for n in range(40):
        assert labels[f"reserve:{n}"] == 1 and labels[f"charge:{n}:10"] == 1
        if n % 2 == 0:
            assert statuses[n] == RunStatus.SUCCESSFUL
            assert labels[f"ship:R{n}:C{n}:notified"] == 1 and labels[f"release:R{n}"] == 0
        else:  # its charge failed: the reservation is released once, nothing shipped
            assert statuses[n] == RunStatus.COMPENSATED
            assert labels[f"release:R{n}"] == 1
            assert not any(label.startswith(f"ship:R{n}:") for label in labels)
    assert not Job.objects.filter(status__in=[JobStatus.READY, JobStatus.RUNNING, JobStatus.WAITING]).exists()
    assert set(Job.objects.values_list("attempts", flat=True)) <= {0, 1}  # each job ran at most once
    for worker in (a, b):  # the charges' failures are logged with their tracebacks; nothing else went wrong
        text = worker.text()
        assert "database error" not in text and "could not run job" not in text, text[-3000:]
        assert text.count("Traceback") <= text.count("ValueError: card declined"), text[-3000:]


@pytest.mark.timeout(240)
def test_kill_9_during_runs_loses_no_step_and_never_runs_one_early(workers):
    """20 runs of 4 steps (0.2-0.3 s each) on --processes 2; a child kill -9'd 4 times."""
    rng = random.Random(7)
    runs = [slow.start(run_no=n, seconds=rng.choice([0.2, 0.3])) for n in range(20)]
    supervisor = workers("--processes", "2", "--concurrency", "3", "--worker-id", "wf-kill", settings=FAST)
    killed = set()
    for _ in range(4):
        children = wait_children(supervisor, 2, exclude=killed)
        time.sleep(rng.uniform(0.5, 1.0))  # the pace of the kills, not a wait for work
        victim = rng.choice(sorted(children))
        killed.add(victim)
        os.kill(victim, signal.SIGKILL)
    wait_until(lambda: finished_runs() == 20, timeout=150, message="20 runs finished", workers=[supervisor])
    assert supervisor.stop() == 0, supervisor.log()

    assert Counter(WorkflowRun.objects.values_list("status", flat=True)) == {RunStatus.SUCCESSFUL: 20}
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.SUCCESSFUL}
    rows = list(Execution.objects.order_by("id").values_list("id", "label"))
    for n, run in enumerate(runs):
        ids = {step: [i for i, label in rows if label == f"{n}:{step}"] for step in ("a", "b1", "b2", "c")}
        assert all(ids.values()), (n, ids)  # every step ran (a killed one again)
        # A step starts only after its predecessors' last start: they had succeeded first.
        assert max(ids["a"]) < min(ids["b1"]) and max(ids["a"]) < min(ids["b2"]), (n, ids)
        assert max(ids["b1"] + ids["b2"]) < min(ids["c"]), (n, ids)
        assert WorkflowRun.objects.get(pk=run.pk).context == {
            "run_no": n,
            "seconds": run.input["seconds"],
            "done_a": True,
            "done_b1": True,
            "done_b2": True,
            "done_c": True,
        }
    assert "killed" in supervisor.text() or "exited with code -9" in supervisor.text()
