"""Tests for continust.documents.diff: structural diffs, patches and three-way merges."""

from __future__ import annotations

import copy
import json

import jsonpatch
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from continust.documents.diff import (
    MISSING,
    Change,
    Conflict,
    NullNotExpressible,
    apply_merge_patch,
    diff,
    format_changes,
    merge_patch,
    three_way_diff,
    three_way_merge,
    to_json_patch,
)

# -- strategies -----------------------------------------------------------------

# Keys include the characters JSON Pointer escapes, and ones that look like it.
keys = st.sampled_from(["a", "b", "c", "id", "x/y", "m~n", "~1", "/", "", "0"]) | st.text(
    max_size=4
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(max_size=3)
)


def json_values(max_leaves=12):
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=max_leaves,
    )


small_values = json_values(max_leaves=3)


@st.composite
def identity_lists(draw, key="id"):
    """Two lists of identity-keyed objects: b inserts, removes, reorders and edits a's items."""
    pool = draw(st.lists(st.integers(0, 30) | st.text(max_size=2), unique=True, max_size=10))
    a_ids = draw(st.permutations(pool))[: draw(st.integers(0, len(pool)))]
    b_ids = draw(st.permutations(pool))[: draw(st.integers(0, len(pool)))]

    def item(ident):
        return {key: ident, "v": draw(st.integers(0, 2) | small_values)}

    return [item(i) for i in a_ids], [item(i) for i in b_ids]


@st.composite
def plain_lists(draw):
    """Two lists of scalars with shared runs, as edited lists are."""
    a = draw(st.lists(st.integers(0, 4) | st.booleans(), max_size=12))
    b = list(a)
    for _ in range(draw(st.integers(0, 4))):
        action = draw(st.sampled_from(["insert", "remove", "replace"]))
        if action == "insert" or not b:
            b.insert(draw(st.integers(0, len(b))), draw(st.integers(0, 9)))
        elif action == "remove":
            del b[draw(st.integers(0, len(b) - 1))]
        else:
            b[draw(st.integers(0, len(b) - 1))] = draw(small_values)
    return a, b


@st.composite
def edited(draw):
    """A document and an edit of it (most edits leave most of it alone)."""
    a = draw(json_values())
    return a, _edit(draw, a)


def _edit(draw, value):
    if draw(st.integers(0, 5)) == 0:
        return draw(small_values)
    if isinstance(value, dict):
        result = {k: _edit(draw, v) for k, v in value.items() if draw(st.integers(0, 5))}
        result.update(draw(st.dictionaries(keys, small_values, max_size=2)))
        return result
    if isinstance(value, list):
        result = [_edit(draw, v) for v in value if draw(st.integers(0, 5))]
        for item in draw(st.lists(small_values, max_size=2)):
            result.insert(draw(st.integers(0, len(result))), item)
        return result
    return value


document_pairs = (
    st.tuples(json_values(), json_values())
    | edited()
    | identity_lists()
    | identity_lists(key="name")
    | plain_lists()
    | identity_lists().map(lambda pair: ({"items": pair[0]}, {"items": pair[1]}))
)


def same(x, y):
    """Tell whether two JSON values are equal, types included (true is not 1)."""
    return json.dumps(x, sort_keys=True) == json.dumps(y, sort_keys=True)


def without_nulls(value):
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    return value


# -- diff and JSON Patch ----------------------------------------------------------


@given(document_pairs)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_it_produces_a_json_patch_that_turns_a_into_b(pair):
    a, b = pair
    before = copy.deepcopy(a)
    patched = jsonpatch.apply_patch(a, to_json_patch(a, b))
    assert same(patched, b)
    assert same(a, before)


@given(document_pairs)
@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
def test_it_finds_no_change_between_equal_documents(pair):
    a, _ = pair
    assert diff(a, copy.deepcopy(a)) == []


@given(identity_lists())
def test_it_matches_identity_keyed_items_instead_of_replacing_them(pair):
    a, b = pair
    shared = {x["id"] for x in a} & {x["id"] for x in b}
    top_level = [c.op for c in diff(a, b) if c.path.count("/") == 1]
    assert "replace" not in top_level
    assert top_level.count("remove") == len(a) - len(shared)
    assert top_level.count("add") == len(b) - len(shared)


def test_it_reports_one_change_for_one_item_inserted_into_a_long_list():
    a = list(range(1000))
    b = a[:500] + ["new"] + a[500:]
    assert diff(a, b) == [Change("/500", "add", new="new")]


def test_it_reports_one_change_for_one_object_inserted_into_a_long_list():
    a = [{"n": i, "tags": ["x"]} for i in range(1000)]
    b = a[:10] + [{"n": -1}] + a[10:]
    assert diff(a, b) == [Change("/10", "add", new={"n": -1})]


def test_it_reports_one_change_for_one_item_inserted_among_identity_keyed_items():
    a = [{"id": i, "price": i * 10} for i in range(1000)]
    b = a[:700] + [{"id": "new", "price": 1}] + a[700:]
    assert diff(a, b) == [Change("/700", "add", new={"id": "new", "price": 1})]


def test_it_aligns_lists_around_edits_at_both_ends():
    a = ["first", *range(100), "last"]
    b = ["FIRST", *range(50), "inserted", *range(50, 100), "LAST"]
    assert diff(a, b) == [
        Change("/0", "replace", "first", "FIRST"),
        Change("/101", "replace", "last", "LAST"),
        Change("/51", "add", new="inserted"),
    ]


def test_it_locates_changes_inside_identity_matched_items():
    a = {"pricing": {"tiers": [{"id": "free", "price": 0}, {"id": "pro", "price": 10}]}}
    b = {"pricing": {"tiers": [{"id": "pro", "price": 12}, {"id": "free", "price": 0}]}}
    changes = diff(a, b)
    assert changes == [
        Change("/pricing/tiers/1/price", "replace", 10, 12),
        Change(
            "/pricing/tiers/1",
            "move",
            new={"id": "free", "price": 0},
            from_path="/pricing/tiers/0",
        ),
    ]


def test_it_moves_only_the_items_that_left_their_place():
    a = [{"key": k} for k in "abcdefgh"]
    b = [{"key": k} for k in "bcdefgha"]
    changes = diff(a, b)
    assert [(c.op, c.from_path, c.path) for c in changes] == [("move", "/0", "/7")]


def test_it_replaces_a_value_whose_type_changes():
    assert diff({"x": 1}, {"x": "1"}) == [Change("/x", "replace", 1, "1")]
    assert diff({"x": [1]}, {"x": {"0": 1}}) == [Change("/x", "replace", [1], {"0": 1})]
    assert diff([1], {"a": 1}) == [Change("", "replace", [1], {"a": 1})]


def test_it_tells_apart_numbers_that_compare_equal_but_are_written_differently():
    assert diff({"x": 1}, {"x": True}) == [Change("/x", "replace", 1, True)]
    assert diff([{"a": 1}], [{"a": True}]) == [Change("/0/a", "replace", 1, True)]
    assert diff([1], [1.0]) == [Change("/0", "replace", 1, 1.0)]
    assert diff({"x": 0.0}, {"x": -0.0}) == [Change("/x", "replace", 0.0, -0.0)]


def test_it_escapes_slash_and_tilde_in_json_pointers():
    a = {"a/b": {"m~n": 1}, "~1": 1}
    b = {"a/b": {"m~n": 2}}
    changes = diff(a, b)
    assert [c.path for c in changes] == ["/a~1b/m~0n", "/~01"]
    assert jsonpatch.apply_patch(a, to_json_patch(a, b)) == b


def test_it_reports_absent_values_as_missing_and_leaves_them_out_of_json():
    add, remove = diff({"a": None}, {"b": None})[::-1]
    assert (add.old, add.new, remove.old, remove.new) == (MISSING, None, None, MISSING)
    assert add.to_dict() == {"op": "add", "path": "/b", "new": None}
    assert remove.to_dict() == {"op": "remove", "path": "/a", "old": None}


def test_it_renders_changes_as_text_one_line_each():
    a = {"name": "basic", "tags": ["a", "b"], "gone": 1, "line\nbreak": 1}
    b = {"name": "pro", "tags": ["a", "b", "c"], "line\nbreak": 2}
    assert format_changes(diff(a, b)) == "\n".join(
        [
            '~ /name: "basic" -> "pro"',
            '+ /tags/2: "c"',
            "- /gone: 1",
            '~ "/line\\nbreak": 1 -> 2',
        ]
    )
    assert format_changes(diff(1, 2)) == '~ "": 1 -> 2'
    moves = diff([{"id": 1}, {"id": 2}], [{"id": 2}, {"id": 1}])
    assert format_changes(moves) == "> /0 -> /1"


# -- merge patch (RFC 7396) ------------------------------------------------------


@given(document_pairs)
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_it_produces_a_merge_patch_that_turns_a_into_b_without_nulls(pair):
    a, b = pair
    b = without_nulls(b)
    before = copy.deepcopy(a)
    assert same(apply_merge_patch(a, merge_patch(a, b)), b)
    assert same(a, before)


@pytest.mark.parametrize(
    "a, b, lost",
    [
        ({"keep": 1, "x": 1}, {"keep": 1, "x": None}, ("/x",)),
        ({}, {"new": None}, ("/new",)),
        ({"o": 1}, {"o": {"inner": None, "k": 1}}, ("/o/inner",)),
        ({"o": {"a": 1}}, {"o": {"a": None}}, ("/o/a",)),
    ],
)
def test_it_refuses_a_merge_patch_that_would_drop_a_null_and_names_where(a, b, lost):
    """RFC 7396 reads null as "remove": the patch cannot set a value to null, so it is
    refused naming the paths, never written with those keys silently dropped."""
    with pytest.raises(NullNotExpressible) as refused:
        merge_patch(a, b)
    assert refused.value.paths == lost
    assert "JSON Patch" in str(refused.value)


def test_nulls_the_patch_need_not_say_are_fine():
    a = {"x": None, "l": [None], "y": 1}
    assert merge_patch(a, {"x": None, "l": [None, None], "y": 2}) == {"l": [None, None], "y": 2}
    assert merge_patch({"gone": None}, {}) == {"gone": None}


def test_it_makes_a_merge_patch_of_only_what_changed():
    a = {"title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"}, "tags": [1]}
    b = {"title": "Hello!", "author": {"givenName": "John"}, "tags": [1], "phone": "+01"}
    assert merge_patch(a, b) == {
        "title": "Hello!",
        "author": {"familyName": None},
        "phone": "+01",
    }
    assert merge_patch(a, [1]) == [1]


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [  # RFC 7396, Appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_it_applies_merge_patches_as_rfc_7396_specifies(target, patch, result):
    snapshot = copy.deepcopy((target, patch))
    assert apply_merge_patch(target, patch) == result
    assert (target, patch) == snapshot


# -- three-way merge -----------------------------------------------------------------


def test_it_takes_a_change_made_on_one_side():
    base = {"plan": "basic", "seats": 1}
    merged = three_way_merge(base, {"plan": "pro", "seats": 1}, {"plan": "basic", "seats": 5})
    assert merged.state == {"plan": "pro", "seats": 5}
    assert merged.conflicts == ()


def test_it_takes_the_same_change_on_both_sides_once():
    base = {"tags": ["a"], "n": 1}
    ours = {"tags": ["a", "b"], "n": 2}
    merged = three_way_merge(base, ours, copy.deepcopy(ours))
    assert merged.state == ours
    assert merged.conflicts == ()


def test_it_keeps_ours_and_reports_a_conflict_when_both_change_a_value():
    merged = three_way_merge({"price": 10, "a": 1}, {"price": 12, "a": 1}, {"price": 15, "a": 2})
    assert merged.state == {"price": 12, "a": 2}
    assert merged.conflicts == (Conflict("/price", 10, 12, 15),)


def test_it_reports_a_conflict_when_one_side_deletes_what_the_other_modifies():
    base = {"promo": {"code": "X", "off": 10}}
    merged = three_way_merge(base, {}, {"promo": {"code": "X", "off": 20}})
    assert merged.state == {}
    assert merged.conflicts == (
        Conflict("/promo", base["promo"], MISSING, {"code": "X", "off": 20}),
    )

    merged = three_way_merge(base, {"promo": {"code": "Y", "off": 10}}, {})
    assert merged.state == {"promo": {"code": "Y", "off": 10}}
    assert merged.conflicts == (
        Conflict("/promo", base["promo"], {"code": "Y", "off": 10}, MISSING),
    )


def test_it_merges_deletions_on_both_sides_and_additions_on_either():
    merged = three_way_merge({"a": 1, "b": 2}, {"b": 2, "c": 3}, {"b": 2, "d": 4})
    assert merged.state == {"b": 2, "c": 3, "d": 4}
    assert merged.conflicts == ()


def test_it_takes_a_one_sided_list_change():
    merged = three_way_merge({"l": [1, 2]}, {"l": [1, 2]}, {"l": [2, 1, 3]})
    assert merged.state == {"l": [2, 1, 3]}


def test_it_merges_edits_to_different_items_of_a_plain_list():
    """As three-way text merges do: runs one side changed apart from the other merge."""
    merged = three_way_merge({"l": [1, 2]}, {"l": [1, 2, 3]}, {"l": [0, 1, 2]})
    assert merged.state == {"l": [0, 1, 2, 3]} and merged.conflicts == ()
    merged = three_way_merge(["a", "b", "c", "d"], ["a", "B", "c", "d"], ["a", "b", "c", "D"])
    assert merged.state == ["a", "B", "c", "D"] and merged.conflicts == ()
    merged = three_way_merge([1, 2, 3, 4], [1, 3, 4], [1, 2, 3, 4, 5])
    assert merged.state == [1, 3, 4, 5] and merged.conflicts == ()
    # Both sides made the same change: it is taken once.
    merged = three_way_merge([1, 2, 3], [1, 9, 3], [1, 9, 3, 4])
    assert merged.state == [1, 9, 3, 4] and merged.conflicts == ()


@pytest.mark.parametrize(
    "base, ours, theirs",
    [
        ([1, 2, 3], [1, 8, 3], [1, 9, 3]),  # one item changed two ways
        ([1, 2], [1, 5, 2], [1, 6, 2]),  # different items inserted at one place
        ([1, 2, 3], [1, 3], [1, 7, 3]),  # removed on one side, changed on the other
    ],
)
def test_it_reports_a_conflict_where_both_sides_changed_one_run_differently(base, ours, theirs):
    merged = three_way_merge({"l": base}, {"l": ours}, {"l": theirs})
    assert merged.state == {"l": ours}
    assert merged.conflicts == (Conflict("/l", base, ours, theirs),)


@given(plain_lists(), plain_lists())
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_a_clean_plain_list_merge_keeps_each_sides_changes(ours_pair, theirs_pair):
    """Where both sides start from one base and the merge is clean, taking it back to
    either side's edits agrees with that side wherever the other did not touch."""
    base = ours_pair[0]
    ours = ours_pair[1]
    theirs = theirs_pair[1] if same(theirs_pair[0], base) else base
    merged = three_way_merge(base, ours, theirs)
    if merged.conflicts:
        return
    if same(ours, base):
        assert same(merged.state, theirs)
    if same(theirs, base):
        assert same(merged.state, ours)
    assert same(three_way_merge(base, ours, ours).state, ours)


def test_it_merges_identity_keyed_lists_item_by_item():
    r"""
    base   free  pro   team
    ours   free  pro*        ent      (pro repriced, team removed, ent added)
    theirs free  pro   team* edu      (team renamed, edu added)
    """
    base = [{"id": "free", "p": 0}, {"id": "pro", "p": 10}, {"id": "team", "p": 30}]
    ours = [{"id": "free", "p": 0}, {"id": "pro", "p": 12}, {"id": "ent", "p": 99}]
    theirs = [
        {"id": "free", "p": 0},
        {"id": "pro", "p": 10},
        {"id": "team", "p": 30, "label": "Teams"},
        {"id": "edu", "p": 5},
    ]
    merged = three_way_merge(base, ours, theirs)
    assert merged.state == [
        {"id": "free", "p": 0},
        {"id": "pro", "p": 12},
        {"id": "edu", "p": 5},
        {"id": "ent", "p": 99},
    ]
    assert merged.conflicts == (Conflict("/2", base[2], MISSING, theirs[2]),)


def test_it_keeps_their_reordering_of_identity_keyed_items():
    base = [{"id": 1}, {"id": 2}, {"id": 3}]
    ours = [{"id": 1}, {"id": 2, "x": True}, {"id": 3}]
    theirs = [{"id": 3}, {"id": 1}, {"id": 2}]
    merged = three_way_merge(base, ours, theirs)
    assert merged.state == [{"id": 3}, {"id": 1}, {"id": 2, "x": True}]
    assert merged.conflicts == ()


def test_it_reports_conflicts_inside_identity_keyed_items_at_their_merged_index():
    base = [{"id": "a", "v": 1}, {"id": "b", "v": 1}]
    ours = [{"id": "new"}, {"id": "a", "v": 1}, {"id": "b", "v": 2}]
    theirs = [{"id": "a", "v": 1}, {"id": "b", "v": 3}]
    merged = three_way_merge(base, ours, theirs)
    assert merged.state == ours
    assert merged.conflicts == (Conflict("/2/v", 1, 2, 3),)


def test_it_reports_a_conflict_when_both_sides_reorder_differently():
    base = [{"id": 1}, {"id": 2}, {"id": 3}]
    ours = [{"id": 2}, {"id": 1}, {"id": 3}]
    theirs = [{"id": 1}, {"id": 3}, {"id": 2}]
    merged = three_way_merge({"l": base}, {"l": ours}, {"l": theirs})
    assert merged.state == {"l": ours}
    assert merged.conflicts == (Conflict("/l", base, ours, theirs),)


@given(json_values(), document_pairs)
@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
def test_it_merges_any_one_sided_change_without_conflict(base, pair):
    _, changed = pair
    for merged in (three_way_merge(base, changed, base), three_way_merge(base, base, changed)):
        assert same(merged.state, changed)
        assert merged.conflicts == ()


@given(document_pairs, document_pairs)
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_it_merges_changes_to_different_parts_without_conflict(left, right):
    base = {"left": left[0], "right": right[0]}
    ours = {"left": left[1], "right": right[0]}
    theirs = {"left": left[0], "right": right[1]}
    merged = three_way_merge(base, ours, theirs)
    assert same(merged.state, {"left": left[1], "right": right[1]})
    assert merged.conflicts == ()


@given(document_pairs, document_pairs)
@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
def test_it_never_changes_its_inputs_when_merging(pair, other):
    base, ours = pair
    theirs = other[1]
    snapshot = copy.deepcopy((base, ours, theirs))
    three_way_merge(base, ours, theirs)
    assert same((base, ours, theirs), snapshot)


def test_it_diffs_both_sides_against_the_base():
    base = {"a": 1, "b": 1}
    result = three_way_diff(base, {"a": 2, "b": 1}, {"a": 3, "b": 2})
    assert result.ours == (Change("/a", "replace", 1, 2),)
    assert result.theirs == (Change("/a", "replace", 1, 3), Change("/b", "replace", 1, 2))
    assert result.conflicts == (Conflict("/a", 1, 2, 3),)


# -- diff agrees with the hash --------------------------------------------------


@given(json_values(), json_values())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_two_documents_differ_exactly_when_their_canonical_forms_do(a, b):
    """`10` and `10.0` (and `1` and `true`, `0.0` and `-0.0`) are different values: their
    canonical JSON, and so their hashes, differ, and diff says they changed. Decided once,
    as the log's canonical form writes them."""
    from hypothesis import assume

    from continust.log.canonical import canonical_json, storable

    assume("\x00" not in json.dumps([a, b]) and "\\u0000" not in json.dumps([a, b]))
    a, b = storable(a), storable(b)
    assert (diff(a, b) == []) == (canonical_json(a) == canonical_json(b))


@pytest.mark.parametrize(
    "a, b", [(10, 10.0), (1, True), (0, False), (0.0, 0), ({"n": 10}, {"n": 10.0})]
)
def test_numbers_written_differently_are_a_change_as_their_hashes_are(a, b):
    from continust.log.canonical import state_hash

    assert state_hash(a) != state_hash(b)
    assert diff(a, b) != []
