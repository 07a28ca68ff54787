"""A user reducer, registered through the CONTINUST_REDUCERS setting in a test."""

from __future__ import annotations

from typing import Any


def count_events(state: dict[str, Any], event: Any) -> dict[str, Any]:
    return {"count": state.get("count", 0) + 1}
