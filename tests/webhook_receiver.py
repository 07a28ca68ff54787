"""A local HTTP server that receives webhook deliveries in tests.

    with Receiver(answers=[500, 500, 200]) as receiver:
        ... receiver.url ... receiver.requests

Each POST gets the next status of ``answers`` (the last one repeats), with the given
headers. It listens on 127.0.0.1 only: tests that use it turn
``CONTINUST_WEBHOOK_ALLOW_PRIVATE`` on for themselves.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from base64 import b64decode, b64encode
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def standard_signature_ok(secret: str, received: Received) -> bool:
    """A receiver's own check, written from the Standard Webhooks convention alone."""
    key = b64decode(secret.removeprefix("whsec_"))
    signed = (
        f"{received.headers['webhook-id']}.{received.headers['webhook-timestamp']}.".encode()
        + received.body
    )
    expected = "v1," + b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(expected, offered)
        for offered in received.headers["webhook-signature"].split()
    )


class Receiver:
    def __init__(
        self, answers: list[int] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        self.answers = list(answers or [200])
        self.extra = dict(headers or {})
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.requests.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    index = min(len(receiver.requests), len(receiver.answers)) - 1
                    status = receiver.answers[index]
                self.send_response(status)
                for name, value in receiver.extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()

    def received(self) -> list[Received]:
        with self.lock:
            return list(self.requests)
