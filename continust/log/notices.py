"""The log's notification channel, and the wake-up a writer sends after its commit.

Every statement that appends events notifies channel ``continust_log`` with the
project's id (the event trigger, migration 0015), so followers of the log
(``continust.read.wakeups``) wait on ``LISTEN`` instead of polling. PostgreSQL commits
transactions that notified one at a time, each holding the notification queue's lock
through its sync to disk; so the one-statement append (``continust.log.linear``) asks the
trigger to stand aside for its own transaction (migration 0025) and wakes the followers
after its commit, in a transaction of its own that need not wait for the disk: a
wake-up is a hint, and a lost one costs a follower one read, never an event.
"""

from __future__ import annotations

import logging

import psycopg

CHANNEL = "continust_log"
# Set for the statement's own transaction (set_config(..., true)): the trigger leaves the
# notification to the writer.
WAKE_AFTER_COMMIT = "set_config('continust.wake_after_commit', 'on', true)"

log = logging.getLogger(__name__)


def wake(raw: psycopg.Connection[object], project_id: int) -> None:
    """Notify the log's followers that ``project_id`` grew, after the write committed;
    a failure is logged, never raised (the write stands)."""
    # One simple query, one round trip; the id is an int, so it is written in as it is.
    text = (
        "BEGIN; SET LOCAL synchronous_commit = off; "
        f"SELECT pg_notify('{CHANNEL}', '{int(project_id)}'); COMMIT"
    )
    try:
        with psycopg.Cursor(raw) as cursor:
            cursor.execute(text)
    except psycopg.Error as err:
        log.warning("could not wake the log's followers of project %s: %s", project_id, err)
