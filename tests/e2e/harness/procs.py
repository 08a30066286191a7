"""Child processes with captured logs, bounded waits and certain cleanup.

Every process runs in its own process group (``start_new_session``) with
stdout+stderr going to a log file; ``stop()`` sends SIGTERM to the group, waits
a bounded time, then SIGKILL. ``REGISTRY`` remembers every process started in
this pytest run so a failing test can attach all their logs, and so an
``atexit`` hook can stop stragglers if a finaliser never ran.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import requests

REGISTRY: list["Proc"] = []


class StartupError(RuntimeError):
    """A component did not come up; the message carries the tail of its log."""


class Proc:
    """One started component: name, Popen, log file."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict | None = None,
                 cwd: str | Path | None = None, drop_env_prefix: str | None = None, append: bool = False):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_dir) / f"{name}.log"
        self.extra_logs: list[Path] = []  # more files worth attaching (nginx error/access logs)
        # append: a restarted component keeps one log, the earlier run's lines first
        self._log = open(self.log_path, "ab" if append else "wb", buffering=0)
        self._log_start = self._log.tell()
        full_env = {k: v for k, v in os.environ.items()
                    if not (drop_env_prefix and k.startswith(drop_env_prefix))}
        full_env.update(env or {})
        self.popen = subprocess.Popen(
            self.argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=full_env, cwd=str(cwd) if cwd else None, start_new_session=True,
        )
        REGISTRY.append(self)

    # -- observation -------------------------------------------------------
    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self, limit: int = 200_000) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError as exc:
            return f"<no log: {exc}>"
        if len(data) > limit:
            data = b"...<truncated>...\n" + data[-limit:]
        return data.decode("utf-8", "replace")

    def report(self, limit: int = 100_000) -> str:
        """Everything this component logged, for a failure report."""
        parts = [f"===== {self.name} ({' '.join(self.argv[:3])}...) exit={self.popen.poll()} =====",
                 self.log_text(limit)]
        for extra in self.extra_logs:
            try:
                data = Path(extra).read_bytes()[-limit:].decode("utf-8", "replace")
            except OSError:
                continue
            parts.append(f"----- {self.name}: {extra} -----\n{data}")
        return "\n".join(parts)

    def first_json_line(self, timeout: float = 20.0) -> dict:
        """The first line of this run's output that parses as a JSON object (ready banner)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(self.log_path, "rb") as f:
                    f.seek(self._log_start)
                    text = f.read().decode("utf-8", "replace")
            except OSError:
                text = ""
            for line in text.splitlines():
                line = line.strip()
                if line.startswith("{"):
                    try:
                        return json.loads(line)
                    except ValueError:
                        pass
            if not self.alive():
                break
            time.sleep(0.05)
        raise StartupError(self._why("did not print its ready line"))

    def wait_port(self, port: int, host: str = "127.0.0.1", timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise StartupError(self._why(f"exited (code {self.popen.returncode}) before listening on {port}"))
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise StartupError(self._why(f"not listening on {host}:{port} after {timeout}s"))

    def wait_http(self, url: str, timeout: float = 30.0, ok=(200,)) -> requests.Response:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.alive():
                raise StartupError(self._why(f"exited (code {self.popen.returncode}) while waiting for {url}"))
            try:
                r = requests.get(url, timeout=2, allow_redirects=False)
                if r.status_code in ok:
                    return r
                last = f"{r.status_code} {r.text[:200]!r}"
            except requests.RequestException as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise StartupError(self._why(f"{url} not ready after {timeout}s (last: {last})"))

    def _why(self, what: str) -> str:
        tail = "\n".join(self.log_text().splitlines()[-40:])
        return f"{self.name} {what}\n--- {self.name} log tail ---\n{tail}"

    # -- shutdown ----------------------------------------------------------
    def stop(self, grace: float = 5.0) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    self.popen.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    pass
        else:
            # the leader is gone; children in its group may not be
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self._log.close()
        except OSError:
            pass


def stop_all() -> None:
    for proc in reversed(REGISTRY):
        proc.stop(grace=2.0)


atexit.register(stop_all)


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_directory(request, env_var: str, prefix: str, what: str):
    """A session fixture's body: the directory of this run's configs and logs,
    ``env_var``'s (kept) or a temporary one, removed after a green run."""
    base = os.environ.get(env_var)
    if base:
        path = Path(base)
        path.mkdir(parents=True, exist_ok=True)
    else:
        path = Path(tempfile.mkdtemp(prefix=prefix))
    print(f"\n{what}: {path}")
    yield path
    stop_all()
    if not base and request.session.testsfailed == 0:
        shutil.rmtree(path, ignore_errors=True)
