#!/usr/bin/env python3
"""compare_books.py TRUTH BOOKS [FEED]: every symbol of the ground truth must have the same
bids and asks, level by level (price, shares, orders), in the daemon's --books-json."""
import json, sys
truth = json.load(open(sys.argv[1])); books = json.load(open(sys.argv[2]))
got = {s['symbol']: s for s in books['feeds'][0]['symbols']}
bad = 0
for s in truth['symbols']:
    g = got.get(s['symbol'])
    if g is None or g['bids'] != s['bids'] or g['asks'] != s['asks']:
        bad += 1
        if bad <= 3:
            print("MISMATCH", s['symbol'], json.dumps(s)[:300], "\n got", json.dumps(g)[:300])
print(f"{len(truth['symbols'])} symbols, {bad} mismatched")
sys.exit(1 if bad else 0)
