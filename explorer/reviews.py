"""Review pages: reviews and their range, comments and decisions; blame; audit reports; members.

Every view goes through ``member_required``: viewers read reviews, reports and blame;
reviewers open reviews, comment, tick the checklist and decide; admins manage members.
Every change is a POST behind Django's CSRF check, then a redirect back (post/redirect/get).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.staticfiles import finders
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from continust.audit import reports, reviews, trail
from continust.audit.blame import blame, pointer_tokens, resolve
from continust.audit.members import invite, remove, set_role
from continust.core.errors import ContinustError, InvalidName
from continust.documents import diff as diffs
from continust.graph.cache import graph_for
from continust.log.lookup import resolve_version
from continust.log.states import state_of
from continust.models import Branch, Event, Membership, Review, Role, Stream, Version
from explorer.access import HtmxHttpRequest, member_required
from explorer.confirm import confirmation, confirmed

TIMELINE_LIMIT = 200
PATH_LIMIT = 500
REPORT_FORMATS = ("html", "pdf", "json", "csv")


def _actor(request: HttpRequest) -> str:
    return request.user.get_username()


def _review(membership: Membership, review_id: int) -> Review:
    return get_object_or_404(
        Review.objects.select_related("stream", "project", "opened_event", "base", "head"),
        pk=review_id,
        project=membership.project,
    )


def _review_url(review: Review, anchor: str = "") -> str:
    url = reverse("review", args=[review.project.slug, review.pk])
    return f"{url}#{anchor}" if anchor else url


def _fail(request: HttpRequest, err: ContinustError, url: str) -> HttpResponse:
    messages.error(request, str(err))
    return redirect(url)


# -- forms -------------------------------------------------------------------------------


class StreamField(forms.ModelChoiceField):  # type: ignore[type-arg]
    """Choose a stream of the project by its name."""

    def label_from_instance(self, obj: Any) -> str:
        return str(obj.name)


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
        field = self.fields["stream"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = (
            Stream.objects.filter(project=project).exclude(name=trail.AUDIT_STREAM).order_by("name")
        )

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


class RangeForm(forms.Form):
    since = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    until = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    stream = StreamField(queryset=Stream.objects.none(), required=False, empty_label="every stream")

    def __init__(self, project: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["stream"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = (
            Stream.objects.filter(project=project).exclude(name=trail.AUDIT_STREAM).order_by("name")
        )


class InviteForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


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
    """The project page's lazily loaded panel: which ranges are reviewed, pending or not."""
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
                stream, data["branch"].strip(), actor=_actor(request), title=data["title"]
            )
        else:
            head = resolve_version(stream, data["head"])
            base = resolve_version(stream, data["base"]) if data["base"].strip() else None
            review = reviews.open_review(
                stream, head=head, base=base, actor=_actor(request), title=data["title"]
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
    return redirect(_review_url(review))


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
    before = state_of(review.base) if review.base else {}
    after = state_of(review.head)
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
                "old": _show(change.old),
                "new": _show(change.new),
            }
        )
    return rows


def _value_at(document: Any, path: str) -> Any:
    return resolve(document, pointer_tokens(path))


def _show(value: Any) -> str:
    if value is diffs.MISSING:
        return ""
    return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True)


@require_GET
@member_required()
def review_detail(request: HttpRequest, membership: Membership, review_id: int) -> HttpResponse:
    review = _review(membership, review_id)
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
        "me": _actor(request),
        "formats": REPORT_FORMATS,
    }
    return render(request, "review.html", context)


@require_POST
@member_required(Role.REVIEWER)
def review_comment(request: HttpRequest, membership: Membership, review_id: int) -> HttpResponse:
    review = _review(membership, review_id)
    form = CommentForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A comment needs some text (at most 10,000 characters).")
        return redirect(_review_url(review))
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
            actor=_actor(request),
            body=data["body"],
            target=target,
            reply_to=data["reply_to"] or None,
        )
    except ContinustError as err:
        return _fail(request, err, _review_url(review))
    return redirect(_review_url(review, f"c-{event.id}"))


@require_POST
@member_required(Role.REVIEWER)
def review_correct(request: HttpRequest, membership: Membership, review_id: int) -> HttpResponse:
    review = _review(membership, review_id)
    corrects = request.POST.get("corrects", "")
    try:
        reviews.correct(
            review, actor=_actor(request), corrects=corrects, body=request.POST.get("body", "")
        )
    except ContinustError as err:
        return _fail(request, err, _review_url(review))
    return redirect(_review_url(review, f"c-{corrects}"))


@require_POST
@member_required(Role.REVIEWER)
def review_check(request: HttpRequest, membership: Membership, review_id: int) -> HttpResponse:
    review = _review(membership, review_id)
    path = request.POST.get("path", "")
    try:
        reviews.check_path(
            review, actor=_actor(request), path=path, checked=request.POST.get("checked") == "yes"
        )
    except ContinustError as err:
        return _fail(request, err, _review_url(review))
    return redirect(_review_url(review, "checklist"))


@require_POST
@member_required(Role.REVIEWER)
def review_decide(request: HttpRequest, membership: Membership, review_id: int) -> HttpResponse:
    review = _review(membership, review_id)
    try:
        reviews.decide(
            review,
            actor=_actor(request),
            decision=request.POST.get("decision", ""),
            note=request.POST.get("note", ""),
        )
    except ContinustError as err:
        return _fail(request, err, _review_url(review))
    messages.success(request, "Your decision is recorded.")
    return redirect(_review_url(review, "decisions"))


# -- reports -------------------------------------------------------------------------------


def _deny_fetch(url: str, *args: Any, **kwargs: Any) -> Any:
    """WeasyPrint fetches nothing: the report's stylesheets are handed to it as files."""
    raise ValueError(f"the PDF renderer does not fetch {url}")


def _pdf(html: str) -> bytes:
    from weasyprint import CSS, HTML  # type: ignore[import-untyped]

    sheets = [
        CSS(filename=path, url_fetcher=_deny_fetch)
        for name in ("continust.css", "reviews.css")
        if (path := finders.find(name))
    ]
    return bytes(HTML(string=html, url_fetcher=_deny_fetch).write_pdf(stylesheets=sheets))


def _report_response(
    request: HttpRequest, report: reports.AuditReport, fmt: str, context: dict[str, Any], name: str
) -> HttpResponse:
    context = {
        **context,
        "report": report,
        "formats": REPORT_FORMATS,
        "export_url": reverse("audit-export", args=[report.project.slug])
        + "?"
        + report.integrity.pin_query,
        "data": report.as_dict(),
        "rows": _display_rows(report),
        "activity": [
            (log, [(e, reports.event_text(e)) for e in log.events]) for log in report.reviews
        ],
        "records": [(e, reports.event_text(e)) for e in report.records],
    }
    if fmt == "html":
        return render(request, "audit_report.html", context)
    if fmt == "pdf":
        html = render_to_string("audit_report.html#document", context, request=request)
        response = HttpResponse(_pdf(html), content_type="application/pdf")
    elif fmt == "json":
        response = JsonResponse(
            context["data"], json_dumps_params={"ensure_ascii": False, "indent": 2}
        )
    else:
        response = HttpResponse(report.csv_text(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


def _display_rows(report: reports.AuditReport) -> list[dict[str, Any]]:
    return [
        {
            "version": row.version,
            "event": row.version.event,
            "cause": row.cause,
            "changes": [
                {
                    "path": c.path,
                    "op": c.op,
                    "from_path": c.from_path,
                    "old": _show(c.old),
                    "new": _show(c.new),
                }
                for c in row.changes
            ],
        }
        for row in report.rows
    ]


@require_GET
@member_required()
def review_report(
    request: HttpRequest, membership: Membership, review_id: int, fmt: str
) -> HttpResponse:
    if fmt not in REPORT_FORMATS:
        raise Http404("No such report format.")
    review = _review(membership, review_id)
    report = reports.review_report(review, generated_by=_actor(request))
    context = {"membership": membership, "project": review.project, "review": review}
    return _report_response(
        request, report, fmt, context, f"{review.project.slug}-review-{review.pk}"
    )


@require_GET
@member_required()
def audit_range(request: HttpRequest, membership: Membership, fmt: str = "") -> HttpResponse:
    """The time-range report: a form, and the report in any format once it is asked for."""
    project = membership.project
    # A report without a range covers everything; the form page starts unbound.
    form = RangeForm(project, request.GET if fmt else (request.GET or None))
    context = {"membership": membership, "project": project, "range_form": form}
    if not fmt:
        return render(request, "audit_report.html", context)
    if fmt not in REPORT_FORMATS:
        raise Http404("No such report format.")
    if not form.is_valid():
        return render(request, "audit_report.html", context, status=400)
    data = form.cleaned_data
    try:
        report = reports.range_report(
            project,
            since=_utc(data["since"]),
            until=_utc(data["until"]),
            stream=data["stream"],
            generated_by=_actor(request),
        )
    except ContinustError as err:
        form.add_error(None, str(err))
        return render(request, "audit_report.html", context, status=400)
    return _report_response(request, report, fmt, context, f"{project.slug}-audit")


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@require_GET
@member_required()
def audit_export(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The pinned JSON Lines export a report's digest and chain heads are about."""
    project = membership.project
    try:
        pins = reports.parse_pins(project, request.GET.getlist("pin"))
    except ContinustError as err:
        raise Http404(str(err)) from err
    if not pins:
        raise Http404("Name the pinned streams (pin=stream.events.versions).")

    body = "".join(reports.pinned_export(project, pins)).encode("utf-8")
    response = HttpResponse(body, content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="{reports.export_file_name(project)}"'
    return response


# -- blame ---------------------------------------------------------------------------------


def _leaf_paths(document: Any, limit: int = PATH_LIMIT) -> list[str]:
    """Return the pointers of the document's scalar values (and empty containers)."""
    paths: list[str] = []
    stack: list[tuple[str, Any]] = [("", document)]
    while stack and len(paths) < limit:
        path, node = stack.pop()
        items = (
            list(node.items())
            if isinstance(node, dict)
            else list(enumerate(node))
            if isinstance(node, list)
            else None
        )
        if not items:
            if path:
                paths.append(path)
            continue
        stack.extend((f"{path}/{diffs.escape_token(k)}", v) for k, v in reversed(items))
    return paths


@require_GET
@member_required()
def blame_view(
    request: HttpRequest, membership: Membership, stream: Stream, version_id: int
) -> HttpResponse:
    version = Version.objects.select_related("event").filter(stream=stream, pk=version_id).first()
    if version is None:
        raise Http404("No such version.")
    path = request.GET.get("path")
    context: dict[str, Any] = {
        "membership": membership,
        "project": membership.project,
        "stream": stream,
        "version": version,
        "path": path,
        "paths": _leaf_paths(state_of(version)),
    }
    status = 200
    if path is not None:
        try:
            found = blame(stream, version, path)
            context["blame"] = found
            context["rows"] = [
                {"change": c, "value": _show(c.value), "previous": _show(c.previous)}
                for c in found.changes
            ]
        except ContinustError as err:
            context["error"] = str(err)
            status = 400 if isinstance(err, InvalidName) else 404
    return render(request, "blame.html", context, status=status)


# -- members -------------------------------------------------------------------------------


def _members_url(membership: Membership) -> str:
    return reverse("members", args=[membership.project.slug])


@require_GET
@member_required()
def members(request: HttpRequest, membership: Membership) -> HttpResponse:
    listed = (
        Membership.objects.filter(project=membership.project)
        .select_related("user")
        .order_by("user__username")
    )
    roles = Counter(m.role for m in listed)
    return render(
        request,
        "members.html",
        {
            "membership": membership,
            "project": membership.project,
            "members": listed,
            "roles": Role.choices,
            "counts": roles,
            "invite_form": InviteForm(),
            "can_manage": membership.allows(Role.ADMIN),
            "approval_rule": reviews.approval_rule(membership.project),
        },
    )


@require_POST
@member_required(Role.ADMIN)
def member_invite(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = InviteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Name an existing user and one of the roles.")
        return redirect(_members_url(membership))
    try:
        added = invite(
            membership.project,
            form.cleaned_data["username"],
            form.cleaned_data["role"],
            actor=_actor(request),
        )
    except ContinustError as err:
        return _fail(request, err, _members_url(membership))
    messages.success(request, f"{added.user} is now a {added.role} of {membership.project}.")
    return redirect(_members_url(membership))


@require_POST
@member_required(Role.ADMIN)
def member_role(request: HttpRequest, membership: Membership, member_id: int) -> HttpResponse:
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles.")
        return redirect(_members_url(membership))
    try:
        changed = set_role(
            membership.project, member_id, form.cleaned_data["role"], actor=_actor(request)
        )
    except ContinustError as err:
        return _fail(request, err, _members_url(membership))
    messages.success(request, f"{changed.user} is now a {changed.role}.")
    return redirect(_members_url(membership))


@require_POST
@member_required(Role.ADMIN)
def review_rule(request: HttpRequest, membership: Membership) -> HttpResponse:
    allowed = request.POST.get("self_approval")
    if allowed not in ("yes", "no"):
        messages.error(request, "Say yes or no: may whoever opened a review approve it?")
        return redirect(_members_url(membership))
    reviews.set_self_approval(membership.project, allowed == "yes", actor=_actor(request))
    messages.success(request, reviews.approval_rule(membership.project))
    return redirect(_members_url(membership))


@require_http_methods(["GET", "POST"])
@member_required(Role.ADMIN)
def member_remove(request: HtmxHttpRequest, membership: Membership, member_id: int) -> HttpResponse:
    if not confirmed(request):
        member = (
            Membership.objects.select_related("user")
            .filter(project=membership.project, pk=member_id)
            .first()
        )
        if member is None:
            raise Http404("No such member.")
        you = " (you: you lose access at once)" if member.pk == membership.pk else ""
        return confirmation(
            request,
            membership,
            title=f"Remove {member.user.get_username()} from {membership.project.name}?",
            facts=[
                f"{member.user.get_username()}{you}, a {member.role}, loses access to every "
                "stream, review and pipeline of the project",
                "the removal is recorded in the audit trail; only an invitation brings them back",
            ],
            action=f"Remove {member.user.get_username()}",
            back=_members_url(membership),
        )
    try:
        remove(membership.project, member_id, actor=_actor(request))
    except ContinustError as err:
        return _fail(request, err, _members_url(membership))
    messages.success(request, "The member is removed.")
    if member_id == membership.pk:
        return redirect("home")
    return redirect(_members_url(membership))


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
    path(P + "reviews/<int:review_id>/report.<str:fmt>", review_report, name="review-report"),
    path(P + "audit/", audit_range, name="audit"),
    path(P + "audit/report.<str:fmt>", audit_range, name="audit-report"),
    path(P + "audit/export.jsonl", audit_export, name="audit-export"),
    path(P + "s/<int:stream_id>/v/<int:version_id>/blame/", blame_view, name="blame"),
    path(P + "members/", members, name="members"),
    path(P + "members/invite/", member_invite, name="member-invite"),
    path(P + "members/review-rule/", review_rule, name="review-rule"),
    path(P + "members/<int:member_id>/role/", member_role, name="member-role"),
    path(P + "members/<int:member_id>/remove/", member_remove, name="member-remove"),
]
