"""How long appends take, measured where they are made (``continust.log.store.append``).

A histogram in the process that appends: the web server's appends (the API and the
explorer) are served by its ``GET /metrics``; under gunicorn's several workers,
``PROMETHEUS_MULTIPROC_DIR`` adds them up. Appends of other processes (the command
line, the workers) are counted there, and seen only if those processes share that
directory. The time runs from the call to its return: validation, sealing, the lock,
the fold and the write; the commit too, unless the caller's transaction encloses it.
"""

from __future__ import annotations

from prometheus_client import Histogram

__all__ = ["APPEND_SECONDS", "RECORDED", "REFUSED", "REPEATED"]

RECORDED = "recorded"  # the batch was written now
REPEATED = "repeated"  # a retry of a batch recorded earlier: nothing written
REFUSED = "refused"  # an error: nothing written

APPEND_SECONDS = Histogram(
    "continust_append_seconds",
    "Time to append a batch of events (continust.log.store.append), by outcome: "
    "recorded, repeated (a retry, nothing written) or refused.",
    ["outcome"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0),
)
