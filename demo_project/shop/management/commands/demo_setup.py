"""manage.py demo_setup: the demo's superuser and sample data. Safe to run again."""

from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from demo_project.shop.models import Product
from djjobs.models import Schedule

USERNAME = "admin"
PASSWORD = "admin"
PRODUCTS = [
    ("Espresso beans, 1 kg", Decimal("24.90")),
    ("Moka pot", Decimal("39.00")),
    ("Milk frother", Decimal("19.50")),
    ("Ceramic cup", Decimal("8.00")),
]


class Command(BaseCommand):
    help = (
        "Create or update the demo superuser admin/admin and sample products, arm a one-off reminder "
        "schedule two minutes ahead, then print the login."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="Where the demo is served.")

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        user, created = User.objects.get_or_create(username=USERNAME, defaults={"email": "admin@example.com"})
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(PASSWORD)
        user.save()
        self.stdout.write(f"{'Created' if created else 'Updated'} superuser {USERNAME!r}.")

        if not Product.objects.exists():
            Product.objects.bulk_create(Product(name=name, price=price) for name, price in PRODUCTS)
            self.stdout.write(f"Created {len(PRODUCTS)} sample products.")
        else:
            self.stdout.write(f"{Product.objects.count()} products already exist.")

        from djjobs.models import WorkflowRun

        from ...workflows import fulfilment

        if not WorkflowRun.objects.filter(name=fulfilment.name).exists():
            fulfilment.start(order_ref="DEMO-1", quantity=2)
            fulfilment.start(order_ref="DEMO-2", quantity=9)
            self.stdout.write(
                "Started two 'fulfilment' workflow runs: DEMO-1 ships, DEMO-2's card is declined "
                "and it compensates (admin: Workflow runs)."
            )

        reminder = self._arm_reminder()
        self.stdout.write(f"One-off schedule 'welcome-reminder' fires at {reminder:%H:%M:%S %Z}, then disables itself.")

        url = options["url"].rstrip("/") + "/"
        line = "=" * 60
        self.stdout.write(
            self.style.SUCCESS(
                f"\n{line}\n"
                f"  djjobs demo shop: {url}\n"
                f"  jobs page:        {url}jobs/\n"
                f"  admin:            {url}admin/\n"
                f"  user:             {USERNAME}\n"
                f"  password:         {PASSWORD}\n"
                f"{line}\n"
            )
        )

    def _arm_reminder(self):
        """A one-off schedule two minutes from now (again on every run of demo_setup)."""
        run_at = timezone.now().replace(microsecond=0) + timedelta(minutes=2)
        schedule, _ = Schedule.objects.get_or_create(
            name="welcome-reminder",
            defaults={"task_path": "demo_project.shop.tasks.send_reminder", "run_at": run_at, "time_zone": "UTC"},
        )
        schedule.task_path = "demo_project.shop.tasks.send_reminder"
        schedule.kwargs = {"message": "Your djjobs demo has been running for two minutes."}
        schedule.description = "A one-off: it runs once, then disables itself."
        schedule.run_at, schedule.enabled = run_at, True
        schedule.full_clean()
        schedule.save()
        return run_at
