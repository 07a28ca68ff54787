"""A project's event types: every member sees the registry; admins register a type, evolve
it with an upcaster and allow or refuse unregistered types, each after a confirmation
that says what it will do. Every change is recorded in the project's audit stream."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from continust.audit import event_types
from continust.core.errors import ContinustError
from continust.models import EventType, Membership, Role, UnregisteredTypes
from continust.schemas import registry
from continust.schemas.records import upcaster_record
from explorer.access import HtmxHttpRequest, actor_of, member_required
from explorer.confirm import confirmation, confirmed


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise forms.ValidationError(f"{what} is not valid JSON: {err}") from err


class RegisterForm(forms.Form):
    name = forms.CharField(max_length=200, label="event type")
    schema = forms.CharField(
        max_length=100_000,
        label="JSON Schema",
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text="Draft 2020-12; kept as given, annotations included",
    )

    def clean_schema(self) -> Any:
        return _json(self.cleaned_data["schema"], "the schema")


class EvolveForm(forms.Form):
    schema = forms.CharField(
        max_length=100_000,
        label="new JSON Schema",
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
    )
    patch = forms.CharField(
        required=False,
        max_length=100_000,
        label="upcaster: JSON Patch",
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text="RFC 6902 operations from the previous version's shape to this one",
    )
    function = forms.CharField(
        required=False,
        max_length=300,
        label="or: upcaster function",
        help_text="the dotted path of a function registered as an upcaster",
    )

    def clean_schema(self) -> Any:
        return _json(self.cleaned_data["schema"], "the schema")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        patch, function = (data.get("patch") or "").strip(), (data.get("function") or "").strip()
        if bool(patch) == bool(function):
            raise forms.ValidationError("Give one upcaster: a JSON Patch or a function.")
        data["patch"] = _json(patch, "the patch") if patch else None
        data["function"] = function
        return data


def _types_url(membership: Membership) -> str:
    return reverse("event-types", args=[membership.project.slug])


def _page(
    request: HtmxHttpRequest,
    membership: Membership,
    *,
    register_form: RegisterForm | None = None,
    status: int = 200,
) -> HttpResponse:
    project = membership.project
    return render(
        request,
        "event_types.html",
        {
            "membership": membership,
            "project": project,
            "types": registry.types(project),
            "can_manage": membership.allows(Role.ADMIN),
            "register_form": register_form or RegisterForm(),
            "refusing": project.unregistered_types == UnregisteredTypes.REFUSE,
        },
        status=status,
    )


@require_GET
@member_required()
def types_page(request: HtmxHttpRequest, membership: Membership) -> HttpResponse:
    return _page(request, membership)


def _of_type(membership: Membership, type_id: int) -> list[EventType]:
    row = EventType.objects.filter(project=membership.project, pk=type_id).first()
    if row is None:
        raise Http404("No such event type.")
    return registry.versions(membership.project, row.name)


@require_GET
@member_required()
def type_detail(request: HtmxHttpRequest, membership: Membership, type_id: int) -> HttpResponse:
    rows = _of_type(membership, type_id)
    return _detail(request, membership, rows, EvolveForm())


def _detail(
    request: HtmxHttpRequest,
    membership: Membership,
    rows: list[EventType],
    form: EvolveForm,
    status: int = 200,
) -> HttpResponse:
    versions = [
        {
            "row": row,
            "schema": json.dumps(row.schema, ensure_ascii=False, indent=2, sort_keys=True),
            "upcaster": (
                json.dumps(upcaster_record(row), ensure_ascii=False, indent=2)
                if upcaster_record(row)
                else ""
            ),
        }
        for row in rows
    ]
    return render(
        request,
        "event_type.html",
        {
            "membership": membership,
            "project": membership.project,
            "name": rows[-1].name,
            "newest": rows[-1],
            "versions": versions,
            "form": form,
            "can_manage": membership.allows(Role.ADMIN),
        },
        status=status,
    )


def _hidden(request: HtmxHttpRequest, names: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(name, request.POST.get(name, "")) for name in names]


@require_POST
@member_required(Role.ADMIN)
def type_register(request: HtmxHttpRequest, membership: Membership) -> HttpResponse:
    form = RegisterForm(request.POST)
    if not form.is_valid():
        return _page(request, membership, register_form=form, status=400)
    name, schema = form.cleaned_data["name"], form.cleaned_data["schema"]
    try:  # refused before the confirmation asks, not after
        event_types.check_registration(membership.project, name, schema)
    except ContinustError as err:
        form.add_error(None, str(err))
        return _page(request, membership, register_form=form, status=400)
    if not confirmed(request):
        return confirmation(
            request,
            membership,
            title=f"Register the event type {name} in {membership.project.name}?",
            facts=[
                f"every append of an event {name} is checked against this schema from now "
                "on; one that does not fit is refused, with nothing of its batch written",
                "a type stays registered: it changes only by evolving to a new version",
                "the registration is recorded in the audit trail",
            ],
            action=f"Register {name}",
            back=_types_url(membership),
            hidden=_hidden(request, ("name", "schema")),
        )
    try:
        row = event_types.register(membership.project, name, schema, actor=actor_of(request))
    except ContinustError as err:
        form.add_error(None, str(err))
        return _page(request, membership, register_form=form, status=400)
    messages.success(request, f"{row.name} is registered at version 1.")
    return redirect(reverse("event-type", args=[membership.project.slug, row.pk]))


@require_POST
@member_required(Role.ADMIN)
def type_evolve(request: HtmxHttpRequest, membership: Membership, type_id: int) -> HttpResponse:
    rows = _of_type(membership, type_id)
    form = EvolveForm(request.POST)
    if not form.is_valid():
        return _detail(request, membership, rows, form, status=400)
    name, newest = rows[-1].name, rows[-1].version
    try:  # refused before the confirmation asks, not after
        event_types.check_evolution(
            membership.project,
            name,
            form.cleaned_data["schema"],
            patch=form.cleaned_data["patch"],
            function=form.cleaned_data["function"],
        )
    except ContinustError as err:
        form.add_error(None, str(err))
        return _detail(request, membership, rows, form, status=400)
    if not confirmed(request):
        return confirmation(
            request,
            membership,
            title=f"Evolve {name} to version {newest + 1}?",
            facts=[
                f"appends of {name} are checked against the new schema from now on",
                f"every {name} event of version {newest} or older reads through the "
                "upcaster on every surface; the stored events and their hashes never change",
                "a version stays: a later shape is another evolution",
                "the evolution is recorded in the audit trail",
            ],
            action=f"Evolve {name} to v{newest + 1}",
            back=reverse("event-type", args=[membership.project.slug, type_id]),
            hidden=_hidden(request, ("schema", "patch", "function")),
        )
    try:
        row = event_types.evolve(
            membership.project,
            name,
            form.cleaned_data["schema"],
            patch=form.cleaned_data["patch"],
            function=form.cleaned_data["function"],
            actor=actor_of(request),
        )
    except ContinustError as err:
        form.add_error(None, str(err))
        return _detail(request, membership, rows, form, status=400)
    messages.success(request, f"{row.name} is now at version {row.version}.")
    return redirect(reverse("event-type", args=[membership.project.slug, row.pk]))


@require_POST
@member_required(Role.ADMIN)
def types_setting(request: HtmxHttpRequest, membership: Membership) -> HttpResponse:
    choice = request.POST.get("unregistered_types", "")
    if choice not in UnregisteredTypes.values:
        messages.error(request, "Choose allow or refuse.")
        return redirect(_types_url(membership))
    if choice == UnregisteredTypes.REFUSE and not confirmed(request):
        return confirmation(
            request,
            membership,
            title=f"Refuse unregistered event types in {membership.project.name}?",
            facts=[
                "every append of a type the project did not register is refused from now on",
                "the change is recorded in the audit trail; allowing them again is one click",
            ],
            action="Refuse unregistered types",
            back=_types_url(membership),
            hidden=[("unregistered_types", choice)],
        )
    event_types.set_unregistered_types(membership.project, choice, actor=actor_of(request))
    messages.success(
        request, f"Events of unregistered types are now {choice}ed.".replace("refuseed", "refused")
    )
    return redirect(_types_url(membership))


# -- URLs, included by explorer.urls ----------------------------------------------------------

P = "p/<slug:slug>/"
urlpatterns = [
    path(P + "types/", types_page, name="event-types"),
    path(P + "types/register/", type_register, name="event-type-register"),
    path(P + "types/setting/", types_setting, name="event-types-setting"),
    path(P + "types/<int:type_id>/", type_detail, name="event-type"),
    path(P + "types/<int:type_id>/evolve/", type_evolve, name="event-type-evolve"),
]
