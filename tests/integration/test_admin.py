"""The job and worker admins: permissions, actions through djjobs.operations, the detail page."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone

import djjobs
from djjobs.admin import job_actions
from djjobs.models import Job, Schedule, Worker
from djjobs.testing import run_jobs
from djjobs.worker.claim import claim
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

LIST = "admin:djjobs_job_changelist"


def _user(*codenames, name="op"):
    user = User.objects.create_user(name, password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="djjobs", codename__in=codenames))
    return user


def _post_action(client, action, *jobs, **extra):
    data = {"action": action, "index": "0", "_selected_action": [str(job.pk) for job in jobs], **extra}
    return client.post(reverse(LIST), data, follow=True)


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.fixture
def failed_job():
    result = tasks.always_fails.enqueue()
    run_jobs()
    return Job.objects.get(pk=result.id)


@pytest.fixture
def succeeded_job():
    result = tasks.add.enqueue(1, 1)
    run_jobs()
    return Job.objects.get(pk=result.id)


@pytest.fixture
def ready_job():
    return Job.objects.get(pk=tasks.add.using(run_after=timedelta(hours=1)).enqueue(2, 2).id)


# -- what each user may see and do -------------------------------------------------------


def test_view_only_user_sees_the_screens_without_action_buttons(client, failed_job):
    client.force_login(_user("view_job", "view_worker"))
    page = client.get(reverse(LIST)).content.decode()
    assert 'name="action"' not in page and "retry_jobs" not in page
    detail = client.get(reverse("admin:djjobs_job_change", args=[failed_job.pk])).content.decode()
    assert "/operation/retry/" not in detail and ">Delete<" not in detail
    assert client.get(reverse("admin:djjobs_dashboard")).status_code == 200
    assert client.get(reverse("admin:djjobs_worker_changelist")).status_code == 200


@pytest.mark.parametrize("action", ["retry_jobs", "cancel_jobs", "run_jobs_now", "delete_selected"])
def test_view_only_user_gets_403_posting_an_action(client, failed_job, action):
    client.force_login(_user("view_job"))
    response = client.post(reverse(LIST), {"action": action, "index": "0", "_selected_action": [str(failed_job.pk)]})
    assert response.status_code == 403
    assert Job.objects.filter(pk=failed_job.pk, status="FAILED").exists()


def test_view_only_user_gets_403_from_the_detail_buttons(client, failed_job):
    client.force_login(_user("view_job"))
    url = reverse("admin:djjobs_job_operation", args=[failed_job.pk, "retry"])
    assert client.post(url).status_code == 403
    assert Job.objects.get(pk=failed_job.pk).status == "FAILED"


def test_delete_needs_the_delete_permission(client, failed_job):
    client.force_login(_user("view_job", "change_job"))
    page = client.get(reverse(LIST)).content.decode()
    assert "retry_jobs" in page and "delete_selected" not in page
    response = client.post(reverse(LIST), {"action": "delete_selected", "_selected_action": [str(failed_job.pk)]})
    assert response.status_code == 403
    assert Job.objects.filter(pk=failed_job.pk).exists()


def test_an_unknown_action_is_not_a_403(client, failed_job):
    client.force_login(_user("view_job", "change_job"))
    response = _post_action(client, "no_such_action", failed_job)
    assert response.status_code == 200
    assert Job.objects.get(pk=failed_job.pk).status == "FAILED"


def test_no_permission_no_screens(client):
    client.force_login(_user())
    assert client.get(reverse(LIST)).status_code == 403
    assert client.get(reverse("admin:djjobs_dashboard")).status_code == 403


def test_jobs_cannot_be_added_or_saved_by_hand(client, failed_job):
    client.force_login(_user("view_job", "change_job", "add_job"))
    assert client.get(reverse("admin:djjobs_job_add")).status_code == 403
    url = reverse("admin:djjobs_job_change", args=[failed_job.pk])
    assert client.post(url, {"status": "SUCCESSFUL"}).status_code == 403
    assert Job.objects.get(pk=failed_job.pk).status == "FAILED"


# -- actions -----------------------------------------------------------------------------


def test_retry_reports_what_changed_and_why_not(client, failed_job, succeeded_job):
    client.force_login(_user("view_job", "change_job"))
    response = _post_action(client, "retry_jobs", failed_job, succeeded_job)
    assert _messages(response) == [
        "Retried 1 job(s).",
        "1 job(s) unchanged: 1 not FAILED or CANCELLED: only a job that ended so can be retried.",
    ]
    assert Job.objects.get(pk=failed_job.pk).status == "READY"


def test_retry_conflict_on_unique_key_is_explained(client, failed_job):
    Job.objects.filter(pk=failed_job.pk).update(unique_key="k-1")
    tasks.add.using(unique_key="k-1").enqueue(1, 2)  # an active job holds the key now
    client.force_login(_user("view_job", "change_job"))
    response = _post_action(client, "retry_jobs", failed_job)
    assert _messages(response) == [
        "Retried 0 job(s).",
        "1 job(s) unchanged: 1 another active job holds the same unique key.",
    ]


def test_cancel_ready_running_and_finished(client, ready_job, succeeded_job):
    running = Job.objects.get(pk=tasks.add.enqueue(3, 3).id)
    claim("w-1", None, 1, 30)
    client.force_login(_user("view_job", "change_job"))
    response = _post_action(client, "cancel_jobs", ready_job, running, succeeded_job)
    messages = _messages(response)
    assert messages[0] == "Cancelled 1 job(s)."
    assert messages[1].startswith("Asked 1 running job(s) to stop")
    assert messages[2] == "1 job(s) unchanged: 1 already finished."
    assert Job.objects.get(pk=ready_job.pk).status == "CANCELLED"
    assert Job.objects.get(pk=running.pk).cancel_requested_at is not None


def test_run_now_moves_run_after(client, ready_job, failed_job):
    client.force_login(_user("view_job", "change_job"))
    response = _post_action(client, "run_jobs_now", ready_job, failed_job)
    assert _messages(response) == ["Moved to now 1 job(s).", "1 job(s) unchanged: 1 not READY."]
    assert Job.objects.get(pk=ready_job.pk).run_after <= timezone.now()


def test_a_selection_beyond_the_limit_acts_on_every_matching_job_after_a_confirmation(client, monkeypatch):
    """ "Select all N jobs" on a big list: a confirmation with the count, then every job the
    filters match, in batches, each change in the job's History, skips reported per reason."""
    from django.contrib.admin.models import LogEntry

    monkeypatch.setattr(job_actions, "ACTION_LIMIT", 2)
    for _ in range(5):
        tasks.always_fails.using(max_attempts=1).enqueue()
    tasks.add.enqueue(1, 1)
    run_jobs()
    user = _user("view_job", "change_job")
    client.force_login(user)
    url = reverse(LIST) + "?status=FAILED"
    selected = [str(pk) for pk in Job.objects.filter(status="FAILED").values_list("pk", flat=True)[:3]]
    confirm = client.post(
        url, {"action": "retry_jobs", "index": "0", "select_across": "1", "_selected_action": selected}
    )
    page = confirm.content.decode()
    assert confirm.status_code == 200 and "5 jobs match this list's filters: retry all of them?" in page
    assert Job.objects.filter(status="FAILED").count() == 5  # nothing changed yet
    done = client.post(
        url,
        {"action": "retry_jobs", "select_across": "1", "_selected_action": selected[:1], "post": "yes"},
        follow=True,
    )
    assert "Retried 5 job(s)." in _messages(done)
    assert Job.objects.filter(status="READY", task_path__endswith="always_fails").count() == 5
    assert LogEntry.objects.filter(user=user, change_message__startswith="Retried (all matching)").count() == 5


def test_delete_asks_first_then_deletes_finished_jobs_only(client, failed_job, succeeded_job, ready_job):
    client.force_login(_user("view_job", "change_job", "delete_job"))
    selected = [str(j.pk) for j in (failed_job, succeeded_job, ready_job)]
    confirm = client.post(reverse(LIST), {"action": "delete_selected", "index": "0", "_selected_action": selected})
    page = confirm.content.decode()
    assert confirm.status_code == 200 and "2 finished jobs will be deleted." in page
    assert "1 selected job is not finished and will be kept" in page
    assert Job.objects.count() == 3
    done = client.post(
        reverse(LIST), {"action": "delete_selected", "post": "yes", "_selected_action": selected}, follow=True
    )
    assert _messages(done) == [
        "Deleted 2 job(s).",
        ("1 job(s) kept: not finished (cancel them first), a step of a workflow still under way, or already gone."),
    ]
    assert list(Job.objects.values_list("pk", flat=True)) == [ready_job.pk]


def test_the_delete_view_refuses_active_jobs(client, ready_job, failed_job):
    client.force_login(_user("view_job", "delete_job"))
    assert client.get(reverse("admin:djjobs_job_delete", args=[ready_job.pk])).status_code == 403
    assert client.get(reverse("admin:djjobs_job_delete", args=[failed_job.pk])).status_code == 200


# -- the detail page ---------------------------------------------------------------------


def test_detail_shows_args_errors_and_timeline_escaped(client, failed_job):
    Job.objects.filter(pk=failed_job.pk).update(
        args=["<i>arg</i>"],
        kwargs={"k": "<b>kw</b>"},
        errors=[
            {
                "attempt": 1,
                "exception_class_path": "x.<Y>",
                "message": "<script>alert(1)</script>",
                "traceback": "<b>tb</b>",
                "worker_id": "<w>",
                "at": timezone.now().isoformat(),
            }
        ],
    )
    client.force_login(_user("view_job"))
    page = client.get(reverse("admin:djjobs_job_change", args=[failed_job.pk])).content.decode()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;tb&lt;/b&gt;" in page and "x.&lt;Y&gt;" in page and "&lt;w&gt;" in page
    assert "&quot;&lt;i&gt;arg&lt;/i&gt;&quot;" in page and "&quot;&lt;b&gt;kw&lt;/b&gt;&quot;" in page
    assert "Attempt 1 failed" in page and "Enqueued on queue" in page


def test_detail_timeline_of_a_retried_job(client):
    result = tasks.flaky.enqueue(succeed_on=2)
    run_jobs()
    client.force_login(_user("view_job"))
    page = client.get(reverse("admin:djjobs_job_change", args=[result.id])).content.decode()
    order = [
        page.index(text)
        for text in ("Enqueued on queue", "Attempt 1 started", "Attempt 1 failed", "Attempt 2 started", "Finished")
    ]
    assert order == sorted(order)
    assert "flaky failure on attempt 1" in page and "&quot;succeed_on&quot;: 2" in page


def test_detail_links_worker_schedule_event_and_trigger(client):
    Worker.objects.create(id="w-1", hostname="h", pid=1, concurrency=1)
    schedule = Schedule.objects.create(name="nightly", task_path="tests.testapp.tasks.add", cron="0 3 * * *")
    event = djjobs.publish("order.validated", {"order_id": 1}).event
    job = Job.objects.filter(event=event).first()
    Job.objects.filter(pk=job.pk).update(
        worker_id="w-1",
        worker_ids=["w-1"],
        schedule=schedule,
        scheduled_for=timezone.now(),
        trigger="shop.Order:update",
    )
    client.force_login(_user("view_job"))
    page = client.get(reverse("admin:djjobs_job_change", args=[job.pk])).content.decode()
    assert reverse("admin:djjobs_worker_change", args=["w-1"]) in page
    assert reverse("admin:djjobs_schedule_change", args=[schedule.pk]) in page and "nightly" in page
    assert reverse("admin:djjobs_event_change", args=[event.pk]) in page and "order.validated" in page
    assert "?trigger=shop.Order%3Aupdate" in page


def test_detail_buttons_follow_status_and_run_operations(client, failed_job, ready_job):
    client.force_login(_user("view_job", "change_job"))
    failed_page = client.get(reverse("admin:djjobs_job_change", args=[failed_job.pk])).content.decode()
    assert "/operation/retry/" in failed_page and "/operation/cancel/" not in failed_page
    ready_page = client.get(reverse("admin:djjobs_job_change", args=[ready_job.pk])).content.decode()
    assert "/operation/cancel/" in ready_page and "/operation/run_now/" in ready_page
    url = reverse("admin:djjobs_job_operation", args=[failed_job.pk, "retry"])
    assert client.get(url).status_code == 405
    response = client.post(url, follow=True)
    assert _messages(response) == ["Retried 1 job(s)."]
    assert response.redirect_chain[-1][0] == reverse("admin:djjobs_job_change", args=[failed_job.pk])
    assert Job.objects.get(pk=failed_job.pk).status == "READY"
    assert client.post(reverse("admin:djjobs_job_operation", args=[failed_job.pk, "explode"])).status_code == 403


def test_detail_page_queries_do_not_grow_with_attempts(client, django_assert_num_queries):
    result = tasks.always_fails.enqueue()
    run_jobs()
    Worker.objects.create(id="djjobs-testing", hostname="h", pid=1, concurrency=1)
    client.force_login(_user("view_job"))
    url = reverse("admin:djjobs_job_change", args=[result.id])
    client.get(url)  # warms the content types' cache
    # session, user, the user's and its groups' permissions, the job with its schedule and
    # event (one JOIN), the rows of its workers, its operators' actions (LogEntry with users)
    with django_assert_num_queries(7):
        assert client.get(url).status_code == 200
    Job.objects.filter(pk=result.id).update(errors=Job.objects.get(pk=result.id).errors * 10)
    with django_assert_num_queries(7):
        assert client.get(url).status_code == 200


def test_unknown_job_redirects(client):
    client.force_login(_user("view_job"))
    response = client.get(reverse("admin:djjobs_job_change", args=["not-a-uuid"]))
    assert response.status_code == 302


# -- workers -----------------------------------------------------------------------------


def test_worker_list_shows_state_and_running_jobs(client):
    Worker.objects.create(id="w-1", hostname="h", pid=1, concurrency=2)
    Worker.objects.create(id="w-2", hostname="h", pid=2, concurrency=2, stopped_at=timezone.now())
    Worker.objects.create(
        id="w-3", hostname="h", pid=3, concurrency=2, last_heartbeat_at=timezone.now() - timedelta(minutes=10)
    )
    result = tasks.add.enqueue(1, 1)
    claim("w-1", None, 1, 30)
    client.force_login(_user("view_worker"))
    page = client.get(reverse("admin:djjobs_worker_changelist")).content.decode()
    assert reverse("admin:djjobs_job_change", args=[result.id]) in page
    for state in ("alive", "stopped", "lost"):
        assert f"djjobs-{state}" in page
    alive = client.get(reverse("admin:djjobs_worker_changelist"), {"state": "alive"}).content.decode()
    assert "w-1" in alive and "w-2" not in alive and "w-3" not in alive
    detail = client.get(reverse("admin:djjobs_worker_change", args=["w-1"])).content.decode()
    assert reverse("admin:djjobs_job_change", args=[result.id]) in detail


def test_worker_list_queries_do_not_grow_with_workers(client, django_assert_num_queries):
    client.force_login(_user("view_worker"))
    url = reverse("admin:djjobs_worker_changelist")

    def add_workers(start, count):
        for n in range(start, start + count):
            Worker.objects.create(id=f"w-{n}", hostname=f"h{n}", pid=n, concurrency=2)
            tasks.add.enqueue(n, n)
            claim(f"w-{n}", None, 1, 30)

    add_workers(0, 2)
    # session, user, permissions (user, groups), counts (filtered, all), workers, their
    # running jobs (one query for all), the hostname filter's choices
    with django_assert_num_queries(9):
        client.get(url)
    add_workers(2, 8)
    with django_assert_num_queries(9):
        client.get(url)


def test_workers_are_read_only(client):
    Worker.objects.create(id="w-1", hostname="h", pid=1, concurrency=1)
    client.force_login(_user("view_worker", "change_worker", "add_worker"))
    assert client.get(reverse("admin:djjobs_worker_add")).status_code == 403
    client.post(reverse("admin:djjobs_worker_change", args=["w-1"]), {"hostname": "x"})
    assert Worker.objects.get(pk="w-1").hostname == "h"


@pytest.mark.parametrize(
    ("model", "codename", "action", "make"),
    [
        (
            "schedule",
            "view_schedule",
            "enable_schedules",
            lambda: Schedule.objects.create(
                name="s", task_path="tests.testapp.tasks.add", cron="0 3 * * *", enabled=False
            ),
        ),
        (
            "worker",
            "view_worker",
            "delete_selected",
            lambda: Worker.objects.create(id="w-1", hostname="h", pid=1, concurrency=1),
        ),
        ("event", "view_event", "delete_selected", lambda: djjobs.publish("nobody.listens").event),
    ],
)
def test_every_djjobs_admin_answers_403_to_a_forbidden_action(client, model, codename, action, make):
    obj = make()
    client.force_login(_user(codename))
    url = reverse(f"admin:djjobs_{model}_changelist")
    response = client.post(url, {"action": action, "index": "0", "_selected_action": [str(obj.pk)]})
    assert response.status_code == 403
    assert type(obj).objects.filter(pk=obj.pk).exists()
