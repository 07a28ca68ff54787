"""import_git: a git repository's commits as a stream's versions, one per commit.

Each commit becomes a ``git.commit`` event whose payload is the commit's small
facts, folded by the ``replace`` reducer into a version keyed by the commit id,
with the commit's parents in git's order. Branches follow the repository's
``refs/heads``. A re-run adds only the commits not imported yet.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from django.db import transaction

from continust.core.errors import InvalidEvent
from continust.interchange.gitlog import read_branches, read_commits
from continust.log import statistics
from continust.log.projects import create_stream
from continust.log.store import Batch, NewEvent, lock_stream, move_branch
from continust.models import Branch, Project, Stream, Version

if TYPE_CHECKING:
    from continust.log.store import _PlannedVersion

_NAMESPACE = uuid.UUID("6f1c8a3e-2b7d-4e59-9a0c-3d5e7f812a44")
# Git does not record the branch a commit was made on; its refs are imported as branches.
GIT_BRANCH = "git"


@dataclass(frozen=True)
class GitImport:
    """What an import added."""

    commits: int
    branches: int


def import_git(
    project: Project, path: str | Path, stream_name: str, *, actor: str = ""
) -> GitImport:
    """Import every commit reachable from any ref of the repository at ``path``."""
    stream = Stream.objects.filter(project=project, name=stream_name).first()
    if stream is None:
        stream = create_stream(project, stream_name, reducer="replace")
    if stream.reducer != "replace":
        raise InvalidEvent(
            f"stream {stream_name} folds with {stream.reducer}; git history needs a replace stream"
        )
    with transaction.atomic():
        stream = lock_stream(stream)
        by_key = {
            v.key: v
            for v in Version.objects.filter(stream=stream, key__isnull=False)
            if v.key is not None
        }
        commits = read_commits(path, exclude=set(by_key))
        batch = Batch(stream)
        batch.reserve(len(commits), len(commits))
        planned: dict[str, Version | _PlannedVersion] = dict(by_key)
        for commit in commits:
            payload = {
                "commit": commit.id,
                "tree": commit.tree,
                "parents": list(commit.parents),
                "author": commit.author_name,
                "email": commit.author_email,
                "time": commit.author_time,
                "subject": commit.subject,
            }
            event = batch.add_event(
                NewEvent(
                    type="git.commit",
                    payload=payload,
                    id=uuid.uuid5(_NAMESPACE, f"{project.slug}/{stream.name}/{commit.id}"),
                    timestamp=datetime.fromisoformat(commit.author_time),
                    actor=actor or commit.author_email,
                )
            )
            planned[commit.id] = batch.add_version(
                event,
                [planned[p] for p in commit.parents],
                payload,
                reducer="replace",
                reducer_version=1,
                branch=GIT_BRANCH,
                key=commit.id,
            )
        created = {v.key: v for v in batch.commit()}
        moved = 0
        for name, commit_id in read_branches(path).items():
            head = created.get(commit_id) or by_key.get(commit_id)
            if head is None:
                continue
            branch = Branch.objects.filter(stream=stream, name=name).first()
            if branch is None or branch.head_id != head.pk:
                move_branch(stream, name, head, reason="import_git", actor=actor)
                moved += 1
    statistics.refresh(len(commits))
    return GitImport(commits=len(commits), branches=moved)
