#!/usr/bin/env python3
"""Writes a pcap with a known number of frames of every class the dataplane counts, and
prints the expected counters as JSON. Independent of the C code on purpose."""
import json, random, struct, sys

LINE_A = ("233.54.12.111", 26477)
LINE_B = ("233.49.196.111", 26477)
OTHER = ("239.1.2.3", 5000)

def ip2b(s):
    return bytes(int(x) for x in s.split("."))

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF

def mac_for(group):
    o = ip2b(group)
    return bytes([0x01, 0x00, 0x5E, o[1] & 0x7F, o[2], o[3]])

def udp_frame(dst, payload, src="10.1.1.1", sport=40000, vlan=None, frag=0, bad_ip_sum=False, proto=17):
    udp = struct.pack("!HHHH", sport, dst[1], 8 + len(payload), 0) + payload
    pseudo = ip2b(src) + ip2b(dst[0]) + struct.pack("!BBH", 0, 17, len(udp))
    if proto == 17:
        c = csum(pseudo + udp) or 0xFFFF
        udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, frag, 32, proto, 0, ip2b(src), ip2b(dst[0]))
    s = csum(ip) ^ (0x1234 if bad_ip_sum else 0)
    ip = ip[:10] + struct.pack("!H", s) + ip[12:]
    eth = mac_for(dst[0]) + bytes([2, 0, 0, 0, 0, 1])
    if vlan is not None:
        eth += struct.pack("!HH", 0x8100, vlan)
    return eth + struct.pack("!H", 0x0800) + ip + udp

def mold_heartbeat(seq):
    return b"TESTSESS01" + struct.pack("!QH", seq, 0)

def arp():
    return b"\xff" * 6 + bytes([2, 0, 0, 0, 0, 9]) + struct.pack("!H", 0x0806) + bytes(28)

def main():
    out = sys.argv[1]
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    r = random.Random(seed)
    n = dict(a=r.randint(50, 400), b=r.randint(50, 400), vlan_a=r.randint(1, 30), unmatched=r.randint(10, 200),
             arp=r.randint(1, 20), icmp=r.randint(1, 20), frag=r.randint(1, 20), bad_sum=r.randint(1, 20),
             trunc=r.randint(1, 20))
    frames = []
    for _ in range(n["a"]):
        frames.append(udp_frame(LINE_A, mold_heartbeat(1)))
    for _ in range(n["vlan_a"]):
        frames.append(udp_frame(LINE_A, mold_heartbeat(1), vlan=100))
    for _ in range(n["b"]):
        frames.append(udp_frame(LINE_B, mold_heartbeat(1)))
    for _ in range(n["unmatched"]):
        frames.append(udp_frame(OTHER, b"x" * r.randint(0, 100)))
    for _ in range(n["arp"]):
        frames.append(arp())
    for _ in range(n["icmp"]):
        frames.append(udp_frame(LINE_A, b"\x08\x00" + bytes(30), proto=1))
    for _ in range(n["frag"]):
        frames.append(udp_frame(LINE_A, mold_heartbeat(1), frag=0x2000))
    for _ in range(n["bad_sum"]):
        frames.append(udp_frame(LINE_B, mold_heartbeat(1), bad_ip_sum=True))
    for _ in range(n["trunc"]):
        f = udp_frame(LINE_A, mold_heartbeat(1))
        frames.append(f[: r.randint(20, len(f) - 1)])
    r.shuffle(frames)
    with open(out, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        t = 1763650800
        for i, f in enumerate(frames):
            fh.write(struct.pack("<IIII", t + i // 1000, (i % 1000) * 1000, len(f), len(f)))
            fh.write(f)
    expect = {
        "line_A_packets": n["a"] + n["vlan_a"],
        "line_B_packets": n["b"],
        "unmatched": n["unmatched"],
        "not_ipv4": n["arp"],
        "not_udp": n["icmp"],
        "ip_fragment": n["frag"],
        "bad_checksum": n["bad_sum"],
        "bad_length": n["trunc"],
        "total": len(frames),
    }
    print(json.dumps(expect))

if __name__ == "__main__":
    main()
