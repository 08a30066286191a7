"""services.pocketgate (nix/module.nix), evaluated by the real NixOS module
system (nixpkgs' lib.evalModules) with stand-ins for the options it touches.

- The seed's NixOS example (examples/nixos: the global part plus one module
  per service) generates a configuration that passes the module's own
  build-time check (``pocketgate check --offline``, run as the module's
  runCommand script) and makes the seed's decisions (``pocketgate explain
  --json``, a table of cases).
- The Caddy and nginx wiring it generates is what examples/ ships, and
  follows the configuration's names when they differ.
- Evaluation fails with a clear message on an inline secret, a secret given
  as a Nix path, a host or rule naming an undefined policy, two modules
  defining one host differently, an nginx location that would drop the
  identity headers.
- The unit is hardened, reloads by SIGHUP and checks the configuration first.
- Last, the generated configuration and proxy wiring run: real Caddy and
  real nginx, each rendered from services.caddy / services.nginx as NixOS's
  modules write them, in front of pocketgate and the test provider, with the
  seed's scenarios through them.

Needs nix-instantiate (run.sh installs Debian's nix-bin) and nixpkgs' lib
(harness/nixos.py says where it is looked for); without the lib these tests
are skipped, saying what to install.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness import configs, flows, nixos
from harness.checks import ALIASES, IDENTITY_NAMES, assert_login_required, cookie_header, logged_in, raw_echo, squash
from harness.configs import ADDR_LAN, ADDR_MONITORING, ADDR_OUTSIDE_2, ADDR_PRIVATE, TEST_DOMAIN
from harness.net import browser, raw_request, websocket_handshake
from harness.proxies import _binary
from harness.stack import Additions, pocketgate_binary, start_stack

SEED = [nixos.EXAMPLES / name for name in nixos.SEED_MODULES]


def nginx_binary() -> str:
    return _binary("nginx")


@pytest.fixture(scope="module")
def nix_lib() -> str:
    if not nixos.nix_instantiate():
        pytest.fail(f"nix-instantiate not found: {nixos.INSTALL_HINT}")
    lib = nixos.nixpkgs_lib()
    if lib is None:
        pytest.skip(f"nixpkgs' lib not found: {nixos.INSTALL_HINT}")
    return lib


@pytest.fixture
def evaluate(nix_lib, tmp_path):
    """``evaluate(*modules)``: the seed example plus ``modules`` (Nix text or files)."""
    def run(*modules, seed=True):
        return nixos.evaluate([*(SEED if seed else []), *modules], tmp_path / "store", pocketgate_binary(), nix_lib)
    return run


def eval_error(evaluate, *modules) -> str:
    with pytest.raises(nixos.EvalError) as err:
        evaluate(*modules)
    return str(err.value)


def pocketgate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(pocketgate_binary()), *args], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin"})


# --- the generated configuration --------------------------------------------

def test_the_seed_configuration_passes_the_build_time_check(evaluate, tmp_path):
    ev = evaluate()
    out = tmp_path / "checked.json"
    built = nixos.build_config(ev, out)
    assert built.returncode == 0, built.stderr
    assert "configuration OK" in built.stdout and "offline:" in built.stdout, built.stdout
    assert out.read_text() == ev.config_text
    s = ev.settings
    # Typed camelCase options became pocketgate's keys, hosts from three modules.
    assert [h["host"] for h in s["hosts"]] == ["grafana.example.com", "lan.example.com", "sonarr.example.com"]
    grafana = s["hosts"][0]
    assert grafana["claim_roles"] == [{"claim": "groups", "value": "grafana-admins", "role": "admins"}]
    assert grafana["bypass_paths"] == ["/api/health"] and grafana["allowed_networks"] == ["10.50.0.0/16"]
    assert grafana["headers"] == {"user": "X-WEBAUTH-USER"}
    assert s["hosts"][2]["bypass_resources"] == ["^/api/system/status$"]
    assert s["policies"]["bypass"] == {"allowed_networks": ["10.0.0.0/8", "192.168.0.0/16"]}
    # Secrets: only the credential paths systemd fills in, never a value.
    assert s["oidc"] == {"issuer": "https://id.example.com", "client_id": "pocketgate",
                         "client_secret_file": "/run/credentials/pocketgate.service/client_secret"}
    assert s["session"]["secret_file"] == "/run/credentials/pocketgate.service/session_secret"
    assert s["session"]["state_dir"] == "/var/lib/pocketgate"


def test_the_service_refuses_to_start_without_its_credentials(evaluate, tmp_path):
    """ExecStartPre's check (not offline) reads the credentials: missing ones stop the start."""
    ev = evaluate()
    out = tmp_path / "checked.json"
    assert nixos.build_config(ev, out).returncode == 0
    r = pocketgate("check", "-c", str(out))
    assert r.returncode == 1
    assert "oidc.client_secret_file" in r.stderr and "/run/credentials/pocketgate.service/client_secret" in r.stderr


# (url, client address, user groups or None for no session) -> outcome, rule
DECISIONS = [
    ("https://grafana.example.com/", None, ["admins"], "allow", "policies.admins.allowed_groups[0]"),
    ("https://grafana.example.com/", None, ["grafana-admins"], "allow", "policies.admins.allowed_groups[0]"),
    ("https://grafana.example.com/", None, ["users"], "deny", "policies.admins.allowed_groups"),
    ("https://grafana.example.com/", None, None, "login", "no session"),
    ("https://grafana.example.com/api/health", "10.50.3.4", None, "bypass", "hosts[0].bypass_paths[0]"),
    ("https://grafana.example.com/api/health", "192.168.1.20", None, "login", "no session"),
    ("https://sonarr.example.com/api/v3/series", "192.168.1.20", None, "bypass", "hosts[2].bypass_paths[0]"),
    ("https://sonarr.example.com/feed/calendar.ics", "192.168.1.20", None, "bypass", "hosts[2].bypass_paths[1]"),
    ("https://sonarr.example.com/api/system/status", "192.168.1.20", None, "bypass", "hosts[2].bypass_paths[0]"),
    ("https://sonarr.example.com/api/v3/series", "203.0.113.9", None, "login", "no session"),
    ("https://sonarr.example.com/", None, ["users"], "allow", "policies.users.allowed_groups[1]"),
    ("https://lan.example.com/", "10.1.2.3", None, "bypass", "policies.bypass.allowed_networks[0]"),
    ("https://lan.example.com/", "203.0.113.9", None, "login", "no session"),
    ("https://wiki.example.com/", None, ["users"], "allow", "policies.users.allowed_groups[1]"),
]


@pytest.fixture
def seed_file(evaluate, tmp_path) -> Path:
    ev = evaluate()
    out = tmp_path / "pocketgate.json"
    assert nixos.build_config(ev, out).returncode == 0
    return out


def _explain(config: Path, url: str, ip: str | None, groups: list[str] | None) -> dict:
    args = ["explain", "-c", str(config), "--url", url, "--json"]
    if ip:
        args += ["--ip", ip]
    if groups is not None:
        args += ["--user", "alice", "--groups", ",".join(groups)]
    r = pocketgate(*args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("url,ip,groups,outcome,rule", DECISIONS)
def test_the_generated_configuration_decides_as_the_seed(seed_file, url, ip, groups, outcome, rule):
    got = _explain(seed_file, url, ip, groups)
    assert (got["outcome"], got["rule"]) == (outcome, rule), got
    # and as the TOML example, which says the same in pocketgate.toml's words
    toml = _explain(configs.EXAMPLES / "pocketgate.toml", url, ip, groups)
    assert (toml["outcome"], toml["policy"]) == (got["outcome"], got["policy"]), toml


def test_the_build_time_check_rejects_what_evaluation_cannot_know(evaluate, tmp_path):
    ev = evaluate('{ services.pocketgate.hosts."wiki.example.com" = '
                  '{ policy = "users"; allowedNetworks = [ "10.0.0.0/33" ]; }; }')
    built = nixos.build_config(ev, tmp_path / "out.json")
    assert built.returncode != 0
    assert "allowed_networks" in built.stderr and "10.0.0.0/33" in built.stderr, built.stderr
    assert not (tmp_path / "out.json").exists()


def test_secrets_from_an_environment_file_pass_the_build_time_check(evaluate, tmp_path):
    without_files = ('{ lib, ... }: { services.pocketgate.oidc.clientSecretFile = lib.mkForce null; '
                     'services.pocketgate.session.secretFile = lib.mkForce null; }')
    ev = evaluate(without_files)
    built = nixos.build_config(ev, tmp_path / "a.json")
    assert built.returncode != 0 and "session.secret: missing" in built.stderr, built.stderr
    ev = evaluate(without_files, '{ services.pocketgate.environmentFile = "/run/secrets/pocketgate.env"; }')
    built = nixos.build_config(ev, tmp_path / "b.json")
    assert built.returncode == 0, built.stderr
    assert ev.unit["serviceConfig"]["EnvironmentFile"] == "/run/secrets/pocketgate.env"
    assert ev.unit["serviceConfig"]["LoadCredential"] == []
    assert "secret" not in json.dumps(ev.settings["session"])


def test_every_module_adds_to_a_host(evaluate):
    ev = evaluate('{ services.pocketgate.hosts."grafana.example.com".bypassPaths = [ "/public" ]; }',
                  '{ services.pocketgate.hosts."wiki.example.com" = { policy = "users"; '
                  'rules = [ { paths = [ "/admin" ]; policy = "admins"; } { methods = [ "DELETE" ]; action = "deny"; } ]; }; }')
    hosts = {h["host"]: h for h in ev.settings["hosts"]}
    assert sorted(hosts["grafana.example.com"]["bypass_paths"]) == ["/api/health", "/public"]
    assert hosts["wiki.example.com"]["rules"] == [{"paths": ["/admin"], "policy": "admins"},
                                                  {"methods": ["DELETE"], "action": "deny"}]


def test_a_host_may_match_paths_in_any_letter_case(evaluate, tmp_path):
    ev = evaluate('{ services.pocketgate.hosts."jellyfin.example.com" = { policy = "users"; '
                  'caseInsensitivePaths = true; rules = [ { paths = [ "/admin" ]; policy = "admins"; } ]; }; }')
    hosts = {h["host"]: h for h in ev.settings["hosts"]}
    assert hosts["jellyfin.example.com"]["case_insensitive_paths"] is True
    # off by default: the key is not written at all
    assert "case_insensitive_paths" not in hosts["grafana.example.com"]
    built = nixos.build_config(ev, tmp_path / "c.json")
    assert built.returncode == 0, built.stderr


def test_settings_take_any_other_key_and_hosts_in_pocketgate_toml_form(evaluate):
    ev = evaluate('{ services.pocketgate.settings = { log_format = "json"; bearer.enabled = true; '
                  'hosts = [ { host = "git.example.com"; policy = "users"; bypass_paths = [ "/api/healthz" ]; } ]; }; }')
    s = ev.settings
    assert s["log_format"] == "json" and s["bearer"] == {"enabled": True}
    # typed hosts and settings.hosts together, and both wired
    assert [h["host"] for h in s["hosts"]][-1] == "git.example.com"
    assert ev.data["caddy"]["virtualHosts"]["git.example.com"] == "import pocketgate"
    # a key both typed and in settings is a conflict naming both
    err = eval_error(evaluate, '{ services.pocketgate.settings.public_url = "https://login.example.com"; }')
    assert "services.pocketgate.settings.public_url" in err and "conflicting definition values" in err, err


# --- clear failures ------------------------------------------------------------

FAILURES = [
    ("inline client secret", ['{ services.pocketgate.settings.oidc.client_secret = "hunter2"; }'],
     ["settings.oidc.client_secret", "world-readable Nix store", "clientSecretFile"]),
    ("inline session secret", ['{ services.pocketgate.settings.session.secret = "hunter2hunter2"; }'],
     ["settings.session.secret", "world-readable Nix store", "secretFile"]),
    ("secret file as a Nix path", ['{ lib, ... }: { services.pocketgate.session.secretFile = lib.mkForce ./session-secret; }'],
     ["services.pocketgate.session.secretFile (", "/session-secret) is in the Nix store, or would be copied there",
      '"/run/secrets/..."']),
    ("redis password", ['{ services.pocketgate.session = { store = "redis"; redisUrl = "redis://:pw@10.0.0.5:6379/0"; }; }'],
     ["services.pocketgate.session.redisUrl carries a password", "environmentFile"]),
    ("redis password parameter", ['{ services.pocketgate.session = { store = "redis"; redisUrl = "redis+unix:///run/redis/redis.sock?pass=pw"; }; }'],
     ["services.pocketgate.session.redisUrl carries a password"]),
    ("secret file in the store", ['{ lib, ... }: { services.pocketgate.oidc.clientSecretFile = lib.mkForce "/nix/store/0000-client-secret"; }'],
     ["services.pocketgate.oidc.clientSecretFile (/nix/store/0000-client-secret) is in the Nix store"]),
    ("environment file in the store", ['{ services.pocketgate.environmentFile = "/nix/store/0000-pocketgate.env"; }'],
     ["services.pocketgate.environmentFile (/nix/store/0000-pocketgate.env) is in the Nix store"]),
    ("secret file named in settings", ['{ services.pocketgate.settings.assertion.key_file = "/run/secrets/assertion.pem"; }'],
     ["services.pocketgate.settings.assertion.key_file: name the file with services.pocketgate.assertion.keyFile",
      "LoadCredential"]),
    ("undefined host policy", ['{ services.pocketgate.hosts."wiki.example.com".policy = "admin"; }'],
     ['services.pocketgate.hosts."wiki.example.com".policy = "admin": no such policy (defined: admins, bypass, users)']),
    ("undefined rule policy", ['{ services.pocketgate.hosts."wiki.example.com".rules = [ { paths = [ "/x" ]; policy = "staff"; } ]; }'],
     ['services.pocketgate.hosts."wiki.example.com".rules.0.policy = "staff": no such policy']),
    ("undefined default policy", ['{ lib, ... }: { services.pocketgate.defaultPolicy = lib.mkForce "everyone"; }'],
     ['services.pocketgate.defaultPolicy = "everyone": no such policy']),
    ("one host twice, by case", ['{ services.pocketgate.hosts."Grafana.example.com".policy = "users"; }'],
     ["host grafana.example.com is defined twice"]),
    ("nginx FastCGI backend",
     ['{ services.pocketgate.nginx.enable = true; services.nginx.virtualHosts."lan.example.com".locations."~ \\\\.php$".extraConfig = '
      '"fastcgi_pass unix:/run/phpfpm/app.sock;"; }'],
     ["passes requests to a FastCGI/uwsgi/SCGI/gRPC backend", "proxy_pass backends only"]),
    ("Caddy php_fastcgi on a protected site",
     ['{ services.pocketgate.caddy.enable = true; services.caddy.virtualHosts."lan.example.com".extraConfig = '
      '"root * /srv/app\\nphp_fastcgi unix//run/phpfpm/app.sock"; }'],
     ['services.caddy.virtualHosts."lan.example.com" serves lan.example.com, which pocketgate protects, through '
      'FastCGI', "reverse_proxy to it"]),
    ("Caddy fastcgi transport on a protected site",
     ['{ services.pocketgate.caddy.enable = true; services.caddy.virtualHosts.lan = { hostName = "lan.example.com"; '
      'extraConfig = "reverse_proxy unix//run/app.sock {\\n\\ttransport  fastcgi {\\n\\t\\tsplit .php\\n\\t}\\n}"; }; }'],
     ['services.caddy.virtualHosts."lan" serves lan.example.com, which pocketgate protects, through FastCGI']),
    ("Caddy php_fastcgi in a snippet a protected site imports",
     ['{ services.pocketgate.caddy.enable = true; services.caddy.extraConfig = '
      '"(php) {\\n\\troot * /srv/app\\n\\tphp_fastcgi unix//run/phpfpm/app.sock\\n}\\n"; '
      'services.caddy.virtualHosts."lan.example.com".extraConfig = "import php"; }'],
     ['services.caddy.virtualHosts."lan.example.com" serves lan.example.com, which pocketgate protects, through '
      'FastCGI', "in the snippet php it imports from services.caddy.extraConfig"]),
    ("Caddy fastcgi transport in a snippet imported through another",
     ['{ services.pocketgate.caddy.enable = true; services.caddy.extraConfig = '
      '"(fcgi) {\\n\\treverse_proxy unix//run/app.sock {\\n\\t\\ttransport fastcgi\\n\\t}\\n}\\n'
      '(app) {\\n\\timport fcgi\\n}\\n"; '
      'services.caddy.virtualHosts."lan.example.com".extraConfig = "import app"; }'],
     ["through FastCGI", "in the snippet fcgi it imports from services.caddy.extraConfig"]),
    ("Caddy strip word that needed headers contain",
     ['{ services.pocketgate.caddy.enable = true; services.pocketgate.hosts."wiki.example.com" = '
      '{ policy = "users"; headers.user = "X-Auth-User"; }; }'],
     ['the Caddy wiring strips every spelling of the identity header X-Auth-User by its word "user"',
      "user-agent"]),
    ("nginx location in the host's own extraConfig",
     ['{ services.pocketgate.nginx.enable = true; services.nginx.virtualHosts."lan.example.com".extraConfig = '
      '"location /x { proxy_pass http://127.0.0.1:1; proxy_set_header X-A b; }"; }'],
     ['services.nginx.virtualHosts."lan.example.com".extraConfig holds a location with its own proxy_set_header']),
    ("nginx host served by another virtual host",
     ['{ services.pocketgate.nginx.enable = true; services.nginx.virtualHosts.grafana = '
      '{ serverName = "grafana.example.com"; locations."/".proxyPass = "http://127.0.0.1:3000"; }; }'],
     ['services.nginx.virtualHosts."grafana" also serve grafana.example.com',
      'define the site as services.nginx.virtualHosts."grafana.example.com" instead']),
    ("nginx location that sets a header the wiring sets",
     ['{ services.pocketgate.nginx.enable = true; services.nginx.virtualHosts."sonarr.example.com".locations."/" = '
      '{ proxyPass = "http://127.0.0.1:8989"; extraConfig = "proxy_set_header X-Real-IP $remote_addr;\\n'
      'proxy_set_header  x-remote-user  $remote_user;\\nproxy_set_header Host $http_host;"; }; }'],
     ['services.nginx.virtualHosts."sonarr.example.com".locations."/" sets proxy_set_header x-remote-user, host '
      "in its extraConfig", "would send the header twice"]),
]


@pytest.mark.parametrize("what,modules,messages", FAILURES, ids=[f[0] for f in FAILURES])
def test_evaluation_fails_with_a_clear_message(evaluate, what, modules, messages):
    err = eval_error(evaluate, *modules)
    assert "Failed assertions:" in err, err
    for m in messages:
        assert m in err, err


def test_caddy_snippets_without_fastcgi_or_on_unprotected_sites_pass(evaluate):
    # A FastCGI snippet imported only by a site pocketgate does not protect,
    # and a protected site importing a snippet that ends before the FastCGI
    # site block after it.
    ev = evaluate('{ services.pocketgate.caddy.enable = true; services.caddy.extraConfig = '
                  '"(php) {\\n\\tphp_fastcgi unix//run/phpfpm/app.sock\\n}\\n'
                  '(logs) {\\n\\tlog {\\n\\t\\toutput stderr\\n\\t}\\n}\\n'
                  'other.example.net {\\n\\tphp_fastcgi unix//run/other.sock\\n}\\n"; '
                  'services.caddy.virtualHosts."blog.example.net".extraConfig = "import php"; '
                  'services.caddy.virtualHosts."lan.example.com".extraConfig = "import logs\\nreverse_proxy 127.0.0.1:8080"; }')
    assert ev.data["caddy"]["virtualHosts"]["lan.example.com"].startswith("import pocketgate")


def test_a_nix_path_in_settings_is_refused_by_type(evaluate):
    err = eval_error(evaluate, "{ services.pocketgate.settings.assertion.key_file = ./assertion.pem; }")
    assert "services.pocketgate.settings.assertion.key_file" in err, err
    assert "JSON value (files as strings, never Nix paths)" in err, err


def _location_headers(text: str) -> list[str]:
    return [m.lower() for m in re.findall(r"^proxy_set_header\s+(\S+)", text, re.M)]


def test_every_location_of_a_protected_host_gets_the_identity_lines(evaluate):
    """NixOS's recommendedProxySettings (global or per location) and
    proxyWebsockets write proxy_set_header lines into a location, so nginx
    inherits none of the server's there: the wiring writes the snippet's
    backend lines into each location, less the names NixOS already sets."""
    ev = evaluate('{ services.pocketgate.nginx.enable = true; services.nginx.recommendedProxySettings = true; '
                  'services.nginx.virtualHosts."grafana.example.com".locations = { '
                  '"/".proxyPass = "http://127.0.0.1:3000"; '
                  '"/api/live/" = { proxyPass = "http://127.0.0.1:3000"; proxyWebsockets = true; }; '
                  '"/plain/" = { proxyPass = "http://127.0.0.1:3000"; recommendedProxySettings = false; }; '
                  '"/static/".extraConfig = "alias /srv/static/;"; }; '
                  'services.nginx.virtualHosts."blog.example.net".locations."/".proxyPass = "http://127.0.0.1:4000"; }')
    snippet = (configs.EXAMPLES / "nginx" / "pocketgate.conf").read_text()
    backend = snippet.split("# --- what the backend receives", 1)[1].split("# --- the subrequest to pocketgate")[0]
    lines = [line for line in backend.splitlines() if line.startswith("proxy_set_header ")]
    identity = ["x-remote-user", "x-remote-email", "x-remote-name", "x-remote-groups", "x-webauth-user", "cookie",
                "x-pocketgate-assertion"]
    recommended = {"host", "x-real-ip", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
                   "x-forwarded-server"}
    locations = ev.data["nginx"]["virtualHosts"]["grafana.example.com"]["locations"]
    expected = {
        "/": [n for n in _location_headers("\n".join(lines)) if n not in recommended],
        "/api/live/": [n for n in _location_headers("\n".join(lines)) if n not in recommended | {"upgrade", "connection"}],
        "/plain/": _location_headers("\n".join(lines)),
        "/static/": _location_headers("\n".join(lines)),
    }
    for path, names in expected.items():
        text = locations[path]["extraConfig"]
        assert _location_headers(text) == names, (path, text)
        assert set(identity) <= set(names), path
        # the lines are the snippet's own, names put in
        assert all(line in lines for line in text.splitlines() if line.startswith("proxy_set_header")), text
    assert locations["/"]["recommendedProxySettings"] and locations["/api/live/"]["proxyWebsockets"]
    assert "alias /srv/static/;" in locations["/static/"]["extraConfig"]
    # a virtual host pocketgate does not protect is left as it is
    assert ev.data["nginx"]["virtualHosts"]["blog.example.net"]["locations"]["/"]["extraConfig"] == ""
    # the configured names follow
    ev = evaluate('{ services.pocketgate = { nginx.enable = true; settings.headers.user = "Remote-User"; }; '
                  'services.nginx.virtualHosts."lan.example.com".locations."/".proxyWebsockets = true; }')
    text = ev.data["nginx"]["virtualHosts"]["lan.example.com"]["locations"]["/"]["extraConfig"]
    assert "proxy_set_header Remote-User     $pg_user;" in text and "X-Remote-User" not in text, text


def test_a_site_under_a_protected_wildcard_gets_a_warning(evaluate):
    ev = evaluate('{ services.pocketgate.hosts."*.apps.example.com".policy = "users"; '
                  'services.caddy.virtualHosts."*.apps.example.com".extraConfig = "reverse_proxy 127.0.0.1:9000"; '
                  'services.caddy.virtualHosts."wiki.apps.example.com".extraConfig = "reverse_proxy 127.0.0.1:9001"; }')
    assert ev.data["warnings"] == [
        'services.caddy.virtualHosts."wiki.apps.example.com" falls under a protected wildcard host but is a site '
        "of its own, which pocketgate's wiring does not reach: its requests are never checked; add "
        'services.pocketgate.hosts."wiki.apps.example.com" (it may just name the wildcard\'s policy)']
    assert evaluate().data["warnings"] == []


def test_every_login_host_gets_a_site(evaluate, tmp_path):
    ev = evaluate('{ services.pocketgate = { nginx.enable = true; settings.session.domains = [ '
                  '{ cookie_domain = "example.org"; public_url = "https://auth.example.org"; } ]; '
                  'hosts."wiki.example.org".policy = "users"; }; }')
    assert nixos.build_config(ev, tmp_path / "out.json").returncode == 0
    example = (configs.EXAMPLES / "caddy" / "Caddyfile").read_text()
    for name in ("auth.example.com", "auth.example.org"):
        assert ev.data["caddy"]["virtualHosts"][name] == _caddy_block(example, "auth.example.com")
        assert "proxy_pass http://pocketgate;" in ev.data["nginx"]["virtualHosts"][name]["extraConfig"]
    assert ev.data["caddy"]["virtualHosts"]["wiki.example.org"] == "import pocketgate"


def test_metrics_listen_is_a_typed_option_the_check_accepts(evaluate, tmp_path):
    assert "metrics_listen" not in evaluate().settings
    ev = evaluate('{ services.pocketgate.metricsListen = "127.0.0.1:9180"; }')
    assert ev.settings["metrics_listen"] == "127.0.0.1:9180"
    built = nixos.build_config(ev, tmp_path / "out.json")
    assert built.returncode == 0, built.stdout + built.stderr


def test_an_empty_trusted_proxies_list_is_kept(evaluate):
    assert "trusted_proxies" not in evaluate().settings
    assert evaluate("{ services.pocketgate.trustedProxies = [ ]; }").settings["trusted_proxies"] == []


def test_two_modules_defining_one_host_differently_is_a_conflict(evaluate):
    err = eval_error(evaluate, '{ services.pocketgate.hosts."grafana.example.com".policy = "users"; }')
    assert 'services.pocketgate.hosts."grafana.example.com".policy' in err, err
    assert "conflicting definition values" in err, err
    # both places are named: the service's module and the other one
    assert "grafana.nix': \"admins\"" in err and "module-3.nix': \"users\"" in err, err


# --- the proxies' wiring is the examples' ------------------------------------------

def _caddy_block(text: str, start: str) -> str:
    m = re.search(rf"^{re.escape(start)} \{{\n(.*?)^\}}\n", text, re.M | re.S)
    assert m, start
    return m.group(1).removesuffix("\n")


def _marked(text: str, name: str, indent: str) -> str:
    m = re.search(rf"^({indent}# BEGIN {name}[^\n]*\n.*?)^{indent}# END {name}\n", text, re.M | re.S)
    assert m, name
    return m.group(1)


def test_the_caddy_wiring_is_the_example(evaluate):
    ev = evaluate()
    example = (configs.EXAMPLES / "caddy" / "Caddyfile").read_text()
    caddy = ev.data["caddy"]
    assert caddy["extraConfig"] == f"(pocketgate) {{\n{_caddy_block(example, '(pocketgate)')}\n}}\n"
    vhosts = caddy["virtualHosts"]
    assert vhosts["auth.example.com"] == _caddy_block(example, "auth.example.com")
    for host, backend in [("grafana", 3000), ("sonarr", 8989), ("lan", 8080)]:
        assert vhosts[f"{host}.example.com"] == f"import pocketgate\nreverse_proxy 127.0.0.1:{backend}"
        assert f"{host}.example.com {{\n\timport pocketgate\n" in example


def test_the_nginx_wiring_is_the_example(evaluate):
    ev = evaluate("{ services.pocketgate.nginx.enable = true; }")
    conf = (configs.EXAMPLES / "nginx" / "nginx.conf").read_text()
    snippet = (configs.EXAMPLES / "nginx" / "pocketgate.conf").read_text()
    nginx = ev.data["nginx"]
    assert nginx["appendHttpConfig"] == _marked(conf, "pocketgate-http", "    ")
    for host in ["grafana.example.com", "sonarr.example.com", "lan.example.com"]:
        assert nginx["virtualHosts"][host]["extraConfig"] == snippet
    public = _marked(conf, "pocketgate-public-url", "        ")
    assert nginx["virtualHosts"]["auth.example.com"]["extraConfig"] == public.split("\n", 1)[1]


def test_the_nginx_wiring_passes_the_checks_nixos_runs(evaluate, tmp_path):
    """NixOS builds nginx.conf through gixy (and nginx parses it at start),
    with the recommended proxy settings and a WebSocket location too."""
    ev = evaluate(nixos.EXAMPLES / "nginx.nix")
    assert ev.data["warnings"] == []
    nginx = ev.data["nginx"]
    assert nginx["recommendedProxySettings"] and nginx["virtualHosts"]["grafana.example.com"]["locations"]["/"]["proxyWebsockets"]
    conf = tmp_path / "nginx.conf"
    conf.write_text(nixos.nginx_conf(ev.data["nginx"], configs.Ports(proxy=18080, auth=0, echo=0), tmp_path))
    gixy = subprocess.run([str(Path(sys.executable).parent / "gixy"), str(conf)], capture_output=True, text=True,
                          timeout=60)
    assert gixy.returncode == 0, gixy.stdout + gixy.stderr
    nginx = subprocess.run([nginx_binary(), "-t", "-p", f"{tmp_path}/", "-c", str(conf), "-g",
                            f"pid {tmp_path}/nginx.pid;"], capture_output=True, text=True, timeout=30)
    assert nginx.returncode == 0, nginx.stderr


def test_the_wiring_follows_the_configured_names(evaluate, tmp_path):
    ev = evaluate("""{ lib, ... }: {
      services.pocketgate = {
        listen = "127.0.0.1:9090";
        nginx.enable = true;
        settings.headers.user = "Remote-User";
        settings.session.cookie_name = "pg_sess";
        settings.assertion.header = "X-Identity-Assertion";
        hosts."grafana.example.com".headers.user = lib.mkForce null;
        hosts."wiki.example.com" = { policy = "users"; headers.email = "X-Mail"; headers.name = "X-Name"; };
      };
    }""")
    assert nixos.build_config(ev, tmp_path / "out.json").returncode == 0
    caddy = ev.data["caddy"]["extraConfig"]
    assert "WEBAUTH" not in caddy
    for line in ["forward_auth 127.0.0.1:9090 {",
                 # every spelling of a name goes by one of its words (Remote-User: by *remote*)
                 "request_header -*remote*\n", "request_header -*mail*\n", "request_header -*name*\n",
                 "request_header -*assertion*\n",
                 "copy_headers Remote-User X-Remote-Email X-Remote-Name X-Remote-Groups X-Identity-Assertion\n",
                 "copy_headers X-Mail X-Name\n",
                 r'"(?:^|;\s*)(?:__Host-)?pg_sess(?:_[0-7]|_idt|_flow_[0-9a-f]{16})?=[^;]*"']:
        assert line in caddy, line
    assert "\t\treverse_proxy 127.0.0.1:9090\n" in ev.data["caddy"]["virtualHosts"]["auth.example.com"]
    assert "*webauth*" not in caddy and "*pocketgate*" not in caddy and "*identity*" not in caddy
    nginx = ev.data["nginx"]
    snippet = nginx["virtualHosts"]["wiki.example.com"]["extraConfig"]
    assert "WEBAUTH" not in snippet
    for line in ["auth_request_set $pg_user     $upstream_http_remote_user;",
                 "proxy_set_header Remote-User     $pg_user;",
                 "auth_request_set $pg_mail $upstream_http_x_mail;",
                 "proxy_set_header X-Mail    $pg_mail;",
                 # $pg_name is the snippet's own: a host's X-Name gets a variable of its own
                 "auth_request_set $pg_header_name $upstream_http_x_name;",
                 "proxy_set_header X-Name    $pg_header_name;",
                 "auth_request_set $pg_assertion $upstream_http_x_identity_assertion;",
                 "proxy_set_header X-Identity-Assertion $pg_assertion;"]:
        assert line in snippet, line
    assert "server 127.0.0.1:9090;" in nginx["appendHttpConfig"]
    # a wildcard listen address is asked on loopback
    wild = evaluate('{ services.pocketgate = { listen = "0.0.0.0:4180"; nginx.enable = true; }; }').data
    assert "forward_auth 127.0.0.1:4180 {" in wild["caddy"]["extraConfig"]
    assert "server 127.0.0.1:4180;" in wild["nginx"]["appendHttpConfig"]
    wild6 = evaluate('{ services.pocketgate.listen = "[::]:4180"; }').data
    assert "forward_auth [::1]:4180 {" in wild6["caddy"]["extraConfig"]
    assert r"pg_sess(?:_[0-7]" in nginx["appendHttpConfig"] and ")pocketgate(" not in nginx["appendHttpConfig"]


TRAEFIK = ('{ services.pocketgate.traefik.enable = true; '
           'services.traefik.staticConfigOptions.entryPoints.websecure.address = ":443"; '
           'services.traefik.dynamicConfigOptions.http = { '
           'routers.grafana = { rule = "Host(`grafana.example.com`)"; service = "grafana"; middlewares = [ "compress" ]; }; '
           'routers.sonarr = { rule = "Host(`sonarr.example.com`) && PathPrefix(`/`)"; service = "sonarr"; }; '
           'routers.blog = { rule = "Host(`blog.example.net`)"; service = "blog"; }; }; }')


def _traefik_example() -> dict:
    import yaml
    return yaml.safe_load((configs.EXAMPLES / "traefik" / "dynamic.yml").read_text())


def test_the_traefik_wiring_is_the_examples(evaluate):
    ev = evaluate(TRAEFIK)
    example = _traefik_example()["http"]
    dyn = ev.data["traefik"]["dynamicConfigOptions"]["http"]
    got, want = dyn["middlewares"]["pocketgate"]["forwardAuth"], example["middlewares"]["pocketgate"]["forwardAuth"]
    assert got["address"] == want["address"] and got["trustForwardHeader"] is False
    assert got["authRequestHeaders"] == want["authRequestHeaders"]
    # the regex built from the configuration's names strips what the example's does
    names = [*IDENTITY_NAMES, *(k for k, _ in ALIASES), "X_WEBAUTH_USER", "xpocketgateassertion", "X-Remote-Userx",
             "Remote-User", "X-Remote", "Accept", "X-Forwarded-User", "X-WEBAUTH-USERNAME"]
    assert [bool(re.search(got["authResponseHeadersRegex"], n)) for n in names] == \
        [bool(re.search(want["authResponseHeadersRegex"], n)) for n in names]
    assert any(re.search(got["authResponseHeadersRegex"], n) for n in names)
    routers = dyn["routers"]
    # the protected hosts' routers get the middleware first; another host's router is left alone
    assert routers["grafana"]["middlewares"] == ["pocketgate", "compress"]
    assert routers["sonarr"]["middlewares"] == ["pocketgate"]
    assert "middlewares" not in routers["blog"]
    # pocketgate's own public router is the example's, with its service
    assert routers["pocketgate"] == {"rule": example["routers"]["pocketgate"]["rule"], "service": "pocketgate"}
    assert dyn["services"]["pocketgate"] == example["services"]["pocketgate"]
    # the entry point's alias-header setting, as examples/traefik/traefik.yml sets it
    static = ev.data["traefik"]["staticConfigOptions"]
    assert static["entryPoints"] == {"websecure": {"address": ":443", "http": {"aliasHeadersStrategy": "delete"}}}
    import yaml
    shipped = yaml.safe_load((configs.EXAMPLES / "traefik" / "traefik.yml").read_text())
    assert shipped["entryPoints"]["websecure"]["http"]["aliasHeadersStrategy"] == "delete"


def test_the_traefik_example_module_is_wired_as_shipped(evaluate):
    ev = evaluate(nixos.EXAMPLES / "traefik.nix")
    assert ev.data["warnings"] == []
    routers = ev.data["traefik"]["dynamicConfigOptions"]["http"]["routers"]
    assert {r: routers[r].get("middlewares") for r in ("grafana", "sonarr", "lan", "pocketgate")} == {
        "grafana": ["pocketgate"], "sonarr": ["pocketgate"], "lan": ["pocketgate"], "pocketgate": None}
    assert routers["pocketgate"]["entryPoints"] == ["websecure"]
    assert routers["pocketgate"]["tls"] == {"certResolver": "letsencrypt"}
    assert ev.data["traefik"]["staticConfigOptions"]["entryPoints"]["websecure"] == {
        "address": ":443", "http": {"tls": {"certResolver": "letsencrypt"}, "aliasHeadersStrategy": "delete"}}


def test_the_traefik_wiring_takes_named_routers_and_follows_the_names(evaluate):
    ev = evaluate(TRAEFIK, '{ services.pocketgate = { traefik.routers = [ "sonarr" ]; traefik.entryPoints = [ "websecure" ]; '
                  'listen = "127.0.0.1:9090"; settings.headers.user = "Remote-User"; }; }')
    dyn = ev.data["traefik"]["dynamicConfigOptions"]["http"]
    assert dyn["routers"]["grafana"]["middlewares"] == ["compress"]
    assert dyn["routers"]["sonarr"]["middlewares"] == ["pocketgate"]
    assert dyn["routers"]["pocketgate"]["entryPoints"] == ["websecure"]
    fa = dyn["middlewares"]["pocketgate"]["forwardAuth"]
    assert fa["address"] == "http://127.0.0.1:9090/forward-auth"
    assert re.search(fa["authResponseHeadersRegex"], "remote_user") and not re.search(fa["authResponseHeadersRegex"], "X-Remote-User")
    assert dyn["services"]["pocketgate"]["loadBalancer"]["servers"] == [{"url": "http://127.0.0.1:9090"}]
    # without a static configuration of its own, NixOS's default entry point is kept
    ev = evaluate('{ services.pocketgate.traefik.enable = true; }')
    assert ev.data["traefik"]["staticConfigOptions"] == {
        "entryPoints": {"http": {"address": ":80", "http": {"aliasHeadersStrategy": "delete"}}}}
    err = eval_error(evaluate, TRAEFIK, '{ services.pocketgate.traefik.routers = [ "grafana" "wiki" ]; }')
    assert ('services.pocketgate.traefik.routers names the router "wiki", which '
            "services.traefik.dynamicConfigOptions.http.routers does not define") in err, err
    err = eval_error(evaluate, TRAEFIK, '{ services.traefik.dynamicConfigFile = "/etc/traefik/dynamic.toml"; }')
    assert ("services.pocketgate.traefik wires services.traefik.dynamicConfigOptions and staticConfigOptions, which "
            "NixOS ignores when services.traefik.dynamicConfigFile is set") in err, err


def test_the_traefik_wiring_reads_routers_as_nixos_merges_them(evaluate):
    """A router's rule in one module and more of it in another (mkIf, mkMerge
    too) is one router: it is wired, never silently left out."""
    ev = evaluate(TRAEFIK, '{ lib, ... }: { services.traefik.dynamicConfigOptions.http.routers = { '
                  'grafana.tls.certResolver = "letsencrypt"; '
                  'wiki = lib.mkIf true { rule = "Host(`wiki.example.com`)"; service = "wiki"; }; '
                  'code = lib.mkMerge [ { service = "code"; } { rule = "Host(`code.example.com`)"; } ]; }; '
                  'services.pocketgate.hosts = { "wiki.example.com".policy = "users"; "code.example.com".policy = "users"; }; }')
    routers = ev.data["traefik"]["dynamicConfigOptions"]["http"]["routers"]
    assert routers["grafana"]["middlewares"] == ["pocketgate", "compress"]
    assert routers["grafana"]["tls"] == {"certResolver": "letsencrypt"}
    assert routers["wiki"]["middlewares"] == ["pocketgate"] and routers["code"]["middlewares"] == ["pocketgate"]


def test_sites_left_to_the_default_policy_get_a_warning_naming_each(evaluate, tmp_path):
    sites = ('{ services.pocketgate.nginx.enable = true; '
             'services.nginx.virtualHosts."wiki.example.com".locations."/".proxyPass = "http://127.0.0.1:3001"; '
             'services.nginx.virtualHosts.docs = { serverName = "docs.example.com"; locations."/".proxyPass = "http://127.0.0.1:3002"; }; '
             'services.caddy.virtualHosts."notes.example.com".extraConfig = "reverse_proxy 127.0.0.1:3003"; }')
    ev = evaluate(sites, TRAEFIK)
    why = ("no services.pocketgate.hosts entry names {host}, and the wiring goes only on the hosts listed there, so "
           'defaultPolicy ("users") never applies to it and its requests reach the backend unchecked; '
           'add services.pocketgate.hosts."{host}".policy = "users"; (or another policy) to protect it')
    expected = [
        ('services.caddy.virtualHosts."notes.example.com"', "caddy", "notes.example.com"),
        ('services.nginx.virtualHosts."docs"', "nginx", "docs.example.com"),
        ('services.nginx.virtualHosts."wiki.example.com"', "nginx", "wiki.example.com"),
        ('services.traefik.dynamicConfigOptions.http.routers."blog"', "traefik", "blog.example.net"),
    ]
    assert sorted(ev.data["warnings"]) == [f"{where} is not wired by services.pocketgate.{proxy}.enable: "
                                           + why.format(host=host) for where, proxy, host in expected]
    # a hosts entry wires it and ends the warning (docs: the virtual host must be named by its host)
    ev = evaluate(sites, TRAEFIK, '{ services.pocketgate.hosts = { "wiki.example.com".policy = "users"; '
                  '"notes.example.com".policy = "users"; "blog.example.net".policy = "users"; }; }')
    assert ev.data["warnings"] == [f"{where} is not wired by services.pocketgate.{proxy}.enable: "
                                   + why.format(host=host) for where, proxy, host in expected[1:2]]
    assert nixos.build_config(ev, tmp_path / "out.json").returncode == 0
    assert ev.data["traefik"]["dynamicConfigOptions"]["http"]["routers"]["blog"]["middlewares"] == ["pocketgate"]
    # without defaultPolicy such a host is denied if it asks, and nothing is said
    assert evaluate(sites, TRAEFIK, '{ lib, ... }: { services.pocketgate.defaultPolicy = lib.mkForce null; }').data["warnings"] == []


# --- the unit ---------------------------------------------------------------------

def test_the_unit_is_hardened_and_reloads_by_sighup(evaluate):
    ev = evaluate()
    unit, sc = ev.unit, ev.unit["serviceConfig"]
    checked = ev.data["config"]["checked"]
    binary = f"{ev.store}/pocketgate-package/bin/pocketgate"
    # The unit names a stable path, so a new configuration only changes the
    # reload trigger: a switch reloads (SIGHUP) instead of restarting.
    assert ev.data["etc"]["pocketgate/pocketgate.json"] == checked
    path = "/etc/pocketgate/pocketgate.json"
    assert sc["ExecStart"] == f"{binary} serve -c {path}"
    assert sc["ExecStartPre"] == f"{binary} check -c {path}"
    assert sc["ExecReload"] == [f"{binary} check -c {path}", "/stand-in/coreutils/bin/kill -HUP $MAINPID"]
    assert unit["reloadTriggers"] == [checked]
    assert json.loads(unit["restartTriggers"][0])["listen"] == "127.0.0.1:4180"
    assert sorted(sc["LoadCredential"]) == ["client_secret:/run/secrets/pocketgate-client-secret",
                                            "session_secret:/run/secrets/pocketgate-session-secret"]
    expected = {
        "DynamicUser": True, "StateDirectory": "pocketgate", "ProtectSystem": "strict", "ProtectHome": True,
        "NoNewPrivileges": True, "PrivateTmp": True, "PrivateDevices": True, "Restart": "on-failure",
        "RestrictAddressFamilies": ["AF_INET", "AF_INET6", "AF_UNIX"], "CapabilityBoundingSet": "",
        "MemoryDenyWriteExecute": True, "SystemCallArchitectures": "native",
    }
    for key, value in expected.items():
        assert sc[key] == value, key
    assert sc["SystemCallFilter"][0] == "@system-service"
    assert "multi-user.target" in unit["wantedBy"]


def test_the_package_expression_builds_from_this_checkout(nix_lib):
    expr = (f"let lib = {nix_lib}; p = import {configs.REPO}/nix/package.nix "
            "{ inherit lib; rustPlatform.buildRustPackage = args: args; }; in "
            "{ inherit (p) pname version buildNoDefaultFeatures cargoBuildFlags; lock = toString p.cargoLock.lockFile; "
            'kept = map (d: p.src.filter "${toString p.src.origSrc}/${d}" "directory") '
            '[ "src" "crates" "benches" "target" "fuzz" ]; }')
    r = subprocess.run([nixos.nix_instantiate(), "--eval", "--strict", "--json", "-E", expr],
                       capture_output=True, text=True, env=nixos._env(), timeout=60)
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)
    version = re.search(r'^version = "([^"]+)"', (configs.REPO / "Cargo.toml").read_text(), re.M).group(1)
    assert (p["pname"], p["version"]) == ("pocketgate", version)
    assert p["lock"] == str(configs.REPO / "Cargo.lock") and p["buildNoDefaultFeatures"] is True
    assert p["kept"] == [True, True, True, False, False]


# --- real Caddy and nginx from the generated configuration ------------------------------

@pytest.fixture(scope="module", params=["caddy", "nginx", "traefik"])
def nix_stack(request, nix_lib, echo, run_dir):
    """The generated configuration and proxy wiring, running: pocketgate, the
    test provider, and Caddy, nginx or Traefik rendered from services.caddy /
    services.nginx / services.traefik as NixOS would."""
    proxy = request.param
    proc, port = echo
    store = run_dir / f"nixos-store-{proxy}"
    generated = {}
    def config(_toml: str, stack) -> str:
        work = run_dir / f"nixos-modules-{proxy}"
        work.mkdir(parents=True, exist_ok=True)
        # the example's nginx.nix (recommendedProxySettings on, WebSockets on
        # grafana's and sonarr's locations) or traefik.nix beside the seed's
        modules = nixos.seed_copy(work, port, tuple(m for p, m in nixos.PROXY_MODULES.items() if p == proxy))
        local = f"""{{ lib, ... }}: {{
          services.pocketgate = {{
            listen = lib.mkForce "127.0.0.1:{stack.ports.auth}";
            publicUrl = lib.mkForce "{stack.public_url}";
            oidc.issuer = lib.mkForce "{stack.issuer}";
            settings.session.state_dir = lib.mkForce "{stack.workdir / 'state'}";
            caddy.enable = lib.mkForce {str(proxy == "caddy").lower()};
          }};
        }}"""
        ev = nixos.evaluate([*modules, local], store, pocketgate_binary(), nix_lib)
        built = nixos.build_config(ev, store / "built.json")
        assert built.returncode == 0, built.stderr
        generated.update(ev.data)
        return (store / "built.json").read_text()

    def files(ports, workdir):
        if proxy == "caddy":
            return {"Caddyfile": nixos.caddyfile(generated["caddy"], ports)}
        if proxy == "traefik":
            return nixos.traefik_files(generated["traefik"], ports, workdir)
        return {"nginx.conf": nixos.nginx_conf(generated["nginx"], ports, workdir)}

    add = Additions(name="nixos", config=config, config_name="pocketgate.json", proxy_files=files)
    stack = start_stack(proxy, proc, port, run_dir, add)
    yield stack
    for p in reversed(stack.procs[1:]):
        p.stop()


def _through(stack, host, path, *, source_ip=None, session=None, extra=()):
    headers = [("Accept", "application/json"), *extra]
    if session is not None:
        headers.append(("Cookie", cookie_header(session, f"{host}.{TEST_DOMAIN}")))
    return raw_request(stack.ports.proxy, stack.host(host), path, headers=headers, source_ip=source_ip)


def test_nixos_sends_anonymous_browsers_to_the_login(nix_stack):
    r = browser().get(nix_stack.url("grafana"), allow_redirects=False, timeout=10)
    assert_login_required(r, nix_stack, browser_like=True)


def test_nixos_lets_admins_into_grafana_with_its_header(nix_stack):
    user = nix_stack.new_user(["admins"])
    s = logged_in(nix_stack, user, first_host="grafana")
    r = _through(nix_stack, "grafana", "/dashboards", session=s,
                 extra=[("X-WEBAUTH-USER", "mallory"), ("X_WEBAUTH_USER", "mallory"), ("X-Remote-User", "mallory"),
                        ("X-Remote-Groups", "mallory"), ("X-Pocketgate-Assertion", "mallory")])
    data = raw_echo(r)
    assert r.status == 200 and data, r.status
    assert flows.header_values(data, "X-WEBAUTH-USER") == [user]
    # the host's own name replaces X-Remote-User; the others keep theirs
    assert flows.header_values(data, "X-Remote-User") == []
    assert flows.header_values(data, "X-Remote-Groups") == ["admins"]
    assert "mallory" not in json.dumps(data["headers"]), data["headers"]
    assert len(flows.header_values(data, "X-Pocketgate-Assertion")) == 1
    _no_pocketgate_cookie(nix_stack, data)


def _no_pocketgate_cookie(stack, data: dict) -> None:
    """Traefik passes the Cookie header on as it is (examples/traefik/dynamic.yml
    says why; test_backend_headers.py pins it); the others keep ours."""
    if stack.proxy != "traefik":
        assert not any("pocketgate" in c for c in flows.header_values(data, "Cookie")), \
            "a pocketgate cookie reached the backend"


def test_nixos_denies_users_grafana_but_not_sonarr(nix_stack):
    user = nix_stack.new_user(["users"])
    s = logged_in(nix_stack, user, first_host="sonarr")
    assert _through(nix_stack, "grafana", "/", session=s).status == 403
    r = _through(nix_stack, "sonarr", "/", session=s)
    assert r.status == 200 and flows.header_values(raw_echo(r), "X-Remote-User") == [user]


@pytest.mark.parametrize("host,path,source,reached", [
    ("grafana", "/api/health", ADDR_MONITORING, True),
    ("grafana", "/api/health", ADDR_OUTSIDE_2, False),
    ("sonarr", "/api/v3/series", ADDR_LAN, True),
    ("sonarr", "/api/system/status", ADDR_LAN, True),
    ("sonarr", "/api/v3/series", ADDR_OUTSIDE_2, False),
    ("lan", "/", ADDR_PRIVATE, True),
    ("lan", "/", ADDR_OUTSIDE_2, False),
])
def test_nixos_bypasses_as_the_seed(nix_stack, host, path, source, reached):
    r = _through(nix_stack, host, path, source_ip=source, extra=[("X-Remote-User", "mallory")])
    if reached:
        data = raw_echo(r)
        assert r.status == 200 and data, r.status
        assert flows.identity_headers(data) == [], "a bypass carries no identity, and no forged one"
        assert flows.header_values(data, "X-WEBAUTH-USER") == []
    else:
        assert r.status == 401, r.status


def test_nixos_decides_for_the_host_it_serves(nix_stack):
    """Absolute form with another host's Host header (issue 16, finding 1):
    the generated wiring asks about the host the proxy serves."""
    def absolute(served, claimed, path, **kw):
        headers = [("Accept", "application/json")]
        if "session" in kw:
            headers.append(("Cookie", cookie_header(kw.pop("session"), f"{served}.{TEST_DOMAIN}")))
        return raw_request(nix_stack.ports.proxy, nix_stack.host(claimed), f"http://{nix_stack.host(served)}{path}",
                           headers=headers, **kw)

    user = nix_stack.new_user(["users"])
    s = logged_in(nix_stack, user, first_host="sonarr")
    r = absolute("grafana", "sonarr", "/", session=s)
    assert r.status == 403 and raw_echo(r) is None, (r.status, r.body[:200])
    # sonarr bypasses /api from the LAN; grafana does not
    r = absolute("grafana", "sonarr", "/api/v3/series", source_ip=ADDR_LAN)
    assert r.status == 401 and raw_echo(r) is None, (r.status, r.body[:200])


def test_nixos_strips_every_spelling_of_an_identity_header(nix_stack):
    """Alias spellings that CGI, PHP or a framework would fold into an
    identity header (X_Remote-User, X.Remote.User, x~remote~user) never reach
    a backend through the generated wiring: signed in (grafana, whose own
    name is X-WEBAUTH-USER) or on a bypass (grafana's /api/health from the
    monitoring network)."""
    folded = {squash(n) for n in IDENTITY_NAMES}
    user = nix_stack.new_user(["admins"])
    s = logged_in(nix_stack, user, first_host="grafana")
    for path, source, session in (("/dashboards", None, s), ("/api/health", ADDR_MONITORING, None)):
        r = _through(nix_stack, "grafana", path, source_ip=source, session=session, extra=ALIASES)
        data = raw_echo(r)
        assert r.status == 200 and data, (path, r.status)
        forged = [(k, v) for k, v in data["headers"] if v.startswith("forged-")]
        assert forged == [], (path, forged)
        seen = sorted(k.lower() for k, _ in data["headers"] if squash(k) in folded)
        if session:
            # only pocketgate's answer, each under its one canonical name
            assert "x-webauth-user" in seen and len(seen) == len(set(seen)), (path, seen)
            assert set(seen) <= {n.lower() for n in IDENTITY_NAMES}, (path, seen)
        else:
            assert seen == [], (path, seen)


def test_nixos_websocket_upgrade_needs_a_session(nix_stack):
    """The upgrade passes only with a session, with pocketgate's identity and
    none of the client's (on nginx: a location with proxyWebsockets and the
    recommended proxy settings)."""
    hs = websocket_handshake(nix_stack.ports.proxy, nix_stack.host("grafana"), "/api/live/ws",
                             source_ip=ADDR_OUTSIDE_2)
    assert hs.status in (401, 302), hs.head
    user = nix_stack.new_user(["admins"])
    s = logged_in(nix_stack, user, first_host="grafana")
    hs = websocket_handshake(nix_stack.ports.proxy, nix_stack.host("grafana"), "/api/live/ws",
                             cookie=cookie_header(s, f"grafana.{TEST_DOMAIN}"),
                             extra=[("X-WEBAUTH-USER", "mallory"), ("X-Remote-Groups", "mallory")])
    assert hs.status == 101 and hs.accept_ok, hs.head
    m = re.search(rb"\{.*\}", hs.first_frame, re.S)
    assert m, hs.first_frame[:200]
    data = json.loads(m.group(0))
    assert flows.header_values(data, "X-WEBAUTH-USER") == [user]
    assert flows.header_values(data, "X-Remote-Groups") == ["admins"]
    assert "mallory" not in json.dumps(data["headers"]), data["headers"]
    _no_pocketgate_cookie(nix_stack, data)


def test_nixos_public_site_keeps_metrics_private(nix_stack):
    for path in ("/metrics", "/readyz", "/forward-auth", "/auth-request"):
        r = raw_request(nix_stack.ports.proxy, nix_stack.host("auth"), path)
        assert r.status == 404, (path, r.status, r.body[:200])
    assert raw_request(nix_stack.ports.proxy, nix_stack.host("auth"), "/healthz").status == 200
