"""A request names its host twice: in the request line (absolute form,
``GET http://grafana.example.test/x HTTP/1.1``) and in the Host header. The
proxy serves the request line's host (RFC 9112 3.2.2; nginx and Go's
net/http both do), so pocketgate must be asked about that host too, and the
backend told about it: never the Host header's when they differ.

Per proxy, through the shipped examples and the real pocketgate:

- a signed-in ``users`` member asking for grafana (``admins`` only) with the
  Host header of sonarr (which admits ``users``) is refused, not served;
- an anonymous client of the LAN asking for code with the Host header of
  sonarr, on a path sonarr bypasses for the LAN (``/feed``), must sign in;
- an allowed absolute-form request reaches the backend told the served host
  (``X-Forwarded-Host``), not the Host header's.
"""

from __future__ import annotations

from harness import flows
from harness.checks import cookie_header, logged_in, raw_echo, reached_backend
from harness.configs import ADDR_LAN
from harness.net import raw_request


def _absolute(stack, served: str, claimed: str, path: str, *, cookie: str | None = None,
              source_ip: str | None = None):
    headers = [("Accept", "application/json")]
    if cookie:
        headers.append(("Cookie", cookie))
    return raw_request(stack.ports.proxy, stack.host(claimed), f"http://{stack.host(served)}{path}",
                       headers=headers, source_ip=source_ip)


def _origin(stack, host: str, path: str, *, cookie: str | None = None, source_ip: str | None = None):
    headers = [("Accept", "application/json")]
    if cookie:
        headers.append(("Cookie", cookie))
    return raw_request(stack.ports.proxy, stack.host(host), path, headers=headers, source_ip=source_ip)


def test_signed_in_user_cannot_borrow_another_hosts_policy(stack):
    user = stack.new_user(["users"], prefix="hostmix")
    cookie = cookie_header(logged_in(stack, user), "grafana.example.test")
    # as ordinary requests: sonarr admits a `users` member, grafana does not
    assert reached_backend(_origin(stack, "sonarr", "/secret", cookie=cookie))
    assert _origin(stack, "grafana", "/secret", cookie=cookie).status == 403
    # grafana's backend, sonarr's Host header: grafana's policy decides
    resp = _absolute(stack, "grafana", "sonarr", "/secret", cookie=cookie)
    assert not reached_backend(resp), f"{resp.status} {resp.body[:300]!r}"
    assert resp.status == 403, f"{resp.status} {resp.body[:300]!r}"


def test_anonymous_request_cannot_borrow_another_hosts_bypass(stack):
    # sonarr bypasses /feed for the LAN; code bypasses nothing
    assert reached_backend(_origin(stack, "sonarr", "/feed", source_ip=ADDR_LAN))
    resp = _absolute(stack, "code", "sonarr", "/feed", source_ip=ADDR_LAN)
    assert not reached_backend(resp), f"{resp.status} {resp.body[:300]!r}"
    assert resp.status == 401, f"{resp.status} {resp.body[:300]!r}"


def test_backend_is_told_the_host_that_was_served(stack):
    user = stack.new_user(["users"], prefix="hostmix")
    cookie = cookie_header(logged_in(stack, user), "sonarr.example.test")
    resp = _absolute(stack, "sonarr", "code", "/page?x=1", cookie=cookie)
    data = raw_echo(resp)
    assert data is not None and resp.status == 200, f"{resp.status} {resp.body[:300]!r}"
    assert flows.header_values(data, "X-Forwarded-Host") == [stack.host("sonarr")], data["headers"]
    assert flows.header_values(data, "X-Remote-User") == [user], data["headers"]
