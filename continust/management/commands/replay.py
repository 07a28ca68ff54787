"""replay: start a replay, list replays, cancel or promote one.

replay --project P --stream S --to V [--from V|root] [--skip-type T ...]
       [--skip-event ID ...] [--until ISO] [--reducer-version N] [--upcast] [--wait]
replay --project P --list [--stream S]
replay --project P --cancel ID
replay --project P --promote ID
replay --project P --discard ID
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import CommandError, CommandParser

from continust.log.lookup import get_stream
from continust.management.base import ContinustCommand, Scope, number
from continust.models import Replay, ReplayStatus
from continust.replays import replay as replays

POLL_SECONDS = 0.5


class Command(ContinustCommand):
    help = (
        "Replay a range of a stream's events into a shadow branch replay/<id> (a Celery "
        "worker runs it); or list, cancel, promote or discard replays."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--stream", help="the stream's name (to start, or to filter --list)")
        actions = parser.add_mutually_exclusive_group()
        actions.add_argument("--list", action="store_true", help="list the replays and their state")
        actions.add_argument("--cancel", metavar="ID", help="cancel a replay")
        actions.add_argument(
            "--promote", metavar="ID", help="move the replayed branch to the replay's shadow head"
        )
        actions.add_argument(
            "--discard",
            metavar="ID",
            help="give up a finished, unpromoted replay's shadow branch: retention stops "
            "keeping its versions (recorded in the audit stream)",
        )
        parser.add_argument(
            "--from",
            dest="start",
            default=replays.ROOT,
            help="the version to start after: id, key, branch or root (default)",
        )
        parser.add_argument("--to", dest="end", help="the last version: id, key or branch")
        parser.add_argument(
            "--skip-type",
            action="append",
            default=[],
            metavar="TYPE",
            help="leave out events of this type (repeatable)",
        )
        parser.add_argument(
            "--skip-event",
            action="append",
            default=[],
            metavar="ID",
            help="leave out this event (repeatable)",
        )
        parser.add_argument("--until", help="leave out events after this ISO 8601 time")
        parser.add_argument(
            "--reducer-version",
            type=number,
            help="fold with this registered version of the stream's reducer",
        )
        parser.add_argument(
            "--upcast",
            action="store_true",
            help="fold each event in its type's newest registered shape (see `types`)",
        )
        parser.add_argument(
            "--wait", action="store_true", help="show progress until the replay has finished"
        )
        parser.add_argument("--actor", default="", help="who asks for it")

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        project = scope.the_project
        stream = get_stream(project, options["stream"]) if options["stream"] else None
        if options["list"]:
            found = replays.replays_of(project, stream)
            lines = [f"{r.pk}\t{r.stream.name}\t{replays.progress(r).line()}" for r in found]
            self.emit(
                options, [replays.replay_record(r) for r in found], "\n".join(lines) or "no replays"
            )
            return
        if options["cancel"]:
            replay = replays.cancel(
                replays.get_replay(project, options["cancel"]), actor=options["actor"]
            )
            self.emit(
                options,
                replays.replay_record(replay),
                f"replay {replay.pk}: {replays.progress(replay).label}"
                + (" (cancel requested)" if not replay.finished else ""),
            )
            return
        if options["promote"]:
            replay = replays.get_replay(project, options["promote"])
            branch = replays.promote(replay, actor=options["actor"])
            replay.refresh_from_db()
            self.emit(
                options,
                replays.replay_record(replay),
                f"promoted replay {replay.pk}: {branch.name} now points at version "
                f"{branch.head_id}",
            )
            return
        if options["discard"]:
            replay = replays.get_replay(project, options["discard"])
            done = replays.discard(replay, actor=options["actor"])
            self.emit(options, replays.replay_record(replay), done.done())
            return
        if stream is None or not options["end"]:
            raise CommandError(
                "starting a replay needs --stream and --to (or use --list, "
                "--cancel ID, --promote ID or --discard ID)"
            )
        for unknown in replays.unknown_types(stream, options["skip_type"]):
            self.stderr.write(f"warning: no event of stream {stream.name} has type {unknown!r}")
        replay = replays.start_replay(
            stream,
            start=options["start"],
            end=options["end"],
            skip_types=options["skip_type"],
            skip_events=options["skip_event"],
            until=_moment(options["until"]),
            reducer_version=options["reducer_version"],
            upcast=options["upcast"],
            actor=options["actor"],
        )
        if not options["wait"]:
            size = f"of {replay.total} versions " if replay.total else ""
            self.emit(
                options,
                replays.replay_record(replay),
                f"replay {replay.pk} {size}requested; it writes branch {replay.shadow_branch}",
            )
            return
        replay = self._wait(replay, quiet=options["json"])
        self.emit(options, replays.replay_record(replay), self._outcome(replay))
        if replay.status != ReplayStatus.DONE:
            raise CommandError(self._outcome(replay))

    def _wait(self, replay: Replay, *, quiet: bool) -> Replay:
        last = ""
        while True:
            replay.refresh_from_db()
            line = f"replay {replay.pk}: {replays.progress(replay).line()}"
            if line != last and not quiet:
                self.stdout.write(line)
                last = line
            if replay.finished:
                return replay
            time.sleep(POLL_SECONDS)

    @staticmethod
    def _outcome(replay: Replay) -> str:
        if replay.status == ReplayStatus.DONE:
            return (
                f"replay {replay.pk} done: {replay.written} versions written, "
                f"{replay.shadow_branch} at version {replay.shadow_head_id}"
            )
        if replay.status == ReplayStatus.FAILED:
            where = f" at event {replay.error_event}" if replay.error_event else ""
            return f"replay {replay.pk} failed{where}: {replay.error}"
        return f"replay {replay.pk} was {replay.status}"


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as err:
        raise CommandError(f"--until {text!r} is not an ISO 8601 time: {err}") from err
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
