"""Every raw SQL statement of djjobs, by name, in one place.

The rest of the package writes through the ORM; these are the statements it cannot (the claim's
``FOR UPDATE SKIP LOCKED`` CTE, the batched completion of three unnested arrays, the give-back of
prefetched jobs, the fast INSERT and COPY, LISTEN) or should not (the index-bounded counts of the
health endpoint, the metrics and the dashboard, the planner's estimates) express in it.

The job table's name comes from ``Job._meta.db_table`` (quoted by the connection), every status
from ``JobStatus``: no other module spells either inside SQL (tests/unit/test_sql_in_one_place.py).
Statuses are written as literals, not parameters: that lets SQLite (and PostgreSQL's generic
plans) use the partial claim index ``WHERE status = 'READY'``.

Each text is built once per process and database vendor (``of(connection)``, cached), then only
looked up: the hot paths (claim, batched completion, give-back) pay a dict lookup, not a format.
Statements whose number of placeholders depends on the call (a list of queues, of ids) are cached
per shape in a bounded dict.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..models.job import Job
from ..states import JobStatus

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

# SQL literals of the statuses, from the enum: 'READY', 'RUNNING', ...
READY, RUNNING, SUCCESSFUL, FAILED, CANCELLED, WAITING = (
    f"'{s.value}'"
    for s in (
        JobStatus.READY,
        JobStatus.RUNNING,
        JobStatus.SUCCESSFUL,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
        JobStatus.WAITING,
    )
)

# -- vendor-independent statements ----------------------------------------------------------------

# SQLite's claim transaction (one writer at a time).
BEGIN_IMMEDIATE = "BEGIN IMMEDIATE"
COMMIT = "COMMIT"
ROLLBACK = "ROLLBACK"

# PostgreSQL with DJJOBS['ASYNC_COMMIT']: commits that do not wait for the WAL flush, for this
# transaction only (a workflow step's completion) or for the worker's own connection.
RELAX_THIS_TRANSACTION = "SET LOCAL synchronous_commit TO off"
RELAX_CONNECTION = "SET synchronous_commit TO off"

# FIFO order on PostgreSQL: the sequence of migration 0009.
FIFO_NEXTVAL = "SELECT nextval('djjobs_fifo_seq')"

# Flow control's claims on PostgreSQL take turns (one transaction-scoped advisory lock): what a
# claim counts (running jobs, recent starts) stays true until it commits what it claimed.
FLOW_LOCK = "SELECT pg_advisory_xact_lock(%s)"
FLOW_LOCK_ID = 0x646A6A6F6273  # "djjobs"

# MariaDB/MySQL have no transaction-scoped advisory lock: a named lock of the session, taken
# before the limited claim's transaction and released after it (djjobs.worker.gate). Parameters:
# the name, and how long to wait for it (seconds).
FLOW_LOCK_MYSQL = "SELECT GET_LOCK(%s, %s)"
FLOW_UNLOCK_MYSQL = "SELECT RELEASE_LOCK(%s)"
FLOW_LOCK_NAME = "djjobs.flow"
FLOW_LOCK_WAIT = 30

# LISTEN/NOTIFY: the channel the trigger of migration 0002 notifies (payload: the queue's name).
NOTIFY_CHANNEL = "djjobs"
LISTEN = f"LISTEN {NOTIFY_CHANNEL}"

# PostgreSQL's estimate of a table's rows (parameter: the quoted table name). reltuples is -1
# before the first ANALYZE (PostgreSQL 14+) and 0 with relpages 0 on an empty table; the density
# (rows per page) times the table's current pages follows growth since.
TABLE_ESTIMATE = """
SELECT CASE WHEN c.reltuples < 0 THEN NULL
            WHEN c.relpages = 0 THEN c.reltuples
            ELSE c.reltuples / c.relpages
                 * (pg_relation_size(c.oid) / current_setting('block_size')::int) END
FROM pg_class c WHERE c.oid = to_regclass(%s)
"""

# {column: {value: estimated rows}} from pg_stats' most common values (parameters: the quoted
# table name, the table name, the column names).
COLUMN_ESTIMATES = f"""
SELECT s.attname, v.value, v.freq * t.n FROM ({TABLE_ESTIMATE.strip()}) AS t(n)
CROSS JOIN pg_stats s
CROSS JOIN LATERAL unnest(s.most_common_vals::text::text[], s.most_common_freqs) AS v(value, freq)
WHERE s.schemaname = current_schema() AND s.tablename = %s AND s.attname = ANY(%s)
"""

# The claim's columns, in ClaimedJob's order (SQLite returns them as stored).
CLAIM_COLUMNS = (
    "id, task_path, backend, queue_name, priority, args, kwargs, takes_context, run_after, "
    "enqueued_at, started_at, last_attempted_at, attempts, max_attempts, retry_backoff, "
    "timeout, errors, worker_ids, checkpoint, workflow_run_id, claimed_ahead, fifo_key"
)

# PostgreSQL returns less than CLAIM_COLUMNS where the claim itself knows the value: NULL for
# last_attempted_at (it is the claim's now), for started_at and worker_ids on a first attempt
# (now, [worker]) and for errors while there are none. Fewer timestamps and JSON documents to
# decode per job; worker.claim fills them in.
CLAIM_RETURNING_PG = (
    "j.id, j.task_path, j.backend, j.queue_name, j.priority, j.args::text, j.kwargs::text, j.takes_context, "
    "j.run_after, j.enqueued_at, CASE WHEN j.attempts > 1 THEN j.started_at END, NULL, j.attempts, "
    "j.max_attempts, j.retry_backoff, j.timeout, NULLIF(j.errors, '[]'::jsonb), "
    "CASE WHEN j.attempts > 1 THEN j.worker_ids END, j.checkpoint, j.workflow_run_id, j.claimed_ahead, j.fifo_key"
)

# The plain claim takes free jobs only: jobs under a concurrency or rate limit are claimed by
# djjobs.worker.gate (this is also the limited claim index's condition, negated).
FREE = "concurrency_key IS NULL AND rate_key IS NULL"

_SHAPES_KEPT = 256  # statements cached per shape (number of placeholders), per vendor


def _placeholders(n: int) -> str:
    return ", ".join(["%s"] * n)


class Statements:
    """The statements on the job table for one database vendor; made by ``of()``, once."""

    def __init__(self, table: str):
        t = self.table = table  # quoted

        # -- claim (READY -> RUNNING), PostgreSQL: one statement, FOR UPDATE SKIP LOCKED in a CTE.
        # Eight variants: with or without a queue filter, with or without the direct/ahead split,
        # with or without queues to skip (paused or limited).
        self._claim_pg = {
            (queues, direct, skip): self._make_claim_pg(queues, direct, skip)
            for queues in (False, True)
            for direct in (False, True)
            for skip in (False, True)
        }
        # The limited claim's UPDATE (djjobs.worker.gate chose the ids, in claim order): as the
        # claim's, the first `direct` to idle threads, the others claimed ahead. Parameters as
        # claim_pg's, ids (a list of UUIDs) and direct.
        self.CLAIM_IDS_PG = f"""
        UPDATE {t} AS j SET
            {_CLAIM_SET_PG},
            claimed_ahead = picked.n > %(direct)s
        FROM unnest(%(ids)s::uuid[]) WITH ORDINALITY AS picked(id, n)
        WHERE j.id = picked.id AND j.status = {READY}
        RETURNING {CLAIM_RETURNING_PG}
    """

        # -- batched completion of successes (RUNNING -> SUCCESSFUL), PostgreSQL. Three arrays,
        # not a VALUES row per job: the text is the same for every batch, so the driver parses it
        # once, and there are 3 parameters, not 3 per job.
        self.SUCCESSES_PG = f"""UPDATE {t} AS j SET status = {SUCCESSFUL}, return_value = v.rv, finished_at = %s,
                        lease_token = NULL, lease_expires_at = NULL
                    FROM unnest(%s::text[]::uuid[], %s::text[]::uuid[], %s::text[]::jsonb[]) AS v(id, token, rv)
                    WHERE j.id = v.id AND j.status = {RUNNING} AND j.lease_token = v.token
                    RETURNING j.id::text"""

        # -- FIFO: the next job of each of these keys (parameter: the keys) WAITING -> READY, for
        # the keys no job holds any more (READY, RUNNING, or FAILED with fifo_hold); in the
        # transaction of the completions that ended their jobs. The partial unique index
        # djjobs_job_fifo_active_key stays the judge: a violation means a concurrent enqueuer
        # made the key's READY job, and the caller releases key by key (lifecycle.finish).
        # Each key's first waiting job is one probe of the partial index djjobs_job_fifo_waiting_idx.
        self.RELEASE_FIFO_PG = f"""UPDATE {t} AS j SET status = {READY}
                    FROM (SELECT next.id FROM unnest(%s::text[]) AS k(key)
                          CROSS JOIN LATERAL (SELECT id FROM {t} WHERE status = {WAITING} AND fifo_key = k.key
                                              ORDER BY fifo_seq, id LIMIT 1) AS next) AS following
                    WHERE j.id = following.id AND j.status = {WAITING}
                      AND NOT EXISTS (SELECT 1 FROM {t} AS h WHERE h.fifo_key = j.fifo_key
                                      AND (h.status IN ({READY}, {RUNNING}) OR (h.status = {FAILED} AND h.fifo_hold)))"""

        # -- the read model's counts (djjobs.db.counts), each read through an index.
        # Per priority with READY jobs (a loose index scan of the claim index: one probe each),
        # the first job in claim order: its id and run_after.
        self.READY_HEADS = f"""
WITH RECURSIVE p(v) AS (
    SELECT MAX(priority) FROM {t} WHERE status = {READY}
    UNION ALL
    SELECT (SELECT MAX(priority) FROM {t} WHERE status = {READY} AND priority < p.v)
    FROM p WHERE p.v IS NOT NULL
)
SELECT v,
       (SELECT id FROM {t} WHERE status = {READY} AND priority = p.v ORDER BY run_after, id LIMIT 1),
       (SELECT MIN(run_after) FROM {t} WHERE status = {READY} AND priority = p.v)
FROM p WHERE v IS NOT NULL
"""
        # Due jobs per queue among the first %s in claim order: what a claim would read.
        self.DUE_BY_QUEUE = f"""
SELECT queue_name, COUNT(*) FROM (
    SELECT queue_name FROM {t} WHERE status = {READY} AND run_after <= %s
    ORDER BY priority DESC, run_after, id LIMIT %s
) AS next_due GROUP BY queue_name
"""
        # The rows of jobs of one status finished since %s, at most %s of them (the (status,
        # finished_at) index): "failed in the last hour" for health, metrics and the dashboard.
        succeeded_since = f"SELECT queue_name FROM {t} WHERE status = {SUCCESSFUL} AND finished_at >= %s LIMIT %s"
        failed_since = f"SELECT queue_name FROM {t} WHERE status = {FAILED} AND finished_at >= %s LIMIT %s"
        self.FAILED_SINCE = f"SELECT COUNT(*) FROM ({failed_since}) AS failed_since"
        # Each part reads at most %s rows of one status through an index and is aggregated on
        # its own: READY, RUNNING and WAITING per queue, READY split into due and later;
        # SUCCESSFUL and FAILED since a time per queue; the other statuses' totals from index
        # entries alone. Parameters: now, limit, now, limit x5, since, limit, since, limit.
        self.BOUNDED_COUNTS = f"""
SELECT {READY}, queue_name, CASE WHEN run_after <= %s THEN 1 ELSE 0 END, COUNT(*)
  FROM (SELECT queue_name, run_after FROM {t} WHERE status = {READY} LIMIT %s) AS ready
  GROUP BY queue_name, CASE WHEN run_after <= %s THEN 1 ELSE 0 END
UNION ALL SELECT {RUNNING}, queue_name, 0, COUNT(*)
  FROM (SELECT queue_name FROM {t} WHERE status = {RUNNING} LIMIT %s) AS running GROUP BY queue_name
UNION ALL SELECT {WAITING}, queue_name, 0, COUNT(*)
  FROM (SELECT queue_name FROM {t} WHERE status = {WAITING} LIMIT %s) AS waiting GROUP BY queue_name
UNION ALL SELECT {FAILED}, NULL, 0, COUNT(*) FROM (SELECT 1 AS one FROM {t} WHERE status = {FAILED} LIMIT %s) AS failed
UNION ALL SELECT {CANCELLED}, NULL, 0, COUNT(*)
  FROM (SELECT 1 AS one FROM {t} WHERE status = {CANCELLED} LIMIT %s) AS cancelled
UNION ALL SELECT {SUCCESSFUL}, NULL, 0, COUNT(*)
  FROM (SELECT 1 AS one FROM {t} WHERE status = {SUCCESSFUL} LIMIT %s) AS succeeded
UNION ALL SELECT 'SUCCESSFUL_HOUR', queue_name, 0, COUNT(*)
  FROM ({succeeded_since}) AS succeeded_hour
  GROUP BY queue_name
UNION ALL SELECT 'FAILED_HOUR', queue_name, 0, COUNT(*)
  FROM ({failed_since}) AS failed_hour
  GROUP BY queue_name
"""
        # The latest failures since %s (newest first on the (status, finished_at) index, at most
        # %s of them), by task: the %s tasks with most.
        self.TOP_FAILING = f"""
SELECT task_path, COUNT(*), MAX(finished_at) FROM (
    SELECT task_path, finished_at FROM {t} WHERE status = {FAILED} AND finished_at >= %s
    ORDER BY finished_at DESC LIMIT %s
) AS recent GROUP BY task_path ORDER BY COUNT(*) DESC, MAX(finished_at) DESC LIMIT %s
"""
        # FIFO on SQLite: the key's last number plus one (writers take turns).
        # Monotonic per key: the key's last number (the index djjobs_job_fifo_idx) plus one.
        self.FIFO_NEXT_SEQ = f"SELECT COALESCE(MAX(fifo_seq), 0) + 1 FROM {t} WHERE fifo_key = %s"
        self._shapes: dict[tuple[Any, ...], str] = {}

    # -- claim -----------------------------------------------------------------------------------

    def claim_pg(self, queues: bool, direct: bool, skip: bool = False) -> str:
        """The PostgreSQL claim of free jobs; named parameters now, limit, worker, worker_json,
        token, expires, and queues (with ``queues``), direct (with ``direct``: how many go to
        idle threads), skip (with ``skip``: queues left alone, paused or limited)."""
        return self._claim_pg[queues, direct, skip]

    def _make_claim_pg(self, queues: bool, direct: bool, skip: bool) -> str:
        t = self.table
        queue_filter = "AND queue_name = ANY(%(queues)s)" if queues else ""
        if skip:
            queue_filter += " AND queue_name <> ALL(%(skip)s)"
        if not direct:
            ahead, numbered, source = "FALSE", "", "picked"
        else:
            # The first `direct` rows in claim order go to idle threads; the rest are claimed ahead.
            # (Window functions cannot share a SELECT with FOR UPDATE: they number the locked rows.)
            ahead = "picked.n > %(direct)s"
            numbered = """, numbered AS (
            SELECT id, row_number() OVER (ORDER BY priority DESC, run_after, id) AS n FROM locked
        )"""
            source = "numbered AS picked"
        return f"""
        WITH {"locked" if direct else "picked"} AS (
            SELECT id{", priority, run_after" if direct else ""} FROM {t}
            WHERE status = {READY} AND run_after <= %(now)s AND {FREE} {queue_filter}
            ORDER BY priority DESC, run_after, id
            LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
        ){numbered}
        UPDATE {t} AS j SET
            {_CLAIM_SET_PG},
            claimed_ahead = {ahead}
        FROM {source} WHERE j.id = picked.id
        RETURNING {CLAIM_RETURNING_PG}
    """

    def claim_select_sqlite(self, queues: int, skip: int = 0) -> str:
        """SQLite's claim, part 1 (in BEGIN IMMEDIATE): the ids of the due free jobs in claim
        order. Parameters: now, ``queues`` queue names, ``skip`` queue names left alone, limit."""
        return self._shape(
            ("claim_select", queues, skip),
            lambda: (
                f"""SELECT id FROM {self.table}
                    WHERE status = {READY} AND run_after <= %s AND {FREE} {_in_list("queue_name", queues)}
                    {_in_list("queue_name", skip, "NOT IN")}
                    ORDER BY priority DESC, run_after, id LIMIT %s"""
            ),
        )

    def claim_update_sqlite(self, first: int, ids: int) -> str:
        """SQLite's claim, part 2: those ``ids`` READY -> RUNNING, the ``first`` of them (0: all)
        to idle threads, the others claimed ahead. Parameters: now, now, worker, worker, token,
        expires, ``first`` ids, ``ids`` ids."""

        def make() -> str:
            ahead = f"id NOT IN ({_placeholders(first)})" if first else "1"
            return f"""UPDATE {self.table} SET
                        status = {RUNNING}, attempts = attempts + 1,
                        started_at = COALESCE(started_at, %s), last_attempted_at = %s,
                        worker_id = %s, worker_ids = json_insert(worker_ids, '$[#]', %s),
                        lease_token = %s, lease_expires_at = %s,
                        claimed_ahead = {ahead}
                        WHERE status = {READY} AND id IN ({_placeholders(ids)})
                        RETURNING {CLAIM_COLUMNS}"""

        return self._shape(("claim_update", first, ids), make)

    def claim_select_mysql(self, queues: int, skip: int = 0) -> str:
        """MariaDB/MySQL's claim, part 1 (in a transaction): the ids of the due free jobs in claim
        order, locked, skipping rows other claims hold (the index djjobs_job_claim_status_idx of
        migration 0010 is read in this order). Parameters as claim_select_sqlite's."""
        return self._shape(
            ("claim_select_mysql", queues, skip),
            lambda: self.claim_select_sqlite(queues, skip) + " FOR UPDATE SKIP LOCKED",
        )

    def claim_update_mysql(self, first: int, ids: int) -> str:
        """MariaDB/MySQL's claim, part 2: as claim_update_sqlite, without RETURNING (neither has
        UPDATE ... RETURNING): claim_rows_mysql reads the rows back in the same transaction.
        ``first == ids``: every job goes to an idle thread, and the ``first`` ids are not parameters."""

        def make() -> str:
            # All direct (first == ids: no parameters for them), none, or the ``first``.
            ahead = "0" if first == ids else f"id NOT IN ({_placeholders(first)})" if first else "1"
            return f"""UPDATE {self.table} SET
                        status = {RUNNING}, attempts = attempts + 1,
                        started_at = COALESCE(started_at, %s), last_attempted_at = %s,
                        worker_id = %s, worker_ids = JSON_ARRAY_APPEND(worker_ids, '$', %s),
                        lease_token = %s, lease_expires_at = %s,
                        claimed_ahead = {ahead}
                        WHERE status = {READY} AND id IN ({_placeholders(ids)})"""

        return self._shape(("claim_update_mysql", first, ids), make)

    def claim_rows_mysql(self, ids: int) -> str:
        """MariaDB/MySQL's claim, part 3: the claimed rows (parameters: the lease token, ``ids`` ids)."""
        return self._shape(
            ("claim_rows_mysql", ids),
            lambda: (
                f"SELECT {CLAIM_COLUMNS} FROM {self.table} "
                f"WHERE status = {RUNNING} AND lease_token = %s AND id IN ({_placeholders(ids)})"
            ),
        )

    # -- give-back of prefetched jobs (RUNNING -> READY, as if never claimed) --------------------

    def unclaim_pg(self, jobs: int) -> str:
        """Parameters: (id, lease token) per job."""

        def make() -> str:
            return f"""UPDATE {self.table} AS j SET status = {READY}, attempts = j.attempts - 1,
                      started_at = CASE WHEN j.attempts <= 1 THEN NULL ELSE j.started_at END,
                      last_attempted_at = CASE WHEN j.attempts <= 1 THEN NULL ELSE j.last_attempted_at END,
                      worker_id = CASE WHEN j.attempts <= 1 THEN '' ELSE j.worker_id END,
                      worker_ids = j.worker_ids - (jsonb_array_length(j.worker_ids) - 1),
                      lease_token = NULL, lease_expires_at = NULL
                  FROM (VALUES {", ".join(["(%s::uuid, %s::uuid)"] * jobs)}) AS v(id, token)
                  WHERE j.id = v.id AND j.status = {RUNNING} AND j.lease_token = v.token"""

        return self._shape(("unclaim_pg", jobs), make)

    def unclaim_sqlite(self, jobs: int) -> str:
        """Parameters: (id hex, lease token hex) per job."""

        def make() -> str:
            return f"""UPDATE {self.table} SET status = {READY}, attempts = attempts - 1,
                      started_at = CASE WHEN attempts <= 1 THEN NULL ELSE started_at END,
                      last_attempted_at = CASE WHEN attempts <= 1 THEN NULL ELSE last_attempted_at END,
                      worker_id = CASE WHEN attempts <= 1 THEN '' ELSE worker_id END,
                      worker_ids = json_remove(worker_ids, '$[#-1]'),
                      lease_token = NULL, lease_expires_at = NULL
                  WHERE status = {RUNNING}
                    AND (id, lease_token) IN (VALUES {", ".join(["(%s, %s)"] * jobs)})"""

        return self._shape(("unclaim_sqlite", jobs), make)

    def successes_mysql(self, jobs: int) -> str:
        """MariaDB/MySQL's batched completion of successes (RUNNING -> SUCCESSFUL): one UPDATE
        joined to the batch as a derived table (UNION ALL of rows: both accept it, unlike their
        VALUES constructors), each row guarded by its lease token. Parameters: (id, lease token,
        return value JSON or None) per job, then finished_at."""

        def make() -> str:
            rows = " UNION ALL ".join(["SELECT %s AS id, %s AS token, %s AS rv"] + ["SELECT %s, %s, %s"] * (jobs - 1))
            return f"""UPDATE {self.table} AS j JOIN ({rows}) AS v ON j.id = v.id AND j.lease_token = v.token
                  SET j.status = {SUCCESSFUL}, j.return_value = v.rv, j.finished_at = %s,
                      j.lease_token = NULL, j.lease_expires_at = NULL
                  WHERE j.status = {RUNNING}"""

        return self._shape(("successes_mysql", jobs), make)

    def succeeded_at_mysql(self, ids: int) -> str:
        """Which of ``ids`` a batched completion wrote (parameters: its finished_at, the ids)."""
        return self._shape(
            ("succeeded_at_mysql", ids),
            lambda: (
                f"SELECT id FROM {self.table} WHERE status = {SUCCESSFUL} AND finished_at = %s "
                f"AND lease_token IS NULL AND id IN ({_placeholders(ids)})"
            ),
        )

    def unclaim_mysql(self, jobs: int) -> str:
        """Parameters: (id, lease token) per job. MariaDB and MySQL assign a single-table UPDATE's
        columns left to right, each seeing the ones before it: ``attempts`` goes last, so the
        CASEs read the claimed attempt's number."""

        def make() -> str:
            return f"""UPDATE {self.table} SET status = {READY},
                      started_at = CASE WHEN attempts <= 1 THEN NULL ELSE started_at END,
                      last_attempted_at = CASE WHEN attempts <= 1 THEN NULL ELSE last_attempted_at END,
                      worker_id = CASE WHEN attempts <= 1 THEN '' ELSE worker_id END,
                      worker_ids = JSON_REMOVE(worker_ids, CONCAT('$[', JSON_LENGTH(worker_ids) - 1, ']')),
                      lease_token = NULL, lease_expires_at = NULL,
                      attempts = attempts - 1
                  WHERE status = {RUNNING} AND id IN ({_placeholders(jobs)})
                    AND (id, lease_token) IN ({", ".join(["(%s, %s)"] * jobs)})"""

        return self._shape(("unclaim_mysql", jobs), make)

    # -- insert (djjobs.db.bulk's plans cache these per set of columns) --------------------------

    def insert_jobs(self, columns: str, cells: str) -> str:
        """One job's INSERT: ``columns`` quoted and joined, ``cells`` its placeholders and literals."""
        return f"INSERT INTO {self.table} ({columns}) VALUES ({cells})"

    def insert_jobs_rows(self, columns: str, cells: str, rows: int) -> str:
        """Many jobs' multi-row INSERT (MariaDB/MySQL): ``rows`` times the ``cells``."""
        return self._shape(
            ("insert_rows", columns, cells, rows),
            lambda: f"INSERT INTO {self.table} ({columns}) VALUES " + ", ".join([f"({cells})"] * rows),
        )

    def copy_jobs(self, columns: str) -> str:
        """COPY of many jobs' rows in text format (PostgreSQL)."""
        return f"COPY {self.table} ({columns}) FROM STDIN"

    def _shape(self, key: tuple[Any, ...], make: Callable[[], str]) -> str:
        sql = self._shapes.get(key)
        if sql is None:
            if len(self._shapes) >= _SHAPES_KEPT:
                self._shapes.clear()
            sql = self._shapes[key] = make()
        return sql


def _in_list(column: str, n: int, operator: str = "IN") -> str:
    return f"AND {column} {operator} ({_placeholders(n)})" if n else ""


# What the PostgreSQL claims write (named parameters now, worker, worker_json, token, expires).
_CLAIM_SET_PG = f"""status = {RUNNING},
            attempts = j.attempts + 1,
            started_at = COALESCE(j.started_at, %(now)s),
            last_attempted_at = %(now)s,
            worker_id = %(worker)s,
            worker_ids = j.worker_ids || %(worker_json)s::jsonb,
            lease_token = %(token)s,
            lease_expires_at = %(expires)s"""


_built: dict[str, Statements] = {}


def of(connection: BaseDatabaseWrapper) -> Statements:
    """The job table's statements for ``connection``'s vendor, built on first use."""
    statements = _built.get(connection.vendor)
    if statements is None:
        statements = _built[connection.vendor] = Statements(connection.ops.quote_name(Job._meta.db_table))
    return statements
