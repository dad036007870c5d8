"""Bad input gets a clear error at enqueue and writes nothing."""

import math
from datetime import datetime

import pytest
from django.test import override_settings

from djjobs import task
from djjobs.compat import InvalidTask
from djjobs.models import Job
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def nothing_written():
    yield
    assert Job.objects.count() == 0


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
        ((datetime(2030, 1, 1),), {}),
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
        tasks.add.using(run_after=datetime(2030, 1, 1)).enqueue(1, 2)


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
    "option,value", [("max_attempts", 0), ("max_attempts", 1.5), ("retry_backoff", -1), ("timeout", -3),
                     ("unique_key", ""), ("unique_key", "k" * 256)]
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
    with pytest.raises(InvalidTask, match="Unknown task: Task 'tests.testapp.tasks.hidden' cannot be imported"):
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
