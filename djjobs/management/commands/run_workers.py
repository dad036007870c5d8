"""manage.py run_workers: parse and validate options, then hand over to djjobs.worker.runner."""

import logging
import sys

from django.core.management.base import BaseCommand, CommandError

from djjobs import conf
from djjobs.checks import check_settings
from djjobs.compat import task_backends
from djjobs.logs import DEFAULT_FORMAT, BatchingStreamHandler, Formatter
from djjobs.worker.runner import Runner
from djjobs.worker.supervisor import Supervisor

PROCESSES_MAX = 1000  # worker processes of one supervisor
LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.DEBUG}


class Command(BaseCommand):
    help = "Run djjobs workers: claim due jobs from the database and execute them."

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        for action in parser._actions:  # Django's -v, said as what it does in a worker
            if action.dest == "verbosity":
                action.help = (
                    "What the worker logs on the djjobs logger: 0 warnings and errors only (retries, failures, "
                    "lost workers); 1 (default) also the worker's start and stop and a line per job started "
                    "and finished; 2 and 3 DEBUG (djjobs itself logs nothing more; loggers named djjobs.* "
                    "may). It sets the djjobs logger's level; a handler to stderr is added only when LOGGING "
                    "configures none."
                )
        return parser

    def add_arguments(self, parser):
        parser.add_argument("--queues", help="Comma-separated queue names (default: every queue of the backend).")
        parser.add_argument(
            "--concurrency",
            type=int,
            help=f"Threads running jobs, 1 to {conf.CONCURRENCY_MAX} "
            f"(default {conf.get('CONCURRENCY')}: DJJOBS['CONCURRENCY']).",
        )
        parser.add_argument(
            "--burst",
            action="store_true",
            help="Process every job due now, then exit: 0 when done, 1 if the database could not be asked "
            "what is due or a worker thread died.",
        )
        parser.add_argument("--max-jobs", type=int, help="Exit after claiming this many jobs.")
        parser.add_argument("--worker-id", help="Name of this worker in logs and job rows (default host-pid-random).")
        parser.add_argument("--backend", default="default", help="The TASKS alias whose queues to serve.")
        parser.add_argument(
            "--processes",
            type=int,
            help=f"Run a supervisor with this many worker processes, 1 to {PROCESSES_MAX} "
            "(each with --concurrency threads).",
        )
        parser.add_argument(
            "--max-jobs-per-child",
            type=int,
            help="With --processes: replace a worker process after it claimed this many jobs.",
        )

    def handle(self, *args, **options):
        self._configure_logging(options["verbosity"])
        queues = self._queues(options["queues"], options["backend"])
        for name, high in (
            ("concurrency", conf.CONCURRENCY_MAX),
            ("processes", PROCESSES_MAX),
            ("max_jobs", None),
            ("max_jobs_per_child", None),
        ):
            value, option = options[name], f"--{name.replace('_', '-')}"
            if value is not None and high is not None and not 1 <= value <= high:
                raise CommandError(f"{option} must be from 1 to {high}, got {value}.")
            if value is not None and value < 1:
                raise CommandError(f"{option} must be at least 1, got {value}.")
        if options["worker_id"] is not None and not 0 < len(options["worker_id"]) <= 64:
            raise CommandError("--worker-id must be 1 to 64 characters.")
        if options["worker_id"] is not None and not options["worker_id"].isprintable():
            raise CommandError("--worker-id must be printable text: no NUL, newline or other control character.")
        if options["processes"] and options["worker_id"] and len(options["worker_id"]) > 52:
            raise CommandError("--worker-id must be at most 52 characters with --processes (children add a suffix).")
        self._refuse_dangerous_settings()
        if options["processes"]:
            if options["max_jobs"] is not None:
                raise CommandError("--max-jobs applies to one process; with --processes use --max-jobs-per-child.")
            runner = Supervisor(
                processes=options["processes"],
                queues=queues,
                concurrency=options["concurrency"],
                burst=options["burst"],
                max_jobs_per_child=options["max_jobs_per_child"],
                worker_id=options["worker_id"],
            )
        else:
            if options["max_jobs_per_child"] is not None:
                raise CommandError("--max-jobs-per-child needs --processes.")
            runner = Runner(
                queues=queues,
                concurrency=options["concurrency"],
                burst=options["burst"],
                max_jobs=options["max_jobs"],
                worker_id=options["worker_id"],
            )
        code = runner.run()
        if code:
            sys.exit(code)

    def _queues(self, value, alias):
        try:
            backend = task_backends[alias]
        except Exception as exc:  # noqa: BLE001 - whatever loading the backend raises, said as the command's error
            raise CommandError(f"Unknown TASKS backend {alias!r}: {exc}") from None
        known = set(backend.queues)
        if value is None:
            return sorted(known) or None
        queues = [q.strip() for q in value.split(",")]
        if not all(queues):  # "" or ",,," would otherwise serve every queue
            raise CommandError(
                f"--queues {value!r} has an empty queue name; give comma-separated names, "
                "e.g. --queues default,emails, or leave --queues out to serve every queue."
            )
        unknown = sorted(set(queues) - known) if known else []
        if unknown:
            raise CommandError(
                f"Unknown queue(s) {', '.join(unknown)}; TASKS[{alias!r}]['QUEUES'] has {', '.join(sorted(known))}."
            )
        return queues

    def _refuse_dangerous_settings(self):
        """Run the settings check even when system checks are skipped (--skip-checks, call_command):
        a worker with, say, a heartbeat slower than its lease runs jobs twice at once."""
        errors = [m for m in check_settings() if m.is_serious() and not m.is_silenced()]
        if errors:
            problems = "".join(f"\n({m.id}) {m.msg}\n\tHINT: {m.hint}" for m in errors)
            raise CommandError(f"Refusing to start: invalid DJJOBS settings (manage.py check lists them).{problems}")

    def _configure_logging(self, verbosity):
        logger = logging.getLogger("djjobs")
        logger.setLevel(LEVELS.get(verbosity, logging.INFO))
        if not logger.handlers and not logging.getLogger().handlers:
            handler = BatchingStreamHandler(sys.stderr)
            handler.setFormatter(Formatter(DEFAULT_FORMAT))
            logger.addHandler(handler)
