"""A live change feed: a project's log as server-sent events (``text/event-stream``).

Each event goes out as one SSE message whose ``id`` is its log position (``T.P``), so a
client that reconnects sends it back as ``Last-Event-ID`` and goes on after it, with no
gap and no repeat (``continust.read.project_log`` guarantees the reads). When nothing
matching arrives for a while, a heartbeat goes out: a comment line, with the ``id`` of
where the feed has read up to, so a filtered client does not scan the same events again
when it reconnects.

A feed is bounded in every way that would otherwise grow without end:

- **Time.** A response ends after ``CONTINUST_FEED_SECONDS``; the client reconnects
  (``EventSource`` does it by itself, after the ``retry`` the feed sends first) and
  resumes from ``Last-Event-ID``. A web worker is thus held for at most that long, and a
  catch-up from far behind is spread over several responses.
- **Memory.** The feed reads one page at a time and writes it out before reading the
  next: nothing queues up for a slow client. A client that has not taken a frame for
  ``CONTINUST_FEED_SLOW_SECONDS`` (the server's write blocked that long) is dropped.
- **Database.** Between reads the feed gives its database connection back (outside a
  caller's transaction); on PostgreSQL it waits on one ``LISTEN`` connection of its own
  (``continust.read.wakeups``), closed when the response ends.
- **Count.** At most ``CONTINUST_FEED_MAX_OPEN`` feeds are open per holder (an API
  token or an explorer user), counted across processes in ``OpenFeed`` rows; one more is
  refused (``TooManyFeeds``, a 429).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from continust.core.database import on_postgresql, outside_transactions
from continust.core.errors import ContinustError
from continust.models import Event, OpenFeed, Project
from continust.read.project_log import LAST, START, LogEntry, LogFilter, LogPosition, read_log
from continust.read.records import event_record
from continust.read.wakeups import LogWakeups
from continust.schemas.registry import Registry, registry_of

# How long the client waits before reconnecting, sent first (milliseconds).
RETRY_MS = 1000
PAGE = 200
# An open feed's row outlives the response's time limit by this much, for a process that
# died without removing it.
GRACE = timedelta(seconds=30)


class TooManyFeeds(ContinustError):
    """A holder already has as many live feeds open as allowed."""


@dataclass(frozen=True)
class FeedLimits:
    """How long a response lasts, how often it beats, when a client is too slow."""

    seconds: float
    heartbeat: float
    slow: float
    page: int = PAGE

    @classmethod
    def from_settings(cls) -> FeedLimits:
        return cls(
            seconds=float(settings.CONTINUST_FEED_SECONDS),
            heartbeat=float(settings.CONTINUST_FEED_HEARTBEAT_SECONDS),
            slow=float(settings.CONTINUST_FEED_SLOW_SECONDS),
        )


def entry_record(entry: LogEntry, registry: Registry | None = None) -> dict[str, Any]:
    """An event of the log as the feed, the API and ``events`` print it: its record (its
    payload upcast with the project's ``registry``) and its log position."""
    return {"log_position": str(entry.at), **event_record(entry.event, registry)}


def message(entry: LogEntry, registry: Registry | None = None) -> str:
    """One SSE message: the event's record as JSON (in its type's newest shape with the
    project's ``registry``), its log position as the id."""
    data = json.dumps(entry_record(entry, registry), ensure_ascii=False, separators=(",", ":"))
    return f"id: {entry.at}\nevent: event\ndata: {data}\n\n"


def settled_end(project: Project) -> LogPosition:
    """A log position past every event of ``project`` settled now (as a caught-up read's
    ``next``), without reading them: where a page that shows the present starts its feed."""
    if on_postgresql():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            row = cursor.fetchone()
        return LogPosition(int(row[0]) - 1, LAST)
    newest = Event.objects.filter(project=project).order_by("-position").first()
    return LogPosition(0, newest.position) if newest is not None else START


def heartbeat(at: LogPosition) -> str:
    """A comment line (no event for the client) that also moves its Last-Event-ID on."""
    return f": heartbeat\nid: {at}\n\n"


def open_feed(holder: str, limits: FeedLimits, *, cap: int | None = None) -> OpenFeed:
    """Count a new feed for ``holder``; TooManyFeeds when it has ``cap`` open already.

    The row is written first and the count taken after, each committed on its own: two
    feeds opened at once both see each other, so the cap is never passed (at worst both
    are refused and their clients retry)."""
    cap = int(settings.CONTINUST_FEED_MAX_OPEN) if cap is None else cap
    now = timezone.now()
    OpenFeed.objects.filter(holder=holder, expires_at__lt=now).delete()
    lease = OpenFeed.objects.create(
        holder=holder, expires_at=now + timedelta(seconds=limits.seconds) + GRACE
    )
    open_now = OpenFeed.objects.filter(holder=holder, expires_at__gte=now, pk__lte=lease.pk)
    if open_now.count() > cap:
        lease.delete()
        raise TooManyFeeds(
            f"{cap} live feeds are open for this {holder.split(':')[0]} already "
            "(CONTINUST_FEED_MAX_OPEN); close one, or wait for one to end"
        )
    return lease


@dataclass
class Feed:
    """The frames of one response, as an iterator a streaming response sends; closing it
    (the server does when the response ends or the client goes) frees its place."""

    project: Project
    after: LogPosition
    where: LogFilter
    limits: FeedLimits
    lease: OpenFeed | None = None
    clock: Callable[[], float] = time.monotonic
    dropped: bool = field(default=False, init=False)
    _frames: Generator[str, None, None] | None = field(default=None, init=False)

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._frames is None:
            self._frames = self._run()
        try:
            return next(self._frames)
        except StopIteration:
            self.close()
            raise

    def close(self) -> None:
        if self._frames is not None:
            self._frames.close()
        if self.lease is not None:
            OpenFeed.objects.filter(pk=self.lease.pk).delete()
            self.lease = None
            _give_back_connection()

    def _run(self) -> Generator[str, None, None]:
        limits = self.limits
        deadline = self.clock() + limits.seconds
        yield f"retry: {RETRY_MS}\n\n"
        with LogWakeups(poll_seconds=min(1.0, limits.heartbeat)) as wakeups:
            quiet_since = self.clock()
            while True:
                with _readers():
                    page = read_log(self.project, self.after, limit=limits.page, where=self.where)
                    _give_back_connection()
                # The registry as of the project loaded when the feed opened (a cache hit).
                registry = registry_of(self.project)
                for entry in page.entries:
                    handed = self.clock()
                    yield message(entry, registry)
                    if not self._in_time(handed):
                        return
                    self.after = entry.at
                    quiet_since = self.clock()
                self.after = page.next
                now = self.clock()
                if now >= deadline:
                    return
                if not page.caught_up:
                    continue
                if now - quiet_since >= limits.heartbeat:
                    handed = self.clock()
                    yield heartbeat(self.after)
                    if not self._in_time(handed):
                        return
                    quiet_since = self.clock()
                    now = quiet_since
                wait = min(deadline - now, limits.heartbeat - (now - quiet_since))
                if wait > 0:
                    wakeups.wait(wait)

    def _in_time(self, sent: float) -> bool:
        """After a frame handed over at ``sent`` was taken: False (and ``dropped``) when
        the server's write blocked longer than a client may take."""
        if self.clock() - sent > self.limits.slow:
            self.dropped = True
            return False
        return True


_READERS: threading.BoundedSemaphore | None = None


def _readers() -> threading.BoundedSemaphore:
    """At most CONTINUST_FEED_READERS feeds of this process read the log at once: an append
    wakes every feed, and each read takes a database connection for its duration."""
    global _READERS
    if _READERS is None:
        _READERS = threading.BoundedSemaphore(settings.CONTINUST_FEED_READERS)
    return _READERS


def _give_back_connection() -> None:
    """Close this thread's database connection unless a caller's transaction holds it; the
    next read opens one again."""
    if outside_transactions():
        connection.close()
