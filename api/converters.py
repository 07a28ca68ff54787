"""Path converters for the API's URLs.

Stream names may contain "/" ("accounts/alice"), so a stream name takes every
path segment up to the operation's fixed suffix (``/events``, ``/versions``,
``/lineage/between``, ...). Every operation ends in a suffix that no other ends
in, so a URL names exactly one operation and one stream, whatever the name:
``streams/a/events/events`` lists the events of the stream ``a/events``. A
client may also percent-encode the slashes (``accounts%2Falice``); the server
decodes the path before it routes it, so both spellings reach the same stream.
"""

from __future__ import annotations

from django.urls import register_converter

from continust.core.parsing import NAME_PATTERN


class StreamNameConverter:
    """Match a stream name: one or more path segments, no white space or control character."""

    regex = NAME_PATTERN.strip("^$")

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(StreamNameConverter, "streamname")
