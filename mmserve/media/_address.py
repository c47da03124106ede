"""Which hosts and addresses a remote image URL may reach.

Every spelling of an address meets the same check: hosts are read the way
browsers and libc read them (decimal, octal and hex IPv4, short forms such as
127.1, bracketed IPv6, trailing dots) before they are compared, and a name is
judged by every address it resolves to.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["HostAllowlist", "IPAddress", "is_public", "normalize_host", "parse_ip_literal"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Special-purpose ranges (IANA registries) plus multicast, which is_global lets through.
_FORBIDDEN_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",  # "this network", 0.0.0.0 included
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata at 169.254.169.254
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast included
        "::/8",  # unspecified, loopback, IPv4-compatible (mapped forms are unwrapped first)
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",
        "2001::/23",  # protocol assignments, Teredo included
        "2001:db8::/32",
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

_IPV4_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")
_NUMERIC_TAIL = re.compile(r"0[xX][0-9a-fA-F]*|[0-9]+")
_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def is_public(address: IPAddress) -> bool:
    """Whether ``address`` is an ordinary internet unicast address."""
    inner = embedded_ipv4(address)
    if inner is not None:
        return is_public(inner)
    if any(address in network for network in _FORBIDDEN_NETWORKS):
        return False
    return address.is_global and not address.is_multicast


def normalize_host(host: str) -> str:
    """The canonical ASCII form of a URL host name: lower case, IDNA, no trailing dot.

    Raises ``ValueError`` for hosts that are not valid names.
    """
    name = host.strip().lower().rstrip(".")
    if not name:
        raise ValueError("empty host")
    if not name.isascii():
        name = name.encode("idna").decode("ascii")
    if len(name) > 253 or not _NAME.fullmatch(name) or any(len(label) > 63 for label in name.split(".")):
        raise ValueError("invalid host name")
    return name


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a URL host spells, or ``None`` when the host is a name.

    Reads IPv4 the way browsers and ``inet_aton`` do (``2130706433``,
    ``0x7f.1``, ``0177.0.0.1``, ``127.1``). Raises ``ValueError`` for a host
    that looks like an address but is not a valid one.
    """
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        if "%" in host:
            raise ValueError("IPv6 zone identifiers are not accepted")
        return ipaddress.IPv6Address(host)
    return _parse_ipv4(host)


def _parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    parts = host.split(".")
    # As in the WHATWG URL standard: a host whose last label is a number is an address.
    if not _NUMERIC_TAIL.fullmatch(parts[-1]):
        return None
    if len(parts) > 4:
        raise ValueError("too many parts for an IPv4 address")
    numbers = [_parse_ipv4_part(part) for part in parts]
    if any(number > 255 for number in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise ValueError("IPv4 address out of range")
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _parse_ipv4_part(part: str) -> int:
    if not _IPV4_PART.fullmatch(part):
        raise ValueError("invalid IPv4 number")
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part[0] == "0":
        return int(part[1:], 8)
    return int(part, 10)


@dataclass(frozen=True)
class HostAllowlist:
    """Host names and networks that may be fetched although they are not public."""

    names: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> HostAllowlist:
        """Read entries such as ``"localhost"``, ``"127.0.0.1"``, ``"10.0.0.0/8"``, ``"[::1]"``.

        Raises ``ValueError`` naming the first entry that is neither a host name
        nor an address or network.
        """
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            try:
                if "/" in entry:
                    networks.append(ipaddress.ip_network(entry.strip().strip("[]"), strict=False))
                elif (address := parse_ip_literal(entry)) is not None:
                    networks.append(ipaddress.ip_network(address))
                else:
                    names.add(normalize_host(entry))
            except ValueError as exc:
                raise ValueError(f"invalid allow_hosts entry {entry!r}: {exc}") from None
        return cls(frozenset(names), tuple(networks))

    def allows(self, host: str, address: IPAddress) -> bool:
        """Whether ``host`` (canonical form) or ``address`` is on the list."""
        if host in self.names:
            return True
        candidates = [address]
        if (inner := embedded_ipv4(address)) is not None:
            candidates.append(inner)
        return any(candidate in network for candidate in candidates for network in self.networks)
