/*
 * tests/engine/test_determinism.c - the engine is a deterministic state machine.
 *
 * A random command sequence (splitmix64, fixed seeds) with every kind of command, valid and not,
 * and time that advances past TTLs and retention windows, is applied:
 *   - to two fresh engines: same results, byte-identical log entries, equal digests after every
 *     batch;
 *   - to one engine, while a second, empty one applies each batch's log entry (and then the same
 *     entry again, which must change nothing): equal digests after every batch;
 *   - to two engines whose tables hold the same state in different slots: the second built its
 *     catalog and stock records in another order, and released holds, cancelled orders and
 *     created keys in another order, so its pools hand out other slots; the digests must still
 *     be equal after every batch (the digest depends on the state, not on where it sits).
 *
 * The generator learns hold ids and order names from the first engine's results, so each run is
 * a function of its seed alone. Refs are always ids, never index hints: indices differ between
 * the engines of the third test.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng.h" /* only to show that the slot orders really differ (eng_hold_find...) */
#include "rng.h"
#include "trastenda.h"
#include "trastenda/engine.h"

#define T0        INT64_C(1700000000000)
#define N_LOCS    6
#define N_SKUS    6
#define BATCH_MAX 64
#define BATCHES   1500
#define RING      64
#define LIVE_MAX  4096

static const char *const LOC_IDS[N_LOCS] = {"l0", "l1", "l2", "l3", "l4", "l5"};
static const char *const SKU_IDS[N_SKUS] = {"s0", "s1", "s2", "s3", "s4", "s5"};

static void
config(trastenda_engine_config *cfg, bool roomy)
{
    trastenda_engine_config_default(cfg);
    uint32_t k = roomy ? 2 : 1; /* other capacities: other hash positions and slot ranges */
    cfg->locations_max = 8 * k;
    cfg->skus_max = 8 * k;
    cfg->stock_max = 64 * k;
    cfg->holds_max = 4096 * k;
    cfg->orders_max = 16384 * k;
    cfg->pos_max = 4096 * k; /* never full here: full tables would differ between configs */
    cfg->keys_max = 4096 * k;
    cfg->lines_max = 65536 * k;
    cfg->batch_cmds_max = 256;
    cfg->expire_per_batch_max = 8;
    cfg->purge_per_batch_max = 16;
    cfg->hold_retention_ms = 3000;
    cfg->order_retention_ms = 10000;
    cfg->key_retention_ms = 6000;
}

static trastenda_engine *
engine(bool roomy)
{
    trastenda_engine_config cfg;
    config(&cfg, roomy);
    trastenda_engine *e = NULL;
    cr_assert_eq(trastenda_engine_create(&cfg, &e), TRASTENDA_OK);
    return e;
}

/* ---- PRNG: splitmix64 ---- */

/* ---- commands with their own storage ---- */

struct gcmd {
    trastenda_cmd c;
    trastenda_line lines[8];
    trastenda_str channels[2];
    char key[24], order_id[24], po_id[24];
};

static trastenda_str
S(const char *s)
{
    return (trastenda_str){s, (uint32_t)strlen(s)};
}

static trastenda_ref
R(const char *id)
{
    return (trastenda_ref){S(id), TRASTENDA_IX_NONE};
}

static trastenda_str
fmt(char *buf, size_t cap, const char *prefix, uint32_t n)
{
    int len = snprintf(buf, cap, "%s%u", prefix, n);
    return (trastenda_str){buf, (uint32_t)len};
}

static void
cmd_init(struct gcmd *x, uint32_t op)
{
    memset(x, 0, sizeof(*x));
    x->c.op = op;
    x->c.sku.ix = x->c.loc.ix = x->c.loc_to.ix = TRASTENDA_IX_NONE;
    x->c.lines = x->lines;
}

static void
cmd_location(struct gcmd *x, int l)
{
    cmd_init(x, TRASTENDA_OP_LOCATION_UPSERT);
    x->c.loc = R(LOC_IDS[l]);
    x->c.lon_e6 = (int32_t)((l + 1) * 1500000);
    x->c.lat_e6 = (int32_t)(l * 300000);
    x->c.priority = l % 3;
    x->channels[0] = S("web");
    x->c.channel_count = 1;
    if (l == 0 || l == 4) x->channels[x->c.channel_count++] = S("store");
    x->c.channels = x->channels;
    x->c.active = 1;
}

static void
cmd_sku(struct gcmd *x, int s)
{
    cmd_init(x, TRASTENDA_OP_SKU_UPSERT);
    x->c.sku = R(SKU_IDS[s]);
    x->c.reorder_point = 4;
    x->c.reorder_qty = 20;
    x->c.lead_days = 3;
    x->c.safety_stock = s % 2;
    x->c.active = 1;
}

static void
cmd_stock(struct gcmd *x, uint32_t op, int s, int l, int64_t qty)
{
    cmd_init(x, op);
    x->c.sku = R(SKU_IDS[s]);
    x->c.loc = R(LOC_IDS[l]);
    x->c.qty = qty;
}

/* ---- the generator: no model, it learns ids from the first engine's results ---- */

struct gen {
    struct rng rng;
    uint64_t holds[RING];
    uint32_t n_holds;
    struct {
        uint32_t name;  /* o<n> */
        uint8_t state;  /* last seen in a result */
    } orders[LIVE_MAX]; /* orders not yet seen finished */
    uint32_t n_orders;
    uint32_t pos[RING];
    uint32_t n_pos;
    uint32_t next_order, next_po, next_key;
};

static uint64_t
pick_hold(struct gen *g)
{
    if (g->n_holds == 0 || rng_pct(&g->rng, 5)) return rng_below(&g->rng, 5000);
    return g->holds[rng_below(&g->rng, g->n_holds < RING ? g->n_holds : RING)];
}

/* An order not yet finished (or, sometimes, an unknown one); *step the op its last known state
 * calls for. */
static uint32_t
pick_order(struct gen *g, uint32_t *step)
{
    *step = TRASTENDA_OP_ORDER_SHIP;
    if (g->n_orders == 0 || rng_pct(&g->rng, 5)) return 999999;
    uint32_t i = rng_below(&g->rng, g->n_orders);
    switch (g->orders[i].state) {
    case TRASTENDA_ORDER_ALLOCATED:
        *step = rng_pct(&g->rng, 20) ? TRASTENDA_OP_ORDER_CANCEL : TRASTENDA_OP_ORDER_PICK;
        break;
    case TRASTENDA_ORDER_PICKING:
        *step = TRASTENDA_OP_ORDER_PACK;
        break;
    case TRASTENDA_ORDER_SHIPPED:
        *step = rng_pct(&g->rng, 25) ? TRASTENDA_OP_ORDER_RETURN : TRASTENDA_OP_ORDER_DELIVER;
        break;
    default:
        break;
    }
    return g->orders[i].name;
}

static void
gen_lines(struct gen *g, struct gcmd *x, bool routed_ok, bool any_loc)
{
    x->c.line_count = 1 + rng_below(&g->rng, 3);
    for (uint32_t i = 0; i < x->c.line_count; i++) {
        trastenda_line *ln = &x->lines[i];
        ln->sku = R(SKU_IDS[rng_below(&g->rng, N_SKUS)]);
        ln->loc = (trastenda_ref){{NULL, 0}, TRASTENDA_IX_NONE};
        if (any_loc || !(routed_ok && rng_pct(&g->rng, 40)))
            ln->loc = R(LOC_IDS[rng_below(&g->rng, N_LOCS)]);
        ln->qty = rng_pct(&g->rng, 97) ? rng_range(&g->rng, 1, 6) : 0;
        ln->flags = rng_pct(&g->rng, 30) ? TRASTENDA_LINE_UNSELLABLE : 0;
    }
}

static void
gen_cmd(struct gen *g, struct gcmd *x)
{
    uint32_t k = rng_below(&g->rng, 100);
    int s = (int)rng_below(&g->rng, N_SKUS), l = (int)rng_below(&g->rng, N_LOCS);
    if (k < 14) {
        cmd_stock(x, TRASTENDA_OP_RECEIVE, s, l, rng_range(&g->rng, 0, 30));
    } else if (k < 18) {
        cmd_stock(x, TRASTENDA_OP_ADJUST, s, l, rng_range(&g->rng, -12, 8));
        x->c.reason = (uint32_t)rng_range(&g->rng, 1, 5);
    } else if (k < 20) {
        cmd_stock(x, TRASTENDA_OP_COUNT, s, l, rng_range(&g->rng, 0, 30));
    } else if (k < 22) {
        cmd_stock(x, TRASTENDA_OP_MOVE_UNSELLABLE, s, l, rng_range(&g->rng, -3, 3));
        x->c.reason = TRASTENDA_REASON_DAMAGE;
    } else if (k < 23) {
        cmd_stock(x, TRASTENDA_OP_SET_SAFETY, s, l, rng_range(&g->rng, 0, 4));
    } else if (k < 25) {
        cmd_stock(x, TRASTENDA_OP_TRANSFER_OUT, s, l, rng_range(&g->rng, 1, 6));
        x->c.loc_to = R(LOC_IDS[(l + 1 + (int)rng_below(&g->rng, N_LOCS - 1)) % N_LOCS]);
        x->c.reference = S("tr-1");
    } else if (k < 27) {
        cmd_stock(x, TRASTENDA_OP_TRANSFER_IN, s, l, rng_range(&g->rng, 1, 6));
    } else if (k < 43) {
        cmd_init(x, TRASTENDA_OP_RESERVE);
        gen_lines(g, x, true, false);
        x->c.ttl_ms = rng_range(&g->rng, 1000, 8000);
        x->c.channel = S(rng_pct(&g->rng, 80) ? "web" : "store");
        x->c.has_ship_to = 1;
        x->c.lat_e6 = (int32_t)rng_range(&g->rng, -2000000, 2000000);
        x->c.partial = rng_pct(&g->rng, 20);
    } else if (k < 54) {
        cmd_init(x, TRASTENDA_OP_CONFIRM);
        x->c.hold_id = pick_hold(g);
        x->c.order_id = fmt(x->order_id, sizeof(x->order_id), "o", g->next_order++);
    } else if (k < 58) {
        cmd_init(x, TRASTENDA_OP_RELEASE);
        x->c.hold_id = pick_hold(g);
    } else if (k < 60) {
        cmd_init(x, TRASTENDA_OP_EXTEND);
        x->c.hold_id = pick_hold(g);
        x->c.ttl_ms = rng_range(&g->rng, 1000, 8000);
    } else if (k < 68) {
        cmd_init(x, TRASTENDA_OP_ORDER_PLACE);
        gen_lines(g, x, true, false);
        for (uint32_t i = 0; i < x->c.line_count; i++)
            x->lines[i].loc = (trastenda_ref){{NULL, 0}, TRASTENDA_IX_NONE};
        uint32_t step, name = rng_pct(&g->rng, 5) ? pick_order(g, &step) : g->next_order++;
        x->c.order_id = fmt(x->order_id, sizeof(x->order_id), "o", name);
        x->c.channel = S(rng_pct(&g->rng, 85) ? "web" : "store");
        x->c.has_ship_to = 1;
        x->c.lon_e6 = (int32_t)rng_range(&g->rng, -1000000, 9000000);
    } else if (k < 86) {
        static const uint32_t steps[] = {TRASTENDA_OP_ORDER_PICK,    TRASTENDA_OP_ORDER_PACK,
                                         TRASTENDA_OP_ORDER_SHIP,    TRASTENDA_OP_ORDER_SHIP,
                                         TRASTENDA_OP_ORDER_DELIVER, TRASTENDA_OP_ORDER_CANCEL,
                                         TRASTENDA_OP_ORDER_RETURN};
        uint32_t step, name = pick_order(g, &step);
        /* mostly the step the order's state calls for, sometimes any (wrong states too) */
        cmd_init(x, rng_pct(&g->rng, 75) ? step : steps[rng_below(&g->rng, 7)]);
        x->c.order_id = fmt(x->order_id, sizeof(x->order_id), "o", name);
        if (x->c.op == TRASTENDA_OP_ORDER_RETURN) gen_lines(g, x, false, true);
        if (x->c.op != TRASTENDA_OP_ORDER_RETURN && rng_pct(&g->rng, 20)) x->c.loc = R(LOC_IDS[l]);
    } else if (k < 88) {
        cmd_init(x, TRASTENDA_OP_PO_CREATE);
        x->c.po_id = fmt(x->po_id, sizeof(x->po_id), "p", g->next_po++);
        gen_lines(g, x, false, true);
        for (uint32_t i = 0; i < x->c.line_count; i++)
            x->lines[i].qty = rng_range(&g->rng, 5, 40);
    } else if (k < 95) {
        cmd_init(x, rng_pct(&g->rng, 50) ? TRASTENDA_OP_PO_RECEIVE : TRASTENDA_OP_PO_CLOSE);
        uint32_t p =
            g->n_pos > 0 ? g->pos[rng_below(&g->rng, g->n_pos < RING ? g->n_pos : RING)] : 777;
        x->c.po_id = fmt(x->po_id, sizeof(x->po_id), "p", p);
        if (x->c.op == TRASTENDA_OP_PO_RECEIVE) gen_lines(g, x, false, true);
    } else if (k < 97) {
        cmd_sku(x, s);
        x->c.reorder_point = rng_range(&g->rng, 0, 15);
        x->c.active = rng_pct(&g->rng, 90);
    } else if (k < 98) {
        cmd_location(x, l);
        x->c.active = rng_pct(&g->rng, 85);
    } else {
        cmd_init(x, TRASTENDA_OP_NOOP);
    }
    if (rng_pct(&g->rng, 20) && x->c.op != TRASTENDA_OP_ORDER_PLACE)
        x->c.key = fmt(x->key, sizeof(x->key), "k", g->next_key++ / 2); /* pairs share a key */
    if (rng_pct(&g->rng, 10)) x->c.actor = S("clerk");
}

/* What the batch created, from the results of the engine that leads the run. */
static void
learn(struct gen *g, const struct gcmd *cmds, const trastenda_result *res, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (res[i].code != TRASTENDA_OK || res[i].duplicate) continue;
        const trastenda_cmd *c = &cmds[i].c;
        if (c->op == TRASTENDA_OP_RESERVE) g->holds[g->n_holds++ % RING] = res[i].id;
        if ((c->op == TRASTENDA_OP_CONFIRM || c->op == TRASTENDA_OP_ORDER_PLACE) &&
            g->n_orders < LIVE_MAX) {
            g->orders[g->n_orders].name = (uint32_t)strtoul(c->order_id.ptr + 1, NULL, 10);
            g->orders[g->n_orders++].state = TRASTENDA_ORDER_ALLOCATED;
        }
        if (c->op == TRASTENDA_OP_PO_CREATE)
            g->pos[g->n_pos++ % RING] = (uint32_t)strtoul(c->po_id.ptr + 1, NULL, 10);
        if (c->op < TRASTENDA_OP_ORDER_PICK || c->op > TRASTENDA_OP_ORDER_RETURN) continue;
        /* Follow the order's state; a finished order leaves the set (it stays in retention). */
        uint32_t name = (uint32_t)strtoul(c->order_id.ptr + 1, NULL, 10);
        bool finished = res[i].state == TRASTENDA_ORDER_DELIVERED ||
                        res[i].state == TRASTENDA_ORDER_CANCELLED ||
                        res[i].state == TRASTENDA_ORDER_RETURNED;
        for (uint32_t k = 0; k < g->n_orders; k++)
            if (g->orders[k].name == name) {
                g->orders[k].state = res[i].state;
                if (finished) g->orders[k] = g->orders[--g->n_orders];
                break;
            }
    }
}

/* ---- running batches ---- */

struct batch {
    struct gcmd g[BATCH_MAX];
    trastenda_cmd cmds[BATCH_MAX];
    uint32_t n;
    int64_t now;
};

static void
batch_add(struct batch *b, const struct gcmd *x)
{
    cr_assert_lt(b->n, BATCH_MAX);
    b->g[b->n] = *x;
    struct gcmd *y = &b->g[b->n];
    /* Re-point the command at the copy's own storage. */
    if (x->c.lines == x->lines) y->c.lines = y->lines;
    if (x->c.channels == x->channels) y->c.channels = y->channels;
    if (x->c.key.ptr == x->key) y->c.key.ptr = y->key;
    if (x->c.order_id.ptr == x->order_id) y->c.order_id.ptr = y->order_id;
    if (x->c.po_id.ptr == x->po_id) y->c.po_id.ptr = y->po_id;
    b->cmds[b->n++] = y->c;
}

static void
next_batch(struct gen *g, struct batch *b)
{
    b->n = 0;
    uint32_t how = rng_below(&g->rng, 100);
    b->now += how < 85 ? rng_range(&g->rng, 0, 300) : rng_range(&g->rng, 2000, 20000);
    uint32_t n = 1 + rng_below(&g->rng, BATCH_MAX);
    for (uint32_t i = 0; i < n; i++) {
        struct gcmd x;
        gen_cmd(g, &x);
        batch_add(b, &x);
    }
}

static void
apply(trastenda_engine *e, const struct batch *b, trastenda_result *res, trastenda_batch_out *out)
{
    trastenda_err err = trastenda_engine_apply(e, b->now, b->cmds, b->n, res, out);
    cr_assert_eq(err, TRASTENDA_OK, "apply: %s", trastenda_err_name(err));
}

/* The same result, placements compared by the ids they name (indices may differ). */
static void
results_equal(const trastenda_engine *ea, const trastenda_result *a, const trastenda_engine *eb,
              const trastenda_result *b, uint64_t batch, uint32_t i)
{
    cr_assert_eq(a->code, b->code, "batch %" PRIu64 " #%u: code %s vs %s (%s / %s)", batch, i,
                 trastenda_err_name(a->code), trastenda_err_name(b->code), a->message, b->message);
    cr_assert(a->op == b->op && a->line == b->line && a->duplicate == b->duplicate &&
                  a->rule == b->rule && a->state == b->state && a->id == b->id &&
                  a->value == b->value && a->alloc_count == b->alloc_count,
              "batch %" PRIu64 " #%u: results differ", batch, i);
    cr_assert_str_eq(a->message, b->message, "batch %" PRIu64 " #%u", batch, i);
    for (uint32_t k = 0; k < a->alloc_count; k++) {
        const trastenda_alloc *x = &a->allocs[k], *y = &b->allocs[k];
        trastenda_str sx = trastenda_engine_sku_id(ea, x->sku_ix);
        trastenda_str sy = trastenda_engine_sku_id(eb, y->sku_ix);
        cr_assert(sx.len == sy.len && memcmp(sx.ptr, sy.ptr, sx.len) == 0,
                  "batch %" PRIu64 " #%u alloc %u: sku differs", batch, i, k);
        cr_assert_eq(x->loc_ix == TRASTENDA_IX_NONE, y->loc_ix == TRASTENDA_IX_NONE);
        if (x->loc_ix != TRASTENDA_IX_NONE) {
            trastenda_str lx = trastenda_engine_location_id(ea, x->loc_ix);
            trastenda_str ly = trastenda_engine_location_id(eb, y->loc_ix);
            cr_assert(lx.len == ly.len && memcmp(lx.ptr, ly.ptr, lx.len) == 0,
                      "batch %" PRIu64 " #%u alloc %u: location differs", batch, i, k);
        }
        cr_assert(x->qty == y->qty && x->short_qty == y->short_qty);
    }
}

/* The catalog every run starts from (one batch). */
static void
setup_batch(struct batch *b)
{
    b->n = 0;
    b->now = T0;
    struct gcmd x;
    for (int l = 0; l < N_LOCS; l++) {
        cmd_location(&x, l);
        batch_add(b, &x);
    }
    for (int s = 0; s < N_SKUS; s++) {
        cmd_sku(&x, s);
        batch_add(b, &x);
    }
}

static uint64_t
ok_count(const trastenda_result *res, uint32_t n)
{
    uint64_t ok = 0;
    for (uint32_t i = 0; i < n; i++)
        ok += res[i].code == TRASTENDA_OK;
    return ok;
}

static const uint64_t SEEDS[] = {7, 0xc0ffee};

Test(engine_determinism, same_batches_give_identical_results_entries_and_state)
{
    static struct batch b;
    static trastenda_result ra[BATCH_MAX], rb[BATCH_MAX];
    for (size_t si = 0; si < sizeof(SEEDS) / sizeof(SEEDS[0]); si++) {
        trastenda_engine *a = engine(false), *e2 = engine(false);
        struct gen g = {.rng = {SEEDS[si]}};
        trastenda_batch_out oa, ob;
        uint64_t ok = 0;
        setup_batch(&b);
        for (uint64_t i = 0; i <= BATCHES; i++) {
            if (i > 0) next_batch(&g, &b);
            apply(a, &b, ra, &oa);
            apply(e2, &b, rb, &ob);
            for (uint32_t k = 0; k < b.n; k++)
                results_equal(a, &ra[k], e2, &rb[k], i, k);
            cr_assert_eq(oa.seq, ob.seq);
            cr_assert_eq(oa.entry_len, ob.entry_len, "seed %" PRIu64 " batch %" PRIu64, SEEDS[si],
                         i);
            cr_assert(memcmp(oa.entry, ob.entry, oa.entry_len) == 0,
                      "seed %" PRIu64 " batch %" PRIu64 ": log entries differ", SEEDS[si], i);
            cr_assert_eq(trastenda_engine_digest(a), trastenda_engine_digest(e2),
                         "seed %" PRIu64 " batch %" PRIu64 ": digests differ", SEEDS[si], i);
            ok += ok_count(ra, b.n);
            learn(&g, b.g, ra, b.n);
        }
        cr_assert_gt(ok, BATCHES * 8, "the sequence should mostly do things (ok %" PRIu64 ")", ok);
        trastenda_engine_check(a);
        trastenda_engine_check(e2);
        trastenda_engine_destroy(a);
        trastenda_engine_destroy(e2);
    }
}

Test(engine_determinism, replaying_each_entry_reproduces_the_state_after_every_batch)
{
    static struct batch b;
    static trastenda_result ra[BATCH_MAX];
    for (size_t si = 0; si < sizeof(SEEDS) / sizeof(SEEDS[0]); si++) {
        trastenda_engine *a = engine(false), *c = engine(false);
        struct gen g = {.rng = {SEEDS[si]}};
        trastenda_batch_out oa;
        setup_batch(&b);
        for (uint64_t i = 0; i <= BATCHES; i++) {
            if (i > 0) next_batch(&g, &b);
            apply(a, &b, ra, &oa);
            uint64_t want = trastenda_engine_digest(a);
            trastenda_err err = trastenda_engine_apply_entry(c, oa.entry, oa.entry_len);
            cr_assert_eq(err, TRASTENDA_OK, "batch %" PRIu64 ": apply_entry: %s", i,
                         trastenda_err_name(err));
            cr_assert_eq(trastenda_engine_digest(c), want,
                         "seed %" PRIu64 " batch %" PRIu64 ": the replica's digest differs",
                         SEEDS[si], i);
            /* The same entry again (a retried delivery) changes nothing. */
            err = trastenda_engine_apply_entry(c, oa.entry, oa.entry_len);
            cr_assert_eq(err, TRASTENDA_OK);
            cr_assert_eq(trastenda_engine_digest(c), want,
                         "seed %" PRIu64 " batch %" PRIu64 ": re-applying an entry changed the "
                         "state",
                         SEEDS[si], i);
            cr_assert_eq(trastenda_engine_seq(c), trastenda_engine_seq(a));
            cr_assert_eq(trastenda_engine_time_ms(c), trastenda_engine_time_ms(a));
            learn(&g, b.g, ra, b.n);
            if (i % 250 == 0) trastenda_engine_check(c);
        }
        trastenda_engine_check(a);
        trastenda_engine_check(c);
        trastenda_engine_destroy(a);
        trastenda_engine_destroy(c);
    }
}

/* ---- the same state in other slots ---- */

/* Applies the same logical batch to a and d (commands possibly in another order), checking
 * every command succeeded; the digests must then agree, when same_state says the batch leaves
 * the same state in both. */
static void
apply_pair(trastenda_engine *a, const struct batch *ba, trastenda_engine *d, const struct batch *bd,
           const char *what, bool same_state)
{
    static trastenda_result ra[BATCH_MAX], rd[BATCH_MAX];
    trastenda_batch_out out;
    apply(a, ba, ra, &out);
    apply(d, bd, rd, &out);
    for (uint32_t i = 0; i < ba->n; i++) {
        cr_assert_eq(ra[i].code, TRASTENDA_OK, "%s #%u: %s", what, i, ra[i].message);
        cr_assert_eq(rd[i].code, TRASTENDA_OK, "%s #%u: %s", what, i, rd[i].message);
    }
    if (!same_state) return;
    cr_assert_eq(trastenda_engine_digest(a), trastenda_engine_digest(d),
                 "%s: the same state in other slots has another digest", what);
}

/* Indices of a permutation of n, drawn from r (Fisher-Yates). */
static void
shuffle(struct rng *r, uint32_t *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        v[i] = i;
    for (uint32_t i = n - 1; i > 0; i--) {
        uint32_t j = rng_below(r, i + 1);
        uint32_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* Builds the same state in a and d through different orders: catalog, stock records and keys
 * created in another order; holds released and orders cancelled in another order, so that
 * retention frees their slots in another order. Returns the time reached. */
static int64_t
diverge_slots(trastenda_engine *a, trastenda_engine *d)
{
    static struct batch ba, bd;
    struct rng r = {99};
    struct gcmd x;
    /* 1. The catalog. l0 comes first in both: it registers the channels in the same order. */
    ba.n = bd.n = 0;
    ba.now = bd.now = T0;
    for (int l = 0; l < N_LOCS; l++) {
        cmd_location(&x, l);
        batch_add(&ba, &x);
        cmd_location(&x, l == 0 ? 0 : N_LOCS - l);
        batch_add(&bd, &x);
    }
    for (int s = 0; s < N_SKUS; s++) {
        cmd_sku(&x, s);
        batch_add(&ba, &x);
        cmd_sku(&x, N_SKUS - 1 - s);
        batch_add(&bd, &x);
    }
    apply_pair(a, &ba, d, &bd, "catalog", true);
    /* 2. Every stock record, with a keyed receive, in another order. */
    uint32_t perm[N_SKUS * N_LOCS];
    shuffle(&r, perm, N_SKUS * N_LOCS);
    struct gcmd recv[N_SKUS * N_LOCS];
    for (int i = 0; i < N_SKUS * N_LOCS; i++) {
        cmd_stock(&recv[i], TRASTENDA_OP_RECEIVE, i / N_LOCS, i % N_LOCS, 20 + i % 7);
        recv[i].c.key = fmt(recv[i].key, sizeof(recv[i].key), "rk", (uint32_t)i);
    }
    ba.n = bd.n = 0;
    for (uint32_t i = 0; i < N_SKUS * N_LOCS; i++) {
        batch_add(&ba, &recv[i]);
        batch_add(&bd, &recv[perm[i]]);
    }
    apply_pair(a, &ba, d, &bd, "receives", true);
    /* 3. Three holds and three orders, the same in both. */
    ba.n = 0;
    for (int i = 0; i < 3; i++) {
        cmd_init(&x, TRASTENDA_OP_RESERVE);
        x.lines[0] = (trastenda_line){R(SKU_IDS[i]), R(LOC_IDS[i]), 2 + i, 0};
        x.c.line_count = 1;
        x.c.ttl_ms = 60000;
        batch_add(&ba, &x);
    }
    for (int i = 0; i < 3; i++) {
        cmd_init(&x, TRASTENDA_OP_ORDER_PLACE);
        x.lines[0] = (trastenda_line){R(SKU_IDS[3 + i]), {{NULL, 0}, TRASTENDA_IX_NONE}, 3, 0};
        x.c.line_count = 1;
        x.c.order_id = fmt(x.order_id, sizeof(x.order_id), "pre-", (uint32_t)i);
        x.c.channel = S("web");
        x.c.has_ship_to = 1;
        batch_add(&ba, &x);
    }
    apply_pair(a, &ba, d, &ba, "holds and orders", true);
    /* 4. Resolved in another order: releases 1,2,3 vs 3,1,2; cancels 1,2,3 vs 2,3,1. */
    static const int rel_d[3] = {2, 0, 1}, cancel_d[3] = {1, 2, 0};
    ba.n = bd.n = 0;
    for (int i = 0; i < 3; i++) {
        cmd_init(&x, TRASTENDA_OP_RELEASE);
        x.c.hold_id = (uint64_t)i + 1;
        batch_add(&ba, &x);
        x.c.hold_id = (uint64_t)rel_d[i] + 1;
        batch_add(&bd, &x);
    }
    for (int i = 0; i < 3; i++) {
        cmd_init(&x, TRASTENDA_OP_ORDER_CANCEL);
        x.c.order_id = fmt(x.order_id, sizeof(x.order_id), "pre-", (uint32_t)i);
        batch_add(&ba, &x);
        x.c.order_id = fmt(x.order_id, sizeof(x.order_id), "pre-", (uint32_t)cancel_d[i]);
        batch_add(&bd, &x);
    }
    apply_pair(a, &ba, d, &bd, "releases and cancels", true);
    /* 5. Past every retention window: holds, orders and keys leave memory in FIFO order, at
     * most purge_per_batch_max (16) per table per batch. The 36 keys take three batches, and
     * in between a and d legitimately hold different keys (their FIFOs are in other orders). */
    trastenda_engine_config cfg;
    config(&cfg, false);
    int64_t later = T0 + cfg.order_retention_ms + cfg.hold_retention_ms + cfg.key_retention_ms;
    ba.n = 0;
    ba.now = later;
    cmd_init(&x, TRASTENDA_OP_NOOP);
    batch_add(&ba, &x);
    apply_pair(a, &ba, d, &ba, "retention 1", false);
    apply_pair(a, &ba, d, &ba, "retention 2", false);
    apply_pair(a, &ba, d, &ba, "retention 3", true);
    trastenda_engine_stats st;
    trastenda_engine_stats_get(a, &st);
    cr_assert(st.holds == 0 && st.orders == 0 && st.keys == 0, "the prefix left memory clean");
    return later;
}

Test(engine_determinism, digest_does_not_depend_on_where_records_sit)
{
    static struct batch b;
    static trastenda_result ra[BATCH_MAX], rd[BATCH_MAX];
    trastenda_engine *a = engine(false), *d = engine(true);
    int64_t now = diverge_slots(a, d);

    /* The precondition: the same things sit in other slots. */
    uint32_t sa, sd;
    cr_assert_eq(trastenda_engine_sku_lookup(a, S("s0"), &sa), TRASTENDA_OK);
    cr_assert_eq(trastenda_engine_sku_lookup(d, S("s0"), &sd), TRASTENDA_OK);
    cr_assert_neq(sa, sd, "SKU indices should differ");
    uint32_t la, ld;
    cr_assert_eq(trastenda_engine_location_lookup(a, S("l1"), &la), TRASTENDA_OK);
    cr_assert_eq(trastenda_engine_location_lookup(d, S("l1"), &ld), TRASTENDA_OK);
    cr_assert_neq(la, ld, "location indices should differ");
    uint32_t moved = 0;
    for (int s = 0; s < N_SKUS; s++)
        for (int l = 0; l < N_LOCS; l++) {
            uint32_t xa, xd, ya, yd;
            cr_assert_eq(trastenda_engine_sku_lookup(a, S(SKU_IDS[s]), &xa), TRASTENDA_OK);
            cr_assert_eq(trastenda_engine_sku_lookup(d, S(SKU_IDS[s]), &xd), TRASTENDA_OK);
            cr_assert_eq(trastenda_engine_location_lookup(a, S(LOC_IDS[l]), &ya), TRASTENDA_OK);
            cr_assert_eq(trastenda_engine_location_lookup(d, S(LOC_IDS[l]), &yd), TRASTENDA_OK);
            moved += eng_stock_find(a, xa, ya) != eng_stock_find(d, xd, yd);
        }
    cr_assert_gt(moved, N_SKUS * N_LOCS / 2, "stock records should sit in other slots");

    struct gen g = {.rng = {SEEDS[0]}};
    b.now = now;
    trastenda_batch_out out;
    bool hold_slots_differ = false, order_slots_differ = false;
    for (uint64_t i = 1; i <= BATCHES; i++) {
        next_batch(&g, &b);
        apply(a, &b, ra, &out);
        apply(d, &b, rd, &out);
        for (uint32_t k = 0; k < b.n; k++) {
            results_equal(a, &ra[k], d, &rd[k], i, k);
            cr_assert_neq(ra[k].code, TRASTENDA_E_TABLE_FULL, "tables are sized never to fill");
            if (ra[k].code != TRASTENDA_OK || ra[k].duplicate) continue;
            if (b.cmds[k].op == TRASTENDA_OP_RESERVE)
                hold_slots_differ |= eng_hold_find(a, ra[k].id) != eng_hold_find(d, ra[k].id);
            if (b.cmds[k].op == TRASTENDA_OP_ORDER_PLACE)
                order_slots_differ |=
                    eng_order_find(a, b.cmds[k].order_id) != eng_order_find(d, b.cmds[k].order_id);
        }
        cr_assert_eq(trastenda_engine_digest(a), trastenda_engine_digest(d),
                     "batch %" PRIu64 ": same state in other slots, other digest", i);
        learn(&g, b.g, ra, b.n);
    }
    cr_assert(hold_slots_differ, "holds should have landed in other slots");
    cr_assert(order_slots_differ, "orders should have landed in other slots");
    trastenda_engine_check(a);
    trastenda_engine_check(d);

    /* And the digest does tell different states apart: one more unit in d. */
    struct gcmd x;
    b.n = 0;
    cmd_init(&x, TRASTENDA_OP_NOOP);
    batch_add(&b, &x);
    apply(a, &b, ra, &out);
    b.n = 0;
    cmd_stock(&x, TRASTENDA_OP_RECEIVE, 0, 0, 1);
    batch_add(&b, &x);
    apply(d, &b, rd, &out);
    cr_assert_eq(rd[0].code, TRASTENDA_OK);
    cr_assert_neq(trastenda_engine_digest(a), trastenda_engine_digest(d),
                  "one unit more is another state");
    trastenda_engine_destroy(a);
    trastenda_engine_destroy(d);
}
