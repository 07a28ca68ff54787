"""events --project P: the project's log as JSON Lines, filtered, and followed live."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from continust.log.projects import create_stream
from continust.log.store import NewEvent, append
from continust.models import Event
from tests.conftest import put


def run(*args: str) -> list[dict]:
    out = StringIO()
    call_command("events", *args, stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.django_db
def test_events_prints_the_log_in_order_with_positions_and_filters(project, stream):
    other = create_stream(project, "other")
    put(stream, {"a": 1})
    append(other, [NewEvent("stock.add", {"s": 1})])
    put(stream, {"a": 2})
    lines = run("--project", "acme")
    expected = Event.objects.filter(project=project).order_by("position")
    assert [line["id"] for line in lines] == [str(e.id) for e in expected]
    after_first = run("--project", "acme", "--after", lines[0]["log_position"])
    assert [line["id"] for line in after_first] == [line["id"] for line in lines[1:]]
    assert [line["type"] for line in run("--project", "acme", "--type", "stock.")] == ["stock.add"]
    assert [line["payload"] for line in run("--project", "acme", "--stream", "pricing")] == [
        {"a": 1},
        {"a": 2},
    ]
    assert len(run("--project", "acme", "--limit", "2")) == 2
    for args, message in [
        (["--after", "12"], "cursor"),
        (["--stream", "nope"], "no stream"),
        (["--since", "yesterday"], "RFC 3339"),
    ]:
        with pytest.raises(CommandError, match=message):
            run("--project", "acme", *args)


class AppendingOut(StringIO):
    """Standard output that appends more events when the first line is printed: they
    arrive while the command follows the log."""

    def __init__(self, stream) -> None:
        super().__init__()
        self.stream = stream
        self.appended = False

    def write(self, text: str) -> int:
        written = super().write(text)
        if not self.appended and text.strip():
            self.appended = True
            put(self.stream, {"n": 2}, {"n": 3})
        return written


@pytest.mark.django_db(transaction=True)
def test_follow_prints_each_event_once_as_it_is_appended(project, stream):
    put(stream, {"n": 1})
    out = AppendingOut(stream)
    call_command("events", "--project", "acme", "--follow", "--limit", "3", stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["payload"] for line in lines] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert len({line["log_position"] for line in lines}) == 3
