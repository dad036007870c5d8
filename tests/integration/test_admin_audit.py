"""The audit trail: every operator action in the admin is a LogEntry with its user, shown on the
object's History page (and, for a job, in its timeline)."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.auth.models import User
from django.urls import reverse

from djjobs import audit
from djjobs.models import Job, Schedule, WorkflowRun
from djjobs.testing import run_jobs
from tests.testapp import tasks
from tests.testapp.workflows import checkout

pytestmark = pytest.mark.django_db

JOBS = "admin:djjobs_job_changelist"


@pytest.fixture
def operator(client):
    user = User.objects.create_superuser("alice", password="pw")
    client.force_login(user)
    return user


def _entries(obj) -> list[tuple[str, str]]:
    return [(entry.user.username, entry.change_message) for entry in audit.history(obj)]


def _action(client, changelist, action, *objects):
    data = {"action": action, "index": "0", "_selected_action": [str(obj.pk) for obj in objects]}
    return client.post(reverse(changelist), data, follow=True)


def test_job_actions_are_recorded_with_the_user_and_shown_on_history(client, operator):
    failed = Job.objects.get(pk=tasks.always_fails.enqueue().id)
    ready = Job.objects.get(pk=tasks.add.using(run_after=timedelta(hours=1)).enqueue(1, 2).id)
    run_jobs()
    _action(client, JOBS, "retry_jobs", failed, ready)  # the READY one is unchanged: not recorded
    assert _entries(failed) == [("alice", "Retried: sent back to the queue, due now")]
    assert _entries(ready) == []
    _action(client, JOBS, "run_jobs_now", ready)
    client.post(reverse("admin:djjobs_job_operation", args=[ready.pk, "cancel"]))
    assert _entries(ready) == [("alice", "Run now: made due at once"), ("alice", "Cancelled")]
    history = client.get(reverse("admin:djjobs_job_history", args=[ready.pk])).content.decode()
    assert "Run now: made due at once" in history and "alice" in history
    assert "have a change history" not in history


def test_deleting_jobs_is_recorded(client, operator):
    job = Job.objects.get(pk=tasks.add.enqueue(1, 1).id)
    run_jobs()
    _action(client, JOBS, "delete_selected", job)  # the confirmation page first
    data = {"action": "delete_selected", "post": "yes", "_selected_action": [str(job.pk)]}
    client.post(reverse(JOBS), data)
    assert not Job.objects.filter(pk=job.pk).exists()
    entry = LogEntry.objects.get(object_id=str(job.pk))
    assert entry.action_flag == DELETION and entry.user == operator


def test_schedule_actions_are_recorded(client, operator):
    schedule = Schedule(name="nightly", task_path="tests.testapp.tasks.record_job", cron="0 2 * * *")
    schedule.full_clean()
    schedule.save()
    changelist = "admin:djjobs_schedule_changelist"
    _action(client, changelist, "disable_schedules", schedule)
    _action(client, changelist, "disable_schedules", schedule)  # already disabled: not recorded
    _action(client, changelist, "enable_schedules", schedule)
    _action(client, changelist, "run_schedules_now", schedule)
    job = Job.objects.get(schedule=schedule)
    assert _entries(schedule) == [
        ("alice", "Disabled"),
        ("alice", "Enabled"),
        ("alice", f"Run now: enqueued job {job.pk}"),
    ]


def test_workflow_cancel_is_recorded(client, operator):
    run = checkout.start(order_id=7)
    _action(client, "admin:djjobs_workflowrun_changelist", "cancel_runs", run)
    assert _entries(WorkflowRun.objects.get(pk=run.pk)) == [("alice", "Cancelled (its completed steps compensated)")]


def test_nothing_is_recorded_without_a_user():
    job = Job.objects.get(pk=tasks.add.enqueue(1, 1).id)
    audit.record(None, job, "Retried")
    assert audit.history(job) == []
