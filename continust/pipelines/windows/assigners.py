"""Window assigners: which windows ``[start, end)`` an element's timestamp falls in.

Tumbling windows tile time, sliding windows overlap (or leave gaps, when the slide
is longer than the size), session windows start at each element and grow by
merging (``continust.pipelines.windows.session``). All are aligned on event time,
never on arrival; ``docs/windows.md`` gives the formulas.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Any

from continust.pipelines.windows.eventtime import check_millis

__all__ = ["Assigner", "Session", "Sliding", "Tumbling"]


@dataclass(frozen=True, slots=True)
class Tumbling:
    """Tumbling windows of ``size_ms``, aligned on ``offset_ms`` (|offset| < size)."""

    size_ms: int
    _: KW_ONLY
    offset_ms: int = 0

    def __post_init__(self) -> None:
        check_millis("size_ms", self.size_ms)
        check_millis("offset_ms", self.offset_ms)
        if self.size_ms <= 0:
            raise ValueError(f"tumbling size_ms must be > 0, got {self.size_ms}")
        if abs(self.offset_ms) >= self.size_ms:
            raise ValueError("tumbling windows need abs(offset_ms) < size_ms")

    def assign(self, ts: int) -> list[tuple[int, int]]:
        """The windows ``[(start, end)]`` an element at ``ts`` belongs to."""
        start = ts - (ts - self.offset_ms) % self.size_ms
        return [(start, start + self.size_ms)]

    def to_json(self) -> dict[str, Any]:
        return {"type": "tumbling", "size_ms": self.size_ms, "offset_ms": self.offset_ms}


@dataclass(frozen=True, slots=True)
class Sliding:
    """Sliding windows of ``size_ms`` every ``slide_ms`` (|offset| < slide, as Flink).

    ``slide_ms > size_ms`` is allowed (Flink allows it): elements between two
    windows belong to none.
    """

    size_ms: int
    slide_ms: int
    _: KW_ONLY
    offset_ms: int = 0

    def __post_init__(self) -> None:
        check_millis("size_ms", self.size_ms)
        check_millis("slide_ms", self.slide_ms)
        check_millis("offset_ms", self.offset_ms)
        if self.size_ms <= 0:
            raise ValueError(f"sliding size_ms must be > 0, got {self.size_ms}")
        if self.slide_ms <= 0:
            raise ValueError(f"sliding slide_ms must be > 0, got {self.slide_ms}")
        if abs(self.offset_ms) >= self.slide_ms:
            raise ValueError("sliding windows need abs(offset_ms) < slide_ms")

    def assign(self, ts: int) -> list[tuple[int, int]]:
        """The windows ``[(start, end)]`` an element at ``ts`` belongs to, latest first."""
        start = ts - (ts - self.offset_ms) % self.slide_ms
        out = []
        while start > ts - self.size_ms:
            out.append((start, start + self.size_ms))
            start -= self.slide_ms
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "sliding",
            "size_ms": self.size_ms,
            "slide_ms": self.slide_ms,
            "offset_ms": self.offset_ms,
        }


@dataclass(frozen=True, slots=True)
class Session:
    """Session windows closed by ``gap_ms`` of inactivity (gap > 0)."""

    gap_ms: int

    def __post_init__(self) -> None:
        check_millis("gap_ms", self.gap_ms)
        if self.gap_ms <= 0:
            raise ValueError(f"session gap_ms must be > 0, got {self.gap_ms}")

    def assign(self, ts: int) -> list[tuple[int, int]]:
        """The window an element opens before merging: ``[(ts, ts + gap)]``."""
        return [(ts, ts + self.gap_ms)]

    def to_json(self) -> dict[str, Any]:
        return {"type": "session", "gap_ms": self.gap_ms}


Assigner = Tumbling | Sliding | Session
