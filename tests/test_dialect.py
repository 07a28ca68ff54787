"""The domain asks continust/core/database.py which database is underneath; no other
domain module reads ``connection.vendor`` (migrations' triggers read their schema
editor's own connection)."""

from __future__ import annotations

from pathlib import Path

DOMAIN = Path(__file__).resolve().parent.parent / "continust"
ALLOWED = {"core/database.py", "log/triggers.py"}


def test_only_the_database_module_reads_the_vendor():
    readers = sorted(
        str(path.relative_to(DOMAIN))
        for package in DOMAIN.iterdir()
        if package.is_dir() and (package / "__init__.py").exists() and package.name != "migrations"
        for path in package.rglob("*.py")
        if "connection.vendor" in path.read_text(encoding="utf-8")
    )
    assert [r for r in readers if r not in ALLOWED] == []
    assert "core/database.py" in readers
