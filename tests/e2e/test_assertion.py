"""The signed identity assertion through Caddy, nginx and Traefik.

The shipped examples turn ``[assertion]`` on (header ``X-Pocketgate-Assertion``)
and every proxy example copies pocketgate's header to the backend and strips
the client's. The echo backend verifies every assertion it receives (PyJWT,
ES256, the JWKS from ``/.well-known/jwks.json`` through the proxy, ``aud`` =
its own origin) and reports the outcome. ``ADDITIONS`` only points
``assertion.key_file`` at a key file in the work directory, so that the
rotation test can replace the key; the start key is written by ``_prepare``.

Users: bob (users).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from harness.checks import cookie_header, echo_json, logged_in, raw_echo
from harness.configs import ADDR_LAN, TEST_DOMAIN
from harness.echo import verify_assertion
from harness.net import api_client, raw_request
from harness.stack import Additions

T = 15
KEY_FILE = "assertion.pem"
SPELLINGS = ["X-Pocketgate-Assertion", "x-pocketgate-assertion", "X_Pocketgate_Assertion"]


def _new_key_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _config(text: str, stack) -> str:
    text, n = re.subn(r"^# key_file = [^\n]*$", f'key_file = "{KEY_FILE}"', text, count=1, flags=re.M)
    assert n == 1, "examples/pocketgate.toml has no commented assertion key_file line"
    return text


def _prepare(workdir: Path) -> None:
    (workdir / KEY_FILE).write_bytes(_new_key_pem())


ADDITIONS = Additions(name="assertion", config=_config, prepare=_prepare)


@pytest.fixture(scope="module")
def bob(stack):
    return logged_in(stack, "bob")


def _assertions(data: dict) -> list[dict]:
    return data["assertions"]


def _only_valid(data: dict, stack, site: str) -> dict:
    got = _assertions(data)
    assert len(got) == 1, got
    assert got[0]["ok"], got
    claims = got[0]["claims"]
    assert claims["aud"] == f"http://{stack.host(site)}", claims
    assert claims["iss"] == stack.public_url, claims
    return got[0]


def test_every_allow_carries_an_assertion_the_backend_verifies(stack, bob):
    for site in ("code", "sonarr"):
        data = echo_json(bob.get(stack.url(site, "/page"), timeout=T))
        claims = _only_valid(data, stack, site)["claims"]
        assert claims["preferred_username"] == "bob", claims
        assert "users" in claims["groups"], claims
        assert claims["exp"] - claims["iat"] == 60, claims


def test_the_jwks_is_served_through_the_proxy(stack):
    r = api_client().get(f"{stack.public_url}/.well-known/jwks.json", timeout=T)
    assert r.status_code == 200, r.text
    keys = r.json()["keys"]
    assert keys and all(k["kty"] == "EC" and k["alg"] == "ES256" for k in keys), keys


def test_a_client_forged_assertion_never_reaches_the_backend(stack, bob):
    # Signed by the client's own key, naming the real key's kid and an admin.
    real_kid = api_client().get(f"{stack.public_url}/.well-known/jwks.json", timeout=T).json()["keys"][0]["kid"]
    now = int(time.time())
    forged = jwt.encode({"iss": stack.public_url, "aud": f"http://{stack.host('code')}", "sub": "mallory",
                         "preferred_username": "mallory", "groups": ["admins"], "iat": now, "exp": now + 60},
                        _new_key_pem(), algorithm="ES256", headers={"kid": real_kid})
    assert not verify_assertion(forged, stack.host("code"))["ok"], "the backend refuses a forged assertion"
    headers = [("Accept", "application/json"), *[(name, forged) for name in SPELLINGS]]

    # Signed in: only pocketgate's assertion arrives, and it is bob's.
    signed_in = raw_request(stack.ports.proxy, stack.host("code"), "/",
                            headers=[*headers, ("Cookie", cookie_header(bob, f"code.{TEST_DOMAIN}"))])
    data = raw_echo(signed_in)
    assert data is not None, signed_in.status
    assert _only_valid(data, stack, "code")["claims"]["sub"] != "mallory"
    assert forged not in [v for _, v in data["headers"]]

    # Bypassed (the LAN on the "bypass" policy; sonarr's /api from the LAN): none at all.
    for site, path in (("lan", "/"), ("sonarr", "/api/v3/queue")):
        r = raw_request(stack.ports.proxy, stack.host(site), path, headers=headers, source_ip=ADDR_LAN)
        data = raw_echo(r)
        assert data is not None, (site, r.status)
        assert _assertions(data) == [], (site, data["headers"])


def test_key_rotation_keeps_verification_working(stack, bob):
    before = echo_json(bob.get(stack.url("code", "/before"), timeout=T))
    old = _only_valid(before, stack, "code")
    old_token = next(v for k, v in before["headers"] if k.lower() == "x-pocketgate-assertion")

    # Replace the key file the way an operator would (write aside, rename over):
    # pocketgate's file watch reloads it.
    path = stack.workdir / KEY_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(_new_key_pem())
    tmp.rename(path)
    deadline = time.monotonic() + 20
    while True:
        kids = [k["kid"] for k in api_client().get(f"{stack.public_url}/.well-known/jwks.json",
                                                     timeout=T).json()["keys"]]
        if len(kids) == 2:
            break
        assert time.monotonic() < deadline, f"the new key never appeared: {kids}"
        time.sleep(0.2)
    assert kids[1] == old["kid"], "the old key stays published after the new one"

    after = echo_json(bob.get(stack.url("code", "/after"), timeout=T))
    new = _only_valid(after, stack, "code")
    assert new["kid"] == kids[0] != old["kid"], (new, old)
    # An assertion signed before the switch still verifies.
    assert verify_assertion(old_token, stack.host("code"))["ok"]
