"""Tasks used by the test suite."""

import asyncio
import os

from djjobs import Discard, Retry, task
from djjobs.compat import django_task

from .models import Execution


@task()
def add(a, b):
    return a + b


@task(queue_name="emails", priority=10, max_attempts=5, retry_backoff=2.0, timeout=30)
def send_receipt(order_id):
    return {"order": order_id}


@task()
def record(label=""):
    """Records each execution; used to count runs exactly."""

    Execution.objects.create(job_id=_current_job_id(), attempt=0, pid=os.getpid(), label=str(label))
    return label


@task(takes_context=True, max_attempts=5)
def record_ctx(context, label=""):
    Execution.objects.create(job_id=context.task_result.id, attempt=context.attempt, pid=os.getpid(), label=str(label))
    return label


@task(max_attempts=5)
def always_fails():
    raise RuntimeError("boom")


@task(takes_context=True, max_attempts=5)
def flaky(context, succeed_on=3):
    if context.attempt < succeed_on:
        raise ConnectionError(f"flaky failure on attempt {context.attempt}")
    return context.attempt


@task(max_attempts=5)
def discards():
    raise Discard("not worth retrying")


@task(takes_context=True, max_attempts=3)
def asks_retry(context):
    if context.attempt == 1:
        raise Retry(delay=0)
    return "retried"


@task()
def returns_nan():
    return float("nan")


@task()
def returns_object():
    return object()


@task()
async def async_add(a, b):
    await asyncio.sleep(0)
    return a + b


@task(takes_context=True)
def with_progress(context, steps=4):
    for i in range(steps):
        context.set_progress((i + 1) * 100 / steps, f"step {i + 1} of {steps}")
    return context.attempt


def _current_job_id():
    return ""


not_a_task = 42


# -- Tasks of the acceptance tests (tests/acceptance), run by real run_workers processes. --


@task(takes_context=True)
def record_job(context, label=""):
    """Records one Execution per run with the job's id, so exactly-once can be counted."""
    Execution.objects.create(job_id=context.task_result.id, attempt=context.attempt, pid=os.getpid(), label=str(label))
    return label


@task(takes_context=True)
def slow_record(context, seconds=1.5):
    """Records a "start" Execution, sleeps ``seconds``, then records an "end" Execution."""
    import time

    job_id = context.task_result.id
    Execution.objects.create(job_id=job_id, attempt=context.attempt, pid=os.getpid(), label="start")
    time.sleep(seconds)
    Execution.objects.create(job_id=job_id, attempt=context.attempt, pid=os.getpid(), label="end")
    return seconds


@django_task
def plain_django(x):
    """Declared with Django's own @task: JobsBackend still stores and runs it."""
    return x * 2


# -- Tasks of the integration tests of leases, atomic tasks and timeouts. --


@task(takes_context=True, atomic=True, max_attempts=1)
def atomic_record(context, steal_lease=False, fail=False):
    """Inserts an Execution inside the job's transaction; can simulate losing the lease."""
    import uuid

    from djjobs.models import Job

    Execution.objects.create(job_id=context.task_result.id, attempt=context.attempt, pid=os.getpid(), label="atomic")
    if steal_lease:  # what a rescuer + another worker would have done meanwhile
        Job.objects.filter(pk=context.task_result.id).update(lease_token=uuid.uuid4())
    if fail:
        raise ValueError("atomic failure")
    return "committed"


@task(timeout=0.3, max_attempts=1)
def overstays(seconds=1.5):
    import time

    time.sleep(seconds)
    return "too late"


@task(takes_context=True, max_attempts=3)
def checkpointed(context, chunks=5, crash_at=None):
    """Processes chunks, checkpointing after each; raises at ``crash_at`` on the first attempt."""
    done = (context.checkpoint or {}).get("done", 0)
    for chunk in range(done, chunks):
        if crash_at is not None and chunk == crash_at and context.attempt == 1:
            raise RuntimeError(f"crash at chunk {chunk}")
        Execution.objects.create(
            job_id=context.task_result.id, attempt=context.attempt, pid=os.getpid(), label=f"chunk-{chunk}"
        )
        context.save_checkpoint({"done": chunk + 1})
    return done


# -- Tasks of the crash acceptance tests (tests/acceptance/test_crash.py). --


def _mark(marker, line):
    """Append a line to ``marker`` (a file): a trace of a run that survives rollbacks and kills."""
    if marker:
        with open(marker, "a") as f:
            f.write(line + "\n")


@task(takes_context=True)
def load_record(context, ms=50):
    """Records an Execution (label "load") as each run starts, then sleeps ``ms`` milliseconds."""
    import time

    Execution.objects.create(job_id=context.task_result.id, attempt=context.attempt, pid=os.getpid(), label="load")
    time.sleep(ms / 1000)
    return ms


@task(takes_context=True, atomic=True)
def atomic_load(context, ms=50, marker=None):
    """atomic: its Execution (label "atomic") commits together with SUCCESSFUL, or never."""
    import time

    Execution.objects.create(job_id=context.task_result.id, attempt=context.attempt, pid=os.getpid(), label="atomic")
    _mark(marker, f"start {os.getpid()} {context.attempt}")
    time.sleep(ms / 1000)
    _mark(marker, f"end {os.getpid()} {context.attempt}")
    return {"pid": os.getpid()}


@task(takes_context=True)
def plain_load(context, ms=50, marker=None):
    """atomic_load without atomic: its Execution (label "plain") commits at once."""
    import time

    Execution.objects.create(job_id=context.task_result.id, attempt=context.attempt, pid=os.getpid(), label="plain")
    _mark(marker, f"start {os.getpid()} {context.attempt}")
    time.sleep(ms / 1000)
    _mark(marker, f"end {os.getpid()} {context.attempt}")
    return {"pid": os.getpid()}


@task(takes_context=True, max_attempts=3)
def kills_own_worker(context):
    """Records an Execution (label "suicide"), then kill -9s the process running it."""
    import signal

    Execution.objects.create(job_id=context.task_result.id, attempt=context.attempt, pid=os.getpid(), label="suicide")
    os.kill(os.getpid(), signal.SIGKILL)


@task(takes_context=True, timeout=2, max_attempts=1)
def overstays_30s(context):
    """Records "start", sleeps 30 s (past its 2 s timeout), records "end"."""
    import time

    Execution.objects.create(job_id=context.task_result.id, attempt=context.attempt, pid=os.getpid(), label="start")
    time.sleep(30)
    Execution.objects.create(job_id=context.task_result.id, attempt=context.attempt, pid=os.getpid(), label="end")
    return "too late"


@task(takes_context=True, max_attempts=1)
def ignores_cancel(context, seconds=30.0):
    """Records "start", sleeps without ever looking at context.is_cancelled(), records "end"."""
    import time

    Execution.objects.create(job_id=context.task_result.id, attempt=context.attempt, pid=os.getpid(), label="start")
    time.sleep(seconds)
    Execution.objects.create(job_id=context.task_result.id, attempt=context.attempt, pid=os.getpid(), label="end")
    return "ignored"


@task(takes_context=True, max_attempts=1)
def cooperative_cancel(context, seconds=30.0):
    """Records "start", polls context.is_cancelled() every 50 ms; when asked, records "stopping" and raises."""
    import time

    job_id = context.task_result.id
    Execution.objects.create(job_id=job_id, attempt=context.attempt, pid=os.getpid(), label="start")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if context.is_cancelled():
            Execution.objects.create(job_id=job_id, attempt=context.attempt, pid=os.getpid(), label="stopping")
            raise RuntimeError("cancelled on request")
        time.sleep(0.05)
    Execution.objects.create(job_id=job_id, attempt=context.attempt, pid=os.getpid(), label="end")
    return "not cancelled"


@task(takes_context=True, max_attempts=3)
def chunks_with_checkpoint(context, chunks=10, seconds=0.3):
    """Does ``chunks`` chunks of ``seconds`` each, recording "chunk-<n>" and checkpointing {"next": n + 1}
    after each; a later attempt resumes at the checkpoint."""
    import time

    start = (context.checkpoint or {}).get("next", 0)
    for n in range(start, chunks):
        time.sleep(seconds)
        Execution.objects.create(
            job_id=context.task_result.id, attempt=context.attempt, pid=os.getpid(), label=f"chunk-{n}"
        )
        context.save_checkpoint({"next": n + 1})
    return start


# -- Tasks of the event, trigger and endpoint tests (test_events.py, test_triggers.py, test_endpoints.py). --


@task()
def order_changed(order_id):
    """Enqueued by triggers in the trigger tests."""
    return order_id


@task(subscribe="order.validated")
def charge_payment(event):
    """First reaction of the choreography: publishes payment.charged from inside its job."""
    import djjobs

    djjobs.publish("payment.charged", {"order_id": event["payload"]["order_id"]})
    return "charged"


@task(subscribe="order.validated")
def reserve_stock(event):
    """A second subscriber of order.validated (fan-out)."""
    return event["payload"]


@task(subscribe="payment.charged")
def send_confirmation(event):
    import djjobs

    djjobs.publish(
        "confirmation.sent",
        {"order_id": event["payload"]["order_id"]},
        idempotency_key=f"confirmation-{event['payload']['order_id']}",
    )
    return "sent"


@task(subscribe=("confirmation.sent", "audit.everything"))
def audit(event):
    Execution.objects.create(job_id=event["id"], attempt=0, pid=os.getpid(), label=event["name"])
    return event["name"]


@task(http=True)
def http_add(a, b):
    """May be enqueued through the HTTP endpoint."""
    return a + b


@task(http=True, takes_context=True)
def http_progress(context, steps=2):
    for i in range(steps):
        context.set_progress((i + 1) * 100 / steps, f"step {i + 1}")
    return steps


@task(http=True, max_attempts=1)
def http_fails():
    raise ValueError("<b>bad</b> input")


# -- Tasks of the schedule tests (tests/integration/test_schedules*.py). --


@task(schedule="0 3 1 1 *")
def new_year_report():
    """Declared with a schedule: migrate creates the code-managed schedule
    "tests.testapp.tasks.new_year_report" (03:00 on 1 January, so it never fires during tests)."""
    return "happy new year"


# An in-process gate: the test sees the task start, then lets it finish.
import threading  # noqa: E402

GATE_STARTED = threading.Event()
GATE_RELEASE = threading.Event()


@task()
def gate():
    GATE_STARTED.set()
    GATE_RELEASE.wait(10)
    return "through"


@task(max_attempts=1)
def leaves_a_transaction_open(label=""):
    """Writes inside transaction.atomic() and never leaves it: a buggy task."""
    from django.db import transaction

    transaction.atomic().__enter__()
    Execution.objects.create(job_id=_current_job_id(), attempt=0, pid=os.getpid(), label=str(label))
    return label


@task(takes_context=True, max_attempts=1)
def exits_worker_once(context, marker):
    """The first time (no ``marker`` file yet): creates the marker and, a moment later (the
    other threads pick up what they were handed), os._exit()s the worker process running it,
    beside whatever else that worker holds. Later runs return."""
    import time

    if not os.path.exists(marker):
        with open(marker, "w") as fh:
            fh.write(str(os.getpid()))
        time.sleep(0.1)
        os._exit(3)
    return "second run"


# -- Tasks of the hostile-input worker tests (tests/acceptance/test_hostile.py,
#    tests/integration/test_hostile_worker.py). --


@task(max_attempts=1)
def hostile_noop():
    return None


@task(max_attempts=2)
def hostile_return(kind="nul"):
    """Returns a value the database cannot (or may not) store, built here: arguments cannot carry it."""
    from djjobs import conf

    if kind == "nul":
        return {"v": "nul\x00ret"}
    if kind == "nul_key":
        return {"nul\x00key": 1}
    if kind == "surrogate":
        return {"v": "lone \ud800 surrogate"}
    if kind == "deep":
        value = "bottom"
        for _ in range(conf.get("MAX_JSON_DEPTH") + 1):
            value = [value]
        return value
    if kind == "big":
        return "x" * (conf.get("MAX_RETURN_VALUE_BYTES") + 1)
    if kind == "big_unicode":  # fewer characters than the limit, more bytes
        return "é" * (conf.get("MAX_RETURN_VALUE_BYTES") // 2 + 1)
    if kind == "poison":  # refused by a trigger the test installs (the write fails, not the encoding)
        return {"poison": True}
    raise ValueError(kind)


class EvilStr(Exception):
    """An exception whose str() raises."""

    def __str__(self):
        raise RuntimeError("no str for you")

    def __repr__(self):
        raise RuntimeError("no repr either")


@task(max_attempts=2)
def hostile_evil_str():
    raise EvilStr("hidden")


@task(max_attempts=1)
def hostile_error_message():
    """Fails with a message no database column can store as it is (NUL, a lone surrogate)."""
    raise ValueError("bad\x00value \ud800 end")


@task(takes_context=True, max_attempts=1)
def hostile_checkpoint(context, kind="nul"):
    """Tries to save an unstorable checkpoint; returns what save_checkpoint raised."""
    value = {"v": "a\x00b"} if kind == "nul" else {"v": "\udc80"}
    try:
        context.save_checkpoint(value)
    except ValueError as exc:
        return type(exc).__name__
    return "saved"


@task(timeout=0.5, max_attempts=2)
def hostile_overstays(seconds=4.0):
    """Runs past its 0.5 s timeout (twice: FAILED after the second attempt)."""
    import time

    time.sleep(seconds)
    return "too late"


# -- Tasks of the hostile-input tests (tests/integration/test_bad_input.py, test_fuzz.py). --


@task(max_attempts=1)
def echo(value=None):
    """Returns what it was given."""
    return value


@task(http=True, max_attempts=1)
def http_echo(*args, **kwargs):
    """Takes any arguments (over HTTP too); returns how many it got."""
    return len(args) + len(kwargs)


@task(max_attempts=1)
def literal(text):
    """Returns the Python literal ``text`` (ast.literal_eval): return values that arguments
    cannot carry (NUL, lone surrogates, tuples, non-string keys, any depth)."""
    import ast

    return ast.literal_eval(text)


def _record_finished(sender, task_result, **kwargs):
    """A task_finished receiver of the project: one line "<job id> <status>" per signal, in the
    file DJJOBS_TEST_FINISHED_FILE names (connected only when it is set)."""
    with open(os.environ["DJJOBS_TEST_FINISHED_FILE"], "a") as f:
        f.write(f"{task_result.id} {task_result.status}\n")


if os.environ.get("DJJOBS_TEST_FINISHED_FILE"):
    from djjobs.compat import task_finished

    task_finished.connect(_record_finished, dispatch_uid="tests.testapp.record_finished")


@task(max_attempts=1)
def hostile_interrupts():
    """Raises KeyboardInterrupt, which the executor lets through: it ends the job's thread."""
    raise KeyboardInterrupt


# -- flow control (tests/integration/test_flow.py, tests/acceptance/test_flow_workers.py) ------


@task(takes_context=True, fifo_key=lambda account, n, **kw: f"account:{account}")
def fifo_record(context, account, n, ms=0, fail=False):
    """Records an Execution labelled "<account>:<n>", sleeps ``ms``; ``fail`` raises."""
    import time

    Execution.objects.create(
        job_id=context.task_result.id, attempt=context.attempt, pid=os.getpid(), label=f"{account}:{n}"
    )
    time.sleep(ms / 1000)
    if fail:
        raise RuntimeError(f"{account}:{n} failed")
    return n


@task(takes_context=True, fifo_key=lambda account, n: f"held:{account}", fifo_on_failure="hold", max_attempts=1)
def fifo_held(context, account, n):
    """Fails when n is 1; a FAILED job keeps its key."""
    Execution.objects.create(
        job_id=context.task_result.id, attempt=context.attempt, pid=os.getpid(), label=f"held:{account}:{n}"
    )
    if n == 1:
        raise RuntimeError("the first one fails")
    return n


@task(takes_context=True, concurrency=2)
def two_at_a_time(context, ms=0):
    import time

    Execution.objects.create(job_id=context.task_result.id, attempt=context.attempt, pid=os.getpid(), label="two")
    time.sleep(ms / 1000)


@task(takes_context=True, concurrency=1, concurrency_key=lambda customer, ms=0: f"customer:{customer}")
def one_per_customer(context, customer, ms=0):
    import time

    Execution.objects.create(
        job_id=context.task_result.id, attempt=context.attempt, pid=os.getpid(), label=f"customer:{customer}"
    )
    time.sleep(ms / 1000)


@task(takes_context=True, rate_limit="5/2s")
def five_per_two_seconds(context):
    Execution.objects.create(job_id=context.task_result.id, attempt=context.attempt, pid=os.getpid(), label="rate")


@task(takes_context=True)
def reindex(context, item, version=0):
    """Debounce tests: records the arguments it ran with."""
    Execution.objects.create(
        job_id=context.task_result.id, attempt=context.attempt, pid=os.getpid(), label=f"reindex:{item}:{version}"
    )
