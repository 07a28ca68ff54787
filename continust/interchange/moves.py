"""JSON Lines for a stream's branch moves: each branch's hash chain, move by move.

A ``move`` line carries one recorded move of a branch (``continust.log.moves``): the
branch's name, the versions it moved from and to as refs (positions in the stream,
as version lines name them), its reason, actor and time, and its ``prev_hash`` and
``hash``. A stream's move lines come after its versions, in the order the moves were
recorded, and before its branch lines.

A move's hash covers the branch's name, the digests of its old and new heads, the
reason, the actor and the time, and no database id, so an import reproduces every
chain exactly: it recomputes each move's hash from the line and the versions it
names, and refuses a move that does not chain to the branch's last one or does not
hash to the line's ``hash``. A branch that the project already has keeps its moves
when they begin the file's chain (an import of the same file again, or of a later
export); a branch whose recorded moves the file's do not continue is refused. A file
with no move lines (written before they were exported) records one ``import`` move
per branch, as before.

A branch's first move (``old_head`` null) made it: its line also carries the branch's
``created_at``, and an import makes the branch at that time (at the import's, for a
line without one); its branch line, which comes later, says the same.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Final

from continust.core.errors import InvalidEvent
from continust.interchange import times
from continust.log import canonical
from continust.log.moves import next_hash, write_move
from continust.models import Branch, BranchMove, Stream, Version

KIND: Final = "move"

SKIPPED_MOVE: Final = "branch moves already recorded (same place in the chain, same hash)"


def move_records(stream: Stream, ordinal: dict[int, int]) -> Iterator[dict[str, Any]]:
    """Yield the stream's branch moves as lines, in the order they were recorded."""
    moves = (
        BranchMove.objects.filter(branch__stream=stream)
        .order_by("id")
        .values_list(
            "branch__name",
            "branch__created_at",
            "old_head_id",
            "new_head_id",
            "reason",
            "actor",
            "at",
            "prev_hash",
            "hash",
        )
    )
    for name, created_at, old, new, reason, actor, at, prev_hash, hash_ in moves.iterator(2000):
        line = {
            "kind": KIND,
            "stream": stream.name,
            "branch": name,
            "old_head": ordinal[old] if old is not None else None,
            "new_head": ordinal[new],
            "reason": reason,
            "actor": actor,
            "at": canonical.timestamp_text(at),
            "prev_hash": prev_hash,
            "hash": hash_,
        }
        # The move that made the branch: when the branch was made.
        yield line if old is not None else {**line, "created_at": times.written(created_at)}


class MoveImport:
    """The move lines of one stream being imported, checked against its branches."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.seen = False
        # The hashes of the moves each branch has already, in order, and how many of
        # them the file has matched so far.
        self.recorded: dict[str, list[str]] = defaultdict(list)
        for name, hash_ in (
            BranchMove.objects.filter(branch__stream=stream)
            .order_by("id")
            .values_list("branch__name", "hash")
        ):
            self.recorded[name].append(hash_)
        self.matched: dict[str, int] = defaultdict(int)
        self.named: set[str] = set()
        # When each branch this import made was made (its first move line's created_at).
        self.made: dict[str, datetime] = {}

    def take(self, record: dict[str, Any], refs: dict[Any, Version], skip: Any) -> bool:
        """Import one move line; return whether it recorded a move (``skip(reason)``
        counts one the branch has already)."""
        self.seen = True
        name = record["branch"]
        if not isinstance(name, str) or not 0 < len(name) <= 200:
            raise InvalidEvent(f"a move names its branch, not {name!r}")
        self.named.add(name)
        number = self.matched[name] + 1
        where = f"move {number} of branch {name!r}"
        # As their columns hold them: a reason of at most 32 characters, an actor of 200.
        for field, longest in (("reason", 32), ("actor", 200), ("prev_hash", 64), ("hash", 64)):
            value = record[field]
            if not isinstance(value, str) or len(value) > longest:
                raise InvalidEvent(f"{where}: its {field} cannot be {value!r}")
        new_head = _ref(refs, record["new_head"], where)
        old_head = _ref(refs, record["old_head"], where) if record["old_head"] is not None else None
        at = datetime.fromisoformat(record["at"])
        if at.tzinfo is None:
            raise InvalidEvent(f"{where}: its time {record['at']!r} has no time zone")
        created_at = times.read(where, "created_at", record.get("created_at"))
        computed = next_hash(
            record["prev_hash"],
            branch=name,
            old_digest=old_head.digest if old_head else None,
            new_digest=new_head.digest,
            reason=record["reason"],
            actor=record["actor"],
            at=at,
        )
        if computed != record["hash"]:
            raise InvalidEvent(f"{where} ({record['reason']}) does not hash to the exported chain")
        recorded = self.recorded[name]
        if number <= len(recorded):
            if recorded[number - 1] != record["hash"]:
                raise InvalidEvent(
                    f"{where}: the branch already has another move there; its recorded "
                    "moves are not the beginning of the file's"
                )
            self.matched[name] = number
            skip(SKIPPED_MOVE)
            return False
        branch = Branch.objects.filter(stream=self.stream, name=name).first()
        expected_prev = branch.move_hash if branch is not None else canonical.GENESIS
        if record["prev_hash"] != expected_prev:
            raise InvalidEvent(f"{where} ({record['reason']}) does not chain to the move before it")
        current = branch.head_id if branch is not None else None
        if (old_head.pk if old_head else None) != current:
            raise InvalidEvent(
                f"{where} ({record['reason']}) starts where the move before it did not end"
            )
        made = write_move(
            self.stream,
            name,
            branch,
            new_head,
            reason=record["reason"],
            actor=record["actor"],
            at=at,
            created_at=created_at if branch is None else None,
        )
        if branch is None:
            self.made[name] = made.created_at
        self.matched[name] = number
        recorded.append(record["hash"])
        return True

    def check(self, name: str) -> None:
        """Refuse a branch the file moves that has recorded moves the file does not."""
        extra = len(self.recorded[name]) - self.matched[name]
        if extra > 0:
            raise InvalidEvent(
                f"stream {self.stream.name}: branch {name!r} has {extra} move(s) the file does not"
            )

    def finish(self) -> None:
        """Once the stream's lines are read: each branch the file moved has all its moves."""
        for name in sorted(self.named):
            self.check(name)


def _ref(refs: dict[Any, Version], ref: Any, where: str) -> Version:
    if not isinstance(ref, int) or isinstance(ref, bool) or ref not in refs:
        raise InvalidEvent(f"{where} names version {ref!r}, which the stream does not have")
    return refs[ref]
