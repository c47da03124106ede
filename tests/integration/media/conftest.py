"""Real HTTP servers on loopback addresses that record every request they receive."""

from __future__ import annotations

import io
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

import mmserve.media._fetch as fetch_module

Route = Callable[["RecordingHandler"], None]


def png_bytes(size: tuple[int, int] = (3, 2), colour: tuple[int, int, int] = (0, 128, 255)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class Hit:
    path: str
    headers: dict[str, str]


@dataclass
class ImageServer:
    """A threaded HTTP/1.1 server; ``hits`` lists every request that reached it."""

    host: str
    family: socket.AddressFamily = socket.AF_INET
    ssl_context: ssl.SSLContext | None = None
    port: int = 0
    # Server names the TLS clients asked for (SNI).
    server_names: list[str | None] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    # Set by slow or flooding routes when they stop: the number of body bytes they got out.
    finished: threading.Event = field(default_factory=threading.Event)
    body_bytes_sent: int = 0
    body_completed: bool = False

    def start(self) -> None:
        owner = self

        class Server(ThreadingHTTPServer):
            address_family = owner.family
            daemon_threads = True

        self._server = Server((self.host, 0), RecordingHandler)
        if self.ssl_context is not None:
            self.ssl_context.sni_callback = lambda _socket, name, _context: self.server_names.append(name)
            self._server.socket = self.ssl_context.wrap_socket(self._server.socket, server_side=True)
        self._server.image_server = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str, host: str | None = None) -> str:
        host = host or (f"[{self.host}]" if ":" in self.host else self.host)
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.port}{path}"


class RecordingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "test"

    @property
    def owner(self) -> ImageServer:
        return self.server.image_server  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.owner.hits.append(Hit(self.path, {key.lower(): value for key, value in self.headers.items()}))
        path = urlsplit(self.path).path
        route = ROUTES.get(path)
        if route is None and path.startswith("/hops/"):
            route = hops
        (route or not_found)(self)

    def send(self, status: int, body: bytes, content_type: str = "image/png", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def query(self, name: str) -> str:
        return parse_qs(urlsplit(self.path).query)[name][0]


def image(handler: RecordingHandler) -> None:
    handler.send(200, png_bytes())


def octet_stream(handler: RecordingHandler) -> None:
    handler.send(200, png_bytes(), "application/octet-stream")


def gzipped(handler: RecordingHandler) -> None:
    handler.send(200, png_bytes(), "image/png", Content_Encoding="gzip")


def not_found(handler: RecordingHandler) -> None:
    handler.send(404, b"no such image", "text/plain")


def forbidden(handler: RecordingHandler) -> None:
    handler.send(403, b"go away", "text/plain")


def html(handler: RecordingHandler) -> None:
    handler.send(200, b"<html><body>not an image</body></html>", "text/html; charset=utf-8")


def redirect(handler: RecordingHandler) -> None:
    handler.send(302, b"", "text/plain", Location=handler.query("to"))


def hops(handler: RecordingHandler) -> None:
    """/hops/N redirects to /hops/N-1 ... /hops/0, which is the image."""
    remaining = int(handler.path.rsplit("/", 1)[1])
    if remaining == 0:
        image(handler)
    else:
        handler.send(302, b"", "text/plain", Location=f"/hops/{remaining - 1}")


def huge_declared(handler: RecordingHandler) -> None:
    """Declares 50 MB, sends headers only, and waits: a client that reads the body hangs."""
    handler.send_response(200)
    handler.send_header("Content-Type", "image/png")
    handler.send_header("Content-Length", str(50_000_000))
    handler.end_headers()
    handler.wfile.flush()
    handler.owner.stopping.wait(5)
    handler.owner.finished.set()


def chunked_flood(handler: RecordingHandler) -> None:
    """Streams up to 64 MB in chunks with no declared length until the client hangs up."""
    handler.send_response(200)
    handler.send_header("Content-Type", "image/png")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunk = b"\x00" * 65536
    try:
        while handler.owner.body_bytes_sent < 64_000_000 and not handler.owner.stopping.is_set():
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            handler.owner.body_bytes_sent += len(chunk)
        handler.wfile.write(b"0\r\n\r\n")
        handler.owner.body_completed = True
    except OSError:
        pass
    finally:
        handler.owner.finished.set()


def drip(handler: RecordingHandler) -> None:
    """Declares 1000 bytes and sends one every 50 ms: each read is quick, the whole is slow."""
    handler.send_response(200)
    handler.send_header("Content-Type", "image/png")
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    try:
        for _ in range(1000):
            if handler.owner.stopping.is_set():
                break
            handler.wfile.write(b"\x00")
            handler.wfile.flush()
            handler.owner.body_bytes_sent += 1
            time.sleep(0.05)
        else:
            handler.owner.body_completed = True
    except OSError:
        pass
    finally:
        handler.owner.finished.set()


ROUTES: dict[str, Route] = {
    "/image.png": image,
    "/octet": octet_stream,
    "/gzipped": gzipped,
    "/missing.png": not_found,
    "/forbidden.png": forbidden,
    "/page.html": html,
    "/redirect": redirect,
    "/huge-declared": huge_declared,
    "/chunked-flood": chunked_flood,
    "/drip": drip,
}


def _serve(
    host: str, family: socket.AddressFamily = socket.AF_INET, ssl_context: ssl.SSLContext | None = None
) -> Iterator[ImageServer]:
    server = ImageServer(host, family, ssl_context)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def start_server() -> Iterator[Callable[..., ImageServer]]:
    """``start_server(host, family=AF_INET, ssl_context=None)`` starts a server stopped after the test."""
    started: list[ImageServer] = []

    def start(
        host: str, family: socket.AddressFamily = socket.AF_INET, ssl_context: ssl.SSLContext | None = None
    ) -> ImageServer:
        server = ImageServer(host, family, ssl_context)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server() -> Iterator[ImageServer]:
    """An image server on 127.0.0.1."""
    yield from _serve("127.0.0.1")


@pytest.fixture
def other_server() -> Iterator[ImageServer]:
    """A second server on 127.0.0.2 (also loopback on Linux), never allow-listed."""
    yield from _serve("127.0.0.2")


@pytest.fixture
def ipv6_server() -> Iterator[ImageServer]:
    """A server on [::1]."""
    yield from _serve("::1", socket.AF_INET6)


@pytest.fixture
def free_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, list[str]]], list[str]]:
    """``fake_dns({name: [addresses]})`` answers lookups from the table; returns the names looked up."""

    def install(table: dict[str, list[str]]) -> list[str]:
        lookups: list[str] = []

        async def resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
            lookups.append(host)
            return [ipaddress.ip_address(address) for address in table[host]]

        monkeypatch.setattr(fetch_module, "resolve_host", resolve)
        return lookups

    return install
