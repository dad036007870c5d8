"""A database trigger that refuses to store one particular return value: a write that fails for
one job only (as a NUL did on PostgreSQL), whatever the encoding rules let through.

The trigger refuses any UPDATE of djjobs_job that sets a return value with a "poison" key
(tests.testapp.tasks.hostile_return("poison") returns one): PostgreSQL raises a DataError
(SQLSTATE 22P05, as jsonb does for \\u0000), SQLite and MariaDB/MySQL an IntegrityError.
"""

from contextlib import contextmanager

from django.db import connection

PG_CREATE = [
    """CREATE OR REPLACE FUNCTION djjobs_test_poison() RETURNS trigger AS $$
       BEGIN
           IF jsonb_typeof(NEW.return_value) = 'object' AND NEW.return_value ? 'poison' THEN
               RAISE EXCEPTION 'poisoned return value of job %', NEW.id USING ERRCODE = '22P05';
           END IF;
           RETURN NEW;
       END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER djjobs_test_poison BEFORE UPDATE ON djjobs_job FOR EACH ROW
       WHEN (NEW.return_value IS NOT NULL) EXECUTE FUNCTION djjobs_test_poison()""",
]
PG_DROP = [
    "DROP TRIGGER IF EXISTS djjobs_test_poison ON djjobs_job",
    "DROP FUNCTION IF EXISTS djjobs_test_poison()",
]
SQLITE_CREATE = [
    """CREATE TRIGGER djjobs_test_poison BEFORE UPDATE OF return_value ON djjobs_job
       WHEN NEW.return_value IS NOT NULL AND json_type(NEW.return_value, '$.poison') IS NOT NULL
       BEGIN SELECT RAISE(ABORT, 'poisoned return value'); END""",
]
SQLITE_DROP = ["DROP TRIGGER IF EXISTS djjobs_test_poison"]
# MariaDB/MySQL: error 4025 (a CHECK constraint failed), which Django raises as IntegrityError.
MYSQL_CREATE = [
    """CREATE TRIGGER djjobs_test_poison BEFORE UPDATE ON djjobs_job FOR EACH ROW
       BEGIN
           IF NEW.return_value IS NOT NULL AND JSON_CONTAINS_PATH(NEW.return_value, 'one', '$.poison') THEN
               SIGNAL SQLSTATE '23000' SET MYSQL_ERRNO = 4025, MESSAGE_TEXT = 'poisoned return value';
           END IF;
       END""",
]


def _run(statements) -> None:
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


@contextmanager
def poison_trigger():
    """The trigger exists inside the block (committed: worker processes see it)."""
    create, drop = {
        "postgresql": (PG_CREATE, PG_DROP),
        "mysql": (MYSQL_CREATE, SQLITE_DROP),
    }.get(connection.vendor, (SQLITE_CREATE, SQLITE_DROP))
    _run(drop)
    _run(create)
    try:
        yield
    finally:
        _run(drop)
