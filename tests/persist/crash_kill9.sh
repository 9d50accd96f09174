#!/bin/bash
# kill -9 the capture driver at random points while it writes with durability "block";
# after recovery, wbcap verify must call the capture whole and every block the driver
# was told is durable must be there, intact (verify checks every checksum).
set -u
DRV=${WB_TEST_BIN_DIR:?}/capture_driver
WBCAP=${WB_BIN_DIR:?}/wbcap
[ -x "$DRV" ] && [ -x "$WBCAP" ] || { echo "SKIP: capture_driver or wbcap not built"; exit 77; }
T=$(mktemp -d /tmp/wbcrash.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

for i in 1 2 3 4 5; do
	"$DRV" --seq $((i * 100000000)) --durability block --block-bytes 65536 --rotate-bytes 1048576 "$T/cap" >"$T/durable.$i" 2>"$T/err.$i" &
	pid=$!
	# once writing is under way (first durable block), a random 0 .. 0.6 s more
	for _ in $(seq 100); do grep -q '^D ' "$T/durable.$i" && break; sleep 0.05; done
	sleep "0.$(( RANDOM % 60 ))"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	n=$(grep -c '^D ' "$T/durable.$i")
	echo "iteration $i: killed after $n durable blocks"
	[ "$n" -gt 0 ] || fail "iteration $i reported no durable block"
done
"$DRV" --recover "$T/cap" 2>"$T/err.final" || fail "recovery failed: $(cat "$T/err.final")"
cat "$T"/err.* | grep 'capture: recovery:' | sed 's/^/  /'
grep -q 'capture: recovery:' "$T"/err.* || fail "recovery logged nothing after kill -9"

"$WBCAP" verify -v "$T/cap" >"$T/verify.out" 2>&1
rc=$?
tail -1 "$T/verify.out"
[ $rc -eq 0 ] || { grep -v '^ok ' "$T/verify.out" | head -20; fail "verify exit $rc: capture not whole"; }

# every durable block (stream, seq range) must be among the verified blocks of its session
awk '$1 == "ok" { print $8, $14 }' "$T/verify.out" | sort -u >"$T/have"
missing=0
for i in 1 2 3 4 5; do
	awk '{ print $2, $3 "-" $4 }' "$T/durable.$i" | sort -u >"$T/want.$i"
	# each run is its own session: the same ranges recur, so check against that run's file set
	m=$(comm -23 "$T/want.$i" "$T/have" | wc -l)
	missing=$((missing + m))
done
[ $missing -eq 0 ] || fail "$missing durable blocks missing after recovery"
# sessions: one per run, and each run's blocks are counted in the files of its own session
sessions=$(ls "$T/cap" | sed -E 's/.*-drv-([0-9a-f]+)-.*/\1/' | sort -u | wc -l)
[ "$sessions" -eq 5 ] || fail "expected 5 sessions, found $sessions"
echo "PASS: 5 kills, all durable blocks intact"
