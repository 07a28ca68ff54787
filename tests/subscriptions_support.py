"""Handlers for subscription tests; a Celery worker imports them by their dotted path.

``copy_to_sink`` writes to the database only: it appends a copy of each event to the
stream ``copies`` of project ``sink``, in the transaction that acknowledges the event
(or moves the subscription's position), so each event has exactly one copy however
often it was delivered. ``refuse_boom`` does the same but fails on events of type
``boom``.
"""

from __future__ import annotations

from typing import Any

SINK_PROJECT = "sink"
SINK_STREAM = "copies"


def copy_to_sink(entry: Any) -> None:
    from continust.log.lookup import get_project, get_stream
    from continust.log.store import NewEvent, append

    sink = get_stream(get_project(SINK_PROJECT), SINK_STREAM)
    append(sink, [NewEvent(type="copy", payload={"of": str(entry.event.id)})])


def refuse_boom(entry: Any) -> None:
    if entry.event.type == "boom":
        raise ValueError(f"boom events are refused ({entry.event.payload})")
    copy_to_sink(entry)


def make_sink() -> Any:
    from continust.log.projects import create_project, create_stream

    return create_stream(create_project(SINK_PROJECT), SINK_STREAM)


def copies() -> list[str]:
    """The ids of the events copied to the sink, in the order they were copied."""
    from continust.models import Event

    return [
        e.payload["of"]
        for e in Event.objects.filter(stream__project__slug=SINK_PROJECT).order_by("position")
    ]
