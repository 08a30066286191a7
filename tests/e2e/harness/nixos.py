"""Evaluate nix/module.nix (services.pocketgate) the way NixOS would.

``lib.evalModules`` from nixpkgs' own ``lib`` (the real module system) runs
the module with small stand-ins for the NixOS options it touches
(tests/nix/stand-ins.nix) and a stand-in ``pkgs`` whose files are records
the test writes itself (tests/nix/pkgs.nix). Nix is Debian's ``nix-bin``
(run.sh installs it); nixpkgs' ``lib`` comes from, in order: ``NIXPKGS_LIB``,
``../shared/nixpkgs-lib/lib`` next to this checkout (or next to the checkout
it was cloned from), ``<nixpkgs/lib>`` on ``NIX_PATH``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness import configs

REPO = configs.REPO
EVAL = REPO / "tests" / "nix" / "eval.nix"
EXAMPLES = configs.EXAMPLES / "nixos"
# the NixOS example, one module per service as an operator splits it
SEED_MODULES = ("pocketgate.nix", "grafana.nix", "sonarr.nix")
# the example's proxy alternatives, each imported beside the seed's modules
PROXY_MODULES = {"nginx": "nginx.nix", "traefik": "traefik.nix"}

INSTALL_HINT = (
    "install Nix (Debian: apt-get install nix-bin) and nixpkgs' lib: set NIXPKGS_LIB to a "
    "nixpkgs/lib directory, or put one at ../shared/nixpkgs-lib/lib, or have <nixpkgs/lib> on NIX_PATH"
)


class EvalError(Exception):
    """nix-instantiate refused the configuration; ``str()`` is its message."""


def nix_instantiate() -> str | None:
    return shutil.which("nix-instantiate")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # Evaluation only: a private, throw-away state directory, no daemon.
    state = Path(tempfile.gettempdir()) / f"pocketgate-nix-state-{os.getuid()}"
    state.mkdir(exist_ok=True)
    env.setdefault("NIX_STATE_DIR", str(state))
    env.setdefault("NIX_REMOTE", "")
    return env


def _origin_checkout() -> Path | None:
    """The checkout this one was cloned from (CI clones main elsewhere)."""
    try:
        url = subprocess.run(["git", "-C", str(REPO), "remote", "get-url", "origin"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    path = Path(url.removeprefix("file://")) if url and "://" not in url.removeprefix("file://") else None
    return path if path and path.is_dir() else None


def nixpkgs_lib() -> str | None:
    """A Nix expression for nixpkgs' lib, or None when none is found."""
    candidates = []
    if os.environ.get("NIXPKGS_LIB"):
        candidates.append(Path(os.environ["NIXPKGS_LIB"]))
    candidates.append(REPO.parent / "shared" / "nixpkgs-lib" / "lib")
    origin = _origin_checkout()
    if origin:
        candidates.append(origin.parent / "shared" / "nixpkgs-lib" / "lib")
    for c in candidates:
        if (c / "default.nix").is_file():
            return f"import {c.resolve()}"
    nix = nix_instantiate()
    if nix:
        r = subprocess.run([nix, "--eval", "-E", "<nixpkgs/lib>"], capture_output=True, text=True,
                           env=_env(), timeout=60)
        if r.returncode == 0:
            return "import <nixpkgs/lib>"
    return None


@dataclass
class Evaluated:
    """What a NixOS system would get from the modules (tests/nix/eval.nix)."""
    data: dict
    store: Path

    @property
    def config_text(self) -> str:
        return self.data["config"]["text"]

    @property
    def settings(self) -> dict:
        return json.loads(self.config_text)

    @property
    def unit(self) -> dict:
        return self.data["unit"]


def evaluate(modules: list[Path | str], store: Path, pocketgate_bin: Path, lib: str) -> Evaluated:
    """Evaluate the module with ``modules`` (files, or Nix module text).

    ``store`` stands in for /nix/store; ``pocketgate_bin`` becomes the
    package's bin/pocketgate. Raises ``EvalError`` with Nix's message.
    """
    store.mkdir(parents=True, exist_ok=True)
    package = store / "pocketgate-package"
    (package / "bin").mkdir(parents=True, exist_ok=True)
    link = package / "bin" / "pocketgate"
    if not link.exists():
        link.symlink_to(pocketgate_bin.resolve())
    items = []
    for i, m in enumerate(modules):
        if isinstance(m, Path):
            items.append(str(m.resolve()))
        else:
            path = store / f"module-{i}.nix"
            path.write_text(m)
            items.append(str(path))
    expr = (f"import {EVAL} {{ lib = {lib}; modules = [ {' '.join(items)} ]; "
            f"store = {json.dumps(str(store))}; pocketgate = {json.dumps(str(package))}; }}")
    r = subprocess.run([nix_instantiate(), "--eval", "--strict", "--json", "-E", expr],
                       capture_output=True, text=True, env=_env(), timeout=120)
    if r.returncode != 0:
        raise EvalError(r.stderr)
    return Evaluated(json.loads(r.stdout), store)


def build_config(ev: Evaluated, out: Path) -> subprocess.CompletedProcess:
    """Run the module's build-time check (its runCommand script) as Nix would:
    the written configuration at its store path, ``$out`` the result."""
    cfg = ev.data["config"]
    path = Path(cfg["path"])
    path.write_text(ev.config_text)
    env = {"PATH": os.environ.get("PATH", ""), "config": str(path), "out": str(out)}
    return subprocess.run(["bash", "-euo", "pipefail", "-c", cfg["build"]], capture_output=True, text=True,
                          env=env, timeout=60)


def seed_copy(workdir: Path, echo_port: int, extra: tuple[str, ...] = ()) -> list[Path]:
    """The NixOS example on loopback, as configs.py does for the others: host
    names under example.test, the networks' loopback twins, the backends on the
    echo port, the module imported from this checkout. ``extra``: more of
    examples/nixos/ (PROXY_MODULES)."""
    out = []
    for name in (*SEED_MODULES, *extra):
        what = f"examples/nixos/{name}"
        text = (EXAMPLES / name).read_text()
        text = configs._sub(r"\bexample\.com\b", configs.TEST_DOMAIN, text, what, min_count=0)
        for prod, test in configs.CIDR_MAP.items():
            text = configs._sub(re.escape(f'"{prod}"'), f'"{test}"', text, what, min_count=0)
        text = configs._backends(text, echo_port, what)
        text = text.replace("../../nix/module.nix", str(REPO / "nix" / "module.nix"))
        path = workdir / name
        path.write_text(text)
        out.append(path)
    return out


def caddyfile(caddy: dict, ports: configs.Ports) -> str:
    """The Caddyfile NixOS's caddy module writes from services.caddy (global
    options, extraConfig, one block per virtual host), with the loopback
    test's global options and every site on plain http at the proxy port."""
    def address(name: str) -> str:
        return name if "://" in name else f"http://{name}:{ports.proxy}"
    sites = "".join(
        f"{address(name)} {{\n{body}\n}}\n\n" for name, body in sorted(caddy["virtualHosts"].items())
    )
    return ("{\n\tadmin off\n\tauto_https off\n\tpersist_config off\n}\n\n"
            f"{caddy['extraConfig']}\n{sites}")


# What NixOS's nginx module writes (nixos/modules/services/web-servers/nginx/
# default.nix): `recommendedProxyConfig`, the file a location with proxyPass
# and recommendedProxySettings includes, and the http block includes too when
# services.nginx.recommendedProxySettings is on;
NIXOS_RECOMMENDED_PROXY_HEADERS = (
    "proxy_set_header        Host $host;\n"
    "proxy_set_header        X-Real-IP $remote_addr;\n"
    "proxy_set_header        X-Forwarded-For $proxy_add_x_forwarded_for;\n"
    "proxy_set_header        X-Forwarded-Proto $scheme;\n"
    "proxy_set_header        X-Forwarded-Host $host;\n"
    "proxy_set_header        X-Forwarded-Server $host;\n"
)


def _nixos_recommended_http(include: Path) -> str:
    """The http block's part for services.nginx.recommendedProxySettings
    (proxyTimeout's default 60s)."""
    return ("  proxy_redirect          off;\n"
            "  proxy_connect_timeout   60s;\n"
            "  proxy_send_timeout      60s;\n"
            "  proxy_read_timeout      60s;\n"
            "  proxy_http_version      1.1;\n"
            '  proxy_set_header        "Connection" "";\n'
            f"  include {include};\n")


def _nixos_location(path: str, loc: dict, include: Path) -> str:
    """A location as mkLocations writes it: proxy_pass, the proxyWebsockets
    lines, extraConfig, then the recommended headers' include (proxyPass set
    and the location's recommendedProxySettings, whose default is the
    global one)."""
    body = ""
    if loc["proxyPass"]:
        body += f"      proxy_pass {loc['proxyPass']};\n"
    if loc.get("proxyWebsockets"):
        body += ("      proxy_http_version 1.1;\n"
                 "      proxy_set_header Upgrade $http_upgrade;\n"
                 "      proxy_set_header Connection $connection_upgrade;\n")
    body += f"      {loc['extraConfig']}\n"
    if loc["proxyPass"] and loc.get("recommendedProxySettings"):
        body += f"      include {include};\n"
    return f"    location {path} {{\n{body}    }}\n"


def nginx_conf(nginx: dict, ports: configs.Ports, workdir: Path) -> str:
    """The nginx.conf NixOS's nginx module writes from services.nginx: the
    http block with the recommended proxy settings when they are on and its
    own `$connection_upgrade` map, one server per virtual host (server_name
    with its aliases, locations first, then extraConfig), then
    appendHttpConfig; every server on the proxy port, logs in ``workdir``
    (the recommended headers' file too)."""
    include = workdir / "nginx-recommended-proxy-headers.conf"
    include.write_text(NIXOS_RECOMMENDED_PROXY_HEADERS)
    servers = []
    for name, vhost in sorted(nginx["virtualHosts"].items()):
        locations = "".join(_nixos_location(path, loc, include) for path, loc in sorted(vhost["locations"].items()))
        names = " ".join([vhost.get("serverName") or name, *vhost.get("serverAliases", [])])
        servers.append(f"  server {{\n    listen 127.0.0.1:{ports.proxy};\n    server_name {names};\n"
                       f"{locations}{vhost['extraConfig']}\n  }}\n")
    recommended = _nixos_recommended_http(include) if nginx.get("recommendedProxySettings") else ""
    return (f"error_log {workdir}/error.log info;\nevents {{\n  worker_connections 256;\n}}\n"
            f"http {{\n  access_log {workdir}/access.log;\n{recommended}"
            "  map $http_upgrade $connection_upgrade {\n    default upgrade;\n    '' close;\n  }\n"
            f"{''.join(servers)}\n{nginx['appendHttpConfig']}\n}}\n")


def traefik_files(traefik: dict, ports: configs.Ports, workdir: Path) -> dict[str, str]:
    """traefik.yml and dynamic.yml as NixOS's traefik module writes them
    (nixos/modules/services/web-servers/traefik.nix): dynamicConfigOptions
    as the file provider's file, staticConfigOptions with
    ``providers.file.filename`` set to it (recursiveUpdate). NixOS converts
    the JSON to TOML (remarshal, yj); Traefik reads YAML the same, so YAML
    it is here. For loopback, as configs.traefik_configs does for the
    shipped example: the one entry point on the proxy port, no TLS or ACME,
    logs and no version check."""
    static = json.loads(json.dumps(traefik["staticConfigOptions"]))
    dynamic = json.loads(json.dumps(traefik["dynamicConfigOptions"]))
    eps = static.get("entryPoints") or {}
    if len(eps) != 1:
        raise configs.ExampleDrift(f"services.traefik.staticConfigOptions: {len(eps)} entry points (expected 1)")
    for ep in eps.values():
        ep["address"] = f"127.0.0.1:{ports.proxy}"
        (ep.get("http") or {}).pop("tls", None)
    static.pop("certificatesResolvers", None)
    for router in ((dynamic.get("http") or {}).get("routers") or {}).values():
        router.pop("tls", None)
    static.setdefault("providers", {}).setdefault("file", {})["filename"] = str(workdir / "dynamic.yml")
    static["log"] = {"level": "DEBUG"}
    static["accessLog"] = {"format": "common"}
    static["global"] = {"checkNewVersion": False, "sendAnonymousUsage": False}
    return {"traefik.yml": yaml.safe_dump(static, sort_keys=False),
            "dynamic.yml": yaml.safe_dump(dynamic, sort_keys=False)}
