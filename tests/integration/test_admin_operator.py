"""What an operator meets on the admin's screens (issue 18): titles that can be read, reasons
that say what to do, a form that tells the truth after a rejected save, cancellation in plain
words, counters that say what they count, one date format, screens that can be found."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from djjobs.models import Job
from djjobs.testing import run_jobs
from tests.testapp import tasks
from tests.testapp.workflows import checkout

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client):
    client.force_login(User.objects.create_superuser("root", "r@example.org", "pw"))
    return client


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_the_workflow_runs_panel_title_reads_in_the_header_colours(admin):
    checkout.start(order_id=1)
    page = admin.get(reverse("admin:djjobs_dashboard")).content.decode()
    panel = re.search(r'id="djjobs-runs">\s*<h2>(.*?)</h2>', page, re.S).group(1)
    assert 'class="section"' in panel  # the admin's own rule gives it --header-link-color


def test_a_refused_retry_gives_each_reason_apart_and_what_to_do(admin):
    run = checkout.start(order_id=2, fail=True)
    run_jobs()
    step = Job.objects.get(workflow_run=run, workflow_step="charge", workflow_role="step")
    assert step.status == "FAILED"
    ready = Job.objects.get(pk=tasks.add.using(run_after=timedelta(hours=1)).enqueue(1, 1).id)
    data = {"action": "retry_jobs", "index": "0", "_selected_action": [str(step.pk), str(ready.pk)]}
    messages = _messages(admin.post(reverse("admin:djjobs_job_changelist"), data, follow=True))
    unchanged = next(m for m in messages if "unchanged" in m)
    assert "1 not FAILED or CANCELLED" in unchanged and "1 steps of a workflow run" in unchanged
    assert "start the workflow again" in unchanged


def test_a_rejected_schedule_save_claims_no_override_and_keeps_its_recent_jobs(admin):
    from djjobs.models import Schedule
    from djjobs.schedules import tick

    code = Schedule.objects.get(name="tests.testapp.tasks.new_year_report")
    job = tick.run_now(code)
    url = reverse("admin:djjobs_schedule_change", args=[code.pk])
    before = admin.get(url).content.decode()
    assert "overridden here" not in before and str(job.pk) in before
    data = {
        "name": code.name,
        "task_path": code.task_path,
        "description": code.description,
        "enabled": "on",
        "cron": "not a cron",
        "interval": "",
        "run_at_0": "",
        "run_at_1": "",
        "time_zone": str(code.time_zone),
        "args": "[]",
        "kwargs": "{}",
        "queue_name": "",
        "priority": "",
        "overlap": code.overlap,
        "misfire": code.misfire,
    }
    response = admin.post(url, data)
    page = response.content.decode()
    assert response.status_code == 200 and "errornote" in page  # rejected, nothing saved
    assert Schedule.objects.get(pk=code.pk).cron == code.cron
    assert "overridden here" not in page
    assert "Recent jobs (latest 10)" in page and str(job.pk) in page


def test_a_cancel_the_task_never_checks_is_said_in_plain_words_and_marked(admin):
    from djjobs.testing import TEST_WORKER_ID
    from djjobs.worker.claim import claim
    from djjobs.worker.turn import process

    job_id = tasks.add.enqueue(2, 3).id
    [claimed] = claim(TEST_WORKER_ID, None, 1, 30)
    response = admin.post(reverse("admin:djjobs_job_operation", args=[job_id, "cancel"]), follow=True)
    [said] = _messages(response)
    assert "is_cancelled" not in said and "CANCEL_GRACE_SECONDS" not in said
    assert "A task that never checks keeps running" in said and "thread workers it runs to its end" in said
    listing = admin.get(reverse("admin:djjobs_job_changelist")).content.decode()
    assert "cancel requested" in listing
    process(claimed, TEST_WORKER_ID)  # add() never checks: it succeeds
    assert Job.objects.get(pk=job_id).status == "SUCCESSFUL"
    listing = admin.get(reverse("admin:djjobs_job_changelist")).content.decode()
    assert "cancel ignored" in listing
    page = admin.get(reverse("admin:djjobs_job_change", args=[job_id])).content.decode()
    assert "cancel ignored" in page and "A task that never checks runs on" in page
    assert "Cancellation requested (the job was running) by <strong>root</strong>" in page


def test_worker_counters_say_they_count_attempts(admin):
    from djjobs.models import Worker

    Worker.objects.create(id="w-1", hostname="h", pid=1, concurrency=2, jobs_done=4, jobs_failed=11)
    listing = admin.get(reverse("admin:djjobs_worker_changelist")).content.decode()
    assert "Attempts failed" in listing and "Jobs failed" not in listing
    assert "counts each failed attempt" in listing
    dashboard = admin.get(reverse("admin:djjobs_dashboard")).content.decode()
    assert "attempts ok / failed" in dashboard and "counts each failed attempt" in dashboard


def test_one_date_format_on_job_and_run_pages(admin):
    run = checkout.start(order_id=3)
    job = Job.objects.filter(workflow_run=run).first()
    for url in (
        reverse("admin:djjobs_workflowrun_change", args=[run.pk]),
        reverse("admin:djjobs_job_change", args=[job.pk]),
    ):
        page = admin.get(url).content.decode()
        assert not re.search(r"\b(a\.m\.|p\.m\.)", page), url  # Django's DATETIME_FORMAT
        assert re.search(r"<time datetime=\"[^\"]+\">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d</time>", page), url


def test_no_result_count_beside_an_empty_search(admin):
    page = admin.get(reverse("admin:djjobs_workflowrun_changelist")).content.decode()
    assert "Show all" not in page and "0 results" not in page
    page = admin.get(reverse("admin:djjobs_workflowrun_changelist"), {"q": "nothing-like-it"}).content.decode()
    assert "0 results" in page


def test_the_workers_screen_is_read_only(admin):
    from djjobs.models import Worker

    worker = Worker.objects.create(id="w-live", hostname="h", pid=1, concurrency=2)
    listing = admin.get(reverse("admin:djjobs_worker_changelist")).content.decode()
    assert "delete_selected" not in listing
    assert admin.get(reverse("admin:djjobs_worker_delete", args=[worker.pk])).status_code == 403
    assert Worker.objects.filter(pk=worker.pk).exists()


def test_the_job_page_buttons_share_the_object_tools_style():
    from pathlib import Path

    import djjobs

    css = (Path(djjobs.__file__).parent / "static" / "djjobs" / "admin.css").read_text()
    rule = css[css.index(".object-tools form.djjobs-button button {") :]
    rule = rule[: rule.index("}")]
    # A button takes neither the page's font nor its line height unless told (the browser test
    # checks the boxes line up).
    assert "font-family: inherit" in rule and "line-height: inherit" in rule and "margin: 0" in rule


def test_workflow_runs_are_told_apart_by_their_input(admin):
    checkout.start(order_id=1041)
    checkout.start(order_id=1042, note="<b>gift</b>")
    listing = admin.get(reverse("admin:djjobs_workflowrun_changelist")).content.decode()
    assert "order_id=1041" in listing and "order_id=1042" in listing
    assert "&lt;b&gt;gift&lt;/b&gt;" in listing and "<b>gift</b>" not in listing


def test_dashboard_triggers_and_queues_are_in_the_admin_index_and_sidebar(admin):
    index = admin.get(reverse("admin:index")).content.decode()
    for name in ("djjobs_dashboard", "djjobs_triggers", "djjobs_queue_changelist"):
        assert reverse(f"admin:{name}") in index, name
    assert ">Dashboard</a>" in index and ">Triggers</a>" in index and ">Queues</a>" in index
    # The navigation sidebar (on every other admin page) lists them too.
    listing = admin.get(reverse("admin:djjobs_job_changelist")).content.decode()
    sidebar = listing[listing.index('id="nav-sidebar"') :]
    assert reverse("admin:djjobs_dashboard") in sidebar and reverse("admin:djjobs_triggers") in sidebar
    # The screens answer at those addresses; their first addresses redirect there.
    assert admin.get(reverse("admin:djjobs_dashboard")).status_code == 200
    assert admin.get(reverse("admin:djjobs_triggers")).status_code == 200
    assert (
        admin.get("/admin/djjobs/job/dashboard/?refresh=10")["Location"]
        == reverse("admin:djjobs_dashboard") + "?refresh=10"
    )
    assert admin.get("/admin/djjobs/event/triggers/")["Location"] == reverse("admin:djjobs_triggers")


def test_the_breadcrumb_names_the_app_and_the_list_apart(admin):
    page = admin.get(reverse("admin:djjobs_job_changelist")).content.decode()
    crumbs = re.search(r'class="breadcrumbs">(.*?)</(?:ol|div)>', page, re.S).group(1)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", crumbs)).replace("&rsaquo;", " ").replace("\u203a", " ")
    assert text.split() == ["Home", "Job", "queue", "Jobs"]


def test_screens_are_shown_only_to_who_may_view_jobs(client):
    from django.contrib.auth.models import Permission

    user = User.objects.create_user("op", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_worker"))
    client.force_login(user)
    index = client.get(reverse("admin:index")).content.decode()
    assert reverse("admin:djjobs_dashboard") not in index and reverse("admin:djjobs_triggers") not in index
    assert client.get(reverse("admin:djjobs_dashboard")).status_code == 403
    assert client.get(reverse("admin:djjobs_triggers")).status_code == 403
