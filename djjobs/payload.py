"""JSON encoding rules for what a job stores: args, kwargs, return values, checkpoints.

One set of rules for everything a job stores, so that what is accepted can always be written
and read back on every database:
- plain JSON only (dict with str keys, list/tuple, str, int, float, bool, None), no NaN/Infinity;
- at most ``DJJOBS['MAX_JSON_DEPTH']`` levels of nesting (64), checked without recursion, so a
  hostile value cannot exhaust the stack or take seconds to refuse;
- no NUL character (PostgreSQL's jsonb and text cannot store U+0000) and no lone surrogate
  (``"\\ud800"`` is not valid UTF-8), in strings or dict keys.
"""

import json
from typing import Any

from . import conf

_encode = json.JSONEncoder(allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode

_CONTAINERS = (dict, list, tuple)


def encode(value: Any, what: str, nested: int = 0) -> str:
    """``value`` as compact JSON text; ValueError naming ``what`` if it breaks a rule above.

    ``nested``: how many levels down ``value`` will be stored inside a job's arguments (an
    event's payload is two levels down in its subscribers' kwargs); the depth limit counts them."""
    if isinstance(value, _CONTAINERS):
        _check_structure(value, what, conf.get("MAX_JSON_DEPTH") - nested)
    try:
        text = _encode(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable: {exc}") from None
    except RecursionError:  # pragma: no cover - the depth check refuses such values first
        raise ValueError(f"{what} is nested too deeply") from None
    if "\\u0000" in text and _has_nul(value):
        raise ValueError(f"{what} must not contain the NUL character (\\x00): databases cannot store it.")
    if not _utf8(text):
        raise ValueError(f"{what} must be valid Unicode: it contains a lone surrogate (such as '\\ud800').")
    return text


def storable(text: str) -> bool:
    """Whether a text column can hold ``text``: no NUL (PostgreSQL refuses it) and no lone
    surrogate (not UTF-8). For names and keys djjobs stores as they are (queue, unique key,
    event name, idempotency key)."""
    return "\x00" not in text and _utf8(text)


def _utf8(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def byte_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def to_json(value: Any, what: str, nested: int = 0) -> tuple[Any, int]:
    """Return ``value`` as it will read back from the database, and its encoded size in bytes
    (``nested``: as for encode())."""
    text = encode(value, what, nested)
    return json.loads(text), byte_size(text)


def clean_text(text: str) -> str:
    """``text`` made storable: NUL shown as ``\\x00``, lone surrogates as ``\\udXXX``.

    For what djjobs writes itself about a failure (an exception's message, a traceback), which
    must be stored whatever the task's code put in it."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _check_structure(value: Any, what: str, max_depth: int) -> None:
    """Dict keys are strings, nesting is at most ``max_depth`` deep; iterative (no recursion)."""
    # json.dumps turns 1 into "1" silently: the task would read back a different dict.
    stack = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if depth > max_depth:
            raise ValueError(
                f"{what} are nested more than {max_depth} levels deep (DJJOBS['MAX_JSON_DEPTH'])."
                if what.endswith("arguments")
                else f"{what} is nested more than {max_depth} levels deep (DJJOBS['MAX_JSON_DEPTH'])."
            )
        if isinstance(node, dict):
            for key, item in node.items():
                if not isinstance(key, str):
                    raise ValueError(f"{what} must be JSON-serialisable: dict key {key!r} is not a string")
                if isinstance(item, _CONTAINERS):
                    push((item, depth + 1))
        else:
            for item in node:
                if isinstance(item, _CONTAINERS):
                    push((item, depth + 1))


def _has_nul(value: Any) -> bool:
    """Whether a NUL is in a string or key of ``value`` (the encoded text's ``\\u0000`` may be an
    escaped backslash followed by ``u0000``)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return True
        elif isinstance(node, dict):
            for key, item in node.items():
                if "\x00" in key:
                    return True
                stack.append(item)
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
    return False
