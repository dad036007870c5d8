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
    # Seconds an idle worker sleeps between polls (jittered by +-10%).
    "POLL_INTERVAL": 1.0,
    # Seconds a RUNNING job may ignore its cancellation before process mode kills its process.
    "CANCEL_GRACE_SECONDS": 10.0,
    # Days finished jobs are kept before workers and prune_jobs delete them; None keeps for ever.
    "RETENTION_DAYS": {"SUCCESSFUL": 14, "FAILED": 90, "CANCELLED": 90},
    # Seconds between a worker's pruning sweeps.
    "PRUNE_INTERVAL": 3600.0,
    # Threads per worker process when --concurrency is not given.
    "CONCURRENCY": 4,
}


def get(name: str) -> Any:
    """Return the DJJOBS setting ``name``, or its default."""
    return getattr(settings, "DJJOBS", {}).get(name, DEFAULTS[name])
