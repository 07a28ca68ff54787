"""Typed readers for settings taken from the environment; bad values fail loudly."""

from __future__ import annotations

import ipaddress
import os
import re

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    """Return the variable's value, or the default when it is unset."""
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    """Return the variable as a boolean; refuse anything but the usual spellings."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no)")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    """Return the variable as an integer, at least ``minimum`` when given."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as err:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from err
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    """Return a comma-separated variable as a list of non-empty items."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_networks(
    name: str, default: list[str]
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Return a comma-separated variable of addresses or CIDR networks (``10.0.0.0/8``)."""
    networks = []
    for item in env_list(name, default):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as err:
            raise ImproperlyConfigured(f"{name}: {item!r} is not an address or network") from err
    return tuple(networks)


_RATE = re.compile(r"^([0-9]{1,9})/([0-9]{0,9})(s|sec|m|min|h|hour|d|day)$")


def env_rate(name: str, default: str) -> str | None:
    """Return the variable as a rate, ``N/period`` (``600/min``, ``10/s``, ``5000/2h``);
    None when it is ``0`` or ``off`` (no limit)."""
    raw = os.environ.get(name, default).strip()
    if raw.lower() in {"0", "off"}:
        return None
    found = _RATE.match(raw)
    if found is None or int(found.group(1)) < 1 or int(found.group(2) or 1) < 1:
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a rate: use N/s, N/min, N/h or N/day (0 or off: no limit)"
        )
    return raw
