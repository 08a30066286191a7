"""API clients with tokens Pocket ID issued, through each proxy.

The tokens come from Pocket ID's own endpoints: the code flow (alice approves
with her passkey; the code is caught on its way to the client's callback and
exchanged with the client's secret and PKCE verifier, as a script's helper
would) and ``client_credentials``. What Pocket ID put in them is written to
``observed-tokens.json`` in the run directory (the README's compatibility
table comes from it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time

import pytest

from harness import net
from harness.checks import echo_json

T = 10
# the shipped example leaves bearer tokens off; this module turns them on (default audiences: the client id)
EXTRA_CONFIG = lambda stack: "\n[bearer]\nenabled = true\n"  # noqa: E731


def claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def jose_header(jwt: str) -> dict:
    head = jwt.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))


def header(data: dict, name: str) -> list[str]:
    return [v for k, v in data["headers"] if k.lower() == name.lower()]


def bearer(stack, token: str, host: str = "grafana", path: str = "/api/dashboards/home"):
    return net.api_client().get(stack.url(host, path), headers={"Authorization": f"Bearer {token}"},
                                allow_redirects=False, timeout=T)


@pytest.fixture(scope="module")
def tokens(stack, browser, people, pocket_id, run_dir):
    """alice's tokens from pocketgate's client and from the script's client."""
    out = {}
    tab = browser.context(people["alice"])
    try:
        for name, client in (("pocketgate", stack.client), ("script", stack.script_client)):
            verifier = secrets.token_urlsafe(48)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            redirect = f"{stack.public_url}/{'callback' if name == 'pocketgate' else 'script-callback'}"
            code = tab.authorization_code(pocket_id, client.id, redirect, "openid profile email groups", challenge)
            out[name] = pocket_id.exchange_code(client, code, redirect, verifier)
    finally:
        tab.close()
    # bob signs in to Pocket ID with a one-time code, then approves pocketgate's client
    tab = browser.context(people["bob"])
    try:
        tab.page.goto(f"{pocket_id.url}/lc/{pocket_id.login_code(people['bob'].user)}")
        tab.page.wait_for_url(f"{pocket_id.url}/settings/**")
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        redirect = f"{stack.public_url}/callback"
        code = tab.authorization_code(pocket_id, stack.client.id, redirect, "openid profile email groups", challenge)
        out["bob"] = pocket_id.exchange_code(stack.client, code, redirect, verifier)
    finally:
        tab.close()
    out["client_credentials"] = pocket_id.client_credentials_token(stack.script_client)
    # one refresh of the script's tokens: is the refresh token rotated, does the old one still work?
    first = out["script"]["refresh_token"]
    r1 = pocket_id.refresh(stack.script_client, first)
    r2 = pocket_id.refresh(stack.script_client, first)
    refresh_observed = {"status": r1.status_code, "rotated": r1.ok and r1.json().get("refresh_token") != first,
                        "old_token_again": r2.status_code, "old_token_again_body": r2.text[:200]}
    observed = {
        "pocket_id_version": pocket_id.version(),
        "access_token": {"header": jose_header(out["pocketgate"]["access_token"]),
                         "claims": claims(out["pocketgate"]["access_token"])},
        "id_token": {"header": jose_header(out["pocketgate"]["id_token"]), "claims": claims(out["pocketgate"]["id_token"])},
        "id_token_otp": {"claims": claims(out["bob"]["id_token"])},
        "refresh": refresh_observed,
        "refresh_token_is_jwt": out["pocketgate"].get("refresh_token", "").count(".") == 2,
        "token_response_keys": sorted(out["pocketgate"]),
        "client_credentials": {"keys": sorted(out["client_credentials"]),
                               "claims": claims(out["client_credentials"]["access_token"])},
        "introspection_own_access_token": pocket_id.introspect(stack.client, out["pocketgate"]["access_token"]),
        "introspection_own_refresh_token": pocket_id.introspect(stack.client, out["pocketgate"]["refresh_token"])
        if out["pocketgate"].get("refresh_token") else None,
        "introspection_other_clients_token": pocket_id.introspect(stack.client, out["script"]["access_token"]),
        "discovery": pocket_id.discovery(),
    }
    (run_dir / f"observed-tokens-{stack.proxy}.json").write_text(json.dumps(observed, indent=2, sort_keys=True))
    return out


def test_an_access_token_issued_to_pocketgates_client_is_accepted(stack, tokens):
    at = tokens["pocketgate"]["access_token"]
    assert claims(at)["aud"] in (stack.client.id, [stack.client.id])
    data = echo_json(bearer(stack, at))
    assert header(data, "X-Remote-User") == ["alice"]
    # Pocket ID puts no groups in access tokens: they came from userinfo
    assert "groups" not in claims(at)
    assert sorted(header(data, "X-Remote-Groups")[0].split(",")) == ["admins", "users"]


def test_id_and_refresh_tokens_are_not_api_credentials(stack, tokens):
    r = bearer(stack, tokens["pocketgate"]["id_token"])
    assert r.status_code == 401, r.text[:200]
    assert 'error="invalid_token"' in r.headers.get("WWW-Authenticate", "")
    rt = tokens["pocketgate"].get("refresh_token")
    assert rt, "Pocket ID issued no refresh token"
    assert bearer(stack, rt).status_code == 401


def test_a_tampered_access_token_is_refused(stack, tokens):
    head, body, sig = tokens["pocketgate"]["access_token"].split(".")
    forged = json.dumps({**claims(tokens["pocketgate"]["access_token"]), "sub": "someone-else"}).encode()
    forged_body = base64.urlsafe_b64encode(forged).rstrip(b"=").decode()
    assert bearer(stack, f"{head}.{forged_body}.{sig}").status_code == 401


def test_the_script_clients_token_only_once_listed_in_audiences(stack, tokens):
    script_at = tokens["script"]["access_token"]
    r = bearer(stack, script_at)
    assert r.status_code == 401, "another client's token passed without being listed in bearer.audiences"

    stack.config_path.write_text(stack.base_config + (
        f'\n[bearer]\nenabled = true\naudiences = ["{stack.client.id}", "{stack.script_client.id}"]\n'))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and bearer(stack, script_at).status_code != 200:
        time.sleep(0.5)   # the file watch reloads the configuration
    data = echo_json(bearer(stack, script_at))
    assert header(data, "X-Remote-User") == ["alice"]
    # and pocketgate's own client still works
    assert bearer(stack, tokens["pocketgate"]["access_token"]).status_code == 200


def test_a_client_credentials_token_has_no_user_and_is_refused(stack, tokens):
    """Pocket ID's client_credentials tokens name the client (``sub`` = ``client-<id>``), not a
    person: there is nobody to put in X-Remote-User and no groups, so pocketgate refuses them
    (401) even when their audience is listed."""
    cc = tokens["client_credentials"]["access_token"]
    c = claims(cc)
    assert c["sub"] == f"client-{stack.script_client.id}", c
    stack.config_path.write_text(stack.base_config + (
        f'\n[bearer]\nenabled = true\naudiences = ["{stack.client.id}", "{stack.script_client.id}"]\n'))
    time.sleep(1.5)
    r = bearer(stack, cc)
    assert r.status_code == 401, (r.status_code, r.text[:300])
