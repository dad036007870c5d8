"""manage.py queues: list queues, pause and resume them, set their limits."""

from django.core.management.base import BaseCommand, CommandError

from djjobs.compat import InvalidTask
from djjobs.queues import pause_queue, queue_states, resume_queue, set_queue_limits


class Command(BaseCommand):
    help = (
        "List queues with their depth and limits (no sub-command), pause or resume one, or set its "
        "limits. Workers see a change within a second, without a restart."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", metavar="{list,pause,resume,limit}")
        sub.add_parser("list", help="Every queue: paused, limits, ready/due/running/waiting jobs, oldest due age.")
        for name, text in (
            ("pause", "Pause a queue: it keeps accepting jobs, no worker claims from it."),
            ("resume", "Resume a paused queue."),
        ):
            action = sub.add_parser(name, help=text)
            action.add_argument("queue", help="The queue's name.")
        limit = sub.add_parser("limit", help="Set or clear a queue's cluster-wide limits.")
        limit.add_argument("queue", help="The queue's name.")
        limit.add_argument("--concurrency", help="At most N RUNNING jobs of the queue; 'none' clears it.")
        limit.add_argument("--rate", help="At most N starts per period, e.g. 100/m (/s, /m, /h); 'none' clears it.")

    def handle(self, *args, action=None, queue=None, **options):
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

    def _limit(self, queue, concurrency, rate):
        if concurrency is None and rate is None:
            raise CommandError("Give --concurrency and/or --rate (a value, or 'none' to clear it).")
        changes = {}
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

    def _list(self):
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
