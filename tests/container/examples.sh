#!/usr/bin/env bash
# The operations examples check clean:
#   examples/compose/     `docker-compose config` (Debian's docker-compose), its
#                         Caddyfile parses (`caddy adapt`) and keeps the shipped
#                         examples/caddy snippet unchanged, its pocketgate.toml
#                         passes `pocketgate check --offline`;
#   examples/prometheus/  `promtool check config`, `check rules`, `test rules`;
#   examples/grafana/     the dashboard is JSON whose every panel has a query, and
#                         every query is PromQL that promtool accepts.
# That the dashboard and the rules name only exported metrics and labels is
# tests/api/monitoring.rs (cargo test).
#
# Installs docker-compose and prometheus (for promtool) with apt when missing.
# A check whose tool cannot be had prints "SKIPPED, not passed: <why>".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
cd "$REPO"

log() { printf '[examples] %s\n' "$*" >&2; }
skipped() { echo "[examples] SKIPPED, not passed: $*"; }
# shellcheck source=apt.sh
. "$HERE/apt.sh"
# Debian's prometheus package brings promtool (about 100 MB installed with
# the server, which the postinst would start: policy-rc.d keeps it stopped).
command -v docker-compose >/dev/null 2>&1 || apt_install docker-compose || true
if ! command -v promtool >/dev/null 2>&1; then
    no_start=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null \
            && as_root chmod +x /usr/sbin/policy-rc.d && no_start=1
    fi
    apt_install prometheus || true
    [ -z "$no_start" ] || as_root rm -f /usr/sbin/policy-rc.d
fi

# --- compose ---------------------------------------------------------------------------
if command -v docker-compose >/dev/null 2>&1; then
    docker-compose -f examples/compose/compose.yaml config -q
    log "ok: docker-compose config accepts examples/compose/compose.yaml"
else
    skipped "docker-compose config (docker-compose is not installed and apt-get could not install it)"
fi
python3 - <<'EOF'
import re, sys
def snippet(path):
    m = re.search(r"^\(pocketgate\) \{\n.*?^\}\n", open(path).read(), re.S | re.M)
    if not m:
        sys.exit(f"[examples] FAILED: no (pocketgate) snippet in {path}")
    return m.group(0)
if snippet("examples/caddy/Caddyfile") != snippet("examples/compose/Caddyfile"):
    sys.exit("[examples] FAILED: examples/compose/Caddyfile's (pocketgate) snippet differs from "
             "examples/caddy/Caddyfile's: copy it over unchanged")
print("[examples] ok: examples/compose/Caddyfile keeps the shipped (pocketgate) snippet", file=sys.stderr)
EOF
CADDY="${CADDY:-$(command -v caddy || echo "$REPO/tests/e2e/.cache/venv/bin/caddy")}"
if [ -x "$CADDY" ]; then
    "$CADDY" adapt --config examples/compose/Caddyfile --adapter caddyfile >/dev/null
    log "ok: caddy adapt accepts examples/compose/Caddyfile"
else
    skipped "caddy adapt (no caddy; tests/e2e/run.sh installs one into its venv)"
fi
BIN="${E2E_POCKETGATE_BIN:-$REPO/target/debug/pocketgate}"
[ -x "$BIN" ] || (cargo build --locked --bin pocketgate -q)
POCKETGATE_LISTEN=127.0.0.1:4180 "$BIN" check --offline -c examples/compose/pocketgate.toml >/dev/null
log "ok: pocketgate check --offline accepts examples/compose/pocketgate.toml"

# --- Prometheus and Grafana --------------------------------------------------------------
if ! command -v promtool >/dev/null 2>&1; then
    skipped "promtool checks of examples/prometheus and examples/grafana (prometheus is not installed and apt-get could not install it)"
    exit 0
fi
(cd examples/prometheus && promtool check config prometheus.yml >/dev/null \
    && promtool check rules pocketgate-rules.yml >/dev/null \
    && promtool test rules pocketgate-rules.test.yml >/dev/null)
log "ok: promtool check config, check rules and test rules on examples/prometheus"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Every query of the dashboard as a recording rule, Grafana's variables
# replaced by values, so promtool parses each one.
python3 - "$work/dashboard-queries.yml" <<'EOF'
import json, sys
dash = json.load(open("examples/grafana/pocketgate.json"))
exprs = []
def walk(panels):
    for p in panels:
        if p.get("type") == "row":
            walk(p.get("panels", []))
            continue
        targets = p.get("targets") or []
        if not targets or not all(t.get("expr") for t in targets) or "datasource" not in p or "gridPos" not in p:
            sys.exit(f"[examples] FAILED: dashboard panel {p.get('title')!r} lacks a query, a datasource or a place")
        exprs.extend((p["title"], t["expr"]) for t in targets)
walk(dash["panels"])
with open(sys.argv[1], "w") as out:
    out.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (title, e) in enumerate(exprs):
        e = e.replace("$__rate_interval", "5m").replace("$instance", ".*").replace("$host", ".*")
        out.write(f"      - record: dashboard:query_{i}\n        expr: {json.dumps(e)}\n")
print(f"[examples] {len(exprs)} dashboard queries", file=sys.stderr)
EOF
promtool check rules "$work/dashboard-queries.yml" >/dev/null
log "ok: every query of examples/grafana/pocketgate.json is PromQL promtool accepts"
