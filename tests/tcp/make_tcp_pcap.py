#!/usr/bin/env python3
"""Writes a pcap of a SoupBinTCP session carrying a real ITCH message stream, as
Ethernet/IPv4/TCP frames (valid checksums) from the server 10.9.0.1:9001 to the client
10.9.0.2:40001 plus the client's ACKs, with the stream cut into random segments and, on
request, retransmissions, overlapping repacketised retransmissions, reordering and lost
segments (retransmitted later, or never). Prints the ground truth as JSON on stdout.
Python standard library only; independent of the C code on purpose.

usage: make_tcp_pcap.py ITCH_FILE OUT.pcap [--seed N] [--retransmit N] [--overlap N]
         [--reorder N] [--lose-filled N] [--late-retransmit N] [--lose-forever] [--reconnect-back N] [--isn N]
         [--heartbeat-every N] [--max-messages N]
"""
import argparse, json, random, struct, sys

SERVER = ("10.9.0.1", 9001)
CLIENT = ("10.9.0.2", 40001)
SESSION = b"  SESSION1"  # 10 bytes, right-justified
MSS = 1460
STEP_NS = 20_000          # between frames
HB_GAP_NS = 1_000_000_000  # server heartbeats when idle: 1 s


def ip2b(s):
    return bytes(int(x) for x in s.split("."))


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def tcp_frame(src, dst, seq, ack, flags, payload=b""):
    hdr = struct.pack("!HHIIBBHHH", src[1], dst[1], seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0)
    pseudo = ip2b(src[0]) + ip2b(dst[0]) + struct.pack("!BBH", 0, 6, len(hdr) + len(payload))
    c = csum(pseudo + hdr + payload)
    tcp = hdr[:16] + struct.pack("!H", c) + hdr[18:] + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, ip2b(src[0]), ip2b(dst[0]))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    smac = bytes([2, 0, 0, 0, 0, 1 if src == SERVER else 2])
    dmac = bytes([2, 0, 0, 0, 0, 2 if src == SERVER else 1])
    return dmac + smac + struct.pack("!H", 0x0800) + ip + tcp


FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def soup(type_, payload=b""):
    return struct.pack("!H", 1 + len(payload)) + type_ + payload


def login_accepted(seq):
    return soup(b"A", SESSION + ("%20d" % seq).encode())


def read_itch(path, limit):
    data = open(path, "rb").read()
    msgs, i = [], 0
    while i + 2 <= len(data) and len(msgs) < limit:
        n = struct.unpack_from("!H", data, i)[0]
        msgs.append(data[i + 2:i + 2 + n])
        i += 2 + n
    return msgs


class Conn:
    """One TCP connection: the server's stream as (offset, length) segments with times."""

    def __init__(self, r, isn, client_isn, client_port):
        self.r, self.isn, self.cisn = r, isn, client_isn
        self.client = (CLIENT[0], client_port)
        self.stream = bytearray()
        self.times = []  # (stream offset, time) when that byte became available

    def add(self, b, t):
        self.times.append((len(self.stream), t))
        self.stream += b

    def time_at(self, off):
        t = self.times[0][1]
        for o, tt in self.times:
            if o > off:
                break
            t = tt
        return t

    def cut(self):
        segs, off = [], 0
        while off < len(self.stream):
            n = min(self.r.randint(1, MSS), len(self.stream) - off)
            segs.append([off, n])
            off += n
        return segs


def build(args):
    r = random.Random(args.seed)
    msgs = read_itch(args.itch, args.max_messages)
    truth = {"messages": len(msgs), "segments": 0, "retransmits": 0, "overlaps": 0, "reordered": 0,
             "lost_filled": 0, "lost_forever_bytes": 0, "lost_forever_offset": None,
             "first_lost_sequence": None, "heartbeats": 0, "connections": 1, "replay_from": None,
             "duplicates_replayed": 0, "isn": args.isn % (1 << 32)}
    frames = []  # (time, frame bytes)
    t0 = 1_700_000_000 * 10**9

    def session_frames(conn, t_start, first_seq, body):
        """SYN handshake, the stream (Login Accepted + body), FIN; with the injections."""
        t = t_start
        frames.append((t, tcp_frame(conn.client, SERVER, conn.cisn, 0, SYN)))
        t += STEP_NS
        frames.append((t, tcp_frame(SERVER, conn.client, conn.isn, conn.cisn + 1, SYN | ACK)))
        t += STEP_NS
        frames.append((t, tcp_frame(conn.client, SERVER, conn.cisn + 1, conn.isn + 1, ACK)))
        conn.add(login_accepted(first_seq), t)
        seqno = first_seq
        for k, m in enumerate(body):
            t += STEP_NS
            conn.add(soup(b"S", m), t)
            seqno += 1
            if args.heartbeat_every and (k + 1) % args.heartbeat_every == 0:
                conn.add(soup(b"H"), t)
                truth["heartbeats"] += 1
        # the session goes quiet: heartbeats once a second, long enough to time any hole out
        for _ in range(3):
            t += HB_GAP_NS
            conn.add(soup(b"H"), t)
            truth["heartbeats"] += 1
        segs = conn.cut()
        truth["segments"] += len(segs)
        plan = [(s[0], s[1], "data") for s in segs]
        if args.lose_forever and conn is conns[0]:
            # a segment in the middle of the ITCH data, never seen again by the dataplane
            i = r.randint(len(plan) // 3, 2 * len(plan) // 3)
            off, n, _ = plan[i]
            plan[i] = (off, n, "lost")
            truth["lost_forever_bytes"] = n
            truth["lost_forever_offset"] = off
        for _ in range(args.lose_filled):
            i = r.randint(1, len(plan) - 2)
            if plan[i][2] != "data":
                continue
            off, n, _ = plan[i]
            plan[i] = (off, n, "lost")
            # the kernel's retransmission comes a few segments later (fast retransmit)
            plan.insert(min(len(plan), i + r.randint(3, 20)), (off, n, "retx"))
            truth["lost_filled"] += 1
        if args.late_retransmit:
            # one of the first data segments is lost and comes back only after N more: the
            # flow holds everything between, then delivers it in one piece
            i = 2
            off, n, _ = plan[i]
            plan[i] = (off, n, "lost")
            plan.insert(min(len(plan), i + 1 + args.late_retransmit), (off, n, "retx"))
            truth["lost_filled"] += 1
        for _ in range(args.retransmit):
            i = r.randint(1, len(plan) - 1)
            j = r.randint(0, i - 1)
            if plan[j][2] in ("data", "retx"):
                plan.insert(i, (plan[j][0], plan[j][1], "retx"))
                truth["retransmits"] += 1
        for _ in range(args.overlap):
            # a repacketised retransmission straddling segment boundaries
            i = r.randint(1, len(plan) - 1)
            start = r.randint(0, max(0, plan[i - 1][0]))
            n = min(r.randint(1, MSS), len(conn.stream) - start)
            if truth["lost_forever_offset"] is not None and conn is conns[0]:
                lo, ln = truth["lost_forever_offset"], truth["lost_forever_bytes"]
                if start < lo + ln and start + n > lo:
                    continue  # must not fill the hole meant to stay open
            plan.insert(i, (start, n, "retx"))
            truth["overlaps"] += 1
        for _ in range(args.reorder):
            i = r.randint(0, len(plan) - 2)
            plan[i], plan[i + 1] = plan[i + 1], plan[i]
            truth["reordered"] += 1
        t_send = t_start + 2 * STEP_NS
        acked = 0
        for off, n, kind in plan:
            t_send = max(t_send + 1000, conn.time_at(off + n - 1))
            if kind == "lost":
                continue
            payload = bytes(conn.stream[off:off + n])
            frames.append((t_send, tcp_frame(SERVER, conn.client, conn.isn + 1 + off, conn.cisn + 1, ACK | PSH, payload)))
            if off + n > acked:
                acked = off + n
            frames.append((t_send + 500, tcp_frame(conn.client, SERVER, conn.cisn + 1, conn.isn + 1 + acked, ACK)))
        end = len(conn.stream)
        t_send += STEP_NS
        frames.append((t_send, tcp_frame(SERVER, conn.client, conn.isn + 1 + end, conn.cisn + 1, FIN | ACK)))
        frames.append((t_send + 500, tcp_frame(conn.client, SERVER, conn.cisn + 1, conn.isn + 2 + end, FIN | ACK)))
        frames.append((t_send + 1000, tcp_frame(SERVER, conn.client, conn.isn + 2 + end, conn.cisn + 2, ACK)))
        return t_send + 1000

    conns = [Conn(r, args.isn, r.randrange(1 << 32), CLIENT[1])]
    t_end = session_frames(conns[0], t0, 1, msgs)

    if truth["lost_forever_offset"] is not None:
        # which sequence the hole starts in: packets are walked in stream order
        s = conns[0].stream
        off, seqno, lo = 0, 0, truth["lost_forever_offset"]
        while off < len(s):
            n = struct.unpack_from("!H", s, off)[0]
            typ = s[off + 2:off + 3]
            if typ == b"A":
                seqno = 1
            if off + 2 + n > lo:
                break
            if typ == b"S":
                seqno += 1
            off += 2 + n
        truth["first_lost_sequence"] = seqno
        if args.reconnect_back is not None:
            # the client logs in again and asks for a replay from before the hole
            replay_from = max(1, seqno - args.reconnect_back)
            truth["replay_from"] = replay_from
            truth["duplicates_replayed"] = seqno - replay_from
            truth["connections"] = 2
            conn2 = Conn(r, r.randrange(1 << 32), r.randrange(1 << 32), CLIENT[1] + 1)
            conns.append(conn2)
            session_frames(conn2, t_end + 10**9, replay_from, msgs[replay_from - 1:])

    frames.sort(key=lambda x: x[0])
    with open(args.out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1))  # ns timestamps
        for t, fr in frames:
            f.write(struct.pack("<IIII", t // 10**9, t % 10**9, len(fr), len(fr)))
            f.write(fr)
    truth["frames"] = len(frames)
    truth["stream_bytes"] = len(conns[0].stream)
    return truth


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("itch")
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--retransmit", type=int, default=0)
    p.add_argument("--overlap", type=int, default=0)
    p.add_argument("--reorder", type=int, default=0)
    p.add_argument("--lose-filled", type=int, default=0)
    p.add_argument("--lose-forever", action="store_true")
    p.add_argument("--late-retransmit", type=int, default=0,
                   help="lose an early data segment and retransmit it N segments later")
    p.add_argument("--reconnect-back", type=int, default=None,
                   help="after a never-filled hole, a second connection replays from N messages before it")
    p.add_argument("--isn", type=int, default=0xFFFF0000, help="server ISN (default near 2^32: the stream wraps)")
    p.add_argument("--heartbeat-every", type=int, default=500)
    p.add_argument("--max-messages", type=int, default=1 << 30)
    args = p.parse_args()
    json.dump(build(args), sys.stdout)
    print()


if __name__ == "__main__":
    main()
