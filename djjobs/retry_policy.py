"""Retry policy: (attempt, options, exception) -> seconds to wait, or None to fail. Pure."""

import random

from .exceptions import Discard, Retry


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with "equal jitter": a delay in [d/2, d], d = base * 2**(attempt-1).

    The jitter spreads retries of jobs that failed together (an outage) so they do not all
    come back at the same instant; the lower bound keeps the backoff meaningful.
    """
    delay = min(cap, base * 2 ** max(attempt - 1, 0))
    return delay / 2 + (rng or random).uniform(0, delay / 2)


def next_delay(attempt: int, max_attempts: int, base: float, cap: float, exc: BaseException) -> float | None:
    """Seconds until the next attempt after ``attempt`` failed with ``exc``; None means FAILED."""
    if isinstance(exc, Discard) or attempt >= max_attempts:
        return None
    if isinstance(exc, Retry) and exc.delay is not None:
        return max(0.0, exc.delay)
    return backoff_delay(attempt, base, cap)
