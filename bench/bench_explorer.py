"""Explorer server time on a 100,000-version stream with branches and merges, on PostgreSQL.

Measures, through Django's test client (server time, no network): the stream page,
further timeline pages, the version panel, and the diff page of two 5,000-key
states; and how many SVG elements a page holds. Run:
`.venv/bin/python bench/bench_explorer.py [--versions N]`.
"""

from __future__ import annotations

import argparse
import random
import re
import time

from common import median, percentile, report, setup_django


def build(versions: int):
    from django.contrib.auth.models import User

    from continust.log.projects import add_member, create_project, create_stream
    from continust.log.store import NewEvent, append, fork, merge

    user = User.objects.create_user(f"bench{random.randrange(10**9)}", password="x")
    project = create_project(f"explorer-{random.randrange(10**9)}", owner=user)
    stream = create_stream(project, "big")
    made = 0
    round_ = 0
    while made < versions:
        append(
            stream,
            [
                NewEvent(type=f"t{n % 5}", payload={f"k{n % 50}": n}, actor="bench")
                for n in range(made, made + 450)
            ],
        )
        made += 450
        head = stream.branches.get(name="main").head
        name = f"feature-{round_}"
        fork(stream, name, head)
        append(
            stream,
            [
                NewEvent(type="feature", payload={f"f{round_ % 7}": n}, actor="dev")
                for n in range(40)
            ],
            branch=name,
        )
        append(stream, [NewEvent(type="t0", payload={"main": round_})])
        merge(stream, name, "main")
        made += 42
        round_ += 1
    wide = create_stream(project, "wide", reducer="replace")
    base = {f"key{i:04d}": {"value": i, "tags": ["a", "b"]} for i in range(5000)}
    changed = {
        k: ({"value": v["value"] + 1, "tags": v["tags"]} if i % 100 == 0 else v)
        for i, (k, v) in enumerate(base.items())
    }
    a, b = append(
        wide, [NewEvent(type="set", payload=base), NewEvent(type="set", payload=changed)]
    ).versions
    add_member(project, user, "admin")
    return user, project, stream, wide, (a, b)


def timed(client, url, **headers) -> tuple[float, str]:
    start = time.perf_counter()
    response = client.get(url, **headers)
    elapsed = (time.perf_counter() - start) * 1000
    assert response.status_code == 200, (url, response.status_code)
    return elapsed, response.content.decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    setup_django()
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse

    from continust.models import Version
    from explorer.placement import place_new_versions

    setup_test_environment()
    start = time.perf_counter()
    user, project, stream, wide, (a, b) = build(args.versions)
    built = time.perf_counter() - start
    total = Version.objects.filter(stream=stream).count()
    start = time.perf_counter()
    place_new_versions(stream)
    placed = time.perf_counter() - start
    client = Client()
    client.force_login(user)
    url = reverse("stream", args=[project.slug, stream.pk])
    samples, pages, panels, svg = [], [], [], []
    for _ in range(args.samples):
        ms, body = timed(client, url)
        samples.append(ms)
        svg.append(len(re.findall(r"<(path|circle) ", body)))
        top = random.randrange(100, total)
        ms, body = timed(client, url + f"?top={top}&fragment=page", HTTP_HX_REQUEST="true")
        pages.append(ms)
        svg.append(len(re.findall(r"<(path|circle) ", body)))
        vid = Version.objects.filter(stream=stream).order_by("?").values_list("id", flat=True)[0]
        ms, _ = timed(
            client, reverse("version", args=[project.slug, stream.pk, vid]), HTTP_HX_REQUEST="true"
        )
        panels.append(ms)
    diff_url = reverse("compare", args=[project.slug, wide.pk]) + f"?a={a.pk}&b={b.pk}"
    diffs = [timed(client, diff_url)[0] for _ in range(10)]
    small = build_small(client)
    rows = [
        (
            "stream page (100 rows)",
            f"{median(samples):.0f}",
            f"{percentile(samples, 95):.0f}",
            "≤ 300",
        ),
        (
            "stream page, 100-version stream",
            f"{median(small):.0f}",
            f"{percentile(small, 95):.0f}",
            "same as above",
        ),
        ("further timeline page", f"{median(pages):.0f}", f"{percentile(pages, 95):.0f}", "≤ 100"),
        ("version panel", f"{median(panels):.0f}", f"{percentile(panels, 95):.0f}", "≤ 100"),
        (
            "diff page, two 5,000-key states",
            f"{median(diffs):.0f}",
            f"{percentile(diffs, 95):.0f}",
            "≤ 200",
        ),
    ]
    rows.append(("SVG elements per page (max seen)", str(max(svg)), "", "bounded"))
    rows.append(
        (f"building {total:,} versions / first placement", f"{built:.0f} s", f"{placed:.1f} s", "")
    )
    report("Explorer server time", rows, ("", "p50 (ms)", "p95 (ms)", "target"))


def build_small(client) -> list[float]:
    from django.contrib.auth import get_user
    from django.urls import reverse

    from continust.log.projects import add_member, create_stream
    from continust.log.store import NewEvent, append
    from continust.models import Project

    user = get_user(client)
    project = Project.objects.filter(memberships__user=user).first()
    small = create_stream(project, "small")
    append(small, [NewEvent(type="t", payload={"n": n}) for n in range(100)])
    add_member(project, user, "admin")
    url = reverse("stream", args=[project.slug, small.pk])
    return [timed(client, url)[0] for _ in range(30)]


if __name__ == "__main__":
    main()
