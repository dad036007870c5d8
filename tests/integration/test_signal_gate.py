"""task_started / task_finished are sent when a receiver would do something with them."""

import logging

import pytest
from django.test import override_settings

from djjobs import signal_gate
from djjobs.backend import JobsBackend
from djjobs.compat import task_enqueued, task_finished, task_started
from djjobs.testing import run_jobs
from tests.testapp import tasks


@pytest.fixture(autouse=True)
def _fast_paths_on(settings):
    """These tests are of a speed-up (djjobs.db.fast): on, even in CI's run with them off."""
    settings.DJJOBS = {**settings.DJJOBS, "FAST_PATHS": True}


pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_cache():
    signal_gate._forget()
    yield
    signal_gate._forget()


@pytest.fixture
def django_tasks_logger(monkeypatch):
    """Django's own receivers, logging to a logger configured as Django configures its own by
    default: INFO lines go to a console handler that only prints with DEBUG=True. (A private
    logger, whose handlers the test sets in its body: pytest adds capture handlers, which
    would take the lines, to the loggers it finds when a test starts.)"""
    logger = logging.getLogger("djjobs.tests.django_tasks_stand_in")
    receivers = dict.fromkeys(signal_gate._django_log_receivers(), logger)
    assert len(receivers) == 3  # log_task_enqueued, log_task_started and log_task_finished were found
    monkeypatch.setattr(signal_gate, "_log_receivers", receivers)
    saved = logger.handlers
    yield logger
    logger.handlers = saved


def djangos_default_handler(logger):
    from django.utils.log import RequireDebugTrue

    handler = logging.StreamHandler()
    handler.addFilter(RequireDebugTrue())
    logger.handlers, logger.propagate, logger.level = [handler], False, logging.INFO
    return handler


def test_djangos_receivers_alone_with_nowhere_to_log_are_not_worth_a_send(django_tasks_logger):
    djangos_default_handler(django_tasks_logger)
    with override_settings(DEBUG=False):
        assert not signal_gate.wanted(task_started, JobsBackend, logging.INFO)
        assert not signal_gate.wanted(task_finished, JobsBackend, logging.INFO)
        assert not signal_gate.wanted(task_enqueued, JobsBackend, logging.DEBUG)
    with override_settings(DEBUG=True):  # now Django's console handler prints them
        assert signal_gate.wanted(task_started, JobsBackend, logging.INFO)


def test_a_handler_that_takes_the_line_makes_it_worth_sending(django_tasks_logger):
    logger = django_tasks_logger
    djangos_default_handler(logger)
    with override_settings(DEBUG=False):
        errors = logging.StreamHandler()
        errors.setLevel(logging.ERROR)
        logger.addHandler(errors)
        assert not signal_gate.wanted(task_finished, JobsBackend, logging.INFO)
        assert signal_gate.wanted(task_finished, JobsBackend, logging.ERROR)  # a failure's line


def test_the_projects_own_receivers_always_get_both_signals(django_tasks_logger):
    djangos_default_handler(django_tasks_logger)
    seen = []

    def started(sender, task_result, **kwargs):
        seen.append(("started", task_result.id, task_result.status))

    def finished(sender, task_result, **kwargs):
        seen.append(("finished", task_result.id, task_result.status))

    task_started.connect(started)
    task_finished.connect(finished)
    try:
        with override_settings(DEBUG=False):
            result = tasks.add.enqueue(1, 2)
            run_jobs()
    finally:
        task_started.disconnect(started)
        task_finished.disconnect(finished)
    assert [(kind, status) for kind, job_id, status in seen if job_id == result.id] == [
        ("started", "RUNNING"),
        ("finished", "SUCCESSFUL"),
    ]


def test_the_answer_is_kept_until_a_receiver_connects_or_disconnects(django_tasks_logger):
    djangos_default_handler(django_tasks_logger)

    def mine(sender, **kwargs):
        pass

    with override_settings(DEBUG=False):
        assert not signal_gate.wanted(task_started, JobsBackend, logging.INFO)
        assert not signal_gate.wanted(task_started, JobsBackend, logging.INFO)  # the kept answer
        task_started.connect(mine)
        try:
            assert signal_gate.wanted(task_started, JobsBackend, logging.INFO)
            assert not signal_gate.wanted(task_finished, JobsBackend, logging.INFO)  # another signal
        finally:
            task_started.disconnect(mine)
        assert not signal_gate.wanted(task_started, JobsBackend, logging.INFO)


# -- a failed job's line on Django's logger (issue 18, defect 12) ------------------------------


def test_a_failed_job_is_one_line_on_djangos_logger_and_receivers_still_get_its_traceback(caplog):
    import sys
    import traceback

    from djjobs.compat import BUILTIN_TASKS

    seen = []

    def receiver(sender, task_result, **kwargs):
        exc_type, exc, tb = sys.exc_info()
        seen.append((exc_type, str(exc), [frame.name for frame in traceback.extract_tb(tb)]))

    task_finished.connect(receiver)
    try:
        with caplog.at_level(logging.INFO):
            result = tasks.always_fails.using(max_attempts=1).enqueue()
            run_jobs()
    finally:
        task_finished.disconnect(receiver)
    django_logger = "django.tasks" if BUILTIN_TASKS else "django_tasks"
    (line,) = [r for r in caplog.records if r.name == django_logger and r.levelno == logging.ERROR]
    assert line.getMessage() == (
        f"Task id={result.id} path=tests.testapp.tasks.always_fails state=FAILED error=RuntimeError: boom"
    )
    assert line.exc_info is None and "Traceback" not in caplog.text
    # The receiver's exc_info is the task's exception, its traceback the task's own: no djjobs
    # frame ("_send: raise error") on top of it.
    ((exc_type, message, frames),) = seen
    assert (exc_type, message) == (RuntimeError, "boom")
    assert frames[-1] == "always_fails" and "_send" not in frames


def test_other_records_on_djangos_logger_keep_their_traceback(caplog):
    from djjobs.compat import BUILTIN_TASKS

    logger = logging.getLogger("django.tasks" if BUILTIN_TASKS else "django_tasks")
    with caplog.at_level(logging.ERROR):
        try:
            raise ValueError("not a job's")
        except ValueError:
            logger.exception("something else")
    (record,) = caplog.records
    assert record.exc_info is not None and record.getMessage() == "something else"
