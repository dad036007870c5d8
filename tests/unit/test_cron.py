"""djjobs.schedules.cron and djjobs.schedules.text: fire times computed from explicit instants (a frozen clock),
without a database: cron and interval math, one-offs, and the DST rule in two zones."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from djjobs.schedules.cron import Timing, TimingError, get_zone, localize, parse_cron
from djjobs.schedules.text import describe, describe_cron, describe_interval, relative

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def cron(expr, zone="UTC") -> Timing:
    return Timing.build(cron=expr, time_zone=zone)


def local(times, zone) -> list[str]:
    return [t.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z") for t in times]


# -- parsing and validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr, message",
    [
        ("* * *", "has 3 field(s); it needs 5"),
        ("* * * * * * 2030", "has 7 field(s)"),
        ("", "has 0 field(s)"),
        ("61 * * * *", "the minute field '61' is not valid (allowed: 0-59"),
        ("0 24 * * *", "the hour field '24' is not valid"),
        ("0 0 32 * *", "the day of month field '32' is not valid"),
        ("0 0 * 13 *", "the month field '13' is not valid"),
        ("0 0 * * 9", "the day of week field '9' is not valid"),
        ("0 0 * * * 60", "the second field '60' is not valid"),
        ("*/0 * * * *", "the minute field '*/0' is not valid"),
        ("a b c d e", "is not valid"),
        ("0 0 31 2 *", "never fires"),
        ("H * * * *", "random (R) and hashed (H) values are not supported (minute field)"),
        ("0 R * * *", "random (R) and hashed (H)"),
    ],
)
def test_bad_cron_says_what_is_wrong(expr, message):
    with pytest.raises(TimingError) as caught:
        parse_cron(expr)
    assert message in str(caught.value)


def test_aliases_names_and_whitespace():
    assert parse_cron("@daily").text == "0 0 * * *"
    assert parse_cron("@hourly").text == "0 * * * *"
    assert parse_cron("  0   9 * *  MON-FRI ").text == "0 9 * * MON-FRI"
    assert parse_cron("*/5 * * * *").real_time and parse_cron("0 * * * *").real_time
    assert not parse_cron("0 2 * * *").real_time and not parse_cron("0 */2 * * *").real_time


@pytest.mark.parametrize(
    "name, message",
    [
        ("Mars/Olympus", "Unknown time zone 'Mars/Olympus'"),
        ("../etc/passwd", "Unknown time zone"),
        ("", "A time zone is required"),
    ],
)
def test_bad_zone(name, message):
    with pytest.raises(TimingError, match=message.replace("(", r"\(")):
        get_zone(name)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "Give exactly one of cron, interval and run_at (none is set)"),
        ({"cron": "* * * * *", "interval": 5}, "(cron and interval are set)"),
        ({"interval": 0}, "at least 1 second, got 0"),
        ({"interval": -5}, "at least 1 second, got -5"),
        ({"interval": 1.5}, "whole number of seconds"),
        ({"run_at": "tomorrow"}, "run_at must be a date and time"),
    ],
)
def test_build_refuses(kwargs, message):
    with pytest.raises(TimingError) as caught:
        Timing.build(**kwargs)
    assert message in str(caught.value)


# -- cron and interval math --------------------------------------------------------------------


def test_five_field_cron_next_times():
    now = utc(2024, 5, 6, 10, 2, 30)
    assert cron("*/5 * * * *").upcoming(now, 3) == [
        utc(2024, 5, 6, 10, 5),
        utc(2024, 5, 6, 10, 10),
        utc(2024, 5, 6, 10, 15),
    ]
    assert cron("0 2 * * *").next_after(now) == utc(2024, 5, 7, 2)
    assert cron("0 9 * * MON-FRI").upcoming(utc(2024, 5, 10, 12), 2) == [utc(2024, 5, 13, 9), utc(2024, 5, 14, 9)]
    assert cron("0 0 1 * *").next_after(now) == utc(2024, 6, 1)


def test_fire_times_are_strictly_after():
    at = utc(2024, 5, 6, 10, 5)
    assert cron("*/5 * * * *").next_after(at) == utc(2024, 5, 6, 10, 10)
    assert cron("*/5 * * * *").next_after(at - timedelta(microseconds=1)) == at
    assert cron("*/5 * * * *").next_after(at + timedelta(microseconds=500)) == utc(2024, 5, 6, 10, 10)


def test_six_fields_are_seconds_last():
    now = utc(2024, 5, 6, 10, 0, 7)
    assert cron("* * * * * */15").upcoming(now, 3) == [
        utc(2024, 5, 6, 10, 0, 15),
        utc(2024, 5, 6, 10, 0, 30),
        utc(2024, 5, 6, 10, 0, 45),
    ]
    assert cron("* * * * * *").upcoming(now, 2) == [utc(2024, 5, 6, 10, 0, 8), utc(2024, 5, 6, 10, 0, 9)]
    assert cron("0 2 * * * 30").next_after(now) == utc(2024, 5, 7, 2, 0, 30)


def test_cron_in_a_zone():
    now = utc(2024, 7, 1, 12)  # London is on BST (UTC+1) in July
    assert cron("0 9 * * *", "Europe/London").next_after(now) == utc(2024, 7, 2, 8)
    assert cron("0 9 * * *", "America/New_York").next_after(now) == utc(2024, 7, 1, 13)


def test_interval_is_aligned_to_the_epoch():
    assert Timing.build(interval=60).upcoming(utc(2024, 5, 6, 10, 0, 30), 2) == [
        utc(2024, 5, 6, 10, 1),
        utc(2024, 5, 6, 10, 2),
    ]
    assert Timing.build(interval=1).next_after(utc(2024, 5, 6, 10, 0, 0, 200)) == utc(2024, 5, 6, 10, 0, 1)
    seven = Timing.build(interval=7).upcoming(utc(2024, 1, 1), 3)
    assert all(int(t.timestamp()) % 7 == 0 for t in seven) and seven[1] - seven[0] == timedelta(seconds=7)
    # Elapsed time: the zone and DST do not matter.
    spring = Timing.build(interval=3600, time_zone="Europe/London").upcoming(utc(2024, 3, 31, 0, 30), 3)
    assert spring == [utc(2024, 3, 31, 1), utc(2024, 3, 31, 2), utc(2024, 3, 31, 3)]


def test_one_off():
    at = datetime(2030, 1, 1, 9, tzinfo=LONDON)
    once = Timing.build(run_at=at, time_zone="Europe/London")
    assert once.one_off
    assert once.upcoming(utc(2029, 1, 1), 5) == [utc(2030, 1, 1, 9)]
    assert once.next_after(utc(2030, 1, 1, 9)) is None
    naive = Timing.build(run_at=datetime(2030, 7, 1, 9), time_zone="Europe/London")
    assert naive.run_at == utc(2030, 7, 1, 8)  # a naive run_at is read in the schedule's zone


def test_between_and_limits():
    times = cron("* * * * *").between(utc(2024, 1, 1), utc(2024, 1, 1, 0, 10))
    assert len(times) == 10 and times[-1] == utc(2024, 1, 1, 0, 10)
    assert len(cron("* * * * *").between(utc(2024, 1, 1), utc(2024, 1, 2), limit=3)) == 3


# -- daylight saving time ----------------------------------------------------------------------


def test_london_spring_forward_skipped_time_fires_once_when_clocks_jump():
    # 2024-03-31: 01:00 GMT -> 02:00 BST; 01:30 does not exist.
    times = cron("30 1 * * *", "Europe/London").upcoming(utc(2024, 3, 30, 12), 3)
    assert local(times, LONDON) == ["2024-03-31 02:00:00 BST", "2024-04-01 01:30:00 BST", "2024-04-02 01:30:00 BST"]


def test_london_fall_back_repeated_time_fires_once_at_first_occurrence():
    # 2024-10-27: 02:00 BST -> 01:00 GMT; 01:30 happens twice.
    times = cron("30 1 * * *", "Europe/London").upcoming(utc(2024, 10, 26, 12), 3)
    assert local(times, LONDON) == ["2024-10-27 01:30:00 BST", "2024-10-28 01:30:00 GMT", "2024-10-29 01:30:00 GMT"]
    # A tick in the second pass (01:10 GMT) does not fire 01:30 again.
    assert cron("30 1 * * *", "Europe/London").next_after(utc(2024, 10, 27, 1, 10)) == utc(2024, 10, 28, 1, 30)


def test_london_two_am_fires_once_each_transition_day():
    spring = cron("0 2 * * *", "Europe/London").upcoming(utc(2024, 3, 30, 12), 2)
    autumn = cron("0 2 * * *", "Europe/London").upcoming(utc(2024, 10, 26, 12), 2)
    assert local(spring, LONDON) == ["2024-03-31 02:00:00 BST", "2024-04-01 02:00:00 BST"]
    assert local(autumn, LONDON) == ["2024-10-27 02:00:00 GMT", "2024-10-28 02:00:00 GMT"]


def test_new_york_spring_forward_and_fall_back():
    # 2024-03-10: 02:00 EST -> 03:00 EDT; 2024-11-03: 02:00 EDT -> 01:00 EST.
    spring = cron("0 2 * * *", "America/New_York").upcoming(utc(2024, 3, 9, 12), 2)
    assert local(spring, NEW_YORK) == ["2024-03-10 03:00:00 EDT", "2024-03-11 02:00:00 EDT"]
    autumn = cron("30 1 * * *", "America/New_York").upcoming(utc(2024, 11, 2, 12), 2)
    assert local(autumn, NEW_YORK) == ["2024-11-03 01:30:00 EDT", "2024-11-04 01:30:00 EST"]
    assert cron("30 1 * * *", "America/New_York").next_after(utc(2024, 11, 3, 6, 15)) == utc(2024, 11, 4, 6, 30)


@pytest.mark.parametrize("zone", ["Europe/London", "America/New_York"])
@pytest.mark.parametrize("expr", ["0 2 * * *", "30 1 * * *", "15 2 * * 0"])
def test_wall_clock_schedules_fire_once_per_local_day_all_year(zone, expr):
    tz = ZoneInfo(zone)
    times = cron(expr, zone).between(utc(2024, 1, 1), utc(2025, 1, 1))
    days = Counter(t.astimezone(tz).date() for t in times)
    assert set(days.values()) == {1}
    expected = 52 if expr.endswith("0") else 366  # 2024: a leap year with 52 Sundays after Jan 1
    assert len(days) == expected
    assert times == sorted(set(times))


@pytest.mark.parametrize(
    "zone, spring_day, autumn_day",
    [
        ("Europe/London", (2024, 3, 31), (2024, 10, 27)),
        ("America/New_York", (2024, 3, 10), (2024, 11, 3)),
    ],
)
def test_hourly_schedules_follow_real_time(zone, spring_day, autumn_day):
    tz = ZoneInfo(zone)
    for day, hours in ((spring_day, 23), (autumn_day, 25)):
        start = datetime(*day, tzinfo=tz).astimezone(UTC) - timedelta(seconds=1)
        end = (datetime(*day, tzinfo=tz) + timedelta(days=1)).astimezone(UTC) - timedelta(seconds=1)
        hourly = cron("0 * * * *", zone).between(start, end)
        assert len(hourly) == hours  # one per real hour of that day
        assert {b - a for a, b in pairwise(hourly)} == {timedelta(hours=1)}
        quarter = cron("*/15 * * * *", zone).between(start, end)
        assert len(quarter) == hours * 4
        assert {b - a for a, b in pairwise(quarter)} == {timedelta(minutes=15)}


def test_localize_applies_the_rule():
    assert localize(datetime(2024, 3, 31, 1, 30), LONDON) == utc(2024, 3, 31, 1)  # the jump, 02:00 BST
    assert localize(datetime(2024, 10, 27, 1, 30), LONDON) == utc(2024, 10, 27, 0, 30)  # first pass, BST
    assert localize(datetime(2024, 3, 10, 2, 30), NEW_YORK) == utc(2024, 3, 10, 7)  # 03:00 EDT
    assert localize(datetime(2024, 7, 1, 12), NEW_YORK) == utc(2024, 7, 1, 16)


# -- descriptions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr, text",
    [
        ("0 2 * * *", "At 02:00, every day"),
        ("*/5 * * * *", "Every 5 minutes"),
        ("* * * * *", "Every minute"),
        ("* * * * * *", "Every second"),
        ("* * * * * */10", "Every 10 seconds"),
        ("0 * * * *", "Every hour, on the hour"),
        ("15 * * * *", "At minute 15 of every hour"),
        ("0 9 * * 1-5", "At 09:00, on Monday to Friday"),
        ("30 8,17 * * MON,FRI", "At 08:30 and 17:30, on Monday and Friday"),
        ("0 0 1,15 * *", "At 00:00, on days 1 and 15 of the month"),
        ("0 12 * 1-3 *", "At 12:00, every day, in January, February and March"),
        ("0 */2 * * *", "Every 2 hours, on the hour"),
        ("*/10 9-17 * * *", "Every 10 minutes, from 09:00 to 17:59"),
        ("0 2 * * * 30", "At 02:00:30, every day"),
        ("@weekly", "At 00:00, on Sunday"),
        ("0 0 L * *", "cron: 0 0 L * *"),
        ("not a cron", "cron: not a cron"),
    ],
)
def test_describe_cron(expr, text):
    assert describe_cron(expr) == text


def test_describe_others():
    assert describe_interval(1) == "Every second"
    assert describe_interval(90) == "Every 90 seconds"
    assert describe_interval(7200) == "Every 2 hours"
    assert describe(interval=86400) == "Every day"
    assert describe(run_at=utc(2030, 1, 1, 9), zone=LONDON) == "Once, at 2030-01-01 09:00:00 GMT"
    now = utc(2024, 1, 1, 12)
    assert relative(now + timedelta(hours=3), now) == "in 3 h"
    assert relative(now + timedelta(minutes=12), now) == "in 12 min"
    assert relative(now - timedelta(seconds=40), now) == "40 s ago"
    assert relative(now + timedelta(days=2), now) == "in 2 d"
