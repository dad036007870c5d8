"""The one insert path (djjobs.lifecycle.insert, issue 14): every producer of jobs (enqueue, a
unique enqueue, enqueue_many, a schedule's tick, an event, a trigger, a workflow) writes the
same validated columns and its own provenance, sends task_enqueued exactly once per job, and
refuses bad input the same way, writing nothing."""

from collections import Counter
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

import djjobs
from djjobs import conf, triggers
from djjobs.compat import InvalidTask, task_enqueued
from djjobs.events import InvalidEvent
from djjobs.models import Event, Job, Schedule, WorkflowRun
from djjobs.registry import resolve_task
from djjobs.schedules import tick as scheduler
from tests.testapp import tasks
from tests.testapp.models import TrackedOrder
from tests.testapp.workflows import checkout

pytestmark = pytest.mark.django_db

NUL = "a\x00b"


@pytest.fixture
def enqueued():
    """The ids of the TaskResults sent with task_enqueued, in order."""
    sent = []

    def receiver(sender, task_result, **kwargs):
        sent.append(task_result.id)

    task_enqueued.connect(receiver)
    yield sent
    task_enqueued.disconnect(receiver)


@pytest.fixture
def trigger():
    made = triggers.on_create(TrackedOrder, tasks.order_changed, name="insert-path-test")
    yield made
    triggers.unregister(made)


def _schedule(name="insert-path", args=(1, 2), **fields) -> Schedule:
    # Written around Schedule.clean() (a bad schedule may be in the table): what the tick does with it.
    schedule = Schedule.objects.create(
        name=name, task_path=tasks.add.module_path, cron="* * * * *", time_zone="UTC", args=list(args), **fields
    )
    # Due: the start of this minute, a fire time of "* * * * *" (one second ago could be off the
    # grid with a minute boundary in between: two fire times).
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=timezone.now().replace(second=0, microsecond=0))
    return Schedule.objects.get(pk=schedule.pk)


# -- each producer: its jobs, their columns, their provenance ------------------------------------


def _enqueue():
    tasks.add.enqueue(1, 2)
    return {}


def _unique():
    tasks.add.using(unique_key="insert-path").enqueue(1, 2)
    tasks.add.using(unique_key="insert-path").enqueue(3, 4)  # the same job: no row, no signal
    return {"unique_key": "insert-path"}


def _many():
    tasks.add.enqueue_many([(i, i) for i in range(25)])  # COPY on PostgreSQL
    tasks.add.enqueue_many([(1, 2)])
    return {}


def _tick():
    schedule = _schedule()
    assert scheduler.tick() == 1
    return {"schedule_id": schedule.pk}


def _run_now():
    schedule = _schedule("insert-path-now")
    scheduler.run_now(schedule)
    return {"schedule_id": schedule.pk}


def _event():
    published = djjobs.publish("order.validated", {"order_id": 7})
    assert len(published) == 2
    return {"event_id": published.event.pk}


def _trigger(trigger):
    TrackedOrder.objects.create(status="new")
    return {"trigger": trigger.name}


def _workflow():
    run = checkout.start(order_id=3)
    return {"workflow_run_id": run.pk}


PRODUCERS = {
    "enqueue": _enqueue,
    "unique": _unique,
    "enqueue_many": _many,
    "tick": _tick,
    "run_now": _run_now,
    "event": _event,
    "trigger": _trigger,
    "workflow": _workflow,
}


@pytest.mark.parametrize("producer", list(PRODUCERS))
def test_every_producer_writes_the_same_columns_its_provenance_and_one_signal_per_job(producer, enqueued, request):
    make = PRODUCERS[producer]
    before = timezone.now()
    with transaction.atomic():
        provenance = make(request.getfixturevalue("trigger")) if producer == "trigger" else make()
    jobs = list(Job.objects.all())
    assert jobs
    # task_enqueued: exactly once per job inserted (the signal's id is the row's).
    assert Counter(enqueued) == Counter(str(job.id) for job in jobs)
    for job in jobs:
        task = resolve_task(job.task_path)
        # The columns every producer takes from the task and the DJJOBS defaults.
        assert job.backend == "default"
        assert (job.queue_name, job.priority, job.takes_context) == (task.queue_name, task.priority, task.takes_context)
        assert job.max_attempts == (task.max_attempts or conf.get("MAX_ATTEMPTS"))
        assert job.retry_backoff == (task.retry_backoff or conf.get("RETRY_BACKOFF"))
        assert job.timeout == (task.timeout or conf.get("TIMEOUT"))
        assert before <= job.enqueued_at <= timezone.now()
        assert job.run_after >= job.enqueued_at - timedelta(minutes=1)
        assert job.attempts == 0 and job.errors == [] and job.worker_ids == []
        # Its provenance, and no other producer's.
        for column in ("event_id", "trigger", "schedule_id", "workflow_run_id", "unique_key"):
            assert getattr(job, column) == provenance.get(column), column
    if producer == "workflow":
        assert Counter(job.status for job in jobs) == {"READY": 1, "WAITING": 3}
    else:
        assert {job.status for job in jobs} == {"READY"}
    if producer in ("tick", "run_now"):
        assert jobs[0].scheduled_for is not None and jobs[0].args == [1, 2]


def test_a_rolled_back_producer_leaves_no_job(trigger):
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with transaction.atomic():
            for producer, make in PRODUCERS.items():
                make(trigger) if producer == "trigger" else make()
            raise Boom
    assert not Job.objects.exists()


# -- bad input: each producer refuses it the same way and writes nothing --------------------------


def test_enqueue_unique_and_many_refuse_a_nul_argument():
    for enqueue in (
        tasks.echo.enqueue,
        tasks.echo.using(unique_key="k").enqueue,
        lambda value: tasks.echo.enqueue_many([(value,)]),
    ):
        with pytest.raises(InvalidTask, match="NUL"):
            enqueue(NUL)
    assert not Job.objects.exists()


def test_a_schedule_with_a_nul_argument_skips_its_run_and_run_now_refuses_it(enqueued):
    from django.db import connection

    if connection.vendor == "sqlite":  # PostgreSQL's jsonb cannot even hold such a schedule
        schedule = _schedule(args=[NUL])
        assert scheduler.tick() == 0
        schedule.refresh_from_db()
        assert schedule.skipped_runs == 1 and "NUL" in schedule.last_skip_reason
    else:
        schedule = _schedule()
        schedule.args = [NUL]  # as a caller of run_now() may hand it
    with pytest.raises(scheduler.ScheduleError, match="NUL"):
        scheduler.run_now(schedule)
    assert not Job.objects.exists() and enqueued == []


def test_an_event_with_a_nul_in_its_payload_is_refused():
    with pytest.raises(InvalidEvent, match="NUL"):
        djjobs.publish("order.validated", {"order_id": NUL})
    assert not Event.objects.exists() and not Job.objects.exists()


def test_a_trigger_whose_arguments_hold_a_nul_refuses_the_write_that_fired_it():
    made = triggers.on_create(
        TrackedOrder, tasks.order_changed, kwargs=lambda order: {"order_id": NUL}, name="insert-path-nul"
    )
    try:
        with pytest.raises(InvalidTask, match="NUL"):
            with transaction.atomic():
                TrackedOrder.objects.create(status="new")
    finally:
        triggers.unregister(made)
    assert not TrackedOrder.objects.exists() and not Job.objects.exists()


def test_a_workflow_with_a_nul_argument_is_refused(enqueued):
    with pytest.raises(InvalidTask, match="NUL"):
        checkout.start(order_id=NUL)
    assert not WorkflowRun.objects.exists() and not Job.objects.exists() and enqueued == []


def test_enqueue_many_returns_its_results_as_a_sequence_made_when_first_read():
    from djjobs.lifecycle.insert import EnqueuedResults

    results = tasks.add.enqueue_many([(i, i) for i in range(30)])
    assert len(results) == 30
    if isinstance(results, EnqueuedResults):  # DJJOBS["FAST_PATHS"] on
        assert results._made is None  # nothing built yet
    ids = [r.id for r in results]
    assert ids == sorted(ids) and len(set(ids)) == 30
    assert results[0].args == [0, 0] and results[-1].args == [29, 29]
    assert [r.id for r in results[2:4]] == ids[2:4]
    assert results == list(results) and results != []
    assert {str(pk) for pk in Job.objects.values_list("id", flat=True)} == set(ids)
