"""Security settings: the content security policy, no inline scripts or styles, CSRF,
login rate limiting, and the production settings Django's deploy check asks for."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from continust.models import Version
from tests.conftest import put

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.I)
STYLE = re.compile(r"<[^>]*\sstyle\s*=|<style\b", re.I)


def test_every_page_sends_a_policy_without_inline_scripts_or_styles(project, alice):
    client = Client()
    client.force_login(alice)
    policy = client.get(reverse("project", args=["acme"]))["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy
    assert Client().get(reverse("login"))["Content-Security-Policy"] == policy


def test_no_template_has_an_inline_script_a_handler_or_a_style():
    found = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = path.read_text()
        for pattern in (INLINE_SCRIPT, HANDLER, STYLE):
            found += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in pattern.finditer(text)]
    assert found == []


def test_rendered_pages_have_none_either(project, stream, alice):
    v1, v2 = put(stream, {"a": 1}, {"a": 2})
    client = Client()
    client.force_login(alice)
    for url in (
        reverse("project", args=["acme"]),
        reverse("stream", args=["acme", stream.pk]),
        reverse("stream", args=["acme", stream.pk]) + f"?v={v2.pk}",
        reverse("compare", args=["acme", stream.pk]) + f"?a={v1.pk}&b={v2.pk}",
        reverse("reviews", args=["acme"]),
        reverse("members", args=["acme"]),
        reverse("blame", args=["acme", stream.pk, v2.pk]) + "?path=/a",
        reverse("audit-report", args=["acme", "html"]),
        reverse("login"),
    ):
        page = client.get(url).content.decode()
        for pattern in (INLINE_SCRIPT, HANDLER, STYLE):
            assert not pattern.search(page), (url, pattern.search(page))


def test_posts_without_the_csrf_token_are_refused(project, stream, alice):
    (v1,) = put(stream, {"a": 1})
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    for url, data in (
        (reverse("fork", args=["acme", stream.pk]), {"at": v1.pk, "name": "x"}),
        (reverse("member-invite", args=["acme"]), {"username": "bob", "role": "admin"}),
        (reverse("review-open", args=["acme"]), {"stream": stream.pk, "head": "main"}),
    ):
        assert client.post(url, data).status_code == 403
    assert Version.objects.count() == 1


def log_in(client: Client, username: str, password: str) -> int:
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR="203.0.113.7"
    ).status_code


def test_login_attempts_are_rate_limited(alice, bob):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "alice", "wrong") == 200  # the form again, with an error
    assert log_in(client, "alice", "wrong") == 429  # the last failure allowed locks
    assert log_in(client, "alice", "alice-password-1") == 429  # even the right password
    assert (
        b"Too many failed logins"
        in client.post(
            reverse("login"), {"username": "alice", "password": "x"}, REMOTE_ADDR="203.0.113.7"
        ).content
    )
    assert log_in(Client(), "bob", "bob-password-1") == 302  # others are not locked out


def test_a_success_resets_the_count(alice):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "alice", "wrong")
    assert log_in(client, "alice", "alice-password-1") == 302
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(Client(), "alice", "wrong") == 200


def test_a_forwarded_address_does_not_escape_the_limit(alice):
    for n in range(settings.AXES_FAILURE_LIMIT):
        Client().post(
            reverse("login"),
            {"username": "alice", "password": "wrong"},
            REMOTE_ADDR="203.0.113.7",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        )
    assert log_in(Client(), "alice", "alice-password-1") == 429


def test_production_settings_pass_the_deploy_check(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CONTINUST_"))}
    env.update(
        DJANGO_SECRET_KEY="k" * 20 + "-long-random-production-secret-0123456789",
        DJANGO_ALLOWED_HOSTS="continust.example.com",
        DJANGO_SSL_REDIRECT="1",
        # Both are the operator's call (every subdomain on HTTPS); off by default.
        DJANGO_HSTS_INCLUDE_SUBDOMAINS="1",
        DJANGO_HSTS_PRELOAD="1",
        CONTINUST_VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path}/db",
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import "
            "settings as s; print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
            "s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_HTTPONLY, s.CSRF_COOKIE_HTTPONLY)",
        ],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "continust.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.stdout.split() == ["True", "True", "31536000", "True", "True"], shown.stderr


CSP_CASES = [
    {},
    {"_csp_update": {"img-src": ["https://images.example"]}},
    {"_csp_replace": {"script-src": ["'self'", "https://cdn.example"]}},
    {"_csp_config": {"default-src": ["'none'"]}},
    {"_csp_exempt": True},
    {"_csp_exempt_ro": True},
]


@pytest.mark.parametrize("report_only", [False, True])
@pytest.mark.parametrize("excluded", [False, True])
@pytest.mark.parametrize("nonce", [False, True])
@pytest.mark.parametrize("attributes", CSP_CASES)
def test_the_policy_header_is_django_csps_own(settings, attributes, nonce, excluded, report_only):
    """The header built once per policy is, in every case, the one django-csp builds."""
    from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
    from django.http import HttpResponse
    from django.test import RequestFactory

    from continust.csp import CSPMiddleware

    policy = dict(settings.CONTENT_SECURITY_POLICY)
    if excluded:
        policy["EXCLUDE_URL_PREFIXES"] = ["/api/"]
    settings.CONTENT_SECURITY_POLICY = policy
    if report_only:
        settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {
            "DIRECTIVES": {"default-src": ["'self'"], "report-uri": "/csp-reports"}
        }

    def headers(middleware_class: type) -> dict[str, str]:
        request = RequestFactory().get("/api/projects")
        middleware = middleware_class(lambda request: HttpResponse())
        middleware.process_request(request)
        if nonce:
            str(request.csp_nonce)
            request._csp_nonce = "fixed"
        response = HttpResponse()
        for name, value in attributes.items():
            setattr(response, name, value)
        middleware.process_response(request, response)
        return {k: v for k, v in response.items() if k.startswith("Content-Security-Policy")}

    assert headers(CSPMiddleware) == headers(DjangoCSPMiddleware)
    assert headers(CSPMiddleware) == headers(CSPMiddleware)


def test_a_changed_policy_is_built_again(client, settings):
    before = client.get(reverse("login"))["Content-Security-Policy"]
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    assert client.get(reverse("login"))["Content-Security-Policy"] == "default-src 'none'"
    assert before != "default-src 'none'"
