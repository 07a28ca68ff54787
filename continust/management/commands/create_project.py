"""create_project SLUG: a new project, optionally owned by a user."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser

from continust.log.projects import create_project
from continust.management.base import ContinustCommand, Scope


class Command(ContinustCommand):
    help = "Create a project; --owner makes a user its admin."
    needs_project = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", default="")
        parser.add_argument("--owner", help="username of the project's first admin")
        super().add_arguments(parser)

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        owner = None
        if options["owner"]:
            owner = get_user_model().objects.filter(username=options["owner"]).first()
            if owner is None:
                raise CommandError(f"no user {options['owner']!r}")
        created = create_project(options["slug"], options["name"], owner=owner)
        self.emit(
            options, {"slug": created.slug, "name": created.name}, f"created project {created.slug}"
        )
