"""JSON Lines for what a stream's retention policy and compactions left: exported, and
imported as the original has it.

A compacted stream's released events keep their hash but not their payload, and its
released versions keep their digest but not their state, so an import cannot recompute
them. The file carries what the log keeps instead, in lines between a stream's events
and its versions:

- ``retention``: the stream's policy (non-eternal streams only);
- ``compaction``: each finished compaction, with its figures and the id of the
  ``retention.compacted`` event of the audit stream that records it;
- ``released_run``: each released run, its versions (by position in the stream), the
  Merkle root over their events' hashes and the bytes it released;
- ``state``: the stored state of each kept version whose parent was released (nothing
  before it can be folded again).

The import checks what can be checked: a released event must chain to the event
before it (its own hash cannot be recomputed), a released version's digest must cover
its event's hash, its parents' digests and its recorded state hash, a ``state`` line
must hash to its version's state hash, each run must be one chain of first parents
whose events' hashes give its Merkle root, each compaction's runs must give the root its
audit record names, and every event without a payload must belong to a released
version. What it cannot prove is the content of what was released: that is gone on
both sides.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from django.db import connection, models
from django.db.models import Q

from continust.core.database import on_postgresql
from continust.core.errors import InvalidEvent
from continust.graph.parents import parents_in_stream
from continust.interchange import times
from continust.log import canonical
from continust.log.rows import reserve_ids
from continust.models import (
    Compaction,
    CompactionStatus,
    Event,
    Project,
    ReleasedRun,
    ReleasedVersion,
    Retention,
    State,
    Stream,
    Version,
)

KINDS: Final = ("retention", "compaction", "released_run", "state")
FINISHED: Final = (CompactionStatus.DONE, CompactionStatus.FAILED)
_JOB_FIGURES: Final = (
    "snapshots_stored",
    "states_released",
    "payloads_released",
    "versions_released",
    "runs",
    "bytes_before",
    "bytes_after",
)


def _moment(value: datetime | None) -> str | None:
    return canonical.timestamp_text(value) if value is not None else None


def ordinals(stream: Stream) -> dict[int, int]:
    """Each version's position in the stream (1, 2, … in creation order) by its id."""
    ids = Version.objects.filter(stream=stream).order_by("id").values_list("id", flat=True)
    return {vid: number for number, vid in enumerate(ids.iterator(5000), start=1)}


def retained_records(stream: Stream) -> Iterator[dict[str, Any]]:
    """Yield the records of the stream's policy, compactions, released runs and the
    states the import needs, in the order an import reads them."""
    name = stream.name
    if stream.retention != Retention.ETERNAL:
        yield {
            "kind": "retention",
            "stream": name,
            "policy": stream.retention,
            "snapshot_every": stream.snapshot_every,
            "horizon_versions": stream.horizon_versions,
            "horizon_age_seconds": (
                int(stream.horizon_age.total_seconds()) if stream.horizon_age else None
            ),
        }
    runs = list(ReleasedRun.objects.filter(stream=stream).order_by("first_id"))
    if not runs:
        return
    ordinal = ordinals(stream)
    jobs = Compaction.objects.filter(
        Q(status__in=FINISHED) | Q(pk__in={run.compaction_id for run in runs}), stream=stream
    ).select_related("record")
    number: dict[int, int] = {}
    for job in jobs.order_by("id"):
        number[job.pk] = len(number) + 1
        yield {
            "kind": "compaction",
            "stream": name,
            "number": number[job.pk],
            "policy": job.policy,
            "upto": ordinal.get(job.upto),
            "cutoff": _moment(job.cutoff),
            "status": job.status if job.status in FINISHED else CompactionStatus.FAILED,
            "requested_by": job.requested_by,
            "requested_at": _moment(job.requested_at),
            "started_at": _moment(job.started_at),
            "finished_at": _moment(job.finished_at),
            **{figure: getattr(job, figure) for figure in _JOB_FIGURES},
            "error": job.error
            if job.status in FINISHED
            else (job.error or "not finished when exported"),
            "record": str(job.record.id) if job.record is not None else None,
        }
    members: dict[int, list[tuple[int, int]]] = {}
    for run_id, generation, vid in ReleasedVersion.objects.filter(run__stream=stream).values_list(
        "run_id", "version__generation", "version_id"
    ):
        members.setdefault(run_id, []).append((generation, vid))
    released = {vid for chain in members.values() for _, vid in chain}
    for run in runs:
        yield {
            "kind": "released_run",
            "stream": name,
            "compaction": number[run.compaction_id],
            "versions": [ordinal[vid] for _, vid in sorted(members.get(run.pk, []))],
            "merkle_root": run.merkle_root,
            "bytes_released": run.bytes_released,
        }
    after = sorted(
        vid
        for vid, parents in parents_in_stream(stream.pk).items()
        if vid not in released and any(p in released for p in parents)
    )
    hashes = dict(Version.objects.filter(pk__in=after).values_list("id", "state_id"))
    stored = dict(State.objects.filter(pk__in=set(hashes.values())).values_list("hash", "data"))
    for vid in after:
        if hashes[vid] in stored:
            yield {
                "kind": "state",
                "stream": name,
                "ref": ordinal[vid],
                "state": stored[hashes[vid]],
            }


def _ref(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidEvent(f"{what} names a version by its position in the stream, not {value!r}")
    return value


@dataclass
class RetainedImport:
    """What a stream's retention lines said, held until its versions are imported."""

    policy: dict[str, Any] | None = None
    compactions: dict[int, dict[str, Any]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    released: set[int] = field(default_factory=set)
    states: dict[int, Any] = field(default_factory=dict)
    # Events imported without a payload: their position, by seq.
    bare_events: dict[int, int] = field(default_factory=dict)

    def take(self, record: dict[str, Any]) -> None:
        """Keep one ``retention``, ``compaction``, ``released_run`` or ``state`` line."""
        kind = record["kind"]
        if kind == "retention":
            if record["policy"] not in Retention.values:
                raise InvalidEvent(f"{record['policy']!r} is not a retention policy")
            self.policy = record
        elif kind == "compaction":
            number = record["number"]
            if not isinstance(number, int) or number in self.compactions:
                raise InvalidEvent(f"compaction {number!r} is not a new number of the stream")
            self.compactions[number] = record
        elif kind == "released_run":
            refs = [_ref(r, "a released run") for r in record["versions"]]
            if not refs or self.released.intersection(refs) or len(set(refs)) != len(refs):
                raise InvalidEvent("a released run holds versions of no other run, once each")
            if record["compaction"] not in self.compactions:
                raise InvalidEvent(f"a released run names no compaction {record['compaction']!r}")
            self.released.update(refs)
            self.runs.append(record)
        else:
            ref = _ref(record["ref"], "a state line")
            if not isinstance(record["state"], (dict, list)):
                raise InvalidEvent(f"the state of version {ref} is not a JSON document")
            self.states[ref] = record["state"]

    def given_state(self, ref: int, state_hash: str) -> tuple[bool, Any]:
        """For a version the import cannot fold: (True, its state or None when released).
        (False, None) when it folds as any other version."""
        if ref in self.released:
            return True, None
        if ref in self.states:
            state = self.states[ref]
            if canonical.state_hash(state) != state_hash:
                raise InvalidEvent(f"the state given for version {ref} does not hash to its own")
            return True, state
        return False, None


def apply_policy(stream: Stream, retained: RetainedImport, *, created: bool) -> None:
    """Give a stream the policy its file names (without an audit record: the file's audit
    stream already holds the original's)."""
    record = retained.policy
    kind = record["policy"] if record else Retention.ETERNAL
    age = record.get("horizon_age_seconds") if record else None
    wanted = {
        "retention": kind,
        "snapshot_every": record["snapshot_every"] if record else stream.snapshot_every,
        "horizon_versions": record["horizon_versions"] if record else None,
        "horizon_age": timedelta(seconds=age) if age is not None else None,
    }
    if not created:
        if stream.retention != kind and record is not None:
            raise InvalidEvent(
                f"stream {stream.name} is kept {stream.retention}; the file's is {kind}"
            )
        return
    if record is None:
        return
    Stream.objects.filter(pk=stream.pk).update(**wanted)
    for name, value in wanted.items():
        setattr(stream, name, value)


def import_bare_event(stream: Stream, record: dict[str, Any], retained: RetainedImport) -> Event:
    """Write an event whose payload compaction released: its hash cannot be recomputed, so
    it must chain to the event before it; a released version must make it (checked when
    the stream's lines end)."""
    if record["prev_hash"] != stream.last_hash or record["seq"] != stream.event_count + 1:
        raise InvalidEvent(
            f"event #{record['seq']}'s payload was released and it does not chain to the "
            "event before it"
        )
    digest = record["hash"]
    if not isinstance(digest, str) or len(digest) != 64:
        raise InvalidEvent(f"event #{record['seq']} has no hash")
    (position,) = reserve_ids(Event, 1)
    values = {
        "position": position,
        "id": uuid.UUID(record["id"]),
        "project": stream.project_id,
        "stream": stream.pk,
        "seq": record["seq"],
        "type": record["type"],
        "timestamp": datetime.fromisoformat(record["timestamp"]),
        "causation_id": uuid.UUID(record["causation"]) if record["causation"] else None,
        "correlation_id": uuid.UUID(record["correlation"]) if record["correlation"] else None,
        "actor": record["actor"],
        "prev_hash": record["prev_hash"],
        "hash": digest,
    }
    columns, params = [], []
    for name, value in values.items():
        column = Event._meta.get_field(name)
        assert isinstance(column, models.Field) and column.column is not None
        columns.append(connection.ops.quote_name(column.column))
        params.append(column.get_db_prep_save(value, connection))
    null = "'null'::jsonb" if on_postgresql() else "'null'"
    marks = ", ".join(["%s"] * len(params))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO continust_event ({', '.join(columns)}, payload) VALUES ({marks}, {null})",
            params,
        )
    Stream.objects.filter(pk=stream.pk).update(event_count=record["seq"], last_hash=digest)
    stream.event_count, stream.last_hash = record["seq"], digest
    retained.bare_events[position] = record["seq"]
    return Event.objects.get(pk=position)


@dataclass
class RecordLink:
    """A compaction whose audit record is an event of the file's audit stream."""

    compaction: Compaction
    event: uuid.UUID
    roots: list[str]


def finish(stream: Stream, retained: RetainedImport, refs: dict[Any, Version]) -> list[RecordLink]:
    """Check and write a stream's released runs and compactions once its versions are in;
    return the compactions whose audit record is to be found when the file ends."""
    released_events = {refs[r].event_id for r in retained.released if r in refs}
    for position, seq in sorted(retained.bare_events.items(), key=lambda item: item[1]):
        if position not in released_events:
            raise InvalidEvent(compacted_error(stream, seq))
    missing = sorted(r for r in retained.released | set(retained.states) if r not in refs)
    if missing:
        raise InvalidEvent(f"stream {stream.name} has no version {missing[0]}")
    if not retained.runs:
        return []
    existing = dict(
        ReleasedRun.objects.filter(stream=stream).values_list("first_id", "merkle_root")
    )
    if existing:
        wanted = {refs[run["versions"][0]].pk: run["merkle_root"] for run in retained.runs}
        if wanted != existing:
            raise InvalidEvent(f"stream {stream.name}'s released runs differ from the file's")
        return []
    jobs: dict[int, Compaction] = {}
    links: list[RecordLink] = []
    for number, line in sorted(retained.compactions.items()):
        upto = refs.get(line["upto"]) if line["upto"] is not None else None
        where = f"stream {stream.name}: compaction {number}"
        moments = {
            name: times.read(where, name, line[name])
            for name in ("cutoff", "requested_at", "started_at", "finished_at")
        }
        if not isinstance(line["requested_by"], str) or len(line["requested_by"]) > 200:
            raise InvalidEvent(f"{where}: requested_by cannot be {line['requested_by']!r}")
        job = Compaction.objects.create(
            stream=stream,
            policy=line["policy"],
            upto=upto.pk if upto is not None else 0,
            cutoff=moments["cutoff"],
            status=line["status"] if line["status"] in FINISHED else CompactionStatus.FAILED,
            requested_by=line["requested_by"],
            started_at=moments["started_at"],
            finished_at=moments["finished_at"],
            phase="finish",
            error=line["error"],
            **{figure: line[figure] for figure in _JOB_FIGURES},
        )
        if moments["requested_at"] is not None:
            job.requested_at = moments["requested_at"]
            Compaction.objects.filter(pk=job.pk).update(requested_at=job.requested_at)
        jobs[number] = job
        if line["record"] is not None:
            links.append(RecordLink(job, uuid.UUID(line["record"]), []))
    roots: dict[int, list[str]] = {}
    for line in retained.runs:
        chain = [refs[r] for r in line["versions"]]
        where = f"stream {stream.name}: the released run from version {line['versions'][0]}"
        for parent, child in zip(chain, chain[1:], strict=False):
            if child.first_parent_id != parent.pk:
                raise InvalidEvent(f"{where} is not one chain of first parents")
        hashes = list(
            Event.objects.filter(pk__in=[v.event_id for v in chain]).values_list("position", "hash")
        )
        by_position = dict(hashes)
        if canonical.merkle_root([by_position[v.event_id] for v in chain]) != line["merkle_root"]:
            raise InvalidEvent(f"{where}: its events' hashes do not give its Merkle root")
        run = ReleasedRun.objects.create(
            stream=stream,
            compaction=jobs[line["compaction"]],
            first=chain[0],
            last=chain[-1],
            length=len(chain),
            merkle_root=line["merkle_root"],
            bytes_released=line["bytes_released"],
        )
        ReleasedVersion.objects.bulk_create(
            [ReleasedVersion(version=v, run=run) for v in chain], batch_size=2000
        )
        roots.setdefault(line["compaction"], []).append(line["merkle_root"])
    for link in links:
        number = next(n for n, job in jobs.items() if job is link.compaction)
        link.roots = roots.get(number, [])
    return links


UNLINKED: Final = (
    "compactions whose audit record is not in the file (a file of some streams without "
    "_audit: their runs are checked, the record is not linked)"
)


def link_records(
    project: Project, links: list[RecordLink], *, with_audit: bool, skip: Callable[[str], None]
) -> None:
    """Point each imported compaction at its audit record, once the file's audit stream
    is in, and check that its runs give the root the record names. A file without the
    audit stream (an export of some streams) cannot hold the record: the compaction stays
    unlinked, and ``skip`` says so; a file with it that lacks the record is refused."""
    for link in links:
        event = Event.objects.filter(project_id=project.pk, id=link.event).first()
        if event is None and not with_audit:
            skip(UNLINKED)
            continue
        if event is None:
            raise InvalidEvent(
                f"compaction of {link.compaction.stream.name}: its audit record {link.event} "
                "is not in the file"
            )
        payload = event.payload if isinstance(event.payload, dict) else {}
        if canonical.merkle_root(link.roots) != payload.get("runs_root"):
            raise InvalidEvent(
                f"compaction of {link.compaction.stream.name}: its released runs do not give "
                f"the root its audit record {link.event} names"
            )
        Compaction.objects.filter(pk=link.compaction.pk).update(record=event)


def compacted_error(stream: Stream, seq: int) -> str:
    """Say that an event's payload is gone and nothing in the file says it was released."""
    return (
        f"stream {stream.name} was compacted: event #{seq}'s payload was released, and "
        "no released_run line of the file holds a version it made, so it cannot be "
        "imported (a file written before released runs were exported: export it again)"
    )
