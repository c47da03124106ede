"""A local HTTP server in front of mmserve, for client tests that need a server which
misbehaves in one way: it answers some requests itself and forwards the rest."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


class Proxy:
    """Forwards GET and POST to ``upstream``, except what ``intercept`` answers itself.

    ``intercept(body)`` gets each request's body (``b""`` for none) and returns ``(status,
    headers, error)`` to answer with an OpenAI error envelope, or None to forward."""

    def __init__(self, upstream: str) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                answer = proxy.intercept(body)
                if answer is not None:
                    status, headers, error = answer
                    payload = json.dumps({"error": error}).encode()
                else:
                    forwarded = httpx.request(
                        method, upstream + self.path, content=body or None,
                        headers={"Content-Type": "application/json"}, timeout=120,
                    )  # fmt: skip
                    status, headers, payload = forwarded.status_code, {}, forwarded.content
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def intercept(self, body: bytes) -> tuple[int, dict, dict] | None:
        return None

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
