#!/usr/bin/env bash
# scim2-tester (PyPI, pinned in requirements.txt), an independent checker of
# RFC 7643/7644, against a pocketgate this script starts on loopback with
# [scim] on and the embedded store in a temporary directory. Exits non-zero
# when any check fails. About 20 s once the venv and the binary exist.
#
#   tests/scim/run.sh                            # builds the debug binary first
#   SCIM_POCKETGATE_BIN=target/debug/pocketgate tests/scim/run.sh
#
# The venv is cached in tests/scim/.cache/venv (git-ignored).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="$HERE/.cache"
VENV="$CACHE/venv"
mkdir -p "$CACHE"
log() { printf '[scim] %s\n' "$*" >&2; }

stamp="$CACHE/requirements.installed"
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$HERE/requirements.txt" "$stamp"; then
    log "creating Python venv in $VENV"
    rm -rf "$VENV"
    "${PYTHON:-python3}" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
    cp "$HERE/requirements.txt" "$stamp"
fi

BIN="${SCIM_POCKETGATE_BIN:-}"
if [ -z "$BIN" ]; then
    (cd "$REPO" && cargo build --locked --quiet --bin pocketgate)
    BIN="$REPO/target/debug/pocketgate"
fi

WORK="$(mktemp -d)"
PID=""
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
TOKEN="$("$BIN" gen-secret)"
printf '%s\n' "$TOKEN" > "$WORK/scim-token"
"$BIN" gen-secret > "$WORK/session-secret"
chmod 600 "$WORK/scim-token" "$WORK/session-secret"
# The provider is never asked: SCIM needs none, and nothing here signs in.
cat > "$WORK/pocketgate.toml" <<TOML
listen = "127.0.0.1:$PORT"
public_url = "http://127.0.0.1:$PORT"
log_level = "warn"
[oidc]
issuer = "http://127.0.0.1:9"
client_id = "pocketgate"
[session]
secret_file = "$WORK/session-secret"
store = "embedded"
state_dir = "$WORK/state"
[scim]
token_file = "$WORK/scim-token"
TOML

"$BIN" serve -c "$WORK/pocketgate.toml" > "$WORK/pocketgate.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
    if "$VENV/bin/python" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/healthz', timeout=1)" 2>/dev/null; then
        break
    fi
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/pocketgate.log" >&2; log "pocketgate did not start"; exit 2; }
    sleep 0.1
done

if ! SCIM_URL="http://127.0.0.1:$PORT/scim/v2" SCIM_TOKEN="$TOKEN" timeout 120 "$VENV/bin/python" "$HERE/check.py"; then
    log "pocketgate's log:"
    tail -n 40 "$WORK/pocketgate.log" >&2
    exit 1
fi
