"""Who may read the operational pages: ``/metrics`` and the sandbox's ``/sandbox/``.

A request is judged by its TCP peer address and, for ``/metrics``, a bearer token:

- ``/metrics``: admitted when ``Authorization: Bearer <[metrics].bearer_token>`` matches (from any
  address), or when the peer is in ``[metrics].allow`` (addresses and CIDRs; by default loopback
  only, so a Prometheus on the same host scrapes without set-up);
- ``/sandbox/``: admitted from loopback only, unless ``[sandbox].allow_remote`` (any address).

A request that carries a forwarding header (``Forwarded``, ``X-Forwarded-*``, ``X-Real-IP``) came
through a reverse proxy: its peer is the proxy, often on this very host, and says nothing about the
client. Such a request is admitted by an address rule only when the rule admits every address of
its family (``0.0.0.0/0``, ``::/0``); the bearer token still admits it. A proxy that adds none of
these headers makes every client look local: do not route ``/metrics`` or ``/sandbox/`` through
such a proxy, or set a token and an empty ``allow``.

Refusals are 403 with a short Chinese line naming the config key. The callback path and
``/healthz`` are never gated.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from bot.config import MetricsConfig, SandboxConfig

__all__ = ["AccessRule", "Handler", "metrics_access", "sandbox_access"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

LOOPBACK: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
EVERYWHERE: tuple[Network, ...] = (
    ipaddress.ip_network("0.0.0.0/0"),
    ipaddress.ip_network("::/0"),
)
#: Headers a reverse proxy adds; their presence means the TCP peer is not the client.
_FORWARDING = ("forwarded", "x-real-ip")
_FORWARDING_PREFIX = "x-forwarded-"


@dataclass(frozen=True, slots=True)
class AccessRule:
    """Which requests may reach a page: by peer address, or by a bearer token."""

    networks: tuple[Network, ...]
    #: The 403 body (Chinese: it may be read in a browser).
    refusal: str
    #: Admits a request carrying ``Authorization: Bearer <token>`` from anywhere; "" = no token.
    token: str = field(default="", repr=False)

    def permits(self, peer: str | None, headers: Mapping[str, str]) -> bool:
        """Whether a request from ``peer`` (an IP address, None if unknown) may pass."""
        if self.token and _bearer_matches(headers.get("Authorization", ""), self.token):
            return True
        address = _address(peer)
        if address is None:
            return False
        if _proxied(headers):
            return any(n.prefixlen == 0 and n.version == address.version for n in self.networks)
        return any(address in n for n in self.networks if n.version == address.version)

    def guard(self, handler: Handler) -> Handler:
        """``handler``, answering 403 to a request this rule does not admit."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            # The socket's peer, taken when the connection opened (no middleware rewrites it).
            if not self.permits(request.remote, request.headers):
                raise web.HTTPForbidden(text=self.refusal)
            return await handler(request)

        return guarded


def metrics_access(config: MetricsConfig) -> AccessRule:
    """The rule for ``/metrics``: ``[metrics].allow`` and ``[metrics].bearer_token``."""
    return AccessRule(
        networks=tuple(ipaddress.ip_network(entry) for entry in config.allow),
        refusal="403：/metrics 只对 [metrics].allow 中的地址或带 [metrics].bearer_token 的请求开放",
        token=config.bearer_token,
    )


def sandbox_access(config: SandboxConfig) -> AccessRule:
    """The rule for ``/sandbox/``: loopback only, unless ``[sandbox].allow_remote``."""
    return AccessRule(
        networks=EVERYWHERE if config.allow_remote else LOOPBACK,
        refusal="403：发送沙箱只对本机开放（[sandbox].allow_remote = false）",
    )


def _address(peer: str | None) -> Address | None:
    if not peer:
        return None
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    except ValueError:
        return None  # a Unix socket: no address to judge
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack listener shows IPv4 peers as ::ffff:a.b.c.d
    return address


def _proxied(headers: Mapping[str, str]) -> bool:
    return any(
        name.lower() in _FORWARDING or name.lower().startswith(_FORWARDING_PREFIX)
        for name in headers
    )


def _bearer_matches(authorization: str, token: str) -> bool:
    scheme, _, given = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())
