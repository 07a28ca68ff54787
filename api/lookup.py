"""Who is calling and what the request names, in one query: the token, its user, and the
project and stream of the request's path, with the user's membership of that project.

An operation on a stream used to read these in three queries (token and user, membership
and project, stream), each planned anew. Here one statement reads them all; on
PostgreSQL it is prepared once per connection (bound on the server), elsewhere it runs
as plain SQL. Nothing is cached between requests: a revoked token, a membership taken
away or a role lowered is refused by the very next request.

The answer is only what the rows say; ``api.auth`` decides what they allow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Model
from django.http import HttpRequest

from api.models import ApiToken
from continust.core.database import preparing_cursor
from continust.core.errors import InvalidName
from continust.core.parsing import parse_slug, parse_stream_name
from continust.models import Membership, Project, Stream

M = TypeVar("M", bound=Model)

_MODELS: list[tuple[str, type[Model]]] = [
    ("t", ApiToken),
    ("u", get_user_model()),
    ("m", Membership),
    ("p", Project),
    ("s", Stream),
]


def _columns(alias: str, model: type[Model]) -> list[str]:
    return [f'{alias}."{f.column}"' for f in model._meta.concrete_fields]


def _table(model: type[Model]) -> str:
    return f'"{model._meta.db_table}"'


_TOKEN_PROJECTS = ApiToken.projects.through._meta
_TOKEN_PROJECT_TOKEN = _TOKEN_PROJECTS.get_field("apitoken").column
_TOKEN_PROJECT_PROJECT = _TOKEN_PROJECTS.get_field("project").column

# The project joins only when the token is scoped to it; the membership is the token's
# user's; the stream only within that project. A missing side is NULLs.
LOOKUP = f"""
SELECT {", ".join(c for alias, model in _MODELS for c in _columns(alias, model))}
FROM {_table(ApiToken)} t
JOIN {_table(get_user_model())} u ON u.id = t.user_id
LEFT JOIN {_table(Project)} p ON p.slug = %(slug)s AND EXISTS (
    SELECT 1 FROM "{_TOKEN_PROJECTS.db_table}" tp
    WHERE tp."{_TOKEN_PROJECT_TOKEN}" = t.id AND tp."{_TOKEN_PROJECT_PROJECT}" = p.id
)
LEFT JOIN {_table(Membership)} m ON m.project_id = p.id AND m.user_id = t.user_id
LEFT JOIN {_table(Stream)} s ON s.project_id = p.id AND s.name = %(name)s
WHERE t.prefix = %(prefix)s
"""

_WIDTHS = [len(model._meta.concrete_fields) for _, model in _MODELS]


@dataclass(frozen=True)
class Found:
    """What one lookup found: the token (with its user loaded), and for the path's project
    slug and stream name as the request gave them, the project the token is scoped to,
    the user's membership of it and the stream (None where there is none)."""

    token: ApiToken
    slug: str | None
    name: str | None
    project: Project | None
    membership: Membership | None
    stream: Stream | None


Converters = list[tuple[int, list[Any], Any]]

# By model, for the connection's vendor: (index, converters, column) of every column the
# ORM converts on the way in (SQLite's text dates and integer durations; none, here, on
# PostgreSQL).
_converters: dict[tuple[str, type[Model]], Converters] = {}


def _converters_of(model: type[Model]) -> Converters:
    key = (connection.vendor, model)
    if key not in _converters:
        found = []
        for index, field in enumerate(model._meta.concrete_fields):
            column = field.get_col(model._meta.db_table)
            converters = [
                *connection.ops.get_db_converters(column),
                *column.get_db_converters(connection),
            ]
            if converters:
                found.append((index, converters, column))
        _converters[key] = found
    return _converters[key]


def _loaded(model: type[M], values: tuple[Any, ...]) -> M | None:
    """The model instance of a row's columns, None for a side the join did not find; each
    value converted as the ORM converts it."""
    if values[0] is None:  # the primary key comes first
        return None
    converted = list(values)
    for index, converters, column in _converters_of(model):
        for converter in converters:
            converted[index] = converter(converted[index], column, connection)
    return model.from_db(connection.alias, _ATTNAMES[model], converted)


_ATTNAMES = {model: [f.attname for f in model._meta.concrete_fields] for _, model in _MODELS}


def _fetch(params: dict[str, str | None]) -> tuple[Any, ...] | None:
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(LOOKUP, params)
            row: tuple[Any, ...] | None = cursor.fetchone()
            return row
    connection.ensure_connection()
    with connection.wrap_database_errors, preparing_cursor() as cursor:
        cursor.execute(LOOKUP, params, prepare=True)
        return cursor.fetchone()


def _path_names(request: HttpRequest) -> tuple[str | None, str | None, str | None]:
    """The project slug and stream name the request's path gives, as given, and the
    stream name as stored; None where the path has none or no record could have it."""
    match = request.resolver_match
    kwargs = match.kwargs if match is not None else {}
    slug, name = kwargs.get("slug"), kwargs.get("name")
    if not isinstance(slug, str):
        return None, None, None
    try:
        parse_slug(slug)
    except InvalidName:
        return None, None, None
    if not isinstance(name, str):
        return slug, None, None
    try:
        return slug, name, parse_stream_name(name)
    except InvalidName:
        return slug, None, None


def look_up(request: HttpRequest, prefix: str) -> Found | None:
    """Read the token with this prefix and what the request's path names; None when no
    token has the prefix."""
    slug, given_name, name = _path_names(request)
    row = _fetch({"prefix": prefix, "slug": slug, "name": name})
    if row is None:
        return None
    parts: list[Any] = []
    start = 0
    for (_, model), width in zip(_MODELS, _WIDTHS, strict=True):
        parts.append(_loaded(model, tuple(row[start : start + width])))
        start += width
    token, user, membership, project, stream = parts
    token.user = user
    if project is not None and membership is not None:
        membership.project = project
    if stream is not None:
        stream.project = project
    return Found(
        token=token,
        slug=slug,
        name=given_name,
        project=project if membership is not None else None,
        membership=membership if project is not None else None,
        stream=stream if membership is not None else None,
    )


_ATTRIBUTE = "_continust_found"


def remember(request: HttpRequest, found: Found) -> None:
    """Keep what the request's lookup found for its operation (this request only)."""
    setattr(request, _ATTRIBUTE, found)


def recall(request: HttpRequest, slug: str) -> Found | None:
    """What this request's lookup found, when it looked up this project slug."""
    found: Found | None = getattr(request, _ATTRIBUTE, None)
    if found is None or found.slug is None or found.slug != slug:
        return None
    return found
