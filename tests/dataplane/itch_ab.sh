#!/usr/bin/env bash
# A generated ITCH session on lines A and B with independent loss, duplicates and
# reordering, replayed together through the DPDK dataplane: zero declared gaps, every
# symbol's final book equal to the simulator's ground truth at full depth, and the
# per-line counters add up. Then the same with a loss on both lines: exactly that gap is
# declared, and nothing is applied twice.
source "$(dirname "$0")/lib.sh"
[ -x "$BIN/wbsim" ] || { echo "SKIP: wbsim not built"; exit 77; }
make_config "$TMP/cfg.yaml"

common_lost() { # messages no line delivered whole, by an independent reader of the pcaps
	python3 "$SRC/tests/dataplane/mold_delivered.py" "$(jget "$TMP/truth.json" "j['messages']")" "$TMP/A.pcap" "$TMP/B.pcap"
}

# Seed 11 loses no message on both lines (checked below, so a simulator change is caught).
"$BIN/wbsim" gen --symbols 200 --messages 300k --seed 11 --out-a "$TMP/A.pcap" --out-b "$TMP/B.pcap" \
	--truth "$TMP/truth.json" --loss-a 0.005 --loss-b 0.005 --burst-loss-b 0.001:5 --dup-a 0.002 \
	--reorder-b 0.002 --quiet
expect_eq "messages lost on both lines" "$(common_lost "$TMP/truth.json")" "0"
"$BIN/wirebookd" -c "$TMP/cfg.yaml" --replay "$TMP/A.pcap" --replay "$TMP/B.pcap" --no-capture -q \
	--summary-json "$TMP/s.json" --books-json "$TMP/books.json" || fail "wirebookd exited $?"
S() { jget "$TMP/s.json" "$1"; }
T() { jget "$TMP/truth.json" "$1"; }
C="j['feeds'][0]['counters']"
expect_eq "declared gaps" "$(S "$C['gaps_declared_total']")" "0"
expect_eq "messages applied" "$(S "$C['messages_total']")" "$(T "j['messages']")"
expect_eq "next sequence" "$(S "$C['next_sequence']")" "$(( $(T "j['messages']") + 1 ))"
expect_eq "integrity events" "$(S "j['feeds'][0]['books']['integrity_events_total']")" "0"
expect_eq "line A frames" "$(S "j['feeds'][0]['lines']['A']['packets_total']")" "$(T "j['lines']['A']['frames']")"
expect_eq "line B frames" "$(S "j['feeds'][0]['lines']['B']['packets_total']")" "$(T "j['lines']['B']['frames']")"
# Every data packet was won by exactly one line.
won=$(( $(S "j['feeds'][0]['lines']['A']['line_packets_won_total']") + $(S "j['feeds'][0]['lines']['B']['line_packets_won_total']") ))
echo "info: packets won A+B = $won of $(T "j['packets']") data packets (a held packet drained later counts for neither)"
# Messages line A lost that the stream has anyway came from line B.
expect_eq "A missing, taken from B" "$(S "j['feeds'][0]['lines']['A']['line_missing_taken_from_other_total']")" \
	"$(T "j['lines']['A']['lost_messages']")"
python3 "$SRC/tests/dataplane/compare_books.py" "$TMP/truth.json" "$TMP/books.json" || fail "books differ from the ground truth"
# the book counts every order it stores: adds (the simulator's orders_added) and each replace's new order
expect_eq "orders added" "$(S "j['feeds'][0]['books']['orders_added_total']")" "$(T "j['orders_added'] + j['per_type']['U']")"

# The same session through a 1024-slot order ring: most orders outlive it and move to the
# survivor table; the books stay exact, and the summary says the ring is small.
sed -e "s|integrity_policy: flag }|integrity_policy: flag, order_ring: 1024 }|" "$TMP/cfg.yaml" > "$TMP/ring.yaml"
grep -q "order_ring: 1024" "$TMP/ring.yaml" || fail "could not set order_ring in the demo config"
"$BIN/wirebookd" -c "$TMP/ring.yaml" --replay "$TMP/A.pcap" --replay "$TMP/B.pcap" --no-capture \
	--summary-json "$TMP/s.json" --books-json "$TMP/books.json" > "$TMP/summary.txt" || fail "wirebookd exited $?"
python3 "$SRC/tests/dataplane/compare_books.py" "$TMP/truth.json" "$TMP/books.json" || fail "books differ (small ring)"
moved=$(S "j['feeds'][0]['books']['survivor_moves_total']")
[ "$moved" -gt "$(( $(T "j['orders_added'] + j['per_type']['U']") / 8 ))" ] || fail "only $moved orders outlived a 1024-slot ring"
grep -q "hint: one order in .* outlived the order ring" "$TMP/summary.txt" || fail "no order_ring hint in the summary"
echo "ok: $moved orders outlived a 1024-slot ring; books exact; the summary suggests a larger ring"

# Seed 13 loses messages on both lines (and truncates some on A): exactly those are declared lost.
"$BIN/wbsim" gen --symbols 200 --messages 300k --seed 13 --out-a "$TMP/A.pcap" --out-b "$TMP/B.pcap" \
	--truth "$TMP/truth.json" --loss-a 0.005 --loss-b 0.005 --burst-loss-b 0.001:5 --dup-a 0.002 \
	--reorder-b 0.002 --trunc-a 0.001 --garbage-b 0.001 --quiet
lost=$(common_lost "$TMP/truth.json")
"$BIN/wirebookd" -c "$TMP/cfg.yaml" --replay "$TMP/A.pcap" --replay "$TMP/B.pcap" --no-capture -q \
	--summary-json "$TMP/s.json" || fail "wirebookd exited $?"
expect_eq "messages lost in declared gaps" "$(S "$C['gap_messages_lost_total']")" "$lost"
expect_eq "messages applied once each" "$(S "$C['messages_total']")" "$(( $(T "j['messages']") - lost ))"
trunc=$(T "j['lines']['A']['truncated']")
garbage=$(T "j['lines']['B']['garbage']")
L="j['feeds'][0]['lines']"
bad=$(( $(S "$L['A']['line_malformed_packets_total']") + $(S "$L['B']['line_malformed_packets_total']") \
	+ $(S "$L['B']['line_foreign_session_packets_total']") + $(S "j['workers'][0]['packets']['bad_length_packets_total']") ))
echo "info: $trunc truncated on A, $garbage garbage on B; $bad counted malformed"
[ "$bad" -ge 1 ] || fail "truncated/garbage packets not counted"
