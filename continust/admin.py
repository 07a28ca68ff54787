"""The Django admin: projects, members and streams are edited; the log is read-only.

A stream's admin page adds three forms: append an event, fork a branch at a
version, merge one branch into another. They call the same domain functions as
the commands and the explorer.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import django_stubs_ext
from django import forms
from django.contrib import admin, messages
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from continust.audit.integrity import verify
from continust.core.errors import ContinustError, MergeConflict, StateReleased
from continust.graph.parents import parents_of
from continust.log.lookup import resolve_version
from continust.log.states import state_of
from continust.log.store import UNSET, NewEvent, append, fork, merge
from continust.models import Branch, BranchMove, Event, Membership, Project, State, Stream, Version

# The admin classes take their model as a type argument in django-stubs only; this lets
# the class statements below subscript them when Python runs them too.
django_stubs_ext.monkeypatch()

M = TypeVar("M", bound=models.Model)


class ReadOnlyAdmin(admin.ModelAdmin[M]):
    """An admin that shows rows and never adds, changes or deletes them."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MembershipInline(admin.TabularInline[Membership, Project]):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin[Project]):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


class AppendForm(forms.Form):
    branch = forms.CharField(initial="main")
    type = forms.CharField(max_length=200)
    payload = forms.JSONField(help_text="a JSON object")
    actor = forms.CharField(required=False)
    causation = forms.UUIDField(required=False)
    expected_head = forms.IntegerField(required=False, help_text="version id the branch must be at")


class ForkForm(forms.Form):
    at = forms.CharField(help_text="a version id, key or branch name")
    name = forms.CharField(max_length=200)


class MergeForm(forms.Form):
    source = forms.CharField(label="merge branch")
    into = forms.CharField(label="into branch", initial="main")
    resolutions = forms.JSONField(
        required=False, initial=dict, help_text='{"/path": value} for each conflicting path'
    )


@admin.register(Stream)
class StreamAdmin(admin.ModelAdmin[Stream]):
    list_display = ["name", "project", "reducer", "reducer_version", "event_count", "actions_"]
    list_filter = ["project"]
    search_fields = ["name"]
    readonly_fields = ["event_count", "last_hash", "created_at"]
    actions = ["verify_streams"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fixed = ["project", "name", "reducer", "reducer_version"] if obj else []
        return [*fixed, *self.readonly_fields]

    @admin.display(description="write")
    def actions_(self, stream: Stream) -> str:
        return format_html(
            '<a href="{}">append</a> · <a href="{}">fork</a> · <a href="{}">merge</a>',
            reverse("admin:continust_stream_append", args=[stream.pk]),
            reverse("admin:continust_stream_fork", args=[stream.pk]),
            reverse("admin:continust_stream_merge", args=[stream.pk]),
        )

    @admin.action(description="Verify the hash chains of the selected streams")
    def verify_streams(self, request: HttpRequest, queryset: Any) -> None:
        report = verify(streams=queryset.select_related("project"))
        if report.ok:
            self.message_user(request, f"ok: {report.events} events, {report.versions} versions")
        else:
            self.message_user(request, f"broken: {report.broken}", messages.ERROR)

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:pk>/append/",
                self.admin_site.admin_view(self.append_view),
                name="continust_stream_append",
            ),
            path(
                "<int:pk>/fork/",
                self.admin_site.admin_view(self.fork_view),
                name="continust_stream_fork",
            ),
            path(
                "<int:pk>/merge/",
                self.admin_site.admin_view(self.merge_view),
                name="continust_stream_merge",
            ),
        ]
        return own + super().get_urls()

    def _form_view(
        self, request: HttpRequest, pk: int, form_class: type[forms.Form], title: str, act: Any
    ) -> HttpResponse:
        stream = get_object_or_404(Stream, pk=pk)
        if not self.has_change_permission(request, stream):
            return HttpResponse(status=403)
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                message = act(stream, form.cleaned_data)
            except MergeConflict as err:
                paths = ", ".join(c.path for c in err.conflicts)
                form.add_error(None, f"{err} — resolve {paths}")
            except ContinustError as err:
                form.add_error(None, str(err))
            else:
                self.message_user(request, message)
                return HttpResponseRedirect(
                    reverse("admin:continust_stream_change", args=[stream.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": f"{title}: {stream}",
            "form": form,
            "opts": self.model._meta,
            "original": stream,
        }
        return TemplateResponse(request, "admin/continust/stream_action.html", context)

    def append_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        def act(stream: Stream, data: dict[str, Any]) -> str:
            event = NewEvent(
                type=data["type"],
                payload=data["payload"],
                actor=data["actor"] or request.user.get_username(),
                causation=data["causation"],
            )
            head = data["expected_head"] if data["expected_head"] is not None else UNSET
            version = append(stream, [event], branch=data["branch"], expected_head=head).versions[
                -1
            ]
            return f"appended version {version.pk} on {data['branch']}"

        return self._form_view(request, pk, AppendForm, "Append an event", act)

    def fork_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        def act(stream: Stream, data: dict[str, Any]) -> str:
            at = resolve_version(stream, data["at"])
            fork(stream, data["name"], at, actor=request.user.get_username())
            return f"forked {data['name']} at version {at.pk}"

        return self._form_view(request, pk, ForkForm, "Fork a branch", act)

    def merge_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        def act(stream: Stream, data: dict[str, Any]) -> str:
            version = merge(
                stream,
                data["source"],
                data["into"],
                actor=request.user.get_username(),
                resolutions=data["resolutions"] or {},
            )
            return f"merged {data['source']} into {data['into']}: version {version.pk}"

        return self._form_view(request, pk, MergeForm, "Merge a branch", act)


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin[Event]):
    list_display = ["position", "stream", "seq", "type", "actor", "timestamp", "id"]
    list_filter = ["stream__project"]
    search_fields = ["id", "type", "actor"]
    list_select_related = ["stream"]


@admin.register(Version)
class VersionAdmin(ReadOnlyAdmin[Version]):
    list_display = ["id", "stream", "branch", "generation", "key", "reducer", "created_at"]
    list_filter = ["stream__project"]
    search_fields = ["key", "digest"]
    list_select_related = ["stream"]
    readonly_fields = ["parents", "state_json", "cause"]

    @admin.display(description="parents")
    def parents(self, version: Version) -> str:
        ids = parents_of(version)
        return ", ".join(str(i) for i in ids) or "(root)"

    @admin.display(description="state")
    def state_json(self, version: Version) -> str:
        try:
            text = json.dumps(state_of(version), indent=2, sort_keys=True, ensure_ascii=False)
        except StateReleased as err:
            text = str(err)
        return format_html("<pre>{}</pre>", text)

    @admin.display(description="caused by")
    def cause(self, version: Version) -> str:
        cause = version.event.causation_id
        if cause is None:
            return "—"
        found = Event.objects.filter(project_id=version.event.project_id, id=cause).first()
        if found is None:
            return str(cause)
        return format_html(
            '<a href="{}">{} {}</a>',
            reverse("admin:continust_event_change", args=[found.pk]),
            found.type,
            found.id,
        )


@admin.register(State)
class StateAdmin(ReadOnlyAdmin[State]):
    list_display = ["hash"]
    search_fields = ["hash"]


class BranchMoveInline(admin.TabularInline[BranchMove, Branch]):
    model = BranchMove
    extra = 0
    can_delete = False
    readonly_fields = ["old_head", "new_head", "reason", "actor", "at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Branch)
class BranchAdmin(ReadOnlyAdmin[Branch]):
    list_display = ["name", "stream", "head", "created_at"]
    list_filter = ["stream__project"]
    list_select_related = ["stream"]
    inlines = [BranchMoveInline]
