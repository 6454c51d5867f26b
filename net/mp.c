/*
 * net/mp.c - the bounded msgpack reader (net/mp.h).
 */
#include "mp.h"

/* The type of each first byte (0xc1 is never used). */
#define R16(t) t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t
const uint8_t mp_type_of[256] = {R16(MP_INT), R16(MP_INT), R16(MP_INT), R16(MP_INT), R16(MP_INT),
                                 R16(MP_INT), R16(MP_INT), R16(MP_INT), R16(MP_MAP), R16(MP_ARRAY),
                                 R16(MP_STR), R16(MP_STR),
                                 /* 0xc0 .. 0xcf */
                                 MP_NIL, MP_NONE, MP_BOOL, MP_BOOL, MP_BIN, MP_BIN, MP_BIN, MP_EXT,
                                 MP_EXT, MP_EXT, MP_FLOAT, MP_FLOAT, MP_INT, MP_INT, MP_INT, MP_INT,
                                 /* 0xd0 .. 0xdf */
                                 MP_INT, MP_INT, MP_INT, MP_INT, MP_EXT, MP_EXT, MP_EXT, MP_EXT,
                                 MP_EXT, MP_STR, MP_STR, MP_STR, MP_ARRAY, MP_ARRAY, MP_MAP, MP_MAP,
                                 /* 0xe0 .. 0xff: negative fixints */
                                 R16(MP_INT), R16(MP_INT)};
#undef R16

bool
mp_read_nil(struct mp_rd *r)
{
    const uint8_t *p;
    if (mp_peek(r) != MP_NIL) return mp_fail(r);
    return mp_take(r, 1, &p);
}

bool
mp_read_bool(struct mp_rd *r, bool *v)
{
    const uint8_t *p;
    if (mp_peek(r) != MP_BOOL || !mp_take(r, 1, &p)) return mp_fail(r);
    *v = *p == 0xc3;
    return true;
}

/* Reads an integer as a sign and a magnitude. */
static bool
read_int(struct mp_rd *r, bool *neg, uint64_t *mag)
{
    const uint8_t *p;
    if (mp_peek(r) != MP_INT || !mp_take(r, 1, &p)) return mp_fail(r);
    uint8_t b = *p;
    *neg = false;
    if (b <= 0x7f) {
        *mag = b;
        return true;
    }
    if (b >= 0xe0) {
        *neg = true;
        *mag = (uint64_t)(-(int64_t)(int8_t)b);
        return true;
    }
    int n = b == 0xcc || b == 0xd0   ? 1
            : b == 0xcd || b == 0xd1 ? 2
            : b == 0xce || b == 0xd2 ? 4
                                     : 8;
    const uint8_t *q;
    if (!mp_take(r, (size_t)n, &q)) return false;
    uint64_t u = mp_be(q, n);
    if (b >= 0xcc && b <= 0xcf) {
        *mag = u;
        return true;
    }
    /* signed: sign-extend n bytes */
    int64_t s = n == 1 ? (int8_t)u : n == 2 ? (int16_t)u : n == 4 ? (int32_t)u : (int64_t)u;
    *neg = s < 0;
    *mag = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
    return true;
}

bool
mp_read_i64(struct mp_rd *r, int64_t *v)
{
    bool neg;
    uint64_t mag;
    if (!read_int(r, &neg, &mag)) return false;
    if (!neg && mag > (uint64_t)INT64_MAX) return mp_fail(r);
    if (neg && mag > (uint64_t)INT64_MAX + 1) return mp_fail(r);
    *v = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return true;
}

bool
mp_read_u64(struct mp_rd *r, uint64_t *v)
{
    bool neg;
    uint64_t mag;
    if (!read_int(r, &neg, &mag)) return false;
    if (neg && mag != 0) return mp_fail(r);
    *v = mag;
    return true;
}

bool
mp_read_str(struct mp_rd *r, const char **s, uint32_t *len)
{
    const uint8_t *p, *q;
    if (mp_peek(r) != MP_STR || !mp_take(r, 1, &p)) return mp_fail(r);
    uint8_t b = *p;
    uint64_t n;
    if (b >= 0xa0 && b <= 0xbf)
        n = b & 0x1f;
    else {
        int w = b == 0xd9 ? 1 : b == 0xda ? 2 : 4;
        if (!mp_take(r, (size_t)w, &q)) return false;
        n = mp_be(q, w);
    }
    if (!mp_take(r, n, &q)) return false;
    *s = (const char *)q;
    *len = (uint32_t)n;
    return true;
}

bool
mp_read_bin(struct mp_rd *r, const uint8_t **b, uint32_t *len)
{
    const uint8_t *p, *q;
    if (mp_peek(r) != MP_BIN || !mp_take(r, 1, &p)) return mp_fail(r);
    int w = *p == 0xc4 ? 1 : *p == 0xc5 ? 2 : 4;
    if (!mp_take(r, (size_t)w, &q)) return false;
    uint64_t n = mp_be(q, w);
    if (!mp_take(r, n, &q)) return false;
    *b = q;
    *len = (uint32_t)n;
    return true;
}

static bool
read_count(struct mp_rd *r, enum mp_type want, uint32_t *n, uint32_t min_bytes)
{
    const uint8_t *p, *q;
    if (mp_peek(r) != want || !mp_take(r, 1, &p)) return mp_fail(r);
    uint8_t b = *p;
    uint64_t c;
    if ((b & 0xf0) == 0x80 || (b & 0xf0) == 0x90)
        c = b & 0x0f;
    else {
        int w = b == 0xdc || b == 0xde ? 2 : 4;
        if (!mp_take(r, (size_t)w, &q)) return false;
        c = mp_be(q, w);
    }
    /* Each element needs at least one byte: a count beyond the bytes left is a lie. */
    if (c * min_bytes > mp_left(r)) return mp_fail(r);
    *n = (uint32_t)c;
    return true;
}

bool
mp_read_array(struct mp_rd *r, uint32_t *n)
{
    return read_count(r, MP_ARRAY, n, 1);
}

bool
mp_read_map(struct mp_rd *r, uint32_t *n)
{
    return read_count(r, MP_MAP, n, 2);
}

bool
mp_skip(struct mp_rd *r, int depth)
{
    const uint8_t *p;
    uint32_t n;
    const char *s;
    int64_t i;
    uint64_t u;
    bool bo;
    switch (mp_peek(r)) {
    case MP_NIL:
        return mp_read_nil(r);
    case MP_BOOL:
        return mp_read_bool(r, &bo);
    case MP_INT:
        return (*r->p >= 0xe0 || (*r->p >= 0xd0 && *r->p <= 0xd3)) ? mp_read_i64(r, &i)
                                                                   : mp_read_u64(r, &u);
    case MP_STR:
        return mp_read_str(r, &s, &n);
    case MP_FLOAT:
        return mp_take(r, *r->p == 0xca ? 5 : 9, &p);
    case MP_BIN: {
        uint8_t b = *r->p;
        int w = b == 0xc4 ? 1 : b == 0xc5 ? 2 : 4;
        if (!mp_take(r, 1, &p) || !mp_take(r, (size_t)w, &p)) return false;
        return mp_take(r, mp_be(p, w), &p);
    }
    case MP_EXT: {
        uint8_t b = *r->p;
        if (!mp_take(r, 1, &p)) return false;
        if (b >= 0xd4 && b <= 0xd8) return mp_take(r, 1 + ((size_t)1 << (b - 0xd4)), &p);
        int w = b == 0xc7 ? 1 : b == 0xc8 ? 2 : 4;
        if (!mp_take(r, (size_t)w, &p)) return false;
        return mp_take(r, 1 + mp_be(p, w), &p);
    }
    case MP_ARRAY:
        if (depth <= 0 || !mp_read_array(r, &n)) return mp_fail(r);
        for (uint32_t k = 0; k < n; k++)
            if (!mp_skip(r, depth - 1)) return false;
        return true;
    case MP_MAP:
        if (depth <= 0 || !mp_read_map(r, &n)) return mp_fail(r);
        for (uint32_t k = 0; k < 2 * n; k++)
            if (!mp_skip(r, depth - 1)) return false;
        return true;
    default:
        return mp_fail(r);
    }
}
