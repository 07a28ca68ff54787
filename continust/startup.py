"""How a process stops on a bad setting: one line naming it, never a traceback.

``manage.py``, the Celery app and the WSGI entry point call :func:`settings_or_exit`
before anything else reads the settings, so a malformed variable prints
``ImproperlyConfigured: DJANGO_DEBUG='maybe' is not a boolean ...`` and the process
exits.
"""

from __future__ import annotations

import sys

from django.core.exceptions import ImproperlyConfigured

# gunicorn's arbiter stops on a worker that exits with its APP_LOAD_ERROR (4) instead of
# starting new workers that fail the same way forever.
GUNICORN_APP_LOAD_ERROR = 4


def settings_or_exit(status: int = 1) -> None:
    """Load Django's settings, or write one line to stderr and exit with ``status``."""
    from django.conf import settings

    try:
        settings.INSTALLED_APPS  # noqa: B018 - reading one setting loads them all
    except ImproperlyConfigured as err:
        sys.stderr.write("ImproperlyConfigured: " + " ".join(str(err).split()) + "\n")
        sys.stderr.flush()
        raise SystemExit(status) from None


def command_line(argv: list[str]) -> None:
    """Run a ``manage.py`` command; a bad setting or an unreachable database is one line."""
    settings_or_exit()
    from django.core.management import execute_from_command_line
    from django.db import OperationalError, ProgrammingError

    try:
        execute_from_command_line(argv)
    except (OperationalError, ProgrammingError) as err:
        if isinstance(err, ProgrammingError) and not unmigrated(err):
            raise
        sys.stderr.write(f"{type(err).__name__}: {database_problem(err)}\n")
        sys.stderr.flush()
        raise SystemExit(1) from None


def unmigrated(err: Exception) -> bool:
    """Whether the error says a table is missing: the database was never migrated."""
    text = str(err)
    return "no such table" in text or ("relation" in text and "does not exist" in text)


def database_problem(err: Exception) -> str:
    """The database driver's complaint in one line, with what to do when the database is
    missing."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    message = " ".join(lines) or type(err).__name__
    if unmigrated(err):
        message = lines[0] + ": the database has no tables yet (run manage.py migrate)"
    elif "does not exist" in message and "database" in message:
        message += " (manage.py migrate creates it, or create it with createdb)"
    return message
