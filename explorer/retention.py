"""The explorer's retention screens: a stream's policy, the dry run, compactions by hand.

The views only parse input and call ``continust.retention`` and ``continust.retention.compaction``;
a worker does the compacting. While a compaction is pending or running, the page
polls its history fragment, which answers 286 (stop polling) once none is active.
This module also holds the screens' URL patterns, which ``explorer.urls`` includes.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from continust.core.errors import ContinustError
from continust.log.policy import Policy, format_age, make_policy, policy_of
from continust.models import Compaction, Membership, Retention, Role, Stream
from continust.retention import compaction
from continust.retention.policies import set_policy
from explorer.access import HtmxHttpRequest, actor_of, member_required
from explorer.confirm import confirmation, confirmed

HISTORY_LIMIT = 50


class RetentionForm(forms.Form):
    """A policy as the page asks for it; ``make_policy`` decides what is valid."""

    kind = forms.ChoiceField(choices=Retention.choices, widget=forms.RadioSelect, label="policy")
    snapshot_every = forms.CharField(
        required=False,
        max_length=20,
        label="snapshot every",
        help_text="selective: store a state every this many versions (at least 2)",
    )
    horizon_versions = forms.CharField(
        required=False,
        max_length=20,
        label="keep the newest",
        help_text="ephemeral: this many versions are never released",
    )
    horizon_age = forms.CharField(
        required=False,
        max_length=20,
        label="keep versions younger than",
        help_text="ephemeral: an age such as 30d, 12h or 2w",
    )

    policy: Policy

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "kind" in data:
            try:
                self.policy = make_policy(
                    data["kind"],
                    snapshot_every=data.get("snapshot_every"),
                    horizon_versions=data.get("horizon_versions"),
                    horizon_age=data.get("horizon_age"),
                )
            except ContinustError as err:
                message = str(err)
                named = [n for n in ("snapshot_every", "horizon_versions") if message.startswith(n)]
                if not named:
                    raise forms.ValidationError(message) from err
                # The setting's name as the API spells it, said as this form labels it.
                field = named[0]
                self.add_error(field, f"{self.fields[field].label}{message[len(field) :]}")
        return data

    @classmethod
    def of(cls, policy: Policy) -> RetentionForm:
        return cls(
            initial={
                "kind": policy.kind,
                "snapshot_every": policy.snapshot_every,
                "horizon_versions": policy.horizon_versions or "",
                "horizon_age": format_age(policy.horizon_age) or "",
            }
        )


def history_context(stream: Stream) -> dict[str, Any]:
    """The compaction history a stream's pages show, newest first."""
    history = Compaction.objects.filter(stream=stream).order_by("-id")[:HISTORY_LIMIT]
    rows = list(history)
    return {
        "compactions": rows,
        "compacting": any(c.status in compaction.ACTIVE for c in rows),
        "last_done": next((c for c in rows if c.bytes_after is not None), None),
    }


def _context(
    membership: Membership, stream: Stream, form: RetentionForm | None = None, **extra: Any
) -> dict[str, Any]:
    policy = policy_of(stream)
    return {
        "membership": membership,
        "project": membership.project,
        "stream": stream,
        "policy": policy,
        "form": form or RetentionForm.of(policy),
        "can_admin": membership.allows(Role.ADMIN),
        **history_context(stream),
        **extra,
    }


@require_GET
@member_required()
def retention_page(
    request: HtmxHttpRequest, membership: Membership, stream: Stream
) -> HttpResponse:
    context = _context(membership, stream)
    if request.htmx and request.GET.get("fragment") == "history":
        fragment = render_to_string("retention.html#history", context, request)
        return (
            HttpResponse(fragment) if context["compacting"] else HttpResponseStopPolling(fragment)
        )
    return render(request, "retention.html", context)


@require_POST
@member_required(Role.ADMIN)
def retention_policy(request: HttpRequest, membership: Membership, stream: Stream) -> HttpResponse:
    form = RetentionForm(request.POST)
    if form.is_valid():
        try:
            set_policy(stream, form.policy, actor=actor_of(request))
        except ContinustError as err:
            form.add_error(None, str(err))
        else:
            messages.success(request, f"Retention is now {form.policy.describe()}.")
            return redirect(reverse("retention", args=[membership.project.slug, stream.pk]))
    return render(request, "retention.html", _context(membership, stream, form), status=400)


@require_GET
@member_required()
def compaction_plan(
    request: HtmxHttpRequest, membership: Membership, stream: Stream
) -> HttpResponse:
    try:
        dry_run = compaction.plan(stream).as_dict()
    except ContinustError as err:
        dry_run, problem = None, str(err)
    else:
        problem = ""
    context = _context(membership, stream, dry_run=dry_run, problem=problem)
    template = "retention.html#plan" if request.htmx else "retention.html"
    return render(request, template, context)


def compaction_facts(dry_run: compaction.Plan) -> list[str]:
    """What a compaction now will do, as its confirmation says it."""
    facts = [
        f"compacts {dry_run.stream.name} under {dry_run.policy.describe()}",
        f"releases {dry_run.versions_released:,} version(s) in {len(dry_run.runs):,} run(s): "
        "their payloads and states are gone for good",
        f"about {filesizeformat(dry_run.bytes_released)} ({dry_run.bytes_released:,} bytes) "
        "released",
        f"drops {len(dry_run.drops):,} stored state(s) (they stay recomputable) and stores "
        f"{len(dry_run.snapshots):,} snapshot(s)",
    ]
    if dry_run.uncounted:
        facts.append(dry_run.uncounted)
    facts.append("versions appended before it runs are considered too")
    return facts


@require_http_methods(["GET", "POST"])
@member_required(Role.ADMIN)
def compaction_start(
    request: HtmxHttpRequest, membership: Membership, stream: Stream
) -> HttpResponse:
    back = reverse("retention", args=[membership.project.slug, stream.pk])
    if not confirmed(request):
        try:
            facts, problem = compaction_facts(compaction.plan(stream)), ""
        except ContinustError as err:
            facts, problem = [], str(err)
        return confirmation(
            request,
            membership,
            title=f"Compact {stream.name} now?",
            facts=facts,
            action="Compact now",
            back=back,
            problem=problem,
        )
    try:
        job = compaction.request(stream, actor=actor_of(request))
    except ContinustError as err:
        messages.error(request, str(err))
    else:
        messages.success(request, f"Compaction {job.pk} is {job.status}; this page follows it.")
    return redirect(reverse("retention", args=[membership.project.slug, stream.pk]))


STREAM = "p/<slug:slug>/s/<int:stream_id>/retention/"

urlpatterns = [
    path(STREAM, retention_page, name="retention"),
    path(STREAM + "policy/", retention_policy, name="retention-policy"),
    path(STREAM + "plan/", compaction_plan, name="compaction-plan"),
    path(STREAM + "compact/", compaction_start, name="compaction-start"),
]
