"""Diff of two 5,000-key documents: continust.documents.diff beside jsonpatch.make_patch and
deepdiff.

Run: `.venv/bin/python bench/bench_diff.py`.
"""

from __future__ import annotations

import copy
import random
import sys
import time
from pathlib import Path

from common import median, percentile, report

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def documents(keys: int = 5000, changed: float = 0.01) -> tuple[dict, dict]:
    rng = random.Random(7)
    a = {
        f"key{i:05d}": {
            "price": i,
            "tiers": [{"name": f"t{j}", "limit": j * i} for j in range(3)],
            "label": f"item {i}",
        }
        for i in range(keys)
    }
    b = copy.deepcopy(a)
    for name in rng.sample(sorted(b), int(keys * changed)):
        b[name]["price"] += 1
        b[name]["tiers"].insert(1, {"name": "new", "limit": 0})
    return a, b


def timed(fn, runs: int = 30) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> None:
    import jsonpatch
    from deepdiff import DeepDiff

    from continust.documents.diff import diff, to_json_patch

    rows = []
    flat_a = {f"key{i:05d}": i for i in range(5000)}
    flat_b = {k: (v + 1 if v % 100 == 0 else v) for k, v in flat_a.items()}
    for name, fn, runs in [
        ("flat: continust.documents.diff.diff", lambda: diff(flat_a, flat_b), 30),
        ("flat: jsonpatch.make_patch", lambda: jsonpatch.make_patch(flat_a, flat_b), 30),
        ("flat: deepdiff.DeepDiff", lambda: DeepDiff(flat_a, flat_b), 5),
    ]:
        samples = timed(fn, runs)
        rows.append((name, f"{median(samples):.1f}", f"{percentile(samples, 95):.1f}"))
    a, b = documents()
    assert jsonpatch.apply_patch(a, to_json_patch(a, b)) == b
    for name, fn, runs in [
        ("nested: continust.documents.diff.diff", lambda: diff(a, b), 30),
        ("nested: continust.documents.diff.to_json_patch", lambda: to_json_patch(a, b), 30),
        ("nested: jsonpatch.make_patch", lambda: jsonpatch.make_patch(a, b), 10),
        ("nested: deepdiff.DeepDiff", lambda: DeepDiff(a, b), 3),
    ]:
        samples = timed(fn, runs)
        rows.append((name, f"{median(samples):.1f}", f"{percentile(samples, 95):.1f}"))
    report("Diff of two 5,000-key documents (1% changed)", rows, ("", "p50 (ms)", "p95 (ms)"))
    print(
        "flat: 5,000 scalar keys; nested: 5,000 keys each holding an object with a list of "
        "three identity-keyed objects (30,000 leaves), 50 of them changed with a list insert"
    )


if __name__ == "__main__":
    main()
