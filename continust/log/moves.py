"""Branch moves as a hash chain: each branch's moves chained like a stream's events.

Every move is written here: ``chained_move`` computes the next link of a branch's
chain (the locked path, the linear append's single statement and ``verify`` hash
moves with ``next_hash``), ``write_move`` records it and points the branch at it,
and ``move_statements`` gives the same two writes as SQL for a batch that sends
them with its other rows.

A branch's head is where its last recorded move put it, and the database refuses a
head change that no move records (``continust.log.triggers``). ``broken_moves`` checks
what a tamperer with the triggers off could still do: rewrite, drop or reorder a
move, or set a head that its moves do not lead to.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from continust.log import canonical
from continust.models import Branch, BranchMove, Stream, Version


def next_hash(
    prev_hash: str,
    *,
    branch: str,
    old_digest: str | None,
    new_digest: str,
    reason: str,
    actor: str,
    at: datetime,
) -> str:
    """Return the hash of a branch's next move, chained to ``prev_hash`` (its last move's)."""
    return canonical.move_hash(
        prev_hash,
        branch=branch,
        old_head=old_digest,
        new_head=new_digest,
        reason=reason,
        actor=actor,
        at=at,
    )


def chained_move(
    branch: Branch | None,
    new_head: Version,
    *,
    reason: str,
    actor: str,
    at: datetime,
    name: str = "",
) -> BranchMove:
    """Return the next move of a branch (None: a new branch called ``name``), unsaved,
    chained to its last move."""
    prev_hash = branch.move_hash if branch is not None else canonical.GENESIS
    old = branch.head if branch is not None else None
    return BranchMove(
        branch=branch,
        old_head_id=old.pk if old else None,
        new_head=new_head,
        reason=reason,
        actor=actor,
        at=at,
        prev_hash=prev_hash,
        hash=next_hash(
            prev_hash,
            branch=branch.name if branch else name,
            old_digest=old.digest if old else None,
            new_digest=new_head.digest,
            reason=reason,
            actor=actor,
            at=at,
        ),
    )


def write_move(
    stream: Stream,
    name: str,
    branch: Branch | None,
    new_head: Version,
    *,
    reason: str,
    actor: str = "",
    at: datetime | None = None,
    created_at: datetime | None = None,
) -> Branch:
    """Record a move of a branch (None: create the branch ``name``, made at ``created_at``
    if given, as an import says, else now) to ``new_head`` and point the branch there;
    return the branch. The one writer of branch moves."""
    record = chained_move(
        branch, new_head, reason=reason, actor=actor, at=at or datetime.now(UTC), name=name
    )
    if branch is None:
        branch = Branch(stream=stream, name=name, head=new_head, move_hash=record.hash)
        if created_at is None:
            branch.save(force_insert=True)
        else:
            # created_at is set on insert, and the branch's row changes only with a move:
            # a raw save inserts it with the given time.
            branch.created_at = created_at
            branch.save_base(raw=True, force_insert=True)
        record.branch = branch
        record.save()
        return branch
    # The move first: the database lets a head change only to a recorded move's head.
    record.save()
    Branch.objects.filter(pk=branch.pk).update(head=new_head, move_hash=record.hash)
    branch.head = new_head
    branch.move_hash = record.hash
    return branch


def move_statements(
    branch: Branch, new_head: Version, *, reason: str, actor: str, at: datetime
) -> list[tuple[str, list[Any]]]:
    """Return the SQL that moves an existing branch to ``new_head`` and records the move,
    for a write that sends them with its rows; the branch object follows at once."""
    record = chained_move(branch, new_head, reason=reason, actor=actor, at=at)
    statements: list[tuple[str, list[Any]]] = [
        (
            "UPDATE continust_branch SET head_id = %s, move_hash = %s WHERE id = %s",
            [new_head.pk, record.hash, branch.pk],
        ),
        (
            "INSERT INTO continust_branchmove (branch_id, old_head_id, new_head_id, "
            "reason, actor, at, prev_hash, hash) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                branch.pk,
                record.old_head_id,
                new_head.pk,
                reason,
                actor,
                at,
                record.prev_hash,
                record.hash,
            ],
        ),
    ]
    branch.head = new_head
    branch.move_hash = record.hash
    return statements


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
            computed = next_hash(
                previous,
                branch=branch.name,
                old_digest=digests.get(move.old_head_id) if move.old_head_id else None,
                new_digest=digests.get(move.new_head_id, ""),
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
