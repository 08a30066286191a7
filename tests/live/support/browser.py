"""Debian's Chromium, driven by Playwright, with a virtual passkey authenticator.

Each person gets a browser context of their own (their own cookies) with a
virtual authenticator from the DevTools protocol's ``WebAuthn`` domain: an
internal platform authenticator with user verification, which answers
``navigator.credentials.create/get`` the way a phone or a laptop's built-in
passkey would. A passkey registered once is kept (its private key, from
``WebAuthn.getCredentials``) and put into the authenticator of every later
context of that person, as a synced passkey would be.

``*.example.test`` resolves to 127.0.0.1 inside this Chromium only
(``--host-resolver-rules``); Pocket ID is ``localhost``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import requests

from harness import net

CHROMIUM = os.environ.get("LIVE_CHROMIUM") or "/usr/bin/chromium"
STEP_TIMEOUT_MS = 20_000


@dataclass
class Person:
    """Someone with a Pocket ID account and, maybe, a passkey."""
    username: str
    user: object                       # pocket_id.User
    passkeys: list[dict] = field(default_factory=list)   # WebAuthn.Credential objects


class Browser:
    def __init__(self, playwright) -> None:
        self.chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--host-resolver-rules=MAP *.example.test 127.0.0.1, MAP *.example-org.test 127.0.0.1"],
        )

    def close(self) -> None:
        self.chromium.close()

    def context(self, person: Person | None = None) -> "Tab":
        ctx = self.chromium.new_context()
        ctx.set_default_timeout(STEP_TIMEOUT_MS)
        ctx.set_default_navigation_timeout(STEP_TIMEOUT_MS)
        page = ctx.new_page()
        cdp = ctx.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
        auth = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
            "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True,
        }})["authenticatorId"]
        tab = Tab(ctx, page, cdp, auth, person)
        for cred in (person.passkeys if person else []):
            cdp.send("WebAuthn.addCredential", {"authenticatorId": auth, "credential": cred})
        return tab


@dataclass
class Tab:
    ctx: object
    page: object
    cdp: object
    authenticator: str
    person: Person | None

    def close(self) -> None:
        self.ctx.close()

    def credentials(self) -> list[dict]:
        return self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.authenticator})["credentials"]

    def assertions_made(self) -> int:
        """How many times the authenticator signed (the sum of its credentials' counters)."""
        return sum(c.get("signCount", 0) for c in self.credentials())

    def text(self) -> str:
        return self.page.evaluate("document.body ? document.body.innerText : ''")

    def wait_away_from(self, origin: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.page.url.startswith(origin):
                return
            self.page.wait_for_timeout(100)
        raise AssertionError(f"still at {self.page.url} after {timeout:g} s; page says: {self.text()[:400]}")

    # -- Pocket ID's own pages --------------------------------------------------------
    def register_passkey(self, pocket_id, code: str) -> dict:
        """Sign in to Pocket ID with a one-time code, add a passkey on the account page, keep it."""
        self.page.goto(f"{pocket_id.url}/lc/{code}")
        self.page.wait_for_url(f"{pocket_id.url}/settings/**")
        self.page.goto(f"{pocket_id.url}/settings/account")
        before = len(self.credentials())
        self.page.get_by_role("button", name="Add Passkey").first.click()
        deadline = time.monotonic() + 15
        while len(self.credentials()) == before and time.monotonic() < deadline:
            self.page.wait_for_timeout(100)
        creds = self.credentials()
        assert len(creds) > before, f"no passkey was created; page says: {self.text()[:400]}"
        # wait until Pocket ID stored it (the page lists it)
        self.page.wait_for_load_state("networkidle")
        self.person.passkeys = creds
        return creds[-1]

    def sign_out_of_pocket_id(self, pocket_id) -> None:
        """Forget Pocket ID's own session in this browser (pocketgate's cookies stay)."""
        self.ctx.clear_cookies(domain="localhost")

    def approve_at_pocket_id(self, pocket_id, timeout: float = 30.0) -> None:
        """On Pocket ID's authorize page: press "Sign in" (a passkey when not signed in, then
        the consent the first time) until the browser leaves Pocket ID."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.page.url.startswith(pocket_id.url):
            url = self.page.url
            if "/authorize" in url and self._enabled(self.page.get_by_role("button", name="Sign in", exact=True)):
                self.page.get_by_role("button", name="Sign in", exact=True).first.click(timeout=2000)
                # the click leaves Pocket ID, or shows the consent card on the same page
                t_end = time.monotonic() + 3
                while time.monotonic() < t_end and self.page.url == url:
                    self.page.wait_for_timeout(100)
            else:
                self.page.wait_for_timeout(200)
        self.wait_away_from(pocket_id.url, timeout=max(1.0, deadline - time.monotonic()))

    def _enabled(self, locator) -> bool:
        try:
            return locator.count() > 0 and locator.first.is_enabled(timeout=500)
        except Exception:   # the page navigated away meanwhile
            return False

    # -- through the proxy ---------------------------------------------------------------
    def passkey_sign_in(self, pocket_id, url: str) -> None:
        """Open a protected URL and sign in with the passkey on Pocket ID's page."""
        self.page.goto(url)
        self.page.wait_for_url(f"{pocket_id.url}/**")
        self.approve_at_pocket_id(pocket_id)

    def code_sign_in(self, pocket_id, url: str, code: str) -> None:
        """Open a protected URL; at Pocket ID, sign in with a one-time code, then approve."""
        self.page.goto(url)
        self.page.wait_for_url(f"{pocket_id.url}/**")
        parts = urlsplit(self.page.url)
        back = parts.path + (f"?{parts.query}" if parts.query else "")
        if back.startswith("/login"):   # Pocket ID sent us to its login page: go on to where it would return
            from urllib.parse import parse_qs
            back = parse_qs(parts.query).get("redirect", ["/"])[0]
        self.page.goto(f"{pocket_id.url}/lc/{code}?redirect={quote(back, safe='')}")
        self.page.wait_for_url(f"{pocket_id.url}/authorize**")
        self.approve_at_pocket_id(pocket_id)

    def authorization_code(self, pocket_id, client_id: str, redirect_uri: str, scope: str,
                           challenge: str) -> str:
        """Run Pocket ID's authorization endpoint for ``client_id`` the way a script's helper
        page would, and catch the code on its way to ``redirect_uri`` (which never sees it)."""
        from urllib.parse import parse_qs, urlencode
        caught: list[str] = []

        def catch(route):
            caught.append(route.request.url)
            route.fulfill(status=200, content_type="text/plain", body="code caught")

        self.page.route(f"{redirect_uri}**", catch)
        try:
            query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
                               "scope": scope, "state": "live-suite", "code_challenge": challenge,
                               "code_challenge_method": "S256"})
            self.page.goto(f"{pocket_id.url}/authorize?{query}")
            self.approve_at_pocket_id(pocket_id)
        finally:
            self.page.unroute(f"{redirect_uri}**")
        assert caught, f"no code reached {redirect_uri}; at {self.page.url}"
        params = parse_qs(urlsplit(caught[0]).query)
        assert params.get("state") == ["live-suite"], caught[0]
        return params["code"][0]

    def session(self, source_ip: str | None = None, accept: str = "text/html") -> requests.Session:
        """A requests session (inside the test process) with this browser's cookies for
        ``*.example.test``, for status codes and exact headers."""
        s = net.browser(source_ip) if accept == "text/html" else net.api_client(source_ip)
        for c in self.ctx.cookies():
            if c["domain"].lstrip(".").endswith((".test", "example.test")):
                s.cookies.set(c["name"], c["value"], domain=c["domain"], path=c["path"])
        return s
