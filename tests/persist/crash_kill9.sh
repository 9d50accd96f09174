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

# The driver's report lines as "stream seq_first-seq_last", sorted. Only newline-terminated
# lines count: kill -9 can land while the driver is inside write(2), and the kernel stops a
# buffered write between pages once a fatal signal is pending, so a last line that straddles
# a 4096-byte boundary is cut short ("D 0 180390144 18"). Such a line names no range.
durable_ranges() {
	head -n "$(wc -l <"$1")" "$1" | awk '$1 == "D" && NF == 4 { print $2, $3 "-" $4 }' | sort -u
}
# A cut last line whose seq_first is whole ("D 0 180390144 ..."): "stream seq_first", else nothing.
torn_start() {
	[ -s "$1" ] && [ -n "$(tail -c 1 "$1")" ] || return 0
	tail -n 1 "$1" | awk '/^D [0-9]+ [0-9]+ / { print $2, $3 }'
}
# the parsing itself, on a report file cut short the way kill -9 cuts it
printf 'D 0 1 1024\nD 0 1025 2048\nD 0 2049 30' >"$T/cut"
[ "$(durable_ranges "$T/cut" | wc -l)" -eq 2 ] && ! durable_ranges "$T/cut" | grep -q 2049 &&
	[ "$(torn_start "$T/cut")" = "0 2049" ] || fail "a report line cut short by kill -9 is taken as a range"

for i in 1 2 3 4 5; do
	"$DRV" --seq $((i * 100000000)) --durability block --block-bytes 65536 --rotate-bytes 1048576 "$T/cap" >"$T/durable.$i" 2>"$T/err.$i" &
	pid=$!
	# once writing is under way (first durable block), a random 0 .. 0.6 s more
	for _ in $(seq 100); do grep -q '^D ' "$T/durable.$i" && break; sleep 0.05; done
	sleep "0.$(( RANDOM % 60 ))"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	n=$(durable_ranges "$T/durable.$i" | wc -l)
	echo "iteration $i: killed after $n durable blocks$([ -n "$(torn_start "$T/durable.$i")" ] && echo ", last report cut short")"
	[ "$n" -gt 0 ] || fail "iteration $i reported no durable block"
done
"$DRV" --recover "$T/cap" 2>"$T/err.final" || fail "recovery failed: $(cat "$T/err.final")"
cat "$T"/err.* | grep 'capture: recovery:' | sed 's/^/  /'
grep -q 'capture: recovery:' "$T"/err.* || fail "recovery logged nothing after kill -9"

"$WBCAP" verify -v "$T/cap" >"$T/verify.out" 2>&1
rc=$?
tail -1 "$T/verify.out"
[ $rc -eq 0 ] || { grep -v '^ok ' "$T/verify.out" | head -20; fail "verify exit $rc: capture not whole"; }

# every durable block (stream, seq range) must be among the verified blocks; each run starts
# at its own seq (i * 100000000), so a range names one run's block
awk '$1 == "ok" { print $8, $14 }' "$T/verify.out" | sort -u >"$T/have"
missing=0
for i in 1 2 3 4 5; do
	durable_ranges "$T/durable.$i" >"$T/want.$i"
	m=$(comm -23 "$T/want.$i" "$T/have" | wc -l)
	# the block of a report cut short was durable too: some verified block starts there
	t=$(torn_start "$T/durable.$i")
	[ -z "$t" ] || grep -q "^$t-" "$T/have" || m=$((m + 1))
	missing=$((missing + m))
done
[ $missing -eq 0 ] || fail "$missing durable blocks missing after recovery"
# sessions: one per run, and each run's blocks are counted in the files of its own session
sessions=$(ls "$T/cap" | sed -E 's/.*-drv-([0-9a-f]+)-.*/\1/' | sort -u | wc -l)
[ "$sessions" -eq 5 ] || fail "expected 5 sessions, found $sessions"
echo "PASS: 5 kills, all durable blocks intact"
