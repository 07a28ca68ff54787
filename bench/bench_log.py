"""The log beside its peers, in one run: the measurement harness of issue 12's targets.

    .venv/bin/python bench/bench_log.py [--rounds 3] [--only a,b,c,d,e,f] [--profile]

Three systems on the same PostgreSQL database (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/continust_bench_h, created and migrated if missing):

- continust through its public API only (``continust.log.projects.create_project/create_stream``,
  ``continust.log.store.NewEvent/append``, ``bench/folding.py`` (continust's rows, its reducers),
  ``continust.replays.start_replay/run``, and ``POST /api/projects/{slug}/streams/{name}/events``
  with a Bearer token), so the harness keeps working on a new write path;
- the eventsourcing library as a user would use it (``bench/peers.py``: an Application saving
  a Ledger aggregate, eventsourcing.postgres);
- raw psycopg on a one-table log (binary COPY for batches, one autocommit INSERT per event).

Each round measures every part for every system back to back (the systems' order rotates
from round to round), so the three see the same machine; a figure is the median of the
rounds, with the 1-minute load average at the end of each measurement beside it. Parts:

a  batched append, 1,000-event batches (events/s)
b  one event per transaction (events/s), with per append: wall time, client CPU (this
   process), server CPU (the database backends' utime+stime from /proc) and round trips
   (counted by a TCP proxy between client and server: one round trip each time the client
   speaks after the server did; continust's statements through Django are counted too)
c  1, 4 and 8 writer processes, each on its own stream, one event per transaction
d  HTTP through gunicorn (sync workers, 2 × cores + 1 of them, gunicorn's documented
   default advice), 4 client processes, one event per request, each client on its own
   stream: req/s and p99; the peers run as minimal WSGI apps under the same gunicorn; then
   one client posting 1,000-event requests, beside continust's batched domain rate (a)
e  disk per event, eternal policy: the growth of pg_total_relation_size (heap, TOAST, indexes,
   free-space and visibility maps) over every table of the database, VACUUM ANALYZE before
   and after appending --disk-events events; measured once, not per round
f  folding a 1,000-event stream (bench/folding.py: continust's rows, folded by its reducers)
   beside SELECT + the same fold
   over the raw table (and eventsourcing's repository.get); the same fold by continust's read
   path (state_of of a version --fold-events events above the nearest stored state, on a
   stream with a selective policy, its cache emptied) beside the raw fold again; a replay
   of --replay-events events (start_replay + run in this process, no broker) beside a raw
   binary COPY of every row the replay wrote (found by xmin) into empty copies of their
   tables (LIKE ... INCLUDING ALL: indexes and constraints, no foreign keys or triggers),
   one transaction

Before each round, 8 kB writes + fdatasync for 0.5 s on bench/out's filesystem (the disk of
PostgreSQL's WAL here) show how contended the disk is: a context row of the table.

Part d also records each run's server CPU a request (gunicorn's processes: app_cpu_ms; the
database's backends: db_cpu_ms), and, once after the rounds, one request at a time to one
gunicorn worker behind the counting proxy: the statements (each simple Query and each
Execute of the wire protocol) and round trips a request sends to PostgreSQL, the worker's
and the backends' CPU and the wall time a request, for continust and the raw app.

``--profile`` adds a profile of a single append: cProfile of the client, EXPLAIN (ANALYZE,
BUFFERS) of each statement, and the time split (bench/out/profile-single-append.txt); and
cProfile (CPU time) of a gunicorn worker of its own serving single-event requests
(bench/out/profile-http-request.txt).

The table is printed and written to bench/out/log.md and bench/out/log.json.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import multiprocessing
import os
import secrets
import selectors
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import peers  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/continust_bench_h"
SYSTEMS = ("continust", "eventsourcing", "raw")
PARTS = "abcdef"
# A fresh number space per run: continust stores states by content, so payloads seen in an
# earlier run would be cheaper to store again.
BASE = (secrets.randbelow(9 * 10**5) + 10**5) * 10**7


def load() -> float:
    return os.getloadavg()[0]


# ----------------------------------------------------------------------------- set-up


def setup_django(url: str, migrate: bool) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "continust.settings_test")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def create_database(url: str) -> None:
    import psycopg

    admin, name = url.rsplit("/", 1)
    with psycopg.connect(peers.pg_url(admin + "/postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


class Monitor:
    """An autocommit connection for ANALYZE, VACUUM, sizes and the backends' CPU time."""

    def __init__(self, url: str) -> None:
        self.conn = peers.raw_connect(url, autocommit=True)
        self.db = url.rsplit("/", 1)[1]
        self.tick = os.sysconf("SC_CLK_TCK")

    def analyze(self) -> None:
        self.conn.execute("ANALYZE")

    def server_cpu(self) -> float:
        """CPU seconds used so far by every other backend connected to the database."""
        pids = [
            r[0]
            for r in self.conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [self.db],
            )
        ]
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / self.tick

    def sizes(self) -> dict[str, int]:
        return dict(
            self.conn.execute(
                "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r'"
            )
        )


def fsync_rate(seconds: float = 0.5) -> float:
    """8 kB writes + fdatasync a second on bench/out's filesystem (pg_test_fsync's first line;
    on this machine the same disk as PostgreSQL's WAL): how contended the disk is now."""
    path = BENCH / "out" / "fsync-probe.tmp"
    path.parent.mkdir(exist_ok=True)
    block = os.urandom(8192)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        count = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            os.pwrite(fd, block, 0)
            os.fdatasync(fd)
            count += 1
        return count / (time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()


# ----------------------------------------------------------------------------- round trips


class CountingProxy(threading.Thread):
    """A TCP proxy to PostgreSQL that counts round trips: a turn each time the client sends
    after the server spoke (or first). Pipelined statements sent together count once."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.target = ("127.0.0.1", port)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.turns = 0
        self.statements = 0
        self.lock = threading.Lock()

    def run(self) -> None:
        while True:
            client, _ = self.listener.accept()
            server = socket.create_connection(self.target)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self.pump, args=(client, server), daemon=True).start()

    def pump(self, client: socket.socket, server: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, server)
        sel.register(server, selectors.EVENT_READ, client)
        last = None
        messages = FrontendMessages()
        try:
            while True:
                for key, _ in sel.select():
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    if key.fileobj is client:
                        executed = messages.feed(data)
                        with self.lock:
                            self.statements += executed
                            if last is not client:
                                self.turns += 1
                    last = key.fileobj
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            client.close()
            server.close()


class FrontendMessages:
    """The client's side of PostgreSQL's wire protocol, read to count statements run: each
    simple Query ('Q') and each Execute ('E') of the extended protocol is one."""

    SSL_OR_GSS = (80877103, 80877104)

    def __init__(self) -> None:
        self.buffer = b""
        self.started = False

    def feed(self, data: bytes) -> int:
        self.buffer += data
        executed = 0
        while True:
            if not self.started:  # untyped: SSLRequest / GSSENCRequest, then the startup
                if len(self.buffer) < 8:
                    return executed
                length = int.from_bytes(self.buffer[:4], "big")
                if len(self.buffer) < length:
                    return executed
                code = int.from_bytes(self.buffer[4:8], "big")
                self.started = code not in self.SSL_OR_GSS
                self.buffer = self.buffer[length:]
                continue
            if len(self.buffer) < 5:
                return executed
            length = int.from_bytes(self.buffer[1:5], "big")
            if len(self.buffer) < 1 + length:
                return executed
            if self.buffer[:1] in (b"Q", b"E"):
                executed += 1
            self.buffer = self.buffer[1 + length :]


# ----------------------------------------------------------------------------- the writers


class Writers:
    """This process's writers of the three systems: batched and single appends, folds."""

    def __init__(
        self, url: str, name: str, es_port: int | None = None, raw_port: int | None = None
    ) -> None:
        from continust.log.projects import create_project, create_stream

        self.url = url
        self.tag = f"{name}-{uuid.uuid4().hex[:8]}"
        self.project = create_project(f"bench-{self.tag}")
        self.streams: dict[str, Any] = {}
        self.create_stream = lambda n: create_stream(self.project, n)
        self.app = peers.es_app(url, es_port)
        self.ledgers: dict[str, peers.Ledger] = {}
        self.raw = peers.raw_connect(url, autocommit=False, port=raw_port)
        self.raw_auto = peers.raw_connect(url, autocommit=True, port=raw_port)
        self.seq: dict[str, int] = {}
        self.n = BASE + secrets.randbelow(10**6) * 10**3

    def next(self, count: int = 1) -> int:
        first = self.n
        self.n += count
        return first

    def stream(self, name: str) -> Any:
        if name not in self.streams:
            self.streams[name] = self.create_stream(name)
        return self.streams[name]

    def ledger(self, name: str) -> peers.Ledger:
        if name not in self.ledgers:
            ledger = peers.Ledger(name)
            self.app.save(ledger)
            self.ledgers[name] = ledger
        return self.ledgers[name]

    def raw_seq(self, name: str, count: int) -> int:
        first = self.seq.get(name, 0)
        self.seq[name] = first + count
        return first

    def batch(self, system: str, name: str, size: int) -> None:
        first = self.next(size)
        if system == "continust":
            from continust.log.store import NewEvent, append

            append(
                self.stream(name),
                [NewEvent("deposited", peers.payload(n)) for n in range(first, first + size)],
            )
        elif system == "eventsourcing":
            ledger = self.ledger(name)
            for n in range(first, first + size):
                peers.es_deposit(ledger, n)
            self.app.save(ledger)
        else:
            seq = self.raw_seq(name, size)
            peers.raw_copy_payloads(self.raw, f"{self.tag}/{name}", seq, first, size)

    def single(self, system: str, name: str) -> None:
        n = self.next()
        if system == "continust":
            from continust.log.store import NewEvent, append

            append(self.stream(name), [NewEvent("deposited", peers.payload(n))])
        elif system == "eventsourcing":
            ledger = self.ledger(name)
            peers.es_deposit(ledger, n)
            self.app.save(ledger)
        else:
            peers.raw_insert(
                self.raw_auto, f"{self.tag}/{name}", self.raw_seq(name, 1), peers.payload(n)
            )

    def fold(self, system: str, name: str) -> int:
        if system == "continust":
            from folding import fold_branch

            return int(fold_branch(self.stream(name))[1])
        if system == "eventsourcing":
            ledger = self.app.repository.get(self.ledger(name).id)
            return int(ledger.version)
        from continust.log.folding import fold_event

        state: dict[str, Any] = {}
        count = 0
        with self.raw.cursor() as cur:
            cur.execute(
                f"SELECT position, type, payload FROM {peers.RAW_TABLE} "
                "WHERE stream = %s ORDER BY seq",
                [f"{self.tag}/{name}"],
            )
            for position, type_, payload in cur:
                state = fold_event(
                    "merge", 1, state, event_id=str(position), type=type_, payload=payload
                )
                count += 1
        self.raw.commit()
        return count


def worker_main(pipe: Any, url: str, index: int) -> None:
    """A writer process of part c and a client process of part d; commands come by ``pipe``."""
    setup_django(url, migrate=False)
    for attempt in range(5):
        try:
            writers = Writers(url, f"w{index}")
            break
        except Exception as err:  # eventsourcing's CREATE OR REPLACE FUNCTION, 8 at once
            if "concurrently updated" not in str(err) or attempt == 4:
                raise
            time.sleep(0.2 + index * 0.1)
    for system in SYSTEMS:  # streams, aggregates and connections made before any timing
        writers.single(system, "single")
    pipe.send("ready")
    while True:
        command = pipe.recv()
        if command[0] == "stop":
            return
        if command[0] == "single":
            _, system, start_at, seconds = command
            time.sleep(max(0.0, start_at - time.time()))
            deadline = start_at + seconds
            count = 0
            while time.time() < deadline:
                writers.single(system, "single")
                count += 1
            pipe.send((count, time.time() - start_at))
        elif command[0] == "http":
            pipe.send(http_client(*command[1:]))


# ----------------------------------------------------------------------------- HTTP


def http_client(
    port: int,
    path: str,
    token: str,
    batch: int,
    start_at: float,
    seconds: float,
    count: int | None = None,
) -> tuple[list[float], dict[int, int], float]:
    """Post ``batch`` events a request for ``seconds`` (or ``count`` requests)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    connection: http.client.HTTPConnection | None = None
    n = BASE + secrets.randbelow(10**6) * 10**3
    time.sleep(max(0.0, start_at - time.time()))
    deadline = start_at + seconds
    while (len(latencies) < count) if count is not None else (time.time() < deadline):
        events = [{"type": "deposited", "payload": peers.payload(n + k)} for k in range(batch)]
        n += batch
        body = json.dumps({"events": events}).encode()
        started = time.perf_counter()
        for attempt in range(2):
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                connection.request("POST", path, body, headers)
                response = connection.getresponse()
                response.read()
                if response.will_close:
                    connection.close()
                    connection = None
                status = response.status
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                connection.close()
                connection = None
                if attempt:
                    raise
        latencies.append(time.perf_counter() - started)
        statuses[status] = statuses.get(status, 0) + 1
    return latencies, statuses, time.time() - start_at


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A gunicorn of sync workers serving continust, or one of the peers' minimal WSGI apps."""

    def __init__(
        self,
        app: str,
        workers: int,
        env: dict[str, str],
        profile_dir: Path | None = None,
        worker_class: str = "sync",
    ) -> None:
        self.port = free_port()
        command = [
            str(ROOT / ".venv/bin/gunicorn"),
            app,
            "-w",
            str(workers),
            "-k",
            worker_class,
            "-b",
            f"127.0.0.1:{self.port}",
            "--log-level",
            "warning",
            "--control-socket",
            f"/tmp/bench-log-gunicorn-{self.port}.ctl",
        ]
        env = {**os.environ, **env}
        if profile_dir is not None:  # cProfile around each request, one file per worker
            command += ["-c", str(BENCH / "gunicorn_profile.py")]
            env["BENCH_PROFILE_DIR"] = str(profile_dir)
        self.process = subprocess.Popen(command, cwd=BENCH if ":" in app else ROOT, env=env)

    def cpu(self) -> float:
        """CPU seconds (utime + stime) used so far by gunicorn's master and its workers."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid or stat.parent.name == str(self.process.pid):
                total += int(fields[11]) + int(fields[12])
        return total / tick

    def wait(self) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn on {self.port} exited: {self.process.returncode}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                connection.request("GET", "/api/openapi.json")
                connection.getresponse().read()
                return
            except (OSError, http.client.HTTPException):
                time.sleep(0.5)
        raise SystemExit(f"gunicorn on {self.port} did not answer within 180 s")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


# ----------------------------------------------------------------------------- the harness


class Harness:
    def __init__(self, args: argparse.Namespace, url: str) -> None:
        self.args = args
        self.url = url
        self.monitor = Monitor(url)
        self.me = Writers(url, "main")
        self.runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.facts: dict[str, Any] = {}
        self.pool: list[tuple[Any, Any]] = []
        self.servers: dict[str, Server] = {}

    def record(self, measure: str, system: str, value: float, **extra: Any) -> None:
        entry = {"value": value, "load": load(), **extra}
        self.runs.setdefault(measure, {}).setdefault(system, []).append(entry)
        shown = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in extra.items()
            if not isinstance(v, (list, dict))
        )
        print(
            f"  {measure:<28} {system:<14} {value:>12,.2f}  load {entry['load']:.2f}"
            + (f"  ({shown})" if shown else ""),
            file=sys.stderr,
            flush=True,
        )

    # -- set-up

    def start_pool(self) -> None:
        context = multiprocessing.get_context("spawn")
        for index in range(max(self.args.writers + [self.args.http_clients])):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=worker_main, args=(theirs, self.url, index), daemon=True
            )
            process.start()
            self.pool.append((process, ours))

    def pool_ready(self) -> None:
        for _, pipe in self.pool:
            if pipe.recv() != "ready":
                raise SystemExit("a worker process failed to start")

    def start_servers(self) -> None:
        from django.contrib.auth.models import User

        from api.models import ApiToken, Scope

        tag = uuid.uuid4().hex[:8]
        user = User.objects.create_user(f"bench-{tag}")
        from continust.log.projects import create_project, create_stream

        project = create_project(f"bench-http-{tag}", owner=user)
        for k in range(self.args.http_clients):
            create_stream(project, f"http-{k}")
        create_stream(project, "http-batch")
        self.token = ApiToken.issue(user, "bench", [project], Scope.WRITE)[1]
        self.http_prefix = f"/api/projects/{project.slug}/streams"
        env = self.server_env = {
            "DATABASE_URL": self.url,
            "BENCH_DATABASE_URL": self.url,
            "BENCH_TOKEN": self.token,
            "DJANGO_SETTINGS_MODULE": "continust.settings",
            "DJANGO_DEBUG": "0",
            # The bench's one token sends far above the default per-token limit.
            "CONTINUST_API_RATE": "off",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(32),
            "PYTHONPATH": str(BENCH),
        }
        workers = self.args.http_workers
        for system, app in (
            ("continust", "continust.wsgi"),
            ("eventsourcing", "peers:es_app_wsgi"),
            ("raw", "peers:raw_app"),
        ):
            self.servers[system] = Server(
                app, workers, env, worker_class=self.args.http_worker_class
            )
        for server in self.servers.values():
            server.wait()

    def setup(self) -> None:
        parts = self.args.only
        self.monitor.conn.execute(peers.RAW_DDL)
        if "d" in parts:
            self.start_servers()
        if "c" in parts or "d" in parts:
            self.start_pool()
        for system in SYSTEMS:
            self.me.single(system, "single")
            self.me.batch(system, "batched", 1000)
        if "f" in parts:
            for system in SYSTEMS:
                self.me.batch(system, "fold", self.args.fold_events)
            self.selective_stream()
            for first in range(0, self.args.replay_events, 1000):
                self.me.batch("continust", "replay", min(1000, self.args.replay_events - first))
        self.monitor.analyze()
        if self.pool:
            self.pool_ready()
        if "b" in parts:
            self.round_trips()

    def stop(self) -> None:
        for process, pipe in self.pool:
            if process.is_alive():
                pipe.send(("stop",))
        for process, _ in self.pool:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
        for server in self.servers.values():
            server.stop()

    # -- part b's round trips, once

    def round_trips(self, appends: int = 20) -> None:
        from django.db import connection

        proxy = CountingProxy(int(connection.settings_dict.get("PORT") or 5432))
        proxy.start()
        writers = Writers(self.url, "rt", es_port=proxy.port, raw_port=proxy.port)
        saved = dict(connection.settings_dict)
        connection.close()
        connection.settings_dict.update(HOST="127.0.0.1", PORT=proxy.port)
        statements: list[str] = []

        def counting(
            execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
        ) -> Any:
            statements.append(sql)
            return execute(sql, params, many, context)

        try:
            for system in SYSTEMS:
                writers.single(system, "rt")  # connected, stream and aggregate made
                before = proxy.turns
                statements.clear()
                with connection.execute_wrapper(counting):
                    for _ in range(appends):
                        writers.single(system, "rt")
                self.facts.setdefault("round_trips", {})[system] = (proxy.turns - before) / appends
                if system == "continust":
                    self.facts["django_statements_per_append"] = len(statements) / appends
                    self.facts["django_statements"] = [
                        s[:160] for s in statements[: len(statements) // appends]
                    ]
        finally:
            connection.close()
            connection.settings_dict.clear()
            connection.settings_dict.update(saved)
        print(
            f"  round trips per single append: {self.facts['round_trips']}; continust "
            f"statements through Django: {self.facts['django_statements_per_append']:g}",
            file=sys.stderr,
        )

    # -- the parts, one round

    def part_a(self, order: list[str]) -> None:
        batches = self.args.batches
        for system in order:
            started = time.perf_counter()
            for _ in range(batches):
                self.me.batch(system, "batched", 1000)
            self.record("a_batched", system, batches * 1000 / (time.perf_counter() - started))
        self.monitor.analyze()

    def part_b(self, order: list[str]) -> None:
        count = self.args.singles
        for system in order:
            cpu, server = time.process_time(), self.monitor.server_cpu()
            started = time.perf_counter()
            for _ in range(count):
                self.me.single(system, "single")
            wall = time.perf_counter() - started
            self.record(
                "b_single",
                system,
                count / wall,
                wall_ms=wall / count * 1000,
                client_cpu_ms=(time.process_time() - cpu) / count * 1000,
                server_cpu_ms=(self.monitor.server_cpu() - server) / count * 1000,
            )

    def part_c(self, order: list[str]) -> None:
        for writers in self.args.writers:
            for system in order:
                start_at = time.time() + 0.3
                for _, pipe in self.pool[:writers]:
                    pipe.send(("single", system, start_at, self.args.seconds))
                results = [pipe.recv() for _, pipe in self.pool[:writers]]
                total = sum(count for count, _ in results)
                elapsed = max(seconds for _, seconds in results)
                self.record(f"c_writers_{writers}", system, total / elapsed)

    def http_run(
        self, system: str, clients: int, batch: int, stream: Callable[[int], str]
    ) -> dict[str, Any]:
        start_at = time.time() + 0.3
        server = self.servers[system]
        port = server.port
        app_cpu, db_cpu = server.cpu(), self.monitor.server_cpu()
        for k, (_, pipe) in enumerate(self.pool[:clients]):
            pipe.send(
                (
                    "http",
                    port,
                    f"{self.http_prefix}/{stream(k)}/events",
                    self.token,
                    batch,
                    start_at,
                    self.args.http_seconds,
                )
            )
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        elapsed = 0.0
        for _, pipe in self.pool[:clients]:
            mine, counts, seconds = pipe.recv()
            latencies += mine
            elapsed = max(elapsed, seconds)
            for status, n in counts.items():
                statuses[status] = statuses.get(status, 0) + n
        app_cpu, db_cpu = server.cpu() - app_cpu, self.monitor.server_cpu() - db_cpu
        ok = sum(n for s, n in statuses.items() if s in (200, 201))
        ordered = sorted(latencies)
        return {
            # CPU a request of the whole server side: gunicorn's processes, the backends
            "app_cpu_ms": app_cpu / max(1, len(latencies)) * 1000,
            "db_cpu_ms": db_cpu / max(1, len(latencies)) * 1000,
            "rps": ok / elapsed,
            "events_per_s": ok * batch / elapsed,
            "p50_ms": ordered[len(ordered) // 2] * 1000 if ordered else float("nan"),
            "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000
            if ordered
            else float("nan"),
            "failed": len(latencies) - ok,
            "statuses": {str(k): v for k, v in statuses.items()},
        }

    def part_d(self, order: list[str], first: bool) -> None:
        clients = self.args.http_clients
        if first:  # warm every gunicorn worker: connections, imports, aggregates
            saved = self.args.http_seconds
            self.args.http_seconds = 1.0
            for system in order:
                self.http_run(system, clients, 1, lambda k: f"http-{k}")
            self.args.http_seconds = saved
        for system in order:
            result = self.http_run(system, clients, 1, lambda k: f"http-{k}")
            self.record("d_http_single", system, result.pop("rps"), **result)
        for system in order:
            result = self.http_run(
                system, self.args.http_batch_clients, 1000, lambda k: "http-batch"
            )
            self.record("d_http_batched", system, result.pop("events_per_s"), **result)

    def part_f(self, order: list[str]) -> None:
        for system in order:
            times = []
            for _ in range(self.args.fold_repeats):
                started = time.perf_counter()
                count = self.me.fold(system, "fold")
                times.append(time.perf_counter() - started)
            assert count >= self.args.fold_events, (system, count)
            self.record("f_fold_ms", system, statistics.median(times) * 1000, events=count)
        self.part_f_state_of(order)
        self.replay()

    def selective_stream(self) -> None:
        """A stream whose policy stores no state but its root's and its head's: the state of
        the head's parent is recomputed by continust's own read path (``state_of``) from
        the root's, folding --fold-events events."""
        from continust.log.policy import MAX_EVERY, make_policy
        from continust.models import Version
        from continust.retention.policies import set_policy

        name = "fold-selective"
        self.me.streams[name] = set_policy(
            self.me.stream(name), make_policy("selective", snapshot_every=MAX_EVERY), actor="bench"
        )
        self.me.batch("continust", name, 1)
        self.me.batch("continust", name, self.args.fold_events + 1)
        self.recomputed = Version.objects.values_list("id", "state_id").get(
            stream=self.me.streams[name], generation=self.args.fold_events
        )

    def part_f_state_of(self, order: list[str]) -> None:
        """continust's read path recomputing a state (``state_of``, its cache emptied first)
        beside the raw SELECT + fold of as many events."""
        from django.core.cache import cache

        from continust.log.states import CACHE_PREFIX, state_of

        version, state_hash = self.recomputed
        for system in order:
            if system == "eventsourcing":
                continue
            times = []
            for _ in range(self.args.fold_repeats):
                cache.delete(CACHE_PREFIX + state_hash)
                started = time.perf_counter()
                if system == "continust":
                    state_of(version)
                else:
                    self.me.fold(system, "fold")
                times.append(time.perf_counter() - started)
            self.record("f_state_of_ms", system, statistics.median(times) * 1000)

    def replay(self) -> None:
        from continust.replays import replay as replays

        stream = self.me.stream("replay")
        x0 = int(self.monitor.conn.execute("SELECT txid_current() % 4294967296").fetchone()[0])
        started = time.perf_counter()
        replay = replays.start_replay(stream, end="main")
        outcome = replays.run(replay.pk, worker="bench")
        seconds = time.perf_counter() - started
        if outcome != "done":
            raise SystemExit(f"replay {replay.pk}: {outcome}")
        replay.refresh_from_db()
        events = replay.total
        self.record("f_replay", "continust", events / seconds, events=events, seconds=seconds)
        copied, rows = self.copy_rows_since(x0)
        self.record("f_replay", "raw", events / copied, rows=rows, seconds=copied)

    def copy_rows_since(self, x0: int) -> tuple[float, dict[str, int]]:
        """COPY (binary) every row written after transaction x0 into empty copies of its
        table; return the seconds the COPY took and the rows per table."""
        conn = self.monitor.conn
        skip = {peers.RAW_TABLE, "ledgerapp_events"}
        tables = [
            t for t in self.monitor.sizes() if t not in skip and not t.startswith("bench_clone_")
        ]
        found: dict[str, tuple[list[str], bytes, int]] = {}
        for table in tables:
            columns = [
                r[0]
                for r in conn.execute(
                    "SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = %s::regclass "
                    "AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
                    [table],
                )
            ]
            where = f"FROM {table} WHERE xmin::text::bigint > {x0}"
            count = conn.execute(f"SELECT count(*) {where}").fetchone()[0]
            if not count:
                continue
            with (
                conn.cursor() as cur,
                cur.copy(
                    f"COPY (SELECT {', '.join(columns)} {where}) TO STDOUT (FORMAT BINARY)"
                ) as copy,
            ):
                data = b"".join(bytes(chunk) for chunk in copy)
            found[table] = (columns, data, count)
        clones = {table: f"bench_clone_{k}" for k, table in enumerate(found)}
        for table, clone in clones.items():
            conn.execute(f"DROP TABLE IF EXISTS {clone}")
            conn.execute(f"CREATE TABLE {clone} (LIKE {table} INCLUDING ALL)")
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            for table, (columns, data, _) in found.items():
                with cur.copy(
                    f"COPY {clones[table]} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.write(data)
        seconds = time.perf_counter() - started
        for clone in clones.values():
            conn.execute(f"DROP TABLE {clone}")
        return seconds, {table: count for table, (_, _, count) in found.items()}

    # -- part e, once

    def part_e(self) -> None:
        events = self.args.disk_events
        for system in SYSTEMS:
            self.monitor.conn.execute("VACUUM ANALYZE")
            before = self.monitor.sizes()
            for first in range(0, events, 1000):
                self.me.batch(system, "disk", min(1000, events - first))
            self.monitor.conn.execute("VACUUM ANALYZE")
            after = self.monitor.sizes()
            grown = {t: after[t] - before.get(t, 0) for t in after if after[t] != before.get(t, 0)}
            self.record(
                "e_disk_bytes",
                system,
                sum(grown.values()) / events,
                tables={
                    t: round(b / events, 1) for t, b in sorted(grown.items(), key=lambda kv: -kv[1])
                },
            )

    # -- all of it

    def run(self) -> None:
        parts = self.args.only
        try:
            self.setup()
            for r in range(self.args.rounds):
                order = list(SYSTEMS[r % 3 :] + SYSTEMS[: r % 3])
                print(f"round {r + 1}: {', '.join(order)}", file=sys.stderr, flush=True)
                self.record("fsync_probe", "raw", fsync_rate())
                if "a" in parts:
                    self.part_a(order)
                if "b" in parts:
                    self.part_b(order)
                if "c" in parts:
                    self.part_c(order)
                if "d" in parts:
                    self.part_d(order, first=r == 0)
                if "f" in parts:
                    self.part_f(order)
            if "e" in parts:
                self.part_e()
            if "d" in parts:
                self.http_probe()
        finally:
            self.stop()

    # -- part d's requests seen from the server, once

    def http_probe(self, requests: int = 300, warm: int = 30) -> None:
        """One gunicorn worker of each system behind the counting proxy, one client, one
        event a request: statements and round trips to the database, the worker's and the
        backends' CPU, and the wall time, per request (with ``--profile``, cProfile of
        continust's worker around each request: bench/out/profile-http-request.txt)."""
        from django.db import connection

        proxy = CountingProxy(int(connection.settings_dict.get("PORT") or 5432))
        proxy.start()
        name = connection.settings_dict["NAME"]
        proxied = f"postgres://postgres@127.0.0.1:{proxy.port}/{name}"
        profile_dir = BENCH / "out" / "http-profile" if self.args.profile else None
        if profile_dir is not None:
            profile_dir.mkdir(parents=True, exist_ok=True)
            for old in profile_dir.glob("*.prof"):
                old.unlink()
        env = {**self.server_env, "DATABASE_URL": proxied, "BENCH_DATABASE_URL": proxied}
        if profile_dir is not None:  # a worker of its own: cProfile costs CPU
            server = Server(
                "continust.wsgi", 1, env, profile_dir, worker_class=self.args.http_worker_class
            )
            try:
                server.wait()
                path = f"{self.http_prefix}/http-0/events"
                http_client(server.port, path, self.token, 1, time.time(), 0.0, requests)
            finally:
                server.stop()
        for system, app in (("continust", "continust.wsgi"), ("raw", "peers:raw_app")):
            server = Server(app, 1, env, worker_class=self.args.http_worker_class)
            try:
                server.wait()
                path = f"{self.http_prefix}/http-0/events"
                http_client(server.port, path, self.token, 1, time.time(), 0.0, warm)
                turns, statements = proxy.turns, proxy.statements
                app_cpu, db_cpu = server.cpu(), self.monitor.server_cpu()
                started = time.perf_counter()
                _, statuses, _ = http_client(
                    server.port, path, self.token, 1, time.time(), 0.0, requests
                )
                wall = time.perf_counter() - started
                assert sum(statuses.values()) == requests, statuses
                self.facts.setdefault("http_per_request", {})[system] = {
                    "statements": (proxy.statements - statements) / requests,
                    "round_trips": (proxy.turns - turns) / requests,
                    "app_cpu_ms": (server.cpu() - app_cpu) / requests * 1000,
                    "db_cpu_ms": (self.monitor.server_cpu() - db_cpu) / requests * 1000,
                    "wall_ms": wall / requests * 1000,
                    "statuses": {str(k): v for k, v in statuses.items()},
                    "load": load(),
                }
            finally:
                server.stop()
            print(
                f"  one request, one worker, {system}: {self.facts['http_per_request'][system]}",
                file=sys.stderr,
                flush=True,
            )
        if profile_dir is not None:
            import pstats

            files = sorted(str(f) for f in profile_dir.glob("*.prof"))
            if files:
                out = io.StringIO()
                stats = pstats.Stats(*files, stream=out)
                print(
                    f"cProfile (CPU time) of one gunicorn worker over {requests} single-event "
                    "requests (continust); unprofiled, a request: "
                    f"{self.facts['http_per_request']['continust']}\n",
                    file=out,
                )
                stats.sort_stats("cumulative").print_stats(45)
                stats.sort_stats("tottime").print_stats(30)
                (BENCH / "out" / "profile-http-request.txt").write_text(out.getvalue())


# ----------------------------------------------------------------------------- the report


def med(runs: list[dict[str, Any]], key: str = "value") -> float:
    return statistics.median(run[key] for run in runs)


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None or value != value:
        return "—"
    return f"{value:,.{digits}f}"


def cell(runs: list[dict[str, Any]] | None, digits: int = 0, key: str = "value") -> str:
    if not runs:
        return "—"
    return f"{fmt(med(runs, key), digits)} (L {med(runs, 'load'):.1f})"


def ratio(
    a: list[dict[str, Any]] | None, b: list[dict[str, Any]] | None, key: str = "value"
) -> str:
    """The median of the rounds' ratios: each round measures both side by side."""
    if not a or not b:
        return "—"
    pairs = [x[key] / y[key] for x, y in zip(a, b, strict=False) if y[key]]
    if len(a) != len(b) or not pairs:
        return f"{med(a, key) / med(b, key):.2f}×"
    return f"{statistics.median(pairs):.2f}×"


ROWS: list[tuple[str, str, str, int, str, str]] = [
    # (measure, label, key, digits, better, target)
    (
        "a_batched",
        "a. batched append, 1,000-event batches (events/s)",
        "value",
        0,
        "higher",
        "≥ 1.0× peer (aim 1.5×), ≥ 0.5× raw COPY",
    ),
    ("b_single", "b. one event per transaction (events/s)", "value", 0, "higher", "≥ 0.8× peer"),
    ("b_single", "b. … wall time per append (ms)", "wall_ms", 2, "lower", ""),
    ("b_single", "b. … client CPU per append (ms)", "client_cpu_ms", 2, "lower", ""),
    ("b_single", "b. … server CPU per append (ms, backends)", "server_cpu_ms", 2, "lower", ""),
    ("c_writers_1", "c. 1 writer process (events/s)", "value", 0, "higher", ""),
    (
        "c_writers_4",
        "c. 4 writer processes, 4 streams (events/s in total)",
        "value",
        0,
        "higher",
        "",
    ),
    (
        "c_writers_8",
        "c. 8 writer processes, 8 streams (events/s in total)",
        "value",
        0,
        "higher",
        "8 writers ≥ 1.6× 1 writer",
    ),
    (
        "d_http_single",
        "d. HTTP, 1 event a request, 4 clients (req/s)",
        "value",
        0,
        "higher",
        "≥ 0.5× raw",
    ),
    ("d_http_single", "d. … p99 (ms)", "p99_ms", 1, "lower", "≤ 20 ms"),
    (
        "d_http_batched",
        "d. HTTP, 1,000 events a request, 1 client (events/s)",
        "value",
        0,
        "higher",
        "≥ 0.7× domain batched (a)",
    ),
    (
        "e_disk_bytes",
        "e. disk per event, eternal, rows + indexes (bytes)",
        "value",
        0,
        "lower",
        "≤ 2× peer",
    ),
    (
        "f_fold_ms",
        "f. fold a 1,000-event stream from the database (ms)",
        "value",
        2,
        "lower",
        "≤ 1.2× raw SELECT + fold",
    ),
    (
        "f_state_of_ms",
        "f. … the same fold by continust's read path, `state_of` (ms)",
        "value",
        2,
        "lower",
        "≤ 1.2× raw SELECT + fold",
    ),
    (
        "f_replay",
        "f. replay vs raw binary COPY of the rows it writes (events/s)",
        "value",
        0,
        "higher",
        "≥ 0.8× raw COPY",
    ),
]


def table(runs: dict[str, dict[str, list[dict[str, Any]]]], facts: dict[str, Any]) -> str:
    lines = [
        "| measure | continust | eventsourcing | raw | continust ÷ peer | continust ÷ raw "
        "| better | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for measure, label, key, digits, better, target in ROWS:
        systems = runs.get(measure)
        if not systems:
            continue
        c, e, r = (systems.get(s) for s in SYSTEMS)
        lines.append(
            f"| {label} | {cell(c, digits, key)} | {cell(e, digits, key)} "
            f"| {cell(r, digits, key)} | {ratio(c, e, key)} | {ratio(c, r, key)} "
            f"| {better} | {target} |"
        )
    probe = runs.get("fsync_probe", {}).get("raw")
    if probe:
        lines.append(
            f"| disk: 8 kB write + fdatasync a second, before each round | — | — "
            f"| {cell(probe)} | — | — | context | (quiet machine: ~8,000) |"
        )
    if "round_trips" in facts:
        rt = facts["round_trips"]
        lines.append(
            f"| b. round trips per single append | {rt['continust']:g} "
            f"| {rt['eventsourcing']:g} | {rt['raw']:g} | — | — | lower | ≤ 2 |"
        )
    c1 = runs.get("c_writers_1", {}).get("continust")
    c8 = runs.get("c_writers_8", {}).get("continust")
    extra = []
    if c1 and c8:
        for system in SYSTEMS:
            one, eight = runs["c_writers_1"].get(system), runs["c_writers_8"].get(system)
            if one and eight:
                extra.append(f"{system} {ratio(eight, one)}")
        lines.append(f"\n8 writers ÷ 1 writer: {', '.join(extra)} (target ≥ 1.6× for continust).")
    batched_http = runs.get("d_http_batched", {}).get("continust")
    domain = runs.get("a_batched", {}).get("continust")
    if batched_http and domain:
        lines.append(
            f"HTTP batched ÷ domain batched (continust): "
            f"{ratio(batched_http, domain)} (target ≥ 0.7×)."
        )
    lines.append(
        "\nFigures: medians of the rounds, (L x) the 1-minute load average; ratios: "
        "the median of each round's ratio (the systems run side by side in a round)."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default=PARTS, help="parts to run, e.g. 'ab' (default all)")
    parser.add_argument("--batches", type=int, default=5, help="a: 1,000-event batches a run")
    parser.add_argument("--singles", type=int, default=300, help="b: appends a run")
    parser.add_argument("--writers", default="1,4,8", help="c: writer processes, comma list")
    parser.add_argument("--seconds", type=float, default=2.0, help="c: seconds a run")
    parser.add_argument("--http-workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument(
        "--http-worker-class",
        default="sync",
        help="d: gunicorn's worker class for continust and the peers alike (sync, gthread: "
        "gthread keeps a client's connection open between requests)",
    )
    parser.add_argument("--http-clients", type=int, default=4)
    parser.add_argument("--http-batch-clients", type=int, default=1)
    parser.add_argument("--http-seconds", type=float, default=3.0, help="d: seconds a run")
    parser.add_argument("--disk-events", type=int, default=20_000)
    parser.add_argument("--fold-events", type=int, default=1000)
    parser.add_argument("--fold-repeats", type=int, default=5)
    parser.add_argument("--replay-events", type=int, default=5000)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile single appends (bench/out/profile-*.txt)",
    )
    parser.add_argument(
        "--report",
        metavar="JSON",
        help="only print the table of an earlier run's bench/out/log.json",
    )
    args = parser.parse_args()
    if args.report:
        saved = json.loads(Path(args.report).read_text())
        print(table(saved["runs"], saved["facts"]))
        return
    args.writers = [int(w) for w in args.writers.split(",")]
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    os.environ["BENCH_DATABASE_URL"] = url
    create_database(url)
    setup_django(url, migrate=True)
    from common import machine

    began = time.perf_counter()
    harness = Harness(args, url)
    harness.run()
    if args.profile:
        import profile_append

        profile_append.profile(
            harness.me,
            harness.monitor,
            round_trips=harness.facts.get("round_trips", {}).get("continust"),
        )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "continust", "api"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    head = (
        f"Measured {machine()}, commit {commit}{' (+ uncommitted changes)' if dirty else ''}"
        f"; {args.rounds} rounds, medians; (L x) = 1-minute load average at the end of the "
        f"measurement (median of the rounds); gunicorn -w {args.http_workers} "
        f"{args.http_worker_class}; "
        f"{time.perf_counter() - began:.0f} s in all.\n"
    )
    text = (
        "### The log beside its peers (bench/bench_log.py)\n\n"
        + head
        + "\n"
        + table(harness.runs, harness.facts)
    )
    print(text)
    out = BENCH / "out"
    out.mkdir(exist_ok=True)
    (out / "log.md").write_text(text)
    (out / "log.json").write_text(
        json.dumps(
            {
                "args": vars(args),
                "machine": machine(),
                "commit": commit,
                "dirty": bool(dirty),
                "runs": harness.runs,
                "facts": harness.facts,
            },
            indent=1,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
