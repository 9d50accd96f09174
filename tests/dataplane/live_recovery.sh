#!/usr/bin/env bash
# Live recovery in test network namespaces: wbsim live (net_af_packet on one end of a veth)
# sends lines A and B with losses on both into a live wirebookd (net_af_packet on the other
# end) and answers MoldUDP64 re-requests arriving on the same port. 1) Gaps missing on both lines are re-requested by the worker from its TX queue and
# filled: books equal the ground truth, nothing declared. 2) With the re-request server dead,
# the gap times out, the books go stale, wirebookd logs into wbsim serve's SoupBinTCP
# server at the missing sequence, catches up, books healthy and equal the ground truth, and
# wbctl gaps says how each gap was repaired.
source "$(dirname "$0")/lib.sh"
[ -c /dev/net/tun ] || true
[ -x "$BIN/wbsim" ] || { echo "SKIP: wbsim not built"; exit 77; }
"$BIN/wbsim" live --help > /dev/null 2>&1 || { echo "SKIP: wbsim built without DPDK (no live mode)"; exit 77; }
command -v ip > /dev/null || { echo "SKIP: iproute2 missing"; exit 77; }
SPORT=$(( 20000 + $$ % 20000 ))
NX=wlx$$ NA=wla$$ VX=lx$$ VA=la$$
ns_cleanup() {
	[ -n "${SERVE:-}" ] && kill "$SERVE" 2> /dev/null
	ip netns del "$NX" 2> /dev/null
	ip netns del "$NA" 2> /dev/null
	cleanup
}
trap ns_cleanup EXIT
[ -n "${KEEP_TMP:-}" ] && trap "ip netns del $NX; ip netns del $NA" EXIT
ip netns add "$NX"
ip netns add "$NA"
ip link add "$VX" type veth peer name "$VA"
ip link set "$VX" netns "$NX"
ip link set "$VA" netns "$NA"
for ns in "$NX" "$NA"; do ip -n "$ns" link set lo up; done
ip -n "$NX" link set "$VX" up
ip -n "$NA" link set "$VA" up
"$BIN/wbsim" gen --symbols 100 --messages 200k --seed 13 --out-a "$TMP/A.pcap" --out-b "$TMP/B.pcap" \
	--itch "$TMP/s.itch" --truth "$TMP/truth.json" --loss-a 0.01 --loss-b 0.01 --burst-loss-b 0.002:5 --quiet
lost=$(python3 "$SRC/tests/dataplane/mold_delivered.py" "$(jget "$TMP/truth.json" "j['messages']")" "$TMP/A.pcap" "$TMP/B.pcap")
[ "$lost" -gt 0 ] || fail "the session loses nothing on both lines: no recovery to test"
echo "info: $lost messages lost on both lines"
printf 'wb:secret\n' > "$TMP/creds"
chmod 600 "$TMP/creds"
N=$(jget "$TMP/truth.json" "j['messages']")

run() { # NAME WBSIM-LIVE-EXTRA-ARGS...
	local name=$1; shift
	cat > "$TMP/$name.yaml" <<YAML
dpdk: { file_prefix: ${PREFIX}$name, eal_args: ["--no-huge", "-m", "512", "--no-pci", "--no-shconf"] }
ports: [ { name: wire0, device: "net_af_packet0,iface=$VA,framecnt=4096", mempool_size: 16383 } ]
cores: { control: 0, workers: [ { name: w0, lcore: 1, rx: [ { port: wire0, queue: 0 } ], ring_size: 1048576 } ] }
feeds:
  - { name: nasdaq-itch, protocol: itch50-moldudp64, line_a: 233.54.12.111:26477, line_b: 233.49.196.111:26477,
      port: wire0, queue: 0, credentials: $TMP/creds,
      book: { max_orders: 500000, max_levels: 100000, max_symbols: 1024 },
      recovery: { rerequest: 10.1.1.9:9000, source: 10.1.1.2:40100, soup: 127.0.0.1:$SPORT,
                  gap_timeout_ms: 200, reorder_buffer: 16384 } }
control: { socket: $TMP/wb-$name.sock }
YAML
	ip netns exec "$NA" "$BIN/wirebookd" -c "$TMP/$name.yaml" -q --summary-json "$TMP/$name-s.json" \
		--books-json "$TMP/$name-books.json" 2> "$TMP/$name.err" &
	DAEMON_PID=$!
	for _ in $(seq 100); do "$BIN/wbctl" -s "$TMP/wb-$name.sock" status > /dev/null 2>&1 && break; sleep 0.1; done
	ip netns exec "$NX" "$BIN/wbsim" live --port "net_af_packet0,iface=$VX,framecnt=4096" --pcap "$TMP/A.pcap" \
		--pcap "$TMP/B.pcap" --itch "$TMP/s.itch" --rate 20000 --linger-ms 2000 --core 0 \
		--file-prefix "${PREFIX}sim$name" "$@" > "$TMP/live-$name.out" 2>&1 &
	local sim=$!
	wait $sim || fail "wbsim live: $(cat "$TMP/live-$name.out")"
	echo "info: $(tail -1 "$TMP/live-$name.out")"
	local next=0
	for _ in $(seq 150); do
		"$BIN/wbctl" -s "$TMP/wb-$name.sock" --json feeds > "$TMP/$name-feeds.json" 2> /dev/null || true
		next=$(jget "$TMP/$name-feeds.json" "j['feeds'][0]['next_sequence']" 2> /dev/null || echo 0)
		[ "$next" = $((N + 1)) ] && [ "$(jget "$TMP/$name-feeds.json" "j['feeds'][0]['state']")" != recovering ] && break
		sleep 0.2
	done
	"$BIN/wbctl" -s "$TMP/wb-$name.sock" gaps > "$TMP/$name-gaps.txt"
	"$BIN/wbctl" -s "$TMP/wb-$name.sock" --json gaps > "$TMP/$name-gaps.json"
	"$BIN/wbctl" -s "$TMP/wb-$name.sock" --json symbols > "$TMP/$name-sym.json"
	kill -TERM "$DAEMON_PID"
	wait "$DAEMON_PID" || fail "wirebookd exited $?: $(tail -5 "$TMP/$name.err")"
	DAEMON_PID=
	expect_eq "$name: next sequence" "$next" $((N + 1))
}

run rerequest
C="j['feeds'][0]['counters']"
expect_eq "rerequest: declared gaps" "$(jget "$TMP/rerequest-s.json" "$C['gaps_declared_total']")" 0
expect_eq "rerequest: messages" "$(jget "$TMP/rerequest-s.json" "$C['messages_total']")" "$N"
sent=$(jget "$TMP/rerequest-s.json" "$C['rerequests_sent_total']")
won=$(jget "$TMP/rerequest-s.json" "$C['rerequest_packets_won_total']")
echo "info: $sent re-requests sent, $won responses carried messages first"
[ "$won" -gt 0 ] || fail "no gap was filled by a re-request"
grep -q "re-request" "$TMP/rerequest-gaps.txt" || fail "wbctl gaps lists no re-request repair: $(cat "$TMP/rerequest-gaps.txt")"
python3 "$SRC/tests/dataplane/compare_books.py" "$TMP/truth.json" "$TMP/rerequest-books.json" || fail "books differ (re-request)"

ip netns exec "$NA" "$BIN/wbsim" serve --from-itch "$TMP/s.itch" --soup 127.0.0.1:$SPORT --soup-user wb --soup-pass secret --quiet \
	> "$TMP/serve.out" 2>&1 &
SERVE=$!
run soup --no-answer
kill "$SERVE" 2> /dev/null; wait "$SERVE" 2> /dev/null || true
SERVE=
expect_eq "soup: declared gaps" "$(jget "$TMP/soup-s.json" "$C['gaps_declared_total']")" 0
expect_eq "soup: messages" "$(jget "$TMP/soup-s.json" "$C['messages_total']")" "$N"
rec=$(jget "$TMP/soup-s.json" "$C['recoveries_completed_total']")
[ "$rec" -gt 0 ] || fail "no SoupBinTCP recovery completed: $(tail -5 "$TMP/soup.err")"
echo "ok: $rec SoupBinTCP recoveries completed; wbctl gaps:"; cat "$TMP/soup-gaps.txt"
grep -q "soupbintcp" "$TMP/soup-gaps.txt" || fail "wbctl gaps lists no soupbintcp repair"
expect_eq "soup: every book healthy" "$(jget "$TMP/soup-sym.json" "all(s['health'] == 'ok' for s in j['symbols'])")" True
python3 "$SRC/tests/dataplane/compare_books.py" "$TMP/truth.json" "$TMP/soup-books.json" || fail "books differ (soup)"
