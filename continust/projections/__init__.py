"""Projections: read models a user keeps from a project's log, exactly once.

A projection is a class (``base.Projection``) that names the event types it handles
and the tables it writes, declared as SQL; it is registered by name in the
``CONTINUST_PROJECTIONS`` setting (``registry``), beside the one built in
(``builtin.EventCounts``: events per type per day, which the explorer's project page
reads). For every project a row (``continust.models.Projection``) remembers the
generation of its tables and its log position. A Celery task per projection and
project (``continust.projection_tasks``) runs it under a lease, one worker at a time,
and writes each batch's rows and the position after it in one transaction
(``runner``): a crash between batches neither loses nor repeats an event. A rebuild
fills the next generation of tables from position 0 and swaps it in atomically once
it has caught up (``control``).
"""
