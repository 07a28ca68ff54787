"""Sinks: where an epoch's results land, inside the transaction that commits the epoch.

A sink's ``write`` runs in the commit transaction (``continust.pipelines.runner``),
after the pipeline row was locked and the fencing token checked, and before the
cursor and the stage states move: the results and the progress are committed
together or not at all. That is what makes the sink exactly-once; the writes are
idempotent upserts besides, so a sink can also be fed again safely by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.utils import timezone

from continust.core.errors import ContinustError
from continust.log.canonical import canonical_json
from continust.models import LateEvent, Pipeline, WindowResult
from continust.pipelines.stages import Batch

__all__ = ["Sink", "SinkRefused", "Written", "WindowResultSink", "key_text"]

_RESULT_FIELDS = ("key", "start", "end", "max_ts", "fire", "supersedes")


class SinkRefused(ContinustError):
    """A sink that cannot take an item (a value of the wrong type for its column, say), or
    may not write where its spec says (a table that is not its pipeline's)."""


@dataclass(frozen=True, slots=True)
class Written:
    """What a sink wrote for one epoch."""

    rows: int = 0
    late: int = 0


class Sink:
    """The last step of a pipeline; ``write`` runs inside the commit transaction.

    ``prepare`` runs before, on the event loop, for work that must not hold the
    database (formatting, lookups elsewhere); the sink takes the next epoch only
    when both are done, so a slow sink fills the queue before it and holds every
    stage upstream back.
    """

    name = "sink"

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": type(self).__name__}

    async def prepare(self, batch: Batch) -> None:
        """Get the epoch ready to be written, outside the transaction."""

    def write(self, pipeline: Pipeline, batch: Batch) -> Written:
        raise NotImplementedError

    def clear(self, pipeline: Pipeline) -> None:
        """Delete what this sink wrote for the pipeline (a reset)."""


def key_text(key: Any) -> str:
    """The stored form of a window key: its canonical JSON."""
    return canonical_json(list(key) if isinstance(key, tuple) else key)


class WindowResultSink(Sink):
    """Window results into ``WindowResult``, late elements into ``LateEvent``.

    Upserts by (pipeline, key, start, end): a window fired again within the
    allowed lateness updates its row; a merged session deletes the rows of the
    sessions it replaces (``supersedes``).
    """

    name = "window_results"

    def write(self, pipeline: Pipeline, batch: Batch) -> Written:
        now = timezone.now()
        latest: dict[tuple[str, int, int], WindowResult] = {}
        replaced: list[tuple[str, int, int]] = []
        late: list[LateEvent] = []
        for index, item in enumerate(batch.items):
            if item.get("late"):
                late.append(
                    LateEvent(
                        pipeline=pipeline,
                        epoch=batch.epoch,
                        index=index,
                        key=key_text(item["key"]),
                        ts=item["ts"],
                        value=item.get("value"),
                    )
                )
                continue
            key = key_text(item["key"])
            for start, end in item.get("supersedes") or ():
                replaced.append((key, start, end))
                latest.pop((key, start, end), None)
            latest[(key, item["start"], item["end"])] = WindowResult(
                pipeline=pipeline,
                key=key,
                start=item["start"],
                end=item["end"],
                fire=item.get("fire", 1),
                count=item.get("count"),
                values={k: v for k, v in item.items() if k not in _RESULT_FIELDS},
                epoch=batch.epoch,
                updated_at=now,
            )
        self._delete(pipeline, replaced)
        if latest:
            WindowResult.objects.bulk_create(
                list(latest.values()),
                batch_size=1000,
                update_conflicts=True,
                unique_fields=["pipeline", "key", "start", "end"],
                update_fields=["fire", "count", "values", "epoch", "updated_at"],
            )
        if late:
            LateEvent.objects.bulk_create(late, batch_size=1000, ignore_conflicts=True)
        return Written(rows=len(latest), late=len(late))

    def _delete(self, pipeline: Pipeline, windows: Sequence[tuple[str, int, int]]) -> None:
        if not windows:
            return
        where = Q()
        for key, start, end in windows:
            where |= Q(key=key, start=start, end=end)
        WindowResult.objects.filter(where, pipeline=pipeline).delete()

    def clear(self, pipeline: Pipeline) -> None:
        WindowResult.objects.filter(pipeline=pipeline).delete()
        LateEvent.objects.filter(pipeline=pipeline).delete()
