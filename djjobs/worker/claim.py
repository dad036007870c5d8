"""Claim: move due READY jobs to RUNNING for one worker, in one short transaction.

PostgreSQL: one statement, ``FOR UPDATE SKIP LOCKED`` in a CTE, so workers never wait on
each other and never take the same row. MariaDB/MySQL: the same lock in three statements of one
transaction (SELECT ... FOR UPDATE SKIP LOCKED, the UPDATE by id, the rows read back: neither has
UPDATE ... RETURNING). SQLite has no row locks: the whole claim runs in a
``BEGIN IMMEDIATE`` transaction (one writer at a time) and the UPDATE is still guarded by
``status = 'READY'``.

The claim is the READY -> RUNNING edge of djjobs.lifecycle.transitions; every other change of
a job's status (the give-back of prefetched jobs included) is djjobs.lifecycle.finish's.
"""

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connections, router, transaction
from django.utils import timezone

from ..db import statements
from ..lifecycle import transitions
from ..lifecycle.finish import relax_commits
from ..models import Job
from ..queues import look as _look
from ..states import JobStatus
from . import gate

transitions.check(JobStatus.READY, JobStatus.RUNNING, "claim")  # statements.claim_* are that edge


@dataclass(slots=True)
class ClaimedJob:
    """What a worker needs of a job it owns; attribute names match Job's."""

    id: uuid.UUID
    task_path: str
    backend: str
    queue_name: str
    priority: int
    args: list
    kwargs: dict
    takes_context: bool
    run_after: datetime
    enqueued_at: datetime
    started_at: datetime
    last_attempted_at: datetime
    attempts: int
    max_attempts: int
    retry_backoff: float
    timeout: float | None
    errors: list
    worker_ids: list
    checkpoint: Any
    lease_token: uuid.UUID
    key: str = ""  # str(id), made once: logs, TaskResults and the worker's dicts use it
    status: str = JobStatus.RUNNING
    finished_at: datetime | None = None
    return_value: Any = None
    extra: dict = field(default_factory=dict)
    workflow_run_id: uuid.UUID | None = None  # a workflow's step or compensation (djjobs.workflows)
    claimed_ahead: bool = False  # prefetched: claimed beyond the worker's free threads
    fifo_key: str | None = None  # its FIFO key, released when it ends (djjobs.lifecycle.finish)


def claim(
    worker_id: str,
    queues: list[str] | None,
    limit: int,
    lease_seconds: float,
    relaxed: bool = False,
    direct: int | None = None,
) -> list[ClaimedJob]:
    """Claim up to ``limit`` due jobs of ``queues`` (None: every queue) for ``worker_id``.

    ``relaxed``: the caller's connection is the worker's own (see relax_commits).
    ``direct``: how many of them go straight to an idle thread (None: all); the others are
    claimed ahead (``claimed_ahead``, listed after the direct ones), so that the rescuer can
    give their attempt back if the worker is lost before it started them."""
    if limit <= 0:
        return []
    if direct is None or direct >= limit:
        direct = None
    elif direct < 0:  # more jobs claimed than threads: none of these is handed to a thread at once
        direct = 0

    connection = connections[router.db_for_write(Job)]
    token = uuid.uuid4()
    # Times come from the worker's clock, like enqueue's run_after, so one clock decides
    # what is due (and PostgreSQL's now() would be frozen inside a caller's transaction).
    now = timezone.now()
    postgresql = connection.vendor == "postgresql"
    if postgresql and relaxed:
        relax_commits(connection)
    # Flow control: jobs under limits (and of limited queues) first, to idle threads only; the
    # plain claim skips paused and limited queues (worker/gate.py).
    flow = _look(connection.alias)
    limited = []
    if flow.needed:
        idle = limit if direct is None else direct
        limited = _claim_limited(connection, worker_id, queues, limit, idle, lease_seconds, token, now, postgresql)
        if limited:
            taken_direct = sum(1 for job in limited if not job.claimed_ahead)
            limit -= len(limited)
            if direct is not None:
                direct = max(0, direct - taken_direct)
            if limit <= 0 or _no_free_jobs_lately(connection.alias):
                return limited
    skip = sorted(flow.skip) or None
    if postgresql:
        rows = _claim_postgresql(connection, worker_id, queues, limit, lease_seconds, token, now, direct, skip)
        jobs = _to_claimed_postgresql(rows, token, now, worker_id)
        if direct is not None:  # RETURNING's order is unspecified: the direct ones first
            jobs.sort(key=_ahead)
    elif connection.vendor == "mysql":
        rows = _claim_mysql(connection, worker_id, queues, limit, lease_seconds, token, now, direct, skip)
        jobs = [_to_claimed(row, token, connection, now, worker_id) for row in rows]
    else:
        rows = _claim_sqlite(connection, worker_id, queues, limit, lease_seconds, token, now, direct, skip)
        jobs = [_to_claimed(row, token, connection, now, worker_id) for row in rows]
    if flow.needed:
        _free_claim_empty[connection.alias] = time.monotonic() if not jobs else None
    return limited + jobs


# While limited jobs are being claimed and the plain claim just found no free job, it is not
# asked again for FREE_RECHECK seconds when the limited claim found work (a claim that finds
# nothing at all always asks both: a --burst worker ends on that answer). A free job enqueued
# meanwhile waits at most that long.
FREE_RECHECK = 0.2
_free_claim_empty: dict[str, float | None] = {}


def _no_free_jobs_lately(alias: str) -> bool:
    empty_at = _free_claim_empty.get(alias)
    return empty_at is not None and time.monotonic() - empty_at < FREE_RECHECK


def _claim_limited(connection, worker_id, queues, limit, idle, lease_seconds, token, now, postgresql):
    """gate.claim_limited with this claim's UPDATE of the ids it chose (the first ``idle`` of
    them to idle threads, the others claimed ahead)."""
    expires = now + timedelta(seconds=lease_seconds)
    sql = statements.of(connection)

    def update(ids):
        direct = min(idle, len(ids))
        with connection.cursor() as cursor:
            if postgresql:
                params = {
                    "ids": ids,
                    "direct": direct,
                    "worker": worker_id,
                    "worker_json": json.dumps([worker_id]),
                    "token": token,
                    "now": now,
                    "expires": expires,
                }
                cursor.execute(sql.CLAIM_IDS_PG, params)
                return sorted(_to_claimed_postgresql(cursor.fetchall(), token, now, worker_id), key=_ahead)
            if connection.vendor == "mysql":
                rows = _update_mysql(connection, cursor, ids, direct, worker_id, token, now, expires)
                return sorted((_to_claimed(row, token, connection, now, worker_id) for row in rows), key=_ahead)
            adapt = connection.ops.adapt_datetimefield_value
            texts = [id_.hex if isinstance(id_, uuid.UUID) else id_ for id_ in ids]
            first = texts[:direct]
            cursor.execute(
                sql.claim_update_sqlite(len(first), len(texts)),
                [adapt(now), adapt(now), worker_id, worker_id, token.hex, adapt(expires), *first, *texts],
            )
            jobs = [_to_claimed(row, token, connection, now, worker_id) for row in cursor.fetchall()]
            return sorted(jobs, key=_ahead)

    return gate.claim_limited(connection, queues, limit, idle, now, update, _look(connection.alias))


def _ahead(job) -> bool:
    return job.claimed_ahead


def _claim_postgresql(connection, worker_id, queues, limit, lease_seconds, token, now, direct, skip=None):
    sql = statements.of(connection).claim_pg(bool(queues), direct is not None, bool(skip))
    params = {
        "queues": list(queues or []),
        "limit": limit,
        "worker": worker_id,
        "worker_json": json.dumps([worker_id]),
        "token": token,
        "now": now,
        "expires": now + timedelta(seconds=lease_seconds),
        "direct": direct,
        "skip": skip,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _claim_sqlite(connection, worker_id, queues, limit, lease_seconds, token, now, direct, skip=None):
    ops = connection.ops
    adapt = ops.adapt_datetimefield_value
    sql = statements.of(connection)
    own_transaction = connection.get_autocommit()
    with connection.cursor() as cursor:
        if own_transaction:
            cursor.execute(statements.BEGIN_IMMEDIATE)
        try:
            cursor.execute(
                sql.claim_select_sqlite(len(queues or ()), len(skip or ())),
                [adapt(now), *(queues or []), *(skip or []), limit],
            )
            ids = [row[0] for row in cursor.fetchall()]
            rows = []
            if ids:
                # The first `direct` ids (in claim order) go to idle threads, the rest are claimed ahead.
                first = ids if direct is None else ids[:direct]
                cursor.execute(
                    sql.claim_update_sqlite(len(first), len(ids)),
                    [
                        adapt(now),
                        adapt(now),
                        worker_id,
                        worker_id,
                        token.hex,
                        adapt(now + timedelta(seconds=lease_seconds)),
                        *first,
                        *ids,
                    ],
                )
                rows = cursor.fetchall()
            if own_transaction:
                cursor.execute(statements.COMMIT)
        except BaseException:
            if own_transaction:
                cursor.execute(statements.ROLLBACK)
            raise
    rows.sort(key=lambda r: (bool(r[20]), -r[4], r[8], r[0]))  # RETURNING order is unspecified
    return rows


def _claim_mysql(connection, worker_id, queues, limit, lease_seconds, token, now, direct, skip=None):
    """MariaDB/MySQL: the due free jobs locked with SKIP LOCKED, claimed by id, read back; one
    transaction (its own, or the caller's)."""
    adapt = connection.ops.adapt_datetimefield_value
    sql = statements.of(connection)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(
            sql.claim_select_mysql(len(queues or ()), len(skip or ())),
            [adapt(now), *(queues or []), *(skip or []), limit],
        )
        ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return []
        expires = now + timedelta(seconds=lease_seconds)
        rows = _update_mysql(
            connection, cursor, ids, len(ids) if direct is None else direct, worker_id, token, now, expires
        )
    rows.sort(key=lambda r: (bool(r[20]), -r[4], r[8], str(r[0])))  # claim order, the direct ones first
    return rows


def _update_mysql(connection, cursor, ids, direct, worker_id, token, now, expires) -> list:
    """MariaDB/MySQL: ``ids`` (locked by the caller's transaction) READY -> RUNNING, the first
    ``direct`` of them to idle threads; their rows (CLAIM_COLUMNS)."""
    adapt = connection.ops.adapt_datetimefield_value
    sql = statements.of(connection)
    ids = [_uuid_param(connection, id_) for id_ in ids]
    first = ids[:direct]
    token_param = _uuid_param(connection, token)
    cursor.execute(
        sql.claim_update_mysql(len(first), len(ids)),
        [adapt(now), adapt(now), worker_id, worker_id, token_param, adapt(expires)]
        + ([] if len(first) == len(ids) else first)
        + ids,
    )
    cursor.execute(sql.claim_rows_mysql(len(ids)), [token_param, *ids])
    return list(cursor.fetchall())


def _uuid_param(connection, value):
    """A UUID as the database stores it: MariaDB >= 10.7 has a UUID type, MySQL a char(32)."""
    if not isinstance(value, uuid.UUID):
        value = uuid.UUID(str(value))
    return str(value) if connection.features.has_native_uuid_field else value.hex


_EMPTY_JSON: dict[str | bytes, Any] = {"[]": list, "{}": dict}


def _json(value):
    """A JSON column as the driver returned it (text, or already decoded) -> Python."""
    if not isinstance(value, (str, bytes)):
        return value
    empty = _EMPTY_JSON.get(value)
    return empty() if empty is not None else json.loads(value)


def _dt(value, connection):
    if value is None or (isinstance(value, datetime) and value.tzinfo is not None):
        return value
    # SQLite: text, or a naive datetime when the connection parses declared types.
    return connection.ops.convert_datetimefield_value(value, None, connection)


def _to_claimed(row, token, connection, now, worker_id) -> ClaimedJob:
    (
        id_,
        task_path,
        backend,
        queue,
        priority,
        args,
        kwargs,
        takes_context,
        run_after,
        enqueued_at,
        started_at,
        last_attempted_at,
        attempts,
        max_attempts,
        backoff,
        timeout,
        errors,
        worker_ids,
        checkpoint,
        run_id,
        ahead,
        fifo_key,
    ) = row
    id_ = id_ if isinstance(id_, uuid.UUID) else uuid.UUID(id_)
    if run_id is not None and not isinstance(run_id, uuid.UUID):
        run_id = uuid.UUID(run_id)
    return ClaimedJob(
        id=id_,
        task_path=task_path,
        backend=backend,
        queue_name=queue,
        priority=priority,
        args=_json(args),
        kwargs=_json(kwargs),
        takes_context=bool(takes_context),
        run_after=_dt(run_after, connection),
        enqueued_at=_dt(enqueued_at, connection),
        started_at=_dt(started_at, connection) or now,
        last_attempted_at=_dt(last_attempted_at, connection) or now,
        attempts=attempts,
        max_attempts=max_attempts,
        retry_backoff=backoff,
        timeout=timeout,
        errors=_json(errors) or [],
        worker_ids=_json(worker_ids) or [worker_id],
        checkpoint=_json(checkpoint),
        lease_token=token,
        key=str(id_),
        workflow_run_id=run_id,
        claimed_ahead=bool(ahead),
        fifo_key=fifo_key,
    )


def _to_claimed_postgresql(rows, token, now, worker_id) -> list[ClaimedJob]:
    """_to_claimed() for _RETURNING_PG's rows, whose types are known: uuid, aware datetimes,
    JSON as text (args, kwargs, errors), the rest as the driver decodes it. The claim's hot loop."""
    loads = json.loads
    empty = _EMPTY_JSON
    jobs = []
    for (
        id_,
        task_path,
        backend,
        queue,
        priority,
        args,
        kwargs,
        takes_context,
        run_after,
        enqueued_at,
        started_at,
        _last_attempted_at,
        attempts,
        max_attempts,
        backoff,
        timeout,
        errors,
        worker_ids,
        checkpoint,
        run_id,
        ahead,
        fifo_key,
    ) in rows:
        maker = empty.get(args)
        args = maker() if maker is not None else loads(args)
        maker = empty.get(kwargs)
        kwargs = maker() if maker is not None else loads(kwargs)
        job = ClaimedJob(
            id_,
            task_path,
            backend,
            queue,
            priority,
            args,
            kwargs,
            takes_context,
            run_after,
            enqueued_at,
            started_at or now,
            now,
            attempts,
            max_attempts,
            backoff,
            timeout,
            [] if errors is None else _json(errors),
            [worker_id] if worker_ids is None else _json(worker_ids),
            _json(checkpoint),
            token,
            str(id_),
        )
        if run_id is not None:
            job.workflow_run_id = run_id
        if ahead:
            job.claimed_ahead = True
        if fifo_key is not None:
            job.fifo_key = fifo_key
        jobs.append(job)
    return jobs
