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

_handlers: "weakref.WeakSet[BatchingStreamHandler]" = weakref.WeakSet()


class BatchingStreamHandler(logging.StreamHandler):
    def __init__(self, stream=None, delay: float = 0.1, max_lines: int = 1000):
        super().__init__(stream if stream is not None else sys.stderr)
        self.delay = delay
        self.max_lines = max_lines
        self._lines: list[str] = []
        self._first_at = 0.0
        _handlers.add(self)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:  # as StreamHandler does: a bad record is reported, not raised
            self.handleError(record)
            return
        # emit() runs under the handler's lock (Handler.handle), like flush() below.
        if not self._lines:
            self._first_at = time.monotonic()
        self._lines.append(line)
        if (record.levelno >= logging.WARNING or len(self._lines) >= self.max_lines
                or time.monotonic() - self._first_at >= self.delay):
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
            except Exception:
                pass  # a closed or broken stream: nothing useful to do with the lines
        super().flush()


class Formatter(logging.Formatter):
    """logging.Formatter whose default time stamp is formatted once a second, not per line."""

    _second = None
    _stamp = ""

    def formatTime(self, record, datefmt=None):
        if datefmt is not None or self.converter is not time.localtime:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:  # under the handler's lock, like the rest of format()
            self._stamp = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = second
        return self.default_msec_format % (self._stamp, record.msecs)


def flush_all() -> None:
    """Write the waiting lines of every BatchingStreamHandler (the worker loop calls this)."""
    for handler in list(_handlers):
        if handler._lines:
            handler.flush()
