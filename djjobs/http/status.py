"""One job's status as the endpoints show it, and the signed URL that lets its holder read it.

The status URL carries a ``django.core.signing`` signature of the job id (salted, timestamped),
so a browser can poll the job it enqueued without staff rights, and nobody can forge a URL
for another job.
"""

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core import signing
from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import urlencode

from .. import conf
from ..states import FINISHED, JobStatus

if TYPE_CHECKING:
    from ..models import Job

SALT = "djjobs.status"


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def status_token(job_id: uuid.UUID | str) -> str:
    """The signature part of a status URL for ``job_id``."""
    return _signer().sign(str(uuid.UUID(str(job_id)))).split(":", 1)[1]


def check_token(job_id: uuid.UUID | str, token: str) -> bool:
    """Whether ``token`` was made by status_token(job_id) and has not expired."""
    try:
        _signer().unsign(f"{uuid.UUID(str(job_id))}:{token}", max_age=conf.get("STATUS_URL_MAX_AGE"))
    except (signing.BadSignature, ValueError):
        return False
    return True


def status_url(job_id: uuid.UUID | str, request: HttpRequest | None = None) -> str:
    """The job's signed status URL: absolute when ``request`` is given."""
    url = reverse("djjobs:job-status", args=[uuid.UUID(str(job_id))])
    url = f"{url}?{urlencode({'token': status_token(job_id)})}"
    return request.build_absolute_uri(url) if request is not None else url


def job_status(job: "Job") -> dict[str, Any]:
    """The JSON of the status endpoint. Errors are summarised: no traceback leaves the server."""
    last_error = job.errors[-1] if job.errors else None
    return {
        "id": str(job.id),
        "task": job.task_path,
        "queue": job.queue_name,
        "status": job.status,
        "finished": job.status in FINISHED,
        "progress": job.progress,
        "progress_message": job.progress_message,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "enqueued_at": _iso(job.enqueued_at),
        "run_after": _iso(job.run_after),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "return_value": job.return_value if job.status == JobStatus.SUCCESSFUL else None,
        "error": None
        if last_error is None
        else {
            "exception_class_path": last_error.get("exception_class_path", ""),
            "message": last_error.get("message", ""),
        },
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
