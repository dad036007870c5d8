"""Pure rules of this issue: health problems, trigger conditions, status tokens. No database."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from djjobs.http import health, status
from djjobs.triggers.conditions import CREATE, UPDATE, Change, changed, evaluating
from tests.testapp.models import TrackedOrder

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
JOB = "0196f0c2-0000-7000-8000-000000000001"


def _snap(alive=1, oldest_age=None):
    oldest = None if oldest_age is None else NOW - timedelta(seconds=oldest_age)
    return health.Snapshot(
        at=NOW,
        workers_alive=alive,
        last_heartbeat_at=NOW,
        failed_last_hour=0,
        count_limit=10,
        oldest_due_at=oldest,
        queues={"default": 0 if oldest is None else 1},
    )


@pytest.mark.parametrize(
    "alive, oldest_age, expected",
    [
        (1, None, []),
        (1, 299, []),
        (0, None, ["no worker has sent a heartbeat recently"]),
        (1, 301, ["the oldest due job has waited 301s (more than 300s)"]),
        (0, 400, ["no worker has sent a heartbeat recently", "the oldest due job has waited 400s (more than 300s)"]),
    ],
)
def test_health_problems(alive, oldest_age, expected):
    assert health.problems(_snap(alive, oldest_age), 300) == expected


def _judge(condition, instance, event=UPDATE, previous=None, update_fields=None):
    with evaluating(Change(event, previous or {}, update_fields)):
        return condition(instance)


@pytest.mark.parametrize(
    "condition, previous, new, expected",
    [
        (changed("status"), "new", "paid", True),
        (changed("status"), "paid", "paid", False),
        (changed("status", to="shipped"), "paid", "shipped", True),
        (changed("status", to="shipped"), "paid", "cancelled", False),
        (changed("status", from_="paid"), "paid", "shipped", True),
        (changed("status", from_="paid"), "new", "shipped", False),
        (changed("status", from_="paid", to="shipped"), "paid", "shipped", True),
    ],
)
def test_changed_on_update(condition, previous, new, expected):
    assert _judge(condition, TrackedOrder(status=new), previous={"status": previous}) is expected


def test_changed_normalises_values_and_honours_update_fields():
    order = TrackedOrder(total="9.50")
    assert _judge(changed("total"), order, previous={"total": Decimal("9.50")}) is False
    order = TrackedOrder(status="x")
    assert _judge(changed("status"), order, previous={"status": "y"}, update_fields=frozenset({"note"})) is False


def test_changed_on_create_has_no_previous_value():
    order = TrackedOrder(status="paid")
    assert _judge(changed("status"), order, event=CREATE) is True
    assert _judge(changed("status", to="paid"), order, event=CREATE) is True
    assert _judge(changed("status", from_="new"), order, event=CREATE) is False


def test_conditions_combine_and_describe_themselves():
    both = changed("status", to="shipped") & (lambda o: o.total > 100)
    either = changed("status", to="shipped") | changed("note")
    order = TrackedOrder(status="shipped", total=5, note="n")
    assert _judge(both, order, previous={"status": "paid", "note": "n"}) is False
    assert _judge(either, order, previous={"status": "paid", "note": "n"}) is True
    assert both.fields == {"status"} and either.fields == {"status", "note"}
    assert str(either) == "(changed('status', to='shipped') | changed('note'))"


def test_changed_outside_a_save_is_an_error():
    with pytest.raises(RuntimeError, match="while a save"):
        changed("status")(TrackedOrder())


def test_status_tokens_are_bound_to_their_job(settings):
    token = status.status_token(JOB)
    assert status.check_token(JOB, token)
    assert not status.check_token("0196f0c2-0000-7000-8000-000000000002", token)
    assert not status.check_token(JOB, token + "x") and not status.check_token(JOB, "")
    assert not status.check_token("not-a-uuid", token)
    settings.SECRET_KEY = "another secret"
    assert not status.check_token(JOB, token)
