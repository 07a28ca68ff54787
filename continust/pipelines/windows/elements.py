"""What windows take in and give out: keyed, timed elements and plain-dict records.

An element is a ``(key, ts, value)`` tuple: ``key`` partitions the windows (any
hashable; a JSON list becomes a tuple), ``ts`` is its event time in integer
milliseconds, ``value`` what the aggregate folds. The operator emits plain dicts,
ready for JSON: window results

    {"key", "start", "end", "max_ts", "fire", "count", "sum", "min", "max"}

(``supersedes`` added when merged sessions replace results already emitted) and
late elements ``{"late": True, "key", "ts", "value"}``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any

__all__ = ["Event", "Output", "element_from_json", "hashable"]

Output = dict[str, Any]
Event = tuple[Hashable, int, Any]


def hashable(obj: Any) -> Any:
    """``obj`` with its JSON lists turned into tuples, so that it can key a dict."""
    if isinstance(obj, list):
        return tuple(hashable(x) for x in obj)
    return obj


def element_from_json(ev: Any, index: int) -> Event:
    """The element of a ``{"key", "ts", "value"}`` object; ValueError naming ``index``."""
    if not isinstance(ev, Mapping):
        raise ValueError(f"event {index}: expected an object with key, ts, value")
    try:
        key, ts, value = ev["key"], ev["ts"], ev["value"]
    except KeyError as missing:
        raise ValueError(f"event {index}: missing {missing.args[0]!r}") from None
    if isinstance(key, list):
        key = hashable(key)
    elif isinstance(key, dict):
        raise ValueError(f"event {index}: key must be a string, number, boolean, null or list")
    if isinstance(ts, float) and ts.is_integer():
        ts = int(ts)
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise ValueError(f"event {index}: ts must be an integer (milliseconds), got {ts!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"event {index}: value must be a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"event {index}: value must be finite, got {value!r}")
    return key, ts, value
