#!/usr/bin/env bash
# End-to-end benchmark: wbsim live sends a session at several rates through net_af_packet
# on a veth pair (test network namespaces) into a live wirebookd. For each rate: messages
# applied, gaps, declared gaps, and the worker's receive-to-book latency per packet (TSC at
# rx burst to book updated and events on the ring) as p50/p99/p99.9/max. Prints the highest
# rate with zero loss and zero gaps. Run as root: bench/live_e2e.sh [BUILD_DIR] [RATES...]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build}; shift || true
RATES=${*:-"10000 50000 100000 200000 300000"}
BIN=$BUILD/bin
TMP=$(mktemp -d /tmp/wbbench.XXXXXX)
NX=bx$$ NA=ba$$ VX=bvx$$ VA=bva$$
cleanup() { ip netns del "$NX" 2> /dev/null || true; ip netns del "$NA" 2> /dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
ip netns add "$NX"; ip netns add "$NA"
ip link add "$VX" type veth peer name "$VA"
ip link set "$VX" netns "$NX"; ip link set "$VA" netns "$NA"
ip -n "$NX" link set "$VX" up; ip -n "$NA" link set "$VA" up
"$BIN/wbsim" gen --symbols 500 --messages 1M --seed 7 --out-a "$TMP/A.pcap" --itch "$TMP/s.itch" --truth "$TMP/t.json" --quiet
N=$(python3 -c "import json; print(json.load(open('$TMP/t.json'))['messages'])")
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cpus, $(uname -r), $(date -u +%F)"
echo "session: $N messages on line A; wbsim live on core 0, wirebookd worker on core 1, control on core 0"
printf '%10s %10s %10s %6s %9s %9s %9s %9s %9s\n' "pps" "msgs/s" "applied" "gaps" "declared" "p50 ns" "p99 ns" "p99.9 ns" "max ns"
best=0
for rate in $RATES; do
	cat > "$TMP/cfg.yaml" <<YAML
dpdk: { file_prefix: wbbench$$, eal_args: ["--no-huge", "-m", "512", "--no-pci", "--no-shconf"] }
ports: [ { name: wire0, device: "net_af_packet0,iface=$VA,framecnt=8192", mempool_size: 32767 } ]
cores: { control: 0, workers: [ { name: w0, lcore: 1, rx: [ { port: wire0, queue: 0 } ], ring_size: 4194304 } ] }
feeds:
  - { name: itch, protocol: itch50-moldudp64, line_a: 233.54.12.111:26477, port: wire0, queue: 0,
      book: { max_orders: 2000000, max_levels: 500000, max_symbols: 1024 }, recovery: { gap_timeout_ms: 500 } }
control: { socket: $TMP/wb.sock }
YAML
	ip netns exec "$NA" "$BIN/wirebookd" -c "$TMP/cfg.yaml" --no-capture -q --summary-json "$TMP/s.json" 2> /dev/null &
	D=$!
	for _ in $(seq 100); do "$BIN/wbctl" -s "$TMP/wb.sock" status > /dev/null 2>&1 && break; sleep 0.1; done
	ip netns exec "$NX" "$BIN/wbsim" live --port "net_af_packet0,iface=$VX,framecnt=8192" --pcap "$TMP/A.pcap" \
		--itch "$TMP/s.itch" --rate "$rate" --linger-ms 1000 --core 0 --file-prefix wbbenchsim$$ > "$TMP/live.out" 2>&1
	sleep 1
	kill -TERM $D; wait $D || true
	python3 - "$TMP/s.json" "$rate" "$N" "$TMP/live.out" <<'PY'
import json, sys, re
s = json.load(open(sys.argv[1])); rate = int(sys.argv[2]); n = int(sys.argv[3])
c = s["feeds"][0]["counters"]; l = s["latency_rx_to_book"]
secs = float(re.search(r"in ([0-9.]+) s", open(sys.argv[4]).read()).group(1))
print("%10d %10.0f %10d %6d %9d %9d %9d %9d %9d" % (rate, n / secs, c["messages_total"], c["gaps_total"],
      c["gaps_declared_total"], l["p50_ns"], l["p99_ns"], l["p999_ns"], l["max_ns"]))
open(sys.argv[1] + ".ok", "w").write("1" if c["messages_total"] == n and c["gaps_total"] == 0 else "0")
PY
	[ "$(cat "$TMP/s.json.ok")" = 1 ] && best=$rate
done
echo "highest rate with zero loss and zero gaps: $best packets/s"
