"""What continust tells Prometheus: figures read from the database when it scrapes.

Everything here is counted by the database already (events per stream, a replay's
progress, a pipeline's last sampled figures, a compaction's bytes), so a scrape reads
it afresh and every process (web, workers, the CLI) is counted alike, with nothing
kept in memory between scrapes. Figures a process measures itself (HTTP latencies and
statuses) are the web layer's (``api/metrics.py``).
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
    Replay,
    ReplayStatus,
    Stream,
)

# Of a pipeline's sampled stage figures, the ones exported (milliseconds a second → ratio).
_STAGE_STATES = ("busy", "idle", "backpressured")


class LogCollector(Collector):
    """Collect the log's figures from the database at each scrape."""

    def collect(self) -> Iterator[Metric]:
        yield from _events()
        yield from _replays()
        yield from _pipelines()
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
