"""``GET /metrics``: Prometheus's text format, for a scraper the operator allows.

Who may scrape: a request from an address in ``CONTINUST_METRICS_NETWORKS`` (by default
this machine only), or one carrying ``Authorization: Bearer <CONTINUST_METRICS_TOKEN>``
when that token is set. Anyone else gets a 404, as for a page that does not exist.

A request a proxy passed on (it carries ``X-Forwarded-For``, ``Forwarded``,
``X-Real-IP`` or ``X-Forwarded-Proto/Host/Port``) comes from the proxy's address, which
behind a TLS proxy on the same host is loopback for every client: so its address counts
only when ``CONTINUST_PROXY_COUNT`` says how many trusted proxies append to
``X-Forwarded-For``, and then the client's address that the outermost of them recorded
must be allowed as well as the proxy's. Otherwise it needs the token.

What it serves: the log's figures, read from the database at each scrape
(``continust.metrics``), and this server's own: HTTP requests by route and status
class, and their durations. Under gunicorn each worker process counts its own
requests; set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory shared by the workers
and the scrape adds them up (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from collections.abc import Callable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from continust.metrics import LogCollector

REQUESTS = Counter(
    "continust_http_responses",
    "HTTP responses, by route pattern, method and status class (5xx: server errors).",
    ["route", "method", "status"],
)
DURATION = Histogram(
    "continust_http_request_seconds",
    "Time to answer an HTTP request, by route pattern and method (the event append is "
    "POST api/projects/<slug>/streams/<name>/events).",
    ["route", "method"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0),
)


class RequestMetrics:
    """Count every response and time it, labelled by the URL pattern (not the path, so
    the number of series stays bounded)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        route = match.route if match is not None else "(unmatched)"
        method = request.method if request.method in _METHODS else "OTHER"
        DURATION.labels(route, method).observe(time.perf_counter() - started)
        REQUESTS.labels(route, method, f"{response.status_code // 100}xx").inc()
        return response


_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        raise Http404("No such page.")
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    log = CollectorRegistry()
    log.register(LogCollector())
    return HttpResponse(body + generate_latest(log), content_type=CONTENT_TYPE_LATEST)


def _allowed(request: HttpRequest) -> bool:
    token: str = settings.CONTINUST_METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    addresses = [request.META.get("REMOTE_ADDR", "")]
    if any(header in request.META for header in _FORWARDED):
        proxies: int = settings.CONTINUST_PROXY_COUNT
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [hop for hop in hops if hop]
        if not proxies or len(hops) < proxies:
            return False  # through a proxy, from nobody knows where
        addresses.append(hops[-proxies])
    return all(_in_networks(address) for address in addresses)


# Headers a proxy adds to the requests it passes on (as Django's META names them).
_FORWARDED = (
    "HTTP_FORWARDED",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_REAL_IP",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
)


def _in_networks(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    networks = settings.CONTINUST_METRICS_NETWORKS
    return any(address in network for network in networks)


urlpatterns = [path("metrics", metrics, name="metrics")]
