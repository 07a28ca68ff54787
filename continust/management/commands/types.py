"""types: the project's event-type registry.

types list --project P
types show NAME --project P
types register NAME --schema JSON --project P [--actor A]
types evolve NAME --schema JSON (--patch JSON | --function dotted.path) --project P [--yes]
types setting [allow|refuse] --project P [--yes]

A JSON argument may be given inline or as @FILE. Every change is recorded in the
project's audit stream.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from continust.audit import event_types
from continust.management.base import ContinustCommand, Scope, parse_json
from continust.models import UnregisteredTypes
from continust.schemas import registry
from continust.schemas.records import event_type_record, registry_record

ACTIONS = ["list", "show", "register", "evolve", "setting"]


def json_argument(raw: str, what: str) -> Any:
    """Parse a JSON argument, inline or ``@FILE``; a one-line error otherwise."""
    if raw.startswith("@"):
        try:
            raw = Path(raw[1:]).read_text(encoding="utf-8")
        except OSError as err:
            raise CommandError(f"{what}: cannot read {raw[1:]!r}: {err.strerror}") from err
    return parse_json(raw, what)


class Command(ContinustCommand):
    help = (
        "List, show, register or evolve the project's event types (JSON Schema, Draft "
        "2020-12), and allow or refuse types it did not register."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("action", choices=ACTIONS, help="what to do")
        parser.add_argument(
            "name", nargs="?", help="the event type (show, register, evolve); allow or refuse"
        )
        parser.add_argument("--schema", help="register, evolve: the JSON Schema, or @FILE")
        parser.add_argument(
            "--patch", help="evolve: the upcaster, RFC 6902 operations (JSON or @FILE)"
        )
        parser.add_argument(
            "--function", help="evolve: the upcaster, a registered function's dotted path"
        )
        parser.add_argument("--actor", default="", help="who does it (for the audit stream)")
        parser.add_argument("--yes", action="store_true", help="do it without asking")

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        project = scope.the_project
        action = options["action"]
        if action == "list":
            data = registry_record(project)
            lines = [f"unregistered types: {data['unregistered_types']}"]
            lines += [f"{t['name']} v{t['version']}" for t in data["items"]]
            self.emit(options, data, "\n".join(lines))
            return
        if action == "setting":
            self._setting(scope, options)
            return
        name = options["name"]
        if not name:
            raise CommandError(f"{action} needs the event type's name")
        if action == "show":
            rows = registry.versions(project, name)
            records = [event_type_record(row) for row in rows]
            text = "\n".join(
                f"v{r['version']}"
                + (f" (upcaster {json.dumps(r['upcaster'])})" if r["upcaster"] else "")
                + f": {json.dumps(r['schema'], ensure_ascii=False)}"
                for r in records
            )
            self.emit(options, {"name": name, "versions": records}, text)
            return
        if options["schema"] is None:
            raise CommandError(f"{action} needs --schema")
        schema = json_argument(options["schema"], "--schema")
        if action == "register":
            row = event_types.register(project, name, schema, actor=options["actor"])
            self.emit(options, event_type_record(row), f"registered {name} v1")
            return
        self._evolve(scope, options, name, schema)

    def _evolve(self, scope: Scope, options: dict[str, Any], name: str, schema: Any) -> None:
        project = scope.the_project
        if (options["patch"] is None) == (options["function"] is None):
            raise CommandError("evolve needs one upcaster: --patch or --function")
        current = registry.versions(project, name)[-1]
        patch = json_argument(options["patch"], "--patch") if options["patch"] else None
        # Refused before the question, not after it.
        event_types.check_evolution(
            project, name, schema, patch=patch, function=options["function"] or ""
        )
        self.confirm(
            options,
            f"Evolve {name} to v{current.version + 1} in {project.slug}: appends are checked "
            f"against the new schema, and every event of v{current.version} or older reads "
            "through the upcaster (stored events never change).",
        )
        row = event_types.evolve(
            project,
            name,
            schema,
            patch=patch,
            function=options["function"] or "",
            actor=options["actor"],
        )
        self.emit(options, event_type_record(row), f"evolved {name} to v{row.version}")

    def _setting(self, scope: Scope, options: dict[str, Any]) -> None:
        project = scope.the_project
        choice = options["name"]
        if choice is None:
            self.emit(
                options,
                {"unregistered_types": project.unregistered_types},
                f"unregistered types: {project.unregistered_types}",
            )
            return
        if choice not in UnregisteredTypes.values:
            raise CommandError(f"setting takes {' or '.join(UnregisteredTypes.values)}")
        if choice == UnregisteredTypes.REFUSE and project.unregistered_types != choice:
            self.confirm(
                options,
                f"Refuse events of unregistered types in {project.slug}: appends of a type "
                "not registered will fail.",
            )
        event_types.set_unregistered_types(project, choice, actor=options["actor"])
        self.emit(options, {"unregistered_types": choice}, f"unregistered types: now {choice}")
