"""Where the timeline draws each version: rows and lanes, stored once per version.

The lane layout (``explorer.layout``) is computed bottom-up as versions arrive, so
a version's place never changes; storing it lets any page of a long history be
drawn from its own rows and the edges that touch it.
"""

from __future__ import annotations

from django.db import models

from continust.models import Stream, Version


class StreamLayout(models.Model):
    """The lane allocator's state for a stream, and the last version it placed."""

    stream = models.OneToOneField(
        Stream, primary_key=True, on_delete=models.CASCADE, related_name="layout"
    )
    allocator = models.JSONField(default=dict)
    last_version_id = models.BigIntegerField(default=0)


# The places are derived rows, written only by `explorer.placement` from ids it reads in
# the same transaction, and versions are never deleted: they hold no database
# constraint, whose checks at commit were 40% of placing a long stream (Django still
# deletes them with their stream).


class VersionPlace(models.Model):
    """A version's row (its index in the stream) and lane."""

    version = models.OneToOneField(
        Version,
        primary_key=True,
        on_delete=models.DO_NOTHING,
        related_name="place",
        db_constraint=False,
    )
    stream = models.ForeignKey(
        Stream, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    row = models.PositiveIntegerField()
    lane = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["stream", "row"], name="place_row_unique")]


class EdgePlace(models.Model):
    """A parent link's edge lane, with both ends' rows copied for the page queries."""

    stream = models.ForeignKey(
        Stream, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    child = models.ForeignKey(
        Version, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False
    )
    parent = models.ForeignKey(
        Version, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False
    )
    index = models.PositiveSmallIntegerField()
    lane = models.PositiveIntegerField()
    child_row = models.PositiveIntegerField()
    parent_row = models.PositiveIntegerField()
    child_lane = models.PositiveIntegerField()
    parent_lane = models.PositiveIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["stream", "child_row"], name="edge_child_row"),
            models.Index(fields=["stream", "parent_row"], name="edge_parent_row"),
            models.Index(fields=["stream", "lane", "child_row"], name="edge_lane_child_row"),
        ]
