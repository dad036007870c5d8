"""Workflows: start, the groups run in order with the context merged, compensation in reverse
order, failures of compensations, cancellation, retries, rescue, crash safety and pruning."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from djjobs import operations, workflows
from djjobs.compat import InvalidTask
from djjobs.lifecycle import finish
from djjobs.lifecycle.finish import complete
from djjobs.maintenance.pruner import prune
from djjobs.maintenance.rescuer import rescue_expired
from djjobs.models import Job, RunStatus, WorkflowRun
from djjobs.states import JobStatus
from djjobs.testing import run_jobs
from djjobs.worker.claim import claim
from djjobs.worker.executor import execute
from djjobs.workflows import Step, Workflow, cancel_run, progress, start
from tests.testapp.models import Execution
from tests.testapp.tasks import add
from tests.testapp.workflows import checkout, three, wf_charge, wf_reserve

pytestmark = pytest.mark.django_db(transaction=True)


def labels() -> list[str]:
    return list(Execution.objects.order_by("id").values_list("label", flat=True))


def steps(run) -> dict:
    return {(j.workflow_role, j.workflow_step): j for j in Job.objects.filter(workflow_run=run)}


def refreshed(run) -> WorkflowRun:
    return WorkflowRun.objects.get(pk=run.pk)


# -- start ------------------------------------------------------------------------------------


def test_start_writes_the_run_and_every_step_first_group_ready():
    run = checkout.start(order_id=7)
    assert run.status == RunStatus.RUNNING and run.input == {"order_id": 7}
    jobs = steps(run)
    assert set(jobs) == {("step", "reserve"), ("step", "charge"), ("step", "notify"), ("step", "ship")}
    assert jobs["step", "reserve"].status == JobStatus.READY
    assert jobs["step", "reserve"].kwargs == {"order_id": 7}
    assert jobs["step", "reserve"].task_path == wf_reserve.module_path
    for name in ("charge", "notify", "ship"):
        assert jobs["step", name].status == JobStatus.WAITING
    assert refreshed(run).plan[1][0] == {
        "name": "charge",
        "task": wf_charge.module_path,
        "kwargs": {},
        "compensate": "tests.testapp.workflows.wf_refund",
        "when": None,
    }


def test_start_is_part_of_the_callers_transaction():
    with pytest.raises(RuntimeError), transaction.atomic():
        checkout.start(order_id=1)
        raise RuntimeError("roll back")
    assert WorkflowRun.objects.count() == 0 and Job.objects.count() == 0


def test_bad_input_writes_nothing():
    with pytest.raises(InvalidTask, match="JSON"):
        checkout.start(order_id=object())
    with pytest.raises(InvalidTask, match="MAX_PAYLOAD_BYTES"):
        checkout.start(order_id="x" * 2_000_000)
    assert WorkflowRun.objects.count() == 0 and Job.objects.count() == 0


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Workflow("w", []), "no steps"),
        (lambda: Workflow("w", [[]]), "empty group"),
        (lambda: Workflow("w", [Step("a", add), Step("a", add)]), "more than one step 'a'"),
        (lambda: Workflow("w", ["add"]), "holds Steps"),
        (lambda: Step("a", lambda: None), "runs a task"),
        (lambda: Step("a b", add), "step name"),
        (lambda: Step("a", add, compensate="x"), "compensate= takes a task"),
        (lambda: Step("a", add, kwargs={"when": timezone.now()}), "JSON"),
        (lambda: Step("a", add, when=""), "when= names a key"),
    ],
)
def test_bad_definitions_are_refused(build, message):
    with pytest.raises(InvalidTask, match=message):
        build()


# -- running forward ----------------------------------------------------------------------------


def test_groups_run_in_order_with_the_context_merged():
    run = checkout.start(order_id=7)
    assert run_jobs() == 4
    run = refreshed(run)
    assert run.status == RunStatus.SUCCESSFUL and run.finished_at is not None
    assert run.context == {
        "order_id": 7,
        "reservation": "R7",
        "charge_id": "C7",
        "notify": "notified",
        "tracking": "T7",
    }
    done = labels()
    assert done[0] == "reserve:7"
    assert set(done[1:3]) == {"charge:7:10", "notify:['order_id', 'reservation']"}
    assert done[3] == "ship:R7:C7:notified"
    jobs = steps(run)
    # Each step got the context's keys its function takes; **kwargs takes them all.
    assert jobs["step", "charge"].kwargs == {"order_id": 7}
    assert jobs["step", "ship"].kwargs == {"order_id": 7, "reservation": "R7", "charge_id": "C7", "notify": "notified"}
    assert all(j.status == JobStatus.SUCCESSFUL for j in jobs.values())


def test_a_group_waits_for_all_its_steps():
    run = checkout.start(order_id=3)
    assert run_jobs(max_jobs=2) == 2  # reserve, then one of charge / notify
    jobs = steps(run)
    assert jobs["step", "ship"].status == JobStatus.WAITING
    assert run_jobs() == 2
    assert refreshed(run).status == RunStatus.SUCCESSFUL


# -- failure and compensation -------------------------------------------------------------------


def test_a_failed_step_compensates_what_succeeded_in_reverse_order():
    run = three.start(fail_at="c")
    run_jobs()
    run = refreshed(run)
    # b's compensation fails once: the run is FAILED until someone retries it.
    assert labels() == ["step:a", "step:b", "step:c", "undo-broken:b"]
    assert run.status == RunStatus.FAILED
    assert "step 'c' failed (RuntimeError: c broke)" in run.reason
    assert "compensation of 'b' failed" in run.reason
    undo_b = steps(run)["compensate", "b"]
    assert undo_b.kwargs == {"name": "b"}  # the step's own kwargs go to its compensation

    assert operations.retry(undo_b.pk) == operations.Answer.DONE
    assert refreshed(run).status == RunStatus.COMPENSATING
    run_jobs()
    run = refreshed(run)
    assert labels()[4:] == ["undo-broken:b", "undo:a"]
    assert run.status == RunStatus.COMPENSATED and run.finished_at is not None
    assert ("compensate", "c") not in steps(run)  # c never succeeded: nothing to undo


def test_a_failed_parallel_step_cancels_the_rest_and_undoes_the_first_group():
    run = checkout.start(order_id=9, fail=True)
    run_jobs()
    run = refreshed(run)
    assert run.status == RunStatus.COMPENSATED
    jobs = steps(run)
    assert jobs["step", "charge"].status == JobStatus.FAILED
    assert jobs["step", "ship"].status == JobStatus.CANCELLED
    assert jobs["step", "notify"].status in (JobStatus.SUCCESSFUL, JobStatus.CANCELLED)  # ran first, or not
    assert jobs["compensate", "reserve"].status == JobStatus.SUCCESSFUL
    assert ("compensate", "charge") not in jobs  # the failed step itself is not undone
    assert labels()[-1] == "release:R9"
    assert not any(label.startswith(("ship", "refund")) for label in labels())


def test_a_failed_step_cannot_be_retried():
    run = three.start(fail_at="a")
    run_jobs()
    assert refreshed(run).status == RunStatus.COMPENSATED  # nothing had succeeded
    failed = steps(run)["step", "a"]
    assert operations.retry(failed.pk) == operations.Answer.NOT_ALLOWED
    assert Job.objects.get(pk=failed.pk).status == JobStatus.FAILED


def test_cancelling_a_waiting_step_compensates():
    run = checkout.start(order_id=4)
    run_jobs(max_jobs=1)  # reserve
    ship = steps(run)["step", "ship"]
    assert operations.cancel(ship.pk) == operations.Answer.DONE
    run = refreshed(run)
    assert run.status == RunStatus.COMPENSATING and "step 'ship' cancelled" in run.reason
    jobs = steps(run)
    assert jobs["step", "charge"].status == JobStatus.CANCELLED  # READY, not started
    run_jobs()
    assert refreshed(run).status == RunStatus.COMPENSATED
    assert labels() == ["reserve:4", "release:R4"]


def test_cancel_run():
    run = checkout.start(order_id=5)
    run_jobs(max_jobs=1)
    assert cancel_run(run.pk, "the customer changed their mind") is True
    run = refreshed(run)
    assert run.status == RunStatus.COMPENSATING and run.reason == "the customer changed their mind"
    run_jobs()
    assert refreshed(run).status == RunStatus.COMPENSATED
    assert labels() == ["reserve:5", "release:R5"]
    assert cancel_run(run.pk) is False  # not running any more


def test_a_running_step_is_asked_to_stop_and_compensation_waits_for_it():
    run = checkout.start(order_id=6, fail=True)
    run_jobs(max_jobs=1)  # reserve
    both = claim("w1", None, 2, 30)  # charge and notify, now RUNNING
    by_step = {Job.objects.get(pk=j.id).workflow_step: j for j in both}
    outcome = execute(by_step["charge"], wf_charge)
    assert complete(by_step["charge"], outcome, "w1")  # FAILED: the run stops
    notify = Job.objects.get(pk=by_step["notify"].id)
    assert notify.status == JobStatus.RUNNING and notify.cancel_requested_at is not None
    assert refreshed(run).status == RunStatus.COMPENSATING
    assert ("compensate", "reserve") not in steps(run)  # not while notify runs
    from tests.testapp.workflows import wf_notify

    assert complete(by_step["notify"], execute(by_step["notify"], wf_notify), "w1")
    assert ("compensate", "reserve") in steps(run)
    run_jobs()
    assert refreshed(run).status == RunStatus.COMPENSATED


# -- crash safety -------------------------------------------------------------------------------


def test_the_completion_and_the_advance_commit_together(monkeypatch):
    run = checkout.start(order_id=8)
    [job] = claim("w1", None, 1, 30)
    outcome = execute(job, wf_reserve)

    def broken(run_id):
        raise RuntimeError("the process died here")

    monkeypatch.setattr(finish, "_advance_run", broken)  # the advance DjjobsConfig.ready() handed in
    with pytest.raises(RuntimeError):
        complete(job, outcome, "w1")
    # Neither happened: the step is still RUNNING under its lease (a rescue would run it
    # again), and nothing was released.
    jobs = steps(run)
    assert jobs["step", "reserve"].status == JobStatus.RUNNING
    assert jobs["step", "charge"].status == JobStatus.WAITING
    monkeypatch.undo()
    assert complete(job, outcome, "w1")
    assert steps(run)["step", "charge"].status == JobStatus.READY


def test_a_rescued_step_out_of_attempts_compensates():
    run = checkout.start(order_id=2)
    run_jobs(max_jobs=1)
    claimed = claim("w-lost", None, 2, 30)
    Job.objects.filter(id__in=[j.id for j in claimed]).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1), max_attempts=1
    )
    assert rescue_expired() == 2
    run = refreshed(run)
    assert run.status == RunStatus.COMPENSATING
    assert "WorkerLost" in run.reason
    assert steps(run)["compensate", "reserve"].status == JobStatus.READY
    run_jobs()
    assert refreshed(run).status == RunStatus.COMPENSATED


def test_advance_is_idempotent():
    run = checkout.start(order_id=1)
    run_jobs()
    before = {k: (j.status, j.kwargs) for k, j in steps(run).items()}
    workflows.advance(run.pk)
    workflows.advance(run.pk)
    assert {k: (j.status, j.kwargs) for k, j in steps(run).items()} == before
    assert refreshed(run).status == RunStatus.SUCCESSFUL


# -- retention ----------------------------------------------------------------------------------


def test_runs_are_pruned_with_their_jobs_and_their_jobs_only_with_them(settings):
    settings.DJJOBS = {"RETENTION_DAYS": {"SUCCESSFUL": 1, "FAILED": 1, "CANCELLED": 1}}
    old = checkout.start(order_id=1)
    run_jobs()
    assert refreshed(old).status == RunStatus.SUCCESSFUL
    active = checkout.start(order_id=2)
    run_jobs(max_jobs=1)  # the other run's first step: finished, its run still running
    long_ago = timezone.now() - timedelta(days=3)
    Job.objects.filter(status=JobStatus.SUCCESSFUL).update(finished_at=long_ago)
    WorkflowRun.objects.filter(pk=old.pk).update(finished_at=long_ago)
    counts = prune()
    assert counts["workflow runs"] == 1
    assert not WorkflowRun.objects.filter(pk=old.pk).exists()
    assert not Job.objects.filter(workflow_run_id=old.pk).exists()
    assert steps(active)["step", "reserve"].status == JobStatus.SUCCESSFUL  # kept with its run


def test_steps_must_use_a_djjobs_backend(monkeypatch):
    monkeypatch.setattr(start, "backend_of", lambda task: object())
    with pytest.raises(InvalidTask, match="not djjobs"):
        checkout.start(order_id=1)
    assert WorkflowRun.objects.count() == 0


@pytest.mark.postgresql
def test_a_steps_completion_commits_asynchronously_and_only_itself(monkeypatch):
    """ASYNC_COMMIT: the completion's transaction is relaxed with SET LOCAL; the connection (on
    which the next task's code runs) keeps synchronous commits."""
    from django.db import connection

    from djjobs.lifecycle import finish as complete_module

    seen = []
    relax = complete_module._relax_this_transaction

    def spy(conn):
        relax(conn)
        with conn.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            seen.append(cursor.fetchone()[0])

    monkeypatch.setattr(complete_module, "_relax_this_transaction", spy)
    run = checkout.start(order_id=1)
    run_jobs(max_jobs=1)
    assert seen == ["off"]
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
    assert steps(run)["step", "charge"].status == JobStatus.READY


def test_a_step_is_retried_while_its_run_waits():
    from tests.testapp.tasks import flaky
    from tests.testapp.workflows import wf_step

    retried = Workflow(
        "test-retried",
        [Step("flaky", flaky, kwargs={"succeed_on": 3}), Step("after", wf_step, kwargs={"name": "after"})],
    )
    run = retried.start()
    run_jobs()
    jobs = steps(run)
    assert jobs["step", "flaky"].status == JobStatus.SUCCESSFUL and jobs["step", "flaky"].attempts == 3
    assert jobs["step", "after"].status == JobStatus.SUCCESSFUL
    assert refreshed(run).status == RunStatus.SUCCESSFUL


def test_cancel_run_stops_and_begins_compensating_in_one_transaction(monkeypatch):
    run = checkout.start(order_id=3)
    run_jobs(max_jobs=1)

    def broken(run_id):
        raise RuntimeError("the process died here")

    monkeypatch.setattr(progress, "advance", broken)
    with pytest.raises(RuntimeError):
        cancel_run(run.pk)
    assert refreshed(run).status == RunStatus.RUNNING  # nothing half done
    assert steps(run)["step", "charge"].status == JobStatus.READY
    monkeypatch.undo()
    assert cancel_run(run.pk)
    assert steps(run)["compensate", "reserve"].status == JobStatus.READY


# -- branches (when=) ---------------------------------------------------------------------------


def test_a_step_runs_only_when_its_key_is_true():
    from tests.testapp.workflows import branchy

    wrapped = branchy.start(gift_wrap=True)
    run_jobs()
    wrapped = refreshed(wrapped)
    assert wrapped.status == RunStatus.SUCCESSFUL and wrapped.skipped == ["express"]
    assert ("step", "express") not in steps(wrapped)  # its job is gone: it never ran
    assert sorted(labels()) == ["step:a", "step:b", "step:c", "step:gift"]

    Execution.objects.all().delete()
    plain = branchy.start()
    run_jobs()
    plain = refreshed(plain)
    assert plain.status == RunStatus.SUCCESSFUL and plain.skipped == ["gift", "express"]
    assert labels() == ["step:a", "step:b", "step:c"]


def test_a_skipped_first_group_releases_the_next_at_start():
    from tests.testapp.workflows import skips_first

    run = skips_first.start(wanted=False)
    assert run.skipped == ["maybe"]
    assert steps(run)["step", "then"].status == JobStatus.READY
    run_jobs()
    assert refreshed(run).status == RunStatus.SUCCESSFUL
    assert labels() == ["step:then"]


def test_skipped_steps_are_not_compensated():
    from tests.testapp.workflows import branchy

    run = branchy.start(fail_at="c")
    run_jobs()
    run = refreshed(run)
    assert run.status == RunStatus.COMPENSATED and run.skipped == ["gift", "express"]
    assert labels() == ["step:a", "step:b", "step:c", "undo:a"]
