"""manage.py jobs: list, show, retry, cancel and count jobs from the terminal.

Exit codes (docs/how-to/cli.md): 0 done; 1 an error, or some jobs were left as they were (the
reasons are printed); 2 bad usage (an unknown option, status or id, an unreadable time); 3 nothing
matched (no job has that id, or matches the filters).
"""

import getpass
import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime, parse_time

from ... import conf
from ...db import counts as read_model
from ...http.health import configured_queues
from ...matching import VERBS, Report, cancel_matching, retry_matching
from ...models import Job
from ...states import JobStatus

logger = logging.getLogger("djjobs")

DONE, ERROR, USAGE, NOTHING = 0, 1, 2, 3

ACTIONS = ["list", "show", "retry", "cancel", "stats"]
STATUS_ORDER = ["READY", "RUNNING", "WAITING", "FAILED", "CANCELLED", "SUCCESSFUL"]
# The read model's parts (djjobs.db.counts.bounded_counts) and the columns of `jobs stats` they fill.
QUEUE_COLUMNS = {
    "READY": "ready",
    "DUE": "due",
    "RUNNING": "running",
    "WAITING": "waiting",
    "SUCCESSFUL_HOUR": "succeeded_1h",
    "FAILED_HOUR": "failed_1h",
}
LIST_LIMIT = 50
LIMIT_MAX = 10_000
_RELATIVE = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def usage(message: str) -> CommandError:
    return CommandError(message, returncode=USAGE)


def record_action(action: str, target: str, report: Report) -> None:
    """The audit trail of a CLI action: who (the OS user), what, on which jobs, with what result,
    as a log line on the "djjobs" logger. Each changed job's History records it too when a Django
    user is known (``--as``, or the OS user's name): djjobs.matching writes it (djjobs.audit)."""
    logger.info(
        "cli %s by %s on %s: changed=%d requested=%d skipped=%d",
        action,
        _os_user(),
        target,
        report.changed,
        report.requested,
        sum(report.skipped.values()),
    )


def _django_user(username: str | None) -> Any:
    """The Django user a CLI action is recorded for in the admin's History: ``--as``'s (an unknown
    name is a usage error), else the one named like the OS user, else None (a log line only)."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    if username:
        try:
            return User._default_manager.get_by_natural_key(username)
        except User.DoesNotExist:
            raise usage(f"--as {username!r}: no such user.") from None
    try:
        return User._default_manager.get_by_natural_key(_os_user())
    except User.DoesNotExist:
        return None


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (a container without a passwd entry)
        return "unknown"


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """--since: an ISO date or date and time, a time of today ("10:00"), or an age ("30m", "2h", "7d").
    Without an offset, in the current time zone."""
    now = now or timezone.now()
    text = text.strip()
    relative = _RELATIVE.match(text)
    if relative:
        return now - timedelta(**{_UNITS[relative[2]]: int(relative[1])})
    try:
        moment = parse_datetime(text)
        if moment is None:
            day = parse_date(text)
            if day is not None:
                moment = datetime.combine(day, datetime.min.time())
        if moment is None:
            clock = parse_time(text)
            if clock is not None:
                moment = datetime.combine(timezone.localdate(now), clock)
    except ValueError:
        moment = None
    if moment is None:
        raise usage(
            f"--since {text!r}: give an ISO date or date and time (2026-12-05, 2026-12-05T10:00), "
            "a time of today (10:00) or an age (30m, 2h, 7d)."
        )
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def parse_statuses(text: str) -> list[str]:
    statuses = [part.strip().upper() for part in text.split(",") if part.strip()]
    unknown = [s for s in statuses if s not in JobStatus.values]
    if unknown or not statuses:
        raise usage(f"--status {text!r}: use one or more of {', '.join(STATUS_ORDER)} (comma-separated).")
    return statuses


def parse_ids(values: list[str]) -> list[uuid.UUID]:
    ids = []
    for value in values:
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            raise usage(f"{value!r} is not a job id (a UUID, as `jobs list` shows).") from None
    return ids


class Command(BaseCommand):
    stealth_options = ("stdin",)  # where the confirmation is read from (tests); sys.stdin by default
    help = (
        "List, show, retry, cancel and count jobs. Exit codes: 0 done, 1 error or jobs left as they were "
        "(reasons printed), 2 bad usage, 3 nothing matched."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Job ids may follow the options (`jobs retry --yes ID ID`): argparse's plain parse_args
        # would take them for unrecognized arguments once an option came between them and the action.
        # (Replacing a method of this one parser object, which the type checker does not follow.)
        parser.parse_args = lambda args=None, namespace=None: type(parser).parse_intermixed_args(  # type: ignore[method-assign, assignment]
            parser, args, namespace
        )
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "action",
            choices=ACTIONS,
            help="list: jobs, newest first; show ID: one job with its timeline and errors; retry / cancel ID... "
            "(or --all-matching with the filters); stats: jobs per status and queue.",
        )
        parser.add_argument("ids", nargs="*", metavar="ID", help="Job ids (show, retry, cancel).")
        filters = parser.add_argument_group("filters (list, and retry / cancel with --all-matching)")
        filters.add_argument(
            "--status", help="READY, RUNNING, WAITING, FAILED, CANCELLED or SUCCESSFUL; several: comma-separated."
        )
        filters.add_argument("--task", help="The task's dotted path, or its function's name.")
        filters.add_argument("--queue", help="The queue's name.")
        filters.add_argument(
            "--since",
            help="Enqueued at or after: an ISO date or date and time, a time of today (10:00), or an age (30m, 2h, 7d).",
        )
        parser.add_argument(
            "--limit",
            type=int,
            default=LIST_LIMIT,
            help=f"list: at most this many jobs, 1 to {LIMIT_MAX} (default {LIST_LIMIT}).",
        )
        parser.add_argument(
            "--all-matching",
            action="store_true",
            help="retry / cancel: every job the filters match (in batches), not the ids given.",
        )
        parser.add_argument("--yes", action="store_true", help="With --all-matching: do not ask for confirmation.")
        parser.add_argument(
            "--batch-size", type=int, default=1000, help="With --all-matching: jobs per transaction (default 1000)."
        )
        parser.add_argument("--json", action="store_true", help="Print JSON (for scripts) instead of a table.")
        parser.add_argument(
            "--as",
            dest="as_user",
            metavar="USERNAME",
            help="retry / cancel: record the action in each changed job's admin History as done by this "
            "Django user (default: the user named like the OS user, if there is one).",
        )

    def handle(self, *args: Any, action: str, ids: list[str], **options: Any) -> None:
        self.as_json = options["json"]
        self.user = _django_user(options.get("as_user"))
        if action in ("list", "stats") and ids:
            raise usage(f"jobs {action} takes no job ids (filter with --status, --task, --queue, --since).")
        if options["all_matching"] and action not in ("retry", "cancel"):
            raise usage("--all-matching goes with retry or cancel.")
        if action == "list":
            return self._list(self._matching(options), options["limit"])
        if action == "stats":
            return self._stats()
        if action == "show":
            if len(ids) != 1:
                raise usage("jobs show takes one job id.")
            return self._show(parse_ids(ids)[0])
        if options["all_matching"]:
            if ids:
                raise usage(f"jobs {action}: give job ids or --all-matching, not both.")
            return self._act_on_matching(action, self._matching(options), options)
        if not ids:
            raise usage(f"jobs {action} needs job ids, or --all-matching with filters.")
        if any(options[name] for name in ("status", "task", "queue", "since")):
            raise usage("The filters go with --all-matching (or jobs list), not with job ids.")
        return self._act_on_ids(action, parse_ids(ids))

    # -- filters --------------------------------------------------------------------------

    def _matching(self, options: dict[str, Any]) -> QuerySet[Job]:
        jobs = Job.objects.all()
        if options["status"]:
            jobs = jobs.filter(status__in=parse_statuses(options["status"]))
        if options["task"]:
            task = options["task"].strip()
            jobs = jobs.filter(Q(task_path=task) | Q(task_path__endswith=f".{task}"))
        if options["queue"]:
            jobs = jobs.filter(queue_name=options["queue"].strip())
        if options["since"]:
            jobs = jobs.filter(enqueued_at__gte=parse_since(options["since"]))
        return jobs

    def _filters_text(self, options: dict[str, Any]) -> str:
        parts = [f"--{name} {options[name]}" for name in ("status", "task", "queue", "since") if options[name]]
        return " ".join(parts) or "(no filter: every job)"

    # -- output ---------------------------------------------------------------------------

    def _print_json(self, value: Any) -> None:
        self.stdout.write(json.dumps(value, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False))

    def _table(self, header: list[str], rows: list[list[str]]) -> None:
        widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
        for row in [header, *rows]:
            self.stdout.write("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())

    # -- list -----------------------------------------------------------------------------

    def _list(self, jobs: QuerySet[Job], limit: int) -> None:
        if not 1 <= limit <= LIMIT_MAX:
            raise usage(f"--limit must be from 1 to {LIMIT_MAX}, got {limit}.")
        rows = list(jobs.order_by("-enqueued_at", "-id")[:limit])
        if self.as_json:
            self._print_json([_summary(job) for job in rows])
        elif rows:
            self._table(
                ["id", "status", "task", "queue", "attempts", "enqueued", "duration"],
                [
                    [
                        str(job.id),
                        job.status,
                        job.task_path,
                        job.queue_name,
                        f"{job.attempts}/{job.max_attempts}",
                        _when(job.enqueued_at),
                        _duration(job.duration),
                    ]
                    for job in rows
                ],
            )
            if len(rows) == limit:
                self.stdout.write(f"(the newest {limit}; more may match: raise --limit or narrow the filters)")
        if not rows:
            raise CommandError("No job matches these filters.", returncode=NOTHING)

    # -- show -----------------------------------------------------------------------------

    def _show(self, job_id: uuid.UUID) -> None:
        job = Job.objects.filter(pk=job_id).first()
        if job is None:
            raise CommandError(f"No job {job_id}.", returncode=NOTHING)
        moments = timeline(job)
        if self.as_json:
            self._print_json(
                {
                    **_summary(job),
                    "args": job.args,
                    "kwargs": job.kwargs,
                    "return_value": job.return_value,
                    "timeline": [{"at": when, "what": what} for when, what in moments],
                    "errors": job.errors,
                }
            )
            return
        w = self.stdout.write
        w(f"Job {job.id}")
        for label, value in [
            ("status", job.status + (" (cancellation requested)" if job.cancel_requested_at else "")),
            ("task", job.task_path),
            ("queue", f"{job.queue_name}, priority {job.priority}"),
            ("attempts", f"{job.attempts} of {job.max_attempts}"),
            ("arguments", json.dumps({"args": job.args, "kwargs": job.kwargs}, ensure_ascii=False)),
            ("result", json.dumps(job.return_value, ensure_ascii=False) if job.status == JobStatus.SUCCESSFUL else "-"),
            ("progress", f"{job.progress:g}% {job.progress_message}".strip() if job.progress is not None else "-"),
            ("duration", _duration(job.duration)),
        ]:
            w(f"  {label + ':':<11}{value}")
        w("")
        w("Timeline")
        for when, what in moments:
            w(f"  {_when(when)}  {what}")
        if job.errors:
            w("")
            w("Errors")
            for i, error in enumerate(job.errors):
                w(
                    f"  Attempt {error.get('attempt', '?')} · {_when(_at(error))} · worker {error.get('worker_id') or '-'}"
                )
                w(f"    {error.get('exception_class_path', '?')}: {error.get('message', '')}")
                if i == len(job.errors) - 1 and error.get("traceback"):
                    for line in error["traceback"].rstrip().splitlines():
                        w(f"    | {line}")

    # -- retry, cancel --------------------------------------------------------------------

    def _act_on_ids(self, action: str, ids: list[uuid.UUID]) -> None:
        existing = set(Job.objects.filter(pk__in=ids).values_list("pk", flat=True))
        missing = [job_id for job_id in ids if job_id not in existing]
        if not existing:
            raise CommandError(f"No job with {'that id' if len(ids) == 1 else 'these ids'}.", returncode=NOTHING)
        report = _ACT[action](Job.objects.filter(pk__in=existing), user=self.user)
        record_action(action, " ".join(str(job_id) for job_id in ids), report)
        self._report(report, missing)

    def _act_on_matching(self, action: str, jobs: QuerySet[Job], options: dict[str, Any]) -> None:
        if options["batch_size"] < 1:
            raise usage(f"--batch-size must be at least 1, got {options['batch_size']}.")
        total = jobs.count()
        filters = self._filters_text(options)
        if not total:
            raise CommandError(f"No job matches {filters}.", returncode=NOTHING)
        if not options["yes"]:
            stdin = options.get("stdin") or sys.stdin
            # On stderr, as the progress: stdout stays the report (JSON with --json).
            self.stderr.write(f"{action.capitalize()} the {total:,} job(s) matching {filters}? [y/N] ", ending="")
            self.stderr.flush()
            answer = stdin.readline()
            if answer.strip().lower() not in ("y", "yes"):
                why = "" if answer else " (no answer: give --yes to act without asking)"
                raise CommandError(f"Nothing was changed{why}.", returncode=ERROR)

        def progress(report: Report) -> None:
            if not self.as_json:
                self.stderr.write(
                    f"  {report.matched:,} of {total:,} done ({report.changed:,} {VERBS[action].lower()})"
                )

        report = _ACT[action](jobs, batch=options["batch_size"], progress=progress, user=self.user)
        record_action(action, filters, report)
        self._report(report, [])

    def _report(self, report: Report, missing: list[uuid.UUID]) -> None:
        if self.as_json:
            self._print_json({**report.as_dict(), "not_found": [str(job_id) for job_id in missing]})
        else:
            for line in report.lines():
                self.stdout.write(line)
            if missing:
                self.stdout.write(f"Not found ({len(missing)}): {' '.join(str(job_id) for job_id in missing)}")
        left = sum(report.skipped.values()) + len(missing)
        if left:
            raise CommandError(f"{left:,} job(s) were left as they were (see why above).", returncode=ERROR)

    # -- stats ----------------------------------------------------------------------------

    def _stats(self) -> None:
        now = timezone.now()
        limit = int(conf.get("HEALTH_COUNT_LIMIT"))
        counts = read_model.bounded_counts(now, limit)
        oldest = read_model.oldest_due_at(now)
        statuses = dict.fromkeys(STATUS_ORDER, 0)
        queues = {name: dict.fromkeys(QUEUE_COLUMNS.values(), 0) for name in sorted(configured_queues())}
        for (part, queue, due), n in counts.items():
            if part in statuses:
                statuses[part] += n
            if queue is None:
                continue
            row = queues.setdefault(queue, dict.fromkeys(QUEUE_COLUMNS.values(), 0))
            row[QUEUE_COLUMNS[part]] += n
            if part == "READY" and due:
                row["due"] += n
        queues = dict(sorted(queues.items()))
        at_least = {status for status, n in statuses.items() if n >= limit}
        oldest_age = None if oldest is None else round((now - oldest).total_seconds(), 1)
        if self.as_json:
            self._print_json(
                {
                    "at": now,
                    "count_limit": limit,
                    "statuses": statuses,
                    "at_least": sorted(at_least),
                    "queues": queues,
                    "oldest_due_age_seconds": oldest_age,
                }
            )
            return
        self._table(["status", "jobs"], [[s, f"{n:,}{'+' if s in at_least else ''}"] for s, n in statuses.items()])
        if at_least:
            self.stdout.write(
                f"(+: counted up to DJJOBS['HEALTH_COUNT_LIMIT'] = {limit:,}; there are at least that many)"
            )
        self.stdout.write("")
        self._table(
            ["queue", "ready", "due", "running", "waiting", "succeeded (1 h)", "failed (1 h)"],
            [[name, *(f"{v:,}" for v in row.values())] for name, row in queues.items()],
        )
        self.stdout.write("")
        self.stdout.write(
            "Oldest due job: "
            + ("none is due" if oldest_age is None else f"waiting for {_duration(timedelta(seconds=oldest_age))}")
        )


_ACT = {"retry": retry_matching, "cancel": cancel_matching}


# -- text -------------------------------------------------------------------------------------


def _summary(job: Job) -> dict[str, Any]:
    return {
        "id": str(job.id),
        "status": job.status,
        "task": job.task_path,
        "queue": job.queue_name,
        "priority": job.priority,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "enqueued_at": job.enqueued_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "cancel_requested_at": job.cancel_requested_at,
        "duration_seconds": None if job.duration is None else job.duration.total_seconds(),
    }


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


def _duration(delta: timedelta | None) -> str:
    if delta is None:
        return "-"
    seconds = delta.total_seconds()
    if seconds < 1:
        return "< 1 ms" if seconds < 0.001 else f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _at(entry: dict[str, Any]) -> datetime | None:
    value = entry.get("at")
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed


def timeline(job: Job) -> list[tuple[datetime, str]]:
    """(when, what) for each known moment of the job's life, in order: the admin's timeline, as text."""
    workers = list(job.worker_ids or [])
    entries = [(job.enqueued_at, f"Enqueued on queue {job.queue_name}, priority {job.priority}")]
    if job.scheduled_for is not None:
        entries.append((job.scheduled_for, "Fire time of its schedule"))
    if job.started_at is not None:
        entries.append((job.started_at, f"Attempt 1 started on {workers[0] if workers else '-'}"))
    for error in job.errors or []:
        when = _at(error)
        if when is not None:
            what = f"{error.get('exception_class_path', '?')}: {error.get('message', '')}"
            entries.append((when, f"Attempt {error.get('attempt', '?')} failed: {what}"))
    if job.attempts > 1 and job.last_attempted_at is not None:
        worker = workers[job.attempts - 1] if len(workers) >= job.attempts else job.worker_id
        entries.append((job.last_attempted_at, f"Attempt {job.attempts} started on {worker or '-'}"))
    if job.status == JobStatus.READY:
        entries.append((job.run_after, "Due: a worker may take it from here"))
    if job.status == JobStatus.RUNNING and job.lease_expires_at is not None:
        entries.append((job.lease_expires_at, "Lease expires (renewed by the worker's heartbeat)"))
    if job.cancel_requested_at is not None:
        entries.append((job.cancel_requested_at, "Cancellation requested"))
    entries.sort(key=lambda entry: entry[0])
    if job.finished_at is not None:  # the last moment, even if an error was stamped a moment after it
        entries.append((job.finished_at, f"Finished {job.status}"))
    return entries
