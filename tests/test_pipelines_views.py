"""The explorer's pipeline screens: who sees them, what they show, and the controls."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from continust.log.projects import create_stream
from continust.log.store import NewEvent, append
from continust.models import OutboxMessage, Pipeline
from continust.pipelines import control
from continust.pipelines.runner import claim, outbox_key, run_pipeline
from explorer.pipelines import chart
from tests.pipelines_support import T0

T0_MS = int(T0.timestamp() * 1000)

pytestmark = pytest.mark.django_db

WINDOW = {"type": "tumbling", "size_ms": 10_000, "allowed_lateness_ms": 0}


@pytest.fixture
def pipeline(project):
    stream = create_stream(project, "web")
    for second in (1, 2, 12, 25, 3, 40):  # the 3 comes after [0, 10 s) closed: late
        append(
            stream,
            [NewEvent("click", {"amount": second}, timestamp=T0 + timedelta(seconds=second))],
        )
    made = control.create_pipeline(
        project, "clicks", definition="event-counts", params={"window": WINDOW}
    )
    run_pipeline(made.pk, until_caught_up=True, enable=True)
    made.refresh_from_db()
    return made


def page(slug="acme", name="clicks"):
    return reverse("pipeline", args=[slug, name])


def test_it_requires_membership(client, charlie, pipeline):
    assert client.get(page()).status_code == 302  # to the login page
    client.force_login(charlie)
    assert client.get(page()).status_code == 404
    assert client.get(reverse("pipelines", args=["acme"])).status_code == 404
    assert client.post(reverse("pipeline-pause", args=["acme", "clicks"])).status_code == 404


def test_the_page_shows_stages_windows_late_events_and_runs(client, bob, pipeline):
    client.force_login(bob)
    response = client.get(page())
    html = response.content.decode()
    assert response.status_code == 200
    for stage in ("source", "key_by", "window", "sink"):
        assert f"{stage} <small" in html
    assert 'class="window-chart"' in html and html.count('class="bar"') == 3
    # [40 s, 50 s) has its click and has not fired: drawn as open, its total so far.
    assert html.count('class="bar open"') == 1 and "1 window still open" in html
    assert control.open_windows(pipeline) == [
        {"start": T0_MS + 40_000, "end": T0_MS + 50_000, "count": 1, "sum": 1, "keys": 1}
    ]
    assert "Late events (side output): <strong>1</strong>" in html
    assert "caught-up" in html  # the run's outcome
    assert "Pause" not in html and "Reset" not in html  # bob only views


def test_htmx_gets_the_live_fragment_and_polls_while_it_runs(client, bob, pipeline):
    client.force_login(bob)
    fragment = client.get(page(), HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<section id="live"')
    assert "<html" not in fragment and 'hx-trigger="every 2s"' not in fragment  # paused
    Pipeline.objects.filter(pk=pipeline.pk).update(enabled=True)
    fragment = client.get(page(), HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 2s"' in fragment


def test_the_chart_can_show_sums(client, bob, pipeline):
    client.force_login(bob)
    html = client.get(page() + "?metric=sum").content.decode()
    assert "sum 2 over 1 key" in html  # [0, 10 s): two events, each counted 1


def test_an_editor_pauses_resumes_and_resets_with_csrf(alice, pipeline):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(reverse("pipeline-resume", args=["acme", "clicks"])).status_code == 403
    token = client.get(page()).cookies["csrftoken"].value
    response = client.post(
        reverse("pipeline-resume", args=["acme", "clicks"]), HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 302 and response.url == page()
    pipeline.refresh_from_db()
    assert pipeline.enabled and pipeline.status == "waiting"
    assert OutboxMessage.objects.filter(key=outbox_key(pipeline)).exists()
    claim(pipeline.pk, worker="w")  # a worker holds it now: no reset
    reset = reverse("pipeline-reset", args=["acme", "clicks"])
    asked = client.get(reset).content.decode()
    assert "forgets its progress (6 event(s) read" in asked
    client.post(reset, HTTP_X_CSRFTOKEN=token)  # no confirm field: nothing happens
    client.post(reset, {"confirm": "yes"}, HTTP_X_CSRFTOKEN=token)
    pipeline.refresh_from_db()
    assert pipeline.events == 6
    client.post(reverse("pipeline-pause", args=["acme", "clicks"]), HTTP_X_CSRFTOKEN=token)
    pipeline.refresh_from_db()
    assert not pipeline.enabled and pipeline.status == "running"  # until its owner lets go
    Pipeline.objects.filter(pk=pipeline.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    client.post(reset, HTTP_X_CSRFTOKEN=token)
    pipeline.refresh_from_db()
    assert pipeline.events == 6, "not without the confirm field"
    client.post(reset, {"confirm": "yes"}, HTTP_X_CSRFTOKEN=token)
    pipeline.refresh_from_db()
    assert (pipeline.events, pipeline.epoch, pipeline.results, pipeline.late_events) == (0, 0, 0, 0)
    assert not pipeline.window_results.exists() and not pipeline.late.exists()


def test_a_viewer_cannot_control_a_pipeline(client, bob, pipeline):
    client.force_login(bob)
    for action in ("start", "pause", "resume", "reset"):
        url = reverse(f"pipeline-{action}", args=["acme", "clicks"])
        assert client.post(url).status_code == 403
    assert client.post(reverse("pipeline-create", args=["acme"])).status_code == 403


def test_an_editor_starts_a_new_pipeline_from_the_list(client, alice, project):
    client.force_login(alice)
    listing = client.get(reverse("pipelines", args=["acme"])).content.decode()
    assert "event-counts" in listing and "payload-sum" in listing
    response = client.post(
        reverse("pipeline-create", args=["acme"]),
        {
            "definition": "payload-sum",
            "name": "transfers",
            "params": '{"group_by": "from", "types": ["transfer.requested"]}',
        },
    )
    assert response.status_code == 302
    made = Pipeline.objects.get(name="transfers")
    assert made.enabled and made.params["group_by"] == "from"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("{not json", "not JSON"),
        ("[1]", "the parameters must be a JSON object"),
        ('{"colour": 1}', "has no parameter(s) colour"),
        ('{"window": {"type": "hopping"}}', "bad window"),
    ],
)
def test_bad_parameters_are_refused_with_a_reason(client, alice, project, params, message):
    client.force_login(alice)
    response = client.post(
        reverse("pipeline-create", args=["acme"]),
        {"definition": "event-counts", "name": "counts", "params": params},
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Pipeline.objects.exists()


def test_an_unknown_pipeline_is_not_found(client, bob, project):
    client.force_login(bob)
    assert client.get(page(name="nope")).status_code == 404


def test_the_chart_scales_bars_into_its_box():
    windows = [
        {"start": 0, "end": 10, "count": c, "sum": 0, "keys": 1, "fires": 1} for c in (5, 10, 0)
    ]
    drawn = chart(windows, "count")
    heights = [bar["height"] for bar in drawn["bars"]]
    assert heights[1] == drawn["plot_height"] and heights[0] == heights[1] / 2
    assert heights[2] == 0 and drawn["top"] == 10
    assert chart([], "count")["bars"] == []


def test_the_chart_has_axes_with_units_and_draws_open_windows_as_open():
    closed = [{"start": 0, "end": 10_000, "count": 4, "sum": 2.5, "keys": 2, "fires": 1}]
    still_open = [{"start": 10_000, "end": 20_000, "count": 8, "sum": 1, "keys": 1}]
    drawn = chart(closed, "count", still_open)
    assert [t["label"] for t in drawn["y_ticks"]] == ["0", "4", "8"]
    assert drawn["unit"] == "events" and chart(closed, "sum")["unit"] == "sum of values"
    assert [b["open"] for b in drawn["bars"]] == [False, True]
    assert drawn["bars"][1]["height"] == drawn["plot_height"]
    assert [t["end"].second for t in drawn["x_ticks"]] == [10, 20]
    assert drawn["open_count"] == 1 and drawn["time_format"] == "H:i:s"
    days = [
        {
            "start": d * 86_400_000,
            "end": (d + 1) * 86_400_000,
            "count": 1,
            "sum": 1,
            "keys": 1,
            "fires": 1,
        }
        for d in range(3)
    ]
    daily = chart(days, "count")
    assert daily["time_format"] == "Y-m-d"  # not 00:00:00 under every bar
    assert [t["label"] for t in daily["y_ticks"]] == ["0", "1"]  # no half a count
