"""Disk per event under the selective retention policy, as bench_log.py's part e measures it
under the eternal one (the default).

    .venv/bin/python bench/disk_selective.py [--events 20000] [--snapshot-every 100]

On the benchmark database (``BENCH_DATABASE_URL``, as bench_log.py): ``VACUUM ANALYZE``,
a stream with the selective policy (a state stored every ``--snapshot-every`` versions
and at each batch's last), ``--events`` events in batches of 1,000 with bench_log.py's
payloads, ``VACUUM ANALYZE``, and the growth of ``pg_total_relation_size`` summed over
every table, divided by the events; per table too. Only this script should write there
meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_log  # noqa: E402
import peers  # noqa: E402


def sizes(conn) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return dict(
        conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r'"
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--snapshot-every", type=int, default=100)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", bench_log.DEFAULT_URL)
    bench_log.create_database(url)
    bench_log.setup_django(url, migrate=True)
    from continust.log.policy import Policy
    from continust.log.projects import create_project, create_stream
    from continust.log.store import NewEvent, append
    from continust.models import Retention
    from continust.retention.policies import set_policy

    project = create_project(f"bench-selective-{uuid.uuid4().hex[:8]}")
    stream = set_policy(
        create_stream(project, "disk"),
        Policy(Retention.SELECTIVE, snapshot_every=args.snapshot_every),
        actor="bench",
    )
    conn = peers.raw_connect(url, autocommit=True)
    conn.execute("VACUUM ANALYZE")
    before = sizes(conn)
    for first in range(0, args.events, 1000):
        count = min(1000, args.events - first)
        append(
            stream, [NewEvent("deposited", peers.payload(n)) for n in range(first, first + count)]
        )
    conn.execute("VACUUM ANALYZE")
    after = sizes(conn)
    grown = {t: after[t] - before.get(t, 0) for t in after if after[t] != before.get(t, 0)}
    print(
        json.dumps(
            {
                "policy": f"selective, a snapshot every {args.snapshot_every}",
                "events": args.events,
                "bytes_per_event": round(sum(grown.values()) / args.events, 1),
                "load": round(bench_log.load(), 2),
                "tables": {
                    t: round(b / args.events, 1)
                    for t, b in sorted(grown.items(), key=lambda kv: -kv[1])
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
