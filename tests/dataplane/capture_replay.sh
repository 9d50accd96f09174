#!/usr/bin/env bash
# A replay writes its capture like a live run: after replaying a generated session with
# raw capture on, `wbcap verify` says whole, `wbcap book` at the end equals the live book at
# the end for every symbol, and the raw-packet pcapng export decodes in tshark to the same
# feed packets as the input pcaps. A replay outrunning its persister (a 1024-event ring:
# the persister compresses a 1 MiB block while 64 KiB of events fill it) waits for room
# instead of dropping: every event is captured.
source "$(dirname "$0")/lib.sh"
[ -x "$BIN/wbsim" ] && [ -x "$BIN/wbcap" ] || { echo "SKIP: wbsim/wbcap not built"; exit 77; }
make_config "$TMP/cfg.yaml"
sed -i 's/raw_capture: false/raw_capture: true/' "$TMP/cfg.yaml"
"$BIN/wbsim" gen --symbols 60 --messages 200k --seed 21 --out-a "$TMP/A.pcap" --out-b "$TMP/B.pcap" \
	--truth "$TMP/truth.json" --loss-a 0.003 --quiet
"$BIN/wirebookd" -c "$TMP/cfg.yaml" --replay "$TMP/A.pcap" --replay "$TMP/B.pcap" -q \
	--summary-json "$TMP/s.json" --books-json "$TMP/books.json" || fail "wirebookd exited $?"
expect_eq "ring drops" "$(jget "$TMP/s.json" "j['workers'][0]['ring_drops_events_total']")" "0"
expect_eq "events captured" "$(jget "$TMP/s.json" "j['persisters'][0]['events_in_total']")" \
	"$(jget "$TMP/s.json" "j['workers'][0]['events_total']")"
[ "$(jget "$TMP/s.json" "j['latency_book_to_durable']['count']")" -gt 0 ] || fail "no book-to-durable latency recorded"
echo "ok: book to durable: $(jget "$TMP/s.json" "j['latency_book_to_durable']")"
"$BIN/wbcap" verify "$TMP/capture" > "$TMP/verify.txt" || fail "wbcap verify: $(tail -3 "$TMP/verify.txt")"
echo "ok: wbcap verify: $(tail -1 "$TMP/verify.txt")"

# wbcap book at the end == the live book at the end, full depth, every symbol.
python3 - "$BIN/wbcap" "$TMP/capture" "$TMP/books.json" <<'PY' || fail "capture books differ from live books"
import json, subprocess, sys
wbcap, cap, books = sys.argv[1:4]
live = json.load(open(books))["feeds"][0]["symbols"]
bad = 0
for s in live:
    out = subprocess.run([wbcap, "book", cap, s["symbol"], "--depth", "100000", "--json"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        bad += 1
        print("FAIL", s["symbol"], out.stderr.strip())
        continue
    got = json.loads(out.stdout)
    for side in ("bids", "asks"):
        want = [(l["price"], l["shares"], l["orders"]) for l in s[side]]
        have = [(l["price"], l["shares"], l["orders"]) for l in got[side]]
        if want != have:
            bad += 1
            print("MISMATCH", s["symbol"], side, want[:3], have[:3])
print(f"ok: {len(live) - bad} of {len(live)} capture books equal the live books")
sys.exit(1 if bad else 0)
PY

# Raw packets: the pcapng export holds exactly the feed datagrams of the inputs.
if command -v tshark > /dev/null; then
	"$BIN/wbcap" pcap "$TMP/capture" -o "$TMP/raw.pcapng" > /dev/null
	for f in A B raw; do
		ext=pcap; [ $f = raw ] && ext=pcapng
		tshark -r "$TMP/$f.$ext" -Y udp.dstport==26477 -T fields -e ip.dst -e udp.payload 2>/dev/null | sort > "$TMP/$f.txt"
	done
	sort -m "$TMP/A.txt" "$TMP/B.txt" > "$TMP/in.txt"
	cmp -s "$TMP/in.txt" "$TMP/raw.txt" || fail "raw export differs: $(wc -l < "$TMP/in.txt") input vs $(wc -l < "$TMP/raw.txt") exported datagrams"
	echo "ok: raw export = input: $(wc -l < "$TMP/raw.txt") datagrams, same destinations and payloads"
fi

# A persister slower than the replay: the worker waits for room, nothing is dropped.
make_config "$TMP/slow.yaml"
sed -i -e 's/ring_size: 1048576/ring_size: 1024/' -e "s|$TMP/capture|$TMP/slowcap|" "$TMP/slow.yaml"
grep -q "ring_size: 1024" "$TMP/slow.yaml" || fail "slow config not made"
"$BIN/wirebookd" -c "$TMP/slow.yaml" --replay "$TMP/A.pcap" --replay "$TMP/B.pcap" -q \
	--summary-json "$TMP/slow.json" || fail "wirebookd (slow persister) exited $?"
waits=$(jget "$TMP/slow.json" "j['workers'][0]['ring_waits_total']")
[ "$waits" -gt 0 ] || fail "the replay never waited for the 1024-event ring (ring_waits_total $waits)"
expect_eq "ring drops, slow persister" "$(jget "$TMP/slow.json" "j['workers'][0]['ring_drops_events_total']")" "0"
expect_eq "events captured, slow persister" "$(jget "$TMP/slow.json" "j['persisters'][0]['events_in_total']")" \
	"$(jget "$TMP/slow.json" "j['workers'][0]['events_total']")"
"$BIN/wbcap" verify "$TMP/slowcap" > "$TMP/slowverify.txt" || fail "wbcap verify (slow): $(tail -3 "$TMP/slowverify.txt")"
echo "ok: slow persister: $waits waits, $(jget "$TMP/slow.json" "j['workers'][0]['ring_wait_ns_total']") ns waited; $(tail -1 "$TMP/slowverify.txt")"
