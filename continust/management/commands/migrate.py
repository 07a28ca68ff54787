"""migrate, which first creates the PostgreSQL database DATABASE_URL names if it is missing."""

from __future__ import annotations

from typing import Any

from django.core.management.commands import migrate

from continust.provision import create_missing_database


class Command(migrate.Command):
    help = migrate.Command.help + " Creates a missing PostgreSQL database first."

    def handle(self, *args: Any, **options: Any) -> None:
        created = create_missing_database(options["database"])
        if created is not None and options["verbosity"] >= 1:
            self.stdout.write(f'Created the PostgreSQL database "{created}".')
        super().handle(*args, **options)
