"""Where each stage spends its time, as Apache Flink's UI shows it.

A stage is *idle* while it waits for input (an empty queue), *back-pressured*
while it waits to hand its output on (a full queue), and *busy* the rest of the
time. :class:`Meter` accumulates the three; :class:`Sampler` turns the totals
into milliseconds per second, events per second and queue depths once a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["BACKPRESSURED", "BUSY", "IDLE", "Meter", "Sampler"]

BUSY = "busy"
IDLE = "idle"
BACKPRESSURED = "backpressured"
STATES = (BUSY, IDLE, BACKPRESSURED)


class Meter:
    """The time one stage spent in each state, and the epochs and events it passed on."""

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind
        self.spent = dict.fromkeys(STATES, 0.0)
        self.state = IDLE
        self.since = time.monotonic()
        self.events = 0
        self.epochs = 0
        self.recovered = 0
        self.cursors: dict[int, int] = {}

    def enter(self, state: str) -> None:
        """Switch to ``state``, booking the time spent in the previous one."""
        now = time.monotonic()
        self.spent[self.state] += now - self.since
        self.state = state
        self.since = now

    def totals(self) -> dict[str, float]:
        """Seconds spent in each state so far, the current stretch included."""
        spent = dict(self.spent)
        spent[self.state] += time.monotonic() - self.since
        return spent

    def passed(self, events: int, source: int, position: int, *, recovered: bool = False) -> None:
        """Count an epoch handed on; ``position`` is its source's cursor after it."""
        self.events += events
        self.epochs += 1
        self.recovered += recovered
        if position > self.cursors.get(source, -1):
            self.cursors[source] = position

    @property
    def cursor(self) -> int | None:
        """The log position up to which this stage has handled every source (the lowest)."""
        return min(self.cursors.values()) if self.cursors else None


class Sampler:
    """Per-second figures from the meters' running totals."""

    def __init__(self, meters: Sequence[Meter]) -> None:
        self.meters = list(meters)
        self._at = time.monotonic()
        self._last = {m.name: (m.totals(), m.events) for m in self.meters}

    def sample(
        self, queues: Sequence[asyncio.Queue[Any] | None], head: int
    ) -> list[dict[str, Any]]:
        """One row per stage; ``queues[i]`` is stage i's input queue (None for the source)."""
        now = time.monotonic()
        elapsed = max(now - self._at, 1e-6)
        rows = []
        for meter, queue in zip(self.meters, queues, strict=True):
            totals, events = meter.totals(), meter.events
            before, events_before = self._last[meter.name]
            row: dict[str, Any] = {
                "name": meter.name,
                "kind": meter.kind,
                "events": events,
                "epochs": meter.epochs,
                "recovered": meter.recovered,
                "events_per_s": round((events - events_before) / elapsed, 1),
                "queue": queue.qsize() if queue is not None else None,
                "queue_max": queue.maxsize if queue is not None else None,
                "cursor": meter.cursor,
                "lag": max(head - meter.cursor, 0) if meter.cursor is not None else None,
            }
            for state in STATES:
                share = (totals[state] - before[state]) / elapsed
                row[f"{state}_ms"] = round(min(max(share, 0.0), 1.0) * 1000)
            rows.append(row)
            self._last[meter.name] = (totals, events)
        self._at = now
        return rows
