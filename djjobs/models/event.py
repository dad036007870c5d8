"""The Event row: one per ``djjobs.publish()``; its subscriber jobs point back at it."""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..ids import uuid7
from .job import Job

# How far the admin follows a chain of causes (event <- job <- event ...) before it stops.
MAX_CHAIN = 50


class Event(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    name = models.CharField(max_length=200, db_index=True)
    payload = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Publishing the same (name, key) again returns the first event's jobs: a unique constraint decides.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    # The job whose task published this event (None: published outside any job). No database
    # constraint and DO_NOTHING: pruning jobs must neither cascade here nor be slowed down.
    cause_job = models.ForeignKey(
        "djjobs.Job",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="published_events",
        verbose_name=_("caused by job"),
    )
    # Dotted paths of the tasks subscribed when it was published (empty: nobody listened).
    subscribers = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-occurred_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["name", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="djjobs_event_idempotency_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.id}"

    def as_argument(self) -> dict:
        """What a subscriber task receives as its ``event`` keyword argument."""
        return {
            "name": self.name,
            "payload": self.payload,
            "id": str(self.id),
            "occurred_at": self.occurred_at.isoformat(),
        }

    def cause_chain(self) -> list[tuple["Event", Job | None]]:
        """[(event, job that published it or None), ...] from the root cause down to this event."""
        chain: list[tuple[Event, Job | None]] = []
        event: Event | None = self
        while event is not None and len(chain) < MAX_CHAIN:
            job = (
                Job.objects.select_related("event").filter(pk=event.cause_job_id).first()
                if event.cause_job_id
                else None
            )
            chain.append((event, job))
            event = job.event if job is not None else None
        chain.reverse()
        return chain
