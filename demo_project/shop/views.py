from django.contrib import messages
from django.db import transaction
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from djjobs import triggers
from djjobs.http.status import status_url
from djjobs.models import Job

from .forms import OrderForm, ReportForm
from .models import Order, Product
from .tasks import build_report, flaky_sync, poison


@require_GET
def home(request):
    return _render_home(request, OrderForm(initial={"quantity": 1, "email": "customer@example.com"}))


def _render_home(request, order_form, status=200):
    context = {
        "products": Product.objects.all(),
        "orders": Order.objects.select_related("product")[:10],
        "order_form": order_form,
        "report_form": ReportForm(),
    }
    return render(request, "shop/home.html", context, status=status)


@require_POST
def place_order(request):
    form = OrderForm(request.POST)
    if not form.is_valid():
        return _render_home(request, form, status=400)
    # The order and its receipt job commit together: if anything here fails, neither exists.
    # The receipt is enqueued by the on_create trigger of send_receipt (shop/tasks.py).
    with transaction.atomic():
        order = form.save()
        order.receipt_job_id = triggers.triggered(order)[0]
        order.save(update_fields=["receipt_job_id"])
    messages.success(request, f"Order #{order.pk} placed; its receipt is job {order.receipt_job_id}.")
    return redirect("shop:order", pk=order.pk)


@require_GET
def order_detail(request, pk):
    """The order, and its receipt job followed live through the job's signed status URL."""
    order = get_object_or_404(Order.objects.select_related("product"), pk=pk)
    context = {"order": order, "status_url": status_url(order.receipt_job_id) if order.receipt_job_id else None}
    return render(request, "shop/order.html", context)


@require_POST
def enqueue_report(request):
    form = ReportForm(request.POST)
    days = form.cleaned_data["days"] if form.is_valid() else 7
    result = build_report.enqueue(days)
    messages.success(request, f"Report over {days} day(s) enqueued as job {result.id}.")
    return redirect("shop:jobs")


@require_POST
def enqueue_flaky(request):
    last = Order.objects.order_by("-pk").values_list("pk", flat=True).first()
    result = flaky_sync.enqueue(last or 0)
    messages.success(request, f"Flaky sync enqueued as job {result.id}: it fails twice, then succeeds.")
    return redirect("shop:jobs")


@require_POST
def enqueue_poison(request):
    result = poison.enqueue()
    messages.warning(request, f"Poison job enqueued as job {result.id}: it ends FAILED after 3 attempts.")
    return redirect("shop:jobs")


@require_POST
def start_fulfilment(request):
    from .workflows import fulfilment

    quantity = 9 if request.POST.get("decline") else 2
    run = fulfilment.start(order_ref=f"WEB-{timezone.now():%H%M%S}", quantity=quantity)
    messages.success(
        request,
        f"Workflow run {run.pk} started ({quantity} items: "
        f"{'the card will be declined, watch it compensate' if quantity > 5 else 'it should ship'}).",
    )
    return redirect("shop:jobs")


@require_GET
def jobs(request):
    counts = dict(Job.objects.order_by().values_list("status").annotate(n=Count("id")))
    context = {
        "jobs": Job.objects.order_by("-enqueued_at")[:50],
        "counts": sorted(counts.items()),
        "refresh_seconds": 2,
    }
    return render(request, "shop/jobs.html", context)
