"""The retention screens: set a policy, dry run, compact by hand, browse what was released.

alice is the project's admin, bob a viewer, charlie has no access. The stream
``pricing`` is one chain on main, 40 versions long; under "keep the newest 3"
compaction releases the older ones as one run:

    v1 ─ v2 ─ … ─ v37 ─ v38 ─ v39 ─ v40 (main)
    └──── released ────┘ └─── kept ───┘
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from continust.log.policy import make_policy, policy_of
from continust.log.store import fork
from continust.models import Compaction, CompactionStatus, ReleasedRun, Stream
from continust.retention import compaction
from continust.retention.policies import set_policy
from tests.conftest import put

pytestmark = pytest.mark.django_db

LENGTH = 40
KEEP = 3


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def chain(stream: Stream) -> list:
    return put(stream, *({"price": n} for n in range(LENGTH)))


@pytest.fixture
def compacted(stream: Stream, chain: list) -> Compaction:
    set_policy(stream, make_policy("ephemeral", horizon_versions=KEEP), actor="alice")
    return compaction.run(compaction.request(stream, actor="alice").pk)


def url(name: str, stream: Stream) -> str:
    return reverse(name, args=["acme", stream.pk])


def test_an_admin_sets_a_policy(alice, stream):
    response = client_of(alice).post(
        url("retention-policy", stream),
        {"kind": "ephemeral", "horizon_versions": "500", "horizon_age": "30d"},
    )
    assert response.status_code == 302
    stream.refresh_from_db()
    policy = policy_of(stream)
    assert (policy.kind, policy.horizon_versions) == ("ephemeral", 500)
    page = client_of(alice).get(response["Location"]).content.decode()
    assert "ephemeral: keeps the newest 500 versions and versions younger than 30d" in page


def test_a_viewer_sees_the_policy_but_may_not_change_it(bob, stream):
    page = client_of(bob).get(url("retention", stream))
    assert page.status_code == 200
    assert "eternal: every event and state is kept" in page.content.decode()
    assert 'id="retention-form"' not in page.content.decode()
    response = client_of(bob).post(
        url("retention-policy", stream), {"kind": "selective", "snapshot_every": "10"}
    )
    assert response.status_code == 403
    assert client_of(bob).post(url("compaction-start", stream)).status_code == 403
    stream.refresh_from_db()
    assert policy_of(stream).eternal
    assert not Compaction.objects.exists()


def test_it_requires_membership(charlie, stream):
    for name in ("retention", "compaction-plan"):
        assert client_of(charlie).get(url(name, stream)).status_code == 404
    for name in ("retention-policy", "compaction-start"):
        assert client_of(charlie).post(url(name, stream), {"kind": "eternal"}).status_code == 404


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "ephemeral"}, "needs a horizon"),
        ({"kind": "ephemeral", "horizon_age": "3 fortnights"}, "is not an age"),
        ({"kind": "selective", "snapshot_every": "1"}, "snapshot every must be between 2 and"),
        (
            {"kind": "selective", "snapshot_every": "99999999999999999999"},
            "snapshot every must be between 2 and",
        ),
        ({"kind": "ephemeral", "horizon_versions": "0"}, "keep the newest must be between 1"),
        ({"kind": "forever"}, "Select a valid choice"),
    ],
)
def test_bad_input_shows_the_error_and_changes_nothing(alice, stream, data, message):
    response = client_of(alice).post(url("retention-policy", stream), data)
    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'")
    stream.refresh_from_db()
    assert policy_of(stream).eternal


def test_the_dry_run_lists_runs_and_protected_versions(alice, bob, stream, chain):
    """A branch forked at v10 keeps its own newest versions and protects v10, the merge
    base: two runs, v1..v9 and v11..v37."""
    fork(stream, "side", chain[9])
    put(stream, *({"side": n} for n in range(KEEP)), branch="side")
    set_policy(stream, make_policy("ephemeral", horizon_versions=KEEP), actor="alice")
    page = client_of(bob).get(url("compaction-plan", stream)).content.decode()
    expected = compaction.plan(stream).as_dict()
    assert expected["runs"], "the fixture should release something"
    run = expected["runs"][0]
    assert f'id="plan-released">{expected["versions_released"]}<' in page
    assert f'?v={run["first"]}">v{run["first"]}</a>' in page
    assert f"<td>{run['versions']}</td>" in page
    assert expected["runs_total"] == 2
    kept = chain[9].pk
    assert re.search(rf">v{kept}</a></td><td>merge base of main and side", page), page
    assert not Compaction.objects.exists(), "a dry run writes nothing"
    fragment = client_of(bob).get(url("compaction-plan", stream), HTTP_HX_REQUEST="true")
    assert fragment.content.decode().lstrip().startswith('<div id="plan"')


def test_compacting_by_hand_shows_bytes_before_and_after(alice, stream, chain):
    set_policy(stream, make_policy("ephemeral", horizon_versions=KEEP), actor="alice")
    asked = client_of(alice).get(url("compaction-start", stream)).content.decode()
    planned = compaction.plan(stream)
    assert f"releases {planned.versions_released:,} version(s) in {len(planned.runs)} run(s)" in (
        asked
    )
    assert f"({planned.bytes_released:,} bytes)" in asked
    assert client_of(alice).post(url("compaction-start", stream)).status_code == 200
    assert not Compaction.objects.exists(), "a POST without the confirm field does nothing"
    response = client_of(alice).post(url("compaction-start", stream), {"confirm": "yes"})
    assert response.status_code == 302
    job = Compaction.objects.get()
    assert job.requested_by == "alice"
    polling = client_of(alice).get(
        url("retention", stream) + "?fragment=history", HTTP_HX_REQUEST="true"
    )
    assert polling.status_code == 200 and 'hx-trigger="every 2s"' in polling.content.decode()
    done = compaction.run(job.pk)
    assert done.status == CompactionStatus.DONE and done.bytes_after < done.bytes_before
    page = client_of(alice).get(url("stream", stream)).content.decode()
    before, after = (f"{n / 1024:.1f}\xa0KB" for n in (done.bytes_before, done.bytes_after))
    assert f"{before} → {after}" in page
    assert f"{done.versions_released} versions released" in page
    stopped = client_of(alice).get(
        url("retention", stream) + "?fragment=history", HTTP_HX_REQUEST="true"
    )
    assert stopped.status_code == 286


def test_a_released_run_is_one_collapsed_node(alice, stream, chain, compacted):
    run = ReleasedRun.objects.get()
    response = client_of(alice).get(
        url("stream", stream) + "?fragment=page", HTTP_HX_REQUEST="true"
    )
    page = response.content.decode()
    assert page.count('class="node released') == 1
    assert f'data-versions="{run.length}"' in page
    assert f"{run.length} versions released" in page
    assert page.count('<li class="tl-row') == LENGTH - run.length + 1
    assert page.count('data-version="') == 2 * (LENGTH - run.length + 1)  # row and node
    # The kept version after the run leads to the run's node, which leads to the root.
    assert page.count("<path ") == LENGTH - run.length
    for version in chain[1 : run.length]:
        assert f'data-version="{version.pk}"' not in page


def test_blame_through_a_released_run_is_a_410_inside_the_layout(alice, stream, chain, compacted):
    run = ReleasedRun.objects.get()
    client = client_of(alice)
    inner = chain[run.length // 2]
    released = client.get(reverse("blame", args=["acme", stream.pk, inner.pk]), {"path": "/price"})
    assert released.status_code == 410 and '<header class="top">' in released.content.decode()
    assert "released" in released.content.decode()
    head = client.get(reverse("blame", args=["acme", stream.pk, chain[-1].pk]), {"path": "/price"})
    # Every version changed the price: the walk back from the head reaches the released run.
    assert head.status_code == 410 and "was released" in head.content.decode()


def test_a_released_version_says_so_and_does_not_crash(alice, stream, chain, compacted):
    run = ReleasedRun.objects.get()
    inner = chain[run.length // 2]
    response = client_of(alice).get(reverse("version", args=["acme", stream.pk, inner.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Released" in page and f"compaction #{compacted.pk}" in page
    assert inner.digest in page and inner.state_id in page
    assert run.merkle_root in page
    on_stream = client_of(alice).get(url("stream", stream) + f"?v={inner.pk}")
    assert on_stream.status_code == 200


def test_comparing_with_a_released_version_explains_why_not(alice, stream, chain, compacted):
    first, last = chain[0], chain[-1]
    page = client_of(alice).get(url("stream", stream) + f"?a={first.pk}&b={last.pk}")
    text = page.content.decode()
    assert "Cannot compare" in text and f"v{first.pk}" in text
    assert "Compare A → B" not in text
    gone = client_of(alice).get(url("compare", stream) + f"?a={first.pk}&b={last.pk}")
    assert gone.status_code == 410
    text = gone.content.decode()  # inside the layout, with a way back
    assert "Released by the retention policy" in text and "Go back" in text
    assert "<nav" in text and gone["Content-Type"].startswith("text/html")


def test_the_first_kept_version_offers_no_diff_with_its_released_parent(
    alice, stream, chain, compacted
):
    run = ReleasedRun.objects.get()
    after_run = chain[run.length]
    page = client_of(alice).get(reverse("version", args=["acme", stream.pk, after_run.pk]))
    assert page.status_code == 200
    assert "diff with parent" not in page.content.decode()
    later = client_of(alice).get(reverse("version", args=["acme", stream.pk, chain[-1].pk]))
    assert "diff with parent" in later.content.decode()
    assert "pick as A" in later.content.decode()


def test_a_released_version_offers_no_picks_that_cannot_work(alice, stream, chain, compacted):
    page = client_of(alice).get(reverse("version", args=["acme", stream.pk, chain[0].pk]))
    text = page.content.decode()
    assert page.status_code == 200 and "Released: it cannot be compared." in text
    assert "pick as A" not in text and "pick as B" not in text


def test_a_released_run_s_row_offers_no_picks(alice, stream, chain, compacted):
    text = client_of(alice).get(url("stream", stream)).content.decode()
    released_rows = [row for row in text.split('<li class="tl-row')[1:] if "released-label" in row]
    assert released_rows and not any('class="pick-a"' in row for row in released_rows)
    assert 'class="pick-a"' in text  # kept versions still offer them
