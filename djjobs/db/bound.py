"""Statements on the hot paths, executed on one server-side-binding cursor per PostgreSQL connection.

``connection.cursor().execute()`` makes a cursor per statement and, with Django's default
client-side binding, quotes every parameter into the SQL text (arrays element by element).
For a single enqueue that is about a quarter of the client's time; for a batched completion,
most of it. ``execute()`` does the same checks and error translation as Django's cursor, on a
cursor kept for the connection, with the parameters sent apart from the SQL (psycopg's binary
dumpers). Prepared statements follow the connection's setting: Django turns psycopg's off
(``prepare_threshold`` None, so this works behind PgBouncer in transaction mode); a project that
sets ``OPTIONS["prepare_threshold"]`` gets these statements prepared like its own.

``run()`` uses it only when ``usable()``: PostgreSQL, the speed-ups on (djjobs.db.fast, where the
kept cursor itself lives), and nobody watches the connection's statements; with an
``execute_wrapper`` (APM, debug toolbar) or the query log (DEBUG, assertNumQueries) it goes
through Django's cursor, so they see the statement as usual.
"""

from typing import Any, Literal, overload

from django.db.backends.base.base import BaseDatabaseWrapper

from . import fast


def usable(connection: BaseDatabaseWrapper) -> bool:
    return (
        connection.vendor == "postgresql"
        and not connection.execute_wrappers
        and not connection.queries_logged
        and fast.enabled()
    )


@overload
def run(connection: BaseDatabaseWrapper, sql: str, params: Any, fetch: Literal[True]) -> list[Any]: ...


@overload
def run(connection: BaseDatabaseWrapper, sql: str, params: Any, fetch: Literal[False] = False) -> None: ...


def run(connection: BaseDatabaseWrapper, sql: str, params: Any, fetch: bool = False) -> list[Any] | None:
    """Execute ``sql`` on the kept cursor when usable(), else through Django's cursor;
    with ``fetch``, return the rows."""
    if usable(connection):
        kept = fast.execute(connection, sql, params)
        return kept.fetchall() if fetch else None
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if fetch else None
