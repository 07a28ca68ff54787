"""The HTTP API: one django-ninja API, its spec at /api/openapi.json and docs at /api/docs.

``urlpatterns`` here is what ``continust.urls`` mounts under ``api/``: the
operations, the docs page's own assets, and a JSON 404 for every other path.
"""

from __future__ import annotations

from django.urls import path, re_path
from ninja import NinjaAPI

from api import (
    converters,  # noqa: F401  (registers the stream name converter)
    docs,
    errors,
    routes_lineage,
    routes_projects,
    routes_retention,
    routes_streams,
)
from api.auth import BearerToken
from api.pagination import BadCursor
from api.parsing import StrictJSONParser

DESCRIPTION = f"""\
Read and write continust's event log over HTTP.

Authenticate with a personal API token (the explorer's Tokens page):
`Authorization: Bearer ctn_...`. A token sees the projects it is scoped to
where its user is a member; every other project answers 404, exactly as a
project that does not exist. Writing needs a write-scoped token and the editor
role; changing a retention policy and compacting need the admin role (403
otherwise).

Stream names may contain `/`: `/api/projects/acme/streams/accounts/alice/events`
names the events of stream `accounts/alice`. Each operation ends in its own
fixed suffix, so a URL names exactly one stream; `%2F` works as well.

Every list is paged by cursor: `?after=<next>&limit=<n>` (at most 1000), and
answers the `next` cursor, null on the last page.

Errors answer `{{"code", "detail"}}`:

{errors.STATUS_TABLE}"""

api = NinjaAPI(
    title="continust",
    version="1",
    description=DESCRIPTION,
    auth=BearerToken(),
    parser=StrictJSONParser(),
    docs=docs.LocalSwagger(),
    urls_namespace="api",
)
errors.install(api)
api.add_exception_handler(BadCursor, errors.simple_handler(400, "invalid_cursor"))
api.add_exception_handler(routes_projects.StreamExists,
                          errors.simple_handler(409, "stream_exists"))
api.add_router("", routes_projects.router)
api.add_router("", routes_streams.router)
api.add_router("", routes_lineage.router)
api.add_router("", routes_retention.router)

urlpatterns = [
    path("", api.urls),
    path("docs/assets/<str:name>", docs.asset, name="api-docs-asset"),
    re_path(r"^", errors.not_found),  # whatever is left, newlines included
]
