"""Who belongs to a project, and every change of it recorded in the project's audit stream.

Admins invite existing users by username, change their roles and remove them. A project
always keeps at least one admin, so nobody can lock a team out of its own project.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from continust.audit.trail import record
from continust.core.errors import InvalidEvent, NotFound
from continust.models import Membership, Project, Role

INVITED = "member.invited"
ROLE_CHANGED = "member.role_changed"
REMOVED = "member.removed"


def _check_role(role: str) -> str:
    if role not in Role.values:
        raise InvalidEvent(f"{role!r} is not a role; use one of {', '.join(Role.values)}")
    return role


def invite(project: Project, username: str, role: str, *, actor: str) -> Membership:
    """Make an existing user a member of the project with a role."""
    _check_role(role)
    username = username.strip()
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise NotFound(f"there is no user {username!r}; they need an account first")
    with transaction.atomic():
        membership, created = Membership.objects.get_or_create(
            project=project, user=user, defaults={"role": role}
        )
        if not created:
            raise InvalidEvent(f"{username} is already a {membership.role} of {project.slug}")
        record(project, INVITED, {"user": username, "role": role}, actor=actor)
    return membership


def _locked(project: Project, membership_id: int) -> Membership:
    """Lock the project's admin rows and return the membership, so two admins demoting
    each other at once cannot leave the project without one."""
    list(Membership.objects.select_for_update().filter(project=project, role=Role.ADMIN))
    membership = (
        Membership.objects.select_related("user").filter(project=project, pk=membership_id).first()
    )
    if membership is None:
        raise NotFound(f"project {project.slug} has no membership {membership_id}")
    return membership


def _keep_an_admin(project: Project, membership: Membership) -> None:
    if (
        membership.role == Role.ADMIN
        and not Membership.objects.filter(project=project, role=Role.ADMIN)
        .exclude(pk=membership.pk)
        .exists()
    ):
        raise InvalidEvent(
            f"{membership.user} is the last admin of {project.slug}; make someone else admin first"
        )


def removal_refused(project: Project, membership: Membership) -> str:
    """Say why removing the member would be refused (the last admin stays), or ""."""
    try:
        _keep_an_admin(project, membership)
    except InvalidEvent as err:
        return str(err)
    return ""


def set_role(project: Project, membership_id: int, role: str, *, actor: str) -> Membership:
    """Change a member's role; the last admin stays an admin."""
    _check_role(role)
    with transaction.atomic():
        membership = _locked(project, membership_id)
        if membership.role == role:
            return membership
        if role != Role.ADMIN:
            _keep_an_admin(project, membership)
        previous = membership.role
        Membership.objects.filter(pk=membership.pk).update(role=role)
        membership.role = role
        record(
            project,
            ROLE_CHANGED,
            {"user": membership.user.get_username(), "from": previous, "to": role},
            actor=actor,
        )
    return membership


def remove(project: Project, membership_id: int, *, actor: str) -> None:
    """Remove a member from the project; the last admin stays."""
    with transaction.atomic():
        membership = _locked(project, membership_id)
        _keep_an_admin(project, membership)
        Membership.objects.filter(pk=membership.pk).delete()
        record(
            project,
            REMOVED,
            {"user": membership.user.get_username(), "role": membership.role},
            actor=actor,
        )
