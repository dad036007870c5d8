"""What a due schedule fires now: the misfire and overlap policies. Pure: values in, a Plan out.

A fire time at most ``grace`` seconds late is *on time* and fires whatever the policy (a tick
runs every second or so; it is always a little late). Older ones are *misfires*: the workers
were down, or the schedule was not looked at. Misfires are handled by the schedule's policy:

- ``run_once`` (default): the misfires make one catch-up run, for the latest of them (none
  when a run is on time now: that run is the catch-up);
- ``skip``: none of them runs; the schedule resumes with its next fire time;
- ``run_all``: each runs, at most ``cap`` of them (the latest).

Under every policy a fire time more than ``max_lateness`` seconds late never runs (None: no bound).
The overlap policy ``skip`` fires nothing while the previous run is READY or RUNNING, and at
most one run per tick.
"""

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from .cron import Timing

# Misfires are counted (for the schedule's record) up to this many per catch-up.
COUNT_LIMIT = 1000


class Misfire(StrEnum):
    RUN_ONCE = "run_once"  # one catch-up run for all the misfires
    SKIP = "skip"  # no catch-up; resume at the next fire time
    RUN_ALL = "run_all"  # every misfire runs, up to the cap


class Overlap(StrEnum):
    ALLOW = "allow"  # fire even while the previous run is READY or RUNNING
    SKIP = "skip"  # do not fire while the previous run is READY or RUNNING


@dataclass(frozen=True, slots=True)
class Plan:
    fire: list[datetime]  # fire times to enqueue now, oldest first
    next_run_at: datetime | None  # the first fire time after now; None when nothing is left
    skipped: int = 0  # fire times that will never run (misfires dropped, overlaps)
    reasons: list[str] = field(default_factory=list)  # why they were skipped, for the record


def plan(
    timing: Timing,
    due_at: datetime,
    now: datetime,
    *,
    misfire: str = Misfire.RUN_ONCE,
    overlap: str = Overlap.ALLOW,
    previous_active: bool = False,
    grace: float = 60.0,
    max_lateness: float | None = None,
    cap: int = 100,
) -> Plan:
    """Decide what a schedule due since ``due_at`` (its stored next run) fires at ``now``."""
    if due_at > now:
        return Plan(fire=[], next_run_at=due_at)
    on_time_from = now - timedelta(seconds=grace)
    fire = _fires(timing, due_at, max(due_at, on_time_from), now)
    skipped, reasons = 0, []
    if due_at < on_time_from:  # misfires: the fire times in [due_at, on_time_from)
        # run_once: a run on time now is the catch-up run; otherwise the latest misfire is.
        keeps: dict[str, int] = {Misfire.SKIP: 0, Misfire.RUN_ONCE: 0 if fire else 1}
        keep = keeps.get(misfire, cap)
        catch_up, dropped, reason = _catch_up(timing, due_at, on_time_from, now, misfire, keep, max_lateness)
        fire = sorted(set(catch_up + fire))
        if dropped:
            skipped += dropped
            reasons.append(reason)
    if overlap == Overlap.SKIP and fire:
        kept = [] if previous_active else fire[-1:]
        if len(fire) > len(kept):
            skipped += len(fire) - len(kept)
            reasons.append(
                "the previous run was still READY or RUNNING (overlap: skip)"
                if previous_active
                else f"{len(fire) - 1} catch-up run(s) would have overlapped (overlap: skip)"
            )
        fire = kept
    return Plan(fire=fire, next_run_at=timing.next_after(now), skipped=skipped, reasons=reasons)


def _catch_up(
    timing: Timing,
    due_at: datetime,
    end: datetime,
    now: datetime,
    misfire: str,
    keep: int,
    max_lateness: float | None,
) -> tuple[list[datetime], int, str]:
    """The latest ``keep`` misfires in [due_at, end) that are not too late, how many misfires
    do not run, and why."""
    latest = _latest(timing, due_at, end, keep) if keep else []
    late_limit = now - timedelta(seconds=max_lateness) if max_lateness is not None else None
    catch_up = [t for t in latest if late_limit is None or t >= late_limit]
    missed, exact = _count(timing, due_at, end)
    dropped = max(0, missed - len(catch_up))
    count = f"{dropped}{'' if exact else '+'} missed run(s)"
    if len(catch_up) < len(latest):
        return catch_up, dropped, f"{count}: later than DJJOBS['SCHEDULE_MAX_LATENESS'] (misfire: {misfire})"
    return catch_up, dropped, f"{count} not caught up (misfire: {misfire})"


def _fires(
    timing: Timing, due_at: datetime, start: datetime, end: datetime, limit: int | None = None
) -> list[datetime]:
    """The schedule's fire times in [start, end]: ``due_at`` itself, then the timing's."""
    head = [due_at] if start <= due_at <= end else []
    after = max(due_at, start - timedelta(microseconds=1))
    return head + timing.between(after, end, None if limit is None else limit - len(head))


def _latest(timing: Timing, due_at: datetime, end: datetime, count: int) -> list[datetime]:
    """The latest ``count`` fire times in [due_at, end), found through growing windows so a
    long outage of a frequent schedule does not walk every missed second."""
    window = timedelta(minutes=1)
    while True:
        start = max(due_at, end - window)
        found: deque[datetime] = deque(maxlen=count)
        found.extend(t for t in _fires(timing, due_at, start, end) if t < end)
        if len(found) >= count or start == due_at:
            return list(found)
        window *= 8


def _count(timing: Timing, due_at: datetime, end: datetime) -> tuple[int, bool]:
    """How many fire times are in [due_at, end), and whether that is exact (cron schedules
    are counted up to COUNT_LIMIT)."""
    if timing.interval:
        first = timing.next_after(due_at)
        if first is None or first >= end:
            return 1, True
        return 2 + int((end - first).total_seconds() - 1e-6) // timing.interval, True
    times = [t for t in _fires(timing, due_at, due_at, end, COUNT_LIMIT + 1) if t < end]
    return min(len(times), COUNT_LIMIT), len(times) <= COUNT_LIMIT
