"""manage.py prune_jobs: delete finished jobs past DJJOBS['RETENTION_DAYS'], in batches."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from djjobs import conf
from djjobs.maintenance.pruner import prune
from djjobs.models import Job

BATCH_SIZE = 1000


def _retention() -> str:
    """The retention in force, as the help says it: "SUCCESSFUL 14 days, FAILED 90 days, ..."."""
    days = conf.get("RETENTION_DAYS")
    kept = [f"{status} {n} days" for status, n in days.items() if n is not None]
    forever = [status for status, n in days.items() if n is None]
    text = ", ".join(kept) or "none"
    if forever:
        text += f"; {', '.join(forever)} kept for ever"
    events = conf.get("EVENT_RETENTION_DAYS")
    return f"{text}; events {events} days" if events is not None else f"{text}; events kept for ever"


class Command(BaseCommand):
    help = "Delete finished jobs older than DJJOBS['RETENTION_DAYS'] (batched; safe while workers run)."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # The retention in force, read when the help is asked for (settings are loaded by then).
        self.help = (
            f"Delete finished jobs older than their retention, now: {_retention()} (DJJOBS['RETENTION_DAYS'], "
            "DJJOBS['EVENT_RETENTION_DAYS']). Batched; safe while workers run. The worker also prunes every "
            "PRUNE_INTERVAL seconds."
        )
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BATCH_SIZE,
            help=f"Rows per delete transaction (default {BATCH_SIZE}).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Only count what would be deleted, with the age past which each kind goes and the oldest one's age.",
        )

    def handle(self, *args, batch_size, dry_run, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            counts = prune(batch_size=batch_size, dry_run=dry_run)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        verb = "Would delete" if dry_run else "Deleted"
        days = conf.get("RETENTION_DAYS")
        now = timezone.now()
        for name, count in counts.items():
            line = f"{verb} {count} {name.lower() if name != 'workers' else 'dead worker rows'}"
            if dry_run and name in days and days[name] is not None:
                line += f" (finished more than {days[name]} days ago{_oldest(name, now, days[name], count)})"
            elif dry_run and name == "events":
                line += f" (more than {conf.get('EVENT_RETENTION_DAYS')} days old)"
            elif dry_run and name == "workflow runs":
                line += " (finished past the retention of the status they map to, with their jobs)"
            self.stdout.write(line)


def _oldest(status: str, now, days: int, count: int) -> str:
    """ ", the oldest N days ago" for a status with jobs to prune (one probe of its finished_at index)."""
    if not count:
        return ""
    oldest = (
        Job.objects.filter(status=status, finished_at__lt=now - timedelta(days=days))
        .order_by("finished_at")
        .values_list("finished_at", flat=True)
        .first()
    )
    return "" if oldest is None else f"; the oldest {(now - oldest).days} days ago"
