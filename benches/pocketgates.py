"""pocketgate instances for the benches that measure it from outside
(ratio.py, instructions.py): a `pocketgate demo` per session store stands by
as the identity provider and writes its configuration; the measured server is
`pocketgate serve` with that configuration (the same secret and store), so the
session signed in through the demo is valid there, and what runs is the
production server, not the demo.

Processes are harness.procs.Proc children (own process group, stopped at exit).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.net import raw_request
from harness.procs import Proc, StartupError, free_port, stop_all

def env_int(name: str, default: int) -> int:
    """A whole-number knob from the environment."""
    value = os.environ.get(name) or str(default)
    if not value.isdigit():
        sys.exit(f"{name}={value!r}: a whole number, please")
    return int(value)


# SHORT=1: the smoke check (few, short cases; the figures are not measurements).
SHORT = bool(os.environ.get("SHORT"))

# The demo's host with its own header name (policy admins): the request of
# every case, GET /dashboard on it, signed in as alice (admins, users).
HOST = "grafana.demo.test"
PATH = "/dashboard"

# Appended to the demo's configuration for the "rules" case. The demo's last
# [[hosts]] is grafana.demo.test, so these are its rules; the request (GET
# /dashboard) walks all four and matches the last. `check_rules` proves it.
RULES = """
[[hosts.rules]]
paths = ["/api/admin"]
policy = "admins"
[[hosts.rules]]
resources = ["^/api/v[0-9]+/users/[0-9]+/delete$"]
action = "deny"
[[hosts.rules]]
paths = ["/public"]
methods = ["GET", "HEAD"]
action = "bypass"
[[hosts.rules]]
paths = ["/dashboard"]
methods = ["GET", "HEAD"]
policy = "users"

[assertion]
header = "X-Pocketgate-Assertion"
"""

@dataclass
class Pocketgate:
    """One binary's instances, under ``work``: a demo per store (the provider
    and the configuration), a `serve` per variant, the signed-in cookies."""
    label: str
    binary: str
    work: Path
    ports: dict[str, int] = field(default_factory=dict)     # variant -> serve port
    cookies: dict[str, str] = field(default_factory=dict)   # variant -> Cookie header
    configs: dict[str, Path] = field(default_factory=dict)  # variant -> its configuration
    procs: dict[str, Proc] = field(default_factory=dict)    # variant -> its serve

    @property
    def name(self) -> str:
        return self.label or "pg"

    def start_demo(self, store: str, redis_url: str = "") -> None:
        """A demo of ``store``: its configuration, alice signed in."""
        tmp = self.work / f"demo-{self.name}-{store}"
        tmp.mkdir()
        port, idp = free_port(), free_port()
        proc = Proc(tmp.name, [self.binary, "demo", "--port", port, "--idp-port", idp, "--store", store,
                               "--redis-url", redis_url], self.work,
                    env={"TMPDIR": str(tmp), "RUST_LOG": "warn"}, drop_env_prefix="POCKETGATE_")
        proc.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        found = sorted(tmp.glob("pocketgate-demo-*/*.toml"))
        if len(found) != 1:
            raise StartupError(f"the {store} demo's configuration: found {found} under {tmp}")
        self.configs[store] = found[0]
        self.cookies[store] = sign_in(f"http://127.0.0.1:{port}")

    def serve(self, variant: str, store: str, wrapper: tuple[str, ...] = (), timeout: float = 60) -> int:
        """`pocketgate serve` with ``store``'s demo configuration (for
        "rules": the embedded one with RULES appended), under ``wrapper``
        (taskset, valgrind) when given; its port."""
        config = self.configs[store]
        if variant == "rules":
            config = self.work / f"rules-{self.name}.toml"
            config.write_text(self.configs[store].read_text() + RULES)
            config.chmod(0o600)
        port = free_port()
        proc = Proc(f"serve-{self.name}-{variant}", [*wrapper, self.binary, "serve", "-c", config], self.work,
                    env={"POCKETGATE_LISTEN": f"127.0.0.1:{port}", "RUST_LOG": "warn"},
                    drop_env_prefix="POCKETGATE_")  # this script's POCKETGATE_BIN is no key
        proc.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=timeout)
        self.ports[variant], self.cookies[variant], self.procs[variant] = port, self.cookies[store], proc
        if variant == "rules":
            check_rules(port, self.cookies[variant])
        return port


def sign_in(base: str) -> str:
    """Sign alice in through the demo's real flow; the Cookie header value."""
    import requests
    s = requests.Session()
    r = s.get(f"{base}/login", params={"rd": f"{base}/demo"}, allow_redirects=False, timeout=10)
    authorize = r.headers["location"]
    r = requests.get(authorize.replace("/authorize?", "/authorize/approve?", 1) + "&user=alice",
                     allow_redirects=False, timeout=10)
    s.get(r.headers["location"], allow_redirects=False, timeout=10)
    cookie = "; ".join(f"{c.name}={c.value}" for c in s.cookies
                       if c.name.startswith("pocketgate") and "_flow_" not in c.name)
    if not cookie:
        raise StartupError(f"signing in at {base} gave no session cookie")
    return cookie


def forward_auth_headers(cookie: str, method: str = "GET", path: str = PATH) -> list[tuple[str, str]]:
    """What Caddy and Traefik send /forward-auth about the site request."""
    return [("X-Forwarded-Method", method), ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Host", HOST), ("X-Forwarded-Uri", path), ("Cookie", cookie)]


def check_rules(port: int, cookie: str) -> None:
    """The rules case is what it says: a rule decides, the assertion is signed."""
    deny = raw_request(port, f"127.0.0.1:{port}", "/forward-auth",
                       headers=forward_auth_headers(cookie, "GET", "/api/v2/users/7/delete"), timeout=60)
    allow = raw_request(port, f"127.0.0.1:{port}", "/forward-auth", headers=forward_auth_headers(cookie),
                        timeout=60)
    signed = any(k.lower() == "x-pocketgate-assertion" for k, _ in allow.headers)
    if deny.status != 403 or allow.status != 200 or not signed:
        raise StartupError(f"rules case: the deny rule answered {deny.status} (not 403), the request "
                           f"{allow.status} (not 200), assertion signed: {signed}")


def run(main, work: Path, name: str) -> None:
    """Run a bench's ``main`` and exit with its code: every process it
    started stopped (also on SIGINT/SIGTERM and on an error), ``work``
    removed unless KEEP is set."""
    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        code = main()
    except (StartupError, RuntimeError, subprocess.SubprocessError, KeyError) as exc:
        print(f"[{name}] failed: {exc}", file=sys.stderr)
        code = 1
    finally:
        stop_all()
        if not os.environ.get("KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(code)
