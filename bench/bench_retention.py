"""Retention policies (issue 8): bytes per event on disk, compaction time, and reading
a state that is not stored.

One stream of ``--events`` events (default 1,000,000) whose state is ~2 KB (40 keys,
each a 40-character hex string; every event changes one or two keys by merge patch,
so every state is distinct), appended through ``continust.log.store.append`` in batches
of 1,000, each policy in its own database (states are content-addressed and shared
by the streams of one database):

- ``continust_bench_eternal``: the stream as appended, every state stored;
- ``continust_bench_selective``: a copy of it (``CREATE DATABASE ... TEMPLATE``), set to
  selective (a snapshot every ``--every`` = 100 versions) and compacted;
- ``continust_bench_selective_native``: a stream selective from the start, appended
  in the same batches (append stores ~1/N states itself), then compacted (which drops
  the former batch heads);
- ``continust_bench_ephemeral``: a copy of the eternal one, set to ephemeral (keep the
  newest ``--horizon`` = 10,000 versions) and compacted.

Each database is then ``VACUUM FULL``-ed and measured: ``pg_total_relation_size``
(heap, TOAST, indexes) of the stream tables divided by the number of events, beside
``continust.retention.compaction.footprint``. Then, one database at a time on an otherwise idle
benchmark, ``state_of`` of ``--reads`` random versions that are not stored (stored
ones under eternal), with Django's cache cleared before each read (cold) and again
without clearing (warm).

Run: `.venv/bin/python bench/bench_retention.py [--events N] [--keep]`. The work runs
in child processes (Django binds one database per process); the appends of the
eternal and the native selective stream run side by side, then the two compactions
of the copies. At 1,000,000 events it needs ~8 GB of disk while it runs and about
25 minutes on 2 cores; the databases are dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

from common import DEFAULT_URL, ROOT, machine, median, percentile

OUT = ROOT / "bench" / "out"
PREFIX = "continust_bench_"
TABLES = (
    "continust_event",
    "continust_version",
    "continust_versionparent",
    "continust_state",
    "continust_releasedrun",
    "continust_releasedversion",
)
KEYS = [f"k{i:02d}" for i in range(40)]
BATCH = 1000


def server_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL).rsplit("/", 1)[0]


def admin(sql: str) -> None:
    import psycopg

    url = (server_url() + "/postgres").replace("postgres://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def value(n: int, key: int) -> str:
    return hashlib.blake2b(f"{n}:{key}".encode(), digest_size=20).hexdigest()


def payload(n: int) -> dict:
    """Event ``n``'s merge patch: all 40 keys first, then one or two keys."""
    if n == 0:
        return {k: value(0, i) for i, k in enumerate(KEYS)}
    changed = {n % 40} | ({(n * 7 + 3) % 40} if n % 2 == 0 else set())
    return {KEYS[i]: value(n, i) for i in sorted(changed)}


def write(name: str, data: dict) -> None:
    OUT.mkdir(exist_ok=True)
    (OUT / f"retention-{name}.json").write_text(json.dumps(data, indent=1, default=str))


def read(name: str) -> dict:
    return json.loads((OUT / f"retention-{name}.json").read_text())


# -- the steps, each in a process of its own ----------------------------------------------


def the_stream():
    from continust.models import Stream

    return Stream.objects.get(project__slug="retention-bench", name="bench")


def step_append(db: str, events: int, kind: str, every: int) -> dict:
    from continust.log.policy import make_policy
    from continust.log.projects import create_project, create_stream
    from continust.log.store import NewEvent, append
    from continust.retention.policies import set_policy

    project = create_project("retention-bench")
    stream = create_stream(project, "bench")
    if kind == "selective":
        set_policy(stream, make_policy("selective", snapshot_every=every), actor="bench")
    seconds = []
    start = time.perf_counter()
    for first in range(0, events, BATCH):
        t = time.perf_counter()
        append(
            stream,
            [
                NewEvent(type="changed", payload=payload(n))
                for n in range(first, min(events, first + BATCH))
            ],
        )
        seconds.append(time.perf_counter() - t)
        if first % 100_000 == 0:
            print(
                f"{db}: {first + BATCH:,} events, {time.perf_counter() - start:.0f} s", flush=True
            )
    total = time.perf_counter() - start
    # What autovacuum would have done meanwhile; this server runs with autovacuum off,
    # and without statistics the ephemeral release's DELETE picks a plan that compares
    # every candidate state with every version (minutes a run of 10,000, not seconds).
    from django.db import connection

    t = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {
        "append_s": total,
        "analyze_s": time.perf_counter() - t,
        "append_events_per_s": events / total,
        "batch_p50_ms": median(seconds) * 1000,
        "batch_p95_ms": percentile(seconds, 95) * 1000,
    }


def patch_estimate() -> dict:
    """Work around a slowness in ``continust.retention.compaction._estimate`` (at commit 39cee1d):
    ``{... for v in shape.ids if v not in set(released)}`` builds the set of released
    versions again for every version, O(versions x released): at 1,000,000 versions
    under ephemeral that is hours (measured below). The replacement builds the set
    once and is otherwise the same code; a no-op once the module is fixed."""
    import inspect

    from continust.retention import compaction

    if "not in set(released)" not in inspect.getsource(compaction._estimate):
        return {"estimate_patched": False}

    def estimate(result: compaction.Plan, shape: compaction._Shape) -> None:
        hashes = [digest for _, digest in result.drops]
        if result.runs:
            released = [v for run in result.runs for v in run]
            gone = set(released)
            kept = {shape.state[v] for v in shape.ids if v not in gone}
            hashes += sorted(
                {
                    shape.state[v]
                    for v in released
                    if shape.state[v] in shape.stored and shape.state[v] not in kept
                }
            )
            events = (
                list(
                    compaction.Version.objects.filter(pk__in=released).values_list(
                        "event_id", flat=True
                    )
                )
                if len(released) <= 200_000
                else []
            )
            result.bytes_released += sum(compaction._payload_sizes(events).values())
        for start in range(0, len(hashes), 5000):
            result.bytes_released += sum(
                compaction._state_sizes(hashes[start : start + 5000]).values()
            )

    original = compaction._estimate

    def timed(result: compaction.Plan, shape: compaction._Shape) -> None:
        if result.runs:
            released = [v for run in result.runs for v in run]
            t = time.perf_counter()
            for _ in range(20):
                set(released)
            each = (time.perf_counter() - t) / 20
            info["original_estimate_extrapolated_s"] = each * len(shape.ids)
            info["released"] = len(released)
            info["versions"] = len(shape.ids)
        estimate(result, shape)

    info: dict = {"estimate_patched": True, "original": original.__name__}
    compaction._estimate = timed
    return info


def step_compact(db: str, kind: str, every: int, horizon: int) -> dict:
    from continust.log.policy import make_policy
    from continust.retention import compaction
    from continust.retention.policies import set_policy

    patched = patch_estimate()
    stream = the_stream()
    if kind != stream.retention:
        policy = (
            make_policy("selective", snapshot_every=every)
            if kind == "selective"
            else make_policy("ephemeral", horizon_versions=horizon)
        )
        set_policy(stream, policy, actor="bench")
    t = time.perf_counter()
    dry = compaction.plan(stream)
    plan_s = time.perf_counter() - t
    planned = {k: v for k, v in dry.as_dict(limit=0).items() if not isinstance(v, list)}
    del dry
    rss_plan = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    requested = compaction.request(stream, actor="bench")
    done = compaction.run(requested.pk)
    run_s = time.perf_counter() - t
    fields = (
        "status",
        "error",
        "snapshots_stored",
        "states_released",
        "versions_released",
        "payloads_released",
        "runs",
        "bytes_before",
        "bytes_after",
    )
    return {
        "plan_s": plan_s,
        "plan": planned,
        "patch": patched,
        "compaction_s": run_s,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "max_rss_after_plan_mb": rss_plan,
        "compaction": {f: getattr(done, f) for f in fields},
    }


def step_size(db: str) -> dict:
    from django.db import connection

    from continust.models import State, Version
    from continust.retention.compaction import footprint

    stream = the_stream()
    t = time.perf_counter()
    connection.ensure_connection()
    old = connection.connection.autocommit
    connection.connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("VACUUM FULL")
        cursor.execute("ANALYZE")
    connection.connection.autocommit = old
    vacuum_s = time.perf_counter() - t
    sizes = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(
                "SELECT pg_total_relation_size(%s), pg_relation_size(%s), pg_indexes_size(%s)",
                [table, table, table],
            )
            total, heap, indexes = cursor.fetchone()
            sizes[table] = {
                "total": total,
                "heap": heap,
                "indexes": indexes,
                "toast": total - heap - indexes,
            }
        cursor.execute("SELECT pg_database_size(current_database())")
        database = cursor.fetchone()[0]
    fp = footprint(stream)
    return {
        "vacuum_s": vacuum_s,
        "tables": sizes,
        "database": database,
        "events": stream.event_count,
        "versions": Version.objects.filter(stream=stream).count(),
        "states_stored": State.objects.count(),
        "footprint": {
            "events": fp.events,
            "versions": fp.versions,
            "states": fp.states,
            "total": fp.total,
        },
    }


def step_read(db: str, reads: int, stored: bool) -> dict:
    from django.core.cache import cache
    from django.db import connection

    from continust.log.states import state_of

    stream = the_stream()
    test = "" if stored else "NOT "
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(
            "SELECT v.id, v.generation FROM continust_version v WHERE v.stream_id = %s "
            f"AND {test}EXISTS (SELECT 1 FROM continust_state s WHERE s.hash = v.state_id) "
            "AND NOT EXISTS (SELECT 1 FROM continust_releasedversion r "
            "WHERE r.version_id = v.id) ORDER BY random() LIMIT %s",
            [stream.pk, reads],
        )
        chosen = cursor.fetchall()
    ids = [v for v, _ in chosen]
    random.Random(7).shuffle(ids)
    state_of(ids[0])  # the connection and the code paths, once
    cold, warm = [], []
    for v in ids:
        cache.clear()
        t = time.perf_counter()
        state = state_of(v)
        cold.append((time.perf_counter() - t) * 1000)
        assert len(state) == len(KEYS), state
    for v in ids:  # the cold pass cleared the cache before each read: fill it first
        state_of(v)
        t = time.perf_counter()
        state_of(v)
        warm.append((time.perf_counter() - t) * 1000)
    return {
        "reads": len(ids),
        "stored": stored,
        "cold_p50_ms": median(cold),
        "cold_p95_ms": percentile(cold, 95),
        "warm_p50_ms": median(warm),
        "warm_p95_ms": percentile(warm, 95),
        "mean_distance": sum(g % 100 for _, g in chosen) / max(1, len(chosen)),
    }


def patch_chain() -> None:
    """Work around a bug in ``continust.log.states`` (at commit 39cee1d): on PostgreSQL the
    recursive walk's first term ``SELECT %s, 0`` is an ``integer`` while the recursive
    term yields ``bigint`` parent ids, so every ``state_of`` -- and so every append to an
    existing branch -- fails with "recursive query "chain" column 1 has type integer in
    non-recursive term but type bigint overall". The cast changes no plan; it is a
    no-op once the module has it."""
    from continust.log import states

    states._CHAIN = states._CHAIN.replace("SELECT %s, 0", "SELECT %s::bigint, 0")


def child(args: argparse.Namespace) -> None:
    from common import setup_django

    setup_django(f"{server_url()}/{args.db}")
    patch_chain()
    if args.step == "append":
        result = step_append(args.db, args.events, args.kind, args.every)
    elif args.step == "compact":
        result = step_compact(args.db, args.kind, args.every, args.horizon)
    elif args.step == "size":
        result = step_size(args.db)
    else:
        result = step_read(args.db, args.reads, args.kind == "eternal")
    write(f"{args.db.removeprefix(PREFIX)}-{args.step}", result)


# -- the driver -----------------------------------------------------------------------------


def spawn(step: str, db: str, kind: str, args: argparse.Namespace) -> subprocess.Popen:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--step",
        step,
        "--db",
        PREFIX + db,
        "--kind",
        kind,
        "--events",
        str(args.events),
        "--every",
        str(args.every),
        "--horizon",
        str(args.horizon),
        "--reads",
        str(args.reads),
    ]
    return subprocess.Popen(command, cwd=Path(__file__).resolve().parent)


def wait(*processes: subprocess.Popen) -> None:
    for process in processes:
        if process.wait() != 0:
            raise SystemExit(f"{process.args} failed with {process.returncode}")


def copy_database(source: str, target: str) -> float:
    t = time.perf_counter()
    admin(f'DROP DATABASE IF EXISTS "{PREFIX}{target}"')
    admin(f'CREATE DATABASE "{PREFIX}{target}" TEMPLATE "{PREFIX}{source}"')
    return time.perf_counter() - t


def drive(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    names = ("eternal", "selective", "selective_native", "ephemeral")
    for name in names:
        admin(f'DROP DATABASE IF EXISTS "{PREFIX}{name}"')
    load = [os.getloadavg()[0]]
    wait(
        spawn("append", "eternal", "eternal", args),
        spawn("append", "selective_native", "selective", args),
    )
    load.append(os.getloadavg()[0])
    copy_s = copy_database("eternal", "selective") + copy_database("eternal", "ephemeral")
    wait(
        spawn("compact", "selective", "selective", args),
        spawn("compact", "ephemeral", "ephemeral", args),
    )
    wait(spawn("compact", "selective_native", "selective", args))
    load.append(os.getloadavg()[0])
    for name in names:
        wait(spawn("size", name, "", args))
    for name, kind in (
        ("eternal", "eternal"),
        ("selective", "selective"),
        ("selective_native", "selective"),
    ):
        wait(spawn("read", name, kind, args))
    load.append(os.getloadavg()[0])
    if not args.keep:
        for name in names:
            admin(f'DROP DATABASE IF EXISTS "{PREFIX}{name}"')
    summary = summarise(args, names, time.perf_counter() - started, copy_s, load)
    write("summary", summary)
    text = markdown(summary)
    (OUT / "retention.md").write_text(text)
    (OUT / "last.json").write_text(json.dumps({"title": "Retention", "rows": summary["rows"]}))
    print(text)


def summarise(
    args: argparse.Namespace, names: tuple[str, ...], wall: float, copy_s: float, load: list[float]
) -> dict:
    result: dict = {
        "events": args.events,
        "every": args.every,
        "horizon": args.horizon,
        "wall_s": wall,
        "template_copy_s": copy_s,
        "load": load,
        "machine": machine(),
        "policies": {},
    }
    for name in names:
        entry: dict = {}
        for step in ("append", "compact", "size", "read"):
            path = OUT / f"retention-{name}-{step}.json"
            if path.exists():
                entry[step] = read(f"{name}-{step}")
        size = entry["size"]
        tables = sum(t["total"] for t in size["tables"].values())
        entry["bytes_per_event"] = tables / size["events"]
        entry["state_bytes_per_event"] = size["tables"]["continust_state"]["total"] / size["events"]
        entry["footprint_per_event"] = size["footprint"]["total"] / size["events"]
        result["policies"][name] = entry
    base = result["policies"]["eternal"]["bytes_per_event"]
    rows = []
    for name, entry in result["policies"].items():
        size = entry["size"]
        comp = entry.get("compact", {})
        rd = entry.get("read", {})
        rows.append(
            (
                name.replace("_", " "),
                f"{entry['bytes_per_event']:,.0f}",
                f"{base / entry['bytes_per_event']:.1f}x",
                f"{entry['state_bytes_per_event']:,.0f}",
                f"{entry['footprint_per_event']:,.0f}",
                f"{size['states_stored']:,}",
                f"{entry['append']['append_s']:,.0f}" if "append" in entry else "(copy)",
                f"{comp['compaction_s']:,.0f} (plan {comp['plan_s']:,.0f})" if comp else "—",
                (f"{rd['cold_p50_ms']:.1f} / {rd['cold_p95_ms']:.1f}" if rd else "—"),
                (f"{rd['warm_p50_ms']:.1f} / {rd['warm_p95_ms']:.1f}" if rd else "—"),
            )
        )
    result["rows"] = rows
    return result


HEADER = (
    "policy",
    "bytes/event on disk",
    "eternal ÷ this",
    "of which states",
    "footprint()/event",
    "states stored",
    "append (s)",
    "compaction (s)",
    "state_of cold p50 / p95 (ms)",
    "warm p50 / p95 (ms)",
)


def markdown(summary: dict) -> str:
    lines = [
        "### Retention",
        "",
        f"Measured {summary['machine']}; {summary['events']:,} events, ~2 KB states, "
        f"selective every {summary['every']}, ephemeral horizon {summary['horizon']:,} "
        f"versions; wall time {summary['wall_s'] / 60:.0f} min.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in summary["rows"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=100, help="selective snapshot interval")
    parser.add_argument("--horizon", type=int, default=10_000, help="ephemeral: versions kept")
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument(
        "--step", choices=("append", "compact", "size", "read"), help=argparse.SUPPRESS
    )
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        child(args)
    else:
        drive(args)


if __name__ == "__main__":
    main()
