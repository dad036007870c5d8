"""JSON endpoints: enqueue an HTTP-enabled task, read a job's status, health, Prometheus metrics.

Mount with ``path("jobs/", include("djjobs.urls"))``. Errors are ``{"error": "..."}`` with the
status code saying which: 400 bad body or arguments, 403 not allowed, 404 unknown, 405 wrong
method, 501 metrics without prometheus-client. Nothing is written when an error is returned.
"""

import hmac
import importlib.util
import inspect
import json
import uuid

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from . import conf, health, status
from .compat import InvalidTask
from .registry import declared_tasks


def _error(status_code: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status_code)


# -- who is asking ---------------------------------------------------------------------------


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request, reason):
        return reason


def _token(request) -> str | None:
    header = conf.get("HTTP_TOKEN_HEADER")
    value = request.headers.get(header)
    if value is None:
        return None
    if header.lower() == "authorization":
        scheme, _, value = value.partition(" ")
        if scheme.lower() != "bearer":
            return ""
    return value.strip()


def _token_user(token: str):
    """The active user an API token stands for, or None. Compared in constant time."""
    username = None
    for known, name in (conf.get("HTTP_TOKENS") or {}).items():
        if token and hmac.compare_digest(str(known).encode(), token.encode()):
            username = name
    if username is None:
        return None
    User = get_user_model()  # noqa: N806
    return User._default_manager.filter(**{User.USERNAME_FIELD: username}, is_active=True).first()


def _caller(request, needs_csrf: bool):
    """(user, None) or (None, error response). A token header wins over the session."""
    token = _token(request)
    if token is not None:
        user = _token_user(token)
        return (user, None) if user is not None else (None, _error(403, "Invalid API token."))
    user = request.user
    if not user.is_authenticated:
        return None, _error(403, "Authentication required: log in (session with CSRF token) or send an API token.")
    if needs_csrf:
        check = _CsrfCheck(lambda r: None)
        check.process_request(request)
        reason = check.process_view(request, None, (), {})
        if reason:
            return None, _error(403, f"CSRF verification failed: {reason}")
    return user, None


# -- enqueue ---------------------------------------------------------------------------------


@csrf_exempt  # checked in _caller, and only for session users: token requests carry no cookie
@require_POST
def enqueue(request, task_name: str):
    """POST {"args": [...], "kwargs": {...}} -> 202 {"id", "status", "status_url"}."""
    user, denied = _caller(request, needs_csrf=True)
    if denied:
        return denied
    if not user.has_perm("djjobs.enqueue_job"):
        return _error(403, "You need the 'djjobs.enqueue_job' permission to enqueue jobs.")
    task = declared_tasks().get(task_name)
    if task is None:
        return _error(404, f"Unknown task {task_name!r}: give a task's dotted path, e.g. 'shop.tasks.send_receipt'.")
    if not getattr(task, "http", False):
        return _error(403, f"Task {task_name!r} cannot be enqueued over HTTP: declare it with @task(http=True).")
    try:
        args, kwargs = _arguments(request.body)
        _check_signature(task, args, kwargs)
        with transaction.atomic():
            result = task.enqueue(*args, **kwargs)
    except (ValueError, InvalidTask) as exc:
        return _error(400, str(exc))
    url = status.status_url(result.id, request)
    response = JsonResponse({"id": result.id, "status": "READY", "status_url": url}, status=202)
    response["Location"] = url
    return response


def _arguments(body: bytes) -> tuple[list, dict]:
    if not body.strip():
        return [], {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"The body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError('The body must be a JSON object: {"args": [...], "kwargs": {...}}.')
    unknown = set(data) - {"args", "kwargs"}
    if unknown:
        raise ValueError(f"Unknown key(s) {', '.join(sorted(unknown))}: the body has 'args' and 'kwargs'.")
    args, kwargs = data.get("args", []), data.get("kwargs", {})
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise ValueError("'args' must be a JSON array and 'kwargs' a JSON object.")
    return args, kwargs


def _check_signature(task, args, kwargs) -> None:
    """Refuse arguments the task function cannot take, before anything is stored."""
    try:
        signature = inspect.signature(task.func)
    except (TypeError, ValueError):  # pragma: no cover - builtins have none
        return
    try:
        signature.bind(*([None] if task.takes_context else []), *args, **kwargs)
    except TypeError as exc:
        raise ValueError(f"Arguments do not fit {task.name}(): {exc}") from None


# -- status, health, metrics -----------------------------------------------------------------


@never_cache
@require_GET
def job_status(request, job_id: uuid.UUID):
    """GET -> 200 the job's status; for staff, or anyone with the signed status URL."""
    token = request.GET.get("token")
    if token is not None:
        if not status.check_token(job_id, token):
            return _error(403, "Invalid or expired status link.")
    else:
        user, denied = _caller(request, needs_csrf=False)
        if denied:
            return denied
        if not user.is_staff:
            return _error(403, "Only staff, or the holder of the job's signed status URL, can read its status.")
    from .models import Job

    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return _error(404, f"No job {job_id} (never enqueued, or pruned).")
    return JsonResponse(status.job_status(job))


@never_cache
@require_GET
def health_view(request):
    """GET -> 200 healthy / 503 unhealthy, with the numbers (see djjobs.health)."""
    body, healthy = health.report()
    return JsonResponse(body, status=200 if healthy else 503)


@never_cache
@require_GET
def metrics_view(request):
    """GET -> Prometheus text format; 501 without prometheus-client."""
    if not conf.get("METRICS_PUBLIC"):
        user, denied = _caller(request, needs_csrf=False)
        if denied:
            return denied
        if not (user.is_staff or user.has_perm("djjobs.view_job")):
            return _error(403, "Metrics need a staff user or the 'djjobs.view_job' permission.")
    if importlib.util.find_spec("prometheus_client") is None:
        return _error(501, "prometheus-client is not installed: pip install 'djjobs[prometheus]'.")
    from . import metrics

    body, content_type = metrics.render()
    return HttpResponse(body, content_type=content_type)
