"""How job values look on every admin screen: status badges, progress bars, durations, times,
counts that may be estimates. Each returns escaped HTML (``format_html``) or plain text."""

from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.html import format_html

from ..schedules.text import relative

# The stylesheet of every djjobs admin screen (djjobs/static/djjobs/admin.css).
STYLESHEET = "djjobs/admin.css"


def status_badge(status: str) -> str:
    """A coloured pill; the colour comes from the class ``djjobs-<status>``."""
    return format_html('<span class="djjobs-status djjobs-{}">{}</span>', status.lower(), status)


def progress_bar(percent: float | None, message: str = "") -> str:
    if percent is None:
        return "-"
    percent = max(0.0, min(100.0, float(percent)))
    return format_html(
        '<progress class="djjobs-progress" max="100" value="{}" title="{}"></progress> {}%',
        f"{percent:.0f}",
        message or f"{percent:.0f}%",
        f"{percent:.0f}",
    )


def duration_text(delta: timedelta | None) -> str:
    """12 ms, 3.4 s, 2 min 5 s, 1 h 10 min."""
    if delta is None:
        return "-"
    seconds = delta.total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min {seconds % 60:.0f} s"
    return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:.0f} min"


def local(when: datetime) -> datetime:
    """``when`` in the current time zone (as is with USE_TZ = False)."""
    return timezone.localtime(when) if timezone.is_aware(when) else when


def moment(when: datetime | None, now: datetime | None = None) -> str:
    """A time in the current time zone with its distance from now as a tooltip-free suffix."""
    if when is None:
        return "-"
    now = now or timezone.now()
    return format_html(
        '<time datetime="{}">{}</time> <span class="quiet">({})</span>',
        when.isoformat(),
        local(when).strftime("%Y-%m-%d %H:%M:%S"),
        relative(when, now),
    )


def moment_field(name: str, label: Any) -> Any:
    """A read-only admin field showing the datetime ``name`` as every djjobs screen shows times
    (``moment``), not in Django's DATETIME_FORMAT: one date format throughout."""

    @admin.display(description=label, ordering=name)
    def show(modeladmin: Any, obj: Any) -> str:
        return moment(getattr(obj, name))

    return show


def short_time(when: datetime | None, now: datetime | None = None) -> str:
    """A compact time for list cells: 14:05:09 today, 2026-11-02 14:05 otherwise; the full
    time as a tooltip."""
    if when is None:
        return "-"
    shown, today = local(when), local(now or timezone.now()).date()
    text = shown.strftime("%H:%M:%S") if shown.date() == today else shown.strftime("%Y-%m-%d %H:%M")
    return format_html(
        '<time class="djjobs-time" datetime="{}" title="{}">{}</time>',
        when.isoformat(),
        shown.strftime("%Y-%m-%d %H:%M:%S %Z").strip(),
        text,
    )


def job_url(job_id) -> str:
    return reverse("admin:djjobs_job_change", args=[quote(str(job_id))])


def worker_url(worker_id: str) -> str:
    return reverse("admin:djjobs_worker_change", args=[quote(worker_id)])


def job_link(job_id, text) -> str:
    return format_html('<a href="{}">{}</a>', job_url(job_id), text)


def count_text(value: int, kind: str) -> str:
    """A count as the admin shows it: ``1,234``, ``~1,200,000`` (estimated) or ``10,000+``
    (a bounded count that reached its limit and has no estimate)."""
    shown = number_format(value, force_grouping=True)
    if kind == "estimate":
        return f"~{shown}"
    if kind == "at_least":
        return f"{shown}+"
    return shown
