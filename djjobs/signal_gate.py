"""Send Django's task signals only when a receiver would do something with them.

Django connects its own receivers to task_enqueued, task_started and task_finished: each logs
one line (DEBUG when enqueued; INFO, or ERROR for a failure, when started and finished) on the
``django.tasks`` logger (``django_tasks`` with the backport). Out of the box those lines go
nowhere (Django's console handler only prints with DEBUG=True), yet sending costs a TaskResult
and a log record per job and signal: a third of a no-op job's time, a tenth of a bulk
enqueue's. So a signal is sent when it has a receiver of the project's own, or when Django's
line would reach a handler; with only Django's receivers and nowhere for their lines to go,
nothing observable is lost by not sending.

Whether a line would reach a handler is worked out as ``logging`` would (levels, propagation,
each handler's level and filters), once per level and cached; the cache is dropped when a
setting changes (DEBUG decides Django's filters). A LOGGING change at run time through
``logging.config`` without a setting change is not seen: restart the worker.
"""

import importlib
import logging
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import Signal

from .db import fast

_MODULES = ("django.tasks.signals", "django_tasks.signals")

_log_receivers: dict[object, logging.Logger] | None = None
_visible: dict[tuple[str, int], bool] = {}
# (signal, sender, level) -> (the signal's receivers list as it was, the answer then)
_answers: dict[tuple, tuple[list, bool]] = {}


def wanted(signal: Signal, sender: Any, level: int) -> bool:
    """Is sending ``signal`` for ``sender`` (a line at ``level`` for Django's logger) any use?

    Asked twice per job: the answer is kept until the signal's receivers change (connect
    and disconnect change the list compared here) or a setting does.
    """
    key = (signal, sender, level)
    answer = _answers.get(key)
    receivers = signal.receivers
    if answer is not None and answer[0] == receivers:
        return answer[1]
    result = _wanted(signal, sender, level)
    _answers[key] = (list(receivers), result)
    return result


def _wanted(signal: Signal, sender: Any, level: int) -> bool:
    live = fast.live_receivers(signal, sender)
    if live is None:  # speed-ups off, or Django's private API changed: send when anyone listens
        return signal.has_listeners(sender)
    sync, async_ = live
    if async_:
        return True
    if not sync:
        return False
    known = _django_log_receivers()
    loggers = []
    for receiver in sync:
        logger = known.get(receiver)
        if logger is None:
            return True  # the project's own receiver
        loggers.append(logger)
    return any(_would_emit(logger, level) for logger in loggers)


def _django_log_receivers() -> dict[object, logging.Logger]:
    global _log_receivers
    if _log_receivers is None:
        found = {}
        for name in _MODULES:
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            logger = getattr(module, "logger", None)
            if not isinstance(logger, logging.Logger):
                continue
            for attr in ("log_task_enqueued", "log_task_started", "log_task_finished"):
                func = getattr(module, attr, None)
                if func is not None:
                    found[func] = logger
        _log_receivers = found
    return _log_receivers


def _would_emit(logger: logging.Logger, level: int) -> bool:
    key = (logger.name, level)
    visible = _visible.get(key)
    if visible is None:
        visible = _visible[key] = _reaches_a_handler(logger, level)
    return visible


def _reaches_a_handler(logger: logging.Logger, level: int) -> bool:
    """Would a record of ``level`` logged on ``logger`` be emitted by some handler?"""
    if logger.disabled or not logger.isEnabledFor(level):
        return False
    record = logger.makeRecord(logger.name, level, __file__, 0, "Task id=%s path=%s state=%s", ("?", "?", "?"), None)
    if not logger.filter(record):
        return False
    found_handlers = False
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            found_handlers = True
            if level >= handler.level and handler.filter(record):
                return True
        if not current.propagate:
            break
        current = current.parent
    if not found_handlers:  # logging's last resort prints warnings and worse to stderr
        last = logging.lastResort
        return last is not None and level >= last.level
    return False


def _forget(**kwargs: Any) -> None:
    _visible.clear()
    _answers.clear()


setting_changed.connect(_forget, dispatch_uid="djjobs.signal_gate")
