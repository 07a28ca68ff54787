"""The HTTP API: one django-ninja API, its spec at /api/openapi.json and docs at /api/docs.

``urlpatterns`` here is what ``continust.urls`` mounts under ``api/``: the
operations, the docs page's own assets, and a JSON 404 for every other path.
"""

from __future__ import annotations

from typing import Any

from django.urls import path, re_path
from ninja import NinjaAPI

from api import (
    converters,  # noqa: F401  (registers the stream name converter)
    docs,
    errors,
    routes_branches,
    routes_erasure,
    routes_integrity,
    routes_lineage,
    routes_log,
    routes_pipelines,
    routes_projects,
    routes_replays,
    routes_retention,
    routes_reviews,
    routes_revisions,
    routes_streams,
    routes_types,
    routes_webhooks,
)
from api.auth import BearerToken
from api.parsing import StrictJSONParser
from api.schemas import STORED_JSON, STORED_JSON_MARK, STORED_JSON_REF
from api.throttling import TokenRateThrottle
from continust.read.feed import TooManyFeeds
from continust.webhooks.targets import InvalidWebhook

DESCRIPTION = f"""\
Read and write continust's event log over HTTP.

Authenticate with a personal API token (the explorer's Tokens page):
`Authorization: Bearer ctn_...`. A token sees the projects it is scoped to
where its user is a member; every other project answers 404, exactly as a
project that does not exist. Writing needs a write-scoped token and the editor
role; opening, commenting on, ticking and deciding reviews need the reviewer role;
changing a retention policy, compacting, discarding a replay, changing the event-type
registry, encrypting a stream's personal data and erasing a data subject need the admin
role (403 otherwise). Reads (blame, verify, digest, export included) need membership only.
Each token may make `CONTINUST_API_RATE` requests (per web process); more answer 429
with `Retry-After`.

Stream names may contain `/`: `/api/projects/acme/streams/accounts/alice/events`
names the events of stream `accounts/alice`. Each operation ends in its own
fixed suffix, so a URL names exactly one stream; `%2F` works as well.

Every list is paged by cursor: `?after=<next>&limit=<n>` (at most 1000), and
answers the `next` cursor, null on the last page. A cursor is what the list is
ordered by (an id, a position or a name; for computed ranges, numbers joined by
dots), and its parameter's pattern says which cursors exist.

What a name may contain: numbers (ids, positions) are ASCII digits `0-9` within
PostgreSQL's bigint; a project slug is ASCII letters, digits, `-` and `_`; a
stream or branch name is 1 to 200 characters with no white space and no control
character (`/` is allowed); a version reference (an id, `v12`, a branch, a tag or a
key, with `~n`/`^n` steps as git's revisions: `main~3`) is 1 to 200 characters with
no control character, trimmed of white space at both ends. No string the log stores
may contain U+0000. Each parameter's
`pattern` and `maxLength` say the same; a value outside them is a 400.

Errors answer `{{"code", "detail"}}`:

{errors.STATUS_TABLE}"""


class ContinustAPI(NinjaAPI):
    """ninja's API, with the schema of stored JSON, which refers to itself, in the spec."""

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        spec = super().get_openapi_schema(*args, **kwargs)
        stack: list[Any] = [spec]
        while stack:
            node = stack.pop()
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, value in items:
                if value == STORED_JSON_MARK:
                    node[key] = {"$ref": STORED_JSON_REF}
                elif isinstance(value, dict | list):
                    stack.append(value)
        spec["components"]["schemas"]["StoredJSON"] = STORED_JSON
        return spec


api = ContinustAPI(
    title="continust",
    version="1",
    description=DESCRIPTION,
    auth=BearerToken(),
    parser=StrictJSONParser(),
    docs=docs.LocalSwagger(),
    urls_namespace="api",
    throttle=TokenRateThrottle(),
)
errors.install(api)
api.add_exception_handler(routes_projects.StreamExists, errors.simple_handler(409, "stream_exists"))
api.add_router("", routes_projects.router)
api.add_router("", routes_streams.router)
api.add_router("", routes_lineage.router)
api.add_router("", routes_retention.router)
api.add_router("", routes_erasure.router)
api.add_router("", routes_branches.router)
api.add_router("", routes_integrity.router)
api.add_router("", routes_replays.router)
api.add_router("", routes_reviews.router)
api.add_router("", routes_revisions.router)
routes_revisions.install(api)
api.add_router("", routes_log.router)
api.add_exception_handler(TooManyFeeds, errors.simple_handler(429, "too_many_feeds"))
api.add_router("", routes_webhooks.router)
api.add_router("", routes_types.router)
api.add_exception_handler(InvalidWebhook, errors.simple_handler(422, "invalid_webhook"))
api.add_router("", routes_pipelines.router)
routes_pipelines.install(api)

urlpatterns = [
    path("", api.urls),
    path("docs/assets/<str:name>", docs.asset, name="api-docs-asset"),
    re_path(r"^", errors.not_found),  # whatever is left, newlines included
]
