"""A trace that crosses the real proxy, pocketgate and the provider.

Each stack of this module is the shipped one plus an OpenTelemetry Collector
(harness/otel.py: OTLP/HTTP receiver, debug exporter; the tests SKIP when its
binary is missing, naming the path), pocketgate with ``OTEL_*`` pointing at
it and ``[bearer] opaque = "userinfo"``, and the proxy with its own tracing
switched on as docs/src/tracing.md shows: Caddy's ``tracing`` directive,
Traefik's ``tracing.otlp``. Debian's nginx has no OpenTelemetry module; it
passes the client's ``traceparent`` on to the ``auth_request`` subrequest.

The request is an API client's with an opaque access token (the code flow's,
obtained from the provider directly), so the decision itself calls the
provider's userinfo endpoint: the provider call happens inside the proxied
request. The provider records the ``traceparent`` and ``tracestate`` of every
userinfo request (``GET /_test/userinfo``), so the test sees that the
provider received the same trace, with pocketgate's userinfo span as the
parent.

Each proxy is asked twice: without a ``traceparent`` (Caddy and Traefik start
the trace; behind nginx pocketgate does) and with a client's (the trace
continues it everywhere). Behind nginx, repeated trace headers are sent too.
Without the proxies' tracing (the shipped examples in front of the stub auth
server), what reaches the auth server of a client's trace context is pinned
as the page describes it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from harness import flows, otel, proxies
from harness.net import raw_request
from harness.stack import CLIENT_ID, Additions, start_stack

T = flows.TIMEOUT
DOCS = Path(__file__).resolve().parents[2] / "docs" / "src" / "tracing.md"
PROXY_SERVICE = {"caddy": otel.CADDY_SERVICE, "traefik": otel.TRAEFIK_SERVICE, "nginx": None}
POCKETGATE_SERVICE = "pocketgate-e2e"

_direct = requests.Session()
_direct.trust_env = False


def _proxies() -> list[str]:
    try:
        return proxies.selected("E2E_PROXIES")
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None


@pytest.fixture(scope="module", params=_proxies())
def stack(request, echo, run_dir):
    """The shipped stack with traces on everywhere, and the collector (``stack.proc("otelcol")``)."""
    binary = otel.collector_binary()
    if not binary.is_file():
        pytest.skip(f"no OpenTelemetry Collector at {binary} "
                    "(build it with tests/otel/build-collector.sh, or name it in POCKETGATE_OTELCOL)")
    proxy = request.param
    collector, port = otel.start_collector(run_dir / f"traces-{proxy}")
    additions = Additions(
        name="traces",
        config=lambda text, stack: f'{text}\n[bearer]\nenabled = true\nopaque = "userinfo"\n',
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_SERVICE_NAME": POCKETGATE_SERVICE,
            **otel.FAST_BATCHES,
        },
        proxy_env=otel.proxy_env(proxy, port),
        proxy_files=otel.proxy_files(proxy, port),
    )
    echo_proc, echo_port = echo
    try:
        stack = start_stack(proxy, echo_proc, echo_port, run_dir, additions)
    except Exception:
        collector.stop()
        raise
    stack.procs.append(collector)
    yield stack
    for p in reversed(stack.procs[1:]):
        p.stop()


def opaque_token(stack, user: str) -> str:
    """An opaque access token of ``user`` for pocketgate's client: the code
    flow (PKCE) against the provider directly; the code is taken from the
    redirect to pocketgate's /callback, which is never followed."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    redirect_uri = f"{stack.public_url}/callback"
    browser = requests.Session()
    browser.trust_env = False
    page = browser.get(f"{stack.issuer}/authorize", params={
        "client_id": CLIENT_ID, "response_type": "code", "scope": "openid profile email groups",
        "redirect_uri": redirect_uri, "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge, "code_challenge_method": "S256",
    }, timeout=T)
    login = [f for f in flows.forms(page.text, page.url) if "username" in f.fields]
    assert login, flows.describe(page)
    r = browser.post(login[0].action, data={**login[0].fields, "username": user}, allow_redirects=False, timeout=T)
    for _ in range(10):
        location = urljoin(r.url, r.headers.get("Location", ""))
        if r.status_code not in (302, 303) or location.startswith(redirect_uri):
            break
        r = browser.get(location, allow_redirects=False, timeout=T)
    assert location.startswith(redirect_uri + "?"), flows.describe(r)
    code = parse_qs(urlsplit(location).query)["code"][0]
    secret = json.loads(stack.idp_env["IDP_CONFIG"])["client_secret"]
    r = _direct.post(f"{stack.issuer}/api/oidc/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier,
    }, auth=(CLIENT_ID, secret), timeout=T)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert token.count(".") == 0, "an opaque token, answered by userinfo"
    return token


def userinfo_contexts(stack) -> list[dict]:
    """The trace context of every userinfo request the provider received: [{traceparent, tracestate}]."""
    r = _direct.get(f"{stack.issuer}/_test/userinfo", timeout=T)
    assert r.status_code == 200, r.text
    return r.json()


@dataclass
class Traced:
    """One request through the proxy and what became of its trace."""
    received: dict          # the provider's userinfo request's traceparent and tracestate
    trace: str              # its trace id
    spans: list[otel.Span]  # the collector's spans of that trace
    decision: otel.Span
    call: otel.Span         # pocketgate's `provider userinfo`
    shown: str              # the spans, for a failure message


def ask(stack, headers: list[tuple[str, str]]) -> Traced:
    """An API client's request to grafana with a fresh opaque token of alice's
    and ``headers`` (repeated names sent as they are), then the spans of the
    trace the provider received, once the collector holds pocketgate's
    decision and userinfo spans (and the decision's parent, behind a proxy that traces)."""
    token = opaque_token(stack, "alice")
    before = len(userinfo_contexts(stack))
    r = raw_request(stack.ports.proxy, stack.host("grafana"), "/api/dashboards",
                    headers=[("Authorization", f"Bearer {token}"), ("Accept", "application/json"), *headers])
    assert r.status == 200, (r.status, r.body[:300])
    data = json.loads(r.body)
    assert flows.header_values(data, "X-Remote-User") == ["alice"]

    calls = userinfo_contexts(stack)[before:]
    assert len(calls) == 1, f"the decision asked the provider's userinfo once: {calls}"
    received = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01", calls[0]["traceparent"] or "")
    assert received, f"the provider received no sampled W3C traceparent: {calls[0]}"
    trace, userinfo_id = received.groups()
    traces_itself = PROXY_SERVICE[stack.proxy] is not None

    def complete(spans):
        mine = [s for s in spans if s.trace == trace]
        ours = {s.name: s for s in mine if s.service == POCKETGATE_SERVICE}
        if not {"decision", "provider userinfo"} <= ours.keys():
            return False
        return not traces_itself or any(s.id == ours["decision"].parent for s in mine)

    collector = stack.proc("otelcol")
    spans = [s for s in otel.wait_for_spans(collector, complete) if s.trace == trace]
    shown = "\n".join(f"  {s.service}: {s.name} ({s.kind}) id={s.id} parent={s.parent or '-'}" for s in spans)
    assert complete(spans), f"trace {trace} is not complete in the collector:\n{shown}"
    assert token not in collector.log_text(limit=5_000_000), "no token in a span"
    decision = next(s for s in spans if s.service == POCKETGATE_SERVICE and s.name == "decision")
    call = next(s for s in spans if s.service == POCKETGATE_SERVICE and s.name == "provider userinfo")
    assert call.id == userinfo_id, f"the provider received the userinfo span's own traceparent:\n{shown}"
    return Traced(calls[0], trace, spans, decision, call, shown)


@pytest.mark.parametrize("client_traceparent", [False, True], ids=["no-traceparent", "client-traceparent"])
def test_one_trace_crosses_the_proxy_pocketgate_and_the_provider(stack, client_traceparent):
    """The proxy's span (its own service name) is the parent of pocketgate's
    ``decision`` span, in one trace; ``provider userinfo`` is the decision's
    child; the provider received that trace with the userinfo span as parent,
    and the client's ``tracestate`` (never an empty one). Behind nginx, which
    does not trace, the client's span is the decision's parent, and without a
    client's ``traceparent`` the decision starts the trace."""
    proxy_service = PROXY_SERVICE[stack.proxy]
    headers = []
    if client_traceparent:
        client_trace, client_span = secrets.token_hex(16), secrets.token_hex(8)
        headers = [("traceparent", f"00-{client_trace}-{client_span}-01"), ("tracestate", "e2e=t61rcWkgMCcw")]
    t = ask(stack, headers)
    shown = t.shown

    assert t.decision.kind == "Server", shown
    assert t.decision.attributes.get("outcome") == "allow", t.decision.attributes
    assert t.decision.attributes.get("user") == "alice", t.decision.attributes
    assert t.call.parent == t.decision.id, f"the provider call is inside the decision:\n{shown}"
    if client_traceparent:
        assert t.trace == client_trace, "the client's trace is continued"
        assert t.received["tracestate"] == "e2e=t61rcWkgMCcw", t.received
    else:
        assert t.received["tracestate"] is None, f"no empty tracestate: {t.received}"

    if proxy_service is None:
        # nginx: no span of its own; the client's span, or none, is the parent
        assert t.decision.parent == (client_span if client_traceparent else ""), shown
        return
    parent = next(s for s in t.spans if s.id == t.decision.parent)
    assert parent.service == proxy_service, f"the decision's parent is the proxy's span:\n{shown}"
    # the proxy's own server span starts the trace, or continues the client's
    server = [s for s in t.spans if s.service == proxy_service and s.kind == "Server"]
    assert len(server) == 1, shown
    assert server[0].parent == (client_span if client_traceparent else ""), shown


def test_behind_nginx_repeated_trace_headers_are_read_as_w3c_trace_context_asks(stack):
    """nginx passes the client's headers to ``auth_request`` as they came,
    repeated ones too. Two ``traceparent`` fields are no trace context: the
    decision starts a trace of its own. Two ``tracestate`` fields are one
    list, and reach the provider as one. (Caddy and Traefik, tracing, send
    one ``traceparent`` and ``tracestate`` of their own.)"""
    if stack.proxy != "nginx":
        pytest.skip("only nginx passes the client's trace headers as they came")
    first, second = secrets.token_hex(16), secrets.token_hex(16)
    t = ask(stack, [("traceparent", f"00-{first}-{secrets.token_hex(8)}-01"),
                    ("traceparent", f"00-{second}-{secrets.token_hex(8)}-01")])
    assert t.trace not in (first, second), t.shown
    assert t.decision.parent == "", t.shown

    trace = secrets.token_hex(16)
    t = ask(stack, [("traceparent", f"00-{trace}-{secrets.token_hex(8)}-01"),
                    ("tracestate", "edge=1,cdn=2"), ("tracestate", "lb=3")])
    assert t.trace == trace, t.shown
    assert t.received["tracestate"] == "edge=1,cdn=2,lb=3", t.received


def test_without_their_own_tracing_the_shipped_proxies_pass_on_a_clients_trace_context_or_none(stub_stack):
    """The shipped examples, tracing off, in front of the stub auth server
    (no collector needed): Caddy's ``forward_auth`` and nginx's
    ``auth_request`` pass the client's ``traceparent`` and ``tracestate`` on
    as they came; the shipped Traefik example's ``authRequestHeaders`` does
    not name them, so none reaches the auth server."""
    traceparent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    r = raw_request(stub_stack.ports.proxy, stub_stack.host("grafana"), "/allow",
                    headers=[("traceparent", traceparent), ("tracestate", "e2e=1")])
    assert r.status == 200, (r.status, r.body[:300])
    seen = _direct.get(f"http://127.0.0.1:{stub_stack.ports.auth}/_stub/seen", timeout=T).json()
    sent = {k.lower(): v for k, v in seen[-1]["headers"] if k.lower() in ("traceparent", "tracestate")}
    if stub_stack.proxy == "traefik":
        assert sent == {}, sent
    else:
        assert sent == {"traceparent": traceparent, "tracestate": "e2e=1"}, sent


def test_the_documented_snippets_are_the_tested_ones():
    """docs/src/tracing.md shows the lines this module switches the proxies' tracing on with."""
    page = DOCS.read_text()
    assert otel.TRAEFIK_TRACING in page
    assert f"\t{otel.CADDY_TRACING.strip()}\n\timport pocketgate\n" in page
    env = " ".join(f"{k}={v}" for k, v in otel.CADDY_ENV.items())
    assert env in page
