"""The demo's workflow: fulfil an order in steps, undoing what was done when the payment fails.

`fulfilment.start(order_ref="DEMO-1", quantity=2)` runs reserve, then charge and a packing slip
in parallel, then ship. A quantity over 5 makes the card "decline": the run compensates (the
reservation is released) and ends COMPENSATED. See the admin's Workflow runs.
"""

import time

from djjobs import task
from djjobs.workflows import Step, Workflow


@task()
def reserve_stock(order_ref, quantity):
    time.sleep(0.3)
    return {"reservation": f"RES-{order_ref}", "reserved": quantity}


@task()
def release_stock(reservation, reserved):
    time.sleep(0.2)
    return {"released": reservation}


@task(max_attempts=2, retry_backoff=0.5)
def charge_card(order_ref, quantity):
    time.sleep(0.3)
    if quantity > 5:
        raise ValueError(f"card declined for {quantity} items (the demo declines more than 5)")
    return {"charge_id": f"CH-{order_ref}", "amount": f"{quantity * 24.90:.2f}"}


@task()
def refund_card(charge_id):
    return {"refunded": charge_id}


@task()
def print_packing_slip(order_ref, quantity):
    time.sleep(0.2)
    return f"slip for {quantity} x {order_ref}"


@task()
def ship(order_ref, reservation, charge_id):
    time.sleep(0.3)
    return {"tracking": f"TRK-{order_ref}"}


fulfilment = Workflow(
    "fulfilment",
    [
        Step("reserve", reserve_stock, compensate=release_stock),
        [Step("charge", charge_card, compensate=refund_card), Step("packing_slip", print_packing_slip)],
        Step("ship", ship),
    ],
)
