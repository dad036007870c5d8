"""djjobs.db.fast: the private-API speed-ups, and DJJOBS["FAST_PATHS"] = False turning each off.

The whole suite also runs once in CI with them off (DJJOBS_TEST_FAST_PATHS=0, tests/settings.py).
"""

import logging

import pytest
from django.db import connection
from django.test import override_settings

from djjobs import signal_gate
from djjobs.compat import task_finished
from djjobs.db import bound, fast
from djjobs.logs import DEFAULT_FORMAT, BatchingStreamHandler, Formatter, direct_handler
from djjobs.models import Job
from tests.settings import DJJOBS
from tests.testapp import tasks

OFF = {**DJJOBS, "FAST_PATHS": False}
ON = {**DJJOBS, "FAST_PATHS": True}


def test_enabled_follows_the_setting():
    with override_settings(DJJOBS=ON):
        assert fast.enabled()
    with override_settings(DJJOBS=OFF):
        assert not fast.enabled()


@pytest.mark.django_db
@pytest.mark.postgresql
def test_off_the_hot_statements_go_through_djangos_cursor():
    seen = []

    def watcher(execute, sql, params, many, context):
        seen.append(sql.split()[0])
        return execute(sql, params, many, context)

    with override_settings(DJJOBS=ON):
        assert bound.usable(connection)
    with override_settings(DJJOBS=OFF):
        assert not bound.usable(connection)
        # Without a wrapper the kept cursor would be chosen; off, Django's cursor is, and a
        # wrapper installed now sees the statement.
        with connection.execute_wrapper(watcher):
            tasks.add.enqueue(1, 2)
    assert seen == ["INSERT"]
    assert Job.objects.get().args == [1, 2]


def test_off_the_signal_gate_sends_whenever_anyone_listens():
    def receiver(**kwargs):
        pass

    sender = object()
    with override_settings(DJJOBS=OFF):
        assert fast.live_receivers(task_finished, sender) is None
        task_finished.connect(receiver)
        try:
            assert signal_gate.wanted(task_finished, sender, logging.INFO) is True
        finally:
            task_finished.disconnect(receiver)
    with override_settings(DJJOBS=ON):
        assert fast.live_receivers(task_finished, sender) is not None


def test_off_log_lines_go_through_logging():
    logger = logging.getLogger("djjobs.test-fast-paths")
    logger.propagate = False
    handler = BatchingStreamHandler()
    handler.setFormatter(Formatter(DEFAULT_FORMAT))
    logger.addHandler(handler)
    try:
        with override_settings(DJJOBS=ON):
            assert direct_handler(logger, logging.INFO) is handler
        with override_settings(DJJOBS=OFF):
            assert direct_handler(logger, logging.INFO) is None
    finally:
        logger.removeHandler(handler)
