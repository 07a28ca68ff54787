"""The keyed event-time window operator: what every kind of window shares.

``WindowOperator(assigner, ...)`` builds the operator for the assigner's kind
(``tumbling``, ``sliding``, ``session``); each kind keeps its own state and
timers, and this base holds what they share: the watermark and how it advances,
allowed lateness, late elements, the records emitted, the accumulator slots and
snapshots. Flink's ``WindowOperator`` with its ``EventTimeTrigger``; the rules
are written out in ``docs/windows.md``.

The hot path (:meth:`WindowOperator.process_batch`) keeps per-key dicts of small
lists and one heap of timers. A timer is ``(time, seq, ...)``: ``seq`` orders
timers of one time by when they were set, so firing order never depends on keys.
"""

from __future__ import annotations

import copy
import heapq
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

from continust.pipelines.windows.aggregates import DEFAULT_FIELDS, Aggregate, Stats
from continust.pipelines.windows.assigners import Assigner
from continust.pipelines.windows.elements import Event, Output
from continust.pipelines.windows.eventtime import (
    NEG_INF,
    POS_INF,
    Watermarks,
    check_millis,
    decode_time,
    encode_time,
)

__all__ = ["WindowOperator"]

# Window entries are small lists. Tumbling: [fires, timer, acc...]; sessions add
# start, end and the superseded windows. Stats accumulators take four slots
# (count, sum, min, max); any other aggregate keeps its accumulator in slot 2.
FIRES, TIMER, ACC, SUM, MIN, MAX, START, END, SUP = range(9)


class WindowOperator:
    """Keyed event-time window operator (Flink's ``WindowOperator`` + ``EventTimeTrigger``).

    ``process`` adds one element at the current watermark; ``advance_watermark``
    moves event time forward and fires/purges windows; ``process_batch`` does both
    for many elements (the fast path). Every method returns the outputs it
    produced, in emission order: window results and late elements.

    ``WindowOperator(assigner)`` returns the subclass for the assigner's kind.
    """

    assigner_type: type[Any] = object

    def __new__(cls, *args: Any, **kwargs: Any) -> WindowOperator:
        if cls is not WindowOperator:  # a kind named directly (or copy and pickle)
            return super().__new__(cls)
        assigner = args[0] if args else kwargs.get("assigner")
        kind = _kind_for(assigner)
        if kind is None:
            raise TypeError("assigner must be Tumbling, Sliding or Session")
        return super().__new__(kind)

    def __init__(
        self,
        assigner: Assigner,
        *,
        aggregate: Aggregate | Sequence[str] | None = None,
        allowed_lateness_ms: int = 0,
    ) -> None:
        if not isinstance(assigner, self.assigner_type):
            raise TypeError(f"{type(self).__name__} needs a {self.assigner_type.__name__} assigner")
        check_millis("allowed_lateness_ms", allowed_lateness_ms)
        if allowed_lateness_ms < 0:
            raise ValueError("allowed_lateness_ms must be >= 0")
        if aggregate is None:
            aggregate = Stats()
        elif isinstance(aggregate, str):
            aggregate = Stats((aggregate,))
        elif not isinstance(aggregate, Aggregate):
            aggregate = Stats(tuple(aggregate))
        self.assigner = assigner
        self.aggregate: Aggregate = aggregate
        self.allowed_lateness_ms = allowed_lateness_ms
        self._stats = isinstance(aggregate, Stats)
        self._fields = aggregate.fields if isinstance(aggregate, Stats) else DEFAULT_FIELDS
        self._plain_stats = self._stats and self._fields == DEFAULT_FIELDS
        self._wm: float = NEG_INF
        self._heap: list[tuple[Any, ...]] = []
        self._seq = 0
        self._state: dict[Hashable, Any] = {}
        self.late_count = 0
        self.fired_count = 0
        self.unassigned_count = 0

    # ------------------------------------------------------------------ public API

    @property
    def watermark(self) -> float:
        """The current watermark (-inf before the first, +inf after :meth:`flush`)."""
        return self._wm

    def process(self, key: Hashable, ts: int, value: Any) -> list[Output]:
        """Add one element at the current watermark (which this does not move)."""
        return self.process_batch(((key, ts, value),))

    def process_batch(
        self,
        events: Iterable[Event],
        watermarks: Watermarks | None = None,
        input: Hashable = 0,
    ) -> list[Output]:
        """Add ``(key, ts, value)`` elements in arrival order.

        With ``watermarks``, each element's timestamp is then observed on
        ``input`` and the operator advances to the combined watermark, exactly as
        ``process`` + ``watermarks.observe`` + ``advance_watermark`` per element.
        """
        out: list[Output] = []
        try:
            self._batch(events, watermarks, input, out)
        finally:
            if watermarks is not None:
                watermarks.recompute()
        return out

    def advance_watermark(self, watermark: float) -> list[Output]:
        """Move event time to ``watermark`` (ignored unless it increases)."""
        out: list[Output] = []
        if watermark > self._wm:
            self._wm = watermark
            if self._heap and self._heap[0][0] <= watermark:
                self._fire_timers(out)
        return out

    def flush(self) -> list[Output]:
        """End of input: fire every remaining window (watermark +infinity)."""
        return self.advance_watermark(POS_INF)

    # ------------------------------------------------------------------ each kind's

    def _batch(
        self, events: Iterable[Event], wmk: Watermarks | None, inp: Hashable, out: list[Output]
    ) -> None:
        """Add elements, advancing the watermark after each when ``wmk`` is given."""
        raise NotImplementedError

    def _fire_timers(self, out: list[Output]) -> None:
        """Fire or purge the windows whose timers the watermark has reached."""
        raise NotImplementedError

    def _dump_state(self) -> tuple[list[list[Any]], list[list[Any]]]:
        """The keys' windows and the live timers, as JSON-ready lists."""
        raise NotImplementedError

    def _load_state(
        self, keys: list[Any], timers: list[Any]
    ) -> tuple[dict[Hashable, Any], list[tuple[Any, ...]]]:
        """The state and timer heap (not yet a heap) that :meth:`_dump_state` wrote."""
        raise NotImplementedError

    def open_windows(self) -> list[Output]:
        """The windows that have not fired yet, each as the result it would give now
        (``fire`` 0); the operator's state and counters are left as they were."""
        fired = self.fired_count
        out: list[Output] = []
        try:
            self._open(out)
        finally:
            self.fired_count = fired
        return out

    def _open(self, out: list[Output]) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ records

    def _late(self, key: Hashable, ts: int, value: Any, out: list[Output]) -> None:
        self.late_count += 1
        out.append({"late": True, "key": key, "ts": ts, "value": value})

    def _record(self, key: Hashable, start: int, end: int, fires: int, e: list[Any]) -> Output:
        """Build a result from an entry whose accumulator starts at slot ACC."""
        self.fired_count += 1
        if self._plain_stats:
            return {
                "key": key,
                "start": start,
                "end": end,
                "max_ts": end - 1,
                "fire": fires,
                "count": e[ACC],
                "sum": e[SUM],
                "min": e[MIN],
                "max": e[MAX],
            }
        rec: Output = {"key": key, "start": start, "end": end, "max_ts": end - 1, "fire": fires}
        if self._stats:
            values = {
                "count": e[ACC],
                "sum": e[SUM],
                "min": e[MIN],
                "max": e[MAX],
                "mean": e[SUM] / e[ACC],
            }
            for f in self._fields:
                rec[f] = values[f]
        else:
            result = self.aggregate.result(e[ACC])
            if isinstance(result, Mapping):
                rec.update(result)
            else:
                rec["result"] = result
        return rec

    # ------------------------------------------------------------------ entries

    def _new_entry(self, value: Any, extra: int = 0) -> list[Any]:
        if self._stats:
            e = [0, None, 1, value, value, value]
        else:
            agg = self.aggregate
            e = [0, None, agg.add(agg.create(), value), None, None, None]
        if extra:
            e.extend([None] * extra)
        return e

    def _add(self, e: list[Any], value: Any) -> None:
        if self._stats:
            e[ACC] += 1
            e[SUM] += value
            if value < e[MIN]:
                e[MIN] = value
            if value > e[MAX]:
                e[MAX] = value
        else:
            e[ACC] = self.aggregate.add(e[ACC], value)

    def _merge_into(self, e: list[Any], other: list[Any]) -> None:
        if self._stats:
            e[ACC] += other[ACC]
            e[SUM] += other[SUM]
            if other[MIN] < e[MIN]:
                e[MIN] = other[MIN]
            if other[MAX] > e[MAX]:
                e[MAX] = other[MAX]
        else:
            e[ACC] = self.aggregate.merge(e[ACC], other[ACC])

    def _push(self, time: float, *item: Any) -> None:
        heapq.heappush(self._heap, (time, self._seq, *item))
        self._seq += 1

    # ------------------------------------------------------------------ checkpoints

    def _config(self) -> dict[str, Any]:
        agg = self.aggregate
        return {
            "assigner": self.assigner.to_json(),
            "allowed_lateness_ms": self.allowed_lateness_ms,
            "aggregate": list(agg.fields) if isinstance(agg, Stats) else type(agg).__name__,
        }

    def _dump_acc(self, e: list[Any]) -> list[Any]:
        if self._stats:
            return list(e[ACC : MAX + 1])
        return [copy.deepcopy(e[ACC])]

    def _load_acc(self, acc: list[Any]) -> list[Any]:
        if self._stats:
            return list(acc)
        return [copy.deepcopy(acc[0]), None, None, None]

    def snapshot(self) -> dict[str, Any]:
        """The operator's whole state as JSON-serialisable data (a copy)."""
        keys, timers = self._dump_state()
        return {
            "version": 1,
            "config": self._config(),
            "watermark": encode_time(self._wm),
            "seq": self._seq,
            "late_count": self.late_count,
            "fired_count": self.fired_count,
            "unassigned_count": self.unassigned_count,
            "keys": copy.deepcopy(keys),
            "timers": copy.deepcopy(timers),
        }

    def restore(self, snap: Mapping[str, Any]) -> None:
        """Replace this operator's state by ``snap`` (from :meth:`snapshot`)."""
        if snap.get("version") != 1:
            raise ValueError("unknown window snapshot version")
        if snap["config"] != self._config():
            raise ValueError(
                f"snapshot was taken with another window configuration: {snap['config']}"
            )
        self._wm = decode_time(snap["watermark"])
        self._seq = snap["seq"]
        self.late_count = snap["late_count"]
        self.fired_count = snap["fired_count"]
        self.unassigned_count = snap["unassigned_count"]
        state, heap = self._load_state(snap["keys"], snap["timers"])
        heapq.heapify(heap)
        self._state = state
        self._heap = heap


def _kind_for(assigner: object) -> type[WindowOperator] | None:
    """The operator class for ``assigner``'s kind of window, if it is one."""
    # The kinds subclass WindowOperator, so they are imported here, not at the top.
    from continust.pipelines.windows.session import SessionOperator
    from continust.pipelines.windows.sliding import SlidingOperator
    from continust.pipelines.windows.tumbling import TumblingOperator

    kinds: tuple[type[WindowOperator], ...] = (TumblingOperator, SlidingOperator, SessionOperator)
    for kind in kinds:
        if isinstance(assigner, kind.assigner_type):
            return kind
    return None
