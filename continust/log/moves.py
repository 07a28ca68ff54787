"""Branch moves as a hash chain: each branch's moves chained like a stream's events.

A branch's head is where its last recorded move put it, and the database refuses a
head change that no move records (``continust.triggers``). ``broken_moves`` checks
what a tamperer with the triggers off could still do: rewrite or drop a move, or set
a head that its moves do not lead to.
"""

from __future__ import annotations

from continust import canonical
from continust.models import Branch, BranchMove, Stream, Version


def broken_moves(stream: Stream) -> tuple[str, str] | None:
    """Return (where, what is wrong) for the first broken branch of a stream, or None."""
    digests = dict(Version.objects.filter(stream=stream).values_list("id", "digest"))
    moves: dict[int, list[BranchMove]] = {}
    for move in BranchMove.objects.filter(branch__stream=stream).order_by("id"):
        moves.setdefault(move.branch_id, []).append(move)
    for branch in Branch.objects.filter(stream=stream).order_by("name"):
        previous, head = canonical.GENESIS, None
        for move in moves.get(branch.pk, []):
            where = f"branch {branch.name}: move {move.pk} ({move.reason})"
            if move.prev_hash != previous or move.old_head_id != head:
                return where, "the move does not follow the branch's move before it"
            computed = canonical.move_hash(
                previous, branch=branch.name,
                old_head=digests.get(move.old_head_id) if move.old_head_id else None,
                new_head=digests.get(move.new_head_id, ""), reason=move.reason,
                actor=move.actor, at=move.at)
            if computed != move.hash:
                return where, (f"hash mismatch: stored {move.hash[:16]}…, "
                               f"computed {computed[:16]}…")
            previous, head = move.hash, move.new_head_id
        if branch.head_id != head or branch.move_hash != previous:
            return (f"branch {branch.name}",
                    f"the head is version {branch.head_id}, but its recorded moves end at "
                    f"version {head}")
    return None
