"""continust: event-sourced, versioned state with a branching version graph.

Importing this package loads nothing else: the Celery app lives in
``continust.celery`` (workers start with ``celery -A continust.celery worker``),
and the code that sends tasks imports it from there.
"""
