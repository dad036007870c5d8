"""Bad input gets a clear error at enqueue and writes nothing."""

import math
import time
from datetime import datetime, timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from djjobs import task
from djjobs.compat import InvalidTask
from djjobs.models import Job
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def nothing_written(request):
    yield
    if "writes_jobs" not in request.fixturenames:
        assert Job.objects.count() == 0


@pytest.fixture
def writes_jobs():
    """Marks a test that enqueues on purpose (nothing_written does not apply)."""


def test_task_defined_inside_a_function_is_refused():
    with pytest.raises(InvalidTask, match="module level"):

        @task()
        def local():
            pass


@pytest.mark.parametrize(
    "args,kwargs",
    [
        ((object(),), {}),
        ((math.nan,), {}),
        ((), {"x": math.inf}),
        (({1, 2},), {}),
        ((datetime(2030, 1, 1),), {}),  # noqa: DTZ001 - any datetime is refused
        (({1: "int key"},), {}),
    ],
    ids=["object", "nan", "inf", "set", "datetime", "int-key"],
)
def test_arguments_that_are_not_json_are_refused(args, kwargs):
    with pytest.raises(InvalidTask, match="JSON-serialisable"):
        tasks.add.enqueue(*args, **kwargs)


@pytest.mark.parametrize("priority", [101, -101, 1.5])
def test_priority_out_of_range_is_refused(priority):
    with pytest.raises(InvalidTask, match="priority"):
        tasks.add.using(priority=priority).enqueue(1, 2)


def test_naive_run_after_is_refused():
    with pytest.raises(InvalidTask, match="aware"):
        tasks.add.using(run_after=datetime(2030, 1, 1)).enqueue(1, 2)  # noqa: DTZ001 - naive on purpose


def test_unknown_queue_is_refused():
    with pytest.raises(InvalidTask, match="nope"):
        tasks.add.using(queue_name="nope").enqueue(1, 2)


def test_oversize_payload_is_refused():
    with override_settings(DJJOBS={"MAX_PAYLOAD_BYTES": 100}):
        with pytest.raises(InvalidTask, match="limit is 100"):
            tasks.add.enqueue("x" * 200, 1)


def test_default_payload_limit_is_one_mebibyte():
    with pytest.raises(InvalidTask, match="limit is 1048576"):
        tasks.add.enqueue("x" * (1024 * 1024), 1)


@pytest.mark.parametrize(
    "option,value",
    [
        ("max_attempts", 0),
        ("max_attempts", 1.5),
        ("retry_backoff", -1),
        ("timeout", -3),
        ("unique_key", ""),
        ("unique_key", "k" * 256),
    ],
)
def test_invalid_options_are_refused(option, value):
    with pytest.raises(InvalidTask, match=option):
        tasks.add.using(**{option: value}).enqueue(1, 2)


def test_unknown_using_option_is_a_type_error():
    with pytest.raises(TypeError, match="colour"):
        tasks.add.using(colour="red")


def test_run_after_must_be_a_time():
    with pytest.raises(InvalidTask, match="run_after"):
        tasks.add.using(run_after="tomorrow").enqueue(1, 2)


def test_enqueue_many_with_a_bad_item_writes_nothing():
    with pytest.raises(InvalidTask):
        tasks.add.enqueue_many([(1, 2), (object(), 2)])
    with pytest.raises(InvalidTask, match="tuples of args or dicts"):
        tasks.add.enqueue_many([(1, 2), 5])


def test_task_workers_could_not_find_is_refused():
    from djjobs.tasks import JobTask

    def hidden(x):
        return x

    hidden.__qualname__ = "hidden"  # looks module-level, but tests.testapp.tasks has no "hidden"
    hidden.__module__ = "tests.testapp.tasks"
    orphan = JobTask(func=hidden)
    with pytest.raises(InvalidTask, match=r"Unknown task: Task 'tests\.testapp\.tasks\.hidden' cannot be imported"):
        orphan.enqueue(1)
    with pytest.raises(InvalidTask, match="Unknown task"):
        orphan.enqueue_many([(1,)])


def test_task_whose_path_names_another_task_is_refused():
    from djjobs.tasks import JobTask

    impostor = JobTask(func=_clone(tasks.add.func))  # same dotted path as tasks.add, another function
    with pytest.raises(InvalidTask, match="names another object"):
        impostor.enqueue(1, 2)


def _clone(func):
    import types

    clone = types.FunctionType(func.__code__, func.__globals__, func.__name__)
    clone.__qualname__, clone.__module__ = func.__qualname__, func.__module__
    return clone


# -- NUL, lone surrogates, nesting (issue 13): refused before anything is written ---------------


def deep(levels, leaf=1):
    """``leaf`` inside ``levels`` nested lists (deep(2) == [[1]])."""
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


def deep_dict(levels, leaf=1):
    value = leaf
    for _ in range(levels):
        value = {"k": value}
    return value


# (args, kwargs, what the message says). The args list and the kwargs dict are level 1 of
# DJJOBS['MAX_JSON_DEPTH'] (64): an argument may be 63 levels deep.
HOSTILE = {
    "nul-in-a-value": ((["a\x00b"],), {}, "NUL character"),
    "nul-in-a-kwarg": ((), {"x": "\x00"}, "NUL character"),
    "nul-in-a-dict-key": (({"a\x00": 1},), {}, "NUL character"),
    "nul-in-a-nested-key": ((), {"x": [{"ok": {"b\x00": 1}}]}, "NUL character"),
    "lone-surrogate": (("\ud800",), {}, "lone surrogate"),
    "lone-surrogate-in-a-key": ((), {"x": {"\udfff": 1}}, "lone surrogate"),
    "nesting-65": ((deep(64),), {}, "nested more than 64 levels"),
    "nesting-65-dicts": ((), {"x": deep_dict(64)}, "nested more than 64 levels"),
    "nesting-700": ((deep(700),), {}, "nested more than 64 levels"),
    "nesting-100000": ((deep(100_000),), {}, "nested more than 64 levels"),
}
HOSTILE_IDS = list(HOSTILE)


def _hostile(name):
    return HOSTILE[name]


@pytest.mark.parametrize("name", HOSTILE_IDS)
def test_hostile_arguments_are_refused_by_enqueue(name):
    args, kwargs, message = _hostile(name)
    with pytest.raises(InvalidTask, match=message):
        tasks.http_echo.enqueue(*args, **kwargs)


@pytest.mark.parametrize("name", HOSTILE_IDS)
def test_hostile_arguments_are_refused_by_enqueue_many(name):
    args, kwargs, message = _hostile(name)
    calls = [(1,), {"a": 2}, kwargs if kwargs else args, (3,)]
    with pytest.raises(InvalidTask, match=message):
        tasks.http_echo.enqueue_many(calls)


@pytest.mark.parametrize("name", HOSTILE_IDS)
def test_hostile_arguments_are_refused_through_using(name):
    args, kwargs, message = _hostile(name)
    with pytest.raises(InvalidTask, match=message):  # the unique-key path builds a Job (ORM insert)
        tasks.http_echo.using(unique_key=f"k-{name}").enqueue(*args, **kwargs)
    with pytest.raises(InvalidTask, match=message):
        tasks.http_echo.using(priority=5, queue_name="urgent", run_after=timedelta(minutes=1)).enqueue(*args, **kwargs)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", ["nul-in-a-value", "lone-surrogate", "nesting-700", "nesting-100000"])
def test_outside_a_transaction_nothing_is_committed(name):
    """Autocommit: a row inserted before the error would stay (issue 13: 600-800 deep raised
    RecursionError after the INSERT)."""
    args, kwargs, message = _hostile(name)
    for enqueue in (tasks.http_echo.enqueue, tasks.http_echo.using(unique_key="k").enqueue):
        with pytest.raises(InvalidTask, match=message):
            enqueue(*args, **kwargs)
    with pytest.raises(InvalidTask, match=message):
        tasks.http_echo.enqueue_many([(1,), args])


def test_a_hundred_thousand_levels_are_refused_fast():
    value = deep(100_000)
    started = time.perf_counter()
    for _ in range(10):
        with pytest.raises(InvalidTask, match="nested more than 64 levels"):
            tasks.echo.enqueue(value)
        with pytest.raises(InvalidTask, match="nested more than 64 levels"):
            tasks.echo.enqueue_many([(value,)])
    assert time.perf_counter() - started < 1.0  # 20 refusals: the check stops at level 65


def test_the_depth_limit_is_64_levels_counting_the_args_list(writes_jobs):
    at_limit = tasks.echo.enqueue(deep(63))
    keyword = tasks.echo.enqueue(value=deep_dict(63))
    assert Job.objects.get(pk=at_limit.id).args == [deep(63)]
    assert Job.objects.get(pk=keyword.id).kwargs == {"value": deep_dict(63)}
    with pytest.raises(InvalidTask, match="nested more than 64 levels"):
        tasks.echo.enqueue(deep(64))
    with override_settings(DJJOBS={"MAX_JSON_DEPTH": 3}):
        tasks.echo.enqueue([[1]])
        with pytest.raises(InvalidTask, match="nested more than 3 levels deep"):
            tasks.echo.enqueue([[[1]]])
    assert Job.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_failure_building_the_task_result_writes_nothing(monkeypatch):
    """Django's TaskResult normalises args recursively; it is made before the INSERT, and a
    RecursionError there (MAX_JSON_DEPTH raised near Python's limit) is an InvalidTask."""
    from djjobs.lifecycle import insert

    def overflow(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(insert, "make_result", overflow)
    for enqueue in (tasks.echo.enqueue, tasks.echo.using(unique_key="k").enqueue):
        with pytest.raises(InvalidTask, match="nested too deeply"):
            enqueue([1])
    with pytest.raises(InvalidTask, match="nested too deeply"):
        tasks.echo.enqueue_many([([1],), ([2],)])


@pytest.mark.parametrize("key", ["a\x00b", "\ud800"])
def test_unique_key_must_be_storable(key):
    with pytest.raises(InvalidTask, match="unique_key must not contain"):
        tasks.echo.using(unique_key=key).enqueue(1)


@pytest.mark.parametrize("queue", ["a\x00b", "\udc80", "q" * 65, ""])
def test_any_queue_backend_still_refuses_names_the_column_cannot_hold(settings, queue):
    from djjobs.compat import task_backends

    settings.TASKS = {"default": {"BACKEND": "djjobs.backend.JobsBackend", "QUEUES": []}}
    assert not task_backends["default"].queues  # QUEUES = []: any name
    with pytest.raises(InvalidTask, match="queue_name must be"):
        tasks.echo.using(queue_name=queue).enqueue(1)


@pytest.mark.parametrize(
    "option,value",
    [
        ("max_attempts", 2**31),
        ("max_attempts", True),
        ("retry_backoff", math.inf),
        ("retry_backoff", 365 * 24 * 3600 + 1),
        ("timeout", math.inf),
        ("timeout", 1e300),
        ("timeout", True),
    ],
)
def test_options_a_worker_could_not_use_are_refused(option, value):
    with pytest.raises(InvalidTask, match=option):
        tasks.echo.using(**{option: value}).enqueue(1)


def test_run_after_beyond_the_last_datetime_is_refused():
    with pytest.raises(InvalidTask, match="run_after"):
        tasks.echo.using(run_after=timedelta(days=999_999_999))


# -- the scheduler's path: the same rules --------------------------------------------------------


@pytest.mark.parametrize("args", [[deep(64)], [{"k": deep_dict(64)}]], ids=["list", "dict"])
def test_a_schedule_too_deep_for_enqueue_skips_its_run_and_writes_no_job(args):
    from djjobs.models import Schedule
    from djjobs.schedules import tick as scheduler

    # Written around validation (Schedule.clean() refuses it): what the scheduler does with it.
    schedule = Schedule.objects.create(name="deep", task_path="tests.testapp.tasks.echo", interval=60, args=args)
    with pytest.raises(scheduler.ScheduleError, match="nested more than 64 levels"):
        scheduler.run_now(schedule)
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=timezone.now() - timedelta(seconds=1))
    assert scheduler.tick() == 0
    schedule.refresh_from_db()
    # 1 skipped run, or 2 when an interval boundary also fell in that last second (the
    # next_run_at set above is off the schedule's grid): never a job.
    assert schedule.skipped_runs in (1, 2) and "nested more than 64 levels" in schedule.last_skip_reason


# -- events: InvalidEvent, and neither the event nor a job ------------------------------------


@pytest.mark.parametrize("name", [n for n in HOSTILE_IDS if n != "nesting-100000"] + ["nesting-100000"])
@pytest.mark.parametrize("event", ["nobody.listens", "audit.everything"])  # no subscriber; one
def test_publish_refuses_hostile_payloads(name, event):
    import djjobs
    from djjobs.events import InvalidEvent
    from djjobs.models import Event

    args, kwargs, message = _hostile(name)
    payload = {"args": list(args), **kwargs}
    with pytest.raises(InvalidEvent, match=message.replace("64", "6[24]")):
        djjobs.publish(event, payload)
    assert Event.objects.count() == 0


def test_event_payloads_are_limited_two_levels_less_as_subscribers_get_them_inside_event(writes_jobs):
    """A subscriber's kwargs are {"event": {"payload": ...}}: its payload may be 62 levels deep."""
    import djjobs
    from djjobs.events import InvalidEvent
    from djjobs.models import Event

    published = djjobs.publish("audit.everything", deep_dict(62))
    job = Job.objects.get(pk=published[0].id)
    assert job.kwargs["event"]["payload"] == deep_dict(62)
    with pytest.raises(InvalidEvent, match="nested more than 62 levels deep"):
        djjobs.publish("audit.everything", deep_dict(63))
    with pytest.raises(InvalidEvent, match="nested more than 62 levels deep"):
        djjobs.publish("nobody.listens", deep_dict(63))
    assert Event.objects.count() == 1 and Job.objects.count() == 1


@pytest.mark.parametrize("field", ["name", "idempotency_key"])
@pytest.mark.parametrize("text", ["a\x00b", "a\ud800"])
def test_publish_refuses_names_and_keys_a_column_cannot_hold(field, text):
    import djjobs
    from djjobs.events import InvalidEvent
    from djjobs.models import Event

    call = {"name": "audit.everything", "payload": {}, "idempotency_key": "k", field: text}
    with pytest.raises(InvalidEvent, match="NUL or lone surrogates"):
        djjobs.publish(**call)
    assert Event.objects.count() == 0


# -- workflows: InvalidTask, and neither the run nor a job ------------------------------------


@pytest.mark.parametrize("name", HOSTILE_IDS)
def test_workflow_start_refuses_hostile_input(name):
    from djjobs.models import WorkflowRun
    from tests.testapp.workflows import checkout

    args, kwargs, message = _hostile(name)
    with pytest.raises(InvalidTask, match=message):
        checkout.start(order_id=1, extra=list(args) if args else kwargs["x"] if "x" in kwargs else kwargs)
    assert WorkflowRun.objects.count() == 0


@pytest.mark.parametrize("name", ["nul-in-a-value", "lone-surrogate", "nesting-65"])
def test_workflow_declarations_refuse_hostile_names_and_kwargs(name):
    from djjobs.workflows import Step, Workflow

    args, kwargs, message = _hostile(name)
    with pytest.raises(InvalidTask, match=message):
        Step("s", tasks.echo, kwargs={"value": args[0] if args else kwargs})
    with pytest.raises(InvalidTask, match="without NUL or lone surrogates"):
        Workflow("a\x00b" if "nul" in name else "a\ud800b", [Step("s", tasks.echo)])


@pytest.mark.django_db(transaction=True)
def test_a_step_returning_a_value_at_the_depth_limit_does_not_break_the_run(writes_jobs):
    """A step's non-dict return value sits one level down in the run's context: the next step's
    kwargs may be 65 levels deep. They are written anyway; the completion must not fail."""
    from djjobs.models import RunStatus
    from djjobs.testing import run_jobs
    from djjobs.workflows import Step, Workflow

    flow = Workflow(
        "deep-context", [Step("deep", tasks.literal, kwargs={"text": repr(deep(64))}), Step("next", tasks.http_echo)]
    )  # takes **kwargs: the whole context
    run = flow.start()
    assert run_jobs() == 2
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCESSFUL
    last = Job.objects.get(workflow_run=run, workflow_step="next")
    assert last.kwargs == {"deep": deep(64)}
    assert last.status == "SUCCESSFUL" and last.return_value == 1


# -- checkpoints and progress --------------------------------------------------------------------


@pytest.fixture
def running_context(writes_jobs):
    """A JobContext of a job this "worker" owns."""
    import uuid

    from djjobs.context import JobContext

    result = tasks.echo.enqueue(1)
    token = uuid.uuid4()
    Job.objects.filter(pk=result.id).update(status="RUNNING", lease_token=token)
    return JobContext(task_result=result, job_id=result.id, lease_token=token)


@pytest.mark.parametrize(
    "name",
    [
        "nul-in-a-value",
        "nul-in-a-dict-key",
        "lone-surrogate",
        "lone-surrogate-in-a-key",
        "nesting-65",
        "nesting-100000",
    ],
)
def test_save_checkpoint_refuses_hostile_data_and_keeps_the_last_one(running_context, name):
    args, kwargs, message = _hostile(name)
    assert running_context.save_checkpoint({"done": 1})
    with pytest.raises(ValueError, match=message):
        running_context.save_checkpoint(list(args) or kwargs)
    assert Job.objects.get(pk=running_context.job_id).checkpoint == {"done": 1}
    assert running_context.checkpoint == {"done": 1}


def test_progress_messages_are_stored_with_nul_and_surrogates_escaped(running_context):
    assert running_context.set_progress(50, "half\x00way \ud800 there")
    job = Job.objects.get(pk=running_context.job_id)
    assert (job.progress, job.progress_message) == (50.0, "half\\x00way \\ud800 there")
    assert running_context.set_progress(float("nan"))
    assert Job.objects.get(pk=running_context.job_id).progress == 0.0
