"""``pocketgate pocket-id setup`` against Pocket ID itself, through each proxy.

pocketgate's client is not made by the suite here: before pocketgate starts,
``pocket-id setup`` creates it from the configuration (callback and logout
URLs, PKCE, its secret written to ``client_secret_file``) together with the
SCIM service provider and its token; pocketgate then starts with that
configuration and alice signs in with her passkey. A second run, dry or
real, changes nothing; a callback URL changed in Pocket ID is put back.
"""

from __future__ import annotations

import stat

import pytest

from harness.checks import echo_json
from support.pocket_id import Client
from support.stack import own_client_config

T = 10


def _client_id(stack) -> str:
    return f"pg-setup-{stack.proxy}"


def _setup(stack, *more: str) -> tuple[int, str]:
    return stack.pocketgate_cli(
        "pocket-id", "setup", "--url", stack.pocket_id.url,
        "--api-key-file", str(stack.pocket_id.api_key_file(stack.workdir)),
        "--scim-token-file", str(stack.workdir / "scim-token"),
        "--scim-endpoint", f"http://127.0.0.1:{stack.ports.auth}/scim/v2",
        *more)


def SETUP(stack) -> Client:
    """The configuration names its own client and secret file; setup makes both."""
    secret_file = own_client_config(stack, _client_id(stack))
    for g in ("admins", "users"):   # the suite's groups: friendly names "Admins", "Users"
        stack.pocket_id.group(g)
    stack.first_setup = _setup(stack)
    secret = secret_file.read_text().strip() if secret_file.exists() else ""
    return Client(_client_id(stack), secret, _client_id(stack))


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_first_run_creates_the_client_and_the_files(stack, pocket_id):
    rc, out = stack.first_setup
    assert rc == 0, out
    assert f'create OIDC client "{_client_id(stack)}"' in out, out
    assert "create the SCIM service provider" in out, out
    assert f'client_id = "{_client_id(stack)}"' in out, out   # the configuration lines
    # "Admins" is the friendly name Pocket ID derives "admins" from: SCIM
    # matches the two, so there is nothing to warn about
    assert "by its friendly name" not in out, out
    client = pocket_id.api("GET", f"/oidc/clients/{_client_id(stack)}")
    assert client["callbackURLs"] == [f"{stack.public_url}/callback"]
    assert client["logoutCallbackURLs"] == [f"{stack.public_url}/logout/done"]
    assert client["pkceEnabled"] and not client["isPublic"]
    for f in ("client-secret", "scim-token"):
        assert _mode(stack.workdir / f) == 0o600, f
    scim = pocket_id.scim_provider(_client_id(stack))
    assert scim["endpoint"] == f"http://127.0.0.1:{stack.ports.auth}/scim/v2"
    assert scim["token"] == (stack.workdir / "scim-token").read_text().strip()


def test_alice_signs_in_with_the_client_setup_made(stack, browser, people, pocket_id):
    tab = browser.context(people["alice"])
    try:
        url = stack.url("grafana", "/setup-check")
        tab.passkey_sign_in(pocket_id, url)
        tab.page.wait_for_url(url)
        data = echo_json(tab.session().get(url, allow_redirects=False, timeout=T))
        assert [v for k, v in data["headers"] if k.lower() == "x-remote-user"] == ["alice"]
    finally:
        tab.close()


def test_a_second_run_dry_or_real_changes_nothing(stack, pocket_id):
    before = pocket_id.api("GET", f"/oidc/clients/{_client_id(stack)}")
    secret = (stack.workdir / "client-secret").read_text()
    token = (stack.workdir / "scim-token").read_text()
    for more in (("--dry-run",), ()):
        rc, out = _setup(stack, *more)
        assert rc == 0, out
        assert "Pocket ID is up to date: nothing to change" in out, out
    assert pocket_id.api("GET", f"/oidc/clients/{_client_id(stack)}") == before
    assert (stack.workdir / "client-secret").read_text() == secret
    assert (stack.workdir / "scim-token").read_text() == token


def test_a_drifted_callback_url_is_planned_then_put_back(stack, pocket_id):
    cid = _client_id(stack)
    body = pocket_id.api("GET", f"/oidc/clients/{cid}")
    body["callbackURLs"] = ["http://elsewhere.example.test/callback"]
    for k in ("id", "allowedUserGroups", "hasLogo", "hasDarkLogo"):
        body.pop(k, None)
    pocket_id.api("PUT", f"/oidc/clients/{cid}", json=body)

    rc, out = _setup(stack, "--dry-run")
    assert rc == 0 and "callback URLs [http://elsewhere.example.test/callback] ->" in out, out
    assert pocket_id.api("GET", f"/oidc/clients/{cid}")["callbackURLs"] == ["http://elsewhere.example.test/callback"]
    rc, out = _setup(stack)
    assert rc == 0 and f'update OIDC client "{cid}"' in out, out
    assert pocket_id.api("GET", f"/oidc/clients/{cid}")["callbackURLs"] == [f"{stack.public_url}/callback"]
    rc, out = _setup(stack)
    assert "nothing to change" in out, out


@pytest.mark.parametrize("key, expected", [
    ("not-the-key", "Pocket ID refused the API key (401"),
])
def test_a_wrong_api_key_is_said_so(stack, tmp_path, key, expected):
    bad = tmp_path / "key"
    bad.write_text(key)
    bad.chmod(0o600)
    rc, out = stack.pocketgate_cli("pocket-id", "setup", "--url", stack.pocket_id.url,
                                   "--api-key-file", str(bad), "--no-scim")
    assert rc == 1 and expected in out, out
