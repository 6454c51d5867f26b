/*
 * net/mp.h - a bounded, zero-copy msgpack reader for requests and replies.
 *
 * Why not msgpack-c's unpacker for input: it reserves memory for the element count an array or
 * map header claims before the elements arrive (a 5-byte header can claim gigabytes) and copies
 * every object into a zone. This reader allocates nothing: strings point into the message, every
 * declared count is checked against the bytes that remain (each element takes at least one
 * byte), and nesting is bounded. Encoding uses msgpack-c's packer (net/wire.c).
 *
 * Every read returns false and sets `bad` on a type mismatch or a short message; after that every
 * read fails, so a decoder can check once at the end of a field.
 */
#ifndef TRASTENDA_NET_MP_H
#define TRASTENDA_NET_MP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MP_DEPTH_MAX 8

enum mp_type {
    MP_NONE = 0, /* end of input or malformed */
    MP_NIL,
    MP_BOOL,
    MP_INT, /* any integer */
    MP_FLOAT,
    MP_STR,
    MP_BIN,
    MP_ARRAY,
    MP_MAP,
    MP_EXT
};

struct mp_rd {
    const uint8_t *p, *end;
    bool bad;
};

static inline void
mp_rd_init(struct mp_rd *r, const void *buf, size_t len)
{
    r->p = buf;
    r->end = r->p + len;
    r->bad = false;
}

static inline size_t
mp_left(const struct mp_rd *r)
{
    return (size_t)(r->end - r->p);
}

static inline bool
mp_fail(struct mp_rd *r)
{
    r->bad = true;
    return false;
}

static inline uint64_t
mp_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

extern const uint8_t mp_type_of[256];

/* The type of the next value; MP_NONE at the end or after a failure. */
static inline enum mp_type
mp_peek(const struct mp_rd *r)
{
    if (r->bad || r->p >= r->end) return MP_NONE;
    return (enum mp_type)mp_type_of[*r->p];
}

/* Takes n bytes; false when fewer remain. */
static inline bool
mp_take(struct mp_rd *r, size_t n, const uint8_t **out)
{
    if (r->bad || mp_left(r) < n) return mp_fail(r);
    *out = r->p;
    r->p += n;
    return true;
}

bool mp_read_nil(struct mp_rd *r);
bool mp_read_bool(struct mp_rd *r, bool *v);
/* Any integer encoding whose value fits in int64 / uint64. */
bool mp_read_i64(struct mp_rd *r, int64_t *v);
bool mp_read_u64(struct mp_rd *r, uint64_t *v);
/* A str; *s points into the message (not NUL-terminated). */
bool mp_read_str(struct mp_rd *r, const char **s, uint32_t *len);
/* A bin; *b points into the message. */
bool mp_read_bin(struct mp_rd *r, const uint8_t **b, uint32_t *len);
/* Headers: *n checked against the bytes left (at least 1 byte per element, 2 per map pair). */
bool mp_read_array(struct mp_rd *r, uint32_t *n);
bool mp_read_map(struct mp_rd *r, uint32_t *n);
/* Skips one value of any type, nested at most depth levels. */
bool mp_skip(struct mp_rd *r, int depth);

#endif /* TRASTENDA_NET_MP_H */
