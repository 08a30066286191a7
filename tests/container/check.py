#!/usr/bin/env python3
"""The container image's test, run by tests/container/run.sh (which provides
a Docker daemon, the base tarball and the binary through the environment).

It builds the image from Containerfile on the locally made base, runs the
development provider (tests/e2e/idp, node copied in) in a second container on
a private network, signs in through pocketgate as a browser would, and checks:
the process's user id (from /proc on the host: the image has no shell to ask),
the read-only root (the kernel's mount table, and a start that has to write
outside the volume fails), the HEALTHCHECK, a restart that keeps the session,
and the state in the volume. It prints the image's size. Everything it
creates (containers, network, volume, images) is removed at the end; only the
base tarball stays cached. Standard library only.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

DOCKER = os.environ["DOCKER"]
REPO = Path(os.environ["REPO"])
BASE_TAR = Path(os.environ["BASE_TAR"])
BIN = Path(os.environ["BIN"])

RUN = f"pgtest-{os.getpid()}"
BASE_IMAGE = f"pocketgate-test/base:{RUN}"
IMAGE = f"pocketgate-test/pocketgate:{RUN}"
IDP_IMAGE = f"pocketgate-test/idp:{RUN}"
NETWORK = RUN
VOLUME = f"{RUN}-state"
GATE = f"{RUN}-pocketgate"
IDP = f"{RUN}-idp"
UID = 65532
APP = "app.example.test"

# The provider's host name on the private network; the script resolves it to
# 127.0.0.1 (where the provider's port is published), as a hosts file would.
IDP_HOST = "idp"

IDP_CONTAINERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY node /usr/local/bin/node
COPY lib/ /usr/local/lib/
COPY idp/ /idp/
ENV LD_LIBRARY_PATH=/usr/local/lib
WORKDIR /idp
USER 65533:65533
ENTRYPOINT ["/usr/local/bin/node", "/idp/server.mjs"]
"""


def log(msg: str) -> None:
    print(f"[container] {msg}", flush=True)


class Failed(Exception):
    pass


def docker(*args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
    p = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise Failed(f"docker {' '.join(args[:3])} ... failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    return p


def inspect(name: str, fmt: str) -> str:
    return docker("inspect", "-f", fmt, name).stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check(cond: bool, what: str) -> None:
    if not cond:
        raise Failed(what)
    log(f"ok: {what}")


# --- building ---------------------------------------------------------------------

def build_images(ctx: Path) -> str:
    """The base, the pocketgate image and the provider's image. Returns how the
    binary was prepared, for the report."""
    t = time.monotonic()
    docker("import", str(BASE_TAR), BASE_IMAGE, timeout=300)
    log(f"base {BASE_IMAGE} imported from {BASE_TAR} ({time.monotonic() - t:.1f} s)")

    gate_ctx = ctx / "pocketgate"
    gate_ctx.mkdir()
    shutil.copy(REPO / "Containerfile", gate_ctx / "Containerfile")
    stripped = subprocess.run(["objcopy", "--strip-all", str(BIN), str(gate_ctx / "pocketgate")],
                              capture_output=True, text=True).returncode == 0
    if not stripped:
        shutil.copy(BIN, gate_ctx / "pocketgate")
    size = (gate_ctx / "pocketgate").stat().st_size
    how = f"{BIN} ({'stripped' if stripped else 'not stripped: objcopy failed'}, {size / 1e6:.1f} MB)"
    t = time.monotonic()
    docker("build", "-q", "-f", str(gate_ctx / "Containerfile"),
           "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--build-arg", "BINARY_FROM=prebuilt",
           "-t", IMAGE, str(gate_ctx), timeout=300)
    log(f"built {IMAGE} from Containerfile (BINARY_FROM=prebuilt, binary {how}) "
        f"in {time.monotonic() - t:.1f} s")

    idp_ctx = ctx / "idp"
    idp_ctx.mkdir()
    (idp_ctx / "Containerfile").write_text(IDP_CONTAINERFILE)
    node = Path(shutil.which("node") or "node").resolve()
    shutil.copy(node, idp_ctx / "node")
    (idp_ctx / "lib").mkdir()
    # node's shared libraries beyond what the base has (libstdc++ on Debian).
    for line in subprocess.run(["ldd", str(node)], capture_output=True, text=True).stdout.splitlines():
        m = re.search(r"=> (/\S+)", line)
        if m and not re.match(r"lib(c|m|dl|pthread|gcc_s|rt)\.so", Path(m[1]).name):
            shutil.copy(m[1], idp_ctx / "lib" / Path(m[1]).name)
    src = REPO / "tests" / "e2e" / "idp"
    (idp_ctx / "idp").mkdir()
    for f in ("server.mjs", "state.mjs", "package.json"):
        shutil.copy(src / f, idp_ctx / "idp" / f)
    shutil.copytree((src / "node_modules").resolve(), idp_ctx / "idp" / "node_modules", symlinks=False)
    docker("build", "-q", "-f", str(idp_ctx / "Containerfile"), "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
           "-t", IDP_IMAGE, str(idp_ctx), timeout=300)
    log(f"built {IDP_IMAGE}: the development provider (tests/e2e/idp) with node from the host")
    return how


# --- a browser, from the standard library -------------------------------------------

class Browser:
    """Follows redirects itself, keeps cookies per host (ports ignored, as
    browsers do) and sends requests for `idp` to 127.0.0.1."""

    def __init__(self) -> None:
        self.cookies: dict[str, dict[str, str]] = {}

    def request(self, method: str, url: str, body: str | None = None,
                headers: dict | None = None) -> tuple[int, dict, str]:
        u = urllib.parse.urlsplit(url)
        connect = "127.0.0.1" if u.hostname == IDP_HOST else u.hostname
        conn = http.client.HTTPConnection(connect, u.port or 80, timeout=15)
        h = {"Host": u.netloc, "Accept": "text/html", **(headers or {})}
        jar = self.cookies.get(u.hostname or "", {})
        if jar:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        if body is not None:
            h["Content-Type"] = "application/x-www-form-urlencoded"
        path = u.path + (f"?{u.query}" if u.query else "")
        conn.request(method, path or "/", body=body, headers=h)
        r = conn.getresponse()
        text = r.read().decode("utf-8", "replace")
        for value in r.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies.setdefault(u.hostname or "", {})[name.strip()] = rest.split(";", 1)[0]
        conn.close()
        return r.status, {k.lower(): v for k, v in r.headers.items()}, text

    def follow(self, method: str, url: str, body: str | None = None,
               stop_at: str = f"https://{APP}") -> tuple[str, int, str]:
        """Request `url`, then follow redirects (at most 10) until one leaves
        for `stop_at` (the protected site, not running here) or a page is
        shown. Returns (last URL, status, body or the Location)."""
        for _ in range(10):
            status, headers, text = self.request(method, url, body)
            location = headers.get("location")
            if status not in (301, 302, 303, 307, 308) or not location:
                return url, status, text
            nxt = urllib.parse.urljoin(url, location)
            if nxt.startswith(stop_at):
                return url, status, nxt
            url, method, body = nxt, "GET", None
        raise Failed(f"more than 10 redirects, last at {url}")


def sign_in(browser: Browser, gate_url: str, user: str) -> str:
    """The authorization-code flow through pocketgate, signing in at the
    provider's form as `user`. Returns where pocketgate sends the browser."""
    rd = urllib.parse.quote(f"https://{APP}/after-login", safe="")
    url, status, page = browser.follow("GET", f"{gate_url}/login?rd={rd}")
    m = re.search(r'<form method="post" action="([^"]+)"', page)
    if status != 200 or not m or not url.startswith(f"http://{IDP_HOST}:"):
        raise Failed(f"expected the provider's sign-in form, got {status} at {url}:\n{page[:400]}")
    form = urllib.parse.urljoin(url, m[1])
    _, status, landed = browser.follow("POST", form, urllib.parse.urlencode({"username": user}))
    return landed


def forward_auth(gate_url: str, cookie: str | None) -> tuple[int, dict]:
    """What Caddy or Traefik would ask for a request to the protected site."""
    u = urllib.parse.urlsplit(gate_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
    headers = {"X-Forwarded-Method": "GET", "X-Forwarded-Proto": "https",
               "X-Forwarded-Host": APP, "X-Forwarded-Uri": "/"}
    if cookie:
        headers["Cookie"] = cookie
    conn.request("GET", "/forward-auth", headers=headers)
    r = conn.getresponse()
    r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.headers.items()}


# --- running ------------------------------------------------------------------------

def wait_healthy(started_after: str = "") -> str:
    """Until Docker's HEALTHCHECK says healthy, in a run started after
    `started_after` (bounded: 60 s). Returns when this run started."""
    deadline = time.monotonic() + 60
    status = ""
    while time.monotonic() < deadline:
        status = inspect(GATE, "{{.State.Status}} {{.State.StartedAt}} {{.State.Health.Status}}")
        state, started, health = status.split(" ")
        if state != "running":
            break
        if health == "healthy" and started != started_after:
            return started
        time.sleep(0.5)
    logs = docker("logs", "--tail", "30", GATE, check=False)
    raise Failed(f"pocketgate's container is not healthy ({status}):\n{logs.stdout}{logs.stderr}\n"
                 + inspect(GATE, "{{json .State.Health}}"))


def proc_status(pid: str) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.split()
    return out


def root_mount_options(pid: str) -> list[str]:
    """The mount options of the process's `/`, from its mount table."""
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/":
            return fields[5].split(",")
    raise Failed(f"no / in /proc/{pid}/mountinfo")


def run_checks(work: Path) -> None:
    docker("network", "create", NETWORK)
    subnet = inspect(NETWORK, "{{range .IPAM.Config}}{{.Subnet}}{{end}}")
    idp_port, gate_port = free_port(), free_port()
    gate_url = f"http://127.0.0.1:{gate_port}"
    issuer = f"http://{IDP_HOST}:{idp_port}"
    client_secret = base64.urlsafe_b64encode(os.urandom(24)).decode()

    idp_config = {"client_id": "pocketgate", "client_secret": client_secret,
                  "redirect_uris": [f"{gate_url}/callback"],
                  "post_logout_redirect_uris": [f"https://{APP}/"]}
    docker("run", "-d", "--name", IDP, "--network", NETWORK, "--network-alias", IDP_HOST,
           "-p", f"127.0.0.1:{idp_port}:{idp_port}",
           "-e", "IDP_BIND=0.0.0.0", "-e", f"IDP_PORT={idp_port}", "-e", f"IDP_ISSUER={issuer}",
           "-e", f"IDP_CONFIG={json.dumps(idp_config)}", IDP_IMAGE)

    # Secrets as files, readable by pocketgate's user alone.
    secrets = work / "secrets"
    secrets.mkdir(mode=0o755)
    for name, value in (("session-secret", base64.b64encode(os.urandom(32)).decode()),
                        ("client-secret", client_secret)):
        (secrets / name).write_text(value + "\n")
        os.chmod(secrets / name, 0o400)
        os.chown(secrets / name, UID, UID)
    config = work / "pocketgate.toml"
    config.write_text(f"""\
# listen: the image's POCKETGATE_LISTEN; public_url: the environment.
# The proxy (here the test, through Docker's port forwarding) is on the network.
trusted_proxies = ["{subnet}"]

[oidc]
issuer = "{issuer}"
client_id = "pocketgate"
client_secret_file = "/run/secrets/client-secret"

[session]
secret_file = "/run/secrets/session-secret"
store = "embedded"

[policies.users]
allowed_groups = ["users"]

[[hosts]]
host = "{APP}"
policy = "users"
""")
    os.chmod(config, 0o644)
    docker("volume", "create", VOLUME)
    common = ["--read-only", "-v", f"{config}:/etc/pocketgate/pocketgate.toml:ro",
              "-v", f"{secrets}:/run/secrets:ro", "-e", f"POCKETGATE_PUBLIC_URL={gate_url}"]
    docker("run", "-d", "--name", GATE, "--network", NETWORK, "-p", f"127.0.0.1:{gate_port}:4180",
           "-v", f"{VOLUME}:/var/lib/pocketgate", "--health-interval", "1s", *common, IMAGE)

    started = wait_healthy()
    check(True, "HEALTHCHECK (`pocketgate healthcheck`) reports healthy: "
          + json.loads(inspect(GATE, "{{json .State.Health.Log}}"))[-1]["Output"].strip())
    check(json.loads(inspect(IMAGE, "{{json .Config.Healthcheck.Test}}"))
          == ["CMD", "/usr/local/bin/pocketgate", "healthcheck"],
          "the image's HEALTHCHECK runs the binary itself (exec form, no shell)")

    # Signed in through the container.
    browser = Browser()
    landed = sign_in(browser, gate_url, "alice")
    check(landed == f"https://{APP}/after-login", f"signing in as alice lands on the page asked for ({landed})")
    jar = browser.cookies.get("127.0.0.1", {})
    cookie = "; ".join(f"{k}={v}" for k, v in jar.items() if k.startswith("pocketgate"))
    check(bool(cookie), "pocketgate set its session cookie")
    status, headers = forward_auth(gate_url, cookie)
    check(status == 200 and headers.get("x-remote-user") == "alice",
          f"forward-auth with the cookie: {status}, X-Remote-User {headers.get('x-remote-user')}")
    status, _ = forward_auth(gate_url, None)
    check(status != 200, f"forward-auth without it: {status}")

    # Who runs it, and on what root.
    pid = inspect(GATE, "{{.State.Pid}}")
    st = proc_status(pid)
    check(st["Uid"] == [str(UID)] * 4 and st["Gid"] == [str(UID)] * 4,
          f"the process runs as uid/gid {UID} (/proc/{pid}/status: Uid {' '.join(st['Uid'])}, "
          f"Gid {' '.join(st['Gid'])}; image USER {inspect(IMAGE, '{{.Config.User}}')})")
    opts = root_mount_options(pid)
    check("ro" in opts, f"its root file system is mounted read-only ({','.join(opts[:3])}...)")
    attempt = docker("run", "--rm", "--network", "none", *common,
                     "-e", "POCKETGATE_SESSION__STATE_DIR=/var/lib/not-a-volume", IMAGE, check=False)
    out = (attempt.stdout + attempt.stderr).strip()
    check(attempt.returncode != 0 and "Read-only file system" in out,
          f"a start that must write outside the volume fails: {out.splitlines()[-1] if out else attempt.returncode}")
    mountpoint = Path(inspect(VOLUME, "{{.Mountpoint}}"))
    files = sorted(p.name for p in mountpoint.iterdir())
    owners = {p.stat().st_uid for p in [mountpoint, *mountpoint.iterdir()]}
    check(bool(files) and owners == {UID}, f"the state is in the volume, owned by {UID}: {', '.join(files)}")

    # A restart keeps the session (the store is in the volume, the secret a file).
    docker("restart", "-t", "10", GATE)
    wait_healthy(started)
    check(inspect(GATE, "{{.State.Pid}}") != pid, "restarted: a new process")
    status, headers = forward_auth(gate_url, cookie)
    check(status == 200 and headers.get("x-remote-user") == "alice",
          f"after `docker restart` the same cookie still passes: {status}, "
          f"X-Remote-User {headers.get('x-remote-user')}")


def cleanup() -> None:
    for args in (("rm", "-f", "-v", GATE, IDP), ("network", "rm", NETWORK), ("volume", "rm", VOLUME),
                 ("image", "rm", IMAGE, IDP_IMAGE, BASE_IMAGE)):
        docker(*args, check=False, timeout=120)


def main() -> int:
    t0 = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="pocketgate-container-") as tmp:
            work = Path(tmp)
            os.chmod(work, 0o755)
            how = build_images(work)
            run_checks(work)
            size = int(inspect(IMAGE, "{{.Size}}"))
            base = int(inspect(BASE_IMAGE, "{{.Size}}"))
            log(f"image size: {size / 1e6:.1f} MB ({base / 1e6:.1f} MB base + the binary {how})")
    except (Failed, subprocess.TimeoutExpired, OSError, KeyError, ValueError) as e:
        print(f"[container] FAILED: {e}", file=sys.stderr)
        logs = docker("logs", "--tail", "40", GATE, check=False)
        if logs.returncode == 0:
            print(f"[container] pocketgate's log:\n{logs.stdout}{logs.stderr}", file=sys.stderr)
        cleanup()
        return 1
    cleanup()
    log(f"passed in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
