"""HTTP endpoints: enqueue, job status, health, metrics: every status code and permission case."""

import json
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from djjobs.http import status
from djjobs.models import Job, Worker
from djjobs.testing import run_jobs
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

TOKEN = "t" * 40


def _user(name="user", *, staff=False, can_enqueue=False, perms=()):
    user = User.objects.create_user(name, password="pw", is_staff=staff)
    codenames = [*perms, *(["enqueue_job"] if can_enqueue else [])]
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="djjobs", codename__in=codenames))
    return user


def _enqueue_url(task):
    return reverse("djjobs:enqueue", args=[task.module_path])


def _post(client, task, body, **extra):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(_enqueue_url(task), data, content_type="application/json", **extra)


@pytest.fixture
def enqueuer(client):
    client.force_login(_user("enqueuer", can_enqueue=True))
    return client


# -- enqueue ---------------------------------------------------------------------------------


def test_enqueue_202_with_id_and_a_signed_status_url(enqueuer):
    response = _post(enqueuer, tasks.http_add, {"args": [2, 3]})
    assert response.status_code == 202
    body = response.json()
    job = Job.objects.get(pk=body["id"])
    assert job.args == [2, 3] and job.task_path == tasks.http_add.module_path and body["status"] == "READY"
    assert response["Location"] == body["status_url"] and body["status_url"].startswith("http://testserver/jobs/")
    run_jobs()
    anonymous = Client().get(body["status_url"])  # the holder of the URL needs no login
    assert anonymous.status_code == 200
    assert anonymous.json()["status"] == "SUCCESSFUL" and anonymous.json()["return_value"] == 5


def test_enqueue_with_kwargs_and_empty_body(enqueuer):
    assert _post(enqueuer, tasks.http_add, {"kwargs": {"a": 1, "b": 2}}).status_code == 202
    assert _post(enqueuer, tasks.http_progress, "").status_code == 202  # no body: no arguments
    assert Job.objects.count() == 2


@pytest.mark.parametrize(
    "user_kwargs",
    [
        pytest.param(None, id="anonymous"),
        pytest.param({"name": "plain"}, id="non-staff-without-permission"),
        pytest.param({"name": "staff", "staff": True}, id="staff-without-permission"),
    ],
)
def test_enqueue_403_without_the_permission(client, user_kwargs):
    if user_kwargs:
        client.force_login(_user(**user_kwargs))
    response = _post(client, tasks.http_add, {"args": [1, 2]})
    assert response.status_code == 403 and "error" in response.json()
    assert Job.objects.count() == 0


def test_enqueue_by_a_non_staff_user_with_the_permission_and_by_a_superuser(client):
    client.force_login(_user("plain", can_enqueue=True))
    assert _post(client, tasks.http_add, {"args": [1, 2]}).status_code == 202
    client.force_login(User.objects.create_superuser("root", password="pw"))
    assert _post(client, tasks.http_add, {"args": [1, 2]}).status_code == 202


def test_enqueue_404_unknown_task(enqueuer):
    response = enqueuer.post(
        reverse("djjobs:enqueue", args=["tests.testapp.tasks.nope"]), "{}", content_type="application/json"
    )
    assert response.status_code == 404 and "Unknown task" in response.json()["error"]


def test_enqueue_403_task_not_declared_http(enqueuer):
    response = _post(enqueuer, tasks.add, {"args": [1, 2]})
    assert response.status_code == 403 and "http=True" in response.json()["error"]
    assert Job.objects.count() == 0


@pytest.mark.parametrize(
    "body, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ({"args": {"a": 1}}, "JSON array"),
        ({"args": [1], "priority": 5}, "Unknown key"),
        ({"args": [1]}, "do not fit"),
        ({"args": [1, 2], "kwargs": {"c": 3}}, "do not fit"),
        ({"args": ["x" * 2000, 1]}, "bytes encoded"),
    ],
)
def test_enqueue_400_bad_body_or_arguments_writes_nothing(enqueuer, settings, body, message):
    settings.DJJOBS = {**settings.DJJOBS, "MAX_PAYLOAD_BYTES": 1000}
    response = _post(enqueuer, tasks.http_add, body)
    assert response.status_code == 400 and message in response.json()["error"]
    assert Job.objects.count() == 0


def test_enqueue_405_on_get(enqueuer):
    assert enqueuer.get(_enqueue_url(tasks.http_add)).status_code == 405


def test_session_requests_need_the_csrf_token():
    client = Client(enforce_csrf_checks=True)
    client.force_login(_user("enqueuer", can_enqueue=True))
    response = _post(client, tasks.http_add, {"args": [1, 2]})
    assert response.status_code == 403 and "CSRF" in response.json()["error"]
    client.get("/jobs/health/")  # any page: no cookie is set by JSON endpoints, so make one
    from django.middleware.csrf import _get_new_csrf_string

    token = _get_new_csrf_string()
    client.cookies["csrftoken"] = token
    assert _post(client, tasks.http_add, {"args": [1, 2]}, HTTP_X_CSRFTOKEN=token).status_code == 202
    assert Job.objects.count() == 1


def test_token_header_acts_as_its_user_without_csrf(settings):
    settings.DJJOBS = {**settings.DJJOBS, "HTTP_TOKENS": {TOKEN: "bot", "u" * 40: "weak"}}
    _user("bot", can_enqueue=True)
    _user("weak")
    client = Client(enforce_csrf_checks=True)
    ok = _post(client, tasks.http_add, {"args": [1, 2]}, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert ok.status_code == 202
    assert _post(client, tasks.http_add, {"args": [1, 2]}, HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert _post(client, tasks.http_add, {"args": [1, 2]}, HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 403
    no_perm = _post(client, tasks.http_add, {"args": [1, 2]}, HTTP_AUTHORIZATION=f"Bearer {'u' * 40}")
    assert no_perm.status_code == 403 and "permission" in no_perm.json()["error"]
    assert Job.objects.count() == 1


def test_custom_token_header(settings):
    settings.DJJOBS = {**settings.DJJOBS, "HTTP_TOKENS": {TOKEN: "bot"}, "HTTP_TOKEN_HEADER": "X-Jobs-Token"}
    _user("bot", can_enqueue=True)
    assert _post(Client(), tasks.http_add, {"args": [1, 2]}, HTTP_X_JOBS_TOKEN=TOKEN).status_code == 202


def test_inactive_token_user_is_refused(settings):
    settings.DJJOBS = {**settings.DJJOBS, "HTTP_TOKENS": {TOKEN: "bot"}}
    user = _user("bot", can_enqueue=True)
    user.is_active = False
    user.save()
    assert _post(Client(), tasks.http_add, {"args": [1, 2]}, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 403


# -- job status ------------------------------------------------------------------------------


@pytest.fixture
def job():
    return Job.objects.get(pk=tasks.http_progress.enqueue(steps=2).id)


def _status_url(job_id):
    return reverse("djjobs:job-status", args=[job_id])


def test_status_for_staff(client, job):
    client.force_login(_user("staff", staff=True))
    response = client.get(_status_url(job.pk))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(job.pk) and body["status"] == "READY" and body["finished"] is False
    assert set(body) >= {
        "task",
        "queue",
        "progress",
        "progress_message",
        "attempts",
        "max_attempts",
        "enqueued_at",
        "run_after",
        "started_at",
        "finished_at",
        "return_value",
        "error",
    }
    run_jobs()
    body = client.get(_status_url(job.pk)).json()
    assert body["progress"] == 100.0 and body["progress_message"] == "step 2" and body["return_value"] == 2
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.parametrize("user_kwargs", [None, {"name": "plain", "can_enqueue": True}], ids=["anonymous", "non-staff"])
def test_status_403_without_staff_or_signed_url(client, job, user_kwargs):
    if user_kwargs:
        client.force_login(_user(**user_kwargs))
    assert client.get(_status_url(job.pk)).status_code == 403


def test_status_with_the_signed_url_and_forgeries(client, job):
    assert client.get(status.status_url(job.pk)).status_code == 200
    other = tasks.http_add.enqueue(1, 2)
    forged = [
        f"{_status_url(job.pk)}?token=abc:def",
        f"{_status_url(job.pk)}?token=",
        f"{_status_url(job.pk)}?token={status.status_token(other.id)}",  # another job's signature
        status.status_url(job.pk)[:-2] + "xx",
    ]
    for url in forged:
        response = client.get(url)
        assert response.status_code == 403 and "Invalid or expired" in response.json()["error"], url


def test_status_link_expires(client, job, settings):
    url = status.status_url(job.pk)
    settings.DJJOBS = {**settings.DJJOBS, "STATUS_URL_MAX_AGE": -1}
    assert client.get(url).status_code == 403


def test_status_404_for_a_missing_job(client):
    client.force_login(_user("staff", staff=True))
    assert client.get(_status_url("00000000-0000-0000-0000-000000000000")).status_code == 404
    assert client.get("/jobs/not-a-uuid/").status_code == 404


def test_failed_job_status_summarises_the_error_without_traceback(client):
    result = tasks.http_fails.enqueue()
    run_jobs()
    body = client.get(status.status_url(result.id)).json()
    assert body["status"] == "FAILED"
    assert body["error"] == {"exception_class_path": "builtins.ValueError", "message": "<b>bad</b> input"}
    assert "traceback" not in json.dumps(body).lower()


# -- health ----------------------------------------------------------------------------------


def _worker(name="w-1", heartbeat_age=0.0):
    return Worker.objects.create(
        id=name, hostname="h", pid=1, concurrency=2, last_heartbeat_at=timezone.now() - timedelta(seconds=heartbeat_age)
    )


def test_health_ok_then_503_when_workers_stop(client):
    worker = _worker()
    tasks.add.enqueue(1, 2)
    response = client.get("/jobs/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["problems"] == []
    assert body["workers"]["alive"] == 1 and body["queues"]["default"]["due"] == 1
    assert set(body) == {
        "status",
        "problems",
        "checked_at",
        "workers",
        "oldest_due_age_seconds",
        "due",
        "failed_last_hour",
        "queues",
        "count_limit",
        "thresholds",
    }
    assert body["queues"]["emails"] == {"due": 0}  # a configured queue without jobs
    worker.stopped_at = timezone.now()  # the worker stops
    worker.save()
    response = client.get("/jobs/health/")
    assert response.status_code == 503
    assert response.json()["problems"] == ["no worker has sent a heartbeat recently"]


def test_health_503_when_heartbeats_are_old(client):
    _worker(heartbeat_age=3600)
    assert client.get("/jobs/health/").status_code == 503


def test_health_503_when_the_oldest_due_job_waited_too_long(client, settings):
    settings.DJJOBS = {**settings.DJJOBS, "HEALTH_MAX_DUE_AGE": 60}
    _worker()
    tasks.add.using(priority=5).enqueue(1, 2)  # young, high priority
    old = tasks.add.enqueue(1, 2)
    Job.objects.filter(pk=old.id).update(run_after=timezone.now() - timedelta(seconds=120))
    tasks.add.using(run_after=timedelta(hours=1)).enqueue(1, 2)  # not due: does not count
    response = client.get("/jobs/health/")
    assert response.status_code == 503
    body = response.json()
    assert 119 < body["oldest_due_age_seconds"] < 200 and body["queues"]["default"]["due"] == 2 and body["due"] == 2
    assert "oldest due job has waited" in body["problems"][0]


def test_health_counts_are_bounded_in_claim_order(client, settings):
    settings.DJJOBS = {**settings.DJJOBS, "HEALTH_COUNT_LIMIT": 3}
    _worker()
    tasks.add.enqueue_many([(i, i) for i in range(5)])
    tasks.send_receipt.using(priority=50).enqueue_many([(i,) for i in range(2)])  # claimed first
    body = client.get("/jobs/health/").json()
    assert body["queues"]["emails"]["due"] == 2 and body["queues"]["default"]["due"] == 1
    assert body["due"] == 3 and body["count_limit"] == 3


def test_health_is_a_few_index_probes(client, django_assert_max_num_queries):
    _worker()
    tasks.add.enqueue(1, 2)
    tasks.send_receipt.enqueue(1)
    # workers (2), failed (1), the oldest due job by priorities (1), due jobs by queue (1)
    with django_assert_max_num_queries(5):
        assert client.get("/jobs/health/").status_code == 200


def test_health_rejects_post(client):
    assert client.post("/jobs/health/").status_code == 405


# -- metrics ---------------------------------------------------------------------------------


def test_metrics_prometheus_text(client):
    pytest.importorskip("prometheus_client")
    client.force_login(_user("staff", staff=True))
    _worker()
    tasks.add.enqueue(1, 2)
    tasks.flaky.enqueue(succeed_on=2)
    run_jobs()
    tasks.add.enqueue(1, 2)
    response = client.get("/jobs/metrics/")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    for line in [
        'djjobs_queue_due_jobs{queue="default"} 1.0',
        'djjobs_jobs_finished{queue="default",status="SUCCESSFUL"} 2.0',
        'djjobs_job_retries{queue="default"} 1.0',
        'djjobs_workers{state="alive"} 1.0',
        'djjobs_worker_jobs_total{outcome="done",worker="w-1"} 0.0',
        'djjobs_job_duration_seconds_bucket{le="+Inf",queue="default"} 2.0',
        "djjobs_failed_last_hour_jobs 0.0",
    ]:
        assert line in text, line


def test_metrics_permissions(client, settings):
    pytest.importorskip("prometheus_client")
    assert client.get("/jobs/metrics/").status_code == 403
    client.force_login(_user("plain"))
    assert client.get("/jobs/metrics/").status_code == 403
    client.force_login(_user("viewer", perms=["view_job"]))
    assert client.get("/jobs/metrics/").status_code == 200
    settings.DJJOBS = {**settings.DJJOBS, "METRICS_PUBLIC": True}
    assert Client().get("/jobs/metrics/").status_code == 200


def test_metrics_501_without_prometheus_client(client, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "prometheus_client" else real(name, *a)
    )
    client.force_login(_user("staff", staff=True))
    response = client.get("/jobs/metrics/")
    assert response.status_code == 501 and "djjobs[prometheus]" in response.json()["error"]


# -- hostile requests (issue 13): every error is the documented JSON, nothing is written ---------


def _deep_body(levels: int) -> str:
    """A body whose args array is ``levels`` deep (the array itself is level 1, as for enqueue())."""
    return '{"args": ' + "[" * levels + "1" + "]" * levels + "}"


def _json_error(response, status_code: int, text: str) -> None:
    assert response.status_code == status_code, response.content[:300]
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert text in error, error


@pytest.mark.parametrize(
    "body, message",
    [
        pytest.param('{"args": ["a\\u0000b"]}', "NUL character", id="nul-in-an-argument"),
        pytest.param('{"kwargs": {"a\\u0000": 1}}', "NUL character", id="nul-in-a-key"),
        pytest.param('{"args": [{"x": ["\\u0000"]}]}', "NUL character", id="nul-nested"),
        pytest.param('{"args": ["\\ud800"]}', "lone surrogate", id="lone-surrogate"),
        pytest.param('{"kwargs": {"\\udfff": 1}}', "lone surrogate", id="lone-surrogate-key"),
        pytest.param(_deep_body(65), "nested more than 64 levels", id="nesting-65"),
        pytest.param(_deep_body(900), "nested more than 64 levels", id="nesting-900"),
        pytest.param(_deep_body(100_000), "nested too deeply", id="nesting-100000"),
        pytest.param(
            '{"kwargs": {"x": ' + '{"k": ' * 100_000 + "1" + "}" * 100_001 + "}",
            "nested too deeply",
            id="nesting-100000-objects",
        ),
        pytest.param('{"args": [NaN]}', "NaN is not a JSON number", id="nan"),
        pytest.param('{"args": [-Infinity]}', "-Infinity is not a JSON number", id="infinity"),
        pytest.param('{"args": [1e400]}', "1e400 is out of range", id="float-overflow"),
        pytest.param(b'{"args": ["\xff"]}', "not UTF-8", id="invalid-utf8"),
        pytest.param(b'{"args": ["\xed\xa0\x80"]}', "not UTF-8", id="utf8-encoded-surrogate"),
        pytest.param('\ufeff{"args": []}', "not valid JSON", id="byte-order-mark"),
        pytest.param("null", "must be a JSON object", id="null"),
        pytest.param('"args"', "must be a JSON object", id="string"),
        pytest.param("7", "must be a JSON object", id="number"),
        pytest.param('{"args": [1]} {"args": [2]}', "not valid JSON", id="two-documents"),
    ],
)
def test_enqueue_refuses_hostile_bodies_with_a_json_400(enqueuer, body, message):
    data = body.encode() if isinstance(body, str) else body
    started = time.perf_counter()
    response = enqueuer.post(_enqueue_url(tasks.http_echo), data, content_type="application/json")
    _json_error(response, 400, message)
    assert time.perf_counter() - started < 1.0
    assert Job.objects.count() == 0


def test_the_deepest_accepted_body_round_trips(enqueuer):
    response = _post(enqueuer, tasks.http_echo, _deep_body(64))
    assert response.status_code == 202
    assert Job.objects.get().args == json.loads(_deep_body(64))["args"]


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete", "options"])
def test_enqueue_405_is_json_with_allow(enqueuer, method):
    response = getattr(enqueuer, method)(_enqueue_url(tasks.http_add))
    _json_error(response, 405, f"Method {method.upper()} is not allowed: use POST")
    assert response["Allow"] == "POST"
    assert Job.objects.count() == 0


@pytest.mark.parametrize("url", ["/jobs/health/", "/jobs/metrics/", "status"])
@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_read_endpoints_405_is_json_with_allow_even_for_a_session_without_csrf(url, method, job):
    """Django's CSRF middleware would answer a session POST with its HTML 403 page first."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(_user("staff", staff=True))
    url = _status_url(job.pk) if url == "status" else url
    response = getattr(client, method)(url, "{}", content_type="application/json")
    _json_error(response, 405, "use GET")
    assert response["Allow"] == "GET"
    assert Job.objects.count() == 1


def test_enqueue_413_for_a_body_over_data_upload_max_memory_size(enqueuer, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = _post(enqueuer, tasks.http_echo, {"args": ["x" * 200]})
    _json_error(response, 413, "larger than this server accepts (100 bytes")
    assert Job.objects.count() == 0


def test_enqueue_413_when_the_csrf_check_reads_an_oversize_form(settings):
    """A session request's CSRF check reads a form body (request.POST) before the view does."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    client = Client(enforce_csrf_checks=True)
    client.force_login(_user("enqueuer", can_enqueue=True))
    client.cookies["csrftoken"] = "x" * 32  # no X-CSRFToken header: the check reads the form's field
    response = client.post(
        _enqueue_url(tasks.http_echo), "a=" + "x" * 200, content_type="application/x-www-form-urlencoded"
    )
    _json_error(response, 413, "DATA_UPLOAD_MAX_MEMORY_SIZE")
    assert Job.objects.count() == 0


def test_enqueue_400_for_a_broken_multipart_body_read_by_the_csrf_check():
    client = Client(enforce_csrf_checks=True)
    client.force_login(_user("enqueuer", can_enqueue=True))
    client.cookies["csrftoken"] = "x" * 32
    response = client.post(_enqueue_url(tasks.http_echo), b"--x\r\n", content_type="multipart/form-data")
    _json_error(response, 400, "could not be read (MultiPartParserError)")
    assert Job.objects.count() == 0


@pytest.mark.parametrize("length", ["-1", "abc", "1,1", "", "٣"])
def test_enqueue_400_for_a_malformed_content_length(enqueuer, length):
    """Django reads a malformed or negative Content-Length as 0: the body would be ignored and
    the task enqueued without its arguments."""
    response = _post(enqueuer, tasks.http_progress, {"kwargs": {"steps": 3}}, CONTENT_LENGTH=length)
    if length == "":  # no Content-Length at all: nothing to read, no arguments
        assert response.status_code == 202 and Job.objects.get().kwargs == {}
        return
    _json_error(response, 400, "Content-Length must be a whole number of bytes")
    assert Job.objects.count() == 0


def test_status_400_for_too_many_query_fields(client, job, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 2
    response = client.get(f"{_status_url(job.pk)}?token=a&b=1&c=2")
    _json_error(response, 400, "could not be read (TooManyFieldsSent)")


def test_csrf_failure_on_enqueue_is_json():
    client = Client(enforce_csrf_checks=True)
    client.force_login(_user("enqueuer", can_enqueue=True))
    client.cookies["csrftoken"] = "x" * 32
    response = _post(client, tasks.http_add, {"args": [1, 2]}, HTTP_X_CSRFTOKEN="y" * 32)
    _json_error(response, 403, "CSRF verification failed")
    assert Job.objects.count() == 0
