"""Explorer pages and fragments: membership, 404s, CSRF, escaping, and what each page shows."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from continust.log.projects import add_member
from continust.log.store import NewEvent, append
from continust.models import Branch, Event, Project, Role, Stream, Version

pytestmark = pytest.mark.django_db

XSS = '<script>alert(1)</script>"><svg onload=alert(2)>'


@pytest.fixture
def demo(bob, charlie):
    call_command("seed_demo", "--small", stdout=StringIO())
    project = Project.objects.get(slug="demo")
    add_member(project, bob, Role.VIEWER)
    return project


@pytest.fixture
def pricing(demo):
    return Stream.objects.get(project=demo, name="pricing")


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def urls(pricing):
    slug, sid = pricing.project.slug, pricing.pk
    version = Version.objects.filter(stream=pricing).last()
    first = Version.objects.filter(stream=pricing).first()
    return [
        reverse("project", args=[slug]),
        reverse("stream", args=[slug, sid]),
        reverse("stream", args=[slug, sid]) + f"?v={version.pk}&a={first.pk}&b={version.pk}",
        reverse("stream", args=[slug, sid]) + "?type=tier.added",
        reverse("version", args=[slug, sid, version.pk]),
        reverse("version-state", args=[slug, sid, version.pk]),
        reverse("compare", args=[slug, sid]) + f"?a={first.pk}&b={version.pk}",
        reverse("compare", args=[slug, sid]) + f"?a={first.pk}&b={version.pk}&format=json-patch",
        reverse("jump", args=[slug, sid]) + "?q=main",
        reverse("merge", args=[slug, sid]) + "?source=annual&into=main",
        reverse("causation", args=[slug, version.event.id]),
    ]


def test_a_member_sees_every_page(demo, pricing, bob):
    client = as_user(demo.memberships.get(role=Role.ADMIN).user)
    for url in urls(pricing):
        response = client.get(url)
        assert response.status_code in {200, 302}, url


def test_a_stranger_gets_404_everywhere(pricing, charlie):
    client = as_user(charlie)
    for url in urls(pricing):
        assert client.get(url).status_code == 404, url


def test_an_anonymous_visitor_is_sent_to_log_in(pricing):
    for url in urls(pricing):
        response = Client().get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


def test_a_viewer_cannot_fork_or_merge(pricing, bob):
    client = as_user(bob)
    version = Version.objects.filter(stream=pricing).first()
    fork = client.post(reverse("fork", args=["demo", pricing.pk]), {"at": version.pk, "name": "x"})
    assert fork.status_code == 403
    assert client.get(reverse("merge", args=["demo", pricing.pk])).status_code == 403
    assert not Branch.objects.filter(name="x").exists()


def test_a_stream_of_another_project_is_404(demo, alice, project):
    from continust.log.projects import create_stream

    foreign = create_stream(project, "secret")
    client = as_user(demo.memberships.get(role=Role.ADMIN).user)
    assert client.get(reverse("stream", args=["demo", foreign.pk])).status_code == 404
    assert client.get(reverse("stream", args=["acme", foreign.pk])).status_code == 404


def test_posts_need_csrf(pricing):
    client = Client(enforce_csrf_checks=True)
    client.force_login(pricing.project.memberships.get(role=Role.ADMIN).user)
    version = Version.objects.filter(stream=pricing).first()
    response = client.post(
        reverse("fork", args=["demo", pricing.pk]), {"at": version.pk, "name": "nocsrf"}
    )
    assert response.status_code == 403
    assert not Branch.objects.filter(name="nocsrf").exists()


def test_the_timeline_draws_lanes_merges_and_heads(pricing):
    client = as_user(pricing.project.memberships.get(role=Role.ADMIN).user)
    page = client.get(reverse("stream", args=["demo", pricing.pk])).content.decode()
    assert page.count('<li class="tl-row') == Version.objects.filter(stream=pricing).count()
    assert 'class="edge merge s' in page
    assert 'class="branch-label">main<' in page
    assert "htmx" in page and "unpkg" not in page and "cdn" not in page.lower()


def test_the_timeline_loads_older_pages(pricing):
    for n in range(130):
        append(pricing, [NewEvent(type="tick", payload={"n": n})])
    client = as_user(pricing.project.memberships.get(role=Role.ADMIN).user)
    url = reverse("stream", args=["demo", pricing.pk])
    first = client.get(url).content.decode()
    assert first.count('<li class="tl-row') == 100
    assert 'hx-trigger="intersect once root:#timeline"' in first
    total = Version.objects.filter(stream=pricing).count()
    hundredth = Version.objects.filter(stream=pricing).order_by("-id")[99].pk
    older = client.get(url + f"?before={hundredth}&fragment=page", HTTP_HX_REQUEST="true")
    body = older.content.decode()
    assert "<html" not in body and body.count('<li class="tl-row') == total - 100


def test_the_version_panel_shows_the_event_state_and_causes(demo):
    bob_account = Stream.objects.get(project=demo, name="accounts/bob")
    credit = Version.objects.filter(stream=bob_account, event__type="account.credited").first()
    client = as_user(demo.memberships.get(role=Role.ADMIN).user)
    panel = client.get(
        reverse("version", args=["demo", bob_account.pk, credit.pk]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "<html" not in panel
    for text in [
        "account.credited",
        "accounts/alice: account.debited",
        "transfer.requested",
        credit.state_id,
        credit.event.hash,
        '"balance"'.replace('"', ""),
    ]:
        assert text in panel


def test_compare_shows_the_diff_bases_and_between(pricing):
    client = as_user(pricing.project.memberships.get(role=Role.ADMIN).user)
    a = Branch.objects.get(stream=pricing, name="enterprise").head
    b = Branch.objects.get(stream=pricing, name="annual").head
    page = client.get(reverse("compare", args=["demo", pricing.pk]) + f"?a={a.pk}&b={b.pk}")
    text = page.content.decode()
    assert "Merge bases" in text and "/annual_discount_percent" in text
    patch = client.get(
        reverse("compare", args=["demo", pricing.pk]) + f"?a={a.pk}&b={b.pk}&format=json-patch"
    )
    import jsonpatch

    assert jsonpatch.apply_patch(a.state.data, json.loads(patch.content)) == b.state.data


@pytest.mark.parametrize("debug", [False, True])
def test_a_cross_stream_compare_says_which_version_is_not_here_inside_the_layout(
    demo, pricing, settings, debug
):
    settings.DEBUG = debug  # scripts/explore runs in debug: no technical 404 page there either
    client = as_user(pricing.project.memberships.get(role=Role.ADMIN).user)
    here = Version.objects.filter(stream=pricing).first()
    elsewhere = Version.objects.filter(stream__project=pricing.project).exclude(stream=pricing)
    other = elsewhere.first()
    page = client.get(reverse("compare", args=["demo", pricing.pk]) + f"?a={here.pk}&b={other.pk}")
    text = page.content.decode()
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
    assert f"Stream {pricing.name} has no version {other.pk} to compare." in text
    assert "Go back" in text and "<nav" in text


def test_fork_and_merge_from_the_ui(pricing):
    client = as_user(pricing.project.memberships.get(role=Role.ADMIN).user)
    main = Branch.objects.get(stream=pricing, name="main").head
    client.post(reverse("fork", args=["demo", pricing.pk]), {"at": main.pk, "name": "try"})
    append(pricing, [NewEvent(type="x", payload={"trial_days": 7})], branch="try")
    append(pricing, [NewEvent(type="x", payload={"trial_days": 10})], branch="main")
    url = reverse("merge", args=["demo", pricing.pk])
    preview = client.post(url, {"source": "try", "into": "main"}).content.decode()
    assert "1 conflict" in preview and "/trial_days" in preview
    before = Event.objects.count()
    refused = client.post(url, {"source": "try", "into": "main", "confirm": "yes"})
    assert refused.status_code == 200 and Event.objects.count() == before
    done = client.post(
        url, {"source": "try", "into": "main", "confirm": "yes", "resolve:/trial_days": "7"}
    )
    assert done.status_code == 302
    assert Branch.objects.get(stream=pricing, name="main").head.state.data["trial_days"] == 7


def test_everything_from_an_event_is_escaped(demo):
    from continust.log.projects import create_stream

    stream = create_stream(demo, XSS[:40].replace(" ", "_"))
    (version,) = append(stream, [NewEvent(type=XSS, payload={XSS: XSS}, actor=XSS)]).versions
    client = as_user(demo.memberships.get(role=Role.ADMIN).user)
    for url in [
        reverse("project", args=["demo"]),
        reverse("stream", args=["demo", stream.pk]),
        reverse("stream", args=["demo", stream.pk]) + f"?v={version.pk}",
        reverse("version", args=["demo", stream.pk, version.pk]),
        reverse("causation", args=["demo", version.event.id]),
    ]:
        body = client.get(url).content.decode()
        assert "<script>alert" not in body and "<svg onload" not in body, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body, url


def test_jump_finds_ids_keys_branches_and_event_ids(pricing):
    client = as_user(pricing.project.memberships.get(role=Role.ADMIN).user)
    version = Version.objects.filter(stream=pricing).first()
    base = reverse("jump", args=["demo", pricing.pk])
    for query in [str(version.pk), str(version.event.id)]:
        response = client.get(base + f"?q={query}")
        assert response["Location"].endswith(f"?v={version.pk}")
    assert client.get(base + "?q=nothing-here")["Location"].endswith(f"/s/{pricing.pk}/")


def test_active_search_returns_the_list_fragment(demo):
    client = as_user(demo.memberships.get(role=Role.ADMIN).user)
    response = client.get(reverse("project", args=["demo"]) + "?q=acc", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "<html" not in body and "accounts/alice" in body and "pricing" not in body


def test_filters_show_only_matching_versions(pricing):
    client = as_user(pricing.project.memberships.get(role=Role.ADMIN).user)
    url = reverse("stream", args=["demo", pricing.pk])
    by_type = client.get(url + "?type=continust.merge").content.decode()
    merges = Version.objects.filter(stream=pricing, event__type="continust.merge").count()
    assert by_type.count('<li class="tl-row') == merges > 0
    by_actor = client.get(url + "?actor=jon").content.decode()
    assert (
        by_actor.count('<li class="tl-row')
        == Version.objects.filter(stream=pricing, event__actor="jon").count()
        == 2
    )
    by_branch = client.get(url + "?branch=summer-sale").content.decode()
    assert by_branch.count('<li class="tl-row') == 2
    window = client.get(url + "?since=2026-01-05T12:00&until=2026-01-05T14:00").content.decode()
    assert (
        window.count('<li class="tl-row')
        == Version.objects.filter(
            stream=pricing,
            event__timestamp__gte="2026-01-05T12:00Z",
            event__timestamp__lt="2026-01-05T14:00Z",
        ).count()
        == 2
    )


def test_a_page_holds_the_lines_that_pass_over_it(project, stream):
    from continust.log.store import fork, merge
    from explorer.placement import page_edges, place_new_versions

    (root,) = append(stream, [NewEvent(type="t", payload={"n": 0})]).versions
    fork(stream, "side", root)
    (side,) = append(stream, [NewEvent(type="s", payload={"s": 1})], branch="side").versions
    for n in range(1, 150):
        append(stream, [NewEvent(type="t", payload={"n": n})])
    merged = merge(stream, "side", "main")
    allocator = place_new_versions(stream)
    top = allocator.rows - 20
    middle = page_edges(stream, top=top, bottom=top - 49, lanes=allocator.lanes)
    passing = [(e.child.id, e.parent.id) for e in middle]
    assert (merged.pk, side.pk) in passing


def test_a_version_the_address_names_that_is_not_in_the_stream_is_a_404_page(demo, pricing):
    client = as_user(pricing.project.memberships.get(role=Role.ADMIN).user)
    url = reverse("stream", args=["demo", pricing.pk])
    for param in ("v", "a", "b"):
        page = client.get(url + f"?{param}=123456789")
        text = page.content.decode()
        assert page.status_code == 404, param
        assert f"stream {pricing.name} has no version 123456789" in text and "Go back" in text


def test_a_form_sent_without_a_valid_csrf_token_gets_a_page_inside_the_layout(pricing):
    client = Client(enforce_csrf_checks=True)
    client.force_login(pricing.project.memberships.get(role=Role.ADMIN).user)
    before = Branch.objects.count()
    refused = client.post(reverse("fork", args=["demo", pricing.pk]), {"at": 1, "name": "x"})
    text = refused.content.decode()
    assert refused.status_code == 403 and "nothing was changed" in text
    assert "Go back" in text and "<nav" in text
    assert Branch.objects.count() == before


def test_the_merge_page_names_branches_not_ids_and_refuses_an_unknown_one(pricing):
    client = as_user(pricing.project.memberships.get(role=Role.ADMIN).user)
    url = reverse("merge", args=["demo", pricing.pk])
    main = Branch.objects.get(stream=pricing, name="main").head
    client.post(reverse("fork", args=["demo", pricing.pk]), {"at": main.pk, "name": "same"})
    merged = client.get(url, {"source": "same", "into": "main"})
    assert "same is already merged into main: nothing to merge." in merged.content.decode()
    unknown = client.get(url, {"source": "nope", "into": "main"})
    assert unknown.status_code == 400
    assert "stream pricing has no branch &#x27;nope&#x27;" in unknown.content.decode()


def test_every_page_links_to_the_api_tokens(demo, pricing):
    client = as_user(pricing.project.memberships.get(role=Role.ADMIN).user)
    for url in (reverse("home"), reverse("stream", args=["demo", pricing.pk])):
        assert f'href="{reverse("api-tokens")}"' in client.get(url).content.decode()


def test_a_merge_patch_download_that_cannot_say_null_explains_inside_the_layout(demo, pricing):
    from continust.log.projects import create_stream
    from tests.conftest import put

    client = as_user(pricing.project.memberships.get(role=Role.ADMIN).user)
    doc = create_stream(pricing.project, "doc", reducer="replace")
    a, b = put(doc, {"a": 1}, {"a": None})
    page = client.get(
        reverse("compare", args=["demo", doc.pk]) + f"?a={a.pk}&b={b.pk}&format=merge-patch"
    )
    assert page.status_code == 422
    text = page.content.decode()
    assert "cannot set a value to null" in text and "/a" in text and "JSON Patch" in text
    assert "<nav" in text or "<header" in text
