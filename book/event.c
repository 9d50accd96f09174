/* Names of event types and integrity reasons, as they appear in logs, JSON and wbctl. */
#include "event.h"

static const char *const type_names[WB_EV_TYPE_MAX] = {
	[WB_EV_NONE] = "none",
	[WB_EV_ORDER_ADD] = "order_add",
	[WB_EV_ORDER_EXEC] = "order_exec",
	[WB_EV_ORDER_CANCEL] = "order_cancel",
	[WB_EV_ORDER_DELETE] = "order_delete",
	[WB_EV_ORDER_REPLACE] = "order_replace",
	[WB_EV_LEVEL] = "level",
	[WB_EV_TRADE] = "trade",
	[WB_EV_TRADE_BREAK] = "trade_break",
	[WB_EV_STATUS] = "status",
	[WB_EV_SYMBOL] = "symbol",
	[WB_EV_SYSTEM] = "system",
	[WB_EV_INTEGRITY] = "integrity",
	[WB_EV_GAP] = "gap",
	[WB_EV_DROP] = "drop",
	[WB_EV_QUOTE] = "quote",
	[WB_EV_OTHER] = "other",
};

static const char *const reason_names[WB_INT_REASON_MAX] = {
	[WB_INT_UNKNOWN_ORDER] = "unknown_order",
	[WB_INT_EXEC_TOO_LARGE] = "exec_too_large",
	[WB_INT_CROSSED] = "crossed",
	[WB_INT_LOCKED] = "locked",
	[WB_INT_ORDER_TABLE_FULL] = "order_table_full",
	[WB_INT_LEVEL_TABLE_FULL] = "level_table_full",
	[WB_INT_DUPLICATE_ORDER] = "duplicate_order",
	[WB_INT_GAP_DECLARED] = "gap_declared",
	[WB_INT_UNKNOWN_LOCATE] = "unknown_locate",
	[WB_INT_BAD_SIDE] = "bad_side",
};

const char *wb_event_type_name(uint8_t type)
{
	if (type >= WB_EV_TYPE_MAX || !type_names[type])
		return "unknown";
	return type_names[type];
}

const char *wb_integrity_reason_name(uint8_t reason)
{
	if (reason >= WB_INT_REASON_MAX || !reason_names[reason])
		return "unknown";
	return reason_names[reason];
}
