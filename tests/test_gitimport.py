"""import_git: a repository with criss-cross and octopus merges and several roots, answered
as git answers it through the lineage command."""

from __future__ import annotations

import itertools
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from continust.audit.integrity import verify
from continust.log.projects import create_project
from continust.models import Branch, Version
from tests.test_gitlog import history  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


def test_it_answers_lineage_as_git_does(history):  # noqa: F811
    repo, ids = history
    create_project("acme")
    imported = json.loads(
        run("import_git", str(repo.path), "--project", "acme", "--stream", "repo", "--json")
    )
    assert imported["commits"] == len(ids)
    scope = ["--project", "acme", "--stream", "repo"]
    for commit in ids.values():
        assert run("lineage", *scope, "ancestors", commit, "--count") == repo.git(
            "rev-list", "--count", commit
        )
    for a, b in itertools.combinations(sorted(ids.values()), 2):
        ours = json.loads(run("lineage", *scope, "merge-bases", a, b, "--json"))
        keys = set(Version.objects.filter(pk__in=ours).values_list("key", flat=True))
        assert keys == set(repo.git("merge-base", "--all", a, b, check=False).split())
        assert run("lineage", *scope, "between", a, b, "--count") == repo.git(
            "rev-list", "--count", b, f"^{a}"
        )
    heads = dict(Branch.objects.filter(stream__name="repo").values_list("name", "head__key"))
    assert heads["main"] == ids["U"] and heads["lonely"] == ids["L1"]
    assert verify().ok


def test_it_adds_only_new_commits_on_a_rerun(history):  # noqa: F811
    repo, ids = history
    create_project("acme")
    args = ["import_git", str(repo.path), "--project", "acme", "--stream", "repo", "--json"]
    run(*args)
    assert json.loads(run(*args))["commits"] == 0
    new = repo.commit("one more")
    assert json.loads(run(*args))["commits"] == 1
    version = Version.objects.get(key=new)
    assert version.state.data["subject"] == "one more"
    parent = version.first_parent
    assert parent.key == ids["U"]


def test_it_refuses_a_path_that_is_no_repository(tmp_path):
    create_project("acme")
    with pytest.raises(CommandError, match="not a git repository|does not exist"):
        run("import_git", str(tmp_path), "--project", "acme", "--stream", "repo")
