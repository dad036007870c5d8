"""The Job row: one per enqueued task run, holding its whole life."""

from datetime import datetime, timedelta
from typing import Self

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..compat import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY, Task, TaskResult
from ..ids import uuid7
from ..results import make_result
from ..states import ACTIVE, FINISHED, JobStatus


class JobQuerySet(models.QuerySet):
    """The queue's vocabulary, for users (README, Reference: API); djjobs' own hot paths use SQL."""

    def ready(self) -> Self:
        return self.filter(status=JobStatus.READY)

    def due(self, now: datetime | None = None) -> Self:
        return self.ready().filter(run_after__lte=now or timezone.now())

    def running(self) -> Self:
        return self.filter(status=JobStatus.RUNNING)

    def active(self) -> Self:
        return self.filter(status__in=ACTIVE)

    def finished(self) -> Self:
        return self.filter(status__in=FINISHED)

    def failed(self) -> Self:
        return self.filter(status=JobStatus.FAILED)

    def holding_fifo_key(self) -> Self:
        """Jobs that hold their FIFO key: READY, RUNNING, or FAILED with fifo_on_failure="hold"
        (the condition of the unique constraint djjobs_job_fifo_active_key)."""
        return self.filter(fifo_key__isnull=False).filter(
            Q(status__in=(JobStatus.READY, JobStatus.RUNNING)) | Q(status=JobStatus.FAILED, fifo_hold=True)
        )

    def for_task(self, task_or_path: Task | str) -> Self:
        """Jobs of a task, given as the task (or anything with ``module_path``) or its dotted path."""
        path = getattr(task_or_path, "module_path", task_or_path)
        return self.filter(task_path=path)


class Job(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    task_path = models.CharField(_("task"), max_length=255)
    backend = models.CharField(max_length=64, default="default")
    queue_name = models.CharField(_("queue"), max_length=64, default="default")
    priority = models.SmallIntegerField(default=0, help_text=_("-100..100, higher runs first"))
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.READY)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    takes_context = models.BooleanField(default=False)

    run_after = models.DateTimeField(_("run after"), default=timezone.now)
    enqueued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    last_attempted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    retry_backoff = models.FloatField(default=1.0, help_text=_("base delay in seconds"))
    timeout = models.FloatField(null=True, blank=True, help_text=_("seconds"))
    unique_key = models.CharField(max_length=255, null=True, blank=True)

    # Ownership while RUNNING: a late worker's writes are guarded by its lease token.
    worker_id = models.CharField(max_length=64, blank=True, default="")
    lease_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    # Claimed ahead of a free thread (prefetched): the worker had not necessarily started it.
    # If that worker is lost, the rescuer gives the attempt back once (see rescuer.release).
    claimed_ahead = models.BooleanField(default=False, db_default=False, editable=False)
    # Flow control (djjobs.flow; docs/how-to/flow-control.md). FIFO: jobs of one key run one at a
    # time in fifo_seq order; the others of the key wait (WAITING) until the active one ends.
    fifo_key = models.CharField(_("FIFO key"), max_length=255, null=True, blank=True, editable=False)
    fifo_seq = models.BigIntegerField(null=True, blank=True, editable=False)
    fifo_hold = models.BooleanField(
        default=False, db_default=False, editable=False, help_text=_("a FAILED job keeps its FIFO key blocked")
    )
    # Limits, decided at the claim: at most concurrency_limit RUNNING jobs per concurrency_key,
    # at most rate_limit ("N/s|m|h") starts per rate_key in any window of the period.
    concurrency_key = models.CharField(max_length=255, null=True, blank=True, editable=False)
    concurrency_limit = models.PositiveIntegerField(null=True, blank=True, editable=False)
    rate_key = models.CharField(max_length=255, null=True, blank=True, editable=False)
    rate_limit = models.CharField(max_length=32, null=True, blank=True, editable=False)
    # Debounce: a unique key held only while the job has not started (READY, first attempt);
    # enqueueing again meanwhile updates this job instead of making one.
    debounce_key = models.CharField(max_length=255, null=True, blank=True, editable=False)

    return_value = models.JSONField(null=True, blank=True)
    # One entry per failed attempt: attempt, exception_class_path, message, traceback, worker_id, at.
    errors = models.JSONField(default=list, blank=True)
    worker_ids = models.JSONField(default=list, blank=True)
    progress = models.FloatField(null=True, blank=True, help_text=_("percent, 0..100"))
    progress_message = models.CharField(max_length=255, blank=True, default="")
    checkpoint = models.JSONField(null=True, blank=True)

    # Provenance (djjobs.events, djjobs.triggers): the event this job handles, the trigger that enqueued it.
    event = models.ForeignKey(
        "djjobs.Event",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="jobs",
        db_index=False,
        editable=False,
    )
    trigger = models.CharField(max_length=255, null=True, blank=True, editable=False)
    # The schedule that fired this job and the fire time it is for (djjobs.schedules.tick): one job
    # per (schedule, fire time), whatever the number of workers ticking.
    schedule = models.ForeignKey(
        "djjobs.Schedule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="jobs",
        db_index=False,
        editable=False,
    )  # indexed by the constraint
    scheduled_for = models.DateTimeField(_("scheduled for"), null=True, blank=True, editable=False)
    # A workflow's step or compensation (djjobs.workflows): the run, the step's name, and which
    # of the two this job is. Deleting a run deletes its jobs.
    workflow_run = models.ForeignKey(
        "djjobs.WorkflowRun",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="jobs",
        db_index=False,
        editable=False,
    )
    workflow_step = models.CharField(max_length=100, null=True, blank=True, editable=False)
    workflow_role = models.CharField(
        max_length=10,
        null=True,
        blank=True,
        editable=False,
        choices=[("step", _("step")), ("compensate", _("compensation"))],
    )

    objects = JobQuerySet.as_manager()

    class Meta:
        verbose_name = _("job")
        verbose_name_plural = _("jobs")
        ordering = ["-enqueued_at"]
        indexes = [
            # The claim: READY jobs in exactly the claim's order (priority desc, run_after,
            # id), so it reads the first rows of the index and stops; the queue filter is
            # checked on the way. Partial, so finished jobs never make it bigger.
            models.Index(
                fields=["-priority", "run_after", "id"],
                condition=Q(status="READY"),
                name="djjobs_job_claim_idx",
            ),
            # The limited claim (djjobs.worker.gate): READY jobs under a concurrency or rate limit,
            # in claim order. Partial: most jobs have no limit.
            models.Index(
                fields=["-priority", "run_after", "id"],
                condition=Q(status="READY") & (Q(concurrency_key__isnull=False) | Q(rate_key__isnull=False)),
                name="djjobs_job_limited_idx",
            ),
            # FIFO: a key's jobs by number (its last number, where no sequence gives one).
            models.Index(
                fields=["fifo_key", "fifo_seq"], condition=Q(fifo_key__isnull=False), name="djjobs_job_fifo_idx"
            ),
            # FIFO: the jobs waiting behind each key, in order (the next one to release). Partial:
            # only WAITING jobs, so a release reads one entry however many jobs of the key ended.
            models.Index(
                fields=["fifo_key", "fifo_seq"],
                condition=Q(fifo_key__isnull=False, status="WAITING"),
                name="djjobs_job_fifo_waiting_idx",
            ),
            # The rescuer: RUNNING jobs by lease expiry.
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(status="RUNNING"),
                name="djjobs_job_lease_idx",
            ),
            models.Index(fields=["status", "finished_at"], name="djjobs_job_finished_idx"),
            models.Index(fields=["task_path", "status"], name="djjobs_job_task_idx"),
            # An event's subscriber jobs; a trigger's jobs (the admin's counts). Partial: most jobs have neither.
            models.Index(fields=["event"], condition=Q(event__isnull=False), name="djjobs_job_event_idx"),
            models.Index(
                fields=["trigger", "enqueued_at"], condition=Q(trigger__isnull=False), name="djjobs_job_trigger_idx"
            ),
            # The admin's job list (migration 0005): every filter in the list's order, newest
            # first, so a first page reads one page of index entries; search by unique key.
            models.Index(fields=["enqueued_at", "id"], name="djjobs_job_enqueued_idx"),
            models.Index(fields=["status", "enqueued_at", "id"], name="djjobs_job_status_enq_idx"),
            models.Index(fields=["queue_name", "enqueued_at", "id"], name="djjobs_job_queue_enq_idx"),
            models.Index(fields=["task_path", "enqueued_at", "id"], name="djjobs_job_task_enq_idx"),
            models.Index(
                fields=["finished_at", "id"], condition=Q(finished_at__isnull=False), name="djjobs_job_finished_at_idx"
            ),
            models.Index(
                fields=["unique_key"], condition=Q(unique_key__isnull=False), name="djjobs_job_unique_key_idx"
            ),
            # A run's jobs. Partial: most jobs belong to no workflow.
            models.Index(
                fields=["workflow_run"], condition=Q(workflow_run__isnull=False), name="djjobs_job_workflow_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(priority__gte=TASK_MIN_PRIORITY, priority__lte=TASK_MAX_PRIORITY),
                name="djjobs_job_priority_range",
            ),
            models.CheckConstraint(condition=Q(status__in=JobStatus.values), name="djjobs_job_status_valid"),
            # At most one active job per unique key: concurrent enqueuers meet here. Only rows
            # with a key are in it, so claims and completions of other jobs never touch it.
            models.UniqueConstraint(
                fields=["unique_key"],
                condition=Q(status__in=["READY", "RUNNING", "WAITING"], unique_key__isnull=False),
                name="djjobs_job_unique_active_key",
            ),
            # FIFO: at most one active job per key (READY, RUNNING, or FAILED and holding it):
            # concurrent enqueuers and releases meet here, so two jobs of a key never run together.
            models.UniqueConstraint(
                fields=["fifo_key"],
                condition=Q(fifo_key__isnull=False)
                & (Q(status__in=["READY", "RUNNING"]) | Q(status="FAILED", fifo_hold=True)),
                name="djjobs_job_fifo_active_key",
            ),
            # Debounce: at most one job per key that has not started yet.
            models.UniqueConstraint(
                fields=["debounce_key"],
                condition=Q(debounce_key__isnull=False, status="READY", attempts=0),
                name="djjobs_job_debounce_key",
            ),
            # A schedule fires each of its fire times once: concurrent ticks meet here.
            models.UniqueConstraint(
                fields=["schedule", "scheduled_for"],
                condition=Q(schedule__isnull=False),
                name="djjobs_job_schedule_fire_unique",
            ),
        ]
        permissions = [("enqueue_job", "Can enqueue jobs through endpoints")]

    def __str__(self) -> str:
        return f"{self.task_name} [{self.status}] {self.id}"

    @property
    def task_name(self) -> str:
        return self.task_path.rsplit(".", 1)[-1]

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    def to_task_result(self) -> TaskResult:
        return make_result(self)
