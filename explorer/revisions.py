"""Tags and reverts from a version's panel, each confirmed first: a tag is never moved
or deleted, and a revert appends an event for good."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods

from continust.audit.tags import create_tag
from continust.core.errors import ContinustError
from continust.core.parsing import parse_branch_name, parse_tag_name
from continust.documents.diff import format_changes
from continust.log.revert import append_revert, plan_revert
from continust.models import Membership, Role, Stream, Version
from explorer.access import HtmxHttpRequest, actor_of, member_required
from explorer.confirm import confirmation, confirmed

SHOWN_CHANGES = 20


def _version(stream: Stream, version_id: int) -> Version:
    version = Version.objects.select_related("event").filter(stream=stream, pk=version_id).first()
    if version is None:
        raise Http404("No such version.")
    return version


def _back(membership: Membership, stream: Stream, version: Version) -> str:
    return reverse("stream", args=[membership.project.slug, stream.pk]) + f"?v={version.pk}"


@require_http_methods(["GET", "POST"])
@member_required(Role.EDITOR)
def tag_version(
    request: HtmxHttpRequest, membership: Membership, stream: Stream, version_id: int
) -> HttpResponse:
    """Confirm, then tag the version with ``?tag=``: for ever, recorded in the audit trail."""
    version = _version(stream, version_id)
    back = _back(membership, stream, version)
    raw = request.GET.get("tag", "")
    try:
        name, problem = parse_tag_name(raw), ""
    except ContinustError as err:
        name, problem = raw, str(err)
    url = request.path + "?" + urlencode({"tag": name})
    if problem or not confirmed(request):
        return confirmation(
            request,
            membership,
            title=f"Tag version {version.pk} as {name}?",
            facts=[
                f"The tag {name} will name version {version.pk} of {stream.name} for ever: "
                "a tag is never moved and never deleted.",
                f"A tag.created event saying that {actor_of(request)} tagged it is appended "
                f"to the project's audit stream.",
            ],
            action="Tag it",
            back=back,
            problem=problem,
            url=url,
        )
    try:
        tag = create_tag(stream, name, version, actor=actor_of(request))
    except ContinustError as err:
        messages.error(request, str(err))
    else:
        messages.success(request, f"Tagged version {version.pk} as {tag.name}.")
    return redirect(back)


@require_http_methods(["GET", "POST"])
@member_required(Role.EDITOR)
def revert_version(
    request: HtmxHttpRequest, membership: Membership, stream: Stream, version_id: int
) -> HttpResponse:
    """Confirm, then append the event that undoes the version (on ``?branch=``, its own by
    default); say why not when it does not apply cleanly."""
    version = _version(stream, version_id)
    back = _back(membership, stream, version)
    raw = request.GET.get("branch", "")
    url = request.path + ("?" + urlencode({"branch": raw}) if raw else "")
    facts: list[str] = []
    try:
        branch = parse_branch_name(raw) if raw else None
        plan = plan_revert(stream, version, branch)
    except ContinustError as err:
        return confirmation(
            request,
            membership,
            title=f"Revert version {version.pk}?",
            facts=facts,
            action="Revert",
            back=back,
            problem=f"{str(err)[:1].upper()}{str(err)[1:]}.",
            url=url,
        )
    if not confirmed(request):
        lines = format_changes(plan.shown_changes()).splitlines()
        facts = [
            f"Append one {plan.event_type} event to branch {plan.branch}, after its head "
            f"v{plan.head}, caused by event {version.event.id} (version {version.pk}).",
            f"It undoes what version {version.pk} changed from its parent v{plan.parent}: "
            f"{len(plan.changes)} change{'s' if len(plan.changes) != 1 else ''} to the "
            "head's state:",
            *lines[:SHOWN_CHANGES],
        ]
        if len(lines) > SHOWN_CHANGES:
            facts.append(f"… and {len(lines) - SHOWN_CHANGES} more.")
        return confirmation(
            request,
            membership,
            title=f"Revert version {version.pk} on {plan.branch}?",
            facts=facts,
            action="Revert",
            back=back,
            url=url,
        )
    try:
        made = append_revert(stream, plan, actor=actor_of(request)).versions[0]
    except ContinustError as err:
        messages.error(request, f"{str(err)[:1].upper()}{str(err)[1:]}.")
        return redirect(back)
    messages.success(request, f"Version {made.pk} on {plan.branch} reverts version {version.pk}.")
    return redirect(reverse("stream", args=[membership.project.slug, stream.pk]) + f"?v={made.pk}")


VERSION = "p/<slug:slug>/s/<int:stream_id>/v/<int:version_id>/"

urlpatterns = [
    path(VERSION + "tag/", tag_version, name="tag-version"),
    path(VERSION + "revert/", revert_version, name="revert-version"),
]
