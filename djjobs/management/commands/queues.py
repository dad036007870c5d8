"""manage.py queues: list queues, pause and resume them, set their limits."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from djjobs.compat import InvalidTask
from djjobs.queues import pause_queue, queue_states, resume_queue, set_queue_limits


class Command(BaseCommand):
    help = (
        "List queues with their depth and limits (no sub-command), pause or resume one, or set its "
        "limits. Workers see a change within a second, without a restart."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "action",
            nargs="?",
            default="list",
            choices=["list", "pause", "resume", "limit"],
            help="list (the default): every queue with its state, limits and jobs; pause or resume a "
            "queue; limit: set or clear its limits with --concurrency and --rate.",
        )
        parser.add_argument("queue", nargs="?", help="The queue's name (pause, resume, limit).")
        parser.add_argument("--concurrency", help="limit: at most N RUNNING jobs of the queue; 'none' clears it.")
        parser.add_argument(
            "--rate", help="limit: at most N starts per period, e.g. 100/m (/s, /m, /h); 'none' clears it."
        )

    def handle(self, *args: Any, action: str = "list", queue: str | None = None, **options: Any) -> None:
        if action == "list":
            self._list()
            return
        if not queue:
            raise CommandError(f"queues {action} needs the queue's name.")
        try:
            if action == "pause":
                changed = pause_queue(queue)
                self.stdout.write(
                    self.style.SUCCESS(f"Queue {queue!r} {'paused' if changed else 'was paused already'}.")
                )
            elif action == "resume":
                changed = resume_queue(queue)
                self.stdout.write(self.style.SUCCESS(f"Queue {queue!r} {'resumed' if changed else 'was not paused'}."))
            elif action == "limit":
                self._limit(queue, options["concurrency"], options["rate"])
            else:
                self._list()
        except InvalidTask as exc:
            raise CommandError(str(exc)) from None

    def _limit(self, queue: str, concurrency: str | None, rate: str | None) -> None:
        if concurrency is None and rate is None:
            raise CommandError("Give --concurrency and/or --rate (a value, or 'none' to clear it).")
        changes: dict[str, Any] = {}
        if concurrency is not None:
            if concurrency.lower() == "none":
                changes["concurrency"] = None
            else:
                try:
                    changes["concurrency"] = int(concurrency)
                except ValueError:
                    raise CommandError(
                        f"--concurrency must be a whole number or 'none', got {concurrency!r}."
                    ) from None
        if rate is not None:
            changes["rate_limit"] = None if rate.lower() == "none" else rate
        row = set_queue_limits(queue, **changes)
        self.stdout.write(
            self.style.SUCCESS(
                f"Queue {queue!r}: concurrency {row.concurrency or '-'}, rate limit {row.rate_limit or '-'}."
            )
        )

    def _list(self) -> None:
        states = queue_states()
        if not states:
            self.stdout.write("No queues yet.")
            return
        header = (
            f"{'queue':<20} {'state':<7} {'concurrency':<14} {'rate limit':<14} "
            f"{'ready':>7} {'due':>7} {'running':>7} {'waiting':>7}  oldest due"
        )
        self.stdout.write(header)
        for q in states:
            concurrency = f"{q.concurrency} ({q.concurrency_from})" if q.concurrency else "-"
            rate = f"{q.rate_limit} ({q.rate_limit_from})" if q.rate_limit else "-"
            age = "-" if q.oldest_due_age is None else f"{q.oldest_due_age:.0f} s"
            self.stdout.write(
                f"{q.name:<20} {'paused' if q.paused else 'active':<7} {concurrency:<14} {rate:<14} "
                f"{q.ready:>7} {q.due:>7} {q.running:>7} {q.waiting:>7}  {age}"
            )
