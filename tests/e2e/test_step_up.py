"""Step-up (``max_age``, ``amr``) end to end, once per proxy.

The shipped examples plus ``wiki.example.test`` (policy users), whose
``/admin`` asks for a passkey sign-in (``amr = ["phr"]``) within the last
10 minutes. The provider's login form takes the method the user signs in
with (``amr``: ``phr`` by default, ``otp`` for a one-time code), and
honours ``prompt=login`` with a fresh login.

- bob signs in with a one-time code: ``/`` works, ``/admin`` sends him to
  sign in again with ``prompt=login``; signing in with a passkey lands him
  on ``/admin`` with the same session cookie, and ``/`` still works;
- a step-up answered with a one-time code again ends on pocketgate's
  step-up page (403), not in a loop;
- an API client with a one-time-code session gets 401 on ``/admin``, with
  RFC 9470's ``insufficient_user_authentication`` challenge behind Caddy and
  Traefik (nginx's ``auth_request`` wiring returns its own bare 401 to API
  clients, as it does for a missing session).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from harness import flows
from harness.checks import cookie_header, echo_json
from harness.configs import TEST_DOMAIN
from harness.net import api_client, browser
from harness.stack import Additions

T = flows.TIMEOUT
WIKI = f"wiki.{TEST_DOMAIN}"

HOST = f"""
# --- added by tests/e2e/test_step_up.py -------------------------------------

[[hosts]]
host = "{WIKI}"
policy = "users"

[[hosts.rules]]                 # the admin pages: a passkey, within 10 minutes
paths = ["/admin"]
policy = "users"
max_age = "10m"
amr = ["phr"]
"""

ADDITIONS = Additions(
    name="step-up",
    config=lambda text, stack: text + HOST,
    aliases={"code": [WIKI]},
)


def login_page(s: requests.Session, url: str, issuer: str) -> tuple[requests.Response, flows.Form]:
    """Open ``url`` and follow it to the provider's login form."""
    page = s.get(url, timeout=T)
    assert page.url.startswith(issuer + "/interaction/"), flows.describe(page)
    form = [f for f in flows.forms(page.text, page.url) if "username" in f.fields]
    assert form, flows.describe(page)
    return page, form[0]


def sign_in_with(s: requests.Session, url: str, user: str, amr: str, issuer: str) -> requests.Response:
    page, form = login_page(s, url, issuer)
    landed = flows.submit(s, form, username=user, amr=amr)
    landed.sign_in_start = page  # type: ignore[attr-defined]
    return landed


def asked_prompt_login(page: requests.Response) -> bool:
    """Whether the redirect chain to the provider carried prompt=login."""
    for r in page.history:
        query = parse_qs(urlsplit(r.headers.get("Location", "")).query)
        if "login" in " ".join(query.get("prompt", [])).split():
            return True
    return False


def user_of(data: dict) -> str | None:
    users = flows.header_values(data, "X-Remote-User")
    return users[0] if users else None


def test_a_one_time_code_user_is_stepped_up_on_admin_and_keeps_the_session(stack):
    s = browser()
    data = echo_json(sign_in_with(s, stack.url(WIKI, "/"), "bob", "otp", stack.issuer))
    assert user_of(data) == "bob"
    cookie = cookie_header(s, WIKI)
    assert cookie
    # /admin: to the provider again, with prompt=login and max_age
    page, form = login_page(s, stack.url(WIKI, "/admin/settings"), stack.issuer)
    assert asked_prompt_login(page), flows.describe(page)
    assert any("max_age=600" in (r.headers.get("Location") or "") for r in page.history), flows.describe(page)
    landed = flows.submit(s, form, username="bob", amr="phr")
    data = echo_json(landed)
    assert (data["path"], user_of(data)) == ("/admin/settings", "bob")
    # the same session: the embedded store keeps its id, the cookie stays
    assert cookie_header(s, WIKI) == cookie
    for path in ("/admin", "/"):
        data = echo_json(s.get(stack.url(WIKI, path), allow_redirects=False, timeout=T))
        assert user_of(data) == "bob"


def test_a_step_up_answered_with_a_code_again_ends_on_the_step_up_page(stack):
    s = browser()
    echo_json(sign_in_with(s, stack.url(WIKI, "/"), "bob", "otp", stack.issuer))
    landed = sign_in_with(s, stack.url(WIKI, "/admin"), "bob", "otp", stack.issuer)
    assert landed.status_code == 403, flows.describe(landed)
    assert "a sign-in with a passkey (phr)" in landed.text, landed.text
    assert "one-time code (otp)" in landed.text, landed.text
    assert "again=1" in landed.text
    # nothing changed: / still works, /admin still asks
    echo_json(s.get(stack.url(WIKI, "/"), allow_redirects=False, timeout=T))
    r = s.get(stack.url(WIKI, "/admin"), allow_redirects=False, timeout=T)
    assert r.status_code == 302 and "/login?" in r.headers["Location"], flows.describe(r)


def test_an_api_client_gets_401_insufficient_user_authentication(stack):
    s = browser()
    echo_json(sign_in_with(s, stack.url(WIKI, "/"), "bob", "otp", stack.issuer))
    api = api_client()
    headers = {"Cookie": cookie_header(s, WIKI)}
    echo_json(api.get(stack.url(WIKI, "/"), headers=headers, allow_redirects=False, timeout=T))
    r = api.get(stack.url(WIKI, "/admin"), headers=headers, allow_redirects=False, timeout=T)
    assert r.status_code == 401, flows.describe(r)
    challenge = r.headers.get("WWW-Authenticate", "")
    assert 'error="insufficient_user_authentication"' in challenge, challenge
    assert 'max_age="600"' in challenge, challenge
