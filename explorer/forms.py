"""Forms of the explorer: filters, fork and merge, and the stream field other forms share."""

from __future__ import annotations

from typing import Any

from django import forms

from continust.audit import trail
from continust.models import Stream


class FilterForm(forms.Form):
    """Timeline filters; the text fields offer the stream's branches, event types and
    actors (the page's datalists)."""

    branch = forms.CharField(
        required=False, max_length=200, widget=forms.TextInput(attrs={"list": "branch-choices"})
    )
    type = forms.CharField(
        required=False,
        max_length=200,
        label="event type",
        widget=forms.TextInput(attrs={"list": "type-choices"}),
    )
    actor = forms.CharField(
        required=False, max_length=200, widget=forms.TextInput(attrs={"list": "actor-choices"})
    )
    since = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    until = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )


class ForkForm(forms.Form):
    at = forms.IntegerField(widget=forms.HiddenInput)
    name = forms.CharField(max_length=200, label="new branch name")


class MergeForm(forms.Form):
    source = forms.CharField(max_length=200, label="merge branch")
    into = forms.CharField(max_length=200, label="into branch")


class StreamField(forms.ModelChoiceField):  # type: ignore[type-arg]
    """Choose a stream of the project by its name."""

    def label_from_instance(self, obj: Any) -> str:
        return str(obj.name)


def offer_streams_of(form: forms.Form, project: Any) -> None:
    """Let ``form``'s ``stream`` field offer the project's streams, but its audit stream."""
    field = form.fields["stream"]
    assert isinstance(field, forms.ModelChoiceField)
    field.queryset = (
        Stream.objects.filter(project=project).exclude(name=trail.AUDIT_STREAM).order_by("name")
    )
