"""Errors a user can cause; each says what was wrong, and nothing was written."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ContinustError(Exception):
    """Base of every error the domain raises on bad input."""


class InvalidName(ContinustError):
    """A name, reference, id, cursor or search term a user typed that no record could have:
    not in ASCII digits, out of range, or holding a character PostgreSQL cannot store."""


class NotFound(ContinustError):
    """A project, stream, version, branch or event that does not exist."""


class BadRevision(NotFound):
    """A revision (``main~3``, ``v120^2``, ``a..b``) that names no version: its name is
    unknown, or a walk it asks for leaves the graph (past the root, a parent that is not
    there), or a range where one version is wanted. Says which part did not resolve."""


class AmbiguousName(ContinustError):
    """A name a record could have, but that revisions would read as something else: a tag
    called ``v12`` or ``a..b``."""


class RevertConflict(ContinustError):
    """A revert that does not apply cleanly on the branch: later versions changed the
    same paths; nothing was written."""

    def __init__(self, message: str, *, paths: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.paths = list(paths)


class BisectRefused(ContinustError):
    """A bisection that cannot start: the good version does not pass, the bad one does
    not fail, or the good version already reaches the bad one."""


class InvalidEvent(ContinustError):
    """An event that is malformed: not a JSON object, too large, a bad field."""


class AlreadyExists(InvalidEvent):
    """A project, stream or branch name that is taken."""


class PayloadTooLarge(InvalidEvent):
    """A payload above the configured size cap."""


class ConcurrencyConflict(ContinustError):
    """The branch head moved since the writer read it."""

    def __init__(self, message: str, *, current_head: int | None) -> None:
        super().__init__(message)
        self.current_head = current_head


class IdempotencyConflict(ContinustError):
    """An event id already recorded with other content, or a batch partly recorded."""


class UnknownCausation(ContinustError):
    """A causation id that names no earlier event of the project."""


class ReducerRejected(ContinustError):
    """The stream's reducer refused an event (a failing JSON Patch test, say)."""

    def __init__(self, message: str, *, event_id: str | None = None) -> None:
        super().__init__(message)
        self.event_id = event_id


class MergeConflict(ContinustError):
    """A merge whose sides changed the same paths differently; nothing was written."""

    def __init__(self, message: str, *, conflicts: Sequence[Any]) -> None:
        super().__init__(message)
        self.conflicts = list(conflicts)


class NothingToMerge(ContinustError):
    """The branch to merge is already contained in the target."""


class StateReleased(ContinustError):
    """A version whose state or event payload its stream's retention policy released."""


class SubjectErased(InvalidEvent):
    """An event naming a data subject whose key was erased: its personal data is no longer
    recorded."""


class AlreadyErased(ContinustError):
    """An erasure of a data subject that was erased before; nothing changed."""
