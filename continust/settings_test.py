"""Settings for the test suite: the real settings with a throwaway secret key."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("DJANGO_SECRET_KEY", "insecure-test-key")
os.environ.setdefault("DJANGO_SECURE_COOKIES", "0")

# Under pytest-xdist (scripts/test runs two processes) each process gets a directory of its
# own below the var directory: its SQLite test database and its filesystem broker live there.
# Set in the environment, so the Celery workers a test starts (tests/worker.py) use it too.
# pytest-django suffixes the test database names with the process (test_x_gw0, test_x_gw1).
_xdist_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _xdist_worker:
    _var = Path(
        os.environ.get("CONTINUST_VAR_DIR") or Path(__file__).resolve().parent.parent / "var"
    )
    if _var.name != f"xdist-{_xdist_worker}":  # not again in a subprocess of this one
        os.environ["CONTINUST_VAR_DIR"] = str(_var / f"xdist-{_xdist_worker}")

from continust.settings import *  # noqa: E402, F403

# Tests serve the sources as debug mode does; tests/browser/test_production.py runs the
# collected, hashed files behind gunicorn with the real settings.
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
WHITENOISE_AUTOREFRESH = True

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Several test runs may share one PostgreSQL server; each can name its own test database
# (under xdist, pytest-django adds the process: <name>_gw0, <name>_gw1).
if os.environ.get("CONTINUST_TEST_DB"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["CONTINUST_TEST_DB"]}  # noqa: F405

# Tests marked "worker" start a real Celery worker (tests/worker.py) that must open the test
# database too: on SQLite it is a file, one per test process, instead of memory.
if str(DATABASES["default"]["ENGINE"]).endswith("sqlite3"):  # noqa: F405
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # noqa: F405
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")  # noqa: F405
    }
