"""Bearer tokens (``[bearer] enabled = true``) behind each shipped proxy.

The stack of this module is the shipped one plus ``[bearer] enabled = true``
in pocketgate.toml. Tokens come from the test provider's script clients
(``e2e-alice``, ``e2e-bob``: client_credentials, JWT access tokens with
``aud`` = pocketgate and the user's groups, see idp/server.mjs). Each proxy
passes the client's ``Authorization`` header to pocketgate unchanged.
"""

from __future__ import annotations

import base64
import json

import requests

from harness import flows
from harness.checks import echo_json
from harness.net import BROWSER_ACCEPT, api_client, browser
from harness.stack import Additions

T = flows.TIMEOUT

ADDITIONS = Additions(name="bearer", config=lambda text, stack: f"{text}\n[bearer]\nenabled = true\n")

_direct = requests.Session()
_direct.trust_env = False


def token(stack, client: str) -> str:
    r = _direct.post(f"{stack.issuer}/api/oidc/token", data={"grant_type": "client_credentials"},
                     auth=(client, "e2e-script-secret"), timeout=T)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def with_token(session: requests.Session, value: str) -> requests.Session:
    session.headers["Authorization"] = f"Bearer {value}"
    return session


def test_the_provider_issues_jwt_access_tokens(stack):
    header = json.loads(base64.urlsafe_b64decode(token(stack, "e2e-alice").split(".")[0] + "=="))
    assert header["typ"] == "at+jwt"


def test_a_valid_jwt_is_allowed_and_denied_by_group(stack):
    alice, bob = token(stack, "e2e-alice"), token(stack, "e2e-bob")
    data = echo_json(with_token(api_client(), alice).get(stack.url("grafana", "/api/dashboards"), timeout=T))
    assert flows.header_values(data, "X-Remote-User") == ["alice"]
    assert flows.header_values(data, "X-Remote-Groups") == ["admins,users"]
    r = with_token(api_client(), bob).get(stack.url("grafana", "/"), allow_redirects=False, timeout=T)
    assert r.status_code == 403, flows.describe(r)
    assert "echo" not in r.text
    data = echo_json(with_token(api_client(), bob).get(stack.url("sonarr", "/series"), timeout=T))
    assert flows.header_values(data, "X-Remote-User") == ["bob"]


def test_a_broken_token_is_401_never_a_redirect(stack):
    good = token(stack, "e2e-alice")
    head, payload, sig = good.split(".")
    tampered_payload = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered_payload["groups"] = ["admins", "root"]
    forged = ".".join([head, base64.urlsafe_b64encode(json.dumps(tampered_payload).encode()).decode().rstrip("="),
                       sig])
    for bad in (forged, "garbage-token", good[:-4]):
        for session in (api_client(), browser()):
            r = with_token(session, bad).get(stack.url("grafana", "/"), allow_redirects=False, timeout=T)
            assert r.status_code == 401, flows.describe(r)
            assert "location" not in {k.lower() for k in r.headers}, flows.describe(r)
            assert "echo" not in r.text
    r = with_token(api_client(), "garbage-token").get(stack.url("grafana", "/"), allow_redirects=False, timeout=T)
    assert 'error="invalid_token"' in r.headers.get("WWW-Authenticate", ""), flows.describe(r)


def test_without_a_token_a_browser_still_goes_to_login(stack):
    r = browser().get(stack.url("grafana", "/"), headers={"Accept": BROWSER_ACCEPT}, allow_redirects=False,
                      timeout=T)
    assert r.status_code == 302, flows.describe(r)


def test_a_re_encoded_jwt_is_401_through_the_proxy(stack):
    """Issue 16, finding 2: a JWT whose signature is re-encoded (``==`` padding, or the standard
    base64 alphabet) reads the same to a lenient decoder such as Pocket ID's, whose userinfo checks
    no audience. pocketgate takes it for no JWS at all: 401, whatever the proxy."""
    good = token(stack, "e2e-alice")
    head, payload, sig = good.split(".")
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    spellings = {
        "padded": base64.urlsafe_b64encode(raw).decode(),
        "standard alphabet": base64.b64encode(raw).decode().rstrip("="),
    }
    tried = 0
    for what, spelling in spellings.items():
        bad = f"{head}.{payload}.{spelling}"
        if bad == good:  # no '-' or '_' in this signature: nothing to re-spell
            continue
        tried += 1
        r = with_token(api_client(), bad).get(stack.url("grafana", "/"), allow_redirects=False, timeout=T)
        assert r.status_code == 401, f"{what}: {flows.describe(r)}"
        assert 'error="invalid_token"' in r.headers.get("WWW-Authenticate", ""), flows.describe(r)
        assert "echo" not in r.text
    assert tried >= 1
    data = echo_json(with_token(api_client(), good).get(stack.url("grafana", "/api/dashboards"), timeout=T))
    assert flows.header_values(data, "X-Remote-User") == ["alice"]
