"""The dashboard: counts by status and queue, the last hour per minute, the oldest due job,
workers, failing tasks; every number a link; a fixed number of queries."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from djjobs.admin import counting
from djjobs.models import Job, Worker
from djjobs.testing import run_jobs
from djjobs.worker.claim import claim
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def _url():
    return reverse("admin:djjobs_dashboard")


def _jobs(**params):
    return f"{reverse('admin:djjobs_job_changelist')}?{urlencode(params)}".replace("&", "&amp;")


@pytest.fixture
def admin(client):
    client.force_login(User.objects.create_superuser("root", "r@example.org", "pw"))
    return client


@pytest.fixture
def busy():
    Worker.objects.create(id="w-live", hostname="app-1", pid=1, concurrency=4, jobs_done=10, jobs_failed=1)
    Worker.objects.create(
        id="w-gone", hostname="app-2", pid=2, concurrency=4, last_heartbeat_at=timezone.now() - timedelta(minutes=30)
    )
    tasks.add.enqueue_many([(i, i) for i in range(5)])
    tasks.send_receipt.enqueue(1)
    tasks.http_fails.enqueue()
    tasks.always_fails.enqueue()
    tasks.always_fails.enqueue()
    run_jobs()
    tasks.add.enqueue(7, 7)
    claim("w-live", None, 1, 30)
    tasks.add.using(run_after=timedelta(hours=2)).enqueue(8, 8)
    due = tasks.send_receipt.enqueue(2)
    return Job.objects.get(pk=due.id)


def test_counts_by_status_link_to_the_list(admin, busy):
    page = admin.get(_url()).content.decode()
    cards = re.findall(
        r'<span class="djjobs-card-number">([^<]+)</span><span class="djjobs-status djjobs-\w+">(\w+)</span>', page
    )
    assert {status: count for count, status in cards} == {
        "READY": "2",
        "RUNNING": "1",
        "WAITING": "0",
        "FAILED": "3",
        "CANCELLED": "0",
        "SUCCESSFUL": "6",
    }
    for status in ("READY", "FAILED", "SUCCESSFUL"):
        assert f'href="{_jobs(status=status)}"' in page


def test_queue_table(admin, busy):
    page = admin.get(_url()).content.decode()
    row = re.search(r"<tr>\s*<th scope=\"row\"><a [^>]*>emails</a></th>(.*?)</tr>", page, re.S).group(1)
    numbers = re.findall(r'<td class="djjobs-number"><a href="[^"]*">([^<]+)</a></td>', row)
    assert numbers[:6] == ["1", "0", "0", "0", "1", "0"]  # due, later, running, waiting, succeeded, failed (1 h)
    assert f'href="{_jobs(queue="emails", status="READY", due="now")}"' in page
    assert f'href="{_jobs(queue="default", status="SUCCESSFUL", finished="hour")}"' in page
    for queue in ("default", "urgent", "other"):  # configured queues show even when empty
        assert f">{queue}</a></th>" in page


def test_last_hour_per_minute_chart(admin, busy):
    page = admin.get(_url()).content.decode()
    svg = re.search(r"<svg class=\"djjobs-chart\".*?</svg>", page, re.S).group(0)
    bars = re.findall(r"<title>(\d\d:\d\d): (\d+) succeeded, (\d+) failed</title>", svg)
    assert len(bars) == 60
    assert bars[-1][0] == timezone.localtime().strftime("%H:%M") or bars[-2][1:] == ("6", "3")
    assert sum(int(ok) for _, ok, _ in bars) == 6 and sum(int(bad) for _, _, bad in bars) == 3
    assert f'href="{_jobs(status="FAILED", finished="hour")}">3 failed</a>' in page
    assert "<script" not in svg


def test_oldest_due_job_across_priorities(admin, busy):
    now = timezone.now()
    low = tasks.add.using(priority=-50).enqueue(1, 1).id
    Job.objects.filter(pk=low).update(run_after=now - timedelta(minutes=10))
    high = tasks.add.using(priority=50).enqueue(1, 1).id
    Job.objects.filter(pk=high).update(run_after=now - timedelta(minutes=5))
    page = admin.get(_url()).content.decode()
    oldest = re.search(r'id="djjobs-oldest-due">(.*?)</div>', page, re.S).group(1)
    assert reverse("admin:djjobs_job_change", args=[low]) in oldest and "due for 10 min" in oldest


def test_no_due_job(admin):
    tasks.add.using(run_after=timedelta(hours=1)).enqueue(1, 1)
    assert "No READY job is due" in admin.get(_url()).content.decode()


def test_workers(admin, busy):
    page = admin.get(_url()).content.decode()
    workers = re.search(r'id="djjobs-workers">(.*?)</table>', page, re.S).group(1)
    assert "w-live" in workers and "w-gone" not in workers
    assert ">1 alive</a>" in workers and "1/4 threads busy" in workers
    assert ">1 stopped or lost (last hour)</a>" in workers
    assert _jobs(status="RUNNING", worker_id="w-live") in workers


def test_no_live_worker_is_said(admin):
    assert "No worker is alive" in admin.get(_url()).content.decode()


def test_failing_tasks_with_their_latest_error_escaped(admin, busy):
    page = admin.get(_url()).content.decode()
    failing = re.search(r'id="djjobs-failing">(.*?)</table>', page, re.S).group(1)
    assert failing.index("always_fails") < failing.index("http_fails")  # most failures first
    assert "&lt;b&gt;bad&lt;/b&gt; input" in failing and "<b>bad</b>" not in failing
    assert f'href="{_jobs(status="FAILED", task="tests.testapp.tasks.always_fails", finished="day")}">2</a>' in failing


def _expected_queries() -> int:
    # session, user, bounded counts, per minute, oldest due (priorities, the job), workers,
    # their running jobs, failing tasks, their latest errors, workflow runs; PostgreSQL adds
    # the estimates
    # + 2: the queues' rules (paused, limits) and the FIFO keys held by FAILED jobs (flow control)
    return 13 + (1 if connection.vendor == "postgresql" else 0)


def test_queries_do_not_grow_with_jobs_tasks_or_workers(admin, busy, django_assert_num_queries):
    with django_assert_num_queries(_expected_queries()):
        assert admin.get(_url()).status_code == 200
    for n in range(5):
        Worker.objects.create(id=f"w-more-{n}", hostname="app-3", pid=10 + n, concurrency=2)
    tasks.http_fails.enqueue()
    tasks.discards.enqueue()
    tasks.add.enqueue_many([(i, i) for i in range(40)])
    run_jobs(max_jobs=20)
    tasks.add.using(priority=20, run_after=timedelta(seconds=-5)).enqueue(1, 1)
    with django_assert_num_queries(_expected_queries()):
        assert admin.get(_url()).status_code == 200


def test_counts_past_the_limit(admin, busy, monkeypatch):
    monkeypatch.setattr(counting, "COUNT_LIMIT", 4)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE djjobs_job")
    page = admin.get(_url()).content.decode()
    successful = re.search(
        r'<span class="djjobs-card-number">([^<]+)</span><span class="djjobs-status djjobs-successful">', page
    ).group(1)
    assert successful == ("~6" if connection.vendor == "postgresql" else "4+")
    assert "Counts read at most 4 index entries each" in page


def test_live_updates_poll_the_panels_as_json(admin, busy):
    page = admin.get(_url()).content.decode()
    live = reverse("admin:djjobs_dashboard_live")
    assert f'data-url="{live}" data-seconds="10"' in page and "fetch(box.dataset.url" in page
    assert 'data-seconds="30"' in admin.get(_url(), {"refresh": "30"}).content.decode()
    assert 'data-seconds="0"' in admin.get(_url(), {"refresh": "0"}).content.decode()  # off
    response = admin.get(live)
    assert response["Content-Type"] == "application/json" and "no-store" in response["Cache-Control"]
    data = response.json()
    assert re.fullmatch(r"\d\d:\d\d:\d\d", data["at"])
    assert 'id="djjobs-status-counts"' in data["html"] and "always_fails" in data["html"]
    assert "<html" not in data["html"]  # the panels only


def test_live_updates_need_the_permission(client):
    user = User.objects.create_user("op", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_worker"))
    client.force_login(user)
    assert client.get(reverse("admin:djjobs_dashboard_live")).status_code == 403


def test_app_index_links_the_dashboard(client):
    user = User.objects.create_user("op", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_job", "view_worker"]))
    client.force_login(user)
    assert _url() in client.get(reverse("admin:app_list", args=["djjobs"])).content.decode()
    user.user_permissions.set(Permission.objects.filter(codename="view_worker"))
    client.force_login(User.objects.get(pk=user.pk))
    assert _url() not in client.get(reverse("admin:app_list", args=["djjobs"])).content.decode()


def test_job_list_and_detail_link_the_dashboard(admin, busy):
    assert _url() in admin.get(reverse("admin:djjobs_job_changelist")).content.decode()
    assert _url() in admin.get(reverse("admin:djjobs_job_change", args=[busy.pk])).content.decode()
