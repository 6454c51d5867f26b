/*
 * engine/codec.h - writer and bounds-checked reader of log entries (docs/LOG.md): fixed-width
 * little-endian integers, varints (LEB128; signed ones zigzag-mapped first) and short strings.
 *
 * The writer writes into space reserved beforehand (eng_buf_reserve with the record's bound: a
 * varint takes at most VU32_B / VU64_B bytes); the reader never reads past its end: a short or
 * malformed entry sets `bad`, and every get after that returns zeros. A varint longer than its
 * type allows, or a value out of the range the caller asks for, is malformed too.
 */
#ifndef TRASTENDA_ENGINE_CODEC_H
#define TRASTENDA_ENGINE_CODEC_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "trastenda/engine.h"

struct eng_wr {
    uint8_t *p;
};

static inline void
wr_u8(struct eng_wr *w, uint8_t v)
{
    *w->p++ = v;
}
static inline void
wr_u16(struct eng_wr *w, uint16_t v)
{
    w->p[0] = (uint8_t)v;
    w->p[1] = (uint8_t)(v >> 8);
    w->p += 2;
}
static inline void
wr_u32(struct eng_wr *w, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        w->p[i] = (uint8_t)(v >> (8 * i));
    w->p += 4;
}
static inline void
wr_u64(struct eng_wr *w, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        w->p[i] = (uint8_t)(v >> (8 * i));
    w->p += 8;
}
static inline void
wr_i32(struct eng_wr *w, int32_t v)
{
    wr_u32(w, (uint32_t)v);
}
static inline void
wr_i64(struct eng_wr *w, int64_t v)
{
    wr_u64(w, (uint64_t)v);
}
/* Strings are a length byte and the bytes (ids <= 64, names <= 128). */
static inline void
wr_str(struct eng_wr *w, const char *s, uint32_t len)
{
    *w->p++ = (uint8_t)len;
    if (len) memcpy(w->p, s, len);
    w->p += len;
}

/* Most bytes a varint of 32 or 64 bits takes. */
#define VU32_B 5
#define VU64_B 10

static inline void
wr_uv(struct eng_wr *w, uint64_t v)
{
    while (v >= 0x80) {
        *w->p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *w->p++ = (uint8_t)v;
}
/* Signed values zigzag-mapped: small magnitudes of either sign take few bytes. */
static inline void
wr_sv(struct eng_wr *w, int64_t v)
{
    wr_uv(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}
static inline uint32_t
uv_len(uint64_t v)
{
    uint32_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

struct eng_rd {
    const uint8_t *p, *end;
    bool bad;
};

static inline bool
rd_need(struct eng_rd *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return false;
    }
    return true;
}
static inline uint8_t
rd_u8(struct eng_rd *r)
{
    return rd_need(r, 1) ? *r->p++ : 0;
}
static inline uint16_t
rd_u16(struct eng_rd *r)
{
    if (!rd_need(r, 2)) return 0;
    uint16_t v = (uint16_t)(r->p[0] | (r->p[1] << 8));
    r->p += 2;
    return v;
}
static inline uint32_t
rd_u32(struct eng_rd *r)
{
    if (!rd_need(r, 4)) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)r->p[i] << (8 * i);
    r->p += 4;
    return v;
}
static inline uint64_t
rd_u64(struct eng_rd *r)
{
    if (!rd_need(r, 8)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += 8;
    return v;
}
static inline int32_t
rd_i32(struct eng_rd *r)
{
    return (int32_t)rd_u32(r);
}
static inline int64_t
rd_i64(struct eng_rd *r)
{
    return (int64_t)rd_u64(r);
}
/* A varint of at most 64 bits; one with more bytes, or with bits beyond 64, is malformed. */
static inline uint64_t
rd_uv(struct eng_rd *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && !r->bad; shift += 7) {
        if (!rd_need(r, 1)) break;
        uint8_t b = *r->p++;
        if (shift == 63 && b > 1) break;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) return v;
    }
    r->bad = true;
    return 0;
}
static inline int64_t
rd_sv(struct eng_rd *r)
{
    uint64_t u = rd_uv(r);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}
/* Narrowed reads: a value outside [lo, hi] is malformed. */
static inline uint32_t
rd_uv32(struct eng_rd *r)
{
    uint64_t v = rd_uv(r);
    if (v > UINT32_MAX) r->bad = true;
    return r->bad ? 0 : (uint32_t)v;
}
static inline int32_t
rd_sv32(struct eng_rd *r)
{
    int64_t v = rd_sv(r);
    if (v < INT32_MIN || v > INT32_MAX) r->bad = true;
    return r->bad ? 0 : (int32_t)v;
}
/* A time as its offset from a base (wrapping, so that every value round-trips). */
static inline void
wr_time(struct eng_wr *w, int64_t t, int64_t base)
{
    wr_sv(w, (int64_t)((uint64_t)t - (uint64_t)base));
}
static inline int64_t
rd_time(struct eng_rd *r, int64_t base)
{
    int64_t d = rd_sv(r);
    return r->bad ? 0 : (int64_t)((uint64_t)base + (uint64_t)d);
}

/* ---- shared by the post-image writer (effects.c) and reader (apply.c): docs/LOG.md ---- */

/* First byte of a line that names a stock post-image of the same entry by its ordinal (never a
 * string's length: ids are at most 64 bytes). */
#define LINE_REF 0xff

/* Flags of hold and order post-images: which optional fields follow. */
enum {
    IMG_SHIP_TO = 1,  /* hold: has_ship_to */
    IMG_RESOLVED = 2, /* hold: resolved_ms; order: finished_ms */
    IMG_ORDER_NO = 4, /* hold: order_no */
    IMG_COORDS = 8,   /* lat_e6 and lon_e6 (not both 0) */
    IMG_HOLD_FLAGS = IMG_SHIP_TO | IMG_RESOLVED | IMG_ORDER_NO | IMG_COORDS,
    IMG_ORDER_FLAGS = IMG_RESOLVED | IMG_COORDS
};

/* A string of at most max bytes; empty on error. */
static inline trastenda_str
rd_str(struct eng_rd *r, uint32_t max)
{
    trastenda_str s = {"", 0};
    uint8_t n = rd_u8(r);
    if (n > max) r->bad = true;
    if (r->bad || !rd_need(r, n)) return s;
    s.ptr = (const char *)r->p;
    s.len = n;
    r->p += n;
    return s;
}

#endif /* TRASTENDA_ENGINE_CODEC_H */
