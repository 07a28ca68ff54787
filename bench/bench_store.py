"""The log on PostgreSQL: continust beside the eventsourcing library and raw psycopg.

Batched appends (1,000 events a transaction), one event a transaction, and folding a
stream back from the database. Run: `.venv/bin/python bench/bench_store.py`
(BENCH_DATABASE_URL overrides the database; it is created if missing).
"""

from __future__ import annotations

import argparse
import time
import uuid

from common import median, report, setup_django


def payload(n: int) -> dict:
    return {"n": n, "account": f"acct-{n % 97}", "amount": n % 1000, "memo": "coffee"}


def bench_continust(batches: int, singles: int) -> tuple[float, float, float]:
    from folding import fold_branch

    from continust.log.projects import create_project, create_stream
    from continust.log.store import NewEvent, append

    project = create_project(f"bench-{uuid.uuid4().hex[:8]}")
    stream = create_stream(project, "batched")
    start = time.perf_counter()
    for b in range(batches):
        append(
            stream, [NewEvent(type="deposited", payload=payload(b * 1000 + i)) for i in range(1000)]
        )
    batched = batches * 1000 / (time.perf_counter() - start)
    single = create_stream(project, "single")
    start = time.perf_counter()
    for n in range(singles):
        append(single, [NewEvent(type="deposited", payload=payload(n))])
    one = singles / (time.perf_counter() - start)
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        state, count = fold_branch(stream)
        runs.append(count / (time.perf_counter() - start))
    return batched, one, median(runs)


def bench_eventsourcing(url: str, batches: int, singles: int) -> tuple[float, float, float]:
    import os

    from eventsourcing.persistence import InfrastructureFactory, StoredEvent

    user, rest = url.split("://", 1)[1].split("@", 1)
    host, dbname = rest.split("/", 1)
    host, port = host.split(":")
    os.environ.update(
        PERSISTENCE_MODULE="eventsourcing.postgres",
        POSTGRES_DBNAME=dbname,
        POSTGRES_HOST=host,
        POSTGRES_PORT=port,
        POSTGRES_USER=user,
        POSTGRES_PASSWORD="",
        CREATE_TABLE="y",
    )
    factory = InfrastructureFactory.construct(env=dict(os.environ))
    assert "Postgres" in type(factory).__name__, type(factory)
    recorder = factory.aggregate_recorder()
    import json

    def stored(originator: uuid.UUID, version: int) -> StoredEvent:
        return StoredEvent(
            originator_id=originator,
            originator_version=version,
            topic="bench:Deposited",
            state=json.dumps(payload(version)).encode(),
        )

    originator = uuid.uuid4()
    start = time.perf_counter()
    for b in range(batches):
        recorder.insert_events([stored(originator, b * 1000 + i) for i in range(1000)])
    batched = batches * 1000 / (time.perf_counter() - start)
    other = uuid.uuid4()
    start = time.perf_counter()
    for n in range(singles):
        recorder.insert_events([stored(other, n)])
    one = singles / (time.perf_counter() - start)
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        state: dict = {}
        events = recorder.select_events(originator)
        for event in events:
            state.update(json.loads(event.state))
        runs.append(len(events) / (time.perf_counter() - start))
    return batched, one, median(runs)


def bench_psycopg(url: str, batches: int, singles: int) -> tuple[float, float, float]:
    import json

    import psycopg
    from psycopg.types.json import Jsonb

    with psycopg.connect(url.replace("postgres://", "postgresql://")) as conn:
        conn.execute("DROP TABLE IF EXISTS raw_events")
        conn.execute(
            "CREATE TABLE raw_events (position bigserial PRIMARY KEY, stream text, "
            "seq bigint, payload jsonb, UNIQUE (stream, seq))"
        )
        conn.commit()
        start = time.perf_counter()
        for b in range(batches):
            with conn.cursor().copy("COPY raw_events (stream, seq, payload) FROM STDIN") as copy:
                for i in range(1000):
                    copy.write_row(("batched", b * 1000 + i, Jsonb(payload(b * 1000 + i))))
            conn.commit()
        batched = batches * 1000 / (time.perf_counter() - start)
        start = time.perf_counter()
        for n in range(singles):
            conn.execute(
                "INSERT INTO raw_events (stream, seq, payload) VALUES (%s, %s, %s)",
                ["single", n, Jsonb(payload(n))],
            )
            conn.commit()
        one = singles / (time.perf_counter() - start)
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            state: dict = {}
            count = 0
            for (data,) in conn.execute(
                "SELECT payload FROM raw_events WHERE stream = 'batched' ORDER BY seq"
            ):
                state.update(data)
                count += 1
            runs.append(count / (time.perf_counter() - start))
        conn.execute("DROP TABLE raw_events")
        conn.commit()
    del json
    return batched, one, median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=100, help="batches of 1,000 events")
    parser.add_argument("--singles", type=int, default=3000, help="one-event transactions")
    args = parser.parse_args()
    url = setup_django()
    rows = []
    for name, run in [
        ("continust", lambda: bench_continust(args.batches, args.singles)),
        ("eventsourcing", lambda: bench_eventsourcing(url, args.batches, args.singles)),
        ("raw psycopg (COPY / INSERT)", lambda: bench_psycopg(url, args.batches, args.singles)),
    ]:
        batched, one, fold = run()
        rows.append((name, f"{batched:,.0f}", f"{one:,.0f}", f"{fold:,.0f}"))
    report(
        "Appending and folding on PostgreSQL",
        rows,
        (
            "",
            "batched append (events/s)",
            "one event per transaction (events/s)",
            "fold from the database (events/s)",
        ),
    )


if __name__ == "__main__":
    main()
