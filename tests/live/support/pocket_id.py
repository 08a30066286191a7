"""Pocket ID itself, run from the binary in ``POCKET_ID_BIN``, and its admin API.

The server runs on loopback with a data directory of its own (SQLite
database, keys, uploads) and a static API key, so the suite sets everything
up through the same admin API an operator's script would use: users, groups,
OIDC clients, one-time access codes. Its address is ``http://localhost:PORT``:
a passkey's relying-party id must be a domain name, never an IP address, and
Chromium treats ``localhost`` as a secure context without TLS.

Nothing of Pocket ID is part of this repository: the binary is built by
hand from its release (see the README, "Tested against").
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from harness.procs import Proc, StartupError

# the admin API and the token endpoint asked directly, never through a proxy of the environment
_direct = requests.Session()
_direct.trust_env = False


class ApiError(AssertionError):
    """Pocket ID's admin API answered something other than what the set-up needs."""


@dataclass
class User:
    id: str
    username: str
    email: str
    groups: list[str] = field(default_factory=list)


@dataclass
class Client:
    id: str
    secret: str
    name: str


class PocketId:
    """One Pocket ID server: start, stop, start again on the same data."""

    def __init__(self, binary: Path, workdir: Path, port: int) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = port
        self.url = f"http://localhost:{port}"
        self.api_key = secrets.token_urlsafe(32)
        data = workdir / "pocket-id-data"
        shutil.rmtree(data, ignore_errors=True)   # a new key below: an old database would not open
        data.mkdir(parents=True)
        self.env = {
            "APP_URL": self.url,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "STATIC_API_KEY": self.api_key,
            "ANALYTICS_DISABLED": "true",
            "VERSION_CHECK_DISABLED": "true",
            "DISABLE_RATE_LIMITING": "true",
            "TRUST_PROXY": "false",
            "DB_CONNECTION_STRING": f"file:{data / 'pocket-id.db'}",
            "UPLOAD_PATH": str(data / "uploads"),
            "KEYS_PATH": str(data / "keys"),
            "LOG_LEVEL": "warn",
        }
        self.proc: Proc | None = None
        self.groups: dict[str, str] = {}   # name -> id

    # -- the process -------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        self.proc = Proc("pocket-id", [self.binary], self.workdir, env=self.env, cwd=self.workdir,
                         append=self.proc is not None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.popen.poll() is not None:
                raise StartupError(f"Pocket ID exited with {self.proc.popen.returncode}:\n{self.proc.report()}")
            try:
                r = _direct.get(f"{self.url}/.well-known/openid-configuration", timeout=2)
                if r.status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise StartupError(f"Pocket ID did not answer on {self.url} within {timeout:g} s:\n{self.proc.report()}")

    def stop(self) -> None:
        """Stop the server and make sure its port refuses connections."""
        if self.proc is None:
            return
        self.proc.stop()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            except OSError:
                return
            time.sleep(0.05)
        raise StartupError(f"Pocket ID still accepts connections on {self.port} after stopping")

    def version(self) -> str:
        r = _direct.get(f"{self.url}/api/version/current", timeout=5)
        if r.status_code == 200:
            return r.json().get("currentVersion") or r.text
        return "unknown"

    # -- the admin API -------------------------------------------------------------
    def api(self, method: str, path: str, expect: tuple[int, ...] = (200, 201, 204), **kw) -> dict | list | None:
        r = _direct.request(method, f"{self.url}/api{path}", headers={"X-API-Key": self.api_key},
                            timeout=10, **kw)
        if r.status_code not in expect:
            raise ApiError(f"{method} /api{path}: {r.status_code} {r.text[:500]}")
        return r.json() if r.content else None

    def api_key_file(self, directory: Path) -> Path:
        """The static API key in a file of its own (mode 0600), as ``pocket-id setup`` reads it."""
        path = directory / "pocket-id-api-key"
        path.write_text(self.api_key + "\n")
        path.chmod(0o600)
        return path

    def scim_provider(self, client_id: str) -> dict | None:
        """The SCIM service provider of a client, or None."""
        r = _direct.get(f"{self.url}/api/oidc/clients/{client_id}/scim-service-provider",
                        headers={"X-API-Key": self.api_key}, timeout=10)
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise ApiError(f"SCIM service provider of {client_id}: {r.status_code} {r.text[:300]}")
        return r.json()

    def sync_scim(self, provider_id: str) -> None:
        """Push users and groups to a SCIM service provider now (returns when the sync is done)."""
        r = _direct.post(f"{self.url}/api/scim/service-provider/{provider_id}/sync",
                         headers={"X-API-Key": self.api_key}, timeout=60)
        if r.status_code != 200:
            raise ApiError(f"SCIM sync of {provider_id}: {r.status_code} {r.text[:500]}")

    def discovery(self) -> dict:
        r = _direct.get(f"{self.url}/.well-known/openid-configuration", timeout=5)
        r.raise_for_status()
        return r.json()

    def group(self, name: str) -> str:
        """The id of group ``name``, created on first use."""
        if name not in self.groups:
            g = self.api("POST", "/user-groups", json={"name": name, "friendlyName": name.title()})
            self.groups[name] = g["id"]
        return self.groups[name]

    def set_friendly_name(self, name: str, friendly: str) -> str:
        """Give group ``name`` another friendly name; the one it had."""
        gid = self.group(name)
        before = self.api("GET", f"/user-groups/{gid}")["friendlyName"]
        self.api("PUT", f"/user-groups/{gid}", json={"name": name, "friendlyName": friendly})
        return before

    def create_user(self, username: str, groups: list[str]) -> User:
        email = f"{username}@example.test"
        u = self.api("POST", "/users", json={
            "username": username, "email": email, "emailVerified": True,
            "firstName": username.title(), "lastName": "Tester", "displayName": f"{username.title()} Tester",
            "isAdmin": False, "disabled": False,
        })
        user = User(u["id"], username, email)
        self.set_groups(user, groups)
        return user

    def set_groups(self, user: User, groups: list[str]) -> None:
        self.api("PUT", f"/users/{user.id}/user-groups", json={"userGroupIds": [self.group(g) for g in groups]})
        user.groups = list(groups)

    def remove_from_group(self, user: User, group: str) -> None:
        """Take ``user`` out of ``group`` on the group's own members page (PUT
        /user-groups/ID/users). Unlike the user's groups page, this marks the
        group changed, so the next SCIM sync pushes it (Pocket ID 2.9.0)."""
        gid = self.group(group)
        members = [u["id"] for u in self.api("GET", f"/user-groups/{gid}")["users"] if u["id"] != user.id]
        self.api("PUT", f"/user-groups/{gid}/users", json={"userIds": members})
        user.groups = [g for g in user.groups if g != group]

    def set_disabled(self, user: User, disabled: bool) -> None:
        current = self.api("GET", f"/users/{user.id}")
        body = {k: current.get(k) for k in ("username", "email", "emailVerified", "firstName", "lastName",
                                             "displayName", "isAdmin", "locale")}
        body["disabled"] = disabled
        self.api("PUT", f"/users/{user.id}", json=body)

    def login_code(self, user: User) -> str:
        """A one-time access code the user signs in with (``/lc/CODE``)."""
        r = self.api("POST", f"/users/{user.id}/one-time-access-token", json={"ttl": "15m"})
        return r["token"]

    def create_client(self, name: str, callbacks: list[str], logout_callbacks: list[str],
                      public: bool = False, pkce: bool = True) -> Client:
        """A client whose id is its name (Pocket ID takes a chosen id), with a fresh secret."""
        c = self.api("POST", "/oidc/clients", json={
            "id": name, "name": name, "callbackURLs": callbacks, "logoutCallbackURLs": logout_callbacks,
            "isPublic": public, "pkceEnabled": pkce, "requiresReauthentication": False,
            "credentials": {}, "isGroupRestricted": False,
        })
        secret = "" if public else self.api("POST", f"/oidc/clients/{c['id']}/secret")["secret"]
        return Client(c["id"], secret, name)

    def exchange_code(self, client: Client, code: str, redirect_uri: str, verifier: str) -> dict:
        r = _direct.post(f"{self.url}/api/oidc/token", timeout=10, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": verifier, "client_id": client.id, "client_secret": client.secret})
        if r.status_code != 200:
            raise ApiError(f"code exchange for {client.name}: {r.status_code} {r.text[:300]}")
        return r.json()

    def refresh(self, client: Client, refresh_token: str) -> requests.Response:
        return _direct.post(f"{self.url}/api/oidc/token", timeout=10, data={
            "grant_type": "refresh_token", "refresh_token": refresh_token,
            "client_id": client.id, "client_secret": client.secret})

    def introspect(self, client: Client, token: str) -> dict:
        """Pocket ID's introspection answer as it came: {"status": ..., "body": ...}."""
        r = _direct.post(f"{self.url}/api/oidc/introspect", data={"token": token},
                         auth=(client.id, client.secret), timeout=10)
        try:
            body = r.json()
        except ValueError:
            body = r.text[:300]
        return {"status": r.status_code, "body": body}

    def client_credentials_token(self, client: Client, resource: str | None = None) -> dict:
        data = {"grant_type": "client_credentials", "client_id": client.id, "client_secret": client.secret}
        if resource:
            data["resource"] = resource
        r = _direct.post(f"{self.url}/api/oidc/token", data=data, timeout=10)
        if r.status_code != 200:
            raise ApiError(f"client_credentials for {client.name}: {r.status_code} {r.text[:300]}")
        return r.json()


def binary_from_env() -> Path | None:
    value = os.environ.get("POCKET_ID_BIN")
    return Path(value) if value else None
