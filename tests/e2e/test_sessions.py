"""pocketgate's server-side sessions, end to end, behind each proxy example.

pocketgate runs with its default store (``session.store = "embedded"``) and
``session.refresh_interval`` at 5 s (harness/stack.py); the test provider
issues refresh tokens for ``offline_access``, rotates them, and posts
back-channel logout tokens to pocketgate's ``/backchannel-logout``
(idp/server.mjs). Each test signs in as a user of its own, created at the
provider for it, so that ending or changing its sessions touches no other
test.

- a copied session cookie is refused once ``/logout`` ran;
- a group removed at the provider denies within ``refresh_interval`` plus a
  request, while the session itself lives on;
- a logout at the provider ends, over the back channel, the session that
  came from that provider session, and no other;
- the provider stopped for longer than ``refresh_interval`` logs nobody out,
  and once it is back, refreshes work again with the token pocketgate kept.
"""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests

from harness import flows
from harness.checks import assert_login_required, cookie_header, echo_json, logged_in, raw_echo
from harness.net import BROWSER_ACCEPT, api_client, browser, raw_request
from harness.stack import REFRESH_INTERVAL

T = flows.TIMEOUT
POLL = 0.25   # seconds between requests while waiting for pocketgate to act


# --- helpers ----------------------------------------------------------------

def through_proxy(stack, host: str, cookie: str, *, accept: str = "application/json", path: str = "/"):
    """A request with exactly this Cookie header, as a copy of the cookie would be sent."""
    return raw_request(stack.ports.proxy, stack.host(host), path,
                       headers=[("Accept", accept), ("Cookie", cookie)])


def user_of(resp) -> str | None:
    data = raw_echo(resp) if not isinstance(resp, requests.Response) else echo_json(resp)
    if not data:
        return None
    users = flows.header_values(data, "X-Remote-User")
    return users[0] if users else None


def groups_of(resp: requests.Response) -> set[str]:
    values = flows.header_values(echo_json(resp), "X-Remote-Groups")
    assert len(values) == 1, values
    return {g for g in values[0].split(",") if g}


def refreshes(stack) -> dict[str, int]:
    """pocketgate_session_refreshes_total by outcome, from pocketgate's /metrics."""
    text = requests.get(f"http://127.0.0.1:{stack.ports.auth}/metrics", timeout=T).text
    found = dict(re.findall(r'^pocketgate_session_refreshes_total\{outcome="(\w+)"\} (\d+)', text, re.M))
    assert found, f"no pocketgate_session_refreshes_total in /metrics:\n{text[:2000]}"
    return {k: int(v) for k, v in found.items()}


def end_session_endpoint(stack) -> str:
    meta = requests.get(f"{stack.issuer}/.well-known/openid-configuration", timeout=T).json()
    return meta["end_session_endpoint"]


def wait_until(what: str, check, timeout: float) -> float:
    """Call ``check`` every POLL seconds until it returns true; the seconds it took."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(POLL)


# --- 1. logout ends the session on the server ------------------------------------

def test_copied_cookie_is_refused_after_logout(stack):
    user = stack.new_user(["users"], prefix="copied")
    s = logged_in(stack, user)
    copy = cookie_header(s, "code.example.test")
    assert user_of(through_proxy(stack, "code", copy)) == user, "the copied cookie does not work to begin with"

    # pocketgate's /logout alone: its redirect to the provider is not
    # followed, so no back-channel logout can be what ends the session
    rd = stack.url("code", "/")
    r = s.get(f"{stack.public_url}/logout?rd={quote(rd, safe='')}", allow_redirects=False, timeout=T)
    assert r.is_redirect, flows.describe(r)
    assert not [e for e in stack.backchannel_log() if e["sub"] == user]

    for host in ("code", "sonarr"):
        resp = through_proxy(stack, host, copy, accept=BROWSER_ACCEPT)
        assert not raw_echo(resp), (host, resp.status, resp.body[:300])
        assert_login_required(resp, stack, browser_like=True)
        resp = through_proxy(stack, host, copy)
        assert not raw_echo(resp), (host, resp.status, resp.body[:300])
        assert_login_required(resp, stack, browser_like=False)
    r = api_client().get(f"{stack.public_url}/whoami", headers={"Cookie": copy}, timeout=T)
    assert r.status_code == 401, flows.describe(r)


# --- 2. refresh: groups changed at the provider -------------------------------------

def test_group_removed_at_the_provider_denies_within_the_refresh_interval(stack):
    user = stack.new_user(["admins", "users"], prefix="demoted")
    s = browser()
    landed = flows.sign_in(s, stack.url("grafana", "/"), user, stack.issuer)
    assert user_of(landed) == user and "admins" in groups_of(landed)
    authorize = [h.url for h in landed.sign_in_start.history if h.url.startswith(stack.issuer + "/authorize?")]
    scope = parse_qs(urlsplit(authorize[0]).query)["scope"][0].split()
    assert "offline_access" in scope, f"pocketgate did not ask for a refresh token: {scope}"

    stack.set_user(user, ["users"])
    seen = []

    def denied() -> bool:
        r = s.get(stack.url("grafana", "/"), allow_redirects=False, headers={"Accept": "application/json"},
                  timeout=T)
        seen.append(r.status_code)
        # the session never lapses on the way: the same user until the deny
        assert r.status_code in (200, 403), flows.describe(r)
        if r.status_code == 200:
            assert user_of(r) == user
        return r.status_code == 403

    took = wait_until(f"the admin-only host still lets {user} in (answers {seen})", denied,
                      REFRESH_INTERVAL + 5)
    print(f"denied {took:.1f} s after the group was removed ({len(seen)} requests)")
    # still signed in, now with the provider's groups
    r = s.get(stack.url("sonarr", "/calendar"), allow_redirects=False, timeout=T)
    assert user_of(r) == user and groups_of(r) == {"users"}, flows.describe(r)


# --- 3. back-channel logout from the provider -----------------------------------------

def test_backchannel_logout_from_the_provider_ends_that_session_only(stack):
    user = stack.new_user(["users"], prefix="signedout")
    first, second = logged_in(stack, user), logged_in(stack, user)   # two provider sessions
    copy = cookie_header(first, "code.example.test")
    assert user_of(through_proxy(stack, "code", copy)) == user
    sent_before = len(stack.backchannel_log())

    # RP-initiated logout at the provider, confirmed on its page, for the
    # provider session the first browser's pocketgate session came from
    pages = flows.sign_out(first, f"{end_session_endpoint(stack)}?client_id=pocketgate")
    assert pages[-1].status_code == 200 and "Signed out" in pages[-1].text, flows.describe(pages[-1])
    sent = stack.backchannel_log()[sent_before:]
    assert [(e["sub"], e["ok"]) for e in sent] == [(user, True)], sent
    assert sent[0]["sid"], sent

    def refused() -> bool:
        resp = through_proxy(stack, "code", copy, accept=BROWSER_ACCEPT)
        if resp.status == 200:
            return False
        assert not raw_echo(resp)
        assert_login_required(resp, stack, browser_like=True)
        return True

    took = wait_until("the session of the ended provider session is still allowed", refused, 5)
    print(f"refused {took:.2f} s after the provider's logout")
    r = first.get(stack.url("sonarr", "/"), allow_redirects=False, headers={"Accept": "application/json"},
                  timeout=T)
    assert_login_required(r, stack, browser_like=False)
    # the other provider session (another sid) is not this logout's business
    r = second.get(stack.url("code", "/"), allow_redirects=False, timeout=T)
    assert user_of(r) == user, flows.describe(r)


class OtherBrowserSignedOut(AssertionError):
    pass


# After /logout the provider's back-channel logout names the sid pocketgate has
# just ended itself: that must not end the user's sessions in other browsers.
def test_logout_in_one_browser_leaves_the_same_users_other_browser_signed_in(stack):
    user = stack.new_user(["users"], prefix="twobrowsers")
    leaving, staying = logged_in(stack, user), logged_in(stack, user)
    rd = stack.url("code", "/")
    pages = flows.sign_out(leaving, f"{stack.public_url}/logout?rd={quote(rd, safe='')}")
    assert any(u.startswith(stack.issuer + "/api/oidc/end-session") for u in flows.visited(pages))
    assert [e["ok"] for e in stack.backchannel_log() if e["sub"] == user] == [True]
    r = leaving.get(stack.url("code", "/"), allow_redirects=False, headers={"Accept": "application/json"},
                    timeout=T)
    assert_login_required(r, stack, browser_like=False)
    r = staying.get(stack.url("code", "/"), allow_redirects=False, timeout=T)
    if r.status_code != 200:
        raise OtherBrowserSignedOut(f"the other browser was signed out too:\n  {flows.describe(r)}")
    assert user_of(r) == user, flows.describe(r)


# --- 4. the provider away for longer than refresh_interval -----------------------------

def test_provider_outage_longer_than_the_refresh_interval_logs_nobody_out(stack):
    user = stack.new_user(["admins", "users"], prefix="outage")
    s = logged_in(stack, user, first_host="grafana")
    before = refreshes(stack)
    answers = []

    def still_in(host: str) -> None:
        r = s.get(stack.url(host, "/"), allow_redirects=False, headers={"Accept": "application/json"},
                  timeout=T)
        answers.append(r.status_code)
        assert r.status_code == 200 and user_of(r) == user, \
            f"{host} during the outage, request {len(answers)}: {flows.describe(r)}"

    stack.stop_idp()
    try:
        end = time.monotonic() + 2 * REFRESH_INTERVAL
        while time.monotonic() < end:
            still_in("grafana")
            still_in("code")
            time.sleep(POLL)
        during = refreshes(stack)
    finally:
        stack.start_idp()
    print(f"{len(answers)} requests during the outage, all 200; refreshes {before} -> {during}")
    # not vacuous: pocketgate did try to refresh and could not
    assert during["unavailable"] > before["unavailable"], (before, during)
    assert during["invalid"] == before["invalid"], (before, during)

    # The provider is back: the refresh token pocketgate kept still works, and
    # the session is under the provider's control again.
    stack.set_user(user, ["users"])

    def denied() -> bool:
        r = s.get(stack.url("grafana", "/"), allow_redirects=False, headers={"Accept": "application/json"},
                  timeout=T)
        assert r.status_code in (200, 403), flows.describe(r)
        return r.status_code == 403

    wait_until("after the outage, a group removed at the provider does not take effect", denied,
               REFRESH_INTERVAL + 5)
    still_in("code")
