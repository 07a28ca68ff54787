"""blame --project P --stream S [V] --path POINTER [--depth N]: who last changed a value.

As ``git blame`` for one JSON value: the versions that set the value at the path of a
version's state (main's head unless told), newest first, with the value before each.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from continust.audit.blame import HISTORY, blame
from continust.documents.diff import MISSING
from continust.log.canonical import timestamp_text
from continust.log.lookup import resolve_version
from continust.log.store import MAIN
from continust.management.base import ContinustCommand, Scope, number


def _shown(value: Any) -> str:
    return "(absent)" if value is MISSING else json.dumps(value, ensure_ascii=False)


class Command(ContinustCommand):
    help = (
        "Blame a path of a version's state (main's head by default): the versions that "
        "last changed its value, newest first, and what it was before each."
    )
    needs_stream = True

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("version", nargs="?", default=MAIN, help="id, key or branch")
        parser.add_argument("--path", required=True, help="a JSON Pointer, e.g. /tiers/pro")
        parser.add_argument(
            "--depth", type=number, default=HISTORY, help=f"at most N changes ({HISTORY})"
        )

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        stream = scope.the_stream
        version = resolve_version(stream, options["version"])
        found = blame(stream, version, options["path"], depth=max(1, options["depth"]))
        changes = [
            {
                "version": c.version.pk,
                "event": str(c.version.event_id),
                "event_type": c.version.event.type,
                "actor": c.version.event.actor,
                "timestamp": timestamp_text(c.version.event.timestamp),
                "value": None if c.value is MISSING else c.value,
                "previous": None if c.previous is MISSING else c.previous,
                "added": c.added,
            }
            for c in found.changes
        ]
        lines = [f"{found.path} = {_shown(found.value)} at version {version.pk}"]
        for change, row in zip(found.changes, changes, strict=True):
            lines.append(
                f"v{row['version']}  {row['timestamp']}  {row['actor'] or '-'}  "
                f"{row['event_type']}: {_shown(change.previous)} -> {_shown(change.value)}"
            )
        if not found.complete:
            lines.append(f"(cut at {len(changes)} changes: --depth N for more)")
        data = {
            "stream": stream.name,
            "version": version.pk,
            "path": found.path,
            "value": found.value,
            "complete": found.complete,
            "changes": changes,
        }
        self.emit(options, data, "\n".join(lines))
