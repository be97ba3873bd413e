#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: bash scripts/fuzz.sh [SECONDS_PER_TARGET] (default 60).
# Needs cargo-fuzz (cargo install cargo-fuzz). The code is safe Rust, so no sanitizer: what the
# fuzzer looks for is a panic or a hang. RUSTC_BOOTSTRAP lets the stable toolchain take the
# instrumentation flags cargo-fuzz passes. Findings land in fuzz/artifacts/<target>/; new inputs
# that reach new code are added to fuzz/corpus/<target>/ (commit them).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
export RUSTC_BOOTSTRAP=1
for target in pipeline_parser color_table manifest label_decode mvtec_dict; do
    echo "== $target (${seconds}s)"
    cargo fuzz run "$target" -s none -- -max_total_time="$seconds" -timeout=10 -max_len=65536 2>&1 | grep -E "^(Done|#[0-9]+ *DONE|==[0-9]+== ERROR|SUMMARY)|panicked|Test unit written" || true
    if compgen -G "artifacts/$target/crash-*" > /dev/null || compgen -G "artifacts/$target/timeout-*" > /dev/null; then
        echo "$target: findings in fuzz/artifacts/$target/"
        exit 1
    fi
done
