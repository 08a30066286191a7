"""What the backend receives besides the identity: never pocketgate's
cookies, and a host's own identity header names (``[hosts.headers]``).

Every test runs once per proxy against the shipped examples plus what
``ADDITIONS`` adds: the host ``webauth.example.test`` (policy users,
``/health`` bypassed) whose ``[hosts.headers]`` sets ``user =
"X-WEBAUTH-USER"``, routed like the example's ``code`` site. The proxies
run as shipped: their one list of identity header names already holds
X-WEBAUTH-USER, as an operator adds each name a ``[hosts.headers]`` uses.

Cookies: behind Caddy and nginx the echo backend gets the application's
cookies byte for byte and no cookie of pocketgate's (session, chunks,
logout hint, flow under either name), signed in and on a bypass path. Traefik has no way to
rewrite a header value: as shipped it passes the Cookie header as it is
(what examples/traefik/dynamic.yml and the book say); its
``pocketgate-no-cookies`` middleware is the remedy for cookie-less backends.
"""

from __future__ import annotations

import pytest

from harness import flows
from harness.checks import cookie_header, logged_in, raw_echo
from harness.configs import TEST_DOMAIN
from harness.net import raw_request
from harness.stack import Additions

WEBAUTH = f"webauth.{TEST_DOMAIN}"

HOST = f"""
# --- added by tests/e2e/test_backend_headers.py ---------------------------
[[hosts]]
host = "{WEBAUTH}"
policy = "users"
bypass_paths = ["/health"]

[hosts.headers]
user = "X-WEBAUTH-USER"
"""

ADDITIONS = Additions(
    name="backend-headers",
    config=lambda text, stack: text + HOST,
    aliases={"code": [WEBAUTH]},
)

# the application's own cookies, in the order sent; `pocketgatex` is not ours
APP_COOKIES = ["theme=dark", "sid=abc%3D%3D", "pocketgatex=keep", "eq=a=b"]
FLOW = "pocketgate_flow_0123456789abcdef=flowstate"
HOST_FLOW = "__Host-pocketgate_flow_fedcba9876543210=flowstate"   # its name over https
FORGED_NAMES = ["X-WEBAUTH-USER", "x-webauth-user", "X_WEBAUTH_USER", "X-Remote-User"]


@pytest.fixture(scope="module")
def bob(stack):
    return logged_in(stack, "bob", first_host=WEBAUTH)


def _through(stack, path: str, cookie: str, forged: bool = True) -> dict:
    headers = [("Accept", "application/json"), ("Cookie", cookie)]
    if forged:
        headers += [(n, "mallory") for n in FORGED_NAMES]
    resp = raw_request(stack.ports.proxy, stack.host(WEBAUTH), path, headers=headers)
    data = raw_echo(resp)
    assert resp.status == 200 and data is not None, f"{resp.status} {resp.body[:300]!r}"
    return data


def _backend_cookies(data: dict) -> list[str]:
    return [v for k, v in data["headers"] if k.lower() == "cookie"]


def _mixed(ours: list[str]) -> str:
    """The application's cookies with ours interleaved (a run of ours between some of them)."""
    a, b, c, d = APP_COOKIES
    return "; ".join([a, *ours, b, FLOW, c, HOST_FLOW, d])


def _expect_cookies(stack, data: dict, sent: str) -> None:
    got = _backend_cookies(data)
    if stack.proxy == "traefik":
        # Traefik passes the Cookie header on as it is (see the module docstring).
        assert got == [sent], got
    else:
        assert got == ["; ".join(APP_COOKIES)], got
        assert not any(p.strip().startswith(("pocketgate=", "pocketgate_", "__Host-pocketgate_"))
                       for v in got for p in v.split(";"))


def test_signed_in_backend_gets_app_cookies_and_not_pocketgates(stack, bob):
    session = cookie_header(bob, WEBAUTH)
    assert session.startswith("pocketgate") or "; pocketgate" in session, session
    sent = _mixed(session.split("; "))
    data = _through(stack, "/page", sent)
    assert flows.header_values(data, "X-WEBAUTH-USER") == ["bob"]
    _expect_cookies(stack, data, sent)


def test_bypass_backend_gets_app_cookies_and_not_pocketgates(stack):
    sent = _mixed(["pocketgate_0=c0", "pocketgate_1=c1", "pocketgate_idt=hint"])
    data = _through(stack, "/health", sent)
    _expect_cookies(stack, data, sent)


def test_only_pocketgate_cookies_leave_no_cookie_header(stack):
    sent = "pocketgate=abc; pocketgate_idt=hint"
    data = _through(stack, "/health", sent, forged=False)
    if stack.proxy == "traefik":
        assert _backend_cookies(data) == [sent]
    else:
        assert _backend_cookies(data) in ([], [""]), data["headers"]


def test_overridden_user_header_comes_from_pocketgate_only(stack, bob):
    data = _through(stack, "/page", cookie_header(bob, WEBAUTH))
    assert flows.header_values(data, "X-WEBAUTH-USER") == ["bob"], data["headers"]
    # the host's other names are [headers]'; the default user header is not its name
    assert flows.header_values(data, "X-Remote-Email") == ["bob@example.test"], data["headers"]
    assert flows.header_values(data, "X-Remote-User") == [], data["headers"]
    assert "mallory" not in str(data["headers"])


def test_forged_overridden_header_never_reaches_a_bypassed_backend(stack):
    data = _through(stack, "/health", "theme=dark")
    assert flows.header_values(data, "X-WEBAUTH-USER") == [], data["headers"]
    assert flows.header_values(data, "X-Remote-User") == [], data["headers"]
    assert "mallory" not in str(data["headers"])
