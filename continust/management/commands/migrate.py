"""migrate, which first creates the PostgreSQL database DATABASE_URL names if it is missing."""

from __future__ import annotations

from typing import Any

from django.core.management.commands import migrate

from continust.provision import create_missing_database


class Command(migrate.Command):
    help = migrate.Command.help + " Creates a missing PostgreSQL database first."

    def execute(self, *args: Any, **options: Any) -> str | None:
        # Before the system checks, which already connect.
        created = create_missing_database(options.get("database") or "default")
        if created is not None and options.get("verbosity", 1) >= 1:
            self.stdout.write(f'Created the PostgreSQL database "{created}".')
        return super().execute(*args, **options)
