"""The proxy examples' wiring, proven against a stub auth server.

These run without pocketgate: a stub (harness/stub_auth.py) answers the
forward-auth / auth-request calls with a fixed decision per path, and the echo
backend shows what reached it. The stub is deliberately naive -- it believes
X-Original-URL before X-Forwarded-* on both endpoints -- so the examples have
to keep client-sent descriptions of "the original request" away from it.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import requests

from harness import configs, flows
from harness.checks import ALIASES, IDENTITY_NAMES, squash
from harness.net import BROWSER_ACCEPT, raw_request, websocket_handshake

FORGED = [
    ("X-Remote-User", "mallory"),
    ("x-remote-user", "mallory-lower"),
    ("X_Remote_User", "mallory-underscore"),
    ("X-Remote_Groups", "admins"),
    ("x_remote_email", "mallory@evil.test"),
    ("X-Remote-Name", "Mallory"),
]
SPOOFED_ORIGINAL = [
    ("X-Forwarded-For", "10.50.1.2"),
    ("X-Forwarded-Host", "lan.example.test"),
    ("X-Forwarded-Uri", "/bypass/spoofed"),
    ("X-Forwarded-Method", "GET"),
    ("X-Original-URL", "http://lan.example.test/bypass/spoofed"),
    ("X-Original-Method", "GET"),
]
CLIENT = "127.0.0.9"


def _get(stub_stack, path, *, host="grafana", headers=(), accept="application/json"):
    hdrs = [("Accept", accept), *FORGED, *SPOOFED_ORIGINAL, *headers]
    return raw_request(stub_stack.ports.proxy, stub_stack.host(host), path, headers=hdrs, source_ip=CLIENT)


def _echo(resp) -> dict:
    assert resp.status == 200, f"{resp.status} {resp.body[:300]!r}"
    data = json.loads(resp.body)
    assert data.get("backend") == "echo", data
    return data


def _last_auth_call(stub_stack) -> dict:
    seen = requests.get(f"http://127.0.0.1:{stub_stack.ports.auth}/_stub/seen", timeout=5).json()
    assert seen, "the auth server was never asked"
    return seen[-1]


def _auth_header(call: dict, name: str) -> list[str]:
    return [v for k, v in call["headers"] if k.lower() == name.lower()]


def test_allow_passes_only_the_auth_servers_identity(stub_stack):
    data = _echo(_get(stub_stack, "/allow/page?x=1&y=%2F"))
    assert data["path"] == "/allow/page?x=1&y=%2F"
    ident = flows.identity_headers(data)
    assert sorted((flows.fold(k), v) for k, v in ident) == [
        ("x-remote-email", "stubuser@example.test"),
        ("x-remote-groups", "admins,users"),
        ("x-remote-name", "Stub User"),
        ("x-remote-user", "stubuser"),
    ], ident


def test_bypass_passes_no_identity_at_all(stub_stack):
    data = _echo(_get(stub_stack, "/bypass/health"))
    assert flows.identity_headers(data) == []


def test_trusted_network_host_passes_no_identity(stub_stack):
    data = _echo(_get(stub_stack, "/bypass", host="lan"))
    assert flows.identity_headers(data) == []


def test_deny_is_403_and_never_reaches_backend(stub_stack):
    resp = _get(stub_stack, "/deny/x")
    assert resp.status == 403
    assert b'"backend": "echo"' not in resp.body


def test_browser_without_session_is_redirected_to_login(stub_stack):
    resp = _get(stub_stack, "/private/page?a=1&b=two", accept=BROWSER_ACCEPT)
    assert resp.status == 302, resp.body[:200]
    loc = resp.header("Location")
    assert loc and loc.startswith(f"{stub_stack.public_url}/login?"), loc
    rd = parse_qs(urlsplit(loc).query)["rd"][0]
    assert rd == stub_stack.url("grafana", "/private/page?a=1&b=two")


def test_api_client_without_session_gets_401(stub_stack):
    resp = _get(stub_stack, "/private/api")
    assert resp.status == 401
    assert b'"backend": "echo"' not in resp.body


def test_auth_server_sees_the_real_request_not_the_clients_story(stub_stack):
    _get(stub_stack, "/private/thing?q=1")
    call = _last_auth_call(stub_stack)
    assert call["peer"] == "127.0.0.1"
    assert _auth_header(call, "X-Forwarded-For") == [CLIENT], call
    if call["endpoint"] == "/auth-request":
        assert _auth_header(call, "X-Original-URL") == [stub_stack.url("grafana", "/private/thing?q=1")]
        assert _auth_header(call, "X-Original-Method") == ["GET"]
        for name in ("X-Forwarded-Uri", "X-Forwarded-Host", "X-Forwarded-Method"):
            assert _auth_header(call, name) == [], (name, call)
    else:
        assert _auth_header(call, "X-Forwarded-Host") == [stub_stack.host("grafana")]
        assert _auth_header(call, "X-Forwarded-Uri") == ["/private/thing?q=1"]
        assert _auth_header(call, "X-Forwarded-Method") == ["GET"]
        assert _auth_header(call, "X-Forwarded-Proto") == ["http"]
        for name in ("X-Original-URL", "X-Original-Method"):
            assert _auth_header(call, name) == [], (name, call)


def test_backend_gets_the_real_client_address(stub_stack):
    data = _echo(_get(stub_stack, "/bypass"))
    assert flows.header_values(data, "X-Forwarded-For") == [CLIENT]


def test_auth_host_is_proxied_to_the_auth_server(stub_stack):
    resp = raw_request(stub_stack.ports.proxy, stub_stack.host("auth"), "/login?rd=x", source_ip=CLIENT)
    assert resp.status == 200
    assert json.loads(resp.body)["path"] == "/login?rd=x"


def test_websocket_upgrade_passes_when_allowed(stub_stack):
    hs = websocket_handshake(stub_stack.ports.proxy, stub_stack.host("code"), "/allow/socket")
    assert hs.status == 101, hs.head
    assert hs.accept_ok, hs.head


def test_websocket_upgrade_refused_without_login(stub_stack):
    hs = websocket_handshake(stub_stack.ports.proxy, stub_stack.host("code"), "/private/socket")
    assert hs.status in (401, 302), hs.head


def test_examples_cover_every_host():
    # every host of examples/pocketgate.toml has a site in each proxy example
    toml = (configs.EXAMPLES / "pocketgate.toml").read_text()
    hosts = set(re.findall(r'^host = "([a-z0-9.-]+)"', toml, re.M))
    for path in ("caddy/Caddyfile", "nginx/nginx.conf", "traefik/dynamic.yml"):
        text = (configs.EXAMPLES / path).read_text()
        missing = [h for h in hosts | {"auth.example.com"} if h not in text]
        assert not missing, f"examples/{path} lacks {missing}"


# --- alias spellings of identity headers (issue 16, finding 4) --------------



def _no_alias_arrived(data: dict, *, bypass: bool) -> None:
    folded = {squash(n) for n in IDENTITY_NAMES}
    forged = [(k, v) for k, v in data["headers"] if v.startswith("forged-")]
    assert forged == [], forged
    seen = [(k, v) for k, v in data["headers"] if squash(k) in folded]
    if bypass:
        assert seen == [], seen
    else:
        # only the auth server's answer, under its own names
        assert sorted(k.lower() for k, _ in seen) == [
            "x-remote-email", "x-remote-groups", "x-remote-name", "x-remote-user"], seen


def test_no_alias_spelling_of_an_identity_header_reaches_the_backend(stub_stack):
    assert len(ALIASES) > 60
    for path, bypass in (("/allow/alias", False), ("/bypass/alias", True)):
        resp = raw_request(stub_stack.ports.proxy, stub_stack.host("grafana"), path,
                           headers=[("Accept", "application/json"), *ALIASES], source_ip=CLIENT)
        _no_alias_arrived(_echo(resp), bypass=bypass)


# --- the public login host (issue 16, finding 11) ---------------------------

PUBLIC_PATHS = ("/", "/login?rd=x", "/callback?code=c&state=s", "/logout", "/logout/done", "/whoami",
                "/backchannel-logout", "/.well-known/jwks.json", "/healthz", "/scim/v2",
                "/scim/v2/Users?filter=userName%20eq%20%22bob%22", "/scim/v2/Groups/abc")
PRIVATE_PATHS = ("/metrics", "/readyz", "/forward-auth", "/auth-request", "/metrics/", "/METRICS",
                 "/%6detrics", "/login/../metrics", "//metrics", "/login/../readyz", "/forward-auth?x=1",
                 "/demo", "/anything", "/scim", "/scim/v2x", "/scimv2/Users", "/scim/v2/../metrics",
                 "/scim/v2/%2e%2e/readyz")


def test_public_host_forwards_only_what_browsers_and_the_provider_need(stub_stack):
    for path in PUBLIC_PATHS:
        resp = raw_request(stub_stack.ports.proxy, stub_stack.host("auth"), path, source_ip=CLIENT)
        assert resp.status == 200, (path, resp.status, resp.body[:200])
        assert json.loads(resp.body)["stub"] == "pocketgate", (path, resp.body[:200])
    for path in PRIVATE_PATHS:
        resp = raw_request(stub_stack.ports.proxy, stub_stack.host("auth"), path, source_ip=CLIENT)
        assert resp.status == 404, (path, resp.status, resp.body[:200])
        assert b"pocketgate" not in resp.body, (path, resp.body[:200])
