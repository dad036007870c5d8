# Workflows (djjobs.workflows): the WorkflowRun table and the job columns that tie a step or a
# compensation to its run. The new columns are NULL for every existing job (no table rewrite);
# the index on them is built in 0007, concurrently on PostgreSQL.

import django.db.models.deletion
import django.utils.timezone
import djjobs.ids
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("djjobs", "0005_admin_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="workflow_role",
            field=models.CharField(
                blank=True,
                choices=[("step", "step"), ("compensate", "compensation")],
                editable=False,
                max_length=10,
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="workflow_step",
            field=models.CharField(blank=True, editable=False, max_length=100, null=True),
        ),
        migrations.CreateModel(
            name="WorkflowRun",
            fields=[
                ("id", models.UUIDField(default=djjobs.ids.uuid7, editable=False, primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=200, verbose_name="workflow")),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("RUNNING", "Running"),
                            ("SUCCESSFUL", "Successful"),
                            ("COMPENSATING", "Compensating"),
                            ("COMPENSATED", "Compensated"),
                            ("FAILED", "Failed"),
                        ],
                        default="RUNNING",
                        max_length=12,
                    ),
                ),
                ("plan", models.JSONField(default=list, editable=False)),
                ("input", models.JSONField(blank=True, default=dict)),
                ("context", models.JSONField(blank=True, default=dict)),
                ("skipped", models.JSONField(blank=True, default=list)),
                ("reason", models.TextField(blank=True, default="")),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "verbose_name": "workflow run",
                "verbose_name_plural": "workflow runs",
                "ordering": ["-created_at"],
                "indexes": [
                    models.Index(fields=["created_at", "id"], name="djjobs_run_created_idx"),
                    models.Index(fields=["status", "created_at"], name="djjobs_run_status_idx"),
                    models.Index(
                        condition=models.Q(("finished_at__isnull", False)),
                        fields=["finished_at"],
                        name="djjobs_run_finished_idx",
                    ),
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            ("status__in", ["RUNNING", "SUCCESSFUL", "COMPENSATING", "COMPENSATED", "FAILED"])
                        ),
                        name="djjobs_run_status_valid",
                    )
                ],
            },
        ),
        migrations.AddField(
            model_name="job",
            name="workflow_run",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="jobs",
                to="djjobs.workflowrun",
            ),
        ),
    ]
