"""Members of a project and the project's review rule: admins invite, change roles and
remove (after a confirmation); every change is recorded in the project's audit stream."""

from __future__ import annotations

from collections import Counter

from django import forms
from django.contrib import messages
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from continust.audit import reviews
from continust.audit.members import invite, removal_refused, remove, set_role
from continust.core.errors import ContinustError
from continust.models import Membership, Role
from explorer.access import HtmxHttpRequest, actor_of, member_required, refuse
from explorer.confirm import confirmation, confirmed


class InviteForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


# -- members -------------------------------------------------------------------------------


def _members_url(membership: Membership) -> str:
    return reverse("members", args=[membership.project.slug])


@require_GET
@member_required()
def members(request: HttpRequest, membership: Membership) -> HttpResponse:
    listed = (
        Membership.objects.filter(project=membership.project)
        .select_related("user")
        .order_by("user__username")
    )
    roles = Counter(m.role for m in listed)
    return render(
        request,
        "members.html",
        {
            "membership": membership,
            "project": membership.project,
            "members": listed,
            "roles": Role.choices,
            "counts": roles,
            "invite_form": InviteForm(),
            "can_manage": membership.allows(Role.ADMIN),
            "approval_rule": reviews.approval_rule(membership.project),
        },
    )


@require_POST
@member_required(Role.ADMIN)
def member_invite(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = InviteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Name an existing user and one of the roles.")
        return redirect(_members_url(membership))
    try:
        added = invite(
            membership.project,
            form.cleaned_data["username"],
            form.cleaned_data["role"],
            actor=actor_of(request),
        )
    except ContinustError as err:
        return refuse(request, err, _members_url(membership))
    messages.success(request, f"{added.user} is now a {added.role} of {membership.project}.")
    return redirect(_members_url(membership))


@require_POST
@member_required(Role.ADMIN)
def member_role(request: HttpRequest, membership: Membership, member_id: int) -> HttpResponse:
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles.")
        return redirect(_members_url(membership))
    try:
        changed = set_role(
            membership.project, member_id, form.cleaned_data["role"], actor=actor_of(request)
        )
    except ContinustError as err:
        return refuse(request, err, _members_url(membership))
    messages.success(request, f"{changed.user} is now a {changed.role}.")
    return redirect(_members_url(membership))


@require_POST
@member_required(Role.ADMIN)
def review_rule(request: HttpRequest, membership: Membership) -> HttpResponse:
    allowed = request.POST.get("self_approval")
    if allowed not in ("yes", "no"):
        messages.error(request, "Say yes or no: may whoever opened a review approve it?")
        return redirect(_members_url(membership))
    reviews.set_self_approval(membership.project, allowed == "yes", actor=actor_of(request))
    messages.success(request, reviews.approval_rule(membership.project))
    return redirect(_members_url(membership))


@require_http_methods(["GET", "POST"])
@member_required(Role.ADMIN)
def member_remove(request: HtmxHttpRequest, membership: Membership, member_id: int) -> HttpResponse:
    if not confirmed(request):
        member = (
            Membership.objects.select_related("user")
            .filter(project=membership.project, pk=member_id)
            .first()
        )
        if member is None:
            raise Http404("No such member.")
        you = " (you: you lose access at once)" if member.pk == membership.pk else ""
        return confirmation(
            request,
            membership,
            title=f"Remove {member.user.get_username()} from {membership.project.name}?",
            facts=[
                f"{member.user.get_username()}{you}, {'an' if member.role[0] in 'aeiou' else 'a'} "
                f"{member.role}, loses access to every "
                "stream, review and pipeline of the project",
                "the removal is recorded in the audit trail; only an invitation brings them back",
            ],
            action=f"Remove {member.user.get_username()}",
            back=_members_url(membership),
            problem=removal_refused(membership.project, member),
        )
    try:
        remove(membership.project, member_id, actor=actor_of(request))
    except ContinustError as err:
        return refuse(request, err, _members_url(membership))
    messages.success(request, "The member is removed.")
    if member_id == membership.pk:
        return redirect("home")
    return redirect(_members_url(membership))


# -- URLs, included by explorer.urls ----------------------------------------------------------

P = "p/<slug:slug>/"
urlpatterns = [
    path(P + "members/", members, name="members"),
    path(P + "members/invite/", member_invite, name="member-invite"),
    path(P + "members/review-rule/", review_rule, name="review-rule"),
    path(P + "members/<int:member_id>/role/", member_role, name="member-role"),
    path(P + "members/<int:member_id>/remove/", member_remove, name="member-remove"),
]
