"""Where an alert webhook may connect: its host resolved once, every answer checked.

A customer's URL must not reach the server's own network (server-side request forgery). Checking
a name and then letting the HTTP client resolve it again is not enough: a name with a zero TTL
can answer a public address to the check and 127.0.0.1 a moment later to the connection (DNS
rebinding). So :func:`resolve` answers the addresses once, checked, and the sender connects to
exactly those (``core.spend.channels.post_webhook`` pins them, keeping the host name for the
Host header and the TLS server name).

Refused (``TargetRefused``) when private targets are refused: every address that is not
globally routable — private, loopback, link-local, shared (CGNAT ``100.64.0.0/10``), multicast,
reserved, unspecified, documentation — and the IPv6 forms that carry an IPv4 address, judged by
the IPv4 address inside them: IPv4-mapped ``::ffff:0:0/96``, IPv4-compatible ``::/96``, NAT64
``64:ff9b::/96`` and 6to4 ``2002::/16`` (so ``64:ff9b::7f00:1`` is 127.0.0.1, refused, while the
NAT64 form of a public address, which DNS64 gives an IPv6-only server, is allowed). The
local-use NAT64 prefix ``64:ff9b:1::/48`` (its IPv4 may sit anywhere in it) and Teredo
``2001::/32`` (its client address is obfuscated, its relay is not ours) are refused whole.
A name that does not resolve raises ``TargetUnresolved``.
"""

from __future__ import annotations

import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_ADDRESSES = 3  # connection attempts per delivery attempt, each to a checked address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
_TEREDO = ipaddress.IPv6Network("2001::/32")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
# Not in the standard library's non-global tables on every Python this runs on.
_ALSO_REFUSED: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    ipaddress.IPv4Network("192.88.99.0/24"),  # 6to4 relay anycast: a tunnel to anywhere
    ipaddress.IPv6Network("fec0::/10"),  # site-local (deprecated, still routed inside some sites)
)


class TargetUnresolved(Exception):
    """The host name has no address (or the resolver failed)."""


class TargetRefused(Exception):
    """The host resolves to an address a webhook may not reach; ``address`` is for the server's log."""

    def __init__(self, address: IPAddress):
        super().__init__(f"refused address {address}")
        self.address = address


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a mapped, compatible, NAT64 or 6to4 address leads to; None for others."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def _globally_routable(address: IPAddress) -> bool:
    if not address.is_global or any(address in network for network in _ALSO_REFUSED):
        return False
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def allowed_address(address: IPAddress) -> bool:
    """Whether a webhook may connect to ``address`` when private targets are refused."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None or address in _NAT64_LOCAL_USE or address in _TEREDO:
            return False
        inner = embedded_ipv4(address)
        if inner is not None:
            return _globally_routable(inner)
    return _globally_routable(address)


def resolve(host: str, port: int, *, refuse_private: bool) -> tuple[IPAddress, ...]:
    """``host``'s addresses, looked up once, to connect to and nowhere else (at most ``MAX_ADDRESSES``).

    With ``refuse_private`` every answer is checked, not only the ones kept: a name that answers
    one private address among public ones is refused whole."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)  # the one lookup
    except (OSError, UnicodeError):
        raise TargetUnresolved(host) from None
    addresses: list[IPAddress] = []
    for info in infos:  # in the system's preferred order
        address = ipaddress.ip_address(info[4][0])
        if refuse_private and not allowed_address(address):
            raise TargetRefused(address)
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise TargetUnresolved(host)
    return tuple(addresses[:MAX_ADDRESSES])
