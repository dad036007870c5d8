"""JSON endpoints: enqueue an HTTP-enabled task, read a job's status, health, Prometheus metrics.

Mount with ``path("jobs/", include("djjobs.urls"))``. Errors are ``{"error": "..."}`` with the
status code saying which: 400 bad body or arguments, 403 not allowed, 404 unknown, 405 wrong
method, 413 body too large, 501 metrics without prometheus-client. Nothing is written when an
error is returned. Every error of a request that reaches these views is that JSON, including
those Django would answer with an HTML page (wrong method, a body it refuses to read).
"""

import functools
import hmac
import importlib.util
import inspect
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from .. import conf
from ..compat import InvalidTask, Task
from ..models import Job
from ..registry import declared_tasks
from . import health, status

_View = TypeVar("_View", bound=Callable[..., HttpResponse])


def _error(status_code: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status_code)


def _endpoint(*methods: str) -> Callable[[_View], _View]:
    """Make a view a JSON endpoint answering ``methods``: any other method is a 405 (with
    ``Allow``), and a request Django refuses to read (a body over DATA_UPLOAD_MAX_MEMORY_SIZE:
    413; too many fields, a broken upload, a disallowed host: 400) is answered in JSON too,
    never with Django's HTML pages. Django's CSRF middleware is bypassed: no endpoint acts on
    a GET, and enqueue checks CSRF itself for session users (_caller), answering in JSON."""

    def decorate(view: _View) -> _View:
        @functools.wraps(view)
        def endpoint(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                response = _error(405, f"Method {request.method} is not allowed: use {' or '.join(methods)}.")
                response["Allow"] = ", ".join(methods)
                return response
            try:
                return view(request, *args, **kwargs)
            except (SuspiciousOperation, UnreadablePostError, MultiPartParserError) as exc:
                # Logged as Django's handler logs these (django.security.<class>).
                if isinstance(exc, SuspiciousOperation):
                    logging.getLogger(f"django.security.{type(exc).__name__}").error(
                        str(exc), exc_info=exc, extra={"status_code": 400, "request": request}
                    )
                if isinstance(exc, RequestDataTooBig):
                    return _error(
                        413,
                        f"The body is larger than this server accepts "
                        f"({settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes, DATA_UPLOAD_MAX_MEMORY_SIZE).",
                    )
                return _error(400, f"The request could not be read ({type(exc).__name__}).")

        return cast(_View, csrf_exempt(endpoint))

    return decorate


# -- who is asking ---------------------------------------------------------------------------


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> str:  # the reason, not a 403 page
        return reason


def _token(request: HttpRequest) -> str | None:
    header = conf.get("HTTP_TOKEN_HEADER")
    value = request.headers.get(header)
    if value is None:
        return None
    if header.lower() == "authorization":
        scheme, _, value = value.partition(" ")
        if scheme.lower() != "bearer":
            return ""
    return value.strip()


def _token_user(token: str) -> Any:
    """The active user an API token stands for, or None. Compared in constant time."""
    username = None
    for known, name in (conf.get("HTTP_TOKENS") or {}).items():
        if token and hmac.compare_digest(str(known).encode(), token.encode()):
            username = name
    if username is None:
        return None
    User = get_user_model()
    return User._default_manager.filter(**{User.USERNAME_FIELD: username}, is_active=True).first()


def _caller(request: HttpRequest, needs_csrf: bool) -> tuple[Any, JsonResponse | None]:
    """(user, None) or (None, error response). A token header wins over the session."""
    token = _token(request)
    if token is not None:
        user = _token_user(token)
        return (user, None) if user is not None else (None, _error(403, "Invalid API token."))
    user = request.user
    if not user.is_authenticated:
        return None, _error(403, "Authentication required: log in (session with CSRF token) or send an API token.")
    if needs_csrf:
        # Only the checks run: the middleware's get_response and the view are never called.
        check = _CsrfCheck(lambda r: None)  # type: ignore[arg-type]
        check.process_request(request)
        reason = check.process_view(request, None, (), {})  # type: ignore[arg-type]
        if reason:
            return None, _error(403, f"CSRF verification failed: {reason}")
    return user, None


# -- enqueue ---------------------------------------------------------------------------------


@_endpoint("POST")  # CSRF is checked in _caller, for session users only: token requests carry no cookie
def enqueue(request: HttpRequest, task_name: str) -> HttpResponse:
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
        args, kwargs = _arguments(_body(request))
        _check_signature(task, args, kwargs)
        with transaction.atomic():
            result = task.enqueue(*args, **kwargs)
            # In the transaction: if the URL cannot be made (a disallowed host), no job either.
            url = status.status_url(result.id, request)
    except (ValueError, InvalidTask) as exc:
        return _error(400, str(exc))
    response = JsonResponse({"id": result.id, "status": "READY", "status_url": url}, status=202)
    response["Location"] = url
    return response


def _body(request: HttpRequest) -> bytes:
    """The request's body, after checking its Content-Length: Django reads a malformed or
    negative one as 0, which would enqueue with no arguments whatever was sent."""
    length = request.META.get("CONTENT_LENGTH")
    if length and not (length.isascii() and length.isdigit()):
        raise ValueError(f"Content-Length must be a whole number of bytes, got {length[:50]!r}.")
    return request.body


def _arguments(body: bytes) -> tuple[list[Any], dict[str, Any]]:
    if not body.strip():
        return [], {}
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise ValueError(f"The body is not UTF-8: {exc}") from None
    try:
        data = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError(
            f"The body is nested too deeply: arguments may be nested at most "
            f"{conf.get('MAX_JSON_DEPTH')} levels deep (DJJOBS['MAX_JSON_DEPTH'])."
        ) from None
    except ValueError as exc:
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


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text[:50]} is out of range")
    return value


def _check_signature(task: Task, args: list[Any], kwargs: dict[str, Any]) -> None:
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
@_endpoint("GET")
def job_status(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
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

    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return _error(404, f"No job {job_id} (never enqueued, or pruned).")
    return JsonResponse(status.job_status(job))


@never_cache
@_endpoint("GET")
def health_view(request: HttpRequest) -> HttpResponse:
    """GET -> 200 healthy / 503 unhealthy, with the numbers (see djjobs.http.health)."""
    body, healthy = health.report()
    return JsonResponse(body, status=200 if healthy else 503)


@never_cache
@_endpoint("GET")
def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET -> Prometheus text format; 501 without prometheus-client."""
    if conf.get("METRICS_PUBLIC") is not True:  # a truthy "False" must not open it
        user, denied = _caller(request, needs_csrf=False)
        if denied:
            return denied
        if not (user.is_staff or user.has_perm("djjobs.view_job")):
            return _error(403, "Metrics need a staff user or the 'djjobs.view_job' permission.")
    if importlib.util.find_spec("prometheus_client") is None:
        return _error(501, "prometheus-client is not installed: pip install 'djjobs[prometheus]'.")
    from . import metrics  # an optional dependency (djjobs[prometheus]), checked just above

    body, content_type = metrics.render()
    return HttpResponse(body, content_type=content_type)
