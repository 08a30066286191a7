"""Step-up against Pocket ID itself, through each proxy.

``wiki.example.test`` (policy users) asks on ``/admin`` for a passkey
sign-in (``amr = ["phr"]``) at most 20 seconds old. Pocket ID 2.9.0 sends no
``auth_time`` but honours ``prompt=login`` with a fresh passkey assertion, so
pocketgate takes the time its step-up flow's callback verified the ID token.

- bob signs in with a one-time code, reaches ``/``, is stepped up on
  ``/admin``; he has no passkey, so Pocket ID's passkey prompt fails; he goes
  back to ``/admin`` and gets pocketgate's step-up page (the sign-in "was not
  completed"), not a second trip to Pocket ID;
- alice's passkey passes ``/admin`` on the same session; once ``max_age``
  has passed, ``/admin`` asks her again while ``/`` does not.
"""

from __future__ import annotations

import time

from harness.checks import echo_json

T = 10
WIKI = "wiki.example.test"
MAX_AGE = 20

EXTRA_CONFIG = lambda stack: f"""
[[hosts]]
host = "{WIKI}"
policy = "users"

[[hosts.rules]]
paths = ["/admin"]
policy = "users"
max_age = "{MAX_AGE}s"
amr = ["phr"]
"""  # noqa: E731
ALIASES = {"code": [WIKI]}


def user_of(data: dict) -> list[str]:
    return [v for k, v in data["headers"] if k.lower() == "x-remote-user"]


def wiki(stack, path: str) -> str:
    return stack.url(WIKI, path)


def test_bob_with_a_one_time_code_is_stepped_up_and_refused_with_the_page(stack, browser, people, pocket_id):
    bob = people["bob"]
    tab = browser.context(bob)
    try:
        tab.code_sign_in(pocket_id, wiki(stack, "/"), pocket_id.login_code(bob.user))
        tab.page.wait_for_url(wiki(stack, "/"))
        s = tab.session()
        assert user_of(echo_json(s.get(wiki(stack, "/"), allow_redirects=False, timeout=T))) == ["bob"]
        r = s.get(wiki(stack, "/admin"), allow_redirects=False, timeout=T)
        assert r.status_code == 302 and "/login?" in r.headers["Location"], (r.status_code, r.headers)

        # The step-up: Pocket ID asks for a passkey (prompt=login); bob has none.
        tab.page.goto(wiki(stack, "/admin"))
        tab.page.wait_for_url(f"{pocket_id.url}/authorize**")
        assert "prompt=login" in tab.page.url, tab.page.url
        sign_in = tab.page.get_by_role("button", name="Sign in", exact=True)
        if sign_in.count():
            sign_in.first.click(timeout=5000)
        tab.page.wait_for_timeout(2000)
        assert tab.page.url.startswith(pocket_id.url), "no passkey: Pocket ID cannot complete the sign-in"
        assert tab.credentials() == [], "bob registered nothing"

        # He goes back to the page: pocketgate explains instead of sending him round again.
        tab.page.goto(wiki(stack, "/admin"))
        assert not tab.page.url.startswith(pocket_id.url), tab.page.url
        text = tab.text()
        assert "was not completed" in text, text[:600]
        assert "bob" in text and "Try again" in text, text[:600]
        # / still works with the session he has
        assert user_of(echo_json(s.get(wiki(stack, "/"), allow_redirects=False, timeout=T))) == ["bob"]
    finally:
        tab.close()


def test_alices_passkey_passes_admin_until_max_age_then_admin_asks_again(stack, browser, people, pocket_id):
    tab = browser.context(people["alice"])
    try:
        tab.passkey_sign_in(pocket_id, wiki(stack, "/"))
        tab.page.wait_for_url(wiki(stack, "/"))
        cookies_before = {c["name"]: c["value"] for c in tab.ctx.cookies() if c["name"].startswith("pocketgate")}

        used = tab.assertions_made()
        tab.page.goto(wiki(stack, "/admin"))
        tab.page.wait_for_url(f"{pocket_id.url}/authorize**")
        assert "prompt=login" in tab.page.url, tab.page.url
        tab.approve_at_pocket_id(pocket_id)
        tab.page.wait_for_url(wiki(stack, "/admin"))
        assert tab.assertions_made() > used, "the step-up used the passkey"
        stepped_at = time.monotonic()
        s = tab.session()
        assert user_of(echo_json(s.get(wiki(stack, "/admin"), allow_redirects=False, timeout=T))) == ["alice"]
        cookies_after = {c["name"]: c["value"] for c in tab.ctx.cookies() if c["name"].startswith("pocketgate")}
        session_name = [n for n in cookies_before if "_flow_" not in n and not n.endswith("_idt")]
        assert session_name and all(cookies_after.get(n) == cookies_before[n] for n in session_name), \
            "the same session (embedded store: the same cookie)"

        # After max_age, /admin asks again; / does not.
        time.sleep(max(0.0, MAX_AGE + 2 - (time.monotonic() - stepped_at)))
        r = s.get(wiki(stack, "/admin"), allow_redirects=False, timeout=T)
        assert r.status_code == 302 and "/login?" in r.headers["Location"], (r.status_code, r.text[:300])
        assert user_of(echo_json(s.get(wiki(stack, "/"), allow_redirects=False, timeout=T))) == ["alice"]
    finally:
        tab.close()
