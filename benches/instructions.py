"""Instructions per signed-in /forward-auth request, counted by callgrind.

Run by benches/instructions.sh; see the top of that script. Instruction counts
do not depend on how busy the machine is, so a change of the hot path shows
here even where a load test's requests per second are noise.

For each case, `pocketgate serve` runs under `valgrind --tool=callgrind`
(with the configuration of a `pocketgate demo`, as benches/pocketgates.py
explains); one keep-alive connection sends WARMUP requests, the counters are
zeroed (`callgrind_control -z`), REQUESTS more requests are sent, the counters
are dumped (`callgrind_control -d`), and the total instruction count of the
process (every thread: the actix workers, tokio, the store) is divided by
REQUESTS.
"""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from pocketgates import HOST, SHORT, Pocketgate, env_int, forward_auth_headers, run

# The budgets: instructions per request, measured on the release build (see
# docs/src/performance.md), with about 10% of headroom. Above them with
# BUDGET=1, the script fails.
BUDGETS = {"embedded": 48_000, "rules": 68_000}


REQUESTS = env_int("REQUESTS", 50 if SHORT else 2000)
WARMUP = env_int("WARMUP", 20 if SHORT else 200)
WORK = Path(tempfile.mkdtemp(prefix="pocketgate-instructions-"))


def send(port: int, headers: list[tuple[str, str]], n: int) -> None:
    """``n`` requests over one keep-alive connection; each must be a 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        for _ in range(n):
            conn.putrequest("GET", "/forward-auth", skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", f"127.0.0.1:{port}")
            for k, v in headers:
                conn.putheader(k, v)
            conn.endheaders()
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError(f"a signed-in request answered {r.status}, not 200")
    finally:
        conn.close()


def callgrind_control(flag: str, pid: int) -> None:
    subprocess.run(["callgrind_control", flag, str(pid)], check=True, capture_output=True, timeout=120)


def total_instructions(out: Path) -> int:
    """The Ir total of the dump callgrind_control -d wrote (out.1, ...)."""
    dumps = sorted(out.parent.glob(out.name + ".*"), key=lambda p: p.stat().st_mtime)
    if not dumps:
        raise RuntimeError(f"no callgrind dump next to {out}")
    for line in dumps[-1].read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"{dumps[-1]}: no summary line")


def measure(pg: Pocketgate, variant: str) -> int:
    out = WORK / f"callgrind-{variant}.out"
    wrapper = ("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no")
    port = pg.serve(variant, "embedded", wrapper=wrapper, timeout=300)
    pid = pg.procs[variant].popen.pid
    headers = forward_auth_headers(pg.cookies[variant])
    send(port, headers, WARMUP)
    callgrind_control("-z", pid)
    send(port, headers, REQUESTS)
    callgrind_control("-d", pid)
    per_request = total_instructions(out) // REQUESTS
    keep = os.environ.get("KEEP_PROFILE")
    if keep:
        dumps = sorted(out.parent.glob(out.name + ".*"), key=lambda p: p.stat().st_mtime)
        shutil.copy(dumps[-1], Path(keep) / f"callgrind-{variant}.out")
    pg.procs[variant].stop()
    return per_request


def main() -> int:
    pg = Pocketgate("", os.environ["POCKETGATE_BIN"], WORK)
    pg.start_demo("embedded")
    failed = False
    print(f"{pg.binary}: {REQUESTS} signed-in GET /forward-auth ({HOST}) over one keep-alive connection "
          f"after {WARMUP} to warm up, under callgrind")
    if SHORT:
        print("SHORT: a check that the count runs; debug build and few requests, the figures are not the budget's")
    for variant, what in (("embedded", "embedded store"), ("rules", "embedded store, four rules, assertion on")):
        started = time.monotonic()
        n = measure(pg, variant)
        budget = BUDGETS[variant]
        print(f"{what}: instructions per request: {n} (budget {budget}) [{time.monotonic() - started:.0f} s]")
        failed |= n > budget
    if failed and os.environ.get("BUDGET"):
        print("over the budget: see docs/src/performance.md for how to find where the instructions go")
        return 1
    return 0


if __name__ == "__main__":
    run(main, WORK, "instructions")
