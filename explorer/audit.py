"""Audit reports of a review or a time range (HTML, PDF, JSON, CSV) and the pinned export.

Every report carries the integrity of what it covers, so a reader can check it without
the database (see docs/integrity.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import forms
from django.contrib.staticfiles import finders
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
)
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.views.decorators.http import require_GET

from continust.audit import reports
from continust.core.errors import ContinustError
from continust.models import Membership, Stream
from explorer.access import actor_of, member_required, review_for
from explorer.forms import StreamField, offer_streams_of
from explorer.jsontree import json_text

REPORT_FORMATS = ("html", "pdf", "json", "csv")


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
        offer_streams_of(self, project)


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
                    "old": json_text(c.old),
                    "new": json_text(c.new),
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
    review = review_for(membership, review_id)
    report = reports.review_report(review, generated_by=actor_of(request))
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
            generated_by=actor_of(request),
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


# -- URLs, included by explorer.urls ----------------------------------------------------------

P = "p/<slug:slug>/"
urlpatterns = [
    path(P + "reviews/<int:review_id>/report.<str:fmt>", review_report, name="review-report"),
    path(P + "audit/", audit_range, name="audit"),
    path(P + "audit/report.<str:fmt>", audit_range, name="audit-report"),
    path(P + "audit/export.jsonl", audit_export, name="audit-export"),
]
