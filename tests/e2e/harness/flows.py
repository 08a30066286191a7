"""Browser-like flows: HTML forms, sign-in at the provider, sign-out.

The test provider (idp/server.mjs) shows a plain HTML form for the login and
for the logout confirmation; these helpers fill and submit them the way a
browser would, following every redirect with the session's cookie jar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import requests

TIMEOUT = 15


@dataclass
class Form:
    action: str
    method: str
    fields: dict = field(default_factory=dict)


class _FormParser(HTMLParser):
    def __init__(self, base_url: str):
        super().__init__()
        self.base_url = base_url
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._current = Form(urljoin(self.base_url, a.get("action") or self.base_url),
                                 (a.get("method") or "get").lower())
            self.forms.append(self._current)
        elif tag in ("input", "button") and self._current is not None and a.get("name"):
            if tag == "button" and (a.get("type") or "submit") == "submit":
                return  # a submit button only counts when clicked
            self._current.fields[a["name"]] = a.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def forms(html: str, base_url: str) -> list[Form]:
    parser = _FormParser(base_url)
    parser.feed(html)
    return parser.forms


def submit(session: requests.Session, form: Form, **values) -> requests.Response:
    data = {**form.fields, **values}
    if form.method == "post":
        return session.post(form.action, data=data, timeout=TIMEOUT)
    return session.get(form.action, params=data, timeout=TIMEOUT)


class FlowError(AssertionError):
    pass


def describe(resp: requests.Response) -> str:
    chain = [f"{r.status_code} {r.url} -> {r.headers.get('Location')}" for r in resp.history]
    chain.append(f"{resp.status_code} {resp.url}")
    return "\n  ".join(chain) + f"\n  body: {resp.text[:300]!r}"


def sign_in(session: requests.Session, url: str, user: str, issuer: str) -> requests.Response:
    """Open ``url`` like a browser, sign in at the provider as ``user``, and
    return the response the browser finally lands on."""
    first = session.get(url, timeout=TIMEOUT)
    if not first.url.startswith(issuer + "/interaction/"):
        raise FlowError(f"expected the provider's login page for {url}, got:\n  {describe(first)}")
    login_forms = [f for f in forms(first.text, first.url) if "username" in f.fields]
    if not login_forms:
        raise FlowError(f"no login form on the provider's page:\n  {describe(first)}")
    landed = submit(session, login_forms[0], username=user)
    landed.sign_in_start = first  # type: ignore[attr-defined]
    return landed


def sign_out(session: requests.Session, logout_url: str, max_forms: int = 3) -> list[requests.Response]:
    """Open the logout URL; confirm the provider's sign-out form if shown.
    Returns every response landed on (redirect chains included in .history)."""
    pages = [session.get(logout_url, timeout=TIMEOUT)]
    for _ in range(max_forms):
        page = pages[-1]
        if "html" not in (page.headers.get("Content-Type") or ""):
            break
        confirm = [f for f in forms(page.text, page.url) if "logout" in f.fields or "xsrf" in f.fields]
        if not confirm:
            break
        pages.append(submit(session, confirm[0]))
    return pages


def visited(pages: list[requests.Response]) -> list[str]:
    urls = []
    for page in pages:
        urls.extend(r.url for r in page.history)
        urls.append(page.url)
    return urls


# --- identity headers as the backend saw them ------------------------------

def fold(name: str) -> str:
    """Header name as a CGI/WSGI backend would read it: case and _/- folded."""
    return name.lower().replace("_", "-")


def identity_headers(echo_json: dict) -> list[tuple[str, str]]:
    """Every header the echo backend got whose folded name is X-Remote-*."""
    return [(k, v) for k, v in echo_json["headers"] if fold(k).startswith("x-remote-")]


def header_values(echo_json: dict, name: str) -> list[str]:
    return [v for k, v in echo_json["headers"] if fold(k) == fold(name)]
