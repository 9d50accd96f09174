# Shared helpers for the DPDK integration tests (sourced).
set -euo pipefail
SRC=${WB_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BIN=${WB_BIN_DIR:-$SRC/build/bin}
[ -x "$BIN/wirebookd" ] || { echo "SKIP: $BIN/wirebookd not built"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: the DPDK tests run as root"; exit 77; }
TMP=$(mktemp -d /tmp/wbtest.XXXXXX)
PREFIX="wbt$$"
cleanup() {
	local rc=$?
	# A failed run shows what the daemon said: what to read first when CI goes red.
	if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
		for f in "$TMP"/*.err; do
			[ -s "$f" ] && { echo "--- tail of $f"; tail -n 30 "$f"; }
		done
		[ -n "${DAEMON_PID:-}" ] && ! kill -0 "$DAEMON_PID" 2> /dev/null && echo "--- the daemon (pid $DAEMON_PID) is gone"
	fi
	[ -n "${DAEMON_PID:-}" ] && kill -9 "$DAEMON_PID" 2>/dev/null || true
	rm -rf "$TMP" "/var/run/dpdk/$PREFIX" "/run/wirebook-$PREFIX.lock"
}
trap cleanup EXIT

# make_config OUT: the demo config with this test's prefix, socket and capture dir.
make_config() {
	sed -e "s|file_prefix: wirebook-demo|file_prefix: $PREFIX|" \
	    -e "s|/tmp/wirebook-demo/capture|$TMP/capture|" \
	    -e "s|/tmp/wirebook-demo/wirebook.sock|$TMP/wb.sock|" "$SRC/examples/demo.yaml" > "$1"
}

# jget FILE EXPR: evaluates a Python expression over the JSON in FILE bound to j.
jget() {
	python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"
}

fail() { echo "FAIL: $*" >&2; exit 1; }

expect_eq() { # NAME GOT WANT
	if [ "$2" != "$3" ]; then fail "$1: got $2, want $3"; fi
	echo "ok: $1 = $2"
}
