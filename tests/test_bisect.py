"""Bisect: the first version where a property broke, in O(log n) state reads, right on merges."""

from __future__ import annotations

import json
import math
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from continust.core.errors import BisectRefused, InvalidName
from continust.graph import bisect as search
from continust.graph.lineage import VersionGraph
from continust.log.store import fork, merge
from continust.read.bisect import PointerEquals, PythonPredicate, bisect_stream
from tests.conftest import put

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def linear(n: int) -> VersionGraph[int]:
    graph: VersionGraph[int] = VersionGraph()
    for node in range(n):
        graph.add(node, [node - 1] if node else [])
    return graph


@pytest.mark.parametrize("n", [2, 3, 17, 100, 1025])
def test_linear_history_takes_log_n_tests(n):
    graph = linear(n)
    for broke in {1, max(1, n // 3), n - 1}:
        tested: list[int] = []

        def test(node, broke=broke, tested=tested):
            tested.append(node)
            return node < broke

        assert search.bisect(graph, [0], n - 1, test) == broke
        assert len(tested) <= math.ceil(math.log2(n - 1))


def test_merges_are_bisected_as_git_does():
    """
    0 - 1 - 2 ------ 6 - 7
         \\          /
          3 - 4 - 5
    The property broke at 4, on the merged side; 2 and the main line before 6 are good.
    """
    graph: VersionGraph[int] = VersionGraph()
    for node, parents in [
        (0, []),
        (1, [0]),
        (2, [1]),
        (3, [1]),
        (4, [3]),
        (5, [4]),
        (6, [2, 5]),
        (7, [6]),
    ]:
        graph.add(node, parents)
    bad_ones = {4, 5, 6, 7}
    assert search.bisect(graph, [0], 7, lambda v: v not in bad_ones) == 4
    # Good on the side branch: only the main line and the merge are candidates.
    assert search.bisect(graph, [5], 7, lambda v: v not in {6, 7}) == 6
    assert search.start(graph, [5], 7).candidates == {2, 6, 7}


def test_it_bisects_a_stream_by_pointer(stream):
    versions = put(stream, *({"ok": True, "n": i} for i in range(40)))
    versions += put(stream, *({"ok": False, "n": i} for i in range(40, 64)))
    result = bisect_stream(stream, [versions[0]], versions[-1], PointerEquals("/ok", True))
    assert result.first_bad.pk == versions[40].pk
    assert result.candidates == 63
    assert result.reads <= 2 + math.ceil(math.log2(63))


def test_it_checks_the_ends_it_is_given(stream):
    v1, v2, v3 = put(stream, {"ok": True}, {"ok": False}, {"ok": True})
    with pytest.raises(BisectRefused, match="holds at bad"):
        bisect_stream(stream, [v1], v3, PointerEquals("/ok", True))
    with pytest.raises(BisectRefused, match="does not hold at good"):
        bisect_stream(stream, [v2], v3, PointerEquals("/ok", True))
    with pytest.raises(BisectRefused, match="is an ancestor of good"):
        bisect_stream(stream, [v3], v1, PointerEquals("/ok", True))


def test_a_python_predicate_is_an_expression_over_state(stream):
    with pytest.raises(InvalidName, match="not a Python expression"):
        PythonPredicate("state[")
    assert PythonPredicate("state['n'] < 3").holds({"n": 2})
    assert not PythonPredicate("state['missing'] < 3").holds({"n": 2})
    assert not PythonPredicate("__import__('os')").holds({})


def test_the_cli_bisects_on_a_merged_history(stream):
    (root,) = put(stream, {"limit": 10})
    fork(stream, "side", root)
    put(stream, {"x": 1}, {"limit": 99}, {"y": 1}, branch="side")
    put(stream, {"z": 1}, {"w": 1})
    merge(stream, "side", "main")
    out = json.loads(
        run(
            "bisect",
            "--project",
            "acme",
            "--stream",
            "pricing",
            "--good",
            "main~3",
            "--bad",
            "main",
            "--run",
            "state['limit'] <= 10",
            "--json",
        )
    )
    side = put(stream, {"v": 1}, branch="side")  # noqa: F841  (later versions change nothing)
    assert out["first_bad"] == root.pk + 2
    assert out["states_read"] >= 2
    text = run(
        "bisect",
        "--project",
        "acme",
        "--stream",
        "pricing",
        "--good",
        f"v{root.pk}",
        "--bad",
        "main",
        "--pointer",
        "/limit",
        "--expect",
        "10",
    )
    assert text.startswith(f"v{root.pk + 2} is the first bad version")
    with pytest.raises(CommandError, match="--run EXPR, or --pointer"):
        run(
            "bisect",
            "--project",
            "acme",
            "--stream",
            "pricing",
            "--good",
            "main~3",
            "--bad",
            "main",
            "--pointer",
            "/limit",
        )
