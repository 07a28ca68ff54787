"""Settings come only from the environment, and a bad value stops the process loudly."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def clean_env(**env: str) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_URL", "CONTINUST_", "CELERY_"))
    }
    return {**base, "DJANGO_SETTINGS_MODULE": "continust.settings", **env}


def load(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); "
            "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])",
        ],
        env=clean_env(**env),
        capture_output=True,
        text=True,
    )


def run(args: list[str], timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=ROOT, env=clean_env(**env), capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG='maybe' is not a boolean"),
        (
            {"DJANGO_DEBUG": "1", "CONTINUST_MAX_PAYLOAD_BYTES": "lots"},
            "CONTINUST_MAX_PAYLOAD_BYTES='lots' is not an integer",
        ),
        ({"DJANGO_DEBUG": "1", "DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL must be postgres"),
        ({"DJANGO_DEBUG": "1", "DATABASE_URL": "nonsense"}, "DATABASE_URL"),
        (
            {"DJANGO_DEBUG": "1", "CONTINUST_API_RATE": "fast"},
            "CONTINUST_API_RATE='fast' is not a rate",
        ),
        ({"DJANGO_DEBUG": "1", "CONTINUST_API_RATE": "5/0min"}, "CONTINUST_API_RATE='5/0min'"),
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


def test_without_a_secret_key_one_is_generated_once_and_kept_private(tmp_path):
    first = run([sys.executable, "manage.py", "check"], CONTINUST_VAR_DIR=str(tmp_path))
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(key) >= 50
    show = [
        sys.executable,
        "-c",
        "import django; django.setup(); "
        "from django.conf import settings; print(settings.SECRET_KEY)",
    ]
    assert run(show, CONTINUST_VAR_DIR=str(tmp_path)).stdout.strip() == key
    given = run(show, CONTINUST_VAR_DIR=str(tmp_path), DJANGO_SECRET_KEY="from-the-env")
    assert given.stdout.strip() == "from-the-env"


def test_a_key_file_others_can_read_is_refused(tmp_path):
    (tmp_path / "secret_key").write_text("k" * 50)
    (tmp_path / "secret_key").chmod(0o644)
    done = run([sys.executable, "manage.py", "check"], CONTINUST_VAR_DIR=str(tmp_path))
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        f"ImproperlyConfigured: {tmp_path / 'secret_key'} is readable by others (mode 644): "
        f"chmod 600 {tmp_path / 'secret_key'}, or set DJANGO_SECRET_KEY"
    ]


BAD = {"DJANGO_DEBUG": "maybe"}
LINE = "ImproperlyConfigured: DJANGO_DEBUG='maybe' is not a boolean (use 1/0, true/false, yes/no)"


def test_a_bad_setting_is_one_line_from_manage_py(tmp_path):
    done = run([sys.executable, "manage.py", "migrate"], CONTINUST_VAR_DIR=str(tmp_path), **BAD)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [LINE]


def test_a_bad_setting_is_one_line_from_the_celery_worker(tmp_path):
    worker = [str(BIN / "celery"), "-A", "continust", "worker", "--pool=solo"]
    done = run(worker, CONTINUST_VAR_DIR=str(tmp_path), **BAD)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [LINE]


def test_a_bad_setting_stops_gunicorn_with_one_line(tmp_path):
    gunicorn = [str(BIN / "gunicorn"), "continust.wsgi", "--bind", "127.0.0.1:0", "--workers", "1"]
    done = run(gunicorn, CONTINUST_VAR_DIR=str(tmp_path), **BAD)
    assert done.returncode != 0  # the arbiter stops: the app failed to load
    assert LINE in done.stderr.splitlines()
    assert "Traceback" not in done.stderr


def postgres_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.skip("needs DATABASE_URL naming a PostgreSQL server")
    return url


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def drop(url: str, name: str) -> None:
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as server:
        server.execute(f'DROP DATABASE IF EXISTS "{name}"')


def test_migrate_creates_a_missing_postgresql_database(tmp_path):
    url = postgres_url()
    name = f"{os.environ.get('CONTINUST_TEST_DB', 'test')}_created_by_migrate"
    drop(url, name)
    env = {"DATABASE_URL": with_database(url, name), "CONTINUST_VAR_DIR": str(tmp_path)}
    try:
        other = run([sys.executable, "manage.py", "showmigrations", "continust"], **env)
        assert other.returncode == 1
        assert len(other.stderr.splitlines()) == 1
        assert f'database "{name}" does not exist' in other.stderr
        assert "manage.py migrate creates it" in other.stderr
        done = run([sys.executable, "manage.py", "migrate", "--plan"], **env)
        assert done.returncode == 0, done.stderr
        assert f'Created the PostgreSQL database "{name}"' in done.stdout
        again = run([sys.executable, "manage.py", "migrate", "--plan"], **env)
        assert again.returncode == 0 and "Created" not in again.stdout
    finally:
        drop(url, name)


def test_a_database_never_migrated_is_one_line(tmp_path):
    done = run(
        [sys.executable, "manage.py", "verify"], CONTINUST_VAR_DIR=str(tmp_path), DJANGO_DEBUG="1"
    )
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1
    assert "the database has no tables yet (run manage.py migrate)" in done.stderr
