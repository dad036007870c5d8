"""The Schedule admin with the Django test client: the list, the form's validation, the live
preview, the actions and the permissions."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone

from djjobs.models import Job, Schedule
from djjobs.schedules import tick as scheduler
from djjobs.testing import run_jobs

pytestmark = pytest.mark.django_db

RECORD = "tests.testapp.tasks.record_job"
LIST = "admin:djjobs_schedule_changelist"
ADD = "admin:djjobs_schedule_add"


def user(*codenames, superuser=False):
    if superuser:
        return User.objects.create_superuser("root", password="pw")
    account = User.objects.create_user("op", password="pw", is_staff=True)
    account.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return account


@pytest.fixture
def admin_client(client):
    client.force_login(user(superuser=True))
    return client


def make(name="nightly", **fields) -> Schedule:
    schedule = Schedule(name=name, **{"task_path": RECORD, "cron": "0 2 * * *", "time_zone": "Europe/London", **fields})
    schedule.full_clean()
    schedule.save()
    return schedule


def form_data(**fields):
    data = {
        "name": "report",
        "task_path": RECORD,
        "description": "",
        "enabled": "on",
        "cron": "0 2 * * *",
        "interval": "",
        "run_at_0": "",
        "run_at_1": "",
        "time_zone": "Europe/London",
        "args": "[]",
        "kwargs": "{}",
        "queue_name": "",
        "priority": "",
        "overlap": "allow",
        "misfire": "run_once",
    }
    data.update(fields)
    return {key: value for key, value in data.items() if value is not None}


# -- the list ----------------------------------------------------------------------------------


def test_list_shows_when_next_and_last_run(admin_client):
    schedule = make()
    job = scheduler.run_now(schedule)
    run_jobs()
    page = admin_client.get(reverse(LIST)).content.decode()
    assert "At 02:00, every day" in page
    next_local = timezone.localtime(Schedule.objects.get(pk=schedule.pk).next_run_at, schedule.zone)
    assert f"{next_local:%Y-%m-%d %H:%M:%S %Z} (in " in page  # in the schedule's zone, and relative
    assert reverse("admin:djjobs_job_change", args=[job.pk]) in page and "SUCCESSFUL" in page
    assert 'name="form-0-enabled"' in page  # the enabled toggle


def test_list_query_count_does_not_grow_with_schedules(admin_client, django_assert_max_num_queries):
    for i in range(3):
        scheduler.run_now(make(f"s{i}"))
    with django_assert_max_num_queries(12) as few:
        admin_client.get(reverse(LIST))
    for i in range(3, 15):
        scheduler.run_now(make(f"s{i}", cron="*/5 * * * *"))
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert admin_client.get(reverse(LIST)).status_code == 200


def test_list_escapes_names_and_shows_code_managed(admin_client):
    make("<script>alert(1)</script>")
    page = admin_client.get(reverse(LIST)).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert "tests.testapp.tasks.new_year_report" in page  # declared in code, synced on migrate
    code = Schedule.objects.get(name="tests.testapp.tasks.new_year_report")
    Schedule.objects.filter(pk=code.pk).update(cron="0 4 1 1 *")
    assert "<strong>overridden</strong> (cron)" in admin_client.get(reverse(LIST)).content.decode()


# -- the form ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"cron": "61 * * * *"}, "the minute field &#x27;61&#x27; is not valid"),
        ({"cron": "0 2 * *"}, "has 4 field(s)"),
        ({"task_path": "tests.testapp.tasks.nope"}, "Unknown task"),
        ({"args": "[1, 2"}, "Not valid JSON: Expecting"),
        ({"kwargs": "{'a': 1}"}, "Not valid JSON: Expecting property name enclosed in double quotes"),
        ({"kwargs": "[1]"}, "kwargs must be a JSON object"),
        ({"cron": "", "interval": "0"}, "at least 1 second, got 0"),
        ({"cron": "", "interval": "-3"}, "Ensure this value is greater than or equal to 0"),
        ({"time_zone": "Mars/Olympus"}, "Unknown time zone &#x27;Mars/Olympus&#x27;"),
        ({"cron": ""}, "Give exactly one of cron, interval and run once at (none is set)"),
        ({"interval": "60"}, "(cron and interval are set)"),
        ({"queue_name": "nope"}, "Queue &#x27;nope&#x27; is not valid"),
    ],
)
def test_form_rejects_bad_input_with_a_clear_error(admin_client, fields, message):
    response = admin_client.post(reverse(ADD), form_data(**fields))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Schedule.objects.filter(name="report").exists()


def test_form_creates_a_schedule_and_reads_run_at_in_its_zone(admin_client):
    response = admin_client.post(
        reverse(ADD), form_data(cron="", run_at_0="2030-07-01", run_at_1="09:00:00", kwargs='{"label": "once"}')
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    schedule = Schedule.objects.get(name="report")
    assert schedule.run_at == datetime(2030, 7, 1, 8, tzinfo=UTC)  # 09:00 BST
    assert schedule.next_run_at == schedule.run_at and schedule.kwargs == {"label": "once"}
    page = admin_client.get(reverse("admin:djjobs_schedule_change", args=[schedule.pk])).content.decode()
    assert 'value="2030-07-01"' in page and 'value="09:00:00"' in page  # shown back in its zone


def test_change_form_shows_preview_state_and_recent_jobs(admin_client):
    schedule = make()
    jobs = [scheduler.run_now(schedule) for _ in range(12)]
    page = admin_client.get(reverse("admin:djjobs_schedule_change", args=[schedule.pk])).content.decode()
    assert 'id="djjobs-preview"' in page and reverse("admin:djjobs_schedule_preview") in page
    assert page.count(" 02:00:00 BST (in ") + page.count(" 02:00:00 GMT (in ") >= 5  # next 5 fire times
    assert "recent jobs (latest 10)" in page.lower()
    assert str(jobs[-1].pk) in page and str(jobs[0].pk) not in page.split("recent jobs")[-1]
    assert "fetch(box.dataset.url" in page  # the live preview's script


def test_editing_saves_only_changed_fields(admin_client):
    schedule = make()
    fire = timezone.now().replace(microsecond=0) - timedelta(minutes=3)
    Schedule.objects.filter(pk=schedule.pk).update(last_run_at=fire)  # a worker fired meanwhile
    data = form_data(name="nightly", description="new words")
    response = admin_client.post(reverse("admin:djjobs_schedule_change", args=[schedule.pk]), data)
    assert response.status_code == 302
    schedule.refresh_from_db()
    assert schedule.description == "new words" and schedule.last_run_at == fire


def test_changing_the_cron_moves_the_next_run(admin_client):
    schedule = make()
    data = form_data(name="nightly", cron="30 6 * * *")
    admin_client.post(reverse("admin:djjobs_schedule_change", args=[schedule.pk]), data)
    local = timezone.localtime(Schedule.objects.get(pk=schedule.pk).next_run_at, schedule.zone)
    assert (local.hour, local.minute) == (6, 30)


# -- the preview view ----------------------------------------------------------------------------


def test_preview_json(admin_client):
    url = reverse("admin:djjobs_schedule_preview")
    data = admin_client.get(url, {"cron": "*/15 * * * *", "time_zone": "America/New_York"}).json()
    assert data["ok"] and data["description"] == "Every 15 minutes" and len(data["times"]) == 5
    assert all(("EST" in t or "EDT" in t) and "(in " in t for t in data["times"])
    bad = admin_client.get(url, {"cron": "0 2 * *", "time_zone": "UTC"}).json()
    assert bad == {"ok": False, "errors": [bad["errors"][0]]} and "has 4 field(s)" in bad["errors"][0]
    once = admin_client.get(url, {"run_at_0": "2030-01-01", "run_at_1": "09:00", "time_zone": "Europe/London"}).json()
    assert once["times"] == ["2030-01-01 09:00:00 GMT (in " + once["times"][0].split("(in ")[1]]
    assert admin_client.get(url, {"interval": "abc", "time_zone": "UTC"}).json()["ok"] is False


def test_preview_needs_permission(client):
    url = reverse("admin:djjobs_schedule_preview")
    assert client.get(url, {"cron": "* * * * *"}).status_code == 302  # to the login page
    client.force_login(user())
    assert client.get(url, {"cron": "* * * * *", "time_zone": "UTC"}).status_code == 403
    client.force_login(User.objects.create_user("viewer", password="pw", is_staff=True))
    User.objects.get(username="viewer").user_permissions.add(Permission.objects.get(codename="view_schedule"))
    assert client.get(url, {"cron": "* * * * *", "time_zone": "UTC"}).status_code == 200


# -- actions and permissions -------------------------------------------------------------------


def post_action(client, action, *schedules):
    return client.post(reverse(LIST), {"action": action, "_selected_action": [s.pk for s in schedules]}, follow=True)


def test_enable_disable_and_run_now_actions(admin_client):
    a, b = make("a"), make("b", enabled=False)
    text = post_action(admin_client, "disable_schedules", a, b).content.decode()
    assert "Disabled 1 schedule(s)." in text and "1 schedule(s) unchanged" in text
    assert not Schedule.objects.get(pk=a.pk).enabled
    text = post_action(admin_client, "enable_schedules", a, b).content.decode()
    assert "Enabled 2 schedule(s)." in text
    assert all(s.next_run_at for s in Schedule.objects.filter(pk__in=[a.pk, b.pk]))
    text = post_action(admin_client, "run_schedules_now", a).content.decode()
    job = Job.objects.get(schedule=a)
    assert "Schedule a: enqueued job" in text and reverse("admin:djjobs_job_change", args=[job.pk]) in text


def test_run_now_reports_a_task_that_went_away(admin_client):
    schedule = make()
    Schedule.objects.filter(pk=schedule.pk).update(task_path="tests.testapp.tasks.gone")
    text = post_action(admin_client, "run_schedules_now", schedule).content.decode()
    assert "Schedule nightly not run: Unknown task" in text and not Job.objects.exists()


def test_enabled_toggle_in_the_list(admin_client):
    schedule = make()
    data = {"form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-0-id": str(schedule.pk), "_save": "Save"}
    response = admin_client.post(reverse(LIST), data)  # the checkbox unticked
    assert response.status_code == 302
    schedule.refresh_from_db()
    assert (schedule.enabled, schedule.next_run_at) == (False, None)


def test_reset_to_code_action(admin_client):
    code = Schedule.objects.get(name="tests.testapp.tasks.new_year_report")
    Schedule.objects.filter(pk=code.pk).update(cron="0 4 1 1 *")
    text = post_action(admin_client, "reset_to_code", code, make()).content.decode()
    assert (
        "Reset 1 schedule(s)" in text
        and "Schedule nightly not reset: schedule &#x27;nightly&#x27; is not declared in code" in text
    )
    assert Schedule.objects.get(pk=code.pk).cron == "0 3 1 1 *"


def test_view_only_user_sees_no_actions_and_cannot_post_them(client):
    schedule = make()
    client.force_login(user("view_schedule"))
    page = client.get(reverse(LIST)).content.decode()
    assert "run_schedules_now" not in page and 'name="form-0-enabled"' not in page
    response = post_action(client, "run_schedules_now", schedule)
    assert response.status_code in (200, 403)
    assert not Job.objects.exists()
    response = client.post(
        reverse("admin:djjobs_schedule_change", args=[schedule.pk]), form_data(name="nightly", cron="* * * * *")
    )
    assert response.status_code == 403
    assert Schedule.objects.get(pk=schedule.pk).cron == "0 2 * * *"


def test_user_without_permission_gets_403(client):
    schedule = make()
    client.force_login(user())
    assert client.get(reverse(LIST)).status_code == 403
    assert client.get(reverse("admin:djjobs_schedule_change", args=[schedule.pk])).status_code == 403


def test_preview_content_is_escaped(admin_client):
    make("x", description="<b>bold</b>")
    url = reverse("admin:djjobs_schedule_preview")
    body = admin_client.get(url, {"cron": "<b>", "time_zone": "UTC"}).content.decode()
    assert json.loads(body)["ok"] is False
