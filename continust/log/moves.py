"""Branch moves as a hash chain: each branch's moves chained like a stream's events.

A branch's head is where its last recorded move put it, and the database refuses a
head change that no move records (``continust.log.triggers``). ``broken_moves`` checks
what a tamperer with the triggers off could still do: rewrite, drop or reorder a
move, or set a head that its moves do not lead to.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator

from continust.log import canonical
from continust.models import Branch, BranchMove, Stream, Version


def broken_moves(stream: Stream) -> Iterator[tuple[str, str, int | None]]:
    """Yield (where, what is wrong, the version concerned) for every broken branch link."""
    digests = dict(Version.objects.filter(stream=stream).values_list("id", "digest"))
    moves: dict[int, list[BranchMove]] = defaultdict(list)
    for move in BranchMove.objects.filter(branch__stream=stream).order_by("id"):
        moves[move.branch_id].append(move)
    for branch in Branch.objects.filter(stream=stream).order_by("name"):
        where = f"branch {branch.name!r}"
        recorded = moves.get(branch.pk, [])
        if not recorded:
            yield where, f"head v{branch.head_id} has no recorded move", branch.head_id
            continue
        for number, (earlier, later) in enumerate(itertools.pairwise(recorded), start=2):
            if later.old_head_id != earlier.new_head_id:
                yield (
                    where,
                    f"move {number} starts at v{later.old_head_id}, but move "
                    f"{number - 1} ended at v{earlier.new_head_id}",
                    later.new_head_id,
                )
        previous = canonical.GENESIS
        for number, move in enumerate(recorded, start=1):
            computed = canonical.move_hash(
                previous,
                branch=branch.name,
                old_head=digests.get(move.old_head_id) if move.old_head_id else None,
                new_head=digests.get(move.new_head_id, ""),
                reason=move.reason,
                actor=move.actor,
                at=move.at,
            )
            if move.prev_hash != previous:
                yield (
                    where,
                    f"move {number} ({move.reason}) does not chain to the move before it",
                    move.new_head_id,
                )
            elif computed != move.hash:
                yield (
                    where,
                    f"move {number} ({move.reason}): hash mismatch: stored "
                    f"{move.hash[:16]}…, computed {computed[:16]}…",
                    move.new_head_id,
                )
            previous = move.hash
        last = recorded[-1]
        if branch.head_id != last.new_head_id:
            yield (
                where,
                f"head v{branch.head_id} is not where its last recorded move put "
                f"it (v{last.new_head_id})",
                branch.head_id,
            )
        elif branch.move_hash != last.hash:
            yield where, "the branch names a move that is not its last", branch.head_id
