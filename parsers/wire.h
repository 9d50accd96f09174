/* Explicit big- and little-endian loads for wire formats; never cast packed structs. */
#ifndef WB_WIRE_H
#define WB_WIRE_H

#include <stdint.h>
#include <string.h>

static inline uint16_t wb_be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t wb_be32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return __builtin_bswap32(v);
}
static inline uint64_t wb_be64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return __builtin_bswap64(v);
}
/* ITCH's 6-byte timestamp: nanoseconds since midnight. */
static inline uint64_t wb_be48(const uint8_t *p)
{
	return ((uint64_t)wb_be16(p) << 32) | wb_be32(p + 2);
}
static inline uint16_t wb_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t wb_le32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}
static inline uint64_t wb_le64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}
static inline void wb_put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void wb_put_be32(uint8_t *p, uint32_t v) { v = __builtin_bswap32(v); memcpy(p, &v, 4); }
static inline void wb_put_be64(uint8_t *p, uint64_t v) { v = __builtin_bswap64(v); memcpy(p, &v, 8); }
static inline void wb_put_be48(uint8_t *p, uint64_t v) { wb_put_be16(p, (uint16_t)(v >> 32)); wb_put_be32(p + 2, (uint32_t)v); }

#endif
