"""gunicorn settings for ``bench/bench_log.py --profile``: cProfile around each POST request
of a worker, timed in the worker's CPU time (a loaded machine's waits for a core and for the
database are left out), written to $BENCH_PROFILE_DIR/worker-<pid>.prof when the worker
exits."""

from __future__ import annotations

import cProfile
import os
import time
from typing import Any

_profiles: dict[int, cProfile.Profile] = {}


def _profile() -> cProfile.Profile:
    return _profiles.setdefault(os.getpid(), cProfile.Profile(time.process_time))


def pre_request(worker: Any, req: Any) -> None:
    if req.method == "POST":
        _profile().enable()


def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> None:
    if req.method == "POST":
        _profile().disable()


def worker_exit(server: Any, worker: Any) -> None:
    profile = _profiles.get(os.getpid())
    if profile is not None:
        profile.dump_stats(
            os.path.join(os.environ["BENCH_PROFILE_DIR"], f"worker-{os.getpid()}.prof")
        )
