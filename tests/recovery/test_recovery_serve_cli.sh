#!/bin/bash
# wbsim serve: argument errors, a run that a SIGTERM ends with the counters printed, and a
# SoupBinTCP login over bash's /dev/tcp that gets Login Accepted.
set -u
BIN=${WB_BIN_DIR:-build/bin}/wbsim
[ -x "$BIN" ] || { echo "SKIP: $BIN not built"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d); trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT; pid=

"$BIN" serve --help >/dev/null || fail "--help"
"$BIN" serve --messages 3000 --symbols 20 2>/dev/null; [ $? -eq 2 ] || fail "no server must exit 2"
"$BIN" serve --soup 127.0.0.1:99999 2>/dev/null; [ $? -eq 2 ] || fail "bad endpoint must exit 2"
"$BIN" serve --soup 127.0.0.1:1 --soup-user toolongname 2>/dev/null; [ $? -eq 2 ] || fail "long user must exit 2"

port=$((20000 + RANDOM % 20000))
"$BIN" serve --messages 3000 --symbols 20 --session WBSIM00042 --soup 127.0.0.1:$port \
	--rerequest 127.0.0.1:$((port + 1)) 2>"$tmp/err" &
pid=$!
for _ in $(seq 50); do grep -q "soup port" "$tmp/err" && break; sleep 0.1; done
grep -q "3000 messages" "$tmp/err" || fail "no start-up line: $(cat "$tmp/err")"

# Login Request: length 47, 'L', user, password, session (all spaces = current), seq 2999.
exec 3<>/dev/tcp/127.0.0.1/$port || fail "connect"
printf '\x00\x2fL%-6s%-10s%10s%20s' "" "" "" 2999 >&3
head -c 33 <&3 >"$tmp/acc"
exec 3>&-
grep -q "AWBSIM00042 *2999" "$tmp/acc" || fail "no Login Accepted: $(od -c "$tmp/acc" | head -3)"

kill -TERM $pid; wait $pid; rc=$?; pid=
[ $rc -eq 0 ] || fail "exit status $rc after SIGTERM"
grep -q "soup: connections 1 logins 1" "$tmp/err" || fail "counters: $(cat "$tmp/err")"
grep -q "messages 2" "$tmp/err" || fail "2 messages replayed: $(cat "$tmp/err")"
echo PASS
