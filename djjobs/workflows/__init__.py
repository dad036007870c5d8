"""Workflows: steps that run group after group, and compensations that undo them when one fails.

    from djjobs.workflows import Step, Workflow

    checkout = Workflow("checkout", [
        Step("reserve", reserve_stock, compensate=release_stock),
        [Step("charge", charge_card, compensate=refund_card), Step("notify", notify_warehouse)],
        Step("ship", ship_order),
    ])
    run = checkout.start(order_id=42)  # in the caller's transaction, like enqueue()

A run is a WorkflowRun row; each step is a Job pointing at it. ``start()`` inserts every step:
the first group READY, the others WAITING. When a step's job finishes, ``advance()`` runs in
the same transaction as the completion (one commit: a step is never done with its successors
left unreleased): it merges what the step returned into the run's context and, once every
step of the group succeeded, releases the next group (WAITING -> READY).

The context starts as ``start()``'s keyword arguments; a step that returns a dict adds its
keys, any other non-None return value is stored under the step's name. Each step's job gets
the context's keys its function accepts (every key if it takes ``**kwargs``).

A step that ends FAILED (its retries spent) or CANCELLED stops the run: the steps not started
are cancelled, running ones are asked to stop (``context.is_cancelled()``), and once none
runs, the compensations of the steps that succeeded run one at a time in reverse order, each
as a job of the run, with the context as it is then. All done: COMPENSATED. A compensation
that fails leaves the run FAILED; retrying that job resumes the compensations.

The stages, one module each: ``definition`` (Step, Workflow), ``start`` (a run's row and
its first jobs), ``progress`` (``advance``: moving a run on, compensation, ``cancel_run``) and
``jobs`` (a run's jobs and their arguments). lifecycle.finish, a layer below, calls
``advance`` through the hook DjjobsConfig.ready() sets (``finish.advance_runs_with``).
"""

from .definition import Step, Workflow
from .jobs import COMPENSATE, STEP
from .progress import advance, cancel_run

__all__ = ["COMPENSATE", "STEP", "Step", "Workflow", "advance", "cancel_run"]
