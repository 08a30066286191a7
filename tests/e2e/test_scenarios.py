"""pocketgate end to end, behind each shipped proxy example.

Every test runs once per proxy (``[caddy]``, ``[nginx]``, ``[traefik]``)
against the same stack: the test provider (npm oidc-provider configured like
Pocket ID), pocketgate started from examples/pocketgate.toml (host names,
ports and CIDRs substituted, see harness/configs.py), the proxy started from
its example, and the echo backend that reports what it received.

Hosts (from the example): grafana (policy admins, claim_roles
grafana-admins -> admins, bypass /api/health from the monitoring network),
sonarr (policy users, bypass /api, /feed and ^/api/system/status$ from the
LAN), lan (policy bypass: the LAN passes), code (default policy users).

Users at the provider: alice (admins, users), bob (users), carol (no
groups), dave (grafana-admins).
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from harness import flows
from harness.checks import (assert_login_required, assert_no_forgery, cookie_header, echo_json, forged_get,
                            logged_in, raw_echo, reached_backend)
from harness.configs import ADDR_LAN, ADDR_MONITORING, ADDR_OUTSIDE, ADDR_OUTSIDE_2, ADDR_PRIVATE
from harness.net import BROWSER_ACCEPT, api_client, browser, raw_request, websocket_handshake

T = flows.TIMEOUT


@pytest.fixture(scope="module")
def alice(stack) -> requests.Session:
    """One sign-in as alice per proxy, shared by the read-only tests."""
    return logged_in(stack, "alice")


# --- 1. the browser login round trip ---------------------------------------

def test_pocketgate_ready(stack):
    r = requests.get(f"http://127.0.0.1:{stack.ports.auth}/readyz", timeout=T)
    assert r.status_code == 200


def test_browser_is_sent_to_login_with_the_original_url(stack):
    url = stack.url("grafana", "/d/abc/overview?orgId=1&var-host=a%20b&from=now-6h")
    r = browser().get(url, allow_redirects=False, timeout=T)
    assert r.status_code == 302, flows.describe(r)
    loc = r.headers["Location"]
    assert loc.startswith(f"{stack.public_url}/login?"), loc
    assert parse_qs(urlsplit(loc).query)["rd"] == [url]


def test_browser_signs_in_and_lands_on_the_original_url(stack):
    url = stack.url("grafana", "/d/abc/overview?orgId=1&var-host=a%20b&from=now-6h")
    s = browser()
    landed = flows.sign_in(s, url, "alice", stack.issuer)
    assert landed.url == url, flows.describe(landed)
    data = echo_json(landed)
    assert data["path"] == "/d/abc/overview?orgId=1&var-host=a%20b&from=now-6h"
    assert flows.header_values(data, "X-Remote-User") == ["alice"]
    assert flows.header_values(data, "X-Remote-Email") == ["alice@example.test"]
    groups = flows.header_values(data, "X-Remote-Groups")
    assert len(groups) == 1 and set(groups[0].split(",")) >= {"admins", "users"}, groups
    # the provider saw PKCE S256 and the callback went through the proxy's auth host
    chain = [h.url for h in landed.history]
    assert any(u.startswith(f"{stack.public_url}/callback?") for u in chain), chain
    start = landed.sign_in_start  # type: ignore[attr-defined]
    authorize = [h.url for h in start.history if h.url.startswith(stack.issuer + "/authorize?")]
    assert authorize, [h.url for h in start.history]
    q = parse_qs(urlsplit(authorize[0]).query)
    assert q["code_challenge_method"] == ["S256"] and q["code_challenge"], q
    assert set(q["scope"][0].split()) >= {"openid", "profile", "email", "groups"}, q
    assert q["redirect_uri"] == [f"{stack.public_url}/callback"], q


def test_whoami_shows_the_session(stack, alice):
    r = alice.get(f"{stack.public_url}/whoami", headers={"Accept": "application/json"}, timeout=T)
    assert r.status_code == 200, flows.describe(r)
    assert "alice" in r.text
    anon = api_client().get(f"{stack.public_url}/whoami", timeout=T)
    assert anon.status_code == 401


def test_api_client_without_session_gets_401(stack):
    r = api_client().get(stack.url("grafana", "/api/dashboards/home"), allow_redirects=False, timeout=T)
    assert r.status_code == 401, flows.describe(r)
    assert "echo" not in r.text


# --- 2. policies and roles ----------------------------------------------------

def test_user_outside_the_policy_groups_gets_403(stack):
    s = browser()
    landed = flows.sign_in(s, stack.url("grafana", "/"), "bob", stack.issuer)
    assert landed.status_code == 403, flows.describe(landed)
    assert "echo" not in landed.text
    # pocketgate's page, through every proxy (nginx asks for it again: error_page 403)
    assert "Access denied" in landed.text and "grafana.example.test" in landed.text, landed.text[:300]
    r = s.get(stack.url("grafana", "/api/x"), headers={"Accept": "application/json"}, allow_redirects=False,
              timeout=T)
    assert r.status_code == 403 and r.json()["error"] == "forbidden", (r.status_code, r.text[:200])
    # bob is in "users": the users-policy hosts let him in
    data = echo_json(s.get(stack.url("sonarr", "/series"), timeout=T))
    assert flows.header_values(data, "X-Remote-User") == ["bob"]


def test_user_without_groups_is_denied_everywhere_but_the_lan_host(stack):
    s = logged_in(stack, "carol", first_host="lan")
    for host in ("grafana", "sonarr", "code"):
        r = s.get(stack.url(host, "/"), allow_redirects=False, timeout=T)
        assert r.status_code == 403, (host, flows.describe(r))


def test_claim_roles_map_grafana_admins_to_admins(stack):
    s = browser()
    landed = flows.sign_in(s, stack.url("grafana", "/admin/users"), "dave", stack.issuer)
    data = echo_json(landed)
    assert flows.header_values(data, "X-Remote-User") == ["dave"]
    # the mapping is grafana's only: sonarr ("users") still refuses dave
    r = s.get(stack.url("sonarr", "/"), allow_redirects=False, timeout=T)
    assert r.status_code == 403, flows.describe(r)


# --- 3. bypass rules and trusted networks -------------------------------------

def test_bypass_path_from_the_allowed_network(stack):
    r = api_client(ADDR_MONITORING).get(stack.url("grafana", "/api/health"), timeout=T)
    data = echo_json(r)
    assert data["path"] == "/api/health"
    assert flows.identity_headers(data) == []


def test_bypass_path_from_another_network_needs_login(stack):
    r = api_client(ADDR_OUTSIDE_2).get(stack.url("grafana", "/api/health"), allow_redirects=False, timeout=T)
    assert_login_required(r, stack, browser_like=False)
    r = browser(ADDR_OUTSIDE_2).get(stack.url("grafana", "/api/health"), allow_redirects=False, timeout=T)
    assert_login_required(r, stack, browser_like=True)


def test_bypass_path_matches_on_segment_boundaries_only(stack):
    for path in ("/api/healthz", "/api/health-check", "/api"):
        r = api_client(ADDR_MONITORING).get(stack.url("grafana", path), allow_redirects=False, timeout=T)
        assert_login_required(r, stack, browser_like=False)
    data = echo_json(api_client(ADDR_MONITORING).get(stack.url("grafana", "/api/health/live"), timeout=T))
    assert data["path"] == "/api/health/live"


def test_bypass_regex_and_paths_on_sonarr(stack):
    lan = api_client(ADDR_LAN)
    for path in ("/api/system/status", "/api/v3/series?page=2", "/feed/calendar.ics"):
        data = echo_json(lan.get(stack.url("sonarr", path), timeout=T))
        assert data["path"] == path and flows.identity_headers(data) == []
    # the web UI is not bypassed, not even from the LAN
    assert_login_required(lan.get(stack.url("sonarr", "/"), allow_redirects=False, timeout=T), stack,
                          browser_like=False)
    # from elsewhere the API needs a login
    for path in ("/api/system/status", "/api/v3/series"):
        r = api_client(ADDR_OUTSIDE_2).get(stack.url("sonarr", path), allow_redirects=False, timeout=T)
        assert_login_required(r, stack, browser_like=False)


def test_trusted_network_policy_passes_without_login(stack):
    for addr in (ADDR_LAN, ADDR_PRIVATE):
        data = echo_json(browser(addr).get(stack.url("lan", "/dashboard?tab=1"), timeout=T))
        assert data["path"] == "/dashboard?tab=1"
        assert flows.identity_headers(data) == []
    r = browser(ADDR_OUTSIDE_2).get(stack.url("lan", "/dashboard"), allow_redirects=False, timeout=T)
    assert_login_required(r, stack, browser_like=True)


# --- 4. forged identity, spoofed addresses, path tricks -----------------------

def test_forged_identity_never_reaches_backend_on_allowed_request(stack, alice):
    resp = forged_get(stack, "grafana", "/", source_ip=ADDR_OUTSIDE,
                       cookie=cookie_header(alice, "grafana.example.test"))
    data = raw_echo(resp)
    assert resp.status == 200 and data, (resp.status, resp.body[:300])
    assert_no_forgery(data, {"X-Remote-User": "alice", "X-Remote-Email": "alice@example.test"})
    assert "admins" in flows.header_values(data, "X-Remote-Groups")[0]


def test_forged_identity_never_reaches_backend_on_bypass(stack):
    resp = forged_get(stack, "grafana", "/api/health", source_ip=ADDR_MONITORING)
    data = raw_echo(resp)
    assert resp.status == 200 and data, (resp.status, resp.body[:300])
    assert_no_forgery(data, None)
    resp = forged_get(stack, "sonarr", "/api/system/status", source_ip=ADDR_LAN)
    data = raw_echo(resp)
    assert resp.status == 200 and data, (resp.status, resp.body[:300])
    assert_no_forgery(data, None)


def test_forged_identity_never_reaches_backend_on_trusted_network(stack):
    resp = forged_get(stack, "lan", "/", source_ip=ADDR_LAN, accept=BROWSER_ACCEPT)
    data = raw_echo(resp)
    assert resp.status == 200 and data, (resp.status, resp.body[:300])
    assert_no_forgery(data, None)


def test_forged_identity_does_not_open_denied_requests(stack):
    # no session: login required, backend untouched
    for accept, status in ((BROWSER_ACCEPT, 302), ("application/json", 401)):
        resp = forged_get(stack, "grafana", "/", source_ip=ADDR_OUTSIDE_2, accept=accept)
        assert resp.status == status and not raw_echo(resp), (resp.status, resp.body[:200])
    # bob's session on the admins host: still 403
    bob = logged_in(stack, "bob")
    resp = forged_get(stack, "grafana", "/", source_ip=ADDR_OUTSIDE_2,
                       cookie=cookie_header(bob, "grafana.example.test"))
    assert resp.status == 403 and not raw_echo(resp), (resp.status, resp.body[:200])


@pytest.mark.parametrize("spoof", [
    [("X-Forwarded-For", "10.50.1.2")],
    [("X-Forwarded-For", ADDR_MONITORING)],
    [("X-Forwarded-For", f"{ADDR_MONITORING}, {ADDR_OUTSIDE_2}")],
    [("X-Real-IP", ADDR_MONITORING)],
    [("Forwarded", f"for={ADDR_MONITORING}")],
    [("X-Forwarded-For", ADDR_LAN), ("X-Real-IP", ADDR_LAN)],
], ids=["xff-10.50", "xff-monitoring", "xff-chain", "x-real-ip", "forwarded", "xff-lan"])
def test_spoofed_client_address_does_not_satisfy_allowed_networks(stack, spoof):
    for host, path in (("grafana", "/api/health"), ("sonarr", "/api/system/status"), ("lan", "/")):
        resp = raw_request(stack.ports.proxy, stack.host(host), path, source_ip=ADDR_OUTSIDE_2,
                           headers=[("Accept", "application/json"), *spoof])
        assert resp.status == 401 and not raw_echo(resp), (host, path, resp.status, resp.body[:200])


def test_spoofed_original_request_headers_do_not_bypass(stack):
    # the client describes a bypass path in the headers the proxies use to tell
    # pocketgate about the original request, while asking for /admin
    spoof = [
        ("Accept", "application/json"),
        ("X-Forwarded-Uri", "/api/health"),
        ("X-Forwarded-Host", stack.host("grafana")),
        ("X-Forwarded-Method", "GET"),
        ("X-Forwarded-Proto", "http"),
        ("X-Original-URL", stack.url("grafana", "/api/health")),
        ("X-Original-Method", "GET"),
        ("X-Original-URI", "/api/health"),
    ]
    resp = raw_request(stack.ports.proxy, stack.host("grafana"), "/admin", headers=spoof, source_ip=ADDR_MONITORING)
    assert resp.status == 401 and not raw_echo(resp), (resp.status, resp.body[:200])
    resp = raw_request(stack.ports.proxy, stack.host("code"), "/private", headers=spoof, source_ip=ADDR_MONITORING)
    assert resp.status == 401 and not raw_echo(resp), (resp.status, resp.body[:200])


PATH_TRICKS = [
    "/api/health/../../admin",
    "/api/health/../admin",
    "/api/health/%2e%2e/admin",
    "/api/health/%2E%2E/%2e%2e/admin",
    "/api/health%2F..%2Fadmin",
    "/api/health%2f..%2fadmin",
    "/api/health/..%2Fadmin",
    "/api/health/..;/admin",
    "/api/health%5C..%5Cadmin",
    "//api/health",
    "/api//health",
    "/api/health/./../admin",
    "/./api/health",
    "/api/health#/../admin",
    "/admin?/api/health",
    "/admin%23/api/health",
    "/API/HEALTH",
]


def _normal_bypass(path: str) -> bool:
    """``path`` is exactly grafana's bypass path (or below it) in normal form."""
    p = path.split("?", 1)[0]
    if "//" in p or "%" in p or "\\" in p or "/./" in p or "/../" in p or p.endswith(("/.", "/..")):
        return False
    return p == "/api/health" or p.startswith("/api/health/")


@pytest.mark.parametrize("path", PATH_TRICKS)
def test_path_tricks_never_bypass(stack, path):
    # Not in the monitoring network: bypass never applies, nothing reaches the backend.
    resp = raw_request(stack.ports.proxy, stack.host("grafana"), path, source_ip=ADDR_OUTSIDE_2,
                       headers=[("Accept", "application/json")])
    assert not reached_backend(resp), (resp.status, resp.body[:300])
    # In the monitoring network: whatever the proxy makes of the path, the
    # backend must not serve anything but the bypass path without a session.
    # (A proxy that normalises //api/health to /api/health for both
    # pocketgate and the backend legitimately bypasses; the backend then sees
    # exactly /api/health.)
    resp = raw_request(stack.ports.proxy, stack.host("grafana"), path, source_ip=ADDR_MONITORING,
                       headers=[("Accept", "application/json")])
    data = raw_echo(resp)
    if 200 <= resp.status < 300 and data:
        assert _normal_bypass(data["path"]), f"backend served {data['path']!r} for {path!r} without a session"
        assert flows.identity_headers(data) == []


# --- 5. single sign-on across hosts, logout ------------------------------------

def test_one_login_serves_two_hosts(stack):
    s = browser()
    landed = flows.sign_in(s, stack.url("grafana", "/"), "alice", stack.issuer)
    assert flows.header_values(echo_json(landed), "X-Remote-User") == ["alice"]
    r = s.get(stack.url("sonarr", "/calendar"), timeout=T)
    assert not r.history, f"sonarr redirected although signed in:\n  {flows.describe(r)}"
    assert flows.header_values(echo_json(r), "X-Remote-User") == ["alice"]
    r = s.get(stack.url("code", "/?folder=/src"), timeout=T)
    assert not r.history, flows.describe(r)
    assert flows.header_values(echo_json(r), "X-Remote-User") == ["alice"]


def test_logout_ends_access_on_every_host(stack):
    # A user of its own: the logout at the provider sends pocketgate a
    # back-channel logout, which pocketgate now applies to every session of
    # the user (test_sessions.py), and alice's shared session must outlive
    # this test.
    user = stack.new_user(["admins", "users"], prefix="leaving")
    s = browser()
    flows.sign_in(s, stack.url("grafana", "/"), user, stack.issuer)
    echo_json(s.get(stack.url("sonarr", "/"), timeout=T))
    cookie_before = cookie_header(s, "sonarr.example.test")

    rd = stack.url("grafana", "/")
    pages = flows.sign_out(s, f"{stack.public_url}/logout?rd={requests.utils.quote(rd, safe='')}")
    urls = flows.visited(pages)
    assert any(u.startswith(stack.issuer + "/api/oidc/end-session") for u in urls), \
        f"no RP-initiated logout at the provider: {urls}"
    assert all(p.status_code < 500 for p in pages), [(p.status_code, p.url) for p in pages]

    for host in ("grafana", "sonarr", "code"):
        r = s.get(stack.url(host, "/"), allow_redirects=False, headers={"Accept": "application/json"}, timeout=T)
        assert r.status_code == 401, (host, flows.describe(r))
    # the provider's session is gone too: a new visit asks for the login again
    again = s.get(stack.url("grafana", "/"), timeout=T)
    assert again.url.startswith(stack.issuer + "/interaction/"), flows.describe(again)
    # a copy of the old cookie: test_sessions.py
    assert cookie_before


# --- 6. WebSocket ---------------------------------------------------------------

def test_websocket_upgrade_needs_a_session(stack, alice):
    hs = websocket_handshake(stack.ports.proxy, stack.host("code"), "/socket?x=1", source_ip=ADDR_OUTSIDE_2)
    assert hs.status in (401, 302), hs.head
    hs = websocket_handshake(stack.ports.proxy, stack.host("code"), "/socket?x=1",
                             cookie=cookie_header(alice, "code.example.test"))
    assert hs.status == 101, hs.head
    assert hs.accept_ok, hs.head
    m = re.search(rb"\{.*\}", hs.first_frame, re.S)
    assert m, hs.first_frame[:200]
    data = json.loads(m.group(0))
    assert data["path"] == "/socket?x=1"
    assert flows.header_values(data, "X-Remote-User") == ["alice"]


# --- 7. login flow robustness ------------------------------------------------------

def test_session_cookie_is_scoped_to_the_cookie_domain(stack):
    s = browser()
    landed = flows.sign_in(s, stack.url("code", "/"), "alice", stack.issuer)
    callback = [h for h in landed.history if h.url.startswith(f"{stack.public_url}/callback")]
    assert callback, flows.describe(landed)
    set_cookies = callback[0].raw.headers.getlist("Set-Cookie")
    session_cookie = [c for c in set_cookies if c.lower().startswith("pocketgate=")]
    assert session_cookie, set_cookies
    attrs = [a.strip().lower() for a in session_cookie[0].split(";")[1:]]
    assert "httponly" in attrs, session_cookie
    assert "samesite=lax" in attrs, session_cookie
    assert any(a in ("domain=example.test", "domain=.example.test") for a in attrs), session_cookie


def test_parallel_logins_in_two_tabs_both_land(stack):
    s = browser()
    urls = [stack.url("grafana", "/tab/one?x=1"), stack.url("sonarr", "/tab/two?y=2")]
    pages = [s.get(u, timeout=T) for u in urls]
    for page in pages:
        assert page.url.startswith(stack.issuer + "/interaction/"), flows.describe(page)
    # finish the second tab first, then the first one
    for i in (1, 0):
        form = [f for f in flows.forms(pages[i].text, pages[i].url) if "username" in f.fields][0]
        landed = flows.submit(s, form, username="alice")
        assert landed.url == urls[i], flows.describe(landed)
        assert flows.header_values(echo_json(landed), "X-Remote-User") == ["alice"]


def test_concurrent_users_keep_their_own_identity(stack):
    sessions = {user: browser() for user in ("alice", "bob")}
    pages = {user: s.get(stack.url("code", f"/as/{user}"), timeout=T) for user, s in sessions.items()}
    for user in ("bob", "alice"):
        page = pages[user]
        form = [f for f in flows.forms(page.text, page.url) if "username" in f.fields][0]
        landed = flows.submit(sessions[user], form, username=user)
        assert flows.header_values(echo_json(landed), "X-Remote-User") == [user]


def _local(url: str, stack) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "127.0.0.1" or host == "example.test" or host.endswith(".example.test")


@pytest.mark.parametrize("rd", [
    "http://evil.test/",
    "//evil.test/x",
    "/\\evil.test/",
    "http://grafana.example.test.evil.test/",
    "http://evil.test\\@grafana.example.test/",
    "javascript:alert(1)",
])
def test_login_never_redirects_to_a_foreign_rd(stack, rd):
    s = browser()
    r = s.get(f"{stack.public_url}/login", params={"rd": rd}, allow_redirects=False, timeout=T)
    hops = 0
    posted = False
    while hops < 20:
        hops += 1
        loc = r.headers.get("Location")
        if r.is_redirect and loc:
            target = requests.compat.urljoin(r.url, loc)
            assert _local(target, stack), f"redirected to {target!r} for rd={rd!r}"
            r = s.get(target, allow_redirects=False, timeout=T)
            continue
        login = [f for f in flows.forms(r.text, r.url) if "username" in f.fields] if r.status_code == 200 else []
        if login and not posted:
            posted = True
            r = s.post(login[0].action, data={**login[0].fields, "username": "alice"},
                       allow_redirects=False, timeout=T)
            continue
        break
    assert hops < 20, "redirect loop"
    assert r.status_code < 500, (r.status_code, r.url, r.text[:200])
