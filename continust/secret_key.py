"""The secret key a deployment keeps in its var directory when none is given.

Outside debug mode Django needs a secret key. When ``DJANGO_SECRET_KEY`` is not set,
one is generated once into ``$CONTINUST_VAR_DIR/secret_key``, readable by its owner
only (0600), and every later process (web, worker, command) reads the same file, so
sessions and tokens signed by one are valid in all of them.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

FILE_NAME = "secret_key"


def load_or_create(var_dir: Path) -> str:
    """Return the key stored under ``var_dir``, generating it first if there is none.

    Two processes starting at once agree: the key is written to a private temporary
    file and linked into place, and whoever links second reads the winner's key.
    """
    path = var_dir / FILE_NAME
    if not path.exists():
        _create(path)
    return _read(path)


def _create(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ImproperlyConfigured(_cannot(path, err)) from err
    temporary = path.with_name(f".{FILE_NAME}.{os.getpid()}")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(get_random_secret_key() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        # If another process stored its key first, everyone uses that one.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    except OSError as err:
        raise ImproperlyConfigured(_cannot(path, err)) from err
    finally:
        temporary.unlink(missing_ok=True)


def _read(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ImproperlyConfigured(
                f"{path} is readable by others (mode {stat.S_IMODE(mode):o}): "
                f"chmod 600 {path}, or set DJANGO_SECRET_KEY"
            )
        key = path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise ImproperlyConfigured(_cannot(path, err)) from err
    if not key:
        raise ImproperlyConfigured(f"{path} is empty: remove it or set DJANGO_SECRET_KEY")
    return key


def _cannot(path: Path, err: OSError) -> str:
    reason = err.strerror or str(err)
    return (
        f"DJANGO_SECRET_KEY is not set and {path} cannot be used ({reason}): "
        "set DJANGO_SECRET_KEY or CONTINUST_VAR_DIR to a writable directory"
    )
