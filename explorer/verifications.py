"""Verifications on the workers: a project's streams verified side by side by the Celery
workers (``continust.audit.fanout``, as ``verify --fan-out``), with their progress and the
report once the last stream is done. Verifying only reads, so any member may start one.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import path
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from continust.audit import fanout
from continust.core.errors import NotFound
from continust.models import Membership, Verification
from explorer.access import HtmxHttpRequest, member_required


@require_POST
@member_required()
def start(request: HtmxHttpRequest, membership: Membership) -> HttpResponse:
    """Start a verification of every stream and show its progress."""
    verification = fanout.start(membership.project, actor=request.user.get_username())
    return redirect("verification", membership.project.slug, verification.pk)


@require_GET
@member_required()
def detail(request: HtmxHttpRequest, membership: Membership, verification_id: int) -> HttpResponse:
    """The progress (polled while it runs), then the report."""
    try:
        verification = fanout.get(membership.project, verification_id)
    except NotFound as err:
        raise Http404(str(err)) from err
    context = _context(membership, verification)
    if request.htmx:
        fragment = render_to_string("verification.html#progress", context, request)
        finished = verification.finished_at is not None
        return HttpResponseStopPolling(fragment) if finished else HttpResponse(fragment)
    return render(request, "verification.html", context)


def _context(membership: Membership, verification: Verification) -> dict[str, Any]:
    progress = fanout.progress(verification)
    finished = verification.finished_at is not None
    return {
        "membership": membership,
        "project": membership.project,
        "verification": verification,
        "progress": progress,
        "percent": 100 * progress.done // progress.total if progress.total else 100,
        "report": fanout.report(verification) if finished else None,
    }


def recent(membership: Membership, count: int = 5) -> list[Verification]:
    """The project's latest verifications on the workers, newest first."""
    return list(Verification.objects.filter(project=membership.project).order_by("-id")[:count])


P = "p/<slug:slug>/"
urlpatterns = [
    path(P + "integrity/verifications/", start, name="verification-start"),
    path(P + "integrity/verifications/<int:verification_id>/", detail, name="verification"),
]
