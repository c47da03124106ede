"""Image URLs through a real server: allowed hosts are fetched, forbidden ones never contacted."""

from __future__ import annotations

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (200, 300, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def image_host(request):
    """An HTTP server on a loopback address that serves one PNG and counts its hits."""
    address = getattr(request, "param", "127.0.0.1")
    hits: list[str] = []
    body = png_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer((address, 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://{address}:{httpd.server_address[1]}", hits
    httpd.shutdown()


def ask(server, url: str) -> httpx.Response:
    body = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "?"}],
            }
        ],
        "max_tokens": 4,
    }
    return httpx.post(server.base_url + "/v1/chat/completions", json=body, timeout=60)


def test_allowed_host_is_fetched(server, image_host):
    """A URL on an --allow-media-host address is fetched and answered by the vision engine."""
    base, hits = image_host
    response = ask(server, f"{base}/page.png")
    assert response.status_code == 200, response.text
    assert response.json()["mmserve"]["images"][0]["original"] == [300, 200]
    assert hits == ["/page.png"]


@pytest.mark.parametrize("image_host", ["127.0.0.2"], indirect=True)
def test_forbidden_loopback_is_never_contacted(server, image_host):
    """A loopback address that is not allowed is refused with 400 and sees no request."""
    base, hits = image_host
    response = ask(server, f"{base}/secret.png")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "image_source_forbidden"
    assert response.json()["error"]["param"] == "messages[0].content[0].image_url"
    assert hits == []


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/a.png", "http://169.254.169.254/latest/meta-data/"]
)
def test_forbidden_sources_are_400(server, url):
    """Local files without a media root, other schemes and the metadata address are 400s."""
    response = ask(server, url)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "image_source_forbidden"
