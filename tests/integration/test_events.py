"""Named events: fan-out, transactions, idempotency keys, the cause chain of a choreography."""

import pytest
from django.db import transaction

import djjobs
import djjobs.compat
from djjobs.events import InvalidEvent, subscribers
from djjobs.models import Event, Job
from djjobs.testing import run_jobs
from tests.testapp import tasks
from tests.testapp.models import Execution

pytestmark = pytest.mark.django_db


def test_fan_out_one_job_per_subscriber_with_the_event_argument():
    published = djjobs.publish("order.validated", {"order_id": 42})
    event = published.event
    assert sorted(r.task.module_path for r in published) == sorted(
        [tasks.charge_payment.module_path, tasks.reserve_stock.module_path]
    )
    jobs = Job.objects.filter(event=event)
    assert jobs.count() == 2 and {str(j.id) for j in jobs} == {r.id for r in published}
    argument = jobs.first().kwargs["event"]
    assert argument == {
        "name": "order.validated",
        "payload": {"order_id": 42},
        "id": str(event.id),
        "occurred_at": event.occurred_at.isoformat(),
    }
    assert event.subscribers == sorted([tasks.charge_payment.module_path, tasks.reserve_stock.module_path])
    assert event.cause_job_id is None


def test_a_task_may_subscribe_to_several_names():
    assert tasks.audit in subscribers("audit.everything") and tasks.audit in subscribers("confirmation.sent")
    assert len(djjobs.publish("audit.everything")) == 1


def test_an_event_nobody_subscribes_to_is_recorded():
    published = djjobs.publish("nobody.listens", {"x": 1})
    assert published == [] and not published.duplicate
    event = Event.objects.get(name="nobody.listens")
    assert event.payload == {"x": 1} and event.subscribers == []


def test_rollback_leaves_neither_event_nor_jobs():
    with pytest.raises(RuntimeError), transaction.atomic():
        djjobs.publish("order.validated", {"order_id": 1})
        assert Event.objects.count() == 1 and Job.objects.count() == 2
        raise RuntimeError("the caller fails")
    assert Event.objects.count() == 0 and Job.objects.count() == 0


def test_idempotency_key_enqueues_once():
    first = djjobs.publish("order.validated", {"order_id": 7}, idempotency_key="order-7")
    again = djjobs.publish("order.validated", {"order_id": 7}, idempotency_key="order-7")
    assert again.duplicate and again.event.pk == first.event.pk
    assert sorted(r.id for r in again) == sorted(r.id for r in first)
    assert Event.objects.count() == 1 and Job.objects.count() == 2
    # The key is scoped by the event's name.
    djjobs.publish("audit.everything", {"order_id": 7}, idempotency_key="order-7")
    assert Event.objects.count() == 2


def test_idempotency_key_inside_an_outer_transaction_keeps_it_usable():
    with transaction.atomic():
        djjobs.publish("nobody.listens", idempotency_key="k")
        assert djjobs.publish("nobody.listens", idempotency_key="k").duplicate
        assert Event.objects.count() == 1  # the transaction is still usable after the conflict


@pytest.mark.parametrize(
    "args, message",
    [
        (("", {}), "non-empty string"),
        (("x", {1: "a"}), "JSON"),
        (("x", object()), "JSON"),
        (("x", {}, ""), "idempotency_key"),
    ],
)
def test_bad_input_writes_nothing(args, message):
    with pytest.raises(InvalidEvent, match=message):
        djjobs.publish(*args)
    assert Event.objects.count() == 0


def test_a_failing_subscriber_enqueue_rolls_the_event_back(settings):
    # The payload fits alone, but not wrapped in each subscriber's event argument: the first
    # subscriber's job is refused, and the event row goes with it.
    settings.DJJOBS = {**settings.DJJOBS, "MAX_PAYLOAD_BYTES": 2050}
    with pytest.raises(djjobs.compat.InvalidTask):
        djjobs.publish("order.validated", {"blob": "x" * 2000})
    assert Event.objects.count() == 0 and Job.objects.count() == 0


def test_choreography_cause_chain():
    """order.validated -> charge_payment -> payment.charged -> send_confirmation -> confirmation.sent -> audit."""
    root = djjobs.publish("order.validated", {"order_id": 42}).event
    assert run_jobs() == 4  # charge_payment, reserve_stock, then send_confirmation, then audit
    charged = Event.objects.get(name="payment.charged")
    sent = Event.objects.get(name="confirmation.sent")
    charge_job = Job.objects.get(task_path=tasks.charge_payment.module_path)
    confirm_job = Job.objects.get(task_path=tasks.send_confirmation.module_path)
    assert charge_job.event_id == root.pk and charged.cause_job_id == charge_job.pk
    assert confirm_job.event_id == charged.pk and sent.cause_job_id == confirm_job.pk
    assert sent.idempotency_key == "confirmation-42"
    assert Execution.objects.get(label="confirmation.sent").job_id == str(sent.pk)
    chain = sent.cause_chain()
    assert [(e.name, j.task_name if j else None) for e, j in chain] == [
        ("order.validated", None),
        ("payment.charged", "charge_payment"),
        ("confirmation.sent", "send_confirmation"),
    ]
    assert all(j.status == "SUCCESSFUL" for j in Job.objects.all())


def test_publish_outside_a_job_has_no_cause_even_after_jobs_ran():
    djjobs.publish("order.validated", {"order_id": 1})
    run_jobs()
    assert Event.objects.get(name="order.validated").cause_job_id is None
    assert djjobs.publish("nobody.listens").event.cause_job_id is None
