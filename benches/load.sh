#!/usr/bin/env bash
# HTTP load on /forward-auth with wrk, against `pocketgate demo` (release build)
# on loopback: a signed-in request (real session from the demo's login flow)
# and a bypass. Bounded: each run lasts DURATION seconds, then everything stops.
#
#   benches/load.sh                 # 10 s per case, 1 wrk thread, 64 connections
#   DURATION=5 CONNECTIONS=32 benches/load.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-64}"
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 2; }
cargo build --release --quiet --bin pocketgate
BIN=target/release/pocketgate

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P=$(port); Q=$(port)
RUST_LOG=warn "$BIN" demo --port "$P" --idp-port "$Q" >/dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -f "$JAR"' EXIT
JAR=$(mktemp)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$P/healthz" >/dev/null && break; sleep 0.1; done

# Sign in as alice through the real flow (login -> provider approval -> callback).
B="http://127.0.0.1:$P"
L=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$JAR" -b "$JAR" "$B/login?rd=$B/demo")
A="${L/\/authorize\?//authorize/approve?}&user=alice"
C=$(curl -s -o /dev/null -w '%{redirect_url}' "$A")
curl -s -o /dev/null -c "$JAR" -b "$JAR" "$C"
COOKIE=$(awk '$6 ~ /^pocketgate/ && $6 !~ /_flow_/ {printf "%s=%s; ", $6, $7}' "$JAR")
[ -n "$COOKIE" ] || { echo "login failed" >&2; exit 1; }

run() {
    local name=$1; shift
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' "$@" "$B/forward-auth")
    echo "== $name (single request answered $code)"
    wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$B/forward-auth" | grep -E 'Requests/sec|Latency|50%|99%|Non-2xx'
}
run "signed in, allowed (cookie open + decide + headers)" \
    -H "X-Forwarded-Host: admin.demo.test" -H "X-Forwarded-Uri: /dashboard" -H "X-Forwarded-Proto: https" \
    -H "X-Forwarded-Method: GET" -H "Cookie: $COOKIE"
run "bypass path" \
    -H "X-Forwarded-Host: app.demo.test" -H "X-Forwarded-Uri: /public/status" -H "X-Forwarded-Proto: https" \
    -H "X-Forwarded-Method: GET"
