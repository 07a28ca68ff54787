"""Event time: durations in milliseconds, watermarks over one or more inputs.

Event time is the time written on each element (``ts``, integer milliseconds), not
the time it arrives. The watermark is the operator's claim that no element older
than it is still expected: ``max timestamp seen - out_of_orderness - 1`` per input,
and the minimum over the inputs when there are several. Lateness is measured
against it: a window whose ``end - 1`` the watermark has reached fires, and it is
purged once the watermark reaches ``end - 1 + allowed_lateness``. The rules are
written out in ``docs/windows.md``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from continust.pipelines.windows.elements import hashable

__all__ = [
    "NEG_INF",
    "POS_INF",
    "Watermarks",
    "check_millis",
    "decode_time",
    "encode_time",
    "watermark_fast_path",
]

NEG_INF = -math.inf
POS_INF = math.inf


def check_millis(name: str, value: object) -> int:
    """Return ``value`` if it is an integer number of milliseconds, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer number of milliseconds, got {value!r}")
    return value


class Watermarks:
    """Bounded-out-of-orderness watermarks over one or more inputs.

    Each input's watermark is ``max timestamp seen - out_of_orderness - 1``
    (-infinity before its first element); the combined watermark is the minimum
    over inputs, as for a Flink operator with several inputs. :meth:`close`
    marks an input finished (its watermark becomes +infinity).
    """

    __slots__ = ("_max", "_ooo", "_current")

    def __init__(self, out_of_orderness_ms: int = 0, *, inputs: int | Iterable[Hashable] = 1):
        check_millis("out_of_orderness_ms", out_of_orderness_ms)
        if out_of_orderness_ms < 0:
            raise ValueError("out_of_orderness_ms must be >= 0")
        names: list[Hashable] = list(range(inputs)) if isinstance(inputs, int) else list(inputs)
        if not names:
            raise ValueError("Watermarks needs at least one input")
        self._ooo = out_of_orderness_ms
        self._max: dict[Hashable, float] = dict.fromkeys(names, NEG_INF)
        self._current: float = NEG_INF

    @property
    def current(self) -> float:
        """The combined watermark (an int once every input has seen an element)."""
        return self._current

    def input_max(self, input: Hashable = 0) -> float:
        return self._max[input]

    def recompute(self) -> float:
        """Combine the inputs' maxima again (after the operator's fast path wrote them)."""
        low = min(self._max.values())
        self._current = low - self._ooo - 1 if low != POS_INF else POS_INF
        return self._current

    def observe(self, ts: int, input: Hashable = 0) -> float:
        """Record an element's timestamp on ``input``; return the combined watermark."""
        seen = self._max
        if ts > seen[input]:
            seen[input] = ts
            if len(seen) == 1:
                self._current = ts - self._ooo - 1
            else:
                self.recompute()
        return self._current

    def close(self, input: Hashable = 0) -> float:
        """Mark ``input`` finished; return the combined watermark."""
        if input not in self._max:
            raise KeyError(input)
        self._max[input] = POS_INF
        return self.recompute()

    def snapshot(self) -> dict[str, Any]:
        return {
            "out_of_orderness_ms": self._ooo,
            "inputs": [[name, encode_time(m)] for name, m in self._max.items()],
        }

    def restore(self, snap: Mapping[str, Any]) -> None:
        if snap["out_of_orderness_ms"] != self._ooo:
            raise ValueError("snapshot was taken with another out_of_orderness_ms")
        restored = {hashable(name): decode_time(m) for name, m in snap["inputs"]}
        if set(restored) != set(self._max):
            raise ValueError("snapshot was taken with other inputs")
        self._max = restored
        self.recompute()


def encode_time(t: float) -> int | str | None:
    """A watermark as JSON: None for -infinity, ``"+inf"`` for +infinity."""
    if t == NEG_INF:
        return None
    if t == POS_INF:
        return "+inf"
    return int(t)


def decode_time(t: int | str | None) -> float:
    """The watermark :func:`encode_time` wrote."""
    if t is None:
        return NEG_INF
    if t == "+inf":
        return POS_INF
    assert isinstance(t, int)
    return t


def watermark_fast_path(
    wmk: Watermarks | None, inp: Hashable
) -> tuple[float, dict[Hashable, float] | None, int]:
    """(input's max timestamp, its dict if the only input, out_of_orderness + 1)."""
    if wmk is None:
        return POS_INF, None, 0
    seen = wmk._max
    return seen[inp], (seen if len(seen) == 1 else None), wmk._ooo + 1
