"""Merging branches: three-way against the merge base(s), conflicts listed, nothing dropped."""

from __future__ import annotations

import pytest

from continust.audit.integrity import verify
from continust.core.errors import MergeConflict, NothingToMerge
from continust.graph.parents import parents_of
from continust.log.store import fork, merge
from continust.models import Branch, Event, Version, VersionParent
from tests.conftest import put

pytestmark = pytest.mark.django_db


def head(stream, name="main"):
    return Branch.objects.get(stream=stream, name=name).head


def test_it_merges_changes_from_both_sides(stream):
    r"""
    main:  v1 -- v2 ------- m
             \            /
    sale:     v3 ---------
    """
    (v1,) = put(stream, {"price": 10, "trial": 14})
    put(stream, {"price": 12})
    fork(stream, "sale", v1)
    put(stream, {"trial": 30}, branch="sale")
    merged = merge(stream, "sale", "main", actor="alice")
    assert merged.state.data == {"price": 12, "trial": 30}
    main_before = merged.first_parent_id
    assert parents_of(merged.pk) == [main_before, head(stream, "sale").pk]
    # The first parent is the version's own column; only the second is a link row.
    assert list(VersionParent.objects.filter(child=merged).values_list("parent_id", "index")) == [
        (head(stream, "sale").pk, 1)
    ]
    assert merged.event.type == "continust.merge"
    assert head(stream).pk == merged.pk
    assert verify().ok


def test_it_lists_conflicts_and_writes_nothing(stream):
    (v1,) = put(stream, {"price": 10})
    put(stream, {"price": 12})
    fork(stream, "sale", v1)
    put(stream, {"price": 8}, branch="sale")
    before = Event.objects.count()
    with pytest.raises(MergeConflict) as caught:
        merge(stream, "sale", "main")
    (conflict,) = caught.value.conflicts
    assert (conflict.path, conflict.base, conflict.ours, conflict.theirs) == ("/price", 10, 12, 8)
    assert Event.objects.count() == before


def test_it_merges_with_resolutions(stream):
    (v1,) = put(stream, {"price": 10})
    put(stream, {"price": 12})
    fork(stream, "sale", v1)
    put(stream, {"price": 8}, branch="sale")
    merged = merge(stream, "sale", "main", resolutions={"/price": 9})
    assert merged.state.data == {"price": 9}
    assert verify().ok


def test_it_refuses_a_merge_with_nothing_new(stream):
    (v1,) = put(stream, {"price": 10})
    fork(stream, "old", v1)
    put(stream, {"price": 11})
    with pytest.raises(NothingToMerge):
        merge(stream, "old", "main")


def test_it_merges_a_criss_cross_against_a_virtual_base(stream):
    r"""
    main:    a1 ---- am -- z ---- m
            /   \   /            /
    v1 ----      \ /            /
            \     X            /
             \   / \          /
    b:       b1 ---- bm -- w -
    """
    (v1,) = put(stream, {"x": 0, "y": 0})
    fork(stream, "b", v1)
    (a1,) = put(stream, {"x": 1})
    (b1,) = put(stream, {"y": 1}, branch="b")
    fork(stream, "a-draft", a1)
    fork(stream, "b-draft", b1)
    merge(stream, "b-draft", "main")
    merge(stream, "a-draft", "b")
    put(stream, {"z": 1})
    put(stream, {"w": 1}, branch="b")
    from continust.graph.cache import graph_for

    assert sorted(graph_for(stream).merge_bases(head(stream).pk, head(stream, "b").pk)) == [
        a1.pk,
        b1.pk,
    ]
    merged = merge(stream, "b", "main")
    assert merged.state.data == {"x": 1, "y": 1, "z": 1, "w": 1}
    assert verify().ok
    assert Version.objects.filter(reducer="merge3").count() == 3
