"""Creating projects, their members and their streams."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from continust.core.errors import AlreadyExists, InvalidEvent, InvalidName, NotFound
from continust.core.parsing import parse_stream_name
from continust.log.reducers import UnknownReducer, get_reducer
from continust.models import Membership, Project, Role, Stream


def create_project(slug: str, name: str = "", *, owner: User | None = None) -> Project:
    """Create a project; its owner, if given, becomes an admin member."""
    if not slug or slugify(slug) != slug:
        raise InvalidEvent(f"{slug!r} is not a valid project slug (lowercase, digits, hyphens)")
    try:
        with transaction.atomic():
            project = Project.objects.create(slug=slug, name=name or slug)
            if owner is not None:
                Membership.objects.create(project=project, user=owner, role=Role.ADMIN)
    except IntegrityError:
        raise AlreadyExists(f"a project {slug!r} already exists") from None
    return project


def add_member(project: Project, user: User, role: str) -> Membership:
    """Give a user a role in a project, or change the role they have."""
    if role not in Role.values:
        raise InvalidEvent(f"{role!r} is not a role; use one of {', '.join(Role.values)}")
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return membership


def create_stream(
    project: Project, name: str, *, reducer: str = "merge", reducer_version: int | None = None
) -> Stream:
    """Create a stream folded by a registered reducer (its newest version by default)."""
    try:
        name = parse_stream_name(name)
    except InvalidName as err:
        raise InvalidEvent(
            f"{err}: a stream name is 1 to 200 characters without white space or control characters"
        ) from err
    try:
        chosen = get_reducer(reducer, reducer_version)
    except UnknownReducer as err:
        raise NotFound(str(err)) from err
    try:
        with transaction.atomic():
            return Stream.objects.create(
                project=project, name=name, reducer=chosen.name, reducer_version=chosen.version
            )
    except IntegrityError:
        raise AlreadyExists(f"project {project.slug} already has a stream {name!r}") from None
