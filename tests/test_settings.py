"""Settings come only from the environment, and a bad value stops the process loudly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def load(**env: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_URL", "CONTINUST_", "CELERY_"))
    }
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); "
            "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])",
        ],
        env={**base, "DJANGO_SETTINGS_MODULE": "continust.settings", **env},
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG='maybe' is not a boolean"),
        ({"DJANGO_DEBUG": "0"}, "DJANGO_SECRET_KEY must be set"),
        (
            {"DJANGO_DEBUG": "1", "CONTINUST_MAX_PAYLOAD_BYTES": "lots"},
            "CONTINUST_MAX_PAYLOAD_BYTES='lots' is not an integer",
        ),
        ({"DJANGO_DEBUG": "1", "DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL must be postgres"),
        ({"DJANGO_DEBUG": "1", "DATABASE_URL": "nonsense"}, "DATABASE_URL"),
    ],
)
def test_a_bad_value_stops_the_process(env, message):
    done = load(**env)
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and message in done.stderr


def test_the_embedded_defaults_and_a_database_url(tmp_path):
    embedded = load(DJANGO_DEBUG="1", CONTINUST_VAR_DIR=str(tmp_path))
    assert embedded.stdout.strip() == "django.db.backends.sqlite3"
    postgres = load(DJANGO_DEBUG="1", DATABASE_URL="postgres://u@127.0.0.1:5432/db")
    assert postgres.stdout.strip() == "django.db.backends.postgresql"
