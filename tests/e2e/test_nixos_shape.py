"""services.pocketgate's options for the session's shape and for step-up,
evaluated by the real NixOS module system (as test_nixos.py does): each
camelCase option becomes pocketgate's key, on hosts, on rules and on the
session; unset options write nothing.

The shape keys (idle_timeout, lifetime) also pass the module's build-time
check (`pocketgate check --offline`). The step-up keys (max_age, amr) are
checked here by evaluation only: they are passed through to the generated
configuration.
"""

from __future__ import annotations

from test_nixos import evaluate, nix_lib  # noqa: F401  (fixtures)

from harness import nixos

# Over the seed example's own values (mkForce, as an operator overriding a module would).
SHAPED = """{ lib, ... }: {
  services.pocketgate.session.idleTimeout = lib.mkForce "1h";
  services.pocketgate.hosts."grafana.example.com" = {
    idleTimeout = lib.mkForce "15m";
    lifetime = "4h";
  };
}"""

STEP_UP = """{ ... }: {
  services.pocketgate.hosts."admin.example.com" = {
    policy = "users";
    maxAge = "1h";
    amr = [ "phr" "otp" ];
    rules = [
      { paths = [ "/admin" ]; maxAge = "10m"; amr = [ "phr" ]; }
      { paths = [ "/public" ]; action = "bypass"; }
    ];
  };
}"""


def _host(settings: dict, name: str) -> dict:
    return next(h for h in settings["hosts"] if h["host"] == name)


def test_the_session_shape_options_become_the_keys_and_pass_the_check(evaluate, tmp_path):
    ev = evaluate(SHAPED)
    s = ev.settings
    assert s["session"]["idle_timeout"] == "1h"
    grafana = _host(s, "grafana.example.com")
    assert grafana["idle_timeout"] == "15m" and grafana["lifetime"] == "4h"
    # Unset: no key at all (pocketgate's defaults apply).
    assert "idle_timeout" not in _host(s, "lan.example.com")
    assert "lifetime" not in _host(s, "lan.example.com")
    built = nixos.build_config(ev, tmp_path / "checked.json")
    assert built.returncode == 0, built.stderr


def test_the_seed_example_shapes_its_sessions(evaluate):
    s = evaluate().settings
    assert s["session"]["idle_timeout"] == "2h"
    assert _host(s, "grafana.example.com")["idle_timeout"] == "30m"


def test_a_host_idle_timeout_longer_than_the_sessions_is_named_by_the_check(evaluate, tmp_path):
    ev = evaluate(SHAPED.replace('lib.mkForce "15m"', 'lib.mkForce "3h"'))
    built = nixos.build_config(ev, tmp_path / "checked.json")
    assert built.returncode == 0, built.stderr
    assert "hosts[0].idle_timeout" in built.stdout + built.stderr, built.stdout + built.stderr


def test_the_step_up_options_become_max_age_and_amr_on_hosts_and_rules(evaluate):
    s = evaluate(STEP_UP).settings
    admin = _host(s, "admin.example.com")
    assert admin["max_age"] == "1h" and admin["amr"] == ["phr", "otp"]
    assert admin["rules"][0] == {"paths": ["/admin"], "max_age": "10m", "amr": ["phr"]}
    assert admin["rules"][1] == {"paths": ["/public"], "action": "bypass"}
    for other in s["hosts"]:
        if other["host"] != "admin.example.com":
            assert "max_age" not in other and "amr" not in other, other
