/*
 * net/reply.c - encoding replies and events in msgpack (docs/PROTOCOL.md), with msgpack-c's
 * packer writing into the context's buffer.
 */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "repl.h"
#include "srv.h"

/* ---- a growable buffer behind msgpack_packer ---- */

struct obuf {
    uint8_t **p;
    size_t *len, *cap;
};

static int
obuf_write(void *data, const char *buf, size_t len)
{
    struct obuf *o = data;
    if (*o->len + len > *o->cap) {
        size_t c = *o->cap == 0 ? 4096 : *o->cap;
        while (c < *o->len + len)
            c *= 2;
        uint8_t *n = realloc(*o->p, c);
        if (n == NULL) return -1;
        *o->p = n;
        *o->cap = c;
    }
    memcpy(*o->p + *o->len, buf, len);
    *o->len += len;
    return 0;
}

static void
pk_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void
pk_str(msgpack_packer *pk, trastenda_str s)
{
    msgpack_pack_str(pk, s.len);
    msgpack_pack_str_body(pk, s.ptr, s.len);
}

static void
pk_key(msgpack_packer *pk, const char *k)
{
    pk_cstr(pk, k);
}

static void
pk_kv_u(msgpack_packer *pk, const char *k, uint64_t v)
{
    pk_key(pk, k);
    msgpack_pack_uint64(pk, v);
}

static void
pk_kv_i(msgpack_packer *pk, const char *k, int64_t v)
{
    pk_key(pk, k);
    msgpack_pack_int64(pk, v);
}

static void
pk_kv_s(msgpack_packer *pk, const char *k, const char *v)
{
    pk_key(pk, k);
    pk_cstr(pk, v);
}

static void
pk_kv_str(msgpack_packer *pk, const char *k, trastenda_str v)
{
    pk_key(pk, k);
    pk_str(pk, v);
}

static void
pk_kv_b(msgpack_packer *pk, const char *k, bool v)
{
    pk_key(pk, k);
    if (v)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

static trastenda_str
sku_id(const trastenda_engine *e, uint32_t ix)
{
    return ix == TRASTENDA_IX_NONE ? (trastenda_str){"", 0} : trastenda_engine_sku_id(e, ix);
}

static trastenda_str
loc_id(const trastenda_engine *e, uint32_t ix)
{
    return ix == TRASTENDA_IX_NONE ? (trastenda_str){"", 0} : trastenda_engine_location_id(e, ix);
}

static const char *
hold_state_name(uint8_t s)
{
    static const char *const n[] = {"?", "open", "confirmed", "released", "expired"};
    return s <= 4 ? n[s] : "?";
}

static const char *
order_state_name(uint8_t s)
{
    static const char *const n[] = {"?",       "placed",    "allocated", "picking", "packed",
                                    "shipped", "delivered", "cancelled", "returned"};
    return s <= 8 ? n[s] : "?";
}

static const char *
rule_name(uint8_t r)
{
    static const char *const n[] = {"none", "explicit", "single", "exact", "greedy"};
    return r <= 4 ? n[r] : "?";
}

/* An error result: {code, name, msg[, line][, retry_ms][, leader]} */
static void
pk_error(struct srv *s, msgpack_packer *pk, trastenda_err code, const char *msg, uint32_t line)
{
    bool has_line = line != UINT32_MAX;
    bool busy = code == TRASTENDA_E_BUSY;
    bool nl = code == TRASTENDA_E_NOT_LEADER;
    msgpack_pack_map(pk, 3 + has_line + busy + nl);
    pk_kv_u(pk, "code", (uint64_t)code);
    pk_kv_s(pk, "name", trastenda_err_name(code));
    pk_kv_s(pk, "msg", msg);
    if (has_line) pk_kv_u(pk, "line", line);
    if (busy) pk_kv_u(pk, "retry_ms", 5);
    if (nl) pk_kv_s(pk, "leader", srv_leader(s));
}

static void
pk_stock_rec(msgpack_packer *pk, const trastenda_engine *e, const trastenda_stock *r, bool sku)
{
    msgpack_pack_map(pk, 9 + sku);
    if (sku) pk_kv_str(pk, "sku", sku_id(e, r->sku_ix));
    pk_kv_str(pk, "loc", loc_id(e, r->loc_ix));
    pk_kv_i(pk, "on_hand", r->on_hand);
    pk_kv_i(pk, "committed", r->committed);
    pk_kv_i(pk, "held", r->held);
    pk_kv_i(pk, "unsellable", r->unsellable);
    pk_kv_i(pk, "safety_stock", r->safety_stock);
    pk_kv_i(pk, "incoming", r->incoming);
    pk_kv_i(pk, "in_transit", r->in_transit);
    pk_kv_i(pk, "available", r->available);
}

static void
pk_allocs(msgpack_packer *pk, const trastenda_engine *e, const trastenda_result *r)
{
    pk_key(pk, "allocs");
    msgpack_pack_array(pk, r->alloc_count);
    for (uint32_t k = 0; k < r->alloc_count; k++) {
        const trastenda_alloc *a = &r->allocs[k];
        bool has_loc = a->loc_ix != TRASTENDA_IX_NONE;
        bool is_short = r->code == TRASTENDA_E_SHORT;
        msgpack_pack_map(pk, 2 + has_loc + is_short);
        pk_kv_str(pk, "sku", sku_id(e, a->sku_ix));
        if (has_loc) pk_kv_str(pk, "loc", loc_id(e, a->loc_ix));
        pk_kv_i(pk, "qty", a->qty);
        if (is_short) pk_kv_i(pk, "short", a->short_qty);
    }
}

/* The result of a write op. */
static void
pk_write(struct srv *s, msgpack_packer *pk, const trastenda_result *r)
{
    const trastenda_engine *e = s->eng;
    if (r->code != TRASTENDA_OK && r->code != TRASTENDA_E_SHORT) {
        pk_error(s, pk, r->code, r->message, r->line);
        return;
    }
    if (r->code == TRASTENDA_E_SHORT) {
        msgpack_pack_map(pk, 4 + (r->line != UINT32_MAX));
        pk_kv_u(pk, "code", (uint64_t)r->code);
        pk_kv_s(pk, "name", trastenda_err_name(r->code));
        pk_kv_s(pk, "msg", r->message);
        if (r->line != UINT32_MAX) pk_kv_u(pk, "line", r->line);
        pk_allocs(pk, e, r);
        return;
    }
    switch (r->op) {
    case TRASTENDA_OP_RESERVE:
        msgpack_pack_map(pk, 6);
        pk_kv_u(pk, "code", 0);
        pk_kv_b(pk, "dup", r->duplicate);
        pk_kv_u(pk, "hold", r->id);
        pk_kv_i(pk, "expires_ms", r->value);
        pk_kv_s(pk, "rule", rule_name(r->rule));
        pk_allocs(pk, e, r);
        return;
    case TRASTENDA_OP_EXTEND:
        msgpack_pack_map(pk, 4);
        pk_kv_u(pk, "code", 0);
        pk_kv_b(pk, "dup", r->duplicate);
        pk_kv_u(pk, "hold", r->id);
        pk_kv_i(pk, "expires_ms", r->value);
        return;
    case TRASTENDA_OP_CONFIRM:
    case TRASTENDA_OP_ORDER_PLACE:
        msgpack_pack_map(pk, 6);
        pk_kv_u(pk, "code", 0);
        pk_kv_b(pk, "dup", r->duplicate);
        pk_kv_u(pk, "order_no", r->id);
        pk_kv_s(pk, "state", order_state_name(r->state));
        pk_kv_s(pk, "rule", rule_name(r->rule));
        pk_allocs(pk, e, r);
        return;
    case TRASTENDA_OP_RELEASE:
        msgpack_pack_map(pk, 3);
        pk_kv_u(pk, "code", 0);
        pk_kv_b(pk, "dup", r->duplicate);
        pk_kv_u(pk, "hold", r->id);
        return;
    case TRASTENDA_OP_ORDER_PICK:
    case TRASTENDA_OP_ORDER_PACK:
    case TRASTENDA_OP_ORDER_SHIP:
    case TRASTENDA_OP_ORDER_DELIVER:
    case TRASTENDA_OP_ORDER_CANCEL:
    case TRASTENDA_OP_ORDER_RETURN:
        msgpack_pack_map(pk, 3);
        pk_kv_u(pk, "code", 0);
        pk_kv_b(pk, "dup", r->duplicate);
        pk_kv_s(pk, "state", order_state_name(r->state));
        return;
    case TRASTENDA_OP_RECEIVE:
    case TRASTENDA_OP_ADJUST:
    case TRASTENDA_OP_COUNT:
    case TRASTENDA_OP_MOVE_UNSELLABLE:
    case TRASTENDA_OP_SET_SAFETY:
    case TRASTENDA_OP_TRANSFER_OUT:
    case TRASTENDA_OP_TRANSFER_IN:
        msgpack_pack_map(pk, 3);
        pk_kv_u(pk, "code", 0);
        pk_kv_b(pk, "dup", r->duplicate);
        pk_kv_i(pk, "on_hand", r->value);
        return;
    default:
        msgpack_pack_map(pk, 2);
        pk_kv_u(pk, "code", 0);
        pk_kv_b(pk, "dup", r->duplicate);
        return;
    }
}

static void
pk_hold(msgpack_packer *pk, const trastenda_engine *e, const trastenda_hold_view *h)
{
    msgpack_pack_map(pk, 8);
    pk_kv_u(pk, "code", 0);
    pk_kv_u(pk, "hold", h->id);
    pk_kv_s(pk, "state", hold_state_name(h->state));
    pk_kv_i(pk, "created_ms", h->created_ms);
    pk_kv_i(pk, "expires_ms", h->expires_ms);
    pk_kv_i(pk, "resolved_ms", h->resolved_ms);
    pk_kv_u(pk, "order_no", h->order_no);
    pk_key(pk, "lines");
    msgpack_pack_array(pk, h->line_count);
    for (uint32_t i = 0; i < h->line_count; i++) {
        msgpack_pack_map(pk, 3);
        pk_kv_str(pk, "sku", sku_id(e, h->lines[i].sku_ix));
        pk_kv_str(pk, "loc", loc_id(e, h->lines[i].loc_ix));
        pk_kv_i(pk, "qty", h->lines[i].qty);
    }
}

static void
pk_order_allocs(msgpack_packer *pk, const trastenda_engine *e, const trastenda_order_alloc *a,
                uint32_t n, const char *key, bool state)
{
    pk_key(pk, key);
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        msgpack_pack_map(pk, 5 + state);
        pk_kv_str(pk, "sku", sku_id(e, a[i].sku_ix));
        pk_kv_str(pk, "loc", loc_id(e, a[i].loc_ix));
        pk_kv_i(pk, "qty", a[i].qty);
        pk_kv_i(pk, state ? "shipped" : "received", a[i].shipped);
        pk_kv_i(pk, "returned", a[i].returned);
        if (state) pk_kv_s(pk, "state", order_state_name(a[i].state));
    }
}

static void
pk_order(msgpack_packer *pk, const trastenda_engine *e, const trastenda_order_view *o)
{
    msgpack_pack_map(pk, 9);
    pk_kv_u(pk, "code", 0);
    pk_kv_s(pk, "order", o->id);
    pk_kv_u(pk, "order_no", o->no);
    pk_kv_s(pk, "state", order_state_name(o->state));
    pk_kv_s(pk, "rule", rule_name(o->rule));
    pk_kv_i(pk, "created_ms", o->created_ms);
    pk_kv_i(pk, "updated_ms", o->updated_ms);
    pk_key(pk, "ship_to");
    msgpack_pack_array(pk, 2);
    msgpack_pack_int32(pk, o->lat_e6);
    msgpack_pack_int32(pk, o->lon_e6);
    pk_order_allocs(pk, e, o->allocs, o->alloc_count, "allocs", true);
}

static const char *const MOVE_NAMES[] = {
    "?",           "receive",    "adjust", "reserve",   "release",    "expire",
    "confirm",     "allocate",   "ship",   "cancel",    "return",     "transfer_out",
    "transfer_in", "unsellable", "safety", "po_create", "po_receive", "po_close"};
static const char *const CAUSE_NAMES[] = {"",      "count",      "damage", "theft",
                                          "found", "correction", "quality"};

static void
pk_ledger_row(msgpack_packer *pk, const trastenda_ledger_row *row)
{
    const trastenda_ledger_entry *l = &row->e;
    static const char *const q[TRASTENDA_Q_COUNT_] = {
        "on_hand", "committed", "held", "unsellable", "safety_stock", "incoming", "in_transit"};
    uint32_t nd = 0;
    for (int i = 0; i < TRASTENDA_Q_COUNT_; i++)
        nd += l->delta[i] != 0;
    msgpack_pack_map(pk, 9);
    pk_kv_u(pk, "seq", l->seq);
    pk_kv_i(pk, "time_ms", row->time_ms);
    pk_kv_str(pk, "sku", l->sku);
    pk_kv_str(pk, "loc", l->loc);
    pk_kv_s(pk, "move", l->move <= 17 ? MOVE_NAMES[l->move] : "?");
    pk_kv_s(pk, "cause", l->cause <= 6 ? CAUSE_NAMES[l->cause] : "?");
    pk_key(pk, "delta");
    msgpack_pack_map(pk, nd);
    for (int i = 0; i < TRASTENDA_Q_COUNT_; i++)
        if (l->delta[i] != 0) pk_kv_i(pk, q[i], l->delta[i]);
    pk_kv_str(pk, "ref", l->ref);
    pk_kv_str(pk, "actor", l->actor);
}

static void
pk_status(struct srv_ctx *c, msgpack_packer *pk, struct op_out *o)
{
    struct srv *s = c->srv;
    trastenda_store_stats st;
    trastenda_store_stats_get(s->store, &st);
    const trastenda_engine_stats *es = &o->u.status.eng;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t up_ms = ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - s->started_ns) / 1000000;
    bool follower = srv_is_follower(s);
    msgpack_pack_map(pk, 12);
    pk_kv_u(pk, "code", 0);
    pk_key(pk, "replication");
    repl_status_pack(s, pk);
    pk_kv_s(pk, "role", follower ? "follower" : "leader");
    pk_kv_s(pk, "version", TRASTENDA_VERSION_STRING);
    /* The process and its build: a benchmark on the same machine reads the server's CPU time
     * from /proc/<pid>/stat and says which build it measured. */
    pk_kv_u(pk, "pid", (uint64_t)getpid());
#ifdef NDEBUG
    pk_kv_s(pk, "build", "release");
#else
    pk_kv_s(pk, "build", "debug");
#endif
    pk_kv_i(pk, "uptime_ms", up_ms);
    pk_kv_s(pk, "durability", st.durability == TRASTENDA_DURABILITY_FSYNC ? "fsync" : "async");
    pk_key(pk, "seq");
    msgpack_pack_map(pk, 5);
    pk_kv_u(pk, "applied", st.applied_seq);
    pk_kv_u(pk, "durable", st.durable_seq);
    pk_kv_u(pk, "materialized", st.materialized_seq);
    pk_kv_u(pk, "log_first", st.log_first_seq);
    pk_kv_u(pk, "log_keep", st.log_keep_seq);
    pk_key(pk, "counters");
    msgpack_pack_map(pk, 13);
    pk_kv_u(pk, "connections", __atomic_load_n(&s->conns, __ATOMIC_RELAXED));
    pk_kv_u(pk, "listener_restarts", __atomic_load_n(&s->lw.restarts, __ATOMIC_RELAXED));
    pk_kv_u(pk, "refused_connections", __atomic_load_n(&s->n_refused_conns, __ATOMIC_RELAXED));
    pk_kv_u(pk, "reply_timeouts", __atomic_load_n(&s->n_reply_timeouts, __ATOMIC_RELAXED));
    pk_kv_u(pk, "requests", __atomic_load_n(&s->n_requests, __ATOMIC_RELAXED));
    pk_kv_u(pk, "ops", __atomic_load_n(&s->n_ops, __ATOMIC_RELAXED));
    pk_kv_u(pk, "bad_requests", __atomic_load_n(&s->n_bad_requests, __ATOMIC_RELAXED));
    pk_kv_u(pk, "events", __atomic_load_n(&s->n_events, __ATOMIC_RELAXED));
    pk_kv_u(pk, "batches", st.batches);
    pk_kv_u(pk, "commands", st.commands);
    pk_kv_u(pk, "busy", st.busy);
    pk_kv_u(pk, "log_bytes", st.log_bytes);
    pk_kv_u(pk, "state_writes", st.state_writes);
    pk_key(pk, "tables");
    msgpack_pack_map(pk, 9);
    pk_kv_u(pk, "locations", es->locations);
    pk_kv_u(pk, "skus", es->skus);
    pk_kv_u(pk, "stock", es->stock);
    pk_kv_u(pk, "holds", es->holds);
    pk_kv_u(pk, "holds_open", es->holds_open);
    pk_kv_u(pk, "orders", es->orders);
    pk_kv_u(pk, "pos", es->pos);
    pk_kv_u(pk, "keys", es->keys);
    pk_kv_u(pk, "memory_bytes", es->memory_bytes);
    pk_kv_u(pk, "queue_depth", st.queue_depth);
}

/* A read op's result. */
static void
pk_read(struct srv_ctx *c, msgpack_packer *pk, const struct proto_op *op, struct op_out *o)
{
    struct srv *s = c->srv;
    const trastenda_engine *e = s->eng;
    if (o->err != TRASTENDA_OK) {
        pk_error(s, pk, o->err, o->msg, UINT32_MAX);
        return;
    }
    switch (op->kind) {
    case PK_STOCK:
        msgpack_pack_map(pk, o->u.stock.paged ? 5 : 4);
        pk_kv_u(pk, "code", 0);
        pk_kv_str(pk, "sku", op->sku);
        pk_kv_i(pk, "available", o->u.stock.available);
        if (o->u.stock.paged) pk_kv_u(pk, "next", o->u.stock.next);
        pk_key(pk, "records");
        msgpack_pack_array(pk, o->u.stock.n < o->u.stock.cap ? o->u.stock.n : o->u.stock.cap);
        for (uint32_t i = 0; i < o->u.stock.n && i < o->u.stock.cap; i++)
            pk_stock_rec(pk, e, &o->u.stock.recs[i], false);
        return;
    case PK_HOLD:
        pk_hold(pk, e, &o->u.hold);
        return;
    case PK_ORDER:
        pk_order(pk, e, &o->u.order);
        return;
    case PK_PO:
        msgpack_pack_map(pk, 4);
        pk_kv_u(pk, "code", 0);
        pk_kv_s(pk, "po", o->u.po.id);
        pk_kv_b(pk, "open", o->u.po.open);
        pk_order_allocs(pk, e, o->u.po.lines, o->u.po.line_count, "lines", false);
        return;
    case PK_LOW_STOCK:
        msgpack_pack_map(pk, 3);
        pk_kv_u(pk, "code", 0);
        pk_kv_u(pk, "next", o->u.low.next);
        pk_key(pk, "rows");
        msgpack_pack_array(pk, o->u.low.n);
        for (uint32_t i = 0; i < o->u.low.n; i++)
            pk_stock_rec(pk, e, &o->u.low.rows[i], true);
        return;
    case PK_STOCK_LIST:
        msgpack_pack_map(pk, 3);
        pk_kv_u(pk, "code", 0);
        pk_kv_u(pk, "next", o->u.low.next);
        pk_key(pk, "rows");
        msgpack_pack_array(pk, o->u.low.n);
        for (uint32_t i = 0; i < o->u.low.n; i++)
            pk_stock_rec(pk, e, &o->u.low.rows[i], true);
        return;
    case PK_SKU_LIST: {
        const trastenda_sku_view *v = o->u.list.rows;
        msgpack_pack_map(pk, 3);
        pk_kv_u(pk, "code", 0);
        pk_kv_u(pk, "next", o->u.list.next);
        pk_key(pk, "rows");
        msgpack_pack_array(pk, o->u.list.n);
        for (uint32_t i = 0; i < o->u.list.n; i++) {
            msgpack_pack_map(pk, 7);
            pk_kv_s(pk, "sku", v[i].id);
            pk_kv_s(pk, "name", v[i].name);
            pk_kv_i(pk, "reorder_point", v[i].reorder_point);
            pk_kv_i(pk, "reorder_qty", v[i].reorder_qty);
            pk_kv_i(pk, "lead_days", v[i].lead_days);
            pk_kv_i(pk, "safety_stock", v[i].safety_stock);
            pk_kv_b(pk, "active", v[i].active);
        }
        return;
    }
    case PK_LOCATION_LIST: {
        const trastenda_location_view *v = o->u.list.rows;
        msgpack_pack_map(pk, 3);
        pk_kv_u(pk, "code", 0);
        pk_kv_u(pk, "next", o->u.list.next);
        pk_key(pk, "rows");
        msgpack_pack_array(pk, o->u.list.n);
        for (uint32_t i = 0; i < o->u.list.n; i++) {
            uint32_t nch = (uint32_t)__builtin_popcount(v[i].channels);
            msgpack_pack_map(pk, 7);
            pk_kv_s(pk, "loc", v[i].id);
            pk_kv_s(pk, "name", v[i].name);
            pk_kv_i(pk, "lat_e6", v[i].lat_e6);
            pk_kv_i(pk, "lon_e6", v[i].lon_e6);
            pk_kv_i(pk, "priority", v[i].priority);
            pk_key(pk, "channels");
            msgpack_pack_array(pk, nch);
            for (uint32_t b = 0; b < 32; b++)
                if (v[i].channels & (1u << b)) pk_str(pk, trastenda_engine_channel_name(e, b));
            pk_kv_b(pk, "active", v[i].active);
        }
        return;
    }
    case PK_REORDER:
        msgpack_pack_map(pk, 3);
        pk_kv_u(pk, "code", 0);
        pk_kv_u(pk, "next", o->u.reorder.next);
        pk_key(pk, "rows");
        msgpack_pack_array(pk, o->u.reorder.n);
        for (uint32_t i = 0; i < o->u.reorder.n; i++) {
            const trastenda_reorder *r = &o->u.reorder.rows[i];
            msgpack_pack_map(pk, 6);
            pk_kv_str(pk, "sku", sku_id(e, r->stock.sku_ix));
            pk_kv_str(pk, "loc", loc_id(e, r->stock.loc_ix));
            pk_kv_i(pk, "available", r->stock.available);
            pk_kv_i(pk, "velocity_milli", r->velocity_milli);
            pk_kv_i(pk, "suggested_qty", r->suggested_qty);
            pk_kv_i(pk, "cover_days_milli", r->cover_days_milli);
        }
        return;
    case PK_LEDGER: {
        const trastenda_ledger_page *p = o->u.ledger.page;
        msgpack_pack_map(pk, 4);
        pk_kv_u(pk, "code", 0);
        pk_kv_u(pk, "next", p->next);
        pk_kv_b(pk, "complete", p->complete);
        pk_key(pk, "rows");
        msgpack_pack_array(pk, p->count);
        for (uint32_t i = 0; i < p->count; i++)
            pk_ledger_row(pk, &p->rows[i]);
        return;
    }
    case PK_EVENTS:
        msgpack_pack_map(pk, 3);
        pk_kv_u(pk, "code", 0);
        pk_kv_u(pk, "next", o->u.events.next);
        pk_key(pk, "events");
        msgpack_pack_array(pk, o->u.events.n);
        if (o->u.events.len > 0) {
            /* already msgpack: spliced in as bytes */
            pk->callback(pk->data, (const char *)c->ev + o->u.events.off, o->u.events.len);
        }
        return;
    case PK_HOLDS_EXPIRING:
        msgpack_pack_map(pk, 2);
        pk_kv_u(pk, "code", 0);
        pk_key(pk, "rows");
        msgpack_pack_array(pk, o->u.holds.n);
        for (uint32_t i = 0; i < o->u.holds.n; i++) {
            const trastenda_hold_row *h = &o->u.holds.rows[i];
            msgpack_pack_map(pk, 8);
            pk_kv_u(pk, "hold", h->id);
            pk_kv_i(pk, "created_ms", h->created_ms);
            pk_kv_i(pk, "expires_ms", h->expires_ms);
            pk_kv_u(pk, "lines", h->line_count);
            pk_kv_i(pk, "units", h->units);
            pk_kv_str(pk, "sku", sku_id(e, h->first.sku_ix));
            pk_kv_str(pk, "loc", loc_id(e, h->first.loc_ix));
            pk_kv_i(pk, "qty", h->first.qty);
        }
        return;
    case PK_BACKUP:
        msgpack_pack_map(pk, 2);
        pk_kv_u(pk, "code", 0);
        pk_kv_u(pk, "seq", o->u.backup.seq);
        return;
    case PK_STATUS:
        pk_status(c, pk, o);
        return;
    case PK_DIGEST:
        msgpack_pack_map(pk, 3);
        pk_kv_u(pk, "code", 0);
        pk_kv_u(pk, "seq", o->u.digest.seq);
        pk_kv_u(pk, "digest", o->u.digest.digest);
        return;
    case PK_PROMOTE:
        msgpack_pack_map(pk, 3);
        pk_kv_u(pk, "code", 0);
        pk_kv_u(pk, "epoch", o->u.promote.epoch);
        pk_kv_u(pk, "seq", o->u.promote.seq);
        return;
    default:
        pk_error(s, pk, TRASTENDA_E_UNKNOWN_OP, "unknown operation", UINT32_MAX);
    }
}

static void
pk_envelope(struct srv_ctx *c, msgpack_packer *pk, uint64_t id, uint32_t fields)
{
    struct srv *s = c->srv;
    bool follower = srv_is_follower(s);
    msgpack_pack_map(pk, 5 + fields);
    pk_kv_u(pk, "v", PROTO_VERSION);
    pk_kv_u(pk, "id", id);
    pk_kv_s(pk, "role", follower ? "follower" : "leader");
    pk_kv_u(pk, "epoch", trastenda_store_epoch(s->store));
    /* The durable sequence covering this reply's writes (the batch that holds them); for reads
     * the node's durable sequence, and at least the min_seq they waited for (applied here,
     * durable on the leader that shipped it). */
    uint64_t seq = c->n_cmds > 0 && c->store_status == TRASTENDA_OK
                       ? c->sreq.seq
                       : trastenda_store_durable_seq(s->store);
    if (c->n_cmds == 0 && seq < c->q.min_seq &&
        trastenda_store_applied_seq(s->store) >= c->q.min_seq)
        seq = c->q.min_seq;
    pk_kv_u(pk, "seq", seq);
}

/* The ids of the SKUs the write results place are read from the table, a cache miss each in a
 * large catalogue: loaded for the whole reply first, so that the misses overlap instead of
 * queueing one result after another. */
static uint64_t
touch_alloc_skus(const struct srv_ctx *c)
{
    const trastenda_engine *e = c->srv->eng;
    uint64_t sum = 0;
    /* Only results the engine wrote (a request failed before it applied keeps none), and only
     * those whose placements pk_write encodes. */
    if (c->store_status != TRASTENDA_OK) return 0;
    for (uint32_t i = 0, k = 0; i < c->q.n_ops; i++) {
        const struct proto_op *op = &c->q.ops[i];
        if (!proto_op_is_command(op)) continue;
        const trastenda_result *r = &c->results[k++];
        if (r->code != TRASTENDA_OK && r->code != TRASTENDA_E_SHORT) continue;
        for (uint32_t a = 0; a < r->alloc_count; a++)
            sum += sku_id(e, r->allocs[a].sku_ix).len;
    }
    return sum;
}

void
reply_encode(struct srv_ctx *c)
{
    c->out_len = 0;
    struct obuf ob = {&c->out, &c->out_len, &c->out_cap};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &ob, obuf_write);
    if (c->n_cmds > 1) {
        volatile uint64_t touched = touch_alloc_skus(c); /* volatile: the loads must happen */
        (void)touched;
    }
    pk_envelope(c, &pk, c->q.id, 1);
    pk_key(&pk, "results");
    msgpack_pack_array(&pk, c->q.n_ops);
    uint32_t k = 0; /* next command */
    for (uint32_t i = 0; i < c->q.n_ops; i++) {
        const struct proto_op *op = &c->q.ops[i];
        if (op->err != TRASTENDA_OK) {
            pk_error(c->srv, &pk, op->err, op->msg, op->err_line);
            __atomic_fetch_add(&c->srv->n_errors, 1, __ATOMIC_RELAXED);
            metrics_op(&c->srv->metrics, op->kind, op->err);
        } else if (proto_kind_is_write(op->kind)) {
            const trastenda_result *r = &c->results[k++];
            if (c->store_status != TRASTENDA_OK && r->code == TRASTENDA_OK) {
                /* the batch was not made durable: not acknowledged */
                trastenda_result f = *r;
                f.code = c->store_status;
                snprintf(f.message, sizeof(f.message), "%s",
                         trastenda_err_message(c->store_status));
                pk_write(c->srv, &pk, &f);
                metrics_op(&c->srv->metrics, op->kind, f.code);
            } else {
                pk_write(c->srv, &pk, r);
                metrics_op(&c->srv->metrics, op->kind, r->code);
            }
        } else {
            pk_read(c, &pk, op, c->outs[i]);
            metrics_op(&c->srv->metrics, op->kind, c->outs[i]->err);
            if (op->kind == PK_LEDGER && c->outs[i]->u.ledger.page != NULL) {
                trastenda_ledger_page_free(c->outs[i]->u.ledger.page);
                c->outs[i]->u.ledger.page = NULL;
            }
        }
    }
}

void
reply_encode_error(struct srv_ctx *c, uint64_t id, trastenda_err err, const char *msg)
{
    c->out_len = 0;
    c->n_cmds = 0;
    metrics_envelope_error(&c->srv->metrics, c->on_reply != NULL ? MT_HTTP : MT_MSGPACK, err);
    struct obuf ob = {&c->out, &c->out_len, &c->out_cap};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &ob, obuf_write);
    pk_envelope(c, &pk, id, 2);
    pk_key(&pk, "results");
    msgpack_pack_array(&pk, 0);
    pk_key(&pk, "error");
    bool busy = err == TRASTENDA_E_BUSY; /* too many requests in flight on the connection */
    msgpack_pack_map(&pk, busy ? 4 : 3);
    pk_kv_u(&pk, "code", (uint64_t)err);
    pk_kv_s(&pk, "name", trastenda_err_name(err));
    pk_kv_s(&pk, "msg", msg);
    if (busy) pk_kv_u(&pk, "retry_ms", 5);
    c->q.n_ops = 0; /* refused as a whole: no op ran (metrics_request) */
}

/* ---- events ---- */

static const char *const EVENT_NAMES[] = {
    "?", "low_stock", "out_of_stock", "back_in_stock", "shortfall", "hold_expired", "order_state"};

const char *
reply_event_name(uint8_t kind)
{
    return kind <= 6 ? EVENT_NAMES[kind] : "?";
}

static void
pk_event(msgpack_packer *pk, uint64_t seq, const trastenda_event *ev)
{
    switch (ev->kind) {
    case TRASTENDA_EVENT_HOLD_EXPIRED:
        msgpack_pack_map(pk, 3);
        pk_kv_u(pk, "seq", seq);
        pk_kv_s(pk, "kind", EVENT_NAMES[ev->kind]);
        pk_kv_u(pk, "hold", ev->hold_id);
        return;
    case TRASTENDA_EVENT_ORDER_STATE:
        msgpack_pack_map(pk, 4);
        pk_kv_u(pk, "seq", seq);
        pk_kv_s(pk, "kind", EVENT_NAMES[ev->kind]);
        pk_kv_str(pk, "order", ev->order_id);
        pk_kv_s(pk, "state", order_state_name(ev->state));
        return;
    default: {
        bool sf = ev->kind == TRASTENDA_EVENT_SHORTFALL;
        msgpack_pack_map(pk, 5 + (sf ? 4 : 0));
        pk_kv_u(pk, "seq", seq);
        pk_kv_s(pk, "kind", ev->kind <= 6 ? EVENT_NAMES[ev->kind] : "?");
        pk_kv_str(pk, "sku", ev->sku);
        pk_kv_str(pk, "loc", ev->loc);
        pk_kv_i(pk, "available", ev->available);
        if (sf) {
            pk_kv_u(pk, "holds_at_risk", ev->holds_at_risk);
            pk_key(pk, "holds");
            msgpack_pack_array(pk, ev->holds_listed);
            for (uint32_t i = 0; i < ev->holds_listed; i++)
                msgpack_pack_uint64(pk, ev->holds[i]);
            pk_kv_u(pk, "orders_at_risk", ev->orders_at_risk);
            pk_key(pk, "orders");
            msgpack_pack_array(pk, ev->orders_listed);
            for (uint32_t i = 0; i < ev->orders_listed; i++)
                pk_str(pk, ev->orders[i]);
        }
        return;
    }
    }
}

void
reply_publish_events(struct srv *s, uint64_t seq, const uint8_t *entry, size_t len)
{
    trastenda_entry_header hdr;
    trastenda_entry_iter it;
    if (trastenda_entry_open(entry, len, &hdr, &it) != TRASTENDA_OK) return;
    uint8_t type;
    const uint8_t *body;
    uint32_t blen;
    uint8_t *buf = NULL;
    size_t blen_out = 0, cap = 0;
    while (trastenda_entry_next(&it, &type, &body, &blen) == TRASTENDA_OK) {
        if (type != TRASTENDA_REC_EVENT) continue;
        trastenda_event ev;
        if (trastenda_event_decode(body, blen, &ev) != TRASTENDA_OK) continue;
        /* topic: the kind's name and a space, then the msgpack map */
        blen_out = 0;
        struct obuf ob = {&buf, &blen_out, &cap};
        const char *topic = reply_event_name(ev.kind);
        obuf_write(&ob, topic, strlen(topic));
        obuf_write(&ob, " ", 1);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &ob, obuf_write);
        pk_event(&pk, seq, &ev);
        nng_msg *m;
        if (nng_msg_alloc(&m, blen_out) != 0) break;
        memcpy(nng_msg_body(m), buf, blen_out);
        if (nng_sendmsg(s->pub, m, NNG_FLAG_NONBLOCK) != 0) nng_msg_free(m);
        __atomic_fetch_add(&s->n_events, 1, __ATOMIC_RELAXED);
    }
    free(buf);
}

bool
reply_events_of_entry(struct srv_ctx *c, uint64_t seq, const uint8_t *entry, size_t len,
                      uint32_t limit, uint32_t *n)
{
    trastenda_entry_header hdr;
    trastenda_entry_iter it;
    if (trastenda_entry_open(entry, len, &hdr, &it) != TRASTENDA_OK) return false;
    struct obuf ob = {&c->ev, &c->ev_len, &c->ev_cap};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &ob, obuf_write);
    uint8_t type;
    const uint8_t *body;
    uint32_t blen;
    /* Whole entries only: a client resuming from `next` never misses part of one. */
    while (trastenda_entry_next(&it, &type, &body, &blen) == TRASTENDA_OK) {
        if (type != TRASTENDA_REC_EVENT) continue;
        trastenda_event ev;
        if (trastenda_event_decode(body, blen, &ev) != TRASTENDA_OK) continue;
        pk_event(&pk, seq, &ev);
        (*n)++;
    }
    return *n < limit;
}
