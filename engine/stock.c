/*
 * engine/stock.c - stock records, one per (SKU, location), and the stock commands: receive,
 * adjust, count, move to and from unsellable, safety stock, transfers.
 *
 * Records are insert-only and published to readers through a seqlock per record (eng.h Design
 * note 3): the writer bumps seq to odd, stores the quantities, bumps it to even; a reader retries
 * until it read the same even seq before and after. Every change to a quantity goes through
 * eng_stock_change(), which also writes its ledger entry and events.
 */
#include <string.h>

#include "eng.h"

static int
stock_eq(const void *ctx, uint32_t ix, const void *key)
{
    const trastenda_engine *e = ctx;
    const uint32_t *k = key;
    return e->stock[ix].sku_ix == k[0] && e->stock[ix].loc_ix == k[1];
}

uint32_t
eng_stock_find(const trastenda_engine *e, uint32_t sku_ix, uint32_t loc_ix)
{
    uint32_t key[2] = {sku_ix, loc_ix};
    uint32_t ix;
    ENG_MAP_FIND(&e->stock_map, eng_stock_hash(sku_ix, loc_ix), stock_eq, e, key, ix);
    return ix;
}

uint32_t
eng_stock_insert(trastenda_engine *e, uint32_t sku_ix, uint32_t loc_ix)
{
    TS_ASSERT(e->stock_count < e->cfg.stock_max);
    TS_ASSERT(sku_ix < e->sku_count && loc_ix < e->loc_count);
    uint32_t ix = e->stock_count;
    struct eng_stock *s = &e->stock[ix];
    memset(s, 0, sizeof(*s));
    memset(&e->vel[ix], 0, sizeof(e->vel[ix]));
    s->sku_ix = sku_ix;
    s->loc_ix = loc_ix;
    s->lines_head = ENG_NONE;
    s->q[TRASTENDA_Q_SAFETY] = e->skus[sku_ix].safety_default;
    /* A new record starts out of stock, without an event: nothing was ever sellable there. */
    s->flags = ENG_STOCK_OUT | ENG_STOCK_LOW;
    eng_bits_set(&e->low, ix, true);
    struct eng_sku *k = &e->skus[sku_ix];
    s->next_in_sku = k->first_stock;
    /* Design note (3): the record is complete before the chain and the map show it. */
    __atomic_store_n(&k->first_stock, ix, __ATOMIC_RELEASE);
    eng_map_insert(&e->stock_map, eng_stock_hash(sku_ix, loc_ix), ix);
    __atomic_store_n(&e->stock_count, ix + 1, __ATOMIC_RELEASE);
    eng_dirty_mark(e, TRASTENDA_REC_STOCK, ix, &s->dirty);
    /* The ledger is the audit trail (docs/LOG.md): the safety stock a record starts with is a
     * movement like any other, so replaying the ledger from zero rebuilds it. */
    if (s->q[TRASTENDA_Q_SAFETY] != 0) {
        int32_t d[TRASTENDA_Q_COUNT_] = {0};
        d[TRASTENDA_Q_SAFETY] = s->q[TRASTENDA_Q_SAFETY];
        struct eng_move mv = {.move = TRASTENDA_MOVE_SAFETY};
        eng_emit_ledger(e, ix, d, &mv);
    }
    return ix;
}

trastenda_err
eng_stock_get(trastenda_engine *e, uint32_t sku_ix, uint32_t loc_ix, trastenda_result *r,
              uint32_t *rec)
{
    *rec = eng_stock_find(e, sku_ix, loc_ix);
    if (*rec != ENG_NONE) return TRASTENDA_OK;
    if (e->stock_count >= e->cfg.stock_max)
        return eng_fail(r, TRASTENDA_E_TABLE_FULL, "stock table full (%u); raise stock_max",
                        e->cfg.stock_max);
    *rec = eng_stock_insert(e, sku_ix, loc_ix);
    return TRASTENDA_OK;
}

int64_t
eng_stock_sellable(const trastenda_engine *e, uint32_t rec)
{
    const struct eng_stock *s = &e->stock[rec];
    if (!e->locs[s->loc_ix].active) return 0;
    int64_t a = eng_available(s->q);
    return a < 0 ? 0 : a;
}

void
eng_stock_publish(struct eng_stock *s, const int32_t q[TRASTENDA_Q_COUNT_])
{
    uint32_t seq = s->seq;
    TS_ASSERT((seq & 1u) == 0);
    __atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    for (int i = 0; i < TRASTENDA_Q_COUNT_; i++)
        __atomic_store_n(&s->q[i], q[i], __ATOMIC_RELAXED);
    __atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELEASE);
}

/* Reader side of the seqlock: any thread. Bounded: the writer holds a record for a few stores. */
static void
stock_snapshot(const struct eng_stock *s, int32_t q[TRASTENDA_Q_COUNT_])
{
    for (uint32_t tries = 0;; tries++) {
        TS_ASSERT(tries < (1u << 30));
        uint32_t s0 = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        if (s0 & 1u) {
            __builtin_ia32_pause();
            continue;
        }
        for (int i = 0; i < TRASTENDA_Q_COUNT_; i++)
            q[i] = __atomic_load_n(&s->q[i], __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) == s0) return;
    }
}

static void
stock_view(const struct eng_stock *s, const int32_t q[TRASTENDA_Q_COUNT_], trastenda_stock *out)
{
    out->sku_ix = s->sku_ix;
    out->loc_ix = s->loc_ix;
    out->on_hand = q[TRASTENDA_Q_ON_HAND];
    out->committed = q[TRASTENDA_Q_COMMITTED];
    out->held = q[TRASTENDA_Q_HELD];
    out->unsellable = q[TRASTENDA_Q_UNSELLABLE];
    out->safety_stock = q[TRASTENDA_Q_SAFETY];
    out->incoming = q[TRASTENDA_Q_INCOMING];
    out->in_transit = q[TRASTENDA_Q_IN_TRANSIT];
    out->available = eng_available(q);
}

void
eng_stock_view(const trastenda_engine *e, uint32_t rec, trastenda_stock *out)
{
    const struct eng_stock *s = &e->stock[rec];
    int32_t q[TRASTENDA_Q_COUNT_];
    stock_snapshot(s, q);
    stock_view(s, q, out);
}

trastenda_err
trastenda_engine_stock_read(const trastenda_engine *e, uint32_t sku_ix, uint32_t loc_ix,
                            trastenda_stock *out)
{
    TS_ASSERT(e != NULL && out != NULL);
    uint32_t rec = eng_stock_find(e, sku_ix, loc_ix);
    if (rec == ENG_NONE) return TRASTENDA_E_NO_STOCK_RECORD;
    eng_stock_view(e, rec, out);
    return TRASTENDA_OK;
}

/* SKUs warmed per round: their map slots, then entries, then (for stock reads) first records. */
#define PREFETCH_CHUNK 32

static void
skus_warm(const trastenda_engine *e, const trastenda_str *skus, uint32_t n, bool records)
{
    if (e == NULL || skus == NULL) return;
    uint32_t hash[PREFETCH_CHUNK], ix[PREFETCH_CHUNK];
    for (uint32_t from = 0; from < n; from += PREFETCH_CHUNK) {
        uint32_t k = TS_MIN(n - from, PREFETCH_CHUNK);
        for (uint32_t i = 0; i < k; i++) { /* the home slots */
            trastenda_str id = skus[from + i];
            hash[i] = id.len > 0 && id.len <= TRASTENDA_ID_BYTES_MAX && id.ptr != NULL
                          ? eng_str_hash(id)
                          : 0;
            __builtin_prefetch(&e->sku_map.slots[hash[i] & e->sku_map.mask]);
        }
        uint32_t count = __atomic_load_n(&e->sku_count, __ATOMIC_ACQUIRE);
        for (uint32_t i = 0; i < k; i++) { /* the entries the home slots name (a guess) */
            ix[i] = eng_map_home_entry(&e->sku_map, hash[i]);
            if (ix[i] >= count) {
                ix[i] = ENG_NONE;
                continue;
            }
            __builtin_prefetch(&e->skus[ix[i]].id);
            if (records) __builtin_prefetch(&e->skus[ix[i]].first_stock);
        }
        for (uint32_t i = 0; records && i < k; i++) { /* each SKU's first stock record */
            if (ix[i] == ENG_NONE) continue;
            uint32_t rec = __atomic_load_n(&e->skus[ix[i]].first_stock, __ATOMIC_ACQUIRE);
            if (rec != ENG_NONE) __builtin_prefetch(&e->stock[rec]);
        }
    }
}

void
trastenda_engine_stock_prefetch(const trastenda_engine *e, const trastenda_str *skus, uint32_t n)
{
    skus_warm(e, skus, n, true);
}

void
trastenda_engine_sku_prefetch(const trastenda_engine *e, const trastenda_str *skus, uint32_t n)
{
    skus_warm(e, skus, n, false);
}

/* Walks a SKU's records at the active locations of the scope: *available sums them (shortfalls
 * as 0), visit sees each one's figures. E_UNKNOWN_SKU, E_INVALID (an unknown channel). */
static inline __attribute__((always_inline)) trastenda_err
avail_walk(const trastenda_engine *e, uint32_t sku_ix, trastenda_scope scope, trastenda_str channel,
           int64_t *available, void (*visit)(void *ctx, const trastenda_stock *v), void *ctx)
{
    TS_ASSERT(e != NULL && available != NULL);
    if (sku_ix >= __atomic_load_n(&e->sku_count, __ATOMIC_ACQUIRE)) return TRASTENDA_E_UNKNOWN_SKU;
    uint32_t mask = ~0u;
    if (scope == TRASTENDA_SCOPE_CHANNEL) {
        uint32_t ch = eng_channel_find(e, channel);
        if (ch == ENG_NONE) return TRASTENDA_E_INVALID;
        mask = 1u << ch;
    }
    *available = 0;
    uint32_t n = 0;
    uint32_t rec = __atomic_load_n(&e->skus[sku_ix].first_stock, __ATOMIC_ACQUIRE);
    for (; rec != ENG_NONE; rec = __atomic_load_n(&e->stock[rec].next_in_sku, __ATOMIC_ACQUIRE)) {
        TS_ASSERT(n++ < e->cfg.locations_max);
        const struct eng_location *l = &e->locs[e->stock[rec].loc_ix];
        if (!__atomic_load_n(&l->active, __ATOMIC_ACQUIRE)) continue;
        if (scope == TRASTENDA_SCOPE_CHANNEL &&
            (__atomic_load_n(&l->channels, __ATOMIC_ACQUIRE) & mask) == 0)
            continue;
        trastenda_stock v;
        eng_stock_view(e, rec, &v);
        if (v.available > 0) *available += v.available;
        visit(ctx, &v);
    }
    return TRASTENDA_OK;
}

struct avail_list {
    trastenda_stock *recs;
    uint32_t max, listed, total;
};

/* The first max records, in the SKU's record order; total counts them all. */
static void
list_first(void *ctx, const trastenda_stock *v)
{
    struct avail_list *a = ctx;
    if (a->recs != NULL && a->listed < a->max) a->recs[a->listed++] = *v;
    a->total++;
}

static trastenda_err
availability(const trastenda_engine *e, uint32_t sku_ix, trastenda_scope scope,
             trastenda_str channel, int64_t *available, struct avail_list *a)
{
    return avail_walk(e, sku_ix, scope, channel, available, list_first, a);
}

trastenda_err
trastenda_engine_availability(const trastenda_engine *e, uint32_t sku_ix, trastenda_scope scope,
                              trastenda_str channel, int64_t *available, trastenda_stock *recs,
                              uint32_t rec_max, uint32_t *rec_count)
{
    struct avail_list a = {recs, rec_max, 0, 0};
    trastenda_err err = availability(e, sku_ix, scope, channel, available, &a);
    if (err == TRASTENDA_OK && rec_count != NULL) *rec_count = a.listed;
    return err;
}

trastenda_err
trastenda_engine_availability_all(const trastenda_engine *e, uint32_t sku_ix, trastenda_scope scope,
                                  trastenda_str channel, int64_t *available, trastenda_stock *recs,
                                  uint32_t rec_max, uint32_t *rec_count, uint32_t *in_scope)
{
    struct avail_list a = {recs, rec_max, 0, 0};
    trastenda_err err = availability(e, sku_ix, scope, channel, available, &a);
    if (err != TRASTENDA_OK) return err;
    *rec_count = a.listed;
    *in_scope = a.total;
    return TRASTENDA_OK;
}

/* The page: a max-heap on the location index of the lowest max indexes seen (from `from` on),
 * sorted once the walk is over: O(records x log max) whatever order the records come in. */
struct avail_page {
    trastenda_stock *recs;
    uint32_t max, listed, from;
    bool more;
};

static void
page_sift_down(trastenda_stock *h, uint32_t n, uint32_t i)
{
    for (;;) { /* bound: log n */
        uint32_t big = i, l = 2 * i + 1, r = l + 1;
        if (l < n && h[l].loc_ix > h[big].loc_ix) big = l;
        if (r < n && h[r].loc_ix > h[big].loc_ix) big = r;
        if (big == i) return;
        trastenda_stock t = h[i];
        h[i] = h[big];
        h[big] = t;
        i = big;
    }
}

static void
list_page(void *ctx, const trastenda_stock *v)
{
    struct avail_page *p = ctx;
    if (v->loc_ix < p->from) return;
    trastenda_stock *h = p->recs;
    if (p->listed == p->max) {
        p->more = true;
        if (v->loc_ix > h[0].loc_ix) return;
        h[0] = *v; /* the highest leaves the page */
        page_sift_down(h, p->listed, 0);
        return;
    }
    uint32_t i = p->listed++;
    h[i] = *v;
    while (i > 0 && h[(i - 1) / 2].loc_ix < h[i].loc_ix) { /* bound: log max */
        trastenda_stock t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

trastenda_err
trastenda_engine_availability_page(const trastenda_engine *e, uint32_t sku_ix,
                                   trastenda_scope scope, trastenda_str channel, uint32_t from_loc,
                                   int64_t *available, trastenda_stock *recs, uint32_t rec_max,
                                   uint32_t *rec_count, uint32_t *next_loc)
{
    TS_ASSERT(recs != NULL && rec_count != NULL && next_loc != NULL && rec_max > 0);
    struct avail_page p = {recs, rec_max, 0, from_loc, false};
    trastenda_err err = avail_walk(e, sku_ix, scope, channel, available, list_page, &p);
    if (err != TRASTENDA_OK) return err;
    /* Heap sort in place: the largest goes last, one at a time. */
    for (uint32_t n = p.listed; n > 1; n--) { /* bound: max */
        trastenda_stock t = recs[0];
        recs[0] = recs[n - 1];
        recs[n - 1] = t;
        page_sift_down(recs, n - 1, 0);
    }
    *rec_count = p.listed;
    *next_loc = p.more ? recs[p.listed - 1].loc_ix + 1 : 0;
    return TRASTENDA_OK;
}

void
eng_velocity_add(struct eng_velocity *v, int32_t day, uint32_t units)
{
    if (day > v->day) {
        int32_t shift = day - v->day;
        for (int i = TRASTENDA_VELOCITY_DAYS - 1; i >= 0; i--)
            v->units[i] = (i - shift >= 0) ? v->units[i - shift] : 0;
        v->day = day;
    }
    TS_ASSERT(day == v->day);
    /* Saturates rather than wraps: a velocity can only be understated, never tiny. */
    v->units[0] = units > UINT32_MAX - v->units[0] ? UINT32_MAX : v->units[0] + units;
}

uint64_t
eng_velocity_sum(const struct eng_velocity *v, int32_t day)
{
    uint64_t sum = 0;
    for (int i = 0; i < TRASTENDA_VELOCITY_DAYS; i++) {
        int32_t d = v->day - i;
        if (d <= day && d > day - TRASTENDA_VELOCITY_DAYS) sum += v->units[i];
    }
    return sum;
}

/* Flags follow from the figures: events fire on the transitions (Design note 1). */
void
eng_stock_flags_update(trastenda_engine *e, uint32_t rec)
{
    struct eng_stock *s = &e->stock[rec];
    int64_t a = eng_available(s->q);
    uint32_t f = 0;
    if (a < 0) f |= ENG_STOCK_SHORTFALL;
    if (a <= 0) f |= ENG_STOCK_OUT;
    if (a <= e->skus[s->sku_ix].reorder_point) f |= ENG_STOCK_LOW;
    uint32_t was = s->flags;
    if (f == was) return;
    s->flags = f;
    eng_dirty_mark(e, TRASTENDA_REC_STOCK, rec, &s->dirty);
    if ((f ^ was) & ENG_STOCK_LOW) eng_bits_set(&e->low, rec, (f & ENG_STOCK_LOW) != 0);
    if ((f & ENG_STOCK_LOW) && !(was & ENG_STOCK_LOW))
        eng_emit_stock_event(e, TRASTENDA_EVENT_LOW_STOCK, rec, a);
    if ((f & ENG_STOCK_OUT) && !(was & ENG_STOCK_OUT))
        eng_emit_stock_event(e, TRASTENDA_EVENT_OUT_OF_STOCK, rec, a);
    if (!(f & ENG_STOCK_OUT) && (was & ENG_STOCK_OUT))
        eng_emit_stock_event(e, TRASTENDA_EVENT_BACK_IN_STOCK, rec, a);
    if ((f & ENG_STOCK_SHORTFALL) && !(was & ENG_STOCK_SHORTFALL)) eng_emit_shortfall(e, rec, a);
}

void
eng_stock_change(trastenda_engine *e, uint32_t rec, const int32_t delta[TRASTENDA_Q_COUNT_],
                 const struct eng_move *mv)
{
    struct eng_stock *s = &e->stock[rec];
    int32_t q[TRASTENDA_Q_COUNT_];
    for (int i = 0; i < TRASTENDA_Q_COUNT_; i++) {
        int64_t v = (int64_t)s->q[i] + delta[i];
        TS_ASSERT(v >= 0 && v <= TRASTENDA_QTY_MAX); /* Design note (1); callers checked */
        q[i] = (int32_t)v;
    }
    /* A sales move never makes a record short (Design note 1). */
    if (mv->move == TRASTENDA_MOVE_RESERVE || mv->move == TRASTENDA_MOVE_ALLOCATE)
        TS_ASSERT(eng_available(q) >= 0);
    eng_stock_publish(s, q);
    eng_emit_ledger(e, rec, delta, mv);
    eng_dirty_mark(e, TRASTENDA_REC_STOCK, rec, &s->dirty);
    eng_stock_flags_update(e, rec);
}

void
eng_stock_line_link(trastenda_engine *e, uint32_t rec, uint32_t line)
{
    struct eng_line *l = &e->lines[line];
    TS_ASSERT(l->rec_ix == ENG_NONE);
    struct eng_stock *s = &e->stock[rec];
    l->rec_ix = rec;
    l->rec_prev = ENG_NONE;
    l->rec_next = s->lines_head;
    if (s->lines_head != ENG_NONE) e->lines[s->lines_head].rec_prev = line;
    s->lines_head = line;
}

void
eng_stock_line_unlink(trastenda_engine *e, uint32_t line)
{
    struct eng_line *l = &e->lines[line];
    TS_ASSERT(l->rec_ix != ENG_NONE);
    struct eng_stock *s = &e->stock[l->rec_ix];
    if (l->rec_prev != ENG_NONE)
        e->lines[l->rec_prev].rec_next = l->rec_next;
    else
        s->lines_head = l->rec_next;
    if (l->rec_next != ENG_NONE) e->lines[l->rec_next].rec_prev = l->rec_prev;
    l->rec_ix = l->rec_prev = l->rec_next = ENG_NONE;
}

/* ---- lines of holds, orders and purchase orders (one pool) ---- */

uint32_t
eng_line_append(trastenda_engine *e, struct eng_line_list *list, uint8_t kind, uint32_t owner,
                uint32_t sku_ix, uint32_t loc_ix, int32_t qty, uint8_t state)
{
    uint32_t l = eng_pool_take(&e->line_pool);
    TS_ASSERT(l != ENG_NONE); /* callers checked for room; fail-stop on a replica's smaller pool */
    e->lines[l] = (struct eng_line){.sku_ix = sku_ix,
                                    .loc_ix = loc_ix,
                                    .qty = qty,
                                    .next = ENG_NONE,
                                    .owner = owner,
                                    .rec_ix = ENG_NONE,
                                    .rec_prev = ENG_NONE,
                                    .rec_next = ENG_NONE,
                                    .kind = kind,
                                    .state = state};
    if (list->tail == ENG_NONE)
        list->head = l;
    else
        e->lines[list->tail].next = l;
    list->tail = l;
    return l;
}

void
eng_lines_free(trastenda_engine *e, uint32_t head)
{
    for (uint32_t l = head, n = 0; l != ENG_NONE; n++) {
        TS_ASSERT(n < TRASTENDA_ALLOCS_MAX);
        uint32_t next = e->lines[l].next;
        if (e->lines[l].rec_ix != ENG_NONE) eng_stock_line_unlink(e, l);
        eng_pool_give(&e->line_pool, l);
        l = next;
    }
}

trastenda_err
eng_lines_check(const trastenda_cmd *c, trastenda_result *r)
{
    if (c->line_count == 0 || c->line_count > TRASTENDA_LINES_MAX)
        return eng_fail(r, TRASTENDA_E_LIMIT, "lines must be 1..%d (got %u)", TRASTENDA_LINES_MAX,
                        c->line_count);
    if (c->lines == NULL) return eng_fail(r, TRASTENDA_E_INVALID, "lines is NULL");
    return TRASTENDA_OK;
}

/* Cheap checks on one record (debug builds: after each batch, on every record it touched). */
void
eng_stock_check_one(const trastenda_engine *e, uint32_t rec)
{
    const struct eng_stock *s = &e->stock[rec];
    for (int i = 0; i < TRASTENDA_Q_COUNT_; i++)
        TS_ASSERT(s->q[i] >= 0);
    TS_ASSERT(s->q[TRASTENDA_Q_UNSELLABLE] <= s->q[TRASTENDA_Q_ON_HAND]);
    int64_t a = eng_available(s->q);
    TS_ASSERT((a < 0) == ((s->flags & ENG_STOCK_SHORTFALL) != 0));
    TS_ASSERT(eng_bits_get(&e->low, rec) == ((s->flags & ENG_STOCK_LOW) != 0));
}

/* ---- stock commands ---- */

struct stock_args {
    uint32_t sku, loc, to;
    uint32_t rec, rec_to; /* ENG_NONE when the record does not exist yet */
};

static trastenda_err
stock_args(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r, struct stock_args *a)
{
    trastenda_err err = eng_sku_resolve(e, &c->sku, "sku", r, &a->sku);
    if (err == TRASTENDA_OK) err = eng_location_resolve(e, &c->loc, "location", r, &a->loc);
    if (err != TRASTENDA_OK) return err;
    a->rec = eng_stock_find(e, a->sku, a->loc);
    a->to = a->rec_to = ENG_NONE;
    if (c->op != TRASTENDA_OP_TRANSFER_OUT) return TRASTENDA_OK;
    err = eng_location_resolve(e, &c->loc_to, "location_to", r, &a->to);
    if (err != TRASTENDA_OK) return err;
    if (a->to == a->loc)
        return eng_fail(r, TRASTENDA_E_INVALID, "location_to must differ from location");
    a->rec_to = eng_stock_find(e, a->sku, a->to);
    return TRASTENDA_OK;
}

static trastenda_err
need_record(const struct stock_args *a, trastenda_result *r)
{
    if (a->rec != ENG_NONE) return TRASTENDA_OK;
    return eng_fail(r, TRASTENDA_E_NO_STOCK_RECORD,
                    "no stock record for this sku at this location");
}

static trastenda_err
room_for(const trastenda_engine *e, uint32_t needed, trastenda_result *r)
{
    if (e->stock_count + needed <= e->cfg.stock_max) return TRASTENDA_OK;
    return eng_fail(r, TRASTENDA_E_TABLE_FULL, "stock table full (%u); raise stock_max",
                    e->cfg.stock_max);
}

static int32_t
cur(const trastenda_engine *e, uint32_t rec, int q)
{
    return rec == ENG_NONE ? 0 : e->stock[rec].q[q];
}

static trastenda_err
fits(int64_t v, const char *field, trastenda_result *r)
{
    if (v <= TRASTENDA_QTY_MAX) return TRASTENDA_OK;
    return eng_fail(r, TRASTENDA_E_LIMIT, "%s would be %lld, above the limit %d", field,
                    (long long)v, TRASTENDA_QTY_MAX);
}

/* Computes the deltas of a single-record stock command, or the error; changes nothing. */
static trastenda_err
stock_plan(trastenda_engine *e, const trastenda_cmd *c, const struct stock_args *a,
           trastenda_result *r, int32_t d[TRASTENDA_Q_COUNT_], uint8_t *move)
{
    int64_t on_hand = cur(e, a->rec, TRASTENDA_Q_ON_HAND);
    trastenda_err err = TRASTENDA_OK;
    switch (c->op) {
    case TRASTENDA_OP_RECEIVE:
        err = eng_qty_check(c->qty, 1, TRASTENDA_QTY_MAX, "qty", r);
        if (err == TRASTENDA_OK) err = fits(on_hand + c->qty, "on_hand", r);
        d[TRASTENDA_Q_ON_HAND] = (int32_t)c->qty;
        *move = TRASTENDA_MOVE_RECEIVE;
        break;
    case TRASTENDA_OP_ADJUST:
        err = eng_qty_check(c->qty, -TRASTENDA_QTY_MAX, TRASTENDA_QTY_MAX, "qty", r);
        if (err == TRASTENDA_OK && c->qty == 0)
            err = eng_fail(r, TRASTENDA_E_INVALID, "qty must not be 0");
        if (err == TRASTENDA_OK &&
            (c->reason < TRASTENDA_REASON_COUNT || c->reason > TRASTENDA_REASON_CORRECTION))
            err = eng_fail(r, TRASTENDA_E_INVALID,
                           "reason must be count, damage, theft, found or correction (got %u)",
                           c->reason);
        if (err == TRASTENDA_OK && on_hand + c->qty < 0)
            err = eng_fail(r, TRASTENDA_E_INVALID, "adjust %lld would leave on_hand %lld below 0",
                           (long long)c->qty, (long long)(on_hand + c->qty));
        if (err == TRASTENDA_OK && on_hand + c->qty < cur(e, a->rec, TRASTENDA_Q_UNSELLABLE))
            err = eng_fail(r, TRASTENDA_E_INVALID,
                           "adjust would leave on_hand below unsellable %d; move units out of "
                           "unsellable first",
                           cur(e, a->rec, TRASTENDA_Q_UNSELLABLE));
        if (err == TRASTENDA_OK) err = fits(on_hand + c->qty, "on_hand", r);
        d[TRASTENDA_Q_ON_HAND] = (int32_t)c->qty;
        *move = TRASTENDA_MOVE_ADJUST;
        break;
    case TRASTENDA_OP_COUNT:
        err = eng_qty_check(c->qty, 0, TRASTENDA_QTY_MAX, "qty", r);
        if (err == TRASTENDA_OK && c->reason > TRASTENDA_REASON_CORRECTION)
            err = eng_fail(r, TRASTENDA_E_INVALID,
                           "reason must be count, damage, theft, found or correction (got %u)",
                           c->reason);
        if (err == TRASTENDA_OK && c->has_expected && c->expected != on_hand) {
            r->value = on_hand;
            err = eng_fail(r, TRASTENDA_E_CAS_MISMATCH, "expected on_hand %lld, it is %lld",
                           (long long)c->expected, (long long)on_hand);
        }
        if (err == TRASTENDA_OK && c->qty < cur(e, a->rec, TRASTENDA_Q_UNSELLABLE))
            err = eng_fail(r, TRASTENDA_E_INVALID,
                           "count %lld is below unsellable %d; move units out of unsellable first",
                           (long long)c->qty, cur(e, a->rec, TRASTENDA_Q_UNSELLABLE));
        d[TRASTENDA_Q_ON_HAND] = (int32_t)(c->qty - on_hand);
        *move = TRASTENDA_MOVE_ADJUST;
        break;
    default:
        TS_ASSERT(0);
    }
    return err;
}

static trastenda_err
move_plan(trastenda_engine *e, const trastenda_cmd *c, const struct stock_args *a,
          trastenda_result *r, int32_t d[TRASTENDA_Q_COUNT_], uint8_t *move)
{
    trastenda_err err = TRASTENDA_OK;
    switch (c->op) {
    case TRASTENDA_OP_MOVE_UNSELLABLE: {
        err = eng_qty_check(c->qty, -TRASTENDA_QTY_MAX, TRASTENDA_QTY_MAX, "qty", r);
        if (err == TRASTENDA_OK && c->qty == 0)
            err = eng_fail(r, TRASTENDA_E_INVALID, "qty must not be 0");
        if (err == TRASTENDA_OK && c->reason != TRASTENDA_REASON_DAMAGE &&
            c->reason != TRASTENDA_REASON_QUALITY && c->reason != TRASTENDA_REASON_CORRECTION)
            err = eng_fail(r, TRASTENDA_E_INVALID,
                           "reason must be damage, quality or correction (got %u)", c->reason);
        if (err == TRASTENDA_OK) err = need_record(a, r);
        int64_t un = cur(e, a->rec, TRASTENDA_Q_UNSELLABLE) + c->qty;
        if (err == TRASTENDA_OK && (un < 0 || un > cur(e, a->rec, TRASTENDA_Q_ON_HAND)))
            err = eng_fail(r, TRASTENDA_E_INVALID, "unsellable would be %lld, must be 0..%d",
                           (long long)un, cur(e, a->rec, TRASTENDA_Q_ON_HAND));
        d[TRASTENDA_Q_UNSELLABLE] = (int32_t)c->qty;
        *move = TRASTENDA_MOVE_UNSELLABLE;
        break;
    }
    case TRASTENDA_OP_SET_SAFETY: {
        /* A record this command creates starts at the SKU's default safety stock. */
        int64_t was = a->rec == ENG_NONE ? e->skus[a->sku].safety_default
                                         : cur(e, a->rec, TRASTENDA_Q_SAFETY);
        err = eng_qty_check(c->qty, 0, TRASTENDA_QTY_MAX, "qty", r);
        d[TRASTENDA_Q_SAFETY] = (int32_t)(c->qty - was);
        *move = TRASTENDA_MOVE_SAFETY;
        break;
    }
    case TRASTENDA_OP_TRANSFER_IN:
        err = eng_qty_check(c->qty, 1, TRASTENDA_QTY_MAX, "qty", r);
        if (err == TRASTENDA_OK) err = need_record(a, r);
        if (err == TRASTENDA_OK && c->qty > cur(e, a->rec, TRASTENDA_Q_IN_TRANSIT))
            err = eng_fail(r, TRASTENDA_E_INVALID, "qty %lld is more than in_transit %d",
                           (long long)c->qty, cur(e, a->rec, TRASTENDA_Q_IN_TRANSIT));
        if (err == TRASTENDA_OK)
            err = fits((int64_t)cur(e, a->rec, TRASTENDA_Q_ON_HAND) + c->qty, "on_hand", r);
        d[TRASTENDA_Q_IN_TRANSIT] = (int32_t)-c->qty;
        d[TRASTENDA_Q_ON_HAND] = (int32_t)c->qty;
        *move = TRASTENDA_MOVE_TRANSFER_IN;
        break;
    default:
        TS_ASSERT(0);
    }
    return err;
}

static trastenda_err
transfer_out(trastenda_engine *e, const trastenda_cmd *c, const struct stock_args *a,
             trastenda_result *r)
{
    trastenda_err err = eng_qty_check(c->qty, 1, TRASTENDA_QTY_MAX, "qty", r);
    if (err == TRASTENDA_OK) err = need_record(a, r);
    if (err == TRASTENDA_OK && !(e->stock[a->rec].flags & ENG_STOCK_SHORTFALL) &&
        eng_available(e->stock[a->rec].q) < c->qty) {
        r->value = eng_available(e->stock[a->rec].q);
        err = eng_fail(r, TRASTENDA_E_SHORT, "transfer of %lld but only %lld available",
                       (long long)c->qty, (long long)r->value);
    }
    if (err == TRASTENDA_OK && (e->stock[a->rec].flags & ENG_STOCK_SHORTFALL))
        err = eng_fail(r, TRASTENDA_E_SHORTFALL, "source record is in shortfall");
    if (err == TRASTENDA_OK)
        err = fits((int64_t)cur(e, a->rec_to, TRASTENDA_Q_IN_TRANSIT) + c->qty, "in_transit", r);
    if (err == TRASTENDA_OK && a->rec_to == ENG_NONE) err = room_for(e, 1, r);
    if (err != TRASTENDA_OK) return err;
    struct eng_move mv = {.move = TRASTENDA_MOVE_TRANSFER_OUT,
                          .ref_kind = c->reference.len ? TRASTENDA_REFK_TEXT : 0,
                          .ref = c->reference};
    int32_t d[TRASTENDA_Q_COUNT_] = {0};
    d[TRASTENDA_Q_ON_HAND] = (int32_t)-c->qty;
    eng_stock_change(e, a->rec, d, &mv);
    uint32_t to = a->rec_to;
    if (to == ENG_NONE) to = eng_stock_insert(e, a->sku, a->to);
    int32_t dt[TRASTENDA_Q_COUNT_] = {0};
    dt[TRASTENDA_Q_IN_TRANSIT] = (int32_t)c->qty;
    eng_stock_change(e, to, dt, &mv);
    r->value = e->stock[a->rec].q[TRASTENDA_Q_ON_HAND]; /* as every stock command: on_hand */
    return TRASTENDA_OK;
}

trastenda_err
eng_cmd_stock(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r)
{
    struct stock_args a;
    trastenda_err err = stock_args(e, c, r, &a);
    if (err == TRASTENDA_OK) err = eng_id_check(c->reference, "reference", false, r);
    if (err != TRASTENDA_OK) return err;
    if (c->op == TRASTENDA_OP_TRANSFER_OUT) return transfer_out(e, c, &a, r);
    int32_t d[TRASTENDA_Q_COUNT_] = {0};
    struct eng_move mv = {.cause = (uint8_t)c->reason,
                          .ref_kind = c->reference.len ? TRASTENDA_REFK_TEXT : 0,
                          .ref = c->reference};
    if (c->op == TRASTENDA_OP_RECEIVE || c->op == TRASTENDA_OP_ADJUST ||
        c->op == TRASTENDA_OP_COUNT)
        err = stock_plan(e, c, &a, r, d, &mv.move);
    else
        err = move_plan(e, c, &a, r, d, &mv.move);
    if (err == TRASTENDA_OK && a.rec == ENG_NONE) err = room_for(e, 1, r);
    if (err != TRASTENDA_OK) return err;
    if (c->op == TRASTENDA_OP_COUNT && mv.cause == TRASTENDA_REASON_NONE)
        mv.cause = TRASTENDA_REASON_COUNT;
    uint32_t rec = a.rec;
    if (rec == ENG_NONE) rec = eng_stock_insert(e, a.sku, a.loc);
    bool any = false;
    for (int i = 0; i < TRASTENDA_Q_COUNT_; i++)
        any |= d[i] != 0;
    if (any) eng_stock_change(e, rec, d, &mv);
    r->value = e->stock[rec].q[TRASTENDA_Q_ON_HAND];
    return TRASTENDA_OK;
}
