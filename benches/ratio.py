"""What pocketgate costs a protected site, as a ratio to the cheapest auth server.

Run by benches/ratio.sh (which picks the binaries and the Python of the
end-to-end suite's venv); see the top of that script for the knobs.

Caddy, nginx and Traefik, each started from its shipped example exactly as the
end-to-end suite starts it (tests/e2e/harness: only ports and host names
change), protect one tiny backend (nginx `return 200`). Each proxy runs once
per auth server it asks:

  no-op       nginx answering every request `200` with `X-Remote-User: alice`:
              the cheapest auth server there can be
  embedded    pocketgate serve, the session in the embedded store
  cookie      pocketgate serve, the stateless cookie store
  redis       pocketgate serve, the Redis store (skipped without redis-server)
  rules       the embedded store, with four [[hosts.rules]] on the host (the
              request matches the last) and the signed assertion on

and the direct row: `/forward-auth` asked without a proxy, the server pinned
to one core (taskset), wrk on the other: pocketgate serve against an nginx
with one worker answering `return 200` to the same request.

Each pocketgate is `pocketgate serve` with the configuration a `pocketgate
demo` of that store wrote (same secret, same store), so the session signed in
through the demo's provider is valid there; the demo itself only stands by.
Two binaries (BEFORE and AFTER) run side by side, their cases interleaved.

Every case runs ROUNDS times with the cases interleaved (the table shows
medians); nothing listens beyond 127.0.0.1; every process is a child in its own
process group, stopped on exit, on an error and on SIGINT/SIGTERM.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from harness import configs, proxies
from harness.net import raw_request
from harness.procs import Proc, StartupError, free_port
from pocketgates import HOST, PATH, SHORT, Pocketgate, env_int, forward_auth_headers, run

# The demo's hosts are *.demo.test: the examples' sites become grafana.demo.test
# and friends, so the request reaches the demo configuration's grafana host
# (policy admins, its own user header) through every proxy.
configs.TEST_DOMAIN = "demo.test"

STORES = ("embedded", "cookie", "redis")
VARIANTS = (*STORES, "rules")


ROUNDS = env_int("ROUNDS", 1 if SHORT else 3)
DURATION = env_int("DURATION", 1 if SHORT else 0)  # 0: chosen below to fit MAX_SECONDS
CONNECTIONS = env_int("CONNECTIONS", 64)
MAX_SECONDS = env_int("MAX_SECONDS", 600)
WORK = Path(tempfile.mkdtemp(prefix="pocketgate-ratio-"))


def log(msg: str) -> None:
    print(f"[ratio] {msg}", file=sys.stderr, flush=True)


def which(name: str, *fallbacks: str) -> str | None:
    found = shutil.which(name)
    return found or next((f for f in fallbacks if Path(f).exists()), None)


# --- the processes -------------------------------------------------------------

def start_nginx(name: str, servers: str, workers: str = "auto", pin: str | None = None) -> Proc:
    d = WORK / name
    d.mkdir()
    (d / "nginx.conf").write_text(f"""
worker_processes {workers};
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
{servers}
}}
""")
    argv = [NGINX, "-p", f"{d}/", "-e", f"{d}/error.log", "-c", d / "nginx.conf",
            "-g", f"daemon off; pid {d}/nginx.pid;"]
    return Proc(name, (["taskset", "-c", pin] if pin else []) + argv, WORK)


def noop_server(port: int) -> str:
    """The no-op auth server: every request 200, with the identity header."""
    return f"""    server {{
        listen 127.0.0.1:{port};
        location / {{ add_header X-Remote-User alice; return 200; }}
    }}
"""


# --- measuring -----------------------------------------------------------------

@dataclass
class Case:
    key: tuple[str, str, str]          # (setup, variant, label): label "" for the no-op
    port: int
    host: str
    target: str
    headers: list[tuple[str, str]]
    pin: str | None = None             # wrk's core for the pinned row
    cpu_pid: int | None = None         # the auth server whose CPU time is counted
    rps: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)  # its CPU time per request


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system time of ``pid``, its threads and its children
    (nginx's workers), from /proc: what the process spent, however busy the
    rest of the machine was."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total / CLOCK_TICKS


def to_ms(value: str) -> float:
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", value)
    if not m:
        raise ValueError(f"wrk latency {value!r}")
    n, unit = float(m[1]), m[2]
    return n * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(case: Case) -> None:
    argv = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency", "-H", f"Host: {case.host}"]
    for k, v in case.headers:
        argv += ["-H", f"{k}: {v}"]
    argv.append(f"http://127.0.0.1:{case.port}{case.target}")
    if case.pin:
        argv = ["taskset", "-c", case.pin, *argv]
    cpu_before = cpu_seconds(case.cpu_pid) if case.cpu_pid else 0.0
    out = subprocess.run(argv, capture_output=True, text=True, timeout=DURATION + 30).stdout
    cpu = cpu_seconds(case.cpu_pid) - cpu_before if case.cpu_pid else 0.0
    if "Non-2xx" in out or "Socket errors" in out or "Requests/sec" not in out:
        raise RuntimeError(f"{' / '.join(filter(None, case.key))}: not every answer was a 2xx\n{out}")
    case.rps.append(float(re.search(r"^Requests/sec:\s+([0-9.]+)", out, re.M)[1]))
    case.p99.append(to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M)[1]))
    requests = int(re.search(r"^\s*(\d+) requests in", out, re.M)[1])
    if case.cpu_pid and requests:
        case.cpu_us.append(cpu * 1e6 / requests)


def probe(case: Case) -> None:
    r = raw_request(case.port, case.host, case.target, headers=case.headers)
    if r.status != 200:
        raise StartupError(f"{' / '.join(filter(None, case.key))}: one request answered {r.status}, not 200")


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    binaries = [("", os.environ["POCKETGATE_BIN"])]
    if os.environ.get("POCKETGATE_BIN_BEFORE"):
        binaries = [("before", os.environ["POCKETGATE_BIN_BEFORE"]), ("after", os.environ["POCKETGATE_BIN"])]
    stores = list(STORES)
    redis_url = ""
    if which("redis-server") and not os.environ.get("SKIP_REDIS"):
        rport = free_port()
        redis = Proc("redis", ["redis-server", "--port", rport, "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no"], WORK)
        redis.wait_port(rport)
        redis_url = f"redis://127.0.0.1:{rport}/0"
    else:
        stores.remove("redis")
        log("redis-server not installed (or SKIP_REDIS): the redis rows are skipped")
    variants = [v for v in VARIANTS if v in stores or v == "rules"]
    pinned = (os.cpu_count() or 1) >= 2

    # The backend, the no-op auth server, and the direct row's pinned nginx.
    backend, noop, direct_noop = free_port(), free_port(), free_port()
    start_nginx("nginx-fixtures", noop_server(noop) + f"""    server {{
        listen 127.0.0.1:{backend};
        location / {{ return 200 "hello\\n"; }}
    }}
""").wait_port(backend)
    pinned_noop = None
    if pinned:
        pinned_noop = start_nginx("nginx-pinned", noop_server(direct_noop), workers="1", pin="0")
        pinned_noop.wait_port(direct_noop)

    pgs = [Pocketgate(label, binary, WORK) for label, binary in binaries]
    for pg in pgs:
        for store in stores:
            pg.start_demo(store, redis_url)
        for variant in variants:
            pg.serve(variant, "embedded" if variant == "rules" else variant)
        if pinned:
            pg.serve("pinned", "embedded", wrapper=("taskset", "-c", "0"))

    # Every proxy once per auth server, from its shipped example.
    cases: list[Case] = []
    cookie = pgs[0].cookies["embedded"]
    for kind in PROXIES:
        # The no-op's nginx also serves the backend: its CPU time is not
        # the auth server's alone, so only pocketgate's is counted here.
        targets = [("", "", noop, cookie, None)] + [
            (v, pg.label, pg.ports[v], pg.cookies[v], pg.procs[v].popen.pid) for v in variants for pg in pgs]
        for variant, label, auth, cookie_of, pid in targets:
            ports = configs.Ports(proxy=free_port(), auth=auth, echo=backend)
            name = f"{kind}-{variant or 'noop'}-{label or 'pg'}"
            proxies.start_proxy(kind, ports, WORK / name, WORK)
            cases.append(Case((kind, variant, label), ports.proxy, f"{HOST}:{ports.proxy}", PATH,
                              [("Cookie", cookie_of)], cpu_pid=pid))
    if pinned:
        direct = forward_auth_headers(cookie)
        cases.append(Case(("direct", "", ""), direct_noop, f"127.0.0.1:{direct_noop}", "/forward-auth",
                          direct, pin="1", cpu_pid=pinned_noop.popen.pid if pinned_noop else None))
        for pg in pgs:
            cases.append(Case(("direct", "embedded", pg.label), pg.ports["pinned"],
                              f"127.0.0.1:{pg.ports['pinned']}", "/forward-auth",
                              forward_auth_headers(pg.cookies["embedded"]), pin="1",
                              cpu_pid=pg.procs["pinned"].popen.pid))
    for case in cases:
        probe(case)

    global DURATION
    if not DURATION:
        DURATION = max(2, min(10, (MAX_SECONDS - 60) // (len(cases) * ROUNDS)))
    planned = len(cases) * ROUNDS * DURATION
    if planned > MAX_SECONDS:
        log(f"{len(cases)} cases x {ROUNDS} rounds x {DURATION} s = {planned} s, over MAX_SECONDS={MAX_SECONDS}: "
            "lower ROUNDS or DURATION")
        return 2
    log(f"{len(cases)} cases x {ROUNDS} rounds x {DURATION} s: about {planned // 60} min {planned % 60} s")
    load = open("/proc/loadavg").read().split()[:3]
    for _ in range(ROUNDS):
        for case in cases:
            run_wrk(case)

    print(f"\n{os.cpu_count()} cores, load average before the runs {' '.join(load)}; wrk -t1 -c{CONNECTIONS} "
          f"-d{DURATION}s, {ROUNDS} rounds interleaved, medians; through each proxy: GET {PATH} on {HOST} signed in")
    for label, binary in binaries:
        print(f"pocketgate{' ' + label if label else ''}: {binary}")
    if SHORT:
        print("SHORT: a check that every case runs; these figures are NOT measurements")
    table(cases, binaries, variants)
    return 0


def table(cases: list[Case], binaries: list[tuple[str, str]], variants: list[str]) -> None:
    by_key = {c.key: c for c in cases}
    labels = [label for label, _ in binaries]
    head = "| setup | pocketgate store | no-op req/s (p99 ms) |"
    for label in labels:
        name = f"pocketgate {label}".strip()
        head += f" {name} req/s (p99 ms) | ratio {label}".rstrip() + " | p99 ratio" + (f" {label}" if label else "") + " |"
        head += f" {name} CPU µs/req |"
    print("\n" + head)
    print("|" + " --- |" * head.count(" |"))
    setups = [(kind, kind_name(kind), variants) for kind in PROXIES]
    if ("direct", "", "") in by_key:
        setups.append(("direct", "direct, pinned to one core (nginx `return 200`)", ["embedded"]))
    for kind, name, rows in setups:
        base = by_key[(kind, "", "")]
        for variant in rows:
            noop_cpu = f", {med(base.cpu_us):.1f} µs" if base.cpu_us else ""
            line = f"| {name} | {variant} | {med(base.rps):.0f} ({med(base.p99):.2f}{noop_cpu}) |"
            for label in labels:
                c = by_key[(kind, variant, label)]
                line += (f" {med(c.rps):.0f} ({med(c.p99):.2f}) | {med(c.rps) / med(base.rps):.2f} |"
                         f" {med(c.p99) / med(base.p99):.2f} | {med(c.cpu_us):.1f} |")
            print(line)
    print("\nratio: pocketgate's req/s over the no-op's (target >= 0.95 embedded, >= 0.90 rules; direct >= 0.8); "
          "p99 ratio: pocketgate's p99 over the no-op's (target <= 1.2); CPU µs/req: the user and system time "
          "pocketgate's process spent per request answered (the direct row's no-op shows nginx's after its p99), "
          "which depends far less on the rest of the machine than req/s")


def kind_name(kind: str) -> str:
    return {"nginx": "nginx `auth_request`", "caddy": "Caddy `forward_auth`",
            "traefik": "Traefik `ForwardAuth`"}[kind]


PROXIES = proxies.selected("RATIO_PROXIES")
NGINX = os.environ.get("E2E_NGINX") or which("nginx", "/usr/sbin/nginx") or sys.exit("nginx is needed")


if __name__ == "__main__":
    run(main, WORK, "ratio")
