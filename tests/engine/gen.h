/*
 * tests/engine/gen.h - a random command generator for tests: every kind of command, valid and
 * not, over a small catalog, with time that advances past TTLs and retention windows.
 *
 * No model: it learns hold ids and order names from the results of the engine that leads a run
 * (learn()), so each run is a function of its seed alone. Refs are always ids, never index hints.
 * Header-only and free of Criterion, so that plain tests (child processes) can use it too.
 */
#ifndef TS_TESTS_GEN_H
#define TS_TESTS_GEN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "trastenda.h"
#include "trastenda/engine.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#endif

#define T0        INT64_C(1700000000000)
#define N_LOCS    6
#define N_SKUS    6
#define BATCH_MAX 64
#define RING      64
#define LIVE_MAX  4096

static const char *const LOC_IDS[N_LOCS] = {"l0", "l1", "l2", "l3", "l4", "l5"};
static const char *const SKU_IDS[N_SKUS] = {"s0", "s1", "s2", "s3", "s4", "s5"};

static void
gen_config(trastenda_engine_config *cfg, bool roomy)
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
    if (b->n >= BATCH_MAX) abort();
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

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif /* TS_TESTS_GEN_H */
