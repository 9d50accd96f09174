/* Feed sessions the kernel keeps: for every TCP feed (a plug-in with on_tcp_segment) one
 * SoupBinTCP client logged in over a kernel socket, which the appliance routes through the
 * port's exception interface; the dataplane reads the same stream off the NIC ring, so the
 * client only keeps the session alive and counts. Serviced by the control thread. */
#ifndef WB_SESSIONS_H
#define WB_SESSIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct wb_sessions;

/* Recovery of MoldUDP64 feeds: a feed whose gap timed out asks for a SoupBinTCP session
 * (wanted), and each replayed message is handed to its worker (push). Provided by the
 * daemon from the dataplane, so this library does not depend on it. */
struct wb_recovery_hooks {
	bool (*wanted)(void *arg, unsigned feed, char session[10], uint64_t *from_seq);
	int (*push)(void *arg, unsigned feed, uint64_t seq, const uint8_t *msg, uint16_t len);
	void *arg;
};

/* tcp_feed[i]: feed i is read off the NIC as a SoupBinTCP stream (a session kept for its
 * life). recover_feed[i]: feed i recovers gaps over recovery.soup (a session started on
 * demand). Reads each credentials file (which must be mode 0600). Returns 0 or a negative
 * errno with a message. */
int wb_sessions_create(const struct wb_config *cfg, const bool *tcp_feed, const bool *recover_feed,
		       const struct wb_recovery_hooks *hooks, struct wb_sessions **out, char *err, size_t errlen);
/* Logs the sessions in (non-blocking connects). */
void wb_sessions_start(struct wb_sessions *s, uint64_t now_ms);
/* One turn: connects, reads, heartbeats, timeouts, reconnects. Never blocks. */
void wb_sessions_service(struct wb_sessions *s, uint64_t now_ms);
/* Graceful logout of every session. */
void wb_sessions_stop(struct wb_sessions *s, uint64_t now_ms);
void wb_sessions_destroy(struct wb_sessions *s);
/* {"feed": {"state":..., "logins_total":..., ...}, ...} */
json_t *wb_sessions_json(const struct wb_sessions *s);

/* Reads "user:password" from path; refuses a file readable or writable by group or others,
 * or owned by another user. user <= 6 and password <= 10 characters. */
int wb_credentials_read(const char *path, char user[7], char pass[11], char *err, size_t errlen);

#endif
