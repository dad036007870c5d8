"""What one attempt produced (an Outcome), and how an exception is told in an error record.
Pure: no ORM, no I/O. The executor makes Outcomes; lifecycle.finish records them."""

import traceback
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Outcome:
    """What one attempt produced: a JSON return value, or the exception it raised."""

    return_value: Any = None
    return_json: str = "null"  # return_value as JSON text, for batched completion
    error: BaseException | None = None
    traceback: str = ""
    duration: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.error is None


# What a task raised is the task's code too: its __str__, __repr__ or __module__ may raise or
# be anything. Everything djjobs logs or stores about it goes through these three.


def exception_message(exc: BaseException) -> str:
    """``str(exc)``, or a placeholder when the exception's own ``__str__`` raises."""
    try:
        text = str(exc)
        if type(text) is not str:  # a str subclass with methods of its own
            text = str.__str__(text)
        return text
    except BaseException as inner:  # as in execute(): the task's code, not the worker's
        if isinstance(inner, KeyboardInterrupt):
            raise
        return f"<unprintable {type(exc).__name__}: __str__ raised {type(inner).__name__}>"


def exception_class_path(exc: BaseException) -> str:
    cls = type(exc)
    module = getattr(cls, "__module__", None)
    return f"{module}.{cls.__qualname__}" if type(module) is str else cls.__qualname__


def format_traceback(exc: BaseException) -> str:
    """The traceback text of ``exc`` (the traceback module copes with an unprintable exception;
    this copes with the traceback module failing too)."""
    try:
        return "".join(traceback.format_exception(exc))
    except BaseException as inner:
        if isinstance(inner, KeyboardInterrupt):
            raise
        return (
            f"{exception_class_path(exc)}: {exception_message(exc)}\n"
            f"(the traceback could not be formatted: {type(inner).__name__})\n"
        )
