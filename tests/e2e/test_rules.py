"""Per-path rules, include files and a second cookie domain, end to end.

Every test runs once per proxy (``[caddy]``, ``[nginx]``, ``[traefik]``)
against one stack per proxy for this module: the shipped examples, plus what
``ADDITIONS`` below adds (the examples themselves stay as shipped):

- pocketgate.toml gets ``include = ["conf.d/*.toml"]``, the host
  ``app.example.test`` (policy users) with four ``[[hosts.rules]]``, the host
  ``jelly.example.test`` with ``case_insensitive_paths`` and an ``/admin``
  rule, and a
  ``[[session.domains]]`` entry for ``example-org.test`` with its login host
  ``auth.example-org.test``;
- ``conf.d/wiki.toml`` brings ``wiki.example.test`` and a policy of its own;
- the proxies route ``app.example.test``, ``wiki.example.test`` and
  ``app.example-org.test`` like the example's ``code`` site (the shipped
  forward-auth wiring), and ``auth.example-org.test`` like its ``auth`` site
  (straight to pocketgate): harness/configs.py adds them as more names of
  those sites;
- the provider has ``auth.example-org.test``'s ``/callback`` registered;
- ``conf.d/late.toml`` is a symlink to ``late/late.toml``, a file in a
  directory pocketgate's file watch does not cover (only SIGHUP reloads
  it), empty at the start.

The reload tests (section 7) run last and add hosts as they go: each a name
that ``default_policy`` (users) would send to the login, with a fragment
that bypasses ``/hello``, so a 200 on ``/hello`` without a session shows the
fragment in force.

Users: alice (admins, users), bob (users); the include-file test makes a
user of its own in the fragment's group.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from harness import flows
from harness.checks import (assert_login_required, assert_no_forgery, cookie_header, echo_json, forged_get,
                            logged_in, raw_echo, reached_backend)
from harness.configs import SECOND_DOMAIN, TEST_DOMAIN
from harness.net import BROWSER_ACCEPT, api_client, browser, raw_request
from harness.stack import Additions

T = flows.TIMEOUT
JSON = {"Accept": "application/json"}

APP = f"app.{TEST_DOMAIN}"             # host with [[hosts.rules]]
JELLY = f"jelly.{TEST_DOMAIN}"         # host with case_insensitive_paths (an ASP.NET Core app)
WIKI = f"wiki.{TEST_DOMAIN}"           # host from conf.d/wiki.toml
ORG_APP = f"app.{SECOND_DOMAIN}"       # a service under the second cookie domain
ORG_AUTH = f"auth.{SECOND_DOMAIN}"     # the second domain's login host
# hosts the reload tests add at run time
FRESH = f"fresh.{TEST_DOMAIN}"         # a new conf.d file, no SIGHUP
LATE = f"late.{TEST_DOMAIN}"           # a change only SIGHUP loads
BROKEN = f"broken.{TEST_DOMAIN}"       # in a broken file: never in force

RULES = f"""
# --- added by tests/e2e/test_rules.py ---------------------------------------

[[session.domains]]
cookie_domain = "{SECOND_DOMAIN}"
public_url = "http://{ORG_AUTH}:{{port}}"

[[hosts]]
host = "{APP}"
policy = "users"

[[hosts.rules]]                 # nobody deletes through the API
paths = ["/api"]
methods = ["DELETE"]
action = "deny"

[[hosts.rules]]                 # the admin area is for admins only
paths = ["/admin"]
policy = "admins"

[[hosts.rules]]
paths = ["/internal"]
action = "deny"

[[hosts.rules]]
paths = ["/public"]
action = "bypass"

[[hosts]]
host = "{JELLY}"
policy = "users"
case_insensitive_paths = true   # routes /ADMIN as /admin

[[hosts.rules]]
paths = ["/admin"]
policy = "admins"
"""

WIKI_FRAGMENT = f"""# conf.d/wiki.toml: a service's own file, with a policy of its own
[policies.editors]
allowed_groups = ["editors"]

[[hosts]]
host = "{WIKI}"
policy = "editors"
bypass_paths = ["/status"]
"""


def _config(text: str, stack) -> str:
    text, n = re.subn(r"^(default_policy = [^\n]*)$", r'\1\ninclude = ["conf.d/*.toml"]', text, count=1,
                      flags=re.M)
    assert n == 1, "examples/pocketgate.toml has no top-level default_policy line to put include after"
    return text + RULES.format(port=stack.ports.proxy)


def _prepare(workdir: Path) -> None:
    (workdir / "late").mkdir()
    (workdir / "late" / "late.toml").write_text("# filled in by test_reload_on_sighup\n")
    (workdir / "conf.d" / "late.toml").symlink_to(Path("..") / "late" / "late.toml")


ADDITIONS = Additions(
    name="rules",
    config=_config,
    files={"conf.d/wiki.toml": WIKI_FRAGMENT},
    aliases={"code": [APP, JELLY, WIKI, ORG_APP, FRESH, LATE, BROKEN], "auth": [ORG_AUTH]},
    login_hosts=[ORG_AUTH],
    prepare=_prepare,
)


@pytest.fixture(scope="module")
def alice(stack) -> requests.Session:
    return logged_in(stack, "alice", first_host=APP)


@pytest.fixture(scope="module")
def bob(stack) -> requests.Session:
    return logged_in(stack, "bob", first_host=APP)


def user_of(data: dict | None) -> str | None:
    users = flows.header_values(data, "X-Remote-User") if data else []
    return users[0] if users else None


def denied(r: requests.Response) -> None:
    assert r.status_code == 403, flows.describe(r)
    assert '"backend": "echo"' not in r.text, flows.describe(r)


# --- 1. a method rule -----------------------------------------------------------

def test_delete_on_the_api_is_denied_even_to_an_admin(stack, alice, bob):
    url = stack.url(APP, "/api/items/7")
    for s in (alice, bob):
        denied(s.delete(url, allow_redirects=False, headers=JSON, timeout=T))
    # a deny rule decides before the login: no session, still 403
    denied(api_client().delete(url, allow_redirects=False, timeout=T))
    # other methods on /api follow the host's policy
    data = echo_json(bob.get(url, allow_redirects=False, headers=JSON, timeout=T))
    assert (data["method"], data["path"], user_of(data)) == ("GET", "/api/items/7", "bob")
    data = echo_json(alice.post(url, allow_redirects=False, headers=JSON, timeout=T))
    assert (data["method"], user_of(data)) == ("POST", "alice")
    # and DELETE elsewhere is not the rule's business
    data = echo_json(alice.delete(stack.url(APP, "/items/7"), allow_redirects=False, headers=JSON, timeout=T))
    assert (data["method"], user_of(data)) == ("DELETE", "alice")


# --- 2. a path rule with a stricter policy ---------------------------------------

def test_admin_area_takes_the_admins_policy(stack, alice):
    # bob (users) signs in on the admin area: the login works, the policy says no
    s = browser()
    landed = flows.sign_in(s, stack.url(APP, "/admin/settings"), "bob", stack.issuer)
    denied(landed)
    for path in ("/admin", "/admin/users?page=2"):
        denied(s.get(stack.url(APP, path), allow_redirects=False, timeout=T))
    # the rest of the host is the host's policy (users); /administrator is
    # another segment than /admin
    for path in ("/", "/administrator"):
        data = echo_json(s.get(stack.url(APP, path), allow_redirects=False, timeout=T))
        assert (data["path"], user_of(data)) == (path, "bob")
    # alice is an admin
    data = echo_json(alice.get(stack.url(APP, "/admin/users?page=2"), allow_redirects=False, timeout=T))
    assert data["path"] == "/admin/users?page=2" and user_of(data) == "alice"
    assert "admins" in flows.header_values(data, "X-Remote-Groups")[0].split(",")


# --- 3. deny and bypass rules ----------------------------------------------------

def test_deny_rule_refuses_everyone(stack, alice, bob):
    url = stack.url(APP, "/internal/metrics")
    for s in (alice, bob, api_client(), browser()):
        denied(s.get(url, allow_redirects=False, timeout=T))


def test_bypass_rule_passes_without_login_and_without_identity(stack, alice):
    data = echo_json(api_client().get(stack.url(APP, "/public/logo.png?v=2"), allow_redirects=False, timeout=T))
    assert data["path"] == "/public/logo.png?v=2" and flows.identity_headers(data) == []
    # a browser is not sent to the login either
    data = echo_json(browser().get(stack.url(APP, "/public"), allow_redirects=False, timeout=T))
    assert flows.identity_headers(data) == []
    # /publicity is another segment: login required
    r = api_client().get(stack.url(APP, "/publicity"), allow_redirects=False, timeout=T)
    assert_login_required(r, stack, browser_like=False)
    # identity headers sent by the client never reach the backend on the
    # bypass, with or without a session (a bypass carries no identity)
    for cookie in (None, cookie_header(alice, APP)):
        for accept in ("application/json", BROWSER_ACCEPT):
            resp = forged_get(stack, APP, "/public/x", cookie=cookie, accept=accept)
            data = raw_echo(resp)
            assert resp.status == 200 and data, (resp.status, resp.body[:300])
            assert data["path"] == "/public/x"
            assert_no_forgery(data, None)


# --- 4. spelling never helps ------------------------------------------------------

# Spellings of /admin on app.example.test, whose host policy (users) admits
# bob and whose /admin rule (admins) does not. Through each proxy the request
# must never reach the backend as bob (nor without identity). What the proxies
# do with them (pocketgate sees the path as each proxy forwards it):
#   caddy:   forwards every spelling as sent (X-Forwarded-Uri); the readings of
#            the path (as sent, normalised, decoded) reach different rules, so
#            pocketgate denies: 403 before any identity, with or without a session.
#   nginx:   the same: X-Original-URL carries $request_uri as sent, 403 for all
#            five; nginx itself refuses none of them.
#   traefik: sanitizePath makes /admin of /public/../admin, /%61dmin and //admin
#            before forwarding: the admins rule, 403 for bob (401 without a
#            session); /x/..;/admin and /x%2F..%2Fadmin go as sent: 403.
ADMIN_SPELLINGS = [
    "/public/../admin",
    "/%61dmin",
    "//admin",
    "/x/..;/admin",
    "/x%2F..%2Fadmin",
]


def test_no_spelling_of_the_admin_area_admits_a_user(stack, bob):
    cookie = cookie_header(bob, APP)
    # the plain path, for comparison
    resp = raw_request(stack.ports.proxy, stack.host(APP), "/admin", headers=[("Accept", "application/json"),
                                                                                ("Cookie", cookie)])
    assert resp.status == 403 and not raw_echo(resp), (resp.status, resp.body[:200])
    seen = {}
    for path in ADMIN_SPELLINGS:
        resp = raw_request(stack.ports.proxy, stack.host(APP), path,
                           headers=[("Accept", "application/json"), ("Cookie", cookie)])
        data = raw_echo(resp)
        seen[path] = (resp.status, data and data["path"], user_of(data))
        # without a session: no bypass by way of /public either
        anon = raw_request(stack.ports.proxy, stack.host(APP), path, headers=[("Accept", "application/json")])
        seen[path] += (anon.status,)
        assert not reached_backend(anon), (path, anon.status, anon.body[:200])
    print(f"[{stack.proxy}] {seen}")
    for path, (status, backend_path, user, anon_status) in seen.items():
        assert not (200 <= status < 300 and backend_path is not None), (path, seen[path])
        assert status in (400, 403), (path, seen[path])


# On a host with case_insensitive_paths letter case is one more spelling: the
# proxies forward /ADMIN as sent, pocketgate matches it to the /admin rule.
def test_letter_case_is_a_spelling_on_a_case_insensitive_host(stack, alice, bob):
    for path in ("/admin", "/ADMIN", "/Admin/users", "/aDmIn?x=1", "/%41dmin"):
        denied(bob.get(stack.url(JELLY, path), allow_redirects=False, headers=JSON, timeout=T))
    data = echo_json(bob.get(stack.url(JELLY, "/Other"), allow_redirects=False, headers=JSON, timeout=T))
    assert (data["path"], user_of(data)) == ("/Other", "bob")
    data = echo_json(alice.get(stack.url(JELLY, "/ADMIN"), allow_redirects=False, headers=JSON, timeout=T))
    assert (data["path"], user_of(data)) == ("/ADMIN", "alice")
    # without the switch (app.example.test) /ADMIN is another path, as most backends read it
    data = echo_json(bob.get(stack.url(APP, "/ADMIN"), allow_redirects=False, headers=JSON, timeout=T))
    assert (data["path"], user_of(data)) == ("/ADMIN", "bob")


# --- 5. a host from an include file -----------------------------------------------

def test_include_file_host_follows_its_own_policy(stack, bob):
    url = stack.url(WIKI, "/page/Home")
    r = browser().get(url, allow_redirects=False, timeout=T)
    assert_login_required(r, stack, browser_like=True)
    assert parse_qs(urlsplit(r.headers["Location"]).query)["rd"] == [url]
    # the fragment's policy, not default_policy (users): bob is refused
    denied(bob.get(url, allow_redirects=False, timeout=T))
    # a member of the fragment's group gets in, and only there
    editor = stack.new_user(["editors"], prefix="editor")
    s = browser()
    data = echo_json(flows.sign_in(s, url, editor, stack.issuer))
    assert data["path"] == "/page/Home" and user_of(data) == editor
    denied(s.get(stack.url("code", "/"), allow_redirects=False, timeout=T))
    # the fragment's bypass path
    data = echo_json(api_client().get(stack.url(WIKI, "/status"), allow_redirects=False, timeout=T))
    assert flows.identity_headers(data) == []


# --- 6. a second cookie domain with its own login host ------------------------------

def test_second_domain_signs_in_on_its_own_login_host(stack, bob):
    org_login = f"http://{stack.host(ORG_AUTH)}"
    url = stack.url(ORG_APP, "/notes?id=3")
    # bob's example.test cookie is not sent to example-org.test
    for s in (browser(), bob):
        r = s.get(url, allow_redirects=False, timeout=T)
        assert r.status_code == 302, flows.describe(r)
        loc = r.headers["Location"]
        assert loc.startswith(f"{org_login}/login?"), loc
        assert parse_qs(urlsplit(loc).query)["rd"] == [url]

    s = browser()
    landed = flows.sign_in(s, url, "bob", stack.issuer)
    data = echo_json(landed)
    assert data["path"] == "/notes?id=3" and user_of(data) == "bob"
    # the provider was asked to come back to the second login host ...
    start = landed.sign_in_start  # type: ignore[attr-defined]
    authorize = [h.url for h in start.history if h.url.startswith(stack.issuer + "/authorize?")]
    assert authorize, flows.describe(start)
    assert parse_qs(urlsplit(authorize[0]).query)["redirect_uri"] == [f"{org_login}/callback"]
    # ... whose /callback set the session cookie for the second domain
    callback = [h for h in landed.history if h.url.startswith(f"{org_login}/callback?")]
    assert callback, flows.describe(landed)
    session_cookie = [c for c in callback[0].raw.headers.getlist("Set-Cookie")
                      if c.lower().startswith("pocketgate=")]
    assert len(session_cookie) == 1, callback[0].raw.headers.getlist("Set-Cookie")
    attrs = [a.strip().lower() for a in session_cookie[0].split(";")[1:]]
    assert any(a in (f"domain={SECOND_DOMAIN}", f"domain=.{SECOND_DOMAIN}") for a in attrs), session_cookie
    assert "httponly" in attrs and "samesite=lax" in attrs, session_cookie
    assert "secure" not in attrs, session_cookie   # http public_url in these tests

    # the cookie serves the second domain's hosts, not the first domain's
    assert cookie_header(s, ORG_APP) and not cookie_header(s, APP), s.cookies
    data = echo_json(s.get(stack.url(ORG_APP, "/other"), allow_redirects=False, timeout=T))
    assert user_of(data) == "bob"
    r = s.get(stack.url(APP, "/"), allow_redirects=False, timeout=T)
    assert_login_required(r, stack, browser_like=True)


# --- 7. configuration changes at run time ---------------------------------------------

POLL = 0.1
RELOAD_WAIT = 5.0   # a reload is in force within this (the watch waits 0.25 s for writes to settle)


def hello_fragment(host: str) -> str:
    return f'[[hosts]]\nhost = "{host}"\npolicy = "users"\nbypass_paths = ["/hello"]\n'


def hello(stack, host: str) -> int:
    """The status of /hello on ``host`` without a session: 200 once its fragment is in force, else 401."""
    resp = raw_request(stack.ports.proxy, stack.host(host), "/hello", headers=[("Accept", "application/json")])
    if resp.status == 200:
        data = raw_echo(resp)
        assert data and data["path"] == "/hello" and flows.identity_headers(data) == [], resp.body[:300]
    else:
        assert resp.status == 401 and not raw_echo(resp), (host, resp.status, resp.body[:200])
    return resp.status


def reloads(stack) -> dict[str, int]:
    """pocketgate_config_reloads_total by result, from pocketgate's /metrics."""
    text = requests.get(f"http://127.0.0.1:{stack.ports.auth}/metrics", timeout=T).text
    found = dict(re.findall(r'^pocketgate_config_reloads_total\{result="(\w+)"\} (\d+)', text, re.M))
    assert set(found) >= {"success", "error"}, f"no pocketgate_config_reloads_total in /metrics:\n{text[:2000]}"
    return {k: int(v) for k, v in found.items()}


def wait_until(what: str, check, timeout: float = RELOAD_WAIT) -> float:
    start = time.monotonic()
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() - start >= timeout:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(POLL)


def reload_log(stack, since: int) -> list[str]:
    """pocketgate's log records about reloads (a failed one spans several
    lines: the errors, then the fields), from byte ``since`` of its log."""
    text = stack.proc("pocketgate").log_path.read_bytes()[since:].decode("utf-8", "replace")
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    records = re.split(r"\n(?=\d{4}-\d\d-\d\dT\d\d:)", text)
    return [r for r in records if "configuration reload" in r]


def log_size(stack) -> int:
    return stack.proc("pocketgate").log_path.stat().st_size


def rules_still_work(stack, bob) -> None:
    """The host with rules answers as configured at the start."""
    data = echo_json(bob.get(stack.url(APP, "/"), allow_redirects=False, headers=JSON, timeout=T))
    assert user_of(data) == "bob"
    denied(bob.get(stack.url(APP, "/admin"), allow_redirects=False, headers=JSON, timeout=T))
    data = echo_json(api_client().get(stack.url(APP, "/public/x"), allow_redirects=False, timeout=T))
    assert flows.identity_headers(data) == []


def test_reload_on_a_new_include_file(stack, bob):
    assert hello(stack, FRESH) == 401
    before = reloads(stack)
    (stack.workdir / "conf.d" / "fresh.toml").write_text(hello_fragment(FRESH))
    took = wait_until(f"{FRESH} from a new conf.d file", lambda: hello(stack, FRESH) == 200)
    print(f"[{stack.proxy}] in force {took:.2f} s after the write")
    assert reloads(stack)["success"] > before["success"]
    rules_still_work(stack, bob)


def test_reload_on_sighup(stack):
    # conf.d/late.toml links to late/late.toml, whose directory the watch
    # does not cover: this change waits for SIGHUP
    assert hello(stack, LATE) == 401
    since = log_size(stack)
    (stack.workdir / "late" / "late.toml").write_text(hello_fragment(LATE))
    os.kill(stack.proc("pocketgate").popen.pid, signal.SIGHUP)
    took = wait_until(f"{LATE} after SIGHUP", lambda: hello(stack, LATE) == 200)
    print(f"[{stack.proxy}] in force {took:.2f} s after SIGHUP")
    records = reload_log(stack, since)
    assert any("reloaded" in r and 'trigger="SIGHUP"' in r for r in records), records
    assert not any("file changed" in r for r in records), f"not SIGHUP alone: {records}"


@pytest.mark.parametrize("broken", [
    "[[hosts]\nhost = ",                                                  # not TOML
    f'[[hosts]]\nhost = "{BROKEN}"\npolicy = "nobody"\nbypass_paths = ["/hello"]\n',   # no such policy
], ids=["syntax", "undefined-policy"])
def test_broken_file_leaves_the_running_configuration(stack, bob, broken):
    # after the tests above, FRESH and LATE are in force (200), BROKEN is not (401)
    answers = {host: hello(stack, host) for host in (FRESH, LATE, BROKEN)}
    path = stack.workdir / "conf.d" / "zz-broken.toml"
    before = reloads(stack)
    try:
        # a file change, then SIGHUP: both attempts fail, nothing changes
        path.write_text(broken)
        wait_until("a failed reload after the broken file", lambda: reloads(stack)["error"] > before["error"])
        since = log_size(stack)
        os.kill(stack.proc("pocketgate").popen.pid, signal.SIGHUP)
        wait_until("a failed reload after SIGHUP",
                   lambda: any("failed" in r and 'trigger="SIGHUP"' in r for r in reload_log(stack, since)))
        # the log names the file
        assert all("conf.d/zz-broken.toml" in r for r in reload_log(stack, since)), reload_log(stack, since)
        assert reloads(stack)["success"] == before["success"]
        assert {host: hello(stack, host) for host in answers} == answers
        rules_still_work(stack, bob)
    finally:
        path.unlink(missing_ok=True)
    # once the file is gone, reloads work again
    wait_until("a successful reload after removing the broken file",
               lambda: reloads(stack)["success"] > before["success"])
    assert {host: hello(stack, host) for host in answers} == answers
