#!/usr/bin/env bash
# HTTP load with wrk against `pocketgate demo` (release build), all on loopback.
#
# Direct: /forward-auth with a signed-in request (real session from the demo's
# login flow), the same with the signed identity assertion on (a second demo,
# `demo --assertion`), and with a bypass path.
#
# Through nginx: how much a protected site slows down. One nginx (the shipped
# examples/nginx/pocketgate.conf snippet, included unchanged) serves a tiny
# backend (`return 200 "hello"`) three ways:
#   pocketgate   auth_request -> pocketgate's /auth-request (signed in, allowed)
#   floor        the same snippet with its subrequest sent to a no-op auth
#                server instead (an nginx `location = /ok { return 200; }`):
#                the cheapest auth server there can be
#   no auth      the same snippet with `auth_request off`
# and prints the slowdown of "pocketgate" relative to "floor".
#
# Bounded: every case runs ROUNDS times (interleaved; the table shows medians)
# for DURATION seconds each, then everything stops (pocketgate
# and nginx are children of this script; its trap ends them). nginx listens on
# 127.0.0.1 only, with its prefix, logs and temp files in a mktemp -d.
# Installs wrk and nginx-light with apt-get when missing and running as root.
#
# nginx's http block takes the part between `# BEGIN pocketgate-http` and
# `# END pocketgate-http` from examples/nginx/nginx.conf itself (the part the
# NixOS module copies), only its upstream address changed: the snippet and the
# maps it needs cannot drift apart here.
#
# SHORT=1 (or --smoke) is the check CI runs: one round of 1 s per case against
# the debug build (`cargo build --bin pocketgate`, the binary the tests use)
# unless POCKETGATE_BIN names one. It proves every case still answers 200
# through the real wiring and prints the table; its figures are NOT
# measurements (debug build, 1 s, a busy CI machine).
#
#   benches/load.sh                 # 3 rounds of 10 s per case, 1 wrk thread, 64 connections
#   DURATION=5 CONNECTIONS=32 benches/load.sh
#   POCKETGATE_BIN=/tmp/pocketgate-old benches/load.sh   # another build
#   SHORT=1 benches/load.sh         # the smoke check (~15 s once built)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
[ "${1:-}" != --smoke ] || SHORT=1
SHORT="${SHORT:-}"
if [ -n "$SHORT" ]; then
    DURATION="${DURATION:-1}" ROUNDS="${ROUNDS:-1}"
else
    DURATION="${DURATION:-10}" ROUNDS="${ROUNDS:-3}"
fi
CONNECTIONS="${CONNECTIONS:-64}"

# --- tools ---------------------------------------------------------------------
NGINX_BIN=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)
if ! command -v wrk >/dev/null || [ -z "$NGINX_BIN" ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "wrk and nginx (with auth_request) are needed: apt-get install wrk nginx-light" >&2
        exit 2
    fi
    # Keep the package's post-install from starting a system nginx on port 80.
    no_start=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && no_start=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk nginx-light >/dev/null
    [ -z "$no_start" ] || rm -f /usr/sbin/policy-rc.d
    NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
fi

# POCKETGATE_BIN=path: measure that build instead (e.g. to compare two commits).
BIN="${POCKETGATE_BIN:-}"
if [ -z "$BIN" ] && [ -n "$SHORT" ]; then
    cargo build --locked --quiet --bin pocketgate
    BIN=target/debug/pocketgate
elif [ -z "$BIN" ]; then
    cargo build --locked --release --quiet --bin pocketgate
    BIN=target/release/pocketgate
fi
[ -x "$BIN" ] || { echo "POCKETGATE_BIN=$BIN is not an executable" >&2; exit 2; }

PID="" PID2="" NGX_PID=""
JAR=$(mktemp) JAR2=$(mktemp)
NGX=$(mktemp -d)
cleanup() {
    [ -z "$NGX_PID" ] || { kill "$NGX_PID" 2>/dev/null || true; wait "$NGX_PID" 2>/dev/null || true; }
    [ -z "$PID" ] || { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
    [ -z "$PID2" ] || { kill "$PID2" 2>/dev/null || true; wait "$PID2" 2>/dev/null || true; }
    rm -rf "$JAR" "$JAR2" "$NGX"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P=$(port); Q=$(port)
RUST_LOG=warn "$BIN" demo --port "$P" --idp-port "$Q" >/dev/null 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$P/healthz" >/dev/null && break; sleep 0.1; done

# The same demo with the signed identity assertion on.
P2=$(port); Q2=$(port)
RUST_LOG=warn "$BIN" demo --assertion --port "$P2" --idp-port "$Q2" >/dev/null 2>&1 &
PID2=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$P2/healthz" >/dev/null && break; sleep 0.1; done

# sign_in BASE JAR: sign in as alice through the real flow (login -> provider
# approval -> callback); prints the Cookie header value.
sign_in() {
    local L A C
    L=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$2" -b "$2" "$1/login?rd=$1/demo")
    A="${L/\/authorize\?//authorize/approve?}&user=alice"
    C=$(curl -s -o /dev/null -w '%{redirect_url}' "$A")
    curl -s -o /dev/null -c "$2" -b "$2" "$C"
    awk '$6 ~ /^pocketgate/ && $6 !~ /_flow_/ {printf "%s=%s; ", $6, $7}' "$2"
}
B="http://127.0.0.1:$P"
B2="http://127.0.0.1:$P2"
COOKIE=$(sign_in "$B" "$JAR")
COOKIE2=$(sign_in "$B2" "$JAR2")
[ -n "$COOKIE" ] && [ -n "$COOKIE2" ] || { echo "login failed" >&2; exit 1; }


# --- through nginx: setup --------------------------------------------------------
SNIPPET=examples/nginx/pocketgate.conf
# The floor: the shipped snippet with only its subrequest's target changed.
sed 's#proxy_pass http://pocketgate/auth-request;#proxy_pass http://floor/ok;#' "$SNIPPET" > "$NGX/floor.conf"
# No auth: the shipped snippet with the auth_request switched off.
sed 's#^auth_request /internal-auth;#auth_request off;#' "$SNIPPET" > "$NGX/none.conf"
grep -q 'proxy_pass http://floor/ok;' "$NGX/floor.conf" && grep -q '^auth_request off;' "$NGX/none.conf" || {
    echo "$SNIPPET no longer has the shape this script substitutes" >&2; exit 1
}
# The http-block part the snippet needs (the $pg_backend_cookie maps, the
# $pg_port map, the pocketgate upstream), as shipped, pointed at the demo.
NGINX_EXAMPLE=examples/nginx/nginx.conf
awk '/^    # BEGIN pocketgate-http/ { on = 1 } on { print } /^    # END pocketgate-http/ { on = 0 }' \
    "$NGINX_EXAMPLE" > "$NGX/http.conf.in"
sed "s#server 127.0.0.1:4180;#server 127.0.0.1:$P;#" "$NGX/http.conf.in" > "$NGX/http.conf"
grep -q '# END pocketgate-http' "$NGX/http.conf" && grep -q "server 127.0.0.1:$P;" "$NGX/http.conf" || {
    echo "$NGINX_EXAMPLE no longer has the pocketgate-http part (with 'server 127.0.0.1:4180;') this script takes" >&2
    exit 1
}
NA=$(port) NB=$(port) NC=$(port) NF=$(port) NK=$(port)
cat > "$NGX/nginx.conf" <<EOF
# As examples/nginx/nginx.conf (its pocketgate-http part included as shipped),
# on loopback, without TLS and logs.
worker_processes auto;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $NGX/body;
    proxy_temp_path       $NGX/proxy;
    fastcgi_temp_path     $NGX/fastcgi;
    uwsgi_temp_path       $NGX/uwsgi;
    scgi_temp_path        $NGX/scgi;

    map \$http_upgrade \$connection_upgrade {
        default upgrade;
        ''      close;
    }
    include $NGX/http.conf;
    upstream floor      { server 127.0.0.1:$NF; keepalive 16; }

    server {    # pocketgate, exactly as shipped
        listen 127.0.0.1:$NA;
        include $ROOT/$SNIPPET;
        location / { proxy_pass http://127.0.0.1:$NK; }
    }
    server {    # the same, asking the no-op auth server
        listen 127.0.0.1:$NB;
        include $NGX/floor.conf;
        location / { proxy_pass http://127.0.0.1:$NK; }
    }
    server {    # no auth
        listen 127.0.0.1:$NC;
        include $NGX/none.conf;
        location / { proxy_pass http://127.0.0.1:$NK; }
    }
    server {    # the no-op auth server
        listen 127.0.0.1:$NF;
        location = /ok { return 200; }
    }
    server {    # the backend
        listen 127.0.0.1:$NK;
        location / { return 200 "hello\n"; }
    }
}
EOF
chmod 755 "$NGX"    # nginx's workers (nobody when started as root) read below it
NGX_ARGS=(-p "$NGX/" -e "$NGX/error.log" -c "$NGX/nginx.conf" -g "daemon off; pid $NGX/nginx.pid;")
"$NGINX_BIN" -t -q "${NGX_ARGS[@]}"
"$NGINX_BIN" "${NGX_ARGS[@]}" &
NGX_PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$NK/" >/dev/null && break; sleep 0.1; done

# The protection is real: without the cookie pocketgate refuses (401 for an API client).
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: admin.demo.test" "http://127.0.0.1:$NA/dashboard")
[ "$code" = 401 ] || { echo "nginx -> pocketgate without a session answered $code, not 401" >&2; exit 1; }

# --- the cases ---------------------------------------------------------------------
CASES=(fa_allow fa_assert fa_bypass nginx_pg nginx_floor nginx_none)
declare -A LABEL URL
LABEL[fa_allow]="/forward-auth direct: signed in, allowed"
URL[fa_allow]="$B/forward-auth"
LABEL[fa_assert]="/forward-auth direct: signed in, allowed, assertion on"
URL[fa_assert]="$B2/forward-auth"
LABEL[fa_bypass]="/forward-auth direct: bypass path"
URL[fa_bypass]="$B/forward-auth"
LABEL[nginx_pg]="nginx auth_request -> pocketgate (signed in, allowed)"
URL[nginx_pg]="http://127.0.0.1:$NA/dashboard"
LABEL[nginx_floor]="nginx auth_request -> no-op auth server (floor)"
URL[nginx_floor]="http://127.0.0.1:$NB/dashboard"
LABEL[nginx_none]="nginx, no auth"
URL[nginx_none]="http://127.0.0.1:$NC/dashboard"
# args_of CASE: its request headers, into ARGS.
args_of() {
    case $1 in
        fa_allow) ARGS=(-H "X-Forwarded-Host: admin.demo.test" -H "X-Forwarded-Uri: /dashboard"
                        -H "X-Forwarded-Proto: https" -H "X-Forwarded-Method: GET" -H "Cookie: $COOKIE") ;;
        fa_assert) ARGS=(-H "X-Forwarded-Host: admin.demo.test" -H "X-Forwarded-Uri: /dashboard"
                         -H "X-Forwarded-Proto: https" -H "X-Forwarded-Method: GET" -H "Cookie: $COOKIE2") ;;
        fa_bypass) ARGS=(-H "X-Forwarded-Host: app.demo.test" -H "X-Forwarded-Uri: /public/status"
                         -H "X-Forwarded-Proto: https" -H "X-Forwarded-Method: GET") ;;
        # The same site request for all three nginx cases.
        nginx_*) ARGS=(-H "Host: admin.demo.test" -H "Cookie: $COOKIE") ;;
    esac
}
for key in "${CASES[@]}"; do
    args_of "$key"
    code=$(curl -s -o /dev/null -w '%{http_code}' "${ARGS[@]}" "${URL[$key]}")
    [ "$code" = 200 ] || { echo "${LABEL[$key]}: a single request answered $code, not 200" >&2; exit 1; }
done

# --- measuring ---------------------------------------------------------------------
# to_ms VALUE: wrk's latency (850.00us, 1.20ms, 1.05s) in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.2f", n }'
}
# median: of the numbers on stdin, one a line.
median() { sort -g | awk '{ v[NR] = $1 } END { printf "%s", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# wrk, nginx and pocketgate share the machine's cores (with whatever else runs),
# so every case runs ROUNDS times, interleaved, and the table shows medians.
declare -A RPS P50 P99
echo "$(nproc) cores; load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t1 -c$CONNECTIONS -d${DURATION}s per case, $ROUNDS rounds with the cases interleaved, $BIN"
[ -z "$SHORT" ] || echo "SHORT: a smoke check of the wiring; these figures are not measurements"
for _ in $(seq 1 "$ROUNDS"); do
    for key in "${CASES[@]}"; do
        args_of "$key"
        out=$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "${ARGS[@]}" "${URL[$key]}")
        # A case whose answers are not all 2xx is a misconfiguration, not a figure.
        if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
            echo "${LABEL[$key]}:" >&2; echo "$out" >&2; exit 1
        fi
        RPS[$key]+="$(awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$out")"$'\n'
        P50[$key]+="$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")"$'\n'
        P99[$key]+="$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")"$'\n'
    done
done

printf '%-56s %8s %15s %7s %7s\n' "case (medians)" "req/s" "(range)" "p50 ms" "p99 ms"
declare -A MED_RPS MED_P50 MED_P99
for key in "${CASES[@]}"; do
    MED_RPS[$key]=$(printf '%s' "${RPS[$key]}" | median)
    MED_P50[$key]=$(printf '%s' "${P50[$key]}" | median)
    MED_P99[$key]=$(printf '%s' "${P99[$key]}" | median)
    range=$(printf '%s' "${RPS[$key]}" | sort -g | sed -n '1p;$p' | paste -sd- -)
    printf '%-56s %8s %15s %7s %7s\n' "${LABEL[$key]}" "${MED_RPS[$key]}" "($range)" \
        "${MED_P50[$key]}" "${MED_P99[$key]}"
done
awk -v a="${MED_RPS[nginx_pg]}" -v b="${MED_RPS[nginx_floor]}" -v a50="${MED_P50[nginx_pg]}" \
    -v b50="${MED_P50[nginx_floor]}" -v a99="${MED_P99[nginx_pg]}" -v b99="${MED_P99[nginx_floor]}" 'BEGIN {
    printf "pocketgate vs the floor: %.0f%% of its req/s (%.0f%% fewer), p50 %+.2f ms, p99 %+.2f ms\n",
        100 * a / b, 100 * (1 - a / b), a50 - b50, a99 - b99 }'
awk -v a="${MED_RPS[fa_assert]}" -v b="${MED_RPS[fa_allow]}" 'BEGIN {
    printf "assertion on vs off (signed in, /forward-auth direct): %.0f%% of its req/s (%+.0f%%)\n",
        100 * a / b, 100 * (a / b - 1) }'
