"""Insert jobs fast: one INSERT for a single job, COPY for many on PostgreSQL, multi-row INSERTs on
MariaDB/MySQL (executemany on SQLite).

The ORM instantiates a model and compiles SQL for each row; here the columns that are the
same for the whole batch are adapted once and only id/args/kwargs per row. On PostgreSQL the
COPY text is written directly, with the constant columns spelled once.
"""

import json
import time
import uuid
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from datetime import datetime
from typing import Any, cast

from django.db import connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from ..models.job import Job
from . import bound, fast, statements

# From this many rows on, PostgreSQL gets COPY; fewer go as INSERT (COPY's extra round trips
# cost more than it saves on a handful of rows).
COPY_FROM_ROWS = 20


def insert_jobs(
    common: dict[str, Any], rows: Sequence[tuple[uuid.UUID | str, list[Any], dict[str, Any], str, str]]
) -> None:
    """Insert one job per (id, args, kwargs, args JSON text, kwargs JSON text) row; ``common``
    holds the other columns that are set. JSON goes in as the text already encoded (and
    checked) by the backend: both PostgreSQL's jsonb input and SQLite store it as is."""
    if not rows:
        return
    connection = connections[router.db_for_write(Job)]
    plan = _plan(connection, frozenset(common))
    constant = plan.prepare(common, connection)
    constant.update(plan.defaults)
    for name, field in plan.computed:
        constant[name] = field.get_db_prep_save(field.get_default(), connection)
    if connection.vendor == "postgresql" and len(rows) >= COPY_FROM_ROWS and fast.enabled():
        tail = _copy_tail(constant, plan.constant_names)
        if tail is not None:
            lines = (
                f"{id_}\t{_copy_escape(args_text)}\t{_copy_escape(kwargs_text)}\t{tail}\n"
                for id_, _args, _kwargs, args_text, kwargs_text in rows
            )
            _copy_text(connection, plan.copy_sql, lines, len(rows))
            return
    fixed = [constant[name] for name in plan.param_names]
    values = [
        [plan.prep_id(id_, connection), args_text, kwargs_text, *fixed]
        for id_, _args, _kwargs, args_text, kwargs_text in rows
    ]
    if len(values) == 1:
        bound.run(connection, plan.insert_sql, values[0])
        return
    if connection.vendor == "mysql":
        _insert_rows_mysql(connection, plan, values)
        return
    with connection.cursor() as cursor:
        cursor.executemany(plan.insert_sql, values)


# MariaDB/MySQL: rows per multi-row INSERT, and the JSON text (args, kwargs) one may carry, well
# under the servers' default max_allowed_packet (16 MiB on MariaDB 10.11, 64 MiB on MySQL 8).
MYSQL_ROWS_PER_INSERT = 500
MYSQL_BYTES_PER_INSERT = 4 * 1024 * 1024


def _insert_rows_mysql(connection: BaseDatabaseWrapper, plan: Any, values: list[Any]) -> None:
    """Many rows in multi-row INSERTs (no COPY on MariaDB/MySQL; mysqlclient's executemany makes
    one only of an INSERT whose VALUES are all placeholders, and the plan writes constants as
    literals). One statement is atomic by itself; several run in one transaction: all the rows
    or none, as one COPY."""
    chunks, chunk, size = [], [], 0
    for row in values:
        chunk.append(row)
        size += len(row[1]) + len(row[2])
        if len(chunk) >= MYSQL_ROWS_PER_INSERT or size >= MYSQL_BYTES_PER_INSERT:
            chunks.append(chunk)
            chunk, size = [], 0
    if chunk:
        chunks.append(chunk)
    sql = statements.of(connection)
    with transaction.atomic(using=connection.alias) if len(chunks) > 1 else nullcontext():
        with connection.cursor() as cursor:
            for rows in chunks:
                cursor.execute(sql.insert_jobs_rows(plan.insert_columns, plan.insert_cells, len(rows)), _flat(rows))


def _flat(rows: list) -> list:
    return [value for row in rows for value in row]


class _Plan:
    """How jobs with a given set of ``common`` columns are inserted on one connection: the
    column lists and the INSERT text (defaults that are plain constants written in it as
    literals, so they are neither adapted nor sent per row), made once and cached."""

    def __init__(self, connection: BaseDatabaseWrapper, given_names: frozenset[str]) -> None:
        quote = connection.ops.quote_name
        varying = ("id", "args", "kwargs")
        fields = [f for f in Job._meta.concrete_fields if f.attname not in varying]
        self.prep_id = Job._meta.get_field("id").get_db_prep_save
        self.given = [(f.attname, f) for f in fields if f.attname in given_names]
        # The given values that are the same from one enqueue to the next (the task's path,
        # queue, options...) are adapted once per distinct set of values; times every time.
        self.given_times = [(n, f) for n, f in self.given if isinstance(f, models.DateTimeField)]
        self.given_static = [(n, f) for n, f in self.given if not isinstance(f, models.DateTimeField)]
        self._prepared: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.computed: list[tuple[str, models.Field[Any, Any]]] = []
        self.defaults: dict[str, Any] = {}
        literals: dict[str, str] = {}
        for f in fields:
            if f.attname in given_names:
                continue
            if f.has_default() and callable(f.default) and f.default not in (list, dict):
                self.computed.append((f.attname, f))  # a default made per insert (none today)
                continue
            value = f.get_db_prep_save(f.get_default(), connection)
            self.defaults[f.attname] = value
            literal = _sql_literal(value, connection)
            if literal is not None:
                literals[f.attname] = literal
        self.constant_names = [f.attname for f in fields]
        self.param_names = [f.attname for f in fields if f.attname not in literals]
        # A concrete field has its column (Field.column is None only for fields without one).
        column = {f.attname: cast(str, f.column) for f in fields}
        self.copy_columns = ", ".join(quote(c) for c in (*varying, *(column[f.attname] for f in fields)))
        names = ", ".join(
            quote(c)
            for c in (
                *varying,
                *(column[f.attname] for f in fields if f.attname not in literals),
                *(column[f.attname] for f in fields if f.attname in literals),
            )
        )
        cells = ["%s"] * (3 + len(self.param_names)) + [literals[f.attname] for f in fields if f.attname in literals]
        sql = statements.of(connection)
        self.insert_columns, self.insert_cells = names, ", ".join(cells)
        self.insert_sql = sql.insert_jobs(names, self.insert_cells)
        self.copy_sql = sql.copy_jobs(self.copy_columns)

    def prepare(self, common: dict[str, Any], connection: BaseDatabaseWrapper) -> dict[str, Any]:
        """``common``'s values as the driver takes them (Field.get_db_prep_save)."""
        try:
            key = tuple((type(value), value) for value in (common[name] for name, _field in self.given_static))
            static = self._prepared.get(key)
        except TypeError:  # an unhashable value (a dict for a JSON column): adapt it each time
            key, static = None, None
        if static is None:
            static = {name: field.get_db_prep_save(common[name], connection) for name, field in self.given_static}
            if key is not None:
                if len(self._prepared) >= 256:
                    self._prepared.clear()
                self._prepared[key] = static
        prepared = dict(static)
        for name, field in self.given_times:
            prepared[name] = field.get_db_prep_save(common[name], connection)
        return prepared


_plans: dict[tuple[str, str, frozenset[str]], _Plan] = {}


def _plan(connection: BaseDatabaseWrapper, given_names: frozenset[str]) -> _Plan:
    key = (connection.alias, connection.vendor, given_names)
    plan = _plans.get(key)
    if plan is None:
        plan = _plans[key] = _Plan(connection, given_names)
    return plan


def _sql_literal(value: Any, connection: BaseDatabaseWrapper) -> str | None:
    """``value`` as an SQL literal when it is a plain constant; None otherwise (sent as a parameter)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return ("TRUE" if value else "FALSE") if connection.vendor == "postgresql" else str(int(value))
    if isinstance(value, int):
        return str(int(value))
    if connection.vendor == "postgresql" and _is_psycopg_json(value):
        text, cast = _json_text(value), "::jsonb"
    elif isinstance(value, str):
        text, cast = value, ""
    else:
        return None
    # Short and free of "%" (the driver's placeholder sign), or it stays a parameter.
    return _quote(text) + cast if len(text) < 100 and "%" not in text else None


def _is_psycopg_json(value: Any) -> bool:
    """Whether ``value`` is psycopg's Json/Jsonb wrapper (imported only on PostgreSQL: a SQLite
    site need not have psycopg)."""
    from psycopg.types.json import Json, Jsonb  # PostgreSQL only: a SQLite site need not have psycopg

    return isinstance(value, (Json, Jsonb))


def _json_text(value: Any) -> str:
    """The JSON text of psycopg's Json/Jsonb wrapper (what Django's JSONField hands the driver)."""
    text = (value.dumps or json.dumps)(value.obj)
    return bytes(text).decode() if isinstance(text, (bytes, bytearray, memoryview)) else text


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# COPY's text format: columns separated by tabs, rows by newlines, NULL as \N, and these
# characters escaped with a backslash.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_escape(text: str) -> str:
    # JSON text never holds raw control characters (json.dumps escapes them): only backslashes.
    return text.translate(_COPY_ESCAPES) if "\\" in text else text


def _copy_tail(constant: dict[str, Any], names: list[str]) -> str | None:
    """The columns that are the same on every row, as one piece of COPY text; None when a
    value is of a kind this does not spell (the row-by-row path then handles it)."""
    from psycopg.types.json import Json, Jsonb  # PostgreSQL only: a SQLite site need not have psycopg

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
            cells.append(_json_text(value).translate(_COPY_ESCAPES))
        else:
            return None
    return "\t".join(cells)


def _copy_text(connection: BaseDatabaseWrapper, sql: str, lines: Iterable[str], count: int) -> None:
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
