"""Hold 200 live change feeds (server-sent events) open for a minute while events arrive.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/continust_bench_sse \\
        .venv/bin/python bench/bench_feed.py [--clients 200] [--seconds 60] [--rate 50]
    .venv/bin/python bench/bench_feed.py --private-cluster      # PostgreSQL of its own

Serves the app as docs/views.md says a feed should be served: ``gunicorn continust.wsgi
--worker-class gthread`` with threads enough for every client (``--workers`` x
``--threads``, each worker accepting no more connections than it has threads) and a
``--timeout`` above ``CONTINUST_FEED_SECONDS``; ``DJANGO_DEBUG=0``,
``CONTINUST_API_RATE=off`` and ``CONTINUST_FEED_MAX_OPEN`` above the client count (all
clients share one read token).

Then, from this process, opens ``--clients`` concurrent feeds of one project (asyncio,
one HTTP/1.1 connection each, chunked bodies decoded by hand), waits until every one
has its first frame, and starts a writer process that appends one event at a time at
``--rate`` a second for ``--seconds``. A response ends after ``--feed-seconds``; the
client reconnects at once with ``Last-Event-ID`` as ``EventSource`` does, and that is
counted as a reconnect. After the writer stops, clients get up to ``--drain`` seconds
to take the last events, then close.

Every second it samples the resident memory (``VmRSS`` from ``/proc``) of the gunicorn
master and each of its workers. It reports start, peak and end RSS; events appended
and delivered (every client must get every event once: missing and duplicate counts);
the delay from append to receipt; errors (a status other than 200, a broken
connection); reconnects; and the load average. Prints a markdown summary (and JSON
with ``--json``).

PostgreSQL: every open feed holds a ``LISTEN`` connection of its own, so the server
needs ``max_connections`` above the client count plus the workers' reading connections;
``--private-cluster`` starts a throwaway cluster (``initdb`` as the ``postgres`` user)
with ``max_connections=400`` for that.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import pwd
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/continust_bench_sse"
TICK = "bench.tick"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateCluster:
    """A throwaway PostgreSQL cluster on a free port, with room for many connections."""

    def __init__(self, max_connections: int) -> None:
        self.port = free_port()
        self.data = tempfile.mkdtemp(prefix="continust-sse-pg-")
        owner = pwd.getpwnam("postgres")
        os.chown(self.data, owner.pw_uid, owner.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.run_as = run_as
        subprocess.run(
            [*run_as, "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync"],
            check=True,
            capture_output=True,
        )
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} "
            f"-c max_connections={max_connections}"
        )
        subprocess.run(
            [*run_as, "pg_ctl", "-D", self.data, "-o", options, "-w", "-l",
             f"{self.data}/log", "start"],
            check=True,
            capture_output=True,
        )  # fmt: skip
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/continust_bench_sse"

    def stop(self) -> None:
        subprocess.run(
            [*self.run_as, "pg_ctl", "-D", self.data, "-m", "fast", "stop"], capture_output=True
        )
        shutil.rmtree(self.data, ignore_errors=True)


def ensure_database(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if found is None:
            admin.execute(f'CREATE DATABASE "{name}"')


def prepare(url: str) -> tuple[str, str, int]:
    """Migrate; create a user, a project with one stream and a read token."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "continust.settings")
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connections

    from api.models import ApiToken, Scope
    from continust.log.projects import create_project, create_stream

    call_command("migrate", verbosity=0)
    tag = secrets.token_hex(4)
    user = User.objects.create_user(f"feed-{tag}")
    project = create_project(f"feed-{tag}", owner=user)
    stream = create_stream(project, "ticks")
    token = ApiToken.issue(user, "feed bench", [project], Scope.READ)[1]
    connections.close_all()
    return project.slug, token, stream.pk


def write(url: str, stream_id: int, rate: float, seconds: float, done: Any) -> None:
    """The writer process: one event per append, ``rate`` a second, for ``seconds``."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "continust.settings")
    import django

    django.setup()
    from continust.log.store import NewEvent, append
    from continust.models import Stream

    stream = Stream.objects.get(pk=stream_id)
    began = time.monotonic()
    n = 0
    late = 0
    while n < int(rate * seconds):
        due = began + n / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        elif now - due > 1 / rate:
            late += 1
        append(stream, [NewEvent(type=TICK, payload={"n": n, "at": time.time()})])
        n += 1
    done.put({"appended": n, "late": late, "seconds": time.monotonic() - began})


def start_gunicorn(args: argparse.Namespace, url: str, port: int) -> subprocess.Popen[bytes]:
    command = [
        str(ROOT / ".venv/bin/gunicorn"),
        "continust.wsgi",
        "--worker-class",
        "gthread",
        "--workers",
        str(args.workers),
        "--threads",
        str(args.threads),
        "--worker-connections",
        str(args.threads),
        "--timeout",
        str(args.feed_seconds + 60),
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
    ]
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_DEBUG": "0",
        "CONTINUST_API_RATE": "off",
        "CONTINUST_FEED_SECONDS": str(args.feed_seconds),
        "CONTINUST_FEED_MAX_OPEN": str(args.clients * 2),
    }
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("gunicorn did not listen within 30 s")


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


@dataclass
class Sampler:
    """RSS of the master and its workers, every second, in a thread."""

    master: int
    samples: list[tuple[float, int, dict[int, int]]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def sample(self, label_time: float) -> None:
        workers = {pid: rss_kib(pid) for pid in children(self.master)}
        self.samples.append((label_time, rss_kib(self.master), workers))

    def run(self, began: float) -> None:
        while not self.stopping.wait(1.0):
            self.sample(time.monotonic() - began)

    @staticmethod
    def total(sample: tuple[float, int, dict[int, int]]) -> int:
        return sample[1] + sum(sample[2].values())


@dataclass
class Client:
    index: int
    counts: dict[int, int] = field(default_factory=dict)
    lags: list[float] = field(default_factory=list)
    last_id: str | None = None
    responses: int = 0
    errors: list[str] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)


async def read_body(reader: asyncio.StreamReader, chunked: bool) -> Any:
    """The response body, chunk by chunk (decoding ``Transfer-Encoding: chunked``)."""
    while True:
        if not chunked:
            data = await reader.read(65536)
            if not data:
                return
            yield data
            continue
        size_line = await reader.readline()
        if not size_line:
            raise ConnectionError("connection closed inside a chunked body")
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            await reader.readline()
            return
        data = await reader.readexactly(size)
        await reader.readexactly(2)
        yield data


async def follow(client: Client, port: int, path: str, token: str, stop: asyncio.Event) -> None:
    while not stop.is_set():
        writer = None
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            head = (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n"
                "Cache-Control: no-cache\r\n"
            )
            if client.last_id is not None:
                head += f"Last-Event-ID: {client.last_id}\r\n"
            writer.write((head + "\r\n").encode())
            await writer.drain()
            status_line = await reader.readline()
            parts = status_line.split()
            status = int(parts[1]) if len(parts) > 1 else 0
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            if status != 200:
                body = await reader.read(2000)
                client.errors.append(f"HTTP {status}: {body[:200]!r}")
                writer.close()
                await asyncio.sleep(1.0)
                continue
            client.responses += 1
            chunked = "chunked" in headers.get("transfer-encoding", "")
            pending = b""
            async for data in read_body(reader, chunked):
                pending += data
                while b"\n\n" in pending:
                    frame, pending = pending.split(b"\n\n", 1)
                    handle(client, frame.decode())
            writer.close()
        except asyncio.CancelledError:
            if writer is not None:
                writer.close()
            raise
        except (OSError, ValueError, asyncio.IncompleteReadError) as error:
            client.errors.append(repr(error))
            if writer is not None:
                writer.close()
            await asyncio.sleep(1.0)


def handle(client: Client, frame: str) -> None:
    kind = "message"
    data = []
    for line in frame.split("\n"):
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "id":
            client.last_id = value
        elif name == "event":
            kind = value
        elif name == "data":
            data.append(value)
        elif name == "retry":
            client.connected.set()
    if kind == "event" and data:
        record = json.loads("\n".join(data))
        if record.get("type") == TICK:
            payload = record["payload"]
            n = int(payload["n"])
            client.counts[n] = client.counts.get(n, 0) + 1
            client.lags.append(time.time() - float(payload["at"]))


async def drive(args: argparse.Namespace, url: str, stream_id: int, port: int,
                path: str, token: str, sampler: Sampler) -> dict[str, Any]:  # fmt: skip
    stop = asyncio.Event()
    clients = [Client(i) for i in range(args.clients)]
    began = time.monotonic()
    tasks = [asyncio.create_task(follow(c, port, path, token, stop)) for c in clients]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            asyncio.gather(*(c.connected.wait() for c in clients)), timeout=args.connect_wait
        )
    connect_seconds = time.monotonic() - began
    connected = sum(c.connected.is_set() for c in clients)
    sampler.sample(-1.0)  # all connected, nothing written yet
    load_start = os.getloadavg()

    context = multiprocessing.get_context("spawn")
    done = context.Queue()
    writer = context.Process(target=write, args=(url, stream_id, args.rate, args.seconds, done))
    hold_began = time.monotonic()
    thread = threading.Thread(target=sampler.run, args=(hold_began,), daemon=True)
    thread.start()
    writer.start()
    while writer.is_alive():
        await asyncio.sleep(0.5)
    wrote = done.get(timeout=10)
    appended = wrote["appended"]
    deadline = time.monotonic() + args.drain
    while time.monotonic() < deadline:
        if all(len(c.counts) >= appended for c in clients):
            break
        await asyncio.sleep(0.25)
    hold_seconds = time.monotonic() - hold_began
    sampler.stopping.set()
    thread.join()
    sampler.sample(hold_seconds)  # end, clients still open
    load_end = os.getloadavg()
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(2.0)
    sampler.sample(hold_seconds + 2.0)  # after the clients closed

    expected = set(range(appended))
    missing = [len(expected - set(c.counts)) for c in clients]
    twice = [sum(v - 1 for v in c.counts.values() if v > 1) for c in clients]
    lags = sorted(lag for c in clients for lag in c.lags)
    errors = [e for c in clients for e in c.errors]
    totals = [Sampler.total(s) for s in sampler.samples]
    workers_peak = max(max(s[2].values(), default=0) for s in sampler.samples)
    return {
        "clients": args.clients,
        "connected": connected,
        "connect_seconds": round(connect_seconds, 2),
        "appended": appended,
        "writer_seconds": round(wrote["seconds"], 2),
        "writer_late": wrote["late"],
        "hold_seconds": round(hold_seconds, 1),
        "delivered": sum(len(c.counts) for c in clients),
        "expected": appended * args.clients,
        "clients_complete": sum(m == 0 and t == 0 for m, t in zip(missing, twice, strict=True)),
        "missing": sum(missing),
        "duplicates": sum(twice),
        "lag_p50_ms": round(statistics.median(lags) * 1000, 1) if lags else None,
        "lag_p99_ms": round(lags[int(len(lags) * 0.99)] * 1000, 1) if lags else None,
        "lag_max_ms": round(lags[-1] * 1000, 1) if lags else None,
        "responses": sum(c.responses for c in clients),
        "reconnects": sum(c.responses for c in clients) - connected,
        "errors": len(errors),
        "error_kinds": sorted({e[:120] for e in errors})[:10],
        "rss_idle_mib": round(totals[0] / 1024, 1),
        "rss_start_mib": round(totals[1] / 1024, 1),
        "rss_peak_mib": round(max(totals) / 1024, 1),
        "rss_end_mib": round(totals[-2] / 1024, 1),
        "rss_after_close_mib": round(totals[-1] / 1024, 1),
        "rss_worker_peak_mib": round(workers_peak / 1024, 1),
        "rss_per_second_mib": [round(t / 1024, 1) for t in totals[2:-2]],
        "load_start": [round(x, 2) for x in load_start],
        "load_end": [round(x, 2) for x in load_end],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the writer writes")
    parser.add_argument("--rate", type=float, default=50.0, help="events appended a second")
    parser.add_argument("--feed-seconds", type=int, default=25, help="CONTINUST_FEED_SECONDS")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=128)
    parser.add_argument("--drain", type=float, default=20.0)
    parser.add_argument("--connect-wait", type=float, default=60.0)
    parser.add_argument("--private-cluster", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.workers * args.threads < args.clients:
        parser.error("--workers x --threads must hold every client")

    cluster = (
        PrivateCluster(max_connections=args.clients * 2 + 50) if args.private_cluster else None
    )
    url = cluster.url if cluster else os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    server = None
    try:
        ensure_database(url)
        slug, token, stream_id = prepare(url)
        port = free_port()
        server = start_gunicorn(args, url, port)
        time.sleep(3.0)  # let the workers boot
        sampler = Sampler(server.pid)
        sampler.sample(-2.0)  # idle
        path = f"/api/projects/{slug}/events/feed"
        result = asyncio.run(drive(args, url, stream_id, port, path, token, sampler))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if cluster is not None:
            cluster.stop()
    result["served"] = (
        f"gunicorn gthread --workers {args.workers} --threads {args.threads} "
        f"--worker-connections {args.threads} --timeout {args.feed_seconds + 60}; "
        f"CONTINUST_FEED_SECONDS={args.feed_seconds}"
    )
    result["database"] = "private cluster" if cluster else url.rsplit("@", 1)[-1]
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for key, value in result.items():
        if key != "rss_per_second_mib":
            print(f"- {key}: {value}")
    print(f"- rss_per_second_mib: {result['rss_per_second_mib']}")


if __name__ == "__main__":
    main()
