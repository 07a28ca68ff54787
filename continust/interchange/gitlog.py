"""Read the commits and branches of a git repository through the git command line.

Only the commit graph and each commit's small facts are read, never file
contents. Fields are separated by NUL bytes, which no name, e-mail or subject
can hold, so any text in them reads back as written.
"""

from __future__ import annotations

import subprocess
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from continust.core.errors import ContinustError

# The fields of one commit, in the order of GitCommit: id, parents, tree,
# author name, author e-mail, author time (seconds since the epoch), subject.
_FORMAT = "%H%x00%P%x00%T%x00%an%x00%ae%x00%at%x00%s"
_FIELD_COUNT = 7


class GitError(ContinustError):
    """git could not read a repository."""


@dataclass(frozen=True)
class GitCommit:
    """One commit: its id, its parents in git's order, and who made it when."""

    id: str
    parents: tuple[str, ...]
    tree: str
    author_name: str
    author_email: str
    author_time: str  # ISO 8601, UTC
    subject: str


def read_commits(path: str | Path, *, exclude: Collection[str] = ()) -> list[GitCommit]:
    """Return the commits reachable from any ref or HEAD, parents before children.

    Commits whose ids are in ``exclude`` (imported before, say) are left out;
    the parents of the others still name them.
    """
    output = _git(
        path,
        "log",
        "--all",
        "--topo-order",
        "--reverse",
        "--no-show-signature",
        "--no-mailmap",
        "--encoding=UTF-8",
        "-z",
        f"--format={_FORMAT}",
    )
    # -z ends each commit with a NUL too, so every field ends with one.
    fields = output.split(b"\0")[:-1]
    if len(fields) % _FIELD_COUNT:
        raise GitError(f"git log of {path} gave output that is not a list of commits")
    commits = []
    for start in range(0, len(fields), _FIELD_COUNT):
        commit = _parse_commit(fields[start : start + _FIELD_COUNT])
        if commit.id not in exclude:
            commits.append(commit)
    return commits


def read_branches(path: str | Path) -> dict[str, str]:
    """Return the commit id at the head of each branch (``refs/heads``), by branch name."""
    output = _git(path, "for-each-ref", "--format=%(refname)%00%(objectname)", "refs/heads/")
    branches = {}
    for line in output.decode("utf-8", errors="replace").splitlines():
        ref, _, commit = line.partition("\0")
        branches[ref.removeprefix("refs/heads/")] = commit
    return branches


def _parse_commit(fields: list[bytes]) -> GitCommit:
    commit, parents, tree, name, email, seconds, subject = (
        field.decode("utf-8", errors="replace") for field in fields
    )
    return GitCommit(
        id=commit,
        parents=tuple(parents.split()),
        tree=tree,
        author_name=name,
        author_email=email,
        author_time=datetime.fromtimestamp(int(seconds), UTC).isoformat(),
        subject=subject,
    )


def _git(path: str | Path, *args: str) -> bytes:
    """Run a git command in the repository at ``path`` and return what it printed."""
    # Grafts and replacements would change the parents that git shows.
    command = ["git", "--no-replace-objects", "-C", str(path), *args]
    try:
        done = subprocess.run(command, capture_output=True, check=False)
    except OSError as err:
        raise GitError(f"cannot run git to read {path}: {err}") from err
    if done.returncode:
        message = done.stderr.decode("utf-8", errors="replace").strip()
        raise GitError(f"git cannot read {path}: {message or f'exit {done.returncode}'}")
    return done.stdout
