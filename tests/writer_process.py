"""A separate process that appends to a stream with expected heads and retries.

Kept free of Django imports at module level: spawned processes import it before
Django is set up.
"""

from __future__ import annotations

import os
import uuid
from typing import Any


def append_with_retries(db_name: str, writer: int, count: int, queue: Any) -> None:
    """Append ``count`` events, each retried on a moved head until it lands, and resent once."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "continust.settings_test"
    import django
    from django.conf import settings

    django.setup()
    settings.DATABASES["default"]["NAME"] = db_name
    from continust.core.errors import ConcurrencyConflict
    from continust.log.lookup import get_project, get_stream
    from continust.log.store import NewEvent, append
    from continust.models import Branch

    stream = get_stream(get_project("race"), "counter")
    conflicts = 0
    for n in range(count):
        event = NewEvent(type="tick", payload={f"w{writer}": n}, id=uuid.uuid4())
        while True:
            branch = Branch.objects.filter(stream=stream, name="main").first()
            try:
                append(stream, [event], expected_head=branch.head_id if branch else None)
                break
            except ConcurrencyConflict:
                conflicts += 1
        # A client that timed out does not know whether it landed: it sends it again.
        again = append(stream, [event])
        assert not again.created
    queue.put(conflicts)
