#!/usr/bin/env bash
# Daemon lifecycle: control socket while holding after a replay, a second daemon on the
# same socket refused, malformed requests, SIGTERM during a replay exits 0 and leaves
# no socket, no lock and no stuck thread.
source "$(dirname "$0")/lib.sh"
make_config "$TMP/cfg.yaml"
python3 "$SRC/tests/dataplane/make_pcap.py" "$TMP/in.pcap" 7 > "$TMP/expect.json"

"$BIN/wirebookd" -c "$TMP/cfg.yaml" --replay "$TMP/in.pcap" --no-capture --hold -q 2> "$TMP/d1.err" &
DAEMON_PID=$!
for _ in $(seq 100); do [ -S "$TMP/wb.sock" ] && "$BIN/wbctl" -s "$TMP/wb.sock" status > /dev/null 2>&1 && break; sleep 0.1; done
"$BIN/wbctl" -s "$TMP/wb.sock" status > "$TMP/status.txt" || fail "wbctl status"
grep -q "worker" "$TMP/status.txt" || fail "status lists no worker"
"$BIN/wbctl" -s "$TMP/wb.sock" --json status > "$TMP/status.json"
expect_eq "status threads" "$(jget "$TMP/status.json" "len(j['threads'])")" "3"

# Same socket path, different DPDK prefix: refused with a clear message.
sed "s|file_prefix: $PREFIX|file_prefix: ${PREFIX}b|" "$TMP/cfg.yaml" > "$TMP/cfg2.yaml"
if "$BIN/wirebookd" -c "$TMP/cfg2.yaml" --replay "$TMP/in.pcap" --no-capture -q 2> "$TMP/d2.err"; then
	fail "second daemon on the same socket started"
fi
grep -q "another wirebookd is already serving" "$TMP/d2.err" || fail "unclear refusal: $(cat "$TMP/d2.err")"
echo "ok: second daemon on the same socket refused: $(grep -m1 "another wirebookd" "$TMP/d2.err")"
# Same DPDK prefix, different socket: refused too.
sed "s|$TMP/wb.sock|$TMP/wb2.sock|" "$TMP/cfg.yaml" > "$TMP/cfg3.yaml"
if "$BIN/wirebookd" -c "$TMP/cfg3.yaml" --replay "$TMP/in.pcap" --no-capture -q 2> "$TMP/d3.err"; then
	fail "second daemon on the same DPDK prefix started"
fi
grep -q "same DPDK file prefix" "$TMP/d3.err" || fail "unclear refusal: $(cat "$TMP/d3.err")"
echo "ok: second daemon on the same prefix refused"

python3 "$SRC/tests/dataplane/ctl_client.py" "$TMP/wb.sock" || fail "control requests"
# The dataplane never noticed: the counts are still exact.
"$BIN/wbctl" -s "$TMP/wb.sock" --json stats > "$TMP/stats.json"
expect_eq "line A after control abuse" "$(jget "$TMP/stats.json" "j['feeds'][0]['lines']['A']['packets_total']")" \
	"$(jget "$TMP/expect.json" "j['line_A_packets']")"

kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"; rc=$?
DAEMON_PID=
expect_eq "exit status after SIGTERM while holding" "$rc" "0"
[ ! -e "$TMP/wb.sock" ] || fail "socket left behind"
[ ! -e "$TMP/wb.sock.lock" ] || fail "socket lock left behind"

# SIGTERM in the middle of a long replay.
python3 -c "
import sys, struct
sys.path.insert(0, '$SRC/tests/dataplane')
import make_pcap as m
f = m.udp_frame(m.LINE_A, m.mold_heartbeat(1))
rec = struct.pack('<IIII', 1763650800, 0, len(f), len(f)) + f
with open('$TMP/big.pcap', 'wb') as fh:
    fh.write(struct.pack('<IHHiIII', 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    fh.write(rec * 8000000)
"
"$BIN/wirebookd" -c "$TMP/cfg.yaml" --replay "$TMP/big.pcap" --no-capture -q --summary-json "$TMP/big.json" &
DAEMON_PID=$!
# Signal once packets are flowing: 8M packets take far longer to replay than one request.
for _ in $(seq 300); do
	n=$("$BIN/wbctl" -s "$TMP/wb.sock" --json stats 2> /dev/null | python3 -c \
		'import json,sys; print(json.load(sys.stdin)["workers"][0]["rx_packets_total"])' 2> /dev/null || echo 0)
	[ "$n" -gt 0 ] && break
	sleep 0.05
done
kill -TERM "$DAEMON_PID"
timeout 20 tail --pid="$DAEMON_PID" -f /dev/null || fail "daemon did not exit within 20 s of SIGTERM"
wait "$DAEMON_PID"; rc=$?
DAEMON_PID=
expect_eq "exit status after SIGTERM during replay" "$rc" "0"
[ ! -e "$TMP/wb.sock" ] || fail "socket left behind after SIGTERM"
got=$(jget "$TMP/big.json" "j['workers'][0]['rx_packets_total']")
[ "$got" -gt 0 ] && [ "$got" -lt 8000000 ] || fail "SIGTERM did not land mid-replay: $got of 8000000 packets"
echo "ok: stopped after $got of 8000000 packets"
