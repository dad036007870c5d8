"""Plain-English descriptions of schedules: "At 02:00, every day", "Every 15 minutes". Pure.

Written here rather than taken from cron-descriptor: that library reads a 6-field expression
with the seconds *first* (Quartz style), while croniter, and so djjobs, puts them last; it
would describe our seconds schedules wrongly. Expressions this module has no phrase for
(``L``, ``#``, mixed lists of steps) are described as "cron: <expression>", never guessed.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

from .cron import TimingError, parse_cron

DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = [
    "",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_NAMES = {name[:3].lower(): i for i, name in enumerate(DAYS[:7])} | {
    name[:3].lower(): i for i, name in enumerate(MONTHS) if name
}


class _Unsupported(Exception):
    pass


def describe(
    cron: str = "", interval: int | None = None, run_at: datetime | None = None, zone: tzinfo | None = None
) -> str:
    """One line saying when a schedule fires."""
    if interval:
        return describe_interval(interval)
    if run_at is not None:
        shown = run_at.astimezone(zone) if zone is not None else run_at
        return f"Once, at {shown:%Y-%m-%d %H:%M:%S %Z}".rstrip()
    return describe_cron(cron)


def describe_interval(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds % size == 0:
            count = seconds // size
            return f"Every {unit}" if count == 1 else f"Every {count} {unit}s"
    return f"Every {seconds} seconds"  # pragma: no cover - the loop always returns


def describe_cron(expr: str) -> str:
    try:
        fields = parse_cron(expr).fields
    except TimingError:
        return f"cron: {expr}"
    minute, hour, dom, month, dow = fields[:5]
    second = fields[5] if len(fields) == 6 else "0"
    try:
        when = _time_phrase(second, minute, hour)
        if dom == month == dow == "*" and (when.startswith("Every") or "every hour" in when):
            return when  # "Every 5 minutes", not "Every 5 minutes, every day"
        return when + _day_phrase(dom, month, dow)
    except _Unsupported:
        return f"cron: {' '.join(fields)}"


# -- times of day ---------------------------------------------------------------------------


def _time_phrase(second: str, minute: str, hour: str) -> str:
    if second != "0" and not second.isdigit():
        if minute == "*" and hour == "*":
            return _every(second, "second")
        rest = _time_phrase("0", minute, hour)
        return f"{_every(second, 'second')}, {rest[0].lower()}{rest[1:]}"
    if minute == "*" and hour == "*":
        return "Every minute"
    if minute == "*":
        return f"Every minute, {_hours(hour)}"
    if minute.startswith("*/"):
        return _every(minute, "minute") + ("" if hour in ("*", "*/1") else f", {_hours(hour)}")
    minutes = _values(minute, 59)
    if hour in ("*", "*/1"):
        return "Every hour, on the hour" if minutes == [0] else f"At minute {_join(minutes)} of every hour"
    if hour.startswith("*/"):
        return f"{_every(hour, 'hour')}, " + ("on the hour" if minutes == [0] else f"at minute {_join(minutes)}")
    hours = _values(hour, 23)
    if len(minutes) * len(hours) <= 6:
        seconds = "" if second == "0" else f":{int(second):02d}"
        return "At " + _join([f"{h:02d}:{m:02d}{seconds}" for h in hours for m in minutes])
    return f"At minute {_join(minutes)}, {_hours(hour)}"


def _hours(hour: str) -> str:
    if hour.startswith("*/"):
        return f"every {int(hour[2:])} hours"
    if "-" in hour and "," not in hour and "/" not in hour:
        first, last = (int(v) for v in hour.split("-"))
        return f"from {first:02d}:00 to {last:02d}:59"
    return "during hour " + _join([f"{h:02d}" for h in _values(hour, 23)])


def _every(field: str, unit: str) -> str:
    if field == "*":
        return f"Every {unit}"
    if field.startswith("*/"):
        return f"Every {int(field[2:])} {unit}s"
    return f"At {unit} {_join(_values(field, 59))}"


# -- days -----------------------------------------------------------------------------------


def _day_phrase(dom: str, month: str, dow: str) -> str:
    parts = []
    if dom == "*" and dow == "*":
        parts.append("every day")
    else:
        days = []
        if dom != "*":
            if not all(c.isdigit() or c in ",-" for c in dom):
                raise _Unsupported
            numbers = _values(dom, 31)
            days.append(f"on day{'s' if len(numbers) > 1 else ''} {_join(numbers)} of the month")
        if dow != "*":
            days.append("on " + _weekdays(dow))
        parts.append(" or ".join(days))  # cron runs on either when both are restricted
    if month != "*":
        parts.append("in " + _join([MONTHS[m] for m in _values(month, 12)]))
    return ", " + ", ".join(parts)


def _weekdays(dow: str) -> str:
    if "#" in dow or "L" in dow.upper():  # nth weekday, last weekday: no day name has an L
        raise _Unsupported
    if "-" in dow and "," not in dow and "/" not in dow:
        first, last = (_number(v) for v in dow.split("-"))
        return f"{DAYS[first]} to {DAYS[last]}"
    return _join([DAYS[d] for d in sorted({d % 7 for d in _values(dow, 7)}, key=lambda d: (d - 1) % 7)])  # Monday first


# -- values ---------------------------------------------------------------------------------


def _number(text: str) -> int:
    text = text.strip().lower()
    if text.isdigit():
        return int(text)
    if text[:3] in _NAMES:
        return _NAMES[text[:3]]
    raise _Unsupported


def _values(field: str, top: int) -> list[int]:
    """The numbers a field lists: 1,5 / 1-5 / 0-30/10 / */10 (names allowed)."""
    found: set[int] = set()
    for part in field.split(","):
        part, _, step = part.partition("/")
        if part == "*":
            first, last = (1 if top in (12, 31) else 0), top
        elif "-" in part:
            first, last = (_number(v) for v in part.split("-", 1))
        else:
            first = last = _number(part)
            if step:
                last = top
        found.update(range(first, last + 1, int(step) if step else 1))
    return sorted(found)


def _join(items: Sequence[Any]) -> str:
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def relative(when: datetime, now: datetime) -> str:
    """A short distance in time: "in 3 h", "in 12 min", "40 s ago"."""
    delta = when - now
    future = delta >= timedelta(0)
    seconds = abs(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            amount = f"{seconds / size:.0f} {unit}"
            break
    else:
        amount = f"{seconds:.0f} s"
    return f"in {amount}" if future else f"{amount} ago"
