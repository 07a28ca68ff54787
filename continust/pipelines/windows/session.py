"""Session windows: runs of activity closed by a gap of at least ``gap`` ms.

Each element opens ``[ts, ts + gap)``; windows of one key that overlap or touch
merge into one. A session that already fired and then merges with another is
replaced: the merged result lists the windows it supersedes.

State per key: a list of session entries sorted by start, pairwise apart
(neither overlapping nor touching). Each live entry has exactly one live timer,
the one whose time equals ``entry[TIMER]``; entries that grow keep their timer,
which is pushed again at the new end when it comes due ("lazy").
"""

from __future__ import annotations

import copy
import heapq
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

from continust.pipelines.windows.aggregates import Aggregate
from continust.pipelines.windows.assigners import Session
from continust.pipelines.windows.elements import Event, Output, hashable
from continust.pipelines.windows.eventtime import Watermarks, watermark_fast_path
from continust.pipelines.windows.operator import END, FIRES, START, SUP, TIMER, WindowOperator

__all__ = ["SessionOperator"]


class SessionOperator(WindowOperator):
    """The window operator over :class:`Session` windows."""

    assigner_type = Session

    def __init__(
        self,
        assigner: Session,
        *,
        aggregate: Aggregate | Sequence[str] | None = None,
        allowed_lateness_ms: int = 0,
    ) -> None:
        super().__init__(assigner, aggregate=aggregate, allowed_lateness_ms=allowed_lateness_ms)
        self._gap = assigner.gap_ms

    def _batch(
        self, events: Iterable[Event], wmk: Watermarks | None, inp: Hashable, out: list[Output]
    ) -> None:
        gap = self._gap
        state = self._state
        heap = self._heap
        push = heapq.heappush
        stats = self._stats
        agg = self.aggregate
        wm = self._wm
        in_max, seen, lag = watermark_fast_path(wmk, inp)
        new: float
        for key, ts, value in events:
            sess = state.get(key) if ts > wm else None
            if sess is not None:
                e = sess[-1]
                if ts >= e[6] and e[0] == 0:  # at or after the latest session's start
                    end = ts + gap
                    if ts <= e[7]:  # touches or overlaps it: extend it
                        if end > e[7]:
                            e[7] = end
                        if stats:
                            e[2] += 1
                            e[3] += value
                            if value < e[4]:
                                e[4] = value
                            elif value > e[5]:
                                e[5] = value
                        else:
                            e[2] = agg.add(e[2], value)
                    else:  # after every session of this key: a new one
                        f = end - 1
                        if stats:
                            e = [0, f, 1, value, value, value, ts, end, None]
                        else:
                            acc = agg.add(agg.create(), value)
                            e = [0, f, acc, None, None, None, ts, end, None]
                        sess.append(e)
                        push(heap, (f, self._seq, e, key))
                        self._seq += 1
                else:
                    self._slow(key, ts, value, out)
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
        gap = self._gap
        lateness = self.allowed_lateness_ms
        a, b = ts, ts + gap
        sess = self._state.get(key)
        hits = [i for i, s in enumerate(sess) if s[START] <= b and s[END] >= a] if sess else []
        if not hits:
            f = b - 1
            if f + lateness <= wm:  # its own window is purged already: late
                self._late(key, ts, value, out)
                return
            e = self._new_entry(value, extra=3)
            e[START], e[END] = a, b
            if sess is None:
                sess = self._state[key] = []
            i = 0
            while i < len(sess) and sess[i][START] < a:
                i += 1
            sess.insert(i, e)
            if f > wm:
                e[TIMER] = f
            else:
                e[TIMER] = f + lateness
                e[FIRES] = 1
                out.append(self._record(key, a, b, 1, e))
            self._push(e[TIMER], e, key)
            return
        assert sess is not None
        first, last = hits[0], hits[-1]
        e = sess[first]
        start, end = min(a, e[START]), max(b, sess[last][END])
        if first == last and start == e[START] and end == e[END]:
            # Inside an existing session: same window, one more element.
            self._add(e, value)
            if end - 1 <= wm:
                e[FIRES] += 1
                out.append(self._record(key, start, end, e[FIRES], e))
            return
        # A new window [start, end) replaces the merged ones.
        superseded: list[list[int]] = []
        for s in sess[first : last + 1]:
            if s[FIRES]:
                superseded.append([s[START], s[END]])
            elif s[SUP]:
                superseded.extend(s[SUP])
        for s in sess[first + 1 : last + 1]:
            self._merge_into(e, s)
            s[TIMER] = None  # its timers are dead
        del sess[first + 1 : last + 1]
        self._add(e, value)
        e[START], e[END] = start, end
        e[FIRES] = 0
        e[SUP] = superseded or None
        f = end - 1
        if f <= wm:
            # Fired now (Flink's onElement); only the cleanup timer remains.
            e[FIRES] = 1
            out.append(self._session_record(key, e))
            e[TIMER] = f + lateness
            self._push(e[TIMER], e, key)
        elif e[TIMER] > f:
            e[TIMER] = f
            self._push(f, e, key)

    def _session_record(self, key: Hashable, e: list[Any]) -> Output:
        rec = self._record(key, e[START], e[END], e[FIRES], e)
        if e[SUP]:
            rec["supersedes"] = e[SUP]
            e[SUP] = None
        return rec

    def _fire_timers(self, out: list[Output]) -> None:
        heap = self._heap
        wm = self._wm
        state = self._state
        lateness = self.allowed_lateness_ms
        pop = heapq.heappop
        push = heapq.heappush
        while heap and heap[0][0] <= wm:
            t, _, e, key = pop(heap)
            if e[TIMER] != t:
                continue  # stale: the session merged away or its timer moved
            f = e[END] - 1
            if t < f:  # the session grew since: its end is later now
                e[TIMER] = f
                push(heap, (f, self._seq, e, key))
                self._seq += 1
                continue
            if t == f:
                e[FIRES] += 1
                out.append(self._session_record(key, e))
                if lateness:
                    e[TIMER] = f + lateness
                    push(heap, (e[TIMER], self._seq, e, key))
                    self._seq += 1
                    continue
            elif t < f + lateness:
                e[TIMER] = f + lateness
                push(heap, (e[TIMER], self._seq, e, key))
                self._seq += 1
                continue
            e[TIMER] = None
            sess = state[key]
            for i, x in enumerate(sess):
                if x is e:
                    del sess[i]
                    break
            if not sess:
                del state[key]

    def _open(self, out: list[Output]) -> None:
        for key, sessions in self._state.items():
            for e in sessions:
                if not e[FIRES]:
                    out.append(self._record(key, e[START], e[END], 0, e))

    def _dump_state(self) -> tuple[list[list[Any]], list[list[Any]]]:
        keys = [
            [
                key,
                [[e[START], e[END], e[FIRES], e[TIMER], e[SUP], self._dump_acc(e)] for e in sess],
            ]
            for key, sess in self._state.items()
        ]
        # Only live timers: a dead one names a session that merged away or moved on.
        timers = [[t[0], t[1], t[3], t[2][START]] for t in self._heap if t[2][TIMER] == t[0]]
        return keys, timers

    def _load_state(
        self, keys: list[Any], timers: list[Any]
    ) -> tuple[dict[Hashable, Any], list[tuple[Any, ...]]]:
        state: dict[Hashable, Any] = {}
        by_start: dict[tuple[Any, int], list[Any]] = {}
        for key, sessions in keys:
            k = hashable(key)
            sess = []
            for start, end, fires, timer, sup, acc in sessions:
                e = [fires, timer, *self._load_acc(acc), start, end, copy.deepcopy(sup)]
                sess.append(e)
                by_start[(k, start)] = e
            state[k] = sess
        heap: list[tuple[Any, ...]] = []
        for t, seq, key, start in timers:
            k = hashable(key)
            heap.append((t, seq, by_start[(k, start)], k))
        return state, heap
