"""The admin of this issue: events with their jobs and cause chain, the list of triggers."""

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

import djjobs
from djjobs import triggers
from djjobs.models import Event
from djjobs.testing import run_jobs
from tests.testapp import tasks
from tests.testapp.models import TrackedOrder

pytestmark = pytest.mark.django_db


def _login(client, *codenames):
    user = User.objects.create_user("op", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="djjobs", codename__in=codenames))
    client.force_login(user)


def test_event_list_and_detail_show_jobs_cause_chain_and_reactions(client):
    djjobs.publish("order.validated", {"order_id": 42, "note": "<script>x</script>"})
    run_jobs()
    _login(client, "view_event", "view_job")
    listing = client.get(reverse("admin:djjobs_event_changelist")).content.decode()
    assert "payment.charged" in listing and "confirmation.sent" in listing and "Triggers" in listing
    root = Event.objects.get(name="order.validated")
    page = client.get(reverse("admin:djjobs_event_change", args=[root.pk])).content.decode()
    assert "charge_payment" in page and "reserve_stock" in page  # its subscriber jobs
    assert "payment.charged" in page  # a reaction: published by charge_payment's job
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>x</script>" not in page
    sent = Event.objects.get(name="confirmation.sent")
    page = client.get(reverse("admin:djjobs_event_change", args=[sent.pk])).content.decode()
    chain = page[page.index("order.validated") :]
    assert chain.index("charge_payment") < chain.index("payment.charged") < chain.index("send_confirmation")


def test_events_are_read_only(client):
    event = djjobs.publish("nobody.listens").event
    _login(client, "view_event", "change_event", "add_event")
    assert client.get(reverse("admin:djjobs_event_add")).status_code == 403
    client.post(reverse("admin:djjobs_event_change", args=[event.pk]), {"name": "changed"})
    assert Event.objects.get(pk=event.pk).name == "nobody.listens"


def test_trigger_list_shows_each_trigger_and_its_job_count(client):
    trigger = triggers.on_update(TrackedOrder, tasks.order_changed, when=triggers.changed("status", to="<b>"))
    try:
        order = TrackedOrder.objects.create()
        order.status = "<b>"
        order.save()
        _login(client, "view_job")
        page = client.get(reverse("admin:djjobs_triggers")).content.decode()
        assert trigger.name in page and "testapp.TrackedOrder" in page
        assert "changed(&#x27;status&#x27;, to=&#x27;&lt;b&gt;&#x27;)" in page  # escaped
        assert f'?trigger={trigger.name.replace(":", "%3A")}">1</a>' in page
        jobs = client.get(reverse("admin:djjobs_job_changelist"), {"trigger": trigger.name})
        assert jobs.status_code == 200 and "order_changed" in jobs.content.decode()
    finally:
        triggers.unregister(trigger)


def test_trigger_list_needs_view_job(client):
    _login(client, "view_event")
    assert client.get(reverse("admin:djjobs_triggers")).status_code == 403


def test_event_changelist_queries_do_not_grow_with_rows(client, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _login(client, "view_event")
    url = reverse("admin:djjobs_event_changelist")
    djjobs.publish("order.validated", {"order_id": 1})
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for i in range(10):
        djjobs.publish("order.validated", {"order_id": i})
    with django_assert_max_num_queries(len(few)):
        assert client.get(url).status_code == 200
