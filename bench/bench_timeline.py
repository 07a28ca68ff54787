"""The stream page (the timeline) at 1,000, 10,000 and 100,000 versions, on PostgreSQL.

Server time through Django's test client (no network), after ANALYZE. First the
first open: the stream page opened once right after the versions arrived, before
anything placed them, with its query count; then the time to place them all (what
the background task does). For each size then: the stream page
(newest page), the page opened at a version (``?v=``, which also renders the version
panel), an older page deep in the history (``fragment=page``), and the live tail's
look when nothing is new; the median, the 95th percentile and the number of SQL
queries of each, with the load average. Run:
`.venv/bin/python bench/bench_timeline.py [--sizes 1000,10000,100000] [--samples 30]`;
``--streams ID,ID`` measures streams a previous run built instead (their layout is
dropped first, so the first open finds every version unplaced again).
"""

from __future__ import annotations

import argparse
import os
import random
import time

from common import median, percentile, report, setup_django


def measure(client, url, samples: int, **headers) -> tuple[float, float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, queries = [], set()
    for _ in range(samples):
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            response = client.get(url, **headers)
            times.append((time.perf_counter() - start) * 1000)
        assert response.status_code in (200, 204), (url, response.status_code)
        queries.add(len(captured.captured_queries))
    return median(times), percentile(times, 95), max(queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--streams", default="", help="reuse these streams, by id")
    parser.add_argument("--first-samples", type=int, default=5)
    args = parser.parse_args()
    setup_django()
    from bench_explorer import build
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse

    from continust.models import Membership, OutboxMessage, Stream, Version
    from explorer.models import EdgePlace, StreamLayout, VersionPlace
    from explorer.placement import place_new_versions

    setup_test_environment()
    rows = []
    if args.streams:
        targets = [int(s) for s in args.streams.split(",")]
    else:
        targets = [-int(s) for s in args.sizes.split(",")]
    for target in targets:
        start = time.perf_counter()
        if target < 0:
            user, project, stream, _, _ = build(-target)
        else:
            stream = Stream.objects.get(pk=target)
            project = stream.project
            user = Membership.objects.filter(project=project).first().user
        built = time.perf_counter() - start
        client = Client()
        client.force_login(user)
        url = reverse("stream", args=[project.slug, stream.pk])
        client.get(url)  # warms the process (templates, URLs), then is forgotten
        firsts, first_queries = [], 0
        for _ in range(args.first_samples):
            StreamLayout.objects.filter(stream=stream).delete()
            EdgePlace.objects.filter(stream=stream).delete()
            VersionPlace.objects.filter(stream=stream).delete()
            OutboxMessage.objects.filter(key=f"place:{stream.pk}").delete()
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            load = os.getloadavg()[0]
            ms, _, first_queries = measure(client, url, 1)
            firsts.append(ms)
        start = time.perf_counter()
        place_new_versions(stream)
        placed = time.perf_counter() - start
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        total = Version.objects.filter(stream=stream).count()
        ids = list(Version.objects.filter(stream=stream).values_list("id", flat=True))
        rows.append(
            (
                f"{total:,}",
                f"first open, nothing placed yet ({len(firsts)} samples; p95 = max)",
                f"{median(firsts):.0f}",
                f"{max(firsts):.0f}",
                str(first_queries),
                f"{load:.1f}",
            )
        )
        client.get(url)  # warm
        load = os.getloadavg()[0]
        htmx = {"HTTP_HX_REQUEST": "true"}
        deep = ids[len(ids) // 10]
        picked = random.choice(ids[: len(ids) // 2])
        newest = ids[-1]
        cases = [
            ("stream page", url, {}),
            ("stream page at a version (?v=)", f"{url}?v={picked}", {}),
            ("older page, 90% down", f"{url}?before={deep}&fragment=page", htmx),
            ("live tail, nothing new", f"{url}?fragment=tail&after={newest}", htmx),
        ]
        for name, case_url, headers in cases:
            p50, p95, queries = measure(client, case_url, args.samples, **headers)
            rows.append(
                (f"{total:,}", name, f"{p50:.0f}", f"{p95:.0f}", str(queries), f"{load:.1f}")
            )
        rows.append(
            (
                f"{total:,}",
                f"building / placing what the first open left, of {total:,}",
                f"{built:.0f} s" if target < 0 else "(reused)",
                f"{placed:.1f} s",
                "",
                f"{load:.1f}",
            )
        )
        print(rows[-6:], flush=True)
    report(
        "The explorer",
        rows,
        ("versions", "request", "p50 (ms)", "p95 (ms)", "queries", "load average (1 min)"),
    )


if __name__ == "__main__":
    main()
