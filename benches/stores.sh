#!/usr/bin/env bash
# Signed-in /forward-auth throughput with each session store side by side
# (cookie, embedded, redis), against `pocketgate demo --store ...` (release
# build) on loopback, and the resident memory of an idle pocketgate whose
# embedded store holds 100,000 live sessions.
#
# Bounded: each store runs ROUNDS rounds of DURATION seconds (interleaved, the
# table shows medians); every server is a child of this script and is stopped
# by its trap. Redis: a redis-server on a free loopback port, without
# persistence; the redis row is skipped (and says so) when redis-server is
# not installed. Needs wrk (apt-get install wrk) and python3.
#
# SHORT=1 (or --smoke) is the check CI runs: one round of 1 s per store,
# 1,000 sessions and no settling wait, against the debug build (`cargo build
# --bin pocketgate`, the binary the tests use) unless POCKETGATE_BIN names
# one. It proves every store still signs in and answers under load and prints
# the table; its figures are NOT measurements.
#
#   benches/stores.sh
#   DURATION=5 ROUNDS=3 CONNECTIONS=64 benches/stores.sh
#   POCKETGATE_BIN=/tmp/pocketgate-old benches/stores.sh   # another build
#   SHORT=1 benches/stores.sh       # the smoke check
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "${1:-}" != --smoke ] || SHORT=1
SHORT="${SHORT:-}"
if [ -n "$SHORT" ]; then
    DURATION="${DURATION:-1}" ROUNDS="${ROUNDS:-1}" SESSIONS="${SESSIONS:-1000}" SETTLE=0
else
    DURATION="${DURATION:-8}" ROUNDS="${ROUNDS:-3}" SESSIONS="${SESSIONS:-100000}" SETTLE=6
fi
CONNECTIONS="${CONNECTIONS:-64}"
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 2; }
BIN="${POCKETGATE_BIN:-}"
if [ -z "$BIN" ] && [ -n "$SHORT" ]; then
    cargo build --locked --quiet --bin pocketgate
    BIN=target/debug/pocketgate
elif [ -z "$BIN" ]; then
    cargo build --locked --release --quiet --bin pocketgate
    BIN=target/release/pocketgate
fi
[ -x "$BIN" ] || { echo "POCKETGATE_BIN=$BIN is not an executable" >&2; exit 2; }

PIDS=()
WORK=$(mktemp -d)
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 1 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; return 1; }

STORES=(cookie embedded)
REDIS_URL=""
if [ -z "${SKIP_REDIS:-}" ] && command -v redis-server >/dev/null; then
    R=$(port)
    redis-server --port "$R" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >"$WORK/redis.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 50); do redis-cli -p "$R" ping >/dev/null 2>&1 && break; sleep 0.1; done
    REDIS_URL="redis://127.0.0.1:$R/0"
    STORES+=(redis)
else
    echo "redis-server not installed: the redis row is skipped (apt-get install redis-server)"
fi

# start_demo STORE: a demo with that store; sets its base URL and a signed-in cookie.
declare -A BASE COOKIE DEMO_PID
start_demo() {
    local store=$1 p q jar l a c
    p=$(port); q=$(port); jar="$WORK/jar-$store"
    RUST_LOG=warn TMPDIR="$WORK" "$BIN" demo --port "$p" --idp-port "$q" --store "$store" --redis-url "$REDIS_URL" >/dev/null 2>"$WORK/demo-$store.log" &
    DEMO_PID[$store]=$!
    PIDS+=($!)
    wait_up "http://127.0.0.1:$p/healthz" || { echo "demo ($store) did not start:" >&2; cat "$WORK/demo-$store.log" >&2; exit 1; }
    BASE[$store]="http://127.0.0.1:$p"
    l=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" "${BASE[$store]}/login?rd=${BASE[$store]}/demo")
    a="${l/\/authorize\?//authorize/approve?}&user=alice"
    c=$(curl -s -o /dev/null -w '%{redirect_url}' "$a")
    curl -s -o /dev/null -c "$jar" -b "$jar" "$c"
    COOKIE[$store]=$(awk '$6 ~ /^pocketgate/ && $6 !~ /_flow_/ {printf "%s=%s; ", $6, $7}' "$jar")
    [ -n "${COOKIE[$store]}" ] || { echo "login failed ($store)" >&2; exit 1; }
}
for s in "${STORES[@]}"; do start_demo "$s"; done

to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 } else { sub(/s$/, "", v); print v * 1000 } }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { printf "%s", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A RPS P50 P99
for round in $(seq 1 "$ROUNDS"); do
    for s in "${STORES[@]}"; do
        code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Forwarded-Host: admin.demo.test" -H "X-Forwarded-Uri: /dashboard" \
            -H "X-Forwarded-Proto: https" -H "Cookie: ${COOKIE[$s]}" "${BASE[$s]}/forward-auth")
        [ "$code" = 200 ] || { echo "$s: the signed-in request answered $code" >&2; exit 1; }
        out=$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "X-Forwarded-Host: admin.demo.test" \
            -H "X-Forwarded-Uri: /dashboard" -H "X-Forwarded-Proto: https" -H "X-Forwarded-Method: GET" \
            -H "Cookie: ${COOKIE[$s]}" "${BASE[$s]}/forward-auth")
        RPS[$s]+="$(awk '/Requests\/sec/ {print $2}' <<<"$out") "
        P50[$s]+="$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")") "
        P99[$s]+="$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")") "
        grep -q "Non-2xx" <<<"$out" && { echo "$s: non-2xx answers under load" >&2; exit 1; }
    done
done
echo
echo "signed-in /forward-auth, wrk -t1 -c$CONNECTIONS, ${ROUNDS}x${DURATION}s interleaved, medians, $BIN"
[ -z "$SHORT" ] || echo "SHORT: a smoke check of the stores; these figures are not measurements"
echo "| store | requests/s | p50 ms | p99 ms | vs cookie |"
echo "| --- | --- | --- | --- | --- |"
base=$(tr ' ' '\n' <<<"${RPS[cookie]}" | grep . | median)
for s in "${STORES[@]}"; do
    r=$(tr ' ' '\n' <<<"${RPS[$s]}" | grep . | median)
    printf '| %s | %.0f | %s | %s | %+.1f%% |\n' "$s" "$r" \
        "$(tr ' ' '\n' <<<"${P50[$s]}" | grep . | median)" "$(tr ' ' '\n' <<<"${P99[$s]}" | grep . | median)" \
        "$(awk -v a="$r" -v b="$base" 'BEGIN { print (a - b) / b * 100 }')"
done

# Idle memory with SESSIONS live sessions in the embedded store: fill the
# demo's database beside the running service (WAL mode allows it), let the
# service answer a few requests, then read its resident set.
db=$(find "$WORK" -name sessions.sqlite3 | head -1)
[ -n "$db" ] || { echo "no embedded store found" >&2; exit 1; }
python3 - "$db" "$SESSIONS" <<'PY'
import json, os, sqlite3, sys, time
db, n = sys.argv[1], int(sys.argv[2])
now = int(time.time())
c = sqlite3.connect(db, timeout=10)
rows = []
for i in range(n):
    key = os.urandom(32).hex()
    user = f"user{i:06d}"
    record = {"identity": {"s": f"sub-{i}", "u": user, "e": f"{user}@example.com", "ev": True, "n": f"User {i}", "g": ["users", "media"]},
              "issued": now, "expires": now + 43200, "refreshed": now,
              "refresh_token": "x" * 120, "id_token": "y" * 900, "sid": f"sid-{i}",
              "client": "203.0.113.7", "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}
    rows.append((key, user, f"sub-{i}", f"sid-{i}", now, now + 43200, json.dumps(record)))
c.executemany("INSERT INTO sessions (key, user, subject, sid, issued, expires, record) VALUES (?,?,?,?,?,?,?)", rows)
c.commit()
print(f"{c.execute('SELECT count(*) FROM sessions').fetchone()[0]} live sessions in {db} ({os.path.getsize(db) // (1024 * 1024)} MiB)")
PY
for _ in $(seq 1 200); do curl -s -o /dev/null -H "X-Forwarded-Host: admin.demo.test" -H "X-Forwarded-Uri: /" -H "Cookie: ${COOKIE[embedded]}" "${BASE[embedded]}/forward-auth"; done
sleep "$SETTLE"  # past the cache's 5 s
rss=$(awk '/VmRSS/ {print $2}' "/proc/${DEMO_PID[embedded]}/status")
echo "idle RSS of pocketgate demo --store embedded with $SESSIONS live sessions: $((rss / 1024)) MiB (the demo process also runs the development provider)"
