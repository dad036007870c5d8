"""JobContext: the standard TaskContext plus progress, checkpoints and cancellation."""

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from .compat import TaskContext
from .models import Job
from .payload import clean_text, to_json
from .states import JobStatus

# The id of the job whose task is running in this thread or coroutine (set by the executor),
# so what the task does can name its cause: events published from a job record that job.
current_job_id: ContextVar[Any] = ContextVar("djjobs_current_job_id", default=None)


# django-stubs declare TaskContext a plain dataclass; Django's (and the backport's) is frozen.
@dataclass(frozen=True, slots=True, kw_only=True)
class JobContext(TaskContext):  # type: ignore[misc]
    job_id: Any
    lease_token: Any
    checkpoint: Any = None  # the last checkpoint saved by an earlier attempt, or None

    def _owned(self) -> QuerySet[Job]:
        return Job.objects.filter(id=self.job_id, status=JobStatus.RUNNING, lease_token=self.lease_token)

    def set_progress(self, percent: float, message: str = "") -> bool:
        """Record progress (0..100) on the job; False if this worker no longer owns it."""
        percent = float(percent)
        percent = 0.0 if percent != percent else max(0.0, min(100.0, percent))  # NaN: 0
        # A text column cannot hold NUL or a lone surrogate: shown escaped instead.
        return bool(self._owned().update(progress=percent, progress_message=clean_text(str(message))[:255]))

    def save_checkpoint(self, data: Any) -> bool:
        """Persist JSON ``data`` at once; a later attempt reads it as ``context.checkpoint``.

        ValueError, and nothing written, for data that breaks the rules of arguments (plain JSON,
        no NUL or lone surrogate, at most DJJOBS['MAX_JSON_DEPTH'] levels deep: djjobs.payload)."""
        value, _ = to_json(data, "The checkpoint")
        saved = bool(self._owned().update(checkpoint=value))
        if saved:
            object.__setattr__(self, "checkpoint", value)
        return saved

    def is_cancelled(self) -> bool:
        """Whether cancellation was requested (or the job is no longer this worker's)."""
        row = Job.objects.filter(id=self.job_id).values_list("status", "cancel_requested_at", "lease_token").first()
        return row is None or row[1] is not None or row[0] != JobStatus.RUNNING or row[2] != self.lease_token
