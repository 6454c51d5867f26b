/*
 * engine/route.c - order routing: which locations fulfil a set of wanted SKUs.
 *
 * Rules, in order (ARCHITECTURE.md, "order routing"):
 *   1. single: one location that can ship everything, the nearest (great-circle distance,
 *      ranked by the squared chord, which orders points as the arc does without a root; geo.c),
 *      then the lowest priority value, then the smallest id;
 *   2. exact: with at most TRASTENDA_ROUTE_EXACT_MAX useful candidates, every combination is
 *      tried; fewest locations, then smallest total distance (whole metres), then smallest total
 *      priority, then the candidates' rank order;
 *   3. greedy: beyond that, repeatedly the location covering the most remaining units (ties by
 *      rank). A heuristic: it may use more locations than the optimum.
 * Candidates are active locations serving the channel that hold a record of a wanted SKU. Within
 * the chosen set each SKU is taken from the best-ranked locations first. Every tie ends with the
 * id (eng.h Design note 4). Uses the preallocated scratch in the engine; never allocates.
 */
#include <string.h>

#include "eng.h"

static int
cand_cmp(const trastenda_engine *e, const struct cand *a, const struct cand *b)
{
    if (a->chord2 != b->chord2) return a->chord2 < b->chord2 ? -1 : 1;
    if (a->priority != b->priority) return a->priority < b->priority ? -1 : 1;
    return eng_str_cmp(eng_id_str(&e->locs[a->loc].id), eng_id_str(&e->locs[b->loc].id));
}

/* Insertion sort: candidate lists are short and this keeps the order total and stable. */
static void
cands_sort(const trastenda_engine *e, struct cand *c, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++) {
        struct cand x = c[i];
        uint32_t j = i;
        while (j > 0 && cand_cmp(e, &c[j - 1], &x) > 0) {
            c[j] = c[j - 1];
            j--;
        }
        c[j] = x;
    }
}

static int64_t
pending_at(const trastenda_alloc *pending, uint32_t n, uint32_t sku, uint32_t loc)
{
    int64_t sum = 0;
    for (uint32_t i = 0; i < n; i++)
        if (pending[i].sku_ix == sku && pending[i].loc_ix == loc) sum += pending[i].qty;
    return sum;
}

struct plan {
    struct cand *c;
    int64_t *sell; /* sell[ci * nw + wi] */
    uint32_t nc, nw;
    const struct eng_want *w;
};

/* Gathers candidates from the wanted SKUs' record chains and their sellable units. */
static void
gather(trastenda_engine *e, struct plan *p, uint8_t channel, const int32_t ship[3],
       const trastenda_alloc *pending, uint32_t np)
{
    uint32_t *slot = e->route_loc_slot;
    p->nc = 0;
    for (uint32_t wi = 0; wi < p->nw; wi++) {
        uint32_t walked = 0;
        for (uint32_t rec = e->skus[p->w[wi].sku_ix].first_stock; rec != ENG_NONE;
             rec = e->stock[rec].next_in_sku) {
            TS_ASSERT(walked++ < e->cfg.locations_max);
            uint32_t loc = e->stock[rec].loc_ix;
            const struct eng_location *l = &e->locs[loc];
            if (!l->active || (channel && !(l->channels & (1u << (channel - 1))))) continue;
            if (slot[loc] == ENG_NONE) {
                slot[loc] = p->nc;
                p->c[p->nc] = (struct cand){loc, eng_geo_chord2(l->vec, ship), -1, l->priority};
                for (uint32_t k = 0; k < p->nw; k++)
                    p->sell[p->nc * p->nw + k] = 0;
                p->nc++;
            }
            int64_t s = eng_stock_sellable(e, rec) - pending_at(pending, np, p->w[wi].sku_ix, loc);
            p->sell[slot[loc] * p->nw + wi] = s > 0 ? s : 0;
        }
    }
}

/* Sorts candidates by rank, carrying their rows of sellable units along. */
static void
rank(trastenda_engine *e, struct plan *p)
{
    for (uint32_t i = 0; i < p->nc; i++)
        e->route_loc_slot[p->c[i].loc] = ENG_NONE;
    struct cand *sorted = e->route_cand2;
    memcpy(sorted, p->c, p->nc * sizeof(*sorted));
    cands_sort(e, sorted, p->nc);
    int64_t *rows = e->route_sell2;
    for (uint32_t i = 0; i < p->nc; i++)
        e->route_loc_slot[p->c[i].loc] = i;
    for (uint32_t i = 0; i < p->nc; i++) {
        uint32_t from = e->route_loc_slot[sorted[i].loc];
        memcpy(&rows[i * p->nw], &p->sell[from * p->nw], p->nw * sizeof(int64_t));
    }
    for (uint32_t i = 0; i < p->nc; i++)
        e->route_loc_slot[p->c[i].loc] = ENG_NONE;
    memcpy(p->c, sorted, p->nc * sizeof(*sorted));
    memcpy(p->sell, rows, (size_t)p->nc * p->nw * sizeof(int64_t));
}

static bool
covers_all(const struct plan *p, uint32_t ci)
{
    for (uint32_t wi = 0; wi < p->nw; wi++)
        if (p->sell[ci * p->nw + wi] < p->w[wi].qty) return false;
    return true;
}

static bool
mask_covers(const struct plan *p, const uint32_t *useful, uint32_t mask)
{
    for (uint32_t wi = 0; wi < p->nw; wi++) {
        int64_t sum = 0;
        for (uint32_t b = 0; b < 32 && (mask >> b) != 0; b++)
            if (mask & (1u << b)) sum += p->sell[useful[b] * p->nw + wi];
        if (sum < p->w[wi].qty) return false;
    }
    return true;
}

/* Total distance and priority of a subset; ties then go to the lower ranks (smaller mask bits
 * first, since useful[] is in rank order): compare masks by their lowest differing bit. */
static bool
mask_better(const struct plan *p, const uint32_t *useful, uint32_t a, uint32_t b)
{
    int64_t da = 0, db = 0, pa = 0, pb = 0;
    for (uint32_t i = 0; i < 32; i++) {
        if (a & (1u << i)) da += p->c[useful[i]].dist_m, pa += p->c[useful[i]].priority;
        if (b & (1u << i)) db += p->c[useful[i]].dist_m, pb += p->c[useful[i]].priority;
    }
    if (da != db) return da < db;
    if (pa != pb) return pa < pb;
    uint32_t diff = a ^ b;
    return (a & (diff & -diff)) != 0;
}

static uint32_t
exact(const struct plan *p, const uint32_t *useful, uint32_t nu)
{
    uint32_t best = 0;
    for (uint32_t k = 2; k <= nu && best == 0; k++)
        for (uint32_t m = 1; m < (1u << nu); m++) {
            if ((uint32_t)__builtin_popcount(m) != k || !mask_covers(p, useful, m)) continue;
            if (best == 0 || mask_better(p, useful, m, best)) best = m;
        }
    return best;
}

/* Greedy cover: marks chosen candidates in chosen[] (rank order kept). */
static void
greedy(const struct plan *p, const uint32_t *useful, uint32_t nu, bool *chosen)
{
    int64_t rem[TRASTENDA_LINES_MAX];
    for (uint32_t wi = 0; wi < p->nw; wi++)
        rem[wi] = p->w[wi].qty;
    for (uint32_t round = 0; round < nu; round++) {
        int64_t best_units = 0;
        uint32_t best = ENG_NONE;
        for (uint32_t u = 0; u < nu; u++) {
            if (chosen[u]) continue;
            int64_t units = 0;
            for (uint32_t wi = 0; wi < p->nw; wi++)
                units += TS_MIN(rem[wi], p->sell[useful[u] * p->nw + wi]);
            if (units > best_units) best_units = units, best = u;
        }
        if (best == ENG_NONE) return;
        chosen[best] = true;
        for (uint32_t wi = 0; wi < p->nw; wi++)
            rem[wi] -= TS_MIN(rem[wi], p->sell[useful[best] * p->nw + wi]);
    }
}

/* Takes each want from the chosen candidates in rank order. */
static trastenda_err
assign(const struct plan *p, const bool *use, trastenda_result *r, struct eng_route *out)
{
    out->count = 0;
    for (uint32_t wi = 0; wi < p->nw; wi++) {
        int64_t need = p->w[wi].qty;
        for (uint32_t ci = 0; ci < p->nc && need > 0; ci++) {
            if (!use[ci]) continue;
            int64_t take = TS_MIN(need, p->sell[ci * p->nw + wi]);
            if (take == 0) continue;
            if (out->count == TRASTENDA_ALLOCS_MAX)
                return eng_fail(r, TRASTENDA_E_LIMIT, "routing needs more than %d allocations",
                                TRASTENDA_ALLOCS_MAX);
            out->allocs[out->count++] = (trastenda_alloc){p->w[wi].sku_ix, p->c[ci].loc, take, 0};
            need -= take;
        }
        TS_ASSERT(need == 0);
    }
    return TRASTENDA_OK;
}

static trastenda_err
shortages(trastenda_engine *e, const struct plan *p, trastenda_result *r)
{
    trastenda_alloc *a = eng_arena_take(e, p->nw);
    r->allocs = a;
    r->alloc_count = p->nw;
    int64_t first_short = 0;
    uint32_t first = ENG_NONE;
    for (uint32_t wi = 0; wi < p->nw; wi++) {
        int64_t total = 0;
        for (uint32_t ci = 0; ci < p->nc; ci++)
            total += p->sell[ci * p->nw + wi];
        int64_t s = p->w[wi].qty > total ? p->w[wi].qty - total : 0;
        a[wi] = (trastenda_alloc){p->w[wi].sku_ix, TRASTENDA_IX_NONE, p->w[wi].qty, s};
        if (s > 0 && first == ENG_NONE) first = wi, first_short = s;
    }
    TS_ASSERT(first != ENG_NONE);
    const struct eng_id *id = &e->skus[p->w[first].sku_ix].id;
    return eng_fail(r, TRASTENDA_E_SHORT, "sku '%.*s' is short by %lld (wanted %lld)", id->len,
                    id->s, (long long)first_short, (long long)p->w[first].qty);
}

/* Short when some location could serve the channel; no route when none can. */
static trastenda_err
short_or_no_route(trastenda_engine *e, const struct plan *p, uint8_t channel, trastenda_result *r)
{
    for (uint32_t loc = 0; loc < e->loc_count; loc++) {
        const struct eng_location *l = &e->locs[loc];
        if (l->active && (!channel || (l->channels & (1u << (channel - 1)))))
            return shortages(e, p, r);
    }
    return eng_fail(r, TRASTENDA_E_NO_ROUTE, "no active location serves this channel");
}

trastenda_err
eng_route(trastenda_engine *e, const struct eng_want *wants, uint32_t n_wants, uint8_t channel,
          int32_t lat_e6, int32_t lon_e6, const trastenda_alloc *pending, uint32_t n_pending,
          trastenda_result *r, struct eng_route *out)
{
    TS_ASSERT(n_wants > 0 && n_wants <= TRASTENDA_LINES_MAX);
    int32_t ship[3];
    eng_geo_vec(lat_e6, lon_e6, ship);
    struct plan p = {e->route_cand, e->route_sell, 0, n_wants, wants};
    gather(e, &p, channel, ship, pending, n_pending);
    rank(e, &p);
    bool use[TRASTENDA_LOCATIONS_MAX];
    memset(use, 0, p.nc * sizeof(bool));
    for (uint32_t ci = 0; ci < p.nc; ci++)
        if (covers_all(&p, ci)) {
            use[ci] = true;
            out->rule = TRASTENDA_RULE_SINGLE;
            return assign(&p, use, r, out);
        }
    uint32_t useful[TRASTENDA_LOCATIONS_MAX], nu = 0;
    for (uint32_t ci = 0; ci < p.nc; ci++) {
        bool any = false;
        for (uint32_t wi = 0; wi < p.nw; wi++)
            any |= p.sell[ci * p.nw + wi] > 0;
        if (any) useful[nu++] = ci;
    }
    for (uint32_t wi = 0; wi < p.nw; wi++) {
        int64_t total = 0;
        for (uint32_t ci = 0; ci < p.nc; ci++)
            total += p.sell[ci * p.nw + wi];
        if (total < p.w[wi].qty) return short_or_no_route(e, &p, channel, r);
    }
    if (nu <= TRASTENDA_ROUTE_EXACT_MAX) {
        for (uint32_t b = 0; b < nu; b++)
            p.c[useful[b]].dist_m = eng_geo_metres(p.c[useful[b]].chord2);
        uint32_t m = exact(&p, useful, nu);
        TS_ASSERT(m != 0);
        for (uint32_t b = 0; b < nu; b++)
            use[useful[b]] = (m >> b) & 1u;
        out->rule = TRASTENDA_RULE_EXACT;
        return assign(&p, use, r, out);
    }
    bool chosen[TRASTENDA_LOCATIONS_MAX];
    memset(chosen, 0, nu * sizeof(bool));
    greedy(&p, useful, nu, chosen);
    for (uint32_t u = 0; u < nu; u++)
        use[useful[u]] = chosen[u];
    out->rule = TRASTENDA_RULE_GREEDY;
    return assign(&p, use, r, out);
}
