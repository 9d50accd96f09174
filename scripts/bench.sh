#!/usr/bin/env bash
# Runs the benchmarks (never part of the test suite) on a Release build and prints their
# tables; record the figures and the machine in docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
WB_BUILD_DIR=build-release WB_BUILD_TYPE=Release scripts/setup.sh
B=build-release/bench
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cpus, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r), $(date -u +%F)"
for b in "$@"; do "$B/$b"; done
if [ $# -eq 0 ]; then
	for b in bench_rx bench_itch bench_book bench_iex bench_persist bench_tcp; do
		[ -x "$B/$b" ] || continue
		echo; echo "== $b"; "$B/$b"
	done
fi
