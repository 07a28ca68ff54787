"""Keyed event-time windows with Apache Flink's semantics.

Pure Python, no Django. The rules (DESIGN.md, "Window semantics"):

* Windows are half-open ``[start, end)``; a result carries ``max_ts = end - 1``.
* Tumbling: ``start = offset + floor((ts - offset) / size) * size``.
* Sliding: the tumbling start with ``slide``, then every ``start - k*slide`` while
  ``start > ts - size``; negative starts are allowed.
* Session: each event opens ``[ts, ts + gap)``; windows that overlap or touch merge.
* The watermark is ``max timestamp seen - out_of_orderness - 1`` per input and the
  minimum over inputs (:class:`Watermarks`). A window fires when the watermark
  reaches ``end - 1`` and is purged when it reaches ``end - 1 + allowed_lateness``.
* An element is late when every window it belongs to is purged (for sessions: the
  window it merges into); late elements go to the output as
  ``{"late": True, "key", "ts", "value"}`` and are counted.
* Within the allowed lateness each further element fires its window again; the
  result carries ``fire`` = 2, 3, ... and supersedes the previous one. When
  sessions merge after one of them fired, the merged result lists the windows it
  replaces in ``supersedes``.
* Windows exist only once an element lands in them; :meth:`WindowOperator.flush`
  fires everything left (watermark +infinity), as Flink does at end of input.

Results are plain dicts (JSON ready)::

    {"key", "start", "end", "max_ts", "fire", "count", "sum", "min", "max"}

The hot path (:meth:`WindowOperator.process_batch`) keeps per-key dicts of small
lists and one heap of timers; sliding windows aggregate per pane (``gcd(size,
slide)``) and combine panes when a window fires.
"""

from __future__ import annotations

import copy
import heapq
import math
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "Aggregate",
    "Reduce",
    "Session",
    "Sliding",
    "Stats",
    "Tumbling",
    "Watermarks",
    "WindowOperator",
    "WindowSpec",
    "run_windows",
    "spec_from_json",
]

Output = dict[str, Any]
Event = tuple[Hashable, int, Any]

NEG_INF = -math.inf
POS_INF = math.inf

STAT_FIELDS = ("count", "sum", "min", "max", "mean")
DEFAULT_FIELDS = ("count", "sum", "min", "max")


def _check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer number of milliseconds, got {value!r}")
    return value


# --------------------------------------------------------------------------- assigners


@dataclass(frozen=True, slots=True)
class Tumbling:
    """Tumbling windows of ``size_ms``, aligned on ``offset_ms`` (|offset| < size)."""

    size_ms: int
    _: KW_ONLY
    offset_ms: int = 0

    def __post_init__(self) -> None:
        _check_int("size_ms", self.size_ms)
        _check_int("offset_ms", self.offset_ms)
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
        _check_int("size_ms", self.size_ms)
        _check_int("slide_ms", self.slide_ms)
        _check_int("offset_ms", self.offset_ms)
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
        _check_int("gap_ms", self.gap_ms)
        if self.gap_ms <= 0:
            raise ValueError(f"session gap_ms must be > 0, got {self.gap_ms}")

    def assign(self, ts: int) -> list[tuple[int, int]]:
        """The window an element opens before merging: ``[(ts, ts + gap)]``."""
        return [(ts, ts + self.gap_ms)]

    def to_json(self) -> dict[str, Any]:
        return {"type": "session", "gap_ms": self.gap_ms}


Assigner = Tumbling | Sliding | Session


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """What ``windows --spec`` describes: an assigner and the time tolerances."""

    assigner: Assigner
    _: KW_ONLY
    out_of_orderness_ms: int = 0
    allowed_lateness_ms: int = 0
    aggregates: tuple[str, ...] = DEFAULT_FIELDS

    def __post_init__(self) -> None:
        _check_int("out_of_orderness_ms", self.out_of_orderness_ms)
        _check_int("allowed_lateness_ms", self.allowed_lateness_ms)
        if self.out_of_orderness_ms < 0:
            raise ValueError("out_of_orderness_ms must be >= 0")
        if self.allowed_lateness_ms < 0:
            raise ValueError("allowed_lateness_ms must be >= 0")
        Stats(tuple(self.aggregates))


_SPEC_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # type: (required, optional)
    "tumbling": (("size_ms",), ("offset_ms",)),
    "sliding": (("size_ms", "slide_ms"), ("offset_ms",)),
    "session": (("gap_ms",), ()),
}
_COMMON_FIELDS = ("type", "out_of_orderness_ms", "allowed_lateness_ms", "aggregates")


def _spec_int(spec: Mapping[str, Any], name: str, default: int | None = None) -> int:
    if name not in spec:
        if default is None:
            raise ValueError(f"{spec['type']} window spec needs {name!r}")
        return default
    value = spec[name]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _check_int(name, value)


def spec_from_json(spec: Mapping[str, Any]) -> WindowSpec:
    """Build a :class:`WindowSpec` from the ``windows --spec`` JSON object.

    ``{"type": "tumbling", "size_ms", "offset_ms"}``,
    ``{"type": "sliding", "size_ms", "slide_ms", "offset_ms"}`` or
    ``{"type": "session", "gap_ms"}``, each with optional ``out_of_orderness_ms``,
    ``allowed_lateness_ms`` (0 by default) and ``aggregates`` (a list drawn from
    count, sum, min, max, mean). Raises ValueError with a readable message.
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"window spec must be a JSON object, got {type(spec).__name__}")
    kind = spec.get("type")
    if kind not in _SPEC_FIELDS:
        raise ValueError(
            f"window spec type must be one of tumbling, sliding, session; got {kind!r}"
        )
    required, optional = _SPEC_FIELDS[kind]
    unknown = sorted(set(spec) - set(required) - set(optional) - set(_COMMON_FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s) in {kind} window spec: {', '.join(unknown)}")
    assigner: Assigner
    if kind == "tumbling":
        assigner = Tumbling(_spec_int(spec, "size_ms"), offset_ms=_spec_int(spec, "offset_ms", 0))
    elif kind == "sliding":
        assigner = Sliding(
            _spec_int(spec, "size_ms"),
            _spec_int(spec, "slide_ms"),
            offset_ms=_spec_int(spec, "offset_ms", 0),
        )
    else:
        assigner = Session(_spec_int(spec, "gap_ms"))
    aggregates = spec.get("aggregates", DEFAULT_FIELDS)
    if isinstance(aggregates, str) or not isinstance(aggregates, Sequence):
        raise ValueError("aggregates must be a list of names among " + ", ".join(STAT_FIELDS))
    return WindowSpec(
        assigner,
        out_of_orderness_ms=_spec_int(spec, "out_of_orderness_ms", 0),
        allowed_lateness_ms=_spec_int(spec, "allowed_lateness_ms", 0),
        aggregates=tuple(aggregates),
    )


def _assigner_from_json(obj: Mapping[str, Any]) -> Assigner:
    return spec_from_json(obj).assigner


# --------------------------------------------------------------------------- aggregates


@runtime_checkable
class Aggregate(Protocol):
    """An incremental aggregation, like Flink's ``AggregateFunction``.

    ``add`` and ``merge`` may mutate and return their first argument; ``merge``
    must not mutate its second argument. ``result`` returns a mapping merged into
    the output record, or any other value stored under ``"result"``. Accumulators
    must be JSON-serialisable for :meth:`WindowOperator.snapshot` to be.

    ``merge`` combines sessions and, for sliding windows, the panes a window is
    made of (in time order), so the aggregation should be associative and not
    depend on arrival order (Flink requires the same of merging windows).
    """

    def create(self) -> Any: ...

    def add(self, acc: Any, value: Any) -> Any: ...

    def merge(self, acc: Any, other: Any) -> Any: ...

    def result(self, acc: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class Stats:
    """count / sum / min / max / mean of numeric values (the built-in fast path)."""

    fields: tuple[str, ...] = DEFAULT_FIELDS

    def __post_init__(self) -> None:
        bad = [f for f in self.fields if f not in STAT_FIELDS]
        if bad or not self.fields:
            raise ValueError(
                "aggregates must be a non-empty list among "
                + ", ".join(STAT_FIELDS)
                + (f"; unknown: {', '.join(map(str, bad))}" if bad else "")
            )

    # The Aggregate protocol, for use outside the operator's fast path.
    def create(self) -> list[Any]:
        return [0, 0, None, None]

    def add(self, acc: list[Any], value: Any) -> list[Any]:
        if acc[0] == 0:
            acc[:] = [1, value, value, value]
        else:
            acc[0] += 1
            acc[1] += value
            if value < acc[2]:
                acc[2] = value
            if value > acc[3]:
                acc[3] = value
        return acc

    def merge(self, acc: list[Any], other: list[Any]) -> list[Any]:
        if other[0] == 0:
            return acc
        if acc[0] == 0:
            acc[:] = other
            return acc
        acc[0] += other[0]
        acc[1] += other[1]
        acc[2] = min(acc[2], other[2])
        acc[3] = max(acc[3], other[3])
        return acc

    def result(self, acc: list[Any]) -> dict[str, Any]:
        values = {"count": acc[0], "sum": acc[1], "min": acc[2], "max": acc[3]}
        if "mean" in self.fields:
            values["mean"] = acc[1] / acc[0] if acc[0] else None
        return {f: values[f] for f in self.fields}


@dataclass(frozen=True, slots=True)
class Reduce:
    """A reducer ``fn(a, b) -> c`` (associative), like Flink's ``ReduceFunction``.

    The result is ``{"result": value}``.
    """

    fn: Callable[[Any, Any], Any]

    def create(self) -> list[Any]:
        return []

    def add(self, acc: list[Any], value: Any) -> list[Any]:
        if acc:
            acc[0] = self.fn(acc[0], value)
        else:
            acc.append(value)
        return acc

    def merge(self, acc: list[Any], other: list[Any]) -> list[Any]:
        if not other:
            return acc
        if not acc:
            acc.append(other[0])
        else:
            acc[0] = self.fn(acc[0], other[0])
        return acc

    def result(self, acc: list[Any]) -> dict[str, Any]:
        return {"result": acc[0] if acc else None}


# --------------------------------------------------------------------------- watermarks


class Watermarks:
    """Bounded-out-of-orderness watermarks over one or more inputs.

    Each input's watermark is ``max timestamp seen - out_of_orderness - 1``
    (-infinity before its first element); the combined watermark is the minimum
    over inputs, as for a Flink operator with several inputs. :meth:`close`
    marks an input finished (its watermark becomes +infinity).
    """

    __slots__ = ("_max", "_ooo", "_current")

    def __init__(self, out_of_orderness_ms: int = 0, *, inputs: int | Iterable[Hashable] = 1):
        _check_int("out_of_orderness_ms", out_of_orderness_ms)
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

    def _recompute(self) -> float:
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
                self._recompute()
        return self._current

    def close(self, input: Hashable = 0) -> float:
        """Mark ``input`` finished; return the combined watermark."""
        if input not in self._max:
            raise KeyError(input)
        self._max[input] = POS_INF
        return self._recompute()

    def snapshot(self) -> dict[str, Any]:
        return {
            "out_of_orderness_ms": self._ooo,
            "inputs": [[name, _enc_time(m)] for name, m in self._max.items()],
        }

    def restore(self, snap: Mapping[str, Any]) -> None:
        if snap["out_of_orderness_ms"] != self._ooo:
            raise ValueError("snapshot was taken with another out_of_orderness_ms")
        restored = {_hashable(name): _dec_time(m) for name, m in snap["inputs"]}
        if set(restored) != set(self._max):
            raise ValueError("snapshot was taken with other inputs")
        self._max = restored
        self._recompute()


def _enc_time(t: float) -> int | str | None:
    if t == NEG_INF:
        return None
    if t == POS_INF:
        return "+inf"
    return int(t)


def _dec_time(t: int | str | None) -> float:
    if t is None:
        return NEG_INF
    if t == "+inf":
        return POS_INF
    assert isinstance(t, int)
    return t


def _hashable(obj: Any) -> Any:
    if isinstance(obj, list):
        return tuple(_hashable(x) for x in obj)
    return obj


def _watermark_fast_path(
    wmk: Watermarks | None, inp: Hashable
) -> tuple[float, dict[Hashable, float] | None, int]:
    """(input's max timestamp, its dict if the only input, out_of_orderness + 1)."""
    if wmk is None:
        return POS_INF, None, 0
    seen = wmk._max
    return seen[inp], (seen if len(seen) == 1 else None), wmk._ooo + 1


# --------------------------------------------------------------------------- operator

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
    """

    def __init__(
        self,
        assigner: Assigner,
        *,
        aggregate: Aggregate | Sequence[str] | None = None,
        allowed_lateness_ms: int = 0,
    ) -> None:
        if not isinstance(assigner, Tumbling | Sliding | Session):
            raise TypeError("assigner must be Tumbling, Sliding or Session")
        _check_int("allowed_lateness_ms", allowed_lateness_ms)
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
        if isinstance(assigner, Tumbling):
            self._kind = "tumbling"
            self._size = assigner.size_ms
            self._slide = assigner.size_ms
            self._offset = assigner.offset_ms
        elif isinstance(assigner, Sliding):
            self._kind = "sliding"
            self._size = assigner.size_ms
            self._slide = assigner.slide_ms
            self._offset = assigner.offset_ms
            self._pane = math.gcd(assigner.size_ms, assigner.slide_ms)
        else:
            self._kind = "session"
            self._gap = assigner.gap_ms

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
            if self._kind == "tumbling":
                self._batch_tumbling(events, watermarks, input, out)
            elif self._kind == "sliding":
                self._batch_sliding(events, watermarks, input, out)
            else:
                self._batch_session(events, watermarks, input, out)
        finally:
            if watermarks is not None:
                watermarks._recompute()
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

    def _fire_timers(self, out: list[Output]) -> None:
        if self._kind == "tumbling":
            self._timers_tumbling(out)
        elif self._kind == "sliding":
            self._timers_sliding(out)
        else:
            self._timers_session(out)

    # ------------------------------------------------------------------ tumbling

    def _batch_tumbling(
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
        in_max, seen, lag = _watermark_fast_path(wmk, inp)
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
                self._slow_tumbling(key, ts, value, out)
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
                        self._timers_tumbling(out)

    def _slow_tumbling(self, key: Hashable, ts: int, value: Any, out: list[Output]) -> None:
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

    def _timers_tumbling(self, out: list[Output]) -> None:
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

    # ------------------------------------------------------------------ sliding

    # State per key: (panes, windows). A pane [p, p + gcd(size, slide)) holds the
    # accumulator of its elements; a window entry is [fires, timer] and exists once
    # an element lands in one of its panes while the window is not purged.

    def _batch_sliding(
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
        in_max, seen, lag = _watermark_fast_path(wmk, inp)
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
                self._slow_sliding(key, ts, value, out)
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
                        self._timers_sliding(out)

    def _slow_sliding(self, key: Hashable, ts: int, value: Any, out: list[Output]) -> None:
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
                    out.append(self._sliding_record(key, s, w[FIRES], panes))
            s -= slide

    def _sliding_record(
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

    def _timers_sliding(self, out: list[Output]) -> None:
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
                out.append(self._sliding_record(key, s, w[FIRES], panes))
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

    # ------------------------------------------------------------------ session

    # State per key: a list of session entries sorted by start, pairwise apart
    # (neither overlapping nor touching). Each live entry has exactly one live
    # timer, the one whose time equals entry[TIMER]; entries that grow keep their
    # timer, which is pushed again at the new end when it comes due ("lazy").

    def _batch_session(
        self, events: Iterable[Event], wmk: Watermarks | None, inp: Hashable, out: list[Output]
    ) -> None:
        gap = self._gap
        state = self._state
        heap = self._heap
        push = heapq.heappush
        stats = self._stats
        agg = self.aggregate
        wm = self._wm
        in_max, seen, lag = _watermark_fast_path(wmk, inp)
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
                    self._slow_session(key, ts, value, out)
            else:
                self._slow_session(key, ts, value, out)
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
                        self._timers_session(out)

    def _slow_session(self, key: Hashable, ts: int, value: Any, out: list[Output]) -> None:
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

    def _timers_session(self, out: list[Output]) -> None:
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
        keys: list[list[Any]] = []
        timers: list[list[Any]] = []
        kind = self._kind
        if kind == "tumbling":
            for key, wins in self._state.items():
                keys.append(
                    [key, [[s, e[FIRES], e[TIMER], self._dump_acc(e)] for s, e in wins.items()]]
                )
            timers = [[t[0], t[1], t[2], t[3]] for t in self._heap]
        elif kind == "sliding":
            for key, (panes, wins) in self._state.items():
                if self._stats:
                    dumped = [[p, list(e)] for p, e in panes.items()]
                else:
                    dumped = [[p, [copy.deepcopy(e[0])]] for p, e in panes.items()]
                keys.append([key, dumped, [[s, w[FIRES], w[TIMER]] for s, w in wins.items()]])
            timers = [[t[0], t[1], t[2], t[3]] for t in self._heap]
        else:
            for key, sess in self._state.items():
                keys.append(
                    [
                        key,
                        [
                            [e[START], e[END], e[FIRES], e[TIMER], e[SUP], self._dump_acc(e)]
                            for e in sess
                        ],
                    ]
                )
            timers = [[t[0], t[1], t[3], t[2][START]] for t in self._heap if t[2][TIMER] == t[0]]
        return {
            "version": 1,
            "config": self._config(),
            "watermark": _enc_time(self._wm),
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
        self._wm = _dec_time(snap["watermark"])
        self._seq = snap["seq"]
        self.late_count = snap["late_count"]
        self.fired_count = snap["fired_count"]
        self.unassigned_count = snap["unassigned_count"]
        state: dict[Hashable, Any] = {}
        heap: list[tuple[Any, ...]] = []
        kind = self._kind
        if kind == "tumbling":
            for key, wins in snap["keys"]:
                state[_hashable(key)] = {
                    s: [fires, timer, *self._load_acc(acc)] for s, fires, timer, acc in wins
                }
            heap = [(t, seq, _hashable(key), s) for t, seq, key, s in snap["timers"]]
        elif kind == "sliding":
            for key, panes, wins in snap["keys"]:
                state[_hashable(key)] = (
                    {p: (list(e) if self._stats else [copy.deepcopy(e[0])]) for p, e in panes},
                    {s: [fires, timer] for s, fires, timer in wins},
                )
            heap = [(t, seq, _hashable(key), s) for t, seq, key, s in snap["timers"]]
        else:
            by_start: dict[tuple[Any, int], list[Any]] = {}
            for key, sessions in snap["keys"]:
                k = _hashable(key)
                sess = []
                for start, end, fires, timer, sup, acc in sessions:
                    e = [fires, timer, *self._load_acc(acc), start, end, copy.deepcopy(sup)]
                    sess.append(e)
                    by_start[(k, start)] = e
                state[k] = sess
            for t, seq, key, start in snap["timers"]:
                k = _hashable(key)
                heap.append((t, seq, by_start[(k, start)], k))
        heapq.heapify(heap)
        self._state = state
        self._heap = heap


# --------------------------------------------------------------------------- CLI entry


def _event_tuple(ev: Any, index: int) -> Event:
    if not isinstance(ev, Mapping):
        raise ValueError(f"event {index}: expected an object with key, ts, value")
    try:
        key, ts, value = ev["key"], ev["ts"], ev["value"]
    except KeyError as missing:
        raise ValueError(f"event {index}: missing {missing.args[0]!r}") from None
    if isinstance(key, list):
        key = _hashable(key)
    elif isinstance(key, dict):
        raise ValueError(f"event {index}: key must be a string, number, boolean, null or list")
    if isinstance(ts, float) and ts.is_integer():
        ts = int(ts)
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise ValueError(f"event {index}: ts must be an integer (milliseconds), got {ts!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"event {index}: value must be a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"event {index}: value must be finite, got {value!r}")
    return key, ts, value


def run_windows(
    spec: Mapping[str, Any] | WindowSpec,
    events: Iterable[Mapping[str, Any]],
    *,
    batch_size: int = 256,
) -> Iterator[Output]:
    """Window ``{"key", "ts", "value"}`` events given in arrival order.

    The watermark follows each element (``max ts - out_of_orderness - 1``), and
    end of input fires everything left. Yields results and late elements in the
    order they are emitted. Elements are handled ``batch_size`` at a time
    (``batch_size=1`` for interactive use). Raises ValueError on a bad spec or
    event (the message names the event's index).
    """
    ws = spec if isinstance(spec, WindowSpec) else spec_from_json(spec)
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    op = WindowOperator(
        ws.assigner,
        aggregate=Stats(ws.aggregates),
        allowed_lateness_ms=ws.allowed_lateness_ms,
    )
    marks = Watermarks(ws.out_of_orderness_ms)
    batch: list[Event] = []
    for i, ev in enumerate(events):
        batch.append(_event_tuple(ev, i))
        if len(batch) >= batch_size:
            yield from op.process_batch(batch, marks)
            batch = []
    if batch:
        yield from op.process_batch(batch, marks)
    yield from op.flush()
