"""The explorer's Celery task: place a stream's new versions in the background.

A page that finds more new versions than it places before drawing asks for this
task through the outbox (`explorer.placement.request_placing`). It is idempotent:
a second delivery finds nothing left to place, or waits for the first one's lock
and places what is left.
"""

from __future__ import annotations

from continust.celery import app
from continust.models import Stream
from explorer.placement import TASK, place_new_versions


@app.task(name=TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def place_stream(stream_id: int) -> int:
    """Place every version of the stream not placed yet; return how many are placed."""
    stream = Stream.objects.filter(pk=stream_id).first()
    if stream is None:  # deleted since: nothing to place
        return 0
    return place_new_versions(stream).rows
