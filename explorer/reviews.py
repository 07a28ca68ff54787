"""Review pages: open a review of a range, its diff checklist, comments, corrections,
check marks and decisions under the project's approval rule.

Viewers read reviews; reviewers open them, comment, tick the checklist and decide. Every
change is a POST behind Django's CSRF check, then a redirect back (post/redirect/get).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.http import (
    HttpRequest,
    HttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from continust.audit import reviews, trail
from continust.audit.blame import pointer_tokens, resolve
from continust.core.errors import ContinustError
from continust.documents import diff as diffs
from continust.graph.cache import graph_for
from continust.log.lookup import resolve_version
from continust.log.subjects import readable_state
from continust.models import Branch, Event, Membership, Review, Role, Stream, Version
from explorer.access import actor_of, member_required, refuse, review_for
from explorer.audit import REPORT_FORMATS
from explorer.forms import StreamField, offer_streams_of
from explorer.jsontree import json_text

TIMELINE_LIMIT = 200


def review_url(review: Review, anchor: str = "") -> str:
    url = reverse("review", args=[review.project.slug, review.pk])
    return f"{url}#{anchor}" if anchor else url


class OpenReviewForm(forms.Form):
    stream = StreamField(queryset=Stream.objects.none(), empty_label=None)
    branch = forms.CharField(
        required=False, max_length=200, help_text="review this branch against main…"
    )
    base = forms.CharField(
        required=False,
        max_length=200,
        label="or from",
        help_text="version id, key or branch; empty: from the root",
    )
    head = forms.CharField(
        required=False, max_length=200, label="to", help_text="version id, key or branch"
    )
    title = forms.CharField(required=False, max_length=reviews.MAX_TITLE)

    def __init__(self, project: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offer_streams_of(self, project)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("branch") and not data.get("head"):
            raise forms.ValidationError("Name a branch, or a head version (and a base).")
        return data


class CommentForm(forms.Form):
    body = forms.CharField(max_length=reviews.MAX_BODY, widget=forms.Textarea)
    kind = forms.ChoiceField(choices=[(k, k) for k in reviews.TARGET_KINDS], required=False)
    version = forms.IntegerField(required=False)
    event = forms.CharField(required=False, max_length=36)
    path = forms.CharField(required=False, max_length=1000, strip=False)
    reply_to = forms.CharField(required=False, max_length=36)


# -- reviews -------------------------------------------------------------------------------


@require_GET
@member_required()
def review_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    project = membership.project
    listed = list(Review.objects.filter(project=project).select_related("stream")[:200])
    status = reviews.statuses(listed)
    context = {
        "membership": membership,
        "project": project,
        "reviews": [(r, status[r.pk], reviews.STATUS_LABELS[status[r.pk]]) for r in listed],
        "can_review": membership.allows(Role.REVIEWER),
        "open_form": OpenReviewForm(project, initial=request.GET or None),
        **_coverage_context(membership),
    }
    return render(request, "review_list.html", context)


def _coverage_context(membership: Membership) -> dict[str, Any]:
    streams = (
        Stream.objects.filter(project=membership.project)
        .exclude(name=trail.AUDIT_STREAM)
        .order_by("name")[:50]
    )
    return {"coverage": [reviews.coverage(s) for s in streams]}


@require_GET
@member_required()
def review_coverage(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The project page's lazily loaded panel: which ranges are reviewed, pending or not.
    Opened directly (not by htmx), the reviews page, which shows the same panel."""
    if not getattr(request, "htmx", False):
        return redirect(reverse("reviews", args=[membership.project.slug]) + "#coverage")
    return render(
        request,
        "review_list.html#coverage",
        {"membership": membership, "project": membership.project, **_coverage_context(membership)},
    )


@require_http_methods(["GET", "POST"])
@member_required(Role.REVIEWER)
def review_open(request: HttpRequest, membership: Membership) -> HttpResponse:
    project = membership.project
    form = OpenReviewForm(
        project, request.POST if request.method == "POST" else None, initial=request.GET or None
    )
    context = {"membership": membership, "project": project, "form": form}
    if request.method == "GET" or not form.is_valid():
        return render(
            request, "review_open.html", context, status=400 if request.method == "POST" else 200
        )
    data = form.cleaned_data
    stream: Stream = data["stream"]
    try:
        if data["branch"]:
            review = reviews.open_branch_review(
                stream, data["branch"].strip(), actor=actor_of(request), title=data["title"]
            )
        else:
            head = resolve_version(stream, data["head"])
            base = resolve_version(stream, data["base"]) if data["base"].strip() else None
            review = reviews.open_review(
                stream, head=head, base=base, actor=actor_of(request), title=data["title"]
            )
    except reviews.BranchMerged as err:
        form.add_error(None, str(err))
        if err.base is not None:
            context["offer"] = {"stream": stream, "base": err.base, "head": err.head}
        return render(request, "review_open.html", context, status=400)
    except ContinustError as err:
        form.add_error(None, str(err))
        return render(request, "review_open.html", context, status=400)
    messages.success(request, f"Opened review {review.pk}.")
    return redirect(review_url(review))


def _timeline(review: Review, log: reviews.ReviewLog) -> tuple[list[dict[str, Any]], int]:
    ids = reviews.range_ids(review.stream, review.base_id, review.head_id)
    versions = Version.objects.filter(pk__in=ids[:TIMELINE_LIMIT]).select_related("event")
    by_id = {v.pk: v for v in versions}
    causes: dict[UUID | None, Event] = {
        e.id: e
        for e in Event.objects.select_related("stream").filter(
            project_id=review.stream.project_id,
            id__in=[v.event.causation_id for v in versions if v.event.causation_id],
        )
    }
    graph = graph_for(review.stream)
    rows = []
    for version_id in ids[:TIMELINE_LIMIT]:
        version = by_id[version_id]
        rows.append(
            {
                "version": version,
                "event": version.event,
                "parents": graph.parents(version_id),
                "cause": causes.get(version.event.causation_id),
                "threads": log.threads_about(f"version:{version_id}")
                + log.threads_about(f"event:{version.event.id}"),
            }
        )
    return rows, len(ids)


def _checklist(review: Review, log: reviews.ReviewLog) -> list[dict[str, Any]]:
    before = readable_state(review.base) if review.base else {}
    after = readable_state(review.head)
    rows: list[dict[str, Any]] = []
    seen: dict[str, dict[str, Any]] = {}
    for change in diffs.diff(before, after):
        row = seen.get(change.path)
        if row is None:
            row = {
                "path": change.path,
                "changes": [],
                "checked": log.checked.get(change.path),
                "threads": log.threads_about(f"path:{change.path}"),
                "in_head": diffs.MISSING is not _value_at(after, change.path),
            }
            seen[change.path] = row
            rows.append(row)
        row["changes"].append(
            {
                "op": change.op,
                "from_path": change.from_path,
                "old": json_text(change.old),
                "new": json_text(change.new),
            }
        )
    return rows


def _value_at(document: Any, path: str) -> Any:
    return resolve(document, pointer_tokens(path))


@require_GET
@member_required()
def review_detail(request: HttpRequest, membership: Membership, review_id: int) -> HttpResponse:
    review = review_for(membership, review_id)
    log = reviews.review_log(review)
    timeline, total = _timeline(review, log)
    checklist = _checklist(review, log)
    moved = None
    if review.branch:
        moved = (
            Branch.objects.filter(stream=review.stream, name=review.branch)
            .exclude(head_id=review.head_id)
            .values_list("head_id", flat=True)
            .first()
        )
    shown = (
        {"review"}
        | {f"path:{row['path']}" for row in checklist}
        | {
            key
            for row in timeline
            for key in (f"version:{row['version'].pk}", f"event:{row['event'].id}")
        }
    )
    context = {
        "elsewhere": [c for c in log.threads if c.target.key not in shown],
        "membership": membership,
        "project": review.project,
        "stream": review.stream,
        "review": review,
        "log": log,
        "status": log.status,
        "status_label": log.status_label,
        "timeline": timeline,
        "range_total": total,
        "checklist": checklist,
        "checked_count": sum(1 for row in checklist if row["checked"]),
        "unticked": [row["path"] for row in checklist if not row["checked"]],
        "approval_rule": reviews.approval_rule(review.project),
        "general": log.threads_about("review"),
        "moved_to": moved,
        "decisions": sorted(log.latest_decisions.values(), key=lambda e: e.seq),
        "can_review": membership.allows(Role.REVIEWER),
        "me": actor_of(request),
        "formats": REPORT_FORMATS,
    }
    return render(request, "review.html", context)


@require_POST
@member_required(Role.REVIEWER)
def review_comment(request: HttpRequest, membership: Membership, review_id: int) -> HttpResponse:
    review = review_for(membership, review_id)
    form = CommentForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A comment needs some text (at most 10,000 characters).")
        return redirect(review_url(review))
    data = form.cleaned_data
    target = reviews.Target(
        kind=data["kind"] or "review",
        version=data["version"],
        event=data["event"] or None,
        path=data["path"],
    )
    try:
        event = reviews.comment(
            review,
            actor=actor_of(request),
            body=data["body"],
            target=target,
            reply_to=data["reply_to"] or None,
        )
    except ContinustError as err:
        return refuse(request, err, review_url(review))
    return redirect(review_url(review, f"c-{event.id}"))


@require_POST
@member_required(Role.REVIEWER)
def review_correct(request: HttpRequest, membership: Membership, review_id: int) -> HttpResponse:
    review = review_for(membership, review_id)
    corrects = request.POST.get("corrects", "")
    try:
        reviews.correct(
            review, actor=actor_of(request), corrects=corrects, body=request.POST.get("body", "")
        )
    except ContinustError as err:
        return refuse(request, err, review_url(review))
    return redirect(review_url(review, f"c-{corrects}"))


@require_POST
@member_required(Role.REVIEWER)
def review_check(request: HttpRequest, membership: Membership, review_id: int) -> HttpResponse:
    review = review_for(membership, review_id)
    path = request.POST.get("path", "")
    try:
        reviews.check_path(
            review, actor=actor_of(request), path=path, checked=request.POST.get("checked") == "yes"
        )
    except ContinustError as err:
        return refuse(request, err, review_url(review))
    return redirect(review_url(review, "checklist"))


@require_POST
@member_required(Role.REVIEWER)
def review_decide(request: HttpRequest, membership: Membership, review_id: int) -> HttpResponse:
    review = review_for(membership, review_id)
    try:
        reviews.decide(
            review,
            actor=actor_of(request),
            decision=request.POST.get("decision", ""),
            note=request.POST.get("note", ""),
        )
    except ContinustError as err:
        return refuse(request, err, review_url(review))
    messages.success(request, "Your decision is recorded.")
    return redirect(review_url(review, "decisions"))


# -- URLs, included by explorer.urls ----------------------------------------------------------

P = "p/<slug:slug>/"
urlpatterns = [
    path(P + "reviews/", review_list, name="reviews"),
    path(P + "reviews/coverage/", review_coverage, name="review-coverage"),
    path(P + "reviews/new/", review_open, name="review-open"),
    path(P + "reviews/<int:review_id>/", review_detail, name="review"),
    path(P + "reviews/<int:review_id>/comment/", review_comment, name="review-comment"),
    path(P + "reviews/<int:review_id>/correct/", review_correct, name="review-correct"),
    path(P + "reviews/<int:review_id>/check/", review_check, name="review-check"),
    path(P + "reviews/<int:review_id>/decide/", review_decide, name="review-decide"),
]
