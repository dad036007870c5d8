"""The WorkflowRun row: one per started workflow; its steps and compensations are Jobs pointing at it."""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..ids import uuid7


class RunStatus(models.TextChoices):
    # Steps are being run, group after group.
    RUNNING = "RUNNING", _("Running")
    # Every step succeeded.
    SUCCESSFUL = "SUCCESSFUL", _("Successful")
    # A step failed or was cancelled (or the run was): pending steps are cancelled, running ones
    # asked to stop, and the compensations of the steps that succeeded run in reverse order.
    COMPENSATING = "COMPENSATING", _("Compensating")
    # Every compensation due succeeded: the run failed and was undone.
    COMPENSATED = "COMPENSATED", _("Compensated")
    # A compensation failed: someone must look (retrying it resumes the compensations).
    FAILED = "FAILED", _("Failed")


ACTIVE_RUN = frozenset({RunStatus.RUNNING, RunStatus.COMPENSATING})


class WorkflowRun(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    name = models.CharField(_("workflow"), max_length=200)
    status = models.CharField(max_length=12, choices=RunStatus.choices, default=RunStatus.RUNNING)
    # The definition as it was when the run started: [[{"name", "task", "compensate"}, ...], ...],
    # one list per group (a group's steps run in parallel). A deploy that changes the
    # workflow does not change the runs already under way.
    plan = models.JSONField(default=list, editable=False)
    # The keyword arguments given to start(), then what the steps returned (see djjobs.workflows).
    input = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    # Steps not run because their when= key was false when their group came up.
    skipped = models.JSONField(default=list, blank=True)
    # Why the run is compensating or failed: the step (or the operator) that stopped it.
    reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("workflow run")
        verbose_name_plural = _("workflow runs")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["created_at", "id"], name="djjobs_run_created_idx"),
            models.Index(fields=["status", "created_at"], name="djjobs_run_status_idx"),
            models.Index(
                fields=["finished_at"], condition=Q(finished_at__isnull=False), name="djjobs_run_finished_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=RunStatus.values), name="djjobs_run_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} [{self.status}] {self.id}"

    @property
    def is_finished(self) -> bool:
        return self.status not in ACTIVE_RUN
