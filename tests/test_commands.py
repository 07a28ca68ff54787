"""The command-line contract: --project, --json, one-line errors and non-zero exits."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError

from continust.models import Event
from tests.conftest import put

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_it_appends_and_prints_json(stream):
    out = run(
        "append",
        "--project",
        "acme",
        "--stream",
        "pricing",
        "--type",
        "set",
        "--payload",
        '{"price": 10}',
        "--json",
    )
    record = json.loads(out)
    assert record["created"] is True and record["event_type"] == "set"
    assert Event.objects.count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--payload", "{not json"], "--payload is not valid JSON"),
        (["--payload", "[1]"], "a payload must be a JSON object"),
        (["--payload", "{}", "--causation", "nope"], "is not a UUID"),
        (["--payload", "{}", "--expected-head", "999"], "has no version"),
    ],
)
def test_it_refuses_bad_input_in_one_line(stream, args, message):
    with pytest.raises(CommandError, match=message):
        run("append", "--project", "acme", "--stream", "pricing", "--type", "set", *args)
    assert Event.objects.count() == 0


def test_it_names_an_unknown_project_and_stream(stream):
    with pytest.raises(CommandError, match="no project 'nope'"):
        run("state", "--project", "nope", "--stream", "pricing", "main")
    with pytest.raises(CommandError, match="has no stream 'nope'"):
        run("state", "--project", "acme", "--stream", "nope", "main")


def test_it_reports_a_stale_expected_head(stream):
    v1, v2 = put(stream, {"a": 1}, {"a": 2})
    with pytest.raises(CommandError, match=f"at version {v2.pk}, not at the expected {v1.pk}"):
        run(
            "append",
            "--project",
            "acme",
            "--stream",
            "pricing",
            "--type",
            "set",
            "--payload",
            "{}",
            "--expected-head",
            str(v1.pk),
        )


def test_it_answers_lineage_and_diff(stream):
    v1, v2 = put(stream, {"a": 1}, {"a": 2, "b": [1, 2]})
    run("fork", "--project", "acme", "--stream", "pricing", "--at", str(v1.pk), "--name", "f")
    put(stream, {"c": 1}, branch="f")
    scope = ["--project", "acme", "--stream", "pricing"]
    assert run("lineage", *scope, "merge-bases", "main", "f", "--json").strip() == f"[{v1.pk}]"
    assert run("lineage", *scope, "ancestors", "main", "--count").strip() == "2"
    assert run("lineage", *scope, "between", "main", "f", "--count").strip() == "1"
    f_head = stream.branches.get(name="f").head_id
    assert run("lineage", *scope, "path", "main", "f").strip().splitlines() == [
        f"base {v1.pk}",
        f"from A: {v2.pk} {v1.pk}",  # each side's walk down to the base
        f"from B: {f_head} {v1.pk}",
    ]
    assert json.loads(run("lineage", *scope, "path", "main", "f", "--json"))["base"] == v1.pk
    patch = json.loads(run("diff", *scope, str(v1.pk), "main", "--format", "json-patch"))
    assert {"op": "replace", "path": "/a", "value": 2} in patch
    assert "~ /a: 1 -> 2" in run("diff", *scope, str(v1.pk), "main")
    assert json.loads(run("diff", *scope, str(v1.pk), "main", "--format", "merge-patch")) == {
        "a": 2,
        "b": [1, 2],
    }


def test_it_diffs_files(tmp_path):
    (tmp_path / "a.json").write_text('{"x": 1}')
    (tmp_path / "b.json").write_text('{"x": 2}')
    assert "~ /x: 1 -> 2" in run(
        "diff", "--files", str(tmp_path / "a.json"), str(tmp_path / "b.json")
    )
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(CommandError, match="is not valid JSON"):
        run("diff", "--files", str(tmp_path / "a.json"), str(tmp_path / "bad.json"))


def test_it_merges_and_reports_conflicts(stream):
    (v1,) = put(stream, {"p": 1})
    put(stream, {"p": 2})
    run("fork", "--project", "acme", "--stream", "pricing", "--at", str(v1.pk), "--name", "f")
    put(stream, {"p": 3}, branch="f")
    scope = ["--project", "acme", "--stream", "pricing"]
    with pytest.raises(CommandError, match="conflicts at /p"):
        run("merge", *scope, "--from", "f", "--into", "main")
    run("merge", *scope, "--from", "f", "--into", "main", "--resolve", "/p=4")
    assert json.loads(run("state", *scope, "main")) == {"p": 4}


def test_it_follows_causation(project, stream):
    from continust.log.store import NewEvent, append

    first = NewEvent(type="requested", payload={})
    (v1,) = append(stream, [first]).versions
    append(stream, [NewEvent(type="done", payload={}, causation=v1.event.id)])
    out = json.loads(run("causation", "--project", "acme", str(v1.event.id), "--json"))
    assert [c["type"] for c in out["consequences"]] == ["done"]
    with pytest.raises(CommandError, match="has no event"):
        run("causation", "--project", "acme", "6f1c8a3e-2b7d-4e59-9a0c-3d5e7f812a44")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["state", "--project", "acme", "--stream", "pricing", "¹3"], "digits 0-9|¹3"),
        (["state", "--project", "acme", "--stream", "pricing", "١٢"], "no version"),
        (["state", "--project", "acme", "--stream", "pricing", "a\x00b"], "U\\+0000"),
        (["state", "--project", "a\x00b", "--stream", "pricing", "main"], "slug"),
        (
            ["lineage", "--project", "acme", "--stream", "pricing", "merge-bases", "१२", "main"],
            "no version",
        ),
        (
            ["causation", "--project", "acme", "١٢345678-1234-1234-1234-123456789abc"],
            "not an event id",
        ),
        # argparse's own refusals too: a number option, a missing argument.
        (
            ["create_stream", "--project", "acme", "--stream", "more", "--reducer-version", "١٢"],
            "digits 0-9",
        ),
        (
            ["append", "--project", "acme", "--stream", "pricing", "--type", "t"],
            "required: --payload",
        ),
    ],
)
def test_an_odd_name_is_one_line_and_exit_1(stream, capsys, argv, message):
    """Before, ``state ... ¹3`` printed a traceback; ``١٢`` named version 12."""
    put(stream, *({"n": n} for n in range(13)))
    command = load_command_class("continust", argv[0])
    with pytest.raises(SystemExit) as exit_:
        command.run_from_argv(["manage.py", *argv])
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("CommandError: ")
    assert re.search(message, err), err


@pytest.mark.parametrize("typed", ["١٢", "¹3"])
def test_a_number_option_takes_ascii_digits_only(stream, typed):
    with pytest.raises(CommandError, match="digits 0-9"):
        run("create_stream", "--project", "acme", "--stream", "more", "--reducer-version", typed)


def test_a_merge_patch_diff_that_cannot_say_null_is_refused_naming_the_path(project):
    from continust.log.projects import create_stream

    doc = create_stream(project, "doc", reducer="replace")
    v1, v2 = put(doc, {"a": 1}, {"a": None})
    scope = ["--project", "acme", "--stream", "doc"]
    with pytest.raises(CommandError, match=r"cannot set a value to null.*/a.*json-patch"):
        run("diff", *scope, str(v1.pk), str(v2.pk), "--format", "merge-patch")
