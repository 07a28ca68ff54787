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


class VerifyForm(forms.Form):
    """What to verify: the whole project or one stream, and optionally against a digest."""

    stream = StreamField(
        queryset=Stream.objects.none(), required=False, empty_label="every stream of the project"
    )
    digest = forms.FileField(
        required=False,
        label="against a digest (optional)",
        help_text="a digest downloaded here earlier: also shows whether anything was cut off "
        "or moved back since",
    )

    def __init__(self, project: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["stream"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Stream.objects.filter(project=project).order_by("name")
