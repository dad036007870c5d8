"""PostgreSQL only: NOTIFY workers when a job becomes READY and due (see djjobs/notify.py)."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION djjobs_notify_inserted() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('djjobs', q.queue_name)
    FROM (SELECT DISTINCT queue_name FROM djjobs_new_rows
          WHERE status = 'READY' AND run_after <= clock_timestamp()) AS q;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION djjobs_notify_updated() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('djjobs', NEW.queue_name);
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER djjobs_job_notify_insert AFTER INSERT ON djjobs_job
    REFERENCING NEW TABLE AS djjobs_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION djjobs_notify_inserted();

CREATE TRIGGER djjobs_job_notify_update AFTER UPDATE ON djjobs_job
    FOR EACH ROW
    WHEN (NEW.status = 'READY' AND NEW.run_after <= clock_timestamp()
          AND (OLD.status <> 'READY' OR OLD.run_after > clock_timestamp()))
    EXECUTE FUNCTION djjobs_notify_updated();
"""

DROP = """
DROP TRIGGER IF EXISTS djjobs_job_notify_update ON djjobs_job;
DROP TRIGGER IF EXISTS djjobs_job_notify_insert ON djjobs_job;
DROP FUNCTION IF EXISTS djjobs_notify_updated();
DROP FUNCTION IF EXISTS djjobs_notify_inserted();
"""


def _run(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("djjobs", "0001_initial")]
    operations = [migrations.RunPython(_run(CREATE), _run(DROP), elidable=False)]
