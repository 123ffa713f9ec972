"""A real HTTP server on loopback that records webhook deliveries (and can be told to fail)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Receiver:
    base_url: str
    received: list[tuple[str, dict]] = field(default_factory=list)
    status: dict[str, int] = field(default_factory=dict)  # path -> HTTP status to answer (default 200)

    def url(self, path: str) -> str:
        return self.base_url + path

    def bodies(self, path: str) -> list[dict]:
        return [body for p, body in self.received if p == path]


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = json.loads(self.rfile.read(length) or b"null")
            receiver.received.append((self.path, body))
            code = receiver.status.get(self.path, 200)
            self.send_response(code)
            self.send_header("content-type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if code < 300 else b"sink unavailable")

        def do_GET(self) -> None:
            receiver.received.append((self.path, None))
            code = receiver.status.get(self.path, 200)
            self.send_response(code)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(base_url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
