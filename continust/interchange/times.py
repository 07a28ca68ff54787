"""The times of JSON Lines: written as ``canonical.timestamp_text``, read back checked.

A time a line carries is text in ISO 8601 with its zone. An import refuses anything
else (a number, a date without a zone, text that is no date) by the line's name for
the thing and the field, before it writes a row, so the whole file is refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from continust.core.errors import InvalidEvent
from continust.log import canonical


def written(value: datetime | None) -> str | None:
    """A time as a line carries it (None stays None)."""
    return canonical.timestamp_text(value) if value is not None else None


def read(where: str, name: str, value: Any) -> datetime | None:
    """The time a line's field carries, None for none; refuse one that is not a time
    with its zone."""
    if value is None:
        return None
    moment = None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidEvent(f"{where}: {name} is not a time with its zone: {value!r}")
    return moment
