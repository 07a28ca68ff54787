"""Tumbling windows: fixed-size, back to back, each element in exactly one.

State per key: ``{start: entry}``, an entry being ``[fires, timer, acc...]``. A
window's timer is set at ``end - 1`` (fire) and, with allowed lateness, again at
``end - 1 + allowed_lateness`` (purge).
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

from continust.pipelines.windows.aggregates import Aggregate
from continust.pipelines.windows.assigners import Tumbling
from continust.pipelines.windows.elements import Event, Output, hashable
from continust.pipelines.windows.eventtime import Watermarks, watermark_fast_path
from continust.pipelines.windows.operator import FIRES, TIMER, WindowOperator

__all__ = ["TumblingOperator"]


class TumblingOperator(WindowOperator):
    """The window operator over :class:`Tumbling` windows."""

    assigner_type = Tumbling

    def __init__(
        self,
        assigner: Tumbling,
        *,
        aggregate: Aggregate | Sequence[str] | None = None,
        allowed_lateness_ms: int = 0,
    ) -> None:
        super().__init__(assigner, aggregate=aggregate, allowed_lateness_ms=allowed_lateness_ms)
        self._size = assigner.size_ms
        self._offset = assigner.offset_ms

    def _batch(
        self, events: Iterable[Event], wmk: Watermarks | None, inp: Hashable, out: list[Output]
    ) -> None:
        size = self._size
        off = self._offset
        last = size - 1
        state = self._state
        heap = self._heap
        push = heapq.heappush
        stats = self._stats
        agg = self.aggregate
        wm = self._wm
        in_max, seen, lag = watermark_fast_path(wmk, inp)
        new: float
        for key, ts, value in events:
            if ts > wm:
                # Every window of ts ends after the watermark: not fired, not late.
                start = ts - (ts - off) % size
                wins = state.get(key)
                if wins is None:
                    wins = state[key] = {}
                e = wins.get(start)
                if e is None:
                    f = start + last
                    if stats:
                        wins[start] = [0, f, 1, value, value, value]
                    else:
                        wins[start] = [0, f, agg.add(agg.create(), value), None, None, None]
                    push(heap, (f, self._seq, key, start))
                    self._seq += 1
                elif stats:
                    e[2] += 1
                    e[3] += value
                    if value < e[4]:
                        e[4] = value
                    elif value > e[5]:
                        e[5] = value
                else:
                    e[2] = agg.add(e[2], value)
            else:
                self._slow(key, ts, value, out)
            if ts > in_max:
                in_max = ts
                if seen is not None:  # single input: observe() inlined
                    seen[inp] = ts
                    new = ts - lag
                else:
                    assert wmk is not None
                    new = wmk.observe(ts, inp)
                if new > wm:
                    wm = self._wm = new
                    if heap[0][0] <= wm if heap else False:
                        self._fire_timers(out)

    def _slow(self, key: Hashable, ts: int, value: Any, out: list[Output]) -> None:
        wm = self._wm
        size = self._size
        start = ts - (ts - self._offset) % size
        f = start + size - 1
        c = f + self.allowed_lateness_ms
        if c <= wm:
            self._late(key, ts, value, out)
            return
        wins = self._state.setdefault(key, {})
        e = wins.get(start)
        if e is None:
            e = wins[start] = self._new_entry(value)
            if f > wm:
                e[TIMER] = f
            else:  # first element of a window already past its end: fire now
                e[TIMER] = c
                e[FIRES] = 1
                out.append(self._record(key, start, start + size, 1, e))
            self._push(e[TIMER], key, start)
            return
        self._add(e, value)
        if f <= wm:  # late but within allowed lateness: fire again
            e[FIRES] += 1
            out.append(self._record(key, start, start + size, e[FIRES], e))

    def _fire_timers(self, out: list[Output]) -> None:
        heap = self._heap
        wm = self._wm
        state = self._state
        size = self._size
        lateness = self.allowed_lateness_ms
        pop = heapq.heappop
        while heap and heap[0][0] <= wm:
            t, _, key, start = pop(heap)
            wins = state[key]
            e = wins[start]
            f = start + size - 1
            if t == f:
                e[FIRES] += 1
                out.append(self._record(key, start, start + size, e[FIRES], e))
                if lateness:
                    e[TIMER] = f + lateness
                    self._push(e[TIMER], key, start)
                    continue
            del wins[start]
            if not wins:
                del state[key]

    def _open(self, out: list[Output]) -> None:
        for key, wins in self._state.items():
            for start, e in wins.items():
                if not e[FIRES]:
                    out.append(self._record(key, start, start + self._size, 0, e))

    def _dump_state(self) -> tuple[list[list[Any]], list[list[Any]]]:
        keys = [
            [key, [[s, e[FIRES], e[TIMER], self._dump_acc(e)] for s, e in wins.items()]]
            for key, wins in self._state.items()
        ]
        return keys, [[t[0], t[1], t[2], t[3]] for t in self._heap]

    def _load_state(
        self, keys: list[Any], timers: list[Any]
    ) -> tuple[dict[Hashable, Any], list[tuple[Any, ...]]]:
        state: dict[Hashable, Any] = {}
        for key, wins in keys:
            state[hashable(key)] = {
                s: [fires, timer, *self._load_acc(acc)] for s, fires, timer, acc in wins
            }
        return state, [(t, seq, hashable(key), s) for t, seq, key, s in timers]
