#!/usr/bin/env python3
"""Example reader for wirebook capture directories (docs/capture-format.md).

Reads the capture files of a directory in time order and yields every event as a dict
with the same keys and values as `wbcap cat --format jsonl`. Two ways to read:

* native: this file parses the format itself; it needs the `zstandard` module for
  zstd-compressed blocks (blocks stored uncompressed need nothing beyond the standard
  library), and checks XXH64 checksums when asked (--verify; pure Python, slow);
* via wbcap: runs `wbcap cat DIR --format jsonl` and parses its output, used when
  `zstandard` is not installed.

    wbcap_reader.py DIR [--symbol S] [--via-wbcap | --native] [--verify] [--count]

As a module:  for ev in read_events("/data/capture"): ...
"""

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys

try:
    import zstandard
except ImportError:  # the wbcap fallback covers it
    zstandard = None

FILE_MAGIC = b"WBCAPF\r\n"
FILE_HEADER_BYTES = 8192
BLOCK_MAGIC = 0x4B425057
ALIGN = 4096
KIND_EVENTS, KIND_RAW, KIND_INDEX, KIND_END = 1, 2, 3, 4
CODEC_NONE, CODEC_ZSTD = 0, 1

TYPE_NAMES = ["NONE", "ORDER_ADD", "ORDER_EXEC", "ORDER_CANCEL", "ORDER_DELETE", "ORDER_REPLACE",
              "LEVEL", "TRADE", "TRADE_BREAK", "STATUS", "SYMBOL", "SYSTEM", "INTEGRITY", "GAP",
              "DROP", "QUOTE", "OTHER"]
EV_SYMBOL = 10

# Event block columns in stored order: (field, width in bytes, delta-coded, signed)
COLUMNS = [("ts_exch", 8, True, False), ("ts_recv", 8, True, False), ("seq", 8, True, False),
           ("ref", 8, True, False), ("aux", 8, False, False), ("price", 8, True, True),
           ("shares", 4, False, False), ("level_shares", 4, False, False),
           ("locate", 2, False, False), ("level_orders", 2, False, False),
           ("type", 1, False, False), ("side", 1, False, False), ("feed", 1, False, False),
           ("flags", 1, False, False)]

# 128-byte block header (little-endian)
BLOCK_HEADER = struct.Struct("<IBBBBIIIHHII7Q24sQQ")
FILE_HEADER_FIXED = struct.Struct("<8sIIQIIQB7x32s48x")

M64 = (1 << 64) - 1
P1, P2, P3, P4, P5 = (11400714785074694791, 14029467366897019727, 1609587929392839161,
                      9650029242287828579, 2870177450012600261)


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _round(acc, lane):
    return (_rotl((acc + lane * P2) & M64, 31) * P1) & M64


def xxh64(data, seed=0):
    """XXH64 in pure Python: the checksum of block payloads and headers."""
    n = len(data)
    i = 0
    if n >= 32:
        v = [(seed + P1 + P2) & M64, (seed + P2) & M64, seed, (seed - P1) & M64]
        while i + 32 <= n:
            lanes = struct.unpack_from("<4Q", data, i)
            v = [_round(v[k], lanes[k]) for k in range(4)]
            i += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & M64
        for k in range(4):
            h = ((h ^ _round(0, v[k])) * P1 + P4) & M64
    else:
        h = (seed + P5) & M64
    h = (h + n) & M64
    while i + 8 <= n:
        (lane,) = struct.unpack_from("<Q", data, i)
        h = (_rotl(h ^ _round(0, lane), 27) * P1 + P4) & M64
        i += 8
    if i + 4 <= n:
        (lane,) = struct.unpack_from("<I", data, i)
        h = (_rotl(h ^ ((lane * P1) & M64), 23) * P2 + P3) & M64
        i += 4
    while i < n:
        h = (_rotl(h ^ ((data[i] * P5) & M64), 11) * P1) & M64
        i += 1
    h ^= h >> 33
    h = (h * P2) & M64
    h ^= h >> 29
    h = (h * P3) & M64
    h ^= h >> 32
    return h


def _price(raw, decimals):
    if decimals == 0:
        return str(raw)
    sign = "-" if raw < 0 else ""
    a = abs(raw)
    scale = 10 ** decimals
    return "%s%d.%0*d" % (sign, a // scale, decimals, a % scale)


def _decode_events(raw, n):
    """Columns (byte planes, zigzag deltas) -> list of per-field value lists."""
    cols = {}
    off = 0
    fmt = {8: "Q", 4: "I", 2: "H", 1: "B"}
    for name, width, delta, signed in COLUMNS:
        inter = bytearray(n * width)
        for k in range(width):
            inter[k::width] = raw[off + k * n: off + (k + 1) * n]
        vals = list(struct.unpack("<%d%s" % (n, fmt[width]), inter))
        off += width * n
        if delta:
            prev = 0
            for i, z in enumerate(vals):
                prev = (prev + ((z >> 1) ^ -(z & 1))) & M64
                vals[i] = prev
        if signed:
            vals = [v - (1 << 64) if v >= (1 << 63) else v for v in vals]
        cols[name] = vals
    return cols


class CaptureError(Exception):
    pass


def _blocks(path, verify):
    """Yields (header dict, raw payload bytes) for each block of one file."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < FILE_HEADER_BYTES or data[:8] != FILE_MAGIC:
        raise CaptureError("%s: not a wirebook capture" % path)
    fixed = FILE_HEADER_FIXED.unpack_from(data, 0)
    decimals = fixed[7]
    off = FILE_HEADER_BYTES
    while off + 128 <= len(data):
        f_ = BLOCK_HEADER.unpack_from(data, off)
        (magic, version, kind, codec, layout, stored, rawb, records, stream, flags, bindex, padded,
         seq_first, seq_last, rmin, rmax, emin, emax, btime, _res, pxx, hxx) = f_
        if magic != BLOCK_MAGIC or padded < 128 or padded % ALIGN or off + padded > len(data):
            print("wbcap_reader: %s: unreadable block at offset %d; stopping" % (path, off), file=sys.stderr)
            return
        payload = data[off + 128: off + 128 + stored]
        if verify and (xxh64(data[off:off + 120]) != hxx or xxh64(payload) != pxx):
            print("wbcap_reader: %s: block %d: checksum mismatch; skipped" % (path, bindex), file=sys.stderr)
            off += padded
            continue
        if codec == CODEC_ZSTD:
            if zstandard is None:
                raise CaptureError("zstd block and no zstandard module: use --via-wbcap")
            payload = zstandard.ZstdDecompressor().decompress(payload, max_output_size=rawb)
        yield {"kind": kind, "records": records, "stream": stream, "decimals": decimals}, payload
        off += padded


def read_events_native(directory, symbol=None, verify=False):
    names = sorted(n for n in os.listdir(directory) if n.endswith(".wbcap"))
    syms = {}
    for name in names:
        for h, raw in _blocks(os.path.join(directory, name), verify):
            if h["kind"] != KIND_EVENTS:
                continue
            n = h["records"]
            c = _decode_events(raw, n)
            for i in range(n):
                feed, loc, typ = c["feed"][i], c["locate"][i], c["type"][i]
                if typ == EV_SYMBOL:
                    raw8 = c["aux"][i].to_bytes(8, "little").decode("latin-1")
                    name = raw8.replace("\0", " ").split(" ")[0]
                    # as wbcap: what is not printable ASCII, or needs quoting, reads '?'
                    syms[(feed, loc)] = "".join(ch if 0x20 < ord(ch) < 0x7f and ch not in '",\\' else "?"
                                                for ch in name)
                sym = syms.get((feed, loc), "")
                if symbol is not None and sym != symbol:
                    continue
                yield {"ts_recv": c["ts_recv"][i], "ts_exch": c["ts_exch"][i], "seq": c["seq"][i],
                       "type": TYPE_NAMES[typ] if typ < len(TYPE_NAMES) else "UNKNOWN",
                       "feed": feed, "locate": loc, "symbol": sym, "side": c["side"][i],
                       "price": _price(c["price"][i], h["decimals"]), "price_raw": c["price"][i],
                       "shares": c["shares"][i], "ref": c["ref"][i], "aux": c["aux"][i],
                       "level_shares": c["level_shares"][i], "level_orders": c["level_orders"][i],
                       "flags": c["flags"][i]}


def _find_wbcap():
    env = os.environ.get("WBCAP")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in (os.path.join(here, "..", "build", "bin", "wbcap"), shutil.which("wbcap")):
        if cand and os.access(cand, os.X_OK):
            return cand
    raise CaptureError("wbcap not found: set WBCAP=/path/to/wbcap")


def read_events_via_wbcap(directory, symbol=None):
    cmd = [_find_wbcap(), "cat", directory, "--format", "jsonl"]
    if symbol is not None:
        cmd += ["--symbol", symbol]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as p:
        for line in p.stdout:
            yield json.loads(line)
    if p.returncode not in (0, 1):  # 1: damaged blocks were skipped, with warnings on stderr
        raise CaptureError("wbcap exited with %d" % p.returncode)


def read_events(directory, symbol=None, native=None, verify=False):
    """Every event of the capture in DIRECTORY, oldest file first, as dicts."""
    if native is None:
        native = zstandard is not None
    if native:
        return read_events_native(directory, symbol, verify)
    return read_events_via_wbcap(directory, symbol)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("directory")
    ap.add_argument("--symbol")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--native", action="store_true", help="parse the files here (needs zstandard for zstd blocks)")
    g.add_argument("--via-wbcap", action="store_true", help="read through `wbcap cat --format jsonl`")
    ap.add_argument("--verify", action="store_true", help="check XXH64 checksums (native only; slow)")
    ap.add_argument("--count", action="store_true", help="print only the number of events per type")
    a = ap.parse_args()
    native = True if a.native else (False if a.via_wbcap else None)
    counts = {}
    try:
        for ev in read_events(a.directory, a.symbol, native, a.verify):
            if a.count:
                counts[ev["type"]] = counts.get(ev["type"], 0) + 1
            else:
                print(json.dumps(ev, separators=(",", ":")))
    except CaptureError as e:
        print("wbcap_reader: %s" % e, file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into head
        return 0
    for t, n in sorted(counts.items()):
        print("%-14s %d" % (t, n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
