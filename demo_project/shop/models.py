from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models


class Product(models.Model):
    name = models.CharField(max_length=100, unique=True)
    price = models.DecimalField(max_digits=8, decimal_places=2, validators=[MinValueValidator(Decimal("0"))])

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Order(models.Model):
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="orders")
    quantity = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    email = models.EmailField()
    created_at = models.DateTimeField(auto_now_add=True)
    # Set by the send_receipt task once the receipt is out.
    receipt_sent_at = models.DateTimeField(null=True, blank=True)
    # The djjobs job that sends the receipt (TaskResult.id).
    receipt_job_id = models.UUIDField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Order #{self.pk}: {self.quantity} x {self.product}"

    @property
    def total(self) -> Decimal:
        return self.product.price * self.quantity
