#!/usr/bin/env bash
# pocketgate against Pocket ID itself: passkeys through Chromium, Caddy, nginx
# and Traefik from examples/, all on loopback.
#
#   POCKET_ID_BIN=/path/to/pocket-id tests/live/run.sh            # everything
#   POCKET_ID_BIN=... tests/live/run.sh -k nginx                   # any pytest arguments
#   POCKET_ID_BIN=... LIVE_PROXIES=caddy tests/live/run.sh         # one proxy
#   E2E_SKIP_BUILD=1 / E2E_POCKETGATE_BIN=...                      # an existing pocketgate
#   LIVE_RUN_DIR=/tmp/live                                         # keep configs and logs
#
# Pocket ID is not part of this repository: build it from its release as the
# README says ("Tested against"). Without POCKET_ID_BIN this script prints
# why it did not run and exits 0 (LIVE_REQUIRED=1: exit 3); it never reports
# a pass it did not run.
#
# Installs what is missing: Debian's chromium (apt), a venv in
# tests/live/.cache/venv with the end-to-end requirements plus Playwright,
# and what tests/e2e/run.sh installs for the proxies.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="$HERE/.cache"
VENV="$CACHE/venv"

log() { printf '[live] %s\n' "$*" >&2; }
die() { printf '[live] ERROR: %s\n' "$*" >&2; exit 2; }

if [ -z "${POCKET_ID_BIN:-}" ]; then
    echo "[live] SKIPPED, not passed: POCKET_ID_BIN is not set, so there is no Pocket ID to test against (see README, \"Tested against\")"
    [ "${LIVE_REQUIRED:-0}" = 1 ] && exit 3
    exit 0
fi
[ -x "$POCKET_ID_BIN" ] || die "POCKET_ID_BIN=$POCKET_ID_BIN is not an executable file"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
    else die "need root to run: $*"; fi
}

# --- Chromium (Debian's), driven by Playwright's client ----------------------------
CHROMIUM="${LIVE_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
    log "installing chromium (apt-get install chromium)"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y -q chromium >/dev/null \
        || { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q chromium >/dev/null; } \
        || die "could not install chromium"
fi
export LIVE_CHROMIUM="$CHROMIUM"

# --- the proxies, nginx, the e2e venv: the end-to-end suite's installer, run once with no tests
E2E_INSTALL_ONLY=1 "$REPO/tests/e2e/run.sh"

# --- Python: the e2e requirements plus Playwright ----------------------------------
mkdir -p "$CACHE"
stamp="$CACHE/requirements.installed"
want="$(cat "$REPO/tests/e2e/requirements.txt" "$HERE/requirements.txt")"
if [ ! -x "$VENV/bin/python" ] || [ "$want" != "$(cat "$stamp" 2>/dev/null)" ]; then
    log "creating Python venv in $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "$REPO/tests/e2e/requirements.txt" -r "$HERE/requirements.txt"
    printf '%s' "$want" > "$stamp"
fi
# --- pocketgate ------------------------------------------------------------------------
if [ -z "${E2E_POCKETGATE_BIN:-}" ]; then
    if [ "${E2E_SKIP_BUILD:-0}" != "1" ]; then
        log "cargo build (pocketgate)"
        (cd "$REPO" && cargo build --quiet --locked --bin pocketgate) || die "cargo build failed"
    fi
    export E2E_POCKETGATE_BIN="$REPO/target/debug/pocketgate"
fi
[ -x "$E2E_POCKETGATE_BIN" ] || die "pocketgate binary missing: $E2E_POCKETGATE_BIN"

log "Pocket ID: $POCKET_ID_BIN"
cd "$HERE"
set +e
timeout --kill-after=30 1500 "$VENV/bin/python" -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 124 ]; then log "pytest exceeded the 25-minute limit"; fi
exit "$rc"
