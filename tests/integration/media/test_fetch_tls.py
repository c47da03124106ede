"""https fetches dial the checked address yet verify the certificate against the URL's host name."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mmserve.errors import ImageFetchError
from mmserve.media import MediaPolicy
from mmserve.media._fetch import HTTPSource

if TYPE_CHECKING:
    from tests.integration.media.conftest import ImageServer

pytestmark = pytest.mark.anyio

PARAM = "messages[0].content[0].image_url"
FakeDNS = Callable[[dict[str, list[str]]], list[str]]


def _certificate(subject: str, issuer: x509.Name, issuer_key: ec.EllipticCurvePrivateKey, public_key, *, ca: bool):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for images.test signed by it: (ca.pem, cert.pem, key.pem)."""
    directory = tmp_path_factory.mktemp("tls")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mmserve test CA")])
    ca_cert = _certificate("mmserve test CA", ca_name, ca_key, ca_key.public_key(), ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate("images.test", ca_name, ca_key, key.public_key(), ca=False)
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@pytest.fixture
def tls_server(tls_files: tuple[Path, Path, Path], start_server: Callable[..., ImageServer]) -> ImageServer:
    """An https image server on 127.0.0.1 presenting a certificate for images.test."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files[1], tls_files[2])
    return start_server("127.0.0.1", ssl_context=context)


@pytest.fixture
def client_context(tls_files: tuple[Path, Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_files[0]))


async def fetch(url: str, allow: str, context: ssl.SSLContext) -> bytes:
    source = HTTPSource(MediaPolicy(allow_hosts=(allow,), timeout_s=2.0), ssl_context=context)
    try:
        return await source.fetch(url, param=PARAM)
    finally:
        await source.aclose()


async def test_https_sends_sni_and_host_for_the_name_while_dialling_the_ip(
    tls_server: ImageServer, client_context: ssl.SSLContext, fake_dns: FakeDNS
) -> None:
    """The pinned IP is dialled; SNI, certificate check and Host all use images.test."""
    fake_dns({"images.test": ["127.0.0.1"]})
    body = await fetch(tls_server.url("/image.png", host="images.test"), "images.test", client_context)
    assert body.startswith(b"\x89PNG")
    assert tls_server.server_names == ["images.test"]
    assert tls_server.hits[0].headers["host"] == f"images.test:{tls_server.port}"


async def test_https_certificate_for_another_name_is_refused(
    tls_server: ImageServer, client_context: ssl.SSLContext, fake_dns: FakeDNS
) -> None:
    """A host whose address serves someone else's certificate fails verification: 400, no request sent."""
    fake_dns({"other.test": ["127.0.0.1"]})
    with pytest.raises(ImageFetchError, match="could not connect") as caught:
        await fetch(tls_server.url("/image.png", host="other.test"), "other.test", client_context)
    assert caught.value.status_code == 400
    assert tls_server.hits == []
