"""The mistakes operators of forward auth in front of Pocket ID make, reproduced live.

Each is what caddy-security + Pocket ID users meet as a "portal loop", an
admin denied for no visible reason, or an API bypass that does not bypass;
here each must be diagnosed in pocketgate's own words: a log line at the
moment it happens, and `explain`/`check` naming the cause and the fix.
"""

from __future__ import annotations

from harness import configs, net

T = 10
# wiki.example-org.test: served by the proxy like the "code" site, but under no
# cookie domain pocketgate has (cookie_domain is example.test)
ALIASES = {"code": ["wiki.example-org.test"]}


def _log_since(stack, mark: int) -> str:
    return stack.pocketgate_log()[mark:]


def test_a_host_outside_every_cookie_domain_is_named_not_looped(stack, browser, people, pocket_id):
    """The "portal loop": a host the proxy protects that no session cookie can reach."""
    mark = len(stack.pocketgate_log())
    url = f"http://wiki.example-org.test:{stack.ports.proxy}/page"
    r = net.browser().get(url, timeout=T)
    # never a loop: a few redirects at most, then pocketgate's own page
    assert len(r.history) <= 3, [h.url for h in r.history]
    assert r.status_code == 400, (r.status_code, r.url)
    assert "does not cover" in r.text
    log = _log_since(stack, mark)
    assert "wiki.example-org.test" in log and "cookie domain" in log and "session.domains" in log, log[-2000:]

    # listed in [[hosts]], check names the loop before anyone meets it
    listed = stack.workdir / "with-wiki.toml"
    listed.write_text(stack.base_config + '\n[[hosts]]\nhost = "wiki.example-org.test"\npolicy = "users"\n')
    code, out = stack.pocketgate_cli("check", config=listed)
    assert "wiki.example-org.test is under none of the cookie domains" in out and "portal loop" in out, out
    assert "session.domains" in out, out


def test_an_api_bypass_from_outside_allowed_networks_says_why(stack):
    """sonarr bypasses /api only for the LAN; from elsewhere it asks for a sign-in, and says why."""
    mark = len(stack.pocketgate_log())
    r = net.api_client(configs.ADDR_OUTSIDE_2).get(stack.url("sonarr", "/api/queue"),
                                                   allow_redirects=False, timeout=T)
    assert r.status_code == 401, r.status_code
    log = _log_since(stack, mark)
    assert "/api/queue" in log and "allowed_networks" in log, log[-2000:]

    code, out = stack.pocketgate_cli("explain", "--url", stack.url("sonarr", "/api/queue"),
                                     "--ip", configs.ADDR_OUTSIDE_2)
    assert code == 0, out
    assert "not in the host's allowed_networks" in out and "hosts[1].allowed_networks" in out, out


def test_check_reads_the_live_discovery_document(stack, pocket_id):
    code, out = stack.pocketgate_cli("check")
    assert code == 0, out
    assert pocket_id.url in out
    # what check learnt from Pocket ID itself
    assert "discovery" in out.lower() or "provider" in out.lower(), out
