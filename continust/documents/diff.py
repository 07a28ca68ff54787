"""Compare, patch and merge JSON documents.

A structural diff is a list of `Change`s that, applied in order, turn the first
document into the second: each one is also an RFC 6902 operation, so
`to_json_patch` is the diff written as a JSON Patch. Removals and edits name
list indices as they were before any insertion, insertions name the indices the
items end up at. Lists of objects that carry an identity key ("id", "key" or
"name") are matched by identity; other lists by their longest common
subsequence, so one inserted item is one change however long the list.

Besides the diff: RFC 7396 merge patches (`merge_patch`, `apply_merge_patch`,
which the `merge` reducer uses) and a three-way merge against a merge base.

Documents are the values `json.loads` produces. Equality is strict about types
(`1`, `1.0` and `true` differ), as canonical JSON is. Results share unchanged
subtrees with their inputs rather than copying them: treat JSON values as
immutable, as the rest of continust does.
"""

from __future__ import annotations

import bisect
import enum
import json
import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any, Final, Literal

__all__ = [
    "MISSING",
    "Change",
    "Conflict",
    "MergeResult",
    "ThreeWayDiff",
    "apply_merge_patch",
    "diff",
    "escape_token",
    "format_changes",
    "merge_patch",
    "three_way_diff",
    "three_way_merge",
    "to_json_patch",
]


class _Missing(enum.Enum):
    # An enum member stays a singleton through copy, deepcopy and pickle.
    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing.MISSING
"""Stand for a value that is absent (JSON null is `None`, a value like any other)."""

IDENTITY_KEYS: Final = ("id", "key", "name")

Op = Literal["add", "remove", "replace", "move"]

_SCALAR_TYPES: Final = (str, int, float, bool, type(None))


@dataclass(frozen=True, slots=True)
class Change:
    """One edit of a JSON document, located by an RFC 6901 JSON Pointer.

    `old` is MISSING for "add" and "move", `new` is MISSING for "remove"; a
    "move" takes the item at `from_path` to `path` and carries it in `new`.
    """

    path: str
    op: Op
    old: Any = MISSING
    new: Any = MISSING
    from_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the change as a JSON object, leaving out absent values."""
        data: dict[str, Any] = {"op": self.op, "path": self.path}
        if self.from_path is not None:
            data["from"] = self.from_path
        if self.old is not MISSING:
            data["old"] = self.old
        if self.new is not MISSING:
            data["new"] = self.new
        return data

    def to_patch_operation(self) -> dict[str, Any]:
        """Return the change as an RFC 6902 operation."""
        if self.op == "remove":
            return {"op": "remove", "path": self.path}
        if self.op == "move":
            return {"op": "move", "from": self.from_path, "path": self.path}
        return {"op": self.op, "path": self.path, "value": self.new}


@dataclass(frozen=True, slots=True)
class Conflict:
    """A path that both sides of a merge changed differently (MISSING = absent)."""

    path: str
    base: Any
    ours: Any
    theirs: Any

    def to_dict(self) -> dict[str, Any]:
        """Return the conflict as a JSON object, leaving out absent values."""
        data: dict[str, Any] = {"path": self.path}
        for side in ("base", "ours", "theirs"):
            value = getattr(self, side)
            if value is not MISSING:
                data[side] = value
        return data


@dataclass(frozen=True, slots=True)
class MergeResult:
    """The merged document; at each conflicting path it holds "ours"."""

    state: Any
    conflicts: tuple[Conflict, ...]


@dataclass(frozen=True, slots=True)
class ThreeWayDiff:
    """Both sides' changes relative to their merge base, and where they clash."""

    ours: tuple[Change, ...]
    theirs: tuple[Change, ...]
    conflicts: tuple[Conflict, ...]


# -- JSON values -------------------------------------------------------------


def escape_token(key: object) -> str:
    """Escape a key as one reference token of a JSON Pointer (RFC 6901)."""
    token = str(key)
    if "~" in token or "/" in token:
        token = token.replace("~", "~0").replace("/", "~1")
    return token


def _child(path: str, key: object) -> str:
    return f"{path}/{escape_token(key)}"


def _equal(a: Any, b: Any) -> bool:
    """Tell whether two JSON values are equal, types included (1 is not true)."""
    if a is b:
        return True
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is dict:
        # The native comparison rejects most differences at C speed; the walk
        # only confirms that no 1 hides behind a true, a 1.0 or a -0.0.
        if len(a) != len(b) or a != b:
            return False
        return all(_equal(value, b[key]) for key, value in a.items())
    if kind is list:
        if len(a) != len(b) or a != b:
            return False
        return all(map(_equal, a, b))
    return _same_scalar(a, b)


def _same_scalar(a: Any, b: Any) -> bool:
    # 0.0 and -0.0 compare equal but are written, and so hashed, differently.
    if a != b:
        return False
    return type(a) is not float or a != 0 or math.copysign(1, a) == math.copysign(1, b)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _identity_token(value: Any) -> Hashable | None:
    if isinstance(value, _SCALAR_TYPES):
        return (type(value), value)
    return None


def _identity_key(*lists: list[Any]) -> str | None:
    """Return the identity key every item of every list carries, if usable.

    The first of IDENTITY_KEYS that all items carry is the candidate; it
    qualifies when its values are scalars, unique within each list.
    """
    if not any(lists) or not all(isinstance(item, dict) for items in lists for item in items):
        return None
    key = next(
        (k for k in IDENTITY_KEYS if all(k in item for items in lists for item in items)), None
    )
    if key is None:
        return None
    for items in lists:
        tokens = {_identity_token(item[key]) for item in items}
        if None in tokens or len(tokens) != len(items):
            return None
    return key


def _identities(items: list[Any], key: str) -> list[Hashable]:
    return [(type(item[key]), item[key]) for item in items]


# -- diff --------------------------------------------------------------------


def _opaque(value: Any) -> bool:
    """Tell whether a value is sealed personal data (``continust.log.sealing``): a whole
    value to diff, patch and merge, never a document to look into."""
    return type(value) is dict and value.get("$sealed") == 1 and "ciphertext" in value


def diff(a: Any, b: Any) -> list[Change]:
    """Return the changes that turn document `a` into document `b`, in order."""
    changes: list[Change] = []
    _diff(a, b, "", changes)
    return changes


def _diff(a: Any, b: Any, path: str, out: list[Change]) -> None:
    if a is b:
        return
    kind = type(a)
    if kind is not type(b):
        out.append(Change(path, "replace", a, b))
    elif kind is dict and (_opaque(a) or _opaque(b)):
        if not _equal(a, b):
            out.append(Change(path, "replace", a, b))
    elif kind is dict:
        _diff_dicts(a, b, path, out)
    elif kind is list:
        _diff_lists(a, b, path, out)
    elif not _same_scalar(a, b):
        out.append(Change(path, "replace", a, b))


def _diff_dicts(a: dict[str, Any], b: dict[str, Any], path: str, out: list[Change]) -> None:
    for key, old in a.items():
        new = b.get(key, MISSING)
        if new is old:
            continue
        if new is MISSING:
            out.append(Change(_child(path, key), "remove", old))
        elif type(old) is not type(new) or type(old) in (dict, list):
            _diff(old, new, _child(path, key), out)
        elif old != new or (type(old) is float and not _same_scalar(old, new)):
            out.append(Change(_child(path, key), "replace", old, new))
    for key, new in b.items():
        if key not in a:
            out.append(Change(_child(path, key), "add", new=new))


def _diff_lists(a: list[Any], b: list[Any], path: str, out: list[Change]) -> None:
    key = _identity_key(a, b)
    if key is not None:
        _diff_by_identity(a, b, key, path, out)
    else:
        _diff_by_sequence(a, b, path, out)


def _diff_by_sequence(a: list[Any], b: list[Any], path: str, out: list[Change]) -> None:
    """Match items by their longest common subsequence; pair up replaced runs."""
    start = 0
    limit = min(len(a), len(b))
    while start < limit and _equal(a[start], b[start]):
        start += 1
    end = 0
    while end < limit - start and _equal(a[-1 - end], b[-1 - end]):
        end += 1
    # Only the differing middle is canonicalised: one insertion costs O(n).
    a_mid, b_mid = a[start : len(a) - end], b[start : len(b) - end]
    if not a_mid and not b_mid:
        return
    removed: list[int] = []
    added: list[int] = []
    if a_mid and b_mid:
        matcher = SequenceMatcher(
            None, [_canonical(x) for x in a_mid], [_canonical(x) for x in b_mid], autojunk=False
        )
        opcodes = matcher.get_opcodes()
    else:
        opcodes = [("replace", 0, len(a_mid), 0, len(b_mid))]
    for tag, i1, i2, j1, j2 in opcodes:
        if tag == "equal":
            continue
        paired = min(i2 - i1, j2 - j1)
        for offset in range(paired):
            i = start + i1 + offset
            _diff(a[i], b[start + j1 + offset], _child(path, i), out)
        removed.extend(range(start + i1 + paired, start + i2))
        added.extend(range(start + j1 + paired, start + j2))
    _emit_removals_and_additions(a, b, removed, added, path, out)


def _emit_removals_and_additions(
    a: list[Any], b: list[Any], removed: list[int], added: list[int], path: str, out: list[Change]
) -> None:
    # Removing from the back keeps the remaining indices valid; adding from the
    # front puts each item at its final index.
    for i in sorted(removed, reverse=True):
        out.append(Change(_child(path, i), "remove", a[i]))
    for j in sorted(added):
        out.append(Change(_child(path, j), "add", new=b[j]))


def _diff_by_identity(a: list[Any], b: list[Any], key: str, path: str, out: list[Change]) -> None:
    """Match items by identity: edit matched items, then remove, move and add."""
    a_ids, b_ids = _identities(a, key), _identities(b, key)
    a_index = {ident: i for i, ident in enumerate(a_ids)}
    b_index = {ident: j for j, ident in enumerate(b_ids)}
    removed: list[int] = []
    for i, ident in enumerate(a_ids):
        j = b_index.get(ident)
        if j is None:
            removed.append(i)
        else:
            _diff(a[i], b[j], _child(path, i), out)
    for i in reversed(removed):
        out.append(Change(_child(path, i), "remove", a[i]))
    kept = [ident for ident in a_ids if ident in b_index]
    target = [ident for ident in b_ids if ident in a_index]
    for source, destination, ident in _moves(kept, target):
        moved = b[b_index[ident]]
        out.append(
            Change(_child(path, destination), "move", new=moved, from_path=_child(path, source))
        )
    added = [j for j, ident in enumerate(b_ids) if ident not in a_index]
    for j in added:
        out.append(Change(_child(path, j), "add", new=b[j]))


def _moves(current: list[Hashable], target: list[Hashable]) -> list[tuple[int, int, Hashable]]:
    """Return (from, to, item) moves that reorder `current` into `target`.

    Items on a longest increasing subsequence stay put; every other item moves,
    in target order, to just after its predecessor in the target.
    """
    if current == target:
        return []
    position = {ident: t for t, ident in enumerate(target)}
    stable = set(_longest_increasing(current, key=position.__getitem__))
    order = list(current)
    moves: list[tuple[int, int, Hashable]] = []
    for t, ident in enumerate(target):
        if ident in stable:
            continue
        source = order.index(ident)
        del order[source]
        destination = order.index(target[t - 1]) + 1 if t else 0
        order.insert(destination, ident)
        if destination != source:
            moves.append((source, destination, ident))
    return moves


def _longest_increasing(
    items: Sequence[Hashable], key: Callable[[Hashable], int]
) -> list[Hashable]:
    """Return a longest subsequence of `items` whose keys increase (patience sort)."""
    tails: list[int] = []  # key of the smallest tail of each subsequence length
    tail_at: list[int] = []  # index into items of that tail
    previous: list[int] = [-1] * len(items)
    for i, item in enumerate(items):
        k = key(item)
        length = bisect.bisect_left(tails, k)
        if length == len(tails):
            tails.append(k)
            tail_at.append(i)
        else:
            tails[length] = k
            tail_at[length] = i
        previous[i] = tail_at[length - 1] if length else -1
    result: list[Hashable] = []
    i = tail_at[-1] if tail_at else -1
    while i != -1:
        result.append(items[i])
        i = previous[i]
    result.reverse()
    return result


def to_json_patch(a: Any, b: Any) -> list[dict[str, Any]]:
    """Return an RFC 6902 JSON Patch that turns `a` into `b`."""
    return [change.to_patch_operation() for change in diff(a, b)]


def format_changes(changes: Iterable[Change]) -> str:
    """Render changes as text, one line each: ~ replace, + add, - remove, > move."""
    lines = []
    for change in changes:
        where = _show_path(change.path)
        if change.op == "replace":
            lines.append(f"~ {where}: {_show(change.old)} -> {_show(change.new)}")
        elif change.op == "add":
            lines.append(f"+ {where}: {_show(change.new)}")
        elif change.op == "remove":
            lines.append(f"- {where}: {_show(change.old)}")
        else:
            lines.append(f"> {_show_path(change.from_path or '')} -> {where}")
    return "\n".join(lines)


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _show_path(path: str) -> str:
    # Quote the root pointer and keys with line breaks so each change stays
    # one readable line.
    return path if path and path.isprintable() else json.dumps(path, ensure_ascii=False)


# -- merge patch (RFC 7396) ----------------------------------------------------


class NullNotExpressible(ValueError):
    """A merge patch cannot set a value to null: RFC 7396 reads null as "remove"."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = tuple(paths)
        shown = ", ".join(_show_path(p) for p in self.paths[:5])
        more = f" and {len(self.paths) - 5} more" if len(self.paths) > 5 else ""
        super().__init__(
            f"a merge patch cannot set a value to null (RFC 7396 reads null as remove): "
            f"{shown}{more}; use a JSON Patch, which can"
        )


def merge_patch(a: Any, b: Any) -> Any:
    """Return an RFC 7396 merge patch that turns `a` into `b`.

    A merge patch replaces lists whole and uses null to delete a key, so it cannot
    set a value to null. Rather than drop such a key silently, it raises
    `NullNotExpressible` naming every path `b` sets to null that the patch would
    delete instead. When `b` is not an object, the patch is `b` itself.
    """
    lost: list[str] = []
    patch = _merge_patch(a, b, "", lost)
    if lost:
        raise NullNotExpressible(lost)
    return patch


def _merge_patch(a: Any, b: Any, path: str, lost: list[str]) -> Any:
    if not isinstance(b, dict):
        return b
    if not isinstance(a, dict):
        _nulls_in(b, path, lost)
        return b
    patch: dict[str, Any] = {key: None for key in a if key not in b}
    for key, new in b.items():
        old = a.get(key, MISSING)
        if _equal(old, new):
            continue
        if new is None:
            lost.append(_child(path, key))
        if isinstance(old, dict) and isinstance(new, dict) and not (_opaque(old) or _opaque(new)):
            patch[key] = _merge_patch(old, new, _child(path, key), lost)
        else:
            if isinstance(new, dict):
                _nulls_in(new, _child(path, key), lost)
            patch[key] = new
    return patch


def _nulls_in(document: dict[str, Any], path: str, lost: list[str]) -> None:
    """Note the members of a new object that are null: applying it removes them."""
    for key, value in document.items():
        if value is None:
            lost.append(_child(path, key))
        elif isinstance(value, dict):
            _nulls_in(value, _child(path, key), lost)


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7396 merge patch to `target` and return the result.

    Neither argument is changed; the result shares untouched subtrees with them.
    """
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and not _opaque(value):
            inner = result.get(key)
            result[key] = apply_merge_patch(None if _opaque(inner) else inner, value)
        else:
            result[key] = value
    return result


# -- three-way merge -----------------------------------------------------------


def three_way_merge(base: Any, ours: Any, theirs: Any) -> MergeResult:
    """Merge the changes `ours` and `theirs` made to `base`.

    A change made by one side is taken; the same change made by both is taken
    once. Objects merge key by key, lists of identity-keyed objects item by
    item; any other pair of different changes to one path is a conflict, where
    the state keeps "ours" and the conflict lists all three values.
    """
    conflicts: list[Conflict] = []
    state = _merge(base, ours, theirs, "", conflicts)
    return MergeResult(state, tuple(conflicts))


def three_way_diff(base: Any, ours: Any, theirs: Any) -> ThreeWayDiff:
    """Return each side's changes relative to `base` and the conflicts between them."""
    return ThreeWayDiff(
        ours=tuple(diff(base, ours)),
        theirs=tuple(diff(base, theirs)),
        conflicts=three_way_merge(base, ours, theirs).conflicts,
    )


def _merge(base: Any, ours: Any, theirs: Any, path: str, conflicts: list[Conflict]) -> Any:
    if _equal(base, ours):
        return theirs
    if _equal(base, theirs) or _equal(ours, theirs):
        return ours
    if type(ours) is dict and type(theirs) is dict and not (_opaque(ours) or _opaque(theirs)):
        # Both sides added or rebuilt an object: merge it against an empty one.
        return _merge_dicts(base if type(base) is dict else {}, ours, theirs, path, conflicts)
    if type(ours) is list and type(theirs) is list:
        base_items = base if type(base) is list else []
        key = _identity_key(base_items, ours, theirs)
        if key is not None:
            return _merge_identity_lists(base_items, ours, theirs, key, path, conflicts)
        merged = _merge_plain_lists(base_items, ours, theirs)
        if merged is not None:
            return merged
    conflicts.append(Conflict(path, base, ours, theirs))
    return ours


def _merge_plain_lists(base: list[Any], ours: list[Any], theirs: list[Any]) -> list[Any] | None:
    """Merge lists without identities as three-way text merges do (diff3), or None.

    Items every side kept in place anchor the lists; between two anchors, a run only
    one side changed takes that side's items, a run both changed alike takes them
    once, and a run both changed differently is a conflict of the whole list.
    """
    b, o, t = ([_canonical(x) for x in items] for items in (base, ours, theirs))
    to_ours, to_theirs = _matched(b, o), _matched(b, t)
    anchors = [
        (i, to_ours[i], to_theirs[i]) for i in range(len(b)) if i in to_ours and i in to_theirs
    ]
    merged: list[Any] = []
    i = j = k = 0
    for bi, oi, ti in [*anchors, (len(b), len(o), len(t))]:
        if o[j:oi] == b[i:bi]:
            merged += theirs[k:ti]
        elif t[k:ti] == b[i:bi] or o[j:oi] == t[k:ti]:
            merged += ours[j:oi]
        else:
            return None
        if bi < len(b):
            merged.append(ours[oi])
        i, j, k = bi + 1, oi + 1, ti + 1
    return merged


def _matched(a: list[str], b: list[str]) -> dict[int, int]:
    """Map each index of `a` that the longest common subsequence keeps to its index in `b`."""
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    return {
        block.a + n: block.b + n
        for block in matcher.get_matching_blocks()
        for n in range(block.size)
    }


def _merge_dicts(
    base: dict[str, Any],
    ours: dict[str, Any],
    theirs: dict[str, Any],
    path: str,
    conflicts: list[Conflict],
) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    keys = list(ours) + [key for key in theirs if key not in ours]
    for key in keys:
        value = _merge(
            base.get(key, MISSING),
            ours.get(key, MISSING),
            theirs.get(key, MISSING),
            _child(path, key),
            conflicts,
        )
        if value is not MISSING:
            merged[key] = value
    return merged


def _merge_identity_lists(
    base: list[Any],
    ours: list[Any],
    theirs: list[Any],
    key: str,
    path: str,
    conflicts: list[Conflict],
) -> list[Any]:
    """Merge lists item by item, matching items by identity."""
    base_ids, our_ids, their_ids = (_identities(x, key) for x in (base, ours, theirs))
    order = _merged_order(base_ids, our_ids, their_ids)
    if order is None:
        conflicts.append(Conflict(path, base, ours, theirs))
        return ours
    base_map = dict(zip(base_ids, base, strict=True))
    our_map = dict(zip(our_ids, ours, strict=True))
    their_map = dict(zip(their_ids, theirs, strict=True))
    merged: list[Any] = []
    for ident in order:
        # An item gone from the merge (deleted by us, changed by them) is
        # pointed at the index where adding it back would put it.
        item = _merge(
            base_map.get(ident, MISSING),
            our_map.get(ident, MISSING),
            their_map.get(ident, MISSING),
            _child(path, len(merged)),
            conflicts,
        )
        if item is not MISSING:
            merged.append(item)
    return merged


def _merged_order(
    base_ids: list[Hashable], our_ids: list[Hashable], their_ids: list[Hashable]
) -> list[Hashable] | None:
    """Return every identity of either side in merged order, or None if the
    two sides reordered the items they share differently."""
    ours_moved = _reordered(base_ids, our_ids)
    theirs_moved = _reordered(base_ids, their_ids)
    if ours_moved and theirs_moved:
        shared = set(base_ids) & set(our_ids) & set(their_ids)
        if [i for i in our_ids if i in shared] != [i for i in their_ids if i in shared]:
            return None
    backbone, other = (
        (their_ids, our_ids) if theirs_moved and not ours_moved else (our_ids, their_ids)
    )
    order = list(backbone)
    placed = set(order)
    predecessor: Hashable | None = None  # the last of `other` already placed
    for ident in other:
        if ident not in placed:
            order.insert(order.index(predecessor) + 1 if predecessor is not None else 0, ident)
            placed.add(ident)
        predecessor = ident
    return order


def _reordered(base_ids: list[Hashable], side_ids: list[Hashable]) -> bool:
    """Tell whether a side changed the relative order of the base items it kept."""
    side, base = set(side_ids), set(base_ids)
    return [i for i in side_ids if i in base] != [i for i in base_ids if i in side]
