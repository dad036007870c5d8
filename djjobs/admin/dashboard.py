"""The dashboard: the state of the job system on one page, in a fixed number of queries
whatever the size of the job table.

- Counts by status and by queue: one statement of bounded counts (the read model shared with
  the health endpoint and the metrics, ``djjobs.db.counts``), each status read through an index,
  at most ``COUNT_LIMIT + 1`` entries each; past the limit, PostgreSQL's statistics give an
  estimate, shown with "~" (see ``counting``).
- Jobs succeeded and failed per minute over the last hour: one GROUP BY over that hour's range
  of the (status, finished_at) index, drawn as inline SVG (``chart``).
- The oldest due READY job: per priority the first entry of the claim index (the read model's
  ``ready_heads``, as the health endpoint finds it), then those few rows.
- Workers and what they run; the tasks that failed most in the last day, with their latest error.
- Workflow runs under way and those whose compensation failed: one bounded read of the
  (status, created_at) index.

Every number links to the job list filtered to the jobs it counts.
"""

from collections import Counter
from datetime import timedelta
from typing import Any

from django.db import router
from django.db.models import Count
from django.db.models.functions import TruncMinute
from django.http import JsonResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.http import urlencode

from ..db import counts as read_model
from ..models import Job, RunStatus, Worker, WorkflowRun
from ..queues import queue_rules
from ..states import JobStatus
from . import counting
from .chart import per_minute_svg
from .counting import AT_LEAST, ESTIMATE, Tally, column_estimates, settle
from .display import STYLESHEET, duration_text, job_url, local, status_badge, worker_url
from .job_filters import known_queues

STATUS_ORDER = (
    JobStatus.READY,
    JobStatus.RUNNING,
    JobStatus.WAITING,
    JobStatus.FAILED,
    JobStatus.CANCELLED,
    JobStatus.SUCCESSFUL,
)
MINUTES = 60
FAILING_WINDOW = timedelta(hours=24)
TOP_FAILING = 5
WORKERS_READ = 200  # worker rows of the last hour (older ones are pruned)
# The page updates itself (a poll of its panels as JSON, ``live``): every REFRESH_DEFAULT
# seconds unless ``?refresh=`` says otherwise (0: off); the links offer these choices.
REFRESH_DEFAULT = 10
REFRESH_MAX = 300
REFRESH_CHOICES = (10, 30, 60)


def jobs_url(**params) -> str:
    """The job list filtered by ``params`` (the filters' parameter names)."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{reverse('admin:djjobs_job_changelist')}?{query}" if query else reverse("admin:djjobs_job_changelist")


def render(model_admin, request) -> TemplateResponse:
    return TemplateResponse(request, "djjobs/admin/dashboard.html", context(model_admin, request))


def live(model_admin, request) -> JsonResponse:
    """The page's panels, rendered again: the page's script polls this and swaps them in."""
    values = context(model_admin, request)
    return JsonResponse(
        {
            "at": local(values["now"]).strftime("%H:%M:%S"),
            "html": render_to_string("djjobs/admin/dashboard_panels.html", values, request),
        }
    )


def context(model_admin, request) -> dict:
    now = timezone.now()
    counts = bounded_counts(now)
    estimates = column_estimates(Job, ("status", "queue_name"))
    minutes, succeeded, failed = per_minute(now)
    statuses = status_rows(counts, estimates.get("status", {}))
    rules = queue_rules(router.db_for_read(Job))
    return {
        **model_admin.admin_site.each_context(request),
        "title": "Jobs dashboard",
        "opts": Job._meta,
        "stylesheet": STYLESHEET,
        "now": now,
        "count_limit": _number(counting.limit()),
        "statuses": statuses,
        "estimated": any(row["tally"].kind == ESTIMATE for row in statuses),
        "at_least": any(row["tally"].kind == AT_LEAST for row in statuses),
        "queues": queue_rows(counts, estimates, sum(succeeded), sum(failed), rules),
        "flow": flow_state(rules),
        "chart": per_minute_svg(
            [local(m).strftime("%H:%M") for m in minutes],
            succeeded,
            failed,
            "Jobs succeeded and failed per minute over the last hour",
        ),
        "hour": {
            "succeeded": _number(sum(succeeded)),
            "failed": _number(sum(failed)),
            "succeeded_url": jobs_url(status=JobStatus.SUCCESSFUL, finished="hour"),
            "failed_url": jobs_url(status=JobStatus.FAILED, finished="hour"),
        },
        "oldest_due": oldest_due(now),
        "workers": workers(now),
        "runs": workflow_runs() if request.user.has_perm("djjobs.view_workflowrun") else None,
        "failing": top_failing(now),
        "refresh": _refresh(request),
        "refresh_choices": REFRESH_CHOICES,
        "live_url": reverse("admin:djjobs_dashboard_live"),
        "jobs_url": jobs_url(),
    }


def _number(value: int) -> str:
    return number_format(value, force_grouping=True)


def _refresh(request) -> int:
    """Seconds between the page's live updates (0: off); ``?refresh=`` chooses."""
    try:
        seconds = int(request.GET.get("refresh", REFRESH_DEFAULT))
    except ValueError:
        return REFRESH_DEFAULT
    return max(0, min(seconds, REFRESH_MAX))


# -- counts ------------------------------------------------------------------------------


def bounded_counts(now) -> dict[tuple[str, str | None, int], int]:
    """{(part, queue or None, due 0/1): rows} with every part counted up to COUNT_LIMIT + 1
    (the read model's bounded counts: djjobs.db.counts)."""
    return read_model.bounded_counts(now, counting.limit() + 1)


def _part_total(counts, part) -> int:
    return sum(n for (name, _queue, _due), n in counts.items() if name == part)


def status_rows(counts, estimates: dict[str, int]) -> list[dict]:
    rows = []
    for status in STATUS_ORDER:
        tally = settle(_part_total(counts, status), estimates.get(status), counting.limit())
        rows.append({"status": status, "badge": status_badge(status), "tally": tally, "url": jobs_url(status=status)})
    return rows


def _share(n: int, sample: int, total: int | None) -> Tally:
    """A queue's count within one part: exact if the part was counted in full, else its share
    of the part's sample applied to the part's estimated total."""
    if sample <= counting.limit():
        return Tally(n)
    if total is None:
        return Tally(n, AT_LEAST)
    return Tally(round(n * total / sample), ESTIMATE)


def queue_rows(counts, estimates: dict, succeeded_hour: int, failed_hour: int, rules=None) -> list[dict]:
    """Per queue: READY due now and later, RUNNING, WAITING, succeeded and failed in the last
    hour, and (PostgreSQL) the estimated number of its jobs in the table."""
    by_status = estimates.get("status", {})
    totals = {
        "READY": by_status.get(JobStatus.READY),
        "RUNNING": by_status.get(JobStatus.RUNNING),
        "WAITING": by_status.get(JobStatus.WAITING),
        "SUCCESSFUL_HOUR": succeeded_hour,
        "FAILED_HOUR": failed_hour,
    }
    samples = {part: _part_total(counts, part) for part in totals}
    names = sorted(set(known_queues()) | {queue for (_part, queue, _due) in counts if queue is not None})
    columns = (  # (part, due, filters of the list)
        ("READY", 1, {"status": JobStatus.READY, "due": "now"}),
        ("READY", 0, {"status": JobStatus.READY, "due": "later"}),
        ("RUNNING", 0, {"status": JobStatus.RUNNING}),
        ("WAITING", 0, {"status": JobStatus.WAITING}),
        ("SUCCESSFUL_HOUR", 0, {"status": JobStatus.SUCCESSFUL, "finished": "hour"}),
        ("FAILED_HOUR", 0, {"status": JobStatus.FAILED, "finished": "hour"}),
    )
    rules = rules if rules is not None else queue_rules(router.db_for_read(Job))
    rows = []
    for name in names:
        cells = []
        for part, due, filters in columns:
            n = counts.get((part, name, due), 0)
            cells.append({"tally": _share(n, samples[part], totals[part]), "url": jobs_url(queue=name, **filters)})
        total = estimates.get("queue_name", {}).get(name)
        rows.append(
            {
                "name": name,
                "paused": name in rules.paused,
                "limits": _limits_text(rules, name),
                "cells": cells,
                "url": jobs_url(queue=name),
                "total": None if total is None else Tally(total, ESTIMATE),
            }
        )
    return rows


def _limits_text(rules, name: str) -> str:
    parts = []
    if name in rules.concurrency:
        parts.append(f"{rules.concurrency[name]} at once")
    if name in rules.rate:
        parts.append(rules.rate[name][2])
    return ", ".join(parts)


HELD_SHOWN = 100  # FIFO keys held by FAILED jobs counted on the dashboard (more: "100+")


def flow_state(rules) -> dict:
    """Flow control at a glance: paused queues, and FIFO keys blocked by a FAILED job that holds
    them (fifo_on_failure="hold": retry or cancel it and the key moves on). One query."""
    held = list(
        Job.objects.filter(status=JobStatus.FAILED, fifo_hold=True, fifo_key__isnull=False)
        .order_by("fifo_key")
        .values_list("fifo_key", flat=True)[: HELD_SHOWN + 1]
    )
    return {
        "paused": sorted(rules.paused),
        "queues_url": reverse("admin:djjobs_queue_changelist"),
        "held": len(held),
        "held_more": len(held) > HELD_SHOWN,
        "held_keys": held[:5],
        "held_url": jobs_url(status=JobStatus.FAILED),
    }


# -- the last hour, per minute -----------------------------------------------------------


def per_minute(now) -> tuple[list, list[int], list[int]]:
    """The last MINUTES minutes (the current one last) and the jobs that succeeded and failed in each."""
    current = now.replace(second=0, microsecond=0)
    minutes = [current - timedelta(minutes=MINUTES - 1 - i) for i in range(MINUTES)]
    rows = (
        Job.objects.filter(status__in=[JobStatus.SUCCESSFUL, JobStatus.FAILED], finished_at__gte=minutes[0])
        .annotate(minute=TruncMinute("finished_at"))
        .order_by()
        .values_list("status", "minute")
        .annotate(n=Count("*"))
    )
    zone = minutes[0].tzinfo
    found = {
        (status, (minute.astimezone(zone) if zone else minute).replace(second=0, microsecond=0)): n
        for status, minute, n in rows
    }
    succeeded = [found.get((JobStatus.SUCCESSFUL, m), 0) for m in minutes]
    failed = [found.get((JobStatus.FAILED, m), 0) for m in minutes]
    return minutes, succeeded, failed


# -- the oldest due job ------------------------------------------------------------------


def oldest_due(now) -> dict | None:
    """The due READY job whose run_after is earliest, and how long it has waited: per priority
    the first job in claim order (the read model's ready_heads), then those few rows."""
    ids = [head.id for head in read_model.ready_heads()]
    if not ids:
        return None
    job = (
        Job.objects.filter(pk__in=ids, run_after__lte=now)
        .order_by("run_after", "-priority")
        .only("id", "task_path", "queue_name", "priority", "run_after")
        .first()
    )
    if job is None:
        return None
    return {"job": job, "url": job_url(job.pk), "waited": duration_text(now - job.run_after)}


# -- workers -----------------------------------------------------------------------------


def workers(now) -> dict:
    # Any: the rows alive get display attributes (running_now, running_url, url) below.
    rows: list[Any] = list(Worker.objects.order_by("-last_heartbeat_at")[:WORKERS_READ])
    running = dict(
        Job.objects.filter(status=JobStatus.RUNNING).order_by().values_list("worker_id").annotate(n=Count("*"))
    )
    alive = [w for w in rows if w.is_alive]
    for worker in alive:
        worker.running_now = running.get(worker.pk, 0)
        worker.running_url = jobs_url(status=JobStatus.RUNNING, worker_id=worker.pk)
        worker.url = worker_url(worker.pk)
    slots = sum(w.concurrency for w in alive)
    return {
        "alive": alive,
        "alive_count": len(alive),
        "dead_count": len(rows) - len(alive),
        "slots": slots,
        "busy": sum(w.running_now for w in alive),
        "alive_url": f"{reverse('admin:djjobs_worker_changelist')}?state=alive",
        "dead_url": f"{reverse('admin:djjobs_worker_changelist')}?state=dead",
    }


def workflow_runs() -> dict:
    """Runs RUNNING, COMPENSATING and FAILED (a compensation failed: someone must look), each
    counted up to the count limit."""
    limit = counting.limit()
    wanted = (RunStatus.RUNNING, RunStatus.COMPENSATING, RunStatus.FAILED)
    statuses = WorkflowRun.objects.filter(status__in=wanted).order_by()
    counts = Counter(statuses.values_list("status", flat=True)[: (limit + 1) * len(wanted)])
    runs_url = reverse("admin:djjobs_workflowrun_changelist")
    return {
        "rows": [
            {
                "status": s,
                "badge": status_badge(s),
                "count": f"{_number(min(counts[s], limit))}{'+' if counts[s] > limit else ''}",
                "url": f"{runs_url}?{urlencode({'status__exact': s})}",
            }
            for s in wanted
        ],
        "failed": counts[RunStatus.FAILED],
        "url": runs_url,
    }


# -- failing tasks -----------------------------------------------------------------------


def top_failing(now) -> dict:
    """The tasks with most FAILED jobs among the last COUNT_LIMIT failures of the last day,
    each with its latest failure's error."""
    top = read_model.top_failing(now - FAILING_WINDOW, counting.limit(), TOP_FAILING)
    rows = []
    if top:
        latest = {
            (j.task_path, j.finished_at): j
            for j in Job.objects.filter(
                status=JobStatus.FAILED,
                task_path__in=[path for path, _n, _last in top],
                finished_at__in=[last for _path, _n, last in top],
            ).only("id", "task_path", "finished_at", "errors")
        }
        for path, n, last in top:
            job = latest.get((path, last))
            error = (job.errors or [{}])[-1] if job is not None else {}
            rows.append(
                {
                    "task_path": path,
                    "count": n,
                    "last": last,
                    "url": jobs_url(status=JobStatus.FAILED, task=path, finished="day"),
                    "job_url": job_url(job.pk) if job is not None else None,
                    "error_class": error.get("exception_class_path", ""),
                    "error_message": (error.get("message") or "")[:300],
                }
            )
    return {"rows": rows, "hours": int(FAILING_WINDOW.total_seconds() // 3600)}
