#!/usr/bin/env bash
# Instructions per signed-in /forward-auth request, counted by callgrind (the
# count does not depend on how busy the machine is): `pocketgate serve` under
# `valgrind --tool=callgrind`, the embedded store, once as the demo configures
# it and once with four [[hosts.rules]] and the signed assertion on; WARMUP
# (200) requests, the counters zeroed, REQUESTS (2,000) over one keep-alive
# connection, the total divided by REQUESTS. benches/instructions.py has the
# details and the budgets.
#
# Bounded: 10-20 s per case on the release build (valgrind runs the server
# some 50 times slower); on 127.0.0.1 only; every process is a child
# stopped on exit. Needs valgrind (apt-get install valgrind) and the
# end-to-end suite's venv (installed when missing).
#
#   benches/instructions.sh                     # the release build of this checkout
#   BUDGET=1 benches/instructions.sh            # exit 1 above a budget
#   POCKETGATE_BIN=/path/other benches/instructions.sh
#   KEEP_PROFILE=/tmp/prof benches/instructions.sh   # keep the callgrind files there, for
#                                               # callgrind_annotate --inclusive=yes /tmp/prof/callgrind-embedded.out
#   SHORT=1 benches/instructions.sh             # the check CI runs: debug build, 50 requests, no budget
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "${1:-}" != --smoke ] || export SHORT=1
command -v valgrind >/dev/null && command -v callgrind_control >/dev/null || {
    echo "valgrind is needed (apt-get install valgrind)" >&2; exit 2
}
exec benches/support/run-python.sh benches/instructions.py
