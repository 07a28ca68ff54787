"""The types command: register, a bad payload refused by append in one line, evolve with an
upcaster (asking first), events read in the newest shape, the setting, bad input."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from continust.models import Event, EventType, Project

pytestmark = pytest.mark.django_db

ORDER = json.dumps({"type": "object", "properties": {"amount": {"type": "integer"}}})
CENTS = json.dumps({"type": "object", "properties": {"cents": {"type": "integer"}}})
MOVE = json.dumps([{"op": "move", "from": "/amount", "path": "/cents"}])


def run(*args):
    out = StringIO()
    call_command(*args, "--project", "acme", stdout=out)
    return out.getvalue().strip()


def append(payload):
    return run(
        "append", "--stream", "pricing", "--type", "order.placed", "--payload", json.dumps(payload)
    )


def test_register_refuse_evolve_and_read(stream, tmp_path):
    schema_file = tmp_path / "order.json"
    schema_file.write_text(ORDER)
    assert run("types", "register", "order.placed", "--schema", f"@{schema_file}") == (
        "registered order.placed v1"
    )
    append({"amount": 3})
    with pytest.raises(CommandError, match="at /amount") as caught:
        append({"amount": "three"})
    assert "\n" not in str(caught.value)
    assert Event.objects.filter(stream=stream).count() == 1
    out = run("types", "evolve", "order.placed", "--schema", CENTS, "--patch", MOVE, "--yes")
    assert out == "evolved order.placed to v2"
    shown = json.loads(run("types", "show", "order.placed", "--json"))
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    lines = [json.loads(line) for line in run("events", "--type", "order.").splitlines()]
    assert [(e["payload"], e["stored_payload"]) for e in lines] == [({"cents": 3}, {"amount": 3})]
    listed = run("types", "list")
    assert "order.placed v2" in listed and "unregistered types: allow" in listed


def test_evolve_asks_first_and_changes_nothing_without_yes(stream):
    run("types", "register", "order.placed", "--schema", ORDER)
    with pytest.raises(CommandError, match="add --yes"):
        run("types", "evolve", "order.placed", "--schema", CENTS, "--patch", MOVE)
    assert EventType.objects.count() == 1


def test_the_setting_refuses_unregistered_types(stream):
    run("types", "setting", "refuse", "--yes")
    assert Project.objects.get(slug="acme").unregistered_types == "refuse"
    with pytest.raises(CommandError, match="not registered"):
        append({"amount": 1})
    assert run("types", "setting") == "unregistered types: refuse"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["register", "t"], "needs --schema"),
        (["register"], "needs the event type's name"),
        (["register", "t", "--schema", "{"], "--schema is not valid JSON"),
        (["register", "t", "--schema", '{"type": 5}'], "the schema is not valid"),
        (["register", "t", "--schema", "@/nonexistent/x.json"], "cannot read"),
        (["register", "has space", "--schema", "{}"], "cannot be registered"),
        (["evolve", "t", "--schema", "{}", "--patch", MOVE, "--yes"], "no event type 't'"),
        (["evolve", "t", "--schema", "{}"], "one upcaster"),
        (["show", "t"], "no event type 't'"),
        (["setting", "maybe"], "allow or refuse"),
    ],
)
def test_bad_input_is_a_one_line_error_and_changes_nothing(project, args, message):
    with pytest.raises(CommandError, match=message) as caught:
        run("types", *args)
    assert "\n" not in str(caught.value)
    assert not EventType.objects.exists()
    assert Project.objects.get(slug="acme").schema_revision == 0
