"""The explorer's view of a project's whole log ("All events"), its live feed, and a
stream's time slider (a branch as of a moment).

The All events page reads ``continust.read.project_log`` a page at a time, after a log
position (``?after=``), with the filters of a stream's page (stream, event type prefix,
actor, since, until). When it has caught up, ``static/feed.js`` follows the page's feed
(server-sent events, ``continust.read.feed``) and adds each new matching event as it
settles; a stream's page follows its stream's feed the same way to show new versions at
once. The slider asks ``as-of/`` which version a branch pointed at as of a moment, on the
clock chosen (recorded or event time), and highlights it; without JavaScript its form
opens that version.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast
from urllib.parse import urlencode

from django import forms
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from continust.core.errors import InvalidName
from continust.core.parsing import NAME_MAX
from continust.models import Membership, Stream
from continust.read.as_of import AsOf, Clock, head_as_of
from continust.read.feed import (
    Feed,
    FeedLimits,
    TooManyFeeds,
    open_feed,
    settled_end,
)
from continust.read.project_log import LogFilter, LogPosition, read_log
from explorer.access import HtmxHttpRequest, member_required
from explorer.errors import error_page

PAGE = 100


class LogFilterForm(forms.Form):
    """The All events filters: those of a stream's page, with the stream to show."""

    stream = forms.CharField(
        required=False,
        max_length=NAME_MAX,
        widget=forms.TextInput(attrs={"list": "stream-choices"}),
    )
    type = forms.CharField(required=False, max_length=200, label="event type")
    actor = forms.CharField(required=False, max_length=200)
    since = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    until = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    after = forms.CharField(required=False, max_length=60, widget=forms.HiddenInput)

    def __init__(self, project: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project = project

    def clean_stream(self) -> str:
        name: str = self.cleaned_data["stream"].strip()
        if name and not Stream.objects.filter(project=self.project, name=name).exists():
            raise forms.ValidationError(f"this project has no stream “{name}”")
        return name

    def clean_after(self) -> LogPosition:
        text: str = self.cleaned_data["after"].strip() or "0"
        try:
            return LogPosition.parse(text)
        except InvalidName as err:
            raise forms.ValidationError(str(err)) from err

    def where(self) -> LogFilter:
        data = self.cleaned_data
        return LogFilter(
            stream=data["stream"],
            type_prefix=data["type"],
            actor=data["actor"],
            since=data["since"],
            until=data["until"],
        )


def _errors(form: forms.Form) -> str:
    """A form's errors in one sentence, each after its field's label (``as of: this field
    is required; clock: …``)."""
    parts = []
    for name, errors in form.errors.items():
        field = form.fields.get(name)
        label = (field.label or name) if field is not None else ""
        text = " ".join(str(e).rstrip(".") for e in errors)
        text = text[:1].lower() + text[1:] if label else text
        parts.append(f"{label}: {text}" if label else text)
    return "; ".join(parts) + "."


def _filter_query(form: LogFilterForm, **extra: str) -> str:
    """The page's filters as a query string (for the next page and the feed)."""
    values = {k: form.data.get(k, "") for k in ("stream", "type", "actor", "since", "until")}
    return urlencode({k: v for k, v in {**values, **extra}.items() if v})


@require_GET
@member_required()
def all_events(request: HtmxHttpRequest, membership: Membership) -> HttpResponse:
    """Every event of the project in log order, a page after a log position, filtered."""
    project = membership.project
    form = LogFilterForm(project, request.GET)
    context: dict[str, Any] = {
        "membership": membership,
        "project": project,
        "form": form,
        "streams": Stream.objects.filter(project=project).order_by("name"),
    }
    if not form.is_valid():
        context["rows"] = []
        return render(request, "log.html", context, status=400)
    after = form.cleaned_data["after"]
    page = read_log(project, after, limit=PAGE, where=form.where())
    stream_ids = {e.event.stream.name: e.event.stream_id for e in page.entries}
    context.update(
        rows=[
            {"at": str(e.at), "event": e.event, "stream_id": stream_ids[e.event.stream.name]}
            for e in page.entries
        ],
        after=str(after),
        next=str(page.next),
        caught_up=page.caught_up,
        next_query=_filter_query(form, after=str(page.next)),
        first_query=_filter_query(form),
        feed=reverse("project-log-feed", args=[project.slug])
        + "?"
        + _filter_query(form, after=str(page.next)),
        filtered=any(form.cleaned_data[k] for k in ("stream", "type", "actor", "since", "until")),
    )
    return render(request, "log.html", context)


@require_GET
@member_required()
def log_feed(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The page's live feed: server-sent events of the project's log after ``?after=`` (or
    ``Last-Event-ID``), filtered as the page is; capped per user as per API token."""
    project = membership.project
    form = LogFilterForm(project, request.GET)
    if not form.is_valid():
        return error_page(request, 400, _errors(form))
    after = form.cleaned_data["after"]
    resume = request.headers.get("Last-Event-ID")
    if resume:
        after = LogPosition.parse(resume)
    limits = FeedLimits.from_settings()
    try:
        lease = open_feed(f"user:{request.user.pk}", limits)
    except TooManyFeeds as err:
        return error_page(request, 429, str(err))
    response = StreamingHttpResponse(
        Feed(project, after, form.where(), limits, lease), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"
    return cast(HttpResponse, response)  # member_required passes any response through


def stream_feed_url(stream: Stream) -> str:
    """Where a stream's page follows its new events: the project's feed, this stream only,
    from the end of what has settled now."""
    query = urlencode({"stream": stream.name, "after": str(settled_end(stream.project))})
    return reverse("project-log-feed", args=[stream.project.slug]) + "?" + query


class AsOfForm(forms.Form):
    """The time slider: a moment, its clock, and the branch."""

    at = forms.DateTimeField(
        label="as of", widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"})
    )
    clock = forms.ChoiceField(
        choices=[
            (Clock.RECORDED.value, "recorded time (when the log recorded it)"),
            (Clock.EVENT.value, "event time (the event's timestamp)"),
        ],
        initial=Clock.RECORDED.value,
    )
    branch = forms.CharField(max_length=NAME_MAX, initial="main")


@require_GET
@member_required()
def as_of(request: HttpRequest, membership: Membership, stream: Stream) -> HttpResponse:
    """Which version a branch pointed at as of a moment: JSON for the slider (``?format=
    json``), else the stream page with that version open."""
    form = AsOfForm(request.GET)
    wants_json = request.GET.get("format") == "json"
    if not form.is_valid():
        message = _errors(form)
        if wants_json:
            return JsonResponse({"error": message}, status=400)
        return error_page(request, 400, message)
    data = form.cleaned_data
    moment: datetime = data["at"]
    when = AsOf(moment=moment, clock=Clock(data["clock"]))
    version = head_as_of(stream, data["branch"], when)
    described = f"{data['branch']} as of {when.describe()}"
    if wants_json:
        return JsonResponse(
            {
                "version": version.pk if version is not None else None,
                "label": f"{described}: v{version.pk}"
                if version
                else f"{described}: no version yet",
            }
        )
    if version is None:
        return error_page(request, 404, f"{described}: the branch had no version yet")
    return redirect(reverse("stream", args=[stream.project.slug, stream.pk]) + f"?v={version.pk}")


def stream_page_context(stream: Stream, branch: str) -> dict[str, Any]:
    """What a stream's page needs to tail live and to show its time slider."""
    return {
        "live_feed": stream_feed_url(stream),
        "as_of_form": AsOfForm(initial={"branch": branch, "clock": Clock.RECORDED.value}),
        "slider": slider_bounds(stream),
    }


def slider_bounds(stream: Stream) -> dict[str, str]:
    """The slider's range: from the stream's first version to now, as datetime-local text."""
    first = stream.versions.order_by("id").values_list("created_at", flat=True).first()
    now = timezone.now()
    start = first or now
    return {
        "min": timezone.localtime(start).strftime("%Y-%m-%dT%H:%M:%S"),
        "max": timezone.localtime(now).strftime("%Y-%m-%dT%H:%M:%S"),
        "min_ms": str(int(start.timestamp() * 1000)),
        "max_ms": str(int(now.timestamp() * 1000) + 1),
    }


urlpatterns = [
    path("p/<slug:slug>/events/", all_events, name="project-log"),
    path("p/<slug:slug>/events/feed/", log_feed, name="project-log-feed"),
    path("p/<slug:slug>/s/<int:stream_id>/as-of/", as_of, name="stream-as-of"),
]
