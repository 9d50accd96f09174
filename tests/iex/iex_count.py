#!/usr/bin/env python3
"""Independent reader of IEX-TP v1 captures (DEEP 1.0, TOPS 1.6): the ground truth the
C feed handler is compared against. Python 3 standard library only.

Reads classic pcap or pcapng (optionally gzip-compressed), Ethernet (+VLAN) / IPv4 / UDP,
IEX-TP segments and the message type byte of every block. Applies the same sequencing
rules as dataplane/feed_iex.c (docs/iex.md): a message whose sequence was already seen
is a duplicate; a segment whose first sequence is 1 while more was expected under the
same session is a sequence restart, which clears every book. Builds price-level books
(DEEP '8'/'5') and top-of-book books (TOPS 'Q') and writes a JSON summary:

  {"packets": N, "truncated_records": N, "messages": N, "types": {"8": N, ...},
   "symbols": N, "restarts": N, "gaps": N, "gap_messages": N, "duplicates": N,
   "books": {"SYM": {"bids": [[price, size], ...best first], "asks": [...]}}}

Usage: iex_count.py CAPTURE [OUT.json]
"""
import gzip
import json
import struct
import sys


def pcap_records(data):
    """Yields (captured bytes, original length, linktype) per record."""
    magic = data[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        yield from pcapng_records(data)
        return
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        raise ValueError("not a pcap or pcapng file")
    linktype = struct.unpack_from(end + "I", data, 20)[0]
    off = 24
    while off + 16 <= len(data):
        _, _, incl, orig = struct.unpack_from(end + "IIII", data, off)
        off += 16
        rec = data[off:off + incl]
        off += incl
        yield rec, (orig if len(rec) == incl else orig + 1), linktype


def pcapng_records(data):
    end = "<"
    linktypes = []
    off = 0
    while off + 12 <= len(data):
        btype, blen = struct.unpack_from(end + "II", data, off)
        if btype == 0x0A0D0D0A:
            bom = struct.unpack_from("<I", data, off + 8)[0]
            end = "<" if bom == 0x1A2B3C4D else ">"
            btype, blen = struct.unpack_from(end + "II", data, off)
            linktypes = []
        if blen < 12:
            break
        body = data[off + 8:off + blen - 4]
        cut = off + blen > len(data)
        if btype == 1:
            linktypes.append(struct.unpack_from(end + "H", body, 0)[0])
        elif btype == 6 and len(body) >= 20:
            iface, _, _, caplen, origlen = struct.unpack_from(end + "IIIII", body, 0)
            rec = body[20:20 + caplen]
            short = cut or len(rec) < caplen
            yield rec, (origlen + 1 if short else origlen), linktypes[iface] if iface < len(linktypes) else 1
        elif btype == 3 and len(body) >= 4:
            origlen = struct.unpack_from(end + "I", body, 0)[0]
            rec = body[4:4 + origlen]
            yield rec, (origlen + 1 if cut else origlen), linktypes[0] if linktypes else 1
        off += blen


def udp_payload(frame, linktype):
    """UDP payload of an Ethernet/IPv4 frame, or None (not UDP, or cut short)."""
    if linktype != 1 or len(frame) < 14:
        return None
    off = 12
    etype = struct.unpack_from(">H", frame, off)[0]
    while etype in (0x8100, 0x88A8) and len(frame) >= off + 6:
        off += 4
        etype = struct.unpack_from(">H", frame, off)[0]
    off += 2
    if etype != 0x0800 or len(frame) < off + 20:
        return None
    ihl = (frame[off] & 0x0F) * 4
    total = struct.unpack_from(">H", frame, off + 2)[0]
    if frame[off + 9] != 17 or len(frame) < off + total:
        return None
    udp = off + ihl
    ulen = struct.unpack_from(">H", frame, udp + 4)[0]
    return frame[udp + 8:udp + ulen]


class Books:
    def __init__(self):
        self.books = {}

    def side(self, sym, side):
        return self.books.setdefault(sym, ({}, {}))[0 if side == "B" else 1]

    def set_level(self, sym, side, price, size):
        levels = self.side(sym, side)
        if size == 0:
            levels.pop(price, None)
        else:
            levels[price] = size

    def set_top(self, sym, side, price, size):
        levels = self.side(sym, side)
        levels.clear()
        if size != 0 and price != 0:
            levels[price] = size

    def clear(self):
        for bids, asks in self.books.values():
            bids.clear()
            asks.clear()

    def dump(self):
        out = {}
        for sym, (bids, asks) in sorted(self.books.items()):
            out[sym] = {"bids": [[p, bids[p]] for p in sorted(bids, reverse=True)],
                        "asks": [[p, asks[p]] for p in sorted(asks)]}
        return out


def main():
    path = sys.argv[1]
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    res = {"packets": 0, "truncated_records": 0, "messages": 0, "types": {},
           "symbols": 0, "restarts": 0, "gaps": 0, "gap_messages": 0, "duplicates": 0,
           "heartbeats": 0}
    books = Books()
    symbols = set()
    session = None
    expected = None
    for frame, orig, linktype in pcap_records(raw):
        if len(frame) < orig:
            res["truncated_records"] += 1
            continue
        seg = udp_payload(frame, linktype)
        if seg is None or len(seg) < 40:
            continue
        res["packets"] += 1
        _, _, _, _, sid, plen, count, _, first, _ = struct.unpack_from("<BBHIIHHqqq", seg, 0)
        if count == 0:
            res["heartbeats"] += 1
        if session != sid:
            session, expected = sid, first
        elif first == 1 and expected > 1:
            res["restarts"] += 1
            books.clear()
            expected = 1
        if count == 0 and first > expected:
            res["gaps"] += 1
            res["gap_messages"] += first - expected
            expected = first
        q = 40
        for k in range(count):
            mlen = struct.unpack_from("<H", seg, q)[0]
            msg = seg[q + 2:q + 2 + mlen]
            q += 2 + mlen
            seq = first + k
            if seq < expected:
                res["duplicates"] += 1
                continue
            if seq > expected:
                res["gaps"] += 1
                res["gap_messages"] += seq - expected
            expected = seq + 1
            t = chr(msg[0])
            res["messages"] += 1
            res["types"][t] = res["types"].get(t, 0) + 1
            if t == "S":
                continue
            sym = msg[10:18].decode("ascii").rstrip(" ")
            symbols.add(sym)
            if t in "85":
                size = struct.unpack_from("<I", msg, 18)[0]
                price = struct.unpack_from("<q", msg, 22)[0]
                books.set_level(sym, "B" if t == "8" else "S", price, size)
            elif t == "Q":
                bsize, bpx, apx, asize = struct.unpack_from("<IqqI", msg, 18)
                books.set_top(sym, "B", bpx, bsize)
                books.set_top(sym, "S", apx, asize)
    res["symbols"] = len(symbols)
    res["books"] = books.dump()
    out = open(sys.argv[2], "w") if len(sys.argv) > 2 else sys.stdout
    json.dump(res, out, separators=(",", ":"))
    out.write("\n")


if __name__ == "__main__":
    main()
