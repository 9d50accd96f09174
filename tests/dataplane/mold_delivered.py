#!/usr/bin/env python3
"""mold_delivered.py TOTAL A.pcap [B.pcap ...]: an independent reader of MoldUDP64 pcaps.
Prints how many of the sequences 1..TOTAL no file delivers as a complete message block
(what a feed handler without retransmission must declare lost). Handles classic pcap in
micro- or nanosecond form, Ethernet with optional 802.1Q tags, IPv4, UDP."""
import struct, sys

def payloads(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack_from("<I", data, 0)[0]
    if magic not in (0xA1B2C3D4, 0xA1B23C4D):
        raise SystemExit(f"{path}: not a little-endian classic pcap")
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack_from("<IIII", data, off)
        frame = data[off + 16: off + 16 + incl]
        off += 16 + incl
        p = 12
        et = struct.unpack_from("!H", frame, p)[0] if len(frame) >= 14 else 0
        while et in (0x8100, 0x88A8) and len(frame) >= p + 6:
            p += 4
            et = struct.unpack_from("!H", frame, p)[0]
        p += 2
        if et != 0x0800 or len(frame) < p + 20 or frame[p + 9] != 17:
            continue
        ihl = (frame[p] & 15) * 4
        tot = struct.unpack_from("!H", frame, p + 2)[0]
        udp = frame[p + ihl: p + tot]
        if len(udp) < 8 or p + tot > len(frame):
            continue
        ulen = struct.unpack_from("!H", udp, 4)[0]
        if ulen < 8 or ulen > len(udp):
            continue
        yield udp[8:ulen]

def delivered(path, session=None):
    got = set()
    for pl in payloads(path):
        if len(pl) < 20:
            continue
        seq, count = struct.unpack_from("!QH", pl, 10)
        if count in (0, 0xFFFF) or (session and pl[:10] != session) or seq != 0 and False:
            continue
        o = 20
        for i in range(count):
            if o + 2 > len(pl):
                break
            n = struct.unpack_from("!H", pl, o)[0]
            if o + 2 + n > len(pl):
                break
            got.add(seq + i)
            o += 2 + n
    return got

total = int(sys.argv[1])
seen = set()
for path in sys.argv[2:]:
    seen |= delivered(path, session=None)
print(sum(1 for s in range(1, total + 1) if s not in seen))
