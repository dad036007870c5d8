"""manage.py demo_setup: the demo's superuser and sample data. Safe to run again."""

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from demo_project.shop.models import Product

USERNAME = "admin"
PASSWORD = "admin"
PRODUCTS = [
    ("Espresso beans, 1 kg", Decimal("24.90")),
    ("Moka pot", Decimal("39.00")),
    ("Milk frother", Decimal("19.50")),
    ("Ceramic cup", Decimal("8.00")),
]


class Command(BaseCommand):
    help = "Create or update the demo superuser admin/admin and sample products, then print the login."

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
