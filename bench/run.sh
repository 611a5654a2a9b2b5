#!/usr/bin/env bash
# The load benchmarks of issue #3 (bench/load/): plugin vs Prometheus on 7 days of one target,
# memory with 100 targets x 7 days, upstream calls with 1/10/100 viewers. See bench/README.md.
#
#   bench/run.sh                 everything (installs Debian's prometheus package when missing)
#   BENCH_ONLY=viewers bench/run.sh
#   BENCH_NO_INSTALL=1 bench/run.sh   never call apt-get (the comparison is skipped without it)
#
# Environment knobs (defaults in parentheses): BENCH_ONLY (compare,memory,viewers), BENCH_RUNS
# (25), BENCH_WARMUP (5), BENCH_TARGETS (100), BENCH_VIEWERS (1,10,100), BENCH_VIEWER_SECONDS
# (60), BENCH_REFRESH_SECONDS (5), PROMETHEUS/PROMTOOL (on PATH), BENCH_OUT
# (target/bench-load), BENCH_KEEP=1 keeps the work directory (databases, logs).
set -euo pipefail

cd "$(dirname "$0")/.."

only="${BENCH_ONLY:-compare,memory,viewers}"
if [[ ",$only," == *",compare,"* ]] && ! command -v "${PROMETHEUS:-prometheus}" >/dev/null 2>&1; then
    if [[ "${BENCH_NO_INSTALL:-0}" != "1" ]] && command -v apt-get >/dev/null 2>&1; then
        sudo=""
        if [[ "$(id -u)" != "0" ]]; then
            sudo="sudo"
        fi
        echo "bench: installing Debian's prometheus package (it includes promtool)"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
        # The package may start a service; the benchmark runs its own Prometheus.
        if command -v service >/dev/null 2>&1; then
            $sudo service prometheus stop >/dev/null 2>&1 || true
        fi
    else
        echo "bench: prometheus is not installed; the plugin vs Prometheus comparison will be skipped"
    fi
fi

# cargo bench builds the plugin executable and the bench binary with the release profile.
cargo bench --locked --bench load

out="${BENCH_OUT:-${CARGO_TARGET_DIR:-target}/bench-load}"
echo
echo "=== summary ($out/summary.md) ==="
cat "$out/summary.md"
