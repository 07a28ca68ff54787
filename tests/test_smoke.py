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
    # pricing, two accounts, the ledger, the compacted sensor, the inventory and the audit
    # stream.
    assert "ok: 7 streams" in manage(tmp_path, "verify")
    long = manage(
        tmp_path,
        "lineage",
        "--project",
        "demo",
        "--stream",
        "inventory",
        "ancestors",
        "main",
        "--count",
    )
    assert int(long.strip()) >= 5000
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
    replays = json.loads(manage(tmp_path, "replay", "--project", "demo", "--list", "--json"))
    assert [r["status"] for r in replays] == ["done"]
    pipelines = json.loads(
        manage(tmp_path, "run_pipeline", "--project", "demo", "--list", "--json")
    )["pipelines"]
    assert [(p["name"], p["events"] > 5000) for p in pipelines] == [("stock-moves", True)]
    reviewed = manage(
        tmp_path,
        "shell",
        "-c",
        "from continust.audit import reviews; from continust.models import Review; "
        "print(sorted(reviews.statuses(list(Review.objects.all())).values()))",
    )
    assert reviewed.strip().splitlines()[-1] == "['approved']"


@pytest.mark.django_db
def test_the_explorer_answers(client, django_user_model):
    from django.core.management import call_command

    call_command("seed_demo", "--small", stdout=StringIO())
    client.force_login(django_user_model.objects.get(username="demo"))
    assert client.get("/p/demo/").status_code == 200
