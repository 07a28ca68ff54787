"""Time VersionGraph queries on a 100,000-version history against git's own.

Builds a random history with long-lived branches, ~10% merges (a few
octopus) and three roots, loads it into a VersionGraph and, with
``git fast-import``, into a git repository with a commit-graph (so git has
generation numbers too), then times ``merge_bases`` against
``git merge-base --all`` on the same pairs and checks that they agree.

    .venv/bin/python bench/bench_lineage.py [--versions N] [--pairs N] [--no-git]

Pairs are "nearby" (two versions added at most 500 apart, in the newer half
of the history: branch heads of about the same time) or "scattered" (any two
versions). git is timed per command, process start included; ``git_startup``
is the time of a command that does no work (``git rev-parse HEAD``), and
``git_over_ours`` the ratio of the p50 times of ``git merge-base --all`` and
``merge_bases`` on the same pairs.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from continust.graph.lineage import VersionGraph

History = list[tuple[int, ...]]  # parents of each version, by index


def random_history(size: int, seed: int = 1) -> History:
    """Return the parents of each version of a random branching history."""
    rng = random.Random(seed)
    history: History = [()]
    tips = [0]
    new_roots = {size // 3, 2 * size // 3}
    for version in range(1, size):
        branch = rng.randrange(len(tips))
        roll = rng.random()
        if version in new_roots:
            history.append(())
            tips.append(version)
        elif roll < 0.10 and len(tips) > 1:
            others = [tip for i, tip in enumerate(tips) if i != branch]
            merged = rng.sample(others, 2 if roll < 0.003 and len(others) > 1 else 1)
            history.append((tips[branch], *merged))
            tips[branch] = version
            if len(tips) > 8 and rng.random() < 0.3:
                tips.remove(merged[0])  # the merged branch is done
        elif roll < 0.13 and len(tips) < 40:
            history.append((tips[branch],))
            tips.append(version)
        else:
            history.append((tips[branch],))
            tips[branch] = version
    return history


def load_graph(history: History) -> VersionGraph[int]:
    graph: VersionGraph[int] = VersionGraph()
    for version, parents in enumerate(history):
        graph.add(version, parents)
    return graph


def percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100)
    return {"p50_ms": round(cuts[49], 3), "p95_ms": round(cuts[94], 3)}


def timed(call: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = call()
    return (time.perf_counter() - start) * 1000, result


def git_repository(history: History, directory: Path) -> list[str]:
    """Write the history into a git repository; return the commit id of each version."""
    git = ["git", "-C", str(directory)]
    subprocess.run([*git, "init", "-q"], check=True)
    marks = directory / "marks"
    lines: list[str] = []
    for version, parents in enumerate(history):
        if not parents:
            lines.append("reset refs/heads/import")
        lines += [
            "commit refs/heads/import",
            f"mark :{version + 1}",
            f"committer Bench <bench@example.com> {1_600_000_000 + version} +0000",
            "data 0",
        ]
        if parents:
            lines.append(f"from :{parents[0] + 1}")
            lines += [f"merge :{parent + 1}" for parent in parents[1:]]
    has_child = {parent for parents in history for parent in parents}
    heads = [version for version in range(len(history)) if version not in has_child]
    for number, head in enumerate(heads):
        lines += [f"reset refs/heads/head{number}", f"from :{head + 1}"]
    lines.append(f"reset refs/heads/import\nfrom :{heads[-1] + 1}")
    stream = ("\n".join(lines) + "\n").encode()
    subprocess.run(
        [*git, "fast-import", "--quiet", f"--export-marks={marks}"], input=stream, check=True
    )
    subprocess.run([*git, "commit-graph", "write", "--reachable"], check=True, capture_output=True)
    ids = [""] * len(history)
    for line in marks.read_text().splitlines():
        mark, commit = line.split()
        ids[int(mark[1:]) - 1] = commit
    return ids


def git_merge_bases(directory: Path, a: str, b: str) -> set[str]:
    done = subprocess.run(
        ["git", "-C", str(directory), "merge-base", "--all", a, b], capture_output=True, text=True
    )
    return set(done.stdout.split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=1_000)
    parser.add_argument("--no-git", action="store_true", help="time VersionGraph only")
    options = parser.parse_args()

    history = random_history(options.versions)
    load_ms, graph = timed(lambda: load_graph(history))
    assert isinstance(graph, VersionGraph)
    rng = random.Random(2)
    size = len(history)
    nearby = []
    for _ in range(options.pairs):
        b = rng.randrange(size // 2, size)
        nearby.append((b - rng.randrange(1, 500), b))
    scattered = [(rng.randrange(size), rng.randrange(size)) for _ in range(options.pairs)]
    for a, b in nearby[:50]:  # warm up
        graph.merge_bases(a, b)

    result: dict[str, object] = {
        "versions": size,
        "merges": sum(len(parents) > 1 for parents in history),
        "roots": len(graph.roots()),
        "heads": len(graph.heads()),
        "max_generation": max(graph.generation(v) for v in graph.heads()),
        "load_ms": round(load_ms, 1),
    }
    timings: dict[str, dict[str, float]] = {}
    answers: dict[str, list[object]] = {}
    for name, pairs in (("nearby", nearby), ("scattered", scattered)):
        samples = [timed(lambda a=a, b=b: graph.merge_bases(a, b)) for a, b in pairs]
        timings[f"merge_bases {name}"] = percentiles([ms for ms, _ in samples])
        answers[name] = [bases for _, bases in samples]
        timings[f"between_count {name}"] = percentiles(
            [timed(lambda a=a, b=b: graph.between_count(a, b))[0] for a, b in pairs[:200]]
        )
    timings["ancestor_count"] = percentiles(
        [timed(lambda b=b: graph.ancestor_count(b))[0] for _, b in scattered[:100]]
    )

    if not options.no_git:
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            ids = git_repository(history, directory)
            startup = [
                timed(
                    lambda: subprocess.run(
                        ["git", "-C", tmp, "rev-parse", "HEAD"], capture_output=True
                    )
                )[0]
                for _ in range(50)
            ]
            timings["git_startup"] = percentiles(startup)
            disagreements = 0
            for name, pairs in (("nearby", nearby), ("scattered", scattered)):
                samples = []
                for (a, b), ours in zip(pairs, answers[name], strict=True):
                    ms, theirs = timed(lambda a=a, b=b: git_merge_bases(directory, ids[a], ids[b]))
                    samples.append(ms)
                    assert isinstance(ours, list)
                    disagreements += theirs != {ids[v] for v in ours}
                timings[f"git merge-base --all {name}"] = percentiles(samples)
                result[f"git_over_ours {name}"] = round(
                    timings[f"git merge-base --all {name}"]["p50_ms"]
                    / timings[f"merge_bases {name}"]["p50_ms"],
                    2,
                )
            result["disagreements_with_git"] = disagreements

    result["timings"] = timings
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
