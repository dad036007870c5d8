"""The DJJOBS settings namespace: one dict of defaults, read at call time.

Reading at call time (never caching at import) keeps ``override_settings`` working in tests.
"""

import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Attempts a job gets before it is FAILED (the dead letter), counting the first run.
    "MAX_ATTEMPTS": 3,
    # Base delay in seconds of the exponential backoff between attempts (doubles each time).
    "RETRY_BACKOFF": 1.0,
    # Upper bound in seconds of any one backoff delay.
    "RETRY_BACKOFF_MAX": 3600.0,
    # Seconds a task may run before it is failed as timed out; None means no limit.
    "TIMEOUT": None,
    # Largest accepted JSON encoding of a job's args + kwargs, in bytes.
    "MAX_PAYLOAD_BYTES": 1024 * 1024,
    # Largest accepted JSON encoding of a job's return value, in bytes; a larger one fails the
    # job as InvalidReturnValue (not retried).
    "MAX_RETURN_VALUE_BYTES": 1024 * 1024,
    # Deepest nesting of lists and dicts accepted in args, kwargs, return values, checkpoints,
    # event payloads and workflow input (a value that is not a list or dict is depth 0).
    "MAX_JSON_DEPTH": 64,
    # Seconds a claimed job stays owned by its worker without a heartbeat.
    "LEASE_SECONDS": 30.0,
    # Seconds between lease renewals of a worker's running jobs.
    "HEARTBEAT_INTERVAL": 10.0,
    # Seconds between a worker's sweeps for jobs whose lease expired.
    "RESCUE_INTERVAL": 5.0,
    # PostgreSQL: wake idle workers with LISTEN/NOTIFY (polling remains the safety net).
    "LISTEN": True,
    # A direct (not PgBouncer transaction-mode) URL for the LISTEN connection; None: the
    # Job model's database settings.
    "LISTEN_DATABASE_URL": None,
    # Seconds between a worker's looks for due schedules.
    "SCHEDULER_INTERVAL": 1.0,
    # Schedules declared in settings, created/updated on migrate: {name: {"task": "app.tasks.f",
    # "cron": "0 2 * * *" | "interval": 60 | "run_at": "2030-01-01T09:00", ...}} (docs/schedules.md).
    "SCHEDULES": {},
    # Seconds a schedule's fire time may be late and still run as on time, under every misfire policy.
    "SCHEDULE_MISFIRE_GRACE": 60.0,
    # Seconds after which a missed fire time never runs, under every misfire policy; None: no bound.
    "SCHEDULE_MAX_LATENESS": None,
    # misfire="run_all": at most this many missed runs are caught up at once (the latest ones).
    "SCHEDULE_CATCH_UP_MAX": 100,
    # PostgreSQL: the worker's own commits (claims, batched completions) do not wait for the
    # WAL flush. A database crash may then forget the last milliseconds of them; jobs run
    # again rather than being lost (docs: explanation/guarantees.md). False: every commit waits.
    "ASYNC_COMMIT": True,
    # The speed-ups that rely on private APIs of Django, psycopg and Python (djjobs/db/fast.py):
    # False runs djjobs on public APIs only, slower (docs, explanation/performance.md).
    "FAST_PATHS": True,
    # Seconds an idle worker sleeps between polls (jittered by +-10%).
    "POLL_INTERVAL": 1.0,
    # Limits per queue, cluster-wide: {"emails": {"concurrency": 5, "rate_limit": "100/m"}}.
    # A limit set in the admin or with `manage.py queues` takes precedence over the one here
    # (docs: how-to/flow-control.md).
    "QUEUE_LIMITS": {},
    # Seconds a RUNNING job may ignore its cancellation before process mode kills its process.
    "CANCEL_GRACE_SECONDS": 10.0,
    # Days finished jobs are kept before workers and prune_jobs delete them; None keeps for ever.
    "RETENTION_DAYS": {"SUCCESSFUL": 14, "FAILED": 90, "CANCELLED": 90},
    # Days events (djjobs.publish) are kept; None keeps for ever. An idempotency key can be
    # used again once its event is pruned. Jobs outliving their event keep running; their
    # link to it is cleared.
    "EVENT_RETENTION_DAYS": 90,
    # Seconds between a worker's pruning sweeps.
    "PRUNE_INTERVAL": 3600.0,
    # Threads per worker process when --concurrency is not given.
    "CONCURRENCY": 4,
    # HTTP endpoints (djjobs.urls). API tokens: {"<token>": "<username>"}; a request bearing a
    # token acts as that (active) user, without CSRF. Keep tokens out of the code (env vars).
    "HTTP_TOKENS": {},
    # The request header carrying the token; with "Authorization" the value is "Bearer <token>".
    "HTTP_TOKEN_HEADER": "Authorization",
    # Seconds a signed status URL (returned by the enqueue endpoint) stays valid; None: for ever.
    "STATUS_URL_MAX_AGE": 7 * 24 * 3600,
    # Health: HTTP 503 when the oldest due READY job has waited longer than this many seconds.
    "HEALTH_MAX_DUE_AGE": 300.0,
    # Health and metrics count READY and FAILED jobs up to this many (bounded, never a full count).
    "HEALTH_COUNT_LIMIT": 10000,
    # Metrics: finished jobs, retries and durations are over the last this many seconds.
    "METRICS_WINDOW": 300.0,
    # Metrics: True serves /metrics/ to anyone; False needs staff, or a token of a user with view_job.
    "METRICS_PUBLIC": False,
}


def get(name: str) -> Any:
    """Return the DJJOBS setting ``name``, or its default.

    Called per job, so kept to an attribute and a dict lookup. A DJJOBS that is not a dict reads
    as the defaults (the check djjobs.E300 reports it); a value is not validated here (djjobs.E301
    reports a bad one, and run_workers refuses to start with it)."""
    try:
        return settings.DJJOBS.get(name, DEFAULTS[name])
    except AttributeError:  # no DJJOBS, or one that is not a dict
        return DEFAULTS[name]


# -- what each key accepts (the system checks djjobs.E300..., docs/reference/settings.md) --------

# Any duration in seconds: finite and at most a year, so that no timedelta, datetime or wait
# overflows (where "no limit" makes sense, the key takes None).
SECONDS_MAX = 365 * 24 * 3600
DAYS_MAX = 36500  # retention: at most 100 years (None keeps for ever)
WHOLE_MAX = 2**31 - 1  # counts and sizes written to or compared in the database fit its integer
CONCURRENCY_MAX = 1000  # threads per worker process (also bounds run_workers --concurrency)
# Stored values are walked recursively (json.dumps(indent=...) in the admin, pprint in debug
# pages, 2-3 frames a level): stay well under Python's recursion limit (1000) from any caller.
JSON_DEPTH_MAX = 200
CATCH_UP_MAX = 10000  # schedule runs caught up in one tick
FINISHED = ("SUCCESSFUL", "FAILED", "CANCELLED")

# An HTTP header name; no "_": servers (nginx, runserver) drop headers spelled with one.
_HEADER_NAME = re.compile(r"[0-9A-Za-z-]+\Z")


@dataclass(frozen=True)
class Rule:
    """What one DJJOBS key accepts.

    ``kind``: "number" (int or float, never a bool), "whole" (int, never a bool), "bool" (True or
    False), "text" (a non-empty str matching ``pattern`` if given) or "dict" (its content checked by
    ``items``). ``low``/``high`` bound numbers (``above``: ``low`` itself excluded); ``none`` says
    what None means where None is accepted."""

    kind: str
    low: float | None = None
    high: float | None = None
    above: bool = False
    none: str = ""
    unit: str = ""
    text: str = ""  # "text" and "dict": what is accepted, in words
    pattern: re.Pattern | None = None
    items: Callable[[dict], str] | None = None  # "dict": what is wrong with the content, or ""
    secret: bool = False  # never shown in messages (tokens, URLs with passwords)
    note: str = ""  # what else is checked (against other keys), in words
    check_id: str = "djjobs.E301"  # the system check that reports a bad value

    def accepts(self) -> str:
        """What the key accepts, in words (for messages and the docs)."""
        if self.kind == "bool":
            what = "True or False (a bool, not a string or a number)"
        elif self.kind in ("text", "dict"):
            what = self.text
        else:
            what = "a whole number" if self.kind == "whole" else "a number"
            what += f" of {self.unit}" if self.unit else ""
            if self.low is not None and self.high is not None:
                what += (
                    f" greater than {_n(self.low)} and at most {_n(self.high)}"
                    if self.above
                    else f" from {_n(self.low)} to {_n(self.high)}"
                )
            elif self.low is not None:
                what += f" greater than {_n(self.low)}" if self.above else f" of at least {_n(self.low)}"
        what = f"None ({self.none}) or {what}" if self.none else what
        return f"{what}, {self.note}" if self.note else what

    def problem(self, value: Any) -> str:
        """What is wrong with ``value`` (the end of a sentence), or an empty string if it is valid."""
        if value is None:
            return "" if self.none else f"it must be {self.accepts()}"
        if self.kind == "bool":
            valid = value is True or value is False
        elif self.kind == "number":
            valid = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif self.kind == "whole":
            valid = isinstance(value, int) and not isinstance(value, bool)
        elif self.kind == "text":
            valid = isinstance(value, str)
        else:
            valid = isinstance(value, dict)
        if not valid:
            return f"{_a(type(value).__name__)}, but it must be {self.accepts()}"
        if self.kind in ("number", "whole"):
            if isinstance(value, float) and not math.isfinite(value):
                return f"it must be {self.accepts()}"
            if self.low is not None and (value <= self.low if self.above else value < self.low):
                return f"it must be {self.accepts()}"
            if self.high is not None and value > self.high:
                return f"it must be {self.accepts()}"
        if self.kind == "text" and (not value or (self.pattern is not None and not self.pattern.match(value))):
            return f"it must be {self.accepts()}"
        if self.kind == "dict" and self.items is not None:
            return self.items(value)
        return ""


def _n(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else f"{number:.3g}"


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _show(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a settings object whose repr fails is still reported
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _seconds(low: float = 0, *, above: bool = True, none: str = "") -> Rule:
    return Rule("number", low, SECONDS_MAX, above=above, none=none, unit="seconds")


_RETENTION = Rule("number", 0, DAYS_MAX, none="kept for ever", unit="days")


def _retention_days(value: dict) -> str:
    for status, days in value.items():
        if status not in FINISHED:
            close = difflib.get_close_matches(status.upper(), FINISHED, n=1) if isinstance(status, str) else []
            return f"{_show(status)} is not a finished status ({', '.join(FINISHED)})" + (
                f"; did you mean {close[0]!r}?" if close else ""
            )
        problem = _RETENTION.problem(days)
        if problem:
            return f"its {status} is {_show(days)}: {problem}"
    return ""


def _queue_limits(value: dict) -> str:
    from .flow import MAX_LIMIT, parse_rate

    for name, limits in value.items():
        if not isinstance(name, str) or not name or len(name) > 64:
            return f"a queue name is {_show(name)}, but it must be a non-empty string of at most 64 characters"
        if not isinstance(limits, dict) or set(limits) - {"concurrency", "rate_limit"}:
            return f'the limits of {name!r} are {_show(limits)}, but they must be a dict with "concurrency" and/or "rate_limit"'
        concurrency = limits.get("concurrency")
        if concurrency is not None and (
            not isinstance(concurrency, int) or isinstance(concurrency, bool) or not 1 <= concurrency <= MAX_LIMIT
        ):
            return f"the concurrency of {name!r} is {_show(concurrency)}, but it must be a whole number from 1 to {MAX_LIMIT}"
        rate = limits.get("rate_limit")
        if rate is not None:
            try:
                parse_rate(rate)
            except ValueError as exc:
                return f"the rate_limit of {name!r}: {exc}"
    return ""


def _http_tokens(value: dict) -> str:
    for token, username in value.items():
        if not isinstance(token, str) or not token:
            shown = "an empty string" if token == "" else _a(type(token).__name__)
            return f"a token is {shown}, but tokens must be non-empty strings"
        if not isinstance(username, str) or not username:
            return f"a token's user is {_show(username)}, but it must be a username (a non-empty string)"
    return ""


RULES: dict[str, Rule] = {
    "MAX_ATTEMPTS": Rule("whole", 1, WHOLE_MAX),
    "RETRY_BACKOFF": _seconds(above=False),
    "RETRY_BACKOFF_MAX": _seconds(above=False),
    "TIMEOUT": _seconds(none="no limit"),
    "MAX_PAYLOAD_BYTES": Rule("whole", 1, WHOLE_MAX, unit="bytes"),
    "MAX_RETURN_VALUE_BYTES": Rule("whole", 1, WHOLE_MAX, unit="bytes"),
    "MAX_JSON_DEPTH": Rule("whole", 1, JSON_DEPTH_MAX, unit="levels"),
    "LEASE_SECONDS": _seconds(),
    "HEARTBEAT_INTERVAL": Rule(
        "number",
        0,
        SECONDS_MAX,
        above=True,
        unit="seconds",  # djjobs.E302, W302
        note="less than LEASE_SECONDS (at most half of it, a third is advised)",
    ),
    "RESCUE_INTERVAL": _seconds(),
    "LISTEN": Rule("bool"),
    "LISTEN_DATABASE_URL": Rule(
        "text",
        none="the Job model's database",
        secret=True,
        text="a PostgreSQL connection URL or conninfo string (not empty)",
    ),
    "SCHEDULER_INTERVAL": _seconds(),
    # Its entries are checked by djjobs.E201 (each declaration) and djjobs.E202 (the dict).
    "SCHEDULES": Rule(
        "dict", none="none declared", text='a dict of {name: {"task": ..., ...}}', check_id="djjobs.E202"
    ),
    "SCHEDULE_MISFIRE_GRACE": _seconds(above=False),
    "SCHEDULE_MAX_LATENESS": _seconds(above=False, none="no bound"),
    "SCHEDULE_CATCH_UP_MAX": Rule("whole", 1, CATCH_UP_MAX),
    "ASYNC_COMMIT": Rule("bool"),
    "FAST_PATHS": Rule("bool"),
    "POLL_INTERVAL": _seconds(),
    "QUEUE_LIMITS": Rule(
        "dict",
        items=_queue_limits,
        text='a dict of {queue: {"concurrency": N, "rate_limit": "N/s|m|h"}}',
    ),
    "CANCEL_GRACE_SECONDS": _seconds(above=False),
    "RETENTION_DAYS": Rule(
        "dict",
        items=_retention_days,
        text=f"a dict of {{status: days}} for statuses among {', '.join(FINISHED)}, "
        f"each None (kept for ever) or a number of days from 0 to {DAYS_MAX}",
    ),
    "EVENT_RETENTION_DAYS": _RETENTION,
    "PRUNE_INTERVAL": _seconds(),
    "CONCURRENCY": Rule("whole", 1, CONCURRENCY_MAX, unit="threads"),
    "HTTP_TOKENS": Rule(
        "dict",
        none="no tokens",
        items=_http_tokens,
        secret=True,
        check_id="djjobs.E104",
        text="a dict of {token: username}, both non-empty strings",
    ),
    "HTTP_TOKEN_HEADER": Rule(
        "text", pattern=_HEADER_NAME, text="an HTTP header name (a non-empty string of letters, digits and -)"
    ),
    "STATUS_URL_MAX_AGE": _seconds(none="valid for ever"),
    "HEALTH_MAX_DUE_AGE": _seconds(),
    "HEALTH_COUNT_LIMIT": Rule("whole", 1, WHOLE_MAX),
    "METRICS_WINDOW": _seconds(),
    "METRICS_PUBLIC": Rule("bool"),
}


@dataclass(frozen=True)
class Problem:
    """One finding about settings.DJJOBS, for the system check (``id``) and its message."""

    id: str
    key: str  # the DJJOBS key; "" for DJJOBS itself
    message: str
    hint: str

    @property
    def is_error(self) -> bool:
        return ".E" in self.id


def validate(configured: Any) -> list[Problem]:
    """Every problem of ``configured`` (settings.DJJOBS), in key order. Pure: never raises."""
    if not isinstance(configured, dict):
        return [
            Problem(
                "djjobs.E300",
                "",
                f"settings.DJJOBS is {_show(configured)} (a {type(configured).__name__}): it must be a dict.",
                "Set DJJOBS to a dict of the keys in djjobs' docs, reference/settings.md, e.g. "
                "DJJOBS = {'CONCURRENCY': 8}; until then every key has its default.",
            )
        ]
    found = []
    for key, value in configured.items():
        problem = check(key, value) if isinstance(key, str) and key in RULES else _unknown(key)
        if problem is not None:
            found.append(problem)
    return found + _heartbeat(configured, {p.key for p in found})


def check(key: str, value: Any) -> Problem | None:
    """The problem of ``value`` as DJJOBS[key] (a known key), or None if it is valid."""
    rule = RULES[key]
    problem = rule.problem(value)
    if not problem:
        return None
    shown = _a(type(value).__name__) if rule.secret else _show(value)
    return Problem(
        rule.check_id,
        key,
        f"DJJOBS[{key!r}] is {shown}: {problem}" + ("" if problem.endswith("?") else "."),
        f"Set DJJOBS[{key!r}] to {rule.accepts()}, or remove it to use the default"
        + ("." if rule.secret else f", {DEFAULTS[key]!r}."),
    )


def _unknown(key: Any) -> Problem:
    close = difflib.get_close_matches(key.upper(), RULES, n=1) if isinstance(key, str) else []
    if close:
        return Problem(
            "djjobs.W301",
            str(key),
            f"DJJOBS has the unknown key {_show(key)}, which is ignored: did you mean {close[0]!r}?",
            f"Rename it to {close[0]!r}, or remove it.",
        )
    return Problem(
        "djjobs.W301",
        str(key),
        f"DJJOBS has the unknown key {_show(key)}, which is ignored.",
        "Remove it, or use a key listed in djjobs' docs, reference/settings.md.",
    )


def _heartbeat(configured: dict, bad: set[str]) -> list[Problem]:
    if {"HEARTBEAT_INTERVAL", "LEASE_SECONDS"} & bad:
        return []
    beat = configured.get("HEARTBEAT_INTERVAL", DEFAULTS["HEARTBEAT_INTERVAL"])
    lease = configured.get("LEASE_SECONDS", DEFAULTS["LEASE_SECONDS"])
    hint = (
        f"Make DJJOBS['HEARTBEAT_INTERVAL'] at most a third of DJJOBS['LEASE_SECONDS'], "
        f"e.g. {_n(lease / 3)} for {_n(lease)}."
    )
    if beat >= lease:
        return [
            Problem(
                "djjobs.E302",
                "HEARTBEAT_INTERVAL",
                f"DJJOBS['HEARTBEAT_INTERVAL'] ({_n(beat)}) is not shorter than DJJOBS['LEASE_SECONDS'] "
                f"({_n(lease)}): a running job's lease expires between two heartbeats, and the job is "
                "rescued and run again while it still runs.",
                hint,
            )
        ]
    if beat > lease / 2:
        return [
            Problem(
                "djjobs.W302",
                "HEARTBEAT_INTERVAL",
                f"DJJOBS['HEARTBEAT_INTERVAL'] ({_n(beat)}) is more than half of DJJOBS['LEASE_SECONDS'] "
                f"({_n(lease)}): one late heartbeat lets a running job's lease expire, and the job "
                "runs again while it still runs.",
                hint,
            )
        ]
    return []
