#!/usr/bin/env bash
# fuzz_smoke.sh FUZZER REPLAY CORPUS_DIR SECONDS
# Writes a seed corpus from the real OMI captures (into the build tree, not git), then runs
# the libFuzzer target on it for SECONDS. Exit 0 pass, 77 without captures, else the
# fuzzer's status (a crash leaves crash-* in CORPUS_DIR/../ with the input).
set -euo pipefail
fuzzer=$1 replay=$2 corpus=$3 seconds=$4

mkdir -p "$corpus"
rc=0
"$replay" --write-seeds "$corpus" || rc=$?
if ((rc != 0)); then
	exit "$rc"
fi
cd "$(dirname "$corpus")"
exec "$fuzzer" -max_total_time="$seconds" -max_len=2048 -timeout=5 -print_final_stats=1 "$corpus"
