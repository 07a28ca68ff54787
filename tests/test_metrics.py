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


def family(samples: dict[tuple[str, tuple], float], name: str) -> dict[tuple, float]:
    """The samples of one metric, by their labels."""
    return {labels: value for (each, labels), value in samples.items() if each == name}


@pytest.mark.django_db
def test_append_latency_is_a_histogram_by_outcome_from_the_log(stream):
    from continust.core.errors import InvalidEvent
    from continust.log.store import append

    client = Client(REMOTE_ADDR="127.0.0.1")
    count = "continust_append_seconds_count"
    recorded, refused = (("outcome", "recorded"),), (("outcome", "refused"),)
    before = family(scrape(client), count)
    put(stream, {"a": 1}, {"a": 2})  # the domain's append, not an HTTP request
    with pytest.raises(InvalidEvent):
        append(stream, [])
    after = family(scrape(client), count)
    assert after[recorded] == before.get(recorded, 0) + 1
    assert after[refused] == before.get(refused, 0) + 1
    le = family(scrape(client), "continust_append_seconds_bucket")
    assert le[(("le", "+Inf"), ("outcome", "recorded"))] == after[recorded]


@pytest.mark.django_db
def test_projection_lag_falls_to_zero_once_it_ran_and_its_time_is_booked(project, stream):
    from continust.models import Event
    from continust.projections import control
    from continust.projections.runner import Outcome, run_projection

    put(stream, *({"n": n} for n in range(4)))
    row = control.get_projection(project, "event_counts")
    client = Client(REMOTE_ADDR="127.0.0.1")
    labels = (("project", "acme"), ("projection", "event_counts"))
    logged = Event.objects.filter(project=project).count()
    assert scrape(client)[("continust_projection_lag_events", labels)] == logged
    assert run_projection(row.pk, foreground=True) == Outcome.CAUGHT_UP
    samples = scrape(client)
    assert samples[("continust_projection_lag_events", labels)] == 0
    spent = family(samples, "continust_projection_seconds_total")
    assert spent[(*labels, ("state", "busy"))] > 0
    assert {state for *_, (_, state) in spent} == {"busy", "idle", "throttled"}
    control.rebuild(row)
    rebuilding = scrape(client)[("continust_projection_rebuild_lag_events", labels)]
    assert rebuilding == Event.objects.filter(project=project).count()


@pytest.mark.django_db
def test_a_projection_books_its_idle_and_throttled_time(project, stream, settings):
    from continust.projections import control
    from continust.projections.runner import Outcome, run_projection

    settings.CONTINUST_PROJECTION_BATCH_DELAY_MS = 30
    put(stream, {"n": 1})
    row = control.get_projection(project, "event_counts")
    outcome = run_projection(row.pk, foreground=True, follow_seconds=0.3)
    assert outcome == Outcome.CAUGHT_UP
    spent = family(scrape(Client(REMOTE_ADDR="127.0.0.1")), "continust_projection_seconds_total")
    labels = (("project", "acme"), ("projection", "event_counts"))
    assert spent[(*labels, ("state", "throttled"))] >= 0.03
    assert spent[(*labels, ("state", "idle"))] >= 0.2


@pytest.mark.django_db
def test_subscription_lag_counts_the_log_after_its_position(project, stream):
    from continust.subscriptions import catchup, registry

    registry.create_subscription(project, "copier")
    put(stream, *({"n": n} for n in range(3)))
    client = Client(REMOTE_ADDR="127.0.0.1")
    labels = (("project", "acme"), ("subscription", "copier"))
    behind = registry.events_after(
        project, registry.position_of(registry.get_subscription(project, "copier"))
    )
    assert behind >= 3
    samples = scrape(client)
    assert samples[("continust_subscription_lag_events", labels)] == behind
    assert samples[("continust_subscription_parked_messages", labels)] == 0
    catchup.subscribe(project, "copier", lambda entry: None, until_caught_up=True)
    assert scrape(client)[("continust_subscription_lag_events", labels)] == 0


@pytest.mark.django_db
def test_replays_book_busy_blocked_and_throttled_seconds(stream, settings, monkeypatch):
    import time

    from continust.replays import replay as replays

    settings.CONTINUST_REPLAY_CHUNK_EVENTS = 2
    settings.CONTINUST_REPLAY_CHUNK_DELAY_MS = 20
    locking = replays.lock_stream

    def slow_lock(stream):  # appends hold the stream's lock meanwhile
        time.sleep(0.02)
        return locking(stream)

    monkeypatch.setattr(replays, "lock_stream", slow_lock)
    put(stream, *({"n": n} for n in range(6)))
    replay = replays.start_replay(stream, end="main")
    assert replays.run(replay.pk) == "done"
    spent = family(scrape(Client(REMOTE_ADDR="127.0.0.1")), "continust_replay_seconds_total")
    acme = ("project", "acme")
    assert spent[(acme, ("state", "blocked"))] >= 3 * 0.02  # three chunks, three locks
    assert spent[(acme, ("state", "throttled"))] >= 2 * 0.02  # a pause between chunks
    assert spent[(acme, ("state", "busy"))] > 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    [
        {"HTTP_X_FORWARDED_FOR": "203.0.113.9"},
        {"HTTP_X_FORWARDED_PROTO": "https"},
        {"HTTP_FORWARDED": "for=203.0.113.9;proto=https"},
        {"HTTP_X_REAL_IP": "203.0.113.9"},
    ],
)
def test_a_request_a_local_proxy_passed_on_is_not_loopback(header, settings):
    settings.CONTINUST_METRICS_TOKEN = "s3cret-scrape-token"
    settings.CONTINUST_PROXY_COUNT = 0
    client = Client(REMOTE_ADDR="127.0.0.1")
    assert client.get("/metrics", **header).status_code == 404
    token = "Bearer s3cret-scrape-token"
    assert client.get("/metrics", HTTP_AUTHORIZATION=token, **header).status_code == 200
    assert client.get("/metrics").status_code == 200  # direct, from this machine


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("forwarded_for", "status"),
    [
        ("203.0.113.9", 404),  # a stranger, through the proxy
        ("127.0.0.1", 200),  # a scraper on this machine, through the proxy
        ("127.0.0.1, 203.0.113.9", 404),  # a stranger who wrote loopback in first
        ("", 404),  # the proxy did not say
    ],
)
def test_with_trusted_proxies_the_client_they_recorded_counts(forwarded_for, status, settings):
    settings.CONTINUST_METRICS_TOKEN = ""
    settings.CONTINUST_PROXY_COUNT = 1
    client = Client(REMOTE_ADDR="127.0.0.1")
    response = client.get("/metrics", HTTP_X_FORWARDED_FOR=forwarded_for)
    assert response.status_code == status
    # The proxy's own address must be allowed too: a stranger cannot skip it and forge one.
    direct = Client(REMOTE_ADDR="203.0.113.9").get("/metrics", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert direct.status_code == 404
