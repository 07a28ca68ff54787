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
from continust.log.policy import make_policy
from continust.log.store import fork, merge
from continust.models import ReleasedVersion
from continust.read.bisect import PointerEquals, PythonPredicate, bisect_stream
from continust.retention import compaction
from continust.retention.policies import set_policy
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

        assert search.bisect(graph, [0], n - 1, test) == {broke}
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
    assert search.bisect(graph, [0], 7, lambda v: v not in bad_ones) == {4}
    # Good on the side branch: only the main line and the merge are candidates.
    assert search.bisect(graph, [5], 7, lambda v: v not in {6, 7}) == {6}
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


def test_a_skipped_version_is_stepped_around_and_can_leave_the_answer_open():
    graph = linear(20)
    tested: list[int] = []

    def away(node: int) -> bool | None:
        tested.append(node)
        return None if node in {9, 10, 11} else node < 15

    # The break (15) is away from the untestable versions: bisect still names it.
    assert search.bisect(graph, [0], 19, away) == {15}
    assert len(tested) <= math.ceil(math.log2(19)) + 3
    # The break (10) lies among untestable versions (8 to 12): the answer is every
    # version it may be, from the first untested to the first known bad, never a guess.
    among = search.bisect(graph, [0], 19, lambda n: None if 8 <= n <= 12 else n < 10)
    assert among == {8, 9, 10, 11, 12, 13}


@pytest.fixture
def compacted(stream):
    """main: v0 (good) … broke at the 10th of 20 appended after a fork; the fork keeps
    their merge base, ephemeral compaction releases the middle of main's history."""
    (base,) = put(stream, {"ok": True, "n": -1})
    fork(stream, "side", base)
    main = put(stream, *({"ok": n < 10, "n": n} for n in range(20)))
    set_policy(stream, make_policy("ephemeral", horizon_versions=4), actor="ops")
    compaction.run(compaction.request(stream, actor="ops").pk)
    released = set(
        ReleasedVersion.objects.filter(run__stream=stream).values_list("version_id", flat=True)
    )
    assert base.pk not in released and {v.pk for v in main[:16]} <= released
    return base, main


def test_versions_whose_state_was_released_are_skipped(stream, compacted):
    base, main = compacted
    result = bisect_stream(stream, [base], main[-1], PointerEquals("/ok", True))
    # v[0..15] are released, v[16] is the oldest kept and already bad.
    assert result.first_bad is None
    assert [v.pk for v in result.could_be] == [v.pk for v in main[:17]]
    assert {why for _, why in result.skipped} == {"state released by compaction"}
    assert result.as_dict()["first_bad"] is None
    assert result.summary().startswith(f"the first bad version is one of v{main[0].pk}, ")
    with pytest.raises(BisectRefused, match=f"state of v{main[3].pk} was released"):
        bisect_stream(stream, [main[3]], main[-1], PointerEquals("/ok", True))


def test_a_user_skips_versions_by_name(stream):
    versions = put(stream, *({"ok": n < 6, "n": n} for n in range(12)))
    prop = PointerEquals("/ok", True)
    found = bisect_stream(stream, [versions[0]], versions[-1], prop, skip=[versions[3]])
    assert found.first_bad.pk == versions[6].pk
    assert versions[3].pk not in {v for v, _ in found.tested}
    open_ = bisect_stream(stream, [versions[0]], versions[-1], prop, skip=[versions[6]])
    assert [v.pk for v in open_.could_be] == [versions[6].pk, versions[7].pk]
    assert open_.as_dict()["skipped"] == [{"version": versions[6].pk, "why": "skipped as asked"}]
    with pytest.raises(BisectRefused, match="cannot be skipped"):
        bisect_stream(stream, [versions[0]], versions[-1], prop, skip=[versions[-1]])
    text = run(
        "bisect",
        "--project",
        "acme",
        "--stream",
        "pricing",
        "--good",
        f"v{versions[0].pk}",
        "--bad",
        "main",
        "--skip",
        f"v{versions[6].pk}",
        "--pointer",
        "/ok",
        "--expect",
        "true",
    )
    assert text.startswith(f"the first bad version is one of v{versions[6].pk}, v{versions[7].pk}:")
