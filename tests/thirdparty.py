"""A third party checking an audit report's export: an empty database, import, verify.

Runs ``manage.py`` in a subprocess against a fresh SQLite file, exactly as the report's
"how anyone can check it" steps say, and returns what ``verify --json`` printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


_templates: dict[str, Path] = {}


def _environment(workdir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "CONTINUST_", "DJANGO_"))
    }
    env.update(
        DJANGO_DEBUG="1",
        CONTINUST_VAR_DIR=str(workdir),
        DATABASE_URL=f"sqlite:///{workdir / 'check.sqlite3'}",
    )
    return env


def _empty_database(slug: str, workdir: Path) -> None:
    """Put a migrated database with an empty project in workdir (made once, then copied)."""
    if slug not in _templates:
        template = Path(tempfile.mkdtemp(prefix="continust-check-"))
        env = _environment(template)
        for args in (("migrate", "-v0"), ("create_project", slug)):
            done = manage(env, *args)
            assert done.returncode == 0, done.stderr
        _templates[slug] = template / "check.sqlite3"
    shutil.copyfile(_templates[slug], workdir / "check.sqlite3")


def check_export(export: bytes, slug: str, workdir: Path) -> dict[str, Any]:
    """Import the export into an empty database and verify it; return verify's JSON plus
    the file's SHA-256 (and the import's error, if it refused the file)."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "export.jsonl"
    path.write_bytes(export)
    _empty_database(slug, workdir)
    env = _environment(workdir)
    imported = manage(env, "import_jsonl", str(path), "--project", slug)
    result: dict[str, Any] = {"sha256": hashlib.sha256(export).hexdigest()}
    if imported.returncode != 0:
        result["import_error"] = imported.stderr.strip()
        return result
    verified = manage(env, "verify", "--project", slug, "--json")
    assert verified.returncode == 0, verified.stderr
    result.update(json.loads(verified.stdout))
    return result
