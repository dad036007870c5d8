"""BatchingStreamHandler: lines written in batches, warnings and flushes at once, nothing lost."""

import io
import logging

import pytest

from djjobs.logs import BatchingStreamHandler, flush_all


@pytest.fixture
def log():
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream, delay=60)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("djjobs.test_logs")
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    yield logger, stream, handler
    logger.handlers = []


def test_info_lines_wait_and_a_warning_writes_them_all_in_order(log):
    logger, stream, _ = log
    logger.info("one %d", 1)
    logger.info("two")
    assert stream.getvalue() == ""
    logger.warning("three")
    assert stream.getvalue() == "INFO one 1\nINFO two\nWARNING three\n"


def test_flush_all_writes_what_waits(log):
    logger, stream, _ = log
    logger.info("idle worker's line")
    flush_all()
    assert stream.getvalue() == "INFO idle worker's line\n"


def test_lines_older_than_the_delay_are_written_with_the_next_one(log):
    logger, stream, handler = log
    handler.delay = 0
    logger.info("a")
    logger.info("b")
    assert stream.getvalue() == "INFO a\nINFO b\n"


def test_the_text_is_made_when_logged_and_max_lines_bounds_the_batch(log):
    logger, stream, handler = log
    handler.max_lines = 3
    value = ["before"]
    logger.info("%s", value)
    value[0] = "after"
    logger.info("2")
    assert stream.getvalue() == ""
    logger.info("3")
    assert stream.getvalue() == "INFO ['before']\nINFO 2\nINFO 3\n"


def test_logging_shutdown_flushes(log):
    logger, stream, handler = log
    logger.info("last words")
    handler.flush()  # what logging.shutdown() calls at exit
    assert stream.getvalue() == "INFO last words\n"


def test_the_formatter_stamps_lines_as_logging_does():
    from djjobs.logs import Formatter

    ours, theirs = Formatter("%(asctime)s %(message)s"), logging.Formatter("%(asctime)s %(message)s")
    for created in (1_700_000_000.25, 1_700_000_000.75, 1_700_000_001.5):
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert ours.format(record) == theirs.format(record)
