"""Flow control's rules: the task options, their validation, and what they make of one call.

Pure: no ORM, no I/O. The options (docs/how-to/flow-control.md):

- ``fifo_key``: jobs with the same key run one at a time, in enqueue order (a database
  sequence); ``fifo_on_failure`` is "continue" (a FAILED or CANCELLED job lets the next one
  run) or "hold" (a FAILED job keeps the key blocked until it is retried or cancelled);
- ``concurrency``: at most N jobs RUNNING at once in the whole cluster: of the task, or of each
  ``concurrency_key`` when one is given;
- ``rate_limit``: at most N starts in any window of the period ("100/m"; /s, /m, /h): of the
  task, or of each ``rate_key`` when one is given;
- ``debounce`` (with ``unique_key``): while the key's job has not started, enqueueing again
  replaces its arguments and moves it to now + debounce, never past its first enqueue +
  ``debounce_max``; once it started, the next enqueue makes a new job.

A key is a string, or a callable that takes the job's arguments and returns one. The claim
decides the limits (djjobs.worker.gate), the insert path the FIFO order (djjobs.lifecycle.insert),
and every path that ends a job releases its key (djjobs.lifecycle.finish).
"""

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import lru_cache
from typing import Any

from .compat import InvalidTask, Task

OPTIONS = (
    "fifo_key",
    "fifo_on_failure",
    "concurrency",
    "concurrency_key",
    "rate_limit",
    "rate_key",
    "debounce",
    "debounce_max",
)
FIFO_ON_FAILURE = ("continue", "hold")
MAX_KEY_LENGTH = 255
MAX_LIMIT = 1_000_000
PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0}

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smh])\s*$")


@lru_cache(maxsize=256)
def parse_rate(text: str) -> tuple[int, float]:
    """ "100/m" -> (100, 60.0): at most 100 starts in any 60 seconds. "5/2s" is 5 per 2 seconds.
    ValueError says what is wrong."""
    match = _RATE.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f'a rate limit is "N/s", "N/m" or "N/h" (e.g. "100/m", "5/2s"), got {text!r}')
    count, multiple, unit = int(match[1]), int(match[2] or 1), match[3]
    if not 1 <= count <= MAX_LIMIT or not 1 <= multiple <= 1000:
        raise ValueError(f"a rate limit allows 1 to {MAX_LIMIT} starts per 1 to 1000 periods, got {text!r}")
    return count, multiple * PERIODS[unit]


def check_options(options: object) -> None:
    """Refuse bad flow options (at declaration, ``using()`` and enqueue); ``options`` has any of
    OPTIONS as attributes. Raises InvalidTask saying which option and why."""
    for name in ("fifo_key", "concurrency_key", "rate_key"):
        key = getattr(options, name, None)
        if key is not None and not callable(key):
            check_key(name, key)
    policy = getattr(options, "fifo_on_failure", None)
    if policy is not None and policy not in FIFO_ON_FAILURE:
        raise InvalidTask(f'fifo_on_failure must be "continue" or "hold", got {policy!r}.')
    concurrency = getattr(options, "concurrency", None)
    check_concurrency(concurrency)
    rate = getattr(options, "rate_limit", None)
    check_rate(rate)
    check_debounce(getattr(options, "debounce", None), getattr(options, "debounce_max", None))
    if getattr(options, "concurrency_key", None) is not None and concurrency is None:
        raise InvalidTask("concurrency_key needs concurrency=N: how many jobs of each key may run at once.")
    if getattr(options, "rate_key", None) is not None and rate is None:
        raise InvalidTask('rate_key needs rate_limit="N/period": how many jobs of each key may start.')


def check_concurrency(concurrency: object) -> None:
    """A concurrency limit (None: none), or InvalidTask."""
    if concurrency is not None and (
        not isinstance(concurrency, int) or isinstance(concurrency, bool) or not 1 <= concurrency <= MAX_LIMIT
    ):
        raise InvalidTask(f"concurrency must be a whole number from 1 to {MAX_LIMIT}, got {concurrency!r}.")


def check_rate(rate: object) -> None:
    """A rate limit ("100/m"; None: none), or InvalidTask."""
    if rate is not None:
        try:
            parse_rate(rate)  # a non-string is refused with ValueError too
        except ValueError as exc:
            raise InvalidTask(f"rate_limit: {exc}.") from None


def check_debounce(debounce: object, debounce_max: object) -> None:
    """debounce and debounce_max (None: none), or InvalidTask."""
    low = seconds("debounce", debounce)
    high = seconds("debounce_max", debounce_max)
    if high is not None and low is None:
        raise InvalidTask("debounce_max bounds a debounce: give debounce= too.")
    if high is not None and low is not None and high < low:
        raise InvalidTask(f"debounce_max ({high:g} s) must be at least debounce ({low:g} s).")


MAX_SECONDS = 366 * 86400.0


def seconds(name: str, value: object) -> float | None:
    """A duration option (a timedelta or a number of seconds) in seconds, or InvalidTask."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= MAX_SECONDS:
        raise InvalidTask(
            f"{name} must be a timedelta or a number of seconds above 0 and at most a year, got {value!r}."
        )
    return float(value)


def check_key(name: str, key: object) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH or "\x00" in key:
        raise InvalidTask(
            f"{name} must be a non-empty string of at most {MAX_KEY_LENGTH} characters without NUL "
            f"(or a callable that returns one), got {key!r}."
        )
    try:
        key.encode()
    except UnicodeEncodeError:
        raise InvalidTask(f"{name} must not contain a lone surrogate.") from None
    return key


def uses_flow(task: object) -> bool:
    """Whether jobs of ``task`` carry any flow option (they take the guarded insert)."""
    return any(getattr(task, name, None) is not None for name in ("fifo_key", "concurrency", "rate_limit"))


def job_fields(task: Task, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The flow columns of one job of ``task`` called with ``args``/``kwargs``: the keys made
    (a callable key is called with the job's arguments), the limits it carries."""
    fields: dict[str, Any] = {}
    fifo = getattr(task, "fifo_key", None)
    if fifo is not None:
        fields["fifo_key"] = _key("fifo_key", fifo, args, kwargs)
        fields["fifo_hold"] = getattr(task, "fifo_on_failure", None) == "hold"
    concurrency = getattr(task, "concurrency", None)
    if concurrency is not None:
        key = getattr(task, "concurrency_key", None)
        fields["concurrency_key"] = (
            f"task:{task.module_path}" if key is None else _key("concurrency_key", key, args, kwargs)
        )
        fields["concurrency_limit"] = concurrency
    rate = getattr(task, "rate_limit", None)
    if rate is not None:
        key = getattr(task, "rate_key", None)
        fields["rate_key"] = f"task:{task.module_path}" if key is None else _key("rate_key", key, args, kwargs)
        fields["rate_limit"] = rate.strip()
    return fields


def _key(name: str, key: object, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    if callable(key):
        try:
            key = key(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any error of the user's callable refuses the enqueue
            raise InvalidTask(f"{name}: the callable raised {type(exc).__name__}: {exc}") from None
    return check_key(name, key)


def queue_scope(name: str) -> str:
    """The scope a queue's limits count in (a job's own keys are never prefixed so)."""
    return f"queue:{name}"
