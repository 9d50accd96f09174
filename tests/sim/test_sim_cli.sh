#!/bin/bash
# wbsim's command line: help covers every option, bad input is refused with a clear
# message and exit 2, and a run writes its outputs deterministically.
set -u
BIN="${WB_BIN_DIR:?}/wbsim"
[ -x "$BIN" ] || { echo "SKIP: $BIN not built"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$BIN" gen --help > "$dir/help" || fail "--help exit status"
for opt in symbols messages seed session date itch out-a out-b truth line-a line-b lag-b \
           loss-a loss-b burst-loss-a burst-loss-b dup-a dup-b reorder-a reorder-b \
           trunc-a trunc-b garbage-a garbage-b quiet; do
	grep -q -- "--${opt%-[ab]}" "$dir/help" || fail "--help does not explain --$opt"
done
grep -q "Examples" "$dir/help" || fail "--help has no examples"

expect_refused() {
	local want="$1"; shift
	"$BIN" "$@" > /dev/null 2> "$dir/err"
	local rc=$?
	[ $rc -eq 2 ] || fail "'$*' exited $rc, want 2"
	grep -q -- "$want" "$dir/err" || fail "'$*' said '$(cat "$dir/err")', want '$want'"
}
expect_refused "unknown command" frobnicate
expect_refused "no output" gen --messages 1000
expect_refused "invalid value '1.5' for --loss-a" gen --loss-a 1.5 --truth "$dir/t.json"
expect_refused "invalid value '0.1' for --burst-loss-b" gen --burst-loss-b 0.1 --truth "$dir/t.json"
expect_refused "invalid value '1.2.3.4' for --line-a" gen --line-a 1.2.3.4 --truth "$dir/t.json"
expect_refused "invalid value '2026-13-01' for --date" gen --date 2026-13-01 --truth "$dir/t.json"
expect_refused "invalid value 'ABCDEFGHIJK' for --session" gen --session ABCDEFGHIJK --truth "$dir/t.json"
expect_refused "too few" gen --symbols 100 --messages 250 --truth "$dir/t.json"
expect_refused "unexpected argument" gen --truth "$dir/t.json" extra

"$BIN" gen --symbols 20 --messages 20k --seed 4 --itch "$dir/1.itch" --out-a "$dir/1a.pcap" \
	--truth "$dir/1.json" --loss-a 0.05 2> "$dir/summary" || fail "gen failed"
grep -q "20000 messages" "$dir/summary" || fail "summary: $(cat "$dir/summary")"
grep -q "line A: .* lost [1-9]" "$dir/summary" || fail "summary lacks line A losses"
"$BIN" gen --symbols 20 --messages 20k --seed 4 --itch "$dir/2.itch" --out-a "$dir/2a.pcap" \
	--truth "$dir/2.json" --loss-a 0.05 --quiet 2> "$dir/quiet" || fail "second gen failed"
[ -s "$dir/quiet" ] && fail "--quiet still printed"
cmp -s "$dir/1.itch" "$dir/2.itch" || fail "same seed gave different ITCH files"
cmp -s "$dir/1a.pcap" "$dir/2a.pcap" || fail "same seed gave different pcaps"
cmp -s "$dir/1.json" "$dir/2.json" || fail "same seed gave different truth"
grep -q '"lost_packets": [1-9]' "$dir/1.json" || fail "truth lacks the losses"
"$BIN" gen --out-a /nonexistent/dir/a.pcap --symbols 5 --messages 1000 2> "$dir/err"
[ $? -eq 1 ] || fail "unwritable output not refused"
grep -q "No such file" "$dir/err" || fail "unwritable output: $(cat "$dir/err")"
echo "PASS"
