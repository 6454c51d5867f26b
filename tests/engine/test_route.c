/*
 * tests/engine/test_route.c - engine/route.c: order routing and the rule reported with it.
 * SINGLE (nearest location shipping everything, then priority, then id), EXACT (fewest shipments,
 * then least total distance, every combination of at most 8 candidates), GREEDY (more than 8),
 * candidates limited to active locations serving the channel, E_NO_ROUTE, E_SHORT with the
 * shortage per SKU, and determinism.
 *
 * Geometry: locations sit on the equator at longitude lon_e6; the ship-to is (0, 0), so distance
 * grows with |lon| (0.1 degree is about 11 km).
 */
#include "helpers.h"

static void
config(trastenda_engine_config *cfg)
{
    h_config_small(cfg);
    cfg->locations_max = 16;
    cfg->stock_max = 256;
}

static void
setup(void)
{
    trastenda_engine_config cfg;
    config(&cfg);
    h_setup_with(&cfg, 1);
    h_add_sku("tee", 0);
    h_add_sku("cap", 0);
}

TestSuite(engine_route, .init = setup, .fini = h_teardown);

/* A location on the equator at lon_e6, serving "web" unless channels says otherwise. */
static void
loc(const char *id, int32_t lon_e6, int32_t priority)
{
    (void)h_add_location_at(id, 0, lon_e6, priority, "web");
}

#define ALLOCS_KEEP TRASTENDA_ALLOCS_MAX

/* The result of the last place(), with its placements copied (results borrow them). */
struct placed {
    trastenda_result r;
    uint32_t n;
    trastenda_alloc a[ALLOCS_KEEP];
};

/* ORDER_PLACE of lines on channel, shipping to (0, 0); does not assert the code. */
static struct placed
place_on(const char *id, const trastenda_line *lines, uint32_t n, const char *channel)
{
    trastenda_cmd c = h_cmd_order(id, lines, n, channel);
    c.has_ship_to = 1;
    struct placed p;
    memset(&p, 0, sizeof(p));
    p.r = h_apply(&c);
    cr_assert_leq(p.r.alloc_count, ALLOCS_KEEP);
    p.n = p.r.alloc_count;
    if (p.n > 0) memcpy(p.a, p.r.allocs, p.n * sizeof(p.a[0]));
    p.r.allocs = NULL;
    return p;
}

/* One SKU, routed, on "web"; asserts success. */
static struct placed
place1(const char *id, const char *sku, int64_t qty)
{
    trastenda_line ln = h_line(sku, NULL, qty);
    struct placed p = place_on(id, &ln, 1, "web");
    cr_assert_eq(p.r.code, TRASTENDA_OK, "place %s: %s", id, p.r.message);
    return p;
}

/* Units placed of sku at location id (0 when none). */
static int64_t
units_at(const struct placed *p, const char *sku, const char *loc_id)
{
    uint32_t s = h_sku_ix(sku), l = h_loc_ix(loc_id);
    int64_t n = 0;
    for (uint32_t i = 0; i < p->n; i++)
        if (p->a[i].sku_ix == s && p->a[i].loc_ix == l) n += p->a[i].qty;
    return n;
}

/* Distinct locations of a placement. */
static uint32_t
shipments(const struct placed *p)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < p->n; i++) {
        int seen = 0;
        for (uint32_t j = 0; j < i; j++)
            seen |= p->a[j].loc_ix == p->a[i].loc_ix;
        n += !seen;
    }
    return n;
}

static int64_t
units_total(const struct placed *p)
{
    int64_t n = 0;
    for (uint32_t i = 0; i < p->n; i++)
        n += p->a[i].qty;
    return n;
}

/* ---- SINGLE ---- */

Test(engine_route, single_picks_the_nearest_location_that_can_ship_everything)
{
    loc("near-small", 50000, 0);
    loc("mid", 1000000, 0);
    loc("far", 2000000, 0);
    h_receive("tee", "near-small", 2);
    h_receive("tee", "mid", 5);
    h_receive("tee", "far", 10);
    struct placed p = place1("W-1", "tee", 5);
    cr_assert_eq(p.r.rule, TRASTENDA_RULE_SINGLE);
    cr_assert_eq(p.n, 1);
    cr_assert_eq(units_at(&p, "tee", "mid"), 5);
    p = place1("W-2", "tee", 1);
    cr_assert_eq(units_at(&p, "tee", "near-small"), 1, "the nearest when it can");
    cr_assert_eq(p.r.rule, TRASTENDA_RULE_SINGLE);
}

Test(engine_route, single_needs_every_sku_at_one_location)
{
    loc("near", 100000, 0);
    loc("far", 2000000, 0);
    h_receive("tee", "near", 5);
    h_receive("tee", "far", 5);
    h_receive("cap", "far", 5);
    trastenda_line ln[2] = {h_line("tee", NULL, 2), h_line("cap", NULL, 2)};
    struct placed p = place_on("W-1", ln, 2, "web");
    cr_assert_eq(p.r.code, TRASTENDA_OK, "%s", p.r.message);
    cr_assert_eq(p.r.rule, TRASTENDA_RULE_SINGLE);
    cr_assert_eq(units_at(&p, "tee", "far"), 2);
    cr_assert_eq(units_at(&p, "cap", "far"), 2);
    cr_assert_eq(shipments(&p), 1);
}

Test(engine_route, single_at_equal_distance_prefers_the_lower_priority_value)
{
    loc("first", 500000, 5);
    loc("second", 500000, 1);
    h_receive("tee", "first", 10);
    h_receive("tee", "second", 10);
    struct placed p = place1("W-1", "tee", 3);
    cr_assert_eq(p.r.rule, TRASTENDA_RULE_SINGLE);
    cr_assert_eq(units_at(&p, "tee", "second"), 3);
}

Test(engine_route, single_distance_wins_over_priority)
{
    loc("near", 100000, 100);
    loc("far", 900000, -100);
    h_receive("tee", "near", 10);
    h_receive("tee", "far", 10);
    struct placed p = place1("W-1", "tee", 3);
    cr_assert_eq(units_at(&p, "tee", "near"), 3);
}

Test(engine_route, single_on_an_exact_tie_takes_the_smaller_id)
{
    /* Created b first: a slot-order choice would take b. */
    loc("wh-b", 500000, 2);
    loc("wh-a", 500000, 2);
    h_receive("tee", "wh-b", 10);
    h_receive("tee", "wh-a", 10);
    struct placed p = place1("W-1", "tee", 3);
    cr_assert_eq(p.r.rule, TRASTENDA_RULE_SINGLE);
    cr_assert_eq(units_at(&p, "tee", "wh-a"), 3);
    cr_assert_eq(units_at(&p, "tee", "wh-b"), 0);
}

Test(engine_route, routing_counts_only_sellable_units)
{
    loc("near", 100000, 0);
    loc("far", 900000, 0);
    h_receive("tee", "near", 10);
    h_receive("tee", "far", 10);
    (void)h_hold("tee", "near", 4);
    trastenda_cmd s = h_cmd_stock(TRASTENDA_OP_SET_SAFETY, "tee", "near", 3);
    H_OK(&s);
    cr_assert_eq(h_stock("tee", "near").available, 3);
    struct placed p = place1("W-1", "tee", 4);
    cr_assert_eq(units_at(&p, "tee", "far"), 4, "near has only 3 to sell");
    p = place1("W-2", "tee", 3);
    cr_assert_eq(units_at(&p, "tee", "near"), 3);
}

Test(engine_route, routing_skips_a_record_in_shortfall)
{
    loc("near", 100000, 0);
    loc("far", 900000, 0);
    h_receive("tee", "near", 10);
    h_receive("tee", "far", 10);
    (void)place1("W-1", "tee", 8);
    trastenda_cmd a = h_cmd_adjust("tee", "near", -5, TRASTENDA_REASON_DAMAGE);
    H_OK(&a);
    cr_assert_lt(h_stock("tee", "near").available, 0);
    struct placed p = place1("W-2", "tee", 1);
    cr_assert_eq(units_at(&p, "tee", "far"), 1);
}

/* ---- EXACT ---- */

Test(engine_route, exact_finds_fewer_shipments_than_a_greedy_cover_by_units)
{
    /* "mix" covers the most units (8 of 10) and is nearest, so greedy takes it first and then
     * needs both others (3 shipments); "tees" + "caps" do it in 2. */
    loc("mix", 100000, 0);
    loc("tees", 500000, 0);
    loc("caps", 600000, 0);
    h_receive("tee", "mix", 4);
    h_receive("cap", "mix", 4);
    h_receive("tee", "tees", 5);
    h_receive("cap", "caps", 5);
    trastenda_line ln[2] = {h_line("tee", NULL, 5), h_line("cap", NULL, 5)};
    struct placed p = place_on("W-1", ln, 2, "web");
    cr_assert_eq(p.r.code, TRASTENDA_OK, "%s", p.r.message);
    cr_assert_eq(p.r.rule, TRASTENDA_RULE_EXACT);
    cr_assert_eq(shipments(&p), 2);
    cr_assert_eq(units_at(&p, "tee", "tees"), 5);
    cr_assert_eq(units_at(&p, "cap", "caps"), 5);
    cr_assert_eq(units_at(&p, "tee", "mix") + units_at(&p, "cap", "mix"), 0);
    trastenda_order_view v;
    cr_assert_eq(trastenda_engine_order_get(H.e, h_s("W-1"), &v), TRASTENDA_OK);
    cr_assert_eq(v.rule, TRASTENDA_RULE_EXACT);
}

Test(engine_route, exact_takes_the_least_total_distance_among_equal_shipment_counts)
{
    /* Greedy by units would take "big" (9) first, then a near one: 2 shipments, ~344 km. The two
     * near ones also make 2 shipments at ~33 km. */
    loc("big", 3000000, 0);
    loc("n1", 100000, 0);
    loc("n2", 200000, 0);
    h_receive("tee", "big", 9);
    h_receive("tee", "n1", 5);
    h_receive("tee", "n2", 5);
    struct placed p = place1("W-1", "tee", 10);
    cr_assert_eq(p.r.rule, TRASTENDA_RULE_EXACT);
    cr_assert_eq(shipments(&p), 2);
    cr_assert_eq(units_at(&p, "tee", "n1"), 5);
    cr_assert_eq(units_at(&p, "tee", "n2"), 5);
    cr_assert_eq(units_at(&p, "tee", "big"), 0);
}

Test(engine_route, exact_weighs_total_distance_before_rank)
{
    /* Pairs that cover 10: a+d (110 km), b+c (~23 km), b+d, c+d. The nearest candidate "a" only
     * pairs with the far "d": the nearer pair without it must win. */
    loc("a", 90000, 0);
    loc("b", 100000, 0);
    loc("c", 110000, 0);
    loc("d", 900000, 0);
    h_receive("tee", "a", 3);
    h_receive("tee", "b", 5);
    h_receive("tee", "c", 5);
    h_receive("tee", "d", 7);
    struct placed p = place1("W-1", "tee", 10);
    cr_assert_eq(p.r.rule, TRASTENDA_RULE_EXACT);
    cr_assert_eq(shipments(&p), 2);
    cr_assert_eq(units_at(&p, "tee", "b"), 5);
    cr_assert_eq(units_at(&p, "tee", "c"), 5);
}

Test(engine_route, exact_takes_each_sku_from_the_nearest_chosen_location_first)
{
    loc("a", 1000000, 0);
    loc("b", 2000000, 0);
    loc("c", 100000, 0);
    loc("d", 200000, 0);
    h_receive("tee", "a", 6);
    h_receive("tee", "b", 6);
    h_receive("tee", "c", 4);
    h_receive("tee", "d", 4);
    struct placed p = place1("W-1", "tee", 10);
    cr_assert_eq(p.r.rule, TRASTENDA_RULE_EXACT);
    cr_assert_eq(p.n, 2);
    cr_assert_eq(p.a[0].loc_ix, h_loc_ix("c"), "nearest chosen first");
    cr_assert_eq(p.a[0].qty, 4);
    cr_assert_eq(p.a[1].loc_ix, h_loc_ix("a"));
    cr_assert_eq(p.a[1].qty, 6);
}

Test(engine_route, exact_on_equal_distance_takes_the_lower_total_priority)
{
    loc("p9", 500000, 9);
    loc("p1", 500000, 1);
    loc("base", 100000, 0);
    h_receive("tee", "p9", 5);
    h_receive("tee", "p1", 5);
    h_receive("tee", "base", 5);
    struct placed p = place1("W-1", "tee", 8);
    cr_assert_eq(p.r.rule, TRASTENDA_RULE_EXACT);
    cr_assert_eq(units_at(&p, "tee", "base"), 5);
    cr_assert_eq(units_at(&p, "tee", "p1"), 3);
    cr_assert_eq(units_at(&p, "tee", "p9"), 0);
}

Test(engine_route, eight_candidates_are_still_searched_exactly)
{
    char ids[8][8];
    for (int i = 0; i < 8; i++) {
        snprintf(ids[i], sizeof(ids[i]), "l%d", i);
        loc(ids[i], 100000 * (i + 1), 0);
        h_receive("tee", ids[i], 2);
    }
    struct placed p = place1("W-1", "tee", 15);
    cr_assert_eq(p.r.rule, TRASTENDA_RULE_EXACT);
    cr_assert_eq(units_total(&p), 15);
    cr_assert_eq(shipments(&p), 8);
}

/* ---- GREEDY ---- */

Test(engine_route, greedy_beyond_eight_candidates)
{
    char ids[9][8];
    for (int i = 0; i < 9; i++) {
        snprintf(ids[i], sizeof(ids[i]), "l%d", i);
        loc(ids[i], 100000 * (i + 1), 0);
        h_receive("tee", ids[i], 2);
    }
    struct placed p = place1("W-1", "tee", 17);
    cr_assert_eq(p.r.rule, TRASTENDA_RULE_GREEDY);
    cr_assert_eq(units_total(&p), 17);
    cr_assert_eq(shipments(&p), 9);
    for (int i = 0; i < 9; i++)
        cr_assert_leq(units_at(&p, "tee", ids[i]), 2);
    trastenda_order_view v;
    cr_assert_eq(trastenda_engine_order_get(H.e, h_s("W-1"), &v), TRASTENDA_OK);
    cr_assert_eq(v.rule, TRASTENDA_RULE_GREEDY);
    int64_t committed = 0;
    for (int i = 0; i < 9; i++)
        committed += h_stock("tee", ids[i]).committed;
    cr_assert_eq(committed, 17);
}

Test(engine_route, greedy_takes_the_location_covering_most_units_first)
{
    char ids[9][8];
    for (int i = 0; i < 9; i++) {
        snprintf(ids[i], sizeof(ids[i]), "s%d", i);
        loc(ids[i], 100000 * (i + 1), 0);
        h_receive("tee", ids[i], 2);
    }
    loc("big", 3000000, 0);
    h_receive("tee", "big", 10);
    struct placed p = place1("W-1", "tee", 12);
    cr_assert_eq(p.r.rule, TRASTENDA_RULE_GREEDY);
    cr_assert_eq(shipments(&p), 2);
    cr_assert_eq(units_at(&p, "tee", "big"), 10);
    cr_assert_eq(units_at(&p, "tee", "s0"), 2, "then the nearest of the ties");
}

/* ---- candidates ---- */

Test(engine_route, only_active_locations_serving_the_channel_are_candidates)
{
    (void)h_add_location_at("store-only", 0, 10000, 0, "store");
    loc("closed", 20000, 0);
    loc("open", 2000000, 0);
    h_receive("tee", "store-only", 10);
    h_receive("tee", "closed", 10);
    h_receive("tee", "open", 10);
    trastenda_cmd d = h_cmd(TRASTENDA_OP_LOCATION_DEACTIVATE);
    d.loc = h_ref("closed");
    H_OK(&d);
    struct placed p = place1("W-1", "tee", 3);
    cr_assert_eq(p.r.rule, TRASTENDA_RULE_SINGLE);
    cr_assert_eq(units_at(&p, "tee", "open"), 3);
    trastenda_line ln = h_line("tee", NULL, 11);
    p = place_on("W-2", &ln, 1, "web");
    cr_assert_eq(p.r.code, TRASTENDA_E_SHORT, "only 'open' counts: %s", p.r.message);
    cr_assert_eq(p.a[0].short_qty, 4, "7 left at 'open'");
    ln.qty = 2;
    p = place_on("S-1", &ln, 1, "store");
    cr_assert_eq(p.r.code, TRASTENDA_OK, "%s", p.r.message);
    cr_assert_eq(units_at(&p, "tee", "store-only"), 2);
}

Test(engine_route, a_location_that_stops_serving_a_channel_is_no_longer_a_candidate)
{
    loc("near", 100000, 0);
    loc("far", 900000, 0);
    h_receive("tee", "near", 10);
    h_receive("tee", "far", 10);
    (void)h_add_location_at("near", 0, 100000, 0, "store");
    struct placed p = place1("W-1", "tee", 3);
    cr_assert_eq(units_at(&p, "tee", "far"), 3);
}

Test(engine_route, no_active_location_for_the_channel_is_no_route)
{
    (void)h_add_location_at("shop", 0, 100000, 0, "store");
    loc("wh", 900000, 0);
    h_receive("tee", "shop", 10);
    h_receive("tee", "wh", 10);
    trastenda_cmd d = h_cmd(TRASTENDA_OP_LOCATION_DEACTIVATE);
    d.loc = h_ref("shop");
    H_OK(&d);
    trastenda_line ln = h_line("tee", NULL, 1);
    struct placed p = place_on("S-1", &ln, 1, "store");
    cr_assert_eq(p.r.code, TRASTENDA_E_NO_ROUTE, "%s", p.r.message);
    cr_assert(strstr(p.r.message, "channel") != NULL, "%s", p.r.message);
    cr_assert_eq(h_stock("tee", "wh").committed, 0);
}

Test(engine_route, a_serving_location_without_stock_is_short_not_no_route)
{
    (void)h_add_location_at("shop", 0, 100000, 0, "store");
    loc("wh", 900000, 0);
    h_receive("tee", "wh", 10);
    trastenda_line ln = h_line("tee", NULL, 1);
    struct placed p = place_on("S-1", &ln, 1, "store");
    cr_assert_eq(p.r.code, TRASTENDA_E_SHORT, "%s", p.r.message);
    cr_assert_eq(p.a[0].short_qty, 1);
}

Test(engine_route, a_reserve_without_route_is_refused_too)
{
    (void)h_add_location_at("shop", 0, 100000, 0, "store");
    h_receive("tee", "shop", 10);
    trastenda_cmd d = h_cmd(TRASTENDA_OP_LOCATION_DEACTIVATE);
    d.loc = h_ref("shop");
    H_OK(&d);
    trastenda_line ln = h_line("tee", NULL, 1);
    trastenda_cmd c = h_cmd_reserve(&ln, 1, 60000);
    c.channel = h_s("store");
    c.has_ship_to = 1;
    H_FAIL(&c, TRASTENDA_E_NO_ROUTE);
    cr_assert_eq(h_stock("tee", "shop").held, 0);
}

/* ---- shortages ---- */

Test(engine_route, short_total_stock_reports_the_shortage_per_sku)
{
    loc("a", 100000, 0);
    loc("b", 200000, 0);
    h_receive("tee", "a", 3);
    h_receive("tee", "b", 4);
    h_receive("cap", "b", 9);
    trastenda_line ln[3] = {h_line("cap", NULL, 2), h_line("tee", NULL, 6), h_line("tee", NULL, 4)};
    struct placed p = place_on("W-1", ln, 3, "web");
    cr_assert_eq(p.r.code, TRASTENDA_E_SHORT, "%s", p.r.message);
    cr_assert_eq(p.n, 2, "one entry per SKU");
    cr_assert_eq(p.a[0].sku_ix, h_sku_ix("cap"));
    cr_assert_eq(p.a[0].qty, 2);
    cr_assert_eq(p.a[0].short_qty, 0);
    cr_assert_eq(p.a[0].loc_ix, TRASTENDA_IX_NONE);
    cr_assert_eq(p.a[1].sku_ix, h_sku_ix("tee"));
    cr_assert_eq(p.a[1].qty, 10);
    cr_assert_eq(p.a[1].short_qty, 3);
    cr_assert(strstr(p.r.message, "tee") != NULL, "%s", p.r.message);
    cr_assert_eq(h_stock("tee", "a").committed, 0);
    cr_assert_eq(h_stock("cap", "b").committed, 0);
}

Test(engine_route, a_sku_without_any_record_is_short_by_all_of_it)
{
    loc("a", 100000, 0);
    h_receive("tee", "a", 3);
    trastenda_line ln = h_line("cap", NULL, 2);
    struct placed p = place_on("W-1", &ln, 1, "web");
    cr_assert_eq(p.r.code, TRASTENDA_E_SHORT, "%s", p.r.message);
    cr_assert_eq(p.a[0].short_qty, 2);
}

/* ---- determinism ---- */

/* Builds the same network with locations created in the given order; places W-1 (tee 9, cap 4)
 * and returns its placements as (sku id, location id, qty) text, sorted by construction. */
static void
network(const int *order, char *out, size_t out_len)
{
    static const char *ids[] = {"n", "e", "s", "w", "c"};
    static const int32_t lon[] = {300000, 600000, 300000, 900000, 450000};
    static const int32_t lat[] = {200000, 0, -200000, 0, 0};
    for (int i = 0; i < 5; i++) {
        int k = order[i];
        (void)h_add_location_at(ids[k], lat[k], lon[k], 0, "web");
    }
    static const int64_t tee[] = {3, 4, 3, 6, 2};
    static const int64_t cap[] = {2, 0, 2, 3, 1};
    for (int i = 0; i < 5; i++) {
        if (tee[i]) h_receive("tee", ids[i], tee[i]);
        if (cap[i]) h_receive("cap", ids[i], cap[i]);
    }
    trastenda_line ln[2] = {h_line("tee", NULL, 9), h_line("cap", NULL, 4)};
    struct placed p = place_on("W-1", ln, 2, "web");
    cr_assert_eq(p.r.code, TRASTENDA_OK, "%s", p.r.message);
    size_t used = 0;
    used += (size_t)snprintf(out + used, out_len - used, "rule %u:", p.r.rule);
    for (uint32_t i = 0; i < p.n; i++) {
        trastenda_str s = trastenda_engine_sku_id(H.e, p.a[i].sku_ix);
        trastenda_str l = trastenda_engine_location_id(H.e, p.a[i].loc_ix);
        used += (size_t)snprintf(out + used, out_len - used, " %.*s@%.*s=%lld", (int)s.len, s.ptr,
                                 (int)l.len, l.ptr, (long long)p.a[i].qty);
        cr_assert_lt(used, out_len);
    }
}

Test(engine_route, the_same_inputs_give_the_same_allocations_whatever_the_slot_order)
{
    static const int orders[3][5] = {{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {2, 4, 0, 3, 1}};
    char first[512], other[512];
    network(orders[0], first, sizeof(first));
    for (int k = 1; k < 3; k++) {
        h_teardown();
        setup();
        network(orders[k], other, sizeof(other));
        cr_assert_str_eq(other, first, "creation order %d changed the routing", k);
    }
}

Test(engine_route, routing_the_same_order_again_gives_the_same_allocations)
{
    loc("a", 100000, 0);
    loc("b", 200000, 3);
    loc("c", 200000, 1);
    h_receive("tee", "a", 3);
    h_receive("tee", "b", 3);
    h_receive("tee", "c", 3);
    h_receive("cap", "b", 2);
    trastenda_line ln[2] = {h_line("tee", NULL, 5), h_line("cap", NULL, 1)};
    struct placed first = place_on("W-1", ln, 2, "web");
    cr_assert_eq(first.r.code, TRASTENDA_OK, "%s", first.r.message);
    trastenda_cmd c = h_cmd_order_step(TRASTENDA_OP_ORDER_CANCEL, "W-1", NULL);
    H_OK(&c);
    struct placed again = place_on("W-2", ln, 2, "web");
    cr_assert_eq(again.r.code, TRASTENDA_OK, "%s", again.r.message);
    cr_assert_eq(again.r.rule, first.r.rule);
    cr_assert_eq(again.n, first.n);
    for (uint32_t i = 0; i < first.n; i++) {
        cr_assert_eq(again.a[i].sku_ix, first.a[i].sku_ix);
        cr_assert_eq(again.a[i].loc_ix, first.a[i].loc_ix);
        cr_assert_eq(again.a[i].qty, first.a[i].qty);
    }
}

/* ---- limits ---- */

/* n SKUs "k0".."k(n-1)", one unit of each at each of the locations given. */
static void
spread(uint32_t n, const char *const *locs, uint32_t n_locs, char (*ids)[8])
{
    for (uint32_t i = 0; i < n; i++) {
        snprintf(ids[i], 8, "k%u", i);
        trastenda_cmd c = h_cmd_sku(ids[i], 0, 0, 0, 0);
        H_OK(&c);
        for (uint32_t l = 0; l < n_locs; l++)
            h_receive(ids[i], locs[l], 1);
    }
}

Test(engine_route, a_route_needing_more_than_the_allocation_limit_is_refused)
{
    h_teardown();
    trastenda_engine_config cfg;
    config(&cfg);
    cfg.skus_max = 64;
    h_setup_with(&cfg, 1);
    loc("a", 100000, 0);
    loc("b", 200000, 0);
    loc("c", 300000, 0);
    static const char *const locs[] = {"a", "b", "c"};
    static char ids[43][8];
    spread(43, locs, 3, ids);
    trastenda_line ln[43];
    for (uint32_t i = 0; i < 43; i++)
        ln[i] = h_line(ids[i], NULL, 3);
    /* 42 SKUs from 3 locations each: 126 allocations fit. */
    struct placed p = place_on("W-1", ln, 42, "web");
    cr_assert_eq(p.r.code, TRASTENDA_OK, "%s", p.r.message);
    cr_assert_eq(p.r.alloc_count, 126);
    trastenda_cmd c = h_cmd_order_step(TRASTENDA_OP_ORDER_CANCEL, "W-1", NULL);
    H_OK(&c);
    /* 43: 129 allocations. */
    p = place_on("W-2", ln, 43, "web");
    cr_assert_eq(p.r.code, TRASTENDA_E_LIMIT, "%s", p.r.message);
    cr_assert(strstr(p.r.message, "128") != NULL, "%s", p.r.message);
    cr_assert_eq(h_stock("k0", "a").committed, 0);
    trastenda_order_view v;
    cr_assert_eq(trastenda_engine_order_get(H.e, h_s("W-2"), &v), TRASTENDA_E_UNKNOWN_ORDER);
}
