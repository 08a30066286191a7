#!/usr/bin/env bash
# The container image, built and run on this machine: Containerfile on a
# locally made Debian base, the development provider in a second container on
# a private Docker network, a scripted sign-in through it, the user id, the
# read-only root, a restart that keeps the session, the image's size
# (tests/container/check.py does the checks).
#
#   tests/container/run.sh
#   CONTAINER_BIN=target/release/pocketgate tests/container/run.sh   # another binary
#   CONTAINER_REQUIRED=1 tests/container/run.sh                      # exit 3 instead of skipping
#
# No registry is needed: the base is a minimal Debian (libc6, libgcc-s1,
# ca-certificates) made with mmdebstrap from the Debian mirror and kept in
# ~/.cache/pocketgate-container/ (remove it to make a new one), `docker
# import`ed for the run; the binary is built on the host and copied in
# (BINARY_FROM=prebuilt). When no Docker daemon answers, Debian's docker.io is
# installed when missing and dockerd started by hand with its data under
# ~/.cache/pocketgate-container/dockerd, publishing on 127.0.0.1 only, and
# stopped at the end. When Docker cannot run at all, it prints
# "SKIPPED, not passed: <why>" and exits 0 (3 with CONTAINER_REQUIRED=1).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${CONTAINER_CACHE:-$HOME/.cache/pocketgate-container}"
DAEMON_DIR="$CACHE/dockerd"
SUITE="bookworm"
BASE_TAR="$CACHE/base-$SUITE.tar"

# A signal ends the script through its EXIT trap (which stops a dockerd it started).
trap 'exit 143' TERM INT
log() { printf '[container] %s\n' "$*" >&2; }
skip() {
    echo "[container] SKIPPED, not passed: $*"
    [ "${CONTAINER_REQUIRED:-0}" = 1 ] && exit 3
    exit 0
}
# shellcheck source=apt.sh
. "$HERE/apt.sh"

# --- Docker: a daemon that answers, or one started here ---------------------------
# Debian's docker client (20.10) speaks BuildKit to the daemon by itself; a
# newer client without the buildx plugin would fall back to the legacy
# builder, which builds every stage (the rust one included).
DOCKER=/usr/bin/docker
if [ ! -x "$DOCKER" ] || [ ! -x /usr/sbin/dockerd ]; then
    log "installing Debian's docker.io"
    apt_install docker.io || skip "Docker is not installed and apt-get could not install docker.io"
fi
export DOCKER_BUILDKIT=1
started_daemon=""
stop_daemon() {
    if [ -n "$started_daemon" ] && [ -f "$DAEMON_DIR/dockerd.pid" ]; then
        # Our own daemon: its build cache (the binary's layer) goes too.
        timeout 60 "$DOCKER" builder prune -f >/dev/null 2>&1 || true
        local pid
        pid="$(cat "$DAEMON_DIR/dockerd.pid")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        log "stopped the dockerd this script started (pid $pid)"
    fi
}
if ! timeout 10 "$DOCKER" info >/dev/null 2>&1; then
    mkdir -p "$DAEMON_DIR"
    export DOCKER_HOST="unix://$DAEMON_DIR/docker.sock"
    if ! timeout 10 "$DOCKER" info >/dev/null 2>&1; then
        log "no Docker daemon answers: starting dockerd (data in $DAEMON_DIR, ports on 127.0.0.1 only)"
        # --bridge=none: no default bridge (the test makes its own network);
        # --ip=127.0.0.1: a published port binds loopback unless told otherwise.
        as_root dockerd --data-root "$DAEMON_DIR/root" --exec-root "$DAEMON_DIR/exec" \
            --pidfile "$DAEMON_DIR/dockerd.pid" -H "$DOCKER_HOST" \
            --bridge=none --ip=127.0.0.1 >"$DAEMON_DIR/dockerd.log" 2>&1 &
        started_daemon=1
        trap stop_daemon EXIT
        for _ in $(seq 60); do
            timeout 5 "$DOCKER" info >/dev/null 2>&1 && break
            sleep 0.5
        done
        timeout 10 "$DOCKER" info >/dev/null 2>&1 \
            || skip "dockerd did not start within 30 s: $(tail -n 3 "$DAEMON_DIR/dockerd.log" | tr '\n' ' ')"
    fi
fi
log "Docker: daemon $("$DOCKER" version -f '{{.Server.Version}}') at ${DOCKER_HOST:-the default socket}"

# --- The base: a minimal Debian, made once ------------------------------------------
if [ ! -s "$BASE_TAR" ]; then
    command -v mmdebstrap >/dev/null 2>&1 || apt_install mmdebstrap \
        || skip "mmdebstrap is not installed and apt-get could not install it (it makes the base image)"
    mkdir -p "$CACHE"
    log "making the base with mmdebstrap (Debian $SUITE: libc6, libgcc-s1, ca-certificates) into $BASE_TAR"
    # The extract variant unpacks the packages without running their scripts
    # (there is no shell in the image to run them); the hook writes the CA
    # bundle update-ca-certificates would have written.
    timeout 600 mmdebstrap --quiet --format=tar --variant=extract --include=libc6,libgcc-s1,ca-certificates \
        --extract-hook='cat "$1"/usr/share/ca-certificates/mozilla/*.crt > "$1"/etc/ssl/certs/ca-certificates.crt' \
        "$SUITE" "$BASE_TAR.tmp" || skip "mmdebstrap could not make the base (no Debian mirror reachable?)"
    mv "$BASE_TAR.tmp" "$BASE_TAR"
fi

# --- The binary ------------------------------------------------------------------------
# CI builds no release binary, so the test takes the debug one (default
# features), stripped; CONTAINER_BIN names another.
BIN="${CONTAINER_BIN:-}"
if [ -z "$BIN" ]; then
    BIN="$REPO/target/debug/pocketgate"
    if [ "${E2E_SKIP_BUILD:-0}" != 1 ]; then
        (cd "$REPO" && cargo build --locked --bin pocketgate -q)
    fi
fi
[ -x "$BIN" ] || { echo "[container] ERROR: no binary at $BIN" >&2; exit 2; }
command -v node >/dev/null 2>&1 || { echo "[container] ERROR: node is needed for the development provider's container" >&2; exit 2; }
[ -d "$REPO/tests/e2e/idp/node_modules/oidc-provider" ] || {
    log "installing the development provider's npm packages (tests/e2e/run.sh does the same)"
    (cd "$REPO/tests/e2e/idp" && npm ci --no-audit --no-fund --silent)
}

export DOCKER REPO BASE_TAR BIN
timeout 600 python3 "$HERE/check.py"
