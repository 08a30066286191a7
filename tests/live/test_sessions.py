"""What happens to sessions when things change at Pocket ID, through each proxy.

Every test here has users of its own (created through the admin API, signed
in with one-time codes), so what it does to them touches no other test.
pocketgate runs with ``refresh_interval = 5s``.
"""

from __future__ import annotations

import secrets
import time

import pytest

from harness import net
from harness.checks import echo_json
from support.browser import Person
from support.stack import REFRESH_INTERVAL

T = 10
# a refresh is due after refresh_interval and happens on the next request; Pocket ID answers in ms
WITHIN = REFRESH_INTERVAL + 8


def _signed_in(stack, browser, pocket_id, groups: list[str], host: str = "grafana"):
    name = f"u{secrets.token_hex(3)}"
    person = Person(name, pocket_id.create_user(name, groups))
    tab = browser.context(person)
    url = stack.url(host, "/")
    tab.code_sign_in(pocket_id, url, pocket_id.login_code(person.user))
    tab.page.wait_for_url(url)
    s = tab.session(accept="application/json")
    tab.close()
    return person, s


def _poll(s, url: str, until, timeout: float) -> tuple[int, float]:
    """GET ``url`` every 0.5 s until ``until(status)``; returns the status and the seconds it took."""
    start = time.monotonic()
    status = None
    while time.monotonic() - start < timeout:
        status = s.get(url, allow_redirects=False, timeout=T).status_code
        if until(status):
            return status, time.monotonic() - start
        time.sleep(0.5)
    return status, time.monotonic() - start


def test_a_group_removed_in_pocket_id_denies_within_the_refresh_interval(stack, browser, pocket_id):
    person, s = _signed_in(stack, browser, pocket_id, ["admins", "users"])
    grafana = stack.url("grafana", "/")
    echo_json(s.get(grafana, allow_redirects=False, timeout=T))

    pocket_id.set_groups(person.user, ["users"])
    status, took = _poll(s, grafana, lambda st: st != 200, WITHIN)
    assert status == 403, f"still {status} {took:.1f} s after alice left admins"
    # the session itself lives on: sonarr (users) still lets the user in
    r = s.get(stack.url("sonarr", "/"), allow_redirects=False, timeout=T)
    assert r.status_code == 200, r.status_code
    print(f"[{stack.proxy}] denied {took:.1f} s after the change (refresh_interval {REFRESH_INTERVAL:g} s)")


def test_a_disabled_user_is_signed_out(stack, browser, pocket_id):
    person, s = _signed_in(stack, browser, pocket_id, ["users"], host="sonarr")
    sonarr = stack.url("sonarr", "/")
    echo_json(s.get(sonarr, allow_redirects=False, timeout=T))

    pocket_id.set_disabled(person.user, True)
    status, took = _poll(s, sonarr, lambda st: st != 200, WITHIN)
    assert status == 401, f"still {status} {took:.1f} s after the user was disabled"
    assert "refresh_invalid" in stack.pocketgate_log() or "ended" in stack.pocketgate_log()
    # and stays out, also once enabled again (the session is gone, not paused)
    pocket_id.set_disabled(person.user, False)
    assert s.get(sonarr, allow_redirects=False, timeout=T).status_code == 401


def test_pocket_id_restarted_sessions_continue(stack, browser, pocket_id):
    person, s = _signed_in(stack, browser, pocket_id, ["users"], host="sonarr")
    sonarr = stack.url("sonarr", "/")
    pocket_id.stop()
    try:
        pocket_id.start()
    except Exception:
        pytest.fail("Pocket ID did not start again on its data")
    for _ in range(3):
        assert s.get(sonarr, allow_redirects=False, timeout=T).status_code == 200
    time.sleep(REFRESH_INTERVAL + 1)   # a refresh against the restarted Pocket ID
    assert s.get(sonarr, allow_redirects=False, timeout=T).status_code == 200
    assert s.get(sonarr, allow_redirects=False, timeout=T).status_code == 200


def test_pocket_id_stopped_sessions_continue_and_a_new_sign_in_gets_a_503_page(stack, browser, pocket_id):
    person, s = _signed_in(stack, browser, pocket_id, ["users"], host="sonarr")
    sonarr = stack.url("sonarr", "/")
    pocket_id.stop()
    try:
        end = time.monotonic() + 2 * REFRESH_INTERVAL + 1
        n = 0
        while time.monotonic() < end:   # refreshes fail meanwhile: nobody is logged out
            r = s.get(sonarr, allow_redirects=False, timeout=T)
            assert r.status_code == 200, f"request {n} during the outage: {r.status_code}"
            n += 1
            time.sleep(0.5)

        # a newcomer: pocketgate's own page says Pocket ID cannot be reached (no loop, no browser error)
        tab = browser.context()
        try:
            tab.page.goto(stack.url("sonarr", "/new"))
            assert tab.page.url.startswith(stack.public_url + "/login"), tab.page.url
            text = tab.text()
            assert "cannot be reached" in text or "unavailable" in text.lower(), text[:300]
        finally:
            tab.close()
        r = net.browser().get(stack.url("sonarr", "/new"), timeout=T)
        assert r.status_code == 503, (r.status_code, r.url)
        assert r.url.startswith(stack.public_url + "/login")
        assert len(r.history) <= 2, [h.url for h in r.history]
        assert r.headers.get("Retry-After")
    finally:
        pocket_id.start()
    # Pocket ID back: the session still works, and within seconds sign-ins start again
    assert s.get(sonarr, allow_redirects=False, timeout=T).status_code == 200
    login = f"{stack.public_url}/login?rd={sonarr}"
    status, took = _poll(net.browser(), login, lambda st: st == 302, 10)
    assert status == 302, f"sign-ins still refused {took:.1f} s after Pocket ID came back"
    _signed_in(stack, browser, pocket_id, ["users"], host="sonarr")
