"""Which addresses a user-supplied URL may reach: public ones, plus an explicit allowlist.

Refused: private (RFC 1918, ULA), loopback, link-local (cloud metadata lives
there: 169.254.169.254), carrier-grade NAT (100.64/10, e.g. 100.100.100.200),
multicast, reserved, unspecified, and IPv6 forms that embed such an IPv4
address (mapped, 6to4, Teredo, NAT64).

Allowlist entries are `ADDRESS`, `CIDR`, `ADDRESS:PORT`, `CIDR:PORT` or `…:*`
(IPv6 in brackets: `[::1]:8080`). An entry without a port allows every port.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["AllowEntry", "is_public", "parse_allowlist", "refusal_reason"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_METADATA = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("169.254.170.2"),
    ipaddress.ip_address("100.100.100.200"),
    ipaddress.ip_address("fd00:ec2::254"),
}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


@dataclass(frozen=True, slots=True)
class AllowEntry:
    network: IPNetwork
    port: int | None

    def allows(self, address: IPAddress, port: int) -> bool:
        return address in self.network and (self.port is None or self.port == port)


def parse_allowlist(entries: Iterable[str]) -> tuple[AllowEntry, ...]:
    """Parse allowlist entries; a malformed one raises ValueError naming it."""
    parsed = []
    for raw in entries:
        text = raw.strip()
        if not text:
            continue
        host, port = text, None
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port = rest.removeprefix(":") or None
        elif text.count(":") == 1:
            host, port = text.split(":")
        try:
            network = ipaddress.ip_network(host, strict=False)
            number = None if port in (None, "*") else int(port)
        except ValueError as exc:
            raise ValueError(f"url_allowlist: {raw!r} is not ADDRESS|CIDR[:PORT|:*]") from exc
        parsed.append(AllowEntry(network, number))
    return tuple(parsed)


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal_reason(address: IPAddress) -> str | None:
    """Why `address` may not be reached, or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_v4(address)
        if inner is not None:
            reason = refusal_reason(inner)
            return f"embeds {inner}, which is {reason}" if reason else None
    if address in _METADATA:
        return "a cloud metadata address"
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT, "carrier-grade NAT"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "not globally routable"),
    )
    for hit, name in checks:
        if hit:
            article = "an" if name[0] in "aeiou" else "a"
            return f"{article} {name} address"
    return None


def is_public(address: IPAddress) -> bool:
    return refusal_reason(address) is None
