"""JobTask: Django's Task with djjobs options, and the ``@task`` decorator that makes one."""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol, cast, overload

from django.utils import timezone

from . import flow
from .compat import DEFAULT_TASK_BACKEND_ALIAS, DEFAULT_TASK_QUEUE_NAME, InvalidTask, Task, TaskResult
from .registry import declare

_OPTIONS = ("max_attempts", "retry_backoff", "timeout", "unique_key", "atomic", *flow.OPTIONS)

# One item of enqueue_many(): positional args (a tuple or list) or kwargs (a dict).
Call = Sequence[Any] | Mapping[str, Any]


class _EnqueuesMany(Protocol):
    """What enqueue_many() needs of the task's backend (djjobs.backend.JobsBackend has it)."""

    def enqueue_many(self, task: "JobTask", calls: Iterable[Call]) -> Sequence[TaskResult]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class JobTask(Task):
    """A Task whose backend is djjobs. Options left None take the DJJOBS setting of that name."""

    max_attempts: int | None = None  # attempts in all, counting the first run
    retry_backoff: float | None = None  # base backoff in seconds, doubled per attempt
    timeout: float | None = None  # seconds a run may take
    unique_key: str | None = None  # at most one READY/RUNNING job with this key
    atomic: bool = False  # run the body and its completion in one transaction
    # Flow control (djjobs.flow): a key is a string or a callable of the job's arguments.
    fifo_key: Any = None  # jobs with one key run one at a time, in enqueue order
    fifo_on_failure: str | None = None  # "continue" (default) or "hold": a FAILED job blocks its key
    concurrency: int | None = None  # at most N RUNNING in the cluster (of the task, or per concurrency_key)
    concurrency_key: Any = None
    rate_limit: str | None = None  # "N/s|m|h": at most N starts in any such window (of the task, or per rate_key)
    rate_key: Any = None
    debounce: timedelta | float | None = None  # with unique_key: a burst of enqueues becomes one job
    debounce_max: timedelta | float | None = None  # the longest a debounced job waits from its first enqueue
    # Declarations read by other parts (not per-enqueue options):
    schedule: str | None = None  # a cron expression: a code-managed Schedule (djjobs.schedules.tick)
    subscribe: str | tuple[str, ...] | None = None  # event name(s) this task handles (djjobs.events)
    http: bool = False  # may be enqueued through the HTTP endpoint (djjobs.http.views)

    def __post_init__(self) -> None:
        Task.__post_init__(self)  # zero-argument super() does not work in slotted dataclasses
        flow.check_options(self)

        declare(self)

    def using(
        self,
        *,
        priority: int | None = None,
        queue_name: str | None = None,
        run_after: datetime | timedelta | None = None,
        backend: str | None = None,
        **options: Any,
    ) -> "JobTask":
        """A copy with other defaults; ``run_after`` may be a timedelta from now."""
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            raise TypeError(f"using() got unexpected option(s): {', '.join(sorted(unknown))}")
        if isinstance(run_after, timedelta):
            try:
                run_after = timezone.now() + run_after
            except OverflowError:
                raise InvalidTask(
                    f"run_after is beyond the last date a datetime can hold: now + {run_after}."
                ) from None
        changes = {k: v for k, v in options.items() if v is not None}
        for name, value in (
            ("priority", priority),
            ("queue_name", queue_name),
            ("run_after", run_after),
            ("backend", backend),
        ):
            if value is not None:
                changes[name] = value
        return replace(self, **changes)

    def enqueue_many(self, calls: Iterable[Call]) -> Sequence[TaskResult]:
        """Enqueue one job per item in one INSERT: a tuple/list is positional args, a dict kwargs.
        Returns their TaskResults in call order, a read-only sequence made when first read."""
        # The backend is djjobs' (JobsBackend.validate_task accepts only JobTasks on it).
        return cast(_EnqueuesMany, self.get_backend()).enqueue_many(self, calls)


@overload
def task(
    function: Callable[..., Any],
    *,
    priority: int = 0,
    queue_name: str = DEFAULT_TASK_QUEUE_NAME,
    backend: str = DEFAULT_TASK_BACKEND_ALIAS,
    takes_context: bool = False,
    **options: Any,
) -> JobTask: ...


@overload
def task(
    function: None = None,
    *,
    priority: int = 0,
    queue_name: str = DEFAULT_TASK_QUEUE_NAME,
    backend: str = DEFAULT_TASK_BACKEND_ALIAS,
    takes_context: bool = False,
    **options: Any,
) -> Callable[[Callable[..., Any]], JobTask]: ...


def task(
    function: Callable[..., Any] | None = None,
    *,
    priority: int = 0,
    queue_name: str = DEFAULT_TASK_QUEUE_NAME,
    backend: str = DEFAULT_TASK_BACKEND_ALIAS,
    takes_context: bool = False,
    **options: Any,
) -> JobTask | Callable[[Callable[..., Any]], JobTask]:
    """Django's ``@task`` plus djjobs options (max_attempts, retry_backoff, timeout, unique_key, atomic,
    and flow control's fifo_key, fifo_on_failure, concurrency, concurrency_key, rate_limit, rate_key)."""
    if "run_after" in options:
        raise TypeError(
            "run_after cannot be defined statically with the @task decorator. "
            "Use .using(run_after=...) to set it dynamically."
        )

    def wrapper(func: Callable[..., Any]) -> JobTask:
        return JobTask(
            func=func,
            priority=priority,
            queue_name=queue_name,
            backend=backend,
            takes_context=takes_context,
            **options,
        )

    return wrapper(function) if function else wrapper
