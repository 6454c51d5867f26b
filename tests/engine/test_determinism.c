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
#include "gen.h"
#include "rng.h"
#include "trastenda.h"
#include "trastenda/engine.h"

#define BATCHES 1500

static trastenda_engine *
engine(bool roomy)
{
    trastenda_engine_config cfg;
    gen_config(&cfg, roomy);
    trastenda_engine *e = NULL;
    cr_assert_eq(trastenda_engine_create(&cfg, &e), TRASTENDA_OK);
    return e;
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
    gen_config(&cfg, false);
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
