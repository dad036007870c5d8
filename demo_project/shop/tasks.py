"""The demo shop's jobs. Each one shows a djjobs feature; run them with `manage.py run_workers`."""

import time
from datetime import timedelta
from decimal import Decimal

from django.core.mail import send_mail
from django.db.models import F, Sum
from django.utils import timezone

from djjobs import Discard, Retry, task, triggers

from .models import Order


@triggers.on_create(Order, args=lambda order: [order.pk])
@task(queue_name="emails", max_attempts=5, retry_backoff=2.0, takes_context=True)
def send_receipt(context, order_id):
    """Email the receipt of an order. A trigger enqueues it in the transaction that creates the order."""
    context.set_progress(10, "loading the order")
    try:
        order = Order.objects.select_related("product").get(pk=order_id)
    except Order.DoesNotExist:
        raise Discard(f"order {order_id} no longer exists") from None
    body = (
        f"Thank you for your order #{order.pk}!\n\n"
        f"  {order.quantity} x {order.product.name} at {order.product.price}\n"
        f"  Total: {order.total}\n"
    )
    context.set_progress(50, "sending the email")
    time.sleep(0.5)  # a demo: long enough to see the order page follow the job
    try:
        send_mail(f"Your receipt for order #{order.pk}", body, None, [order.email])
    except ConnectionError as exc:  # the mail server is away: try again a bit later
        raise Retry(delay=30, reason=str(exc)) from exc
    Order.objects.filter(pk=order.pk).update(receipt_sent_at=timezone.now())
    context.set_progress(100, "sent")
    return {"order": order.pk, "to": order.email}


@task(queue_name="reports", takes_context=True, http=True)
def build_report(context, days=7):
    """A slow job that reports its progress: watch the jobs page while it runs.

    http=True: it can also be enqueued with POST /jobs/enqueue/demo_project.shop.tasks.build_report/.
    """
    steps = 10
    for step in range(1, steps + 1):
        time.sleep(0.5)
        context.set_progress(step * 100 / steps, f"step {step} of {steps}")
    since = timezone.now() - timedelta(days=days)
    orders = Order.objects.filter(created_at__gte=since)
    revenue = orders.aggregate(total=Sum(F("quantity") * F("product__price")))["total"] or 0
    revenue = Decimal(revenue).quantize(Decimal("0.01"))
    return {"days": days, "orders": orders.count(), "revenue": str(revenue), "attempt": context.attempt}


@task(takes_context=True, max_attempts=5, retry_backoff=1.0)
def flaky_sync(context, order_id):
    """Fails twice with ConnectionError, then succeeds on the third attempt."""
    if context.attempt < 3:
        raise ConnectionError(f"warehouse unreachable (attempt {context.attempt})")
    return {"order": order_id, "synced_on_attempt": context.attempt}


@task(max_attempts=3, retry_backoff=0.5)
def poison():
    """Always fails: after 3 attempts it ends FAILED, the dead letter, with every error kept."""
    raise ValueError("this job always fails")


@task(schedule="* * * * *")
def clean_up(days=30):
    """Every minute (a schedule declared on the task): delete orders older than ``days`` days
    whose receipt went out. Harmless in the demo, where every order is new."""
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = Order.objects.filter(created_at__lt=cutoff, receipt_sent_at__isnull=False).delete()
    return {"deleted": deleted}


@task(queue_name="emails")
def send_reminder(message, to="admin@example.com"):
    """A reminder email; demo_setup schedules one, once, two minutes ahead."""
    send_mail("Reminder", message, None, [to])
    return {"to": to}
