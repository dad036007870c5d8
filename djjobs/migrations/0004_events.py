# Events and the provenance of jobs: which event a job handles, which trigger enqueued it.
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import djjobs.ids


class Migration(migrations.Migration):
    dependencies = [("djjobs", "0003_schedules")]

    operations = [
        migrations.AddField(
            model_name="job",
            name="trigger",
            field=models.CharField(blank=True, editable=False, max_length=255, null=True),
        ),
        migrations.CreateModel(
            name="Event",
            fields=[
                ("id", models.UUIDField(default=djjobs.ids.uuid7, editable=False, primary_key=True, serialize=False)),
                ("name", models.CharField(db_index=True, max_length=200)),
                ("payload", models.JSONField(blank=True, default=dict)),
                ("occurred_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ("idempotency_key", models.CharField(blank=True, max_length=255, null=True)),
                ("subscribers", models.JSONField(blank=True, default=list)),
                (
                    "cause_job",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="published_events",
                        to="djjobs.job",
                        verbose_name="caused by job",
                    ),
                ),
            ],
            options={"verbose_name": "event", "verbose_name_plural": "events", "ordering": ["-occurred_at"]},
        ),
        migrations.AddField(
            model_name="job",
            name="event",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="jobs",
                to="djjobs.event",
            ),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                condition=models.Q(("event__isnull", False)), fields=["event"], name="djjobs_job_event_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                condition=models.Q(("trigger__isnull", False)),
                fields=["trigger", "enqueued_at"],
                name="djjobs_job_trigger_idx",
            ),
        ),
        migrations.AddConstraint(
            model_name="event",
            constraint=models.UniqueConstraint(
                condition=models.Q(("idempotency_key__isnull", False)),
                fields=("name", "idempotency_key"),
                name="djjobs_event_idempotency_key",
            ),
        ),
    ]
