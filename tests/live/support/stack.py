"""pocketgate and one proxy, from the shipped examples, in front of the real Pocket ID.

The same loopback substitutions as the end-to-end suite (tests/e2e/harness):
``example.com`` becomes ``example.test``, ports and networks are loopback,
TLS is off. The provider is Pocket ID; each proxy's pocketgate has an OIDC
client of its own, created through the admin API with its callback and
post-logout URLs and PKCE, as an operator would create it in Pocket ID's
admin pages.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from harness import configs
from harness.procs import Proc, free_port
from harness.stack import HOSTS, Stack, _fail, _start_proxy, pocketgate_binary

from support.pocket_id import Client, PocketId

# refresh_interval in every stack: the shortest pocketgate allows
REFRESH_INTERVAL = 5.0


class LiveStack(Stack):
    pocket_id: PocketId
    client: Client
    script_client: Client
    base_config: str
    env: dict
    config_path: Path

    def restart_pocketgate(self) -> None:
        old = self.proc("pocketgate")
        old.stop()
        pg = Proc("pocketgate", [pocketgate_binary(), "serve", "-c", self.config_path], self.workdir,
                  env=self.env, cwd=self.workdir, drop_env_prefix="POCKETGATE_", append=True)
        self.procs[self.procs.index(old)] = pg
        pg.wait_http(f"http://127.0.0.1:{self.ports.auth}/readyz", timeout=60)

    def pocketgate_log(self) -> str:
        return self.proc("pocketgate").log_text()

    def pocketgate_cli(self, *args: str, config: Path | None = None) -> tuple[int, str]:
        """Run ``pocketgate ARGS -c <this stack's config, or config>`` with the stack's environment."""
        import subprocess
        env = {k: v for k, v in os.environ.items() if not k.startswith("POCKETGATE_")}
        env.update(self.env)
        p = subprocess.run([str(pocketgate_binary()), *args, "-c", str(config or self.config_path)], env=env,
                           cwd=self.workdir, capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout + p.stderr


def start_live_stack(proxy: str, echo: Proc, echo_port: int, root: Path, pocket_id: PocketId,
                     extra_config=lambda stack: "", edit_config=lambda text: text,
                     aliases: dict[str, list[str]] | None = None, setup=None) -> LiveStack:
    """``extra_config(stack)``: TOML appended to the substituted example (a module's own
    sections); ``edit_config(text)``: the substituted example changed (a key's value);
    ``aliases``: more host names for one of the proxy example's sites; ``setup(stack)``:
    instead of a client made here and handed over in the environment, pocketgate's
    client is the configuration's own, which ``setup`` brings about (it may rewrite
    ``stack.config_path``) before pocketgate starts, returning it."""
    workdir = root / proxy
    workdir.mkdir(parents=True, exist_ok=True)
    ports = configs.Ports(proxy=free_port(), auth=free_port(), echo=echo_port)
    stack = LiveStack(proxy, ports, workdir, procs=[echo])
    stack.pocket_id = pocket_id
    stack.issuer = pocket_id.url
    stack.idp_alg = "RS256"
    try:
        origins = [f"http://{stack.host(h)}" for h in HOSTS]
        if setup is None:
            stack.client = pocket_id.create_client(
                f"pocketgate-{proxy}-{root.name.replace('_', '-')}",
                callbacks=[f"{stack.public_url}/callback"],
                logout_callbacks=[f"{stack.public_url}/logout/done", *(f"{o}/" for o in origins)],
            )
        # a client of its own for a script (bearer tokens of another audience)
        stack.script_client = pocket_id.create_client(f"script-{proxy}-{root.name.replace('_', '-')}", callbacks=[
            f"{stack.public_url}/script-callback"], logout_callbacks=[])
        stack.config_path = workdir / "pocketgate.toml"
        stack.base_config = edit_config(configs.pocketgate_toml(ports, pocket_id.url))
        stack.config_path.write_text(stack.base_config + extra_config(stack))
        stack.env = {
            "POCKETGATE_SESSION__SECRET": secrets.token_urlsafe(48),
            "POCKETGATE_SESSION__REFRESH_INTERVAL": f"{REFRESH_INTERVAL:g}s",
            "RUST_LOG": os.environ.get("LIVE_RUST_LOG", "info,pocketgate=debug"),
            "NO_COLOR": "1",
        }
        if setup is None:
            stack.env["POCKETGATE_OIDC__CLIENT_ID"] = stack.client.id
            stack.env["POCKETGATE_OIDC__CLIENT_SECRET"] = stack.client.secret
        else:
            stack.client = setup(stack)
        pg = Proc("pocketgate", [pocketgate_binary(), "serve", "-c", stack.config_path], workdir,
                  env=stack.env, cwd=workdir, drop_env_prefix="POCKETGATE_")
        stack.procs.append(pg)
        pg.wait_port(ports.auth, timeout=60)
        pg.wait_http(f"http://127.0.0.1:{ports.auth}/readyz", timeout=60)
        stack.procs.append(_start_proxy(proxy, ports, workdir, aliases))
    except Exception as exc:
        for p in stack.procs[1:]:
            p.stop()
        raise _fail(stack, exc) from exc
    return stack



def own_client_config(stack: LiveStack, client_id: str, extra: str = "") -> Path:
    """Make the stack's configuration name its own client, ``client_id``, with
    its secret in ``client-secret`` beside it (not yet there: ``pocket-id
    setup`` writes it), plus ``extra`` TOML; the secret file's path."""
    secret_file = stack.workdir / "client-secret"
    text = stack.config_path.read_text()
    text = re.sub(r'(?m)^client_id = ".*"$', f'client_id = "{client_id}"', text, count=1)
    text = re.sub(r'(?m)^client_secret_file = ".*"$', f'client_secret_file = "{secret_file}"', text, count=1)
    text += extra
    stack.config_path.write_text(text)
    stack.base_config = text
    return secret_file
