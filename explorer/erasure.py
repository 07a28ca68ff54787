"""The explorer's erasure screens (admins): which streams encrypt personal data, and
erasing a data subject after a confirmation that names what it will redact.

The views only parse input and call ``continust.audit.erasure``. This module also holds
the screens' URL patterns, which ``explorer.urls`` includes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from continust.audit.erasure import (
    REASON_MAX,
    AffectedEvent,
    affected_events,
    erase,
    erasure_of,
    set_personal,
    subject_key,
)
from continust.core.errors import AlreadyErased, ContinustError, NotFound
from continust.log.subjects import SUBJECT_MAX
from continust.models import Membership, Role, Stream, SubjectKey
from explorer.access import HtmxHttpRequest, actor_of, member_required
from explorer.confirm import confirmation, confirmed
from explorer.errors import error_page

ERASED_LIMIT = 100


class ErasureForm(forms.Form):
    """A data subject to erase and why; the confirmation page says what it redacts."""

    subject = forms.CharField(max_length=SUBJECT_MAX, label="data subject")
    reason = forms.CharField(
        max_length=REASON_MAX,
        label="reason",
        help_text="kept in the audit stream with your name; write no personal data here",
    )


class PersonalForm(forms.Form):
    """A stream's encryption: the member naming the subject, or blank to stop."""

    subject_member = forms.CharField(max_length=200, required=False, label="subject member")


def _context(membership: Membership, **extra: Any) -> dict[str, Any]:
    project = membership.project
    return {
        "membership": membership,
        "project": project,
        "streams": Stream.objects.filter(project=project).exclude(name="_audit").order_by("name"),
        "erased": SubjectKey.objects.filter(project=project, key__isnull=True).order_by(
            "-erased_at"
        )[:ERASED_LIMIT],
        "form": ErasureForm(),
        **extra,
    }


@require_GET
@member_required(Role.ADMIN)
def erasure_page(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The erasure page; ``?erased=SUBJECT`` shows what that subject's erasure did (where
    an erasure lands, so that reloading it erases nothing again)."""
    erased = request.GET.get("erased")
    if erased is None:
        return render(request, "erasure.html", _context(membership))
    report = erasure_of(membership.project, erased)
    return render(request, "erasure.html", _context(membership, report=report))


def _facts(subject: str, events: tuple[AffectedEvent, ...]) -> list[str]:
    streams = sorted({event.stream for event in events})
    facts = [
        f"destroys the key of data subject {subject!r} for good",
        f"{len(events):,} event(s) in {len(streams):,} stream(s) "
        f"({', '.join(streams) or 'none'}) will show its personal values as [erased] "
        "everywhere: versions, diffs, blame, exports, projections (rebuilt) and the API",
        "events, states and hashes stay as they are, so verify keeps passing",
        "records a subject.erased audit event with your name and the reason",
        "backups and exports made before keep what they hold",
    ]
    facts += [f"{e.stream} #{e.seq} {e.type} ({e.id})" for e in events[:20]]
    if len(events) > 20:
        facts.append(f"… and {len(events) - 20:,} more event(s)")
    return facts


@require_http_methods(["GET", "POST"])
@member_required(Role.ADMIN)
def erasure_erase(request: HtmxHttpRequest, membership: Membership) -> HttpResponse:
    project = membership.project
    back = reverse("erasure", args=[project.slug])
    form = ErasureForm(request.GET)
    if not form.is_valid():
        context = _context(membership, form=form)
        return render(request, "erasure.html", context, status=400)
    subject, reason = form.cleaned_data["subject"], form.cleaned_data["reason"]
    if not confirmed(request):
        try:
            row = subject_key(project, subject)
            problem = f"data subject {subject!r} was already erased" if row.key is None else ""
            facts = [] if problem else _facts(subject, affected_events(project, subject))
        except ContinustError as err:
            facts, problem = [], str(err)
        return confirmation(
            request,
            membership,
            title=f"Erase data subject {subject!r}?",
            facts=facts,
            action="Erase for good",
            back=back,
            problem=problem,
            url=request.get_full_path(),
        )
    try:
        done = erase(project, subject, actor=actor_of(request), reason=reason)
    except AlreadyErased as err:
        return error_page(request, 409, str(err))
    except NotFound as err:
        return error_page(request, 404, str(err))
    except ContinustError as err:
        return error_page(request, 400, str(err))
    return redirect(f"{back}?{urlencode({'erased': done.subject})}")


@require_POST
@member_required(Role.ADMIN)
def stream_personal(request: HttpRequest, membership: Membership, stream: Stream) -> HttpResponse:
    form = PersonalForm(request.POST)
    if not form.is_valid():
        return error_page(request, 400, "The subject member is at most 200 characters.")
    member = form.cleaned_data["subject_member"].strip() or None
    try:
        set_personal(stream, member, actor=actor_of(request))
    except ContinustError as err:
        return error_page(request, 422, str(err))
    if member is None:
        messages.success(request, f"{stream.name} now stores its payloads as they are.")
    else:
        messages.success(
            request, f"{stream.name} now encrypts personal data per subject named by {member!r}."
        )
    return redirect(reverse("erasure", args=[membership.project.slug]))


urlpatterns = [
    path("p/<slug:slug>/erasure/", erasure_page, name="erasure"),
    path("p/<slug:slug>/erasure/erase/", erasure_erase, name="erasure-erase"),
    path("p/<slug:slug>/s/<int:stream_id>/personal/", stream_personal, name="stream-personal"),
]
