"""The bisect page: find the first version where a value in the state stopped being what
it should, by a JSON Pointer and the expected value. Python predicates run code, so
only the command line takes them (``manage.py bisect --run``)."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from continust.core.errors import ContinustError, StateReleased
from continust.log.lookup import resolve_version
from continust.models import Membership, Stream, Version
from continust.read.bisect import PointerEquals, bisect_stream
from explorer.access import HtmxHttpRequest, member_required


class BisectForm(forms.Form):
    """Where it held, where it no longer holds, and what "holds" means."""

    good = forms.CharField(
        max_length=200,
        label="good revision",
        help_text="where the property still held: v12, a tag, main~40",
    )
    bad = forms.CharField(
        max_length=200,
        label="bad revision",
        initial="main",
        help_text="where it no longer holds: main, v80",
    )
    skip = forms.CharField(
        max_length=2000,
        required=False,
        label="skip",
        help_text="revisions not to test, separated by spaces: v41 v42 (versions whose "
        "state compaction released are skipped anyway)",
    )
    pointer = forms.CharField(
        max_length=1000,
        required=False,
        label="JSON Pointer",
        help_text="where to look in the state: /limits/max (empty: the whole state)",
    )
    expect = forms.CharField(
        max_length=10000,
        label="expected value (JSON)",
        help_text='the value that should be there: 10, "on", {"a": 1}',
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean_expect(self) -> Any:
        try:
            return json.loads(self.cleaned_data["expect"])
        except json.JSONDecodeError as err:
            raise forms.ValidationError(f"This is not JSON: {err.msg}.") from err


@require_GET
@member_required()
def bisect_page(request: HtmxHttpRequest, membership: Membership, stream: Stream) -> HttpResponse:
    """Walk a user through a bisection: the form, then the first bad version and what was
    read to find it. Reads only, so any member may."""
    if "good" in request.GET:
        form = BisectForm(request.GET)
    else:  # a link from a version's panel names the bad end only
        form = BisectForm(initial={"bad": request.GET.get("bad", "main")})
    context: dict[str, Any] = {
        "membership": membership,
        "project": membership.project,
        "stream": stream,
        "form": form,
    }
    if form.is_valid():
        data = form.cleaned_data
        fields = {"good": data["good"], "bad": data["bad"]}
        try:
            prop = PointerEquals(data["pointer"], data["expect"])
            ends: dict[str, Version] = {}
            for field, ref in fields.items():
                try:
                    ends[field] = resolve_version(stream, ref)
                except ContinustError as err:
                    form.add_error(field, _sentence(err))
            skip: list[Version] = []
            for ref in data["skip"].replace(",", " ").split():
                try:
                    skip.append(resolve_version(stream, ref))
                except ContinustError as err:
                    form.add_error("skip", _sentence(err))
            if not form.errors:
                context["result"] = bisect_stream(stream, [ends["good"]], ends["bad"], prop, skip)
        except (ContinustError, StateReleased) as err:
            form.add_error(None, _sentence(err))
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "bisect.html", context, status=status)


def _sentence(err: Exception) -> str:
    text = str(err)
    return f"{text[:1].upper()}{text[1:]}."


urlpatterns = [
    path("p/<slug:slug>/s/<int:stream_id>/bisect/", bisect_page, name="bisect"),
]
