#!/usr/bin/env bash
# What pocketgate costs a protected site: requests per second and p99 through
# Caddy, nginx and Traefik (each from its shipped example, protecting one tiny
# backend) asking pocketgate, as a ratio to the same proxy asking a no-op auth
# server (nginx `return 200` + `X-Remote-User`); for the embedded, cookie and
# Redis stores and for the embedded store with [[hosts.rules]] and the signed
# assertion on; plus /forward-auth direct with the server pinned to one core
# against nginx's `return 200`. benches/ratio.py says how each case is built.
#
# Bounded: the measuring takes at most MAX_SECONDS (600; DURATION is chosen to
# fit, at most 10 s) plus about a minute of starting; all on 127.0.0.1; every
# process is a child stopped on exit. Needs wrk, nginx, taskset, redis-server
# (else the redis rows are skipped, saying so), and Caddy and Traefik from the
# end-to-end suite's venv (benches/support/run-python.sh installs it when
# missing).
#
#   benches/ratio.sh                                    # the release build of this checkout
#   POCKETGATE_BIN=/path/new POCKETGATE_BIN_BEFORE=/path/old benches/ratio.sh
#                                                       # two builds in one run, cases interleaved
#   ROUNDS=5 DURATION=8 MAX_SECONDS=900 benches/ratio.sh
#   RATIO_PROXIES=nginx,caddy benches/ratio.sh          # some proxies only
#   SHORT=1 benches/ratio.sh                            # the check CI runs (debug build, 1 s a case)
#
# SHORT=1 (or --smoke): one round of 1 s per case against the debug build
# unless POCKETGATE_BIN names one. It proves every case starts, signs in and
# answers 200 through the real wiring; its figures are NOT measurements.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "${1:-}" != --smoke ] || export SHORT=1
for tool in wrk taskset; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install wrk util-linux)" >&2; exit 2; }
done
exec benches/support/run-python.sh benches/ratio.py
