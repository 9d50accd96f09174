#!/usr/bin/env bash
# A/B of the order book between git revisions (or the working tree) on a noisy machine:
# builds book/ of each as a shared object and runs bench_ab_book, which alternates
# whole-day passes of all of them in one process and prints paired ratios to the first.
#
# usage: scripts/ab-book.sh [-r ROUNDS] [-R RING_SLOTS] [-m MESSAGES] [-c CPU] REV...
#   REV: a git revision (HEAD~1, a tag, a hash) or "work" for the working tree; the first
#   is the baseline. CFLAGS adds compiler flags to every build; to compare variants of
#   uncommitted code, commit each (a branch or a stash commit) and name the revisions.
#   WB_BENCH_DAY_CACHE=FILE keeps the generated day between runs (default
#   /tmp/wirebook-ab-day-MESSAGES.bin). Pinned to CPU (default: the last one).
# The revisions' book/book.h and book/event.h must match the working tree's.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=12 RING=0 MSGS=24000000 CPU=$(($(nproc) - 1))
while getopts "r:R:m:c:h" o; do
	case $o in
	r) ROUNDS=$OPTARG ;;
	R) RING=$OPTARG ;;
	m) MSGS=$OPTARG ;;
	c) CPU=$OPTARG ;;
	h) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "ab-book: name at least one revision (or work)" >&2; exit 2; }
WB_BUILD_DIR=build-release WB_BUILD_TYPE=Release scripts/setup.sh > /dev/null
cmake --build build-release --target bench_ab_book -j"$(nproc)" > /dev/null
TMPD=$(mktemp -d /tmp/wirebook-ab.XXXXXX)
trap 'rm -rf "$TMPD"' EXIT
LIBS=()
k=0
for rev in "$@"; do
	src="$TMPD/src$k"
	mkdir -p "$src"
	if [ "$rev" = work ]; then
		cp -r book parsers "$src/"
	else
		git archive "$rev" book parsers | tar -x -C "$src"
	fi
	for h in book/book.h book/event.h; do
		cmp -s "$h" "$src/$h" || echo "ab-book: warning: $rev's $h differs from the working tree's (options passed across may not match)" >&2
	done
	gcc -std=gnu11 -O3 -DNDEBUG -fPIC -shared ${CFLAGS:-} -I"$src/book" -I"$src/parsers" \
		"$src/book/book.c" "$src/book/event.c" -o "$TMPD/book$k-$(echo "$rev" | tr -c 'A-Za-z0-9_.\n-' _).so" -lnuma
	LIBS+=("$TMPD/book$k-$(echo "$rev" | tr -c 'A-Za-z0-9_.\n-' _).so")
	k=$((k + 1))
done
export WB_BENCH_DAY_CACHE=${WB_BENCH_DAY_CACHE:-/tmp/wirebook-ab-day-$MSGS.bin}
taskset -c "$CPU" build-release/bench/bench_ab_book -r "$ROUNDS" -R "$RING" -m "$MSGS" "${LIBS[@]}"
