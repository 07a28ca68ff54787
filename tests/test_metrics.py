"""GET /metrics: Prometheus's text format, for the scrapers the operator allows."""

from __future__ import annotations

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from continust.models import Compaction, CompactionStatus
from tests.conftest import put


def scrape(client: Client, **extra) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.mark.django_db
def test_it_counts_events_per_project_and_rises_with_appends(stream):
    put(stream, {"a": 1}, {"a": 2})
    before = scrape(Client(REMOTE_ADDR="127.0.0.1"))
    assert before[("continust_events_total", (("project", "acme"),))] == 2
    assert before[("continust_streams", (("project", "acme"),))] == 1
    put(stream, {"a": 3})
    after = scrape(Client(REMOTE_ADDR="127.0.0.1"))
    assert after[("continust_events_total", (("project", "acme"),))] == 3


@pytest.mark.django_db
def test_it_times_and_counts_responses_by_route_and_status_class(stream):
    client = Client(REMOTE_ADDR="127.0.0.1")
    before = scrape(client)
    client.get("/no/such/page/")
    after = scrape(client)
    unmatched = (
        "continust_http_responses_total",
        (("method", "GET"), ("route", "(unmatched)"), ("status", "4xx")),
    )
    assert after[unmatched] == before.get(unmatched, 0) + 1
    assert any(name == "continust_http_request_seconds_count" for name, _ in after)


@pytest.mark.django_db
def test_replay_pipeline_and_compaction_figures(stream):
    from continust.models import Pipeline
    from continust.pipelines import control
    from continust.replays.replay import start_replay

    put(stream, *({"n": n} for n in range(5)))
    replay = start_replay(stream, end="main")
    pipeline = control.create_pipeline(stream.project, "counts", definition="event-counts")
    Pipeline.objects.filter(pk=pipeline.pk).update(
        events=42,
        metrics={
            "stages": [
                {"name": "source", "lag": 7, "busy_ms": 250, "idle_ms": 750, "backpressured_ms": 0},
                {"name": "sink", "lag": 9, "busy_ms": 100, "idle_ms": 0, "backpressured_ms": 900},
            ]
        },
    )
    Compaction.objects.create(
        stream=stream,
        policy={},
        upto=0,
        status=CompactionStatus.DONE,
        bytes_before=9000,
        bytes_after=4000,
    )
    samples = scrape(Client(REMOTE_ADDR="127.0.0.1"))
    acme = ("project", "acme")
    assert samples[("continust_compaction_released_bytes_total", (acme,))] == 5000
    labels = (("pipeline", "counts"), acme)
    assert samples[("continust_pipeline_events_total", labels)] == 42
    assert samples[("continust_pipeline_lag_events", labels)] == 9
    sink = (
        "continust_pipeline_stage_time_ratio",
        (("pipeline", "counts"), acme, ("stage", "sink"), ("state", "backpressured")),
    )
    assert samples[sink] == 0.9
    remaining = (
        "continust_replay_remaining_events",
        (acme, ("replay", str(replay.pk)), ("stream", "pricing")),
    )
    assert samples[remaining] == replay.total - replay.done


@pytest.mark.django_db
@pytest.mark.parametrize("address", ["10.1.2.3", "203.0.113.9"])
def test_strangers_get_a_404(address, settings):
    settings.CONTINUST_METRICS_TOKEN = ""
    assert Client(REMOTE_ADDR=address).get("/metrics").status_code == 404


@pytest.mark.django_db
def test_a_scraper_elsewhere_needs_the_token(settings):
    settings.CONTINUST_METRICS_TOKEN = "s3cret-scrape-token"
    client = Client(REMOTE_ADDR="203.0.113.9")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    assert (
        client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token").status_code == 200
    )


@pytest.mark.django_db
def test_networks_are_configurable(settings):
    import ipaddress

    settings.CONTINUST_METRICS_NETWORKS = (ipaddress.ip_network("10.0.0.0/8"),)
    assert Client(REMOTE_ADDR="10.9.9.9").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 404


def test_a_bad_network_setting_is_one_clear_error(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from continust.env import env_networks

    monkeypatch.setenv("CONTINUST_METRICS_NETWORKS", "10.0.0.0/8,not-a-net")
    with pytest.raises(ImproperlyConfigured, match="not-a-net"):
        env_networks("CONTINUST_METRICS_NETWORKS", [])
