"""Prometheus metrics, read from the database at scrape time (needs ``djjobs[prometheus]``).

Every number comes from the same cheap queries as the health endpoint, plus one aggregate
over the jobs that finished in the last ``METRICS_WINDOW`` seconds (the (status, finished_at)
index) and the small Worker table. Nothing scans the whole job table.
"""

from datetime import timedelta

from django.db import router
from django.db.models import Count, F, Sum
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily

from .. import conf
from ..models import Job, Queue, Worker
from ..queues import queue_rules
from ..states import FINISHED, JobStatus
from . import health

# Upper bounds, in seconds, of the run-time histogram's buckets.
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
# At most this many of the most recent finished jobs make the run-time histogram.
DURATION_SAMPLE = 10000


class JobsCollector:
    """Collects djjobs' metrics on each scrape."""

    def collect(self):
        now = timezone.now()
        snap = health.snapshot(now)
        yield from _queue_metrics(snap)
        yield from _active_metrics(Job)
        since = now - timedelta(seconds=float(conf.get("METRICS_WINDOW")))
        yield from _finished_metrics(Job, since)
        yield _durations(Job, since)
        yield from _worker_metrics(snap)
        yield from _flow_metrics()


def render() -> tuple[bytes, str]:
    """The metrics in Prometheus text format, and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobsCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


def _queue_metrics(snap):
    due = GaugeMetricFamily(
        "djjobs_queue_due_jobs",
        f"Due READY jobs per queue, among the first {snap.count_limit} in claim order.",
        labels=["queue"],
    )
    for name, n in snap.queues.items():
        due.add_metric([name], n)
    age = GaugeMetricFamily(
        "djjobs_oldest_due_job_age_seconds",
        "Seconds the oldest due READY job has waited (0: none due).",
        value=0.0 if snap.oldest_due_at is None else (snap.at - snap.oldest_due_at).total_seconds(),
    )
    failed = GaugeMetricFamily(
        "djjobs_failed_last_hour_jobs",
        f"Jobs that ended FAILED in the last hour (counted up to {snap.count_limit}).",
        value=snap.failed_last_hour,
    )
    return [due, age, failed]


def _active_metrics(Job):
    """RUNNING and WAITING jobs per queue (READY is djjobs_queue_due_jobs: bounded)."""
    family = GaugeMetricFamily("djjobs_jobs", "RUNNING and WAITING jobs per queue.", labels=["queue", "status"])
    rows = (
        Job.objects.filter(status__in=[JobStatus.RUNNING, JobStatus.WAITING])
        .order_by()
        .values("queue_name", "status")
        .annotate(n=Count("pk"))
    )
    for row in rows:
        family.add_metric([row["queue_name"], row["status"]], row["n"])
    return [family]


def _finished_metrics(Job, since):
    window = float(conf.get("METRICS_WINDOW"))
    finished = GaugeMetricFamily(
        "djjobs_jobs_finished",
        f"Jobs that finished in the last {window:g}s, by final status.",
        labels=["queue", "status"],
    )
    retries = GaugeMetricFamily(
        "djjobs_job_retries",
        f"Attempts beyond the first of the jobs that finished in the last {window:g}s.",
        labels=["queue"],
    )
    rows = (
        Job.objects.filter(status__in=FINISHED, finished_at__gte=since)
        .order_by()
        .values("queue_name", "status")
        .annotate(n=Count("pk"), retries=Sum(F("attempts") - 1))
    )
    per_queue: dict[str, int] = {}
    for row in rows:
        finished.add_metric([row["queue_name"], row["status"]], row["n"])
        per_queue[row["queue_name"]] = per_queue.get(row["queue_name"], 0) + max(0, row["retries"] or 0)
    for queue, n in sorted(per_queue.items()):
        retries.add_metric([queue], n)
    return [finished, retries]


def _durations(Job, since):
    """Run time of the last attempt of recently finished jobs, as a gauge histogram per queue."""
    family = GaugeHistogramMetricFamily(
        "djjobs_job_duration_seconds",
        f"Run time of the last attempt of the (up to {DURATION_SAMPLE}) most recent jobs finished in the window.",
        labels=["queue"],
    )
    rows = (
        Job.objects.filter(
            status__in=[JobStatus.SUCCESSFUL, JobStatus.FAILED], finished_at__gte=since, last_attempted_at__isnull=False
        )
        .order_by("-finished_at")
        .values_list("queue_name", "last_attempted_at", "finished_at")[:DURATION_SAMPLE]
    )
    samples: dict[str, list[float]] = {}
    for queue, started, finished in rows:
        samples.setdefault(queue, []).append(max(0.0, (finished - started).total_seconds()))
    for queue, seconds in sorted(samples.items()):
        buckets = [(str(bound), sum(s <= bound for s in seconds)) for bound in DURATION_BUCKETS]
        buckets.append(("+Inf", len(seconds)))
        family.add_metric([queue], buckets, gsum_value=sum(seconds))
    return family


def _flow_metrics():
    """Flow control: each queue's paused state and limits, and FIFO keys held by a FAILED job."""
    rules = queue_rules(router.db_for_read(Job))
    paused = GaugeMetricFamily("djjobs_queue_paused", "1 while the queue is paused.", labels=["queue"])
    concurrency = GaugeMetricFamily(
        "djjobs_queue_concurrency_limit", "The queue's cluster-wide concurrency limit (absent: none).", labels=["queue"]
    )
    rate = GaugeMetricFamily(
        "djjobs_queue_rate_limit_per_second",
        "The queue's rate limit as starts per second (absent: none).",
        labels=["queue", "limit"],
    )
    names = set(Queue.objects.values_list("name", flat=True)) | set(rules.concurrency) | set(rules.rate)
    for name in sorted(names):
        paused.add_metric([name], 1.0 if name in rules.paused else 0.0)
    for name, limit in sorted(rules.concurrency.items()):
        concurrency.add_metric([name], limit)
    for name, (count, period, text) in sorted(rules.rate.items()):
        rate.add_metric([name, text], count / period)
    held = GaugeMetricFamily(
        "djjobs_fifo_keys_held_by_failed_jobs",
        'FIFO keys blocked by a FAILED job with fifo_on_failure="hold" (retry or cancel it).',
        value=Job.objects.filter(status=JobStatus.FAILED, fifo_hold=True, fifo_key__isnull=False).count(),
    )
    return [paused, concurrency, rate, held]


def _worker_metrics(snap):
    workers = GaugeMetricFamily("djjobs_workers", "Worker processes by state.", labels=["state"])
    total = Worker.objects.count()
    workers.add_metric(["alive"], snap.workers_alive)
    workers.add_metric(["gone"], total - snap.workers_alive)
    jobs = CounterMetricFamily(
        "djjobs_worker_jobs", "Jobs each live worker finished, by outcome.", labels=["worker", "outcome"]
    )
    for worker in Worker.objects.alive(snap.at).only("id", "jobs_done", "jobs_failed"):
        jobs.add_metric([worker.id, "done"], worker.jobs_done)
        jobs.add_metric([worker.id, "failed"], worker.jobs_failed)
    return [workers, jobs]
