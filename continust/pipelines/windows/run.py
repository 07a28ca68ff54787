"""The ``windows`` command's driver: JSON events in arrival order, results out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from continust.pipelines.windows.aggregates import Stats
from continust.pipelines.windows.elements import Event, Output, element_from_json
from continust.pipelines.windows.eventtime import Watermarks
from continust.pipelines.windows.operator import WindowOperator
from continust.pipelines.windows.spec import WindowSpec, spec_from_json

__all__ = ["run_windows"]


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
        batch.append(element_from_json(ev, i))
        if len(batch) >= batch_size:
            yield from op.process_batch(batch, marks)
            batch = []
    if batch:
        yield from op.process_batch(batch, marks)
    yield from op.flush()
