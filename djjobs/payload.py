"""JSON encoding rules for what a job stores: args, kwargs, return values, checkpoints."""

import json
from typing import Any

_encode = json.JSONEncoder(allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode


def encode(value: Any, what: str) -> str:
    """``value`` as compact JSON text; ValueError naming ``what`` if it is not plain JSON.

    Only plain JSON is accepted (dict with str keys, list/tuple, str, int, float, bool, None);
    NaN and infinities are refused because JSON has no spelling for them.
    """
    try:
        text = _encode(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable: {exc}") from None
    _check_keys(value, what)
    return text


def byte_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def to_json(value: Any, what: str) -> tuple[Any, int]:
    """Return ``value`` as it will read back from the database, and its encoded size in bytes."""
    text = encode(value, what)
    return json.loads(text), byte_size(text)


def _check_keys(value: Any, what: str) -> None:
    # json.dumps turns 1 into "1" silently: the task would read back a different dict.
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{what} must be JSON-serialisable: dict key {key!r} is not a string")
            if isinstance(item, (dict, list, tuple)):
                _check_keys(item, what)
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, (dict, list, tuple)):
                _check_keys(item, what)
