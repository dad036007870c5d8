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
Claiming ahead of a free thread (prefetch, for short jobs) holds a slot while the job waits in
the worker: it is done only while its key and queue keep at least half their slots free, and
never for a job under a rate limit (its start is counted at the claim, so it must start then).
Clocks: the worker's, as for every claim (keep worker machines on NTP).
"""

from datetime import timedelta

from django.db import transaction
from django.db.models import Count, Min, Q

from .. import flow
from ..db import statements
from ..models import FlowStart, Job
from ..queues import queue_rules
from ..states import JobStatus

CANDIDATES_PER_SLOT = 4  # candidates read per job to claim (more, when keys are full)

# Whether this process's last limited claim left a due job READY only because a rate window was
# full: it may start within the period, so a --burst worker waits for it instead of ending.
_rate_held = False


def rate_held() -> bool:
    return _rate_held


def claim_limited(connection, queues, limit: int, idle: int, now, update) -> list:
    """Claim up to ``limit`` jobs that are under limits (or in limited queues) and may start now;
    beyond the ``idle`` threads' share they are claimed ahead, which a job under a rate limit
    never is (its start is counted at the claim: it must start then).
    ``update(ids)`` runs the claim's UPDATE of those ids and returns the claimed rows. Runs in
    its own transaction, claims taking turns."""
    global _rate_held
    _rate_held = False
    alias = connection.alias
    with transaction.atomic(using=alias):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(statements.FLOW_LOCK, [statements.FLOW_LOCK_ID])
        # First a write: on SQLite it takes the write lock now, so claims take turns from here.
        FlowStart.objects.using(alias).filter(expires_at__lte=now).delete()
        rules = queue_rules(alias)
        served = set(queues) if queues else None

        # Slots in use: RUNNING jobs with a live lease, per key and per limited queue.
        running_keys: dict[str, int] = {}
        running_queues: dict[str, int] = {}
        running = Job.objects.using(alias).filter(status=JobStatus.RUNNING, lease_expires_at__gt=now)
        running = running.filter(Q(concurrency_key__isnull=False) | Q(queue_name__in=list(rules.concurrency)))
        key_limits: dict[str, int] = {}
        for key, key_limit, queue in running.values_list("concurrency_key", "concurrency_limit", "queue_name"):
            if key is not None:
                running_keys[key] = running_keys.get(key, 0) + 1
                key_limits[key] = min(key_limit or 1, key_limits.get(key, key_limit or 1))
            if queue in rules.concurrency:
                running_queues[queue] = running_queues.get(queue, 0) + 1

        # Starts inside their window, per scope (a rate key, or a queue's scope).
        starts: dict[str, int] = {}
        caps: dict[str, int] = {}
        for scope, count, cap in (
            FlowStart.objects.using(alias)
            .filter(expires_at__gt=now)
            .values("scope")
            .annotate(n=Count("id"), cap=Min("max_starts"))
            .values_list("scope", "n", "cap")
        ):
            starts[scope], caps[scope] = count, cap

        full_rate_keys = [scope for scope, count in starts.items() if count >= caps[scope]]
        full_queues = {q for q, n in running_queues.items() if n >= rules.concurrency[q]}
        rate_full_queues = {
            q for q, (cap, _period, _text) in rules.rate.items() if starts.get(flow.queue_scope(q), 0) >= cap
        }
        full_queues |= rate_full_queues
        skip_queues = set(rules.paused) | full_queues

        def candidates(qs):
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
                )[: limit * CANDIDATES_PER_SLOT + 8]
            )

        due = Job.objects.using(alias).filter(status=JobStatus.READY, run_after__lte=now)
        if full_rate_keys or rate_full_queues:
            held = due.filter(Q(rate_key__in=full_rate_keys) | Q(queue_name__in=rate_full_queues))
            if served is not None:
                held = held.filter(queue_name__in=served)
            _rate_held = held.exclude(queue_name__in=rules.paused).exists()
        limited = due.filter(Q(concurrency_key__isnull=False) | Q(rate_key__isnull=False))
        # Keys already full are left out in SQL, so a backlog of one full key does not hide the
        # others' jobs from the candidates (a key's limit: the one its running jobs carry).
        full_keys = [key for key, n in running_keys.items() if n >= key_limits[key]]
        if full_keys:
            limited = limited.exclude(concurrency_key__in=full_keys)
        if full_rate_keys:
            limited = limited.exclude(rate_key__in=full_rate_keys)
        rows = candidates(limited)
        limited_queues = rules.limited - skip_queues
        if served is not None:
            limited_queues &= served
        if limited_queues:
            free_in_limited = due.filter(
                concurrency_key__isnull=True, rate_key__isnull=True, queue_name__in=list(limited_queues)
            )
            rows += candidates(free_in_limited)
            rows.sort(key=lambda row: (-row[1], row[2], row[0]))

        chosen: list[object] = []
        scopes = []
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
                job_scopes
                or (key is not None and 2 * (running_keys.get(key, 0) + 1) > key_limit)
                or (queue in rules.concurrency and 2 * (running_queues.get(queue, 0) + 1) > rules.concurrency[queue])
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
        if not chosen:
            return []
        claimed = update(chosen)
        if scopes and claimed:
            FlowStart.objects.using(alias).bulk_create(
                FlowStart(scope=scope, started_at=now, expires_at=now + timedelta(seconds=period), max_starts=cap)
                for scope, cap, period in scopes
            )
        return claimed
