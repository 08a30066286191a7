"""Fixtures of the live suite: Pocket ID itself, Chromium with a virtual passkey, the proxies.

- ``pocket_id``: the server from ``POCKET_ID_BIN``, once per run, with the
  groups and users every test shares: alice (admins, users) who signs in with
  a passkey registered on Pocket ID's own account page, bob (users) who signs
  in with one-time access codes, carol (no group).
- ``browser``: Debian's Chromium through Playwright.
- ``stack``: per proxy (caddy, nginx, traefik; ``LIVE_PROXIES`` picks), the
  shipped examples in front of pocketgate in front of Pocket ID.

Without ``POCKET_ID_BIN`` run.sh does not start pytest at all: it prints why
and exits non-zero in strict mode (``LIVE_REQUIRED=1``), zero otherwise, and
never reports a pass.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

LIVE = Path(__file__).resolve().parent
sys.path.insert(0, str(LIVE.parent / "e2e"))   # the end-to-end harness: configs, proxies, processes
sys.path.insert(0, str(LIVE))

from harness import net, procs, proxies  # noqa: E402
from harness.procs import free_port  # noqa: E402
from harness.stack import start_echo  # noqa: E402

from support.browser import Browser, Person  # noqa: E402
from support.pocket_id import PocketId, binary_from_env  # noqa: E402
from support.stack import start_live_stack  # noqa: E402

net.install_resolver()


def _selected_proxies() -> list[str]:
    try:
        return proxies.selected("LIVE_PROXIES")
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None


@pytest.fixture(scope="session")
def run_dir(request) -> Path:
    """Configs and logs of this run; removed after a green run unless LIVE_RUN_DIR is set."""
    yield from procs.run_directory(request, "LIVE_RUN_DIR", "pocketgate-live-", "live run directory (configs, logs, Pocket ID's data)")


@pytest.fixture(scope="session")
def pocket_id(run_dir) -> PocketId:
    binary = binary_from_env()
    if binary is None:   # run.sh never gets here without it; a bare pytest run fails, never passes
        pytest.fail("POCKET_ID_BIN is not set: the live suite needs a Pocket ID binary")
    pid = PocketId(binary, run_dir / "pocket-id", free_port())
    pid.start()
    yield pid
    pid.stop()


@pytest.fixture(scope="session")
def playwright_instance():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance) -> Browser:
    b = Browser(playwright_instance)
    yield b
    b.close()


@pytest.fixture(scope="session")
def people(pocket_id, browser) -> dict[str, Person]:
    """alice with a passkey (registered through Chromium on Pocket ID's account page), bob, carol."""
    folks = {
        "alice": Person("alice", pocket_id.create_user("alice", ["admins", "users"])),
        "bob": Person("bob", pocket_id.create_user("bob", ["users"])),
        "carol": Person("carol", pocket_id.create_user("carol", [])),
    }
    tab = browser.context(folks["alice"])
    try:
        tab.register_passkey(pocket_id, pocket_id.login_code(folks["alice"].user))
    finally:
        tab.close()
    stored = pocket_id.api("GET", f"/users/{folks['alice'].user.id}/webauthn-credentials")
    assert len(stored) == 1, f"Pocket ID stored {stored!r}"
    return folks


@pytest.fixture(scope="session")
def echo(run_dir):
    proc, port = start_echo(run_dir)
    yield proc, port
    proc.stop()


@pytest.fixture(scope="module", params=_selected_proxies())
def stack(request, echo, run_dir, pocket_id):
    proc, port = echo
    m = request.module
    stack = start_live_stack(request.param, proc, port, run_dir / m.__name__.rsplit(".", 1)[-1], pocket_id,
                             extra_config=getattr(m, "EXTRA_CONFIG", lambda stack: ""),
                             edit_config=getattr(m, "EDIT_CONFIG", lambda text: text),
                             aliases=getattr(m, "ALIASES", None), setup=getattr(m, "SETUP", None))
    yield stack
    for p in reversed(stack.procs[1:]):
        p.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    funcargs = getattr(item, "funcargs", {}) or {}
    stk = funcargs.get("stack")
    pid = funcargs.get("pocket_id")
    if stk is not None:
        rep.sections.append(("components", f"proxy={stk.proxy} ports={stk.ports} workdir={stk.workdir}"))
        for name, text in stk.reports():
            rep.sections.append((f"log of {name} [{stk.proxy}]", text[-40_000:]))
    if pid is not None and pid.proc is not None:
        rep.sections.append(("log of pocket-id", pid.proc.log_text()[-8_000:]))
