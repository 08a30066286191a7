"""Signing in and out through each proxy against Pocket ID itself.

alice signs in with her passkey (Chromium's virtual authenticator answers
Pocket ID's WebAuthn request), bob and dave with one-time access codes; the
hosts and policies are the shipped examples' (grafana: admins, with
claim_roles mapping the group grafana-admins to admins; sonarr: users).
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from harness.checks import echo_json

T = 10


def header(data: dict, name: str) -> list[str]:
    return [v for k, v in data["headers"] if k.lower() == name.lower()]


@pytest.fixture
def alice_tab(browser, people):
    tab = browser.context(people["alice"])
    yield tab
    tab.close()


def test_passkey_sign_in_lands_on_the_original_url_with_the_identity(stack, alice_tab, pocket_id):
    url = stack.url("grafana", "/d/home?orgId=1")
    signed_before = alice_tab.assertions_made()
    alice_tab.passkey_sign_in(pocket_id, url)
    alice_tab.page.wait_for_url(url)
    assert alice_tab.assertions_made() == signed_before + 1, "the passkey was not used"

    data = echo_json(alice_tab.session().get(url, allow_redirects=False, timeout=T))
    assert data["path"] == "/d/home?orgId=1"
    assert header(data, "X-Remote-User") == ["alice"]
    assert header(data, "X-Remote-Email") == ["alice@example.test"]
    assert header(data, "X-Remote-Name") == ["Alice Tester"]
    assert sorted(header(data, "X-Remote-Groups")[0].split(",")) == ["admins", "users"]
    (assertion,) = data["assertions"]
    assert assertion["ok"], assertion
    assert assertion["claims"]["sub"] == people_id(pocket_id, "alice")
    # the browser itself shows the backend's answer, not a page of pocketgate's
    assert '"backend": "echo"' in alice_tab.page.content() or "echo" in alice_tab.text()


def people_id(pocket_id, username: str) -> str:
    (user,) = [u for u in pocket_id.api("GET", "/users")["data"] if u["username"] == username]
    return user["id"]


def test_one_time_code_sign_in_lands_on_the_original_url(stack, browser, people, pocket_id):
    bob = people["bob"]
    tab = browser.context(bob)
    try:
        url = stack.url("sonarr", "/calendar?view=week")
        tab.code_sign_in(pocket_id, url, pocket_id.login_code(bob.user))
        tab.page.wait_for_url(url)
        data = echo_json(tab.session().get(url, allow_redirects=False, timeout=T))
        assert header(data, "X-Remote-User") == ["bob"]
        assert header(data, "X-Remote-Groups") == ["users"]
        assert tab.credentials() == [], "bob has no passkey: the code alone signed him in"
    finally:
        tab.close()


def test_groups_decide_with_the_403_page(stack, browser, people, pocket_id):
    bob, carol = people["bob"], people["carol"]
    tab = browser.context(bob)
    try:
        tab.code_sign_in(pocket_id, stack.url("sonarr", "/"), pocket_id.login_code(bob.user))
        s = tab.session()
        r = s.get(stack.url("grafana", "/"), allow_redirects=False, timeout=T)
        assert r.status_code == 403, r.text[:300]
        assert "text/html" in r.headers.get("Content-Type", "")
        assert "Access denied" in r.text and "grafana.example.test" in r.text, r.text[:300]
        # and the browser shows that page, not a login loop
        tab.page.goto(stack.url("grafana", "/"))
        assert tab.page.url == stack.url("grafana", "/")
        assert "Access denied" in tab.text()
    finally:
        tab.close()

    tab = browser.context(carol)
    try:
        url = stack.url("sonarr", "/")
        tab.page.goto(url)
        tab.page.wait_for_url(f"{pocket_id.url}/**")
        tab.code_sign_in(pocket_id, url, pocket_id.login_code(carol.user))
        r = tab.session().get(url, allow_redirects=False, timeout=T)
        assert r.status_code == 403, "carol is in no group: sonarr (users) must refuse her"
    finally:
        tab.close()


def test_claim_roles_map_a_pocket_id_group_to_a_role(stack, browser, people, pocket_id):
    dave = people.get("dave")
    if dave is None:
        from support.browser import Person
        dave = people["dave"] = Person("dave", pocket_id.create_user("dave", ["grafana-admins"]))
    tab = browser.context(dave)
    try:
        url = stack.url("grafana", "/admin/users")
        tab.code_sign_in(pocket_id, url, pocket_id.login_code(dave.user))
        data = echo_json(tab.session().get(url, allow_redirects=False, timeout=T))
        # grafana admits the admins policy only: dave is let in by the role alone
        assert header(data, "X-Remote-User") == ["dave"]
        assert header(data, "X-Remote-Groups") == ["grafana-admins"]
    finally:
        tab.close()


def test_logout_goes_through_pocket_ids_end_session_and_back(stack, alice_tab, pocket_id):
    grafana = stack.url("grafana", "/")
    alice_tab.passkey_sign_in(pocket_id, grafana)
    alice_tab.page.wait_for_url(grafana)
    old = alice_tab.session()

    visited: list[str] = []
    alice_tab.page.on("request", lambda req: visited.append(req.url) if req.is_navigation_request() else None)
    # typed into the address bar (no other site asked): no confirmation page
    alice_tab.page.goto(f"{stack.public_url}/logout?rd={quote(grafana, safe='')}")
    # rd is grafana again, which now wants a sign-in: the browser ends at Pocket ID's authorize page
    alice_tab.page.wait_for_url(f"{pocket_id.url}/authorize**", timeout=20_000)
    assert grafana in visited, visited

    ends = [u for u in visited if u.startswith(f"{pocket_id.url}/api/oidc/end-session")]
    assert ends, f"no RP-initiated logout at Pocket ID: {visited}"
    assert "id_token_hint=" in ends[0] and "post_logout_redirect_uri=" in ends[0], ends[0]
    assert any(u.startswith(f"{stack.public_url}/logout/done") for u in visited), visited
    assert not any(u.startswith(f"{pocket_id.url}/logout") for u in visited), \
        "Pocket ID asked for a manual confirmation: it did not accept the id_token_hint"

    # pocketgate's session is gone: the old cookie no longer works, on any host
    for host in ("grafana", "sonarr"):
        r = old.get(stack.url(host, "/"), allow_redirects=False, headers={"Accept": "application/json"}, timeout=T)
        assert r.status_code == 401, (host, r.status_code)
    # and Pocket ID's own session too: the next sign-in asks for the passkey again
    before = alice_tab.assertions_made()
    alice_tab.approve_at_pocket_id(pocket_id)
    alice_tab.page.wait_for_url(grafana)
    assert alice_tab.assertions_made() == before + 1
