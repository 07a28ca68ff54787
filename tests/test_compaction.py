"""Compaction: the graph never severs, verify still holds and still catches tampering,
a killed compaction resumes to the same result, and nothing under review is released."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from continust.audit.integrity import verify
from continust.audit.reviews import open_review
from continust.audit.tags import create_tag
from continust.audit.trail import AUDIT_STREAM
from continust.core.errors import StateReleased
from continust.graph import cache as graphs
from continust.graph.lineage import VersionGraph
from continust.log import triggers
from continust.log.lookup import resolve_version
from continust.log.policy import make_policy
from continust.log.projects import create_stream
from continust.log.states import state_of
from continust.log.store import fork, merge
from continust.models import (
    Branch,
    Compaction,
    CompactionStatus,
    Event,
    Project,
    ReleasedRun,
    ReleasedVersion,
    State,
    Stream,
    Version,
)
from continust.retention import compaction
from continust.retention.policies import set_policy
from tests.conftest import put

pytestmark = pytest.mark.django_db


def _random_dag(stream: Stream, seed: int, steps: int = 60) -> None:
    """Appends on random branches, forks from random versions, merges of random pairs."""
    rng = random.Random(seed)
    put(stream, {"root": seed})
    branches = ["main"]
    for step in range(steps):
        roll = rng.random()
        if roll < 0.15:
            name = f"b{step}"
            at = rng.choice(list(Version.objects.filter(stream=stream)))
            fork(stream, name, at)
            branches.append(name)
        elif roll < 0.3 and len(branches) > 1:
            source, into = rng.sample(branches, 2)
            heads = dict(Branch.objects.filter(stream=stream).values_list("name", "head_id"))
            graph = graphs.graph_for(stream)
            if graph.is_ancestor(heads[source], heads[into]):
                continue
            conflicts = {}
            try:
                merge(stream, source, into)
            except Exception as err:  # a conflict: take ours
                conflicts = {c.path: c.ours for c in getattr(err, "conflicts", [])}
                if not conflicts:
                    raise
                merge(
                    stream,
                    source,
                    into,
                    resolutions={
                        p: (None if v is compaction_missing() else v) for p, v in conflicts.items()
                    },
                )
        else:
            branch = rng.choice(branches)
            put(
                stream,
                *(
                    {f"k{rng.randrange(6)}": rng.randrange(100), "step": step}
                    for _ in range(rng.randrange(1, 4))
                ),
                branch=branch,
            )


def compaction_missing() -> Any:
    from continust.documents.diff import MISSING

    return MISSING


def _fresh_graph(stream: Stream) -> VersionGraph[int]:
    graphs.forget(stream)
    return graphs.graph_for(stream)


def _lineage(stream: Stream, rng: random.Random) -> dict[str, Any]:
    graph = _fresh_graph(stream)
    nodes = sorted(graph)
    pairs = [tuple(rng.sample(nodes, 2)) for _ in range(40)]
    roots = set(graph.roots())
    return {
        "ancestors": {v: graph.ancestor_count(v) for v in nodes},
        "bases": {p: sorted(graph.merge_bases(*p)) for p in pairs},
        "between": {p: graph.between_count(*p) for p in pairs},
        "reach_root": all(graph.ancestors(v) & roots for v in nodes),
        "parents": {v: graph.parents(v) for v in nodes},
    }


def _verify(stream: Stream) -> Any:
    return verify(streams=[Stream.objects.select_related("project").get(pk=stream.pk)])


def _compact(stream: Stream, **policy: Any) -> Compaction:
    set_policy(stream, make_policy("ephemeral", **policy), actor="alice")
    job = compaction.request(stream, actor="alice")
    return compaction.run(job.pk)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_lineage_and_verify_are_the_same_after_compaction(project: Project, seed: int) -> None:
    stream = create_stream(project, f"dag{seed}")
    _random_dag(stream, seed)
    rng = random.Random(seed)
    before = _lineage(stream, random.Random(seed))
    assert before["reach_root"]
    report = _verify(stream)
    assert report.ok, report.broken
    total = Version.objects.filter(stream=stream).count()
    done = _compact(stream, horizon_versions=max(3, total // 4))
    assert done.status == CompactionStatus.DONE, done.error
    assert done.versions_released > 0
    assert _lineage(stream, rng) == before
    after = _verify(stream)
    assert after.ok, after.broken
    assert (after.events, after.versions) == (report.events, report.versions)
    # Every released version is in exactly one run, and heads never are.
    released = set(
        ReleasedVersion.objects.filter(run__stream=stream).values_list("version_id", flat=True)
    )
    assert len(released) == done.versions_released
    heads = set(Branch.objects.filter(stream=stream).values_list("head_id", flat=True))
    assert not released & heads


def test_runs_are_chains_and_collapse_what_they_stand_for(stream: Stream) -> None:
    versions = put(stream, *({"n": n} for n in range(30)))
    fork(stream, "side", versions[9])
    put(stream, {"side": True}, branch="side")
    done = _compact(stream, horizon_versions=5)
    runs = list(ReleasedRun.objects.filter(stream=stream).order_by("first_id"))
    # The newest 5 versions of each branch's own history stay (v25..v29 of main; the side
    # version and v9..v6 below it), and so does the fork point, the merge base of main and
    # side: two runs, v0..v5 and v10..v24.
    assert [(r.first_id, r.last_id, r.length) for r in runs] == [
        (versions[0].pk, versions[5].pk, 6),
        (versions[10].pk, versions[24].pk, 15),
    ]
    assert done.runs == 2 and done.versions_released == 21
    assert done.bytes_after < done.bytes_before
    assert all(r.bytes_released > 0 for r in runs)
    assert Event.objects.filter(stream=stream, payload=None).count() == 21
    assert state_of(versions[9]) == {"n": 9}
    assert state_of(versions[6]) == {"n": 6}
    assert state_of(versions[25]) == {"n": 25}
    for version in (versions[0], versions[5], versions[24]):
        with pytest.raises(StateReleased):
            state_of(version)


def test_verify_still_catches_tampering_in_what_was_kept(stream: Stream) -> None:
    versions = put(stream, *({"n": n} for n in range(12)))
    _compact(stream, horizon_versions=4)
    assert _verify(stream).ok
    with connection.cursor() as cursor:
        triggers.remove(connection.vendor, cursor.execute)
    try:
        cases = [
            # a kept event's payload
            (
                "UPDATE continust_event SET payload = '{\"n\": 99}' WHERE position = %s",
                [versions[-1].event_id],
                "hash mismatch",
            ),
            # a released event's hash, which its run's Merkle root and the chain cover
            (
                "UPDATE continust_event SET hash = %s WHERE position = %s",
                ["f" * 64, versions[2].event_id],
                "previous hash",
            ),
            # a kept state
            (
                "UPDATE continust_state SET data = '{\"n\": 98}' WHERE hash = %s",
                [versions[-2].state_id],
                "does not match its content",
            ),
            # a payload released behind compaction's back
            (
                "UPDATE continust_event SET payload = 'null' WHERE position = %s",
                [versions[-3].event_id],
                "no compaction released it",
            ),
            # the row standing for a run: its root, its members
            ("UPDATE continust_releasedrun SET merkle_root = %s", ["0" * 64], "Merkle root"),
            (
                "DELETE FROM continust_releasedversion WHERE version_id = %s",
                [versions[3].pk],
                "no compaction released it",
            ),
            ("UPDATE continust_releasedrun SET last_id = %s", [versions[5].pk], "not one chain"),
        ]
        for sql, args, reason in cases:
            sid = transaction.savepoint()
            with connection.cursor() as cursor:
                cursor.execute(sql, args)
            report = _verify(stream)
            transaction.savepoint_rollback(sid)
            assert not report.ok, sql
            assert reason in report.broken.reason, (sql, report.broken)
    finally:
        with connection.cursor() as cursor:
            triggers.install(connection.vendor, cursor.execute)
    assert _verify(stream).ok


def _outcome(stream: Stream) -> dict[str, Any]:
    job = Compaction.objects.filter(stream=stream).order_by("-id").first()
    assert job is not None
    hashes = set(Version.objects.filter(stream=stream).values_list("state_id", flat=True))
    return {
        "status": job.status,
        "counts": (
            job.runs,
            job.versions_released,
            job.payloads_released,
            job.states_released,
            job.snapshots_stored,
            job.bytes_before,
            job.bytes_after,
        ),
        "runs": list(
            ReleasedRun.objects.filter(stream=stream)
            .order_by("first_id")
            .values_list("first_id", "last_id", "length", "merkle_root", "bytes_released")
        ),
        "released": sorted(
            ReleasedVersion.objects.filter(run__stream=stream).values_list("version_id", flat=True)
        ),
        "payloads": sorted(
            Event.objects.filter(stream=stream, payload=None).values_list("seq", flat=True)
        ),
        "states": sorted(State.objects.filter(pk__in=hashes).values_list("hash", flat=True)),
    }


class _Rollback(Exception):
    pass


class _Killed(BaseException):
    """Stands for the worker dying mid-chunk: nothing catches it."""


@pytest.mark.parametrize("kind", ["ephemeral", "selective"])
def test_a_compaction_killed_mid_way_and_rerun_gives_the_same_result(
    project: Project, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    stream = create_stream(project, "killed")
    _random_dag(stream, 11, steps=80)
    options = {"horizon_versions": 10} if kind == "ephemeral" else {"snapshot_every": 4}
    set_policy(stream, make_policy(kind, **options), actor="alice")
    # The uninterrupted run, measured and then rolled back.
    try:
        with transaction.atomic():
            compaction.run(compaction.request(stream, actor="alice").pk, chunk=3)
            expected = _outcome(stream)
            raise _Rollback
    except _Rollback:
        pass
    assert expected["status"] == CompactionStatus.DONE
    assert expected["released"] or kind == "selective"
    job = compaction.request(stream, actor="alice")
    name = "_release_run" if kind == "ephemeral" else "_drop_states"
    original = getattr(compaction._Run, name)

    def dies_after_the_first_chunks(self: Any, *args: Any) -> Any:
        if Compaction.objects.get(pk=job.pk).cursor > 0:
            raise _Killed
        return original(self, *args)

    monkeypatch.setattr(compaction._Run, name, dies_after_the_first_chunks)
    with pytest.raises(_Killed):
        compaction.run(job.pk, chunk=3)
    job.refresh_from_db()
    assert job.status == CompactionStatus.RUNNING and job.phase == "release" and job.cursor > 0
    # A second delivery while the lease holds steps aside.
    assert compaction.run(job.pk, chunk=3).status == CompactionStatus.RUNNING
    monkeypatch.setattr(compaction._Run, name, original)
    Compaction.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now())
    assert compaction.run(job.pk, chunk=3).status == CompactionStatus.DONE
    assert _outcome(stream) == expected
    # And once more: a done compaction does nothing.
    assert compaction.run(job.pk).status == CompactionStatus.DONE
    assert _outcome(stream) == expected
    assert _verify(stream).ok


def test_nothing_under_review_is_released(project: Project) -> None:
    stream = create_stream(project, "reviewed")
    versions = put(stream, *({"n": n} for n in range(40)))
    review = open_review(stream, head=versions[20], base=versions[10], actor="alice")
    set_policy(stream, make_policy("ephemeral", horizon_versions=3), actor="alice")
    dry = compaction.plan(stream)
    reviewed = {v.pk for v in versions[11:21]}
    planned = {v for run in dry.runs for v in run}
    assert not planned & reviewed
    assert reviewed <= set(dry.protected)
    assert all(f"review {review.pk}" in dry.protected[v] for v in reviewed)
    summary = dry.as_dict()
    assert summary["versions_released"] == len(planned) == 40 - 3 - 11
    assert summary["bytes_released"] > 0
    # The dry run wrote nothing.
    assert not ReleasedVersion.objects.exists()
    assert not Compaction.objects.exists()
    done = compaction.run(compaction.request(stream, actor="alice").pk)
    released = set(ReleasedVersion.objects.values_list("version_id", flat=True))
    assert released == planned and not released & reviewed
    assert done.versions_released == len(planned)
    for version in versions[10:21]:
        assert state_of(version) == {"n": int(version.event.seq) - 1}


def test_a_tagged_version_is_never_released(project: Project) -> None:
    stream = create_stream(project, "tagged")
    versions = put(stream, *({"n": n} for n in range(30)))
    create_tag(stream, "t10", versions[10], actor="alice")
    set_policy(stream, make_policy("ephemeral", horizon_versions=3), actor="alice")
    dry = compaction.plan(stream)
    assert dry.protected[versions[10].pk] == "tagged t10"
    compaction.run(compaction.request(stream, actor="alice").pk)
    released = set(ReleasedVersion.objects.values_list("version_id", flat=True))
    assert versions[9].pk in released and versions[10].pk not in released
    assert state_of(resolve_version(stream, "t10")) == {"n": 10}


def test_a_review_opened_after_planning_is_still_respected(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = create_stream(project, "late-review")
    versions = put(stream, *({"n": n} for n in range(20)))
    set_policy(stream, make_policy("ephemeral", horizon_versions=2), actor="alice")
    job = compaction.request(stream, actor="alice")
    original = compaction.plan

    def plan_then_review(*args: Any, **kwargs: Any) -> Any:
        planned = original(*args, **kwargs)
        open_review(stream, head=versions[5], base=versions[2], actor="bob")
        return planned

    monkeypatch.setattr(compaction, "plan", plan_then_review)
    compaction.run(job.pk)
    released = set(ReleasedVersion.objects.values_list("version_id", flat=True))
    assert not released & {v.pk for v in versions[3:6]}


def test_the_compaction_is_recorded_in_the_audit_stream(stream: Stream) -> None:
    put(stream, *({"n": n} for n in range(10)))
    done = _compact(stream, horizon_versions=2)
    record = Event.objects.get(stream__name=AUDIT_STREAM, type=compaction.RECORD_EVENT)
    assert done.record_id == record.pk
    assert record.payload["versions_released"] == done.versions_released == 8
    assert record.payload["bytes_before"] == done.bytes_before
    assert record.payload["runs_root"] == ReleasedRun.objects.get().merkle_root


def test_selective_compaction_keeps_snapshots_and_drops_the_rest(project: Project) -> None:
    stream = create_stream(project, "sel")
    set_policy(stream, make_policy("selective", snapshot_every=5), actor="alice")
    versions = [put(stream, {"n": n, "pad": "x" * 200})[0] for n in range(23)]
    # One event per append: each became the head, so each state was stored.
    assert all(State.objects.filter(pk=v.state_id).exists() for v in versions)
    before = [state_of(v) for v in versions]
    done = compaction.run(compaction.request(stream, actor="alice").pk)
    assert done.status == CompactionStatus.DONE, done.error
    stored = [v.generation for v in versions if State.objects.filter(pk=v.state_id).exists()]
    assert stored == [0, 5, 10, 15, 20, 22]  # the grid and the head
    assert done.states_released == 23 - 6
    assert done.bytes_after < done.bytes_before
    assert [state_of(v) for v in versions] == before
    assert _verify(stream).ok
    assert not ReleasedVersion.objects.exists()


def test_back_to_eternal_stores_every_state_again(project: Project) -> None:
    stream = create_stream(project, "sel")
    set_policy(stream, make_policy("selective", snapshot_every=10), actor="alice")
    versions = put(stream, *({"n": n} for n in range(25)))
    assert not State.objects.filter(pk=versions[3].state_id).exists()
    set_policy(stream, make_policy("eternal"), actor="alice")
    stream.refresh_from_db()
    assert compaction.plan(stream).as_dict()["snapshots_stored"] == 25 - 4
    done = compaction.run(compaction.request(stream, actor="alice").pk)
    assert done.snapshots_stored == 25 - 4
    assert all(State.objects.filter(pk=v.state_id).exists() for v in versions)


def test_fork_from_a_released_version_is_refused(stream: Stream) -> None:
    versions = put(stream, *({"n": n} for n in range(8)))
    _compact(stream, horizon_versions=2)
    with pytest.raises(StateReleased, match="fork from a version that is kept"):
        fork(stream, "old", versions[1])
    assert not Branch.objects.filter(name="old").exists()


def test_an_age_horizon_keeps_young_versions(stream: Stream) -> None:
    put(stream, *({"n": n} for n in range(6)))
    set_policy(stream, make_policy("ephemeral", horizon_age="1h"), actor="alice")
    assert compaction.plan(stream).versions_released == 0
    later = compaction.plan(stream, cutoff=timezone.now() + timedelta(seconds=5))
    assert later.versions_released == 5  # all but the head


def test_one_compaction_at_a_time_and_only_due_streams_are_scheduled(project: Project) -> None:
    eternal = create_stream(project, "eternal")
    due = create_stream(project, "due")
    put(eternal, {"a": 1})
    put(due, {"a": 1}, {"a": 2})
    set_policy(due, make_policy("ephemeral", horizon_versions=1), actor="alice")
    first = compaction.request(due, actor="alice")
    assert compaction.request(due, actor="bob").pk == first.pk
    assert compaction.request_due() == []  # one is already pending
    compaction.run(first.pk)
    assert compaction.request_due() == []  # done just now
    Compaction.objects.filter(pk=first.pk).update(finished_at=timezone.now() - timedelta(days=1))
    (scheduled,) = compaction.request_due()
    assert scheduled.stream_id == due.pk and scheduled.requested_by == "schedule"


def test_a_compacted_stream_exports_with_its_released_payloads_as_null(stream: Stream) -> None:
    from continust.interchange.jsonl import export_lines

    put(stream, *({"n": n} for n in range(6)))
    _compact(stream, horizon_versions=2)
    lines = list(export_lines(stream.project, [stream.name]))
    assert sum('"payload":null' in line for line in lines) == 4
    assert sum('"payload":{"n":' in line for line in lines) == 2


def test_a_replay_through_released_versions_is_refused(stream: Stream) -> None:
    from continust.replays.replay import start_replay

    versions = put(stream, *({"n": n} for n in range(8)))
    _compact(stream, horizon_versions=3)
    with pytest.raises(StateReleased, match="5 version"):
        start_replay(stream, end="main")
    with pytest.raises(StateReleased, match="replay from a kept version"):
        start_replay(stream, start=versions[2].pk, end="main")
    assert start_replay(stream, start=versions[5].pk, end="main").total == 2


# -- found in review: each once lost a kept state or broke a kept operation ---------------


def test_selective_after_ephemeral_keeps_the_first_state_after_a_run(project: Project) -> None:
    cache.clear()
    stream = create_stream(project, "both")
    versions = [put(stream, {"n": n})[0] for n in range(30)]
    _compact(stream, horizon_versions=10)
    set_policy(stream, make_policy("selective", snapshot_every=7), actor="alice")
    compaction.run(compaction.request(stream, actor="alice").pk)
    cache.clear()
    for version in versions[20:]:
        assert state_of(version) == {"n": int(version.event.seq) - 1}
    assert _verify(stream).ok


def test_versions_newer_than_the_compaction_keep_what_they_are_folded_from(
    project: Project,
) -> None:
    cache.clear()
    stream = create_stream(project, "newer")
    put(stream, *({"n": n} for n in range(30)))
    set_policy(stream, make_policy("ephemeral", horizon_versions=5), actor="alice")
    job = compaction.request(stream, actor="alice")
    set_policy(stream, make_policy("selective", snapshot_every=100), actor="alice")
    newer = put(stream, *({"m": n} for n in range(10)))
    compaction.run(job.pk)
    cache.clear()
    assert [state_of(v)["m"] for v in newer] == list(range(10))
    assert _verify(stream).ok


def test_a_criss_cross_merge_still_merges_after_compaction(project: Project) -> None:
    stream = create_stream(project, "criss")
    put(stream, *({"pad": n} for n in range(6)))
    (x,) = put(stream, {"x": 1})
    fork(stream, "dev", x)
    (a,) = put(stream, {"a": 1})
    put(stream, {"b": 1}, branch="dev")
    fork(stream, "tmp", a)
    merge(stream, "dev", "main")
    merge(stream, "tmp", "dev")
    put(stream, {"main": 2})
    put(stream, {"dev": 2}, branch="dev")
    _compact(stream, horizon_versions=3)
    assert ReleasedVersion.objects.exists()
    merged = merge(stream, "dev", "main")
    assert state_of(merged)["dev"] == 2 and state_of(merged)["main"] == 2


def test_an_active_replay_keeps_its_range(stream: Stream) -> None:
    from continust.replays import replay as replays

    versions = put(stream, *({"n": n} for n in range(30)))
    replay = replays.start_replay(stream, start=versions[0].pk, end="main")
    done = _compact(stream, horizon_versions=5)
    assert done.versions_released == 0
    assert replays.run(replay.pk) == "done"


def test_a_review_of_unstored_versions_opens_and_shows(
    client: Any, alice: Any, project: Project
) -> None:
    from django.urls import reverse

    stream = create_stream(project, "sel-review")
    set_policy(stream, make_policy("selective", snapshot_every=100), actor="alice")
    versions = put(stream, *({"n": n} for n in range(10)))
    assert not State.objects.filter(pk=versions[3].state_id).exists()
    review = open_review(stream, head=versions[3], base=versions[1], actor="alice")
    assert State.objects.filter(pk=versions[3].state_id).exists()  # its ends are snapshots
    client.force_login(alice)
    page = client.get(reverse("review", args=[project.slug, review.pk]))
    assert page.status_code == 200


def test_a_review_of_released_versions_is_refused(stream: Stream) -> None:
    versions = put(stream, *({"n": n} for n in range(10)))
    _compact(stream, horizon_versions=2)
    with pytest.raises(StateReleased):
        open_review(stream, head=versions[9], base=versions[2], actor="alice")
