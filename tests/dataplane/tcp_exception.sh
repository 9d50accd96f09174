#!/usr/bin/env bash
# A TCP feed through the kernel exception path, in test network namespaces:
#   [ns X: wbsim serve, SoupBinTCP 10.9.0.1:9001] vx ==veth== va [ns A: wirebookd, net_af_packet on va,
#                                                                  net_tap exception interface tp with 10.9.0.2]
# The kernel in ns A owns ARP and the TCP session (wirebookd's SoupBinTCP client logs in
# through the appliance); the worker reads the server's stream off the NIC ring. Books
# equal the simulator's ground truth, and ARP + ping to 10.9.0.2 work while the feed runs.
source "$(dirname "$0")/lib.sh"
[ -c /dev/net/tun ] || { echo "SKIP: /dev/net/tun missing"; exit 77; }
command -v ip > /dev/null && command -v ethtool > /dev/null || { echo "SKIP: iproute2/ethtool missing"; exit 77; }
NX=wbx$$ NA=wba$$ VX=vx$$ VA=va$$ TP=tp$$
ns_cleanup() {
	[ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2> /dev/null
	ip netns del "$NX" 2> /dev/null
	ip netns del "$NA" 2> /dev/null
	cleanup
}
trap ns_cleanup EXIT
ip netns add "$NX"
ip netns add "$NA"
ip link add "$VX" type veth peer name "$VA"
ip link set "$VX" netns "$NX"
ip link set "$VA" netns "$NA"
ip -n "$NX" addr add 10.9.0.1/24 dev "$VX"
for ns in "$NX" "$NA"; do ip -n "$ns" link set lo up; done
ip -n "$NX" link set "$VX" up
ip -n "$NA" link set "$VA" up
ip netns exec "$NX" ethtool -K "$VX" tx off > /dev/null
# The kernel in ns A must not answer on the wire port itself: only through the tap.
ip netns exec "$NA" sysctl -qw net.ipv4.conf.all.rp_filter=1 "net.ipv4.conf.$VA.rp_filter=1" \
	"net.ipv4.conf.$VA.arp_ignore=8"

"$BIN/wbsim" gen --symbols 40 --messages 60k --seed 9 --itch "$TMP/s.itch" --truth "$TMP/truth.json" --quiet
ip netns exec "$NX" "$BIN/wbsim" serve --from-itch "$TMP/s.itch" --soup 10.9.0.1:9001 --soup-user wb \
	--soup-pass secret --quiet > "$TMP/server.out" 2>&1 &
SERVER_PID=$!
printf 'wb:secret\n' > "$TMP/creds"
chmod 600 "$TMP/creds"
cat > "$TMP/cfg.yaml" <<YAML
dpdk:
  file_prefix: $PREFIX
  eal_args: ["--no-huge", "-m", "512", "--no-pci", "--no-shconf"]
ports:
  - { name: wire0, device: "net_af_packet0,iface=$VA,framecnt=4096", rx_queues: 1, tx_queues: 1,
      mempool_size: 8191, exception_tap: $TP, exception_pps: 20000 }
cores:
  control: 0
  workers: [ { name: w0, lcore: 1, rx: [ { port: wire0, queue: 0 } ] } ]
feeds:
  - { name: itch-tcp, protocol: itch50-soupbintcp, line_a: 10.9.0.1:9001, port: wire0, queue: 0,
      credentials: $TMP/creds,
      book: { max_orders: 200000, max_levels: 50000, max_symbols: 1024 } }
control: { socket: $TMP/wb.sock }
YAML
ip netns exec "$NA" "$BIN/wirebookd" -c "$TMP/cfg.yaml" --no-capture -q --summary-json "$TMP/s.json" \
	--books-json "$TMP/books.json" 2> "$TMP/d.err" &
DAEMON_PID=$!
for _ in $(seq 100); do ip -n "$NA" link show "$TP" > /dev/null 2>&1 && break; sleep 0.1; done
ip -n "$NA" link show "$TP" > /dev/null 2>&1 || fail "exception interface $TP never appeared: $(cat "$TMP/d.err")"
ip -n "$NA" addr add 10.9.0.2/24 dev "$TP"
ip -n "$NA" link set "$TP" up
ip netns exec "$NA" ethtool -K "$TP" tx off > /dev/null 2>&1 || true

# ARP and ping to the appliance's address, answered by the kernel through the exception path.
ip netns exec "$NX" ping -c 3 -i 0.2 -W 2 10.9.0.2 > "$TMP/ping.txt" || fail "ping through the exception path: $(cat "$TMP/ping.txt")"
echo "ok: $(grep -o '[0-9]* received' "$TMP/ping.txt") of 3 pings to 10.9.0.2"
ip -n "$NX" neigh show 10.9.0.2 | grep -q lladdr || fail "no ARP entry for 10.9.0.2"
echo "ok: ARP resolved 10.9.0.2"

want=$(jget "$TMP/truth.json" "j['messages']")
got=0
for _ in $(seq 300); do
	got=$("$BIN/wbctl" -s "$TMP/wb.sock" --json stats 2> /dev/null | python3 -c \
		'import json,sys; print(json.load(sys.stdin)["feeds"][0]["counters"].get("messages_total", 0))' 2> /dev/null || echo 0)
	[ "$got" = "$want" ] && break
	sleep 0.2
done
expect_eq "messages read off the NIC ring" "$got" "$want"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || fail "wirebookd exited $?"
DAEMON_PID=
grep -q "logged-in" "$TMP/d.err" || fail "the kernel's client never logged in: $(cat "$TMP/d.err")"
echo "ok: $(grep -m1 "logged-in" "$TMP/d.err")"
W="j['workers'][0]"
echo "info: host->kernel $(jget "$TMP/s.json" "$W['host_to_kernel_packets_total']"), kernel->wire $(jget "$TMP/s.json" "$W['kernel_to_wire_packets_total']") frames"
[ "$(jget "$TMP/s.json" "$W['kernel_to_wire_packets_total']")" -gt 0 ] || fail "nothing went from the kernel to the wire"
python3 "$SRC/tests/dataplane/compare_books.py" "$TMP/truth.json" "$TMP/books.json" || fail "books differ from the ground truth"
