"""Settings for the test suite: the real settings with a throwaway secret key."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "insecure-test-key")
os.environ.setdefault("DJANGO_SECURE_COOKIES", "0")

from continust.settings import *  # noqa: F403

# Tests serve the sources as debug mode does; tests/browser/test_production.py runs the
# collected, hashed files behind gunicorn with the real settings.
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
WHITENOISE_AUTOREFRESH = True

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Several test runs may share one PostgreSQL server; each can name its own test database.
if os.environ.get("CONTINUST_TEST_DB"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["CONTINUST_TEST_DB"]}  # noqa: F405

# Tests marked "worker" start a real Celery worker (tests/worker.py) that must open the test
# database too: on SQLite it is a file, one per test run, instead of memory.
if str(DATABASES["default"]["ENGINE"]).endswith("sqlite3"):  # noqa: F405
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # noqa: F405
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")  # noqa: F405
    }
