"""The explorer's replay screens: access, the start form, progress polling, cancel, promote."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from continust.graph.parents import parents_of
from continust.log.projects import create_project, create_stream
from continust.models import Branch, Replay
from continust.replays import replay as replays
from tests.conftest import put

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(stream):
    return put(stream, {"price": 10}, {"price": 11}, {"tier": "pro"})


@pytest.fixture
def replay(stream, versions):
    return replays.start_replay(stream, end="main", actor="alice")


def url(name, stream, *args):
    return reverse(name, args=["acme", stream.pk, *args])


def test_it_requires_membership(client, charlie, stream, replay):
    client.force_login(charlie)
    assert client.get(url("replays", stream)).status_code == 404
    assert client.get(url("replay", stream, replay.pk)).status_code == 404
    assert client.post(url("replay-start", stream), {"end": "main"}).status_code == 404
    assert client.post(url("replay-cancel", stream, replay.pk)).status_code == 404
    assert client.post(url("replay-promote", stream, replay.pk)).status_code == 404
    assert Replay.objects.count() == 1


def test_it_sends_anonymous_visitors_to_log_in(client, stream, replay):
    response = client.get(url("replay", stream, replay.pk))
    assert response.status_code == 302 and "/accounts/login/" in response.url


def test_viewers_see_replays_but_cannot_start_cancel_or_promote(client, bob, stream, replay):
    client.force_login(bob)
    page = client.get(url("replays", stream))
    assert page.status_code == 200
    assert "Start a replay" not in page.content.decode()
    assert client.get(url("replay", stream, replay.pk)).status_code == 200
    assert client.post(url("replay-start", stream), {"end": "main"}).status_code == 403
    assert client.post(url("replay-cancel", stream, replay.pk)).status_code == 403
    assert client.post(url("replay-promote", stream, replay.pk)).status_code == 403
    replay.refresh_from_db()
    assert replay.status == "waiting" and not replay.cancel_requested


def test_a_replay_of_another_stream_is_not_found(client, alice, project, stream, replay):
    other = create_stream(project, "other")
    client.force_login(alice)
    assert client.get(url("replay", other, replay.pk)).status_code == 404


def test_another_projects_stream_is_not_found(client, alice, replay):
    elsewhere = create_stream(create_project("globex"), "books")
    client.force_login(alice)
    assert client.get(reverse("replays", args=["acme", elsewhere.pk])).status_code == 404


def test_an_editor_starts_a_replay_with_filters(client, alice, stream, versions):
    client.force_login(alice)
    response = client.post(
        url("replay-start", stream),
        {
            "start": str(versions[0].pk),
            "end": "main",
            "skip_types": "note.added, price.set",
            "unknown_types_ok": "on",  # types this stream has none of yet
            "skip_events": str(versions[1].event.id),
            "until": "2030-01-02T03:04",
            "reducer_version": "1",
        },
    )
    replay = Replay.objects.get()
    assert response.status_code == 302
    assert response.url == url("replay", stream, replay.pk)
    assert replay.start_id == versions[0].pk and replay.end_id == versions[2].pk
    assert replay.skip_types == ["note.added", "price.set"]
    assert replay.skip_events == [str(versions[1].event.id)]
    assert replay.until.isoformat() == "2030-01-02T03:04:00+00:00"
    assert (replay.reducer_version, replay.actor, replay.branch) == (1, "alice", "main")


def test_a_bad_request_shows_why_and_records_nothing(client, alice, stream, versions):
    client.force_login(alice)
    response = client.post(url("replay-start", stream), {"start": "root", "end": "nope"})
    assert response.status_code == 400
    assert "no version, branch, tag or key" in response.content.decode()
    assert not Replay.objects.exists()


def test_the_start_form_takes_its_range_from_the_link(client, alice, stream, versions):
    client.force_login(alice)
    page = client.get(url("replays", stream) + f"?start={versions[0].pk}&end=main")
    content = page.content.decode()
    assert f'value="{versions[0].pk}"' in content and 'value="main"' in content


def test_the_progress_fragment_polls_until_the_replay_is_done(client, bob, stream, replay):
    client.force_login(bob)
    running = client.get(url("replay", stream, replay.pk), headers={"HX-Request": "true"})
    assert running.status_code == 200
    assert 'hx-trigger="every 1s"' in running.content.decode()
    assert "waiting for a worker" in running.content.decode().lower()
    replays.run(replay.pk)
    done = client.get(url("replay", stream, replay.pk), headers={"HX-Request": "true"})
    assert done.status_code == 286
    content = done.content.decode()
    assert "hx-trigger" not in content
    assert "100%" in content and "3/3 events" in content
    assert "reproduced the original state exactly" in content
    assert "<html" not in content


def test_the_replay_page_shows_the_diff_against_the_original_head(client, alice, stream, versions):
    replay = replays.start_replay(
        stream, start=versions[0].pk, end="main", skip_events=[versions[2].event.id]
    )
    replays.run(replay.pk)
    client.force_login(alice)
    content = client.get(url("replay", stream, replay.pk)).content.decode()
    assert "1 change from v" in content
    assert "<code>/tier</code>" in content
    assert "Promote: move main onto the replay…" in content


def test_the_replay_page_shows_a_failure_with_its_event(client, alice, stream, replay):
    Replay.objects.filter(pk=replay.pk).update(
        status="failed", error="reducer merge@1 rejected it", error_event=replay.end.event.id
    )
    client.force_login(alice)
    content = client.get(url("replay", stream, replay.pk)).content.decode()
    assert "reducer merge@1 rejected it" in content
    assert str(replay.end.event.id) in content


def test_cancel_from_the_page(client, alice, stream, replay):
    client.force_login(alice)
    yes = {"confirm": "yes"}
    response = client.post(url("replay-cancel", stream, replay.pk), yes, follow=True)
    assert f"Cancel requested for replay {replay.pk}" in response.content.decode()
    replay.refresh_from_db()
    assert replay.status == "cancelled"
    again = client.post(url("replay-cancel", stream, replay.pk), yes, follow=True)
    assert "already cancelled" in again.content.decode()


def test_promote_from_the_page_asks_first_and_names_what_it_does(client, alice, stream, replay):
    replays.run(replay.pk)
    replay.refresh_from_db()
    client.force_login(alice)
    old_head = Branch.objects.get(stream=stream, name="main").head_id
    page = client.get(url("replay", stream, replay.pk)).content.decode()
    promote = url("replay-promote", stream, replay.pk)
    assert f'href="{promote}"' in page and f'hx-get="{promote}"' in page
    # Without JavaScript: GET says what will happen and changes nothing; so does a POST
    # without the confirm field.
    for response in (client.get(promote), client.post(promote)):
        text = response.content.decode()
        assert response.status_code == 200
        assert f"moves branch main from v{old_head} to a new promote version" in text
        assert f"shadow head v{replay.shadow_head_id}" in text
        assert 'name="confirm" value="yes"' in text
        assert Branch.objects.get(stream=stream, name="main").head_id == old_head
    fragment = client.get(promote, HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<section class="confirm"')
    response = client.post(promote, {"confirm": "yes"}, follow=True)
    replay.refresh_from_db()
    head = Branch.objects.get(stream=stream, name="main").head
    assert f"Promoted: main now points at version {head.pk}" in response.content.decode()
    assert parents_of(head.pk) == [
        replay.shadow_head_id,
        old_head,
    ]


def test_an_admin_discards_a_cancelled_replay_from_the_replays_page(
    client, alice, bob, project, stream, replay
):
    replays.cancel(replay)
    discard = url("replay-discard", stream, replay.pk)
    client.force_login(alice)
    listing = client.get(url("replays", stream)).content.decode()
    assert f'href="{discard}"' in listing
    assert "the original history is never touched" not in listing
    asked = client.get(discard).content.decode()
    assert f"gives up branch {replay.shadow_branch}" in asked
    assert 'name="confirm" value="yes"' in asked
    client.post(discard)
    replay.refresh_from_db()
    assert replay.discarded_at is None
    response = client.post(discard, {"confirm": "yes"}, follow=True)
    replay.refresh_from_db()
    assert replay.discarded_by == "alice"
    assert f"replay {replay.pk} discarded" in response.content.decode()
    assert f'href="{discard}"' not in client.get(url("replays", stream)).content.decode()


def test_cancel_asks_first(client, alice, stream, replay):
    client.force_login(alice)
    cancel = url("replay-cancel", stream, replay.pk)
    assert "a cancelled replay cannot be resumed" in client.get(cancel).content.decode()
    client.post(cancel)
    replay.refresh_from_db()
    assert replay.status == "waiting"


def test_posts_need_the_csrf_token(alice, stream, replay):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(url("replay-cancel", stream, replay.pk)).status_code == 403
    assert client.post(url("replay-start", stream), {"end": "main"}).status_code == 403


def test_the_list_shows_each_replay_with_its_progress(client, bob, stream, replay):
    replays.run(replay.pk)
    client.force_login(bob)
    content = client.get(url("replays", stream)).content.decode()
    assert f"#{replay.pk}" in content and f"replay/{replay.pk}" in content
    assert "3/3" in content and "done" in content


def test_the_form_starts_where_a_replay_can_and_offers_the_stream_types(client, alice, stream):
    from continust.log.policy import make_policy
    from continust.retention import compaction
    from continust.retention.policies import set_policy

    versions = put(stream, *({"n": n} for n in range(10)))
    set_policy(stream, make_policy("ephemeral", horizon_versions=4), actor="alice")
    compaction.run(compaction.request(stream, actor="alice").pk)
    client.force_login(alice)
    page = client.get(url("replays", stream)).content.decode()
    assert f'name="start" value="{versions[6].pk}"' in page
    assert '<datalist id="event-types"><option value="set"></datalist>' in page
    refused = client.post(url("replay-start", stream), {"start": "root", "end": "main"})
    assert f"can start from is version {versions[6].pk}" in refused.content.decode()
    typo = {"start": str(versions[6].pk), "end": "main", "skip_types": "set, sett"}
    warned = client.post(url("replay-start", stream), typo)
    assert warned.status_code == 400
    assert "no event of this stream has the type &#x27;sett&#x27;" in warned.content.decode()
    assert not Replay.objects.exists()
    started = client.post(url("replay-start", stream), {**typo, "unknown_types_ok": "on"})
    assert started.status_code == 302
    assert Replay.objects.get().skip_types == ["set", "sett"]
