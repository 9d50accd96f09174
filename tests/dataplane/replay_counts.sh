#!/usr/bin/env bash
# A pcap with a known number of frames of every class, replayed through the real DPDK
# dataplane (net_pcap): per-line, unmatched and per-drop-class counters must be exact.
source "$(dirname "$0")/lib.sh"
make_config "$TMP/cfg.yaml"
for seed in 1 2; do
	python3 "$SRC/tests/dataplane/make_pcap.py" "$TMP/in.pcap" $seed > "$TMP/expect.json"
	"$BIN/wirebookd" -c "$TMP/cfg.yaml" --replay "$TMP/in.pcap" --no-capture --summary-json "$TMP/s.json" -q \
		|| fail "wirebookd exited $?"
	E() { jget "$TMP/expect.json" "j['$1']"; }
	S() { jget "$TMP/s.json" "$1"; }
	expect_eq "line A packets" "$(S "j['feeds'][0]['lines']['A']['packets_total']")" "$(E line_A_packets)"
	expect_eq "line B packets" "$(S "j['feeds'][0]['lines']['B']['packets_total']")" "$(E line_B_packets)"
	expect_eq "unmatched" "$(S "j['unmatched_packets_total']")" "$(E unmatched)"
	P="j['workers'][0]['packets']"
	expect_eq "not ipv4" "$(S "$P['not_ipv4_packets_total']")" "$(E not_ipv4)"
	expect_eq "not udp" "$(S "$P['not_udp_packets_total']")" "$(E not_udp)"
	expect_eq "fragments" "$(S "$P['ip_fragment_packets_total']")" "$(E ip_fragment)"
	expect_eq "bad checksum" "$(S "$P['bad_checksum_packets_total']")" "$(E bad_checksum)"
	expect_eq "bad length" "$(S "$P['bad_length_packets_total']")" "$(E bad_length)"
	expect_eq "port rx" "$(S "j['ports'][0]['rx_packets_total']")" "$(E total)"
	expect_eq "worker rx" "$(S "j['workers'][0]['rx_packets_total']")" "$(E total)"
	expect_eq "heartbeats on A" "$(S "j['feeds'][0]['lines']['A']['line_heartbeats_total']")" "$(E line_A_packets)"
done
[ ! -e "$TMP/wb.sock" ] || fail "socket left behind"
