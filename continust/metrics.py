"""What continust tells Prometheus: figures read from the database when it scrapes.

Everything here is counted by the database already (events per stream, a replay's
progress and time, a pipeline's last sampled figures, a projection's and a
subscription's log position, a compaction's bytes), so a scrape reads it afresh and
every process (web, workers, the CLI) is counted alike, with nothing kept in memory
between scrapes. Figures a process measures itself (HTTP latencies and statuses) are
the web layer's (``api/metrics.py``); append latencies are the log's
(``continust.log.timing``).
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, F, Sum
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from continust.models import (
    Compaction,
    CompactionStatus,
    Pipeline,
    Project,
    Replay,
    ReplayStatus,
    Stream,
    Subscription,
)
from continust.models import Projection as ProjectionRow
from continust.projections import positions
from continust.read.project_log import LogPosition
from continust.subscriptions import registry as subscriptions

# Where replays and projections spent their time: (state, the column that totals it).
_REPLAY_TIME = (
    ("busy", "busy_seconds"),
    ("blocked", "blocked_seconds"),
    ("throttled", "throttled_seconds"),
)
_PROJECTION_TIME = (
    ("busy", "busy_seconds"),
    ("idle", "idle_seconds"),
    ("throttled", "throttled_seconds"),
)

# Of a pipeline's sampled stage figures, the ones exported (milliseconds a second → ratio).
_STAGE_STATES = ("busy", "idle", "backpressured")


class LogCollector(Collector):
    """Collect the log's figures from the database at each scrape."""

    def collect(self) -> Iterator[Metric]:
        yield from _events()
        yield from _replays()
        yield from _pipelines()
        yield from _projections()
        yield from _subscriptions()
        yield from _compactions()


def _events() -> Iterator[Metric]:
    appended = CounterMetricFamily(
        "continust_events",
        "Events appended, per project (rate() of it is the append rate).",
        labels=["project"],
    )
    streams = GaugeMetricFamily("continust_streams", "Streams, per project.", labels=["project"])
    totals = Stream.objects.values("project__slug").annotate(
        appended=Sum("event_count"), streams=Count("id")
    )
    for row in totals.order_by("project__slug"):
        appended.add_metric([row["project__slug"]], float(row["appended"] or 0))
        streams.add_metric([row["project__slug"]], float(row["streams"]))
    yield appended
    yield streams


def _replays() -> Iterator[Metric]:
    remaining = GaugeMetricFamily(
        "continust_replay_remaining_events",
        "Events a running or queued replay has still to fold (its lag).",
        labels=["project", "stream", "replay"],
    )
    busy = (
        Replay.objects.filter(status__in=[ReplayStatus.WAITING, ReplayStatus.RUNNING])
        .select_related("stream__project")
        .order_by("pk")
    )
    for replay in busy:
        left = max(replay.total - replay.done, 0)
        labels = [replay.stream.project.slug, replay.stream.name, str(replay.pk)]
        remaining.add_metric(labels, float(left))
    yield remaining
    spent = CounterMetricFamily(
        "continust_replay_seconds",
        "Seconds replays spent busy (folding, writing), blocked (waiting for a stream's "
        "lock, held by appends) or throttled (pausing between chunks), per project.",
        labels=["project", "state"],
    )
    totals = (
        Replay.objects.values("stream__project__slug")
        .annotate(**{column: Sum(column) for _, column in _REPLAY_TIME})
        .order_by("stream__project__slug")
    )
    for row in totals:
        figures: dict[str, object] = dict(row)
        for state, column in _REPLAY_TIME:
            seconds = figures[column]
            value = float(seconds) if isinstance(seconds, int | float) else 0.0
            spent.add_metric([row["stream__project__slug"], state], value)
    yield spent


def _pipelines() -> Iterator[Metric]:
    lag = GaugeMetricFamily(
        "continust_pipeline_lag_events",
        "Events of the log a pipeline's slowest stage has not passed on yet (last sample).",
        labels=["project", "pipeline"],
    )
    share = GaugeMetricFamily(
        "continust_pipeline_stage_time_ratio",
        "Share of the last sampled second a pipeline stage spent busy, idle or back-pressured.",
        labels=["project", "pipeline", "stage", "state"],
    )
    processed = CounterMetricFamily(
        "continust_pipeline_events",
        "Events a pipeline has processed.",
        labels=["project", "pipeline"],
    )
    for pipeline in Pipeline.objects.select_related("project").order_by("pk"):
        labels = [pipeline.project.slug, pipeline.name]
        processed.add_metric(labels, float(pipeline.events))
        stages = (pipeline.metrics or {}).get("stages", [])
        lags = [s["lag"] for s in stages if isinstance(s.get("lag"), int | float)]
        if lags:
            lag.add_metric(labels, float(max(lags)))
        for stage in stages:
            for state in _STAGE_STATES:
                value = stage.get(f"{state}_ms")
                if isinstance(value, int | float):
                    share.add_metric([*labels, str(stage.get("name", "")), state], value / 1000)
    yield lag
    yield share
    yield processed


def _projections() -> Iterator[Metric]:
    lag = GaugeMetricFamily(
        "continust_projection_lag_events",
        "Events of the project's log a projection has not applied yet.",
        labels=["project", "projection"],
    )
    rebuild_lag = GaugeMetricFamily(
        "continust_projection_rebuild_lag_events",
        "Events of the project's log a projection's rebuild under way has not applied yet.",
        labels=["project", "projection"],
    )
    spent = CounterMetricFamily(
        "continust_projection_seconds",
        "Seconds a projection's runs spent busy (applying batches), idle (caught up, "
        "waiting for appends) or throttled (pausing between batches).",
        labels=["project", "projection", "state"],
    )
    for row in ProjectionRow.objects.select_related("project").order_by("project__slug", "name"):
        labels = [row.project.slug, row.name]
        lag.add_metric(
            labels, float(positions.lag(row.project_id, LogPosition(row.tx, row.position)))
        )
        if row.rebuild_generation:
            at = LogPosition(row.rebuild_tx, row.rebuild_position)
            rebuild_lag.add_metric(labels, float(positions.lag(row.project_id, at)))
        for state, column in _PROJECTION_TIME:
            spent.add_metric([*labels, state], float(getattr(row, column)))
    yield lag
    yield rebuild_lag
    yield spent


def _subscriptions() -> Iterator[Metric]:
    lag = GaugeMetricFamily(
        "continust_subscription_lag_events",
        "Events of the project's log after a subscription's position, plus the messages "
        "it queued that no consumer has acknowledged yet.",
        labels=["project", "subscription"],
    )
    parked = GaugeMetricFamily(
        "continust_subscription_parked_messages",
        "Messages a persistent subscription parked after their last attempt failed.",
        labels=["project", "subscription"],
    )
    having = Subscription.objects.values("project_id")
    for project in Project.objects.filter(pk__in=having).order_by("slug"):
        for each in subscriptions.overview(project):
            labels = [project.slug, each.subscription.name]
            lag.add_metric(labels, float(each.lag))
            parked.add_metric(labels, float(each.parked))
    yield lag
    yield parked


def _compactions() -> Iterator[Metric]:
    released = CounterMetricFamily(
        "continust_compaction_released_bytes",
        "Bytes finished compactions released (bytes before minus bytes after), per project.",
        labels=["project"],
    )
    done = (
        Compaction.objects.filter(
            status=CompactionStatus.DONE, bytes_before__isnull=False, bytes_after__isnull=False
        )
        .values("stream__project__slug")
        .annotate(bytes=Sum(F("bytes_before") - F("bytes_after")))
        .order_by("stream__project__slug")
    )
    for row in done:
        released.add_metric([row["stream__project__slug"]], float(max(row["bytes"] or 0, 0)))
    yield released
