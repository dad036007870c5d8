"""SQL in one place: no module but djjobs/db/statements.py spells the job table's name or a
status literal inside SQL (issue 14, part 3). Migrations are history, written as they were."""

import ast
import re
from pathlib import Path

import pytest

from djjobs.db import statements
from djjobs.states import JobStatus

PACKAGE = Path(statements.__file__).resolve().parents[1]
OWNER = PACKAGE / "db" / "statements.py"

# A string is SQL when it has one of these keywords, upper case, as a word.
_SQL = re.compile(r"\b(SELECT|UPDATE|INSERT\s+INTO|DELETE\s+FROM|COPY|LISTEN|NOTIFY|WHERE|RETURNING)\b")
_TABLE = re.compile(r"\bdjjobs_job\b")
_STATUS = re.compile(r"'(" + "|".join(s.value for s in JobStatus) + r")'")
_STATUS_EQ = re.compile(r"\bstatus\s*(=|<>|!=|IN)\s*\(?\s*'")  # status = '{...}' built around the quote


def _docstrings(tree) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _strings(tree):
    """(line, text) of every string literal but docstrings; an f-string's text with {} for its values."""
    skip = _docstrings(tree)
    parts_of_fstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts_of_fstrings.update(id(v) for v in node.values)
            yield node.lineno, "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in skip
            and id(node) not in parts_of_fstrings
        ):
            yield node.lineno, node.value


def offences(source: str) -> list[tuple[int, str]]:
    """(line, why) for each SQL string in ``source`` that names the table or a status."""
    found = []
    for line, text in _strings(ast.parse(source)):
        if not _SQL.search(text):
            continue
        if _TABLE.search(text):
            found.append((line, "the job table's name"))
        if _STATUS.search(text) or _STATUS_EQ.search(text):
            found.append((line, "a status literal"))
    return found


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts and p != OWNER)


def test_no_module_but_statements_has_the_table_or_a_status_in_sql():
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {why}"
        for path in _modules()
        for line, why in offences(path.read_text())
    ]
    assert not found, "SQL outside djjobs/db/statements.py:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        's = "SELECT id FROM djjobs_job WHERE run_after <= %s"',
        "s = \"UPDATE x SET a = 1 WHERE status = 'READY'\"",
        "s = f\"UPDATE {t} SET a = 1 WHERE status = '{READY.value}'\"",
        's = f"""UPDATE djjobs_job AS j SET status = \'{s}\'"""',
    ],
)
def test_the_check_sees_sql_that_names_the_table_or_a_status(source):
    assert offences(source)


@pytest.mark.parametrize(
    "source",
    [
        '"""A docstring: UPDATE djjobs_job SET status = \'READY\'."""',
        "url = reverse('admin:djjobs_job_changelist')",
        "s = \"status = 'READY' is not SQL without a keyword\"",
        's = f"SELECT id FROM {t} WHERE status = {READY}"',
    ],
)
def test_the_check_leaves_other_strings_alone(source):
    assert not offences(source)


def test_the_statements_take_the_table_from_the_model_and_the_statuses_from_the_enum():
    from django.db import connection

    from djjobs.models import Job

    sql = statements.of(connection)
    table = connection.ops.quote_name(Job._meta.db_table)
    assert sql.table == table and statements.of(connection) is sql  # built once
    assert f"UPDATE {table} AS j SET status = '{JobStatus.SUCCESSFUL.value}'" in sql.SUCCESSES_PG
    assert f"status = '{JobStatus.READY.value}'" in sql.claim_pg(queues=True, direct=True)
    assert sql.claim_pg(False, False) is sql.claim_pg(False, False)
    assert sql.unclaim_sqlite(3) is sql.unclaim_sqlite(3) and sql.unclaim_sqlite(3).count("(%s, %s)") == 3
