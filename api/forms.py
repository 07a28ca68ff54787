"""The form that issues a personal API token."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import User

from api.models import Scope
from continust.models import Project


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What the token is for, say the service that will use it."
    )
    projects = forms.ModelMultipleChoiceField(
        queryset=Project.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        help_text="The token sees only these projects.",
    )
    scope = forms.ChoiceField(choices=Scope.choices, initial=Scope.READ, widget=forms.RadioSelect)

    def __init__(self, user: User, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only the user's own projects can be chosen; anything else is an invalid choice.
        field = self.fields["projects"]
        assert isinstance(field, forms.ModelMultipleChoiceField)
        field.queryset = Project.objects.filter(memberships__user=user).order_by("slug")
