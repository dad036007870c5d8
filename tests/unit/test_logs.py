"""BatchingStreamHandler: lines written in batches, warnings and flushes at once, nothing lost."""

import io
import logging

import pytest

from djjobs.logs import BatchingStreamHandler, flush_all


@pytest.fixture(autouse=True)
def _fast_paths_on(settings):
    """These tests are of a speed-up (djjobs.db.fast): on, even in CI's run with them off."""
    settings.DJJOBS = {**settings.DJJOBS, "FAST_PATHS": True}


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


def _record_line(handler, logger, msg, *args):
    """The line logging itself would write for logger.info(msg, *args) through ``handler``."""
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, msg, args, None)
    return handler.format(record) + "\n"


@pytest.fixture
def default_setup():
    """run_workers' default set-up: one BatchingStreamHandler with DEFAULT_FORMAT, nothing else.

    Call it in the test's body: pytest adds its capture handlers to the loggers it finds
    when the test starts, and any second handler turns the direct path off."""
    from djjobs.logs import DEFAULT_FORMAT, Formatter

    logger = logging.getLogger("djjobs.test_direct")
    saved = logger.handlers, logger.propagate, logger.filters, logger.level

    def setup():
        stream = io.StringIO()
        handler = BatchingStreamHandler(stream, delay=60)
        handler.setFormatter(Formatter(DEFAULT_FORMAT))
        logger.handlers, logger.propagate, logger.filters = [handler], False, []
        logger.setLevel(logging.INFO)
        return logger, stream, handler

    yield setup
    logger.handlers, logger.propagate, logger.filters, logger.level = saved


def test_a_line_written_directly_reads_as_logging_would_write_it(default_setup):
    from djjobs.logs import direct_handler

    logger, stream, handler = default_setup()
    assert direct_handler(logger, logging.INFO) is handler
    handler.write_line(logging.INFO, logger.name, "job started task=a.b id=1")
    handler.flush()
    written = stream.getvalue()
    expected = _record_line(handler, logger, "job started task=%s id=%s", "a.b", "1")
    # Same text but the milliseconds of the time stamp (the two were made a moment apart).
    assert (
        written.split(" ", 2)[2] == expected.split(" ", 2)[2] == "INFO djjobs.test_direct job started task=a.b id=1\n"
    )
    assert written[:19] == expected[:19] or written[:16] == expected[:16]
    assert written[19] == "," and written[20:23].isdigit() and written[23] == " "


def test_anything_that_could_see_or_change_the_record_turns_the_direct_path_off(default_setup):
    from djjobs.logs import direct_handler

    logger, _stream, handler = default_setup()

    def direct():
        return direct_handler(logger, logging.INFO) is not None

    assert direct()
    logger.addFilter(lambda record: True)
    assert not direct()
    logger.filters = []
    handler.addFilter(lambda record: True)
    assert not direct()
    handler.filters = []
    handler.setFormatter(logging.Formatter("%(message)s"))
    assert not direct()
    from djjobs.logs import DEFAULT_FORMAT, Formatter

    handler.setFormatter(Formatter(DEFAULT_FORMAT))
    handler.setLevel(logging.WARNING)
    assert not direct()
    handler.setLevel(logging.NOTSET)
    logger.addHandler(logging.NullHandler())  # a second handler
    assert not direct()
    logger.handlers = [handler]
    logger.propagate = True
    root_handler = logging.NullHandler()
    logging.getLogger().addHandler(root_handler)  # an ancestor's handler would get it too
    try:
        assert not direct()
    finally:
        logging.getLogger().removeHandler(root_handler)
    factory = logging.getLogRecordFactory()
    logging.setLogRecordFactory(lambda *args, **kwargs: factory(*args, **kwargs))
    try:
        assert not direct()
    finally:
        logging.setLogRecordFactory(factory)


def test_the_worker_writes_its_per_job_lines_directly_only_with_the_default_setup(default_setup, monkeypatch):
    from djjobs.worker import turn as process

    logger, stream, handler = default_setup()
    monkeypatch.setattr(process, "logger", logger)
    made = []
    original = logger.makeRecord

    def spy(*args, **kwargs):
        made.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(logger, "makeRecord", spy)
    process._info("job started task=%s id=%s attempt=%d/%d", "t.x", "42", 1, 3)
    assert made == []  # no LogRecord
    logger.addFilter(lambda record: True)
    process._info("job started task=%s id=%s attempt=%d/%d", "t.x", "43", 1, 3)
    assert len(made) == 1  # the usual path
    handler.flush()
    lines = stream.getvalue().splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == [
        "INFO djjobs.test_direct job started task=t.x id=42 attempt=1/3",
        "INFO djjobs.test_direct job started task=t.x id=43 attempt=1/3",
    ]
