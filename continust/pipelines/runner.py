"""Running a pipeline: one owner, stages joined by bounded queues, epochs committed once.

Delivery contract
-----------------
* **At least once into the stages.** Epochs read but not committed when a run
  died are delivered again after the restart; a stage that had checkpointed an
  epoch takes its output back from the checkpoint (``recover``) instead of
  executing it again, so the pipeline restarts at stage N, not at stage 1.
* **Exactly once into the sink.** An epoch's sink writes, the source cursor after
  it, every stateful stage's state after it (the window operator's snapshot) and
  the deletion of its checkpoints are one transaction. It first locks the
  pipeline row and checks the fencing token and that the epoch follows the last
  one committed; a stale owner (its lease lapsed and somebody claimed the
  pipeline) or a second delivery of the Celery message is refused and rolled back.
  Sinks upsert by key besides, so a window that fires again updates its row.

Ownership
---------
``claim`` takes the pipeline's lease (``continust.jobs.leases``): a conditional
UPDATE (enabled, and no live lease) that bumps ``fence``, the token of this run.
The heartbeat renews the lease every second while the token is unchanged and
publishes the stages' figures; every checkpoint write and every commit locks the
row and checks the token (``leases.hold``). A run that loses the lease stops
without writing anything more.

Backpressure
------------
Stage i reads from queue i and writes to queue i + 1 (``asyncio.Queue`` with
``queue_batches`` slots; the last queue feeds the sink). A full queue suspends the
writer in ``put`` (its back-pressured time) until the reader takes an epoch; the
source reads the log only when it can hand an epoch on. At most about
``(stages + 2) * (queue_batches + 1)`` epochs are in memory, however far behind
the log the pipeline is.

Threads
-------
The stages run on an event loop (asgiref's ``async_to_sync``); every database
call goes through ``sync_to_async(thread_sensitive=True)`` back to the calling
thread, so one connection serves the whole run, one call at a time, while the
stages keep computing.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing, suppress
from typing import Any, TypeVar

from asgiref.sync import async_to_sync, sync_to_async
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from continust.core.database import relaxed_commit
from continust.core.errors import ContinustError
from continust.jobs import leases, outbox
from continust.jobs.leases import Lease, LeaseLost
from continust.models import (
    Event,
    Pipeline,
    PipelineCheckpoint,
    PipelineRun,
    PipelineStatus,
)
from continust.pipelines import options, specs
from continust.pipelines.merge import merge
from continust.pipelines.metrics import BACKPRESSURED, BUSY, IDLE, Meter, Sampler
from continust.pipelines.registry import Definition, InvalidPipeline
from continust.pipelines.sources import LogSource, Poll, position_ranges
from continust.pipelines.stages import Batch, Stage

__all__ = [
    "PIPELINES",
    "LeaseLost",
    "Outcome",
    "PipelineRunner",
    "TASK",
    "claim",
    "outbox_key",
    "run_pipeline",
    "take",
]

log = logging.getLogger(__name__)

TASK = "continust.pipeline"
SOURCE = "source"
SINK = "sink"
HEARTBEAT_SECONDS = 1.0

R = TypeVar("R")


class Outcome:
    """How a run ended."""

    PAUSED = "paused"  # a user paused it
    CAUGHT_UP = "caught-up"  # a foreground run read the whole log
    STOPPED = "stopped"  # asked to stop (Ctrl-C, worker shutdown)
    HANDED_OVER = "handed-over"  # its time slice ended; a new message continues it
    LOST = "lost"  # somebody else holds it now
    FAILED = "failed"  # a stage or the sink raised
    SKIPPED = "skipped"  # not claimed: held by a live lease, or not enabled
    MISSING = "missing"  # no such pipeline


# Pausing is noticed by the holder at its next heartbeat, so the status is no fence:
# only a new claim (or a reset) takes a pipeline from its holder.
PIPELINES = leases.register(
    leases.Kind(
        name="pipeline",
        model=Pipeline,
        task=TASK,
        active=Q(enabled=True, status__in=[PipelineStatus.WAITING, PipelineStatus.RUNNING]),
        lease_seconds=options.lease_seconds,
        resend_seconds=options.resend_seconds,
        fenced_status=None,
    )
)
outbox_key = PIPELINES.key


def _db(fn: Callable[..., R]) -> Callable[..., Awaitable[R]]:
    return sync_to_async(fn, thread_sensitive=True)


def take(pipeline_id: int, *, worker: str = "", enable: bool = False) -> Lease | None:
    """Claim the pipeline for this run unless a live lease holds it (``leases.claim``).

    Only an enabled pipeline is claimed; ``enable`` enables it in the same UPDATE
    (a foreground run).
    """
    now = timezone.now()
    return leases.claim(
        PIPELINES,
        pipeline_id,
        worker=worker,
        where=Q() if enable else Q(enabled=True),
        now=now,
        enabled=True,
        heartbeat_at=now,
        error="",
    )


def claim(pipeline_id: int, *, worker: str = "", enable: bool = False) -> int | None:
    """Claim the pipeline (see ``take``); return the fencing token, or None."""
    lease = take(pipeline_id, worker=worker, enable=enable)
    return None if lease is None else lease.fence


def _no_flush_wait() -> None:
    """Let this transaction commit without waiting for its WAL to reach the disk.

    For checkpoints and heartbeats only: the WAL is flushed in order, so a database
    crash can lose only the newest of them, never one older than a committed epoch
    (whose commit waits for the flush); a lost checkpoint means an epoch executed
    again, a lost heartbeat a lease renewed a moment later. Epoch commits wait.
    """
    relaxed_commit()


class CheckpointStore:
    """Stage outputs of uncommitted epochs: those found at the start, and new ones, fenced."""

    def __init__(self, lease: Lease, found: dict[tuple[str, int], Any]) -> None:
        self.lease = lease
        self.pipeline_id = lease.pk
        self.found = found
        self.saved = 0

    def load(self, stage: str, epoch: int) -> Any | None:
        return self.found.pop((stage, epoch), None)

    async def save(self, stage: str, epoch: int, data: Any) -> None:
        await _db(self.write)(stage, epoch, data)

    def write(self, stage: str, epoch: int, data: Any) -> None:
        with transaction.atomic():
            _no_flush_wait()
            leases.hold(self.lease)
            PipelineCheckpoint.objects.create(
                pipeline_id=self.pipeline_id, stage=stage, epoch=epoch, data=data
            )
        self.saved += 1


class PipelineRunner:
    """One run of a claimed pipeline, from its last commit until it is stopped.

    ``until_caught_up`` ends the run once every source has read the log to its head
    (gaps still pending stay in the cursor, for the next run); ``stop`` (a
    ``threading.Event``) ends it from another thread; ``slice_seconds`` hands it over
    to a fresh Celery message after a while.
    In-flight epochs are committed before a run ends, except when the lease is lost.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        definition: Definition,
        *,
        fence: int,
        worker: str = "",
        until_caught_up: bool = False,
        stop: threading.Event | None = None,
        slice_seconds: float = 0,
    ) -> None:
        self.pipeline = pipeline
        self.definition = definition
        self.sources: list[LogSource] = list(definition.sources)
        self.stages: list[Stage] = list(definition.stages)
        self.sink = definition.sink
        self.fence = fence
        self.lease = Lease(PIPELINES, pipeline.pk, fence)
        self.worker = worker
        self.until_caught_up = until_caught_up
        self.stop = stop or threading.Event()
        self.slice_seconds = slice_seconds
        self.meters = [
            Meter(SOURCE, "log"),
            *(Meter(stage.name, type(stage).__name__) for stage in self.stages),
            Meter(SINK, type(self.sink).__name__),
        ]
        self.reason: str | None = None
        self.head = 0
        self.gaps = [0] * len(self.sources)
        self.committed_epoch = 0
        self.cursors: list[Any] = []
        self.next_epoch = 1
        self.replay: list[tuple[int, dict[str, Any]]] = []
        self.first: dict[int, int] = {}
        self.store = CheckpointStore(self.lease, {})
        self.run_row: PipelineRun | None = None
        self.queues: list[asyncio.Queue[Batch | None]] = []
        self._stopping: asyncio.Event | None = None
        self._finished: asyncio.Event | None = None
        self._sampler: Sampler | None = None

    # ------------------------------------------------------------------ entry

    def run(self) -> str:
        """Run to the end (see the class docstring) and return the outcome."""
        return async_to_sync(self._main)()

    async def _main(self) -> str:
        try:
            await _db(self._start)()
        except LeaseLost:
            return Outcome.LOST
        except InvalidPipeline as err:
            return await _db(self._finish)(Outcome.FAILED, str(err))
        size = self.definition.queue_batches
        self.queues = [asyncio.Queue(maxsize=size) for _ in range(len(self.stages) + 1)]
        self._stopping = asyncio.Event()
        self._finished = asyncio.Event()
        self._sampler = Sampler(self.meters)
        error: BaseException | None = None
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._read())
                for index, stage in enumerate(self.stages):
                    group.create_task(self._stage(index, stage))
                group.create_task(self._commit_loop())
                group.create_task(self._heartbeat())
        except BaseExceptionGroup as failures:
            error = _first_cause(failures)
        if isinstance(error, LeaseLost):
            log.warning("pipeline %s: %s", self.pipeline.pk, error)
            await _db(self._ended)(Outcome.LOST)
            return Outcome.LOST
        if error is not None:
            if not isinstance(error, Exception) or isinstance(
                error, OperationalError | InterfaceError
            ):
                # A crash, or the database went away: keep the lease, as a dead worker
                # would; it lapses and the sweep sends the pipeline again.
                raise error
            log.exception("pipeline %s failed", self.pipeline.pk, exc_info=error)
            message = f"{type(error).__name__}: {error}"
            return await _db(self._finish)(Outcome.FAILED, message)
        ended = Outcome.CAUGHT_UP if self.until_caught_up else Outcome.STOPPED
        return await _db(self._finish)(self.reason or ended, "")

    def request_stop(self, reason: str) -> None:
        """Stop reading the log; the epochs in flight are still committed."""
        if self.reason is None:
            self.reason = reason
        if self._stopping is not None:
            self._stopping.set()

    # ------------------------------------------------------------------ start

    def _start(self) -> None:
        row = Pipeline.objects.select_related("project").get(pk=self.pipeline.pk)
        if row.fence != self.fence:
            raise LeaseLost(f"pipeline {row.pk}: claimed again before the run started")
        self.pipeline = row
        cursors = list(row.cursor or [])
        if not cursors and row.epoch == 0:
            cursors = [None] * len(self.sources)
        if len(cursors) != len(self.sources):
            raise InvalidPipeline("the pipeline's sources changed since it last ran; reset it")
        states = row.state or {}
        found = {
            (c.stage, c.epoch): c.data
            for c in PipelineCheckpoint.objects.filter(pipeline=row, epoch__gt=row.epoch)
        }
        self.store = CheckpointStore(self.lease, found)
        for stage in self.stages:
            stage.bind(self.store, inputs=len(self.sources))
            if stage.stateful and stage.name in states:
                try:
                    stage.restore(states[stage.name])
                except (KeyError, TypeError, ValueError) as err:
                    raise InvalidPipeline(
                        f"stage {stage.name} cannot take its committed state back ({err}); "
                        "its definition changed: reset the pipeline"
                    ) from err
            elif stage.stateful and row.epoch > 0:
                raise InvalidPipeline(f"no committed state for stage {stage.name}; reset it")
        self.committed_epoch = row.epoch
        self.cursors = cursors
        live = list(cursors)
        epoch = row.epoch
        while (SOURCE, epoch + 1) in found:
            epoch += 1
            data = found.pop((SOURCE, epoch))
            self.replay.append((epoch, data))
            live[data["source"]] = data["cursor"]
        self.next_epoch = epoch + 1
        for index, source in enumerate(self.sources):
            source.bind(row.project_id, live[index])
            for meter in self.meters:  # where each stage stands before this run moves it
                at = (live if meter.name == SOURCE else cursors)[index]
                meter.cursors[index] = int(at["position"]) if at else 0
        for e, _ in self.replay:
            self.first[e] = self._first_to_execute(e, found)
        recovered = {
            stage.name: sorted(e for (name, e) in found if name == stage.name)
            for stage in self.stages
            if stage.durable
        }
        redelivered = sum(
            data["events"] for e, data in self.replay if self.first[e] < len(self.stages)
        )
        self.run_row = PipelineRun.objects.create(
            pipeline=row,
            fence=self.fence,
            worker=self.worker[:200],
            started_at=timezone.now(),
            resumed_epoch=row.epoch,
            resumed_events=row.events,
            recovered={k: v for k, v in recovered.items() if v},
            redelivered=redelivered,
        )

    def _first_to_execute(self, epoch: int, found: dict[tuple[str, int], Any]) -> int:
        """The index of the first stage that must execute ``epoch`` again after a restart.

        It follows the last stage that checkpointed the epoch; the stages before it only
        take their state back (from their own checkpoints), so every stateful one of them
        must have one, or the restart begins at it.
        """
        have = [
            i
            for i, stage in enumerate(self.stages)
            if stage.durable and (stage.name, epoch) in found
        ]
        first = max(have) + 1 if have else 0
        for i, stage in enumerate(self.stages[:first]):
            if stage.stateful and i not in have:
                return i
        return first

    # ------------------------------------------------------------------ the source

    async def _read(self) -> None:
        out = self.queues[0]
        meter = self.meters[0]
        for epoch, data in self.replay:
            meter.enter(BUSY)
            first = self.first[epoch]
            # Read the events again only when the restart begins at the first stage.
            events = (
                [] if first else await _db(self.sources[data["source"]].fetch)(data["positions"])
            )
            batch = Batch(
                epoch,
                data["source"],
                events,
                data["cursor"],
                data["events"],
                data["high"],
                recovered=True,
                first=first,
            )
            await self._hand_on(meter, out, batch)
        polls = [self._polls(index, source) for index, source in enumerate(self.sources)]
        async with aclosing(merge(*polls, labelled=True)) as merged:
            async for index, poll in merged:
                assert self._stopping is not None
                if self._stopping.is_set():
                    break  # read but not checkpointed: the next run reads it again
                meter.enter(BUSY)
                batch = Batch(
                    self.next_epoch,
                    index,
                    poll.events,
                    poll.cursor,
                    len(poll.events),
                    max((e.position for e in poll.events), default=0),
                )
                self.next_epoch += 1
                await self.store.save(
                    SOURCE,
                    batch.epoch,
                    {
                        "source": index,
                        "positions": position_ranges(e.position for e in poll.events),
                        "cursor": poll.cursor,
                        "events": batch.events,
                        "high": batch.high,
                    },
                )
                await self._hand_on(meter, out, batch)
        meter.enter(IDLE)
        await out.put(None)

    async def _hand_on(self, meter: Meter, out: asyncio.Queue[Batch | None], batch: Batch) -> None:
        meter.passed(
            batch.events, batch.source, batch.cursor["position"], recovered=batch.recovered
        )
        meter.enter(BACKPRESSURED)
        await out.put(batch)
        meter.enter(IDLE)

    async def _polls(self, index: int, source: LogSource) -> Any:
        """Polls of one source that found something, until stopped (or caught up)."""
        assert self._stopping is not None
        meter = self.meters[0]
        limit = self.definition.batch_events
        wait = options.poll_ms() / 1000
        while not self._stopping.is_set():
            meter.enter(BUSY)
            poll: Poll = await _db(source.poll)(limit)
            meter.enter(IDLE)
            self.gaps[index] = poll.gaps
            if poll.events or poll.moved:
                yield poll
            if not poll.caught_up:
                continue
            if self.until_caught_up:
                return  # pending gaps stay in the cursor: the next run looks at them again
            # Nothing more in the log yet: wait for it (or for a stop), then read again.
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), wait)

    # ------------------------------------------------------------------ the stages

    async def _stage(self, index: int, stage: Stage) -> None:
        inbox, out = self.queues[index], self.queues[index + 1]
        meter = self.meters[index + 1]
        while True:
            meter.enter(IDLE)
            batch = await inbox.get()
            if batch is None:
                await out.put(None)
                return
            meter.enter(BUSY)
            output: list[Any] | None
            if index < batch.first:
                # A later stage has this epoch's output: take back the state only.
                output = await self._skip(index, stage, batch)
                recovered = True
            else:
                output = await stage.recover(batch)
                recovered = output is not None
            if output is None:
                result = stage.execute(batch.items, batch)
                output = await result if inspect.isawaitable(result) else result
                if stage.stateful:
                    batch.states[stage.name] = stage.snapshot()
                if batch.items:
                    await stage.checkpoint(batch, output)
            elif stage.stateful:
                batch.states[stage.name] = stage.snapshot()
            batch.items = list(output or [])
            meter.passed(batch.events, batch.source, batch.cursor["position"], recovered=recovered)
            meter.enter(BACKPRESSURED)
            await out.put(batch)

    async def _skip(self, index: int, stage: Stage, batch: Batch) -> list[Any]:
        output = await stage.recover(batch) if stage.stateful or index == batch.first - 1 else []
        if output is None:
            raise InvalidPipeline(f"stage {stage.name} lost its checkpoint of epoch {batch.epoch}")
        if stage.stateful:
            batch.states[stage.name] = stage.snapshot()
        return output if index == batch.first - 1 else []

    # ------------------------------------------------------------------ the sink

    async def _commit_loop(self) -> None:
        assert self._finished is not None
        inbox = self.queues[-1]
        meter = self.meters[-1]
        delay = options.epoch_delay_ms() / 1000
        while True:
            meter.enter(IDLE)
            batch = await inbox.get()
            if batch is None:
                break
            meter.enter(BUSY)
            await self.sink.prepare(batch)
            await _db(self._commit)(batch)
            if delay:
                await asyncio.sleep(delay)
            meter.passed(batch.events, batch.source, batch.cursor["position"])
        meter.enter(IDLE)
        self._finished.set()

    def _commit(self, batch: Batch) -> None:
        """Write the epoch to the sink and move the cursor, in one fenced transaction."""
        cursors = list(self.cursors)
        cursors[batch.source] = batch.cursor
        now = timezone.now()
        with transaction.atomic():
            committed = int(leases.hold(self.lease, "epoch")["epoch"])
            if batch.epoch != committed + 1:
                raise LeaseLost(
                    f"pipeline {self.pipeline.pk}: epoch {batch.epoch} does not follow the "
                    f"committed epoch {committed}"
                )
            written = self.sink.write(self.pipeline, batch)
            leases.renew(
                self.lease,
                now=now,
                epoch=batch.epoch,
                cursor=cursors,
                state=batch.states,
                events=F("events") + batch.events,
                late_events=F("late_events") + written.late,
                results=F("results") + written.rows,
                committed_at=now,
            )
            PipelineCheckpoint.objects.filter(
                pipeline_id=self.pipeline.pk, epoch__lte=batch.epoch
            ).delete()
        self.cursors = cursors
        self.committed_epoch = batch.epoch

    # ------------------------------------------------------------------ heartbeat

    async def _heartbeat(self) -> None:
        assert self._finished is not None
        started = time.monotonic()
        while not self._finished.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(self._finished.wait(), HEARTBEAT_SECONDS)
            if self._finished.is_set():
                return
            if self.stop.is_set():
                self.request_stop(Outcome.STOPPED)
            if self.slice_seconds and time.monotonic() - started >= self.slice_seconds:
                self.request_stop(Outcome.HANDED_OVER)
            if not await _db(self._beat)(self.metrics()):
                self.request_stop(Outcome.PAUSED)

    def metrics(self) -> dict[str, Any]:
        """The live figures: per stage, and for the run."""
        assert self._sampler is not None
        queues: list[asyncio.Queue[Batch | None] | None] = [None, *self.queues]
        return {
            "at": timezone.now().isoformat(),
            "head": self.head,
            "epoch": self.committed_epoch,
            "next_epoch": self.next_epoch,
            "gaps": sum(self.gaps),
            "checkpoints_written": self.store.saved,
            "stages": self._sampler.sample(queues, self.head),
        }

    def _beat(self, metrics: dict[str, Any]) -> bool:
        """Renew the lease and publish the figures; return whether it is still enabled."""
        now = timezone.now()
        with transaction.atomic():
            _no_flush_wait()
            leases.renew(self.lease, now=now, heartbeat_at=now, metrics=metrics)
        self.head = Event.objects.aggregate(head=Max("position"))["head"] or 0
        return bool(Pipeline.objects.values_list("enabled", flat=True).get(pk=self.pipeline.pk))

    # ------------------------------------------------------------------ the end

    def _finish(self, outcome: str, error: str) -> str:
        """Release the lease with the status the outcome calls for; return the outcome."""
        now = timezone.now()
        self.head = Event.objects.aggregate(head=Max("position"))["head"] or 0
        final = self.metrics() if self._sampler is not None else {}
        fields: dict[str, Any] = {"worker": "", "heartbeat_at": now}
        if final:
            fields["metrics"] = final
        try:
            with transaction.atomic():
                enabled = leases.hold(self.lease, "enabled")["enabled"]
                if outcome == Outcome.FAILED:
                    fields.update(status=PipelineStatus.FAILED, enabled=False, error=error)
                elif outcome in {Outcome.CAUGHT_UP, Outcome.STOPPED} or not enabled:
                    fields.update(status=PipelineStatus.PAUSED, enabled=False)
                else:  # paused and resumed meanwhile, or handed over: a new message runs it
                    fields.update(status=PipelineStatus.WAITING)
                    outbox.enqueue(TASK, [self.pipeline.pk], key=PIPELINES.key(self.pipeline))
                leases.release(self.lease, **fields)
        except LeaseLost:
            outcome = Outcome.LOST
        self._ended(outcome)
        return outcome

    def _ended(self, outcome: str) -> None:
        if self.run_row is not None:
            PipelineRun.objects.filter(pk=self.run_row.pk).update(
                ended_at=timezone.now(), outcome=outcome
            )


def _first_cause(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The exception that ended a task group: a lost lease first, else the first one."""
    leaves: list[BaseException] = []

    def walk(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                walk(inner)
        else:
            leaves.append(error)

    walk(group)
    for error in leaves:
        if isinstance(error, LeaseLost):
            return error
    return leaves[0]


def run_pipeline(
    pipeline_id: int,
    *,
    worker: str = "",
    until_caught_up: bool = False,
    stop: threading.Event | None = None,
    slice_seconds: float = 0,
    enable: bool = False,
) -> str:
    """Claim the pipeline and run it here; return the outcome (see ``Outcome``)."""
    pipeline = Pipeline.objects.select_related("project").filter(pk=pipeline_id).first()
    if pipeline is None:
        return Outcome.MISSING
    lease = take(pipeline_id, worker=worker, enable=enable)
    if lease is None:
        return Outcome.SKIPPED
    try:
        definition = specs.definition_for(pipeline)
    except ContinustError as err:
        return _fail_unbuilt(lease, str(err))
    runner = PipelineRunner(
        pipeline,
        definition,
        fence=lease.fence,
        worker=worker,
        until_caught_up=until_caught_up,
        stop=stop,
        slice_seconds=slice_seconds,
    )
    return runner.run()


def _fail_unbuilt(lease: Lease, error: str) -> str:
    failed = leases.release(
        lease, status=PipelineStatus.FAILED, enabled=False, error=error, worker=""
    )
    return Outcome.FAILED if failed else Outcome.LOST
