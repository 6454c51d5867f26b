/*
 * engine/hold.c - holds (checkout reservations): reserve, extend, confirm, release, expiry.
 *
 * A hold resolves exactly once: confirmed (its lines become an order's allocations), released,
 * or expired. Open holds sit in a binary min-heap ordered by (expires_ms, id), so expiry finds
 * due holds without a scan, at most expire_per_batch_max per batch. Resolved holds wait in a FIFO
 * for their retention window, then leave memory as a recorded removal (engine.c).
 */
#include <string.h>

#include "eng.h"

static int
hold_eq(const void *ctx, uint32_t ix, const void *key)
{
    const trastenda_engine *e = ctx;
    return e->holds[ix].in_use && e->holds[ix].id == *(const uint64_t *)key;
}

uint32_t
eng_hold_find(const trastenda_engine *e, uint64_t id)
{
    uint32_t ix;
    ENG_MAP_FIND(&e->hold_map, eng_hold_hash(id), hold_eq, e, &id, ix);
    return ix;
}

/* ---- expiry heap ---- */

static void
heap_set(trastenda_engine *e, uint32_t pos, struct eng_heap_ent ent)
{
    e->heap[pos] = ent;
    e->holds[ent.hold].heap_pos = pos;
}

/* Sifts the entry at pos up; its final position. */
static uint32_t
heap_up(trastenda_engine *e, uint32_t pos)
{
    struct eng_heap_ent ent = e->heap[pos];
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (!eng_heap_less(&ent, &e->heap[parent])) break;
        heap_set(e, pos, e->heap[parent]);
        pos = parent;
    }
    heap_set(e, pos, ent);
    return pos;
}

static void
heap_down(trastenda_engine *e, uint32_t pos)
{
    struct eng_heap_ent ent = e->heap[pos];
    for (;;) {
        uint32_t l = 2 * pos + 1, best = pos;
        const struct eng_heap_ent *b = &ent;
        if (l < e->heap_count && eng_heap_less(&e->heap[l], b)) best = l, b = &e->heap[l];
        if (l + 1 < e->heap_count && eng_heap_less(&e->heap[l + 1], b)) best = l + 1;
        if (best == pos) break;
        heap_set(e, pos, e->heap[best]);
        pos = best;
    }
    heap_set(e, pos, ent);
}

/* Restores the order around pos after its entry changed or was replaced. */
static void
heap_fix(trastenda_engine *e, uint32_t pos)
{
    if (heap_up(e, pos) == pos) heap_down(e, pos);
}

void
eng_hold_heap_push(trastenda_engine *e, uint32_t h)
{
    TS_ASSERT(e->holds[h].heap_pos == ENG_NONE);
    TS_ASSERT(e->heap_count < e->cfg.holds_max);
    uint32_t pos = e->heap_count++;
    heap_set(e, pos, (struct eng_heap_ent){e->holds[h].expires_ms, e->holds[h].id, h});
    heap_up(e, pos);
}

void
eng_hold_heap_remove(trastenda_engine *e, uint32_t h)
{
    uint32_t pos = e->holds[h].heap_pos;
    TS_ASSERT(pos < e->heap_count && e->heap[pos].hold == h);
    struct eng_heap_ent last = e->heap[--e->heap_count];
    e->holds[h].heap_pos = ENG_NONE;
    if (last.hold == h) return;
    heap_set(e, pos, last);
    heap_fix(e, pos);
}

/* The hold's expiry changed (extend): its entry moves to its new place. */
static void
heap_update(trastenda_engine *e, uint32_t h)
{
    uint32_t pos = e->holds[h].heap_pos;
    TS_ASSERT(pos != ENG_NONE && e->heap[pos].hold == h);
    e->heap[pos].expires_ms = e->holds[h].expires_ms;
    heap_fix(e, pos);
}

/* ---- the holds that expire first (a read) ---- */

/* Heap positions of the candidates, ordered as the expiry heap orders their holds. */
struct cand_heap {
    uint32_t pos[2 * TRASTENDA_PAGE_MAX + 1];
    uint32_t n;
};

static bool
cand_less(const trastenda_engine *e, const struct cand_heap *c, uint32_t a, uint32_t b)
{
    return eng_heap_less(&e->heap[c->pos[a]], &e->heap[c->pos[b]]);
}

static void
cand_swap(struct cand_heap *c, uint32_t a, uint32_t b)
{
    uint32_t t = c->pos[a];
    c->pos[a] = c->pos[b];
    c->pos[b] = t;
}

static void
cand_push(const trastenda_engine *e, struct cand_heap *c, uint32_t pos)
{
    TS_ASSERT(c->n < sizeof(c->pos) / sizeof(c->pos[0]));
    uint32_t i = c->n++;
    c->pos[i] = pos;
    while (i > 0 && cand_less(e, c, i, (i - 1) / 2)) { /* bound: log2(n) */
        cand_swap(c, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static uint32_t
cand_pop(const trastenda_engine *e, struct cand_heap *c)
{
    TS_ASSERT(c->n > 0);
    uint32_t top = c->pos[0], i = 0;
    c->pos[0] = c->pos[--c->n];
    for (;;) { /* bound: log2(n) */
        uint32_t l = 2 * i + 1, best = i;
        if (l < c->n && cand_less(e, c, l, best)) best = l;
        if (l + 1 < c->n && cand_less(e, c, l + 1, best)) best = l + 1;
        if (best == i) break;
        cand_swap(c, i, best);
        i = best;
    }
    return top;
}

static void
hold_row(const trastenda_engine *e, uint32_t h, trastenda_hold_row *row)
{
    const struct eng_hold *hd = &e->holds[h];
    memset(row, 0, sizeof(*row));
    row->id = hd->id;
    row->created_ms = hd->created_ms;
    row->expires_ms = hd->expires_ms;
    row->line_count = hd->line_count;
    row->first = (trastenda_alloc){TRASTENDA_IX_NONE, TRASTENDA_IX_NONE, 0, 0};
    for (uint32_t l = hd->lines_head; l != ENG_NONE; l = e->lines[l].next) { /* bound: lines */
        if (l == hd->lines_head)
            row->first =
                (trastenda_alloc){e->lines[l].sku_ix, e->lines[l].loc_ix, e->lines[l].qty, 0};
        row->units += e->lines[l].qty;
    }
}

/* Walks the expiry heap best first without changing it: the next hold is the least of the
 * candidates, whose children become candidates (at most 2 * max + 1 of them). */
trastenda_err
trastenda_engine_holds_expiring(const trastenda_engine *e, uint32_t max, trastenda_hold_row *out,
                                uint32_t *n)
{
    if (e == NULL || out == NULL || n == NULL || max == 0 || max > TRASTENDA_PAGE_MAX)
        return TRASTENDA_E_INVALID;
    struct cand_heap c;
    c.n = 0;
    *n = 0;
    if (e->heap_count > 0) cand_push(e, &c, 0);
    while (*n < max && c.n > 0) { /* bound: max */
        uint32_t pos = cand_pop(e, &c);
        hold_row(e, e->heap[pos].hold, &out[(*n)++]);
        if (2 * pos + 1 < e->heap_count) cand_push(e, &c, 2 * pos + 1);
        if (2 * pos + 2 < e->heap_count) cand_push(e, &c, 2 * pos + 2);
    }
    TS_ASSERT(*n <= max);
    TS_ASSERT(*n == max || *n == e->heap_count);
    return TRASTENDA_OK;
}

/* ---- table ---- */

/* A resolved hold enters its retention window (Design note 6). */
void
eng_hold_retain(trastenda_engine *e, uint32_t h)
{
    eng_fifo_push(&e->hold_fifo, h);
    eng_dirty_requeue(e, TRASTENDA_REC_HOLD, h, &e->holds[h].dirty);
}

void
eng_hold_free(trastenda_engine *e, uint32_t h)
{
    struct eng_hold *hd = &e->holds[h];
    TS_ASSERT(hd->in_use);
    TS_ASSERT(hd->heap_pos == ENG_NONE);
    eng_lines_free(e, hd->lines_head);
    if (eng_fifo_has(&e->hold_fifo, h)) eng_fifo_remove(&e->hold_fifo, h);
    eng_map_remove(&e->hold_map, eng_hold_hash(hd->id), h);
    hd->in_use = 0;
    eng_pool_give(&e->hold_pool, h);
}

void
eng_hold_result_allocs(trastenda_engine *e, uint32_t h, trastenda_result *r)
{
    const struct eng_hold *hd = &e->holds[h];
    trastenda_alloc *a = eng_arena_take(e, hd->line_count);
    uint32_t n = 0;
    for (uint32_t l = hd->lines_head; l != ENG_NONE; l = e->lines[l].next)
        a[n++] = (trastenda_alloc){e->lines[l].sku_ix, e->lines[l].loc_ix, e->lines[l].qty, 0};
    TS_ASSERT(n == hd->line_count);
    r->allocs = a;
    r->alloc_count = n;
}

/* Unlinks a hold's lines and gives their units back (release or expiry). */
static void
hold_resolve(trastenda_engine *e, uint32_t h, uint8_t state, uint8_t move)
{
    struct eng_hold *hd = &e->holds[h];
    TS_ASSERT(hd->state == TRASTENDA_HOLD_OPEN);
    struct eng_move mv = {.move = move, .ref_kind = TRASTENDA_REFK_HOLD, .ref_id = hd->id};
    for (uint32_t l = hd->lines_head; l != ENG_NONE; l = e->lines[l].next) {
        struct eng_line *ln = &e->lines[l];
        uint32_t rec = ln->rec_ix;
        eng_stock_line_unlink(e, l);
        int32_t d[TRASTENDA_Q_COUNT_] = {0};
        d[TRASTENDA_Q_HELD] = -ln->qty;
        eng_stock_change(e, rec, d, &mv);
    }
    hd->state = state;
    hd->resolved_ms = e->time_ms;
    eng_hold_heap_remove(e, h);
    eng_hold_retain(e, h);
    eng_dirty_mark(e, TRASTENDA_REC_HOLD, h, &hd->dirty);
}

void
eng_holds_expire(trastenda_engine *e)
{
    for (uint32_t n = 0; n < e->cfg.expire_per_batch_max && e->heap_count > 0; n++) {
        uint32_t h = e->heap[0].hold;
        if (e->heap[0].expires_ms > e->time_ms) return;
        hold_resolve(e, h, TRASTENDA_HOLD_EXPIRED, TRASTENDA_MOVE_EXPIRE);
        eng_emit_hold_expired(e, h);
    }
}

/* ---- reserve ---- */

struct reserve_plan {
    bool routed;
    uint8_t channel;
    uint8_t rule;
    uint32_t n_explicit, n_wants, n_place;
    trastenda_alloc explicit_[TRASTENDA_LINES_MAX]; /* (sku, loc) groups; qty summed */
    uint32_t explicit_rec[TRASTENDA_LINES_MAX];     /* their records, ENG_NONE when none */
    struct eng_want wants[TRASTENDA_LINES_MAX];     /* routed lines, by sku */
    trastenda_alloc place[TRASTENDA_ALLOCS_MAX];    /* the final placements */
    uint32_t place_rec[TRASTENDA_ALLOCS_MAX];       /* their records, found once */
    struct eng_route route;
};

static void
group_add(struct reserve_plan *pl, uint32_t sku, uint32_t loc, int64_t qty)
{
    if (loc == TRASTENDA_IX_NONE) {
        for (uint32_t i = 0; i < pl->n_wants; i++)
            if (pl->wants[i].sku_ix == sku) {
                pl->wants[i].qty += qty;
                return;
            }
        pl->wants[pl->n_wants++] = (struct eng_want){sku, qty};
        return;
    }
    for (uint32_t i = 0; i < pl->n_explicit; i++)
        if (pl->explicit_[i].sku_ix == sku && pl->explicit_[i].loc_ix == loc) {
            pl->explicit_[i].qty += qty;
            return;
        }
    pl->explicit_[pl->n_explicit++] = (trastenda_alloc){sku, loc, qty, 0};
}

/* Validates the lines and groups them; changes nothing. */
static trastenda_err
reserve_lines(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r,
              struct reserve_plan *pl)
{
    trastenda_err lerr = eng_lines_check(c, r);
    if (lerr != TRASTENDA_OK) return lerr;
    for (uint32_t i = 0; i < c->line_count; i++) {
        const trastenda_line *ln = &c->lines[i];
        uint32_t sku, loc = TRASTENDA_IX_NONE;
        r->line = i;
        trastenda_err err = eng_sku_resolve(e, &ln->sku, "sku", r, &sku);
        if (err == TRASTENDA_OK) err = eng_qty_check(ln->qty, 1, TRASTENDA_LINE_QTY_MAX, "qty", r);
        if (err == TRASTENDA_OK && !e->skus[sku].active)
            err = eng_fail(r, TRASTENDA_E_INACTIVE, "sku '%.*s' is inactive", e->skus[sku].id.len,
                           e->skus[sku].id.s);
        if (err == TRASTENDA_OK && (ln->loc.id.len > 0 || ln->loc.ix != TRASTENDA_IX_NONE))
            err = eng_location_resolve(e, &ln->loc, "location", r, &loc);
        if (err == TRASTENDA_OK && loc != TRASTENDA_IX_NONE && !e->locs[loc].active)
            err = eng_fail(r, TRASTENDA_E_INACTIVE, "location '%.*s' is inactive",
                           e->locs[loc].id.len, e->locs[loc].id.s);
        if (err != TRASTENDA_OK) return err;
        group_add(pl, sku, loc, ln->qty);
    }
    r->line = UINT32_MAX;
    pl->routed = pl->n_wants > 0;
    return TRASTENDA_OK;
}

/* Checks a ship-to (required when lines are routed). */
trastenda_err
eng_ship_to_check(const trastenda_cmd *c, bool required, trastenda_result *r)
{
    if (!c->has_ship_to) {
        if (!required) return TRASTENDA_OK;
        return eng_fail(r, TRASTENDA_E_INVALID, "ship_to (lat_e6, lon_e6) is required");
    }
    trastenda_err err = eng_qty_check(c->lat_e6, -90000000, 90000000, "lat_e6", r);
    if (err == TRASTENDA_OK) err = eng_qty_check(c->lon_e6, -180000000, 180000000, "lon_e6", r);
    return err;
}

/* Explicit groups against their records; partial takes what is there. */
static trastenda_err
reserve_explicit(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r,
                 struct reserve_plan *pl)
{
    bool short_any = false;
    trastenda_alloc *sh = eng_arena_take(e, pl->n_explicit);
    for (uint32_t i = 0; i < pl->n_explicit; i++) {
        trastenda_alloc *g = &pl->explicit_[i];
        uint32_t rec = eng_stock_find(e, g->sku_ix, g->loc_ix);
        pl->explicit_rec[i] = rec;
        if (rec != ENG_NONE && (e->stock[rec].flags & ENG_STOCK_SHORTFALL) && !c->partial)
            return eng_fail(r, TRASTENDA_E_SHORTFALL,
                            "sku '%.*s' at '%.*s' is in shortfall; no new holds until resolved",
                            e->skus[g->sku_ix].id.len, e->skus[g->sku_ix].id.s,
                            e->locs[g->loc_ix].id.len, e->locs[g->loc_ix].id.s);
        int64_t avail = rec == ENG_NONE ? 0 : eng_stock_sellable(e, rec);
        sh[i] = (trastenda_alloc){g->sku_ix, g->loc_ix, g->qty, TS_MAX(0, g->qty - avail)};
        short_any |= sh[i].short_qty > 0;
        if (c->partial) g->qty = TS_MIN(g->qty, avail);
    }
    if (!short_any || c->partial) return TRASTENDA_OK;
    r->allocs = sh;
    r->alloc_count = pl->n_explicit;
    for (uint32_t i = 0; i < pl->n_explicit; i++)
        if (sh[i].short_qty > 0)
            return eng_fail(r, TRASTENDA_E_SHORT, "sku '%.*s' at '%.*s' is short by %lld",
                            e->skus[sh[i].sku_ix].id.len, e->skus[sh[i].sku_ix].id.s,
                            e->locs[sh[i].loc_ix].id.len, e->locs[sh[i].loc_ix].id.s,
                            (long long)sh[i].short_qty);
    TS_ASSERT(0);
    return TRASTENDA_E_SHORT;
}

/* Routed wants; with partial, a shortage trims the wants and routes again. */
static trastenda_err
reserve_routed(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r,
               struct reserve_plan *pl)
{
    pl->rule = TRASTENDA_RULE_EXPLICIT;
    pl->route.count = 0;
    if (!pl->routed) return TRASTENDA_OK;
    trastenda_err err = eng_route(e, pl->wants, pl->n_wants, pl->channel, c->lat_e6, c->lon_e6,
                                  pl->explicit_, pl->n_explicit, r, &pl->route);
    if (err == TRASTENDA_E_SHORT && c->partial) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < pl->n_wants; i++) {
            int64_t q = r->allocs[i].qty - r->allocs[i].short_qty;
            if (q > 0) pl->wants[n++] = (struct eng_want){pl->wants[i].sku_ix, q};
        }
        pl->n_wants = n;
        r->code = TRASTENDA_OK; /* partial: the shortage only trims the wants */
        memcpy(r->message, "ok", 3);
        r->allocs = NULL;
        r->alloc_count = 0;
        if (n == 0) return TRASTENDA_OK;
        err = eng_route(e, pl->wants, n, pl->channel, c->lat_e6, c->lon_e6, pl->explicit_,
                        pl->n_explicit, r, &pl->route);
    }
    if (err == TRASTENDA_OK) pl->rule = pl->route.rule;
    return err;
}

/* Merges explicit groups and routed allocations into placements, one per (sku, loc). */
static trastenda_err
reserve_placements(trastenda_engine *e, trastenda_result *r, struct reserve_plan *pl)
{
    pl->n_place = 0;
    for (uint32_t i = 0; i < pl->n_explicit + pl->route.count; i++) {
        const trastenda_alloc *a =
            i < pl->n_explicit ? &pl->explicit_[i] : &pl->route.allocs[i - pl->n_explicit];
        if (a->qty == 0) continue;
        uint32_t k = 0;
        while (k < pl->n_place &&
               !(pl->place[k].sku_ix == a->sku_ix && pl->place[k].loc_ix == a->loc_ix))
            k++;
        if (k == pl->n_place) {
            if (k == TRASTENDA_ALLOCS_MAX)
                return eng_fail(r, TRASTENDA_E_LIMIT, "a hold has at most %d placements",
                                TRASTENDA_ALLOCS_MAX);
            /* An explicit group with units has a record (reserve_explicit trimmed it to 0
             * otherwise); a routed one is looked up once here. */
            bool expl = i < pl->n_explicit;
            pl->place_rec[k] = expl ? pl->explicit_rec[i] : eng_stock_find(e, a->sku_ix, a->loc_ix);
            TS_ASSERT(pl->place_rec[k] != ENG_NONE);
            pl->place[pl->n_place++] = (trastenda_alloc){a->sku_ix, a->loc_ix, 0, 0};
        }
        pl->place[k].qty += a->qty;
    }
    if (pl->n_place == 0) return eng_fail(r, TRASTENDA_E_SHORT, "nothing available for any line");
    if (e->hold_pool.top == 0)
        return eng_fail(r, TRASTENDA_E_TABLE_FULL, "holds table full (%u); raise holds_max",
                        e->cfg.holds_max);
    if (e->line_pool.top < pl->n_place)
        return eng_fail(r, TRASTENDA_E_TABLE_FULL, "lines table full (%u); raise lines_max",
                        e->cfg.lines_max);
    return TRASTENDA_OK;
}

static uint32_t
hold_create(trastenda_engine *e, const trastenda_cmd *c, const struct reserve_plan *pl)
{
    uint32_t h = eng_pool_take(&e->hold_pool);
    TS_ASSERT(h != ENG_NONE);
    struct eng_hold *hd = &e->holds[h];
    memset(hd, 0, sizeof(*hd));
    hd->id = ++e->next_hold_id;
    hd->created_ms = e->time_ms;
    hd->expires_ms = e->time_ms + c->ttl_ms;
    hd->state = TRASTENDA_HOLD_OPEN;
    hd->channel = pl->channel;
    hd->has_ship_to = c->has_ship_to;
    hd->lat_e6 = c->has_ship_to ? c->lat_e6 : 0;
    hd->lon_e6 = c->has_ship_to ? c->lon_e6 : 0;
    hd->lines_head = ENG_NONE;
    hd->heap_pos = ENG_NONE;
    hd->in_use = 1;
    struct eng_move mv = {
        .move = TRASTENDA_MOVE_RESERVE, .ref_kind = TRASTENDA_REFK_HOLD, .ref_id = hd->id};
    struct eng_line_list list = {ENG_NONE, ENG_NONE};
    for (uint32_t i = 0; i < pl->n_place; i++) {
        const trastenda_alloc *p = &pl->place[i];
        uint32_t l =
            eng_line_append(e, &list, ENG_LINE_HOLD, h, p->sku_ix, p->loc_ix, (int32_t)p->qty, 0);
        uint32_t rec = pl->place_rec[i];
        TS_ASSERT(e->stock[rec].sku_ix == p->sku_ix && e->stock[rec].loc_ix == p->loc_ix);
        eng_stock_line_link(e, rec, l);
        int32_t d[TRASTENDA_Q_COUNT_] = {0};
        d[TRASTENDA_Q_HELD] = (int32_t)p->qty;
        eng_stock_change(e, rec, d, &mv);
    }
    hd->lines_head = list.head;
    hd->line_count = pl->n_place;
    eng_map_insert(&e->hold_map, eng_hold_hash(hd->id), h);
    eng_hold_heap_push(e, h);
    eng_dirty_mark(e, TRASTENDA_REC_HOLD, h, &hd->dirty);
    return h;
}

trastenda_err
eng_cmd_reserve(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r)
{
    struct reserve_plan pl;
    pl.n_explicit = pl.n_wants = 0;
    trastenda_err err =
        eng_qty_check(c->ttl_ms, TRASTENDA_TTL_MS_MIN, TRASTENDA_TTL_MS_MAX, "ttl_ms", r);
    if (err == TRASTENDA_OK) err = reserve_lines(e, c, r, &pl);
    if (err == TRASTENDA_OK) err = eng_channel_resolve(e, c->channel, pl.routed, r, &pl.channel);
    if (err == TRASTENDA_OK) err = eng_ship_to_check(c, pl.routed, r);
    if (err == TRASTENDA_OK) err = reserve_explicit(e, c, r, &pl);
    if (err == TRASTENDA_OK) err = reserve_routed(e, c, r, &pl);
    if (err == TRASTENDA_OK) err = reserve_placements(e, r, &pl);
    if (err != TRASTENDA_OK) return err;
    uint32_t h = hold_create(e, c, &pl);
    r->id = e->holds[h].id;
    r->value = e->holds[h].expires_ms;
    r->state = TRASTENDA_HOLD_OPEN;
    r->rule = pl.rule;
    eng_hold_result_allocs(e, h, r);
    return TRASTENDA_OK;
}

/* ---- extend, release, confirm ---- */

/* The hold of c->hold_id, open and not yet due. */
static trastenda_err
open_hold(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r, uint32_t *h)
{
    *h = eng_hold_find(e, c->hold_id);
    if (*h == ENG_NONE)
        return eng_fail(r, TRASTENDA_E_UNKNOWN_HOLD, "hold %llu is unknown",
                        (unsigned long long)c->hold_id);
    const struct eng_hold *hd = &e->holds[*h];
    r->state = hd->state;
    if (hd->state == TRASTENDA_HOLD_EXPIRED ||
        (hd->state == TRASTENDA_HOLD_OPEN && hd->expires_ms <= e->time_ms))
        return eng_fail(r, TRASTENDA_E_HOLD_EXPIRED, "hold %llu expired",
                        (unsigned long long)hd->id);
    if (hd->state != TRASTENDA_HOLD_OPEN)
        return eng_fail(r, TRASTENDA_E_STATE, "hold %llu is already %s", (unsigned long long)hd->id,
                        hd->state == TRASTENDA_HOLD_CONFIRMED ? "confirmed" : "released");
    return TRASTENDA_OK;
}

trastenda_err
eng_cmd_extend(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r)
{
    uint32_t h;
    trastenda_err err =
        eng_qty_check(c->ttl_ms, TRASTENDA_TTL_MS_MIN, TRASTENDA_TTL_MS_MAX, "ttl_ms", r);
    if (err == TRASTENDA_OK) err = open_hold(e, c, r, &h);
    if (err != TRASTENDA_OK) return err;
    struct eng_hold *hd = &e->holds[h];
    hd->expires_ms = e->time_ms + c->ttl_ms;
    heap_update(e, h);
    eng_dirty_mark(e, TRASTENDA_REC_HOLD, h, &hd->dirty);
    r->id = hd->id;
    r->value = hd->expires_ms;
    r->state = hd->state;
    return TRASTENDA_OK;
}

trastenda_err
eng_cmd_release(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r)
{
    uint32_t h;
    trastenda_err err = open_hold(e, c, r, &h);
    if (err != TRASTENDA_OK) return err;
    hold_resolve(e, h, TRASTENDA_HOLD_RELEASED, TRASTENDA_MOVE_RELEASE);
    r->id = e->holds[h].id;
    r->state = TRASTENDA_HOLD_RELEASED;
    return TRASTENDA_OK;
}

/* Moves the hold's lines to a new order: held -> committed. */
static uint32_t
confirm_apply(trastenda_engine *e, const trastenda_cmd *c, uint32_t h, uint8_t channel)
{
    struct eng_hold *hd = &e->holds[h];
    /* The hold's ship-to, else the command's (validated), else none. */
    int32_t lat = hd->has_ship_to ? hd->lat_e6 : (c->has_ship_to ? c->lat_e6 : 0);
    int32_t lon = hd->has_ship_to ? hd->lon_e6 : (c->has_ship_to ? c->lon_e6 : 0);
    uint32_t o = eng_order_new(e, c->order_id, eng_cmd_payload_hash(c), channel, lat, lon,
                               TRASTENDA_RULE_EXPLICIT);
    struct eng_order *od = &e->orders[o];
    od->hold_id = hd->id;
    struct eng_move mv = {.move = TRASTENDA_MOVE_CONFIRM,
                          .ref_kind = TRASTENDA_REFK_ORDER,
                          .ref_id = od->no,
                          .ref = c->order_id};
    for (uint32_t l = hd->lines_head; l != ENG_NONE; l = e->lines[l].next) {
        struct eng_line *ln = &e->lines[l];
        ln->kind = ENG_LINE_ORDER;
        ln->owner = o;
        ln->state = TRASTENDA_ORDER_ALLOCATED;
        int32_t d[TRASTENDA_Q_COUNT_] = {0};
        d[TRASTENDA_Q_HELD] = -ln->qty;
        d[TRASTENDA_Q_COMMITTED] = ln->qty;
        eng_stock_change(e, ln->rec_ix, d, &mv);
    }
    od->lines_head = hd->lines_head;
    od->alloc_count = hd->line_count;
    hd->lines_head = ENG_NONE;
    hd->line_count = 0;
    hd->order_no = od->no;
    hd->state = TRASTENDA_HOLD_CONFIRMED;
    hd->resolved_ms = e->time_ms;
    eng_hold_heap_remove(e, h);
    eng_hold_retain(e, h);
    eng_dirty_mark(e, TRASTENDA_REC_HOLD, h, &hd->dirty);
    eng_order_set_state(e, o, TRASTENDA_ORDER_ALLOCATED);
    return o;
}

trastenda_err
eng_cmd_confirm(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r)
{
    trastenda_err err = eng_id_check(c->order_id, "order_id", true, r);
    if (err != TRASTENDA_OK) return err;
    uint32_t o = eng_order_find(e, c->order_id);
    if (o != ENG_NONE) {
        if (e->orders[o].hold_id != c->hold_id || c->hold_id == 0)
            return eng_fail(r, TRASTENDA_E_DUPLICATE, "order '%.*s' already exists",
                            (int)c->order_id.len, c->order_id.ptr);
        r->duplicate = 1; /* the same confirmation again: its first result */
        r->id = e->orders[o].no;
        r->state = e->orders[o].state;
        eng_order_result_allocs(e, o, r);
        return TRASTENDA_OK;
    }
    uint32_t h;
    uint8_t channel = 0;
    err = open_hold(e, c, r, &h);
    if (err == TRASTENDA_OK && c->channel.len == 0) channel = e->holds[h].channel;
    if (err == TRASTENDA_OK && c->channel.len > 0)
        err = eng_channel_resolve(e, c->channel, false, r, &channel);
    if (err == TRASTENDA_OK && !e->holds[h].has_ship_to) err = eng_ship_to_check(c, false, r);
    if (err == TRASTENDA_OK && e->order_pool.top == 0)
        err = eng_fail(r, TRASTENDA_E_TABLE_FULL, "orders table full (%u); raise orders_max",
                       e->cfg.orders_max);
    if (err != TRASTENDA_OK) return err;
    o = confirm_apply(e, c, h, channel);
    r->id = e->orders[o].no;
    r->state = e->orders[o].state;
    eng_order_result_allocs(e, o, r);
    return TRASTENDA_OK;
}
