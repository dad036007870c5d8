"""Counting a job table of millions of rows without COUNT(*) over it.

Three kinds of number, and the admin says which one it shows:

- **exact**: a *bounded* count, ``SELECT COUNT(*) FROM (SELECT ... LIMIT limit + 1)``, that
  stayed under its limit. It reads at most ``limit + 1`` index entries, whatever the table size.
- **estimate** (``~``, PostgreSQL): the planner's statistics. The table's size is
  ``pg_class.reltuples`` scaled by how much the table grew since the last ANALYZE (as the
  planner itself does); a status's share is its frequency in ``pg_stats``; a filtered list's
  size is the row estimate of ``EXPLAIN``. Cheap, refreshed by (auto)ANALYZE.
- **at least** (``+``): a bounded count that reached its limit where no estimate exists
  (SQLite), shown as ``10,000+``.
"""

import json
from dataclasses import dataclass

from django.db import connections, router

from ..db import statements
from .display import count_text

# The dashboard's counts stop here: exact below, estimated (or "at least") above. (The job
# list has its own, lower limit: see djjobs.admin.paginator.)
COUNT_LIMIT = 10_000

EXACT, ESTIMATE, AT_LEAST = "exact", "estimate", "at_least"


@dataclass(frozen=True)
class Tally:
    value: int
    kind: str = EXACT

    @property
    def exact(self) -> bool:
        return self.kind == EXACT

    def __str__(self) -> str:
        return count_text(self.value, self.kind)


def limit() -> int:
    """COUNT_LIMIT, read at call time (tests lower it)."""
    return COUNT_LIMIT


def bounded(queryset, limit: int) -> int:
    """How many rows ``queryset`` has, counting no further than ``limit + 1``."""
    return queryset.order_by().values("pk")[: limit + 1].count()


def settle(counted: int, estimate: int | None, limit: int) -> Tally:
    """A bounded count; past its limit the estimate, unless there is none or it is below what
    was counted (then the planner is wrong, and "at least the limit" is what is known)."""
    if counted <= limit:
        return Tally(counted)
    if estimate is None or estimate <= limit:
        return Tally(limit, AT_LEAST)
    return Tally(estimate, ESTIMATE)


def _connection(model):
    return connections[router.db_for_read(model)]


def table_estimate(model) -> int | None:
    """PostgreSQL's estimate of the table's rows; None elsewhere, or if never analyzed."""
    connection = _connection(model)
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(statements.TABLE_ESTIMATE, [connection.ops.quote_name(model._meta.db_table)])
        row = cursor.fetchone()
    return None if row is None or row[0] is None else int(row[0])


def column_estimates(model, columns) -> dict[str, dict[str, int]]:
    """PostgreSQL: {column: {value: estimated rows}} for the most common values of each of
    ``columns`` (their frequency in ``pg_stats`` times the table estimate), in one query; {}
    elsewhere, or before the table was analyzed."""
    connection = _connection(model)
    if connection.vendor != "postgresql":
        return {}
    found: dict[str, dict[str, int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            statements.COLUMN_ESTIMATES,
            [connection.ops.quote_name(model._meta.db_table), model._meta.db_table, list(columns)],
        )
        for column, value, rows in cursor.fetchall():
            if rows is not None:
                found.setdefault(column, {})[value] = int(rows)
    return found


def plan_rows(queryset) -> int | None:
    """PostgreSQL: the planner's row estimate for ``queryset`` (EXPLAIN, nothing is run)."""
    if _connection(queryset.model).vendor != "postgresql":
        return None
    plan = json.loads(queryset.order_by().explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])
