#!/usr/bin/env bash
# A pcap of a SoupBinTCP/ITCH session with injected retransmissions, overlaps, reordering
# and lost-then-retransmitted segments, replayed through the DPDK dataplane (--replay): the
# reassembled stream is exact (every message applied once, books equal the ground truth).
# Then with a segment lost for good: the hole is declared, counted in bytes, books stale.
source "$(dirname "$0")/lib.sh"
[ -x "$BIN/wbsim" ] || { echo "SKIP: wbsim not built"; exit 77; }
"$BIN/wbsim" gen --symbols 30 --messages 40k --seed 4 --itch "$TMP/s.itch" --truth "$TMP/truth.json" --quiet
cat > "$TMP/cfg.yaml" <<YAML
dpdk: { file_prefix: $PREFIX, eal_args: ["--no-huge", "-m", "512", "--no-pci", "--no-shconf"] }
ports: [ { name: wire0, device: "net_null0", mempool_size: 16383 } ]
cores: { control: 0, workers: [ { name: w0, lcore: 1, rx: [ { port: wire0, queue: 0 } ] } ] }
feeds:
  - { name: itch-tcp, protocol: itch50-soupbintcp, line_a: 10.9.0.1:9001, port: wire0, queue: 0,
      book: { max_orders: 200000, max_levels: 50000, max_symbols: 1024 } }
control: { socket: $TMP/wb.sock }
YAML
S() { jget "$TMP/s.json" "j['feeds'][0]['counters']['$1']"; }
python3 "$SRC/tests/tcp/make_tcp_pcap.py" --seed 3 --retransmit 40 --overlap 40 --reorder 40 \
	--lose-filled 10 "$TMP/s.itch" "$TMP/tcp.pcap" > /dev/null
"$BIN/wirebookd" -c "$TMP/cfg.yaml" --replay "$TMP/tcp.pcap" --no-capture -q --summary-json "$TMP/s.json" \
	--books-json "$TMP/books.json" || fail "wirebookd exited $?"
expect_eq "messages applied" "$(S messages_total)" "$(jget "$TMP/truth.json" "j['messages']")"
expect_eq "holes declared" "$(S tcp_holes_declared_total)" 0
echo "info: trimmed $(S tcp_retrans_bytes_trimmed_total) retransmitted and $(S tcp_overlap_bytes_trimmed_total) overlapping bytes; $(S tcp_ooo_segments_held_total) segments held; $(S tcp_holes_filled_total) holes filled"
[ "$(S tcp_holes_filled_total)" -gt 0 ] || fail "no hole was filled: the faults did not happen"
python3 "$SRC/tests/dataplane/compare_books.py" "$TMP/truth.json" "$TMP/books.json" || fail "books differ"

# An early segment retransmitted 600 segments later: the flow holds ~13k messages and
# delivers them in one call, more events than a worker's batch holds. None may be lost.
python3 "$SRC/tests/tcp/make_tcp_pcap.py" --seed 8 --late-retransmit 600 "$TMP/s.itch" "$TMP/late.pcap" > "$TMP/late.json"
"$BIN/wirebookd" -c "$TMP/cfg.yaml" --replay "$TMP/late.pcap" --no-capture -q --summary-json "$TMP/s.json" \
	--books-json "$TMP/books.json" || fail "wirebookd exited $?"
expect_eq "messages applied (late fill)" "$(S messages_total)" "$(jget "$TMP/truth.json" "j['messages']")"
expect_eq "holes declared (late fill)" "$(S tcp_holes_declared_total)" 0
[ "$(S tcp_ooo_segments_held_total)" -ge 500 ] || fail "the late segment did not hold the stream back"
expect_eq "book events overflowed" "$(jget "$TMP/s.json" "j['feeds'][0]['books']['event_overflow_total']")" 0
expect_eq "events dropped at the ring" "$(jget "$TMP/s.json" "sum(w['ring_drops_events_total'] for w in j['workers'])")" 0
expect_eq "worker batch overflows" "$(jget "$TMP/s.json" "sum(w['event_batch_overflow_total'] for w in j['workers'])")" 0
python3 "$SRC/tests/dataplane/compare_books.py" "$TMP/truth.json" "$TMP/books.json" || fail "books differ (late fill)"
echo "ok: $(S tcp_ooo_segments_held_total) segments held behind a late retransmission, delivered without loss"

python3 "$SRC/tests/tcp/make_tcp_pcap.py" --seed 5 --lose-forever "$TMP/s.itch" "$TMP/hole.pcap" > /dev/null
"$BIN/wirebookd" -c "$TMP/cfg.yaml" --replay "$TMP/hole.pcap" --no-capture -q --summary-json "$TMP/s.json" \
	--hold 2> /dev/null &
DAEMON_PID=$!
for _ in $(seq 200); do
	"$BIN/wbctl" -s "$TMP/wb.sock" --json status 2> /dev/null | grep -q '"inputs-done"' && break
	sleep 0.1
done
"$BIN/wbctl" -s "$TMP/wb.sock" --json symbols > "$TMP/sym.json" || fail "wbctl symbols"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || fail "wirebookd exited $?"
DAEMON_PID=
expect_eq "holes declared" "$(S tcp_holes_declared_total)" 1
[ "$(S tcp_hole_bytes_total)" -gt 0 ] || fail "hole bytes not counted"
[ "$(S messages_total)" -lt "$(jget "$TMP/truth.json" "j['messages']")" ] || fail "a lost segment went unnoticed"
expect_eq "every book stale" "$(jget "$TMP/sym.json" "all(s['health'] == 'stale' for s in j['symbols'])")" True
echo "ok: hole of $(S tcp_hole_bytes_total) bytes declared; $(S messages_total) messages applied before it"
