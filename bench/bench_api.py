"""Time appends over the HTTP API: gunicorn with two workers on PostgreSQL, on loopback.

    DATABASE_URL=postgres://... .venv/bin/python bench/bench_api.py [--seconds 10]

Creates a fresh user, project, stream and write token through Django, starts
``gunicorn continust.wsgi -w 2`` on a free port, and drives it from a second
process: client threads, each with its own HTTP/1.1 connection (reopened when
the server closes it, as gunicorn's sync workers do after every response).
Two runs, each for ``--seconds``:

- single: one event per request; requests/s and latency percentiles;
- batch: 1,000 events per request; events/s.

All clients append to one stream (``--streams`` spreads them over several):
appends to one stream queue on its row lock, by design, so one stream's rate
is bounded by how long an append holds that lock.

Every request must answer 201; any other answer is counted and reported.
For scale, the same appends are also timed without HTTP: ``continust.log.store.append``
called in this process, one thread (the "domain alone" rows), so the share of
the domain and of the API in each request shows. Prints a markdown table (and
JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGETS = {"single_rps": 1000, "single_p99_ms": 50, "batch_events_per_s": 30000}


def prepare_database(streams: int) -> tuple[list[str], str]:
    """Migrate, then create a user, project, streams and a write token; return (paths, token)."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "continust.settings")
    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from api.models import ApiToken, Scope
    from continust.log.projects import create_project, create_stream

    call_command("migrate", verbosity=0)
    tag = secrets.token_hex(4)
    user = User.objects.create_user(f"bench-{tag}")
    project = create_project(f"bench-{tag}", owner=user)
    names = [f"load-{n}" for n in range(streams)]
    for name in names:
        create_stream(project, name)
    token = ApiToken.issue(user, "bench", [project], Scope.WRITE)[1]
    return [f"/api/projects/{project.slug}/streams/{name}/events" for name in names], token


def time_domain(seconds: float, batch: int) -> dict[str, float]:
    """Append to a fresh stream in this process for a while; the cost without HTTP."""
    from continust.log.projects import create_stream
    from continust.log.store import NewEvent, append
    from continust.models import Project

    project = Project.objects.order_by("-id").first()
    assert project is not None
    stream = create_stream(project, f"domain-{batch}")
    latencies: list[float] = []
    stop = time.monotonic() + seconds
    began = time.monotonic()
    while time.monotonic() < stop:
        events = [NewEvent(type="tick", payload={"n": k}) for k in range(batch)]
        started = time.perf_counter()
        append(stream, events)
        latencies.append(time.perf_counter() - started)
    elapsed = time.monotonic() - began
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "requests_per_s": len(latencies) / elapsed,
        "events_per_s": len(latencies) * batch / elapsed,
        "p50_ms": quantiles[49] * 1000,
        "p99_ms": quantiles[98] * 1000,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gunicorn(port: int, workers: int, threads: int) -> subprocess.Popen[bytes]:
    command = [
        str(ROOT / ".venv/bin/gunicorn"),
        "continust.wsgi",
        "-w",
        str(workers),
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
    ]
    if threads > 1:
        command += ["-k", "gthread", "--threads", str(threads)]
    server = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "DJANGO_DEBUG": "0"})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/api/openapi.json")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("gunicorn did not answer within 30 s")


class Client:
    """One keep-alive connection that reconnects when the server closed it."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.connection: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes) -> int:
        for attempt in range(2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.connection.request("POST", path, body, self.headers)
                response = self.connection.getresponse()
                response.read()
                if response.will_close:
                    self.connection.close()
                    self.connection = None
                return response.status
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.connection.close()
                self.connection = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def drive(
    port: int,
    token: str,
    paths: list[str],
    batch: int,
    seconds: float,
    threads: int,
    results: multiprocessing.Queue,
) -> None:  # type: ignore[type-arg]
    """Post batches from client threads for a while; put (latencies, statuses) on the queue."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(index: int) -> None:
        client = Client(port, token)
        path = paths[index % len(paths)]
        mine: list[float] = []
        counts: dict[int, int] = {}
        sequence = 0
        while time.monotonic() < stop:
            events = [
                {"type": "tick", "payload": {"worker": index, "n": sequence + k}}
                for k in range(batch)
            ]
            sequence += batch
            body = json.dumps({"events": events}).encode()
            started = time.perf_counter()
            status = client.post(path, body)
            mine.append(time.perf_counter() - started)
            counts[status] = counts.get(status, 0) + 1
        with lock:
            latencies.extend(mine)
            for status, count in counts.items():
                statuses[status] = statuses.get(status, 0) + count

    began = time.monotonic()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results.put((latencies, statuses, time.monotonic() - began))


def run(
    port: int, token: str, paths: list[str], *, batch: int, seconds: float, threads: int
) -> dict[str, float]:
    """Drive the server from a second process and summarise what it measured."""
    results: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    process = multiprocessing.Process(
        target=drive, args=(port, token, paths, batch, seconds, threads, results)
    )
    process.start()
    latencies, statuses, elapsed = results.get()
    process.join()
    ok = statuses.get(201, 0)
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0] * 99
    return {
        "requests": len(latencies),
        "ok": ok,
        "failed": len(latencies) - ok,
        "statuses": statuses,
        "seconds": elapsed,
        "requests_per_s": ok / elapsed,
        "events_per_s": ok * batch / elapsed,
        "p50_ms": quantiles[49] * 1000,
        "p99_ms": quantiles[98] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="gunicorn threads per worker (gthread); 1 = sync workers",
    )
    parser.add_argument("--clients", type=int, default=4, help="client threads, single run")
    parser.add_argument("--batch-clients", type=int, default=2)
    parser.add_argument("--streams", type=int, default=1, help="streams the clients share")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("set DATABASE_URL=postgres://... : the bench runs on PostgreSQL")
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(32))
    paths, token = prepare_database(options.streams)
    from django.db import connections

    connections.close_all()
    port = free_port()
    server = start_gunicorn(port, options.workers, options.threads)
    try:
        run(port, token, paths, batch=1, seconds=1, threads=options.clients)  # warm up
        single = run(port, token, paths, batch=1, seconds=options.seconds, threads=options.clients)
        batch = run(
            port, token, paths, batch=1000, seconds=options.seconds, threads=options.batch_clients
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    domain = {
        "single": time_domain(min(options.seconds, 5), 1),
        "batch": time_domain(min(options.seconds, 5), 1000),
    }
    report(options, single, batch, domain)


def report(
    options: argparse.Namespace,
    single: dict[str, float],
    batch: dict[str, float],
    domain: dict[str, dict[str, float]],
) -> None:
    if options.json:
        print(
            json.dumps(
                {"single": single, "batch": batch, "domain_alone": domain, "targets": TARGETS},
                indent=2,
            )
        )
        return
    kind = f"gthread x{options.threads}" if options.threads > 1 else "sync"
    print(
        f"gunicorn -w {options.workers} ({kind}), PostgreSQL, {os.cpu_count()} CPUs, "
        f"{options.streams} stream(s), {options.seconds:g} s per run\n"
    )
    print("| run | clients | requests | failed | req/s | events/s | p50 ms | p99 ms | target |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| single event | {options.clients} | {single['requests']} | {single['failed']} "
        f"| {single['requests_per_s']:,.0f} | {single['events_per_s']:,.0f} "
        f"| {single['p50_ms']:.1f} | {single['p99_ms']:.1f} "
        f"| ≥ {TARGETS['single_rps']:,} req/s, p99 ≤ {TARGETS['single_p99_ms']} ms |"
    )
    print(
        f"| batch of 1,000 | {options.batch_clients} | {batch['requests']} "
        f"| {batch['failed']} | {batch['requests_per_s']:,.1f} "
        f"| {batch['events_per_s']:,.0f} | {batch['p50_ms']:.1f} | {batch['p99_ms']:.1f} "
        f"| ≥ {TARGETS['batch_events_per_s']:,} events/s |"
    )
    for name, size in (("single", 1), ("batch", 1000)):
        alone = domain[name]
        print(
            f"| domain alone, {size:,} event(s) per append | 1 | {alone['requests']} | 0 "
            f"| {alone['requests_per_s']:,.1f} | {alone['events_per_s']:,.0f} "
            f"| {alone['p50_ms']:.1f} | {alone['p99_ms']:.1f} | (no HTTP, for scale) |"
        )
    load = os.getloadavg()
    print(f"\nload average before the runs ended: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for name, result in (("single", single), ("batch", batch)):
        if result["failed"]:
            print(f"\n{name}: answers other than 201: {result['statuses']}")


if __name__ == "__main__":
    main()
