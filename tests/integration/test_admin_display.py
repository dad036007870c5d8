"""The admin's pure pieces: the SVG chart, counts and their kinds, durations. No database."""

import re
from datetime import timedelta

import pytest

from djjobs.admin.chart import nice_ceiling, per_minute_svg
from djjobs.admin.counting import AT_LEAST, ESTIMATE, EXACT, Tally, settle
from djjobs.admin.display import count_text, duration_text, progress_bar, status_badge


@pytest.mark.parametrize(
    ("value", "top"), [(0, 1), (1, 1), (3, 5), (7, 10), (11, 20), (199, 200), (201, 500), (5001, 10000)]
)
def test_nice_ceiling(value, top):
    assert nice_ceiling(value) == top


def test_chart_has_a_bar_and_tooltip_per_minute_and_escapes_labels():
    labels = [f"10:{m:02d}" for m in range(59)] + ["<b>now</b>"]
    svg = per_minute_svg(labels, [1] * 60, [0] * 59 + [4], title='a "chart" <x>')
    assert svg.count("<title>") == 60
    assert "<title>&lt;b&gt;now&lt;/b&gt;: 1 succeeded, 4 failed</title>" in svg
    assert 'aria-label="a &quot;chart&quot; &lt;x&gt;"' in svg
    assert "<b>" not in svg and "<script" not in svg
    heights = [float(h) for h in re.findall(r'height="([\d.]+)" fill="#c62828"', svg)]
    assert heights[:59] == [0.0] * 59 and heights[59] > 0


def test_chart_of_an_idle_hour():
    svg = per_minute_svg([f"{m}" for m in range(60)], [0] * 60, [0] * 60, title="idle")
    assert svg.count("<title>") == 60 and ">1</text>" in svg  # the axis still has a top


@pytest.mark.parametrize(
    ("counted", "estimate", "expected"),
    [
        (3, None, Tally(3, EXACT)),
        (10, 999, Tally(10, EXACT)),
        (11, None, Tally(10, AT_LEAST)),
        (11, 5000, Tally(5000, ESTIMATE)),
        (11, 7, Tally(10, AT_LEAST)),  # an estimate below what was counted is wrong
    ],
)
def test_settle(counted, estimate, expected):
    assert settle(counted, estimate, limit=10) == expected


def test_count_text():
    assert count_text(1234567, EXACT) == "1,234,567"
    assert count_text(1234567, ESTIMATE) == "~1,234,567"
    assert count_text(10000, AT_LEAST) == "10,000+"
    assert str(Tally(5, ESTIMATE)) == "~5"


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.012, "12 ms"), (3.44, "3.4 s"), (125, "2 min 5 s"), (4200, "1 h 10 min")]
)
def test_duration_text(seconds, text):
    assert duration_text(timedelta(seconds=seconds)) == text


def test_badge_and_progress_escape():
    assert status_badge("<X>") == '<span class="djjobs-status djjobs-&lt;x&gt;">&lt;X&gt;</span>'
    assert 'title="&lt;i&gt;"' in progress_bar(150, "<i>") and 'value="100"' in progress_bar(150, "<i>")
    assert progress_bar(None) == "-"
