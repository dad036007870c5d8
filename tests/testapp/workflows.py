"""Workflows (and their tasks) used by the test suite. Each task records an Execution row
whose label says what it did, so tests can read the order things ran in."""

import os

from djjobs import task
from djjobs.workflows import Step, Workflow

from .models import Execution
from .tasks import _current_job_id


def _log(label: str) -> None:
    Execution.objects.create(job_id=_current_job_id(), attempt=0, pid=os.getpid(), label=label)


@task()
def wf_reserve(order_id):
    _log(f"reserve:{order_id}")
    return {"reservation": f"R{order_id}"}


@task()
def wf_release(order_id, reservation):
    _log(f"release:{reservation}")


@task(max_attempts=1)
def wf_charge(order_id, amount=10, fail=False):
    _log(f"charge:{order_id}:{amount}")
    if fail:
        raise ValueError("card declined")
    return {"charge_id": f"C{order_id}"}


@task()
def wf_refund(charge_id):
    _log(f"refund:{charge_id}")


@task()
def wf_notify(**context):
    _log(f"notify:{sorted(context)}")
    return "notified"  # not a dict: stored under the step's name


@task()
def wf_ship(order_id, reservation, charge_id, notify):
    _log(f"ship:{reservation}:{charge_id}:{notify}")
    return {"tracking": f"T{order_id}"}


@task(max_attempts=1)
def wf_step(name, fail_at=None):
    _log(f"step:{name}")
    if fail_at == name:
        raise RuntimeError(f"{name} broke")
    return None


@task(max_attempts=1)
def wf_undo(name):
    _log(f"undo:{name}")


@task(max_attempts=1)
def wf_undo_once_broken(name):
    """Fails the first time it runs for a name, succeeds after."""
    first = not Execution.objects.filter(label=f"undo-broken:{name}").exists()
    _log(f"undo-broken:{name}")
    if first:
        raise RuntimeError("the undo broke")


checkout = Workflow(
    "test-checkout",
    [
        Step("reserve", wf_reserve, compensate=wf_release),
        [Step("charge", wf_charge, compensate=wf_refund), Step("notify", wf_notify)],
        Step("ship", wf_ship),
    ],
)

three = Workflow(
    "test-three",
    [
        Step("a", wf_step, kwargs={"name": "a"}, compensate=wf_undo),
        Step("b", wf_step, kwargs={"name": "b"}, compensate=wf_undo_once_broken),
        Step("c", wf_step, kwargs={"name": "c"}, compensate=wf_undo),
    ],
)


@task()
def wf_sleep(run_no, name, seconds=0.2):
    import time

    _log(f"{run_no}:{name}")
    time.sleep(seconds)
    return {f"done_{name}": True}


slow = Workflow(
    "test-slow",
    [
        Step("a", wf_sleep, kwargs={"name": "a"}),
        [Step("b1", wf_sleep, kwargs={"name": "b1"}), Step("b2", wf_sleep, kwargs={"name": "b2"})],
        Step("c", wf_sleep, kwargs={"name": "c"}),
    ],
)


branchy = Workflow(
    "test-branchy",
    [
        Step("a", wf_step, kwargs={"name": "a"}, compensate=wf_undo),
        [
            Step("gift", wf_step, kwargs={"name": "gift"}, when="gift_wrap", compensate=wf_undo),
            Step("b", wf_step, kwargs={"name": "b"}),
        ],
        Step("express", wf_step, kwargs={"name": "express"}, when="express"),
        Step("c", wf_step, kwargs={"name": "c"}),
    ],
)

skips_first = Workflow(
    "test-skips-first",
    [
        Step("maybe", wf_step, kwargs={"name": "maybe"}, when="wanted"),
        Step("then", wf_step, kwargs={"name": "then"}),
    ],
)
