"""The explorer's views: parse input, call one domain function, render a page or a fragment.

Every project view goes through ``member_required``; one template per screen holds
its htmx fragments as inline partials.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import replace
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from continust.core.errors import (
    ContinustError,
    MergeConflict,
    NotFound,
    NothingToMerge,
    StateReleased,
)
from continust.core.parsing import parse_number, parse_search
from continust.documents import diff as diffs
from continust.graph.cache import graph_for
from continust.graph.causation import causes, consequences, flatten
from continust.log.lookup import find_version, resolve_range, resolve_version
from continust.log.policy import policy_of
from continust.log.states import is_released
from continust.log.store import fork, merge, plan_merge
from continust.log.subjects import Revealer, readable_state, reveal
from continust.models import Branch, Event, Membership, Role, Stream, Tag, Version
from continust.projections import control as projections
from continust.read.timeline import filter_choices, newest_id
from continust.read.versions import read_version, with_first_versions
from continust.schemas.registry import registry_of
from continust.schemas.upcasting import upcast_payload
from explorer import log
from explorer.access import AuthenticatedHttpRequest, HtmxHttpRequest, actor_of, member_required
from explorer.causality import causation_graph
from explorer.errors import error_page
from explorer.forms import FilterForm, ForkForm, MergeForm
from explorer.jsontree import json_tree
from explorer.layout import EDGE_KINDS
from explorer.retention import history_context
from explorer.timeline import PALETTE, Filters, Page, build_page, link_rows, opening_before

BETWEEN_LIMIT = 200


@require_GET
@login_required
def home(request: AuthenticatedHttpRequest) -> HttpResponse:
    memberships = Membership.objects.filter(user=request.user).select_related("project")
    return render(request, "home.html", {"memberships": memberships.order_by("project__slug")})


@require_GET
@member_required()
def project(request: HtmxHttpRequest, membership: Membership) -> HttpResponse:
    query = parse_search(request.GET.get("q", ""))
    streams = Stream.objects.filter(project=membership.project).order_by("name")
    if query:
        streams = streams.filter(Q(name__icontains=query) | Q(reducer__icontains=query))
    template = "project.html#stream-list" if request.htmx else "project.html"
    return render(
        request,
        template,
        {
            "membership": membership,
            "project": membership.project,
            "streams": streams[:200],
            "query": query,
            "activity": None if request.htmx else projections.activity(membership.project),
        },
    )


def _filters(request: HttpRequest) -> tuple[FilterForm, Filters]:
    form = FilterForm(request.GET)
    if not form.is_valid():
        return form, Filters()
    data = form.cleaned_data
    return form, Filters(data["branch"], data["type"], data["actor"], data["since"], data["until"])


def _int(request: HttpRequest, name: str) -> int | None:
    """Return the number a query parameter holds; none when left out or empty."""
    value = request.GET.get(name)
    return parse_number(value, f"?{name}=") if value else None


def _picked(
    stream: Stream,
    request: HttpRequest,
    name: str,
    missing: str = "stream {stream} has no version {id}",
) -> Version | None:
    """The version the query parameter ``name`` names; none when it names none. A number
    that is no version of this stream is a NotFound (a 404 page), said as ``missing``;
    any other text is a revision (``main~3``, ``v12^2``, a tag), and one that does not
    resolve a BadRevision (a 422 page naming what did not)."""
    value = request.GET.get(name, "")
    if value and not value.strip().isdigit():
        return resolve_version(stream, value)
    number = _int(request, name)
    if number is None:
        return None
    found = (
        Version.objects.filter(stream=stream, pk=number)
        .select_related("event")
        .defer("event__payload")
        .first()
    )
    if found is None:
        raise NotFound(missing.format(stream=stream.name, id=number))
    return found


@require_GET
@member_required()
def stream_page(request: HtmxHttpRequest, membership: Membership, stream: Stream) -> HttpResponse:
    """The stream's timeline; with htmx, one of its fragments: an older ``page``, the
    ``compare`` bar, or the ``tail`` (the newest page, when versions arrived after
    ``after``; 204 when none did)."""
    form, filters = _filters(request)
    fragment = request.GET.get("fragment") if request.htmx else None
    before = _int(request, "before")
    context: dict[str, Any] = {
        "membership": membership,
        "project": membership.project,
        "stream": stream,
        "filter_form": form,
        "filters": filters,
        "a": _picked(stream, request, "a"),
        "b": _picked(stream, request, "b"),
    }
    selected = _picked(stream, request, "v")
    _released_picks(context)
    if fragment == "compare":
        return render(request, "stream.html#compare-bar", context)
    after = _int(request, "after")
    if fragment == "tail":
        newest = newest_id(stream)
        if newest is None or (after is not None and newest <= after):
            return HttpResponse(status=204)
        before = None
    if selected is not None and before is None and not filters.active and fragment is None:
        before = opening_before(stream, selected)
    if form.errors:  # bad filters show what is wrong, and no versions
        total = Version.objects.filter(stream=stream).count()
        page = Page([], None, 0, 0, None, total, filtered=True)
    else:
        page = build_page(
            stream, before=before, filters=filters, previous_day=request.GET.get("day")
        )
    if fragment == "tail" and after is not None and (page.newest or 0) <= after:
        return HttpResponse(status=204)  # newer versions wait to be placed; none drawn yet
    link_rows(
        page,
        stream_url=reverse("stream", args=[membership.project.slug, stream.pk]),
        params=request.GET.dict(),
    )
    context.update(page=page, selected=selected)
    if fragment in {"page", "tail"}:
        return render(request, "stream.html#page", context)
    types, actors = filter_choices(stream)
    branches = sorted(
        Branch.objects.filter(stream=stream).select_related("head"),
        key=lambda branch: _natural(branch.name),
    )
    names = [branch.name for branch in branches]
    # Time travel starts on main, or on the stream's first branch where there is no main
    # (a git import's master).
    travel = filters.branch or ("main" if "main" in names or not names else names[0])
    context.update(
        branches=branches,
        can_edit=membership.allows(Role.EDITOR),
        type_choices=types,
        actor_choices=actors,
        edge_kinds=EDGE_KINDS,
        palette=range(PALETTE),
        policy=policy_of(stream),
        **history_context(stream),
        **log.stream_page_context(stream, travel),
    )
    if selected is not None:
        context.update(_version_context(stream, selected))
    return render(request, "stream.html", context)


def _natural(name: str) -> list[tuple[int, int | str]]:
    """Sort key that puts round-5 before round-45, as people count."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name)]


def _released_picks(context: dict[str, Any]) -> None:
    """Name the picked versions whose states compaction released: they cannot be compared."""
    context["released_picks"] = [
        context[name].pk
        for name in ("a", "b")
        if context[name] is not None and is_released(context[name])
    ]


def _version_context(stream: Stream, version: Version | int) -> dict[str, Any]:
    read = read_version(stream, version)
    # Upcasters run on the payload as stored (personal values sealed), then it is revealed.
    stored = read.version.event.payload
    upcast = None
    if stored is not None:
        found = upcast_payload(
            registry_of(stream.project), read.event.type, stored, read.event.position
        )
        revealer = Revealer(stream.project_id)
        upcast = replace(
            found, stored=revealer.reveal(found.stored), payload=revealer.reveal(found.payload)
        )
    return {
        "version": read.version,
        "read": read,
        # The stream page marks the selected version's released run on the timeline.
        "released": read.released,
        "state_tree": None if read.released is not None else json_tree(read.state),
        "payload_tree": None if upcast is None else json_tree(upcast.payload),
        # An older version of the event's type: the payload as stored, and how it reads now.
        "upcast": upcast if upcast is not None and upcast.changed else None,
        "stored_payload_tree": (
            json_tree(upcast.stored) if upcast is not None and upcast.changed else None
        ),
        "tags": Tag.objects.filter(stream=stream, version_id=read.version.pk).order_by("name"),
    }


@require_GET
@member_required()
def version_detail(
    request: HtmxHttpRequest, membership: Membership, stream: Stream, version_id: int
) -> HttpResponse:
    try:
        version_context = _version_context(stream, version_id)
    except NotFound as err:
        raise Http404("No such version.") from err
    context = {
        "membership": membership,
        "project": membership.project,
        "stream": stream,
        "can_edit": membership.allows(Role.EDITOR),
        "fork_form": ForkForm(initial={"at": version_id}),
        **version_context,
    }
    template = "version.html#panel" if request.htmx else "version.html"
    return render(request, template, context)


def _gone(request: HttpRequest, err: StateReleased) -> HttpResponse:
    """Say, with 410 Gone inside the layout, that the retention policy released what was
    asked for."""
    return error_page(request, 410, str(err))


@require_GET
@member_required()
def version_state(
    request: HttpRequest, membership: Membership, stream: Stream, version_id: int
) -> HttpResponse:
    version = Version.objects.filter(stream=stream, pk=version_id).first()
    if version is None:
        raise Http404("No such version.")
    try:
        state = readable_state(version)
    except StateReleased as err:
        return _gone(request, err)
    response = JsonResponse(
        state, safe=False, json_dumps_params={"ensure_ascii": False, "indent": 2}
    )
    response["Content-Disposition"] = f'attachment; filename="{stream.pk}-v{version.pk}.json"'
    return response


@require_GET
@member_required()
def compare(request: HttpRequest, membership: Membership, stream: Stream) -> HttpResponse:
    missing = "Stream {stream} has no version {id} to compare."
    a, b = _picked(stream, request, "a", missing), _picked(stream, request, "b", missing)
    if a is None or b is None:
        raise Http404("Pick two versions of this stream to compare.")
    try:
        before, after = readable_state(a), readable_state(b)
    except StateReleased as err:
        return _gone(request, err)
    fmt = request.GET.get("format")
    if fmt in {"json-patch", "merge-patch"}:
        try:
            body = (
                diffs.to_json_patch(before, after)
                if fmt == "json-patch"
                else diffs.merge_patch(before, after)
            )
        except diffs.NullNotExpressible as err:
            return error_page(request, 422, f"v{b.pk} cannot be reached from v{a.pk} by {err}.")
        response = JsonResponse(body, safe=False, json_dumps_params={"indent": 2})
        response["Content-Disposition"] = f'attachment; filename="v{a.pk}-v{b.pk}.{fmt}.json"'
        return response
    graph = graph_for(stream)
    between = graph.between(a.pk, b.pk)
    shown = (
        Version.objects.filter(pk__in=between[:BETWEEN_LIMIT])
        .select_related("event")
        .defer("event__payload")
        .order_by("-id")
    )
    changes = diffs.diff(before, after)
    return render(
        request,
        "compare.html",
        {
            "membership": membership,
            "project": membership.project,
            "stream": stream,
            "a": a,
            "b": b,
            "changes": [_change_row(c) for c in changes],
            "bases": Version.objects.filter(pk__in=graph.merge_bases(a.pk, b.pk))
            .select_related("event")
            .defer("event__payload"),
            "between": shown,
            "between_count": len(between),
        },
    )


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


@require_GET
@member_required()
def causation(request: HttpRequest, membership: Membership, event_id: uuid.UUID) -> HttpResponse:
    event = (
        Event.objects.select_related("stream")
        .filter(id=event_id, stream__project=membership.project)
        .first()
    )
    if event is None:
        raise Http404("No such event.")
    chain = causes(event)
    tree = flatten(consequences(event))
    graph = causation_graph(event, chain, tree)
    return render(
        request,
        "causation.html",
        {
            "membership": membership,
            "project": membership.project,
            "event": event,
            "graph": graph,
            "causes": with_first_versions(chain),
            "consequences": [
                (depth, e, v)
                for (depth, e), (_, v) in zip(
                    tree[1:], with_first_versions([e for _, e in tree[1:]]), strict=True
                )
            ],
        },
    )


@require_GET
@member_required()
def jump(request: HttpRequest, membership: Membership, stream: Stream) -> HttpResponse:
    url = reverse("stream", args=[membership.project.slug, stream.pk])
    query = request.GET.get("q", "")
    try:
        if ".." in query and not Branch.objects.filter(stream=stream, name=query.strip()).exists():
            a, b = resolve_range(stream, query)
            compare_url = reverse("compare", args=[membership.project.slug, stream.pk])
            return redirect(compare_url + f"?a={a.pk}&b={b.pk}")
        target = find_version(stream, query)
    except NotFound as err:
        messages.error(request, f"{str(err)[:1].upper()}{str(err)[1:]}.")
        return redirect(url)
    return redirect(url + f"?v={target.pk}")


@require_POST
@member_required(Role.EDITOR)
def fork_branch(request: HtmxHttpRequest, membership: Membership, stream: Stream) -> HttpResponse:
    form = ForkForm(request.POST)
    url = reverse("stream", args=[membership.project.slug, stream.pk])
    if not form.is_valid():
        messages.error(request, "A fork needs a version and a branch name.")
        return redirect(url)
    at = Version.objects.filter(stream=stream, pk=form.cleaned_data["at"]).first()
    if at is None:
        raise Http404("No such version.")
    try:
        branch = fork(stream, form.cleaned_data["name"], at, actor=actor_of(request))
    except ContinustError as err:
        messages.error(request, str(err))
        return redirect(url + f"?v={at.pk}")
    messages.success(request, f"Forked {branch.name} at version {at.pk}.")
    target = url + f"?v={at.pk}"
    return HttpResponseClientRedirect(target) if request.htmx else redirect(target)


@require_http_methods(["GET", "POST"])
@member_required(Role.EDITOR)
def merge_branches(request: HttpRequest, membership: Membership, stream: Stream) -> HttpResponse:
    data = request.POST if request.method == "POST" else request.GET
    form = MergeForm(data or None)
    context: dict[str, Any] = {
        "membership": membership,
        "project": membership.project,
        "stream": stream,
        "form": form,
        "branches": Branch.objects.filter(stream=stream).order_by("name"),
    }
    if not form.is_valid():
        return render(request, "merge.html", context)
    source, into = form.cleaned_data["source"], form.cleaned_data["into"]
    try:
        heads = {
            b.name: b.head
            for b in Branch.objects.filter(stream=stream, name__in=[source, into]).select_related(
                "head"
            )
        }
        missing = [name for name in (source, into) if name not in heads]
        if missing:
            raise NotFound(
                f"stream {stream.name} has no branch {' or '.join(repr(m) for m in missing)}"
            )
        plan = plan_merge(stream, heads[into], heads[source])
    except NothingToMerge:
        form.add_error(None, f"{source} is already merged into {into}: nothing to merge.")
        return render(request, "merge.html", context)
    except ContinustError as err:
        form.add_error(None, str(err))
        return render(request, "merge.html", context, status=400)
    conflicts = [
        {
            "path": c.path,
            "field": f"resolve:{c.path}",
            "base": json.dumps(c.base if c.base is not diffs.MISSING else None),
            "ours": json.dumps(c.ours if c.ours is not diffs.MISSING else None),
            "theirs": json.dumps(c.theirs if c.theirs is not diffs.MISSING else None),
            "chosen": data.get(f"resolve:{c.path}", ""),
        }
        for c in plan.conflicts
    ]
    context.update(
        plan=plan,
        conflicts=conflicts,
        preview=[
            _change_row(c)
            for c in diffs.diff(readable_state(heads[into]), reveal(stream.project_id, plan.state))
        ],
    )
    if request.method == "GET" or data.get("confirm") != "yes":
        return render(request, "merge.html", context)
    resolutions = {}
    for conflict in conflicts:
        raw = data.get(conflict["field"], "")
        try:
            resolutions[conflict["path"]] = json.loads(raw)
        except json.JSONDecodeError:
            form.add_error(None, f"Choose or type valid JSON for {conflict['path']}.")
            return render(request, "merge.html", context)
    try:
        version = merge(
            stream,
            source,
            into,
            actor=actor_of(request),
            resolutions=resolutions,
            expected_head=heads[into].pk,
        )
    except MergeConflict as err:
        form.add_error(None, str(err))
        return render(request, "merge.html", context)
    except ContinustError as err:
        form.add_error(None, str(err))
        return render(request, "merge.html", context)
    messages.success(request, f"Merged {source} into {into}: version {version.pk}.")
    return redirect(
        reverse("stream", args=[membership.project.slug, stream.pk]) + f"?v={version.pk}"
    )
