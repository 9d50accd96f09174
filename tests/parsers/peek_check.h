/* The worker's hint peeks at what the books will apply: wb_itch_peek must give the full
 * decode's type, locate and references (cmocka assertions; shared by the parser tests). */
#ifndef WB_TEST_PEEK_CHECK_H
#define WB_TEST_PEEK_CHECK_H

#include <string.h>

#include "itch.h"

static inline void assert_peek_agrees(const uint8_t *p, size_t len, const struct wb_itch_msg *m)
{
	struct wb_itch_msg pk;

	assert_int_equal(wb_itch_peek(p, len, &pk), WB_ITCH_OK);
	assert_int_equal(pk.type, m->type);
	assert_int_equal(pk.locate, m->locate);
	if (strchr("AFECXDU", m->type))
		assert_int_equal(pk.u.del.ref, m->u.del.ref);
	if (m->type == 'U')
		assert_int_equal(pk.u.replace.new_ref, m->u.replace.new_ref);
}

#endif
