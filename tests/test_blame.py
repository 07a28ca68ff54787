"""Per-field blame, checked against a brute-force fold of random histories."""

from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from continust.audit.blame import blame, pointer_tokens, resolve, same
from continust.core.errors import InvalidEvent, InvalidName, MergeConflict, NotFound, NothingToMerge
from continust.documents.diff import MISSING, apply_merge_patch
from continust.graph.cache import graph_for
from continust.log.projects import create_stream
from continust.log.store import NewEvent, append, fork, merge
from continust.models import Version
from tests.conftest import put

pytestmark = pytest.mark.django_db

PATHS = ["/a", "/a/x", "/b/0", "/b/1", "/m/0", "/m/k~1j", ""]


def test_it_names_the_event_that_last_changed_a_path_and_the_earlier_values(stream):
    """
    v1 price 10 ─ v2 (other key) ─ v3 price 12 (bob) ─ v4 (other key)
    """
    tiers = [{"price": 10}, {"price": 20}, {"price": 30}]
    v1, v2 = put(stream, {"pricing": {"tiers": tiers}}, {"owner": "alice"})
    (v3,) = append(
        stream,
        [
            NewEvent(
                type="price.set",
                actor="bob",
                payload={"pricing": {"tiers": [*tiers[:2], {"price": 12}]}},
            )
        ],
    ).versions
    (v4,) = put(stream, {"owner": "carol"})
    found = blame(stream, v4, "/pricing/tiers/2/price")
    assert found.value == 12 and found.complete
    assert [(c.version.pk, c.value, c.previous) for c in found.changes] == [
        (v3.pk, 12, 30),
        (v1.pk, 30, MISSING),
    ]
    assert found.last.version.event.actor == "bob" and found.changes[-1].added


def test_a_merge_passes_blame_to_the_parent_that_holds_the_value(stream):
    """
    main:  v1 ─ v2 ──────── m
            └─ v3 (fix) ─┘        fix sets /b; main changed only /a
    """
    v1, v2 = put(stream, {"a": 1, "b": 1}, {"a": 2})
    fork(stream, "fix", v1)
    (v3,) = put(stream, {"b": 5}, branch="fix")
    m = merge(stream, "fix", "main")
    assert blame(stream, m, "/b").last.version.pk == v3.pk
    assert blame(stream, m, "/a").last.version.pk == v2.pk


def test_it_refuses_a_missing_path_and_a_bad_pointer(stream):
    (v1,) = put(stream, {"a": [1]})
    with pytest.raises(NotFound):
        blame(stream, v1, "/a/1")
    with pytest.raises(NotFound):
        blame(stream, v1, "/a/01")  # RFC 6901: no leading zeros
    with pytest.raises(InvalidName):
        blame(stream, v1, "a")


def test_it_stops_at_the_asked_depth(stream):
    versions = put(stream, *({"n": n} for n in range(30)))
    found = blame(stream, versions[-1], "/n", depth=5)
    assert len(found.changes) == 5 and not found.complete
    assert [c.value for c in found.changes] == [29, 28, 27, 26, 25]


# -- random histories against a brute-force fold -------------------------------------------

values = st.one_of(st.integers(0, 3), st.booleans(), st.just(1.0))
patches = st.fixed_dictionaries(
    {},
    optional={
        "a": st.one_of(values, st.none(), st.fixed_dictionaries({"x": values})),
        "b": st.lists(values, max_size=3),
        "m": st.one_of(st.none(), st.fixed_dictionaries({}, optional={"0": values, "k/j": values})),
    },
)
steps = st.lists(
    st.tuples(
        st.sampled_from(["main", "main", "side", "side", "fork", "merge"]),
        patches,
        st.sampled_from(["ann", "ben"]),
    ),
    min_size=5,
    max_size=20,
)
counter = itertools.count()


def build(project, plan):
    """Play a plan: appends to main or to a side branch (forked from main's head when
    first used), and merges of side into main."""
    stream = create_stream(project, f"random-{next(counter)}")
    for where, payload, actor in plan:
        heads = dict(stream.branches.values_list("name", "head_id"))
        if heads and where in {"side", "fork"} and "side" not in heads:
            fork(stream, "side", Version.objects.get(pk=heads["main"]))
        if where == "fork":
            continue
        if where == "merge" and "side" in heads:
            merge_side(stream, actor, choice=payload.get("a"))
        else:
            branch = "side" if where == "side" and heads else "main"
            append(stream, [NewEvent(type="set", payload=payload, actor=actor)], branch=branch)
    return stream


def merge_side(stream, actor, choice):
    """Merge side into main, resolving conflicts with one side's value or a new one."""
    try:
        merge(stream, "side", "main", actor=actor)
    except NothingToMerge:
        pass
    except MergeConflict as conflict:
        resolutions = {}
        for c in conflict.conflicts:
            pick = [c.ours, c.theirs, 7][len(repr(choice)) % 3]
            resolutions[c.path] = 7 if pick is MISSING else pick
        with contextlib.suppress(InvalidEvent):  # a resolution under a removed parent
            merge(stream, "side", "main", actor=actor, resolutions=resolutions)


def folded_states(stream):
    """Fold every ordinary event from scratch; take merges' states as recorded."""
    graph = graph_for(stream)
    states = {}
    for version in Version.objects.filter(stream=stream).select_related("event", "state"):
        parents = graph.parents(version.pk)
        if len(parents) > 1:
            states[version.pk] = version.state.data
        else:
            before = states[parents[0]] if parents else {}
            states[version.pk] = apply_merge_patch(before, version.event.payload)
    return graph, states


def brute_blame(graph, states, version_id, path, depth=20):
    tokens = pointer_tokens(path)

    def at(v):
        return resolve(states[v], tokens)

    found, current, value = [], version_id, at(version_id)
    while len(found) < depth:
        while True:
            holder = [p for p in graph.parents(current) if same(at(p), value)]
            if not holder:
                break
            current = holder[0]
        parents = graph.parents(current)
        previous = at(parents[0]) if parents else MISSING
        found.append((current, value, previous))
        if previous is MISSING:
            break
        current, value = parents[0], previous
    return found


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=steps, data=st.data())
def test_blame_agrees_with_a_brute_force_fold(project, plan, data):
    stream = build(project, plan)
    graph, states = folded_states(stream)
    event("has a merge" if any(len(graph.parents(v)) > 1 for v in states) else "linear")
    for version in Version.objects.filter(stream=stream):
        assert version.state.data == states[version.pk]
    if not states:
        return
    version_id = data.draw(st.sampled_from(sorted(states)))
    for path in PATHS:
        version = Version.objects.get(pk=version_id)
        if resolve(states[version_id], pointer_tokens(path)) is MISSING:
            with pytest.raises(NotFound):
                blame(stream, version, path)
            continue
        found = blame(stream, version, path)
        expected = brute_blame(graph, states, version_id, path)
        got = [(c.version.pk, c.value, c.previous) for c in found.changes]
        assert len(got) == len(expected), path
        for (gv, gval, gprev), (ev, eval_, eprev) in zip(got, expected, strict=True):
            assert gv == ev and same(gval, eval_) and same(gprev, eprev), path
