import json

from django.contrib import messages
from django.db import transaction
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST

from djjobs import triggers
from djjobs.http.status import status_url
from djjobs.models import Job

from .forms import OrderForm, ReportForm
from .models import Order, Product
from .tasks import build_report, flaky_sync, poison


def job_link(job_id) -> str:
    """A job's id, linked to its page in the admin (timeline, errors, result)."""
    return format_html('<a href="{}">{}</a>', reverse("admin:djjobs_job_change", args=[job_id]), job_id)


def run_link(run_id) -> str:
    return format_html('<a href="{}">{}</a>', reverse("admin:djjobs_workflowrun_change", args=[run_id]), run_id)


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
    messages.success(
        request, format_html("Order #{} placed; its receipt is job {}.", order.pk, job_link(order.receipt_job_id))
    )
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
    messages.success(request, format_html("Report over {} day(s) enqueued as job {}.", days, job_link(result.id)))
    return redirect("shop:jobs")


@require_POST
def enqueue_flaky(request):
    last = Order.objects.order_by("-pk").values_list("pk", flat=True).first()
    result = flaky_sync.enqueue(last or 0)
    messages.success(
        request, format_html("Flaky sync enqueued as job {}: it fails twice, then succeeds.", job_link(result.id))
    )
    return redirect("shop:jobs")


@require_POST
def enqueue_poison(request):
    result = poison.enqueue()
    messages.warning(
        request, format_html("Poison job enqueued as job {}: it ends FAILED after 3 attempts.", job_link(result.id))
    )
    return redirect("shop:jobs")


@require_POST
def start_fulfilment(request):
    from .workflows import fulfilment

    quantity = 9 if request.POST.get("decline") else 2
    run = fulfilment.start(order_ref=f"WEB-{timezone.now():%H%M%S}", quantity=quantity)
    messages.success(
        request,
        format_html(
            "Workflow run {} started ({} items: {}).",
            run_link(run.pk),
            quantity,
            "the card will be declined, watch it compensate" if quantity > 5 else "it should ship",
        ),
    )
    return redirect("shop:jobs")


@require_GET
def jobs(request):
    counts = dict(Job.objects.order_by().values_list("status").annotate(n=Count("id")))
    latest = list(Job.objects.order_by("-enqueued_at")[:50])
    for job in latest:  # results as the JSON they are stored as, not Python's repr
        job.result_json = json.dumps(job.return_value, ensure_ascii=False)
    context = {
        "jobs": latest,
        "counts": sorted(counts.items()),
        "refresh_seconds": 2,
    }
    return render(request, "shop/jobs.html", context)


@require_GET
def favicon(request):
    """No icon, and no 404 for the browser's request of one on every page (the admin's too)."""
    return HttpResponse(status=204)
