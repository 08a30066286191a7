"""An admin denied because the groups scope is missing: Pocket ID then sends no groups claim.

The configuration is the shipped example with ``oidc.scopes`` lacking
``groups``, the mistake behind many "why is my admin denied" reports.
"""

from __future__ import annotations

from harness.checks import echo_json

T = 10


def EDIT_CONFIG(text: str) -> str:  # noqa: N802 (the harness's hook name)
    old = 'scopes = ["openid", "profile", "email", "groups"]'
    assert old in text, "the example's scopes line changed: update this test"
    return text.replace(old, 'scopes = ["openid", "profile", "email"]')


def test_an_admin_without_the_groups_scope_is_denied_and_told_why(stack, browser, people, pocket_id):
    mark = len(stack.pocketgate_log())
    tab = browser.context(people["alice"])
    try:
        tab.passkey_sign_in(pocket_id, stack.url("sonarr", "/"))
        r = tab.session().get(stack.url("grafana", "/"), allow_redirects=False, timeout=T)
    finally:
        tab.close()
    assert r.status_code == 403, "alice is in admins at Pocket ID, but pocketgate never saw her groups"
    log = stack.pocketgate_log()[mark:]
    assert 'no "groups" claim' in log and "oidc.scopes" in log, log[-2000:]

    code, out = stack.pocketgate_cli("check")
    assert 'lacks "groups"' in out and "oidc.scopes" in out, out


def test_with_the_groups_scope_the_same_admin_is_allowed(stack, browser, people, pocket_id):
    """The fix, applied: the scope added (a reload), a new sign-in carries the groups."""
    stack.config_path.write_text(stack.base_config.replace(
        'scopes = ["openid", "profile", "email"]', 'scopes = ["openid", "profile", "email", "groups"]'))
    import time
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and "configuration reloaded" not in stack.pocketgate_log():
        time.sleep(0.3)
    tab = browser.context(people["alice"])
    try:
        tab.passkey_sign_in(pocket_id, stack.url("grafana", "/"))
        data = echo_json(tab.session().get(stack.url("grafana", "/"), allow_redirects=False, timeout=T))
        assert [v for k, v in data["headers"] if k == "X-Remote-User"] == ["alice"]
    finally:
        tab.close()
