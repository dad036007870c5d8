"""The DJJOBS settings namespace: one dict of defaults, read at call time.

Reading at call time (never caching at import) keeps ``override_settings`` working in tests.
"""

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
    # again rather than being lost (see README, Guarantees). False: every commit waits.
    "ASYNC_COMMIT": True,
    # Seconds an idle worker sleeps between polls (jittered by +-10%).
    "POLL_INTERVAL": 1.0,
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
    """Return the DJJOBS setting ``name``, or its default."""
    return getattr(settings, "DJJOBS", {}).get(name, DEFAULTS[name])
