"""Sessions shaped per host, against Pocket ID itself, through each proxy.

``idle.example.test`` (policy users) has ``idle_timeout = "4s"``: a session
unused for longer is sent to sign in again there, while it keeps serving the
other hosts (no ``[session] idle_timeout``). A session used every second
stays. Signing in again at Pocket ID lands back on the page.
"""

from __future__ import annotations

import time

from harness.checks import echo_json

T = 10
IDLE = "idle.example.test"
IDLE_TIMEOUT = 4

EXTRA_CONFIG = lambda stack: f"""
[[hosts]]
host = "{IDLE}"
policy = "users"
idle_timeout = "{IDLE_TIMEOUT}s"
"""  # noqa: E731
ALIASES = {"code": [IDLE]}


def user_of(data: dict) -> list[str]:
    return [v for k, v in data["headers"] if k.lower() == "x-remote-user"]


def test_an_unused_session_signs_in_again_on_the_idle_host_only(stack, browser, people, pocket_id):
    alice = people["alice"]
    tab = browser.context(alice)
    try:
        tab.passkey_sign_in(pocket_id, stack.url(IDLE, "/"))
        tab.page.wait_for_url(stack.url(IDLE, "/"))
        s = tab.session()
        assert user_of(echo_json(s.get(stack.url(IDLE, "/"), allow_redirects=False, timeout=T))) == ["alice"]

        # Used every second for longer than the idle timeout: it stays.
        until = time.monotonic() + IDLE_TIMEOUT + 2
        while time.monotonic() < until:
            r = s.get(stack.url(IDLE, "/"), allow_redirects=False, timeout=T)
            assert r.status_code == 200, (r.status_code, r.headers)
            time.sleep(1)

        # Unused for longer than the idle timeout: sign in again, on that host only.
        time.sleep(IDLE_TIMEOUT + 1.5)
        r = s.get(stack.url(IDLE, "/"), allow_redirects=False, timeout=T)
        assert r.status_code == 302 and "/login?" in r.headers["Location"], (r.status_code, r.headers)
        r = s.get(stack.url("sonarr", "/"), allow_redirects=False, timeout=T)
        assert r.status_code == 200, (r.status_code, r.headers)

        # The browser goes round Pocket ID (its own session still lives) and lands back.
        tab.page.goto(stack.url(IDLE, "/"))
        if tab.page.url.startswith(pocket_id.url):
            tab.approve_at_pocket_id(pocket_id)
        tab.page.wait_for_url(stack.url(IDLE, "/"))
        s = tab.session()
        assert user_of(echo_json(s.get(stack.url(IDLE, "/"), allow_redirects=False, timeout=T))) == ["alice"]
    finally:
        tab.close()
