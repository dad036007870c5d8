"""Insert jobs fast: one INSERT for a single job, COPY for many on PostgreSQL (executemany on SQLite).

The ORM instantiates a model and compiles SQL for each row; here the columns that are the
same for the whole batch are adapted once and only id/args/kwargs per row. On PostgreSQL the
COPY text is written directly, with the constant columns spelled once.
"""

import json
import time
import uuid
from datetime import datetime
from typing import Any

from django.db import connections, router


# From this many rows on, PostgreSQL gets COPY; fewer go as INSERT (COPY's extra round trips
# cost more than it saves on a handful of rows).
COPY_FROM_ROWS = 20


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
    if connection.vendor == "postgresql" and len(rows) >= COPY_FROM_ROWS:
        tail = _copy_tail(constant, [name for name in order if name not in varying])
        if tail is not None:
            rest = [f.column for f in fields if f.attname not in varying]
            names = ", ".join(connection.ops.quote_name(c) for c in ("id", "args", "kwargs", *rest))
            lines = (
                f"{id_}\t{_copy_escape(args_text)}\t{_copy_escape(kwargs_text)}\t{tail}\n"
                for id_, _args, _kwargs, args_text, kwargs_text in rows
            )
            _copy_text(connection, f"COPY {table} ({names}) FROM STDIN", lines, len(rows))
            return
    values = []
    for id_, _args, _kwargs, args_text, kwargs_text in rows:
        row = dict(constant)
        row["id"] = prep_id(id_, connection)
        row["args"] = args_text
        row["kwargs"] = kwargs_text
        values.append([row[name] for name in order])
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    if connection.vendor == "postgresql" and len(rows) >= COPY_FROM_ROWS:
        _copy(connection, f"COPY {table} ({names}) FROM STDIN", values)
        return
    placeholders = ", ".join(["%s"] * len(columns))
    with connection.cursor() as cursor:
        if len(values) == 1:
            cursor.execute(f"INSERT INTO {table} ({names}) VALUES ({placeholders})", values[0])
        else:
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders})", values)


# COPY's text format: columns separated by tabs, rows by newlines, NULL as \N, and these
# characters escaped with a backslash.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_escape(text: str) -> str:
    # JSON text never holds raw control characters (json.dumps escapes them): only backslashes.
    return text.translate(_COPY_ESCAPES) if "\\" in text else text


def _copy_tail(constant: dict, names: list) -> str | None:
    """The columns that are the same on every row, as one piece of COPY text; None when a
    value is of a kind this does not spell (the row-by-row path then handles it)."""
    from psycopg.types.json import Json, Jsonb

    cells = []
    for name in names:
        value = constant[name]
        if value is None:
            cells.append("\\N")
        elif isinstance(value, bool):
            cells.append("t" if value else "f")
        elif isinstance(value, int):  # psycopg's Int2 etc. too
            cells.append(str(int(value)))
        elif isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                return None
            cells.append(repr(float(value)))
        elif isinstance(value, str):
            cells.append(value.translate(_COPY_ESCAPES))
        elif isinstance(value, datetime) and value.tzinfo is not None:
            cells.append(value.isoformat())
        elif isinstance(value, uuid.UUID):
            cells.append(str(value))
        elif isinstance(value, (Json, Jsonb)):
            text = (value.dumps or json.dumps)(value.obj)
            text = text.decode() if isinstance(text, (bytes, bytearray, memoryview)) and not isinstance(text, str) else text
            cells.append(str(text).translate(_COPY_ESCAPES))
        else:
            return None
    return "\t".join(cells)


def _copy_text(connection, sql: str, lines, count: int) -> None:
    started = time.monotonic()
    with connection.cursor() as cursor:
        with cursor.cursor.copy(sql) as copy:
            chunk = []
            for line in lines:
                chunk.append(line)
                if len(chunk) == 1000:
                    copy.write("".join(chunk))
                    chunk = []
            if chunk:
                copy.write("".join(chunk))
    if connection.queries_logged:  # visible to assertNumQueries like any other statement
        connection.queries_log.append({"sql": f"{sql} -- {count} rows", "time": f"{time.monotonic() - started:.3f}"})


def _copy(connection, sql: str, values: list[list]) -> None:
    started = time.monotonic()
    with connection.cursor() as cursor:
        with cursor.cursor.copy(sql) as copy:
            for row in values:
                copy.write_row(row)
    if connection.queries_logged:  # visible to assertNumQueries like any other statement
        connection.queries_log.append({"sql": f"{sql} -- {len(values)} rows", "time": f"{time.monotonic() - started:.3f}"})
