"""The explorer's replay screens: start a replay, watch its progress, cancel, promote, discard.

The views only parse input and call ``continust.replays``; the worker does the
replaying. The replay page polls its own progress fragment every second and the
fragment answers 286 (stop polling) once the replay has finished. This module
also holds the screens' URL patterns, which ``explorer.urls`` includes.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from continust.core.errors import ContinustError
from continust.documents import diff as diffs
from continust.log.reducers import registered
from continust.models import Branch, Membership, Replay, ReplayStatus, Role, Stream
from continust.replays import replay as replays
from explorer.access import HtmxHttpRequest, actor_of, member_required
from explorer.confirm import confirmation, confirmed

DIFF_LIMIT = 500


class ReplayForm(forms.Form):
    start = forms.CharField(
        max_length=200,
        initial=replays.ROOT,
        label="from",
        help_text="a version id, key or branch; root to start from the beginning",
    )
    end = forms.CharField(
        max_length=200, initial="main", label="up to", help_text="a version id, key or branch"
    )
    skip_types = forms.CharField(
        required=False,
        max_length=2000,
        label="skip event types",
        help_text="separated by commas or spaces; the stream's types are offered",
        widget=forms.TextInput(attrs={"list": "event-types", "autocomplete": "off"}),
    )
    unknown_types_ok = forms.BooleanField(
        required=False,
        label="skip them anyway",
        help_text="start even though no event of the stream has some of the types to skip",
    )
    skip_events = forms.CharField(
        required=False,
        max_length=20000,
        label="skip event ids",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="UUIDs separated by commas or spaces",
    )
    until = forms.DateTimeField(
        required=False,
        label="stop after (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    reducer_version = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, label="reducer version"
    )
    upcast = forms.BooleanField(
        required=False,
        label="upcast",
        help_text="fold each event in its type's newest registered shape, to see what the "
        "project's schema changes would have changed before promoting",
    )

    def __init__(self, *args: Any, stream: Stream, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stream = stream
        versions = [r.version for r in registered() if r.name == stream.reducer]
        field = self.fields["reducer_version"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [("", "as recorded")] + [(v, f"{stream.reducer}@{v}") for v in versions]

    @staticmethod
    def words(text: str) -> list[str]:
        return [word for word in re.split(r"[\s,]+", text) if word]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        unknown = replays.unknown_types(self.stream, self.words(data.get("skip_types") or ""))
        if unknown and not data.get("unknown_types_ok"):
            self.add_error(
                "skip_types",
                "no event of this stream has the type "
                + ", ".join(repr(t) for t in unknown)
                + ": a typo? Pick from the offered types, or tick “skip them anyway”.",
            )
        return data


def _progress_context(replay: Replay, membership: Membership) -> dict[str, Any]:
    context: dict[str, Any] = {
        "replay": replay,
        "progress": replays.progress(replay),
        "can_edit": membership.allows(Role.EDITOR),
        "can_admin": membership.allows(Role.ADMIN),
        "shadow": Branch.objects.filter(
            stream_id=replay.stream_id, name=replay.shadow_branch
        ).first(),
    }
    if replay.status == ReplayStatus.DONE and replay.shadow_head_id is not None:
        changes = replays.shadow_diff(replay)
        context["changes"] = [_change_row(c) for c in changes[:DIFF_LIMIT]]
        context["change_count"] = len(changes)
    return context


def _change_row(change: diffs.Change) -> dict[str, Any]:
    def text(value: Any) -> str:
        if value is diffs.MISSING:
            return ""
        return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True)

    return {
        "path": change.path,
        "op": change.op,
        "old": text(change.old),
        "new": text(change.new),
        "from_path": change.from_path,
    }


def _replay_of(stream: Stream, replay_id: int) -> Replay:
    replay = Replay.objects.filter(stream=stream, pk=replay_id).first()
    if replay is None:
        raise Http404("No such replay.")
    return replay


def _list_context(membership: Membership, stream: Stream, form: ReplayForm) -> dict[str, Any]:
    rows = [
        (replay, replays.progress(replay))
        for replay in replays.replays_of(membership.project, stream)[:200]
    ]
    return {
        "membership": membership,
        "project": membership.project,
        "stream": stream,
        "rows": rows,
        "form": form,
        "can_edit": membership.allows(Role.EDITOR),
        "can_admin": membership.allows(Role.ADMIN),
        "running": any(not p.finished for _, p in rows),
        "event_types": replays.event_types(stream) if membership.allows(Role.EDITOR) else [],
    }


@require_GET
@member_required()
def replay_list(request: HtmxHttpRequest, membership: Membership, stream: Stream) -> HttpResponse:
    initial = {k: request.GET[k] for k in ("start", "end") if request.GET.get(k)}
    if "start" not in initial:
        # The root, unless retention released the oldest versions: then what will work.
        initial["start"] = replays.default_start(stream, initial.get("end", "main"))
    form = ReplayForm(initial=initial, stream=stream)
    context = _list_context(membership, stream, form)
    template = "replays.html#list" if request.htmx else "replays.html"
    return render(request, template, context)


@require_POST
@member_required(Role.EDITOR)
def replay_start(request: HttpRequest, membership: Membership, stream: Stream) -> HttpResponse:
    form = ReplayForm(request.POST, stream=stream)
    if form.is_valid():
        data = form.cleaned_data
        try:
            replay = replays.start_replay(
                stream,
                start=data["start"],
                end=data["end"],
                skip_types=form.words(data["skip_types"]),
                skip_events=form.words(data["skip_events"]),
                until=data["until"],
                reducer_version=data["reducer_version"],
                upcast=data["upcast"],
                actor=actor_of(request),
            )
        except ContinustError as err:
            form.add_error(None, str(err))
        else:
            return redirect(reverse("replay", args=[membership.project.slug, stream.pk, replay.pk]))
    return render(request, "replays.html", _list_context(membership, stream, form), status=400)


@require_GET
@member_required()
def replay_detail(
    request: HtmxHttpRequest, membership: Membership, stream: Stream, replay_id: int
) -> HttpResponse:
    replay = _replay_of(stream, replay_id)
    context = {
        "membership": membership,
        "project": membership.project,
        "stream": stream,
        **_progress_context(replay, membership),
    }
    if request.htmx:
        fragment = render_to_string("replay.html#progress", context, request)
        return HttpResponseStopPolling(fragment) if replay.finished else HttpResponse(fragment)
    return render(request, "replay.html", context)


def _back(membership: Membership, stream: Stream, replay: Replay) -> str:
    return reverse("replay", args=[membership.project.slug, stream.pk, replay.pk])


@require_http_methods(["GET", "POST"])
@member_required(Role.EDITOR)
def replay_cancel(
    request: HtmxHttpRequest, membership: Membership, stream: Stream, replay_id: int
) -> HttpResponse:
    replay = _replay_of(stream, replay_id)
    back = _back(membership, stream, replay)
    if not confirmed(request):
        return confirmation(
            request,
            membership,
            title=f"Cancel replay {replay.pk}?",
            facts=[
                f"stops replay {replay.pk} at its next commit: {replay.done:,} of "
                f"{replay.total:,} versions done; a cancelled replay cannot be resumed",
                f"what it wrote stays on branch {replay.shadow_branch} until an admin discards it",
            ],
            action="Cancel the replay",
            back=back,
            problem="" if not replay.finished else f"replay {replay.pk} is already {replay.status}",
        )
    try:
        replays.cancel(replay, actor=actor_of(request))
    except ContinustError as err:
        messages.error(request, str(err))
    else:
        messages.success(request, f"Cancel requested for replay {replay.pk}.")
    return redirect(back)


def promote_facts(replay: Replay) -> list[str]:
    """What promoting a replay will do, as its confirmation says it."""
    head = Branch.objects.filter(stream_id=replay.stream_id, name=replay.branch).first()
    changes = len(replays.shadow_diff(replay))
    now = f"v{head.head_id}" if head is not None else "nothing"
    return [
        f"moves branch {replay.branch} from {now} to a new promote version whose parents are "
        f"the shadow head v{replay.shadow_head_id} and v{head.head_id if head else '?'}",
        f"{replay.branch}'s state becomes the replay's: {changes:,} change(s) from "
        f"v{replay.end_id}",
        "the old versions stay in the branch's history (lineage, merge bases, reviews and "
        "blame stay connected); the move is recorded and cannot be undone",
    ]


@require_http_methods(["GET", "POST"])
@member_required(Role.EDITOR)
def replay_promote(
    request: HtmxHttpRequest, membership: Membership, stream: Stream, replay_id: int
) -> HttpResponse:
    replay = _replay_of(stream, replay_id)
    back = _back(membership, stream, replay)
    if not confirmed(request):
        problem = ""
        if replay.status != ReplayStatus.DONE or replay.shadow_head_id is None:
            problem = f"replay {replay.pk} is {replay.status}; only a done replay can be promoted"
        elif not replay.branch or replay.promoted_at or replay.discarded_at:
            problem = f"replay {replay.pk} cannot be promoted"
        return confirmation(
            request,
            membership,
            title=f"Promote replay {replay.pk} onto {replay.branch or 'its branch'}?",
            facts=[] if problem else promote_facts(replay),
            action=f"Promote: move {replay.branch}",
            back=back,
            problem=problem,
        )
    try:
        branch = replays.promote(replay, actor=actor_of(request))
    except ContinustError as err:
        messages.error(request, str(err))
    else:
        messages.success(
            request, f"Promoted: {branch.name} now points at version {branch.head_id}."
        )
    return redirect(back)


@require_http_methods(["GET", "POST"])
@member_required(Role.ADMIN)
def replay_discard(
    request: HtmxHttpRequest, membership: Membership, stream: Stream, replay_id: int
) -> HttpResponse:
    replay = _replay_of(stream, replay_id)
    back = _back(membership, stream, replay)
    if not confirmed(request):
        try:
            preview = replays.discard_preview(replay)
        except ContinustError as err:
            facts, problem = [], str(err)
        else:
            facts, problem = [preview.line(), "the discard is recorded in the audit trail"], ""
        return confirmation(
            request,
            membership,
            title=f"Discard replay {replay.pk}'s shadow branch?",
            facts=facts,
            action=f"Discard {replay.shadow_branch}",
            back=back,
            problem=problem,
        )
    try:
        done = replays.discard(replay, actor=actor_of(request))
    except ContinustError as err:
        messages.error(request, str(err))
    else:
        messages.success(request, done.done())
    return redirect(back)


urlpatterns = [
    path("p/<slug:slug>/s/<int:stream_id>/replays/", replay_list, name="replays"),
    path("p/<slug:slug>/s/<int:stream_id>/replays/start/", replay_start, name="replay-start"),
    path("p/<slug:slug>/s/<int:stream_id>/replays/<int:replay_id>/", replay_detail, name="replay"),
    path(
        "p/<slug:slug>/s/<int:stream_id>/replays/<int:replay_id>/cancel/",
        replay_cancel,
        name="replay-cancel",
    ),
    path(
        "p/<slug:slug>/s/<int:stream_id>/replays/<int:replay_id>/promote/",
        replay_promote,
        name="replay-promote",
    ),
    path(
        "p/<slug:slug>/s/<int:stream_id>/replays/<int:replay_id>/discard/",
        replay_discard,
        name="replay-discard",
    ),
]
