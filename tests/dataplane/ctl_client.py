#!/usr/bin/env python3
"""Exercises the control socket of a running wirebookd: valid and malformed requests,
an oversized one, a client vanishing mid-request, and 64 concurrent clients."""
import json, socket, sys, threading

path = sys.argv[1]
failures = []

def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)

def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s

def ask(s, raw):
    s.sendall(raw)
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return json.loads(buf) if buf else None

s = conn()
r = ask(s, b'{"cmd":"status"}\n')
check(r["ok"] and r["result"]["threads"][0]["role"] == "control", "status answers with threads")
r = ask(s, b'this is not json\n')
check(r["ok"] is False and "malformed request" in r["error"], "malformed JSON gets an error: %s" % r.get("error"))
r = ask(s, b'[1,2,3]\n')
check(r["ok"] is False and "not an object" in r["error"], "non-object gets an error")
r = ask(s, b'{"cmd":"launch-missiles"}\n')
check(r["ok"] is False and "unknown command" in r["error"], "unknown command gets an error")
r = ask(s, b'{"nocmd":1}\n')
check(r["ok"] is False and "cmd" in r["error"], "missing cmd gets an error")
r = ask(s, b'{"cmd":"book"}\n')
check(r["ok"] is False and "symbol" in r["error"], "book without symbol gets an error")
r = ask(s, b'{"cmd":"book","symbol":"NOSUCH"}\n')
check(r["ok"] is False and "unknown symbol" in r["error"], "unknown symbol gets an error")
r = ask(s, b'{"cmd":"stats"}\n')
check(r["ok"] and r["result"]["control"]["malformed_total"] >= 2, "malformed requests are counted")
s.close()

# Oversized: more than 64 KiB without a newline.
s = conn()
try:
    s.sendall(b"{" + b"x" * 70000)
    buf = s.recv(65536)
    check(b"too large" in buf, "oversized request refused")
except (BrokenPipeError, ConnectionResetError):
    check(True, "oversized request refused (connection closed)")
s.close()

# A client that vanishes mid-request changes nothing.
s = conn()
s.sendall(b'{"cmd":"sta')
s.close()

# 64 concurrent clients polling stats.
results = []
def poll():
    c = conn()
    ok = True
    for _ in range(5):
        rr = ask(c, b'{"cmd":"stats"}\n')
        ok = ok and rr is not None and rr["ok"]
    c.close()
    results.append(ok)
ts = [threading.Thread(target=poll) for _ in range(64)]
for t in ts: t.start()
for t in ts: t.join()
check(len(results) == 64 and all(results), "64 concurrent clients all answered")

s = conn()
r = ask(s, b'{"cmd":"stats"}\n')
check(r["ok"] and r["result"]["control"]["oversized_total"] == 1, "oversized counted once")
s.close()
sys.exit(1 if failures else 0)
