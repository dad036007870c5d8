# Indexes of the admin's job list: each filter (status, queue, task, recently enqueued or
# finished) reads its first page in the list's order (newest first) from one index, and search
# finds a unique key without a scan. See djjobs/admin/jobs.py and benchmarks/admin_scale.py.
#
# On PostgreSQL they are built CONCURRENTLY (so the migration is not atomic): a big job table
# keeps taking inserts and updates from workers while they build.
from django.db import migrations, models


class AddIndexConcurrently(migrations.AddIndex):
    """AddIndex, built without blocking writes on PostgreSQL; a plain CREATE INDEX elsewhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.add_index(model, self.index, concurrently=True)
        else:
            schema_editor.add_index(model, self.index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.remove_index(model, self.index, concurrently=True)
        else:
            schema_editor.remove_index(model, self.index)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("djjobs", "0004_events")]

    operations = [
        AddIndexConcurrently(
            model_name="job",
            index=models.Index(fields=["enqueued_at", "id"], name="djjobs_job_enqueued_idx"),
        ),
        AddIndexConcurrently(
            model_name="job",
            index=models.Index(fields=["status", "enqueued_at", "id"], name="djjobs_job_status_enq_idx"),
        ),
        AddIndexConcurrently(
            model_name="job",
            index=models.Index(fields=["queue_name", "enqueued_at", "id"], name="djjobs_job_queue_enq_idx"),
        ),
        AddIndexConcurrently(
            model_name="job",
            index=models.Index(fields=["task_path", "enqueued_at", "id"], name="djjobs_job_task_enq_idx"),
        ),
        AddIndexConcurrently(
            model_name="job",
            index=models.Index(
                fields=["finished_at", "id"],
                condition=models.Q(("finished_at__isnull", False)),
                name="djjobs_job_finished_at_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="job",
            index=models.Index(
                fields=["unique_key"],
                condition=models.Q(("unique_key__isnull", False)),
                name="djjobs_job_unique_key_idx",
            ),
        ),
    ]
