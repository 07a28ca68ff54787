"""The stream page's timeline through the test client: numbers per stream, lane colours
and the legend, filters that say what they did, choices to filter by, the live tail's
answer, and a query count that does not grow with the stream."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from continust.graph.parents import parents_of
from continust.log.store import NewEvent, append, fork, merge
from continust.models import OutboxMessage, Project, Role, Stream, Version
from explorer.layout import EDGE_KINDS
from explorer.placement import place_new_versions

pytestmark = pytest.mark.django_db


@pytest.fixture
def pricing():
    call_command("seed_demo", "--small", stdout=StringIO())
    return Stream.objects.get(project=Project.objects.get(slug="demo"), name="pricing")


def admin(stream: Stream) -> Client:
    client = Client()
    client.force_login(stream.project.memberships.get(role=Role.ADMIN).user)
    return client


def rows(body: str) -> list[str]:
    return re.findall(r'<li class="tl-row[^"]*" data-version="\d+">.*?</li>', body, re.S)


def test_each_row_shows_its_number_in_the_stream_and_its_id(pricing):
    body = admin(pricing).get(reverse("stream", args=["demo", pricing.pk])).content.decode()
    ids = list(Version.objects.filter(stream=pricing).order_by("-id").values_list("id", flat=True))
    shown = rows(body)
    assert len(shown) == len(ids)
    for position, (row, pk) in enumerate(zip(shown, ids, strict=True)):
        assert f'<span class="num">#{len(ids) - position}</span>' in row
        assert f'<span class="vid">v{pk}</span>' in row
        assert f'href="?v={pk}"' in row  # the global id stays in addresses


def test_lanes_keep_their_colour_and_the_legend_explains_every_line(project, stream):
    (root,) = append(stream, [NewEvent(type="a", payload={"n": 0})]).versions
    fork(stream, "side", root)
    append(stream, [NewEvent(type="b", payload={"s": 1})], branch="side")
    append(stream, [NewEvent(type="c", payload={"n": 1}), NewEvent(type="d", payload={"n": 2})])
    merge(stream, "side", "main")
    body = admin(stream).get(reverse("stream", args=[project.slug, stream.pk])).content.decode()
    colours: dict[str, set[str]] = {}
    for lane_colour, types in re.findall(
        r'class="node c(\d)[^"]*" data-version="\d+"><title>#\d+ \(v\d+\) (\w+)', body
    ):
        colours.setdefault(lane_colour, set()).add(types)
    # one lane's versions (c, d and the merge) share one colour whatever their type
    assert any({"c", "d", "continust"} <= types for types in colours.values()), colours
    assert len(colours) == 2
    drawn = set(re.findall(r'class="edge (\w+) s\d"', body))
    assert drawn == {"parent", "fork", "merge"}
    legend = body.split('<div class="legend"', 1)[1]
    for kind in drawn:
        assert EDGE_KINDS[kind].replace("'", "&#x27;") in legend
    assert '<span class="chip">c</span>' in body
    assert "style=" not in body


def test_a_filter_says_when_nothing_matches_and_refuses_bad_input(pricing):
    client, url = admin(pricing), reverse("stream", args=["demo", pricing.pk])
    nothing = client.get(url + "?type=no.such.type").content.decode()
    assert "No versions match these filters." in nothing and not rows(nothing)
    bad = client.get(url + "?since=yesterday").content.decode()
    assert "Enter a valid date/time." in bad and "Fix the filter to see versions." in bad
    assert "a filter above cannot be read" in bad and not rows(bad)
    total = Version.objects.filter(stream=pricing).count()
    assert f"· {total} versions</small>" in bad  # the stream's count, not 0


def test_the_filters_offer_the_streams_types_actors_and_branches(pricing):
    body = admin(pricing).get(reverse("stream", args=["demo", pricing.pk])).content.decode()
    for datalist, values in [
        ("type-choices", Version.objects.filter(stream=pricing).values_list("event__type")),
        ("actor-choices", Version.objects.filter(stream=pricing).values_list("event__actor")),
        ("branch-choices", pricing.branches.values_list("name")),
    ]:
        listed = re.search(rf'<datalist id="{datalist}">(.*?)</datalist>', body, re.S)
        assert listed, datalist
        offered = set(re.findall(r'<option value="([^"]*)">', listed.group(1)))
        assert offered == {value for (value,) in values if value}, datalist
    assert 'list="type-choices"' in body and 'list="actor-choices"' in body


def test_the_tail_answers_204_until_a_version_arrives(pricing):
    client, url = admin(pricing), reverse("stream", args=["demo", pricing.pk])
    newest = Version.objects.filter(stream=pricing).order_by("-id").first()
    tail = url + f"?fragment=tail&after={newest.pk}"
    assert client.get(tail, HTTP_HX_REQUEST="true").status_code == 204
    (fresh,) = append(pricing, [NewEvent(type="tail.seen", payload={"t": 1})]).versions
    answer = client.get(tail, HTTP_HX_REQUEST="true")
    body = answer.content.decode()
    assert answer.status_code == 200 and "<html" not in body
    assert rows(body)[0].startswith(f'<li class="tl-row" data-version="{fresh.pk}"')
    assert f'data-newest="{fresh.pk}"' in body


def test_a_stream_with_no_versions_yet_opens_empty_and_then_shows_its_first(project, stream):
    client, url = admin(stream), reverse("stream", args=[project.slug, stream.pk])
    page = client.get(url)
    assert page.status_code == 200 and rows(page.content.decode()) == []
    assert "<html" in page.content.decode()  # inside the layout
    assert f"<title>{stream.name} · {project.name} · continust</title>" in page.content.decode()
    fragment = client.get(url + "?fragment=page", HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200 and rows(fragment.content.decode()) == []
    assert client.get(url + "?fragment=tail&after=0", HTTP_HX_REQUEST="true").status_code == 204
    (first,) = append(stream, [NewEvent(type="first", payload={"n": 1})]).versions
    body = client.get(url).content.decode()
    assert [row.split('data-version="')[1].split('"')[0] for row in rows(body)] == [str(first.pk)]


def test_opening_a_stream_costs_the_same_queries_whatever_its_length(project, stream):
    def queries(count: int) -> int:
        append(stream, [NewEvent(type="t", payload={"n": n}) for n in range(count)])
        place_new_versions(stream)
        client = admin(stream)
        url = reverse("stream", args=[project.slug, stream.pk])
        client.get(url)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured.captured_queries)

    short = queries(150)
    assert queries(1500) == short


def test_place_timelines_places_a_long_history_so_it_opens_at_its_head(
    project, stream, monkeypatch
):
    from explorer import placement

    monkeypatch.setattr(placement, "STEP", 20, raising=False)
    versions = append(stream, [NewEvent(type="t", payload={"n": n}) for n in range(75)]).versions
    out = StringIO()
    call_command("place_timelines", "--project", project.slug, stdout=out)
    assert "placed 1 stream(s), 75 version(s) on the timeline" in out.getvalue()
    body = admin(stream).get(reverse("stream", args=[project.slug, stream.pk])).content.decode()
    assert "Placing" not in body
    assert rows(body)[0].startswith(f'<li class="tl-row" data-version="{versions[-1].pk}"')
    with pytest.raises(CommandError, match="nope"):
        call_command("place_timelines", "--project", "nope")


def test_a_long_unplaced_stream_opens_after_placing_one_step(project, stream, monkeypatch):
    """A page places at most STEP new versions, draws what is placed, says how many
    wait, and asks the background task for the rest (the first open used to place all)."""
    from explorer import placement
    from explorer.models import VersionPlace

    monkeypatch.setattr(placement, "STEP", 20, raising=False)  # the old code had no step
    versions = append(stream, [NewEvent(type="t", payload={"n": n}) for n in range(75)]).versions
    client, url = admin(stream), reverse("stream", args=[project.slug, stream.pk])
    body = client.get(url).content.decode()
    assert VersionPlace.objects.filter(stream=stream).count() == 20
    assert "Placing 55 newer versions…" in body
    shown = rows(body)
    assert len(shown) == 20
    assert shown[0].startswith(f'<li class="tl-row" data-version="{versions[19].pk}"')
    assert '<span class="num">#20</span>' in shown[0]
    assert (
        OutboxMessage.objects.filter(task="explorer.place", key=f"place:{stream.pk}").count() == 1
    )
    # The live tail places the next step and draws it, still saying what waits.
    tail = client.get(f"{url}?fragment=tail&after={versions[19].pk}", HTTP_HX_REQUEST="true")
    body = tail.content.decode()
    assert tail.status_code == 200 and "Placing 35 newer versions…" in body
    assert rows(body)[0].startswith(f'<li class="tl-row" data-version="{versions[39].pk}"')
    # Asked once: a second look within the minute does not ask again.
    assert OutboxMessage.objects.filter(key=f"place:{stream.pk}").count() == 1


def test_placing_in_steps_and_in_the_background_gives_the_layout_of_placing_at_once(
    project, stream, monkeypatch
):
    from explorer import placement
    from explorer.layout import LaneAllocator, PlacedVersion
    from explorer.models import EdgePlace, VersionPlace
    from explorer.tasks import place_stream

    monkeypatch.setattr(placement, "STEP", 7)
    monkeypatch.setattr(placement, "CHUNK", 11)
    (root,) = append(stream, [NewEvent(type="t", payload={"n": 0})]).versions
    for round_ in range(4):
        fork(stream, f"side{round_}", root)
        append(
            stream, [NewEvent(type="s", payload={"s": n}) for n in range(5)], branch=f"side{round_}"
        )
        append(stream, [NewEvent(type="t", payload={"n": n}) for n in range(9)])
        if round_ % 2:
            merge(stream, f"side{round_}", "main")
    client, url = admin(stream), reverse("stream", args=[project.slug, stream.pk])
    assert "Placing" in client.get(url).content.decode()
    assert place_stream(stream.pk) == Version.objects.filter(stream=stream).count()
    body = client.get(url).content.decode()
    assert "Placing" not in body

    allocator, expected, expected_edges = LaneAllocator(), {}, set()
    for version in Version.objects.filter(stream=stream).order_by("id"):
        parents = [expected[parent] for parent in parents_of(version)]
        spot = allocator.place(parents)
        expected[version.pk] = PlacedVersion(version.pk, spot.row, spot.lane)
        expected_edges |= {
            (version.pk, parent.id, index, lane)
            for index, (parent, lane) in enumerate(zip(parents, spot.edge_lanes, strict=True))
        }
    stored = {
        vid: PlacedVersion(vid, row, lane)
        for vid, row, lane in VersionPlace.objects.filter(stream=stream).values_list(
            "version_id", "row", "lane"
        )
    }
    assert stored == expected
    assert (
        set(
            EdgePlace.objects.filter(stream=stream).values_list(
                "child_id", "parent_id", "index", "lane"
            )
        )
        == expected_edges
    )
    assert place_stream(stream.pk) == len(expected)  # a second delivery changes nothing
