"""Reviews over HTTP: open one, comment, tick changed paths, decide, and its audit report.

Everything a review says is an event of the project's audit stream
(``continust.audit.reviews``). Reading needs membership; opening, commenting,
ticking and deciding need a write-scoped token and the reviewer role, as on the
explorer's *Reviews* pages. An approval follows the project's rule (someone other
than the opener, unless the project allows self-approval; every changed path ticked
or waived by the note): otherwise 422 says why.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from django.http import HttpRequest
from ninja import Query, Router, Status
from ninja.params import functions as param
from pydantic import ConfigDict, Field

from api.access import project_for, token_of
from api.errors import READ_ERRORS, STATE_ERRORS, WRITE_ERRORS
from api.pagination import cursor_key
from api.schemas import (
    NON_BLANK,
    POINTER,
    STORABLE,
    Error,
    PageQuery,
    Ref,
    Schema,
    SlugPath,
    StrictSchema,
)
from continust.audit import reports, reviews
from continust.core.errors import InvalidEvent, NotFound
from continust.core.parsing import BIGINT_MAX, NAME_MAX, NAME_PATTERN
from continust.log.canonical import timestamp_text
from continust.log.lookup import get_stream, resolve_version
from continust.models import Event, Project, Review, Role
from continust.read.records import review_record

router = Router(tags=["reviews"])

PROJECT = "/projects/{slug:slug}"
ReviewIdPath = Annotated[int, param.Path(ge=0, le=BIGINT_MAX, description="A review's id.")]
REVIEW_ERRORS: dict[int, type] = {**WRITE_ERRORS, 410: Error}
Pointer = Annotated[str, Field(max_length=1000, pattern=POINTER)]


class OpenIn(StrictSchema):
    """A range of a stream: a branch against another (`branch`), or `head` and `base`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"stream": "pricing", "branch": "sale", "title": "Summer sale prices"},
                {"stream": "pricing", "head": "v14", "base": "v11"},
            ]
        },
    )

    stream: str = Field(min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN)
    branch: str | None = Field(
        None,
        min_length=1,
        max_length=NAME_MAX,
        pattern=NAME_PATTERN,
        description="Review this branch from its merge base with `against` to its head.",
    )
    against: str = Field("main", min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN)
    head: Ref | None = Field(None, description="Without `branch`: the range's last version.")
    base: Ref | None = Field(
        None, description="Without `branch`: the version the range starts after (none: all)."
    )
    title: str = Field("", max_length=200, pattern=STORABLE)


class TargetIn(StrictSchema):
    kind: Literal["review", "version", "event", "path"] = "review"
    version: int | None = Field(None, ge=0, le=BIGINT_MAX)
    event: UUID | None = None
    path: Pointer | None = None


class CommentIn(StrictSchema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"body": "Why 31 and not 30?", "target": {"kind": "path", "path": "/pro"}},
                {"body": "Agreed.", "reply_to": "0b9e3c1e-7d5a-4f61-9d7e-1f2a3b4c5d6e"},
            ]
        },
    )

    body: str = Field(min_length=1, max_length=reviews.MAX_BODY, pattern=NON_BLANK)
    target: TargetIn | None = Field(
        None,
        description="What the comment is about: the review when left out (ignored for a "
        "reply, which keeps its parent's).",
    )
    reply_to: UUID | None = Field(None, description="The comment this one answers.")


class CheckIn(StrictSchema):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"path": "/pro", "checked": True}]}
    )

    path: Pointer = Field(description="A changed path of the review's range.")
    checked: bool = True


class DecisionIn(StrictSchema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"decision": "approve", "note": "Checked with sales."}]},
    )

    decision: Literal["approve", "request_changes"]
    note: str = Field(
        "",
        max_length=reviews.MAX_BODY,
        pattern=STORABLE,
        description="Why; an approval's note waives the changed paths left unticked.",
    )


# A comment's audit event, as the comments route and a review's detail answer it.
AUDIT_EVENT_EXAMPLE: dict[str, Any] = {
    "id": "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    "seq": 41,
    "type": "review.commented",
    "time": "2026-12-06T05:00:00.000000+00:00",
    "actor": "bob",
    "causation": "6a1f4e2b-8c3d-4e5f-9a0b-1c2d3e4f5a6b",
    "payload": {
        "review": "6a1f4e2b-8c3d-4e5f-9a0b-1c2d3e4f5a6b",
        "body": "Is 31 the final price?",
        "target": {"kind": "path", "path": "/pro"},
    },
    "hash": "ab12cd34" * 8,
}


class AuditEventOut(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [AUDIT_EVENT_EXAMPLE]})

    id: UUID
    seq: int
    type: str
    time: str
    actor: str
    causation: UUID | None
    payload: dict[str, Any]
    hash: str


class ReviewOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 3,
                    "stream": "pricing",
                    "title": "sale against main",
                    "base": 11,
                    "head": 14,
                    "branch": "sale",
                    "opened_by": "alice",
                    "opened_at": "2026-12-06T04:00:00.000000Z",
                    "status": "open",
                }
            ]
        }
    )

    id: int
    stream: str
    title: str
    base: int | None
    head: int
    branch: str
    opened_by: str
    opened_at: str
    status: Literal["open", "approved", "changes_requested"]


class ReviewPage(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "id": 3,
                            "stream": "pricing",
                            "title": "sale against main",
                            "base": 11,
                            "head": 14,
                            "branch": "sale",
                            "opened_by": "alice",
                            "opened_at": "2026-12-06T04:00:00.000000Z",
                            "status": "open",
                        }
                    ],
                    "next": None,
                }
            ]
        }
    )

    items: list[ReviewOut]
    next: str | None


class CheckOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"path": "/pro", "checked": True, "by": "bob"}]}
    )

    path: str
    checked: bool
    by: str | None


# A comment on a path, as the comments route answers it and a review's detail lists it.
COMMENT_EXAMPLE: dict[str, Any] = {
    "event": AUDIT_EVENT_EXAMPLE,
    "target": {"kind": "path", "path": "/pro"},
    "body": "Is 31 the final price?",
    "corrected": False,
    "replies": [],
}


class CommentOut(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [COMMENT_EXAMPLE]})

    event: AuditEventOut
    target: dict[str, Any] = Field(description="`kind` and the version, event or path.")
    body: str = Field(description="The latest text, corrections applied.")
    corrected: bool
    replies: list[CommentOut]


class ReviewDetail(ReviewOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **{
                        "id": 3,
                        "stream": "pricing",
                        "title": "sale against main",
                        "base": 11,
                        "head": 14,
                        "branch": "sale",
                        "opened_by": "alice",
                        "opened_at": "2026-12-06T04:00:00.000000Z",
                        "status": "approved",
                    },
                    "approval_rule": "Approved by a reviewer other than whoever opened the "
                    "review. Every changed path is ticked, or the approval's note waives the "
                    "ones that are not.",
                    "checklist": [{"path": "/pro", "checked": True, "by": "bob"}],
                    "comments": [COMMENT_EXAMPLE],
                    "decisions": {
                        "bob": {
                            "id": "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                            "seq": 43,
                            "type": "review.decided",
                            "time": "2026-12-06T05:00:00.000000+00:00",
                            "actor": "bob",
                            "causation": "6a1f4e2b-8c3d-4e5f-9a0b-1c2d3e4f5a6b",
                            "payload": {
                                "review": "6a1f4e2b-8c3d-4e5f-9a0b-1c2d3e4f5a6b",
                                "decision": "approve",
                                "note": "Checked with sales.",
                            },
                            "hash": "ab12cd34" * 8,
                        }
                    },
                }
            ]
        }
    )

    approval_rule: str
    checklist: list[CheckOut] = Field(description="The range's changed paths, in diff order.")
    comments: list[CommentOut] = Field(description="Threads, oldest first.")
    decisions: dict[str, AuditEventOut] = Field(description="Each reviewer's latest decision.")


class ReportOut(Schema):
    """The review's audit report, as the explorer's JSON download has it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "report": {
                        "project": "acme",
                        "title": "Review 3: sale against main",
                        "scope": {
                            "kind": "review",
                            "review": 3,
                            "stream": "pricing",
                            "base": 11,
                            "head": 14,
                            "branch": "sale",
                            "versions": 1,
                        },
                        "generated_at": "2026-12-06T06:00:00.000000+00:00",
                        "generated_by": "alice",
                        "truncated": False,
                    },
                    "changes": [
                        {
                            "version": 14,
                            "digest": "7f83b165" * 8,
                            "stream": "pricing",
                            "branch": "sale",
                            "event": {
                                "id": "0b9e3c1e-7d5a-4f61-9d7e-1f2a3b4c5d6e",
                                "type": "tier.repriced",
                                "actor": "alice",
                                "time": "2026-12-06T04:00:00.000000+00:00",
                                "hash": "5d41402a" * 8,
                                "causation": None,
                            },
                            "changes": [{"op": "replace", "path": "/pro", "old": 29, "new": 31}],
                            "released": False,
                        }
                    ],
                    "reviews": [],
                    "records": [],
                    "integrity": {
                        "verify": {"ok": True, "streams": 1, "events": 14, "versions": 14},
                        "chains": [
                            {
                                "stream": "acme/pricing",
                                "events": 14,
                                "versions": 14,
                                "head": "5d41402a" * 8,
                            }
                        ],
                        "export": {
                            "file": "acme-audit-export.jsonl",
                            "sha256": "e3b0c442" * 8,
                            "bytes": 8192,
                            "lines": 29,
                            "pins": ["5.14.14"],
                        },
                        "how_to_verify": [
                            "python manage.py verify --project acme --json: ok must be true "
                            "and each stream's head must equal the chain head this report "
                            "states."
                        ],
                    },
                }
            ]
        }
    )

    report: dict[str, Any]
    changes: list[dict[str, Any]]
    reviews: list[dict[str, Any]]
    records: list[dict[str, Any]]
    integrity: dict[str, Any]


def _event(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "seq": event.seq,
        "type": event.type,
        "time": timestamp_text(event.timestamp),
        "actor": event.actor,
        "causation": event.causation_id,
        "payload": event.payload,
        "hash": event.hash,
    }


def _comment(node: reviews.Comment) -> dict[str, Any]:
    return {
        "event": _event(node.event),
        "target": node.target.as_payload(),
        "body": node.body,
        "corrected": node.corrected,
        "replies": [_comment(r) for r in node.replies],
    }


def _detail(review: Review) -> dict[str, Any]:
    log = reviews.review_log(review)
    return {
        **review_record(review, log.status),
        "approval_rule": reviews.approval_rule(review.project),
        "checklist": [
            {
                "path": path,
                "checked": path in log.checked,
                "by": log.checked[path].actor if path in log.checked else None,
            }
            for path in reviews.changed_paths(review)
        ],
        "comments": [_comment(c) for c in log.threads],
        "decisions": {actor: _event(e) for actor, e in log.latest_decisions.items()},
    }


def _review(project: Project, review_id: int) -> Review:
    review = (
        Review.objects.select_related("stream", "project", "base", "head")
        .filter(pk=review_id, project=project)
        .first()
    )
    if review is None:
        raise NotFound(f"project {project.slug} has no review {review_id}")
    return review


def _reviewing(request: HttpRequest, slug: str) -> Project:
    return project_for(request, slug, write=True, role=Role.REVIEWER, doing="reviewing in")


def _actor(request: HttpRequest) -> str:
    return token_of(request).user.get_username()


@router.get(PROJECT + "/reviews", response={200: ReviewPage, **READ_ERRORS})
def list_reviews(request: HttpRequest, slug: SlugPath, page: Query[PageQuery]) -> dict[str, Any]:
    """List the project's reviews, newest first, with their status."""
    project = project_for(request, slug)
    rows = Review.objects.filter(project=project).select_related("stream").order_by("-id")
    if page.after is not None:
        rows = rows.filter(pk__lt=cursor_key(page.after, int))
    found = list(rows[: page.limit + 1])
    more = len(found) > page.limit
    found = found[: page.limit]
    status = reviews.statuses(found)
    return {
        "items": [review_record(r, status[r.pk]) for r in found],
        "next": str(found[-1].pk) if more else None,
    }


@router.post(PROJECT + "/reviews", response={201: ReviewDetail, **REVIEW_ERRORS})
def open_review(request: HttpRequest, slug: SlugPath, body: OpenIn) -> Status[dict[str, Any]]:
    """Open a review (write scope, reviewer role) of a branch against another (`branch`,
    `against`), or of what `head` reaches and `base` does not. 422 for an empty range or
    a branch already merged, 410 when an end's state was released."""
    project = _reviewing(request, slug)
    stream = get_stream(project, body.stream)
    if body.branch is not None:
        if body.head is not None or body.base is not None:
            raise InvalidEvent("review a branch, or a head and base, not both")
        review = reviews.open_branch_review(
            stream, body.branch, actor=_actor(request), title=body.title, against=body.against
        )
    else:
        if body.head is None:
            raise InvalidEvent("a review needs a branch, or a head")
        head = resolve_version(stream, body.head)
        base = resolve_version(stream, body.base) if body.base is not None else None
        review = reviews.open_review(
            stream, head=head, base=base, actor=_actor(request), title=body.title
        )
    return Status(201, _detail(_review(project, review.pk)))


@router.get(PROJECT + "/reviews/{review_id}", response={200: ReviewDetail, **STATE_ERRORS})
def get_review(request: HttpRequest, slug: SlugPath, review_id: ReviewIdPath) -> dict[str, Any]:
    """One review as its events make it: status, checklist, comment threads, decisions."""
    return _detail(_review(project_for(request, slug), review_id))


@router.post(
    PROJECT + "/reviews/{review_id}/comments", response={201: AuditEventOut, **REVIEW_ERRORS}
)
def comment_on_review(
    request: HttpRequest, slug: SlugPath, review_id: ReviewIdPath, body: CommentIn
) -> Status[dict[str, Any]]:
    """Comment on the review, a version, an event or a path of it, or reply to a comment
    (write scope, reviewer role). 404 for a target the review's stream does not have."""
    review = _review(_reviewing(request, slug), review_id)
    about = body.target
    target = (
        reviews.Target()
        if about is None
        else reviews.Target(
            kind=about.kind,
            version=about.version,
            event=str(about.event) if about.event else None,
            path=about.path,
        )
    )
    event = reviews.comment(
        review, actor=_actor(request), body=body.body, target=target, reply_to=body.reply_to
    )
    return Status(201, _event(event))


@router.post(
    PROJECT + "/reviews/{review_id}/checks", response={201: AuditEventOut, **REVIEW_ERRORS}
)
def check_path(
    request: HttpRequest, slug: SlugPath, review_id: ReviewIdPath, body: CheckIn
) -> Status[dict[str, Any]]:
    """Tick (or, with `checked: false`, untick) a path on the review's checklist (write
    scope, reviewer role)."""
    review = _review(_reviewing(request, slug), review_id)
    event = reviews.check_path(review, actor=_actor(request), path=body.path, checked=body.checked)
    return Status(201, _event(event))


@router.post(
    PROJECT + "/reviews/{review_id}/decisions", response={201: AuditEventOut, **REVIEW_ERRORS}
)
def decide(
    request: HttpRequest, slug: SlugPath, review_id: ReviewIdPath, body: DecisionIn
) -> Status[dict[str, Any]]:
    """Approve or request changes (write scope, reviewer role); a reviewer's latest
    decision supersedes their earlier ones. 422 when an approval breaks the project's
    rule: the opener approving, or changed paths unticked without a note."""
    review = _review(_reviewing(request, slug), review_id)
    event = reviews.decide(review, actor=_actor(request), decision=body.decision, note=body.note)
    return Status(201, _event(event))


@router.get(PROJECT + "/reviews/{review_id}/report", response={200: ReportOut, **STATE_ERRORS})
def review_report(request: HttpRequest, slug: SlugPath, review_id: ReviewIdPath) -> dict[str, Any]:
    """The review's audit report: every change of its range, its record, and the proof
    (the hash chains it pins and the export that checks them), as the explorer's JSON."""
    review = _review(project_for(request, slug), review_id)
    return reports.review_report(review, generated_by=_actor(request)).as_dict()
