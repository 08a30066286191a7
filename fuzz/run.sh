#!/usr/bin/env bash
# Fuzz the parsers that face the network: every cargo-fuzz target in
# fuzz_targets/ for FUZZ_SECONDS (default 45) each, starting from its
# checked-in seeds in corpus/<target>/, FUZZ_JOBS (default 2) targets at a
# time. Each target checks the invariants of tests/invariants/, so a finding
# is a broken promise, not only a crash; its input lands in artifacts/<target>/
# and the script exits 1 (replay: cargo +nightly fuzz run <target> <file>).
#
# Needs a nightly toolchain, or the stable one with RUSTC_BOOTSTRAP=1 (which
# lets stable take the unstable flags cargo-fuzz passes), and cargo-fuzz,
# installed when missing. Without them it says "SKIPPED" and why, and exits
# 0: fuzzing is extra assurance on top of tests/properties.rs, which checks
# the same invariants on stable.
#
# Time on 2 cores: building the instrumented dependencies (about 9 CPU
# minutes: 4-5 minutes on an idle machine, far more on a busy one), then
# ceil(5 / FUZZ_JOBS) * FUZZ_SECONDS. FUZZ_TARGET_DIR (default fuzz/target)
# can point outside a fresh clone so that the next run reuses the build.
# The sanitizer is off by default (FUZZ_SANITIZER=address turns ASan on):
# the code under test is safe Rust whose failures are panics and broken
# invariants, which need no sanitizer, and without one the build is shorter
# and every second runs more inputs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

seconds=${FUZZ_SECONDS:-45}
jobs=${FUZZ_JOBS:-2}
sanitizer=${FUZZ_SANITIZER:-none}
targets=(reconstruct normal_path session_open rd config)

if cargo +nightly --version >/dev/null 2>&1; then
    toolchain=(+nightly)
    echo "fuzz: toolchain $(cargo +nightly --version)"
elif RUSTC_BOOTSTRAP=1 cargo --version >/dev/null 2>&1; then
    toolchain=()
    export RUSTC_BOOTSTRAP=1
    echo "fuzz: no nightly toolchain: using $(cargo --version) with RUSTC_BOOTSTRAP=1"
else
    echo "fuzz: SKIPPED, not run: no cargo that takes nightly flags"
    exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz is missing; installing it (cargo install cargo-fuzz --locked)"
    if ! cargo install cargo-fuzz --locked; then
        echo "fuzz: SKIPPED, not run: cargo-fuzz could not be installed"
        exit 0
    fi
fi

target_dir=$(mkdir -p "${FUZZ_TARGET_DIR:-target}" && cd "${FUZZ_TARGET_DIR:-target}" && pwd)
logs="$target_dir/fuzz-logs"
# Many codegen units: a build several minutes shorter for slightly slower runs.
# (`run` must get the same flags as `build`, or it builds again.)
flags=(--sanitizer "$sanitizer" --codegen-units 16 --target-dir "$target_dir")
mkdir -p "$logs"

echo "fuzz: building ${#targets[@]} targets (sanitizer: $sanitizer)"
start=$SECONDS
cargo "${toolchain[@]}" fuzz build "${flags[@]}"
echo "fuzz: built in $((SECONDS - start)) s; running each target for ${seconds} s, ${jobs} at a time"

# One target: new inputs go to a scratch corpus under target/, so the
# checked-in seeds stay as written.
fuzz_one() {
    local t=$1 scratch="$target_dir/fuzz-corpus/$1"
    mkdir -p "$scratch" "artifacts/$t"
    cargo "${toolchain[@]}" fuzz run "${flags[@]}" "$t" "$scratch" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$logs/$t.log" 2>&1
}

# Batches of $jobs: every run lasts the same FUZZ_SECONDS, so batches lose nothing to a pool.
failed=()
for ((b = 0; b < ${#targets[@]}; b += jobs)); do
    batch=("${targets[@]:b:jobs}")
    pids=()
    for t in "${batch[@]}"; do
        fuzz_one "$t" &
        pids+=($!)
    done
    for i in "${!batch[@]}"; do
        t=${batch[$i]}
        if wait "${pids[$i]}"; then
            runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$' || true)
            echo "fuzz: $t: ok (${runs:-?} inputs)"
        else
            failed+=("$t")
            echo "fuzz: $t: FAILED; the end of $logs/$t.log:"
            tail -n 40 "$logs/$t.log" | sed 's/^/    /'
        fi
    done
done

echo "fuzz: done in $((SECONDS - start)) s"
if ((${#failed[@]})); then
    echo "fuzz: broken invariants in: ${failed[*]} (inputs in fuzz/artifacts/)"
    exit 1
fi
