"""The explorer reads revisions in the address bar, the search box and compare; tags and
reverts from the version panel go through a confirmation; the bisect page walks a user
through a bisection by JSON Pointer (alice edits, bob views, charlie has no access)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from continust.audit.tags import create_tag
from continust.log.store import move_branch
from continust.models import Event, Tag
from tests.conftest import put

pytestmark = pytest.mark.django_db


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def line(stream):
    return put(
        stream,
        {"ok": True, "n": 1},
        {"ok": True, "n": 2},
        {"ok": False, "n": 3},
        {"ok": False, "n": 4},
    )


def url(name, stream, *args):
    return reverse(name, args=["acme", stream.pk, *args])


def test_the_address_bar_and_compare_read_revisions(alice, stream, line):
    client = as_user(alice)
    page = client.get(url("stream", stream), {"v": "main~2"})
    assert page.status_code == 200
    assert f'id="version-{line[1].pk}"' in page.content.decode()
    compare = client.get(url("compare", stream), {"a": "main~3", "b": "main"})
    assert compare.status_code == 200 and "/n" in compare.content.decode()
    bad = client.get(url("stream", stream), {"v": "main~9"})
    assert bad.status_code == 422
    assert "walks past the root" in bad.content.decode()


def test_the_search_box_opens_a_range_in_compare(alice, stream, line):
    client = as_user(alice)
    found = client.get(url("jump", stream), {"q": "main~3..main"})
    assert found.status_code == 302
    assert found["Location"].endswith(f"?a={line[0].pk}&b={line[3].pk}")
    missed = client.get(url("jump", stream), {"q": "main..nope"}, follow=True)
    assert "Range &#x27;main..nope&#x27;: stream pricing has no" in missed.content.decode()


def test_tags_show_on_the_timeline_and_the_panel(alice, stream, line):
    create_tag(stream, "release-<1>", line[1], actor="alice")
    client = as_user(alice)
    timeline = client.get(url("stream", stream)).content.decode()
    assert '<span class="tag-label" title="tag">release-&lt;1&gt;</span>' in timeline
    panel = client.get(url("version", stream, line[1].pk)).content.decode()
    assert "release-&lt;1&gt;</span>" in panel and "Tag this version" in panel


def test_tagging_asks_first_then_records(alice, bob, stream, line):
    target = url("tag-version", stream, line[0].pk)
    client = as_user(alice)
    asked = client.get(target, {"tag": "rc1"})
    assert "never moved and never deleted" in asked.content.decode()
    assert not Tag.objects.exists()
    done = client.post(target + "?tag=rc1", {"confirm": "yes"})
    assert done.status_code == 302
    tag = Tag.objects.get()
    assert (tag.name, tag.version_id, tag.actor) == ("rc1", line[0].pk, "alice")
    again = client.get(target, {"tag": "v12"})
    assert "spells a version id" in again.content.decode()
    assert as_user(bob).post(target + "?tag=rc2", {"confirm": "yes"}).status_code == 403


def test_revert_names_what_it_will_append_then_appends(alice, stream):
    v1, v2, v3 = put(stream, {"a": 1}, {"b": 2}, {"c": 3})
    target = url("revert-version", stream, v2.pk)
    client = as_user(alice)
    asked = client.get(target).content.decode()
    assert "Append one continust.revert event to branch main" in asked
    assert f"after its head v{v3.pk}" in asked and "- /b: 2" in asked
    assert Event.objects.count() == 3
    done = client.post(target, {"confirm": "yes"})
    assert done.status_code == 302
    made = Event.objects.order_by("-position").first()
    assert made.type == "continust.revert" and made.causation_id == v2.event.id


def test_revert_says_why_it_does_not_apply(alice, stream):
    v1, v2, v3 = put(stream, {"a": 1}, {"a": 2}, {"a": 3})
    page = as_user(alice).get(url("revert-version", stream, v2.pk)).content.decode()
    assert "does not apply cleanly" in page and 'class="confirm-form"' not in page


def test_the_bisect_page_finds_the_first_bad_version(bob, stream, line):
    client = as_user(bob)
    start = client.get(url("bisect", stream), {"bad": "main"})
    assert start.status_code == 200 and "only the command line" in start.content.decode()
    found = client.get(
        url("bisect", stream), {"good": "main~3", "bad": "main", "pointer": "/ok", "expect": "true"}
    )
    body = found.content.decode()
    assert found.status_code == 200
    assert f"Version {line[2].pk} is the first bad version" in body


def test_the_bisect_page_skips_versions_and_says_where_the_break_lies(bob, stream, line):
    client = as_user(bob)
    query = {"good": "main~3", "bad": "main", "pointer": "/ok", "expect": "true"}
    page = client.get(url("bisect", stream), {**query, "skip": f"v{line[2].pk}"})
    body = page.content.decode()
    assert page.status_code == 200, body
    assert "The first bad version is one of 2" in body
    assert f"v{line[2].pk}: skipped as asked" in body
    wrong = client.get(url("bisect", stream), {**query, "skip": "main~99 <b>"})
    assert wrong.status_code == 400 and "walks past the root" in wrong.content.decode()
    assert "<b>" not in wrong.content.decode()


def test_the_bisect_page_says_what_did_not_resolve(bob, stream, line):
    client = as_user(bob)
    query = {"good": "main~9", "bad": "main", "pointer": "/ok", "expect": "true"}
    page = client.get(url("bisect", stream), query)
    assert page.status_code == 400
    assert "walks past the root" in page.content.decode()
    page = client.get(url("bisect", stream), {**query, "good": "main~3", "expect": "tru"})
    assert page.status_code == 400 and "This is not JSON" in page.content.decode()
    page = client.get(url("bisect", stream), {**query, "good": "main", "bad": "main~3"})
    assert "is an ancestor of good" in page.content.decode()


def test_charlie_sees_none_of_it(charlie, stream, line):
    client = as_user(charlie)
    assert client.get(url("bisect", stream)).status_code == 404
    assert client.get(url("revert-version", stream, line[1].pk)).status_code == 404
    assert client.get(url("tag-version", stream, line[1].pk), {"tag": "x"}).status_code == 404


def test_a_branch_named_with_dots_is_still_found(alice, stream, line):
    # Made before new branch names were held to the tag rules, or imported from then.
    move_branch(stream, "a..b", line[0], reason="fork")
    found = as_user(alice).get(url("jump", stream), {"q": "a..b"})
    assert found["Location"].endswith(f"?v={line[0].pk}")
