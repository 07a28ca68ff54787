"""The pipelines' settings: Django's setting when the project defines it, else the environment.

Every value goes through ``continust.env`` and fails loudly when malformed.
"""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from continust.env import env_int, env_list, env_str


def number(name: str, default: int, *, minimum: int = 0) -> int:
    """Return the integer setting ``name``."""
    value = getattr(settings, name, None)
    if value is None:
        return env_int(name, default, minimum=minimum)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ImproperlyConfigured(f"{name}={value!r} must be an integer of at least {minimum}")
    return value


def names(name: str) -> list[str]:
    """Return the list setting ``name`` (comma separated in the environment)."""
    value = getattr(settings, name, None)
    if value is None:
        return env_list(name, [])
    return [str(item) for item in value]


def lease_seconds() -> int:
    """How long a claim lasts without a heartbeat (CONTINUST_PIPELINE_LEASE_SECONDS)."""
    return number("CONTINUST_PIPELINE_LEASE_SECONDS", 30, minimum=2)


def poll_ms() -> int:
    """How long a caught-up source waits before reading the log again."""
    return number("CONTINUST_PIPELINE_POLL_MS", 500, minimum=10)


def slice_seconds() -> int:
    """How long one Celery delivery runs before it hands over to a fresh message (0: forever)."""
    return number("CONTINUST_PIPELINE_SLICE_SECONDS", 600, minimum=0)


def resend_seconds() -> int:
    """After how long a pipeline nobody claimed is sent to the broker again."""
    return number("CONTINUST_PIPELINE_RESEND_SECONDS", 60, minimum=1)


def epoch_delay_ms() -> int:
    """A pause after each committed epoch (tests use it to kill a worker mid-run)."""
    return number("CONTINUST_PIPELINE_EPOCH_DELAY_MS", 0, minimum=0)


def modules() -> list[str]:
    """Modules that register pipelines, imported with the registry (CONTINUST_PIPELINES)."""
    return names("CONTINUST_PIPELINES")


def files_dir() -> Path:
    """Where JSON Lines sinks write, a directory per project (CONTINUST_PIPELINE_FILES_DIR)."""
    value = getattr(settings, "CONTINUST_PIPELINE_FILES_DIR", None)
    if value is None:
        value = env_str(
            "CONTINUST_PIPELINE_FILES_DIR", str(Path(settings.VAR_DIR) / "pipeline-files")
        )
    return Path(value)


# A table a pipeline's table sink may name (the spec's TABLE_PATTERN, kept here so the
# setting is read without the specs module).
TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def adopt_tables() -> frozenset[str]:
    """Existing tables continust did not create that a pipeline may take as its sink
    (CONTINUST_PIPELINE_ADOPT_TABLES, comma separated); a malformed name fails loudly."""
    listed = names("CONTINUST_PIPELINE_ADOPT_TABLES")
    bad = [name for name in listed if not TABLE_NAME.match(name)]
    if bad:
        raise ImproperlyConfigured(
            f"CONTINUST_PIPELINE_ADOPT_TABLES: {', '.join(map(repr, bad))} is not a table name "
            "a pipeline can write (lower-case letters, digits and _, at most 63)"
        )
    return frozenset(listed)
