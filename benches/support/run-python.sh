#!/usr/bin/env bash
# Run a Python bench (benches/ratio.py, benches/instructions.py) with the
# end-to-end suite's venv (Caddy, Traefik, requests) and its harness on the
# path, against POCKETGATE_BIN: when unset, the release build of this checkout,
# or the debug build with SHORT=1 (the binary the tests use). The venv is
# installed by `tests/e2e/run.sh --collect-only` when missing (it runs no test).
#
#   benches/support/run-python.sh benches/ratio.py
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
VENV=tests/e2e/.cache/venv
if [ ! -x "$VENV/bin/caddy" ] || [ ! -x "$VENV/bin/traefik" ]; then
    E2E_SKIP_BUILD=1 tests/e2e/run.sh --collect-only -q >/dev/null
fi
if [ -z "${POCKETGATE_BIN:-}" ] && [ -n "${SHORT:-}" ]; then
    cargo build --locked --quiet --bin pocketgate
    POCKETGATE_BIN=target/debug/pocketgate
elif [ -z "${POCKETGATE_BIN:-}" ]; then
    cargo build --locked --release --quiet --bin pocketgate
    POCKETGATE_BIN=target/release/pocketgate
fi
for bin in "$POCKETGATE_BIN" ${POCKETGATE_BIN_BEFORE:+"$POCKETGATE_BIN_BEFORE"}; do
    [ -x "$bin" ] || { echo "$bin is not an executable" >&2; exit 2; }
done
POCKETGATE_BIN=$(realpath "$POCKETGATE_BIN")
[ -z "${POCKETGATE_BIN_BEFORE:-}" ] || POCKETGATE_BIN_BEFORE=$(realpath "$POCKETGATE_BIN_BEFORE")
export POCKETGATE_BIN POCKETGATE_BIN_BEFORE
PYTHONPATH=tests/e2e exec "$VENV/bin/python" "$1"
