"""Helpers for users' tests: run pending jobs synchronously, assert what was enqueued.

``run_jobs()`` uses the same claim, execute and complete steps as the worker, in the
calling thread, so it works inside a TestCase transaction.
"""

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from . import conf
from .compat import Task
from .models import Job
from .states import JobStatus
from .worker.claim import claim
from .worker.turn import process

TEST_WORKER_ID = "djjobs-testing"


def run_jobs(queues: Iterable[str] | None = None, max_jobs: int | None = None) -> int:
    """Run every due job (retries that come due included) until none is left; return how many ran."""
    ran = 0
    while max_jobs is None or ran < max_jobs:
        jobs = claim(TEST_WORKER_ID, list(queues) if queues else None, 1, conf.get("LEASE_SECONDS"))
        if not jobs:
            break
        process(jobs[0], TEST_WORKER_ID)
        ran += 1
    return ran


def enqueued_jobs(task: Task | str | None = None, **filters: Any) -> QuerySet[Job]:
    """READY jobs, optionally of one task (a Task or a dotted path) and matching field filters."""
    jobs = Job.objects.filter(status=JobStatus.READY, **filters)
    return jobs.for_task(task) if task is not None else jobs


def assert_enqueued(
    task: Task | str | None = None,
    *,
    args: list[Any] | tuple[Any, ...] | None = None,
    kwargs: dict[str, Any] | None = None,
    count: int | None = None,
    **filters: Any,
) -> None:
    """Assert that READY jobs of ``task`` exist (``count`` of them, if given) with these args."""
    jobs = list(enqueued_jobs(task, **filters))
    if args is not None:
        jobs = [j for j in jobs if j.args == list(args)]
    if kwargs is not None:
        jobs = [j for j in jobs if j.kwargs == dict(kwargs)]
    name = getattr(task, "module_path", task) or "any task"
    if count is None:
        assert jobs, f"expected a job of {name} to be enqueued, found none"
    else:
        assert len(jobs) == count, f"expected {count} job(s) of {name} enqueued, found {len(jobs)}"


def assert_not_enqueued(task: Task | str | None = None, **kwargs: Any) -> None:
    assert_enqueued(task, count=0, **kwargs)
