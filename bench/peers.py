"""The peers continust is measured against in bench/bench_log.py, in a module of their own so
that worker processes and gunicorn can import them.

- the eventsourcing library as a user would use it: an ``Application`` saving a ``Ledger``
  aggregate (eventsourcing.postgres, the same PostgreSQL server and database);
- raw psycopg on a one-table log (``raw_log``): binary COPY for batches, one INSERT in
  autocommit (it commits itself: one round trip) for single events;
- two minimal WSGI apps (``es_app``, ``raw_app``) that take the same request body as
  continust's ``POST /api/projects/{slug}/streams/{name}/events`` and check a Bearer token,
  for the HTTP comparison under the same gunicorn.
"""

from __future__ import annotations

import hmac
import json
import os
import uuid
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

RAW_TABLE = "raw_log"
RAW_DDL = (
    f"CREATE TABLE IF NOT EXISTS {RAW_TABLE} (position bigint GENERATED ALWAYS AS "
    "IDENTITY PRIMARY KEY, stream text NOT NULL, seq bigint NOT NULL, type text NOT NULL, "
    "payload jsonb NOT NULL, UNIQUE (stream, seq))"
)


def payload(n: int) -> dict[str, Any]:
    """The payload every system appends (~70 bytes of JSON)."""
    return {"n": n, "account": f"acct-{n % 97}", "amount": n % 1000, "memo": "coffee"}


def pg_url(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


# ----------------------------------------------------------------------------- eventsourcing


class Ledger(Aggregate):
    """An account whose every deposit is an event; the state is the merged payloads."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state: dict[str, Any] = {}

    @event("Deposited")
    def deposit(self, n: int, account: str, amount: int, memo: str) -> None:
        self.state.update(n=n, account=account, amount=amount, memo=memo)


class LedgerApp(Application):
    """Its events go to the table ``ledgerapp_events``."""


def es_env(url: str, port: int | None = None) -> dict[str, str]:
    user, rest = url.split("://", 1)[1].split("@", 1)
    host, dbname = rest.split("/", 1)
    host, default_port = host.split(":") if ":" in host else (host, "5432")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": dbname,
        "POSTGRES_HOST": host,
        "POSTGRES_PORT": str(port or default_port),
        "POSTGRES_USER": user.split(":")[0],
        "POSTGRES_PASSWORD": user.split(":")[1] if ":" in user else "",
        "CREATE_TABLE": "y",
        "POSTGRES_POOL_SIZE": "2",
    }


def es_app(url: str, port: int | None = None) -> LedgerApp:
    return LedgerApp(env=es_env(url, port))


def es_deposit(ledger: Ledger, n: int) -> None:
    ledger.deposit(**payload(n))


# ----------------------------------------------------------------------------- raw psycopg


def raw_connect(url: str, *, autocommit: bool, port: int | None = None):  # type: ignore[no-untyped-def]
    import psycopg

    kwargs: dict[str, Any] = {"autocommit": autocommit}
    if port:
        kwargs["port"] = port
    return psycopg.connect(pg_url(url), **kwargs)


def raw_copy_payloads(conn, stream: str, seq: int, first: int, count: int) -> None:  # type: ignore[no-untyped-def]
    """COPY ``count`` events (payloads ``first``...) in binary into the one-table log, from
    position ``seq`` of the stream, in one transaction."""
    from psycopg.types.json import Jsonb

    with (
        conn.cursor() as cur,
        cur.copy(
            f"COPY {RAW_TABLE} (stream, seq, type, payload) FROM STDIN (FORMAT BINARY)"
        ) as copy,
    ):
        copy.set_types(["text", "int8", "text", "jsonb"])
        for k in range(count):
            copy.write_row((stream, seq + k, "deposited", Jsonb(payload(first + k))))
    conn.commit()


INSERT = f"INSERT INTO {RAW_TABLE} (stream, seq, type, payload) VALUES (%s, %s, %s, %s)"


def raw_insert(conn, stream: str, seq: int, body: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    """One event, one statement, on an autocommit connection: it commits itself."""
    from psycopg.types.json import Jsonb

    conn.execute(INSERT, (stream, seq, "deposited", Jsonb(body)), prepare=True)


# ----------------------------------------------------------------------------- minimal WSGI


class _Peer:
    """Per gunicorn worker process: one connection or application, made at the first request."""

    def __init__(self) -> None:
        self.state: Any = None

    @property
    def url(self) -> str:
        return os.environ["BENCH_DATABASE_URL"]

    def authorised(self, environ: dict[str, Any]) -> bool:
        given = environ.get("HTTP_AUTHORIZATION", "").encode()
        return hmac.compare_digest(given, b"Bearer " + os.environ["BENCH_TOKEN"].encode())

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if not self.authorised(environ):
            start_response("401 Unauthorized", [("Content-Type", "application/json")])
            return [b'{"detail": "unauthorised"}']
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length))
        stream = environ.get("PATH_INFO", "/").rsplit("/", 2)[-2]
        written = self.write(stream, body["events"])
        out = json.dumps({"created": True, "versions": written}).encode()
        start_response(
            "201 Created", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))]
        )
        return [out]

    def write(self, stream: str, events: list[dict[str, Any]]) -> list[int]:
        raise NotImplementedError


class _RawPeer(_Peer):
    def write(self, stream: str, events: list[dict[str, Any]]) -> list[int]:
        from psycopg.types.json import Jsonb

        if self.state is None:
            self.state = raw_connect(self.url, autocommit=True)
        stream = f"{stream}-{os.getpid()}"  # one writer per key: no unique collisions
        seq = uuid.uuid4().int >> 72
        if len(events) == 1:
            e = events[0]
            raw_insert(self.state, stream, seq, e["payload"])
            return [seq]
        with (
            self.state.transaction(),
            self.state.cursor() as cur,
            cur.copy(
                f"COPY {RAW_TABLE} (stream, seq, type, payload) FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(["text", "int8", "text", "jsonb"])
            for k, e in enumerate(events):
                copy.write_row((stream, seq + k, e["type"], Jsonb(e["payload"])))
        return list(range(seq, seq + len(events)))


class _EsPeer(_Peer):
    """One aggregate per worker process, kept in memory between requests."""

    def write(self, stream: str, events: list[dict[str, Any]]) -> list[int]:
        if self.state is None:
            app = es_app(self.url)
            ledger = Ledger(f"{stream}-{os.getpid()}")
            app.save(ledger)
            self.state = (app, ledger)
        app, ledger = self.state
        for e in events:
            ledger.deposit(**e["payload"])
        app.save(ledger)
        return [ledger.version]


raw_app = _RawPeer()
es_app_wsgi = _EsPeer()
