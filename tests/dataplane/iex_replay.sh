#!/usr/bin/env bash
# The real IEX DEEP capture (2017, 121,314 packets, 391,999 messages, 7,802 symbols)
# replayed through the DPDK dataplane with --replay: per-type message counts equal those of
# an independent reader (tests/iex/iex_count.py), and every symbol's final book equals the
# reader's reconstruction. Then the TOPS capture, likewise for quotes.
source "$(dirname "$0")/lib.sh"
SHARED=${WB_SHARED_DIR:-$SRC/../shared}
DEEP=$SHARED/data/iex/DEEP10.pcap.gz
TOPS=$SHARED/data/iex/TOPS16.pcapng.gz
[ -f "$DEEP" ] || { echo "SKIP: $DEEP absent (the real captures live in ../shared/data)"; exit 77; }

run_capture() { # NAME CONFIG GZ-CAPTURE
	local name=$1 cfg=$2 gz=$3
	gzip -dc "$gz" > "$TMP/$name.pcap"
	sed -e "s|file_prefix: [a-z-]*|file_prefix: $PREFIX|" -e "s|directory: .*|directory: $TMP/cap-$name|" \
	    -e "s|socket: .*|socket: $TMP/wb.sock|" "$cfg" > "$TMP/$name.yaml"
	"$BIN/wirebookd" -c "$TMP/$name.yaml" --replay "$TMP/$name.pcap" --no-capture -q \
		--summary-json "$TMP/$name-s.json" --books-json "$TMP/$name-books.json" || fail "wirebookd exited $?"
	python3 "$SRC/tests/iex/iex_count.py" "$TMP/$name.pcap" "$TMP/$name-ref.json" > /dev/null
	python3 - "$TMP/$name-s.json" "$TMP/$name-books.json" "$TMP/$name-ref.json" <<'PY' || fail "$name differs from the independent reader"
import json, sys
s, b, ref = (json.load(open(p)) for p in sys.argv[1:4])
feed = s["feeds"][0]
c = feed["counters"]
ok = True
def check(name, got, want):
    global ok
    print(("ok: " if got == want else "FAIL: ") + f"{name}: got {got}, want {want}")
    ok = ok and got == want
check("messages", c.get("messages_total"), ref["messages"])
names = {"S": "system_event", "D": "security_directory", "H": "trading_status", "I": "retail_liquidity",
         "O": "operational_halt", "P": "short_sale_price_test", "E": "security_event", "8": "price_level_buy",
         "5": "price_level_sell", "T": "trade_report", "X": "official_price", "B": "trade_break",
         "A": "auction_information", "Q": "quote_update"}
for t, n in sorted(ref["types"].items()):
    key = names.get(t, "unknown") + "_messages_total"
    check(f"type {t} ({key})", c.get(key), n)
check("symbols", feed["books"]["symbols"], ref["symbols"])
check("sequence restarts", c.get("sequence_resets_total"), ref["restarts"])
check("gaps", c.get("gaps_total", 0), ref["gaps"])
# a restart empties every book at once (thousands of level events in one call): none lost
check("events overflowed", feed["books"]["event_overflow_total"], 0)
check("events dropped at the ring", sum(w["ring_drops_events_total"] for w in s["workers"]), 0)
check("worker batch overflows", sum(w["event_batch_overflow_total"] for w in s["workers"]), 0)
def levels(side):
    return [[round(float(l["price"]) * 10000), l["shares"]] for l in side]
got = {x["symbol"]: x for x in b["feeds"][0]["symbols"]}
bad = 0
for sym, want in ref["books"].items():
    g = got.get(sym, {"bids": [], "asks": []})
    if levels(g["bids"]) != [[p, q] for p, q in want["bids"]] or levels(g["asks"]) != [[p, q] for p, q in want["asks"]]:
        bad += 1
        if bad < 3:
            print("MISMATCH", sym, want, g)
extra = [k for k, v in got.items() if k not in ref["books"] and (v["bids"] or v["asks"])]
check("books differing from the reader", bad, 0)
check("non-empty books the reader has not", len(extra), 0)
print(f"info: {len(ref['books'])} books compared")
sys.exit(0 if ok else 1)
PY
}
run_capture deep "$SRC/examples/iex-deep.yaml" "$DEEP"
[ -f "$TOPS" ] && run_capture tops "$SRC/examples/iex-tops.yaml" "$TOPS"
