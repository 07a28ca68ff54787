"""causation EVENT_ID: the chain back to the root cause and the consequences forward."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from continust.graph.causation import causes, consequences, flatten
from continust.log.lookup import get_event
from continust.management.base import ContinustCommand, Scope
from continust.read.records import event_record


class Command(ContinustCommand):
    help = "Follow an event's causation backward to its root cause and forward to its effects."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("event", help="the event's UUID")

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        project = scope.the_project
        event = get_event(project, options["event"])
        chain = causes(event)
        forward = flatten(consequences(event))[1:]
        data = {
            "event": event_record(event),
            "causes": [event_record(e) for e in chain],
            "consequences": [{"depth": d, **event_record(e)} for d, e in forward],
        }
        lines = [f"{event.stream.name}: {event.type} {event.id}"]
        lines += [f"  caused by {e.stream.name}: {e.type} {e.id}" for e in chain]
        lines += [f"  {'  ' * d}-> {e.stream.name}: {e.type} {e.id}" for d, e in forward]
        self.emit(options, data, "\n".join(lines))
