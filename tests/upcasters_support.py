"""An upcaster registered as a Python function, for the schema tests."""

from __future__ import annotations

from typing import Any

from continust.schemas.upcasters import upcaster


@upcaster
def cents(payload: dict[str, Any]) -> dict[str, Any]:
    """Version 2 of ``order.placed`` counts the amount in cents."""
    out = {k: v for k, v in payload.items() if k != "amount"}
    out["cents"] = payload["amount"] * 100
    return out
