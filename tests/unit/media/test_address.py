"""Host parsing, the public-address test and the allowlist."""

from __future__ import annotations

import ipaddress

import pytest

from mmserve.media._address import HostAllowlist, is_public, normalize_host, parse_ip_literal

LOOPBACK = ipaddress.IPv4Address("127.0.0.1")


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "2130706433", "0x7f000001", "0177.0.0.1", "127.1", "0x7f.1", "127.0.0.1.", "0x7F.0.0.1"],
)
def test_every_ipv4_spelling_of_loopback_reads_as_loopback(host: str) -> None:
    """Decimal, hex, octal, short and trailing-dot spellings all parse to 127.0.0.1."""
    assert parse_ip_literal(host) == LOOPBACK


def test_bracketed_ipv6_reads_as_address() -> None:
    """A bracketed IPv6 host parses to its address."""
    assert parse_ip_literal("[::1]") == ipaddress.IPv6Address("::1")


def test_names_are_not_addresses() -> None:
    """An ordinary host name is left for DNS."""
    assert parse_ip_literal("images.example.com") is None


@pytest.mark.parametrize("host", ["1.2.3.4.5", "256.0.0.1", "1.2.3.08", "0x7f.1.0xfffff", "4294967296", "fe80::1%eth0"])
def test_address_lookalikes_that_are_invalid_are_rejected(host: str) -> None:
    """Hosts that end in a number but are no valid address raise instead of going to DNS."""
    with pytest.raises(ValueError):
        parse_ip_literal(host)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "0.0.0.0",
        "10.1.2.3",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "198.18.0.1",
        "::",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a00:1",
        "2002:a00:1::",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "2001:db8::1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    """Loopback, private, link-local, metadata, CGNAT, multicast, reserved and embedded forms are not public."""
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_internet_addresses_are_public(address: str) -> None:
    """Ordinary internet unicast addresses pass."""
    assert is_public(ipaddress.ip_address(address))


def test_normalize_host_lowercases_and_strips_trailing_dot() -> None:
    """Host names compare in one canonical form."""
    assert normalize_host("Images.Example.COM.") == "images.example.com"


def test_normalize_host_rejects_odd_characters() -> None:
    """Characters that are not part of a DNS name are refused."""
    with pytest.raises(ValueError):
        normalize_host("exa mple.com")


def test_allowlist_cidr_opens_addresses_inside_it() -> None:
    """A CIDR entry allows any address in it, whatever the host name."""
    allowlist = HostAllowlist.parse(["10.0.0.0/8"])
    assert allowlist.allows("intranet", ipaddress.ip_address("10.9.8.7"))
    assert not allowlist.allows("intranet", ipaddress.ip_address("11.0.0.1"))


def test_allowlist_address_entry_covers_its_ipv4_mapped_form() -> None:
    """Allowing 127.0.0.1 also allows ::ffff:127.0.0.1, the same destination."""
    allowlist = HostAllowlist.parse(["127.0.0.1"])
    assert allowlist.allows("::ffff:7f00:1", ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not allowlist.allows("127.0.0.2", ipaddress.ip_address("127.0.0.2"))


def test_allowlist_name_entry_matches_the_host_name_only() -> None:
    """A name entry opens that host whatever it resolves to, and no other name."""
    allowlist = HostAllowlist.parse(["Localhost."])
    assert allowlist.allows("localhost", LOOPBACK)
    assert not allowlist.allows("127.0.0.1", LOOPBACK)


def test_allowlist_rejects_invalid_entries() -> None:
    """A malformed entry is a configuration error naming the entry."""
    with pytest.raises(ValueError, match="not a host"):
        HostAllowlist.parse(["not a host"])
