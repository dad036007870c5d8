"""Worker rows: each run_workers process records itself and heartbeats here."""

from datetime import datetime, timedelta
from typing import Self

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import conf


class WorkerQuerySet(models.QuerySet):
    def alive(self, now: datetime | None = None) -> Self:
        return self.filter(stopped_at__isnull=True, last_heartbeat_at__gte=_alive_cutoff(now))

    def dead(self, now: datetime | None = None) -> Self:
        return self.exclude(pk__in=self.alive(now).values("pk"))


def _alive_cutoff(now: datetime | None = None) -> datetime:
    # Three missed heartbeats and a worker is presumed dead.
    return (now or timezone.now()) - timedelta(seconds=3 * conf.get("HEARTBEAT_INTERVAL"))


class Worker(models.Model):
    id = models.CharField(_("worker id"), max_length=64, primary_key=True)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    queues = models.JSONField(default=list, blank=True, help_text=_("empty: every queue"))
    concurrency = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    last_heartbeat_at = models.DateTimeField(default=timezone.now)
    stopped_at = models.DateTimeField(null=True, blank=True)
    jobs_done = models.PositiveIntegerField(default=0)
    jobs_failed = models.PositiveIntegerField(default=0)

    objects = WorkerQuerySet.as_manager()

    class Meta:
        verbose_name = _("worker")
        verbose_name_plural = _("workers")
        ordering = ["-last_heartbeat_at"]

    def __str__(self) -> str:
        return self.id

    @property
    def is_alive(self) -> bool:
        return self.stopped_at is None and self.last_heartbeat_at >= _alive_cutoff()
