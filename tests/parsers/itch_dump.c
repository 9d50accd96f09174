/* Test helper (not shipped): prints what the Mold and ITCH decoders see in a pcap, in
 * line formats that tshark_crosscheck.sh reproduces independently with tshark.
 *
 *   itch_dump mold FILE     one line per frame, tshark -T fields order:
 *                           frame session seq count msgseqs msglens msgdatas (tab separated,
 *                           lists comma separated)
 *   itch_dump fields FILE   one line per ITCH message:
 *                           frame msgseq type locate tracking ts name=value...
 *   itch_dump setport PORT IN OUT
 *                           copies IN to OUT with UDP port 0 rewritten to PORT (tshark does
 *                           not dispatch port 0, which the 2023 OMI captures use); prints
 *                           the number of frames copied
 *
 * Exit status: 0, 1 on any Mold or ITCH decode error (reported on stderr), 2 on usage/IO. */
#include <errno.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itch.h"
#include "mold.h"
#include "pcap_udp.h"
#include "wire.h"

static void print_alpha(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == ' ')
			putchar('_');
		else if (c > ' ' && c < 0x7f && c != '\\')
			putchar(c);
		else
			printf("\\x%02x", c);
	}
}

#define A(name, field) do { printf(" " name "="); print_alpha((field), sizeof(field)); } while (0)
#define C(name, field) do { printf(" " name "="); print_alpha(&(field), 1); } while (0)
#define U(name, field) printf(" " name "=%" PRIu64, (uint64_t)(field))

/* Field names and order match the offset table in tshark_crosscheck.sh. */
static void print_fields(const struct wb_itch_msg *m)
{
	switch (m->type) {
	case 'S': C("event", m->u.sys.event_code); break;
	case 'R':
		A("stock", m->u.dir.stock); C("category", m->u.dir.market_category);
		C("fin_status", m->u.dir.financial_status); U("round_lot", m->u.dir.round_lot_size);
		C("round_lots_only", m->u.dir.round_lots_only); C("class", m->u.dir.issue_classification);
		A("sub_type", m->u.dir.issue_sub_type); C("authenticity", m->u.dir.authenticity);
		C("ssti", m->u.dir.short_sale_threshold); C("ipo", m->u.dir.ipo_flag);
		C("luld_tier", m->u.dir.luld_tier); C("etp", m->u.dir.etp_flag);
		U("etp_leverage", m->u.dir.etp_leverage); C("inverse", m->u.dir.inverse);
		break;
	case 'H':
		A("stock", m->u.action.stock); C("state", m->u.action.state);
		C("reserved", m->u.action.reserved); A("reason", m->u.action.reason);
		break;
	case 'Y': A("stock", m->u.regsho.stock); C("action", m->u.regsho.action); break;
	case 'L':
		A("mpid", m->u.mpp.mpid); A("stock", m->u.mpp.stock); C("primary", m->u.mpp.primary_mm);
		C("mode", m->u.mpp.mm_mode); C("state", m->u.mpp.state);
		break;
	case 'V':
		U("level1", m->u.mwcb_decline.level[0]); U("level2", m->u.mwcb_decline.level[1]);
		U("level3", m->u.mwcb_decline.level[2]);
		break;
	case 'W': C("level", m->u.mwcb_status.level); break;
	case 'K':
		A("stock", m->u.ipo.stock); U("release_time", m->u.ipo.release_time);
		C("qualifier", m->u.ipo.qualifier); U("price", m->u.ipo.price);
		break;
	case 'J':
		A("stock", m->u.luld.stock); U("ref_price", m->u.luld.ref_price); U("upper", m->u.luld.upper);
		U("lower", m->u.luld.lower); U("extension", m->u.luld.extension);
		break;
	case 'h':
		A("stock", m->u.op_halt.stock); C("market", m->u.op_halt.market_code);
		C("action", m->u.op_halt.action);
		break;
	case 'A':
	case 'F':
		U("ref", m->u.add.ref); C("side", m->u.add.side); U("shares", m->u.add.shares);
		A("stock", m->u.add.stock); U("price", m->u.add.price);
		if (m->type == 'F')
			A("mpid", m->u.add.mpid);
		break;
	case 'E':
		U("ref", m->u.exec.ref); U("shares", m->u.exec.shares); U("match", m->u.exec.match);
		break;
	case 'C':
		U("ref", m->u.exec_px.ref); U("shares", m->u.exec_px.shares); U("match", m->u.exec_px.match);
		C("printable", m->u.exec_px.printable); U("price", m->u.exec_px.price);
		break;
	case 'X': U("ref", m->u.cancel.ref); U("shares", m->u.cancel.shares); break;
	case 'D': U("ref", m->u.del.ref); break;
	case 'U':
		U("old_ref", m->u.replace.old_ref); U("new_ref", m->u.replace.new_ref);
		U("shares", m->u.replace.shares); U("price", m->u.replace.price);
		break;
	case 'P':
		U("ref", m->u.trade.ref); C("side", m->u.trade.side); U("shares", m->u.trade.shares);
		A("stock", m->u.trade.stock); U("price", m->u.trade.price); U("match", m->u.trade.match);
		break;
	case 'Q':
		U("shares", m->u.cross.shares); A("stock", m->u.cross.stock); U("price", m->u.cross.price);
		U("match", m->u.cross.match); C("cross", m->u.cross.cross_type);
		break;
	case 'B': U("match", m->u.broken.match); break;
	case 'I':
		U("paired", m->u.noii.paired); U("imbalance", m->u.noii.imbalance);
		C("direction", m->u.noii.direction); A("stock", m->u.noii.stock);
		U("far", m->u.noii.far_price); U("near", m->u.noii.near_price);
		U("ref_price", m->u.noii.ref_price); C("cross", m->u.noii.cross_type);
		C("variation", m->u.noii.variation);
		break;
	case 'N': A("stock", m->u.rpii.stock); C("interest", m->u.rpii.interest); break;
	case 'O':
		A("stock", m->u.dlcr.stock); C("eligible", m->u.dlcr.eligible);
		U("min", m->u.dlcr.min_price); U("max", m->u.dlcr.max_price);
		U("near", m->u.dlcr.near_price); U("near_time", m->u.dlcr.near_time);
		U("lower", m->u.dlcr.lower_collar); U("upper", m->u.dlcr.upper_collar);
		break;
	}
}

static void print_session(const char *s)
{
	/* tshark shows the session as a string, which ends at the first NUL. */
	for (size_t i = 0; i < WB_MOLD_SESSION_LEN && s[i]; i++)
		putchar(s[i]);
}

static int dump(const char *path, int fields)
{
	struct wb_pcap_udp *pu;
	const uint8_t *pl;
	size_t len;
	uint64_t frame;
	int errors = 0;
	int ret = wb_pcap_udp_open(path, &pu);

	if (ret < 0) {
		fprintf(stderr, "itch_dump: %s: %s\n", path, strerror(-ret));
		return 2;
	}
	while (wb_pcap_udp_next(pu, &pl, &len, &frame) == 1) {
		struct wb_mold_hdr hdr;
		struct wb_mold_iter it;
		const uint8_t *msg;
		uint16_t mlen;
		int r;

		if (wb_mold_parse(pl, len, &hdr, &it) < 0) {
			fprintf(stderr, "itch_dump: frame %" PRIu64 ": %zu-byte payload is shorter than a Mold header\n", frame, len);
			errors++;
			continue;
		}
		if (!fields) {
			/* Lists are built in three passes over the same blocks, as tshark prints them. */
			struct wb_mold_iter it0 = it;
			printf("%" PRIu64 "\t", frame);
			print_session(hdr.session);
			printf("\t%" PRIu64 "\t%u\t", hdr.seq, hdr.count);
			for (uint64_t i = 0; (r = wb_mold_next(&it, &msg, &mlen)) == 1; i++)
				printf("%s%" PRIu64, i ? "," : "", hdr.seq + i);
			putchar('\t');
			it = it0;
			for (int i = 0; wb_mold_next(&it, &msg, &mlen) == 1; i++)
				printf("%s%u", i ? "," : "", mlen);
			putchar('\t');
			it = it0;
			for (int i = 0; wb_mold_next(&it, &msg, &mlen) == 1; i++) {
				printf("%s", i ? "," : "");
				for (uint16_t k = 0; k < mlen; k++)
					printf("%02x", msg[k]);
			}
			putchar('\n');
		} else {
			for (uint64_t i = 0; (r = wb_mold_next(&it, &msg, &mlen)) == 1; i++) {
				struct wb_itch_msg m;
				int d = wb_itch_decode(msg, mlen, &m);
				if (d != WB_ITCH_OK) {
					fprintf(stderr, "itch_dump: frame %" PRIu64 " seq %" PRIu64 ": ITCH decode error %d\n",
						frame, hdr.seq + i, d);
					errors++;
					continue;
				}
				printf("%" PRIu64 "\t%" PRIu64 "\t%c\t%u\t%u\t%" PRIu64 "\t", frame, hdr.seq + i, m.type,
				       m.locate, m.tracking, m.ts);
				print_fields(&m);
				putchar('\n');
			}
		}
		if (r < 0) {
			fprintf(stderr, "itch_dump: frame %" PRIu64 ": Mold block runs past the packet\n", frame);
			errors++;
		}
	}
	wb_pcap_udp_close(pu);
	return errors ? 1 : 0;
}

static int setport(const char *port_s, const char *in, const char *out)
{
	char err[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *data;
	uint8_t buf[65536];
	uint16_t port = (uint16_t)atoi(port_s);
	pcap_dumper_t *d;
	pcap_t *p;
	uint64_t frames = 0;
	int ret = 2;

	p = pcap_open_offline(in, err);
	if (!p) {
		fprintf(stderr, "itch_dump: %s: %s\n", in, err);
		return 2;
	}
	d = pcap_dump_open(p, out);
	if (!d) {
		fprintf(stderr, "itch_dump: %s: %s\n", out, pcap_geterr(p));
		goto out_close;
	}
	while (pcap_next_ex(p, &h, &data) == 1) {
		size_t n = h->caplen < sizeof(buf) ? h->caplen : sizeof(buf);
		size_t off = 12;
		memcpy(buf, data, n);
		while (off + 2 <= n && (wb_be16(buf + off) == 0x8100 || wb_be16(buf + off) == 0x88a8))
			off += 4;
		off += 2;
		if (off + 20 <= n && wb_be16(buf + off - 2) == 0x0800 && buf[off + 9] == 17) {
			size_t udp = off + (size_t)(buf[off] & 0x0f) * 4;
			for (size_t k = 0; k < 2 && udp + 2 * k + 2 <= n; k++)
				if (wb_be16(buf + udp + 2 * k) == 0)
					wb_put_be16(buf + udp + 2 * k, port);
		}
		pcap_dump((u_char *)d, h, buf);
		frames++;
	}
	printf("%" PRIu64 "\n", frames);
	ret = 0;
	pcap_dump_close(d);
out_close:
	pcap_close(p);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "mold"))
		return dump(argv[2], 0);
	if (argc == 3 && !strcmp(argv[1], "fields"))
		return dump(argv[2], 1);
	if (argc == 5 && !strcmp(argv[1], "setport"))
		return setport(argv[2], argv[3], argv[4]);
	fprintf(stderr, "usage: itch_dump mold|fields FILE.pcap | itch_dump setport PORT IN OUT\n");
	return 2;
}
