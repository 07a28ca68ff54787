"""Revert: one event that undoes a version, caused by it, refused when it does not apply."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from continust.core.errors import RevertConflict
from continust.log.projects import create_stream
from continust.log.revert import REVERT_EVENT, plan_revert, revert
from continust.log.states import state_of
from continust.log.store import NewEvent, append, fork, merge
from continust.models import Event
from tests.conftest import put

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("reducer", ["merge", "replace"])
def test_it_undoes_an_older_version(project, reducer):
    stream = create_stream(project, f"s-{reducer}", reducer=reducer)
    full = [{"a": 1}, {"a": 1, "b": 2}, {"a": 1, "b": 2, "c": 3}]
    v1, v2, v3 = append(stream, [NewEvent("set", p) for p in full]).versions
    (made,) = revert(stream, v2, actor="alice").versions
    assert state_of(made) == {"a": 1, "c": 3}
    assert made.event.type == REVERT_EVENT
    assert made.event.causation_id == v2.event.id
    assert made.event.actor == "alice"
    assert made.branch == "main"


def test_it_writes_a_json_patch_on_a_patch_stream(project):
    stream = create_stream(project, "p", reducer="patch")
    ops = [
        [{"op": "add", "path": "/a", "value": [1, 2]}],
        [{"op": "replace", "path": "/a/0", "value": 9}],
        [{"op": "add", "path": "/b", "value": None}],
    ]
    v1, v2, v3 = append(stream, [NewEvent("p", {"patch": o}) for o in ops]).versions
    (made,) = revert(stream, v2).versions
    assert state_of(made) == {"a": [1, 2], "b": None}
    assert made.event.payload == {"patch": [{"op": "replace", "path": "/a/0", "value": 1}]}


def test_it_refuses_when_a_later_version_changed_the_same_path(stream):
    v1, v2, v3 = put(stream, {"a": 1}, {"a": 2}, {"a": 3})
    before = Event.objects.count()
    with pytest.raises(RevertConflict, match="does not apply cleanly.*changed /a") as caught:
        revert(stream, v2)
    assert caught.value.paths == ["/a"]
    assert Event.objects.count() == before


def test_it_refuses_what_is_not_on_the_branch_or_already_undone(stream):
    v1, v2 = put(stream, {"a": 1}, {"b": 2})
    fork(stream, "side", v1)
    (s1,) = put(stream, {"c": 3}, branch="side")
    with pytest.raises(RevertConflict, match="not on branch main"):
        revert(stream, s1, branch="main")
    with pytest.raises(RevertConflict, match="is the root"):
        revert(stream, v1)
    revert(stream, v2)
    with pytest.raises(RevertConflict, match="changes nothing"):
        revert(stream, v2)


def test_a_merge_is_reverted_against_its_first_parent(stream):
    (v1,) = put(stream, {"a": 1})
    fork(stream, "side", v1)
    put(stream, {"b": 2}, branch="side")
    m = merge(stream, "side", "main")
    plan = plan_revert(stream, m)
    assert [c.to_dict() for c in plan.changes] == [{"op": "remove", "path": "/b", "old": 2}]


def test_the_cli_reverts_and_dry_runs(stream):
    v1, v2 = put(stream, {"a": 1}, {"b": 2})
    out = json.loads(
        run("revert", "--project", "acme", "--stream", "pricing", "main", "--dry-run", "--json")
    )
    assert out["payload"] == {"b": None} and out["head"] == v2.pk
    assert Event.objects.count() == 2
    out = run("revert", "--project", "acme", "--stream", "pricing", "main")
    assert "reverts v" in out and "- /b: 2" in out
    with pytest.raises(CommandError, match="changes nothing"):
        run("revert", "--project", "acme", "--stream", "pricing", f"v{v2.pk}")
