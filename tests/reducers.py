"""A user reducer, registered through the CONTINUST_REDUCERS setting in a test."""

from __future__ import annotations

from typing import Any


def count_events(state: dict[str, Any], event: Any) -> dict[str, Any]:
    return {"count": state.get("count", 0) + 1}


def negate(state: dict[str, Any], event: Any) -> dict[str, Any]:
    """Multiply the level by -1.0: from 0 it makes a negative zero."""
    return {"level": -1.0 * state.get("level", 0.0)}
