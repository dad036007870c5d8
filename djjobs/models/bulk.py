"""Insert many jobs fast: COPY on PostgreSQL, one executemany INSERT on SQLite.

The ORM's bulk_create instantiates and adapts every field of every row; here the columns
that are the same for the whole batch are adapted once and only id/args/kwargs per row.
"""

import time
import uuid
from typing import Any

from django.db import connections, router


def insert_jobs(common: dict[str, Any], rows: list[tuple[uuid.UUID, list, dict, str, str]]) -> None:
    """Insert one job per (id, args, kwargs, args JSON text, kwargs JSON text) row; ``common``
    holds the other columns that are set. JSON goes in as the text already encoded (and
    checked) by the backend: both PostgreSQL's jsonb input and SQLite store it as is."""
    from .job import Job

    if not rows:
        return
    connection = connections[router.db_for_write(Job)]
    fields = Job._meta.concrete_fields
    varying = ("id", "args", "kwargs")
    constant = {}
    for f in fields:
        if f.attname not in varying:
            value = common[f.attname] if f.attname in common else f.get_default()
            constant[f.attname] = f.get_db_prep_save(value, connection)
    prep_id = Job._meta.get_field("id").get_db_prep_save
    columns = [f.column for f in fields]
    order = [f.attname for f in fields]
    values = []
    for id_, _args, _kwargs, args_text, kwargs_text in rows:
        row = dict(constant)
        row["id"] = prep_id(id_, connection)
        row["args"] = args_text
        row["kwargs"] = kwargs_text
        values.append([row[name] for name in order])
    table = connection.ops.quote_name(Job._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    if connection.vendor == "postgresql":
        _copy(connection, f"COPY {table} ({names}) FROM STDIN", values)
    else:
        placeholders = ", ".join(["%s"] * len(columns))
        with connection.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders})", values)


def _copy(connection, sql: str, values: list[list]) -> None:
    started = time.monotonic()
    with connection.cursor() as cursor:
        with cursor.cursor.copy(sql) as copy:
            for row in values:
                copy.write_row(row)
    if connection.queries_logged:  # visible to assertNumQueries like any other statement
        connection.queries_log.append({"sql": f"{sql} -- {len(values)} rows", "time": f"{time.monotonic() - started:.3f}"})
