/*
 * net/mpjson.h - msgpack values as JSON text, shared by the client library (trastenda_result_json,
 * the CLI) and the server's HTTP replies (net/http.c), so that both print the protocol's values
 * the same way: maps as objects (keys must be strings), integers exactly, floats, bin and ext
 * (not in the protocol) as null.
 */
#ifndef TRASTENDA_NET_MPJSON_H
#define TRASTENDA_NET_MPJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mp.h"

/* Nesting accepted by mpjson_value (replies nest at most 6 levels). */
#define MPJSON_DEPTH_MAX 16

/* A growing output buffer; p is caller-owned (free it). oom is set once a write failed. */
struct mpjson_buf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
};

/* Appends n bytes; false (and oom) when out of memory. */
bool mpjson_write(struct mpjson_buf *w, const void *s, size_t n);

/* Appends a JSON string literal of n bytes (quotes, backslashes and control characters escaped). */
void mpjson_str(struct mpjson_buf *w, const char *s, uint32_t n);

/* Appends one msgpack value read from rd as JSON; false on malformed msgpack, nesting deeper than
 * MPJSON_DEPTH_MAX - depth, or a map key that is not a string. */
bool mpjson_value(struct mp_rd *rd, struct mpjson_buf *w, int depth);

#endif /* TRASTENDA_NET_MPJSON_H */
