"""A log handler for busy workers: lines are written in batches, not one system call each.

A worker logs two INFO lines per job. Written one by one, each line is a write() system call,
and each call lets another of the worker's threads take the GIL: at thousands of jobs a second
that costs more than the jobs. This handler formats every record at once (so the text is what
it was when logged) but writes the lines of a short period together:

- a WARNING or worse is written at once, with everything before it;
- other lines wait at most ``delay`` seconds (0.1) when more lines keep coming, and the worker
  loop calls ``flush_all()`` on every turn, so an idle worker's lines appear at once too;
- ``flush()`` (logging calls it at exit) writes what is left.

``run_workers`` installs one on the ``djjobs`` logger when your LOGGING configures no handler
for it (or the root logger). It can be used in LOGGING like any handler:
``{"class": "djjobs.logs.BatchingStreamHandler"}``.
"""

import logging
import sys
import time
import weakref
from typing import TextIO

from .db import fast

# The format run_workers gives its default handler (and the one the direct path below spells).
DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

_handlers: "weakref.WeakSet[BatchingStreamHandler]" = weakref.WeakSet()


class BatchingStreamHandler(logging.StreamHandler):
    def __init__(self, stream: TextIO | None = None, delay: float = 0.1, max_lines: int = 1000) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self.delay = delay
        self.max_lines = max_lines
        self._lines: list[str] = []
        self._first_at = 0.0
        _handlers.add(self)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:  # noqa: BLE001 - as StreamHandler does: a bad record is reported, not raised
            self.handleError(record)
            return
        # emit() runs under the handler's lock (Handler.handle), like flush() below.
        self._add(line, urgent=record.levelno >= logging.WARNING)

    def write_line(self, level: int, name: str, message: str) -> None:
        """Append one line as format() would spell it with DEFAULT_FORMAT, without a LogRecord.

        For direct_handler()'s callers: the caller checked the level, and that this handler
        is the only place the line would go."""
        created = time.time()
        line = f" {logging.getLevelName(level)} {name} {message}{self.terminator}"
        formatter, lock = self.formatter, self.lock
        assert isinstance(formatter, Formatter) and lock is not None, "direct_handler() checked the formatter"
        with lock:
            self._add(formatter.stamp(created) + line)

    def _add(self, line: str, urgent: bool = False) -> None:
        """Queue a formatted line (the lock held); write the batch if it is urgent, full or old."""
        now = time.monotonic()
        if not self._lines:
            self._first_at = now
        self._lines.append(line)
        if urgent or len(self._lines) >= self.max_lines or now - self._first_at >= self.delay:
            self._write()

    def flush(self) -> None:
        self.acquire()
        try:
            self._write()
        finally:
            self.release()

    def _write(self) -> None:
        if self._lines:
            text, self._lines = "".join(self._lines), []
            try:
                self.stream.write(text)
            except Exception:  # noqa: BLE001 - a closed or broken stream: nothing useful to do with the lines
                pass
        super().flush()


class Formatter(logging.Formatter):
    """logging.Formatter whose default time stamp is formatted once a second, not per line."""

    _second: int | None = None
    _stamp = ""
    default_msec_format: str = "%s,%03d"  # logging.Formatter's, never None here

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None or self.converter is not time.localtime:
            return super().formatTime(record, datefmt)
        return self.stamp(record.created, record.msecs)

    def stamp(self, created: float, msecs: float | None = None) -> str:
        """The default time stamp of a record created at ``created`` (time.time())."""
        second = int(created)
        if second != self._second:  # under the handler's lock, like the rest of format()
            self._stamp = time.strftime(self.default_time_format, self.converter(created))
            self._second = second
        if msecs is None:
            msecs = int((created - second) * 1000)  # as LogRecord computes it
        return self.default_msec_format % (self._stamp, msecs)


def direct_handler(logger: logging.Logger, level: int) -> "BatchingStreamHandler | None":
    """The handler a line at ``level`` on ``logger`` can be written to directly, or None.

    The worker's per-job lines are its hottest log calls, and a LogRecord costs more than a
    no-op job. When the record would go to exactly one BatchingStreamHandler formatting with
    DEFAULT_FORMAT (run_workers' default set-up), with no filter, record factory or logger
    class that could see or change it, the caller writes the line with ``write_line()``:
    the same text, a fraction of the work. Any other set-up gets None, and the caller logs
    as usual. Checked on every call, so a logging change at run time applies at once. Off with
    the other speed-ups (djjobs.db.fast: it reads ``Formatter._fmt``).
    """
    if (
        not fast.enabled()
        or logger.filters
        or type(logger) is not logging.Logger
        or logging.getLogRecordFactory() is not logging.LogRecord
    ):
        return None
    handlers = logger.handlers
    if len(handlers) != 1:
        return None
    handler = handlers[0]
    if (
        type(handler) is not BatchingStreamHandler
        or handler.filters
        or level < handler.level
        or type(handler.formatter) is not Formatter
        or handler.formatter._fmt != DEFAULT_FORMAT
        or handler.formatter.datefmt is not None
        or handler.formatter.converter is not time.localtime
    ):
        return None
    parent = logger.parent if logger.propagate else None
    while parent is not None:  # an ancestor's handler would get the record too
        if parent.handlers:
            return None
        parent = parent.parent if parent.propagate else None
    return handler


def flush_all() -> None:
    """Write the waiting lines of every BatchingStreamHandler (the worker loop calls this)."""
    for handler in list(_handlers):
        if handler._lines:
            handler.flush()
