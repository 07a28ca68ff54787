"""Revisions as git users type them: main~3, v12^2, A..B, tags; one parser, every surface."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from continust.audit.tags import create_tag
from continust.core.errors import AmbiguousName, BadRevision, InvalidName, NotFound
from continust.core.parsing import Step, parse_revision, parse_revision_range
from continust.log.lookup import find_version, resolve_range, resolve_version
from continust.log.store import fork, merge, move_branch
from tests.conftest import put

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def graph(stream):
    """
    main:  a - b - c ------ m - e
                \\          /
    side:        d1 - d2 -
    """
    a, b, c = put(stream, {"n": 1}, {"n": 2}, {"n": 3})
    fork(stream, "side", b)
    d1, d2 = put(stream, {"side": 1}, {"side": 2}, branch="side")
    m = merge(stream, "side", "main")
    (e,) = put(stream, {"n": 4})
    return {"a": a, "b": b, "c": c, "d1": d1, "d2": d2, "m": m, "e": e}


def test_it_parses_steps():
    revision = parse_revision("main~3^2~")
    assert revision.base.text == "main"
    assert revision.steps == (Step("~", 3), Step("^", 2), Step("~", 1))
    assert parse_revision("v120^2").base.number == 120
    assert parse_revision("main").steps == ()


@pytest.mark.parametrize("text", ["~3", "^", "a..b", "main~x", "main~99999999999999999999"])
def test_it_refuses_what_is_no_revision(text):
    with pytest.raises(BadRevision):
        parse_revision(text)


def test_it_parses_a_range():
    assert parse_revision_range(" main~2..side ") == ("main~2", "side")
    for text in ("main..", "..main", "a...b", "a..b..c"):
        with pytest.raises(BadRevision):
            parse_revision_range(text)


def test_tilde_walks_first_parents(stream, graph):
    assert resolve_version(stream, "main~0").pk == graph["e"].pk
    assert resolve_version(stream, "main~").pk == graph["m"].pk
    assert resolve_version(stream, "main~2").pk == graph["c"].pk  # first parent of the merge
    assert resolve_version(stream, "main~4").pk == graph["a"].pk
    assert resolve_version(stream, f"v{graph['e'].pk}~1^2").pk == graph["d2"].pk


def test_caret_takes_the_nth_parent(stream, graph):
    m = graph["m"].pk
    assert resolve_version(stream, f"v{m}^").pk == graph["c"].pk
    assert resolve_version(stream, f"v{m}^2").pk == graph["d2"].pk
    assert resolve_version(stream, f"{m}^2~1").pk == graph["d1"].pk
    assert resolve_version(stream, f"v{m}^0").pk == m
    assert resolve_version(stream, "side^^").pk == graph["b"].pk


def test_a_walk_off_the_graph_names_what_did_not_resolve(stream, graph):
    with pytest.raises(BadRevision, match="walks past the root"):
        resolve_version(stream, "main~5")
    with pytest.raises(BadRevision, match=r"\^3 is no version: v\d+ has 2 parents"):
        resolve_version(stream, f"v{graph['m'].pk}^3")
    with pytest.raises(BadRevision, match="has no version, branch, tag or key 'nope'"):
        resolve_version(stream, "nope~1")
    with pytest.raises(BadRevision, match="is a range"):
        resolve_version(stream, "main..side")


def test_a_plain_unknown_name_is_still_not_found(stream, graph):
    with pytest.raises(NotFound) as caught:
        resolve_version(stream, "nope")
    assert not isinstance(caught.value, BadRevision)


def test_a_name_holding_revision_marks_wins_over_the_walk(stream, graph):
    # Made before new branch names were held to the tag rules, or imported from then.
    move_branch(stream, "fix~1", graph["a"], reason="fork")
    assert resolve_version(stream, "fix~1").pk == graph["a"].pk


@pytest.mark.parametrize("name", ["v3", "3", "fix~1", "x^2", "a..b", "s:1"])
def test_a_new_branch_may_not_be_named_as_a_revision_reads_otherwise(stream, graph, name):
    with pytest.raises((AmbiguousName, InvalidName)):
        fork(stream, name, graph["a"])
    with pytest.raises(CommandError, match="branch name"):
        run("fork", "--project", "acme", "--stream", "pricing", "--at", "main", "--name", name)
    assert not stream.branches.filter(name=name).exists()


def test_tags_name_versions(stream, graph):
    create_tag(stream, "release-1", graph["c"], actor="alice")
    assert resolve_version(stream, "release-1").pk == graph["c"].pk
    assert resolve_version(stream, "release-1~1").pk == graph["b"].pk


def test_a_range_names_two_versions(stream, graph):
    a, b = resolve_range(stream, "main~2..side")
    assert (a.pk, b.pk) == (graph["c"].pk, graph["d2"].pk)
    with pytest.raises(BadRevision, match="range 'main..nope'"):
        resolve_range(stream, "main..nope")


def test_the_search_box_reads_revisions(stream, graph):
    assert find_version(stream, "main~2").pk == graph["c"].pk
    with pytest.raises(BadRevision, match="walks past the root"):
        find_version(stream, "main~9")


def test_the_cli_reads_revisions(stream, graph):
    assert '"n": 3' in run("state", "--project", "acme", "--stream", "pricing", "main~2")
    out = run("lineage", "--project", "acme", "--stream", "pricing", "between", "main~2..side")
    assert out.split() == [str(graph["d2"].pk), str(graph["d1"].pk)]
    out = run("diff", "--project", "acme", "--stream", "pricing", "main~4..main~3")
    assert out == "~ /n: 1 -> 2\n"
    with pytest.raises(CommandError, match="walks past the root"):
        run("state", "--project", "acme", "--stream", "pricing", "main~9")
    with pytest.raises(CommandError, match="is a range"):
        run("fork", "--project", "acme", "--stream", "pricing", "--at", "a..b", "--name", "x")


def test_an_int_reference_still_reads(stream, graph):
    assert resolve_version(stream, graph["a"].pk).pk == graph["a"].pk
    with pytest.raises(NotFound):
        resolve_version(stream, 999999)
    with pytest.raises(InvalidName):
        resolve_version(stream, "")
