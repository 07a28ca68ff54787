"""Review pages: the review, comments and decisions, reports in every format, blame, members."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.test import Client
from django.urls import reverse

from continust.audit import reviews, trail
from continust.log.projects import add_member
from continust.log.store import fork, merge
from continust.models import AuditRecord, Event, Membership, Role
from tests.conftest import put

pytestmark = pytest.mark.django_db

XSS = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def rita(django_user_model, project):
    user = django_user_model.objects.create_user("rita", password="rita-password-1")
    add_member(project, user, Role.REVIEWER)
    return user


@pytest.fixture
def review(stream):
    v1, v2, v3 = put(
        stream,
        {"pricing": {"tiers": [{"price": 10}]}},
        {"pricing": {"tiers": [{"price": 12}], "currency": "EUR"}},
        {"owner": "x"},
    )
    return reviews.open_review(stream, base=v1, head=v3, actor="alice", title="Q3")


def url(name, review, *args):
    return reverse(name, args=[review.project.slug, review.pk, *args])


def test_the_review_page_shows_the_range_the_diff_and_the_checklist(review, bob):
    page = as_user(bob).get(url("review", review)).content.decode()
    assert "/pricing/tiers/0/price" in page and "/pricing/currency" in page
    assert "0 of 3 paths checked" in page
    assert page.count('<li id="v-') == 2
    assert 'value="approve"' not in page  # bob is a viewer: he reads, he does not decide


def test_a_reviewer_comments_on_a_path_replies_and_decides(review, rita):
    client = as_user(rita)
    response = client.post(
        url("review-comment", review),
        {"body": "Why 12?", "kind": "path", "path": "/pricing/tiers/0/price"},
    )
    assert response.status_code == 302 and "#c-" in response["Location"]
    said = Event.objects.get(type=reviews.COMMENTED)
    client.post(url("review-comment", review), {"body": "ok", "reply_to": str(said.id)})
    client.post(url("review-check", review), {"path": "/pricing/currency", "checked": "yes"})
    client.post(url("review-decide", review), {"decision": "request_changes", "note": "n"})
    log = reviews.review_log(review)
    assert log.status == reviews.CHANGES_REQUESTED and list(log.checked) == ["/pricing/currency"]
    (thread,) = log.threads_about("path:/pricing/tiers/0/price")
    assert thread.event.actor == "rita" and thread.replies[0].body == "ok"
    page = client.get(url("review", review)).content.decode()
    assert "Why 12?" in page and "1 of 3 paths checked" in page and "requested changes" in page


def test_bad_input_changes_nothing(review, rita):
    client = as_user(rita)
    before = Event.objects.count()
    for data in (
        {"body": ""},
        {"body": "x", "kind": "path", "path": "nope"},
        {"body": "x", "kind": "version", "version": 99999},
        {"body": "x", "reply_to": "not-a-uuid"},
    ):
        assert client.post(url("review-comment", review), data).status_code == 302
    assert client.post(url("review-decide", review), {"decision": "maybe"}).status_code == 302
    assert (
        client.post(url("review-correct", review), {"corrects": "x", "body": "y"}).status_code
        == 302
    )
    assert Event.objects.count() == before


def test_a_comment_is_shown_escaped(review, rita):
    client = as_user(rita)
    client.post(url("review-comment", review), {"body": XSS, "kind": "path", "path": f"/{XSS}"})
    page = client.get(url("review", review)).content.decode()
    assert XSS not in page and "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    report = client.get(url("review-report", review, "html")).content.decode()
    assert "<script>alert" not in report and "&lt;script&gt;" in report


def test_posts_need_the_csrf_token(review, rita):
    client = Client(enforce_csrf_checks=True)
    client.force_login(rita)
    for name, data in (
        ("review-comment", {"body": "x"}),
        ("review-decide", {"decision": "approve"}),
    ):
        assert client.post(url(name, review), data).status_code == 403
    assert not AuditRecord.objects.exclude(event__type=reviews.OPENED).exists()


def test_opening_a_review_from_the_form(stream, rita):
    put(stream, {"a": 1}, {"a": 2})
    client = as_user(rita)
    response = client.post(
        reverse("review-open", args=["acme"]),
        {"stream": stream.pk, "head": "main", "base": "", "title": "All"},
    )
    assert response.status_code == 302
    opened = reviews.Review.objects.get()
    assert (opened.base_id, opened.title, opened.opened_by) == (None, "All", "rita")
    refused = client.post(
        reverse("review-open", args=["acme"]), {"stream": stream.pk, "head": "nowhere"}
    )
    assert refused.status_code == 400 and b"nowhere" in refused.content


def test_reports_in_every_format_agree_with_the_pinned_export(review, bob):
    client = as_user(bob)
    data = json.loads(client.get(url("review-report", review, "json")).content)
    export = data["integrity"]["export"]
    pins = "&".join(f"pin={p}" for p in export["pins"])
    body = client.get(reverse("audit-export", args=["acme"]) + "?" + pins).content
    assert hashlib.sha256(body).hexdigest() == export["sha256"]
    assert data["integrity"]["verify"]["ok"] is True
    html = client.get(url("review-report", review, "html")).content.decode()
    assert export["sha256"] in html and data["integrity"]["chains"][0]["head"] in html
    pdf = client.get(url("review-report", review, "pdf"))
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    csv_text = client.get(url("review-report", review, "csv")).content.decode()
    assert csv_text.startswith("kind,time,actor") and export["sha256"] in csv_text
    assert client.get(url("review-report", review, "docx")).status_code == 404


def test_a_time_range_report(stream, bob):
    put(stream, {"a": 1})
    client = as_user(bob)
    assert client.get(reverse("audit", args=["acme"])).status_code == 200
    page = client.get(
        reverse("audit-report", args=["acme", "html"]),
        {"since": "2000-01-01T00:00", "stream": stream.pk},
    )
    assert page.status_code == 200 and b"verify: ok" in page.content
    bad = client.get(
        reverse("audit-report", args=["acme", "json"]),
        {"since": "2030-01-01T00:00", "until": "2020-01-01T00:00"},
    )
    assert bad.status_code == 400


def test_blame_names_the_event_and_its_actor(stream, bob):
    from continust.log.store import NewEvent, append

    put(stream, {"price": 10})
    (v2,) = append(
        stream, [NewEvent(type="price.set", payload={"price": 11}, actor="carol")]
    ).versions
    (v3,) = put(stream, {"other": 1})
    client = as_user(bob)
    page = client.get(reverse("blame", args=["acme", stream.pk, v3.pk]), {"path": "/price"})
    text = page.content.decode()
    assert page.status_code == 200 and "price.set" in text and "carol" in text
    assert f"v{v2.pk}" in text
    missing = client.get(reverse("blame", args=["acme", stream.pk, v3.pk]), {"path": "/nope"})
    assert missing.status_code == 404
    listing = client.get(reverse("blame", args=["acme", stream.pk, v3.pk])).content.decode()
    assert "?path=/price" in listing and "?path=/other" in listing


def test_an_admin_invites_sets_roles_and_keeps_an_admin(project, alice, charlie):
    client = as_user(alice)
    members_url = reverse("members", args=["acme"])
    client.post(
        reverse("member-invite", args=["acme"]), {"username": "charlie", "role": "reviewer"}
    )
    charlie_in = Membership.objects.get(project=project, user=charlie)
    assert charlie_in.role == Role.REVIEWER
    nobody = client.post(
        reverse("member-invite", args=["acme"]), {"username": "zed", "role": "viewer"}
    )
    assert nobody.status_code == 302
    client.post(reverse("member-role", args=["acme", charlie_in.pk]), {"role": "admin"})
    mine = Membership.objects.get(project=project, user=alice)
    client.post(reverse("member-role", args=["acme", mine.pk]), {"role": "viewer"})
    assert Membership.objects.get(pk=mine.pk).role == Role.VIEWER  # charlie is admin now
    as_charlie = as_user(charlie)
    remove_url = reverse("member-remove", args=["acme", mine.pk])
    asked = as_charlie.get(remove_url).content.decode()
    assert "alice, a viewer, loses access" in asked and 'name="confirm" value="yes"' in asked
    as_charlie.post(remove_url)
    assert Membership.objects.filter(pk=mine.pk).exists(), "not without the confirm field"
    as_charlie.post(remove_url, {"confirm": "yes"})
    last = as_charlie.post(reverse("member-role", args=["acme", charlie_in.pk]), {"role": "viewer"})
    assert last.status_code == 302
    assert Membership.objects.get(pk=charlie_in.pk).role == Role.ADMIN  # the last admin
    leaving = as_charlie.get(reverse("member-remove", args=["acme", charlie_in.pk]))
    asked = leaving.content.decode()  # the confirmation says at once that it would be refused
    assert "charlie is the last admin of acme" in asked and 'value="yes"' not in asked
    assert not Membership.objects.filter(pk=mine.pk).exists()
    types = list(Event.objects.filter(stream__name=trail.AUDIT_STREAM).values_list("type", "actor"))
    assert types == [
        ("member.invited", "alice"),
        ("member.role_changed", "alice"),
        ("member.role_changed", "alice"),
        ("member.removed", "charlie"),
    ]
    assert as_charlie.get(members_url).status_code == 200


def test_the_project_page_loads_the_review_coverage(review, bob):
    client = as_user(bob)
    page = client.get(reverse("project", args=["acme"])).content.decode()
    assert reverse("review-coverage", args=["acme"]) in page
    panel = client.get(
        reverse("review-coverage", args=["acme"]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "<html" not in panel and "pending" in panel and "never reviewed" in panel
    opened = client.get(reverse("review-coverage", args=["acme"]))  # by hand: the whole page
    assert opened.status_code == 302
    assert opened["Location"] == reverse("reviews", args=["acme"]) + "#coverage"


def test_the_approval_rule_is_shown_and_holds_on_the_review_page(project, review, rita):
    opener = as_user(project.memberships.get(role=Role.ADMIN).user)
    page = opener.get(url("review", review)).content.decode()
    assert "a reviewer other than whoever opened the review" in page
    assert "Not ticked yet (3)" in page and "/pricing/currency" in page
    refused = opener.post(url("review-decide", review), {"decision": "approve", "note": "mine"})
    assert refused.status_code == 302
    assert "someone else approves it" in opener.get(refused["Location"]).content.decode()
    client = as_user(rita)
    client.post(url("review-decide", review), {"decision": "approve"})
    assert reviews.review_log(review).decisions == []
    client.post(url("review-decide", review), {"decision": "approve", "note": "waived: ok"})
    (approved,) = reviews.review_log(review).decisions
    assert len(approved.payload["waived"]) == 3
    assert "waived:" in client.get(url("review", review)).content.decode()


def test_an_admin_changes_the_review_rule_on_the_members_page(project, rita):
    admin = as_user(project.memberships.get(role=Role.ADMIN).user)
    members = reverse("members", args=[project.slug])
    assert "other than whoever opened" in admin.get(members).content.decode()
    rule = reverse("review-rule", args=[project.slug])
    assert as_user(rita).post(rule, {"self_approval": "yes"}).status_code == 403
    assert admin.post(rule, {"self_approval": "maybe"}).status_code == 302
    project.refresh_from_db()
    assert project.self_approval is False
    admin.post(rule, {"self_approval": "yes"})
    project.refresh_from_db()
    assert project.self_approval is True
    assert "including whoever opened" in admin.get(members).content.decode()
    assert Event.objects.filter(type=reviews.RULE_CHANGED).count() == 1


def test_opening_a_review_of_a_merged_branch_offers_the_range_it_merged(stream, rita):
    v1, v2 = put(stream, {"a": 1}, {"b": 2})
    fork(stream, "side", v1)
    (v3,) = put(stream, {"c": 3}, branch="side")
    merge(stream, "side", "main")
    client = as_user(rita)
    response = client.post(
        reverse("review-open", args=["acme"]), {"stream": stream.pk, "branch": "side"}
    )
    page = response.content.decode()
    assert response.status_code == 400 and "already merged into main" in page
    assert f"Review v{v2.pk}..v{v3.pk} instead" in page
    offered = client.post(
        reverse("review-open", args=["acme"]),
        {"stream": stream.pk, "base": str(v2.pk), "head": str(v3.pk)},
    )
    assert offered.status_code == 302
    opened = reviews.Review.objects.get()
    assert reviews.range_ids(stream, opened.base_id, opened.head_id) == [v3.pk]
