/*
 * net/mpjson.c - msgpack values as JSON text (net/mpjson.h). Allocates only the output buffer;
 * reads through the bounded reader of net/mp.h.
 */
#include "mpjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
mpjson_write(struct mpjson_buf *w, const void *s, size_t n)
{
    if (w->oom) return false;
    if (w->len + n > w->cap) {
        size_t c = w->cap == 0 ? 256 : w->cap;
        while (c < w->len + n) /* bound: doubles up to the size needed */
            c *= 2;
        uint8_t *p = realloc(w->p, c);
        if (p == NULL) {
            w->oom = true;
            return false;
        }
        w->p = p;
        w->cap = c;
    }
    if (n > 0) memcpy(w->p + w->len, s, n);
    w->len += n;
    return true;
}

void
mpjson_str(struct mpjson_buf *w, const char *s, uint32_t n)
{
    mpjson_write(w, "\"", 1);
    uint32_t run = 0; /* bytes copied as they are, written in one go */
    for (uint32_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch != '"' && ch != '\\' && ch >= 0x20) continue;
        mpjson_write(w, s + run, i - run);
        char esc[8];
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            mpjson_write(w, esc, 2);
        } else {
            snprintf(esc, sizeof(esc), "\\u%04x", ch);
            mpjson_write(w, esc, 6);
        }
        run = i + 1;
    }
    mpjson_write(w, s + run, n - run);
    mpjson_write(w, "\"", 1);
}

static bool
int_value(struct mp_rd *rd, struct mpjson_buf *w)
{
    char num[32];
    int len;
    if (*rd->p >= 0xe0 || (*rd->p >= 0xd0 && *rd->p <= 0xd3)) {
        int64_t i;
        if (!mp_read_i64(rd, &i)) return false;
        len = snprintf(num, sizeof(num), "%lld", (long long)i);
    } else {
        uint64_t u;
        if (!mp_read_u64(rd, &u)) return false;
        len = snprintf(num, sizeof(num), "%llu", (unsigned long long)u);
    }
    mpjson_write(w, num, (size_t)len);
    return true;
}

bool
mpjson_value(struct mp_rd *rd, struct mpjson_buf *w, int depth)
{
    const char *s;
    uint32_t n;
    bool b;
    if (depth > MPJSON_DEPTH_MAX) return false;
    switch (mp_peek(rd)) {
    case MP_NIL:
        mp_read_nil(rd);
        mpjson_write(w, "null", 4);
        return true;
    case MP_BOOL:
        mp_read_bool(rd, &b);
        mpjson_write(w, b ? "true" : "false", b ? 4 : 5);
        return true;
    case MP_INT:
        return int_value(rd, w);
    case MP_STR:
        if (!mp_read_str(rd, &s, &n)) return false;
        mpjson_str(w, s, n);
        return true;
    case MP_ARRAY:
        if (!mp_read_array(rd, &n)) return false;
        mpjson_write(w, "[", 1);
        for (uint32_t k = 0; k < n; k++) { /* bound: n checked against the bytes left */
            if (k > 0) mpjson_write(w, ",", 1);
            if (!mpjson_value(rd, w, depth + 1)) return false;
        }
        mpjson_write(w, "]", 1);
        return true;
    case MP_MAP:
        if (!mp_read_map(rd, &n)) return false;
        mpjson_write(w, "{", 1);
        for (uint32_t k = 0; k < n; k++) { /* bound: n checked against the bytes left */
            if (k > 0) mpjson_write(w, ",", 1);
            if (mp_peek(rd) != MP_STR || !mpjson_value(rd, w, depth + 1)) return false;
            mpjson_write(w, ":", 1);
            if (!mpjson_value(rd, w, depth + 1)) return false;
        }
        mpjson_write(w, "}", 1);
        return true;
    case MP_NONE:
        return false;
    default: /* floats, bin, ext: not in the protocol */
        if (!mp_skip(rd, MPJSON_DEPTH_MAX - depth)) return false;
        mpjson_write(w, "null", 4);
        return true;
    }
}
