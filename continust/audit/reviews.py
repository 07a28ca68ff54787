"""Audit reviews: a range of a stream, and what reviewers said about it, kept as events.

Everything a review says (its opening, comments and replies, corrections, check marks,
decisions) is an event appended to the project's audit stream, hash-chained like every
other stream, so the review's own history can be verified. Nothing is edited: a
correction is a new event whose causation is the comment it corrects; a new decision
supersedes the same reviewer's earlier one. ``Review`` and ``AuditRecord`` rows only
index those events; what a review looks like now is folded from them here.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import jsonpointer
from django.db import transaction

from continust.audit.trail import _append_record, is_audit_stream, record
from continust.core.errors import InvalidEvent, NotFound, StateReleased
from continust.documents.diff import diff
from continust.graph.cache import graph_for
from continust.graph.lineage import VersionGraph
from continust.graph.parents import merges_onto
from continust.log.states import is_released, state_of, store_snapshots
from continust.log.store import MAIN, NewEvent, lock_stream
from continust.models import (
    AuditRecord,
    Branch,
    Event,
    Project,
    Review,
    Stream,
    Version,
)

MAX_BODY: Final = 10_000
MAX_TITLE: Final = 200

OPENED: Final = "review.opened"
COMMENTED: Final = "review.commented"
CORRECTED: Final = "review.corrected"
CHECKED: Final = "review.checked"
DECIDED: Final = "review.decided"
RULE_CHANGED: Final = "review.rule_changed"

APPROVE: Final = "approve"
REQUEST_CHANGES: Final = "request_changes"
DECISIONS: Final = (APPROVE, REQUEST_CHANGES)

# What a review is, folded from its decisions.
OPEN: Final = "open"
APPROVED: Final = "approved"
CHANGES_REQUESTED: Final = "changes_requested"
STATUS_LABELS: Final = {OPEN: "open", APPROVED: "approved", CHANGES_REQUESTED: "changes requested"}


def _version_ref(version: Version | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {"version": version.pk, "digest": version.digest}


def _clean_title(title: str, fallback: str) -> str:
    title = " ".join(title.split()) or fallback
    if len(title) > MAX_TITLE:
        raise InvalidEvent(f"a review title has at most {MAX_TITLE} characters")
    return title


def open_review(
    stream: Stream,
    *,
    head: Version,
    base: Version | None,
    actor: str,
    title: str = "",
    branch: str = "",
) -> Review:
    """Open a review of what ``head`` reaches and ``base`` does not (all of it without base)."""
    if is_audit_stream(stream):
        raise InvalidEvent("the audit stream records reviews; it is not reviewed itself")
    for version in (head, base):
        if version is not None and version.stream_id != stream.pk:
            raise NotFound(f"version {version.pk} is not in stream {stream.name}")
    size = range_size(stream, base, head)
    if size == 0 and base is not None:
        raise InvalidEvent(f"nothing to review: version {head.pk} adds nothing to {base.pk}")
    fallback = (
        f"{branch} against {MAIN}"
        if branch
        else (f"v{base.pk}..v{head.pk}" if base else f"up to v{head.pk}")
    )
    title = _clean_title(title, fallback)
    payload = {
        "stream": stream.name,
        "base": _version_ref(base),
        "head": _version_ref(head),
        "branch": branch,
        "title": title,
        "versions": size,
    }
    with transaction.atomic():
        # Under the stream's lock a compaction's chunk either released the range already
        # (refused here) or sees this review and leaves the range alone.
        lock_stream(stream)
        ends = [v for v in (base, head) if v is not None]
        if any(is_released(v) for v in ends):
            raise StateReleased(
                "the range starts or ends at a version whose state the retention policy released"
            )
        store_snapshots([v.pk for v in ends])
        event = _append_record(stream.project, NewEvent(type=OPENED, payload=payload, actor=actor))
        review = Review.objects.create(
            project=stream.project,
            stream=stream,
            base=base,
            head=head,
            branch=branch,
            title=title,
            opened_by=actor,
            opened_at=event.timestamp,
            opened_event=event,
        )
        AuditRecord.objects.create(event=event, project=stream.project, review=review)
    return review


def open_branch_review(
    stream: Stream, branch: str, *, actor: str, title: str = "", against: str = MAIN
) -> Review:
    """Open a review of a branch against ``against``: from their merge base to its head."""
    heads = dict(
        Branch.objects.filter(stream=stream, name__in=[branch, against]).values_list(
            "name", "head_id"
        )
    )
    for name in (branch, against):
        if name not in heads:
            raise NotFound(f"stream {stream.name} has no branch {name!r}")
    if branch == against:
        raise InvalidEvent(f"review {branch} against another branch, not against itself")
    graph = graph_for(stream)
    bases = graph.merge_bases(heads[against], heads[branch])
    base_id = max(bases, key=lambda v: (graph.generation(v), v)) if bases else None
    if base_id == heads[branch]:
        raise _merged(stream, graph, branch, against, heads)
    versions = Version.objects.in_bulk([heads[branch]] + ([base_id] if base_id else []))
    return open_review(
        stream,
        head=versions[heads[branch]],
        base=versions[base_id] if base_id else None,
        actor=actor,
        title=title,
        branch=branch,
    )


class BranchMerged(InvalidEvent):
    """The branch is already merged, so reviewing it against its target covers nothing;
    ``base`` and ``head`` name the range its merge brought in, to review instead."""

    def __init__(self, message: str, base: int | None, head: int) -> None:
        super().__init__(message)
        self.base = base
        self.head = head


def _merged(
    stream: Stream, graph: VersionGraph[int], branch: str, against: str, heads: dict[str, int]
) -> BranchMerged:
    """Name the merge that brought ``branch``'s head into ``against`` and the range it
    merged (the versions of its other parents that its first parent lacked)."""
    head = heads[branch]
    merge = next(iter(merges_onto(stream.pk, head)), None)
    base = (
        Version.objects.filter(pk=merge).values_list("first_parent_id", flat=True).first()
        if merge is not None
        else None
    )
    if base is not None and graph.between_count(base, head) == 0:
        base = None
    if base is None:
        return BranchMerged(
            f"branch {branch} adds nothing to {against}: its head v{head} is already in "
            f"{against}'s history",
            None,
            head,
        )
    return BranchMerged(
        f"branch {branch} is already merged into {against} by version {merge}, so it adds "
        f"nothing to review against it; review the range that merge brought in instead: "
        f"from v{base} to v{head}",
        base,
        head,
    )


def range_ids(stream: Stream, base: Version | int | None, head: Version | int) -> list[int]:
    """Return the versions of a range, newest first (``git rev-list head ^base``)."""
    graph = graph_for(stream)
    head_id = head if isinstance(head, int) else head.pk
    if base is None:
        return sorted(graph.ancestors(head_id), key=lambda v: (-graph.generation(v), -v))
    return graph.between(base if isinstance(base, int) else base.pk, head_id)


def range_size(stream: Stream, base: Version | None, head: Version) -> int:
    """Count the versions of a range."""
    graph = graph_for(stream)
    if base is None:
        return graph.ancestor_count(head.pk)
    return graph.between_count(base.pk, head.pk)


# -- what reviewers say ----------------------------------------------------------------


TARGET_KINDS: Final = ("review", "version", "event", "path")


@dataclass(frozen=True)
class Target:
    """What a comment is about: the review as a whole, a version, an event or a path."""

    kind: str = "review"
    version: int | None = None
    event: str | None = None
    path: str | None = None

    def as_payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind}
        for name in ("version", "event", "path"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        return data

    @classmethod
    def from_payload(cls, data: Any) -> Target:
        if not isinstance(data, dict):
            return cls()
        return cls(
            kind=str(data.get("kind", "review")),
            version=data.get("version"),
            event=data.get("event"),
            path=data.get("path"),
        )

    @property
    def key(self) -> str:
        """Name the target for grouping: ``path:/a/b``, ``version:12``, ``review``."""
        value = {"version": self.version, "event": self.event, "path": self.path}.get(self.kind)
        return self.kind if value is None else f"{self.kind}:{value}"


def check_target(review: Review, target: Target) -> Target:
    """Return the target if it names something of the review's stream; refuse it otherwise."""
    if target.kind not in TARGET_KINDS:
        raise InvalidEvent(f"a comment is about one of {', '.join(TARGET_KINDS)}")
    if target.kind == "version":
        if (
            not isinstance(target.version, int)
            or not Version.objects.filter(stream=review.stream, pk=target.version).exists()
        ):
            raise NotFound(f"stream {review.stream.name} has no version {target.version}")
        return Target("version", version=target.version)
    if target.kind == "event":
        try:
            key = uuid.UUID(str(target.event))
        except ValueError:
            raise InvalidEvent(f"{target.event!r} is not an event id") from None
        if not Event.objects.filter(stream=review.stream, id=key).exists():
            raise NotFound(f"stream {review.stream.name} has no event {key}")
        return Target("event", event=str(key))
    if target.kind == "path":
        path = target.path or ""
        try:
            jsonpointer.JsonPointer(path)
        except jsonpointer.JsonPointerException as err:
            raise InvalidEvent(f"{path!r} is not a JSON Pointer: {err}") from err
        if len(path) > 1000:
            raise InvalidEvent("a path has at most 1000 characters")
        return Target("path", path=path)
    return Target()


def _clean_body(body: str) -> str:
    body = body.strip()
    if not body:
        raise InvalidEvent("a comment needs some text")
    if len(body) > MAX_BODY:
        raise InvalidEvent(f"a comment has at most {MAX_BODY} characters, not {len(body)}")
    return body


def _review_event(review: Review, event_id: uuid.UUID | str, types: Sequence[str]) -> Event:
    try:
        key = uuid.UUID(str(event_id))
    except ValueError:
        raise NotFound(f"{event_id!r} is not an event id") from None
    found = Event.objects.filter(id=key, audit_record__review=review, type__in=types).first()
    if found is None:
        raise NotFound(f"review {review.pk} has no {' or '.join(types)} {key}")
    return found


def comment(
    review: Review,
    *,
    actor: str,
    body: str,
    target: Target = Target(),
    reply_to: uuid.UUID | str | None = None,
) -> Event:
    """Comment on the review, a version, an event or a path; or reply to a comment."""
    body = _clean_body(body)
    payload: dict[str, Any] = {"review": str(review.key), "body": body}
    if reply_to is not None:
        parent = _review_event(review, reply_to, [COMMENTED])
        payload["reply_to"] = str(parent.id)
        payload["target"] = parent.payload.get("target", {"kind": "review"})
        causation = parent.id
    else:
        payload["target"] = check_target(review, target).as_payload()
        causation = review.key
    return record(
        review.project,
        COMMENTED,
        payload,
        actor=actor,
        review=review,
        causation=causation,
        correlation=review.key,
    )


def correct(review: Review, *, actor: str, corrects: uuid.UUID | str, body: str) -> Event:
    """Correct one's own comment: a new event pointing to it; the comment itself stays."""
    original = _review_event(review, corrects, [COMMENTED])
    if original.actor != actor:
        raise InvalidEvent("only the author of a comment may correct it")
    payload = {"review": str(review.key), "corrects": str(original.id), "body": _clean_body(body)}
    return record(
        review.project,
        CORRECTED,
        payload,
        actor=actor,
        review=review,
        causation=original.id,
        correlation=review.key,
    )


def check_path(review: Review, *, actor: str, path: str, checked: bool = True) -> Event:
    """Tick (or untick) a changed path on the review's checklist. A path the range does
    not change is refused (ticking it would tick nothing), unless it is ticked already
    and being unticked (a branch review's range moves with its branch)."""
    target = check_target(review, Target("path", path=path))
    listed = changed_paths(review)
    if target.path not in listed and (checked or target.path not in review_log(review).checked):
        shown = ", ".join(listed[:10]) + (" …" if len(listed) > 10 else "")
        raise InvalidEvent(
            f"{target.path or '(the whole state)'} is not on review {review.pk}'s checklist: "
            + (f"the changed paths are {shown}" if listed else "the review changes nothing")
        )
    payload = {"review": str(review.key), "path": target.path, "checked": checked}
    return record(
        review.project,
        CHECKED,
        payload,
        actor=actor,
        review=review,
        causation=review.key,
        correlation=review.key,
    )


def decide(review: Review, *, actor: str, decision: str, note: str = "") -> Event:
    """Approve or request changes; a reviewer's latest decision supersedes their earlier ones."""
    if decision not in DECISIONS:
        raise InvalidEvent(f"a decision is one of {', '.join(DECISIONS)}, not {decision!r}")
    note = note.strip()
    if len(note) > MAX_BODY:
        raise InvalidEvent(f"a note has at most {MAX_BODY} characters")
    payload: dict[str, Any] = {"review": str(review.key), "decision": decision, "note": note}
    if decision == APPROVE:
        waived = approval_waivers(review, actor=actor, note=note)
        if waived:
            payload["waived"] = waived
    return record(
        review.project,
        DECIDED,
        payload,
        actor=actor,
        review=review,
        causation=review.key,
        correlation=review.key,
    )


# -- the approval rule -------------------------------------------------------------------


def approval_rule(project: Project) -> str:
    """The rule a project's reviews are approved by, as its members see it."""
    who = (
        "anyone with the reviewer role, including whoever opened the review"
        if project.self_approval
        else "a reviewer other than whoever opened the review"
    )
    return (
        f"Approved by {who}. Every changed path is ticked, or the approval's note "
        "waives the ones that are not."
    )


def changed_paths(review: Review) -> list[str]:
    """The paths the review's range changes (its checklist), in diff order."""
    before = state_of(review.base) if review.base else {}
    seen: dict[str, None] = {}
    for change in diff(before, state_of(review.head)):
        seen.setdefault(change.path, None)
    return list(seen)


def unticked_paths(review: Review, log: ReviewLog | None = None) -> list[str]:
    """The changed paths nobody has ticked yet."""
    checked = (log or review_log(review)).checked
    return [path for path in changed_paths(review) if path not in checked]


def approval_waivers(review: Review, *, actor: str, note: str) -> list[str]:
    """Check an approval against the project's rule; return the unticked paths the note
    waives. Refuse the opener's own approval unless the project allows it, and an
    approval that leaves paths unticked without a note."""
    if actor == review.opened_by and not review.project.self_approval:
        raise InvalidEvent(
            f"{actor} opened this review, and project {review.project.slug}'s rule is that "
            "someone else approves it (a project admin can change the rule on the Members page)"
        )
    unticked = unticked_paths(review)
    if unticked and not note:
        shown = ", ".join(unticked[:10]) + (" …" if len(unticked) > 10 else "")
        raise InvalidEvent(
            f"{len(unticked)} changed {'path is' if len(unticked) == 1 else 'paths are'} not "
            f"ticked: {shown}; tick them, or approve "
            "with a note that says why they are waived"
        )
    return unticked


def set_self_approval(project: Project, allowed: bool, *, actor: str) -> Project:
    """Change whether a review's opener may approve it; recorded in the audit stream."""
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        if locked.self_approval != allowed:
            locked.self_approval = allowed
            locked.save(update_fields=["self_approval"])
            record(locked, RULE_CHANGED, {"self_approval": allowed}, actor=actor)
    project.self_approval = allowed
    return project


# -- what a review looks like now --------------------------------------------------------


@dataclass
class Comment:
    """A comment with its corrections and replies; ``body`` is its latest corrected text."""

    event: Event
    target: Target
    body: str
    corrections: list[Event] = field(default_factory=list)
    replies: list[Comment] = field(default_factory=list)

    @property
    def original(self) -> str:
        return str(self.event.payload.get("body", ""))

    @property
    def corrected(self) -> bool:
        return bool(self.corrections)


@dataclass
class ReviewLog:
    """A review as its events make it: threads, check marks, decisions and its status."""

    review: Review
    events: list[Event]
    threads: list[Comment]
    checked: dict[str, Event]  # path -> the event that ticked it (last word per path)
    decisions: list[Event]  # every decision, oldest first

    @property
    def latest_decisions(self) -> dict[str, Event]:
        """Each reviewer's decision in force: their latest."""
        latest: dict[str, Event] = {}
        for event in self.decisions:
            latest[event.actor] = event
        return latest

    @property
    def status(self) -> str:
        return status_of(self.decisions)

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    def threads_about(self, key: str) -> list[Comment]:
        return [c for c in self.threads if c.target.key == key]

    @property
    def comment_count(self) -> int:
        def count(comments: list[Comment]) -> int:
            return sum(1 + count(c.replies) for c in comments)

        return count(self.threads)


def status_of(decisions: Iterable[Event]) -> str:
    """Fold decisions: changes requested while any reviewer's latest asks for them,
    approved when at least one approves and none asks for changes, open otherwise."""
    latest: dict[str, str] = {}
    for event in decisions:
        latest[event.actor] = str(event.payload.get("decision"))
    if REQUEST_CHANGES in latest.values():
        return CHANGES_REQUESTED
    if APPROVE in latest.values():
        return APPROVED
    return OPEN


def review_events(review: Review) -> list[Event]:
    """Return the review's recorded events in chain order."""
    return list(Event.objects.filter(audit_record__review=review).order_by("seq"))


def review_log(review: Review) -> ReviewLog:
    """Fold the review's events into its threads, checklist, decisions and status."""
    events = review_events(review)
    comments: dict[uuid.UUID, Comment] = {}
    threads: list[Comment] = []
    checked: dict[str, Event] = {}
    decisions: list[Event] = []
    for event in events:
        payload = event.payload
        if event.type == COMMENTED:
            node = Comment(
                event, Target.from_payload(payload.get("target")), str(payload.get("body", ""))
            )
            comments[event.id] = node
            parent = _find(comments, payload.get("reply_to"))
            (parent.replies if parent else threads).append(node)
        elif event.type == CORRECTED:
            corrected = _find(comments, payload.get("corrects"))
            if corrected is not None:
                corrected.corrections.append(event)
                corrected.body = str(payload.get("body", ""))
        elif event.type == CHECKED:
            path = str(payload.get("path", ""))
            if payload.get("checked"):
                checked[path] = event
            else:
                checked.pop(path, None)
        elif event.type == DECIDED:
            decisions.append(event)
    return ReviewLog(review, events, threads, checked, decisions)


def _find(comments: dict[uuid.UUID, Comment], value: Any) -> Comment | None:
    """Return the comment an id in a payload names, if the review has it."""
    try:
        return comments.get(uuid.UUID(str(value))) if value else None
    except ValueError:
        return None


def statuses(reviews: Sequence[Review]) -> dict[int, str]:
    """Return each review's status, reading all their decisions in one query."""
    decisions: dict[int, list[Event]] = defaultdict(list)
    for event in (
        Event.objects.filter(audit_record__review__in=list(reviews), type=DECIDED)
        .select_related("audit_record")
        .order_by("seq")
    ):
        review_id = event.audit_record.review_id
        if review_id is not None:
            decisions[review_id].append(event)
    return {review.pk: status_of(decisions[review.pk]) for review in reviews}


# -- which ranges are reviewed -------------------------------------------------------------


REVIEWED: Final = "reviewed"
PENDING: Final = "pending"
UNREVIEWED: Final = "never reviewed"


@dataclass(frozen=True)
class Run:
    """Consecutive versions of a branch's history that share a review status."""

    status: str
    newest: int
    oldest: int
    count: int
    reviews: tuple[int, ...]


@dataclass(frozen=True)
class Coverage:
    """How much of a stream's main history approved or pending reviews cover."""

    stream: Stream
    branch: str
    runs: list[Run]

    def total(self, status: str) -> int:
        return sum(run.count for run in self.runs if run.status == status)

    @property
    def reviewed(self) -> int:
        return self.total(REVIEWED)

    @property
    def pending(self) -> int:
        return self.total(PENDING)

    @property
    def unreviewed(self) -> int:
        return self.total(UNREVIEWED)


def coverage(stream: Stream, *, branch: str = MAIN) -> Coverage:
    """Walk the branch's history newest first and group it into reviewed, pending and
    never-reviewed runs; approved reviews win over pending ones."""
    head = Branch.objects.filter(stream=stream, name=branch).values_list("head_id", flat=True)
    if not head:
        return Coverage(stream, branch, [])
    reviews = list(Review.objects.filter(stream=stream).order_by("id"))
    status = statuses(reviews)
    covered: dict[int, tuple[str, list[int]]] = {}
    for review in reviews:
        state = REVIEWED if status[review.pk] == APPROVED else PENDING
        for version in range_ids(stream, review.base_id, review.head_id):
            current = covered.get(version)
            if current is None or (current[0] == PENDING and state == REVIEWED):
                covered[version] = (state, [review.pk])
            elif current[0] == state:
                current[1].append(review.pk)
    runs: list[Run] = []
    for version in range_ids(stream, None, head[0]):
        state, ids = covered.get(version, (UNREVIEWED, []))
        last = runs[-1] if runs else None
        if last is not None and last.status == state:
            runs[-1] = Run(
                state,
                last.newest,
                version,
                last.count + 1,
                tuple(sorted(set(last.reviews) | set(ids))),
            )
        else:
            runs.append(Run(state, version, version, 1, tuple(sorted(set(ids)))))
    return Coverage(stream, branch, runs)
