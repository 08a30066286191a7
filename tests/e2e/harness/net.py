"""Client-side networking: name resolution, source addresses, raw requests.

- ``install_resolver()`` makes every ``*.example.test`` name (and
  ``*.example-org.test``, the second registrable domain of test_rules.py)
  resolve to 127.0.0.1 inside this Python process only (no /etc/hosts), so
  URLs, Host headers and cookie domains look exactly like a browser's.
- ``browser()`` / ``api_client()`` build ``requests`` sessions, optionally
  bound to another loopback source address (127.0.0.0/8 is all local on
  Linux), which is how "the client is in an allowed network" is simulated.
- ``raw_request()`` sends a request target byte for byte (``requests`` and
  ``urllib3`` normalise dot segments, which would hide path tricks).
- ``websocket_handshake()`` performs an RFC 6455 opening handshake.
"""

from __future__ import annotations

import base64
import http.client
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

TEST_DOMAIN = "example.test"
TEST_DOMAINS = (TEST_DOMAIN, "example-org.test")
_real_getaddrinfo = socket.getaddrinfo


def _resolve(host, *args, **kwargs):
    if isinstance(host, bytes):
        host = host.decode()
    if isinstance(host, str):
        h = host.rstrip(".").lower()
        if any(h == d or h.endswith("." + d) for d in TEST_DOMAINS):
            host = "127.0.0.1"
    return _real_getaddrinfo(host, *args, **kwargs)


def install_resolver() -> None:
    socket.getaddrinfo = _resolve


class SourceAddressAdapter(HTTPAdapter):
    """Connect from a chosen local address."""

    def __init__(self, source_ip: str, **kwargs):
        self.source_ip = source_ip
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source_ip, 0)
        super().init_poolmanager(*args, **kwargs)


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def _session(accept: str, source_ip: str | None) -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # no proxies from the environment
    s.headers["Accept"] = accept
    s.headers["User-Agent"] = "pocketgate-e2e"
    if source_ip:
        adapter = SourceAddressAdapter(source_ip)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
    return s


def browser(source_ip: str | None = None) -> requests.Session:
    return _session(BROWSER_ACCEPT, source_ip)


def api_client(source_ip: str | None = None) -> requests.Session:
    return _session("application/json", source_ip)


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


def raw_request(port: int, host: str, target: str, *, method: str = "GET",
                headers: dict | list[tuple[str, str]] | None = None,
                source_ip: str | None = None, timeout: float = 10.0) -> RawResponse:
    """Send ``METHOD target HTTP/1.1`` to 127.0.0.1:port with the target untouched.

    ``headers`` may be a list of pairs to send several spellings of one name."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(source_ip, 0) if source_ip else None)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host)
        items = headers.items() if isinstance(headers, dict) else (headers or [])
        for k, v in items:
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        return RawResponse(resp.status, list(resp.getheaders()), body)
    finally:
        conn.close()


@dataclass
class HandshakeResult:
    status: int
    head: str
    accept_ok: bool
    first_frame: bytes


def websocket_handshake(port: int, host: str, path: str, *, cookie: str | None = None,
                        source_ip: str | None = None, timeout: float = 10.0,
                        extra: tuple[tuple[str, str], ...] | list[tuple[str, str]] = ()) -> HandshakeResult:
    """Open a WebSocket through the proxy; read the status line and one frame.
    ``extra``: more request headers (a client's forged ones)."""
    from harness.echo import websocket_accept

    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        f"Origin: http://{host}",
        "Accept: */*",
    ]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    lines.extend(f"{k}: {v}" for k, v in extra)
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                    source_address=(source_ip, 0) if source_ip else None)
    try:
        sock.sendall(request)
        buf = b""
        while b"\r\n\r\n" not in buf and len(buf) < 65536:
            chunk = sock.recv(4096)
            if not chunk:
                break
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        head_text = head.decode("latin-1")
        status_line = head_text.split("\r\n", 1)[0]
        try:
            status = int(status_line.split()[1])
        except (IndexError, ValueError):
            status = 0
        accept_ok = False
        for line in head_text.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-accept":
                accept_ok = value.strip() == websocket_accept(key)
        frame = rest
        if status == 101:
            try:
                while len(frame) < 2:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    frame += chunk
            except OSError:
                pass
        return HandshakeResult(status, head_text, accept_ok, frame)
    finally:
        sock.close()


def host_of(url: str) -> str:
    return urlsplit(url).hostname or ""
