"""The tip of a branch as this process last wrote or read it: what a linear append plans on.

A tip is a hint, never the truth: the append that uses one names every value it
relies on (the stream's event count and last hash, its reducer and policy, the
branch's head and that head's digest) in the statement that writes, and the
database refuses the write when any of them moved. A stale or rolled-back tip
costs one refused statement and a read; it can never make a wrong version.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

# Streams a process keeps tips for; a miss costs one locked read.
CAPACITY = 4096


@dataclass(frozen=True)
class Tip:
    """A stream's chain end and one branch's head, with the head's state as canonical text."""

    stream_id: int
    event_count: int
    last_hash: str
    reducer: str
    reducer_version: int
    retention: str
    snapshot_every: int
    branch_id: int
    branch: str
    move_hash: str
    head_id: int
    head_digest: str
    head_generation: int
    head_state_hash: str
    head_state_text: str


class Tips:
    """A bounded map of tips by (stream id, branch name), least recently used out first."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._items: OrderedDict[tuple[int, str], Tip] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, stream_id: int, branch: str) -> Tip | None:
        with self._lock:
            tip = self._items.get((stream_id, branch))
            if tip is not None:
                self._items.move_to_end((stream_id, branch))
            return tip

    def put(self, tip: Tip) -> None:
        with self._lock:
            self._items[(tip.stream_id, tip.branch)] = tip
            self._items.move_to_end((tip.stream_id, tip.branch))
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)

    def forget(self, stream_id: int, branch: str | None = None) -> None:
        """Drop a branch's tip, or every tip of the stream."""
        with self._lock:
            for key in [
                k for k in self._items if k[0] == stream_id and (branch is None or k[1] == branch)
            ]:
                del self._items[key]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


tips = Tips()
