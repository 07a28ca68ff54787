"""Per-field blame: which event last changed a path of a version's state, and what it was before.

Like ``git blame`` for one JSON value: from the version asked about, walk to a parent
whose state holds the same value at the path (the first such parent, as git passes blame
to the first parent with the same line); the version where no parent does made the
value. Its first parent's value is the earlier one, blamed the same way, and so on back
to where the path appeared. Only the value at the path is read at each step: on
PostgreSQL the database extracts it (``#>``), elsewhere the state is loaded and the
pointer resolved; states are fetched a batch of ancestors at a time and shared states
(same hash) are read once.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from django.db import connection

from continust.core.database import on_postgresql
from continust.core.errors import NotFound
from continust.core.parsing import parse_pointer
from continust.documents.diff import MISSING
from continust.graph.cache import graph_for
from continust.graph.lineage import VersionGraph
from continust.log.canonical import canonical_json
from continust.log.states import state_of
from continust.log.subjects import Revealer
from continust.models import State, Stream, Version

BATCH: Final = 64
HISTORY: Final = 20
# Array indices PostgreSQL reads as RFC 6901 does; any other numeric-looking token
# ("01", "-1", "+1") is resolved in Python so both databases answer alike.
_INDEX = re.compile(r"0|[1-9][0-9]{0,8}")
_NUMERIC = re.compile(r"\s*[+-]?[0-9]+\s*")


@dataclass(frozen=True)
class Change:
    """A version that set the value at the path, from ``previous`` (MISSING: it added it)."""

    version: Version
    value: Any
    previous: Any

    @property
    def added(self) -> bool:
        return self.previous is MISSING


@dataclass(frozen=True)
class Blame:
    """The value at a path of a version, and its changes, newest first."""

    stream: Stream
    version: Version
    path: str
    value: Any
    changes: list[Change]
    complete: bool  # False when the history was cut at the asked depth

    @property
    def last(self) -> Change:
        return self.changes[0]


def pointer_tokens(path: str) -> list[str]:
    """Split an RFC 6901 JSON Pointer into its reference tokens."""
    return list(parse_pointer(path))


def resolve(document: Any, tokens: list[str]) -> Any:
    """Return the value at the tokens' path in a document, or MISSING."""
    node = document
    for token in tokens:
        if isinstance(node, dict):
            if token not in node:
                return MISSING
            node = node[token]
        elif isinstance(node, list):
            if not _INDEX.fullmatch(token) or int(token) >= len(node):
                return MISSING
            node = node[int(token)]
        else:
            return MISSING
    return node


def same(a: Any, b: Any) -> bool:
    """Tell whether two values are the same JSON, types included (1, 1.0 and true differ)."""
    if a is MISSING or b is MISSING:
        return a is b
    return canonical_json(a) == canonical_json(b)


class _PathValues:
    """The value at one path of each version's state, read a batch of ancestors at a time."""

    def __init__(self, graph: VersionGraph[int], tokens: list[str], revealer: Revealer) -> None:
        self.graph = graph
        self.tokens = tokens
        # Values are compared as readers see them: a personal value sealed twice differs
        # in its stored form, and a path may lead into a sealed value.
        self.revealer = revealer
        self.by_state: dict[str, Any] = {}
        self.by_version: dict[int, Any] = {}
        self.in_database = on_postgresql() and all(
            _INDEX.fullmatch(t) or not _NUMERIC.fullmatch(t) for t in tokens
        )

    def at(self, version_id: int) -> Any:
        if version_id not in self.by_version:
            self._load(self._batch(version_id))
        return self.by_version[version_id]

    def _batch(self, version_id: int) -> list[int]:
        """The version and the first-parent ancestors below it not read yet."""
        batch = [version_id]
        current = version_id
        while len(batch) < BATCH:
            parents = self.graph.parents(current)
            if not parents or parents[0] in self.by_version:
                break
            current = parents[0]
            batch.append(current)
        return batch

    def _load(self, version_ids: list[int]) -> None:
        states = dict(Version.objects.filter(pk__in=version_ids).values_list("id", "state_id"))
        wanted = sorted({h for h in states.values() if h not in self.by_state})
        if wanted:
            found = self._values(wanted)
            # States a retention policy does not store are recomputed.
            for version_id, state_hash in states.items():
                if state_hash in wanted and state_hash not in found:
                    found[state_hash] = self._resolve(state_of(version_id))
            self.by_state.update(found)
        for version_id, state_hash in states.items():
            self.by_version[version_id] = self.by_state[state_hash]

    def _resolve(self, state: Any) -> Any:
        return resolve(self.revealer.reveal(state), self.tokens)

    def _values(self, hashes: list[str]) -> dict[str, Any]:
        if not self.in_database:
            return {
                h: self._resolve(data)
                for h, data in State.objects.filter(pk__in=hashes).values_list("hash", "data")
            }
        found = self._values_in_database(hashes)
        # A path that leads into a sealed value is found only in the revealed state.
        missing = [h for h, value in found.items() if value is MISSING]
        if missing:
            states = State.objects.filter(pk__in=missing).values_list("hash", "data")
            found.update({h: self._resolve(data) for h, data in states})
        return {h: self.revealer.reveal(v) if v is not MISSING else v for h, v in found.items()}

    def _values_in_database(self, hashes: list[str]) -> dict[str, Any]:
        table = State._meta.db_table
        with connection.cursor() as cursor:
            # "#>" answers SQL NULL for a missing path and JSON null for a null value.
            cursor.execute(
                f"SELECT hash, (data #> %s)::text FROM {table} WHERE hash = ANY(%s)",
                [self.tokens, hashes],
            )
            rows = cursor.fetchall()
        return {h: MISSING if text is None else json.loads(text) for h, text in rows}


def _culprit(graph: VersionGraph[int], values: _PathValues, version_id: int) -> int:
    """Follow parents holding the same value down to the version that set it."""
    value = values.at(version_id)
    current = version_id
    while True:
        holder = next((p for p in graph.parents(current) if same(values.at(p), value)), None)
        if holder is None:
            return current
        current = holder


def blame(stream: Stream, version: Version, path: str, *, depth: int = HISTORY) -> Blame:
    """Blame the value at ``path`` of the version's state: its last ``depth`` changes."""
    tokens = pointer_tokens(path)
    graph = graph_for(stream)
    values = _PathValues(graph, tokens, Revealer(stream.project_id))
    value = values.at(version.pk)
    if value is MISSING:
        raise NotFound(f"version {version.pk} has nothing at {path!r}")
    found: list[tuple[int, Any, Any]] = []
    current, current_value = version.pk, value
    complete = False
    while len(found) < depth:
        culprit = _culprit(graph, values, current)
        parents = graph.parents(culprit)
        previous = values.at(parents[0]) if parents else MISSING
        found.append((culprit, current_value, previous))
        if previous is MISSING:
            complete = True
            break
        current, current_value = parents[0], previous
    versions = Version.objects.select_related("event").in_bulk([f[0] for f in found])
    changes = [Change(versions[v], val, prev) for v, val, prev in found]
    return Blame(stream, version, path, value, changes, complete)
