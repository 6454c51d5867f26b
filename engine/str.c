/*
 * engine/str.c - ids and strings: validation (UTF-8, no control characters, length), hashing,
 * and the error-message helpers every command uses.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "eng.h"

trastenda_err
eng_fail(trastenda_result *r, trastenda_err code, const char *fmt, ...)
{
    TS_ASSERT(r != NULL);
    TS_ASSERT(code != TRASTENDA_OK);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof(r->message), fmt, ap);
    va_end(ap);
    r->code = code;
    return code;
}

/* Length of the UTF-8 sequence at p (1..4), or 0 when it is not valid (overlong, surrogate,
 * beyond U+10FFFF, truncated) or is a control character. */
static uint32_t
utf8_step(const uint8_t *p, uint32_t left)
{
    uint8_t c = p[0];
    if (c < 0x80) return (c < 0x20 || c == 0x7f) ? 0 : 1;
    uint32_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1fu;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0fu;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    if (n > left) return 0;
    for (uint32_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;
    if (cp >= 0xd800 && cp <= 0xdfff) return 0;
    if (cp > 0x10ffff) return 0;
    if (cp >= 0x80 && cp <= 0x9f) return 0; /* C1 controls */
    return n;
}

static trastenda_err
text_check(trastenda_str s, const char *field, bool required, uint32_t max, trastenda_result *r)
{
    if (s.len == 0) {
        if (!required) return TRASTENDA_OK;
        return eng_fail(r, TRASTENDA_E_INVALID, "%s is required", field);
    }
    if (s.ptr == NULL) return eng_fail(r, TRASTENDA_E_INVALID, "%s is NULL", field);
    if (s.len > max)
        return eng_fail(r, TRASTENDA_E_LIMIT, "%s must be 1..%u bytes (got %u)", field, max, s.len);
    const uint8_t *p = (const uint8_t *)s.ptr;
    /* Ids are nearly always printable ASCII (keys, order ids): one pass of range checks proves it
     * without decoding, and the decoder below would accept exactly these bytes. */
    bool ascii = true;
    for (uint32_t i = 0; i < s.len; i++)
        ascii &= p[i] >= 0x20 && p[i] < 0x7f;
    if (ascii) return TRASTENDA_OK;
    for (uint32_t i = 0; i < s.len;) {
        uint32_t n = utf8_step(p + i, s.len - i);
        if (n == 0)
            return eng_fail(r, TRASTENDA_E_INVALID,
                            "%s must be UTF-8 without control characters (bad byte at %u)", field,
                            i);
        i += n;
    }
    return TRASTENDA_OK;
}

trastenda_err
eng_id_check(trastenda_str s, const char *field, bool required, trastenda_result *r)
{
    return text_check(s, field, required, TRASTENDA_ID_BYTES_MAX, r);
}

trastenda_err
eng_name_check(trastenda_str s, const char *field, trastenda_result *r)
{
    return text_check(s, field, false, TRASTENDA_NAME_BYTES_MAX, r);
}

void
eng_id_set(struct eng_id *dst, trastenda_str s)
{
    TS_ASSERT(s.len <= TRASTENDA_ID_BYTES_MAX);
    memset(dst, 0, sizeof(*dst));
    if (s.len > 0) memcpy(dst->s, s.ptr, s.len);
    dst->len = (uint8_t)s.len;
}

void
eng_name_set(struct eng_name *dst, trastenda_str s)
{
    TS_ASSERT(s.len <= TRASTENDA_NAME_BYTES_MAX);
    memset(dst, 0, sizeof(*dst));
    if (s.len > 0) memcpy(dst->s, s.ptr, s.len);
    dst->len = (uint8_t)s.len;
}

bool
eng_id_eq(const struct eng_id *id, trastenda_str s)
{
    return id->len == s.len && (s.len == 0 || memcmp(id->s, s.ptr, s.len) == 0);
}

/* The tables' hash of an id (in memory only: never logged, never compared across nodes). Ids
 * are short, so it reads them as a word or two rather than running ts_hash's mix per word. */
uint32_t
eng_str_hash(trastenda_str s)
{
    uint64_t h = ts_fold(0x7472617374656e64ull, s.len);
    return (uint32_t)ts_mix64(ts_fold_bytes(h, (const uint8_t *)s.ptr, s.len));
}

int
eng_str_cmp(trastenda_str a, trastenda_str b)
{
    uint32_t n = TS_MIN(a.len, b.len);
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c != 0) return c;
    return (a.len > b.len) - (a.len < b.len);
}

trastenda_err
eng_qty_check(int64_t v, int64_t lo, int64_t hi, const char *field, trastenda_result *r)
{
    if (v < lo || v > hi)
        return eng_fail(r, TRASTENDA_E_INVALID, "%s must be %lld..%lld (got %lld)", field,
                        (long long)lo, (long long)hi, (long long)v);
    return TRASTENDA_OK;
}
