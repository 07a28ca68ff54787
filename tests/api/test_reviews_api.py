"""Reviews over HTTP: open, comment, check, approve and report, with the explorer's roles
and the project's approval rule."""

from __future__ import annotations

import pytest
from django.test import Client

from continust.log.projects import add_member
from continust.log.store import fork
from continust.models import Review, Role
from tests.api.conftest import Api, issue
from tests.conftest import put

pytestmark = pytest.mark.django_db

REVIEWS = "/projects/acme/reviews"


@pytest.fixture
def history(stream):
    (v1,) = put(stream, {"pro": 29})
    fork(stream, "sale", v1)
    put(stream, {"pro": 25}, {"discount": 5}, branch="sale")
    return v1


@pytest.fixture
def carol_api(charlie, project) -> Api:
    """charlie, a reviewer of acme, with a write token."""
    add_member(project, charlie, Role.REVIEWER)
    return Api(Client(), issue(charlie, [project]))


def test_open_a_branch_review_and_read_it(alice_api: Api, bob_api: Api, history):
    answer = alice_api.post(REVIEWS, {"stream": "pricing", "branch": "sale"})
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["status"] == "open" and body["branch"] == "sale" and body["base"] == history.pk
    assert [c["path"] for c in body["checklist"]] == ["/pro", "/discount"]
    assert bob_api.get(f"{REVIEWS}/{body['id']}").json()["title"] == "sale against main"
    assert [r["id"] for r in bob_api.get(REVIEWS).json()["items"]] == [body["id"]]


def test_a_viewer_may_read_but_not_open(bob_api: Api, history):
    refused = bob_api.post(REVIEWS, {"stream": "pricing", "branch": "sale"})
    assert refused.status_code == 403 and "reviewer" in refused.json()["detail"]
    assert not Review.objects.exists()


def test_opening_refuses_an_empty_or_ambiguous_range(alice_api: Api, history):
    both = alice_api.post(REVIEWS, {"stream": "pricing", "branch": "sale", "head": "main"})
    assert both.status_code == 422
    neither = alice_api.post(REVIEWS, {"stream": "pricing"})
    assert neither.status_code == 422
    empty = alice_api.post(REVIEWS, {"stream": "pricing", "head": "main", "base": "main"})
    assert empty.status_code == 422
    assert alice_api.post(REVIEWS, {"stream": "nope", "branch": "sale"}).status_code == 404
    assert not Review.objects.exists()


def test_comment_check_approve_and_report(alice_api: Api, carol_api: Api, history):
    review = alice_api.post(REVIEWS, {"stream": "pricing", "branch": "sale"}).json()["id"]
    said = carol_api.post(
        f"{REVIEWS}/{review}/comments",
        {"body": "Why 25?", "target": {"kind": "path", "path": "/pro"}},
    )
    assert said.status_code == 201, said.json()
    reply = alice_api.post(
        f"{REVIEWS}/{review}/comments", {"body": "Summer.", "reply_to": said.json()["id"]}
    )
    assert reply.status_code == 201
    # The opener may not approve her own review; the reviewer needs every path ticked.
    own = alice_api.post(f"{REVIEWS}/{review}/decisions", {"decision": "approve"})
    assert own.status_code == 422 and "someone else" in own.json()["detail"]
    unticked = carol_api.post(f"{REVIEWS}/{review}/decisions", {"decision": "approve"})
    assert unticked.status_code == 422 and "not ticked" in unticked.json()["detail"]
    off_the_list = carol_api.post(f"{REVIEWS}/{review}/checks", {"path": "/nope"})
    assert off_the_list.status_code == 422, off_the_list.json()
    assert "not on review" in off_the_list.json()["detail"]
    for path in ("/pro", "/discount"):
        ticked = carol_api.post(f"{REVIEWS}/{review}/checks", {"path": path})
        assert ticked.status_code == 201
    approved = carol_api.post(f"{REVIEWS}/{review}/decisions", {"decision": "approve"})
    assert approved.status_code == 201, approved.json()
    detail = carol_api.get(f"{REVIEWS}/{review}").json()
    assert detail["status"] == "approved"
    assert all(c["checked"] and c["by"] == "charlie" for c in detail["checklist"])
    (thread,) = detail["comments"]
    assert thread["body"] == "Why 25?" and [r["body"] for r in thread["replies"]] == ["Summer."]
    assert set(detail["decisions"]) == {"charlie"}
    report = carol_api.get(f"{REVIEWS}/{review}/report")
    assert report.status_code == 200, report.json()
    data = report.json()
    assert data["report"]["scope"]["review"] == review
    assert [r["status"] for r in data["reviews"]] == ["approved"]
    assert data["integrity"]["verify"]["ok"] is True


def test_a_comment_on_a_version_of_another_stream_is_404(alice_api: Api, history, project):
    review = alice_api.post(REVIEWS, {"stream": "pricing", "branch": "sale"}).json()["id"]
    answer = alice_api.post(
        f"{REVIEWS}/{review}/comments",
        {"body": "x", "target": {"kind": "version", "version": 999999}},
    )
    assert answer.status_code == 404
    assert alice_api.get(f"{REVIEWS}/999999").status_code == 404
    viewer_write = Api(Client(), issue(project.memberships.get(role="viewer").user, [project]))
    refused = viewer_write.post(f"{REVIEWS}/{review}/checks", {"path": "/pro"})
    assert refused.status_code == 403
