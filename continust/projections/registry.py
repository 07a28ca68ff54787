"""The registered projections: the built-in one and those the CONTINUST_PROJECTIONS setting names.

``CONTINUST_PROJECTIONS=name=dotted.path.Class,...``: each name (lower-case letters,
digits and underscores, at most 20, starting with a letter) runs the ``Projection``
subclass at the path for every project. A malformed entry stops the process with one
line (the settings check its shape). A path that does not import, or a class that is no
projection, is listed under its name all the same: running it fails with that error,
which the Projections page and ``projection list`` show, and the rest run on.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from continust.core.errors import ContinustError, NotFound
from continust.projections.base import Projection
from continust.projections.builtin import EventCounts

__all__ = ["all_names", "get", "projections"]

NAME = re.compile(r"^[a-z][a-z0-9_]{0,19}$")
TABLE = re.compile(r"^[a-z][a-z0-9_]{0,15}$")
BUILT_IN: dict[str, type[Projection]] = {EventCounts.name: EventCounts}

_loaded: dict[str, Projection] | None = None
_broken: dict[str, str] = {}


class BrokenProjection(ContinustError):
    """A registered projection whose class does not import or is no projection."""


def _check(name: str, cls: object, entry: str) -> Projection:
    if not isinstance(cls, type) or not issubclass(cls, Projection):
        raise ImproperlyConfigured(f"CONTINUST_PROJECTIONS entry {entry!r} is not a Projection")
    if not cls.tables:
        raise ImproperlyConfigured(f"CONTINUST_PROJECTIONS entry {entry!r} declares no tables")
    for table in cls.tables:
        if not TABLE.match(table):
            raise ImproperlyConfigured(
                f"projection {name}: table name {table!r} must be lower-case letters, digits"
                " and underscores, at most 16, starting with a letter"
            )
    return cls()


def _load() -> dict[str, Projection]:
    found: dict[str, Projection] = {name: cls() for name, cls in BUILT_IN.items()}
    _broken.clear()
    for entry in getattr(settings, "CONTINUST_PROJECTIONS", []):
        name, sep, path = entry.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not NAME.match(name) or not path:
            raise ImproperlyConfigured(
                f"CONTINUST_PROJECTIONS entry {entry!r} is not name=dotted.path (a name of"
                " lower-case letters, digits and underscores, at most 20)"
            )
        if name in found or name in _broken:
            raise ImproperlyConfigured(f"CONTINUST_PROJECTIONS names {name!r} twice")
        try:
            found[name] = _check(name, import_string(path), entry)
        except ImportError as err:
            _broken[name] = f"CONTINUST_PROJECTIONS entry {entry!r} does not import: {err}"
        except ImproperlyConfigured as err:
            _broken[name] = str(err)
    return found


def projections() -> dict[str, Projection]:
    """Every registered projection by name (loaded once per process)."""
    global _loaded
    if _loaded is None:
        _loaded = _load()
    return _loaded


def reload() -> dict[str, Projection]:
    """Read the setting again (after a test changes it)."""
    global _loaded
    _loaded = None
    return projections()


def all_names() -> list[str]:
    """Every registered name, broken ones included."""
    return sorted({*projections(), *_broken})


def get(name: str) -> Projection:
    """The projection registered as ``name``; ``BrokenProjection`` says why one cannot run."""
    found = projections()
    if name in _broken:
        raise BrokenProjection(_broken[name])
    try:
        return found[name]
    except KeyError:
        known = ", ".join(all_names())
        raise NotFound(f"no projection {name!r} is registered (known: {known})") from None
