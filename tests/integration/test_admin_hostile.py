"""Hostile query strings and action POSTs in the djjobs admins (issue 13): a message, never a 500.

A lookup the list does not offer (``?errors__contains=x``: no JSON contains on SQLite;
``?worker_id__regex=[``: an invalid regex) or a NUL character anywhere in the query string
redirects to the unfiltered list (``?e=1``, as Django does for lookup values it cannot use) with
a message saying what was refused; a selection that is not ids is refused with a message.
"""

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

import djjobs
from djjobs.models import Event, Job, Schedule, Worker, WorkflowRun
from djjobs.testing import run_jobs
from tests.testapp import tasks
from tests.testapp.workflows import three

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin():
    client = Client(raise_request_exception=False)  # a server error is a 500 here, not an exception
    client.force_login(User.objects.create_superuser("root", "r@example.org", "pw"))
    return client


@pytest.fixture
def rows():
    """A row in every list (a failed job with errors, a running one, a schedule, an event, a
    workflow run, a worker): lookups that fail on rows have rows to fail on."""
    tasks.always_fails.using(max_attempts=1).enqueue()
    run_jobs()
    running = tasks.add.enqueue(1, 2)
    Job.objects.filter(pk=running.id).update(status="RUNNING", worker_id="w-1")
    Schedule.objects.create(name="s", task_path="tests.testapp.tasks.add", cron="0 3 * * *", args=[1, 2])
    djjobs.publish("nobody.listens", {"x": 1})
    three.start()
    Worker.objects.create(id="w-1", hostname="h", pid=1, concurrency=1, queues=["default"])


def _refused(client, model, query, text):
    url = reverse(f"admin:djjobs_{model}_changelist")
    response = client.get(url, query)
    assert response.status_code == 302 and response["Location"] == f"{url}?e=1", response.status_code
    page = client.get(response["Location"])
    assert page.status_code == 200
    messages = [str(m) for m in page.context["messages"]]
    assert any(text in m for m in messages), messages


@pytest.mark.parametrize(
    "query, text",
    [
        pytest.param({"errors__contains": "x"}, "Filtering by errors__contains not allowed", id="json-contains"),
        pytest.param({"worker_id__regex": "["}, "Filtering by worker_id__regex not allowed", id="invalid-regex"),
        pytest.param({"task_path__iregex": "(*"}, "Filtering by task_path__iregex not allowed", id="invalid-iregex"),
        pytest.param({"args__0__gt": "x"}, "Filtering by args__0__gt not allowed", id="json-path"),
        pytest.param({"return_value__has_key": "x"}, "not allowed", id="json-has-key"),
        pytest.param({"kwargs__contained_by": "{}"}, "not allowed", id="json-contained-by"),
        pytest.param({"id__gt": "x"}, "Filtering by id__gt not allowed", id="id-range"),
        pytest.param({"status": "RUNNING", "worker_id__startswith": "w"}, "not allowed", id="beside-a-filter"),
        pytest.param({"trigger": "a\x00b"}, "NUL character", id="nul-in-a-link-filter"),
        pytest.param({"q": "a\x00b"}, "NUL character", id="nul-in-the-search"),
        pytest.param({"status": "RUNNING", "worker_id": "\x00"}, "NUL character", id="nul-in-the-worker-link"),
        pytest.param({"x\x00": "1"}, "NUL character", id="nul-in-a-name"),
    ],
)
def test_job_list_refuses_lookups_it_does_not_offer(admin, rows, query, text):
    _refused(admin, "job", query, text)


@pytest.mark.parametrize(
    "model, query",
    [
        ("schedule", {"args__contains": "1"}),
        ("schedule", {"name__regex": "["}),
        ("event", {"payload__contains": "x"}),
        ("event", {"name__regex": "["}),
        ("workflowrun", {"context__contains": "x"}),
        ("workflowrun", {"name__iregex": "("}),
        ("worker", {"queues__contains": "default"}),
        ("worker", {"hostname__regex": "["}),
    ],
)
def test_every_djjobs_list_refuses_lookups_it_does_not_offer(admin, rows, model, query):
    _refused(admin, model, query, "not allowed")


@pytest.mark.parametrize("model", ["job", "schedule", "event", "workflowrun", "worker"])
def test_every_djjobs_list_refuses_a_nul_in_its_search(admin, rows, model):
    _refused(admin, model, {"q": "\x00"}, "NUL character")


@pytest.mark.parametrize(
    "model, query",
    [
        ("job", {"status": "FAILED"}),
        ("job", {"queue": "default", "task": "tests.testapp.tasks.add"}),
        ("job", {"enqueued": "hour", "finished": "day", "due": "now"}),
        ("job", {"status": "RUNNING", "worker_id": "w-1"}),
        ("job", {"trigger": "t"}),
        ("job", {"schedule": "1"}),
        ("job", {"schedule__exact": "1"}),
        ("job", {"workflow_run": "00000000-0000-0000-0000-000000000000"}),
        ("job", {"event": "00000000-0000-0000-0000-000000000000"}),
        ("schedule", {"enabled__exact": "1", "overlap__exact": "skip"}),
        ("schedule", {"code_managed__exact": "0"}),
        ("workflowrun", {"status__exact": "RUNNING"}),
        ("workflowrun", {"name": "test-three"}),
        ("worker", {"state": "alive", "hostname": "h"}),
        ("worker", {"hostname__exact": "h"}),
        ("event", {"q": "nobody.listens"}),
        ("job", {"q": "tests.testapp.tasks.add", "o": "1"}),
    ],
)
def test_the_filters_and_links_the_lists_offer_still_work(admin, rows, model, query):
    response = admin.get(reverse(f"admin:djjobs_{model}_changelist"), query)
    assert response.status_code == 200, response.get("Location")


@pytest.mark.parametrize(
    "model, action",
    [
        ("job", "retry_jobs"),
        ("job", "cancel_jobs"),
        ("job", "delete_selected"),
        ("schedule", "run_schedules_now"),
        ("event", "delete_selected"),
        ("workflowrun", "cancel_runs"),
    ],
)
@pytest.mark.parametrize("selected", ["not-an-id", "1\x00"])
def test_an_action_on_a_selection_that_is_not_ids_is_refused_with_a_message(admin, rows, model, action, selected):
    models = {"job": Job, "schedule": Schedule, "event": Event, "workflowrun": WorkflowRun, "worker": Worker}
    model_class = models[model]
    valid = str(model_class.objects.order_by("pk").first().pk)
    before = {(j.pk, j.status) for j in Job.objects.all()}
    url = reverse(f"admin:djjobs_{model}_changelist")
    response = admin.post(url, {"action": action, "index": "0", "_selected_action": [valid, selected]}, follow=True)
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert any("is not the id of a" in m and "nothing was done" in m for m in messages), messages
    assert {(j.pk, j.status) for j in Job.objects.all()} == before
    assert model_class.objects.filter(pk=valid).exists()
