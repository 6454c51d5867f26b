/*
 * engine/query.c - reads of the engine: id lookups (any thread), views of holds, orders and
 * purchase orders, the low-stock list and reorder suggestions (writer thread), statistics, the
 * state digest and the full invariant check.
 */
#include <stdio.h>
#include <string.h>

#include "eng.h"

trastenda_err
trastenda_engine_sku_lookup(const trastenda_engine *e, trastenda_str id, uint32_t *ix)
{
    if (e == NULL || ix == NULL || id.len > TRASTENDA_ID_BYTES_MAX) return TRASTENDA_E_INVALID;
    if (id.ptr == NULL && id.len > 0) return TRASTENDA_E_INVALID;
    *ix = eng_sku_find(e, id);
    return *ix == ENG_NONE ? TRASTENDA_E_UNKNOWN_SKU : TRASTENDA_OK;
}

trastenda_err
trastenda_engine_location_lookup(const trastenda_engine *e, trastenda_str id, uint32_t *ix)
{
    if (e == NULL || ix == NULL || id.len > TRASTENDA_ID_BYTES_MAX) return TRASTENDA_E_INVALID;
    if (id.ptr == NULL && id.len > 0) return TRASTENDA_E_INVALID;
    *ix = eng_location_find(e, id);
    return *ix == ENG_NONE ? TRASTENDA_E_UNKNOWN_LOCATION : TRASTENDA_OK;
}

trastenda_str
trastenda_engine_sku_id(const trastenda_engine *e, uint32_t ix)
{
    TS_ASSERT(ix < __atomic_load_n(&e->sku_count, __ATOMIC_ACQUIRE));
    return eng_id_str(&e->skus[ix].id);
}

trastenda_str
trastenda_engine_location_id(const trastenda_engine *e, uint32_t ix)
{
    TS_ASSERT(ix < __atomic_load_n(&e->loc_count, __ATOMIC_ACQUIRE));
    return eng_id_str(&e->locs[ix].id);
}

trastenda_err
trastenda_engine_hold_get(const trastenda_engine *e, uint64_t id, trastenda_hold_view *out)
{
    uint32_t h = eng_hold_find(e, id);
    if (h == ENG_NONE) return TRASTENDA_E_UNKNOWN_HOLD;
    const struct eng_hold *hd = &e->holds[h];
    out->id = hd->id;
    out->state = hd->state;
    out->created_ms = hd->created_ms;
    out->expires_ms = hd->expires_ms;
    out->resolved_ms = hd->resolved_ms;
    out->order_no = hd->order_no;
    out->line_count = 0;
    for (uint32_t l = hd->lines_head; l != ENG_NONE && out->line_count < TRASTENDA_ALLOCS_MAX;
         l = e->lines[l].next)
        out->lines[out->line_count++] =
            (trastenda_alloc){e->lines[l].sku_ix, e->lines[l].loc_ix, e->lines[l].qty, 0};
    return TRASTENDA_OK;
}

static uint32_t
lines_view(const trastenda_engine *e, uint32_t head, trastenda_order_alloc *out, uint32_t max)
{
    uint32_t n = 0;
    for (uint32_t l = head; l != ENG_NONE && n < max; l = e->lines[l].next) {
        const struct eng_line *ln = &e->lines[l];
        out[n++] = (trastenda_order_alloc){ln->sku_ix, ln->loc_ix,   ln->qty,
                                           ln->done,   ln->returned, ln->state};
    }
    return n;
}

trastenda_err
trastenda_engine_order_get(const trastenda_engine *e, trastenda_str order_id,
                           trastenda_order_view *out)
{
    if (order_id.len == 0 || order_id.len > TRASTENDA_ID_BYTES_MAX) return TRASTENDA_E_INVALID;
    uint32_t o = eng_order_find(e, order_id);
    if (o == ENG_NONE) return TRASTENDA_E_UNKNOWN_ORDER;
    const struct eng_order *od = &e->orders[o];
    memcpy(out->id, od->id.s, od->id.len);
    out->id[od->id.len] = 0;
    out->no = od->no;
    out->state = od->state;
    out->rule = od->rule;
    out->channel = od->channel;
    out->lat_e6 = od->lat_e6;
    out->lon_e6 = od->lon_e6;
    out->created_ms = od->created_ms;
    out->updated_ms = od->updated_ms;
    out->alloc_count = lines_view(e, od->lines_head, out->allocs, TRASTENDA_ALLOCS_MAX);
    return TRASTENDA_OK;
}

trastenda_err
trastenda_engine_po_get(const trastenda_engine *e, trastenda_str po_id, trastenda_po_view *out)
{
    if (po_id.len == 0 || po_id.len > TRASTENDA_ID_BYTES_MAX) return TRASTENDA_E_INVALID;
    uint32_t p = eng_po_find(e, po_id);
    if (p == ENG_NONE) return TRASTENDA_E_UNKNOWN_PO;
    const struct eng_po *po = &e->pos[p];
    memcpy(out->id, po->id.s, po->id.len);
    out->id[po->id.len] = 0;
    out->open = po->open;
    out->line_count = lines_view(e, po->lines_head, out->lines, TRASTENDA_LINES_MAX);
    return TRASTENDA_OK;
}

/* Walks the low-stock index from cursor; calls visit for up to limit records. */
static trastenda_err
low_walk(const trastenda_engine *e, uint64_t cursor, uint32_t limit, uint32_t *count,
         uint64_t *next, void (*visit)(const trastenda_engine *, uint32_t, void *, uint32_t),
         void *out)
{
    if (limit == 0 || limit > TRASTENDA_PAGE_MAX || cursor > e->stock_count)
        return TRASTENDA_E_INVALID;
    *count = 0;
    *next = 0;
    uint32_t rec = eng_bits_next(&e->low, (uint32_t)cursor);
    while (rec != ENG_NONE && rec < e->stock_count) {
        if (*count == limit) {
            *next = rec;
            return TRASTENDA_OK;
        }
        visit(e, rec, out, (*count)++);
        rec = eng_bits_next(&e->low, rec + 1);
    }
    return TRASTENDA_OK;
}

static void
low_visit(const trastenda_engine *e, uint32_t rec, void *out, uint32_t i)
{
    eng_stock_view(e, rec, &((trastenda_stock *)out)[i]);
}

trastenda_err
trastenda_engine_low_stock(const trastenda_engine *e, uint64_t cursor, uint32_t limit,
                           trastenda_stock *out, uint32_t *count, uint64_t *next)
{
    return low_walk(e, cursor, limit, count, next, low_visit, out);
}

struct reorder_ctx {
    trastenda_reorder *out;
    int32_t day;
};

static void
reorder_visit(const trastenda_engine *e, uint32_t rec, void *ctx, uint32_t i)
{
    struct reorder_ctx *c = ctx;
    trastenda_reorder *o = &c->out[i];
    eng_stock_view(e, rec, &o->stock);
    const struct eng_sku *s = &e->skus[e->stock[rec].sku_ix];
    int64_t units = (int64_t)eng_velocity_sum(&e->vel[rec], c->day);
    o->velocity_milli = units * 1000 / TRASTENDA_VELOCITY_DAYS;
    int64_t have = TS_MAX(o->stock.available, 0) + o->stock.incoming;
    int64_t days = s->lead_days + (int64_t)e->cfg.review_days;
    int64_t demand = (o->velocity_milli * days + 999) / 1000;
    int64_t q = demand + o->stock.safety_stock - have;
    if (q > 0 && q < s->reorder_qty) q = s->reorder_qty;
    if (q <= 0 && have <= s->reorder_point) q = TS_MAX(s->reorder_qty, 1);
    o->suggested_qty = TS_MAX(q, 0);
    o->cover_days_milli = o->velocity_milli > 0 ? have * 1000000 / o->velocity_milli : -1;
}

trastenda_err
trastenda_engine_reorder(const trastenda_engine *e, int64_t now_ms, uint64_t cursor, uint32_t limit,
                         trastenda_reorder *out, uint32_t *count, uint64_t *next)
{
    struct reorder_ctx c = {out, eng_day(now_ms)};
    return low_walk(e, cursor, limit, count, next, reorder_visit, &c);
}

void
trastenda_engine_stats_get(const trastenda_engine *e, trastenda_engine_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->locations = e->loc_count;
    out->skus = e->sku_count;
    out->stock = e->stock_count;
    out->holds = eng_pool_used(&e->hold_pool);
    out->holds_open = e->heap_count;
    out->orders = eng_pool_used(&e->order_pool);
    out->pos = eng_pool_used(&e->po_pool);
    out->keys = eng_pool_used(&e->key_pool);
    out->lines = eng_pool_used(&e->line_pool);
    out->seq = e->seq;
    out->ledger_seq = e->ledger_seq;
    out->time_ms = e->time_ms;
    out->memory_bytes = ts_allocated_bytes();
}

/* ---- whole tables ---- */

trastenda_err
trastenda_engine_sku_at(const trastenda_engine *e, uint32_t ix, trastenda_sku_view *out)
{
    if (e == NULL || out == NULL || ix >= e->sku_count) return TRASTENDA_E_INVALID;
    const struct eng_sku *k = &e->skus[ix];
    memcpy(out->id, k->id.s, k->id.len);
    out->id[k->id.len] = 0;
    memcpy(out->name, k->name.s, k->name.len);
    out->name[k->name.len] = 0;
    out->reorder_point = k->reorder_point;
    out->reorder_qty = k->reorder_qty;
    out->lead_days = k->lead_days;
    out->safety_stock = k->safety_default;
    out->active = k->active;
    return TRASTENDA_OK;
}

trastenda_err
trastenda_engine_location_at(const trastenda_engine *e, uint32_t ix, trastenda_location_view *out)
{
    if (e == NULL || out == NULL || ix >= e->loc_count) return TRASTENDA_E_INVALID;
    const struct eng_location *l = &e->locs[ix];
    memcpy(out->id, l->id.s, l->id.len);
    out->id[l->id.len] = 0;
    memcpy(out->name, l->name.s, l->name.len);
    out->name[l->name.len] = 0;
    out->lat_e6 = l->lat_e6;
    out->lon_e6 = l->lon_e6;
    out->priority = l->priority;
    out->channels = l->channels;
    out->active = l->active;
    return TRASTENDA_OK;
}

trastenda_err
trastenda_engine_stock_at(const trastenda_engine *e, uint32_t rec, trastenda_stock *out)
{
    if (e == NULL || out == NULL || rec >= e->stock_count) return TRASTENDA_E_INVALID;
    eng_stock_view(e, rec, out);
    return TRASTENDA_OK;
}

trastenda_str
trastenda_engine_channel_name(const trastenda_engine *e, uint32_t i)
{
    if (e == NULL || i >= e->channel_count) return (trastenda_str){"", 0};
    return eng_id_str(&e->channels[i]);
}

/* ---- digest ---- */

/* Sum of per-record hashes: independent of the order records sit in their tables. */
static uint64_t
digest_one(const trastenda_engine *e, struct eng_buf *b, uint32_t ix,
           void (*enc)(const trastenda_engine *, struct eng_buf *, uint32_t))
{
    b->len = 0;
    enc(e, b, ix);
    return ts_hash(b->p, b->len, 0x64696765737421ull);
}

uint64_t
trastenda_engine_digest(const trastenda_engine *e)
{
    struct eng_buf b = {0};
    uint64_t d = ts_mix64(e->seq) ^ ts_mix64((uint64_t)e->time_ms + 1);
    for (uint32_t i = 0; i < e->channel_count; i++)
        d += digest_one(e, &b, i, eng_enc_channel);
    for (uint32_t i = 0; i < e->loc_count; i++)
        d += digest_one(e, &b, i, eng_enc_location);
    for (uint32_t i = 0; i < e->sku_count; i++)
        d += digest_one(e, &b, i, eng_enc_sku);
    for (uint32_t i = 0; i < e->stock_count; i++)
        d += digest_one(e, &b, i, eng_enc_stock);
    /* Only the slots ever handed out: a table far below its capacity is not walked whole. The
     * lines of each window of slots, and their SKUs, are loaded together first (eng_touch_lines).
     */
    volatile uint64_t touched = 0; /* volatile: the loads must happen */
    for (uint32_t i = 0; i < e->hold_pool.hw; i++) {
        if (i % ENG_TOUCH_WINDOW == 0)
            touched += eng_touch_lines(e, TRASTENDA_REC_HOLD, i,
                                       TS_MIN(e->hold_pool.hw, i + ENG_TOUCH_WINDOW));
        if (e->holds[i].in_use) d += digest_one(e, &b, i, eng_enc_hold);
    }
    for (uint32_t i = 0; i < e->order_pool.hw; i++) {
        if (i % ENG_TOUCH_WINDOW == 0)
            touched += eng_touch_lines(e, TRASTENDA_REC_ORDER, i,
                                       TS_MIN(e->order_pool.hw, i + ENG_TOUCH_WINDOW));
        if (e->orders[i].in_use) d += digest_one(e, &b, i, eng_enc_order);
    }
    for (uint32_t i = 0; i < e->po_pool.hw; i++)
        if (e->pos[i].in_use) d += digest_one(e, &b, i, eng_enc_po);
    (void)touched;
    for (uint32_t i = 0; i < e->key_pool.hw; i++)
        if (e->keys[i].in_use) d += digest_one(e, &b, i, eng_enc_key);
    b.len = 0;
    eng_enc_meta(e, &b);
    d += ts_hash(b.p, b.len, 1);
    eng_buf_fini(&b);
    return d;
}

/* ---- full invariant check (eng.h Design notes 1 and 2) ---- */

static void
check_fail(const char *what, uint32_t rec, int64_t want, int64_t got)
{
    fprintf(stderr, "trastenda: invariant broken: %s at record %u: expected %lld, found %lld\n",
            what, rec, (long long)want, (long long)got);
    TS_ASSERT(0);
}

static void
check_record(const trastenda_engine *e, uint32_t rec, int64_t incoming)
{
    const struct eng_stock *s = &e->stock[rec];
    eng_stock_check_one(e, rec);
    int64_t held = 0, committed = 0;
    uint32_t n = 0;
    for (uint32_t l = s->lines_head; l != ENG_NONE; l = e->lines[l].rec_next) {
        TS_ASSERT(n++ < e->cfg.lines_max);
        const struct eng_line *ln = &e->lines[l];
        TS_ASSERT(ln->rec_ix == rec);
        if (ln->kind == ENG_LINE_HOLD) {
            TS_ASSERT(e->holds[ln->owner].state == TRASTENDA_HOLD_OPEN);
            held += ln->qty;
        } else {
            TS_ASSERT(ln->kind == ENG_LINE_ORDER && ln->done == 0);
            committed += ln->qty;
        }
    }
    if (held != s->q[TRASTENDA_Q_HELD]) check_fail("held", rec, held, s->q[TRASTENDA_Q_HELD]);
    if (committed != s->q[TRASTENDA_Q_COMMITTED])
        check_fail("committed", rec, committed, s->q[TRASTENDA_Q_COMMITTED]);
    if (incoming != s->q[TRASTENDA_Q_INCOMING])
        check_fail("incoming", rec, incoming, s->q[TRASTENDA_Q_INCOMING]);
}

void
trastenda_engine_check(const trastenda_engine *e)
{
    TS_ASSERT(e != NULL && !e->building);
    /* incoming equals what open purchase orders still expect */
    int64_t *incoming = ts_alloc((size_t)(e->stock_count + 1) * sizeof(int64_t));
    TS_ASSERT(incoming != NULL);
    for (uint32_t p = 0; p < e->cfg.pos_max; p++) {
        if (!e->pos[p].in_use || !e->pos[p].open) continue;
        for (uint32_t l = e->pos[p].lines_head; l != ENG_NONE; l = e->lines[l].next) {
            uint32_t rec = eng_stock_find(e, e->lines[l].sku_ix, e->lines[l].loc_ix);
            TS_ASSERT(rec != ENG_NONE);
            incoming[rec] += e->lines[l].qty - e->lines[l].done;
        }
    }
    for (uint32_t rec = 0; rec < e->stock_count; rec++)
        check_record(e, rec, incoming[rec]);
    ts_free(incoming, (size_t)(e->stock_count + 1) * sizeof(int64_t));
    uint32_t open = 0;
    for (uint32_t h = 0; h < e->cfg.holds_max; h++) {
        const struct eng_hold *hd = &e->holds[h];
        if (!hd->in_use) continue;
        open += hd->state == TRASTENDA_HOLD_OPEN;
        TS_ASSERT((hd->state == TRASTENDA_HOLD_OPEN) == (hd->heap_pos != ENG_NONE));
        TS_ASSERT((hd->state != TRASTENDA_HOLD_OPEN) == eng_fifo_has(&e->hold_fifo, h));
        TS_ASSERT(eng_hold_find(e, hd->id) == h);
    }
    TS_ASSERT(open == e->heap_count);
    for (uint32_t i = 0; i < e->heap_count; i++) {
        const struct eng_heap_ent *x = &e->heap[i];
        TS_ASSERT(x->hold < e->cfg.holds_max && e->holds[x->hold].heap_pos == i);
        TS_ASSERT(x->expires_ms == e->holds[x->hold].expires_ms && x->id == e->holds[x->hold].id);
        if (i > 0) TS_ASSERT(eng_heap_less(&e->heap[(i - 1) / 2], x));
    }
    uint32_t lines = 0;
    for (uint32_t o = 0; o < e->cfg.orders_max; o++)
        if (e->orders[o].in_use) lines += e->orders[o].alloc_count;
    for (uint32_t h = 0; h < e->cfg.holds_max; h++)
        if (e->holds[h].in_use) lines += e->holds[h].line_count;
    for (uint32_t p = 0; p < e->cfg.pos_max; p++)
        if (e->pos[p].in_use) lines += e->pos[p].line_count;
    TS_ASSERT(lines == eng_pool_used(&e->line_pool));
}
