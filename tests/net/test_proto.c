/*
 * tests/net/test_proto.c - the request protocol (net/proto.c): decode, validate, convert.
 *
 * Requests are written in a compact text and packed with msgpack-c: {k: v} maps (bare-word keys
 * are strings), [..] arrays, 'strings' (escapes \xNN, \', \\ and \#N; for N bytes of 'x'),
 * integers (beyond int64 packed as uint64), 1.5 floats, true, false, nil, and *N(value) for a
 * value repeated N times inside an array or map.
 *
 * Every op decodes, validates and converts to the engine command it names; every envelope error
 * fails the request with its code; every op error (a table of 127) marks only its own op, with a
 * message naming the op and the field; truncations, lying counts, deep nesting and thousands of
 * random mutations are refused without a crash or an allocation beyond the limits.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static msgpack_sbuffer sb;
static msgpack_packer pk;
static struct proto_req q;

static trastenda_cmd cmd;
static trastenda_line lines_buf[TRASTENDA_LINES_MAX];
static trastenda_str chans_buf[PROTO_CHANNELS_MAX];

static void
setup(void)
{
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    proto_req_init(&q);
}

static void
teardown(void)
{
    proto_req_fini(&q);
    msgpack_sbuffer_destroy(&sb);
}

TestSuite(net_proto, .init = setup, .fini = teardown);

/* ---- the compact text ---- */

static void
skip_sep(const char **p)
{
    while (**p == ' ' || **p == ',' || **p == ':' || **p == '\n')
        (*p)++;
}

static uint32_t text_value(msgpack_packer *out, const char **p);

/* A map or an array: items counted in a first pass (out NULL), packed in a second. */
static void
text_container(msgpack_packer *out, const char **p)
{
    char open = **p, close = open == '{' ? '}' : ']';
    (*p)++;
    const char *body = *p;
    uint32_t n = 0;
    for (skip_sep(p); **p != close; skip_sep(p)) {
        cr_assert_neq(**p, '\0', "unterminated %c", open);
        n += text_value(NULL, p);
    }
    (*p)++;
    if (out == NULL) return;
    if (open == '{') {
        cr_assert_eq(n % 2, 0, "a map needs pairs");
        msgpack_pack_map(out, n / 2);
    } else {
        msgpack_pack_array(out, n);
    }
    for (skip_sep(&body); *body != close; skip_sep(&body))
        text_value(out, &body);
}

static void
text_string(msgpack_packer *out, const char **p)
{
    static char buf[8192];
    size_t n = 0;
    for ((*p)++; **p != '\''; n++) {
        cr_assert_neq(**p, '\0', "unterminated string");
        cr_assert_lt(n, sizeof(buf));
        char c = *(*p)++;
        if (c == '\\') {
            char e = *(*p)++;
            if (e == 'x') {
                unsigned v;
                cr_assert_eq(sscanf(*p, "%2x", &v), 1);
                *p += 2;
                c = (char)v;
            } else if (e == '#') {
                char *end;
                unsigned long k = strtoul(*p, &end, 10);
                cr_assert_eq(*end, ';');
                cr_assert_lt(n + k, sizeof(buf));
                memset(buf + n, 'x', k);
                n += k - 1;
                *p = end + 1;
                continue;
            } else {
                c = e;
            }
        }
        buf[n] = c;
    }
    (*p)++;
    if (out == NULL) return;
    msgpack_pack_str(out, n);
    msgpack_pack_str_body(out, buf, n);
}

static void
text_number(msgpack_packer *out, const char **p)
{
    const char *s = *p;
    bool dot = false;
    while ((**p >= '0' && **p <= '9') || **p == '-' || **p == '.')
        dot |= *(*p)++ == '.';
    if (out == NULL) return;
    if (dot)
        msgpack_pack_double(out, strtod(s, NULL));
    else if (*s == '-')
        msgpack_pack_int64(out, strtoll(s, NULL, 10));
    else
        msgpack_pack_uint64(out, strtoull(s, NULL, 10));
}

static void
text_word(msgpack_packer *out, const char **p)
{
    const char *s = *p;
    while ((**p >= 'a' && **p <= 'z') || (**p >= 'A' && **p <= 'Z') || (**p >= '0' && **p <= '9') ||
           **p == '_' || **p == '.')
        (*p)++;
    size_t n = (size_t)(*p - s);
    cr_assert_gt(n, 0, "unexpected '%c'", *s);
    if (out == NULL) return;
    if (n == 4 && memcmp(s, "true", 4) == 0)
        msgpack_pack_true(out);
    else if (n == 5 && memcmp(s, "false", 5) == 0)
        msgpack_pack_false(out);
    else if (n == 3 && memcmp(s, "nil", 3) == 0)
        msgpack_pack_nil(out);
    else {
        msgpack_pack_str(out, n);
        msgpack_pack_str_body(out, s, n);
    }
}

/* Packs (or, out NULL, steps over) one value; returns how many values it stands for. */
static uint32_t
text_value(msgpack_packer *out, const char **p)
{
    skip_sep(p);
    char c = **p;
    if (c == '*') {
        char *end;
        unsigned long k = strtoul(*p + 1, &end, 10);
        cr_assert_eq(*end, '(');
        const char *start = end + 1, *after = start;
        text_value(NULL, &after);
        for (unsigned long j = 0; j < k && out != NULL; j++) {
            const char *r = start;
            text_value(out, &r);
        }
        skip_sep(&after);
        cr_assert_eq(*after, ')');
        *p = after + 1;
        return (uint32_t)k;
    }
    if (c == '{' || c == '[')
        text_container(out, p);
    else if (c == '\'')
        text_string(out, p);
    else if (c == '-' || (c >= '0' && c <= '9'))
        text_number(out, p);
    else
        text_word(out, p);
    return 1;
}

static void
pack_text(const char *text)
{
    msgpack_sbuffer_clear(&sb);
    const char *p = text;
    uint32_t n = text_value(&pk, &p);
    skip_sep(&p);
    cr_assert(n == 1 && *p == '\0', "trailing text: '%s'", p);
}

static char *
fmt(const char *f, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, f);
    cr_assert_geq(vasprintf(&s, f, ap), 0);
    va_end(ap);
    return s;
}

/* Decodes and validates sb; both must agree on an envelope error. */
static bool
run_sb(void)
{
    bool ok = proto_decode_msgpack(&q, sb.data, sb.size);
    if (ok) cr_assert_eq(q.err, TRASTENDA_OK);
    bool valid = proto_validate(&q);
    cr_assert_eq(ok, valid, "decode %d, validate %d: %s", ok, valid, q.msg);
    return ok;
}

static bool
run_text(const char *text)
{
    pack_text(text);
    return run_sb();
}

/* A request of the given ops text ("{op:'noop'}, {op:'status'}"). */
static bool
run_ops(const char *ops)
{
    char *t = fmt("{v:1, id:7, ops:[%s]}", ops);
    bool ok = run_text(t);
    free(t);
    return ok;
}

static bool
str_is(trastenda_str s, const char *want)
{
    return s.len == strlen(want) && (s.len == 0 || memcmp(s.ptr, want, s.len) == 0);
}

static void
assert_op_ok(uint32_t i)
{
    cr_assert_lt(i, q.n_ops);
    cr_assert_eq(q.ops[i].err, TRASTENDA_OK, "ops[%u]: %s %s", i, trastenda_err_name(q.ops[i].err),
                 q.ops[i].msg);
}

static const trastenda_cmd *
to_cmd(uint32_t i)
{
    assert_op_ok(i);
    memset(&cmd, 0xa5, sizeof(cmd)); /* proto_to_cmd zeroes it first */
    proto_to_cmd(&q, &q.ops[i], NULL, &cmd, lines_buf, chans_buf);
    return &cmd;
}

/* ---- every op ---- */

/* One request with every op, and between them every field. */
static const char *const every_op[] = {
    "{op:'location.upsert', loc:'W1', name:'Main', lat_e6:52520000, lon_e6:-13405000,"
    " priority:-7, channels:['web', 'pos'], key:'k1', actor:'ann', ref:'r1'}",
    "{op:'location.deactivate', loc:'W2'}",
    "{op:'sku.upsert', sku:'A', name:'Apple', reorder_point:5, reorder_qty:20, lead_days:3,"
    " safety_stock:2, active:false}",
    "{op:'sku.deactivate', sku:'B'}",
    "{op:'receive', sku:'A', loc:'W1', qty:10}",
    "{op:'adjust', sku:'A', loc:'W1', qty:-2, reason:'damage'}",
    "{op:'count', sku:'A', loc:'W1', qty:7, expected:8, reason:'count'}",
    "{op:'unsellable', sku:'A', loc:'W1', qty:1, reason:'quality'}",
    "{op:'safety', sku:'A', loc:'W1', qty:3}",
    "{op:'transfer.out', sku:'A', loc:'W1', to:'W2', qty:4}",
    "{op:'transfer.in', sku:'A', loc:'W2', qty:4}",
    "{op:'reserve', lines:[{sku:'A', qty:2}, {sku:'B', loc:'W1', qty:1}], ttl_ms:60000,"
    " channel:'web', lat_e6:1, lon_e6:-2, partial:true}",
    "{op:'extend', hold:12, ttl_ms:1000}",
    "{op:'confirm', hold:12, order:'O1', channel:'web', lat_e6:5, lon_e6:6}",
    "{op:'release', hold:13}",
    "{op:'order.place', order:'O2', lines:[{sku:'A', qty:1}], lat_e6:3, lon_e6:4, channel:'web'}",
    "{op:'order.pick', order:'O2', loc:'W1'}",
    "{op:'order.pack', order:'O2'}",
    "{op:'order.ship', order:'O2'}",
    "{op:'order.deliver', order:'O2'}",
    "{op:'order.cancel', order:'O3'}",
    "{op:'order.return', order:'O2', lines:[{sku:'A', loc:'W1', qty:1, unsellable:true},"
    " {sku:'A', loc:'W3', qty:2, unsellable:false}]}",
    "{op:'po.create', po:'P1', lines:[{sku:'A', loc:'W1', qty:100}]}",
    "{op:'po.receive', po:'P1', lines:[{sku:'A', loc:'W1', qty:60}]}",
    "{op:'po.close', po:'P1'}",
    "{op:'noop'}",
    "{op:'stock', sku:'A', loc:'W1', channel:'web'}",
    "{op:'hold', hold:12}",
    "{op:'order', order:'O2'}",
    "{op:'po', po:'P1'}",
    "{op:'low_stock', cursor:0, limit:10}",
    "{op:'reorder', cursor:5, limit:1000}",
    "{op:'ledger', sku:'A', loc:'W1', from_ms:0, to_ms:1700000000000, before:99, limit:1}",
    "{op:'status'}",
    "{op:'events', since:42, limit:100}",
    "{op:'backup', dir:'/var/backups/t1'}",
    "{op:'stock.list', cursor:5, limit:1000}",
    "{op:'sku.list'}",
    "{op:'location.list', limit:10}",
    "{op:'promote', force:true}",
    "{op:'digest'}",
    "{op:'holds.expiring', limit:20}",
};
#define EVERY_N (sizeof(every_op) / sizeof(every_op[0]))

static const uint32_t every_kind[EVERY_N] = {
    TRASTENDA_OP_LOCATION_UPSERT,
    TRASTENDA_OP_LOCATION_DEACTIVATE,
    TRASTENDA_OP_SKU_UPSERT,
    TRASTENDA_OP_SKU_DEACTIVATE,
    TRASTENDA_OP_RECEIVE,
    TRASTENDA_OP_ADJUST,
    TRASTENDA_OP_COUNT,
    TRASTENDA_OP_MOVE_UNSELLABLE,
    TRASTENDA_OP_SET_SAFETY,
    TRASTENDA_OP_TRANSFER_OUT,
    TRASTENDA_OP_TRANSFER_IN,
    TRASTENDA_OP_RESERVE,
    TRASTENDA_OP_EXTEND,
    TRASTENDA_OP_CONFIRM,
    TRASTENDA_OP_RELEASE,
    TRASTENDA_OP_ORDER_PLACE,
    TRASTENDA_OP_ORDER_PICK,
    TRASTENDA_OP_ORDER_PACK,
    TRASTENDA_OP_ORDER_SHIP,
    TRASTENDA_OP_ORDER_DELIVER,
    TRASTENDA_OP_ORDER_CANCEL,
    TRASTENDA_OP_ORDER_RETURN,
    TRASTENDA_OP_PO_CREATE,
    TRASTENDA_OP_PO_RECEIVE,
    TRASTENDA_OP_PO_CLOSE,
    TRASTENDA_OP_NOOP,
    PK_STOCK,
    PK_HOLD,
    PK_ORDER,
    PK_PO,
    PK_LOW_STOCK,
    PK_REORDER,
    PK_LEDGER,
    PK_STATUS,
    PK_EVENTS,
    PK_BACKUP,
    PK_STOCK_LIST,
    PK_SKU_LIST,
    PK_LOCATION_LIST,
    PK_PROMOTE,
    PK_DIGEST,
    PK_HOLDS_EXPIRING,
};

static char *
every_op_text(void)
{
    size_t len = 64;
    for (size_t i = 0; i < EVERY_N; i++)
        len += strlen(every_op[i]) + 2;
    char *t = malloc(len);
    strcpy(t, "{v:1, id:77, min_seq:5, ops:[");
    for (size_t i = 0; i < EVERY_N; i++) {
        strcat(t, every_op[i]);
        strcat(t, ",");
    }
    strcat(t, "]}");
    return t;
}

static void
run_every_op(void)
{
    char *t = every_op_text();
    cr_assert(run_text(t), "%s", q.msg);
    free(t);
    cr_assert_eq(q.n_ops, EVERY_N);
}

Test(net_proto, every_op_decodes_and_validates)
{
    run_every_op();
    cr_assert_eq(q.version, 1);
    cr_assert_eq(q.id, 77);
    cr_assert_eq(q.min_seq, 5);
    cr_assert_eq(q.present, 15);
    uint64_t fields_seen = 0;
    for (uint32_t i = 0; i < EVERY_N; i++) {
        assert_op_ok(i);
        cr_assert_eq(q.ops[i].kind, every_kind[i], "ops[%u]", i);
        cr_assert(str_is(q.ops[i].op_name, proto_kind_name(q.ops[i].kind)), "ops[%u]", i);
        fields_seen |= q.ops[i].present;
    }
    cr_assert_eq(fields_seen, (1ull << PFD_COUNT_) - 1, "every field appears in some op");
    /* Zero copy: strings point into the message. */
    const char *sku = q.ops[2].sku.ptr;
    cr_assert(sku >= sb.data && sku < sb.data + sb.size);
}

Test(net_proto, catalog_ops_convert)
{
    run_every_op();
    const trastenda_cmd *c = to_cmd(0);
    cr_assert_eq(c->op, TRASTENDA_OP_LOCATION_UPSERT);
    cr_assert(str_is(c->loc.id, "W1"));
    cr_assert_eq(c->loc.ix, TRASTENDA_IX_NONE);
    cr_assert_eq(c->sku.ix, TRASTENDA_IX_NONE);
    cr_assert_eq(c->loc_to.ix, TRASTENDA_IX_NONE);
    cr_assert(str_is(c->name, "Main"));
    cr_assert_eq(c->lat_e6, 52520000);
    cr_assert_eq(c->lon_e6, -13405000);
    cr_assert_eq(c->has_ship_to, 0, "a location's coordinates are no ship-to");
    cr_assert_eq(c->priority, -7);
    cr_assert_eq(c->channel_count, 2);
    cr_assert(c->channels == chans_buf);
    cr_assert(str_is(c->channels[0], "web") && str_is(c->channels[1], "pos"));
    cr_assert_eq(c->active, 1, "upserts are active unless told");
    cr_assert(str_is(c->key, "k1") && str_is(c->actor, "ann") && str_is(c->reference, "r1"));
    cr_assert(c->lines == NULL && c->line_count == 0);
    c = to_cmd(1);
    cr_assert(c->op == TRASTENDA_OP_LOCATION_DEACTIVATE && str_is(c->loc.id, "W2"));
    cr_assert(c->key.len == 0 && c->key.ptr == NULL && c->channels == NULL);
    c = to_cmd(2);
    cr_assert_eq(c->op, TRASTENDA_OP_SKU_UPSERT);
    cr_assert(str_is(c->sku.id, "A") && str_is(c->name, "Apple"));
    cr_assert_eq(c->reorder_point, 5);
    cr_assert_eq(c->reorder_qty, 20);
    cr_assert_eq(c->lead_days, 3);
    cr_assert_eq(c->safety_stock, 2);
    cr_assert_eq(c->active, 0, "active:false given");
    c = to_cmd(3);
    cr_assert(c->op == TRASTENDA_OP_SKU_DEACTIVATE && str_is(c->sku.id, "B"));
    cr_assert_eq(c->active, 0);
    cr_assert(to_cmd(25)->op == TRASTENDA_OP_NOOP);
}

Test(net_proto, stock_ops_convert)
{
    run_every_op();
    const trastenda_cmd *c = to_cmd(4);
    cr_assert_eq(c->op, TRASTENDA_OP_RECEIVE);
    cr_assert(str_is(c->sku.id, "A") && str_is(c->loc.id, "W1") && c->qty == 10);
    cr_assert(c->reason == TRASTENDA_REASON_NONE && c->has_expected == 0);
    c = to_cmd(5);
    cr_assert(c->op == TRASTENDA_OP_ADJUST && c->qty == -2);
    cr_assert_eq(c->reason, TRASTENDA_REASON_DAMAGE);
    c = to_cmd(6);
    cr_assert(c->op == TRASTENDA_OP_COUNT && c->qty == 7);
    cr_assert(c->has_expected == 1 && c->expected == 8);
    cr_assert_eq(c->reason, TRASTENDA_REASON_COUNT);
    c = to_cmd(7);
    cr_assert(c->op == TRASTENDA_OP_MOVE_UNSELLABLE && c->qty == 1);
    cr_assert_eq(c->reason, TRASTENDA_REASON_QUALITY);
    c = to_cmd(8);
    cr_assert(c->op == TRASTENDA_OP_SET_SAFETY && c->qty == 3);
    c = to_cmd(9);
    cr_assert_eq(c->op, TRASTENDA_OP_TRANSFER_OUT);
    cr_assert(str_is(c->loc.id, "W1") && str_is(c->loc_to.id, "W2") && c->qty == 4);
    c = to_cmd(10);
    cr_assert(c->op == TRASTENDA_OP_TRANSFER_IN && str_is(c->loc.id, "W2"));
    cr_assert_eq(c->loc_to.id.len, 0);
}

Test(net_proto, hold_ops_convert)
{
    run_every_op();
    const trastenda_cmd *c = to_cmd(11);
    cr_assert_eq(c->op, TRASTENDA_OP_RESERVE);
    cr_assert(c->ttl_ms == 60000 && str_is(c->channel, "web") && c->partial == 1);
    cr_assert(c->has_ship_to == 1 && c->lat_e6 == 1 && c->lon_e6 == -2);
    cr_assert(c->line_count == 2 && c->lines == lines_buf);
    cr_assert(str_is(c->lines[0].sku.id, "A") && c->lines[0].qty == 2);
    cr_assert(c->lines[0].loc.id.len == 0 && c->lines[0].loc.id.ptr == NULL, "routed line");
    cr_assert(c->lines[0].loc.ix == TRASTENDA_IX_NONE && c->lines[0].sku.ix == TRASTENDA_IX_NONE);
    cr_assert(str_is(c->lines[1].loc.id, "W1") && c->lines[1].flags == 0);
    c = to_cmd(12);
    cr_assert(c->op == TRASTENDA_OP_EXTEND && c->hold_id == 12 && c->ttl_ms == 1000);
    cr_assert_eq(c->partial, 0);
    c = to_cmd(13);
    cr_assert(c->op == TRASTENDA_OP_CONFIRM && c->hold_id == 12 && str_is(c->order_id, "O1"));
    cr_assert(str_is(c->channel, "web") && c->has_ship_to == 1 && c->lat_e6 == 5);
    c = to_cmd(14);
    cr_assert(c->op == TRASTENDA_OP_RELEASE && c->hold_id == 13 && c->has_ship_to == 0);
}

Test(net_proto, order_and_po_ops_convert)
{
    run_every_op();
    const trastenda_cmd *c = to_cmd(15);
    cr_assert(c->op == TRASTENDA_OP_ORDER_PLACE && str_is(c->order_id, "O2"));
    cr_assert(c->has_ship_to == 1 && c->lat_e6 == 3 && c->lon_e6 == 4);
    cr_assert(str_is(c->channel, "web") && c->line_count == 1 && c->lines[0].qty == 1);
    c = to_cmd(16);
    cr_assert(c->op == TRASTENDA_OP_ORDER_PICK && str_is(c->loc.id, "W1"));
    const uint32_t steps[] = {TRASTENDA_OP_ORDER_PACK, TRASTENDA_OP_ORDER_SHIP,
                              TRASTENDA_OP_ORDER_DELIVER, TRASTENDA_OP_ORDER_CANCEL};
    for (uint32_t k = 0; k < 4; k++) {
        c = to_cmd(17 + k);
        cr_assert_eq(c->op, steps[k]);
        cr_assert(c->loc.id.len == 0 && c->loc.ix == TRASTENDA_IX_NONE);
        cr_assert(str_is(c->order_id, k == 3 ? "O3" : "O2"));
    }
    c = to_cmd(21);
    cr_assert(c->op == TRASTENDA_OP_ORDER_RETURN && c->line_count == 2);
    cr_assert_eq(c->lines[0].flags, TRASTENDA_LINE_UNSELLABLE);
    cr_assert(c->lines[1].flags == 0 && str_is(c->lines[1].loc.id, "W3") && c->lines[1].qty == 2);
    c = to_cmd(22);
    cr_assert(c->op == TRASTENDA_OP_PO_CREATE && str_is(c->po_id, "P1"));
    cr_assert(c->line_count == 1 && c->lines[0].qty == 100 && str_is(c->lines[0].loc.id, "W1"));
    c = to_cmd(23);
    cr_assert(c->op == TRASTENDA_OP_PO_RECEIVE && c->lines[0].qty == 60);
    c = to_cmd(24);
    cr_assert(c->op == TRASTENDA_OP_PO_CLOSE && str_is(c->po_id, "P1") && c->line_count == 0);
}

Test(net_proto, read_ops_keep_their_fields)
{
    run_every_op();
    const struct proto_op *op = &q.ops[30];
    cr_assert(op->cursor == 0 && op->limit == 10);
    op = &q.ops[32];
    cr_assert(str_is(op->sku, "A") && op->from_ms == 0 && op->to_ms == 1700000000000ll);
    cr_assert(op->before == 99 && op->limit == 1);
    cr_assert(q.ops[34].since == 42 && str_is(q.ops[35].dir, "/var/backups/t1"));
    cr_assert(!proto_kind_is_write(q.ops[26].kind) && proto_kind_is_write(q.ops[25].kind));
}

Test(net_proto, a_stock_check_takes_a_page_of_its_locations)
{
    cr_assert(run_ops("{op:'stock', sku:'A', channel:'web', cursor:7, limit:50}"), "%s", q.msg);
    cr_assert_eq(q.ops[0].err, TRASTENDA_OK, "%s", q.ops[0].msg);
    cr_assert(q.ops[0].kind == PK_STOCK && q.ops[0].cursor == 7 && q.ops[0].limit == 50);
}

/* Small engine tables: only lookups are needed. */
static trastenda_engine *
small_engine(void)
{
    trastenda_engine_config cfg;
    trastenda_engine_config_default(&cfg);
    cfg.locations_max = 8;
    cfg.skus_max = 16;
    cfg.stock_max = 64;
    cfg.holds_max = 32;
    cfg.orders_max = 32;
    cfg.pos_max = 8;
    cfg.keys_max = 16;
    cfg.lines_max = 512;
    cfg.batch_cmds_max = 64;
    trastenda_engine *e = NULL;
    cr_assert_eq(trastenda_engine_create(&cfg, &e), TRASTENDA_OK);
    return e;
}

Test(net_proto, ids_resolve_to_indices_when_the_engine_knows_them)
{
    trastenda_engine *e = small_engine();
    /* The catalog itself goes in through the protocol. */
    cr_assert(run_ops("{op:'location.upsert', loc:'W1'}, {op:'location.upsert', loc:'W2'},"
                      "{op:'sku.upsert', sku:'A'}"));
    trastenda_cmd cmds[3];
    trastenda_result res[3];
    trastenda_batch_out out;
    for (uint32_t i = 0; i < 3; i++)
        proto_to_cmd(&q, &q.ops[i], e, &cmds[i], NULL, NULL);
    cr_assert_eq(trastenda_engine_apply(e, 1700000000000ll, cmds, 3, res, &out), TRASTENDA_OK);
    for (uint32_t i = 0; i < 3; i++)
        cr_assert_eq(res[i].code, TRASTENDA_OK, "%s", res[i].message);
    uint32_t w2, a;
    trastenda_str w2_id = {"W2", 2}, a_id = {"A", 1};
    cr_assert_eq(trastenda_engine_location_lookup(e, w2_id, &w2), TRASTENDA_OK);
    cr_assert_eq(trastenda_engine_sku_lookup(e, a_id, &a), TRASTENDA_OK);

    cr_assert(run_ops("{op:'transfer.out', sku:'A', loc:'W9', to:'W2', qty:1},"
                      "{op:'reserve', ttl_ms:1000, lines:[{sku:'A', loc:'W2', qty:1},"
                      " {sku:'Z', qty:1}]}"));
    proto_to_cmd(&q, &q.ops[0], e, &cmd, lines_buf, chans_buf);
    cr_assert_eq(cmd.sku.ix, a);
    cr_assert_eq(cmd.loc.ix, TRASTENDA_IX_NONE, "unknown ids stay ids");
    cr_assert(str_is(cmd.loc.id, "W9"));
    cr_assert_eq(cmd.loc_to.ix, w2);
    proto_to_cmd(&q, &q.ops[1], e, &cmd, lines_buf, chans_buf);
    cr_assert(cmd.lines[0].sku.ix == a && cmd.lines[0].loc.ix == w2);
    cr_assert(cmd.lines[1].sku.ix == TRASTENDA_IX_NONE && cmd.lines[1].loc.ix == TRASTENDA_IX_NONE);
    trastenda_engine_destroy(e);
}

/* ---- names ---- */

Test(net_proto, op_names_round_trip)
{
    uint32_t named = 0;
    for (uint32_t k = 0; k < 256; k++) {
        const char *name = proto_kind_name(k);
        if (name == NULL) continue;
        named++;
        trastenda_str s = {name, (uint32_t)strlen(name)};
        cr_assert_eq(proto_kind_of(s), k, "%s", name);
    }
    cr_assert_eq(named, EVERY_N);
    const char *unknown[] = {"",    "a",   "orde",     "order.",   "order.placed", "Receive",
                             "zzz", "po.", "location", "reserve ", "unsellablex"};
    for (size_t k = 0; k < sizeof(unknown) / sizeof(unknown[0]); k++) {
        trastenda_str s = {unknown[k], (uint32_t)strlen(unknown[k])};
        cr_assert_eq(proto_kind_of(s), PK_NONE, "'%s'", unknown[k]);
    }
    trastenda_str none = {NULL, 0};
    cr_assert_eq(proto_kind_of(none), PK_NONE);
    cr_assert_null(proto_kind_name(PK_NONE));
    cr_assert_null(proto_kind_name(TRASTENDA_OP_COUNT_));
    cr_assert_str_eq(proto_kind_name(PK_LOW_STOCK), "low_stock");
}

/* A value of the right type for each field (decode only checks types). */
static const char *
sample_value(enum proto_field f)
{
    switch (f) {
    case PFD_CHANNELS:
        return "['web']";
    case PFD_LINES:
        return "[{sku:'A', qty:1}]";
    case PFD_PARTIAL:
    case PFD_ACTIVE:
    case PFD_FORCE:
        return "true";
    case PFD_OP:
    case PFD_KEY:
    case PFD_ACTOR:
    case PFD_REF:
    case PFD_SKU:
    case PFD_LOC:
    case PFD_TO:
    case PFD_ORDER:
    case PFD_PO:
    case PFD_NAME:
    case PFD_CHANNEL:
    case PFD_REASON:
    case PFD_DIR:
        return "'x'";
    default:
        return "5";
    }
}

Test(net_proto, every_field_name_decodes_and_near_misses_do_not)
{
    for (int f = 0; f < PFD_COUNT_; f++) {
        const char *name = proto_field_name((enum proto_field)f);
        char *t = fmt("{v:1, id:1, ops:[{%s:%s}]}", name, sample_value((enum proto_field)f));
        pack_text(t);
        free(t);
        cr_assert(proto_decode_msgpack(&q, sb.data, sb.size), "%s: %s", name, q.msg);
        cr_assert_eq(q.ops[0].err, TRASTENDA_OK, "%s: %s", name, q.ops[0].msg);
        cr_assert_eq(q.ops[0].present, 1ull << f, "%s", name);
    }
    /* Names of every length up to beyond the longest, and near misses. */
    char name[32];
    for (int len = 0; len < 20; len++) {
        memset(name, 'z', (size_t)len);
        name[len] = 0;
        char *t = fmt("{v:1, id:1, ops:[{'%s':1}]}", name);
        pack_text(t);
        free(t);
        cr_assert(proto_decode_msgpack(&q, sb.data, sb.size));
        cr_assert_eq(q.ops[0].err, TRASTENDA_E_UNKNOWN_FIELD, "len %d", len);
    }
    const char *near[] = {"Op",     "sk",       "skuu", "ttl_m",  "reorder_pointx", "channel_",
                          "lines.", "dir\\x00", "qty ", "from_m", "safety_stocK"};
    for (size_t k = 0; k < sizeof(near) / sizeof(near[0]); k++) {
        char *t = fmt("{v:1, id:1, ops:[{'%s':1}]}", near[k]);
        pack_text(t);
        free(t);
        cr_assert(proto_decode_msgpack(&q, sb.data, sb.size));
        cr_assert_eq(q.ops[0].err, TRASTENDA_E_UNKNOWN_FIELD, "'%s'", near[k]);
    }
}

/* ---- limits themselves ---- */

Test(net_proto, limits_themselves_are_accepted)
{
    cr_assert(run_ops(
        "{op:'reserve', lines:[*64({sku:'\\#64;', loc:'\\#64;', qty:1000000000})], ttl_ms:1000,"
        " lat_e6:-90000000, lon_e6:180000000, key:'\\#64;', actor:'\\#64;', ref:'\\#64;'},"
        "{op:'extend', hold:18446744073709551615, ttl_ms:86400000},"
        "{op:'location.upsert', loc:'caf\\xc3\\xa9\\xf0\\x9f\\x93\\xa6', name:'\\#128;',"
        " priority:-2147483648, channels:[*32('\\#64;')], lat_e6:90000000, lon_e6:-180000000},"
        "{op:'location.upsert', loc:'W', name:'', priority:2147483647, channels:[]},"
        "{op:'adjust', sku:'A', loc:'W', qty:-1000000000, reason:'correction'},"
        "{op:'low_stock', limit:1}, {op:'events', limit:1000, since:18446744073709551615},"
        "{op:'ledger', sku:'A', from_ms:0, to_ms:253402300800000},"
        "{op:'backup', dir:'\\#1024;'},"
        "{op:'sku.upsert', sku:'S', lead_days:3650, reorder_point:-1000000000,"
        " name:'Gr\\xc3\\xbc\\xc3\\x9fe'}"));
    for (uint32_t i = 0; i < q.n_ops; i++)
        assert_op_ok(i);
    cr_assert_eq(q.n_lines, 64);
    cr_assert_eq(q.ops[2].channels_n, 32);
    cr_assert_eq(q.ops[1].hold, UINT64_MAX);
    cr_assert_eq(to_cmd(2)->priority, INT32_MIN);
    cr_assert_eq(to_cmd(2)->channel_count, 32);
    cr_assert_eq(to_cmd(3)->channel_count, 0);
    cr_assert_eq(to_cmd(0)->line_count, 64);
}

/* ---- envelope errors ---- */

struct env_case {
    const char *name;
    const char *text; /* NULL: bytes */
    const char *bytes;
    size_t n_bytes;
    trastenda_err code;
    const char *needle;
};

#define ENV_T(n, t, c, s)                                                                          \
    {                                                                                              \
        n, t, NULL, 0, TRASTENDA_E_##c, s                                                          \
    }
#define ENV_B(n, b, c, s)                                                                          \
    {                                                                                              \
        n, NULL, b, sizeof(b) - 1, TRASTENDA_E_##c, s                                              \
    }

/* Criterion runs each case in a new process: parameters carry indices, not pointers. */
static const struct env_case env_cases[] = {
    ENV_B("empty", "", MALFORMED, "empty"),
    ENV_B("reserved byte", "\xc1", MALFORMED, "map"),
    ENV_B("map cut short", "\x82\xa1v\x01", MALFORMED, "request"),
    ENV_B("trailing byte", "\x83\xa1v\x01\xa2id\x01\xa3ops\x91\x81\xa2op\xa4noop\xc0", MALFORMED,
          "1 bytes after"),
    ENV_B("two messages", "\x80\x80", MALFORMED, "after"),
    ENV_T("array envelope", "[1, 2]", MALFORMED, "map (got an array)"),
    ENV_T("string envelope", "'hello'", MALFORMED, "map"),
    ENV_T("missing v", "{id:1, ops:[{op:'noop'}]}", MISSING_FIELD, "v: required"),
    ENV_T("missing id", "{v:1, ops:[{op:'noop'}]}", MISSING_FIELD, "id: required"),
    ENV_T("missing ops", "{v:1, id:1}", MISSING_FIELD, "ops: required"),
    ENV_T("empty map", "{}", MISSING_FIELD, "v"),
    ENV_T("v 2", "{v:2, id:1, ops:[{op:'noop'}]}", VERSION, "v: version 2"),
    ENV_T("v 2 after ops", "{id:1, ops:[{op:'noop'}], v:2}", VERSION, "version 2"),
    ENV_T("v 0", "{v:0, id:1, ops:[{op:'noop'}]}", VERSION, "version 0"),
    ENV_T("v -1", "{v:-1, id:1, ops:[{op:'noop'}]}", VERSION, "version -1"),
    ENV_T("v huge", "{v:4294967297, id:1, ops:[{op:'noop'}]}", VERSION, "4294967297"),
    ENV_T("v str", "{v:'1', id:1, ops:[{op:'noop'}]}", TYPE, "v: expected"),
    ENV_T("v float", "{v:1.0, id:1, ops:[{op:'noop'}]}", TYPE, "v: expected"),
    ENV_T("id str", "{v:1, id:'x', ops:[{op:'noop'}]}", TYPE, "id: expected"),
    ENV_T("id negative", "{v:1, id:-3, ops:[{op:'noop'}]}", RANGE, "id: must not be negative"),
    ENV_T("min_seq str", "{v:1, id:1, min_seq:'5', ops:[{op:'noop'}]}", TYPE, "min_seq"),
    ENV_T("unknown key", "{v:1, id:1, ops:[{op:'noop'}], extra:1}", UNKNOWN_FIELD, "'extra'"),
    ENV_T("unknown key, odd bytes", "{v:1, id:1, 'x\\x01\\xff':1, ops:[]}", UNKNOWN_FIELD,
          "'x\\x01\\xff'"),
    ENV_T("int key", "{v:1, id:1, 5:1, ops:[{op:'noop'}]}", TYPE, "keys must be strings"),
    ENV_T("duplicate v", "{v:1, v:1, id:1, ops:[{op:'noop'}]}", DUPLICATE_FIELD, "v: given"),
    ENV_T("duplicate ops", "{v:1, id:1, ops:[{op:'noop'}], ops:[{op:'noop'}]}", DUPLICATE_FIELD,
          "ops: given twice"),
    ENV_T("ops map", "{v:1, id:1, ops:{op:'noop'}}", TYPE, "ops: expected an array"),
    ENV_T("ops nil", "{v:1, id:1, ops:nil}", TYPE, "ops: expected"),
    ENV_T("no ops", "{v:1, id:1, ops:[]}", RANGE, "1..1024"),
    ENV_T("1025 ops", "{v:1, id:1, ops:[*1025({op:'noop'})]}", TOO_MANY_OPS, "1025"),
    ENV_T("8193 lines",
          "{v:1, id:1, ops:[*128({op:'po.create', po:'P', lines:[*64({sku:'A', loc:'W',"
          " qty:1})]}), {op:'reserve', ttl_ms:1000, lines:[{sku:'A', qty:1}]}]}",
          TOO_MANY_LINES, "ops[128].lines"),
    ENV_T("deep unknown value",
          "{v:1, id:1, ops:[{op:'noop', colour:[[[[[[{a:1}]]]]]]}, {op:'noop'}]}", MALFORMED,
          "ops[0]: malformed msgpack, or nested deeper"),
    ENV_T("deep line", "{v:1, id:1, ops:[{op:'po.create', lines:[[[[[[[1]]]]]]]}]}", MALFORMED,
          "ops[0]"),
};
#define ENV_CASES_N (sizeof(env_cases) / sizeof(env_cases[0]))

ParameterizedTestParameters(net_proto, envelope_errors_fail_the_request)
{
    static uint32_t ix[ENV_CASES_N];
    for (uint32_t k = 0; k < ENV_CASES_N; k++)
        ix[k] = k;
    return cr_make_param_array(uint32_t, ix, ENV_CASES_N);
}

ParameterizedTest(uint32_t *k, net_proto, envelope_errors_fail_the_request)
{
    const struct env_case *c = &env_cases[*k];
    msgpack_sbuffer_clear(&sb);
    if (c->text != NULL)
        pack_text(c->text);
    else if (c->n_bytes > 0)
        msgpack_sbuffer_write(&sb, c->bytes, c->n_bytes);
    /* An exact copy, so that ASan sees any read past the end. */
    char *copy = malloc(sb.size + 1);
    if (sb.size > 0) memcpy(copy, sb.data, sb.size);
    bool ok = proto_decode_msgpack(&q, copy, sb.size);
    cr_assert(!ok, "%s: accepted", c->name);
    cr_assert_eq(q.err, c->code, "%s: want %s, got %s (%s)", c->name, trastenda_err_name(c->code),
                 trastenda_err_name(q.err), q.msg);
    cr_assert(strstr(q.msg, c->needle) != NULL, "%s: message '%s' lacks '%s'", c->name, q.msg,
              c->needle);
    cr_assert(!proto_validate(&q), "validate keeps the envelope error");
    cr_assert_eq(q.err, c->code);
    free(copy);
}

Test(net_proto, limits_of_the_envelope_are_accepted)
{
    cr_assert(run_text("{v:1, id:18446744073709551615, min_seq:0, ops:[*1024({op:'noop'})]}"), "%s",
              q.msg);
    cr_assert_eq(q.n_ops, 1024);
    cr_assert_eq(q.id, UINT64_MAX);
    cr_assert(run_text("{ops:[*128({op:'po.create', po:'P', lines:[*64({sku:'A', loc:'W',"
                       " qty:1})]})], id:1, v:1}"),
              "%s", q.msg);
    cr_assert_eq(q.n_lines, PROTO_LINES_TOTAL_MAX);
    for (uint32_t i = 0; i < q.n_ops; i++)
        assert_op_ok(i);
}

Test(net_proto, a_request_beyond_the_transport_limit_is_too_big)
{
    char *big = calloc(1, PROTO_MSG_MAX + 1);
    cr_assert(!proto_decode_msgpack(&q, big, PROTO_MSG_MAX + 1));
    cr_assert_eq(q.err, TRASTENDA_E_TOO_BIG);
    cr_assert(strstr(q.msg, "4194304") != NULL, "%s", q.msg);
    free(big);
}

Test(net_proto, validate_applies_the_envelope_rules_for_any_decoder)
{
    /* As a second decoder would leave it: no msgpack involved. */
    struct proto_req r;
    proto_req_init(&r);
    r.present = 1 | 4;
    cr_assert(!proto_validate(&r));
    cr_assert_eq(r.err, TRASTENDA_E_MISSING_FIELD);
    cr_assert(strstr(r.msg, "id") != NULL);
    r.err = TRASTENDA_OK;
    r.present = 7;
    r.version = 2;
    cr_assert(!proto_validate(&r));
    cr_assert_eq(r.err, TRASTENDA_E_VERSION);
    r.err = TRASTENDA_OK;
    r.version = 1;
    cr_assert(!proto_validate(&r));
    cr_assert_eq(r.err, TRASTENDA_E_RANGE, "no ops");
    proto_req_fini(&r);
    proto_req_fini(NULL);
}

/* ---- op errors ---- */

struct op_case {
    const char *op; /* the middle op of three */
    trastenda_err code;
    const char *needle;
    uint32_t line; /* err_line, or NL */
};

#define NL UINT32_MAX
#define OPC(o, c, s)                                                                               \
    {                                                                                              \
        o, TRASTENDA_E_##c, s, NL                                                                  \
    }
#define LNC(o, c, s, l)                                                                            \
    {                                                                                              \
        o, TRASTENDA_E_##c, s, l                                                                   \
    }
#define RCV  "op:'receive', sku:'A', loc:'W1', qty:5"
#define RSV  "op:'reserve', ttl_ms:60000"
#define LSKU "{sku:'A', qty:1}"

static const struct op_case op_cases[] = {
    /* operation */
    OPC("{op:'frobnicate'}", UNKNOWN_OP, "unknown operation 'frobnicate'"),
    OPC("{op:'order.'}", UNKNOWN_OP, "'order.'"),
    OPC("{op:'\\x01\\xff'}", UNKNOWN_OP, "'\\x01\\xff'"),
    OPC("{op:''}", UNKNOWN_OP, "''"),
    OPC("{sku:'A', qty:1}", MISSING_FIELD, ".op: required"),
    OPC("{}", MISSING_FIELD, ".op: required"),
    OPC("{op:5}", TYPE, ".op: expected a string (got an integer)"),
    OPC("5", TYPE, "ops[1]: expected a map (got an integer)"),
    OPC("['receive']", TYPE, "ops[1]: expected a map (got an array)"),
    OPC("{1:'receive'}", TYPE, "keys must be strings"),
    /* required fields */
    OPC("{op:'receive', sku:'A', loc:'W1'}", MISSING_FIELD, ".qty: required by receive"),
    OPC("{op:'adjust', sku:'A', loc:'W1', qty:1}", MISSING_FIELD, ".reason: required"),
    OPC("{op:'transfer.out', sku:'A', loc:'W1', qty:1}", MISSING_FIELD, ".to: required"),
    OPC("{op:'reserve', lines:[" LSKU "]}", MISSING_FIELD, ".ttl_ms: required by reserve"),
    OPC("{" RSV "}", MISSING_FIELD, ".lines: required by reserve"),
    OPC("{op:'extend', ttl_ms:1000}", MISSING_FIELD, ".hold: required"),
    OPC("{op:'confirm', hold:1}", MISSING_FIELD, ".order: required"),
    OPC("{op:'order.place', order:'O', channel:'web', lines:[" LSKU "], lon_e6:1}", MISSING_FIELD,
        ".lat_e6: required by order.place"),
    OPC("{op:'order.return', order:'O'}", MISSING_FIELD, ".lines: required"),
    OPC("{op:'po.create', lines:[{sku:'A', loc:'W', qty:1}]}", MISSING_FIELD, ".po: required"),
    OPC("{op:'location.upsert'}", MISSING_FIELD, ".loc: required"),
    OPC("{op:'sku.upsert', name:'x'}", MISSING_FIELD, ".sku: required"),
    OPC("{op:'stock'}", MISSING_FIELD, ".sku: required by stock"),
    OPC("{op:'ledger', loc:'W'}", MISSING_FIELD, ".sku: required by ledger"),
    OPC("{op:'backup'}", MISSING_FIELD, ".dir: required by backup"),
    OPC("{op:'hold'}", MISSING_FIELD, ".hold: required by hold"),
    /* fields the op does not take */
    OPC("{" RCV ", ttl_ms:1000}", UNKNOWN_FIELD, "receive does not take ttl_ms"),
    OPC("{" RCV ", reason:'count'}", UNKNOWN_FIELD, "receive does not take reason"),
    OPC("{op:'noop', qty:1}", UNKNOWN_FIELD, "noop does not take qty"),
    OPC("{op:'stock', sku:'A', key:'k'}", UNKNOWN_FIELD, "stock does not take key"),
    OPC("{op:'status', limit:5}", UNKNOWN_FIELD, "status does not take limit"),
    OPC("{op:'order.deliver', order:'O', loc:'W'}", UNKNOWN_FIELD, "does not take loc"),
    OPC("{op:'sku.upsert', sku:'A', channels:[]}", UNKNOWN_FIELD, "does not take channels"),
    OPC("{op:'receive', sku:'A', loc:'W1', qty:5, lines:[" LSKU "]}", UNKNOWN_FIELD,
        "receive does not take lines"),
    OPC("{" RCV ", colour:'red'}", UNKNOWN_FIELD, "ops[1]: unknown field 'colour'"),
    OPC("{op:'noop', colour:[[[[{a:1}]]]]}", UNKNOWN_FIELD, "'colour'"),
    OPC("{op:'noop', colour:[[[[[1]]]]]}", UNKNOWN_FIELD, "'colour'"),
    OPC("{colour:{a:'\\#300;', b:1.5, c:nil}, op:'noop'}", UNKNOWN_FIELD, "'colour'"),
    /* wrong types, one per kind of field */
    OPC("{op:'receive', sku:5, loc:'W1', qty:5}", TYPE, ".sku: expected a string"),
    OPC("{op:'receive', sku:'A', loc:nil, qty:5}", TYPE, ".loc: expected a string (got nil)"),
    OPC("{op:'receive', sku:'A', loc:'W1', qty:'5'}", TYPE, ".qty: expected an integer"),
    OPC("{op:'receive', sku:'A', loc:'W1', qty:5.0}", TYPE,
        ".qty: expected an integer (got"
        " a float)"),
    OPC("{op:'receive', sku:'A', loc:'W1', qty:true}", TYPE, ".qty: expected an integer"),
    OPC("{op:'release', hold:'1'}", TYPE, ".hold: expected an integer"),
    OPC("{op:'sku.upsert', sku:'A', name:7}", TYPE, ".name: expected a string"),
    OPC("{op:'sku.upsert', sku:'A', active:1}", TYPE, ".active: expected a boolean"),
    OPC("{" RSV ", lines:[" LSKU "], partial:'yes'}", TYPE, ".partial: expected a boolean"),
    OPC("{op:'adjust', sku:'A', loc:'W', qty:1, reason:2}", TYPE,
        ".reason: expected a "
        "string"),
    OPC("{op:'backup', dir:['a']}", TYPE, ".dir: expected a string"),
    OPC("{" RCV ", key:true}", TYPE, ".key: expected a string"),
    OPC("{op:'low_stock', cursor:-1}", RANGE, ".cursor: must be 0..18446744073709551615"),
    OPC("{" RSV ", lines:{sku:'A', qty:1}}", TYPE, ".lines: expected an array of line maps"),
    LNC("{" RSV ", lines:[" LSKU ", 5]}", TYPE, ".lines[1]: expected a map", 1),
    LNC("{" RSV ", lines:[{sku:7, qty:1}]}", TYPE, ".lines[0].sku: expected a string", 0),
    LNC("{" RSV ", lines:[{sku:'A', qty:'1'}]}", TYPE, ".lines[0].qty: expected an integer", 0),
    LNC("{" RSV ", lines:[{sku:'A', loc:1, qty:1}]}", TYPE, ".lines[0].loc: expected", 0),
    LNC("{op:'order.return', order:'O', lines:[{sku:'A', loc:'W', qty:1, unsellable:1}]}", TYPE,
        ".lines[0].unsellable: expected a boolean", 0),
    LNC("{" RSV ", lines:[{1:'A', qty:1}]}", TYPE, ".lines[0]: keys must be strings", 0),
    OPC("{op:'location.upsert', loc:'W', channels:'web'}", TYPE,
        ".channels: expected an "
        "array of strings"),
    OPC("{op:'location.upsert', loc:'W', channels:['web', 1]}", TYPE, ".channels[1]: expected"),
    /* numbers out of range */
    OPC("{op:'reserve', lines:[" LSKU "], ttl_ms:999}", RANGE,
        ".ttl_ms: must be 1000..86400000 (got"
        " 999)"),
    OPC("{op:'extend', hold:1, ttl_ms:86400001}", RANGE,
        ".ttl_ms: must be 1000..86400000 (got"
        " 86400001)"),
    OPC("{op:'low_stock', limit:0}", RANGE, ".limit: must be 1..1000 (got 0)"),
    OPC("{op:'events', limit:1001}", RANGE, ".limit: must be 1..1000 (got 1001)"),
    OPC("{op:'reorder', limit:-5}", RANGE, ".limit: must be 1..1000 (got -5)"),
    OPC("{op:'location.upsert', loc:'W', lat_e6:90000001, lon_e6:0}", RANGE,
        ".lat_e6: must be -90000000..90000000 (got 90000001)"),
    OPC("{op:'location.upsert', loc:'W', lat_e6:0, lon_e6:-180000001}", RANGE,
        ".lon_e6: must be -180000000..180000000"),
    OPC("{op:'receive', sku:'A', loc:'W1', qty:1000000001}", RANGE,
        ".qty: must be -1000000000..1000000000 (got 1000000001)"),
    OPC("{op:'receive', sku:'A', loc:'W1', qty:18446744073709551615}", RANGE,
        ".qty: must be -1000000000..1000000000 (got 18446744073709551615)"),
    OPC("{op:'count', sku:'A', loc:'W1', qty:1, expected:-1000000001}", RANGE, ".expected"),
    OPC("{op:'sku.upsert', sku:'A', reorder_qty:1000000001}", RANGE, ".reorder_qty"),
    OPC("{op:'sku.upsert', sku:'A', lead_days:3651}", RANGE, ".lead_days: must be 0..3650"),
    OPC("{op:'sku.upsert', sku:'A', lead_days:-1}", RANGE, ".lead_days"),
    OPC("{op:'location.upsert', loc:'W', priority:2147483648}", RANGE, ".priority"),
    OPC("{op:'release', hold:-1}", RANGE, ".hold: must be 0..18446744073709551615 (got -1)"),
    OPC("{op:'ledger', sku:'A', from_ms:-1}", RANGE, ".from_ms: must be 0..253402300800000"),
    OPC("{op:'ledger', sku:'A', to_ms:253402300800001}", RANGE, ".to_ms"),
    OPC("{op:'adjust', sku:'A', loc:'W', qty:1, reason:'bogus'}", RANGE,
        ".reason: must be count, damage, theft, found, correction or quality (got 'bogus')"),
    OPC("{op:'count', sku:'A', loc:'W', qty:1, reason:''}", RANGE, ".reason"),
    LNC("{" RSV ", lines:[" LSKU ", {sku:'A', qty:-1000000001}]}", RANGE,
        ".lines[1].qty: must be -1000000000..1000000000", 1),
    LNC("{" RSV ", lines:[{sku:'A', qty:9223372036854775808}]}", RANGE, ".lines[0].qty", 0),
    OPC("{op:'location.upsert', loc:'W', channels:[*33('c')]}", RANGE,
        ".channels: at most 32 (got 33)"),
    /* strings */
    OPC("{op:'receive', sku:'\\#65;', loc:'W1', qty:5}", STRING,
        ".sku: must be 1..64 bytes"
        " (got 65)"),
    OPC("{op:'receive', sku:'', loc:'W1', qty:5}", STRING, ".sku: must be 1..64 bytes (got 0)"),
    OPC("{op:'receive', sku:'A\\xff', loc:'W1', qty:5}", STRING,
        ".sku: must be UTF-8 without control characters (bad byte 0xff at 1)"),
    OPC("{op:'receive', sku:'A\\x01B', loc:'W1', qty:5}", STRING, ".sku: must be UTF-8"),
    OPC("{op:'receive', sku:'A\\x7f', loc:'W1', qty:5}", STRING, ".sku"),
    OPC("{op:'receive', sku:'\\xc0\\x80', loc:'W1', qty:5}", STRING, ".sku: must be UTF-8"),
    OPC("{op:'receive', sku:'\\xed\\xa0\\x80', loc:'W1', qty:5}", STRING, ".sku"),
    OPC("{op:'receive', sku:'\\xc2\\x85', loc:'W1', qty:5}", STRING, ".sku"),
    OPC("{op:'receive', sku:'\\xe2\\x82', loc:'W1', qty:5}", STRING, ".sku"),
    OPC("{op:'receive', sku:'\\xf4\\x90\\x80\\x80', loc:'W1', qty:5}", STRING, ".sku"),
    OPC("{op:'receive', sku:'A', loc:'W\\x00', qty:5}", STRING, ".loc"),
    OPC("{op:'transfer.out', sku:'A', loc:'W', to:'\\#65;', qty:1}", STRING, ".to"),
    OPC("{" RCV ", key:'\\#65;'}", STRING, ".key: must be 1..64"),
    OPC("{" RCV ", actor:''}", STRING, ".actor"),
    OPC("{" RCV ", ref:'\\x0a'}", STRING, ".ref"),
    OPC("{op:'confirm', hold:1, order:'\\#65;'}", STRING, ".order"),
    OPC("{op:'po.close', po:'\\xff'}", STRING, ".po"),
    OPC("{" RSV ", lines:[" LSKU "], channel:'\\#65;'}", STRING, ".channel: must be 1..64"),
    OPC("{op:'sku.upsert', sku:'A', name:'\\#129;'}", STRING, ".name: must be 0..128 bytes"),
    OPC("{op:'sku.upsert', sku:'A', name:'a\\x09b'}", STRING, ".name: must be UTF-8"),
    OPC("{op:'backup', dir:'\\#1025;'}", STRING, ".dir: must be 1..1024 bytes (got 1025)"),
    OPC("{op:'backup', dir:''}", STRING, ".dir: must be 1..1024 bytes (got 0)"),
    OPC("{op:'location.upsert', loc:'W', channels:['web', '']}", STRING, ".channels[1]"),
    LNC("{" RSV ", lines:[" LSKU ", {sku:'\\#65;', qty:1}]}", STRING, ".lines[1].sku", 1),
    LNC("{" RSV ", lines:[{sku:'A', loc:'\\x1b', qty:1}]}", STRING, ".lines[0].loc", 0),
    /* duplicates */
    OPC("{op:'receive', sku:'A', sku:'B', loc:'W1', qty:5}", DUPLICATE_FIELD, ".sku: given twice"),
    OPC("{op:'receive', op:'receive', sku:'A', loc:'W1', qty:5}", DUPLICATE_FIELD, ".op: given"),
    LNC("{" RSV ", lines:[{sku:'A', qty:1, qty:2}]}", DUPLICATE_FIELD, ".lines[0].qty: given", 0),
    /* lines */
    OPC("{" RSV ", lines:[*65(" LSKU ")]}", TOO_MANY_LINES,
        ".lines: must hold 1..64 lines (got"
        " 65)"),
    OPC("{" RSV ", lines:[]}", RANGE, ".lines: must hold 1..64 lines (got 0)"),
    LNC("{" RSV ", lines:[" LSKU ", {sku:'A'}]}", MISSING_FIELD, ".lines[1].qty: required", 1),
    LNC("{" RSV ", lines:[{qty:1}]}", MISSING_FIELD, ".lines[0].sku: required", 0),
    LNC("{" RSV ", lines:[{sku:'A', qty:1, bin:'B1'}]}", UNKNOWN_FIELD,
        ".lines[0]: unknown field 'bin'", 0),
    LNC("{op:'po.create', po:'P', lines:[{sku:'A', loc:'W', qty:1}, {sku:'A', qty:1}]}",
        MISSING_FIELD, ".lines[1].loc: required by po.create", 1),
    LNC("{op:'po.receive', po:'P', lines:[{sku:'A', qty:1}]}", MISSING_FIELD, ".loc", 0),
    LNC("{op:'order.return', order:'O', lines:[{sku:'A', qty:1}]}", MISSING_FIELD,
        ".lines[0].loc: required by order.return", 0),
    LNC("{op:'order.place', order:'O', channel:'web', lat_e6:0, lon_e6:0, lines:[{sku:'A', "
        "loc:'W', qty:1}]}",
        UNKNOWN_FIELD, ".lines[0]: order.place does not take loc", 0),
    LNC("{" RSV ", lines:[{sku:'A', qty:1, unsellable:false}]}", UNKNOWN_FIELD,
        "reserve does not take unsellable", 0),
    LNC("{op:'po.create', po:'P', lines:[{sku:'A', loc:'W', qty:1, unsellable:true}]}",
        UNKNOWN_FIELD, "unsellable", 0),
    /* coordinates come in pairs */
    OPC("{" RSV ", lines:[" LSKU "], lat_e6:1}", MISSING_FIELD, ".lon_e6: required with lat_e6"),
    OPC("{op:'location.upsert', loc:'W', lon_e6:1}", MISSING_FIELD, ".lat_e6: required with"),
    OPC("{op:'confirm', hold:1, order:'O', lat_e6:1}", MISSING_FIELD, ".lon_e6"),
    /* one record has no pages */
    OPC("{op:'stock', sku:'A', loc:'W1', cursor:3}", INVALID, ".cursor: stock with loc reads one"),
    OPC("{op:'stock', sku:'A', loc:'W1', limit:3}", INVALID, ".limit: stock with loc reads one"),
    OPC("{op:'stock', sku:'A', limit:0}", RANGE, ".limit: must be 1..1000 (got 0)"),
};
#define OP_CASES_N (sizeof(op_cases) / sizeof(op_cases[0]))

ParameterizedTestParameters(net_proto, a_bad_op_fails_alone_naming_its_field)
{
    static uint32_t ix[OP_CASES_N];
    for (uint32_t k = 0; k < OP_CASES_N; k++)
        ix[k] = k;
    return cr_make_param_array(uint32_t, ix, OP_CASES_N);
}

/* The bad op between two good ones: the good ones (and their lines) are untouched. */
ParameterizedTest(uint32_t *k, net_proto, a_bad_op_fails_alone_naming_its_field)
{
    const struct op_case *c = &op_cases[*k];
    char *ops =
        fmt("{" RCV ", key:'k0'}, %s, {" RSV ", lines:[{sku:'Z9', loc:'L9', qty:9}]}", c->op);
    cr_assert(run_ops(ops), "%s: envelope %s (%s)", c->op, trastenda_err_name(q.err), q.msg);
    free(ops);
    cr_assert_eq(q.n_ops, 3);
    const struct proto_op *bad = &q.ops[1];
    cr_assert_eq(bad->err, c->code, "%s: want %s, got %s (%s)", c->op, trastenda_err_name(c->code),
                 trastenda_err_name(bad->err), bad->msg);
    cr_assert(strstr(bad->msg, c->needle) != NULL, "%s: message '%s' lacks '%s'", c->op, bad->msg,
              c->needle);
    cr_assert(strncmp(bad->msg, "ops[1]", 6) == 0, "message names the op: '%s'", bad->msg);
    cr_assert_eq(bad->err_line, c->line, "%s: err_line %u", c->op, bad->err_line);
    for (const char *m = bad->msg; *m; m++)
        cr_assert(*m >= 0x20 && *m < 0x7f, "printable ASCII message: '%s'", bad->msg);
    const trastenda_cmd *cm = to_cmd(0);
    cr_assert(cm->op == TRASTENDA_OP_RECEIVE && cm->qty == 5 && str_is(cm->key, "k0"));
    cm = to_cmd(2);
    cr_assert(cm->op == TRASTENDA_OP_RESERVE && cm->line_count == 1);
    cr_assert(str_is(cm->lines[0].sku.id, "Z9") && str_is(cm->lines[0].loc.id, "L9"));
    cr_assert_eq(cm->lines[0].qty, 9);
}

Test(net_proto, a_decode_error_drops_the_ops_lines)
{
    /* Op 1 fails in its second line after its first was stored; op 2's line comes right after
     * op 0's. */
    cr_assert(run_ops("{op:'po.create', po:'P', lines:[{sku:'A', loc:'W', qty:1}]},"
                      "{" RSV ", lines:[{sku:'B', qty:1}, {sku:'C', qty:'x'}]},"
                      "{op:'location.upsert', loc:'W', channels:['a', 3]},"
                      "{op:'po.create', po:'Q', lines:[{sku:'D', loc:'W', qty:4}]},"
                      "{op:'location.upsert', loc:'V', channels:['b']}"));
    cr_assert_eq(q.ops[1].err, TRASTENDA_E_TYPE);
    cr_assert_eq(q.ops[1].err_line, 1);
    cr_assert_eq(q.ops[2].err, TRASTENDA_E_TYPE);
    cr_assert_eq(q.n_lines, 2);
    cr_assert_eq(q.n_channels, 1);
    cr_assert_eq(q.ops[3].lines_at, 1);
    cr_assert(str_is(to_cmd(3)->lines[0].sku.id, "D"));
    cr_assert(str_is(to_cmd(4)->channels[0], "b"));
}

/* ---- lying counts, truncation, nesting ---- */

Test(net_proto, huge_declared_counts_fail_without_allocating)
{
    static const struct {
        const char *bytes;
        size_t n;
    } cases[] = {
#define B(s) {s, sizeof(s) - 1}
        B("\xdf\xff\xff\xff\xff"),                                 /* envelope map32 */
        B("\x81\xa3ops\xdd\xff\xff\xff\xff"),                      /* ops array32 */
        B("\x81\xa3ops\xdc\xff\xff\x80"),                          /* ops array16 */
        B("\x81\xa3ops\x91\xdf\xff\xff\xff\xff"),                  /* op map32 */
        B("\x81\xa3ops\x91\x81\xa5lines\xdd\xff\xff\xff\xff"),     /* lines array32 */
        B("\x81\xa3ops\x91\x81\xa5lines\x91\xdf\x7f\xff\xff\xff"), /* line map32 */
        B("\x81\xa3ops\x91\x81\xa8"
          "channels\xdd\xff\xff\xff\xff"),                   /* channels array32 */
        B("\x81\xa3ops\x91\x81\xa3sku\xdb\xff\xff\xff\xff"), /* str32 */
        B("\x81\xa3ops\x91\x81\xa3sku\xc6\xff\xff\xff\xff"), /* bin32 */
        B("\x81\xa3ops\x91\x81\xa6"
          "colour\xc9\xff\xff\xff\xff\x01"), /* ext32 */
#undef B
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct proto_req fresh;
        proto_req_init(&fresh);
        char *copy = malloc(cases[k].n);
        memcpy(copy, cases[k].bytes, cases[k].n);
        cr_assert(!proto_decode_msgpack(&fresh, copy, cases[k].n), "case %zu", k);
        cr_assert_eq(fresh.err, TRASTENDA_E_MALFORMED, "case %zu: %s %s", k,
                     trastenda_err_name(fresh.err), fresh.msg);
        cr_assert_leq(fresh.cap_ops, 16, "case %zu: ops for the one op at most", k);
        cr_assert_leq(fresh.cap_lines, 16, "case %zu: the one declared line at most", k);
        cr_assert_eq(fresh.cap_channels, 0, "case %zu", k);
        proto_req_fini(&fresh);
        free(copy);
    }
}

Test(net_proto, every_truncation_is_malformed)
{
    char *t = every_op_text();
    pack_text(t);
    free(t);
    size_t size = sb.size;
    char *whole = malloc(size);
    memcpy(whole, sb.data, size);
    for (size_t cut = 0; cut < size; cut++) {
        /* Exactly cut bytes: ASan catches any read past them. */
        char *copy = malloc(cut + 1);
        memcpy(copy, whole, cut);
        cr_assert(!proto_decode_msgpack(&q, copy, cut), "cut at %zu", cut);
        cr_assert_eq(q.err, TRASTENDA_E_MALFORMED, "cut at %zu: %s", cut, q.msg);
        cr_assert(!proto_validate(&q));
        free(copy);
    }
    cr_assert(proto_decode_msgpack(&q, whole, size));
    free(whole);
}

Test(net_proto, nesting_is_bounded_without_recursion_beyond_it)
{
    /* 10000 levels in an unknown value: refused, no stack overflow. */
    msgpack_sbuffer_clear(&sb);
    pack_text("{v:1, id:1, ops:[{op:'noop', colour:'x'}]}");
    size_t head = sb.size - 2; /* the value 'x' is the last two bytes */
    char *msg = malloc(head + 10001);
    memcpy(msg, sb.data, head);
    memset(msg + head, 0x91, 10000);
    msg[head + 10000] = (char)0xc0;
    cr_assert(!proto_decode_msgpack(&q, msg, head + 10001));
    cr_assert_eq(q.err, TRASTENDA_E_MALFORMED);
    cr_assert(strstr(q.msg, "nested deeper than 8") != NULL, "%s", q.msg);
    free(msg);
}

/* ---- reuse ---- */

Test(net_proto, arrays_grow_to_the_high_water_mark_and_are_reused)
{
    cr_assert(run_text("{v:1, id:1, ops:[*300({op:'location.upsert', loc:'W', channels:['a',"
                       " 'b']}), *20({" RSV ", lines:[*64(" LSKU ")]})]}"),
              "%s", q.msg);
    uint32_t cap_ops = q.cap_ops, cap_lines = q.cap_lines, cap_channels = q.cap_channels;
    cr_assert(cap_ops >= 320 && cap_lines >= 1280 && cap_channels >= 600);
    const void *ops = q.ops, *lines = q.lines, *channels = q.channels;
    cr_assert(run_ops("{op:'noop'}"));
    cr_assert_eq(q.n_ops, 1);
    cr_assert(q.n_lines == 0 && q.n_channels == 0);
    cr_assert(q.cap_ops == cap_ops && q.cap_lines == cap_lines && q.cap_channels == cap_channels);
    cr_assert(q.ops == ops && q.lines == lines && q.channels == channels, "no reallocation");
    cr_assert_eq(q.ops[0].present, 1, "the op was reset");
    cr_assert(q.min_seq == 0 && q.present == 7);
}

/* ---- random mutations ---- */

static uint64_t
rng_next(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Whatever the bytes, the result is consistent: an envelope error, or ops that are each valid
 * (and convert) or carry an error naming themselves. */
static void
check_consistent(bool ok, bool validated)
{
    if (!ok) {
        cr_assert_neq(q.err, TRASTENDA_OK);
        cr_assert_neq(q.msg[0], '\0');
        return;
    }
    cr_assert(q.n_ops >= 1 && q.n_ops <= PROTO_OPS_MAX && q.n_lines <= PROTO_LINES_TOTAL_MAX);
    for (uint32_t i = 0; i < q.n_ops; i++) {
        const struct proto_op *op = &q.ops[i];
        if (op->err != TRASTENDA_OK) {
            cr_assert(op->err >= TRASTENDA_E_MALFORMED && op->err <= TRASTENDA_E_TOO_BIG);
            cr_assert(strncmp(op->msg, "ops[", 4) == 0, "%s", op->msg);
            for (const char *m = op->msg; *m; m++)
                cr_assert(*m >= 0x20 && *m < 0x7f, "'%s'", op->msg);
            continue;
        }
        if (!validated) continue;
        cr_assert_not_null(proto_kind_name(op->kind));
        if (!proto_kind_is_write(op->kind)) continue;
        proto_to_cmd(&q, op, NULL, &cmd, lines_buf, chans_buf);
        cr_assert(cmd.line_count <= TRASTENDA_LINES_MAX);
        cr_assert(cmd.channel_count <= PROTO_CHANNELS_MAX);
    }
}

ParameterizedTestParameters(net_proto, random_mutations_never_crash)
{
    static uint64_t seeds[] = {1, 2, 3, 0x5eed, 0xdeadbeef};
    return cr_make_param_array(uint64_t, seeds, sizeof(seeds) / sizeof(seeds[0]));
}

ParameterizedTest(uint64_t *seed, net_proto, random_mutations_never_crash)
{
    char *t = every_op_text();
    pack_text(t);
    free(t);
    size_t size = sb.size;
    uint8_t *base = malloc(size);
    memcpy(base, sb.data, size);
    static const uint8_t spicy[] = {0x00, 0x7f, 0x80, 0x8f, 0x9f, 0xa0, 0xbf, 0xc0,
                                    0xc1, 0xc2, 0xc3, 0xcf, 0xd3, 0xd9, 0xdb, 0xdc,
                                    0xdd, 0xde, 0xdf, 0xff, 0x91, 0x81, 0xa1, 0xe0};
    uint64_t s = *seed;
    uint32_t accepted = 0;
    for (int it = 0; it < 1000; it++) {
        size_t n = size;
        if (rng_next(&s) % 8 == 0) n = rng_next(&s) % size;
        uint8_t *m = malloc(n + 1);
        memcpy(m, base, n);
        int flips = 1 + (int)(rng_next(&s) % 4);
        for (int k = 0; k < flips && n > 0; k++) {
            size_t at = rng_next(&s) % n;
            uint64_t how = rng_next(&s);
            if (how % 3 == 0)
                m[at] ^= (uint8_t)(1u << (how / 3 % 8));
            else if (how % 3 == 1)
                m[at] = spicy[how / 3 % sizeof(spicy)];
            else
                m[at] = (uint8_t)(how >> 8);
        }
        bool ok = proto_decode_msgpack(&q, m, n);
        check_consistent(ok, false);
        bool valid = proto_validate(&q);
        cr_assert_eq(ok, valid);
        check_consistent(valid, true);
        accepted += valid;
        free(m);
    }
    cr_log_info("seed %llu: %u of 1000 mutants accepted as requests", (unsigned long long)*seed,
                accepted);
    free(base);
}
