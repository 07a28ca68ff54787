"""Event-time windows (continust.pipelines.windows) against a brute-force reference.

The reference below is written straight from the window rules (docs/windows.md), with no
attempt at speed: windows found by scanning every candidate start, sessions merged
by repeated passes, the watermark recomputed from the events seen.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from continust.pipelines.windows import (
    Aggregate,
    Reduce,
    Session,
    Sliding,
    Tumbling,
    Watermarks,
    WindowOperator,
    WindowSpec,
    run_windows,
    spec_from_json,
)

NEG_INF = -math.inf

# --------------------------------------------------------------------------- reference


def ref_windows(assigner: Any, ts: int) -> list[tuple[int, int]]:
    """Every [s, s + size) with s aligned on offset (mod slide) that contains ts."""
    if isinstance(assigner, Tumbling):
        size, slide, offset = assigner.size_ms, assigner.size_ms, assigner.offset_ms
    else:
        size, slide, offset = assigner.size_ms, assigner.slide_ms, assigner.offset_ms
    return [(s, s + size) for s in range(ts - size + 1, ts + 1) if (s - offset) % slide == 0]


def ref_stats(values: list[int]) -> dict[str, int]:
    return {"count": len(values), "sum": sum(values), "min": min(values), "max": max(values)}


def reference(
    assigner: Any, ooo: int, lateness: int, events: list[tuple[str, int, int]]
) -> tuple[dict[tuple[Any, int, int], dict[str, int]], list[tuple[str, int, int]]]:
    """(final aggregate per (key, start, end), late events in arrival order)."""
    wm: float = NEG_INF
    max_ts: float = NEG_INF
    late: list[tuple[str, int, int]] = []

    def purged(end: int) -> bool:  # cleanup time end - 1 + lateness reached
        return end - 1 + lateness <= wm

    if isinstance(assigner, Session):
        gap = assigner.gap_ms
        live: dict[str, list[list[Any]]] = defaultdict(list)  # [start, end, values]
        final: dict[tuple[Any, int, int], dict[str, int]] = {}
        for key, ts, value in events:
            win = [ts, ts + gap, [value]]
            merged_any = False
            changed = True
            while changed:  # merge with every live session it overlaps or touches
                changed = False
                for s in list(live[key]):
                    if s[0] <= win[1] and s[1] >= win[0]:
                        live[key].remove(s)
                        win = [min(win[0], s[0]), max(win[1], s[1]), win[2] + s[2]]
                        merged_any = changed = True
            if not merged_any and purged(win[1]):
                late.append((key, ts, value))
            else:
                live[key].append(win)
            if ts > max_ts:
                max_ts = ts
                wm = max_ts - ooo - 1
            for k, sessions in live.items():
                for s in list(sessions):
                    if purged(s[1]):
                        sessions.remove(s)
                        final[(k, s[0], s[1])] = ref_stats(s[2])
        for k, sessions in live.items():
            for s in sessions:
                final[(k, s[0], s[1])] = ref_stats(s[2])
        return final, late

    contents: dict[tuple[Any, int, int], list[int]] = defaultdict(list)
    for key, ts, value in events:
        windows = ref_windows(assigner, ts)
        alive = [w for w in windows if not purged(w[1])]
        for start, end in alive:
            contents[(key, start, end)].append(value)
        # Late: every window it belongs to is purged. Flink: an element in no
        # window at all (sliding, slide > size) is late when ts + lateness <= wm.
        if not alive and (windows or ts + lateness <= wm):
            late.append((key, ts, value))
        if ts > max_ts:
            max_ts = ts
            wm = max_ts - ooo - 1
    return {w: ref_stats(v) for w, v in contents.items()}, late


# --------------------------------------------------------------------------- helpers


def run_operator(
    assigner: Any,
    ooo: int,
    lateness: int,
    events: list[tuple[str, int, int]],
    aggregate: Any = None,
) -> tuple[list[dict[str, Any]], WindowOperator]:
    op = WindowOperator(assigner, aggregate=aggregate, allowed_lateness_ms=lateness)
    marks = Watermarks(ooo)
    out = op.process_batch(events, marks)
    out += op.flush()
    return out, op


def final_results(outputs: list[dict[str, Any]]) -> dict[tuple[Any, int, int], dict[str, Any]]:
    """The last result per window, without windows a later session merge superseded."""
    latest: dict[tuple[Any, int, int], dict[str, Any]] = {}
    for rec in outputs:
        if rec.get("late"):
            continue
        for start, end in rec.get("supersedes", ()):
            latest.pop((rec["key"], start, end), None)
        latest[(rec["key"], rec["start"], rec["end"])] = rec
    return latest


def late_events(outputs: list[dict[str, Any]]) -> list[tuple[Any, int, Any]]:
    return [(o["key"], o["ts"], o["value"]) for o in outputs if o.get("late")]


def stats_of(rec: dict[str, Any]) -> dict[str, Any]:
    return {f: rec[f] for f in ("count", "sum", "min", "max")}


def windows_of(outputs: list[dict[str, Any]]) -> list[tuple[Any, int, int, int]]:
    return [(o["key"], o["start"], o["end"], o["fire"]) for o in outputs if not o.get("late")]


# --------------------------------------------------------------------------- strategies

keys = st.sampled_from(["a", "b", "c"])
event_lists = st.lists(st.tuples(keys, st.integers(-60, 60), st.integers(-100, 100)), max_size=40)


@st.composite
def tumblings(draw: st.DrawFn) -> Tumbling:
    size = draw(st.integers(1, 20))
    return Tumbling(size, offset_ms=draw(st.integers(-(size - 1), size - 1)))


@st.composite
def slidings(draw: st.DrawFn) -> Sliding:
    size = draw(st.integers(1, 20))
    slide = draw(st.integers(1, 25))
    return Sliding(size, slide, offset_ms=draw(st.integers(-(slide - 1), slide - 1)))


sessions = st.integers(1, 15).map(Session)
assigners = st.one_of(tumblings(), slidings(), sessions)
oooes = st.integers(0, 10)
latenesses = st.integers(0, 15)

SETTINGS = settings(
    max_examples=int(os.environ.get("WINDOWS_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class StatsAsUserAggregate:
    """The same statistics through the generic (user Aggregate) path."""

    def create(self) -> list[Any]:
        return []

    def add(self, acc: list[Any], value: int) -> list[Any]:
        return self.merge(acc, [1, value, value, value])

    def merge(self, acc: list[Any], other: list[Any]) -> list[Any]:
        if not other:
            return acc
        if not acc:
            return list(other)
        return [acc[0] + other[0], acc[1] + other[1], min(acc[2], other[2]), max(acc[3], other[3])]

    def result(self, acc: list[Any]) -> dict[str, Any]:
        return dict(zip(("count", "sum", "min", "max"), acc, strict=True))


# --------------------------------------------------------------------------- properties


@SETTINGS
@given(assigner=assigners, ooo=oooes, lateness=latenesses, events=event_lists)
def test_it_matches_the_reference_final_results_and_late_events(
    assigner: Any, ooo: int, lateness: int, events: list[tuple[str, int, int]]
) -> None:
    outputs, op = run_operator(assigner, ooo, lateness, events)
    want_final, want_late = reference(assigner, ooo, lateness, events)
    got_final = final_results(outputs)
    assert {w: stats_of(r) for w, r in got_final.items()} == want_final
    assert late_events(outputs) == want_late
    assert op.late_count == len(want_late)
    assert op.fired_count == len(windows_of(outputs))
    assert op.snapshot()["keys"] == []  # flush left nothing behind


@SETTINGS
@given(assigner=assigners, ooo=oooes, lateness=latenesses, events=event_lists)
def test_it_never_emits_an_empty_window_and_counts_fires_one_by_one(
    assigner: Any, ooo: int, lateness: int, events: list[tuple[str, int, int]]
) -> None:
    outputs, _ = run_operator(assigner, ooo, lateness, events)
    fires: dict[tuple[Any, int, int], list[int]] = defaultdict(list)
    for rec in outputs:
        if rec.get("late"):
            continue
        assert rec["count"] >= 1
        assert rec["max_ts"] == rec["end"] - 1
        assert rec["start"] < rec["end"]
        fires[(rec["key"], rec["start"], rec["end"])].append(rec["fire"])
    for seq in fires.values():
        assert seq == list(range(1, len(seq) + 1))
    # Every element is accounted for: in a window, late, or (sliding gaps) unassigned.


@SETTINGS
@given(assigner=assigners, ooo=oooes, lateness=latenesses, events=event_lists)
def test_it_fires_a_window_only_once_the_watermark_reaches_its_end(
    assigner: Any, ooo: int, lateness: int, events: list[tuple[str, int, int]]
) -> None:
    op = WindowOperator(assigner, allowed_lateness_ms=lateness)
    marks = Watermarks(ooo)
    for key, ts, value in events:
        before = op.watermark
        for rec in op.process(key, ts, value):
            if not rec.get("late"):  # fired by the element itself: late but allowed
                assert rec["max_ts"] <= before < rec["max_ts"] + lateness
        wm = marks.observe(ts)
        for rec in op.advance_watermark(wm):
            assert rec["max_ts"] <= wm


@SETTINGS
@given(assigner=assigners, ooo=oooes, lateness=latenesses, events=event_lists)
def test_it_gives_the_same_outputs_one_event_at_a_time_and_in_batches(
    assigner: Any, ooo: int, lateness: int, events: list[tuple[str, int, int]]
) -> None:
    batched, _ = run_operator(assigner, ooo, lateness, events)
    op = WindowOperator(assigner, allowed_lateness_ms=lateness)
    marks = Watermarks(ooo)
    single: list[dict[str, Any]] = []
    for key, ts, value in events:
        single += op.process(key, ts, value)
        single += op.advance_watermark(marks.observe(ts))
    single += op.flush()
    assert single == batched
    spec = assigner.to_json() | {"out_of_orderness_ms": ooo, "allowed_lateness_ms": lateness}
    cli = list(
        run_windows(spec, ({"key": k, "ts": t, "value": v} for k, t, v in events), batch_size=7)
    )
    assert cli == batched


@SETTINGS
@given(assigner=assigners, ooo=oooes, lateness=latenesses, events=event_lists)
def test_it_gives_the_same_results_through_a_user_aggregate(
    assigner: Any, ooo: int, lateness: int, events: list[tuple[str, int, int]]
) -> None:
    fast, _ = run_operator(assigner, ooo, lateness, events)
    generic, _ = run_operator(assigner, ooo, lateness, events, aggregate=StatsAsUserAggregate())
    assert generic == fast
    summed, _ = run_operator(assigner, ooo, lateness, events, aggregate=Reduce(lambda a, b: a + b))
    assert [(windows_of([r]), r.get("result")) for r in summed] == [
        (windows_of([r]), r.get("sum")) for r in fast
    ]


@SETTINGS
@given(
    assigner=assigners,
    ooo=oooes,
    lateness=latenesses,
    events=event_lists,
    cut=st.integers(0, 40),
    generic=st.booleans(),
)
def test_it_resumes_from_a_snapshot_exactly_where_it_stopped(
    assigner: Any,
    ooo: int,
    lateness: int,
    events: list[tuple[str, int, int]],
    cut: int,
    generic: bool,
) -> None:
    aggregate = StatsAsUserAggregate() if generic else None
    whole, _ = run_operator(assigner, ooo, lateness, events, aggregate=aggregate)

    op = WindowOperator(assigner, aggregate=aggregate, allowed_lateness_ms=lateness)
    marks = Watermarks(ooo)
    out = op.process_batch(events[:cut], marks)
    saved = json.loads(json.dumps({"op": op.snapshot(), "marks": marks.snapshot()}))
    op.process_batch(events[cut:], marks)  # the crashed run goes on; its state must not leak

    op2 = WindowOperator(assigner, aggregate=aggregate, allowed_lateness_ms=lateness)
    marks2 = Watermarks(ooo)
    op2.restore(saved["op"])
    marks2.restore(saved["marks"])
    out += op2.process_batch(events[cut:], marks2)
    out += op2.flush()
    assert out == whole


# --------------------------------------------------------------------------- examples


def events_of(*triples: tuple[str, int, int]) -> list[dict[str, Any]]:
    return [{"key": k, "ts": t, "value": v} for k, t, v in triples]


def test_it_aligns_tumbling_windows_on_size_and_offset_like_flink() -> None:
    hour, quarter = 3_600_000, 900_000
    # Flink docs: hourly windows offset by 15 minutes start at 0:15, 1:15, ...
    assert Tumbling(hour, offset_ms=quarter).assign(hour) == [(quarter, hour + quarter)]
    assert Tumbling(hour, offset_ms=quarter).assign(quarter - 1) == [(quarter - hour, quarter)]
    # Daily windows in UTC-8 (China is UTC+8: offset -8 hours).
    day = 24 * hour
    assert Tumbling(day, offset_ms=-8 * hour).assign(0) == [(-8 * hour, 16 * hour)]
    # Negative timestamps round down, never toward zero.
    assert Tumbling(10).assign(-1) == [(-10, 0)]
    assert Tumbling(10).assign(-10) == [(-10, 0)]
    assert Tumbling(10).assign(-11) == [(-20, -10)]
    assert Tumbling(10, offset_ms=3).assign(-25) == [(-27, -17)]


def test_it_puts_an_element_in_size_over_slide_sliding_windows() -> None:
    # Flink docs: windows of 10 minutes sliding by 5 minutes.
    minute = 60_000
    assert Sliding(10 * minute, 5 * minute).assign(7 * minute) == [
        (5 * minute, 15 * minute),
        (0, 10 * minute),
    ]
    assert Sliding(10, 3).assign(-1) == [(-3, 7), (-6, 4), (-9, 1)]
    assert Sliding(2, 5).assign(3) == []  # between windows when slide > size


def test_it_emits_results_with_the_cli_fields() -> None:
    out = list(run_windows({"type": "tumbling", "size_ms": 10}, events_of(("k", 3, 5))))
    assert out == [
        {
            "key": "k",
            "start": 0,
            "end": 10,
            "max_ts": 9,
            "fire": 1,
            "count": 1,
            "sum": 5,
            "min": 5,
            "max": 5,
        }
    ]


def test_it_fires_when_the_watermark_reaches_end_minus_one() -> None:
    spec = {"type": "tumbling", "size_ms": 10, "out_of_orderness_ms": 5}
    op = WindowOperator(Tumbling(10))
    marks = Watermarks(5)
    assert op.process_batch([("k", 1, 1), ("k", 14, 1)], marks) == []  # watermark 8
    assert marks.current == 8
    fired = op.process_batch([("k", 15, 1)], marks)  # watermark 9 = end - 1
    assert [(r["start"], r["end"], r["count"]) for r in fired] == [(0, 10, 1)]
    outs = list(run_windows(spec, events_of(("k", 1, 1), ("k", 14, 1), ("k", 15, 1))))
    assert [(r["start"], r["count"]) for r in outs] == [(0, 1), (10, 2)]


def test_it_refires_a_window_for_a_late_event_within_allowed_lateness() -> None:
    spec = {"type": "tumbling", "size_ms": 10, "allowed_lateness_ms": 5}
    outs = list(
        run_windows(spec, events_of(("k", 1, 10), ("k", 12, 1), ("k", 4, 20), ("k", 14, 2)))
    )
    first, second = outs[0], outs[1]
    assert (first["start"], first["fire"], first["count"], first["sum"]) == (0, 1, 1, 10)
    # ts 4 arrives at watermark 11: window [0, 10) is past its end but within lateness.
    assert (second["start"], second["fire"], second["count"], second["sum"]) == (0, 2, 2, 30)
    assert final_results(outs)[("k", 0, 10)]["sum"] == 30


def test_it_sends_an_event_beyond_allowed_lateness_to_the_side_output() -> None:
    op = WindowOperator(Tumbling(10), allowed_lateness_ms=5)
    marks = Watermarks(0)
    outs = op.process_batch([("k", 1, 10), ("k", 15, 1)], marks)  # watermark 14 = 9 + 5
    assert [(r["start"], r["fire"]) for r in outs] == [(0, 1)]
    late = op.process_batch([("k", 2, 99)], marks)
    assert late == [{"late": True, "key": "k", "ts": 2, "value": 99}]
    assert op.late_count == 1
    assert [(r["start"], r["sum"]) for r in op.flush()] == [(10, 1)]


def test_it_keeps_an_element_when_one_of_its_sliding_windows_is_alive() -> None:
    op = WindowOperator(Sliding(10, 5))
    marks = Watermarks(0)
    op.process_batch([("k", 1, 1), ("k", 12, 1)], marks)  # watermark 11: [0, 10) purged
    outs = op.process_batch([("k", 7, 5)], marks)  # in [0, 10) (purged) and [5, 15) (alive)
    assert outs == []
    assert op.late_count == 0
    final = final_results(op.flush())
    assert stats_of(final[("k", 5, 15)]) == {"count": 2, "sum": 6, "min": 1, "max": 5}


def test_it_takes_the_minimum_watermark_of_merged_inputs() -> None:
    marks = Watermarks(2, inputs=["orders", "payments"])
    assert marks.observe(100, "orders") == -math.inf  # payments has said nothing yet
    assert marks.observe(50, "payments") == 47
    assert marks.observe(80, "payments") == 77
    assert marks.observe(90, "orders") == 77  # orders' max stays 100
    assert marks.close("payments") == 97
    op = WindowOperator(Tumbling(10))
    both = Watermarks(0, inputs=2)
    assert op.process_batch([("k", 5, 1), ("k", 30, 1)], both, input=0) == []
    assert op.watermark == -math.inf
    fired = op.process_batch([("k", 12, 1)], both, input=1)  # min(29, 11) = 11
    assert [(r["start"], r["count"]) for r in fired] == [(0, 1)]
    assert op.watermark == 11


def test_it_merges_sessions_that_overlap_or_touch() -> None:
    spec = {"type": "session", "gap_ms": 10}
    outs = list(run_windows(spec, events_of(("k", 0, 1), ("k", 10, 2), ("k", 35, 3))))
    # [0, 10) and [10, 20) touch: one session ending at last + gap.
    assert [(r["start"], r["end"], r["count"]) for r in outs] == [(0, 20, 2), (35, 45, 1)]


def test_it_supersedes_fired_sessions_a_late_event_bridges() -> None:
    spec = {"type": "session", "gap_ms": 5, "allowed_lateness_ms": 20}
    # [1, 6) and [10, 15) have fired by watermark 24; [6, 11) touches both.
    triples = (("k", 1, 1), ("k", 10, 2), ("k", 25, 3), ("k", 6, 4))
    outs = list(run_windows(spec, events_of(*triples)))
    bridged = outs[2]
    assert (bridged["start"], bridged["end"], bridged["count"], bridged["fire"]) == (1, 15, 3, 1)
    assert bridged["supersedes"] == [[1, 6], [10, 15]]
    assert sorted(final_results(outs)) == [("k", 1, 15), ("k", 25, 30)]


def test_it_sends_a_session_event_late_only_when_its_merged_window_is_purged() -> None:
    op = WindowOperator(Session(5), allowed_lateness_ms=2)
    marks = Watermarks(0)
    op.process_batch([("k", 10, 1), ("k", 30, 1)], marks)  # [10, 15) purged at wm 29
    assert op.process_batch([("k", 22, 7)], marks) == [  # [22, 27) cleanup 28 <= 29
        {"late": True, "key": "k", "ts": 22, "value": 7}
    ]
    # [26, 31) merges into the live session [30, 35): not late.
    assert op.process_batch([("k", 26, 8)], marks) == []
    assert [(r["start"], r["end"], r["sum"]) for r in op.flush()] == [(26, 35, 9)]


def test_it_creates_no_window_without_an_element() -> None:
    outs = list(
        run_windows(
            {"type": "sliding", "size_ms": 30, "slide_ms": 10},
            events_of(("k", 5, 1), ("k", 1000, 1)),
        )
    )
    assert sorted((r["start"], r["end"]) for r in outs) == [
        (-20, 10),
        (-10, 20),
        (0, 30),
        (980, 1010),
        (990, 1020),
        (1000, 1030),
    ]


def test_it_counts_elements_between_sliding_windows_as_unassigned_not_late() -> None:
    op = WindowOperator(Sliding(2, 5))
    marks = Watermarks(0)
    # Windows [0, 2), [5, 7), ... [20, 22): 3 and 23 fall between two of them.
    outs = op.process_batch([("k", 3, 1), ("k", 20, 1), ("k", 23, 1)], marks)
    assert [(r["start"], r["count"]) for r in outs] == [(20, 1)]
    assert op.unassigned_count == 2
    assert op.late_count == 0
    assert op.process_batch([("k", 4, 1)], marks) == [
        {"late": True, "key": "k", "ts": 4, "value": 1}  # and behind the watermark
    ]


def test_it_fires_everything_left_at_the_end_of_input() -> None:
    op = WindowOperator(Session(1000), allowed_lateness_ms=100)
    op.process_batch([("a", 0, 1), ("b", 5_000, 2)], Watermarks(10_000))
    assert op.watermark == 5_000 - 10_000 - 1
    outs = op.flush()
    assert sorted((r["key"], r["start"], r["end"]) for r in outs) == [
        ("a", 0, 1000),
        ("b", 5_000, 6_000),
    ]
    assert op.watermark == math.inf
    assert op.snapshot()["keys"] == []


def test_it_adds_the_mean_when_asked() -> None:
    spec = {"type": "tumbling", "size_ms": 10, "aggregates": ["count", "mean"]}
    outs = list(run_windows(spec, events_of(("k", 1, 1), ("k", 2, 2))))
    assert outs == [
        {"key": "k", "start": 0, "end": 10, "max_ts": 9, "fire": 1, "count": 2, "mean": 1.5}
    ]


def test_it_outputs_only_the_statistics_asked_for() -> None:
    for aggregate in ("count", ["count"]):
        op = WindowOperator(Tumbling(10), aggregate=aggregate)
        outs = op.process_batch([("k", 1, 7)]) + op.flush()
        assert outs == [{"key": "k", "start": 0, "end": 10, "max_ts": 9, "fire": 1, "count": 1}]
    with pytest.raises(ValueError, match="unknown: median"):
        WindowOperator(Tumbling(10), aggregate=["median"])


def test_it_accepts_user_aggregates_and_reducers() -> None:
    class Distinct:
        def create(self) -> list[Any]:
            return []

        def add(self, acc: list[Any], value: Any) -> list[Any]:
            return acc if value in acc else [*acc, value]

        def merge(self, acc: list[Any], other: list[Any]) -> list[Any]:
            return acc + [v for v in other if v not in acc]

        def result(self, acc: list[Any]) -> int:
            return len(acc)

    assert isinstance(Distinct(), Aggregate)
    triples = [("k", 1, "x"), ("k", 2, "y"), ("k", 3, "x"), ("k", 12, "z")]
    op = WindowOperator(Sliding(20, 10), aggregate=Distinct())
    outs = op.process_batch(triples) + op.flush()
    assert [(r["start"], r["result"]) for r in outs] == [(-10, 2), (0, 3), (10, 1)]
    op = WindowOperator(Session(5), aggregate=Reduce(max))
    outs = op.process_batch([("k", 1, 4), ("k", 3, 9), ("k", 5, 2)]) + op.flush()
    assert [(r["start"], r["end"], r["result"]) for r in outs] == [(1, 10, 9)]


def test_it_restores_only_a_snapshot_of_the_same_configuration() -> None:
    op = WindowOperator(Tumbling(10))
    op.process_batch([(("tuple", 1), 3, 1)])
    snap = json.loads(json.dumps(op.snapshot()))
    with pytest.raises(ValueError, match="another window configuration"):
        WindowOperator(Tumbling(20)).restore(snap)
    other = WindowOperator(Tumbling(10))
    other.restore(snap)
    assert [r["key"] for r in other.flush()] == [("tuple", 1)]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "hopping", "size_ms": 10}, "type must be one of"),
        ({"size_ms": 10}, "type must be one of"),
        ({"type": "tumbling"}, "needs 'size_ms'"),
        ({"type": "tumbling", "size_ms": 0}, "size_ms must be > 0"),
        ({"type": "tumbling", "size_ms": -5}, "size_ms must be > 0"),
        ({"type": "tumbling", "size_ms": 10, "offset_ms": 10}, r"abs\(offset_ms\) < size_ms"),
        ({"type": "tumbling", "size_ms": "10"}, "integer number of milliseconds"),
        ({"type": "tumbling", "size_ms": 10.5}, "integer number of milliseconds"),
        ({"type": "tumbling", "size_ms": True}, "integer number of milliseconds"),
        ({"type": "tumbling", "size_ms": 10, "slide_ms": 5}, "unknown field"),
        ({"type": "sliding", "size_ms": 10}, "needs 'slide_ms'"),
        ({"type": "sliding", "size_ms": 10, "slide_ms": 0}, "slide_ms must be > 0"),
        ({"type": "sliding", "size_ms": 10, "slide_ms": 5, "offset_ms": -5}, "< slide_ms"),
        ({"type": "session", "gap_ms": 0}, "gap_ms must be > 0"),
        ({"type": "session", "gap_ms": 5, "offset_ms": 1}, "unknown field"),
        ({"type": "session", "gap_ms": 5, "out_of_orderness_ms": -1}, ">= 0"),
        ({"type": "session", "gap_ms": 5, "allowed_lateness_ms": -1}, ">= 0"),
        ({"type": "session", "gap_ms": 5, "aggregates": ["median"]}, "unknown: median"),
        ({"type": "session", "gap_ms": 5, "aggregates": "count"}, "list of names"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_it_rejects_bad_specs_with_a_clear_message(spec: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spec_from_json(spec)


def test_it_builds_specs_from_json() -> None:
    assert spec_from_json(
        {"type": "sliding", "size_ms": 10, "slide_ms": 25, "offset_ms": -3}
    ) == WindowSpec(Sliding(10, 25, offset_ms=-3))  # slide > size is allowed, as in Flink
    assert spec_from_json(
        {"type": "session", "gap_ms": 500, "out_of_orderness_ms": 7, "allowed_lateness_ms": 9}
    ) == WindowSpec(Session(500), out_of_orderness_ms=7, allowed_lateness_ms=9)
    assert spec_from_json({"type": "tumbling", "size_ms": 1e3}).assigner == Tumbling(1000)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"key": "k", "ts": 1}, "event 0: missing 'value'"),
        ({"key": "k", "ts": "1", "value": 1}, "ts must be an integer"),
        ({"key": "k", "ts": 1.5, "value": 1}, "ts must be an integer"),
        ({"key": "k", "ts": 1, "value": "x"}, "value must be a number"),
        ({"key": "k", "ts": 1, "value": True}, "value must be a number"),
        ({"key": {"a": 1}, "ts": 1, "value": 1}, "key must be"),
        ("not an object", "expected an object"),
    ],
)
def test_it_rejects_bad_events_naming_their_index(event: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        list(run_windows({"type": "tumbling", "size_ms": 10}, [event]))


@pytest.mark.parametrize(
    ("assigner", "expected"),
    [
        (Tumbling(10), [(20, 30, 2)]),
        (Sliding(10, 5), [(15, 25, 2), (20, 30, 2)]),
        (Session(5), [(21, 29, 2)]),
    ],
)
def test_open_windows_are_the_unfired_ones_with_their_figures_so_far(assigner, expected):
    op = WindowOperator(assigner, aggregate=["count", "sum"])
    op.process_batch([("k", 1, 1), ("k", 3, 2), ("k", 21, 3), ("k", 24, 4)])
    op.advance_watermark(20)  # fires what ends by 20; 21 and 24 stay open
    counters = (op.fired_count, op.late_count)
    opened = op.open_windows()
    assert sorted((w["start"], w["end"], w["count"]) for w in opened) == expected
    assert all(w["fire"] == 0 for w in opened)
    assert (op.fired_count, op.late_count) == counters  # looking changes nothing
    flushed = op.flush()  # what fires next is exactly what was open
    assert sorted((r["start"], r["end"], r["count"]) for r in flushed) == expected
