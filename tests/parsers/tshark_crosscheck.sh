#!/usr/bin/env bash
# Cross-checks the Mold and ITCH decoders against tshark on the real OMI TotalView captures.
#
# Three comparisons per pcap, each must match exactly (docs/itch.md, "tshark cross-check"):
#  1. Mold framing as tshark's moldudp64 dissector sees it: session, sequence, count, per-block
#     sequence, length and raw message bytes.
#  2. ITCH message type as tshark's nasdaq_itch dissector reports it.
#  3. Every ITCH 5.0 field, extracted here from tshark's message bytes with the offsets of
#     PROTOCOLS.md 3.3 (Wireshark 4.0's nasdaq_itch dissector predates ITCH 5.0, so it cannot
#     decode the fields itself), against what wb_itch_decode returned.
# Exit 0 pass, 1 mismatch (the diff is printed), 77 when tshark or the captures are missing.
set -euo pipefail

if ! command -v tshark >/dev/null 2>&1; then
	echo "SKIP: tshark not installed"
	exit 77
fi
SHARED=${WB_SHARED_DIR:-${WB_SOURCE_DIR:-.}/../shared}
OMI="$SHARED/data/omi/Nasdaq"
if ! compgen -G "$OMI/*TotalView*/*.pcap" >/dev/null; then
	echo "SKIP: no OMI TotalView captures under $OMI (set WB_SHARED_DIR)"
	exit 77
fi
DUMP=${WB_TEST_BIN_DIR:-build/tests}/itch_dump
if [[ ! -x $DUMP ]]; then
	echo "FAIL: $DUMP not built (target itch_dump)"
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
PORT=26477

# Field name:offset:length:kind (u = unsigned BE integer, a = alpha), PROTOCOLS.md 3.3.
# Names and order are those itch_dump prints.
declare -A SPEC=(
	[S]="event:11:1:a"
	[R]="stock:11:8:a category:19:1:a fin_status:20:1:a round_lot:21:4:u round_lots_only:25:1:a class:26:1:a sub_type:27:2:a authenticity:29:1:a ssti:30:1:a ipo:31:1:a luld_tier:32:1:a etp:33:1:a etp_leverage:34:4:u inverse:38:1:a"
	[H]="stock:11:8:a state:19:1:a reserved:20:1:a reason:21:4:a"
	[Y]="stock:11:8:a action:19:1:a"
	[L]="mpid:11:4:a stock:15:8:a primary:23:1:a mode:24:1:a state:25:1:a"
	[V]="level1:11:8:u level2:19:8:u level3:27:8:u"
	[W]="level:11:1:a"
	[K]="stock:11:8:a release_time:19:4:u qualifier:23:1:a price:24:4:u"
	[J]="stock:11:8:a ref_price:19:4:u upper:23:4:u lower:27:4:u extension:31:4:u"
	[h]="stock:11:8:a market:19:1:a action:20:1:a"
	[A]="ref:11:8:u side:19:1:a shares:20:4:u stock:24:8:a price:32:4:u"
	[F]="ref:11:8:u side:19:1:a shares:20:4:u stock:24:8:a price:32:4:u mpid:36:4:a"
	[E]="ref:11:8:u shares:19:4:u match:23:8:u"
	[C]="ref:11:8:u shares:19:4:u match:23:8:u printable:31:1:a price:32:4:u"
	[X]="ref:11:8:u shares:19:4:u"
	[D]="ref:11:8:u"
	[U]="old_ref:11:8:u new_ref:19:8:u shares:27:4:u price:31:4:u"
	[P]="ref:11:8:u side:19:1:a shares:20:4:u stock:24:8:a price:32:4:u match:36:8:u"
	[Q]="shares:11:8:u stock:19:8:a price:27:4:u match:31:8:u cross:39:1:a"
	[B]="match:11:8:u"
	[I]="paired:11:8:u imbalance:19:8:u direction:27:1:a stock:28:8:a far:36:4:u near:40:4:u ref_price:44:4:u cross:48:1:a variation:49:1:a"
	[N]="stock:11:8:a interest:19:1:a"
	[O]="stock:11:8:a eligible:19:1:a min:20:4:u max:24:4:u near:28:4:u near_time:32:8:u lower:40:4:u upper:44:4:u"
)

# Unsigned big-endian integer from hex into variable $2 (printf %u keeps 64-bit values
# unsigned). printf -v everywhere: a subshell per field would dominate the run time.
u_hex() { printf -v "$2" '%u' "$((16#$1))"; }

# Alpha bytes into variable $2 as itch_dump prints them: space as _, printable as is, else \xNN.
a_hex() {
	local hex=$1 out="" i h c ch
	for ((i = 0; i < ${#hex}; i += 2)); do
		h=${hex:i:2}
		c=$((16#$h))
		if ((c == 0x20)); then
			out+="_"
		elif ((c > 0x20 && c < 0x7f && c != 0x5c)); then
			printf -v ch "\\x$h"
			out+=$ch
		else
			out+="\\x$h"
		fi
	done
	printf -v "$2" '%s' "$out"
}

# One message from tshark's hex: frame seq type locate tracking ts name=value...
decode_hex() {
	local frame=$1 seq=$2 hex=$3 type f name off len kind v locate tracking ts line
	printf -v type "\\x${hex:0:2}"
	u_hex "${hex:2:4}" locate
	u_hex "${hex:6:4}" tracking
	u_hex "${hex:10:12}" ts
	printf -v line '%s\t%s\t%s\t%s\t%s\t%s\t' "$frame" "$seq" "$type" "$locate" "$tracking" "$ts"
	for f in ${SPEC[$type]:-}; do
		IFS=: read -r name off len kind <<<"$f"
		if [[ $kind == u ]]; then
			u_hex "${hex:off*2:len*2}" v
		else
			a_hex "${hex:off*2:len*2}" v
		fi
		line+=" $name=$v"
	done
	printf '%s\n' "$line"
}

# All captures in one file so tshark starts twice, not twice per capture; frames.map
# tells which capture a frame number of a reported mismatch came from.
files=0
inputs=()
: >"$tmp/frames.map"
first=1
for pcap in "$OMI"/*TotalView*/*.pcap; do
	files=$((files + 1))
	# The 2023 captures use UDP port 0, which tshark never hands to a dissector.
	n=$("$DUMP" setport "$PORT" "$pcap" "$tmp/$files.pcap")
	inputs+=("$tmp/$files.pcap")
	printf 'frames %d-%d: %s\n' "$first" "$((first + n - 1))" "${pcap#"$OMI"/}" >>"$tmp/frames.map"
	first=$((first + n))
done
mergecap -F pcap -a -w "$tmp/all.pcap" "${inputs[@]}"

fail=0
mismatch() {
	echo "MISMATCH ($1): lines starting - are tshark's, + are wirebook's"
	cat "$tmp/diff"
	cat "$tmp/frames.map"
	fail=1
}

# 1. Mold framing and raw message bytes.
tshark -r "$tmp/all.pcap" -d "udp.port==$PORT,moldudp64" -T fields \
	-e frame.number -e moldudp64.session -e moldudp64.sequence -e moldudp64.count \
	-e moldudp64.msgseq -e moldudp64.msglen -e moldudp64.msgdata 2>/dev/null >"$tmp/tshark.mold"
"$DUMP" mold "$tmp/all.pcap" >"$tmp/ours.mold"
diff -u "$tmp/tshark.mold" "$tmp/ours.mold" >"$tmp/diff" || mismatch "Mold framing"

# 2. Message types through tshark's ITCH dissector, one comma list per frame.
tshark -r "$tmp/all.pcap" -d "udp.port==$PORT,moldudp64" -d moldudp64.payload,nasdaq_itch \
	-T fields -e frame.number -e nasdaq-itch.message_type 2>/dev/null | tr -d "'" >"$tmp/tshark.types"
"$DUMP" fields "$tmp/all.pcap" >"$tmp/ours.fields"
awk -F'\t' '$1 != f { if (NR > 1) print f "\t" t; f = $1; t = $3; next } { t = t "," $3 }
	END { if (NR) print f "\t" t }' "$tmp/ours.fields" >"$tmp/ours.types"
diff -u "$tmp/tshark.types" "$tmp/ours.types" >"$tmp/diff" || mismatch "message type"

# 3. Every field, from tshark's bytes by the documented offsets. Tabs become | first:
# read would merge the empty session fields of the 2023 captures.
: >"$tmp/tshark.fields"
while IFS='|' read -r frame _session _seq _count seqs _lens datas; do
	IFS=, read -r -a sa <<<"$seqs"
	IFS=, read -r -a da <<<"$datas"
	for i in "${!da[@]}"; do
		decode_hex "$frame" "${sa[i]}" "${da[i]}" >>"$tmp/tshark.fields"
	done
done < <(tr '\t' '|' <"$tmp/tshark.mold")
diff -u "$tmp/tshark.fields" "$tmp/ours.fields" >"$tmp/diff" || mismatch "ITCH fields"
messages=$(wc -l <"$tmp/ours.fields")

echo "tshark cross-check: $files captures, $messages ITCH messages compared"
if ((messages != 117)); then
	echo "FAIL: expected 117 messages in the OMI TotalView captures, compared $messages"
	fail=1
fi
exit $fail
