"""Where buyer calls may go: the rules for buyers' ping and post URLs (docs/admin-api.md#buyer-urls).

Delivery sends each buyer the full lead, PII included, at the URL the buyer was given; a URL that
reached the exchange's own network (a cloud metadata service, Redis, an internal admin page) would
let whoever sets it read or act there. So a buyer URL is https, and every address its host resolves
to is a public one: not loopback, private (RFC 1918, unique local, shared), link-local (the cloud
metadata services among them), unspecified, multicast, or otherwise reserved. IPv6 forms that carry
an IPv4 address (IPv4-mapped, NAT64, 6to4) are judged by the IPv4 address they reach.

The rules apply twice: when a URL is set (`BuyerUrlRules.check`: the admin API and `leadx buyer
create`), and at every call, against the addresses the name resolves to then
(`BuyerUrlRules.address_refusal`, in delivery's resolver), since a name checked once can be pointed
elsewhere later (DNS rebinding).

`BUYER_URLS_ALLOW_PRIVATE=true` allows http and loopback and private addresses, for local
development and tests, whose buyers are HTTP servers on 127.0.0.1; production must not set it.
Link-local, metadata, unspecified, multicast and reserved addresses stay refused even then.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from leadx.platform.config import env_bool

ALLOW_PRIVATE_VARIABLE = "BUYER_URLS_ALLOW_PRIVATE"

# The codes a refused URL is answered with (docs/admin-api.md); a malformed one is FIELD_INVALID.
URL_INVALID = "FIELD_INVALID"
URL_NOT_HTTPS = "URL_NOT_HTTPS"
URL_ADDRESS_FORBIDDEN = "URL_ADDRESS_FORBIDDEN"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

LOOPBACK, PRIVATE, LINK_LOCAL, METADATA = "loopback", "private", "link-local", "metadata"
UNSPECIFIED, MULTICAST, RESERVED, NOT_AN_ADDRESS = "unspecified", "multicast", "reserved", "not an address"
DEVELOPMENT_KINDS = frozenset({LOOPBACK, PRIVATE})  # what BUYER_URLS_ALLOW_PRIVATE=true allows
DESCRIPTIONS = {
    LOOPBACK: "a loopback address",
    PRIVATE: "a private address",
    LINK_LOCAL: "a link-local address",
    METADATA: "a cloud metadata service's address",
    UNSPECIFIED: "an unspecified address",
    MULTICAST: "a multicast address",
    RESERVED: "a reserved address, not publicly routable",
    NOT_AN_ADDRESS: "not a canonical IP address",
}

# Cloud metadata services that are not link-local (AWS's IPv6 one is unique local, Alibaba's in the
# shared range): refused even with BUYER_URLS_ALLOW_PRIVATE, unlike the ranges they sit in.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192"))

# The first network an address is in names its kind (so ::1 comes before ::/8). An address in none
# that Python's tables call not global, or reserved, is RESERVED too (`address_kind`).
_NETWORKS: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.ip_network(network), kind) for network, kind in (
        ("0.0.0.0/8", UNSPECIFIED),  # "this network": connecting to 0.0.0.0 reaches the host itself
        ("127.0.0.0/8", LOOPBACK),
        ("10.0.0.0/8", PRIVATE), ("172.16.0.0/12", PRIVATE), ("192.168.0.0/16", PRIVATE),
        ("100.64.0.0/10", PRIVATE),  # shared address space (carrier-grade NAT), internal to a network
        ("169.254.0.0/16", LINK_LOCAL),
        ("224.0.0.0/4", MULTICAST),
        ("240.0.0.0/4", RESERVED),  # with the broadcast address
        # IETF protocol assignments, documentation, benchmarking, the old 6to4 relay: spelled out,
        # since Python's own tables of what is global differ between patch releases.
        ("192.0.0.0/24", RESERVED), ("192.0.2.0/24", RESERVED), ("198.18.0.0/15", RESERVED),
        ("198.51.100.0/24", RESERVED), ("203.0.113.0/24", RESERVED), ("192.88.99.0/24", RESERVED),
        ("::/128", UNSPECIFIED),
        ("::1/128", LOOPBACK),
        ("fc00::/7", PRIVATE),
        ("fe80::/10", LINK_LOCAL),
        ("fec0::/10", RESERVED),  # site-local, deprecated
        ("::/8", RESERVED), ("100::/64", RESERVED), ("2001::/23", RESERVED), ("2001:db8::/32", RESERVED),
        ("ff00::/8", MULTICAST),
    ))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one reaches, for the forms that carry one: IPv4-mapped
    (::ffff:a.b.c.d, which a dual-stack socket connects to over IPv4), NAT64's well-known prefix
    (64:ff9b::a.b.c.d) and 6to4 (2002:aabb:ccdd::)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def address_kind(address: IPAddress) -> str | None:
    """Which kind of non-public address this is (LOOPBACK, PRIVATE, ...), or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        address = ipaddress.IPv6Address(int(address))  # without a zone (fe80::1%eth0)
        inner = embedded_ipv4(address)
        if inner is not None:
            return address_kind(inner)
    if address in METADATA_ADDRESSES:
        return METADATA
    for network, kind in _NETWORKS:
        if address.version == network.version and address in network:
            return kind
    if not address.is_global or address.is_reserved:
        return RESERVED
    return None


def parse_address(text: str) -> IPAddress | None:
    """An IP address written as one (an IPv6 address without its brackets, a zone allowed), or None."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def looks_like_address(host: str) -> bool:
    """Whether an HTTP client takes this host for an address rather than a name to resolve
    (delivery's CheckedResolver's test, which is aiohttp's: digits and dots, or a colon). Such a
    host never reaches a resolver, so it is judged as written; one that does not parse as an address
    is refused."""
    return ":" in host or host.replace(".", "").isdigit()


def resolve_host(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for the host (raises OSError when it gives none)."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


@dataclass(frozen=True)
class Refusal:
    """An address buyer calls may not reach, and the name that resolved to it, if any."""

    address: str
    kind: str
    name: str = ""

    def __str__(self) -> str:
        if self.name:
            return f"{self.name} resolves to {self.address}, {DESCRIPTIONS[self.kind]}"
        return f"{self.address} is {DESCRIPTIONS[self.kind]}"


class BuyerUrlRefused(ValueError):
    """A buyer URL the rules refuse: `code` (URL_NOT_HTTPS, URL_ADDRESS_FORBIDDEN, FIELD_INVALID)
    and `field` (ping_url or post_url) say which rule and which URL."""

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(message)
        self.code, self.field = code, field


@dataclass(frozen=True)
class BuyerUrlRules:
    allow_private: bool = False  # http and loopback and private addresses: local development only

    @classmethod
    def from_env(cls) -> BuyerUrlRules:
        return cls(allow_private=env_bool(ALLOW_PRIVATE_VARIABLE, False))

    def address_refusal(self, address: str, name: str = "") -> Refusal | None:
        """Why a buyer call may not connect to this address (resolved from `name`, if given), or
        None when it may. Text that is no address at all is refused."""
        parsed = parse_address(address)
        kind = NOT_AN_ADDRESS if parsed is None else address_kind(parsed)
        if kind is None or (self.allow_private and kind in DEVELOPMENT_KINDS):
            return None
        return Refusal(address, kind, name)

    def host_refusal(self, host: str) -> Refusal | None:
        """For a host written as an address, why a call may not go there; None for a name (judged
        by the addresses it resolves to when called) and for an allowed address."""
        if not looks_like_address(host):
            return None
        return self.address_refusal(host.strip("[]"))

    def explain(self, refusal: Refusal) -> str:
        """What was refused and why, with the setting that would allow it, where one does."""
        hint = ("; BUYER_URLS_ALLOW_PRIVATE=true allows loopback and private addresses, for local development only"
                if refusal.kind in DEVELOPMENT_KINDS and not self.allow_private else "")
        return f"{refusal}; buyer calls go to public addresses only{hint}"

    def check(self, url: str, field: str, resolve: Callable[[str, int], list[str]] = resolve_host) -> None:
        """Raise BuyerUrlRefused unless `url` is one buyer calls may go to. A name that does not
        resolve now is let through (a buyer may set up its DNS after its account): every call
        checks the addresses again, and one to a refused address fails without sending anything."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        try:
            host, port = parts.hostname, parts.port
        except ValueError:  # a port that is not a number from 0 to 65535
            host, port = None, None
        if scheme not in ("http", "https") or not host:
            raise BuyerUrlRefused(URL_INVALID, field, f"{field} must be an http(s) URL with a host, not {url!r}")
        if scheme == "http" and not self.allow_private:
            raise BuyerUrlRefused(URL_NOT_HTTPS, field, f"{field} must be an https URL: pings and posts carry "
                                  f"consumers' data, which must not cross networks in clear ({url})")
        refusal = self.host_refusal(host)
        if refusal is None and not looks_like_address(host):
            try:
                addresses = resolve(host, port or (443 if scheme == "https" else 80))
            except (OSError, UnicodeError):
                addresses = []  # not resolvable now: checked at every call
            refusal = next(filter(None, (self.address_refusal(a, host) for a in addresses)), None)
        if refusal is not None:
            raise BuyerUrlRefused(URL_ADDRESS_FORBIDDEN, field, f"{field} {url} is refused: {self.explain(refusal)}")
