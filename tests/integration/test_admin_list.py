"""The job list: filters, search, counts that never read the whole table, a constant number of queries."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from djjobs.admin import paginator
from djjobs.models import Job
from djjobs.testing import run_jobs
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def _url():
    return reverse("admin:djjobs_job_changelist")


def _ids(response) -> set[str]:
    return set(re.findall(r'name="_selected_action" value="([0-9a-f-]{36})"', response.content.decode()))


@pytest.fixture
def admin(client):
    client.force_login(User.objects.create_superuser("root", "r@example.org", "pw"))
    return client


@pytest.fixture
def mix():
    """Jobs of several statuses, queues, tasks and ages: {name: job}."""
    jobs = {}
    jobs["ok"] = tasks.add.enqueue(1, 1).id
    jobs["receipt"] = tasks.send_receipt.using(unique_key="receipt-9").enqueue(9).id
    jobs["fails"] = tasks.always_fails.enqueue().id
    run_jobs()
    jobs["later"] = tasks.add.using(run_after=timedelta(hours=3)).enqueue(2, 2).id
    jobs["due"] = tasks.add.using(queue_name="urgent").enqueue(3, 3).id
    jobs["old"] = tasks.add.enqueue(4, 4).id
    run_jobs(max_jobs=0)
    old = timezone.now() - timedelta(days=3)
    Job.objects.filter(pk=jobs["old"]).update(status="SUCCESSFUL", enqueued_at=old, started_at=old, finished_at=old)
    return {name: str(job_id) for name, job_id in jobs.items()}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "FAILED"}, {"fails"}),
        ({"status": "SUCCESSFUL"}, {"ok", "receipt", "old"}),
        ({"status": "READY"}, {"later", "due"}),
        ({"queue": "emails"}, {"receipt"}),
        ({"queue": "urgent"}, {"due"}),
        ({"task": "tests.testapp.tasks.add"}, {"ok", "later", "due", "old"}),
        ({"enqueued": "hour"}, {"ok", "receipt", "fails", "later", "due"}),
        ({"enqueued": "week"}, {"ok", "receipt", "fails", "later", "due", "old"}),
        ({"finished": "hour"}, {"ok", "receipt", "fails"}),
        ({"finished": "week"}, {"ok", "receipt", "fails", "old"}),
        ({"due": "now"}, {"due"}),
        ({"due": "later"}, {"later"}),
        ({"status": "SUCCESSFUL", "queue": "default", "finished": "day"}, {"ok"}),
    ],
)
def test_filters(admin, mix, query, expected):
    response = admin.get(_url(), query)
    assert response.status_code == 200
    assert _ids(response) == {mix[name] for name in expected}


def test_filter_choices_come_from_settings_and_declared_tasks(admin, mix):
    page = admin.get(_url()).content.decode()
    for queue in ("default", "emails", "urgent", "other"):
        assert f"?queue={queue}" in page
    assert "?task=tests.testapp.tasks.send_receipt" in page and ">send_receipt<" in page
    assert "?finished=hour" in page and "?due=now" in page


def test_finished_filter_lists_newest_finished_first(admin, mix):
    first, second = tasks.add.enqueue(8, 8).id, tasks.add.enqueue(9, 9).id
    run_jobs()
    Job.objects.filter(pk=first).update(finished_at=timezone.now() + timedelta(seconds=5))
    ids = re.findall(
        r'name="_selected_action" value="([0-9a-f-]{36})"', admin.get(_url(), {"finished": "hour"}).content.decode()
    )
    assert ids[0] == str(first) and ids.index(str(second)) > 0


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("fails", {"fails"}),  # part of a declared task's path
        ("tests.testapp.tasks.send_receipt", {"receipt"}),
        ("receipt-9", {"receipt"}),  # unique key
        ("no-such-thing", set()),
    ],
)
def test_search(admin, mix, term, expected):
    assert _ids(admin.get(_url(), {"q": term})) == {mix[name] for name in expected}


def test_search_by_id(admin, mix):
    assert _ids(admin.get(_url(), {"q": mix["later"]})) == {mix["later"]}
    assert _ids(admin.get(_url(), {"q": f"  {mix['later'].upper()} "})) == {mix["later"]}


def test_list_shows_badges_attempts_duration_and_progress(admin, mix):
    tasks.with_progress.enqueue(steps=4)
    run_jobs()
    page = admin.get(_url()).content.decode()
    assert '<span class="djjobs-status djjobs-failed">FAILED</span>' in page
    assert '<td class="field-attempts_display">5/5</td>' in page
    assert 'progress class="djjobs-progress" max="100" value="100"' in page
    assert re.search(r'<td class="field-duration_display">\d+ ms</td>', page)
    assert "in 3 h" in page  # run after of the job scheduled for later


def test_only_indexed_orders(admin, mix):
    page = admin.get(_url()).content.decode()
    sortable = re.findall(r'<th scope="col" class="sortable[^"]*column-(\w+)', page)
    assert sortable == ["enqueued"]


def _expected_list_queries(filtered: bool) -> int:
    # session, user, the page's rows, the bounded count; unfiltered on PostgreSQL the table
    # estimate comes first (and is not analyzed in tests, so the bounded count follows)
    return 4 + (1 if connection.vendor == "postgresql" and not filtered else 0)


@pytest.mark.parametrize(
    "query",
    [
        {},
        {
            "status": "FAILED",
            "queue": "default",
            "task": "tests.testapp.tasks.add",
            "enqueued": "day",
            "finished": "day",
            "due": "now",
        },
        {"q": "receipt"},
    ],
)
def test_list_queries_do_not_grow_with_rows(admin, mix, query, django_assert_num_queries):
    expected = _expected_list_queries(filtered=bool(query))
    with django_assert_num_queries(expected):
        assert admin.get(_url(), query).status_code == 200
    tasks.add.enqueue_many([(i, i) for i in range(60)])
    with django_assert_num_queries(expected):
        assert admin.get(_url(), query).status_code == 200


def test_count_stops_at_its_limit(admin, monkeypatch):
    monkeypatch.setattr(paginator, "COUNT_LIMIT", 5)
    tasks.add.enqueue_many([(i, i) for i in range(12)])
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE djjobs_job")
    page = admin.get(_url(), {"status": "READY"}).content.decode()
    if connection.vendor == "postgresql":
        assert re.search(r'class="djjobs-count"[^>]*>~1\d</span>', page)  # EXPLAIN's estimate
    else:
        assert ">5+</span>" in page


@pytest.mark.postgresql
def test_unfiltered_count_is_the_table_estimate_on_postgresql(admin, monkeypatch, django_assert_num_queries):
    monkeypatch.setattr(paginator, "COUNT_LIMIT", 5)
    monkeypatch.setattr(paginator, "MAX_ROWS", 100)
    tasks.add.enqueue_many([(i, i) for i in range(120)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE djjobs_job")
    with django_assert_num_queries(4):  # session, user, estimate, rows: no count at all
        page = admin.get(_url()).content.decode()
    assert re.search(r'class="djjobs-count" title="Estimated[^"]*">~1\d\d</span>', page)
    assert "the first 2 pages are listed" in page


def test_pages_stop_where_counting_stops(admin, monkeypatch):
    monkeypatch.setattr(paginator, "COUNT_LIMIT", 60)
    monkeypatch.setattr(paginator, "MAX_ROWS", 100)
    tasks.add.enqueue_many([(i, i) for i in range(130)])
    response = admin.get(_url(), {"status": "READY"})
    pages = response.context["cl"].paginator
    assert not pages.tally.exact and pages.num_pages == 2 and pages.truncated
    assert "filter to reach older jobs" in response.content.decode()


def test_exact_counts_page_normally(admin):
    tasks.add.enqueue_many([(i, i) for i in range(120)])
    response = admin.get(_url(), {"p": 3})
    pages = response.context["cl"].paginator
    assert pages.tally.exact and pages.count == 120 and pages.num_pages == 3
    assert len(_ids(response)) == 20
