"""A stand-in for pocketgate that proves the proxy examples' wiring.

Run as a script: ``python -m harness.stub_auth PUBLIC_URL`` binds 127.0.0.1 on
an ephemeral port and prints ``{"port": N}``.

It speaks pocketgate's contract with a fixed decision per path of the original
request, so the proxy side can be checked without an identity provider:

- ``/allow...``  200 with X-Remote-User/-Email/-Name/-Groups for ``stubuser``
- ``/bypass...`` 200 without identity headers
- ``/deny...``   403
- anything else  login: ``/forward-auth`` answers 302 to ``PUBLIC_URL/login?rd=``
  for browsers (Accept has text/html) and 401 otherwise; ``/auth-request``
  answers 401 with that ``Location`` for browsers, a plain 401 otherwise.

Every other path (``/login``, ``/whoami``...) answers 200 with JSON naming the
path, to show that the auth host is proxied. ``GET /_stub/seen`` returns the
headers of every auth call so far (oldest first, at most 500).
"""

from __future__ import annotations

import json
import sys
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Lock
from urllib.parse import quote, urlsplit

SEEN: deque = deque(maxlen=500)
SEEN_LOCK = Lock()
PUBLIC_URL = "http://auth.invalid"


def original_url(headers) -> str | None:
    url = headers.get("X-Original-URL")
    if url:
        return url
    host = headers.get("X-Forwarded-Host")
    if not host:
        return None
    proto = headers.get("X-Forwarded-Proto") or "http"
    return f"{proto}://{host}{headers.get('X-Forwarded-Uri') or '/'}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "e2e-stub-auth"

    def _send(self, status: int, headers: dict | None = None, body: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _handle(self) -> None:
        path = urlsplit(self.path).path
        if path == "/_stub/seen":
            with SEEN_LOCK:
                self._send(200, body=list(SEEN))
            return
        if path in ("/forward-auth", "/auth-request"):
            self._auth(path)
            return
        self._send(200, body={"stub": "pocketgate", "path": self.path, "host": self.headers.get("Host")})

    def _auth(self, endpoint: str) -> None:
        with SEEN_LOCK:
            SEEN.append({
                "endpoint": endpoint,
                "method": self.command,
                "peer": self.client_address[0],
                "headers": [[k, v] for k, v in self.headers.items()],
            })
        url = original_url(self.headers)
        if url is None:
            self._send(400, body={"error": "no X-Original-URL or X-Forwarded-Host"})
            return
        opath = urlsplit(url).path
        if opath.startswith("/allow"):
            self._send(200, {
                "X-Remote-User": "stubuser",
                "X-Remote-Email": "stubuser@example.test",
                "X-Remote-Name": "Stub User",
                "X-Remote-Groups": "admins,users",
            })
        elif opath.startswith("/bypass"):
            self._send(200)
        elif opath.startswith("/deny"):
            self._send(403, body={"error": "denied"})
        else:
            location = f"{PUBLIC_URL}/login?rd={quote(url, safe='')}"
            browser = "text/html" in (self.headers.get("Accept") or "")
            if not browser:
                # As pocketgate: API clients get a plain 401, never a redirect target.
                self._send(401, {"WWW-Authenticate": "Bearer"}, {"error": "login required"})
            elif endpoint == "/forward-auth":
                self._send(302, {"Location": location})
            else:
                self._send(401, {"Location": location}, {"error": "login required"})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

    def log_message(self, fmt: str, *args) -> None:
        sys.stderr.write("stub %s %s\n" % (self.address_string(), fmt % args))


def main() -> None:
    global PUBLIC_URL
    PUBLIC_URL = sys.argv[1].rstrip("/")
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
