"""What the scenarios check answers with: the echo backend's report, the
login answer, a browser's cookies, a signed-in browser, forged identity
headers."""

from __future__ import annotations

import itertools
import json
import re

import requests

from harness import flows
from harness.net import browser, raw_request


def echo_json(resp: requests.Response) -> dict:
    assert resp.status_code == 200, flows.describe(resp)
    try:
        data = resp.json()
    except ValueError:
        raise AssertionError(f"not the echo backend's answer:\n  {flows.describe(resp)}")
    assert data.get("backend") == "echo", data
    return data


def raw_echo(resp) -> dict | None:
    try:
        data = json.loads(resp.body)
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("backend") == "echo" else None


def reached_backend(resp) -> bool:
    return 200 <= resp.status < 300 and raw_echo(resp) is not None


def cookie_header(session: requests.Session, host: str) -> str:
    """The Cookie header a browser would send to ``host`` (domain match only)."""
    pairs = []
    for c in session.cookies:
        domain = c.domain.lstrip(".")
        if host == domain or host.endswith("." + domain):
            pairs.append(f"{c.name}={c.value}")
    return "; ".join(pairs)


def logged_in(stack, user: str, first_host: str = "code", path: str = "/") -> requests.Session:
    """A browser signed in as ``user`` (via ``first_host``), whatever that host answers."""
    s = browser()
    flows.sign_in(s, stack.url(first_host, path), user, stack.issuer)
    assert cookie_header(s, "sonarr.example.test"), f"no session cookie for the cookie domain: {s.cookies}"
    return s


def assert_login_required(resp: requests.Response | object, stack, *, browser_like: bool) -> None:
    status = resp.status_code if isinstance(resp, requests.Response) else resp.status
    if browser_like:
        assert status == 302, status
        loc = resp.headers["Location"] if isinstance(resp, requests.Response) else resp.header("Location")
        assert loc.startswith(f"{stack.public_url}/login?"), loc
    else:
        assert status == 401, status


# --- identity headers sent by the client -------------------------------------

FORGED = [
    ("X-Remote-User", "mallory"),
    ("x-remote-user", "mallory-lower"),
    ("X_Remote_User", "mallory-underscore"),
    ("X-REMOTE-GROUPS", "admins"),
    ("X_Remote_Groups", "admins"),
    ("x-remote_email", "mallory@evil.test"),
    ("X-Remote-Name", "Mallory"),
]


def forged_get(stack, host, path, *, source_ip=None, cookie=None, accept="application/json"):
    """``path`` on ``host`` through the proxy, carrying every spelling of ``FORGED``."""
    headers = [("Accept", accept), *FORGED]
    if cookie:
        headers.append(("Cookie", cookie))
    return raw_request(stack.ports.proxy, stack.host(host), path, headers=headers, source_ip=source_ip)


def assert_no_forgery(data: dict, expected: dict[str, str] | None) -> None:
    """No ``FORGED`` value reached the backend; its identity headers are ``expected`` (None: none at all)."""
    seen = flows.identity_headers(data)
    values = {v for _, v in seen}
    assert not values & {"mallory", "mallory-lower", "mallory-underscore", "mallory@evil.test", "Mallory"}, seen
    if expected is None:
        assert seen == [], seen
    else:
        for name, value in expected.items():
            assert flows.header_values(data, name) == [value], (name, seen)
        # one header per identity name, and only the canonical spelling
        folded = [flows.fold(k) for k, _ in seen]
        assert len(folded) == len(set(folded)), seen
        assert all("_" not in k for k, _ in seen), seen


# --- alias spellings of identity headers -----------------------------------

# Every identity name of the shipped setup: the global four, the example's
# [hosts.headers] name and the assertion header.
IDENTITY_NAMES = ("X-Remote-User", "X-Remote-Email", "X-Remote-Name", "X-Remote-Groups",
                  "X-WEBAUTH-USER", "X-Pocketgate-Assertion")


def squash(name: str) -> str:
    """A header name as the most forgiving backend folds it: case gone, every
    character but letters and digits made "_" (Apache's CGI variables; PHP
    turns "." into "_", CGI "-" into "_")."""
    return re.sub(r"[^a-z0-9]", "_", name.lower())


def alias_spellings() -> list[tuple[str, str]]:
    """Each identity name with every mix of "-", "_", "." between its words,
    and with other token characters, in mixed case."""
    out = []
    for name in IDENTITY_NAMES:
        words = name.split("-")
        joins = [*itertools.product("-_.", repeat=len(words) - 1),
                 ("~",) * (len(words) - 1), ("!", "+", "#", "'")[: len(words) - 1]]
        for n, seps in enumerate(joins):
            spelled = words[0] + "".join(s + w for s, w in zip(seps, words[1:]))
            spelled = spelled.upper() if n % 3 == 1 else spelled.lower() if n % 3 == 2 else spelled
            out.append((spelled, f"forged-{len(out)}"))
    return out


ALIASES = alias_spellings()
