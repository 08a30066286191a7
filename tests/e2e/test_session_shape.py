"""The session's shape end to end, behind each proxy example:
``[session] idle_timeout`` (here "3s") ends a session nobody uses, and a
session in use lives on.

``ADDITIONS`` puts ``idle_timeout = "3s"`` into the example's ``[session]``
(the store is the default, embedded). Idleness is counted in whole
seconds, so "unused for longer than 3 s" is sure after 4.5 s.
"""

from __future__ import annotations

import re
import time

import requests

from harness import flows
from harness.checks import assert_login_required, cookie_header, logged_in, raw_echo
from harness.net import BROWSER_ACCEPT, raw_request
from harness.stack import Additions

T = flows.TIMEOUT
IDLE = 3


def _config(text: str, stack) -> str:
    text, n = re.subn(r'^lifetime = "12h"$', f'lifetime = "12h"\nidle_timeout = "{IDLE}s"', text, count=1,
                      flags=re.M)
    assert n == 1, "examples/pocketgate.toml has no [session] lifetime line"
    return text


ADDITIONS = Additions(name="session-shape", config=_config)


def _code(stack, s: requests.Session) -> requests.Response:
    return s.get(stack.url("code", "/"), allow_redirects=False, headers={"Accept": "application/json"},
                 timeout=T)


def _idle_ended(stack) -> int:
    text = requests.get(f"http://127.0.0.1:{stack.ports.auth}/metrics", timeout=T).text
    found = re.search(r'^pocketgate_sessions_ended_total\{reason="idle"\} (\d+)', text, re.M)
    assert found, f"no idle reason in /metrics:\n{text[:2000]}"
    return int(found.group(1))


def test_an_unused_session_ends_after_idle_timeout(stack):
    user = stack.new_user(["users"], prefix="idle")
    s = logged_in(stack, user)
    copy = cookie_header(s, "code.example.test")
    r = _code(stack, s)
    assert r.status_code == 200, flows.describe(r)
    ended_before = _idle_ended(stack)
    time.sleep(IDLE + 1.5)
    resp = raw_request(stack.ports.proxy, stack.host("code"), "/",
                       headers=[("Accept", BROWSER_ACCEPT), ("Cookie", copy)])
    assert not raw_echo(resp), (resp.status, resp.body[:300])
    assert_login_required(resp, stack, browser_like=True)
    assert_login_required(_code(stack, s), stack, browser_like=False)
    assert _idle_ended(stack) == ended_before + 1


def test_a_session_used_every_second_lives_on(stack):
    user = stack.new_user(["users"], prefix="busy")
    s = logged_in(stack, user)
    # Twice the idle timeout and more, a request a second, each one let through.
    for i in range(2 * IDLE + 3):
        r = _code(stack, s)
        assert r.status_code == 200, (i, flows.describe(r))
        time.sleep(1)
    assert _code(stack, s).status_code == 200
