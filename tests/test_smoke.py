"""The quick end-to-end check CI runs on the embedded defaults (SQLite, filesystem broker)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO

import pytest

pytestmark = pytest.mark.smoke


def manage(var_dir, *args):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "CONTINUST_TEST_DB"}
    }
    env.update(
        CONTINUST_VAR_DIR=str(var_dir),
        DJANGO_DEBUG="1",
        DJANGO_SETTINGS_MODULE="continust.settings",
    )
    return subprocess.run(
        [sys.executable, "manage.py", *args], env=env, capture_output=True, text=True, check=True
    ).stdout


def test_the_run_command_steps_work_on_the_embedded_defaults(tmp_path):
    manage(tmp_path, "migrate", "-v0")
    assert "seeded the demo project" in manage(tmp_path, "seed_demo")
    assert "already" in manage(tmp_path, "seed_demo")
    assert (tmp_path / "continust.sqlite3").exists()
    # pricing, two accounts, the ledger, the compacted sensor and the audit stream.
    assert "ok: 6 streams" in manage(tmp_path, "verify")
    bases = manage(
        tmp_path,
        "lineage",
        "--project",
        "demo",
        "--stream",
        "pricing",
        "merge-bases",
        "enterprise",
        "annual",
        "--json",
    )
    assert len(json.loads(bases)) == 2  # the demo's criss-cross


@pytest.mark.django_db
def test_the_explorer_answers(client, django_user_model):
    from django.core.management import call_command

    call_command("seed_demo", stdout=StringIO())
    client.force_login(django_user_model.objects.get(username="demo"))
    assert client.get("/p/demo/").status_code == 200
