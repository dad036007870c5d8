"""Model-change triggers: create/update/delete, changed(), transactions, suppression, unique, fire()."""

import asyncio
import threading
from decimal import Decimal

import pytest
from django.db import transaction

from djjobs import triggers
from djjobs.models import Job
from djjobs.testing import assert_enqueued, assert_not_enqueued
from tests.testapp import tasks
from tests.testapp.models import RushOrder, TrackedOrder

pytestmark = pytest.mark.django_db


@pytest.fixture
def declared():
    """Register triggers for one test; they are removed afterwards."""
    made = []

    def declare(factory, *args, **kwargs):
        trigger = factory(TrackedOrder, tasks.order_changed, *args, **kwargs)
        made.append(trigger)
        return trigger

    yield declare
    for trigger in made:
        triggers.unregister(trigger)


def _jobs(trigger=None):
    jobs = Job.objects.filter(task_path=tasks.order_changed.module_path)
    return jobs.filter(trigger=trigger.name) if trigger else jobs


# -- create / update / delete ------------------------------------------------------------------


def test_on_create_enqueues_with_args_and_records_the_trigger(declared):
    trigger = declared(triggers.on_create, args=lambda order: [order.pk])
    order = TrackedOrder.objects.create(status="new")
    job = _jobs().get()
    assert (
        job.args == [order.pk]
        and job.trigger == trigger.name == f"testapp.TrackedOrder.create:{tasks.order_changed.module_path}"
    )
    assert triggers.triggered(order) == [str(job.id)]
    order.note = "changed"
    order.save()  # an update: create triggers do not fire
    assert _jobs().count() == 1


def test_on_update_fires_on_every_update_without_a_condition(declared):
    declared(triggers.on_update)
    order = TrackedOrder.objects.create()
    assert_not_enqueued(tasks.order_changed)
    order.save()
    order.save()
    assert _jobs().count() == 2
    assert _jobs().first().args == [order.pk]  # the default arguments: the primary key


def test_on_update_with_changed_fires_only_on_that_change(declared):
    declared(triggers.on_update, when=triggers.changed("status", to="shipped"))
    order = TrackedOrder.objects.create(status="new")
    loaded = TrackedOrder.objects.get(pk=order.pk)
    loaded.note = "only the note"
    loaded.save()
    assert_not_enqueued(tasks.order_changed)
    loaded.status = "shipped"
    loaded.save()
    assert_enqueued(tasks.order_changed, args=[order.pk], count=1)
    loaded.note = "again"
    loaded.save()  # the status stays "shipped": no new change
    assert _jobs().count() == 1


def test_changed_from_and_to(declared):
    declared(triggers.on_update, when=triggers.changed("status", from_="paid", to="shipped"))
    order = TrackedOrder.objects.create(status="new")
    order.status = "shipped"
    order.save()  # from "new", not "paid"
    assert _jobs().count() == 0
    order.status = "paid"
    order.save()
    order.status = "shipped"
    order.save()
    assert _jobs().count() == 1


def test_changed_compares_with_the_loaded_value_not_a_same_value_write(declared):
    declared(triggers.on_update, when=triggers.changed("total"))
    order = TrackedOrder.objects.create(total=Decimal("9.50"))
    loaded = TrackedOrder.objects.get(pk=order.pk)
    loaded.total = "9.50"  # the same amount, spelled as a string
    loaded.save()
    assert _jobs().count() == 0
    loaded.total = Decimal("10.00")
    loaded.save()
    assert _jobs().count() == 1


def test_changed_sees_json_changed_in_place(declared):
    declared(triggers.on_update, when=triggers.changed("data"))
    order = TrackedOrder.objects.create(data={"items": [1]})
    loaded = TrackedOrder.objects.get(pk=order.pk)
    loaded.data["items"].append(2)
    loaded.save()
    assert _jobs().count() == 1


def test_changed_respects_update_fields(declared):
    declared(triggers.on_update, when=triggers.changed("status"))
    order = TrackedOrder.objects.get(pk=TrackedOrder.objects.create().pk)
    order.status = "shipped"
    order.save(update_fields=["note"])  # status is not written
    assert _jobs().count() == 0
    order.save(update_fields=["status"])  # now it is: still a change from the database's "new"
    assert _jobs().count() == 1


def test_on_delete(declared):
    declared(triggers.on_delete, args=lambda order: [order.pk, order.status])
    order = TrackedOrder.objects.create(status="gone")
    pk = order.pk
    order.delete()
    assert_enqueued(tasks.order_changed, args=[pk, "gone"], count=1)


def test_when_callable_and_combinations(declared):
    declared(triggers.on_update, when=triggers.changed("status", to="shipped") & (lambda o: o.total > 100))
    small = TrackedOrder.objects.create(total=5)
    big = TrackedOrder.objects.create(total=500)
    for order in (small, big):
        order.status = "shipped"
        order.save()
    assert [j.args for j in _jobs()] == [[big.pk]]


def test_proxy_models_fire_the_concrete_models_triggers(declared):
    declared(triggers.on_create)
    RushOrder.objects.create()
    assert _jobs().count() == 1


def test_a_saved_instance_stays_picklable(declared):
    import pickle

    declared(triggers.on_update, when=triggers.changed("status"))
    order = TrackedOrder.objects.get(pk=TrackedOrder.objects.create().pk)
    order.status = "x"
    order.save()
    copy = pickle.loads(pickle.dumps(order))
    assert triggers.triggered(copy) == triggers.triggered(order) and copy.status == "x"


def test_kwargs_and_static_args(declared):
    declared(triggers.on_create, kwargs=lambda o: {"order_id": o.pk})
    order = TrackedOrder.objects.create()
    assert _jobs().get().kwargs == {"order_id": order.pk}


def test_changed_naming_no_field_is_logged_and_loading_instances_still_works(caplog):
    """A reverse relation (User.logentry) is no field of the model's own, like a misspelled
    name: logged (check djjobs.E102 reports it too), and loading or creating instances still
    works (it used to raise AttributeError on every instance made)."""
    from django.contrib.auth.models import User

    trigger = triggers.on_update(User, tasks.order_changed, when=triggers.changed("logentry"))
    try:
        with caplog.at_level("ERROR", logger="djjobs"):
            user = User.objects.create(username="watched")
            assert User.objects.get(pk=user.pk) == user
        assert f"trigger {trigger.name}: auth.User has no field 'logentry'" in caplog.text
    finally:
        triggers.unregister(trigger)


# -- transactions ----------------------------------------------------------------------------


def test_rollback_leaves_no_job(declared):
    declared(triggers.on_create)
    with pytest.raises(RuntimeError), transaction.atomic():
        TrackedOrder.objects.create()
        assert _jobs().count() == 1  # inserted in the writer's transaction...
        raise RuntimeError("the write fails")
    assert _jobs().count() == 0 and TrackedOrder.objects.count() == 0  # ...and gone with it


@pytest.mark.django_db(transaction=True)
def test_job_is_visible_to_others_only_after_commit(declared):
    declared(triggers.on_create)
    seen = {}

    def look():
        seen["jobs"] = _jobs().count()
        from django.db import connection

        connection.close()

    with transaction.atomic():
        TrackedOrder.objects.create()
        thread = threading.Thread(target=look)
        thread.start()
        thread.join()
    assert seen["jobs"] == 0 and _jobs().count() == 1


# -- no extra query per save -------------------------------------------------------------------


def test_no_extra_query_per_save_for_a_normally_fetched_instance(declared, django_assert_num_queries):
    declared(triggers.on_update, when=triggers.changed("status", to="shipped"))
    pk = TrackedOrder.objects.create().pk
    order = TrackedOrder.objects.get(pk=pk)
    with django_assert_num_queries(1):  # the UPDATE; no SELECT of the previous value
        order.note = "no change of status"
        order.save()
    with django_assert_num_queries(2):  # the UPDATE and the job's INSERT
        order.status = "shipped"
        order.save()


def test_deferred_field_costs_one_query_and_is_still_right(declared, django_assert_num_queries):
    declared(triggers.on_update, when=triggers.changed("status", to="shipped"))
    pk = TrackedOrder.objects.create(status="shipped").pk
    order = TrackedOrder.objects.defer("status").get(pk=pk)
    order.status = "shipped"
    with django_assert_num_queries(2):  # the previous status, then the UPDATE
        order.save()
    assert _jobs().count() == 0  # it was "shipped" already
    order = TrackedOrder.objects.only("note").get(pk=pk)
    order.note = "status stays deferred"
    with django_assert_num_queries(1):
        order.save()  # a deferred field never set is not written: no query for it


def test_instance_built_in_memory_is_compared_with_the_database(declared):
    declared(triggers.on_update, when=triggers.changed("status", to="shipped"))
    pk = TrackedOrder.objects.create(status="shipped").pk
    TrackedOrder(pk=pk, status="shipped").save()  # an UPDATE of a row that was already shipped
    assert _jobs().count() == 0
    TrackedOrder(pk=pk, status="new").save()
    TrackedOrder(pk=pk, status="shipped").save()
    assert _jobs().count() == 1


# -- suppressed, unique, fire -------------------------------------------------------------------


def test_suppressed_as_context_manager_and_decorator(declared):
    declared(triggers.on_create)
    with triggers.suppressed():
        TrackedOrder.objects.create()
        assert triggers.is_suppressed()

    @triggers.suppressed()
    def import_orders(n):
        for _ in range(n):
            TrackedOrder.objects.create()

    import_orders(3)
    assert _jobs().count() == 0 and not triggers.is_suppressed()
    TrackedOrder.objects.create()
    assert _jobs().count() == 1


def test_suppressed_is_per_thread(declared):
    declared(triggers.on_create)
    inside, outside = threading.Event(), threading.Event()
    seen = {}

    def other_thread():
        inside.wait()
        seen["suppressed"] = triggers.is_suppressed()
        outside.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    with triggers.suppressed():
        inside.set()
        outside.wait()
    thread.join()
    assert seen["suppressed"] is False


def test_suppressed_decorates_coroutines():
    @triggers.suppressed()
    async def job():
        await asyncio.sleep(0)
        return triggers.is_suppressed()

    assert asyncio.run(job()) is True and not triggers.is_suppressed()


def test_unique_trigger_enqueues_one_job_until_it_runs(declared):
    declared(triggers.on_update, unique=True)
    order = TrackedOrder.objects.create()
    other = TrackedOrder.objects.create()
    for _ in range(3):
        order.save()
    other.save()
    assert _jobs().filter(args=[order.pk]).count() == 1
    assert _jobs().count() == 2
    first = triggers.triggered(order)[0]
    from djjobs.testing import run_jobs

    run_jobs()
    order.save()  # the job ran: the next save enqueues again
    assert triggers.triggered(order)[0] != first
    assert _jobs().filter(status="READY").count() == 1


def test_fire_for_bulk_create_and_bulk_update(declared):
    create = declared(triggers.on_create)
    update = declared(triggers.on_update, when=triggers.changed("status", to="shipped"))
    orders = TrackedOrder.objects.bulk_create([TrackedOrder(), TrackedOrder()])
    assert _jobs().count() == 0  # bulk_create sends no signals
    results = triggers.fire("create", orders)
    assert len(results) == 2 and _jobs(create).count() == 2
    loaded = list(TrackedOrder.objects.all())
    for order in loaded:
        order.status = "shipped"
    TrackedOrder.objects.bulk_update(loaded, ["status"])
    triggers.fire("update", loaded, update_fields=["status"])
    assert _jobs(update).count() == 2
    triggers.fire("update", loaded, update_fields=["status"])  # nothing changed since
    assert _jobs(update).count() == 2
    with triggers.suppressed():
        assert triggers.fire("create", orders) == []


def test_decorator_form_returns_the_task():
    decorated = triggers.on_create("testapp.TrackedOrder", name="decorator-test")(tasks.order_changed)
    try:
        assert decorated is tasks.order_changed
        TrackedOrder.objects.create()
        assert _jobs().get().trigger == "decorator-test"
    finally:
        triggers.unregister("decorator-test")


def test_registration_errors():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="above @task"):
        triggers.on_create(TrackedOrder, lambda pk: pk)
    with pytest.raises(ImproperlyConfigured, match="on_delete"):
        triggers.on_delete(TrackedOrder, tasks.order_changed, when=triggers.changed("status"))


def test_stats_count_each_triggers_jobs(declared):
    create = declared(triggers.on_create)
    update = declared(triggers.on_update)
    order = TrackedOrder.objects.create()
    order.save()
    order.save()
    stats = triggers.stats([create.name, update.name, "none"])
    assert stats[create.name]["jobs"] == 1 and stats[update.name]["jobs"] == 2
    assert stats["none"] == {"jobs": 0, "last_enqueued_at": None}
