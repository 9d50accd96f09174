#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole suite:
#   1. the normal build (build/): unit tests, DPDK integration tests, tool tests;
#   2. a sanitizer build (build-asan/, ASan + UBSan): everything that does not need the EAL;
#   3. the libFuzzer smoke runs (build-fuzz/, clang).
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)

scripts/setup.sh

echo "== tests (build/)"
ctest --test-dir build --output-on-failure -j"$JOBS" --timeout 600

echo "== sanitizer tests (build-asan/: ASan + UBSan, no EAL)"
cmake -S . -B build-asan -DWB_WITH_DPDK=OFF -DWB_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$JOBS"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --test-dir build-asan --output-on-failure -j"$JOBS" --timeout 600

if command -v clang >/dev/null; then
	echo "== fuzz smoke (build-fuzz/: clang libFuzzer)"
	CC=clang cmake -S . -B build-fuzz -DWB_WITH_DPDK=OFF -DWB_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build-fuzz -j"$JOBS" --target wb_fuzz_targets
	ctest --test-dir build-fuzz --output-on-failure -L fuzz --timeout 600
fi
