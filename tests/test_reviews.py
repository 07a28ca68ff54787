"""Reviews: a range of a stream, and comments, check marks and decisions kept as audit events."""

from __future__ import annotations

import uuid

import pytest
from django.db import DatabaseError, connection, transaction

from continust.audit import reviews, trail
from continust.audit.integrity import verify
from continust.core.errors import InvalidEvent, NotFound
from continust.log.store import NewEvent, append, fork, merge
from continust.models import AuditRecord, Event, Review, Stream, Version
from tests.conftest import put

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(stream):
    """
    main:  v1 ─ v2 ─ v3
                 └─ v4 ─ v5   (branch "discount", forked at v2)
    """
    v1, v2, v3 = put(
        stream,
        {"pricing": {"tiers": [{"price": 10}, {"price": 20}]}},
        {"pricing": {"currency": "EUR"}},
        {"owner": "alice"},
    )
    fork(stream, "discount", v2, actor="alice")
    v4, v5 = put(
        stream, {"pricing": {"discount": 5}}, {"pricing": {"currency": "USD"}}, branch="discount"
    )
    return v1, v2, v3, v4, v5


def test_a_review_covers_what_head_reaches_and_base_does_not(stream, history):
    v1, v2, v3, v4, v5 = history
    review = reviews.open_review(stream, base=v1, head=v5, actor="alice")
    assert reviews.range_ids(stream, review.base_id, review.head_id) == [v5.pk, v4.pk, v2.pk]
    assert review.title == f"v{v1.pk}..v{v5.pk}"


def test_a_branch_review_starts_at_the_merge_base_with_main(stream, history):
    v1, v2, v3, v4, v5 = history
    review = reviews.open_branch_review(stream, "discount", actor="alice", title="Discounts")
    assert (review.base_id, review.head_id, review.branch) == (v2.pk, v5.pk, "discount")
    assert reviews.range_ids(stream, review.base_id, review.head_id) == [v5.pk, v4.pk]


def test_opening_a_review_is_an_audit_event(project, stream, history):
    v1, *_, v5 = history
    review = reviews.open_review(stream, base=v1, head=v5, actor="alice", title="  Q3   prices ")
    audit = Stream.objects.get(project=project, name=trail.AUDIT_STREAM)
    event = Event.objects.get(stream=audit)
    assert event.type == reviews.OPENED and event.actor == "alice"
    assert event.payload["head"] == {"version": v5.pk, "digest": v5.digest}
    assert review.title == "Q3 prices" and review.key == event.id
    assert audit.reducer == trail.AUDIT_REDUCER


def test_it_refuses_an_empty_range_and_the_audit_stream(project, stream, history):
    v1, *_ = history
    with pytest.raises(InvalidEvent):
        reviews.open_review(stream, base=v1, head=v1, actor="alice")
    audit = trail.audit_stream(project)
    reviews.decide(
        reviews.open_review(stream, base=None, head=v1, actor="alice"),
        actor="bob",
        decision=reviews.APPROVE,
        note="one version, read whole",
    )
    audit_version = audit.versions.first()
    with pytest.raises(InvalidEvent):
        reviews.open_review(audit, base=None, head=audit_version, actor="alice")
    assert not Review.objects.filter(stream=audit).exists()


def test_comments_replies_corrections_and_decisions_fold_into_the_review(stream, history):
    v1, *_, v5 = history
    review = reviews.open_review(stream, base=v1, head=v5, actor="alice")
    on_path = reviews.comment(
        review,
        actor="bob",
        body="Why 20?",
        target=reviews.Target("path", path="/pricing/tiers/1/price"),
    )
    reply = reviews.comment(review, actor="alice", body="Market rate.", reply_to=on_path.id)
    reviews.correct(review, actor="bob", corrects=on_path.id, body="Why USD?")
    reviews.check_path(review, actor="bob", path="/pricing/currency")
    with pytest.raises(InvalidEvent, match="/nope is not on review .*'s checklist: the changed"):
        reviews.check_path(review, actor="bob", path="/nope")
    with pytest.raises(InvalidEvent, match="is not on review"):
        reviews.check_path(review, actor="bob", path="/nope", checked=False)
    reviews.decide(review, actor="bob", decision=reviews.REQUEST_CHANGES, note="currency")
    log = reviews.review_log(review)
    (thread,) = log.threads_about("path:/pricing/tiers/1/price")
    assert (thread.body, thread.original, thread.corrected) == ("Why USD?", "Why 20?", True)
    assert [r.event.id for r in thread.replies] == [reply.id]
    assert list(log.checked) == ["/pricing/currency"]
    assert log.status == reviews.CHANGES_REQUESTED
    reviews.decide(review, actor="bob", decision=reviews.APPROVE, note="the rest is fine")
    assert reviews.review_log(review).status == reviews.APPROVED
    assert reviews.statuses([review]) == {review.pk: reviews.APPROVED}


def test_review_events_chain_causation_and_correlation(project, stream, history):
    v1, *_, v5 = history
    review = reviews.open_review(stream, base=v1, head=v5, actor="alice")
    first = reviews.comment(review, actor="bob", body="one")
    reply = reviews.comment(review, actor="alice", body="two", reply_to=first.id)
    fix = reviews.correct(review, actor="alice", corrects=reply.id, body="2")
    assert first.causation_id == review.key and reply.causation_id == first.id
    assert fix.causation_id == reply.id  # a correction points to what it corrects
    assert {e.correlation_id for e in (first, reply, fix)} == {review.key}
    assert verify(project).ok


def test_only_the_author_corrects_a_comment(stream, history):
    v1, *_, v5 = history
    review = reviews.open_review(stream, base=v1, head=v5, actor="alice")
    said = reviews.comment(review, actor="bob", body="mine")
    with pytest.raises(InvalidEvent):
        reviews.correct(review, actor="alice", corrects=said.id, body="hers")


def test_a_target_must_belong_to_the_reviewed_stream(project, stream, history):
    from continust.log.projects import create_stream

    v1, *_, v5 = history
    (elsewhere,) = put(create_stream(project, "other"), {"x": 1})
    review = reviews.open_review(stream, base=v1, head=v5, actor="alice")
    for target in (
        reviews.Target("version", version=elsewhere.pk),
        reviews.Target("event", event=str(elsewhere.event.id)),
        reviews.Target("event", event=str(uuid.uuid4())),
    ):
        with pytest.raises(NotFound):
            reviews.comment(review, actor="bob", body="x", target=target)
    with pytest.raises(InvalidEvent):
        reviews.comment(
            review, actor="bob", body="x", target=reviews.Target("path", path="no-slash")
        )
    with pytest.raises(InvalidEvent):
        reviews.comment(review, actor="bob", body="   ")


def test_events_appended_to_the_audit_stream_by_other_paths_count_for_nothing(
    project, stream, history
):
    v1, *_, v5 = history
    review = reviews.open_review(stream, base=v1, head=v5, actor="alice")
    forged = {"review": str(review.key), "decision": reviews.APPROVE, "note": ""}
    append(
        trail.audit_stream(project),
        [NewEvent(type=reviews.DECIDED, payload=forged, actor="alice")],
    )
    assert reviews.review_log(review).status == reviews.OPEN
    assert AuditRecord.objects.filter(review=review).count() == 1


def test_review_events_cannot_be_edited_or_deleted(project, stream, history):
    v1, *_, v5 = history
    review = reviews.open_review(stream, base=v1, head=v5, actor="alice")
    said = reviews.comment(review, actor="bob", body="keep me")
    for sql in (
        f"UPDATE continust_event SET payload = '{{}}' WHERE position = {said.pk}",
        f"DELETE FROM continust_event WHERE position = {said.pk}",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
    said.payload = {"body": "edited"}
    with pytest.raises(TypeError):
        said.save()
    with pytest.raises(TypeError):
        said.delete()
    with pytest.raises(TypeError):
        review.delete()
    assert Event.objects.get(pk=said.pk).payload["body"] == "keep me"


def test_coverage_groups_main_history_into_reviewed_pending_and_unreviewed(stream):
    """
    main: v1 ─ v2 ─ v3 ─ v4 ─ v5
          approved: v1..v3 (v2, v3) · pending: v3..v4 (v4) · never: v1, v5
    """
    v1, v2, v3, v4, v5 = put(stream, *({"n": n} for n in range(5)))
    done = reviews.open_review(stream, base=v1, head=v3, actor="alice")
    reviews.decide(done, actor="bob", decision=reviews.APPROVE, note="read")
    reviews.open_review(stream, base=v3, head=v4, actor="alice")
    runs = reviews.coverage(stream).runs
    assert [(r.status, r.newest, r.oldest, r.count) for r in runs] == [
        (reviews.UNREVIEWED, v5.pk, v5.pk, 1),
        (reviews.PENDING, v4.pk, v4.pk, 1),
        (reviews.REVIEWED, v3.pk, v2.pk, 2),
        (reviews.UNREVIEWED, v1.pk, v1.pk, 1),
    ]
    assert runs[2].reviews == (done.pk,)


# -- the approval rule ---------------------------------------------------------------------


def test_the_opener_cannot_approve_their_own_review_unless_the_project_allows_it(
    project, stream, history
):
    v1, *_, v5 = history
    review = reviews.open_review(stream, base=v1, head=v5, actor="alice")
    with pytest.raises(InvalidEvent, match="someone else approves it"):
        reviews.decide(review, actor="alice", decision=reviews.APPROVE, note="mine, fine")
    assert reviews.review_log(review).decisions == []
    reviews.decide(review, actor="alice", decision=reviews.REQUEST_CHANGES)  # only approval
    reviews.set_self_approval(project, True, actor="root")
    reviews.decide(review, actor="alice", decision=reviews.APPROVE, note="mine, fine")
    assert reviews.review_log(review).status == reviews.APPROVED
    changed = Event.objects.get(type=reviews.RULE_CHANGED)
    assert (changed.actor, changed.payload) == ("root", {"self_approval": True})
    assert "including whoever opened" in reviews.approval_rule(project)


def test_an_approval_with_unticked_paths_needs_a_note_that_waives_them(stream, history):
    v1, *_, v5 = history
    review = reviews.open_review(stream, base=v1, head=v5, actor="alice")
    paths = reviews.changed_paths(review)
    assert paths == ["/pricing/currency", "/pricing/discount"]
    reviews.check_path(review, actor="bob", path="/pricing/currency")
    with pytest.raises(InvalidEvent, match="1 changed path.* /pricing/discount"):
        reviews.decide(review, actor="bob", decision=reviews.APPROVE)
    assert reviews.review_log(review).decisions == []
    reviews.decide(review, actor="bob", decision=reviews.APPROVE, note="discount is policy")
    (decided,) = reviews.review_log(review).decisions
    assert decided.payload["waived"] == ["/pricing/discount"]
    reviews.check_path(review, actor="bob", path="/pricing/discount")
    reviews.decide(review, actor="carol", decision=reviews.APPROVE)
    assert "waived" not in reviews.review_log(review).decisions[-1].payload


def test_a_merged_branch_review_names_the_range_its_merge_brought_in(stream, history):
    v1, v2, v3, v4, v5 = history
    merged = merge(stream, "discount", "main")
    with pytest.raises(reviews.BranchMerged) as refused:
        reviews.open_branch_review(stream, "discount", actor="alice")
    assert (refused.value.base, refused.value.head) == (v3.pk, v5.pk)
    assert f"merged into main by version {merged.pk}" in str(refused.value)
    offered = reviews.open_review(
        stream, base=Version.objects.get(pk=v3.pk), head=v5, actor="alice"
    )
    assert reviews.range_ids(stream, offered.base_id, offered.head_id) == [v5.pk, v4.pk]
