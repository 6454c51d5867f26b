/*
 * net/exec.c - running the reads of a request (net/srv.h).
 *
 * Three places: stock checks of a request without writes run on the network thread, lock-free;
 * the other reads run on the engine thread as a query riding with the request's writes (so they
 * see them); ledger, events, backup and archive lookups - which wait on disk or on the
 * materializer - run on the slow worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl.h"
#include "srv.h"

static bool
is_slow_kind(uint32_t k)
{
    return k == PK_LEDGER || k == PK_EVENTS || k == PK_BACKUP || k == PK_PROMOTE;
}

static bool
is_engine_kind(uint32_t k)
{
    return k == PK_HOLD || k == PK_ORDER || k == PK_PO || k == PK_LOW_STOCK || k == PK_REORDER ||
           k == PK_STATUS || k == PK_STOCK_LIST || k == PK_SKU_LIST || k == PK_LOCATION_LIST ||
           k == PK_DIGEST || k == PK_HOLDS_EXPIRING;
}

static size_t
align16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

/* Bytes of rows an op needs after its op_out. */
static size_t
rows_bytes(const struct proto_op *op, uint32_t *rows)
{
    uint32_t limit = op->present & (1ull << PFD_LIMIT) ? (uint32_t)op->limit : 100;
    switch (op->kind) {
    case PK_STOCK:
        *rows = op->present & (1ull << PFD_LIMIT) ? limit : SRV_STOCK_RECS_MAX;
        return (size_t)*rows * sizeof(trastenda_stock);
    case PK_LOW_STOCK:
        *rows = limit;
        return (size_t)limit * sizeof(trastenda_stock);
    case PK_REORDER:
        *rows = limit;
        return (size_t)limit * sizeof(trastenda_reorder);
    case PK_STOCK_LIST:
        *rows = limit;
        return (size_t)limit * sizeof(trastenda_stock);
    case PK_SKU_LIST:
        *rows = limit;
        return (size_t)limit * sizeof(trastenda_sku_view);
    case PK_LOCATION_LIST:
        *rows = limit;
        return (size_t)limit * sizeof(trastenda_location_view);
    case PK_HOLDS_EXPIRING:
        *rows = limit;
        return (size_t)limit * sizeof(trastenda_hold_row);
    default:
        *rows = 0;
        return 0;
    }
}

bool
exec_prepare(struct srv_ctx *c)
{
    struct proto_req *q = &c->q;
    if (q->n_ops > c->cap_outs) {
        struct op_out **o = realloc(c->outs, (size_t)q->n_ops * sizeof(*o));
        if (o == NULL) return false;
        c->outs = o;
        c->cap_outs = q->n_ops;
    }
    size_t total = 0;
    for (uint32_t i = 0; i < q->n_ops; i++) {
        const struct proto_op *op = &q->ops[i];
        if (op->err != TRASTENDA_OK || proto_kind_is_write(op->kind)) continue;
        uint32_t rows;
        total += align16(sizeof(struct op_out)) + align16(rows_bytes(op, &rows));
    }
    if (total > c->arena_cap) {
        uint8_t *a = realloc(c->arena, total);
        if (a == NULL) return false;
        c->arena = a;
        c->arena_cap = total;
    }
    size_t at = 0;
    c->ev_len = 0;
    for (uint32_t i = 0; i < q->n_ops; i++) {
        const struct proto_op *op = &q->ops[i];
        c->outs[i] = NULL;
        if (op->err != TRASTENDA_OK || proto_kind_is_write(op->kind)) continue;
        struct op_out *o = (struct op_out *)(c->arena + at);
        at += align16(sizeof(*o));
        o->err = TRASTENDA_OK;
        o->msg[0] = '\0';
        o->slow = is_slow_kind(op->kind);
        o->try_archive = false;
        uint32_t rows;
        size_t rb = rows_bytes(op, &rows);
        void *p = c->arena + at;
        at += align16(rb);
        if (op->kind == PK_STOCK) {
            o->u.stock.recs = p;
            o->u.stock.cap = rows;
            o->u.stock.n = 0;
            o->u.stock.paged = false;
            o->u.stock.next = 0;
        } else if (op->kind == PK_LOW_STOCK || op->kind == PK_STOCK_LIST) {
            o->u.low.rows = p;
        } else if (op->kind == PK_HOLDS_EXPIRING) {
            o->u.holds.rows = p;
        } else if (op->kind == PK_SKU_LIST || op->kind == PK_LOCATION_LIST) {
            o->u.list.rows = p;
        } else if (op->kind == PK_REORDER) {
            o->u.reorder.rows = p;
        } else if (op->kind == PK_LEDGER) {
            o->u.ledger.page = NULL;
        }
        c->outs[i] = o;
    }
    return true;
}

bool
exec_has_slow(const struct srv_ctx *c)
{
    for (uint32_t i = 0; i < c->q.n_ops; i++)
        if (c->outs[i] != NULL && (c->outs[i]->slow || c->outs[i]->try_archive)) return true;
    return false;
}

bool
exec_has_engine_reads(const struct srv_ctx *c)
{
    for (uint32_t i = 0; i < c->q.n_ops; i++)
        if (c->outs[i] != NULL && is_engine_kind(c->q.ops[i].kind)) return true;
    return false;
}

static void
out_fail(struct op_out *o, trastenda_err err, const char *what)
{
    o->err = err;
    snprintf(o->msg, sizeof(o->msg), "%s", what);
}

/* ---- stock checks: any thread ---- */

static void
do_stock(const trastenda_engine *e, const struct proto_op *op, struct op_out *o)
{
    uint32_t sku;
    if (trastenda_engine_sku_lookup(e, op->sku, &sku) != TRASTENDA_OK) {
        snprintf(o->msg, sizeof(o->msg), "sku '%.*s' is unknown", (int)op->sku.len, op->sku.ptr);
        o->err = TRASTENDA_E_UNKNOWN_SKU;
        return;
    }
    if (op->present & (1ull << PFD_LOC)) {
        uint32_t loc;
        if (trastenda_engine_location_lookup(e, op->loc, &loc) != TRASTENDA_OK) {
            snprintf(o->msg, sizeof(o->msg), "loc '%.*s' is unknown", (int)op->loc.len,
                     op->loc.ptr);
            o->err = TRASTENDA_E_UNKNOWN_LOCATION;
            return;
        }
        trastenda_err err = trastenda_engine_stock_read(e, sku, loc, &o->u.stock.recs[0]);
        if (err == TRASTENDA_E_NO_STOCK_RECORD) { /* nothing ever there: all zero */
            memset(&o->u.stock.recs[0], 0, sizeof(trastenda_stock));
            o->u.stock.recs[0].sku_ix = sku;
            o->u.stock.recs[0].loc_ix = loc;
        }
        o->u.stock.n = 1;
        o->u.stock.available = o->u.stock.recs[0].available > 0 ? o->u.stock.recs[0].available : 0;
        return;
    }
    bool by_channel = (op->present & (1ull << PFD_CHANNEL)) != 0;
    trastenda_scope scope = by_channel ? TRASTENDA_SCOPE_CHANNEL : TRASTENDA_SCOPE_ALL;
    trastenda_str channel = by_channel ? op->channel : (trastenda_str){"", 0};
    bool paged = (op->present & ((1ull << PFD_CURSOR) | (1ull << PFD_LIMIT))) != 0;
    trastenda_err err = TRASTENDA_OK;
    if (!paged) { /* a stock check: in the SKU's own record order, one pass */
        uint32_t in_scope = 0;
        err = trastenda_engine_availability_all(e, sku, scope, channel, &o->u.stock.available,
                                                o->u.stock.recs, o->u.stock.cap, &o->u.stock.n,
                                                &in_scope);
        /* Records left unlisted: the first page by location index instead, with its cursor. */
        paged = err == TRASTENDA_OK && in_scope > o->u.stock.n;
    }
    if (err == TRASTENDA_OK && paged) {
        uint64_t cursor = op->present & (1ull << PFD_CURSOR) ? op->cursor : 0;
        uint32_t next = 0;
        err = trastenda_engine_availability_page(
            e, sku, scope, channel, cursor > UINT32_MAX ? UINT32_MAX : (uint32_t)cursor,
            &o->u.stock.available, o->u.stock.recs, o->u.stock.cap, &o->u.stock.n, &next);
        o->u.stock.paged = true;
        o->u.stock.next = next;
    }
    if (err != TRASTENDA_OK)
        out_fail(o, err, by_channel ? "unknown channel" : trastenda_err_message(err));
}

void
exec_fast_reads(struct srv_ctx *c)
{
    /* In windows of up to 64 checks: the window's SKUs are warmed together (a large catalogue
     * misses the cache), then read. */
    uint32_t from = 0;
    while (from < c->q.n_ops) {
        trastenda_str ids[64];
        uint32_t n = 0, to = from;
        for (; to < c->q.n_ops && n < sizeof(ids) / sizeof(ids[0]); to++)
            if (c->outs[to] != NULL && c->q.ops[to].kind == PK_STOCK) ids[n++] = c->q.ops[to].sku;
        if (n > 1) trastenda_engine_stock_prefetch(c->srv->eng, ids, n);
        for (uint32_t i = from; i < to; i++)
            if (c->outs[i] != NULL && c->q.ops[i].kind == PK_STOCK)
                do_stock(c->srv->eng, &c->q.ops[i], c->outs[i]);
        from = to;
    }
}

/* ---- the engine thread ---- */

void
exec_engine_reads(trastenda_request *req, const trastenda_engine *e)
{
    struct srv_ctx *c = req->ctx;
    for (uint32_t i = 0; i < c->q.n_ops; i++) {
        struct op_out *o = c->outs[i];
        const struct proto_op *op = &c->q.ops[i];
        if (o == NULL || o->slow) continue;
        trastenda_err err = TRASTENDA_OK;
        uint32_t limit = op->present & (1ull << PFD_LIMIT) ? (uint32_t)op->limit : 100;
        switch (op->kind) {
        case PK_STOCK:
            do_stock(e, op, o);
            break;
        case PK_HOLD:
            err = trastenda_engine_hold_get(e, op->hold, &o->u.hold);
            if (err == TRASTENDA_E_UNKNOWN_HOLD) {
                o->try_archive = true;
                err = TRASTENDA_OK;
            }
            break;
        case PK_ORDER:
            err = trastenda_engine_order_get(e, op->order, &o->u.order);
            if (err == TRASTENDA_E_UNKNOWN_ORDER) {
                o->try_archive = true;
                err = TRASTENDA_OK;
            }
            break;
        case PK_PO:
            err = trastenda_engine_po_get(e, op->po, &o->u.po);
            break;
        case PK_LOW_STOCK:
            err = trastenda_engine_low_stock(e, op->cursor, limit, o->u.low.rows, &o->u.low.n,
                                             &o->u.low.next);
            break;
        case PK_REORDER:
            err = trastenda_engine_reorder(e, trastenda_engine_time_ms(e), op->cursor, limit,
                                           o->u.reorder.rows, &o->u.reorder.n, &o->u.reorder.next);
            break;
        case PK_STATUS:
            trastenda_engine_stats_get(e, &o->u.status.eng);
            break;
        case PK_DIGEST:
            o->u.digest.seq = trastenda_engine_seq(e);
            o->u.digest.digest = trastenda_engine_digest(e);
            break;
        case PK_HOLDS_EXPIRING:
            err = trastenda_engine_holds_expiring(e, limit, o->u.holds.rows, &o->u.holds.n);
            break;
        case PK_STOCK_LIST: /* cursor: the first slot; next: the slot after the page, 0 at the end
                             */
            o->u.low.n = 0;
            for (uint32_t ix = (uint32_t)op->cursor;
                 o->u.low.n < limit &&
                 trastenda_engine_stock_at(e, ix, &o->u.low.rows[o->u.low.n]) == TRASTENDA_OK;
                 ix++)
                o->u.low.n++;
            o->u.low.next = trastenda_engine_stock_at(e, (uint32_t)op->cursor + o->u.low.n,
                                                      &(trastenda_stock){0}) == TRASTENDA_OK
                                ? op->cursor + o->u.low.n
                                : 0;
            break;
        case PK_SKU_LIST:
        case PK_LOCATION_LIST: {
            bool skus = op->kind == PK_SKU_LIST;
            trastenda_sku_view *sv = o->u.list.rows;
            trastenda_location_view *lv = o->u.list.rows;
            o->u.list.n = 0;
            for (uint32_t ix = (uint32_t)op->cursor; o->u.list.n < limit; ix++) {
                trastenda_err r = skus ? trastenda_engine_sku_at(e, ix, &sv[o->u.list.n])
                                       : trastenda_engine_location_at(e, ix, &lv[o->u.list.n]);
                if (r != TRASTENDA_OK) break;
                o->u.list.n++;
            }
            trastenda_sku_view sk;
            trastenda_location_view lk;
            uint32_t after = (uint32_t)op->cursor + o->u.list.n;
            bool more = skus ? trastenda_engine_sku_at(e, after, &sk) == TRASTENDA_OK
                             : trastenda_engine_location_at(e, after, &lk) == TRASTENDA_OK;
            o->u.list.next = more ? after : 0;
            break;
        }
        default:
            break;
        }
        if (err != TRASTENDA_OK) out_fail(o, err, trastenda_err_message(err));
    }
}

/* ---- the slow worker ---- */

struct ev_scan {
    struct srv_ctx *c;
    uint32_t limit, n;
};

static bool
ev_visit(void *ctx, uint64_t seq, const uint8_t *entry, size_t len)
{
    struct ev_scan *sc = ctx;
    return reply_events_of_entry(sc->c, seq, entry, len, sc->limit, &sc->n);
}

void
exec_slow_reads(struct srv_ctx *c)
{
    struct srv *s = c->srv;
    for (uint32_t i = 0; i < c->q.n_ops; i++) {
        struct op_out *o = c->outs[i];
        const struct proto_op *op = &c->q.ops[i];
        if (o == NULL || o->err != TRASTENDA_OK || !(o->slow || o->try_archive)) continue;
        trastenda_err err = TRASTENDA_OK;
        char msg[512] = "";
        switch (op->kind) {
        case PK_HOLD:
            err = trastenda_store_hold_archived(s->store, op->hold, &o->u.hold);
            if (err == TRASTENDA_E_UNKNOWN_HOLD)
                snprintf(msg, sizeof(msg), "hold %llu is unknown", (unsigned long long)op->hold);
            break;
        case PK_ORDER:
            err = trastenda_store_order_archived(s->store, op->order, &o->u.order);
            if (err == TRASTENDA_E_UNKNOWN_ORDER)
                snprintf(msg, sizeof(msg), "order '%.*s' is unknown", (int)op->order.len,
                         op->order.ptr);
            break;
        case PK_LEDGER: {
            trastenda_ledger_query lq = {0};
            lq.sku = op->sku;
            if (op->present & (1ull << PFD_LOC)) lq.loc = op->loc;
            lq.from_ms = op->present & (1ull << PFD_FROM_MS) ? op->from_ms : 0;
            lq.to_ms = op->present & (1ull << PFD_TO_MS) ? op->to_ms : 0;
            lq.before_seq = op->before;
            lq.limit = op->present & (1ull << PFD_LIMIT) ? (uint32_t)op->limit : 100;
            err = trastenda_store_ledger(s->store, &lq, &o->u.ledger.page, msg, sizeof(msg));
            break;
        }
        case PK_EVENTS: {
            struct ev_scan sc = {c, op->present & (1ull << PFD_LIMIT) ? (uint32_t)op->limit : 100,
                                 0};
            uint64_t from = op->since + 1, next = from;
            o->u.events.off = c->ev_len;
            err = trastenda_store_log_scan(s->store, from, UINT64_MAX, ev_visit, &sc, &next);
            o->u.events.len = c->ev_len - o->u.events.off;
            if (err == TRASTENDA_E_SEQUENCE)
                snprintf(msg, sizeof(msg),
                         "events before log sequence %llu are gone (log retention): resume from "
                         "there",
                         (unsigned long long)trastenda_store_log_first(s->store));
            o->u.events.n = sc.n;
            o->u.events.next = next - 1; /* the last sequence covered: ask `since` it */
            break;
        }
        case PK_BACKUP: {
            char dir[PROTO_DIR_BYTES_MAX + 1];
            snprintf(dir, sizeof(dir), "%.*s", (int)op->dir.len, op->dir.ptr);
            err = trastenda_store_checkpoint(s->store, dir, &o->u.backup.seq, msg, sizeof(msg));
            break;
        }
        case PK_PROMOTE:
            err = repl_promote(s, op->force, &o->u.promote.epoch, &o->u.promote.seq, msg,
                               sizeof(msg));
            break;
        default:
            break;
        }
        o->try_archive = false;
        if (err != TRASTENDA_OK) out_fail(o, err, msg[0] ? msg : trastenda_err_message(err));
    }
}
