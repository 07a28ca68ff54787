"""Which URLs a webhook may POST to: http(s), and only to public addresses (SSRF).

A webhook's URL is checked when it is registered and again before every attempt: the
host is resolved, and every address it resolves to must be public, not loopback,
private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local (169.254/16 with the cloud
metadata address, fe80::/10), shared (100.64/10), reserved, multicast or unspecified.
The attempt then connects to an address it checked, so a name that resolves to a public
address when checked and to a private one a moment later (DNS rebinding) reaches
nothing it should not. ``CONTINUST_WEBHOOK_ALLOW_PRIVATE=1`` lifts the address check
(for a receiver on the same host or network); the scheme check always holds.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from continust.core.errors import ContinustError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
URL_MAX = 2000


class InvalidWebhook(ContinustError):
    """A webhook that cannot be registered as asked: its URL, filters or secret."""


class TargetRefused(InvalidWebhook):
    """A URL whose host is, or resolves to, an address webhooks may not reach."""


class Unresolvable(TargetRefused):
    """A host that resolves to no address now (it may later)."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect and what to ask for."""

    scheme: str
    host: str  # as written, without brackets: the Host header and TLS name
    port: int
    path: str  # path and query
    addresses: tuple[Address, ...]

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return shown if self.port == default else f"{shown}:{self.port}"


def allow_private() -> bool:
    return bool(settings.CONTINUST_WEBHOOK_ALLOW_PRIVATE)


def split_url(url: str) -> tuple[str, str, int, str]:
    """Return the scheme, host, port and path of an http(s) URL; InvalidWebhook otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidWebhook("give the webhook's URL")
    if len(url) > URL_MAX:
        raise InvalidWebhook(f"a webhook URL has at most {URL_MAX} characters")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise InvalidWebhook("a webhook URL has no white space or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise InvalidWebhook(f"{url!r} is not a URL: {err}") from err
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidWebhook(f"a webhook URL is http:// or https://, not {scheme or 'none'}")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhook("a webhook URL carries no user name or password")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise InvalidWebhook(f"{url!r} names no host")
    if parts.fragment:
        raise InvalidWebhook("a webhook URL has no #fragment")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port or (443 if scheme == "https" else 80), path


def refusal(address: Address) -> str:
    """Why webhooks may not reach ``address`` ("" when they may)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "not a public address"
    return ""


def resolve(host: str, port: int) -> tuple[Address, ...]:
    """Every address ``host`` resolves to (itself when it is an address)."""
    try:
        return (ipaddress.ip_address(host),)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as err:
        raise Unresolvable(f"the host {host!r} does not resolve: {err}") from err
    found: list[Address] = []
    for info in infos:
        # The scope of a link-local IPv6 address ("fe80::1%eth0") is not part of it.
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in found:
            found.append(address)
    if not found:
        raise Unresolvable(f"the host {host!r} resolves to no address")
    return tuple(found)


def check(url: str) -> Target:
    """Return the URL's target, resolved now; TargetRefused unless every address may be
    reached (or ``CONTINUST_WEBHOOK_ALLOW_PRIVATE`` is on)."""
    scheme, host, port, path = split_url(url)
    addresses = resolve(host, port)
    if not allow_private():
        for address in addresses:
            why = refusal(address)
            if why:
                shown = host if str(address) == host else f"{host} resolves to {address},"
                raise TargetRefused(
                    f"{shown} {why}: webhooks reach only public addresses "
                    "(an administrator may allow others with CONTINUST_WEBHOOK_ALLOW_PRIVATE)"
                )
    return Target(scheme, host, port, path, addresses)
