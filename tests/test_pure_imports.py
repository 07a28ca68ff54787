"""The pure modules load neither Django nor Celery, their packages' __init__ included.

import-linter checks the modules' own import statements (the "Pure modules" contract
in pyproject.toml); this imports them for real, in a fresh interpreter, so an
``__init__`` on the way (``continust``, ``continust.pipelines``) that starts Celery or
reads the settings shows too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import importlib, json, os, pkgutil, sys

HEAVY = ("django", "celery", "kombu")
found = {}
for name in json.loads(sys.argv[1]):
    module = importlib.import_module(name)
    names = [name]
    if hasattr(module, "__path__"):  # a package: every module inside it
        names += [m.name for m in pkgutil.walk_packages(module.__path__, name + ".")]
    for each in names:
        importlib.import_module(each)
        heavy = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
        settings = os.environ.get("DJANGO_SETTINGS_MODULE")
        if heavy or settings:
            found[each] = {"loaded": heavy, "DJANGO_SETTINGS_MODULE": settings}
            break
    if found:
        break
print(json.dumps(found))
"""


def pure_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for contract in config["tool"]["importlinter"]["contracts"]:
        if contract["name"] == "Pure modules need neither Django nor Celery":
            return list(contract["source_modules"])
    raise AssertionError("pyproject.toml has no pure-modules contract")


def test_the_pure_modules_import_without_django_or_celery():
    modules = pure_modules()
    assert "continust.pipelines.windows" in modules
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(modules)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {}
