"""One proxy and everything behind it, started once per test module.

A ``Stack`` is: the echo backend (shared by the session), the auth server
(real pocketgate with the test identity provider, or the stub), and one of
Caddy / nginx / Traefik started from the shipped example. All on loopback,
all on ports chosen at run time.

A test module that needs more than the shipped setup (test_rules.py: rules,
include files, a second cookie domain) passes ``Additions``: its own lines for
pocketgate.toml, files next to it, more host names routed like one of the
example's sites, more login hosts registered at the provider. The examples
themselves stay as shipped.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import requests

from harness import configs, proxies
from harness.procs import Proc, StartupError, free_port

E2E_DIR = Path(__file__).resolve().parents[1]
REPO = configs.REPO
PY = sys.executable

# Which ID token algorithm the provider signs with, per proxy: both RS256 and
# ES256 are exercised across the matrix (E2E_IDP_ALG overrides for all).
IDP_ALG = {"caddy": "RS256", "nginx": "ES256", "traefik": "RS256"}
HOSTS = ("auth", "grafana", "sonarr", "lan", "code")
CLIENT_ID = "pocketgate"
# pocketgate's session.refresh_interval in every stack (the shortest it
# allows), so refresh, and an outage longer than it, fit in a test.
REFRESH_INTERVAL = 5.0

# the provider's control endpoints, asked directly (never through a proxy of the environment)
_direct = requests.Session()
_direct.trust_env = False


@dataclass
class Additions:
    """What a test module adds to the shipped setup, under its own work directory."""
    name: str                                   # work directory: <run dir>/<name>-<proxy>
    # the substituted examples/pocketgate.toml and the stack -> the file to run
    config: Callable[[str, "Stack"], str] = lambda text, stack: text
    # more files next to pocketgate.toml (relative path -> text), e.g. conf.d/*.toml
    files: dict[str, str] = field(default_factory=dict)
    # more host names routed like one of the example's sites: {"code": ["wiki.example.test"]}
    aliases: dict[str, list[str]] = field(default_factory=dict)
    # more login hosts ([[session.domains]] public_url hosts): their /callback is registered
    login_hosts: list[str] = field(default_factory=list)
    # anything else in the work directory before pocketgate starts (symlinks, ...)
    prepare: Callable[[Path], None] = lambda workdir: None
    # the configuration's file name (its extension picks TOML or JSON)
    config_name: str = "pocketgate.toml"
    # the proxy's own files instead of the example's (test_nixos.py: what the
    # NixOS module generates): {"Caddyfile": ...} or {"nginx.conf": ...}
    proxy_files: Callable[[configs.Ports, Path], dict[str, str]] | None = None
    # more environment for pocketgate (test_traces.py: OTEL_*) and for the proxy
    env: dict[str, str] = field(default_factory=dict)
    proxy_env: dict[str, str] = field(default_factory=dict)


@dataclass
class Stack:
    proxy: str
    ports: configs.Ports
    workdir: Path
    procs: list[Proc] = field(default_factory=list)
    issuer: str | None = None
    idp_alg: str | None = None
    idp_env: dict = field(default_factory=dict)   # to start the provider again

    @property
    def public_url(self) -> str:
        return configs.public_url(self.ports)

    def host(self, name: str) -> str:
        """``name`` is a site of the example ("grafana") or a full host name ("app.example-org.test")."""
        full = name if "." in name else f"{name}.{configs.TEST_DOMAIN}"
        return f"{full}:{self.ports.proxy}"

    def url(self, name: str, path: str = "/") -> str:
        return f"http://{self.host(name)}{path}"

    def proc(self, name: str) -> Proc:
        for p in self.procs:
            if p.name == name:
                return p
        raise KeyError(name)

    def reports(self) -> list[tuple[str, str]]:
        return [(p.name, p.report()) for p in self.procs]

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()

    # -- the provider: its control endpoints, an outage ------------------------
    @property
    def idp_port(self) -> int:
        return int(self.issuer.rsplit(":", 1)[1])

    def set_user(self, name: str, groups: list[str]) -> dict:
        """Create or change a user at the provider (refreshed claims carry it)."""
        r = _direct.put(f"{self.issuer}/_test/users/{name}", json={"groups": groups}, timeout=5)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()

    def new_user(self, groups: list[str], prefix: str = "user") -> str:
        """A user of its own for one test, so that what the test does to its
        sessions (logout, groups changed) touches no other test."""
        name = f"{prefix}-{secrets.token_hex(4)}"
        self.set_user(name, groups)
        return name

    def backchannel_log(self) -> list[dict]:
        """Every back-channel logout the provider sent since it (re)started."""
        r = _direct.get(f"{self.issuer}/_test/backchannel", timeout=5)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()

    def stop_idp(self) -> None:
        """Stop the provider (SIGTERM; its state is saved) and make sure its port refuses."""
        self.proc("idp").stop()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.idp_port), timeout=0.5).close()
            except OSError:
                return
            time.sleep(0.05)
        raise StartupError(f"the provider still accepts connections on {self.idp_port} after stopping")

    def start_idp(self, timeout: float = 30.0) -> None:
        """Start the provider again, on its port, from its saved state."""
        old = self.proc("idp")
        env = {**self.idp_env, "IDP_PORT": str(self.idp_port)}
        idp = Proc("idp", ["node", E2E_DIR / "idp" / "server.mjs"], self.workdir, env=env,
                   cwd=E2E_DIR / "idp", append=True)
        self.procs[self.procs.index(old)] = idp
        banner = idp.first_json_line(timeout=timeout)
        if banner["issuer"] != self.issuer:
            raise StartupError(f"the provider came back as {banner['issuer']}, not {self.issuer}")
        idp.wait_http(f"{self.issuer}/.well-known/openid-configuration", timeout=timeout)


def start_echo(log_dir: Path) -> tuple[Proc, int]:
    echo = Proc("echo", [PY, "-m", "harness.echo"], log_dir, cwd=E2E_DIR)
    port = echo.first_json_line()["port"]
    echo.wait_port(port)
    return echo, port


def _fail(stack: Stack, exc: Exception) -> StartupError:
    logs = "\n".join(p.report(limit=20_000) for p in stack.procs)
    return StartupError(f"[{stack.proxy}] {exc}\n\n{logs}")


def start_stub_stack(proxy: str, echo: Proc, echo_port: int, root: Path) -> Stack:
    """The proxy example in front of the stub auth server."""
    workdir = root / f"stub-{proxy}"
    workdir.mkdir(parents=True, exist_ok=True)
    ports = configs.Ports(proxy=free_port(), auth=0, echo=echo_port)
    stack = Stack(proxy, ports, workdir, procs=[echo])
    try:
        stub = Proc("stub-auth", [PY, "-m", "harness.stub_auth", configs.public_url(ports)], workdir, cwd=E2E_DIR)
        stack.procs.append(stub)
        ports.auth = stub.first_json_line()["port"]
        stub.wait_port(ports.auth)
        stack.procs.append(_start_proxy(proxy, ports, workdir))
    except Exception as exc:
        for p in stack.procs[1:]:
            p.stop()
        raise _fail(stack, exc) from exc
    return stack


def _start_proxy(proxy: str, ports: configs.Ports, workdir: Path,
                 aliases: dict[str, list[str]] | None = None,
                 files: Callable[[configs.Ports, Path], dict[str, str]] | None = None,
                 env: dict[str, str] | None = None) -> Proc:
    # proxies.start_proxy registers the Proc before waiting; find it on failure
    return proxies.start_proxy(proxy, ports, workdir / proxy, workdir, aliases, files, env)


def pocketgate_binary() -> Path:
    path = Path(os.environ.get("E2E_POCKETGATE_BIN") or REPO / "target" / "debug" / "pocketgate")
    if not path.exists():
        raise StartupError(f"pocketgate binary not found at {path} (cargo build in {REPO}, or set E2E_POCKETGATE_BIN)")
    return path


def start_stack(proxy: str, echo: Proc, echo_port: int, root: Path,
                additions: Additions | None = None) -> Stack:
    """Provider + pocketgate (from examples/pocketgate.toml) + the proxy example."""
    add = additions or Additions(name="")
    workdir = root / (f"{add.name}-{proxy}" if add.name else proxy)
    workdir.mkdir(parents=True, exist_ok=True)
    ports = configs.Ports(proxy=free_port(), auth=free_port(), echo=echo_port)
    alg = os.environ.get("E2E_IDP_ALG") or IDP_ALG[proxy]
    stack = Stack(proxy, ports, workdir, procs=[echo], idp_alg=alg)
    client_secret = secrets.token_urlsafe(24)
    try:
        origins = [f"http://{stack.host(h)}" for h in HOSTS]
        login_origins = [stack.public_url, *(f"http://{stack.host(h)}" for h in add.login_hosts)]
        idp_config = {
            "alg": alg,
            "client_id": CLIENT_ID,
            "client_secret": client_secret,
            "redirect_uris": [f"{o}/callback" for o in login_origins],
            "post_logout_redirect_uris": [f"{o}/" for o in origins],
            "post_logout_redirect_prefixes": [f"{o}/" for o in origins],
            # straight to pocketgate, as a provider next to it would post
            "backchannel_logout_uri": f"http://127.0.0.1:{ports.auth}/backchannel-logout",
        }
        state_dir = workdir / "idp-state"
        state_dir.mkdir(exist_ok=True)
        stack.idp_env = {"IDP_CONFIG": json.dumps(idp_config), "IDP_STATE_DIR": str(state_dir)}
        idp = Proc("idp", ["node", E2E_DIR / "idp" / "server.mjs"], workdir,
                   env=stack.idp_env, cwd=E2E_DIR / "idp")
        stack.procs.append(idp)
        stack.issuer = idp.first_json_line(timeout=30)["issuer"]
        idp.wait_http(f"{stack.issuer}/.well-known/openid-configuration", timeout=30)

        config_path = workdir / add.config_name
        config_path.write_text(add.config(configs.pocketgate_toml(ports, stack.issuer), stack))
        for rel, text in add.files.items():
            path = workdir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        add.prepare(workdir)
        env = {
            "POCKETGATE_SESSION__SECRET": secrets.token_urlsafe(48),
            "POCKETGATE_OIDC__CLIENT_SECRET": client_secret,
            "POCKETGATE_SESSION__REFRESH_INTERVAL": f"{REFRESH_INTERVAL:g}s",
            "RUST_LOG": os.environ.get("E2E_RUST_LOG", "info,pocketgate=debug"),
            "RUST_BACKTRACE": "1",
            **add.env,
        }
        # only the variables set here: any POCKETGATE_* of the caller's
        # environment would be read as configuration
        pg = Proc("pocketgate", [pocketgate_binary(), "serve", "-c", config_path], workdir, env=env, cwd=workdir,
                  drop_env_prefix="POCKETGATE_")
        stack.procs.append(pg)
        pg.wait_port(ports.auth, timeout=60)
        pg.wait_http(f"http://127.0.0.1:{ports.auth}/readyz", timeout=60)

        stack.procs.append(_start_proxy(proxy, ports, workdir, add.aliases, add.proxy_files,
                                        add.proxy_env))
    except Exception as exc:
        for p in stack.procs[1:]:
            p.stop()
        raise _fail(stack, exc) from exc
    return stack
