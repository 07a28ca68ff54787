"""Sliding windows: ``size`` long, one starting every ``slide``, aggregated per pane.

State per key: ``(panes, windows)``. A pane ``[p, p + gcd(size, slide))`` holds
the accumulator of its elements, so an element is added once however many
windows it belongs to; a window entry is ``[fires, timer]`` and exists once an
element lands in one of its panes while the window is not purged. A window's
result combines its panes, in time order, when it fires.
"""

from __future__ import annotations

import copy
import heapq
import math
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

from continust.pipelines.windows.aggregates import Aggregate
from continust.pipelines.windows.assigners import Sliding
from continust.pipelines.windows.elements import Event, Output, hashable
from continust.pipelines.windows.eventtime import Watermarks, watermark_fast_path
from continust.pipelines.windows.operator import FIRES, TIMER, WindowOperator

__all__ = ["SlidingOperator"]


class SlidingOperator(WindowOperator):
    """The window operator over :class:`Sliding` windows."""

    assigner_type = Sliding

    def __init__(
        self,
        assigner: Sliding,
        *,
        aggregate: Aggregate | Sequence[str] | None = None,
        allowed_lateness_ms: int = 0,
    ) -> None:
        super().__init__(assigner, aggregate=aggregate, allowed_lateness_ms=allowed_lateness_ms)
        self._size = assigner.size_ms
        self._slide = assigner.slide_ms
        self._offset = assigner.offset_ms
        self._pane = math.gcd(assigner.size_ms, assigner.slide_ms)

    def _batch(
        self, events: Iterable[Event], wmk: Watermarks | None, inp: Hashable, out: list[Output]
    ) -> None:
        size = self._size
        slide = self._slide
        off = self._offset
        g = self._pane
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
                p = ts - (ts - off) % g
                st = state.get(key)
                if st is None:
                    st = state[key] = ({}, {})
                panes: dict[int, list[Any]] = st[0]
                e = panes.get(p)
                if e is not None:
                    if stats:
                        e[0] += 1
                        e[1] += value
                        if value < e[2]:
                            e[2] = value
                        elif value > e[3]:
                            e[3] = value
                    else:
                        e[0] = agg.add(e[0], value)
                else:
                    s = p - (p - off) % slide
                    if s + size <= p:  # between windows (slide > size)
                        self.unassigned_count += 1
                        if not panes and not st[1]:
                            del state[key]
                    else:
                        if stats:
                            panes[p] = [1, value, value, value]
                        else:
                            panes[p] = [agg.add(agg.create(), value)]
                        wins: dict[int, list[Any]] = st[1]
                        low = p - size
                        while s > low:
                            if s not in wins:
                                f = s + size - 1
                                wins[s] = [0, f]
                                push(heap, (f, self._seq, key, s))
                                self._seq += 1
                            s -= slide
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
        slide = self._slide
        lateness = self.allowed_lateness_ms
        p = ts - (ts - self._offset) % self._pane
        s_last = p - (p - self._offset) % slide
        if s_last + size <= p:  # in no window: Flink's isElementLate decides
            if ts + lateness <= wm:
                self._late(key, ts, value, out)
            else:
                self.unassigned_count += 1
            return
        if s_last + size - 1 + lateness <= wm:  # its latest window is purged: all are
            self._late(key, ts, value, out)
            return
        panes, wins = self._state.setdefault(key, ({}, {}))
        e = panes.get(p)
        if e is None:
            if self._stats:
                panes[p] = [1, value, value, value]
            else:
                agg = self.aggregate
                panes[p] = [agg.add(agg.create(), value)]
        elif self._stats:
            e[0] += 1
            e[1] += value
            if value < e[2]:
                e[2] = value
            if value > e[3]:
                e[3] = value
        else:
            e[0] = self.aggregate.add(e[0], value)
        # Flink's order: the assigner's windows, latest start first.
        s = s_last
        while s > p - size:
            f = s + size - 1
            if f + lateness > wm:  # window not purged
                w = wins.get(s)
                if w is None:
                    w = wins[s] = [0, f if f > wm else f + lateness]
                    self._push(w[TIMER], key, s)
                if f <= wm:
                    w[FIRES] += 1
                    out.append(self._window_record(key, s, w[FIRES], panes))
            s -= slide

    def _window_record(
        self, key: Hashable, start: int, fires: int, panes: dict[int, list[Any]]
    ) -> Output:
        size = self._size
        g = self._pane
        end = start + size
        if len(panes) * 2 < size // g:
            parts = [e for p, e in sorted(panes.items()) if start <= p < end]
        else:
            get = panes.get
            parts = [e for e in map(get, range(start, end, g)) if e is not None]
        if self._stats:
            if len(parts) == 1:
                acc: list[Any] = [fires, None, *parts[0]]
            else:
                cs, sums, mins, maxs = zip(*parts, strict=True)
                acc = [fires, None, sum(cs), sum(sums), min(mins), max(maxs)]
        else:
            agg = self.aggregate
            merged = agg.create()
            for e in parts:
                merged = agg.merge(merged, e[0])
            acc = [fires, None, merged, None, None, None]
        return self._record(key, start, end, fires, acc)

    def _fire_timers(self, out: list[Output]) -> None:
        heap = self._heap
        wm = self._wm
        state = self._state
        size = self._size
        slide = self._slide
        g = self._pane
        lateness = self.allowed_lateness_ms
        pop = heapq.heappop
        while heap and heap[0][0] <= wm:
            t, _, key, s = pop(heap)
            st = state[key]
            panes, wins = st
            w = wins[s]
            f = s + size - 1
            if t == f:
                w[FIRES] += 1
                out.append(self._window_record(key, s, w[FIRES], panes))
                if lateness:
                    w[TIMER] = f + lateness
                    self._push(w[TIMER], key, s)
                    continue
            # Purge the window and the panes whose latest window it is.
            del wins[s]
            stop = s + min(slide, size)
            if len(panes) * 2 < (stop - s) // g:
                for p in [p for p in panes if s <= p < stop]:
                    del panes[p]
            else:
                for p in range(s, stop, g):
                    panes.pop(p, None)
            if not wins and not panes:
                del state[key]

    def _open(self, out: list[Output]) -> None:
        for key, (panes, wins) in self._state.items():
            for start, w in wins.items():
                if not w[FIRES]:
                    out.append(self._window_record(key, start, 0, panes))

    def _dump_state(self) -> tuple[list[list[Any]], list[list[Any]]]:
        keys: list[list[Any]] = []
        for key, (panes, wins) in self._state.items():
            if self._stats:
                dumped = [[p, list(e)] for p, e in panes.items()]
            else:
                dumped = [[p, [copy.deepcopy(e[0])]] for p, e in panes.items()]
            keys.append([key, dumped, [[s, w[FIRES], w[TIMER]] for s, w in wins.items()]])
        return keys, [[t[0], t[1], t[2], t[3]] for t in self._heap]

    def _load_state(
        self, keys: list[Any], timers: list[Any]
    ) -> tuple[dict[Hashable, Any], list[tuple[Any, ...]]]:
        state: dict[Hashable, Any] = {}
        for key, panes, wins in keys:
            state[hashable(key)] = (
                {p: (list(e) if self._stats else [copy.deepcopy(e[0])]) for p, e in panes},
                {s: [fires, timer] for s, fires, timer in wins},
            )
        return state, [(t, seq, hashable(key), s) for t, seq, key, s in timers]
