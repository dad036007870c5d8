"""LISTEN/NOTIFY wake-ups (PostgreSQL): sent at commit, for due READY jobs of our queues only."""

import threading
from datetime import timedelta

import pytest
from django.db import transaction

from djjobs.db.notify import Listener
from tests.testapp import tasks

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def listener():
    woken = threading.Event()
    stopping = threading.Event()
    thread = Listener(["default"], woken.set, stopping)
    thread.start()
    assert thread.connected.wait(10), "listener did not connect"
    woken.wait(1)  # the wake-up it sends on connecting
    woken.clear()
    yield woken
    stopping.set()
    thread.join(5)


def test_enqueue_wakes_the_listener_at_commit(listener):
    with transaction.atomic():
        tasks.add.enqueue(1, 2)
        assert not listener.wait(0.3), "woken before the commit"
    assert listener.wait(5)


def test_rolled_back_enqueue_wakes_nobody(listener):
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            tasks.add.enqueue(1, 2)
            raise RuntimeError
    assert not listener.wait(0.5)


def test_other_queues_and_future_jobs_wake_nobody(listener):
    tasks.send_receipt.enqueue(1)  # queue "emails"
    tasks.add.using(run_after=timedelta(hours=1)).enqueue(1, 2)
    assert not listener.wait(0.5)


def test_bulk_enqueue_and_run_now_wake(listener):
    import djjobs

    tasks.add.enqueue_many([(1, 1), (2, 2)])
    assert listener.wait(5)
    listener.clear()
    later = tasks.add.using(run_after=timedelta(hours=1)).enqueue(1, 2)
    assert not listener.wait(0.3)
    djjobs.run_now(later.id)
    assert listener.wait(5)
