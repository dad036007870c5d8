# The index of a workflow run's jobs, built CONCURRENTLY on PostgreSQL (see 0005): partial, so
# jobs outside workflows are not in it.
import importlib

from django.db import migrations, models

AddIndexConcurrently = importlib.import_module("djjobs.migrations.0005_admin_indexes").AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("djjobs", "0006_workflows")]

    operations = [
        AddIndexConcurrently(
            model_name="job",
            index=models.Index(
                fields=["workflow_run"],
                condition=models.Q(("workflow_run__isnull", False)),
                name="djjobs_job_workflow_idx",
            ),
        ),
    ]
