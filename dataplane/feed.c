#include "feed.h"

#include <string.h>

extern const struct wb_feed_proto wb_feed_itch_mold;
extern const struct wb_feed_proto wb_feed_soup_itch;
#ifdef WB_HAVE_IEX
extern const struct wb_feed_proto wb_feed_iex_deep;
extern const struct wb_feed_proto wb_feed_iex_tops;
#endif

/* The registry: adding a protocol is one line here and one file beside this one. */
static const struct wb_feed_proto *const protos[] = {
	&wb_feed_itch_mold,
	&wb_feed_soup_itch,
#ifdef WB_HAVE_IEX
	&wb_feed_iex_deep,
	&wb_feed_iex_tops,
#endif
	NULL,
};

const struct wb_feed_proto *wb_feed_proto_find(const char *name)
{
	for (const struct wb_feed_proto *const *p = protos; *p; p++)
		if (strcmp((*p)->name, name) == 0)
			return *p;
	return NULL;
}

const struct wb_feed_proto *const *wb_feed_protos(void)
{
	return protos;
}

void wb_feed_book_opts(const struct wb_feed_conf *fc, uint8_t feed_index, int numa_node, struct wb_book_opts *bo)
{
	*bo = (struct wb_book_opts){
		.max_orders = fc->max_orders,
		.order_ring = fc->order_ring,
		.max_levels = fc->max_levels,
		.max_symbols = fc->max_symbols,
		.snapshot_depth = fc->snapshot_depth,
		.price_decimals = 4,
		.feed = feed_index,
		.policy = fc->integrity_policy == WB_CFG_INTEGRITY_FREEZE ? WB_POLICY_FREEZE : WB_POLICY_FLAG,
		.numa_node = numa_node,
	};
}
