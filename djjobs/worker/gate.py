"""The limited claim: jobs under a concurrency or rate limit, and jobs of limited queues.

Free jobs (no limit, queue neither paused nor limited) take the plain claim (worker/claim.py:
one statement). The others are claimed here, in one transaction that claims take in turns
(PostgreSQL: a transaction-scoped advisory lock; SQLite: its one writer), so what it counts
stays true until it commits what it claimed:

1. the queues' state (paused, limits: the Queue rows over ``DJJOBS["QUEUE_LIMITS"]``);
2. RUNNING jobs per concurrency key and per limited queue, counting only live leases: a job
   whose worker was killed frees its slot when its lease expires, before the rescuer runs;
3. starts per rate key and per rate-limited queue still inside their window (FlowStart rows:
   a sliding window, so no interval of the period's length ever holds more than N starts);
4. candidates in claim order (priority, run_after, id), leaving out keys and queues already
   full; each is taken if every limit it is under has room, counted as it is taken;
5. the chosen jobs READY -> RUNNING (the claim's own UPDATE, by id), their starts recorded,
   starts older than their window deleted.

Nothing is claimed to be put back: a job that may not start stays READY and untouched.
Claiming ahead of a free thread (prefetch, only while jobs take under 50 ms, and at most about
50 ms of work) holds a slot while the job waits in the worker: it is done only while its key and
queue keep a quarter of their slots free. A rate limit counts a start at the claim (the job's
started_at); a job claimed ahead begins at most about 50 ms later.
Clocks: the worker's, as for every claim (keep worker machines on NTP).
"""

from contextlib import contextmanager
from datetime import timedelta

from django.db import OperationalError, transaction
from django.db.models import Count, Min, Q

from .. import flow
from ..db import statements
from ..models import FlowStart, Job
from ..queues import queue_rules
from ..states import JobStatus

PAGE_JOBS = 64  # candidates are read in pages of twice the jobs still wanted (at most this many)...
MAX_PAGES = 4  # ...and at most this many pages per claim

# Whether this process's last limited claim left a due job READY only because a rate window was
# full: it may start within the period, so a --burst worker waits for it instead of ending.
_rate_held = False


def rate_held() -> bool:
    return _rate_held


def claim_limited(connection, queues, limit: int, idle: int, now, update, look=None) -> list:
    """Claim up to ``limit`` jobs that are under limits (or in limited queues) and may start now;
    beyond the ``idle`` threads' share they are claimed ahead (see the module's docstring).
    ``update(ids)`` runs the claim's UPDATE of those ids and returns the claimed rows. Runs in
    its own transaction, claims taking turns.

    ``look`` (djjobs.queues.look, at most a second old) gives the queues' rules and says whether
    jobs under concurrency or rate limits were seen: then what is full is read first and left
    out of the candidates in SQL; otherwise it is read only if a candidate needs it. Either way
    every candidate is checked against counts read in this transaction."""
    global _rate_held
    _rate_held = False
    alias = connection.alias
    rules = look.rules if look is not None else queue_rules(alias)
    with _mysql_turn(connection), transaction.atomic(using=alias):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(statements.FLOW_LOCK, [statements.FLOW_LOCK_ID])
        elif connection.vendor == "mysql":
            pass  # _mysql_turn holds the lock from before this transaction to after its commit
        else:  # a write first: SQLite's write lock, so claims take turns from here
            FlowStart.objects.using(alias).filter(expires_at__lte=now).delete()
        served = set(queues) if queues else None
        counts = _Counts(alias, now, rules)
        if look is None or look.concurrency_seen or rules.concurrency:
            counts.read_running()
        if look is None or look.rate_seen or rules.rate:
            counts.read_starts(connection.vendor != "sqlite")

        full_queues = counts.full_queues()
        skip_queues = set(rules.paused) | full_queues

        def candidates(qs, start: int, count: int) -> list:
            if served is not None:
                qs = qs.filter(queue_name__in=served)
            if skip_queues:
                qs = qs.exclude(queue_name__in=skip_queues)
            return list(
                qs.order_by("-priority", "run_after", "id").values_list(
                    "id",
                    "priority",
                    "run_after",
                    "queue_name",
                    "concurrency_key",
                    "concurrency_limit",
                    "rate_key",
                    "rate_limit",
                )[start : start + count]
            )

        due = Job.objects.using(alias).filter(status=JobStatus.READY, run_after__lte=now)
        rate_full_queues = counts.rate_full_queues()
        if counts.full_rate_keys or rate_full_queues:
            held = due.filter(Q(rate_key__in=counts.full_rate_keys) | Q(queue_name__in=rate_full_queues))
            if served is not None:
                held = held.filter(queue_name__in=served)
            _rate_held = held.exclude(queue_name__in=rules.paused).exists()
        limited = due.filter(Q(concurrency_key__isnull=False) | Q(rate_key__isnull=False))
        # Keys already full are left out in SQL, so a backlog of one full key does not hide the
        # others' jobs from the candidates (a key's limit: the one its running jobs carry).
        if counts.full_keys:
            limited = limited.exclude(concurrency_key__in=counts.full_keys)
        if counts.full_rate_keys:
            limited = limited.exclude(rate_key__in=counts.full_rate_keys)
        limited_queues = rules.limited - skip_queues
        if served is not None:
            limited_queues &= served
        free_in_limited = (
            due.filter(concurrency_key__isnull=True, rate_key__isnull=True, queue_name__in=list(limited_queues))
            if limited_queues
            else None
        )

        running_keys, running_queues, starts = counts.running_keys, counts.running_queues, counts.starts
        chosen: list[object] = []
        scopes = []
        # Candidates in pages, in claim order: a page holds twice the jobs still wanted, so a
        # claim reads about what it takes; it reads on while a full page gave it some jobs.
        start = 0
        for _page in range(MAX_PAGES):
            count = 2 * min(limit - len(chosen), PAGE_JOBS) + 8
            rows = candidates(limited, start, count)
            full_page = len(rows) == count
            if free_in_limited is not None:
                more = candidates(free_in_limited, start, count)
                full_page = full_page or len(more) == count
                rows = sorted(rows + more, key=lambda row: (-row[1], row[2], row[0]))
            start += count
            before = len(chosen)
            # Counts no look asked for, needed by a candidate after all (a first job of its kind).
            if not counts.running_read and any(row[4] is not None for row in rows):
                counts.read_running()
            if not counts.starts_read and any(row[6] is not None for row in rows):
                counts.read_starts(connection.vendor != "sqlite")
            for id_, _priority, _run_after, queue, key, key_limit, rate_key, rate_text in rows:
                if len(chosen) >= limit:
                    break
                if key is not None and running_keys.get(key, 0) >= key_limit:
                    continue
                if queue in rules.concurrency and running_queues.get(queue, 0) >= rules.concurrency[queue]:
                    continue
                job_scopes = []
                if rate_key is not None:
                    try:
                        cap, period = flow.parse_rate(rate_text)
                    except ValueError:
                        cap, period = 1, 1.0  # not written by djjobs: the strictest reading
                    job_scopes.append((rate_key, cap, period))
                if queue in rules.rate:
                    cap, period, _text = rules.rate[queue]
                    job_scopes.append((flow.queue_scope(queue), cap, period))
                ahead = len(chosen) >= idle
                if ahead and (
                    (key is not None and running_keys.get(key, 0) + 1 > _ahead_share(key_limit))
                    or (
                        queue in rules.concurrency
                        and running_queues.get(queue, 0) + 1 > _ahead_share(rules.concurrency[queue])
                    )
                ):
                    continue  # not claimed ahead of a thread
                if any(starts.get(scope, 0) >= cap for scope, cap, _period in job_scopes):
                    _rate_held = True
                    continue
                chosen.append(id_)
                if key is not None:
                    running_keys[key] = running_keys.get(key, 0) + 1
                if queue in rules.concurrency:
                    running_queues[queue] = running_queues.get(queue, 0) + 1
                for scope, cap, period in job_scopes:
                    starts[scope] = starts.get(scope, 0) + 1
                    scopes.append((scope, cap, period))
            if len(chosen) >= limit or not full_page or len(chosen) == before:
                break  # done, nothing more, or a page of which nothing could start
        if not chosen:
            return []
        claimed = update(chosen)
        if scopes and claimed:
            FlowStart.objects.using(alias).bulk_create(
                FlowStart(scope=scope, started_at=now, expires_at=now + timedelta(seconds=period), max_starts=cap)
                for scope, cap, period in scopes
            )
        return claimed


def _ahead_share(limit: int) -> int:
    """How many of a limit's slots may be in use once a job is claimed ahead: three quarters,
    leaving a quarter (at least one slot) to the idle threads of other workers."""
    return limit - max(1, limit // 4)


@contextmanager
def _mysql_turn(connection):
    """MariaDB/MySQL: limited claims take turns on a named lock (GET_LOCK). It belongs to the
    session, not the transaction, so it is taken before the claim's transaction and released
    after its commit (or rollback); a worker that dies loses its session and with it the lock.
    Other vendors: nothing (they lock inside the transaction)."""
    if connection.vendor != "mysql":
        yield
        return
    # Named locks are the server's, not a database's: the name carries the database's.
    name = f"{statements.FLOW_LOCK_NAME}.{connection.settings_dict['NAME']}"[:64]
    with connection.cursor() as cursor:
        cursor.execute(statements.FLOW_LOCK_MYSQL, [name, statements.FLOW_LOCK_WAIT])
        (got,) = cursor.fetchone()
    if got != 1:
        raise OperationalError(f"the limited claim's lock {name!r} was not granted")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(statements.FLOW_UNLOCK_MYSQL, [name])


class _Counts:
    """What the limited claim counts, in its transaction: RUNNING jobs with a live lease per
    concurrency key and per limited queue; starts inside their window per rate scope."""

    def __init__(self, alias: str, now, rules):
        self.alias, self.now, self.rules = alias, now, rules
        self.running_keys: dict[str, int] = {}
        self.running_queues: dict[str, int] = {}
        self.key_limits: dict[str, int] = {}
        self.starts: dict[str, int] = {}
        self.caps: dict[str, int] = {}
        self.running_read = self.starts_read = False

    def read_running(self) -> None:
        self.running_read = True
        running = Job.objects.using(self.alias).filter(status=JobStatus.RUNNING, lease_expires_at__gt=self.now)
        running = running.filter(Q(concurrency_key__isnull=False) | Q(queue_name__in=list(self.rules.concurrency)))
        for key, key_limit, queue in running.values_list("concurrency_key", "concurrency_limit", "queue_name"):
            if key is not None:
                self.running_keys[key] = self.running_keys.get(key, 0) + 1
                self.key_limits[key] = min(key_limit or 1, self.key_limits.get(key, key_limit or 1))
            if queue in self.rules.concurrency:
                self.running_queues[queue] = self.running_queues.get(queue, 0) + 1

    def read_starts(self, prune: bool) -> None:
        self.starts_read = True
        if prune:  # (SQLite pruned them first, taking its write lock)
            FlowStart.objects.using(self.alias).filter(expires_at__lte=self.now).delete()
        rows = (
            FlowStart.objects.using(self.alias)
            .filter(expires_at__gt=self.now)
            .values("scope")
            .annotate(n=Count("id"), cap=Min("max_starts"))
            .values_list("scope", "n", "cap")
        )
        for scope, count, cap in rows:
            self.starts[scope], self.caps[scope] = count, cap

    @property
    def full_keys(self) -> list:
        return [key for key, n in self.running_keys.items() if n >= self.key_limits[key]]

    @property
    def full_rate_keys(self) -> list:
        return [scope for scope, count in self.starts.items() if count >= self.caps[scope]]

    def rate_full_queues(self) -> set:
        return {
            q for q, (cap, _period, _text) in self.rules.rate.items() if self.starts.get(flow.queue_scope(q), 0) >= cap
        }

    def full_queues(self) -> set:
        full = {q for q, n in self.running_queues.items() if n >= self.rules.concurrency[q]}
        return full | self.rate_full_queues()
