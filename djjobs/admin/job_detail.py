"""The job detail page's blocks: arguments and results as indented JSON, every attempt's error
with its traceback, a timeline of the job's life, where the job came from. Everything that
comes from the job (arguments, messages, tracebacks, names) is escaped."""

import json
from datetime import UTC, datetime

from django.contrib.admin.utils import quote
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import mark_safe

from ..states import JobStatus
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
    value = entry.get("at")
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed


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


def timeline(job, known_workers: set[str], now: datetime | None = None) -> list[tuple[datetime, str]]:
    """(when, what) for each known moment of the job's life, in order."""
    now = now or timezone.now()
    entries = [
        (job.enqueued_at, format_html("Enqueued on queue <code>{}</code>, priority {}", job.queue_name, job.priority))
    ]
    if job.scheduled_for is not None:
        entries.append((job.scheduled_for, mark_safe("Fire time of its schedule")))
    workers = list(job.worker_ids or [])
    if job.started_at is not None:
        entries.append(
            (
                job.started_at,
                format_html("Attempt 1 started on {}", worker_link(workers[0] if workers else "", known_workers)),
            )
        )
    for error in job.errors or []:
        when = _at(error)
        if when is not None:
            entries.append(
                (
                    when,
                    format_html(
                        "Attempt {} failed: <code>{}</code>: {}",
                        error.get("attempt", "?"),
                        error.get("exception_class_path", "?"),
                        error.get("message", ""),
                    ),
                )
            )
    if job.attempts > 1 and job.last_attempted_at is not None:
        worker = workers[job.attempts - 1] if len(workers) >= job.attempts else job.worker_id
        entries.append(
            (
                job.last_attempted_at,
                format_html("Attempt {} started on {}", job.attempts, worker_link(worker, known_workers)),
            )
        )
    if job.status == JobStatus.READY:
        entries.append((job.run_after, mark_safe("Due: a worker may take it from here")))
    if job.status == JobStatus.RUNNING and job.lease_expires_at is not None:
        entries.append((job.lease_expires_at, mark_safe("Lease expires (renewed by the worker's heartbeat)")))
    if job.cancel_requested_at is not None:
        entries.append((job.cancel_requested_at, mark_safe("Cancellation requested")))
    if job.finished_at is not None:
        entries.append((job.finished_at, format_html("Finished {}", status_badge(job.status))))
    return sorted(entries, key=lambda entry: entry[0])


def timeline_html(job, known_workers: set[str]) -> str:
    rows = [(moment(when), _offset(when, job.enqueued_at), text) for when, text in timeline(job, known_workers)]
    total = duration_text(job.duration)
    return format_html(
        '<table class="djjobs-timeline"><tbody>{}</tbody></table>'
        '<p class="quiet">Ran for {} (first start to finish).</p>',
        format_html_join("", '<tr><td>{}</td><td class="quiet">{}</td><td>{}</td></tr>', rows),
        total,
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
