# MariaDB and MySQL (issue 19): what PostgreSQL and SQLite get from partial indexes.
#
# Django creates no UniqueConstraint with a condition on MySQL/MariaDB (checks models.W036 and
# W037 say so), and creates a partial Index there as a full one. So the guarantees "at most one
# active job per unique key", "one active job per FIFO key", "one job not yet started per
# debounce key", "a schedule fires each fire time once" and "an event's idempotency key is used
# once" would silently vanish. Here, on MySQL/MariaDB only, each constrained key gets a virtual
# generated column that holds the key only while the row is in the constrained state (NULL
# otherwise, and a unique index allows any number of NULLs), under a unique index: the same
# judge as the partial unique index, with the same name. The models do not declare these
# columns: Django never reads or writes them (it names its columns), other vendors never see them.
#
# The claim reads READY jobs in claim order: (status, priority DESC, run_after, id), an equality
# on status and then the ORDER BY's columns, so `ORDER BY ... LIMIT n` reads the first n entries
# of the READY range and stops (EXPLAIN: "Using where", no filesort).
from django.db import migrations

READY_OR_RUNNING = "'READY', 'RUNNING'"
# Django's JSONField on MariaDB (a LONGTEXT alias, binary collation), without its CHECK.
JSON_TEXT = "LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"

# (name, column definition, unique index columns)
GENERATED_KEYS = [
    (
        "djjobs_job_unique_active_key",
        (
            "unique_active_key VARCHAR(255) AS "
            "(CASE WHEN status IN ('READY', 'RUNNING', 'WAITING') THEN unique_key END) VIRTUAL"
        ),
        "unique_active_key",
    ),
    (
        "djjobs_job_fifo_active_key",
        (
            "fifo_active_key VARCHAR(255) AS "
            f"(CASE WHEN status IN ({READY_OR_RUNNING}) OR (status = 'FAILED' AND fifo_hold) THEN fifo_key END) VIRTUAL"
        ),
        "fifo_active_key",
    ),
    (
        "djjobs_job_debounce_key",
        (
            "debounce_ready_key VARCHAR(255) AS "
            "(CASE WHEN status = 'READY' AND attempts = 0 THEN debounce_key END) VIRTUAL"
        ),
        "debounce_ready_key",
    ),
]


def _json_checks(apps):
    """(table, column, NULL or NOT NULL) of every JSONField of djjobs' models."""
    for model in apps.get_app_config("djjobs").get_models():
        for field in model._meta.local_fields:
            if field.get_internal_type() == "JSONField":
                yield model._meta.db_table, field.column, "NULL" if field.null else "NOT NULL"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "mysql":
        return
    # MariaDB stores JSON as text under CHECK (JSON_VALID(column)), and JSON_VALID refuses
    # documents nested deeper than 32 levels: half the depth djjobs accepts (djjobs.payload).
    # djjobs writes only what Python's json module encoded, so the checks go (MySQL's JSON type
    # allows 100 levels and has no such check).
    if schema_editor.connection.mysql_is_mariadb:
        # A column's own CHECK has no name to drop: the column is defined again without it.
        for table, column, null in _json_checks(apps):
            schema_editor.execute(f"ALTER TABLE {table} MODIFY {column} {JSON_TEXT} {null}")
    for name, column, indexed in GENERATED_KEYS:
        schema_editor.execute(f"ALTER TABLE djjobs_job ADD COLUMN {column}")
        schema_editor.execute(f"CREATE UNIQUE INDEX {name} ON djjobs_job ({indexed})")
    # NULL schedule ids are distinct in a unique index: no condition needed.
    schema_editor.execute(
        "CREATE UNIQUE INDEX djjobs_job_schedule_fire_unique ON djjobs_job (schedule_id, scheduled_for)"
    )
    schema_editor.execute("CREATE UNIQUE INDEX djjobs_event_idempotency_key ON djjobs_event (name, idempotency_key)")
    schema_editor.execute(
        "CREATE INDEX djjobs_job_claim_status_idx ON djjobs_job (status, priority DESC, run_after, id)"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "mysql":
        return
    if schema_editor.connection.mysql_is_mariadb:
        for table, column, null in _json_checks(apps):
            schema_editor.execute(
                f"ALTER TABLE {table} MODIFY {column} {JSON_TEXT} {null} CHECK (JSON_VALID({column}))"
            )
    schema_editor.execute("DROP INDEX djjobs_job_claim_status_idx ON djjobs_job")
    schema_editor.execute("DROP INDEX djjobs_event_idempotency_key ON djjobs_event")
    schema_editor.execute("DROP INDEX djjobs_job_schedule_fire_unique ON djjobs_job")
    for name, column, _indexed in reversed(GENERATED_KEYS):
        schema_editor.execute(f"DROP INDEX {name} ON djjobs_job")
        schema_editor.execute(f"ALTER TABLE djjobs_job DROP COLUMN {column.split()[0]}")


class Migration(migrations.Migration):
    atomic = False  # MySQL/MariaDB cannot roll DDL back: Django refuses DDL inside a transaction there

    dependencies = [("djjobs", "0010_admin_screens")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
