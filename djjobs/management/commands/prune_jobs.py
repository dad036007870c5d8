"""manage.py prune_jobs: delete finished jobs past DJJOBS['RETENTION_DAYS'], in batches."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from djjobs.maintenance.pruner import prune


class Command(BaseCommand):
    help = "Delete finished jobs older than DJJOBS['RETENTION_DAYS'] (batched; safe while workers run)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=1000, help="Rows per delete transaction.")
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be deleted.")

    def handle(self, *args: Any, batch_size: int, dry_run: bool, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            counts = prune(batch_size=batch_size, dry_run=dry_run)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        verb = "Would delete" if dry_run else "Deleted"
        for name, count in counts.items():
            self.stdout.write(f"{verb} {count} {name.lower() if name != 'workers' else 'dead worker rows'}")
