"""append --stream S --type T --payload JSON: one event."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import CommandError, CommandParser

from continust.core.parsing import parse_event_type
from continust.log.lookup import resolve_version
from continust.log.store import UNSET, NewEvent, append
from continust.management.base import ContinustCommand, Scope, parse_json
from continust.read.records import version_record


def _uuid(raw: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise CommandError(f"{what} {raw!r} is not a UUID") from None


class Command(ContinustCommand):
    help = "Append one event to a branch of a stream."
    needs_stream = True

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--type", required=True)
        parser.add_argument("--payload", required=True, help="a JSON object")
        parser.add_argument("--branch", default="main")
        parser.add_argument("--causation", help="id of the event that caused this one")
        parser.add_argument("--correlation")
        parser.add_argument("--id", help="the event id (idempotency key); a new UUID by default")
        parser.add_argument("--actor", default="")
        parser.add_argument(
            "--expected-head", help="the version the branch must be at (id, key or 'none')"
        )

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        stream = scope.the_stream
        expected: Any = UNSET
        if options["expected_head"] is not None:
            raw = options["expected_head"]
            expected = None if raw.lower() == "none" else resolve_version(stream, raw).pk
        event = NewEvent(
            type=parse_event_type(options["type"]),
            payload=parse_json(options["payload"], "--payload"),
            id=_uuid(options["id"], "--id") if options["id"] else None,
            causation=_uuid(options["causation"], "--causation") if options["causation"] else None,
            correlation=(
                _uuid(options["correlation"], "--correlation") if options["correlation"] else None
            ),
            actor=options["actor"],
        )
        result = append(stream, [event], branch=options["branch"], expected_head=expected)
        version = result.versions[-1]
        verb = "appended" if result.created else "already recorded"
        self.emit(
            options,
            {**version_record(version), "created": result.created},
            f"{verb}: version {version.pk} on {options['branch']} (event {version.event.id})",
        )
