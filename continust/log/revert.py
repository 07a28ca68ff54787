"""Reverting a version: one new event that undoes what the version changed.

As ``git revert`` does, the inverse is a three-way merge: from the branch head's
state, apply the change from the version's state back to its (first) parent's state.
The new state is then written as the event the stream's reducer folds into exactly
that state (a JSON Patch, a merge patch or the whole document), appended to the
branch with the reverted version's event as its cause. Where a later version changed
the same paths, the revert does not apply cleanly and nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Final

from continust.core.errors import InvalidEvent, NotFound, RevertConflict
from continust.documents.diff import (
    MISSING,
    Change,
    apply_merge_patch,
    diff,
    merge_patch,
    three_way_merge,
    to_json_patch,
)
from continust.graph.cache import graph_for
from continust.log import canonical
from continust.log.states import state_of
from continust.log.store import Appended, NewEvent, append
from continust.log.subjects import Revealer, reveal
from continust.models import Branch, Stream, Version

REVERT_EVENT: Final = "continust.revert"
REVERTIBLE: Final = ("merge", "patch", "replace")


@dataclass(frozen=True)
class RevertPlan:
    """What a revert will append: on which branch, after which head, the changes it makes
    to the head's state, and the event's type and payload."""

    version: Version
    parent: int
    branch: str
    head: int
    changes: tuple[Change, ...]
    event_type: str
    payload: dict[str, Any]

    def shown_changes(self) -> tuple[Change, ...]:
        """The changes as readers see them: personal values revealed (or erased)."""
        revealer = Revealer(self.version.stream.project_id)
        return tuple(
            replace(
                c,
                old=c.old if c.old is MISSING else revealer.reveal(c.old),
                new=c.new if c.new is MISSING else revealer.reveal(c.new),
            )
            for c in self.changes
        )

    def as_dict(self) -> dict[str, Any]:
        """The plan as the API and the ``revert`` command print it (personal values
        revealed)."""
        return {
            "reverts": self.version.pk,
            "branch": self.branch,
            "head": self.head,
            "type": self.event_type,
            "payload": reveal(self.version.stream.project_id, self.payload),
            "changes": [c.to_dict() for c in self.shown_changes()],
        }


def plan_revert(stream: Stream, version: Version, branch: str | None = None) -> RevertPlan:
    """Work out the event that reverts ``version`` on ``branch`` (its own by default);
    raise ``RevertConflict`` when it does not apply cleanly."""
    if version.stream_id != stream.pk:
        raise NotFound(f"version {version.pk} is not in stream {stream.name}")
    name = branch or version.branch
    target = Branch.objects.filter(stream=stream, name=name).first()
    if target is None:
        raise NotFound(f"stream {stream.name} has no branch {name!r}")
    if stream.reducer not in REVERTIBLE:
        raise InvalidEvent(
            f"stream {stream.name}'s reducer {stream.reducer!r} has no inverse event continust "
            f"can write; revert works on streams folded by {', '.join(REVERTIBLE)}"
        )
    graph = graph_for(stream)
    parents = graph.parents(version.pk)
    if not parents:
        raise RevertConflict(f"v{version.pk} is the root of {stream.name}: it has no parent")
    if not graph.is_ancestor(version.pk, target.head_id):
        raise RevertConflict(
            f"v{version.pk} is not on branch {name} (head v{target.head_id}): nothing to revert"
        )
    reverted, before, head = state_of(version), state_of(parents[0]), state_of(target.head_id)
    merged = three_way_merge(reverted, head, before)
    if merged.conflicts:
        paths = [c.path or "/" for c in merged.conflicts]
        raise RevertConflict(
            f"reverting v{version.pk} does not apply cleanly on {name} (head "
            f"v{target.head_id}): later versions changed {', '.join(paths[:10])}",
            paths=paths,
        )
    changes = tuple(diff(head, merged.state))
    if not changes:
        raise RevertConflict(
            f"reverting v{version.pk} changes nothing on {name} (head v{target.head_id}): "
            "what it changed is already undone"
        )
    return RevertPlan(
        version=version,
        parent=parents[0],
        branch=name,
        head=target.head_id,
        changes=changes,
        event_type=REVERT_EVENT,
        payload=_payload(stream.reducer, head, merged.state, version),
    )


def _payload(reducer: str, head: Any, wanted: Any, version: Version) -> dict[str, Any]:
    """The payload the reducer folds from ``head`` into ``wanted``."""
    if reducer == "patch":
        return {"patch": to_json_patch(head, wanted)}
    payload = wanted if reducer == "replace" else merge_patch(head, wanted)
    if not isinstance(payload, dict):
        raise RevertConflict(
            f"reverting v{version.pk} would make a state that is not a JSON object, which a "
            f"{reducer} event cannot carry"
        )
    if reducer == "merge" and canonical.canonical_json(
        apply_merge_patch(head, payload)
    ) != canonical.canonical_json(wanted):
        raise RevertConflict(
            f"reverting v{version.pk} needs a value set to null, which a merge patch cannot "
            "say (null deletes a key)"
        )
    return payload


def revert(
    stream: Stream, version: Version, *, branch: str | None = None, actor: str = ""
) -> Appended:
    """Append the event that reverts ``version`` to the branch, caused by its event."""
    return append_revert(stream, plan_revert(stream, version, branch), actor=actor)


def append_revert(stream: Stream, plan: RevertPlan, *, actor: str = "") -> Appended:
    """Append a planned revert. The branch must still be where the plan found it
    (``ConcurrencyConflict`` if it moved: plan again)."""
    return append(
        stream,
        [
            NewEvent(
                type=plan.event_type,
                payload=plan.payload,
                causation=plan.version.event.id,
                actor=actor,
            )
        ],
        branch=plan.branch,
        expected_head=plan.head,
    )
