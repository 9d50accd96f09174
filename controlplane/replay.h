/* Replay from capture: a resumable walk over the capture files of a directory that
 * formats the events of one symbol in a time range as JSON lines or CSV, a bounded chunk
 * at a time, so the control thread can stream to a socket only as fast as the client
 * reads. Never touches a dataplane core. */
#ifndef WB_REPLAY_H
#define WB_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum wb_replay_format { WB_REPLAY_JSONL = 0, WB_REPLAY_CSV = 1 };
enum wb_replay_clock { WB_CLOCK_NONE = 0, WB_CLOCK_RECV = 1, WB_CLOCK_EXCH = 2 };

struct wb_replay_time {
	enum wb_replay_clock clock; /* NONE = unbounded */
	uint64_t ns;                /* RECV: ns since the epoch; EXCH: ns since midnight */
};

struct wb_replay_opts {
	const char *dir;
	const char *symbol;          /* NULL = every symbol */
	struct wb_replay_time from, to;
	enum wb_replay_format format;
};

struct wb_replay;

/* "2025-11-20T14:30:00[.fff][Z|+hh:mm]" (receive clock), "HH:MM:SS[.fff]" (exchange
 * clock, since midnight) or an integer of ns (exchange clock); 0 or -EINVAL. */
int wb_replay_parse_time(const char *s, struct wb_replay_time *t);
int wb_replay_open(const struct wb_replay_opts *o, struct wb_replay **out, char *err, size_t errlen);
/* Appends whole lines to buf (at most cap bytes; the CSV header first); returns the bytes
 * written. *done once every file is read. */
size_t wb_replay_fill(struct wb_replay *r, char *buf, size_t cap, bool *done);
/* Events written so far, and blocks skipped because they would not read. */
uint64_t wb_replay_events(const struct wb_replay *r);
uint64_t wb_replay_bad_blocks(const struct wb_replay *r);
void wb_replay_close(struct wb_replay *r);

#endif
