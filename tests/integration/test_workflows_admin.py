"""The workflow runs' admin: list, a run's page with its steps, the cancel action and its
permission; the job page's link to its run; finished steps of a running run are not deleted."""

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from djjobs.models import Job, RunStatus, WorkflowRun
from djjobs.states import JobStatus
from djjobs.testing import run_jobs
from tests.testapp.workflows import checkout

pytestmark = pytest.mark.django_db

LIST = "admin:djjobs_workflowrun_changelist"


def _login(client, *codenames):
    user = User.objects.create_user("op", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="djjobs", codename__in=codenames))
    client.force_login(user)


def test_list_and_run_page_show_the_steps_escaped(client):
    done = checkout.start(order_id=1, note="<script>x</script>")
    run_jobs()
    running = checkout.start(order_id=2)
    _login(client, "view_workflowrun", "view_job")
    listing = client.get(reverse(LIST)).content.decode()
    assert "test-checkout" in listing and "4/4" in listing and "0/4" in listing
    assert "SUCCESSFUL" in listing and "RUNNING" in listing
    page = client.get(reverse("admin:djjobs_workflowrun_change", args=[done.pk])).content.decode()
    for step in ("reserve", "charge", "notify", "ship", "tests.testapp.workflows.wf_release"):
        assert step in page
    for job in Job.objects.filter(workflow_run=done):
        assert reverse("admin:djjobs_job_change", args=[job.pk]) in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>x</script>" not in page
    assert "&quot;tracking&quot;: &quot;T1&quot;" in page  # the context
    job = Job.objects.get(workflow_run=running, workflow_step="reserve")
    job_page = client.get(reverse("admin:djjobs_job_change", args=[job.pk])).content.decode()
    assert reverse("admin:djjobs_workflowrun_change", args=[running.pk]) in job_page
    assert "step reserve" in job_page


def test_cancel_action_needs_the_change_permission(client):
    run = checkout.start(order_id=3)
    _login(client, "view_workflowrun")
    data = {"action": "cancel_runs", "_selected_action": [str(run.pk)]}
    assert client.post(reverse(LIST), data).status_code == 403
    assert WorkflowRun.objects.get(pk=run.pk).status == RunStatus.RUNNING
    User.objects.get(username="op").user_permissions.add(Permission.objects.get(codename="change_workflowrun"))
    response = client.post(reverse(LIST), data, follow=True)
    assert "Cancelled 1 run(s)" in response.content.decode()
    run = WorkflowRun.objects.get(pk=run.pk)
    assert run.status == RunStatus.COMPENSATED  # nothing had succeeded: nothing to undo
    assert run.reason == "cancelled by op in the admin"
    assert set(Job.objects.filter(workflow_run=run).values_list("status", flat=True)) == {JobStatus.CANCELLED}


def test_runs_are_read_only(client):
    run = checkout.start(order_id=4)
    _login(client, "view_workflowrun", "change_workflowrun", "add_workflowrun")
    assert client.get(reverse("admin:djjobs_workflowrun_add")).status_code == 403
    client.post(reverse("admin:djjobs_workflowrun_change", args=[run.pk]), {"name": "changed"})
    assert WorkflowRun.objects.get(pk=run.pk).name == "test-checkout"


def test_a_finished_step_of_a_running_run_is_not_deleted(client):
    run = checkout.start(order_id=5)
    run_jobs(max_jobs=1)
    step = Job.objects.get(workflow_run=run, workflow_step="reserve")
    assert step.status == JobStatus.SUCCESSFUL
    _login(client, "view_job", "delete_job")
    client.post(
        reverse("admin:djjobs_job_changelist"),
        {"action": "delete_selected", "post": "yes", "_selected_action": [str(step.pk)]},
    )
    assert Job.objects.filter(pk=step.pk).exists()
    assert client.get(reverse("admin:djjobs_job_delete", args=[step.pk])).status_code == 403


def test_a_run_under_way_is_not_deleted(client):
    done = checkout.start(order_id=7, fail=True)
    run_jobs()
    running = checkout.start(order_id=8)
    _login(client, "view_workflowrun", "delete_workflowrun", "delete_job")  # its jobs go with it
    assert client.get(reverse("admin:djjobs_workflowrun_delete", args=[running.pk])).status_code == 403
    for selected in ([running.pk, done.pk], [running.pk]):  # Django refuses the whole selection
        client.post(
            reverse(LIST),
            {"action": "delete_selected", "post": "yes", "_selected_action": [str(pk) for pk in selected]},
        )
        assert WorkflowRun.objects.filter(pk__in=selected).count() == len(selected)
    client.post(reverse(LIST), {"action": "delete_selected", "post": "yes", "_selected_action": [str(done.pk)]})
    assert WorkflowRun.objects.filter(pk=running.pk).exists()
    assert not WorkflowRun.objects.filter(pk=done.pk).exists()
    assert not Job.objects.filter(workflow_run_id=done.pk).exists()


def test_the_dashboard_counts_runs_under_way_and_failed(client):
    from tests.testapp.workflows import three

    three.start(fail_at="c")  # b's compensation fails once: the run ends FAILED
    run_jobs()
    checkout.start(order_id=1)
    _login(client, "view_job", "view_workflowrun")
    page = client.get(reverse("admin:djjobs_dashboard")).content.decode()
    runs = page[page.index('id="djjobs-runs"') :]
    runs = runs[: runs.index("</div>")]
    assert '?status__exact=RUNNING">1</a>' in runs and '?status__exact=FAILED">1</a>' in runs
    assert '?status__exact=COMPENSATING">0</a>' in runs
    assert "A compensation failed" in runs


def test_the_dashboard_leaves_runs_out_without_their_permission(client):
    _login(client, "view_job")
    page = client.get(reverse("admin:djjobs_dashboard")).content.decode()
    assert 'id="djjobs-runs"' not in page and 'id="djjobs-workers"' in page


def test_a_skipped_step_says_why(client):
    from tests.testapp.workflows import branchy

    run = branchy.start()
    run_jobs()
    _login(client, "view_workflowrun", "view_job")
    page = client.get(reverse("admin:djjobs_workflowrun_change", args=[run.pk])).content.decode()
    assert "skipped: gift_wrap was false" in page and "skipped: express was false" in page
