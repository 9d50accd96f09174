#!/bin/bash
# tools/wbcap_reader.py reads the same events as `wbcap cat --format jsonl`: natively
# (uncompressed blocks, with XXH64 checks; zstd blocks too when the zstandard module is
# installed) and through its wbcap fallback.
set -u
DRV=${WB_TEST_BIN_DIR:?}/capture_driver
export WBCAP=${WB_BIN_DIR:?}/wbcap
READER=${WB_SOURCE_DIR:?}/tools/wbcap_reader.py
[ -x "$DRV" ] && [ -x "$WBCAP" ] || { echo "SKIP: capture_driver or wbcap not built"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
T=$(mktemp -d /tmp/wbpyr.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

same() { # two jsonl files hold the same events, field by field
	python3 - "$1" "$2" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
if len(a) != len(b) or len(a) == 0:
    sys.exit("counts differ: %d vs %d" % (len(a), len(b)))
for i, (x, y) in enumerate(zip(a, b)):
    if x != y:
        sys.exit("event %d differs:\n%s\n%s" % (i, x, y))
PY
}

"$DRV" --noise --events 8000 --block-bytes 65536 "$T/noise" >/dev/null || fail "driver (noise)"
"$DRV" --events 10000 --block-bytes 65536 "$T/plain" >/dev/null || fail "driver (plain)"
"$WBCAP" cat "$T/noise" --format jsonl >"$T/noise.wbcap" || fail "wbcap cat noise"
"$WBCAP" cat "$T/plain" --format jsonl >"$T/plain.wbcap" || fail "wbcap cat plain"

python3 "$READER" --native --verify "$T/noise" >"$T/noise.py" 2>"$T/err" || fail "native reader: $(cat "$T/err")"
[ -s "$T/err" ] && fail "native reader warned: $(cat "$T/err")"
same "$T/noise.wbcap" "$T/noise.py" || fail "native reader differs from wbcap cat"

python3 "$READER" --via-wbcap "$T/plain" >"$T/plain.py" || fail "fallback reader"
same "$T/plain.wbcap" "$T/plain.py" || fail "fallback reader differs from wbcap cat"

if python3 -c 'import zstandard' 2>/dev/null; then
	python3 "$READER" --native "$T/plain" >"$T/plain.native" || fail "native reader on zstd blocks"
	same "$T/plain.wbcap" "$T/plain.native" || fail "native zstd reading differs"
	echo "zstandard present: native zstd path checked"
fi

# a flipped payload byte is caught by the Python XXH64 and skipped with a warning
f=$(ls "$T/noise"/*.wbcap | head -1)
printf '\xff' | dd of="$f" bs=1 seek=$((8192 + 128 + 10)) conv=notrunc 2>/dev/null
python3 "$READER" --native --verify "$T/noise" >/dev/null 2>"$T/err2"
grep -q 'checksum mismatch; skipped' "$T/err2" || fail "corruption not reported by the Python reader"
echo "PASS"
