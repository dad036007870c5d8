"""The job detail page's blocks: arguments and results as indented JSON, every attempt's error
with its traceback, a timeline of the job's life, where the job came from. Everything that
comes from the job (arguments, messages, tracebacks, names) is escaped."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.contrib.admin.utils import quote
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import mark_safe

from ..states import FINISHED, JobStatus
from ..workflows import COMPENSATE
from .display import duration_text, moment, status_badge, worker_url

# Longer JSON is cut on the page (a job's arguments may be up to MAX_PAYLOAD_BYTES).
JSON_SHOWN = 100_000


def pretty_json(value) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)
    if len(text) > JSON_SHOWN:
        text = f"{text[:JSON_SHOWN]}\n… ({len(text) - JSON_SHOWN:,} more characters not shown)"
    return format_html('<pre class="djjobs-json">{}</pre>', text)


def worker_link(worker_id: str, known: set[str]) -> str:
    """The worker's row if it is still recorded (rows of long-gone workers are pruned)."""
    if not worker_id:
        return "-"
    if worker_id in known:
        return format_html('<a href="{}">{}</a>', worker_url(worker_id), worker_id)
    return format_html('{} <span class="quiet">(no longer recorded)</span>', worker_id)


def _at(entry: dict) -> datetime | None:
    return _parse(entry.get("at"))


def errors_html(errors: list, known_workers: set[str]) -> str:
    """Every attempt's error, oldest first; the last one's traceback unfolded."""
    if not errors:
        return "-"
    blocks = []
    for i, error in enumerate(errors):
        last = i == len(errors) - 1
        blocks.append(
            format_html(
                '<div class="djjobs-error"><p><strong>Attempt {}</strong> · {} · worker {}</p>'
                "<p><code>{}</code>: {}</p><details{}><summary>Traceback</summary><pre>{}</pre></details></div>",
                error.get("attempt", "?"),
                moment(_at(error)),
                worker_link(error.get("worker_id") or "", known_workers),
                error.get("exception_class_path", "?"),
                error.get("message", ""),
                mark_safe(" open") if last else "",
                error.get("traceback") or "(no traceback)",
            )
        )
    return mark_safe("".join(blocks))


@dataclass(slots=True)
class Attempt:
    """One attempt of a job: when it started and ended (None: not known, or not yet), on which
    worker, and its error entry if it failed."""

    number: object
    started: datetime | None
    ended: datetime | None
    worker: str
    error: dict | None = None

    @property
    def ran(self) -> timedelta | None:
        return self.ended - self.started if self.started and self.ended else None


def _parse(value) -> datetime | None:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed


def attempts(job) -> list[Attempt]:
    """Every attempt of the job, oldest first: one per error entry (each failed attempt, its start
    kept in the entry), then the latest attempt if it did not fail (running, or ended otherwise)."""
    errors = job.errors or []
    found = []
    for error in errors:
        started = _parse(error.get("started_at"))
        if started is None:  # an entry written before attempts kept their start
            if error.get("attempt") == 1:
                started = job.started_at
            elif error.get("attempt") == job.attempts:
                started = job.last_attempted_at
        found.append(Attempt(error.get("attempt", "?"), started, _at(error), error.get("worker_id") or "", error))
    latest_failed = any(e.get("attempt") == job.attempts and e.get("counted") is not False for e in errors)
    if job.attempts and job.last_attempted_at is not None and not latest_failed:
        ended = job.finished_at if job.status in FINISHED else None
        found.append(Attempt(job.attempts, job.last_attempted_at, ended, job.worker_id))
    return found


def run_time(job, now: datetime | None = None) -> timedelta | None:
    """How long the job's attempts ran, added up: time spent waiting in the queue, for a retry
    or FAILED until an operator retried it, is not counted. None if it never ran."""
    total, known = timedelta(0), False
    for attempt in attempts(job):
        if attempt.ran is not None:
            total, known = total + attempt.ran, True
        elif attempt.started is not None and job.status == JobStatus.RUNNING and attempt.error is None:
            total, known = total + ((now or timezone.now()) - attempt.started), True
    return total if known else None


def timeline(job, known_workers: set[str], now: datetime | None = None, actions=()) -> list[tuple[datetime, str]]:
    """(when, what) for each known moment of the job's life, in order: every attempt's start
    and failure, operator actions (``actions``: LogEntry rows) with their user, and its end."""
    now = now or timezone.now()
    entries = [
        (job.enqueued_at, format_html("Enqueued on queue <code>{}</code>, priority {}", job.queue_name, job.priority))
    ]
    if job.scheduled_for is not None:
        entries.append((job.scheduled_for, mark_safe("Fire time of its schedule")))
    last_attempt_moment = job.enqueued_at
    for attempt in attempts(job):
        if attempt.started is not None:
            entries.append(
                (
                    attempt.started,
                    format_html("Attempt {} started on {}", attempt.number, worker_link(attempt.worker, known_workers)),
                )
            )
            last_attempt_moment = max(last_attempt_moment, attempt.started)
        if attempt.error is not None and attempt.ended is not None:
            error = attempt.error
            entries.append(
                (
                    attempt.ended,
                    format_html(
                        "Attempt {} failed{}: <code>{}</code>: {}",
                        attempt.number,
                        f" after {duration_text(attempt.ran)}" if attempt.ran is not None else "",
                        error.get("exception_class_path", "?"),
                        error.get("message", ""),
                    ),
                )
            )
            last_attempt_moment = max(last_attempt_moment, attempt.ended)
    for entry in actions:
        entries.append((entry.action_time, format_html("{} by <strong>{}</strong>", entry.change_message, entry.user)))
    if job.status == JobStatus.READY:
        entries.append((job.run_after, mark_safe("Due: a worker may take it from here")))
    if job.status == JobStatus.RUNNING and job.lease_expires_at is not None:
        entries.append((job.lease_expires_at, mark_safe("Lease expires (renewed by the worker's heartbeat)")))
    if job.cancel_requested_at is not None:
        entries.append((job.cancel_requested_at, mark_safe(CANCEL_REQUESTED)))
    order = [when for when, _text in entries]
    if job.finished_at is not None:
        # The end comes after everything its attempts wrote, whatever the clocks said.
        entries.append((job.finished_at, format_html("Finished {}", status_badge(job.status))))
        order.append(max(job.finished_at, last_attempt_moment))
    indexed = sorted(range(len(entries)), key=lambda i: (order[i], i))
    return [entries[i] for i in indexed]


# What a cancellation request means, in the words an operator needs.
CANCEL_REQUESTED = (
    "Cancellation requested while it ran: the task stops at its next check of "
    "<code>context.is_cancelled()</code>. A task that never checks runs on; with process workers it "
    "is stopped after the grace period, with thread workers it runs to its end and keeps its outcome."
)


def status_html(job) -> str:
    """The job's badge, marked when an operator asked it to stop: still running (its task has
    not checked yet), or finished without stopping (its task never checked)."""
    badge = status_badge(job.status)
    if job.cancel_requested_at is None:
        return badge
    if job.status == JobStatus.RUNNING:
        text, title = "cancel requested", "Asked to stop; it stops when its task checks for cancellation."
    elif job.status == JobStatus.CANCELLED:
        return badge
    else:
        text, title = "cancel ignored", "Asked to stop, its task never checked: it ran to its end."
    return format_html('{} <span class="djjobs-flag" title="{}">{}</span>', badge, title, text)


def timeline_html(job, known_workers: set[str], actions=()) -> str:
    now = timezone.now()
    rows = [
        (moment(when), _offset(when, job.enqueued_at), text)
        for when, text in timeline(job, known_workers, now, actions)
    ]
    tried = attempts(job)
    total = run_time(job, now)
    if total is None:
        summary = "Not run yet."
    elif job.status == JobStatus.RUNNING:
        summary = f"Running: {duration_text(total)} so far over {len(tried)} attempt(s)."
    else:
        summary = f"Ran for {duration_text(total)} over {len(tried)} attempt(s)."
    return format_html(
        '<table class="djjobs-timeline"><tbody>{}</tbody></table><p class="quiet">{} {}</p>',
        format_html_join("", '<tr><td>{}</td><td class="quiet">{}</td><td>{}</td></tr>', rows),
        summary,
        "Time waiting in the queue (for a retry, or FAILED until retried) is not counted." if total else "",
    )


def _offset(when: datetime, start: datetime) -> str:
    seconds = (when - start).total_seconds()
    if abs(seconds) < 0.0005:
        return ""
    sign = "+" if seconds > 0 else "-"
    return f"{sign}{duration_text(abs(when - start))}"


def origin_html(job) -> str:
    """What made this job: a schedule's fire time, an event, a trigger; else plain code."""
    parts = []
    if job.schedule_id is not None:
        schedule = job.schedule
        name = schedule.name if schedule is not None else f"#{job.schedule_id}"
        url = reverse("admin:djjobs_schedule_change", args=[quote(job.schedule_id)])
        jobs = f"{reverse('admin:djjobs_job_changelist')}?{urlencode({'schedule': job.schedule_id})}"
        parts.append(
            format_html(
                'Schedule <a href="{}">{}</a>, fire time {} (<a href="{}">its jobs</a>)',
                url,
                name,
                moment(job.scheduled_for),
                jobs,
            )
        )
    if job.event_id is not None:
        event = job.event
        url = reverse("admin:djjobs_event_change", args=[quote(str(job.event_id))])
        parts.append(format_html('Event <a href="{}">{}</a>', url, event.name if event is not None else job.event_id))
    if job.trigger:
        jobs = f"{reverse('admin:djjobs_job_changelist')}?{urlencode({'trigger': job.trigger})}"
        parts.append(
            format_html(
                'Trigger <a href="{}">{}</a> (<a href="{}">its jobs</a>)',
                reverse("admin:djjobs_triggers"),
                job.trigger,
                jobs,
            )
        )
    if job.workflow_run_id is not None:
        run = job.workflow_run
        url = reverse("admin:djjobs_workflowrun_change", args=[quote(str(job.workflow_run_id))])

        role = "compensation of step" if job.workflow_role == COMPENSATE else "step"
        parts.append(
            format_html(
                'Workflow <a href="{}">{}</a> ({}), {} {}',
                url,
                run.name if run is not None else job.workflow_run_id,
                run.status if run is not None else "-",
                role,
                job.workflow_step,
            )
        )
    if not parts:
        return "Enqueued by code (task.enqueue())"
    return format_html_join(mark_safe("<br>"), "{}", ((part,) for part in parts))
