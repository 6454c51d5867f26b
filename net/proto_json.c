/*
 * net/proto_json.c - JSON requests -> struct proto_req (net/proto_json.h).
 *
 * Parsed by jansson (docs/HTTP.md says why), then walked op by op in the order the keys were sent
 * (jansson keeps insertion order), recording every value through net/proto.h's decoder
 * functions: the codes and messages are those of the msgpack decoder. What JSON cannot say the
 * same way, and how it is reported:
 *
 * (1) Duplicate keys: jansson refuses the whole document (JSON_REJECT_DUPLICATES), so a
 *     duplicate anywhere is an envelope E_DUPLICATE_FIELD (msgpack: the op's own error).
 * (2) Integers are read as int64: a number beyond -2^63..2^63-1 is an envelope E_RANGE (msgpack
 *     takes up to 2^64-1 in unsigned fields). A number with a fraction or exponent is "a float":
 *     E_TYPE, as a msgpack float.
 * (3) Text must be UTF-8 (RFC 8259): jansson refuses anything else (E_MALFORMED). Escaped
 *     control characters (\u0001, \u0000 included: JSON_ALLOW_NUL) reach validate, which refuses
 *     them in ids as for msgpack.
 * (4) Nesting: an op that fails to decode and nests deeper than MP_DEPTH_MAX levels in all is an
 *     envelope E_MALFORMED, as msgpack (whose reader cannot skip it). jansson bounds its own
 *     recursion (2048 levels).
 */
#include "proto_json.h"

#include <stdio.h>
#include <string.h>

#include "mp.h"

/* The envelope is level 1, ops 2, an op 3 (net/proto.c, Design note (4)). */
#define OP_LEVEL 3

static const char *
type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "a map";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a float";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "nil";
    }
}

static trastenda_str
str_of(const json_t *v)
{
    return (trastenda_str){json_string_value(v), (uint32_t)json_string_length(v)};
}

static void
int_of(const json_t *v, bool *neg, int64_t *s, uint64_t *u)
{
    json_int_t x = json_integer_value(v);
    *neg = x < 0;
    *s = (int64_t)x;
    *u = x < 0 ? 0 : (uint64_t)x;
}

/* Whether v nests containers at most `levels` deep (v itself counts as one). */
static bool
depth_ok(const json_t *v, int levels)
{
    if (!json_is_object(v) && !json_is_array(v)) return true;
    if (levels <= 0) return false;
    if (json_is_array(v)) {
        for (size_t k = 0; k < json_array_size(v); k++) /* bound: the document's size */
            if (!depth_ok(json_array_get(v, k), levels - 1)) return false;
        return true;
    }
    const char *key;
    json_t *e;
    json_object_foreach((json_t *)v, key, e)
    {
        (void)key;
        if (!depth_ok(e, levels - 1)) return false;
    }
    return true;
}

static trastenda_err
decode_channels(struct proto_req *q, struct proto_op *op, uint32_t i, const json_t *v)
{
    if (!json_is_array(v)) return proto_dec_type(op, i, PFD_CHANNELS, type_name(v));
    size_t n = json_array_size(v);
    bool keep;
    if (n > PROTO_MSG_MAX) n = PROTO_MSG_MAX; /* cannot happen: a body is smaller */
    trastenda_err err = proto_dec_channels(q, op, (uint32_t)n, &keep);
    for (uint32_t k = 0; err == TRASTENDA_OK && k < n; k++) { /* bound: n */
        const json_t *c = json_array_get(v, k);
        if (!json_is_string(c)) return proto_dec_channel_type(op, i, k, type_name(c));
        proto_dec_channel(q, keep, str_of(c));
    }
    return err;
}

static trastenda_err
decode_line(struct proto_op *op, uint32_t i, uint32_t l, const json_t *v, struct proto_line *ln)
{
    if (!json_is_object(v)) return proto_dec_line_map_type(op, i, l, type_name(v));
    const char *key;
    size_t len;
    json_t *e;
    json_object_keylen_foreach((json_t *)v, key, len, e)
    {
        uint8_t bit;
        trastenda_err err = proto_dec_line_key(op, i, l, ln, key, (uint32_t)len, &bit);
        if (err != TRASTENDA_OK) return err;
        bool want_int = bit == PROTO_LN_QTY, want_bool = bit == PROTO_LN_UNSELLABLE;
        bool ok = want_int    ? json_is_integer(e)
                  : want_bool ? json_is_boolean(e)
                              : json_is_string(e);
        if (!ok) return proto_dec_line_type(op, i, l, bit, type_name(e));
        if (bit == PROTO_LN_SKU) ln->sku = str_of(e);
        if (bit == PROTO_LN_LOC) ln->loc = str_of(e);
        if (want_bool) ln->unsellable = json_is_true(e);
        if (want_int) {
            bool neg;
            int64_t s;
            uint64_t u;
            int_of(e, &neg, &s, &u);
            err = proto_dec_line_qty(op, i, l, ln, neg, s, u);
            if (err != TRASTENDA_OK) return err;
        }
    }
    return TRASTENDA_OK;
}

static trastenda_err
decode_lines(struct proto_req *q, struct proto_op *op, uint32_t i, const json_t *v)
{
    if (!json_is_array(v)) return proto_dec_type(op, i, PFD_LINES, type_name(v));
    size_t n = json_array_size(v);
    if (n > PROTO_MSG_MAX) n = PROTO_MSG_MAX; /* cannot happen: a body is smaller */
    trastenda_err err = proto_dec_lines(q, op, i, (uint32_t)n);
    for (uint32_t l = 0; err == TRASTENDA_OK && l < n; l++) { /* bound: n */
        err = decode_line(op, i, l, json_array_get(v, l), proto_dec_line_next(q));
        if (err != TRASTENDA_OK) op->err_line = l;
    }
    return err;
}

static trastenda_err
decode_value(struct proto_req *q, struct proto_op *op, uint32_t i, int f, const json_t *v)
{
    bool neg;
    int64_t s;
    uint64_t u;
    switch (proto_field_value(f)) {
    case PV_INT:
    case PV_UINT:
        if (!json_is_integer(v)) return proto_dec_type(op, i, f, type_name(v));
        int_of(v, &neg, &s, &u);
        return proto_dec_int(op, i, f, neg, s, u);
    case PV_BOOL:
        if (!json_is_boolean(v)) return proto_dec_type(op, i, f, type_name(v));
        proto_dec_bool(op, f, json_is_true(v));
        return TRASTENDA_OK;
    case PV_LINES:
        return decode_lines(q, op, i, v);
    case PV_CHANNELS:
        return decode_channels(q, op, i, v);
    default:
        if (!json_is_string(v)) return proto_dec_type(op, i, f, type_name(v));
        proto_dec_str(op, f, str_of(v));
        return TRASTENDA_OK;
    }
}

static trastenda_err
decode_op_map(struct proto_req *q, struct proto_op *op, uint32_t i, const json_t *v)
{
    if (!json_is_object(v)) return proto_dec_op_type(op, i, type_name(v));
    const char *key;
    size_t len;
    json_t *e;
    json_object_keylen_foreach((json_t *)v, key, len, e)
    {
        int f;
        trastenda_err err = proto_dec_key(op, i, key, (uint32_t)len, &f);
        if (err == TRASTENDA_OK) err = decode_value(q, op, i, f, e);
        if (err != TRASTENDA_OK) return err;
    }
    return TRASTENDA_OK;
}

static bool
decode_ops(struct proto_req *q, const json_t *v)
{
    if (!json_is_array(v)) return proto_dec_env_type(q, PROTO_ENV_OPS, type_name(v));
    size_t n = json_array_size(v);
    if (n > PROTO_OPS_MAX) n = PROTO_OPS_MAX + 1; /* refused by proto_dec_ops */
    if (!proto_dec_ops(q, (uint32_t)n)) return false;
    for (uint32_t i = 0; i < n; i++) { /* bound: n <= PROTO_OPS_MAX */
        const json_t *ov = json_array_get(v, i);
        struct proto_op *op = proto_dec_op_begin(q, i);
        uint32_t lines0 = q->n_lines, channels0 = q->n_channels;
        if (decode_op_map(q, op, i, ov) == TRASTENDA_OK) continue;
        if (q->err != TRASTENDA_OK) return false;
        if (!depth_ok(ov, MP_DEPTH_MAX - OP_LEVEL + 1))
            return proto_env_fail(q, TRASTENDA_E_MALFORMED, "ops[%u]: nested deeper than %d levels",
                                  i, MP_DEPTH_MAX);
        proto_dec_op_drop(q, op, lines0, channels0);
    }
    return true;
}

bool
proto_decode_json_value(struct proto_req *q, json_t *root)
{
    proto_req_reset(q);
    if (!json_is_object(root))
        return proto_env_fail(q, TRASTENDA_E_MALFORMED,
                              "the request must be a JSON object (got %s)", type_name(root));
    const char *key;
    size_t len;
    json_t *v;
    json_object_keylen_foreach(root, key, len, v)
    {
        uint32_t bit;
        const char *name = NULL;
        if (!proto_dec_env_key(q, key, (uint32_t)len, &bit, &name)) return false;
        bool ok;
        if (bit == PROTO_ENV_OPS) {
            ok = decode_ops(q, v);
        } else if (bit == PROTO_ENV_TOKEN) {
            ok = json_is_string(v) ? (proto_dec_env_token(q, str_of(v)), true)
                                   : proto_dec_env_type(q, bit, type_name(v));
        } else if (!json_is_integer(v)) {
            ok = proto_dec_env_type(q, bit, type_name(v));
        } else {
            bool neg;
            int64_t s;
            uint64_t u;
            int_of(v, &neg, &s, &u);
            ok = proto_dec_env_uint(q, bit, name, neg, s, u);
        }
        if (!ok) return false;
    }
    return true;
}

/* jansson's message, as printable ASCII (it quotes the client's text near the error). */
static void
clean(char *out, size_t cap, const char *text)
{
    size_t o = 0;
    for (const char *p = text; *p != '\0' && o + 1 < cap; p++) /* bound: cap */
        out[o++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
    out[o] = '\0';
}

bool
proto_decode_json(struct proto_req *q, const void *buf, size_t len, json_t **doc)
{
    proto_req_reset(q);
    *doc = NULL;
    if (len == 0) return proto_env_fail(q, TRASTENDA_E_MALFORMED, "empty request");
    if (len > PROTO_MSG_MAX)
        return proto_env_fail(q, TRASTENDA_E_TOO_BIG, "request of %zu bytes, at most %d", len,
                              PROTO_MSG_MAX);
    json_error_t e;
    *doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
    if (*doc == NULL) {
        char text[JSON_ERROR_TEXT_LENGTH];
        clean(text, sizeof(text), e.text);
        enum json_error_code code = json_error_code(&e);
        trastenda_err err = code == json_error_duplicate_key      ? TRASTENDA_E_DUPLICATE_FIELD
                            : code == json_error_numeric_overflow ? TRASTENDA_E_RANGE
                                                                  : TRASTENDA_E_MALFORMED;
        return proto_env_fail(q, err, "%s at line %d, column %d: %s",
                              err == TRASTENDA_E_DUPLICATE_FIELD ? "a key is given twice"
                              : err == TRASTENDA_E_RANGE         ? "an integer beyond -2^63..2^63-1"
                                                                 : "malformed JSON",
                              e.line, e.column, text);
    }
    return proto_decode_json_value(q, *doc);
}
