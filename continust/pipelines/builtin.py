"""The pipelines continust ships, runnable on any project (the demo's included).

* ``event-counts``: how many events each (stream, type) records per event-time
  window.
* ``payload-sum``: the sum, count, min and max of a numeric payload field per
  stream, or per the value of another payload field, per event-time window (the
  demo: ``{"field": "amount", "group_by": "from", "types": ["transfer.requested"]}``).

Both take ``window``, a ``windows --spec`` object (tumbling, sliding or session,
with out-of-orderness and allowed lateness), and may narrow the log to some
``streams`` and ``types``. Results go to ``WindowResult`` rows.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any

from continust.log.canonical import canonical_json
from continust.pipelines.registry import Definition, InvalidPipeline, register
from continust.pipelines.sinks import WindowResultSink
from continust.pipelines.sources import LogEvent, LogSource
from continust.pipelines.stages import KeyBy, WindowStage
from continust.pipelines.windows import spec_from_json

HOUR_MS = 3_600_000

COMMON = {
    "streams": [],
    "types": [],
    "batch_events": 2000,
}


def _window(params: Mapping[str, Any]) -> WindowStage:
    try:
        spec = spec_from_json(params["window"])
    except ValueError as err:
        raise InvalidPipeline(f"bad window: {err}") from err
    return WindowStage.from_spec(spec)


def _names(params: Mapping[str, Any], name: str) -> list[str] | None:
    value = params[name]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidPipeline(f"{name} must be a list of names")
    return value or None


def _source(params: Mapping[str, Any], *, payloads: bool = True) -> LogSource:
    return LogSource(
        streams=_names(params, "streams"), types=_names(params, "types"), payloads=payloads
    )


def _batch(params: Mapping[str, Any]) -> int:
    size = params["batch_events"]
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 100_000:
        raise InvalidPipeline("batch_events must be an integer from 1 to 100000")
    return size


def _path(text: Any, name: str) -> list[str]:
    if not isinstance(text, str) or not text.strip():
        raise InvalidPipeline(f"{name} must name a payload field (a.b for nested fields)")
    return text.strip().split(".")


def _lookup(payload: Any, path: list[str]) -> Any:
    for part in path:
        if not isinstance(payload, dict) or part not in payload:
            return None
        payload = payload[part]
    return payload


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _scalar(value: Any) -> Hashable:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return canonical_json(value)


@register(
    "event-counts",
    description="Events per stream and type, counted in event-time windows.",
    defaults={
        **COMMON,
        "window": {"type": "tumbling", "size_ms": HOUR_MS, "out_of_orderness_ms": 5000},
    },
)
def event_counts(params: Mapping[str, Any]) -> Definition:
    def key(event: LogEvent) -> Hashable:
        return (event.stream, event.type)

    return Definition(
        sources=[_source(params, payloads=False)],
        stages=[KeyBy(key), _window(params)],
        sink=WindowResultSink(),
        batch_events=_batch(params),
    )


@register(
    "payload-sum",
    description="A numeric payload field summed (with count, min, max) per stream, or per "
    "the value of another field, in event-time windows.",
    defaults={
        **COMMON,
        "field": "amount",
        "group_by": "",
        "window": {"type": "tumbling", "size_ms": 6 * HOUR_MS, "out_of_orderness_ms": 5000},
    },
)
def payload_sum(params: Mapping[str, Any]) -> Definition:
    field = _path(params["field"], "field")
    group = _path(params["group_by"], "group_by") if params["group_by"] else None

    def key(event: LogEvent) -> Hashable:
        return event.stream if group is None else _scalar(_lookup(event.payload, group))

    def value(event: LogEvent) -> Any:
        return _number(_lookup(event.payload, field))

    return Definition(
        sources=[_source(params)],
        stages=[KeyBy(key, value), _window(params)],
        sink=WindowResultSink(),
        batch_events=_batch(params),
    )
