"""A queue as a thing operators manage: paused, and its concurrency and rate limits."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Queue(models.Model):
    """One row per queue an operator paused or limited, or that a worker serves (rows are made on
    first use: ``run_workers`` for its queues, ``pause_queue``, the ``queues`` command, the admin).
    Limits left empty take ``DJJOBS["QUEUE_LIMITS"]``; workers read the rows at each claim."""

    name = models.CharField(_("name"), max_length=64, primary_key=True)
    paused = models.BooleanField(_("paused"), default=False, db_default=False)
    concurrency = models.PositiveIntegerField(
        _("concurrency limit"), null=True, blank=True, help_text=_("at most this many RUNNING jobs of the queue")
    )
    rate_limit = models.CharField(
        _("rate limit"), max_length=32, blank=True, default="", help_text=_('starts per period: "100/m" (/s, /m, /h)')
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("queue")
        verbose_name_plural = _("queues")
        ordering = ["name"]
        permissions = [("pause_queue", "Can pause and resume queues")]

    def __str__(self) -> str:
        return self.name


class FlowStart(models.Model):
    """A start counted against a rate limit: kept while it is inside its window (``expires_at``),
    so the claim counts the starts of any window of the period (a sliding window, not a fixed one)."""

    id = models.BigAutoField(primary_key=True)
    scope = models.CharField(max_length=300)
    started_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    max_starts = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["scope", "expires_at"], name="djjobs_flowstart_scope_idx")]
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.scope} at {self.started_at:%Y-%m-%d %H:%M:%S}"
