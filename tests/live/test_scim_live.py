"""Pocket ID tells pocketgate first: SCIM deprovisioning through each proxy.

``pocket-id setup`` makes pocketgate's client and its SCIM service provider
(endpoint: pocketgate's ``/scim/v2`` on loopback, token in ``[scim]
token_file``) before pocketgate starts. ``refresh_interval`` is 30 minutes
here, so nothing but SCIM can end a session within the test's bounds: a
user disabled in Pocket ID, once a sync is triggered through its API, is
signed out within 5 seconds of the sync returning; a user removed from
``admins`` is denied on the next request after the sync.

The users are this module's own (created per proxy, signed in with
one-time codes), so disabling one touches no other test. The suite's
groups keep Pocket ID's default naming (friendly name "Admins", name
``admins``): SCIM carries the friendly name, tokens the name, and pocketgate
matches the two (docs/src/scim.md).
"""

from __future__ import annotations

import secrets
import time


from harness.checks import echo_json
from support.browser import Person
from support.pocket_id import Client
from support.stack import own_client_config

T = 10
DEPROVISIONED_WITHIN = 5.0


def _client_id(stack) -> str:
    return f"pg-scim-{stack.proxy}"


def SETUP(stack) -> Client:
    token_file = stack.workdir / "scim-token"
    secret_file = own_client_config(stack, _client_id(stack), f'\n[scim]\ntoken_file = "{token_file}"\n')
    # only SCIM may end a session within this module's bounds
    stack.env["POCKETGATE_SESSION__REFRESH_INTERVAL"] = "30m"
    rc, out = stack.pocketgate_cli(
        "pocket-id", "setup", "--url", stack.pocket_id.url,
        "--api-key-file", str(stack.pocket_id.api_key_file(stack.workdir)),
        "--scim-endpoint", f"http://127.0.0.1:{stack.ports.auth}/scim/v2")
    assert rc == 0, out
    assert token_file.exists() and secret_file.exists(), out
    return Client(_client_id(stack), secret_file.read_text().strip(), _client_id(stack))


def _sync(stack) -> float:
    """Trigger Pocket ID's SCIM sync of pocketgate's provider; the monotonic time it returned."""
    provider = stack.pocket_id.scim_provider(_client_id(stack))
    assert provider is not None, "pocket-id setup made no SCIM service provider"
    stack.pocket_id.sync_scim(provider["id"])
    return time.monotonic()


def _signed_in(stack, browser, pocket_id, prefix: str, groups: list[str], host: str):
    name = f"{prefix}{secrets.token_hex(3)}"
    person = Person(name, pocket_id.create_user(name, groups))
    tab = browser.context(person)
    try:
        url = stack.url(host, "/")
        tab.code_sign_in(pocket_id, url, pocket_id.login_code(person.user))
        tab.page.wait_for_url(url)
        s = tab.session(accept="application/json")
    finally:
        tab.close()
    echo_json(s.get(stack.url(host, "/"), allow_redirects=False, timeout=T))
    return person, s


def _poll(s, url: str, until, timeout: float) -> tuple[int | None, float]:
    """GET ``url`` every 0.2 s until ``until(status)``; the status and the seconds since the start."""
    start = time.monotonic()
    status = None
    while time.monotonic() - start < timeout:
        status = s.get(url, allow_redirects=False, timeout=T).status_code
        if until(status):
            break
        time.sleep(0.2)
    return status, time.monotonic() - start


def test_a_user_disabled_in_pocket_id_is_signed_out_within_5_s_of_the_sync(stack, browser, pocket_id):
    bob, s = _signed_in(stack, browser, pocket_id, "bob", ["users"], "sonarr")
    sonarr = stack.url("sonarr", "/")
    _sync(stack)   # pocketgate learns bob (active) from Pocket ID
    assert s.get(sonarr, allow_redirects=False, timeout=T).status_code == 200

    pocket_id.set_disabled(bob.user, True)
    try:
        _sync(stack)
        status, took = _poll(s, sonarr, lambda st: st != 200, DEPROVISIONED_WITHIN + 5)
        assert status == 401, f"still {status} {took:.1f} s after the sync returned"
        assert took <= DEPROVISIONED_WITHIN, f"signed out only {took:.1f} s after the sync returned"
        # the session is gone, not paused: enabling bob again does not bring it back
        pocket_id.set_disabled(bob.user, False)
        _sync(stack)
        assert s.get(sonarr, allow_redirects=False, timeout=T).status_code == 401
        print(f"[{stack.proxy}] signed out {took:.2f} s after the SCIM sync returned")
    finally:
        pocket_id.set_disabled(bob.user, False)


def test_a_user_removed_from_admins_is_denied_on_the_next_request_after_the_sync(stack, browser, pocket_id):
    alice, s = _signed_in(stack, browser, pocket_id, "alice", ["admins", "users"], "grafana")
    grafana = stack.url("grafana", "/")
    _sync(stack)
    assert s.get(grafana, allow_redirects=False, timeout=T).status_code == 200

    # on the group's members page: Pocket ID 2.9.0 does not push a removal
    # made on the user's groups page (it marks only the groups joined as changed)
    pocket_id.remove_from_group(alice.user, "admins")
    _sync(stack)
    assert s.get(grafana, allow_redirects=False, timeout=T).status_code == 403
    # the session lives on with its new groups: sonarr (users) still lets alice in
    assert s.get(stack.url("sonarr", "/"), allow_redirects=False, timeout=T).status_code == 200
