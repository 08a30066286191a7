"""Turn the shipped examples into configs that run on loopback.

The examples are what an operator pastes; the tests must run exactly those, so
every function here starts from the file in examples/ and changes only what a
loopback test needs: host names (example.com -> example.test, sub-names kept),
ports, network CIDRs, TLS/ACME (off: plain http on one port), log and pid
locations. Each substitution must match, or ``ExampleDrift`` says which
pattern vanished from which example, so an edited example cannot silently
stop being tested.

A test module that needs more host names than the examples have (an include
file's host, a second cookie domain) gives them as ``aliases``: more names for
one of the example's own sites (``{"code": ["wiki.example.test"]}``), served
by that site's configuration exactly as written. Nothing else of the example
changes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
# E2E_EXAMPLES: test another copy of the examples (e.g. an edited one)
EXAMPLES = Path(os.environ.get("E2E_EXAMPLES") or REPO / "examples")

PROD_DOMAIN = "example.com"
TEST_DOMAIN = "example.test"
# a second registrable domain ([[session.domains]], test_rules.py); net.py resolves it too
SECOND_DOMAIN = "example-org.test"

# upstream addresses used in the proxy examples (all answered by the echo backend)
BACKEND_PORTS = (3000, 8989, 8080, 8081)
POCKETGATE_ADDR = "127.0.0.1:4180"

# pocketgate.toml networks -> loopback networks with the same nesting:
# the monitoring network stays inside the private /8, the LAN is separate.
CIDR_MAP = {
    "10.0.0.0/8": "127.10.0.0/16",
    "10.50.0.0/16": "127.10.50.0/24",
    "192.168.0.0/16": "127.192.168.0/24",
}
# client source addresses for the scenarios
ADDR_MONITORING = "127.10.50.7"   # grafana's allowed_networks (and inside the "bypass" /8 twin)
ADDR_PRIVATE = "127.10.9.9"       # in the "bypass" policy's 10.0.0.0/8 twin only
ADDR_LAN = "127.192.168.20"       # sonarr's allowed_networks and the "bypass" policy
ADDR_OUTSIDE = "127.0.0.1"        # in no allowed network (and also pocketgate's trusted proxy)
ADDR_OUTSIDE_2 = "127.77.0.1"     # in no allowed network, not a trusted proxy either


class ExampleDrift(AssertionError):
    """An example no longer has the shape the harness substitutes."""


def _sub(pattern: str, repl, text: str, what: str, *, count: int = 0, flags: int = re.M,
         min_count: int = 1) -> str:
    new, n = re.subn(pattern, repl, text, count=count, flags=flags)
    if n < min_count:
        raise ExampleDrift(f"{what}: pattern {pattern!r} matched {n} times (expected >= {min_count})")
    return new


def _test_hosts(text: str, what: str) -> str:
    return _sub(r"\b([a-z0-9-]+(?:\.[a-z0-9-]+)*)\.example\.com\b", rf"\1.{TEST_DOMAIN}", text, what)


def _site_name(site: str) -> str:
    return f"{site}.{TEST_DOMAIN}"


def _checked_aliases(aliases: dict[str, list[str]] | None) -> dict[str, list[str]]:
    for names in (aliases or {}).values():
        for name in names:
            if not re.fullmatch(r"[a-z0-9-]+(?:\.[a-z0-9-]+)+", name):
                raise ValueError(f"alias {name!r} is not a host name")
    return aliases or {}


def _backends(text: str, echo_port: int, what: str) -> str:
    ports = "|".join(str(p) for p in BACKEND_PORTS)
    return _sub(rf"127\.0\.0\.1:(?:{ports})\b", f"127.0.0.1:{echo_port}", text, what)


@dataclass
class Ports:
    proxy: int      # the one port every site of the proxy listens on (plain http)
    auth: int       # pocketgate (or the stub standing in for it)
    echo: int       # the echo backend


def public_url(ports: Ports) -> str:
    return f"http://auth.{TEST_DOMAIN}:{ports.proxy}"


# --- pocketgate -----------------------------------------------------------

def pocketgate_toml(ports: Ports, issuer: str) -> str:
    """examples/pocketgate.toml with ports, host names and CIDRs substituted.

    The issuer URL is the test provider's (a host name + port substitution);
    secrets are not in the file: they come from the environment.
    """
    what = "examples/pocketgate.toml"
    text = (EXAMPLES / "pocketgate.toml").read_text()
    text = _sub(r'^listen = "127\.0\.0\.1:4180"', f'listen = "127.0.0.1:{ports.auth}"', text, what)
    text = _sub(r'^public_url = "https://auth\.example\.com"', f'public_url = "{public_url(ports)}"', text, what)
    text = _sub(r'^issuer = "https://id\.example\.com"', f'issuer = "{issuer}"', text, what)
    text = _sub(r'^cookie_domain = "example\.com"', f'cookie_domain = "{TEST_DOMAIN}"', text, what)
    for prod, test in CIDR_MAP.items():
        text = _sub(re.escape(f'"{prod}"'), f'"{test}"', text, what)
    text = _test_hosts(text, what)
    return text


# --- Caddy ----------------------------------------------------------------

def caddyfile(ports: Ports, aliases: dict[str, list[str]] | None = None) -> str:
    what = "examples/caddy/Caddyfile"
    text = (EXAMPLES / "caddy" / "Caddyfile").read_text()
    # the global options block (first block in the file) -> test globals
    text = _sub(r"^\{\n(?:[^\n]*\n)*?\}\n",
                "{\n\tadmin off\n\tauto_https off\n\tpersist_config off\n\tlog {\n\t\tlevel DEBUG\n\t}\n}\n",
                text, what, count=1)
    # site addresses: "name.example.com {" -> "http://name.example.test:PORT {"
    text = _sub(r"^([a-z0-9-]+)\.example\.com \{", rf"http://\1.{TEST_DOMAIN}:{ports.proxy} {{", text, what)
    text = _sub(re.escape(POCKETGATE_ADDR), f"127.0.0.1:{ports.auth}", text, what)
    text = _backends(text, ports.echo, what)
    # aliases: more addresses for the site ("http://a:P, http://b:P {")
    for site, names in _checked_aliases(aliases).items():
        more = "".join(f", http://{n}:{ports.proxy}" for n in names)
        text = _sub(rf"^(http://{re.escape(_site_name(site))}:{ports.proxy}) \{{", rf"\1{more} {{",
                    text, what, count=1)
    return text


# --- nginx ----------------------------------------------------------------

def nginx_conf(ports: Ports, workdir: Path, aliases: dict[str, list[str]] | None = None) -> tuple[str, str]:
    """(nginx.conf, pocketgate.conf) for a test run under ``workdir``."""
    what = "examples/nginx/nginx.conf"
    snippet_what = "examples/nginx/pocketgate.conf"
    conf = (EXAMPLES / "nginx" / "nginx.conf").read_text()
    snippet = (EXAMPLES / "nginx" / "pocketgate.conf").read_text()

    conf = _sub(r"^user\s+[^;]+;\n", "", conf, what)           # run as the test user
    conf = _sub(r"^pid\s+[^;]+;\n", "", conf, what)            # pid goes to -g
    conf = _sub(r"^(\s*)error_log\s+[^;]+;", rf"\1error_log {workdir}/error.log info;", conf, what)
    conf = _sub(r"^(\s*)access_log\s+[^;]+;", rf"\1access_log {workdir}/access.log pg;", conf, what)
    conf = _sub(r"^(\s*)include\s+/etc/nginx/snippets/pocketgate\.conf;",
                rf"\1include {workdir}/pocketgate.conf;", conf, what)
    # TLS: test on plain http, one port for every server
    conf = _sub(r"^(\s*)listen\s+443\s+ssl[^;]*;", rf"\1listen 127.0.0.1:{ports.proxy};", conf, what)
    conf = _sub(r"^\s*listen\s+\[::\]:443[^;]*;\n", "", conf, what, min_count=0)
    conf = _sub(r"^\s*(?:ssl_certificate|ssl_certificate_key|ssl_protocols|ssl_session_[a-z_]+|http2)\s+[^;]+;\n",
                "", conf, what, min_count=0)
    # the port-80 redirect server is not needed on loopback
    conf = _sub(r"^\s*# BEGIN http-to-https\n(?:.*\n)*?\s*# END http-to-https\n", "", conf, what, min_count=0)
    conf = _sub(r"^(\s*)server_tokens\s+[^;]+;", r"\1server_tokens off;\n\1log_format pg '$remote_addr \"$request\" $status auth=$pg_auth_status user=$pg_user';",
                conf, what, count=1)
    conf = _test_hosts(conf, what)
    conf = _sub(re.escape(POCKETGATE_ADDR), f"127.0.0.1:{ports.auth}", conf, what)
    conf = _backends(conf, ports.echo, what)
    # aliases: more names in the site's server_name
    for site, names in _checked_aliases(aliases).items():
        conf = _sub(rf"^(\s*server_name\s+{re.escape(_site_name(site))});", rf"\1 {' '.join(names)};",
                    conf, what, count=1)

    snippet = _test_hosts(snippet, snippet_what) if PROD_DOMAIN in snippet else snippet
    return conf, snippet


# --- Traefik --------------------------------------------------------------

def traefik_configs(ports: Ports, workdir: Path,
                    aliases: dict[str, list[str]] | None = None) -> tuple[str, str]:
    """(traefik.yml, dynamic.yml) for a test run under ``workdir``."""
    what = "examples/traefik/traefik.yml"
    dyn_what = "examples/traefik/dynamic.yml"
    static = yaml.safe_load((EXAMPLES / "traefik" / "traefik.yml").read_text())
    dyn_text = (EXAMPLES / "traefik" / "dynamic.yml").read_text()

    eps = static.get("entryPoints") or {}
    if "websecure" not in eps:
        raise ExampleDrift(f"{what}: no entryPoints.websecure")
    ws = eps["websecure"]
    ws["address"] = f"127.0.0.1:{ports.proxy}"
    (ws.get("http") or {}).pop("tls", None)  # certResolver: plain http on loopback
    static["entryPoints"] = {"websecure": ws}
    static.pop("certificatesResolvers", None)
    if "file" not in (static.get("providers") or {}):
        raise ExampleDrift(f"{what}: no providers.file")
    static["providers"] = {"file": {"filename": str(workdir / "dynamic.yml"), "watch": False}}
    static["log"] = {"level": "DEBUG"}
    static["accessLog"] = {"format": "common"}
    static.pop("api", None)
    static.pop("ping", None)
    static.pop("metrics", None)
    static["global"] = {"checkNewVersion": False, "sendAnonymousUsage": False}

    dyn_text = _test_hosts(dyn_text, dyn_what)
    dyn_text = _sub(re.escape(POCKETGATE_ADDR), f"127.0.0.1:{ports.auth}", dyn_text, dyn_what)
    dyn_text = _backends(dyn_text, ports.echo, dyn_what)
    dyn = yaml.safe_load(dyn_text)
    routers = (dyn.get("http") or {}).get("routers") or {}
    if not routers:
        raise ExampleDrift(f"{dyn_what}: no http.routers")
    for router in routers.values():
        router.pop("tls", None)
        router["entryPoints"] = ["websecure"]
    # aliases: the site's router matches the other names too
    for site, names in _checked_aliases(aliases).items():
        rule = f"Host(`{_site_name(site)}`)"
        found = [r for r in routers.values()
                 if r.get("rule") == rule or str(r.get("rule", "")).startswith(rule + " && ")]
        if len(found) != 1:
            raise ExampleDrift(f"{dyn_what}: {len(found)} routers with rule {rule!r} (expected 1)")
        hosts = "(" + " || ".join([rule, *(f"Host(`{n}`)" for n in names)]) + ")"
        found[0]["rule"] = hosts + found[0]["rule"][len(rule):]
    return yaml.safe_dump(static, sort_keys=False), yaml.safe_dump(dyn, sort_keys=False)
