"""Echo backend: answers every request with what it received, as JSON.

Run as a script: ``python -m harness.echo`` binds 127.0.0.1 on an ephemeral
port and prints ``{"port": N}`` on stdout.

- Any method, any path: 200 with ``{"backend": "echo", "method", "path",
  "headers": [[name, value], ...]}``. ``path`` is the raw request target and
  ``headers`` keep the names exactly as they arrived (case, ``_``), so a test
  can see every spelling of a forged identity header.
- A WebSocket handshake (``Upgrade: websocket`` + ``Sec-WebSocket-Key``) on any
  path: ``101 Switching Protocols`` with the RFC 6455 ``Sec-WebSocket-Accept``,
  then one text frame carrying the same JSON, then a close frame.

- Every identity assertion it receives (any header whose name folds to
  ``x-pocketgate-assertion``) it verifies like a real backend would: ES256
  with PyJWT against the JWKS at ``{iss}/.well-known/jwks.json`` (fetched
  through the proxy, refetched on an unknown ``kid``), ``aud`` = its own
  origin (``http://`` + the host and port it was asked for: the proxy's
  ``X-Forwarded-Host``, else ``Host``; the nginx example sends ``$host``,
  without the port, as Host), ``exp``/``iat``.
  Only issuers under ``.example.test`` are fetched from. The outcome is in
  ``"assertions"``: ``[{"ok": true, "claims": {...}}`` or ``{"ok": false,
  "error": "..."}]``, one entry per header received.

Standard library, plus PyJWT for the assertion.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def websocket_accept(key: str) -> str:
    """The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    digest = hashlib.sha1((key.strip() + WS_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked server-to-client frame with FIN set."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + n.to_bytes(2, "big")
    else:
        head += bytes([127]) + n.to_bytes(8, "big")
    return head + payload


ASSERTION_HEADER = "x-pocketgate-assertion"
_jwks: dict[str, dict] = {}
_jwks_lock = threading.Lock()


def _fetch_jwks(issuer: str) -> dict:
    """The issuer's JWKS, asked of the proxy on loopback under the issuer's host name."""
    from urllib.parse import urlsplit

    u = urlsplit(issuer)
    req = urllib.request.Request(f"http://127.0.0.1:{u.port or 80}/.well-known/jwks.json",
                                 headers={"Host": u.netloc})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)


def _key_for(issuer: str, kid: str):
    import jwt

    for refresh in (False, True):
        with _jwks_lock:
            if refresh or issuer not in _jwks:
                _jwks[issuer] = _fetch_jwks(issuer)
            data = _jwks[issuer]
        for k in data.get("keys", []):
            if k.get("kid") == kid:
                return jwt.PyJWK.from_dict(k).key
    raise LookupError(f"kid {kid!r} not in {issuer}/.well-known/jwks.json")


def verify_assertion(token: str, host: str) -> dict:
    """Verify one assertion as the backend at ``http://{host}``."""
    import jwt
    from urllib.parse import urlsplit

    try:
        header = jwt.get_unverified_header(token)
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss", "")
        if not (urlsplit(issuer).hostname or "").endswith(".example.test"):
            raise ValueError(f"untrusted issuer {issuer!r}")
        if header.get("alg") != "ES256":
            raise ValueError(f"alg {header.get('alg')!r}")
        claims = jwt.decode(token, _key_for(issuer, header.get("kid", "")), algorithms=["ES256"],
                            audience=f"http://{host.lower()}", issuer=issuer,
                            options={"require": ["exp", "iat", "iss", "aud", "sub"]})
        return {"ok": True, "kid": header.get("kid"), "claims": claims}
    except Exception as e:  # noqa: BLE001 - every failure is a refusal, reported
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "e2e-echo"

    def _report(self) -> dict:
        return {
            "backend": "echo",
            "method": self.command,
            "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "assertions": [
                verify_assertion(v, self.headers.get("X-Forwarded-Host") or self.headers.get("Host") or "")
                for k, v in self.headers.items()
                if k.lower().replace("_", "-") == ASSERTION_HEADER
            ],
        }

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if 0 < length <= 1 << 20:
            self.rfile.read(length)
        upgrade = (self.headers.get("Upgrade") or "").lower()
        key = self.headers.get("Sec-WebSocket-Key")
        if upgrade == "websocket" and key:
            self._websocket(key)
            return
        body = json.dumps(self._report()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _websocket(self, key: str) -> None:
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", websocket_accept(key))
        self.end_headers()
        self.wfile.write(ws_frame(0x1, json.dumps(self._report()).encode()))
        self.wfile.write(ws_frame(0x8, (1000).to_bytes(2, "big")))
        self.wfile.flush()
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

    def log_message(self, fmt: str, *args) -> None:  # noqa: D401 - stdlib signature
        sys.stderr.write("echo %s %s\n" % (self.address_string(), fmt % args))


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
