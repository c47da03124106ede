"""Remote images over http(s), fetched without letting the URL choose the network.

Each hop is parsed, its host resolved once, and refused unless every address
is public or allow-listed; the connection then goes to a checked address (no
second lookup, so no DNS rebinding) with the original Host header and, for
https, SNI and certificate checks for the original host name. Redirects are
followed by hand so every hop is checked the same way, and one deadline bounds
the whole fetch.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import anyio
import httpx

from mmserve.errors import ImageError, ImageFetchError, ImageSourceForbiddenError
from mmserve.media._address import HostAllowlist, IPAddress, is_public, normalize_host, parse_ip_literal
from mmserve.media._policy import MediaPolicy

__all__ = ["HTTPSource", "resolve_host"]

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Servers that send these still let the decoder decide; anything else (HTML, JSON) is refused.
_OPAQUE_CONTENT_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
_MAX_URL_CHARS = 8192
_HEADERS = {
    "Accept": "image/*",
    # Raw bytes only: a compressed body could inflate far past the cap inside one chunk.
    "Accept-Encoding": "identity",
    "User-Agent": "mmserve",
}


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, in the resolver's order (lookup runs off the event loop)."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: dict[IPAddress, None] = {}
    for *_, sockaddr in infos:
        addresses[ipaddress.ip_address(sockaddr[0])] = None
    return list(addresses)


@dataclass(frozen=True)
class _Hop:
    """One checked request target: where the URL points and which addresses may be dialled."""

    scheme: str
    host: str  # canonical host name or address text
    port: int
    target: str  # path and query
    addresses: tuple[IPAddress, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    def url_for(self, address: IPAddress) -> str:
        # Dial the IPv4 address itself rather than its IPv4-mapped IPv6 form.
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        literal = f"[{address}]" if address.version == 6 else str(address)
        return f"{self.scheme}://{literal}:{self.port}{self.target}"


class HTTPSource:
    """Fetches images over http(s) within the policy's address, size and time limits."""

    def __init__(self, policy: MediaPolicy, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._policy = policy
        self._allowlist = HostAllowlist.parse(policy.allow_hosts)
        self._client = httpx.AsyncClient(
            verify=ssl_context if ssl_context is not None else True,
            # Environment proxies would dial on our behalf and undo the address checks.
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(policy.timeout_s),
            # Pooled connections are keyed by address only; reusing one across host names
            # would skip the certificate check for the second name.
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def fetch(self, url: str, *, param: str) -> bytes:
        """The body of ``url``, or an ``ImageError`` subclass naming ``param``."""
        if not self._policy.remote_enabled:
            raise ImageSourceForbiddenError(
                f"{param}: remote image URLs are disabled on this server; send the image as a data: URI",
                param=param,
            )
        host = _display_host(url)
        try:
            with anyio.fail_after(self._policy.timeout_s):
                return await self._follow(url, param)
        except TimeoutError:
            raise ImageFetchError(
                f"{param}: fetching the image from {host} timed out after {self._policy.timeout_s:g} s", param=param
            ) from None
        except httpx.InvalidURL:
            raise ImageError(f"{param}: malformed image URL", param=param) from None
        except httpx.HTTPError as exc:
            raise ImageFetchError(f"{param}: fetching the image from {host} failed", param=param) from exc

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    async def _follow(self, url: str, param: str) -> bytes:
        for _ in range(self._policy.max_redirects + 1):
            hop = await self._check(url, param)
            response = await self._send(hop, param)
            try:
                if response.status_code in _REDIRECT_STATUSES:
                    location = response.headers.get("location")
                    if not location:
                        raise ImageFetchError(f"{param}: {hop.host} sent a redirect without a location", param=param)
                    url = urljoin(url, location)
                    continue
                return await self._read_body(response, hop, param)
            finally:
                await response.aclose()
        raise ImageFetchError(
            f"{param}: the image URL redirected more than {self._policy.max_redirects} times", param=param
        )

    async def _check(self, url: str, param: str) -> _Hop:
        scheme, host, port, target = _split(url, param)
        try:
            literal = parse_ip_literal(host)
            if literal is None:
                # IDNA mapping can turn a name into an address (fullwidth digits), so parse again.
                literal = parse_ip_literal(normalize_host(host))
            name = str(literal) if literal is not None else normalize_host(host)
        except (ValueError, UnicodeError):
            raise ImageError(f"{param}: malformed image URL host", param=param) from None
        if literal is not None:
            addresses = [literal]
        elif (name == "localhost" or name.endswith(".localhost")) and name not in self._allowlist.names:
            addresses = [ipaddress.IPv4Address("127.0.0.1")]  # RFC 6761: always loopback, no lookup
        else:
            try:
                addresses = await resolve_host(name, port)
            except OSError:
                raise ImageFetchError(f"{param}: could not resolve the image host {name}", param=param) from None
            if not addresses:
                raise ImageFetchError(f"{param}: could not resolve the image host {name}", param=param)
        for address in addresses:
            if not (is_public(address) or self._allowlist.allows(name, address)):
                # The address is not echoed: it would tell the caller about internal DNS.
                raise ImageSourceForbiddenError(
                    f"{param}: image host {name} is not a public address; this server does not fetch from it",
                    param=param,
                )
        return _Hop(scheme=scheme, host=name, port=port, target=target, addresses=tuple(addresses))

    async def _send(self, hop: _Hop, param: str) -> httpx.Response:
        failure: httpx.TransportError | None = None
        for address in hop.addresses:
            request = self._client.build_request(
                "GET",
                hop.url_for(address),
                headers={**_HEADERS, "Host": hop.host_header},
                extensions={"sni_hostname": hop.host},
            )
            try:
                return await self._client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure = exc
        raise ImageFetchError(f"{param}: could not connect to the image host {hop.host}", param=param) from failure

    async def _read_body(self, response: httpx.Response, hop: _Hop, param: str) -> bytes:
        status = response.status_code
        if status >= 400:
            raise ImageFetchError(f"{param}: fetching the image from {hop.host} failed with HTTP {status}", param=param)
        if not 200 <= status < 300:
            raise ImageFetchError(f"{param}: unexpected HTTP {status} from {hop.host}", param=param)
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if not (media_type.startswith("image/") or media_type in _OPAQUE_CONTENT_TYPES):
            raise ImageFetchError(
                f"{param}: {hop.host} returned content type {media_type[:80]!r}, not an image", param=param
            )
        if response.headers.get("content-encoding", "identity").strip().lower() != "identity":
            raise ImageFetchError(f"{param}: {hop.host} returned a compressed body, which is not accepted", param=param)
        too_large = ImageFetchError(
            f"{param}: the image from {hop.host} is larger than {self._policy.max_bytes} bytes", param=param
        )
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._policy.max_bytes:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > self._policy.max_bytes:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)


def _split(url: str, param: str) -> tuple[str, str, int, str]:
    """Scheme, raw host, port and path+query of an http(s) URL; refuses credentials and odd characters."""
    # Whitespace, controls and backslashes are read differently by different URL parsers.
    if len(url) > _MAX_URL_CHARS or any(char.isspace() or ord(char) < 0x20 or char in "\\\x7f" for char in url):
        raise ImageError(f"{param}: malformed image URL", param=param)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ImageError(f"{param}: malformed image URL", param=param) from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ImageSourceForbiddenError(f"{param}: image URL scheme {scheme[:16]!r} is not allowed", param=param)
    if "@" in parts.netloc:
        raise ImageSourceForbiddenError(f"{param}: image URLs must not carry user credentials", param=param)
    if not parts.hostname:
        raise ImageError(f"{param}: image URL has no host", param=param)
    if port == 0:
        raise ImageError(f"{param}: malformed image URL", param=param)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, parts.hostname, port or _DEFAULT_PORTS[scheme], target


def _display_host(url: str) -> str:
    """The URL's host for messages; never the rest of the URL."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    return host[:100] if host else "the image host"
