"""The explorer's pipeline screens: list and start a project's pipelines (from a definition
or a spec), watch one, control it, delete it.

The views parse input and call ``continust.pipelines.control``; a Celery worker runs
the pipeline. A pipeline's page polls its live fragment every two seconds while the
pipeline is enabled or held, and draws the latest window results as a small SVG bar
chart computed here. This module also holds the screens' URL patterns, which
``explorer.urls`` includes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Max
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from continust.core.errors import ContinustError, NotFound
from continust.jobs import leases
from continust.models import Event, Membership, Pipeline, Role, WindowResult
from continust.pipelines import control, registry
from continust.pipelines.records import lag_of
from continust.pipelines.specs import InvalidSpec, Problem
from explorer.access import HtmxHttpRequest, actor_of, member_required
from explorer.confirm import confirmation, confirmed

CHART_WIDTH = 640
CHART_HEIGHT = 160
CHART_WINDOWS = 24
METRICS = ("count", "sum")
ACTIONS = {
    "start": control.start,
    "pause": control.pause,
    "resume": control.resume,
}
DONE = {"start": "Started", "resume": "Resumed", "pause": "Pause requested for"}


class PipelineForm(forms.Form):
    definition = forms.ChoiceField(label="definition")
    name = forms.SlugField(
        max_length=64, label="name", help_text="lower-case letters, digits and dashes"
    )
    params = forms.CharField(
        required=False,
        label="parameters",
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text='a JSON object overriding the defaults, e.g. {"window": {"type": "tumbling", '
        '"size_ms": 60000}}',
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["definition"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(d.name, f"{d.name}: {d.description}") for d in registry.definitions()]

    def clean_params(self) -> dict[str, Any]:
        raw = self.cleaned_data["params"].strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as err:
            raise forms.ValidationError(f"not JSON: {err.msg}") from err
        if not isinstance(value, dict):
            raise forms.ValidationError("the parameters must be a JSON object")
        return value


class SpecForm(forms.Form):
    """A pipeline defined by its spec (docs/pipelines.md, "Pipelines a user defines")."""

    form = forms.CharField(widget=forms.HiddenInput, initial="spec")
    name = forms.SlugField(
        max_length=64, label="name", help_text="lower-case letters, digits and dashes"
    )
    spec = forms.CharField(
        label="spec",
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false", "class": "spec"}),
        help_text="sources, steps (filter, map, window) and a sink (table, webhook, jsonl), "
        "as JSON",
    )
    start = forms.BooleanField(required=False, initial=True, label="start at once")

    def clean_spec(self) -> Any:
        try:
            return json.loads(self.cleaned_data["spec"])
        except json.JSONDecodeError as err:
            raise forms.ValidationError(
                f"not JSON: {err.msg} (line {err.lineno}, column {err.colno})"
            ) from err


SPEC_EXAMPLE = {
    "description": "Events per stream per hour",
    "sources": [{"name": "all"}],
    "steps": [{"window": {"type": "tumbling", "size_ms": 3_600_000, "key": "/stream"}}],
    "sink": {"jsonl": {"path": "hourly.jsonl"}},
}


def _definitions() -> list[dict[str, Any]]:
    return [
        {
            "name": d.name,
            "description": d.description,
            "defaults": json.dumps(d.defaults, sort_keys=True),
        }
        for d in registry.definitions()
    ]


def _pipeline_of(membership: Membership, name: str) -> Pipeline:
    try:
        return control.get_pipeline(membership.project, name)
    except NotFound:
        raise Http404("No such pipeline.") from None


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


UNITS = {"count": "events", "sum": "sum of values"}
# The plot sits inside the chart's box, leaving room for the axes' labels.
PLOT_LEFT, PLOT_TOP, PLOT_BOTTOM = 48, 8, 28


def _ticks(top: float, metric: str) -> list[float]:
    """Round values from 0 to ``top`` for the y axis: the middle only where it is a value
    the metric can take (a count of 1 has no half)."""
    if metric == "count" and top % 2:
        return [0, top]
    return [0, top / 2, top]


def _time_format(windows: Sequence[dict[str, Any]]) -> str:
    """How to write a window's bounds: by date for windows of a day or more, with minutes
    for an hour or more, else to the second (Django's date format)."""
    shortest = min((w["end"] - w["start"] for w in windows), default=0)
    if shortest >= 86_400_000:
        return "Y-m-d"
    if shortest >= 3_600_000:
        return "m-d H:i"
    return "H:i:s"


def _label(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) or abs(value) >= 100 else f"{value:,.2f}"


def chart(
    windows: list[dict[str, Any]], metric: str, open_windows: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """Bars for the windows' ``metric`` totals, scaled into the chart's plot, with a y axis
    in the metric's unit and an x axis in UTC time; windows still open are drawn as open
    bars (their totals so far)."""
    shown = [(w, False) for w in windows] + [(w, True) for w in open_windows]
    top = max((w[metric] for w, _ in shown), default=0) or 1
    plot_width = CHART_WIDTH - PLOT_LEFT - 4
    plot_height = CHART_HEIGHT - PLOT_TOP - PLOT_BOTTOM
    step = plot_width / max(len(shown), 1)
    base = PLOT_TOP + plot_height
    bars = []
    for index, (window, is_open) in enumerate(shown):
        height = round(window[metric] / top * plot_height, 1)
        bars.append(
            {
                "x": round(PLOT_LEFT + index * step + 1, 1),
                "width": round(max(step - 2, 1), 1),
                "y": round(base - height, 1),
                "height": height,
                "value": window[metric],
                "start": _moment(window["start"]),
                "end": _moment(window["end"]),
                "keys": window["keys"],
                "fires": window.get("fires", 0),
                "open": is_open,
            }
        )
    y_ticks = [
        {"y": round(base - value / top * plot_height, 1), "label": _label(value)}
        for value in _ticks(top, metric)
    ]
    x_ticks = []
    if bars:
        for bar in {id(b): b for b in (bars[0], bars[len(bars) // 2], bars[-1])}.values():
            x_ticks.append({"x": round(bar["x"] + bar["width"] / 2, 1), "end": bar["end"]})
    return {
        "bars": bars,
        "top": top,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "plot_left": PLOT_LEFT,
        "plot_right": PLOT_LEFT + plot_width,
        "plot_top": PLOT_TOP,
        "plot_height": plot_height,
        "base": base,
        "y_ticks": y_ticks,
        "x_ticks": x_ticks,
        "unit": UNITS.get(metric, metric),
        "time_format": _time_format([w for w, _ in shown]),
        "metric": metric,
        "open_count": len(open_windows),
        "first": bars[0] if bars else None,
        "last": bars[-1] if bars else None,
    }


def _stage_rows(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stages' figures, with the widths of their busy/idle/back-pressured bar (of 100)."""
    rows = []
    for stage in stages:
        spent = [stage.get(f"{state}_ms", 0) or 0 for state in ("busy", "backpressured", "idle")]
        total = sum(spent) or 1
        widths = [round(ms / total * 100, 1) for ms in spent]
        rows.append(
            {
                **stage,
                "bar": {
                    "busy": widths[0],
                    "backpressured": widths[1],
                    "idle": widths[2],
                    "bp_x": widths[0],
                    "idle_x": round(widths[0] + widths[1], 1),
                },
            }
        )
    return rows


def _context(request: HttpRequest, membership: Membership, pipeline: Pipeline) -> dict[str, Any]:
    metric = request.GET.get("metric", "count")
    if metric not in METRICS:
        metric = "count"
    facts = control.describe(pipeline)
    latest = WindowResult.objects.filter(pipeline=pipeline).order_by("-end", "key")[:12]
    return {
        "membership": membership,
        "project": membership.project,
        "pipeline": pipeline,
        "facts": facts,
        "stages": _stage_rows(facts["stages"]),
        "chart": chart(
            control.latest_windows(pipeline, CHART_WINDOWS),
            metric,
            control.open_windows(pipeline)[-CHART_WINDOWS // 2 :],
        ),
        "latest": [
            {
                "row": r,
                "start": _moment(r.start),
                "end": _moment(r.end),
                "values": json.dumps(r.values, sort_keys=True),
            }
            for r in latest
        ],
        "params_json": json.dumps(facts["params"], sort_keys=True),
        "spec_json": json.dumps(pipeline.spec, indent=2, ensure_ascii=False)
        if pipeline.spec is not None
        else "",
        "lag": lag_of(pipeline),
        "can_delete": membership.allows(Role.ADMIN),
        "can_edit": membership.allows(Role.EDITOR),
        "polling": pipeline.enabled or facts["live"],
        "metrics": METRICS,
    }


def _list_context(
    membership: Membership,
    form: PipelineForm | None = None,
    spec_form: SpecForm | None = None,
    problems: Sequence[Problem] = (),
) -> dict[str, Any]:
    pipelines = list(Pipeline.objects.filter(project=membership.project).order_by("name"))
    head = Event.objects.aggregate(head=Max("position"))["head"] or 0
    return {
        "membership": membership,
        "project": membership.project,
        "pipelines": [{"row": p, "lag": lag_of(p, head)} for p in pipelines],
        "definitions": _definitions(),
        "form": form or PipelineForm(),
        "spec_form": spec_form
        or SpecForm(initial={"spec": json.dumps(SPEC_EXAMPLE, indent=2), "start": True}),
        "problems": problems,
        "can_edit": membership.allows(Role.EDITOR),
    }


@require_GET
@member_required()
def pipeline_list(request: HtmxHttpRequest, membership: Membership) -> HttpResponse:
    return render(request, "pipelines.html", _list_context(membership))


def _create_from_spec(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = SpecForm(request.POST)
    problems: list[Problem] = []
    if form.is_valid():
        data = form.cleaned_data
        try:
            pipeline = control.create_from_spec(
                membership.project, data["name"], data["spec"], actor=actor_of(request)
            )
        except InvalidSpec as err:
            problems = err.problems
            form.add_error("spec", "the spec does not validate: see each path below")
        except ContinustError as err:
            form.add_error(None, str(err))
        else:
            if data["start"]:
                control.start(pipeline)
            started = "Started" if data["start"] else "Created (stopped)"
            messages.success(request, f"{started} {pipeline.name}.")
            return redirect(reverse("pipeline", args=[membership.project.slug, pipeline.name]))
    context = _list_context(membership, spec_form=form, problems=problems)
    return render(request, "pipelines.html", context, status=400)


@require_POST
@member_required(Role.EDITOR)
def pipeline_create(request: HttpRequest, membership: Membership) -> HttpResponse:
    if request.POST.get("form") == "spec":
        return _create_from_spec(request, membership)
    form = PipelineForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            pipeline = control.create_pipeline(
                membership.project,
                data["name"],
                definition=data["definition"],
                params=data["params"],
                actor=actor_of(request),
            )
        except ContinustError as err:
            form.add_error(None, str(err))
        else:
            control.start(pipeline)
            messages.success(request, f"Started {pipeline.name}: a worker picks it up.")
            return redirect(reverse("pipeline", args=[membership.project.slug, pipeline.name]))
    return render(request, "pipelines.html", _list_context(membership, form=form), status=400)


@require_GET
@member_required()
def pipeline_detail(request: HtmxHttpRequest, membership: Membership, name: str) -> HttpResponse:
    pipeline = _pipeline_of(membership, name)
    template = "pipeline.html#live" if request.htmx else "pipeline.html"
    return render(request, template, _context(request, membership, pipeline))


@require_POST
@member_required(Role.EDITOR)
def pipeline_act(
    request: HttpRequest, membership: Membership, name: str, action: str
) -> HttpResponse:
    """Start, pause or resume a pipeline (the URL names the action)."""
    pipeline = _pipeline_of(membership, name)
    try:
        ACTIONS[action](pipeline)
    except ContinustError as err:
        messages.error(request, str(err))
    else:
        messages.success(request, f"{DONE[action]} {pipeline.name}.")
    return redirect(reverse("pipeline", args=[membership.project.slug, pipeline.name]))


@require_http_methods(["GET", "POST"])
@member_required(Role.EDITOR)
def pipeline_reset(request: HtmxHttpRequest, membership: Membership, name: str) -> HttpResponse:
    """Reset a pipeline, once its confirmation page says what goes."""
    pipeline = _pipeline_of(membership, name)
    if confirmed(request):
        try:
            control.reset(pipeline)
        except ContinustError as err:
            messages.error(request, str(err))
        else:
            messages.success(request, f"Reset {pipeline.name}.")
        return redirect(reverse("pipeline", args=[membership.project.slug, pipeline.name]))
    plan = control.reset_plan(pipeline)
    facts = [
        f"empties its results: {pipeline.results:,} result(s) and "
        f"{pipeline.late_events:,} late event(s) are deleted",
        f"forgets its progress ({pipeline.events:,} event(s) read, epoch {pipeline.epoch}); "
        "it reads the log again from the beginning",
    ]
    if plan["clears"]:
        facts.insert(0, f"deletes {plan['clears']}")
    if plan["keeps"]:
        facts.append(f"leaves {plan['keeps']}")
    return confirmation(
        request,
        membership,
        title=f"Reset pipeline {pipeline.name}?",
        facts=facts,
        action=f"Reset {pipeline.name}",
        back=reverse("pipeline", args=[membership.project.slug, pipeline.name]),
    )


@require_http_methods(["GET", "POST"])
@member_required(Role.ADMIN)
def pipeline_delete(request: HtmxHttpRequest, membership: Membership, name: str) -> HttpResponse:
    """Delete a pipeline, once its confirmation page says what goes and what stays."""
    pipeline = _pipeline_of(membership, name)
    back = reverse("pipeline", args=[membership.project.slug, pipeline.name])
    if confirmed(request):
        try:
            control.delete_pipeline(pipeline)
        except ContinustError as err:
            messages.error(request, str(err))
            return redirect(back)
        messages.success(request, f"Deleted pipeline {pipeline.name}.")
        return redirect(reverse("pipelines", args=[membership.project.slug]))
    plan = control.deletion_plan(pipeline)
    facts = [
        f"deletes pipeline {plan['pipeline']} with its {plan['runs']:,} run(s), "
        f"{plan['checkpoints']:,} checkpoint(s), {plan['window_results']:,} window result(s), "
        f"{plan['late_events']:,} late event(s) and {plan['webhook_deliveries']:,} webhook "
        "delivery(ies), sent or not",
    ]
    if plan["kept"]:
        facts.append(f"keeps what it wrote: the {plan['kept']} stays as it is")
    return confirmation(
        request,
        membership,
        title=f"Delete pipeline {pipeline.name}?",
        facts=facts,
        action=f"Delete {pipeline.name}",
        back=back,
        problem=f"{pipeline.name} is running on {pipeline.worker or 'a worker'}: pause it first."
        if leases.is_live(pipeline)
        else "",
    )


urlpatterns = [
    path("p/<slug:slug>/pipelines/", pipeline_list, name="pipelines"),
    path("p/<slug:slug>/pipelines/new/", pipeline_create, name="pipeline-create"),
    path("p/<slug:slug>/pipelines/<slug:name>/", pipeline_detail, name="pipeline"),
    path(
        "p/<slug:slug>/pipelines/<slug:name>/start/",
        pipeline_act,
        {"action": "start"},
        name="pipeline-start",
    ),
    path(
        "p/<slug:slug>/pipelines/<slug:name>/pause/",
        pipeline_act,
        {"action": "pause"},
        name="pipeline-pause",
    ),
    path(
        "p/<slug:slug>/pipelines/<slug:name>/resume/",
        pipeline_act,
        {"action": "resume"},
        name="pipeline-resume",
    ),
    path("p/<slug:slug>/pipelines/<slug:name>/reset/", pipeline_reset, name="pipeline-reset"),
    path("p/<slug:slug>/pipelines/<slug:name>/delete/", pipeline_delete, name="pipeline-delete"),
]
