"""Fixtures for pocketgate's end-to-end tests.

- ``echo``: the echo backend, once per session.
- ``stub_stack`` (test_proxy_wiring.py): each proxy example in front of the
  stub auth server, once per proxy.
- ``stack`` (test_scenarios.py): each proxy example in front of the real
  pocketgate (started from examples/pocketgate.toml) and the test provider,
  once per proxy and module. A module's ``ADDITIONS`` (harness.stack.Additions)
  adds its own configuration, files and host names (test_rules.py).

On a failing test the logs of every component of that stack (proxy,
pocketgate or stub, provider, echo) are attached to the report; the test id
names the proxy (``test_x[nginx]``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import net, procs, proxies  # noqa: E402
from harness.stack import start_echo, start_stack, start_stub_stack  # noqa: E402

net.install_resolver()


def _selected_proxies() -> list[str]:
    try:
        return proxies.selected("E2E_PROXIES")
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None


@pytest.fixture(scope="session")
def run_dir(request) -> Path:
    """Configs and logs of this run; removed after a green run unless E2E_RUN_DIR is set."""
    yield from procs.run_directory(request, "E2E_RUN_DIR", "pocketgate-e2e-", "e2e run directory (configs, logs)")


@pytest.fixture(scope="session")
def echo(run_dir):
    proc, port = start_echo(run_dir)
    yield proc, port
    proc.stop()


@pytest.fixture(scope="module", params=_selected_proxies())
def stub_stack(request, echo, run_dir):
    proc, port = echo
    stack = start_stub_stack(request.param, proc, port, run_dir)
    yield stack
    for p in reversed(stack.procs[1:]):  # the echo belongs to the session
        p.stop()


@pytest.fixture(scope="module", params=_selected_proxies())
def stack(request, echo, run_dir):
    proc, port = echo
    stack = start_stack(request.param, proc, port, run_dir, getattr(request.module, "ADDITIONS", None))
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
    stk = funcargs.get("stack") or funcargs.get("stub_stack")
    if stk is None:
        return
    rep.sections.append(("components", f"proxy={stk.proxy} ports={stk.ports} workdir={stk.workdir}"
                                       f" issuer={stk.issuer} idp_alg={stk.idp_alg}"))
    for name, text in stk.reports():
        rep.sections.append((f"log of {name} [{stk.proxy}]", text[-60_000:]))
