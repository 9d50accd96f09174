#!/usr/bin/env bash
# The demo: installs what is missing, builds, then runs a simulated Nasdaq ITCH session
# through the real DPDK dataplane and shows what operators and researchers see.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

B=build/bin
D=/tmp/wirebook-demo
SOCK=$D/wirebook.sock
rm -rf "$D"
mkdir -p "$D"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. wbsim: a deterministic ITCH 5.0 session on lines A and B, 0.3% packet loss on each"
"$B/wbsim" gen --symbols 1000 --messages 2M --seed 22 --out-a "$D/lineA.pcap" --out-b "$D/lineB.pcap" \
	--truth "$D/truth.json" --loss-a 0.003 --loss-b 0.003 --dup-a 0.001 --reorder-b 0.001
# Seed 22 never loses the same packet on both lines: line B fills every hole in line A and
# vice versa, so every book must equal the ground truth.

step "2. wirebookd: replay both lines through DPDK net_pcap devices into books and a capture"
"$B/wirebookd" --check-config -c examples/demo.yaml
"$B/wirebookd" -c examples/demo.yaml --replay "$D/lineA.pcap" --replay "$D/lineB.pcap" --hold \
	--summary-json "$D/summary.json" --books-json "$D/books.json" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 600); do
	if "$B/wbctl" -s "$SOCK" --json status 2>/dev/null | grep -q '"inputs-done"'; then break; fi
	sleep 0.1
done

step "3. what an operator sees while the daemon holds (wbctl)"
"$B/wbctl" -s "$SOCK" status
echo
"$B/wbctl" -s "$SOCK" symbols --limit 8
# The busiest book makes the best picture.
SYM=$("$B/wbctl" -s "$SOCK" --json symbols | python3 -c \
	'import json,sys; print(max(json.load(sys.stdin)["symbols"], key=lambda s: s["live_orders"])["symbol"])')
echo
"$B/wbctl" -s "$SOCK" book "$SYM" --depth 5

step "4. stop (SIGTERM): workers stop, rings drain, the capture closes"
kill -TERM $PID
wait $PID
trap - EXIT

step "5. every final book against the simulator's ground truth"
python3 tests/dataplane/compare_books.py "$D/truth.json" "$D/books.json"

step "6. the capture, as a researcher reads it (wbcap)"
"$B/wbcap" ls "$D/capture"
"$B/wbcap" verify "$D/capture"
"$B/wbcap" book "$D/capture" "$SYM" --depth 5
echo
echo "Files are in $D: lineA.pcap lineB.pcap truth.json summary.json books.json capture/"
