"""Remote image fetches against real HTTP servers on loopback: SSRF, redirects, caps, failures."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from mmserve.errors import ImageFetchError, ImageSourceForbiddenError, InvalidRequestError
from mmserve.media import DecodedImage, MediaLoader, MediaPolicy

if TYPE_CHECKING:
    from tests.integration.media.conftest import ImageServer

FakeDNS = Callable[[dict[str, list[str]]], list[str]]

pytestmark = pytest.mark.anyio

PARAM = "messages[0].content[1].image_url"
LOOPBACK_ONLY = ("127.0.0.1",)


async def fetch(url: str, **policy: object) -> DecodedImage:
    policy.setdefault("timeout_s", 2.0)
    loader = MediaLoader(MediaPolicy(**policy))
    try:
        return await loader.load(url, param=PARAM)
    finally:
        await loader.aclose()


async def test_allow_listed_loopback_image_loads(server: ImageServer) -> None:
    """With 127.0.0.1 allow-listed the image is fetched and decoded, asking for raw bytes."""
    decoded = await fetch(server.url("/image.png"), allow_hosts=LOOPBACK_ONLY)
    assert (decoded.format, decoded.width, decoded.height) == ("PNG", 3, 2)
    assert len(server.hits) == 1
    assert server.hits[0].headers["host"] == f"127.0.0.1:{server.port}"
    assert server.hits[0].headers["accept-encoding"] == "identity"


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "LOCALHOST",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "127.1",
        "0x7f.1",
        "[::ffff:127.0.0.1]",
        "0.0.0.0",
        "127.0.0.1.",
        "localhost.",
        "sub.localhost",
        "\uff11\uff12\uff17.\uff10.\uff10.\uff11",  # fullwidth digits, mapped to ASCII by IDNA
    ],
)
async def test_loopback_spellings_are_refused_without_contact(server: ImageServer, host: str) -> None:
    """Every spelling of a loopback address is refused by default and the server sees nothing."""
    with pytest.raises(ImageSourceForbiddenError) as caught:
        await fetch(server.url("/image.png", host=host))
    assert caught.value.param == PARAM
    assert server.hits == []


async def test_ipv6_loopback_is_refused_without_contact(ipv6_server: ImageServer) -> None:
    """http://[::1]:port/ is refused and the IPv6 server sees nothing."""
    with pytest.raises(ImageSourceForbiddenError):
        await fetch(ipv6_server.url("/image.png"))
    assert ipv6_server.hits == []


async def test_userinfo_trick_is_refused_without_contact(server: ImageServer) -> None:
    """http://example.com@127.0.0.1/ (credentials in the URL) is refused."""
    with pytest.raises(ImageSourceForbiddenError, match="credentials"):
        await fetch(f"http://example.com@127.0.0.1:{server.port}/image.png")
    assert server.hits == []


@pytest.mark.parametrize(
    "host", ["169.254.169.254", "10.0.0.1", "192.168.1.1", "172.16.0.1", "100.64.0.1", "224.0.0.1", "[fd00::1]"]
)
async def test_private_and_metadata_addresses_are_refused_fast(host: str) -> None:
    """Metadata, RFC 1918, CGNAT, multicast and ULA targets are refused before connecting."""
    started = time.perf_counter()
    with pytest.raises(ImageSourceForbiddenError, match="not a public address"):
        await fetch(f"http://{host}/latest/meta-data/")
    assert time.perf_counter() - started < 0.5


async def test_name_resolving_to_loopback_is_refused(server: ImageServer, fake_dns: FakeDNS) -> None:
    """A public-looking name whose DNS answer is loopback is refused without contact."""
    fake_dns({"rebind.example": ["127.0.0.1"]})
    with pytest.raises(ImageSourceForbiddenError, match="rebind.example"):
        await fetch(server.url("/image.png", host="rebind.example"))
    assert server.hits == []


async def test_one_forbidden_address_among_several_refuses(server: ImageServer, fake_dns: FakeDNS) -> None:
    """Every resolved address is checked, not just the first."""
    fake_dns({"mixed.example": ["93.184.216.34", "127.0.0.1"]})
    with pytest.raises(ImageSourceForbiddenError):
        await fetch(server.url("/image.png", host="mixed.example"))
    assert server.hits == []


async def test_checked_address_is_dialled_with_original_host_header(server: ImageServer, fake_dns: FakeDNS) -> None:
    """The name is resolved once, the checked IP is dialled, and Host carries the name."""
    lookups = fake_dns({"images.example": ["127.0.0.1"]})
    decoded = await fetch(server.url("/image.png", host="images.example"), allow_hosts=("images.example",))
    assert decoded.format == "PNG"
    assert lookups == ["images.example"]
    assert server.hits[0].headers["host"] == f"images.example:{server.port}"


async def test_redirect_to_forbidden_host_is_refused(server: ImageServer, other_server: ImageServer) -> None:
    """An allowed host redirecting to a non-allowed loopback address is refused at that hop."""
    target = other_server.url("/image.png")
    with pytest.raises(ImageSourceForbiddenError, match="127.0.0.2"):
        await fetch(server.url(f"/redirect?to={target}"), allow_hosts=LOOPBACK_ONLY)
    assert len(server.hits) == 1
    assert other_server.hits == []


async def test_redirect_to_metadata_address_is_refused(server: ImageServer) -> None:
    """A redirect to 169.254.169.254 is checked like the first URL."""
    with pytest.raises(ImageSourceForbiddenError):
        await fetch(server.url("/redirect?to=http://169.254.169.254/latest/"), allow_hosts=LOOPBACK_ONLY)


async def test_redirect_to_file_scheme_is_refused(server: ImageServer) -> None:
    """A redirect may not switch to file: (or any scheme but http/https)."""
    with pytest.raises(ImageSourceForbiddenError, match="scheme"):
        await fetch(server.url("/redirect?to=file:///etc/passwd"), allow_hosts=LOOPBACK_ONLY)


async def test_three_redirects_are_followed(server: ImageServer) -> None:
    """Up to max_redirects (3) hops reach the image."""
    decoded = await fetch(server.url("/hops/3"), allow_hosts=LOOPBACK_ONLY)
    assert decoded.format == "PNG"
    assert len(server.hits) == 4


async def test_fourth_redirect_is_refused(server: ImageServer) -> None:
    """A fourth redirect is a 400 and is not followed."""
    with pytest.raises(ImageFetchError, match="more than 3 times"):
        await fetch(server.url("/hops/4"), allow_hosts=LOOPBACK_ONLY)
    assert len(server.hits) == 4


async def test_declared_length_over_cap_is_refused_without_reading(server: ImageServer) -> None:
    """A Content-Length over max_bytes is refused at the headers; the body is never awaited."""
    started = time.perf_counter()
    with pytest.raises(ImageFetchError, match="larger than 100000 bytes"):
        await fetch(server.url("/huge-declared"), allow_hosts=LOOPBACK_ONLY, max_bytes=100_000, timeout_s=5.0)
    assert time.perf_counter() - started < 1.0


async def test_chunked_body_over_cap_is_cut_off(server: ImageServer) -> None:
    """A body with no declared length stops being read at the cap and the sender is cut off."""
    with pytest.raises(ImageFetchError, match="larger than 100000 bytes"):
        await fetch(server.url("/chunked-flood"), allow_hosts=LOOPBACK_ONLY, max_bytes=100_000)
    assert server.finished.wait(5)
    assert not server.body_completed


async def test_slow_drip_is_cut_at_the_total_deadline(server: ImageServer) -> None:
    """A sender trickling bytes faster than any per-read timeout still hits the one total deadline."""
    started = time.perf_counter()
    with pytest.raises(ImageFetchError, match="timed out after 1 s") as caught:
        await fetch(server.url("/drip"), allow_hosts=LOOPBACK_ONLY, timeout_s=1.0)
    assert 0.9 <= time.perf_counter() - started < 2.0
    assert caught.value.status_code == 400
    assert server.finished.wait(5)
    assert not server.body_completed


@pytest.mark.parametrize(("path", "status"), [("/missing.png", 404), ("/forbidden.png", 403)])
async def test_error_status_is_a_400_naming_the_part(server: ImageServer, path: str, status: int) -> None:
    """Remote 404/403 become a 400 ImageFetchError that names the part and the status."""
    with pytest.raises(ImageFetchError) as caught:
        await fetch(server.url(path), allow_hosts=LOOPBACK_ONLY)
    assert (caught.value.status_code, caught.value.param) == (400, PARAM)
    assert PARAM in caught.value.message and f"HTTP {status}" in caught.value.message


async def test_html_is_refused(server: ImageServer) -> None:
    """A text/html answer is not an image."""
    with pytest.raises(ImageFetchError, match="text/html"):
        await fetch(server.url("/page.html"), allow_hosts=LOOPBACK_ONLY)


async def test_octet_stream_is_left_to_the_decoder(server: ImageServer) -> None:
    """application/octet-stream is accepted when the bytes are an image."""
    assert (await fetch(server.url("/octet"), allow_hosts=LOOPBACK_ONLY)).format == "PNG"


async def test_compressed_body_is_refused(server: ImageServer) -> None:
    """A Content-Encoding the client did not ask for is refused rather than inflated."""
    with pytest.raises(ImageFetchError, match="compressed"):
        await fetch(server.url("/gzipped"), allow_hosts=LOOPBACK_ONLY)


async def test_connection_refused_is_a_quick_400(free_port: int) -> None:
    """Nothing listening gives a 400 at once, not a hang or a 5xx."""
    started = time.perf_counter()
    with pytest.raises(ImageFetchError, match="could not connect"):
        await fetch(f"http://127.0.0.1:{free_port}/image.png", allow_hosts=LOOPBACK_ONLY)
    assert time.perf_counter() - started < 1.0


async def test_unresolvable_host_is_a_quick_400() -> None:
    """A name that does not resolve gives a 400 within the deadline."""
    started = time.perf_counter()
    with pytest.raises(ImageFetchError) as caught:
        await fetch("http://nonexistent.invalid/cat.png")
    assert time.perf_counter() - started < 2.5
    assert caught.value.status_code == 400


async def test_remote_disabled_refuses_without_contact(server: ImageServer) -> None:
    """remote_enabled=False refuses even allow-listed hosts."""
    with pytest.raises(ImageSourceForbiddenError, match="disabled"):
        await fetch(server.url("/image.png"), allow_hosts=LOOPBACK_ONLY, remote_enabled=False)
    assert server.hits == []


async def test_too_many_images_are_refused_before_any_fetch(server: ImageServer) -> None:
    """Nine remote images against a cap of eight: a 400 and no request reaches the server."""
    loader = MediaLoader(MediaPolicy(allow_hosts=LOOPBACK_ONLY))
    items = [(server.url(f"/image.png?n={index}"), f"messages[0].content[{index}].image_url") for index in range(9)]
    with pytest.raises(InvalidRequestError, match="too many images"):
        await loader.load_all(items)
    await loader.aclose()
    assert server.hits == []


async def test_same_url_twice_is_fetched_once(server: ImageServer) -> None:
    """A URL repeated in one request costs one fetch."""
    loader = MediaLoader(MediaPolicy(allow_hosts=LOOPBACK_ONLY))
    url = server.url("/image.png")
    images = await loader.load_all([(url, "a"), (url, "b")])
    await loader.aclose()
    assert images[0] is images[1]
    assert len(server.hits) == 1


async def test_errors_name_the_host_but_not_the_url(server: ImageServer) -> None:
    """Messages may carry the host, never the path or query (which can hold tokens)."""
    with pytest.raises(ImageFetchError) as caught:
        await fetch(server.url("/missing.png?token=SECRET123"), allow_hosts=LOOPBACK_ONLY)
    assert "127.0.0.1" in caught.value.message
    assert "SECRET123" not in caught.value.message and "missing.png" not in caught.value.message
