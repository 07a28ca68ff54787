from __future__ import annotations

import itertools
import os
import random
import subprocess

import pytest

from continust.graph.lineage import VersionGraph
from continust.interchange.gitlog import GitCommit, GitError, read_branches, read_commits


class Repository:
    """A git repository in a temporary directory, driven by the git command line."""

    def __init__(self, path):
        self.path = path
        path.mkdir()
        self.clock = 1_700_000_000
        self.git("init", "-q", "-b", "main")

    def git(self, *args, input=None, check=True, **env):
        self.clock += 60
        environment = {
            **os.environ,
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Alice",
            "GIT_AUTHOR_EMAIL": "alice@example.com",
            "GIT_AUTHOR_DATE": f"{self.clock} +0000",
            "GIT_COMMITTER_NAME": "Alice",
            "GIT_COMMITTER_EMAIL": "alice@example.com",
            "GIT_COMMITTER_DATE": f"{self.clock} +0000",
            **env,
        }
        done = subprocess.run(
            ["git", "-C", str(self.path), *args],
            input=input,
            env=environment,
            capture_output=True,
            text=True,
        )
        if check and done.returncode:
            raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
        return done.stdout.strip()

    def commit(self, *messages, **env):
        args = [arg for message in messages for arg in ("-m", message)]
        self.git("commit", "-q", "--allow-empty", "--allow-empty-message", *args, **env)
        return self.head()

    def merge(self, *branches, message):
        self.git("merge", "-q", "--no-ff", "--allow-unrelated-histories", "-m", message, *branches)
        return self.head()

    def merge_commit(self, branch, *parents, message):
        """Make a merge with commit-tree, whatever the branches hold, and move a branch to it."""
        tree = self.git("rev-parse", f"{parents[0]}^{{tree}}")
        merge = self.git("commit-tree", tree, *(f"-p{parent}" for parent in parents), "-m", message)
        self.git("update-ref", f"refs/heads/{branch}", merge)
        return merge

    def head(self):
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def history(tmp_path):
    r"""
    main:   A---B---C---------------O---U        O merges P, Q and R;
             \   \                 /|\  |        U merges the orphan S
    p q r:    \   \               P Q R |
    x:         \   X1---MX---X2         |        MX = X1 + Y1, MY = Y1 + X1
    y:          \    \ /                |
                 \    X                 |
                  \  / \                |
                   Y1---MY---Y2         |
    orphan:                    S1---S2--'
    lonely:                    L1                (a root never merged)
    """
    repo = Repository(tmp_path / "history")
    ids = {}
    ids["A"] = repo.commit("Ünïcödé — 日本語 ✓")
    ids["B"] = repo.commit(
        'tab\there | pipe %H %x00 "quoted"',
        "A body that is not part of the subject.",
        GIT_AUTHOR_NAME="Zoë Ångström",
        GIT_AUTHOR_EMAIL="zoe@example.org",
        GIT_AUTHOR_DATE="2024-02-29T23:30:00+02:00",
    )
    repo.git("branch", "y", ids["A"])
    repo.git("checkout", "-q", "-b", "x")
    ids["X1"] = repo.commit("x one")
    repo.git("checkout", "-q", "y")
    ids["Y1"] = repo.commit("")  # an empty subject
    ids["MX"] = repo.merge_commit("x", ids["X1"], ids["Y1"], message="criss")
    ids["MY"] = repo.merge_commit("y", ids["Y1"], ids["X1"], message="cross")
    repo.git("checkout", "-q", "-f", "x")
    ids["X2"] = repo.commit("x two")
    repo.git("checkout", "-q", "-f", "y")
    ids["Y2"] = repo.commit("line one\nline two")
    repo.git("checkout", "-q", "main")
    ids["C"] = repo.commit("c")
    for name in "PQR":
        repo.git("checkout", "-q", "-b", name.lower(), ids["C"])
        ids[name] = repo.commit(name.lower())
    repo.git("checkout", "-q", "main")
    ids["O"] = repo.merge("p", "q", "r", message="octopus")
    repo.git("checkout", "-q", "--orphan", "orphan")
    ids["S1"] = repo.commit("second root")
    ids["S2"] = repo.commit("s two")
    repo.git("checkout", "-q", "main")
    ids["U"] = repo.merge("orphan", message="unrelated")
    repo.git("checkout", "-q", "--orphan", "lonely")
    ids["L1"] = repo.commit("lonely root")
    repo.git("checkout", "-q", "main")
    return repo, ids


def parents_by_git(repo):
    lines = repo.git("rev-list", "--all", "--parents").splitlines()
    return {line.split()[0]: tuple(line.split()[1:]) for line in lines}


def load(commits):
    graph: VersionGraph[str] = VersionGraph()
    for commit in commits:
        graph.add(commit.id, commit.parents)
    return graph


def count(repo, *revisions):
    return int(repo.git("rev-list", "--count", *revisions))


def assert_agrees_with_git(repo, graph, commit_ids, pairs):
    for commit_id in commit_ids:
        assert graph.ancestor_count(commit_id) == count(repo, commit_id)
    for a, b in pairs:
        bases = repo.git("merge-base", "--all", a, b, check=False).split()
        assert set(graph.merge_bases(a, b)) == set(bases)
        assert graph.between_count(a, b) == count(repo, b, f"^{a}")
        assert graph.between_count(b, a) == count(repo, a, f"^{b}")


def test_it_reads_every_commit_with_its_parents_before_children(history):
    repo, _ = history

    commits = read_commits(repo.path)

    assert {commit.id: commit.parents for commit in commits} == parents_by_git(repo)
    assert len(commits) == len(parents_by_git(repo))
    seen = set()
    for commit in commits:
        assert set(commit.parents) <= seen
        seen.add(commit.id)


def test_it_keeps_merge_parents_in_gits_order(history):
    repo, ids = history

    commits = {commit.id: commit for commit in read_commits(repo.path)}

    assert commits[ids["O"]].parents == (ids["C"], ids["P"], ids["Q"], ids["R"])
    assert commits[ids["MX"]].parents == (ids["X1"], ids["Y1"])
    assert commits[ids["MY"]].parents == (ids["Y1"], ids["X1"])
    assert commits[ids["U"]].parents == (ids["O"], ids["S2"])
    assert {commit.id for commit in commits.values() if not commit.parents} == {
        ids["A"],
        ids["S1"],
        ids["L1"],
    }


def test_it_reads_names_and_subjects_as_written(history):
    repo, ids = history

    commits = {commit.id: commit for commit in read_commits(repo.path)}

    assert commits[ids["A"]].subject == "Ünïcödé — 日本語 ✓"
    assert commits[ids["B"]] == GitCommit(
        id=ids["B"],
        parents=(ids["A"],),
        tree=repo.git("rev-parse", f"{ids['B']}^{{tree}}"),
        author_name="Zoë Ångström",
        author_email="zoe@example.org",
        author_time="2024-02-29T21:30:00+00:00",
        subject='tab\there | pipe %H %x00 "quoted"',
    )
    assert commits[ids["Y1"]].subject == ""
    assert commits[ids["Y2"]].subject == "line one line two"
    assert commits[ids["A"]].author_name == "Alice"


def test_it_leaves_out_excluded_commits_but_keeps_their_ids_as_parents(history):
    repo, ids = history
    everything = read_commits(repo.path)
    imported = {commit.id for commit in everything[:8]}

    rest = read_commits(repo.path, exclude=imported | {"0" * 40})

    assert rest == everything[8:]
    graph = load(everything[:8])
    for commit in rest:
        graph.add(commit.id, commit.parents)
    assert len(graph) == len(everything)


def test_it_reads_the_head_of_each_branch(history):
    repo, ids = history

    branches = read_branches(repo.path)

    assert branches == {
        "main": ids["U"],
        "x": ids["X2"],
        "y": ids["Y2"],
        "p": ids["P"],
        "q": ids["Q"],
        "r": ids["R"],
        "orphan": ids["S2"],
        "lonely": ids["L1"],
    }


def test_it_agrees_with_git_on_merge_bases_and_counts(history):
    repo, ids = history
    graph = load(read_commits(repo.path))

    assert set(graph.merge_bases(ids["X2"], ids["Y2"])) == {ids["X1"], ids["Y1"]}
    commit_ids = list(parents_by_git(repo))
    assert_agrees_with_git(repo, graph, commit_ids, itertools.combinations(commit_ids, 2))


def test_it_agrees_with_git_on_a_random_history(tmp_path):
    rng = random.Random(7)
    repo = Repository(tmp_path / "random")
    stream = []
    tips = []
    for mark in range(1, 301):
        if not tips or rng.random() < 0.01:
            parents = []  # a new root
            stream.append("reset refs/heads/work")
        else:
            branch = rng.randrange(len(tips))
            others = [tip for tip in tips if tip != tips[branch]]
            merged = rng.sample(others, min(len(others), rng.choice([1, 1, 1, 2])))
            parents = [tips[branch], *merged] if rng.random() < 0.2 else [tips[branch]]
        stream += [
            "commit refs/heads/work",
            f"mark :{mark}",
            f"committer Bob <bob@example.com> {1_700_000_000 + mark} +0000",
            "data 0",
        ]
        stream += [f"from :{parents[0]}"] if parents else []
        stream += [f"merge :{parent}" for parent in parents[1:]]
        if not parents or rng.random() < 0.1:
            tips.append(mark)
        else:
            tips[tips.index(parents[0])] = mark
    stream += [
        line for n, tip in enumerate(tips) for line in (f"reset refs/heads/t{n}", f"from :{tip}")
    ]
    repo.git("fast-import", "--quiet", input="\n".join(stream) + "\n")

    commits = read_commits(repo.path)
    graph = load(commits)

    assert len(commits) == 300
    commit_ids = [commit.id for commit in commits]
    sample = random.Random(8)
    pairs = [tuple(sample.sample(commit_ids, 2)) for _ in range(80)]
    assert_agrees_with_git(repo, graph, sample.sample(commit_ids, 40), pairs)


def test_it_reads_an_empty_repository(tmp_path):
    repo = Repository(tmp_path / "empty")

    assert read_commits(repo.path) == []
    assert read_branches(repo.path) == {}


def test_it_refuses_a_directory_that_is_not_a_repository(tmp_path):
    with pytest.raises(GitError, match="not a git repository"):
        read_commits(tmp_path)


def test_it_refuses_a_missing_directory(tmp_path):
    with pytest.raises(GitError, match="cannot change to"):
        read_commits(tmp_path / "missing")
