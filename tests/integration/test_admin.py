"""The admin screens of this issue: permissions, actions through operations, escaping."""

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from djjobs.models import Job, Worker
from djjobs.testing import run_jobs
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def _user(*codenames):
    user = User.objects.create_user("op", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def failed_job():
    result = tasks.always_fails.enqueue()
    run_jobs()
    return Job.objects.get(pk=result.id)


def test_changelist_and_detail_show_errors_escaped(client, failed_job):
    Job.objects.filter(pk=failed_job.pk).update(
        errors=[{"attempt": 1, "exception_class_path": "x.Y", "message": "<script>alert(1)</script>",
                 "traceback": "<b>tb</b>"}]
    )
    client.force_login(_user("view_job"))
    assert client.get(reverse("admin:djjobs_job_changelist")).status_code == 200
    page = client.get(reverse("admin:djjobs_job_change", args=[failed_job.pk])).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert "&lt;b&gt;tb&lt;/b&gt;" in page


def test_view_only_user_cannot_run_actions(client, failed_job):
    client.force_login(_user("view_job"))
    url = reverse("admin:djjobs_job_changelist")
    assert "retry_jobs" not in client.get(url).content.decode()
    response = client.post(url, {"action": "retry_jobs", "_selected_action": [str(failed_job.pk)]})
    assert response.status_code in (200, 302, 403)
    assert Job.objects.get(pk=failed_job.pk).status == "FAILED"


def test_retry_action_reports_what_changed(client, failed_job):
    ok = tasks.add.enqueue(1, 1)
    run_jobs()
    client.force_login(_user("view_job", "change_job"))
    url = reverse("admin:djjobs_job_changelist")
    response = client.post(url, {"action": "retry_jobs", "_selected_action": [str(failed_job.pk), ok.id]},
                           follow=True)
    text = response.content.decode()
    assert "Retried 1 job(s)." in text and "1 job(s) unchanged: not_allowed" in text
    assert Job.objects.get(pk=failed_job.pk).status == "READY"


def test_detail_page_never_saves_the_row(client, failed_job):
    client.force_login(_user("view_job", "change_job"))
    url = reverse("admin:djjobs_job_change", args=[failed_job.pk])
    client.post(url, {"status": "SUCCESSFUL"})
    assert Job.objects.get(pk=failed_job.pk).status == "FAILED"


def test_worker_list_shows_running_counts(client):
    Worker.objects.create(id="w-1", hostname="h", pid=1, concurrency=2)
    tasks.add.enqueue(1, 1)
    from djjobs.worker.claim import claim

    claim("w-1", None, 1, 30)
    user = _user("view_worker")
    client.force_login(user)
    page = client.get(reverse("admin:djjobs_worker_changelist")).content.decode()
    assert "w-1" in page
    assert '<td class="field-running">1</td>' in page
