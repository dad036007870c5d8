"""When a schedule fires: cron, interval and one-off timing in a time zone. Pure: no database,
no settings, so models, checks, the admin and the scheduler all use the same math.

- **cron**: 5 fields (minute hour day-of-month month day-of-week), or 6 with *seconds as the 6th
  (last) field*, croniter's order. ``@hourly``, ``@daily``, ``@weekly``, ``@monthly`` and
  ``@yearly`` are accepted. Matched against the wall clock of the schedule's time zone.
- **interval**: every N seconds of elapsed time, at the multiples of N since the Unix epoch
  (so ``60`` fires at second 0 of each minute whoever saved it, whenever). Time zones and DST
  do not matter to it.
- **run_at**: one instant.

Daylight saving time. The wall clock skips an hour in spring and repeats one in autumn:

- A cron expression whose hour field matches every hour (``*/15 * * * *``, ``0 * * * *``)
  follows **real time**: wall times that are skipped do not fire, and wall times that happen
  twice fire twice. Its runs stay evenly spaced in elapsed time.
- Any other expression (``0 2 * * *``, ``30 1 * * 0``) follows the **wall clock**, once per day it
  names: a time that is skipped fires once, at the instant the clocks jump (several skipped
  times make one run); a time that happens twice fires once, at its first occurrence.

So ``0 2 * * *`` in America/New_York fires at 03:00 EDT on the spring day (02:00 does not
exist) and at 02:00 EST in autumn: once each day, never twice, never zero times.
"""

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week", "second")
# croniter's random ("R") and hashed ("H") fields would make fire times differ per process.
_RANDOM_OR_HASHED = re.compile(r"(^|[^a-z])[rh]([^a-z]|$)", re.IGNORECASE)
_STEP = 6 * 3600  # probe the zone's offset this often when looking for a DST transition


class TimingError(ValueError):
    """A cron expression, interval, time zone or run_at that cannot be used; says what is wrong."""


@dataclass(frozen=True, slots=True)
class Cron:
    """A validated cron expression."""

    text: str  # normalised: aliases expanded, single spaces
    real_time: bool  # the hour field matches every hour: DST follows elapsed time (see above)

    @property
    def fields(self) -> list[str]:
        return self.text.split(" ")


def parse_cron(expr: str) -> Cron:
    """Validate ``expr``; TimingError says what is wrong with it."""
    text = " ".join(str(expr or "").split())
    text = ALIASES.get(text.lower(), text)
    fields = text.split(" ") if text else []
    if len(fields) not in (5, 6):
        raise TimingError(
            f"Cron expression {expr!r} has {len(fields)} field(s); it needs 5 (minute hour day-of-month "
            "month day-of-week) or 6 (the same, then seconds)."
        )
    for name, field in zip(FIELD_NAMES, fields):
        if _RANDOM_OR_HASHED.search(field):
            raise TimingError(
                f"Cron expression {expr!r}: random (R) and hashed (H) values are not supported ({name} field)."
            )
    try:
        parsed = croniter(text, datetime(2000, 1, 1))
    except CroniterError as exc:
        raise TimingError(f"Cron expression {expr!r} is not valid: {_field_problem(fields) or exc}.") from None
    try:
        parsed.get_next(datetime)
    except CroniterBadDateError:
        raise TimingError(f"Cron expression {expr!r} never fires: no date matches it.") from None
    hours = parsed.expanded[1]
    return Cron(text=text, real_time=hours == ["*"] or len(hours) == 24)


def _field_problem(fields: list[str]) -> str:
    """Name the first field croniter refuses, for a clearer message than croniter's own."""
    ranges = ("0-59", "0-23", "1-31", "1-12", "0-7", "0-59")
    for i, (name, field) in enumerate(zip(FIELD_NAMES, fields)):
        probe = ["*"] * len(fields)
        probe[i] = field
        try:
            croniter(" ".join(probe), datetime(2000, 1, 1))
        except CroniterError:
            return (
                f"the {name} field {field!r} is not valid (allowed: {ranges[i]}, *, lists a,b, ranges a-b, steps */n)"
            )
    return ""


def get_zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; TimingError if there is no such zone."""
    if not name or not isinstance(name, str):
        raise TimingError("A time zone is required (an IANA name such as 'Europe/London' or 'UTC').")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimingError(f"Unknown time zone {name!r}: use an IANA name such as 'Europe/London' or 'UTC'.") from None


def check_interval(seconds: Any) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise TimingError(f"The interval is a whole number of seconds, got {seconds!r}.")
    if seconds < 1:
        raise TimingError(f"The interval must be at least 1 second, got {seconds}.")
    return seconds


@dataclass(frozen=True, slots=True)
class Timing:
    """One of cron, interval or run_at, in a time zone: the fire times of a schedule."""

    cron: Cron | None = None
    interval: int | None = None
    run_at: datetime | None = None
    zone: tzinfo = UTC

    @classmethod
    def build(
        cls, *, cron: str = "", interval: int | None = None, run_at: datetime | None = None, time_zone: str = "UTC"
    ) -> "Timing":
        """Validate and combine the parts; exactly one of cron, interval and run_at is given."""
        given = [
            name
            for name, value in (("cron", cron), ("interval", interval), ("run_at", run_at))
            if value not in (None, "")
        ]
        if len(given) != 1:
            problem = "none is" if not given else f"{' and '.join(given)} are"
            raise TimingError(f"Give exactly one of cron, interval and run_at ({problem} set).")
        zone = get_zone(time_zone)
        if cron:
            return cls(cron=parse_cron(cron), zone=zone)
        if interval is not None:
            return cls(interval=check_interval(interval), zone=zone)
        if not isinstance(run_at, datetime):
            raise TimingError(f"run_at must be a date and time, got {run_at!r}.")
        return cls(run_at=localize(run_at, zone) if run_at.tzinfo is None else run_at, zone=zone)

    @property
    def one_off(self) -> bool:
        return self.run_at is not None

    def iter_after(self, after: datetime) -> Iterator[datetime]:
        """Fire times strictly after ``after`` (aware), ascending, as aware UTC datetimes."""
        if self.run_at is not None:
            if self.run_at > after:
                yield self.run_at.astimezone(UTC)
            return
        start = _seconds(after)
        if self.interval:
            instants = _interval_instants(self.interval, start)
        else:
            assert self.cron is not None, "a Timing has one of cron, interval and run_at"
            instants = _cron_instants(self.cron, self.zone, start)
        for instant in instants:
            yield datetime.fromtimestamp(instant, UTC)

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after ``after``; None if there is none (a past one-off)."""
        return next(self.iter_after(after), None)

    def upcoming(self, after: datetime, count: int = 5) -> list[datetime]:
        """The next ``count`` fire times after ``after``."""
        times: list[datetime] = []
        for when in self.iter_after(after):
            times.append(when)
            if len(times) >= count:
                break
        return times

    def between(self, after: datetime, until: datetime, limit: int | None = None) -> list[datetime]:
        """Fire times in (after, until], at most ``limit`` of them (the earliest)."""
        times: list[datetime] = []
        for when in self.iter_after(after):
            if when > until or (limit is not None and len(times) >= limit):
                break
            times.append(when)
        return times


def localize(wall: datetime, zone: tzinfo) -> datetime:
    """A naive wall-clock time in ``zone`` as an aware UTC datetime, by the DST rule above: a
    repeated time is its first occurrence; a skipped time is the instant the clocks jumped.
    (UTC because an ambiguous local datetime never compares equal to one in another zone.)"""
    first = wall.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall:
        return first.astimezone(UTC)
    wall_s = _wall_seconds(wall)
    before, after = _utc_offset(first), _utc_offset(wall.replace(tzinfo=zone, fold=1))
    lo, hi = sorted((wall_s - before, wall_s - after))
    jump = _first_change(zone, lo - 1, hi + 1, _offset(zone, lo - 1))
    return datetime.fromtimestamp(jump if jump is not None else wall_s - before, UTC)


# -- the iteration, in whole Unix seconds ---------------------------------------------------


def _seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise TimingError("Fire times are computed from aware datetimes.")
    return calendar.timegm(moment.astimezone(UTC).timetuple())  # floors microseconds


def _wall_seconds(wall: datetime) -> int:
    return calendar.timegm(wall.timetuple())


def _utc_offset(moment: datetime) -> int:
    """The UTC offset of an aware datetime, in whole seconds."""
    offset = moment.utcoffset()
    assert offset is not None, "an aware datetime"
    return int(offset.total_seconds())


def _offset(zone: tzinfo, instant: int) -> int:
    return _utc_offset(datetime.fromtimestamp(instant, zone))


def _interval_instants(interval: int, after: int) -> Iterator[int]:
    instant = (after // interval + 1) * interval
    while True:
        yield instant
        instant += interval


def _first_change(zone: tzinfo, start: int, end: int, offset: int) -> int | None:
    """The first instant in (start, end] whose UTC offset is not ``offset``, or None."""
    low = start
    while low < end:
        probe = min(low + _STEP, end)
        if _offset(zone, probe) != offset:
            high = probe  # the change is in (low, high]: bisect to the second
            while high - low > 1:
                middle = (low + high) // 2
                if _offset(zone, middle) == offset:
                    low = middle
                else:
                    high = middle
            return high
        low = probe
    return None


def _walls(cron: Cron, wall: int) -> Iterator[int]:
    """Wall-clock times (seconds, as if UTC) matching ``cron``, strictly after ``wall``."""
    matcher = croniter(cron.text, datetime.fromtimestamp(wall, UTC).replace(tzinfo=None))
    while True:
        try:
            yield _wall_seconds(matcher.get_next(datetime))
        except CroniterBadDateError:  # nothing matches any more
            return


def _cron_instants(cron: Cron, zone: tzinfo, after: int) -> Iterator[int]:
    """Fire instants strictly after ``after``, ascending, applying the DST rule of the module.

    Walks the wall clock one constant-offset stretch at a time: a wall time ``w`` is the
    instant ``w - offset`` until the offset changes; at a change the rule decides what the
    skipped or repeated wall times do, and the walk resumes under the new offset.
    """
    offset = _offset(zone, after)
    wall = after + offset
    if not cron.real_time:
        wall = _skip_second_pass(zone, after, wall)
    known = last = after  # instants up to ``known`` have the UTC offset ``offset``
    while True:
        for wall_time in _walls(cron, wall):
            instant = wall_time - offset
            change = _first_change(zone, known, instant, offset)
            if change is None:
                known = instant
                if instant > last:
                    last = instant
                    yield instant
                continue
            new = _offset(zone, change)
            if new > offset:  # clocks jump forward: wall times [change+offset, change+new) do not exist
                if not cron.real_time and change > last and _matches(cron, change + offset, change + new):
                    last = change
                    yield change
                wall = change + new - 1
            else:  # clocks go back: wall times [change+new, change+offset) happen twice
                wall = (change + new if cron.real_time else change + offset) - 1
            offset, known = new, change
            break  # resume the walk from ``wall`` under the new offset
        else:
            return  # nothing matches any more


def _matches(cron: Cron, start: int, end: int) -> bool:
    """Whether some wall time in [start, end) matches."""
    return next((w for w in _walls(cron, start - 1)), end) < end


def _skip_second_pass(zone: tzinfo, after: int, wall: int) -> int:
    """For wall-clock schedules: if ``after`` is in the second pass of a repeated hour, those
    wall times already fired in the first pass; resume at the end of the repeated stretch."""
    local = datetime.fromtimestamp(after, zone)
    first_offset = _utc_offset(local.replace(fold=0))
    if local.fold != 1 or first_offset == _utc_offset(local):
        return wall
    repeat = first_offset - _utc_offset(local)
    change = _first_change(zone, after - repeat - 1, after, first_offset)
    return max(wall, change + first_offset - 1) if change is not None else wall
