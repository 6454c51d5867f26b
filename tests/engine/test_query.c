/*
 * tests/engine/test_query.c - engine/query.c and the read side of stock.c: stock reads,
 * availability, the low-stock index and its pages, reorder suggestions, hold/order/PO views and
 * statistics.
 */
#include "helpers.h"

/* Locations "madrid" (web) and "lugo" (store); SKU "tee" with reorder point 5. */
static void
setup(void)
{
    h_setup();
    h_add_location_at("madrid", 0, 0, 0, "web");
    h_add_location_at("lugo", 1000000, 0, 0, "store");
    h_add_sku("tee", 5);
}

TestSuite(engine_query, .init = setup, .fini = h_teardown);

static trastenda_result
ship_all(const char *order_id)
{
    trastenda_cmd c = h_cmd_order_step(TRASTENDA_OP_ORDER_SHIP, order_id, NULL);
    return H_OK(&c);
}

/* ---- stock_read ---- */

Test(engine_query, stock_read_shows_every_figure_and_the_derived_available)
{
    h_receive("tee", "madrid", 20);
    h_hold("tee", "madrid", 3);
    h_place("o-1", "tee", 2, "web");
    trastenda_cmd m = h_cmd_stock(TRASTENDA_OP_MOVE_UNSELLABLE, "tee", "madrid", 1);
    m.reason = TRASTENDA_REASON_QUALITY;
    H_OK(&m);
    trastenda_cmd s = h_cmd_stock(TRASTENDA_OP_SET_SAFETY, "tee", "madrid", 4);
    H_OK(&s);
    trastenda_line ln = h_line("tee", "madrid", 7);
    trastenda_cmd po = h_cmd_po(TRASTENDA_OP_PO_CREATE, "po-1", &ln, 1);
    H_OK(&po);
    h_receive("tee", "lugo", 5);
    trastenda_cmd t = h_cmd_transfer_out("tee", "lugo", "madrid", 5);
    H_OK(&t);

    trastenda_stock v = h_stock("tee", "madrid");
    cr_assert_eq(v.sku_ix, h_sku_ix("tee"));
    cr_assert_eq(v.loc_ix, h_loc_ix("madrid"));
    cr_assert_eq(v.on_hand, 20);
    cr_assert_eq(v.held, 3);
    cr_assert_eq(v.committed, 2);
    cr_assert_eq(v.unsellable, 1);
    cr_assert_eq(v.safety_stock, 4);
    cr_assert_eq(v.incoming, 7);
    cr_assert_eq(v.in_transit, 5);
    cr_assert_eq(v.available, 20 - 3 - 2 - 1 - 4);
}

/* ---- availability ---- */

Test(engine_query, stock_and_sku_prefetch_change_nothing_and_skip_ids_that_are_not_skus)
{
    h_receive("tee", "madrid", 20);
    uint64_t before = trastenda_engine_digest(H.e);
    /* more than one round of 32, with unknown, empty, too long and NULL ids among them */
    trastenda_str ids[70];
    static const char long_id[] =
        "an-id-longer-than-sixty-four-bytes-is-no-sku-and-must-be-skipped-"
        "by-the-prefetch";
    for (int i = 0; i < 70; i++)
        ids[i] = i % 5 == 0   ? (trastenda_str){"tee", 3}
                 : i % 5 == 1 ? (trastenda_str){"nope", 4}
                 : i % 5 == 2 ? (trastenda_str){"", 0}
                 : i % 5 == 3 ? (trastenda_str){long_id, sizeof(long_id) - 1}
                              : (trastenda_str){NULL, 3};
    trastenda_engine_stock_prefetch(H.e, ids, 70);
    trastenda_engine_stock_prefetch(H.e, ids, 0);
    trastenda_engine_stock_prefetch(NULL, ids, 70);
    trastenda_engine_sku_prefetch(H.e, ids, 70);
    trastenda_engine_sku_prefetch(H.e, ids, 0);
    trastenda_engine_sku_prefetch(NULL, ids, 70);
    cr_assert_eq(trastenda_engine_digest(H.e), before);
    uint32_t ix = UINT32_MAX;
    cr_assert_eq(trastenda_engine_sku_lookup(H.e, ids[0], &ix), TRASTENDA_OK);
    cr_assert_eq(ix, h_sku_ix("tee"));
    cr_assert_eq(h_stock("tee", "madrid").available, 20);
}

static int64_t
availability(trastenda_scope scope, const char *channel, trastenda_stock *recs, uint32_t max,
             uint32_t *n)
{
    int64_t a = -1;
    trastenda_err err =
        trastenda_engine_availability(H.e, h_sku_ix("tee"), scope, h_s(channel), &a, recs, max, n);
    cr_assert_eq(err, TRASTENDA_OK, "availability: %s", trastenda_err_name(err));
    return a;
}

Test(engine_query, availability_sums_all_or_one_channel)
{
    h_receive("tee", "madrid", 10);
    h_receive("tee", "lugo", 4);
    trastenda_stock recs[4];
    uint32_t n = 0;
    cr_assert_eq(availability(TRASTENDA_SCOPE_ALL, NULL, recs, 4, &n), 14);
    cr_assert_eq(n, 2);
    cr_assert_eq(availability(TRASTENDA_SCOPE_CHANNEL, "web", recs, 4, &n), 10);
    cr_assert_eq(n, 1);
    cr_assert_eq(recs[0].loc_ix, h_loc_ix("madrid"));
    cr_assert_eq(availability(TRASTENDA_SCOPE_CHANNEL, "store", recs, 4, &n), 4);
    cr_assert_eq(recs[0].loc_ix, h_loc_ix("lugo"));
}

Test(engine_query, availability_sums_records_beyond_rec_max_without_listing_them)
{
    h_receive("tee", "madrid", 10);
    h_receive("tee", "lugo", 4);
    trastenda_stock recs[1];
    uint32_t n = 9;
    cr_assert_eq(availability(TRASTENDA_SCOPE_ALL, NULL, recs, 1, &n), 14);
    cr_assert_eq(n, 1);
    cr_assert_eq(availability(TRASTENDA_SCOPE_ALL, NULL, NULL, 0, NULL), 14);
}

Test(engine_query, availability_excludes_inactive_locations)
{
    h_receive("tee", "madrid", 10);
    h_receive("tee", "lugo", 4);
    trastenda_cmd d = h_cmd(TRASTENDA_OP_LOCATION_DEACTIVATE);
    d.loc = h_ref("lugo");
    H_OK(&d);
    trastenda_stock recs[4];
    uint32_t n = 0;
    cr_assert_eq(availability(TRASTENDA_SCOPE_ALL, NULL, recs, 4, &n), 10);
    cr_assert_eq(n, 1);
    cr_assert_eq(availability(TRASTENDA_SCOPE_CHANNEL, "store", recs, 4, &n), 0);
    cr_assert_eq(n, 0);
}

Test(engine_query, availability_counts_a_shortfall_as_zero)
{
    h_receive("tee", "madrid", 10);
    h_receive("tee", "lugo", 4);
    h_hold("tee", "madrid", 8);
    trastenda_cmd c = h_cmd_adjust("tee", "madrid", -9, TRASTENDA_REASON_DAMAGE);
    H_OK(&c);
    trastenda_stock recs[4];
    uint32_t n = 0;
    cr_assert_eq(availability(TRASTENDA_SCOPE_ALL, NULL, recs, 4, &n), 4);
    cr_assert_eq(n, 2, "the short record is still listed");
    int64_t listed_madrid = 0;
    for (uint32_t i = 0; i < n; i++)
        if (recs[i].loc_ix == h_loc_ix("madrid")) listed_madrid = recs[i].available;
    cr_assert_eq(listed_madrid, -7);
}

Test(engine_query, availability_rejects_unknown_sku_or_channel)
{
    int64_t a;
    cr_assert_eq(
        trastenda_engine_availability(H.e, 99, TRASTENDA_SCOPE_ALL, h_s(NULL), &a, NULL, 0, NULL),
        TRASTENDA_E_UNKNOWN_SKU);
    cr_assert_eq(trastenda_engine_availability(H.e, h_sku_ix("tee"), TRASTENDA_SCOPE_CHANNEL,
                                               h_s("fax"), &a, NULL, 0, NULL),
                 TRASTENDA_E_INVALID);
}

Test(engine_query, availability_of_a_sku_without_records_is_zero)
{
    cr_assert_eq(availability(TRASTENDA_SCOPE_ALL, NULL, NULL, 0, NULL), 0);
}

/* Every location's records a page at a time: by location index, each once, the sum whole. */
Test(engine_query, availability_pages_list_each_record_once_by_location_and_sum_them_all)
{
    const char *more[] = {"l2", "l3", "l4", "l5", "l6", "l7"};
    for (int i = 0; i < 6; i++)
        h_add_location_at(more[i], 0, 0, 0, i % 2 == 0 ? "web" : "store");
    /* Received out of index order: the SKU's own record order is not the pages' order. */
    const char *order[] = {"l7", "lugo", "l4", "madrid", "l2", "l6", "l3", "l5"};
    int64_t total = 0, web = 0;
    for (int i = 0; i < 8; i++) {
        h_receive("tee", order[i], 10 + i);
        total += 10 + i;
        uint32_t ix = h_loc_ix(order[i]);
        if (ix == h_loc_ix("madrid") || (ix >= h_loc_ix("l2") && (ix - h_loc_ix("l2")) % 2 == 0))
            web += 10 + i;
    }
    for (int scoped = 0; scoped < 2; scoped++) {
        trastenda_scope scope = scoped ? TRASTENDA_SCOPE_CHANNEL : TRASTENDA_SCOPE_ALL;
        uint32_t seen = 0, next = 0, pages = 0;
        int64_t last = -1;
        do {
            trastenda_stock recs[3];
            int64_t avail = -1;
            uint32_t n = 99, from = next;
            cr_assert_eq(trastenda_engine_availability_page(H.e, h_sku_ix("tee"), scope,
                                                            h_s(scoped ? "web" : ""), from, &avail,
                                                            recs, 3, &n, &next),
                         TRASTENDA_OK);
            cr_assert_eq(avail, scoped ? web : total, "every page sums every location");
            cr_assert_leq(n, 3);
            cr_assert(next == 0 || (n == 3 && next == recs[2].loc_ix + 1),
                      "next follows a full page");
            for (uint32_t i = 0; i < n; i++) {
                cr_assert_gt((int64_t)recs[i].loc_ix, last, "by location index, each once");
                cr_assert_geq(recs[i].loc_ix, from);
                last = recs[i].loc_ix;
            }
            seen += n;
            cr_assert_lt(pages++, 8);
        } while (next != 0);
        cr_assert_eq(seen, scoped ? 4u : 8u, "every record in scope listed");
    }
    /* The unpaged read tells how many records the scope has beyond those it lists. */
    trastenda_stock first[3];
    int64_t sum = 0;
    uint32_t listed = 0, in_scope = 0;
    cr_assert_eq(trastenda_engine_availability_all(H.e, h_sku_ix("tee"), TRASTENDA_SCOPE_ALL,
                                                   h_s(""), &sum, first, 3, &listed, &in_scope),
                 TRASTENDA_OK);
    cr_assert(sum == total && listed == 3 && in_scope == 8, "%u listed of %u", listed, in_scope);
    /* Past the last location: an empty page, the sum still whole. */
    trastenda_stock recs[3];
    int64_t avail = 0;
    uint32_t n = 9, next = 9;
    cr_assert_eq(trastenda_engine_availability_page(H.e, h_sku_ix("tee"), TRASTENDA_SCOPE_ALL,
                                                    h_s(""), 100, &avail, recs, 3, &n, &next),
                 TRASTENDA_OK);
    cr_assert(n == 0 && next == 0 && avail == total);
}

/* ---- the low-stock list ---- */

/* Reads the whole low-stock list in pages of limit; asserts cursors move forward. */
static uint32_t
low_all(uint32_t limit, trastenda_stock *out, uint32_t max)
{
    uint32_t total = 0, pages = 0;
    uint64_t cursor = 0;
    trastenda_stock page[TRASTENDA_PAGE_MAX];
    cr_assert_leq(limit, TRASTENDA_PAGE_MAX);
    do {
        uint32_t n = UINT32_MAX;
        uint64_t next = UINT64_MAX;
        trastenda_err err = trastenda_engine_low_stock(H.e, cursor, limit, page, &n, &next);
        cr_assert_eq(err, TRASTENDA_OK, "low_stock: %s", trastenda_err_name(err));
        cr_assert_leq(n, limit);
        if (next != 0) {
            cr_assert_eq(n, limit, "a page with a next cursor is full");
            cr_assert_gt(next, cursor);
        }
        cr_assert_leq(total + n, max);
        memcpy(out + total, page, n * sizeof(page[0]));
        total += n;
        cursor = next;
        cr_assert_lt(pages++, 1000);
    } while (cursor != 0);
    return total;
}

/* Records with available <= their SKU's reorder point, by brute force over every pair. */
static uint32_t
low_expected(const int64_t *reorder_point, uint32_t skus, uint32_t locs, trastenda_stock *out)
{
    uint32_t n = 0;
    for (uint32_t s = 0; s < skus; s++)
        for (uint32_t l = 0; l < locs; l++) {
            trastenda_stock v;
            if (trastenda_engine_stock_read(H.e, s, l, &v) != TRASTENDA_OK) continue;
            if (v.available <= reorder_point[s]) out[n++] = v;
        }
    return n;
}

/* Asserts got (any order, no duplicates) is exactly want. */
static void
same_records(const trastenda_stock *got, uint32_t n_got, const trastenda_stock *want,
             uint32_t n_want)
{
    cr_assert_eq(n_got, n_want, "low list has %u records, expected %u", n_got, n_want);
    for (uint32_t i = 0; i < n_got; i++) {
        uint32_t hits = 0;
        for (uint32_t j = 0; j < n_got; j++)
            hits += got[j].sku_ix == got[i].sku_ix && got[j].loc_ix == got[i].loc_ix;
        cr_assert_eq(hits, 1, "record (%u, %u) listed %u times", got[i].sku_ix, got[i].loc_ix,
                     hits);
        uint32_t found = 0;
        for (uint32_t j = 0; j < n_want && !found; j++)
            found = want[j].sku_ix == got[i].sku_ix && want[j].loc_ix == got[i].loc_ix &&
                    want[j].available == got[i].available;
        cr_assert(found, "record (%u, %u) listed but not low", got[i].sku_ix, got[i].loc_ix);
    }
}

Test(engine_query, low_stock_follows_every_change)
{
    trastenda_stock got[8];
    h_receive("tee", "madrid", 10);
    cr_assert_eq(low_all(10, got, 8), 0);
    uint64_t h = h_hold("tee", "madrid", 5);
    cr_assert_eq(low_all(10, got, 8), 1, "a hold took it to the reorder point");
    cr_assert_eq(got[0].available, 5);
    trastenda_cmd rel = h_cmd_hold(TRASTENDA_OP_RELEASE, h);
    H_OK(&rel);
    cr_assert_eq(low_all(10, got, 8), 0);
    trastenda_cmd c = h_cmd_adjust("tee", "madrid", -6, TRASTENDA_REASON_THEFT);
    H_OK(&c);
    cr_assert_eq(low_all(10, got, 8), 1);
    h_receive("tee", "madrid", 3);
    cr_assert_eq(low_all(10, got, 8), 0, "7 is above the reorder point");
    /* A record created empty (a transfer destination) is low from the start. */
    trastenda_cmd t = h_cmd_transfer_out("tee", "madrid", "lugo", 1);
    H_OK(&t);
    cr_assert_eq(low_all(10, got, 8), 1);
    cr_assert_eq(got[0].loc_ix, h_loc_ix("lugo"));
}

static void
setup_many(void)
{
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    cfg.skus_max = 16;
    cfg.locations_max = 8;
    cfg.stock_max = 128;
    cfg.keys_max = 16;
    h_setup_with(&cfg, 1);
}

/* A small deterministic generator (xorshift). */
static uint32_t
rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (uint32_t)(*s >> 11);
}

Test(engine_query, low_stock_pages_walk_every_record_once, .init = setup_many)
{
    char id[16];
    int64_t rp[16];
    for (int l = 0; l < 8; l++) {
        snprintf(id, sizeof(id), "loc-%d", l);
        h_add_location(id);
    }
    for (int s = 0; s < 16; s++) {
        snprintf(id, sizeof(id), "sku-%d", s);
        rp[s] = 5;
        h_add_sku(id, rp[s]);
    }
    /* 128 records, most low (available 0..9 against a reorder point of 5). */
    for (uint32_t s = 0; s < 16; s++)
        for (uint32_t l = 0; l < 8; l++) {
            trastenda_cmd c = h_cmd(TRASTENDA_OP_SET_SAFETY);
            c.sku = h_ref_ix(s);
            c.loc = h_ref_ix(l);
            c.qty = 0;
            H_OK(&c);
            int64_t q = (s * 7 + l * 3) % 10;
            if (q == 0) continue;
            c.op = TRASTENDA_OP_RECEIVE;
            c.qty = q;
            H_OK(&c);
        }
    static trastenda_stock want[128], got[128];
    uint32_t n_want = low_expected(rp, 16, 8, want);
    cr_assert_gt(n_want, 50, "more low records than any page");
    uint32_t limits[] = {1, 7, 50, 64, 1000};
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        uint32_t n_got = low_all(limits[i], got, 128);
        same_records(got, n_got, want, n_want);
    }
}

Test(engine_query, low_stock_matches_brute_force_after_random_changes, .init = setup_many)
{
    char id[16];
    int64_t rp[4] = {3, 5, 0, 20};
    for (int l = 0; l < 4; l++) {
        snprintf(id, sizeof(id), "loc-%d", l);
        h_add_location(id);
    }
    for (int s = 0; s < 4; s++) {
        snprintf(id, sizeof(id), "sku-%d", s);
        h_add_sku(id, rp[s]);
    }
    uint64_t seed = 0x5eed1234abcdull;
    static trastenda_stock want[16], got[16];
    for (int step = 0; step < 600; step++) {
        uint32_t s = rnd(&seed) % 4, l = rnd(&seed) % 4;
        trastenda_cmd c = h_cmd(TRASTENDA_OP_RECEIVE);
        c.sku = h_ref_ix(s);
        c.loc = h_ref_ix(l);
        c.qty = 1 + rnd(&seed) % 8;
        trastenda_line ln = {h_ref_ix(s), h_ref_ix(l), 1 + rnd(&seed) % 4, 0};
        switch (rnd(&seed) % 5) {
        case 0:
            break;
        case 1:
            c.op = TRASTENDA_OP_ADJUST;
            c.reason = TRASTENDA_REASON_DAMAGE;
            c.qty = -c.qty;
            break;
        case 2:
            c.op = TRASTENDA_OP_SET_SAFETY;
            c.qty %= 4;
            break;
        case 3:
            c = h_cmd_reserve(&ln, 1, 1000);
            break;
        case 4: {
            int64_t new_rp = rnd(&seed) % 10;
            snprintf(id, sizeof(id), "sku-%u", s);
            c = h_cmd_sku(id, new_rp, 0, 0, 0);
            rp[s] = new_rp;
            break;
        }
        }
        /* Failures (short, below zero) are part of the mix; holds expire as time moves. */
        (void)h_apply_at(H.now + 100, &c);
        trastenda_engine_check(H.e);
        uint32_t n_want = low_expected(rp, 4, 4, want);
        uint32_t n_got = low_all(1 + step % 5, got, 16);
        same_records(got, n_got, want, n_want);
    }
}

Test(engine_query, low_stock_rejects_bad_pages)
{
    trastenda_stock page[2];
    uint32_t n;
    uint64_t next;
    h_receive("tee", "madrid", 1);
    cr_assert_eq(trastenda_engine_low_stock(H.e, 0, 0, page, &n, &next), TRASTENDA_E_INVALID);
    cr_assert_eq(trastenda_engine_low_stock(H.e, 0, TRASTENDA_PAGE_MAX + 1, page, &n, &next),
                 TRASTENDA_E_INVALID);
    cr_assert_eq(trastenda_engine_low_stock(H.e, 2, 1, page, &n, &next), TRASTENDA_E_INVALID,
                 "cursor beyond the table");
    cr_assert_eq(trastenda_engine_low_stock(H.e, 1, 1, page, &n, &next), TRASTENDA_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(next, 0);
}

/* ---- reorder suggestions ---- */

/* "tee" at madrid: reorder point 200, reorder qty rq, lead 3 days; review 7 (config). */
static void
reorder_setup(int64_t rq, int64_t receive, int64_t ship)
{
    trastenda_cmd c = h_cmd_sku("tee", 200, rq, 3, 0);
    H_OK(&c);
    h_receive("tee", "madrid", receive);
    if (ship > 0) {
        h_place("o-1", "tee", ship, "web");
        ship_all("o-1");
    }
}

static trastenda_reorder
reorder_one(int64_t now_ms)
{
    trastenda_reorder out[4];
    uint32_t n = 0;
    uint64_t next = 1;
    trastenda_err err = trastenda_engine_reorder(H.e, now_ms, 0, 4, out, &n, &next);
    cr_assert_eq(err, TRASTENDA_OK, "reorder: %s", trastenda_err_name(err));
    cr_assert_eq(n, 1);
    cr_assert_eq(next, 0);
    return out[0];
}

Test(engine_query, reorder_suggests_demand_over_lead_and_review_plus_safety_minus_what_is_coming)
{
    reorder_setup(10, 200, 140);
    trastenda_cmd s = h_cmd_stock(TRASTENDA_OP_SET_SAFETY, "tee", "madrid", 5);
    H_OK(&s);
    trastenda_line ln = h_line("tee", "madrid", 20);
    trastenda_cmd po = h_cmd_po(TRASTENDA_OP_PO_CREATE, "po-1", &ln, 1);
    H_OK(&po);
    trastenda_reorder r = reorder_one(H.now);
    cr_assert_eq(r.stock.available, 55);
    cr_assert_eq(r.stock.incoming, 20);
    cr_assert_eq(r.velocity_milli, 20000, "140 units over 7 days");
    /* 20/day x (3 + 7) days + 5 safety - (55 + 20) = 130 */
    cr_assert_eq(r.suggested_qty, 130);
    cr_assert_eq(r.cover_days_milli, 3750, "75 units at 20/day");
}

Test(engine_query, reorder_suggests_at_least_the_reorder_qty)
{
    reorder_setup(500, 200, 140);
    trastenda_reorder r = reorder_one(H.now);
    /* 200 - (60) = 140 < 500 */
    cr_assert_eq(r.suggested_qty, 500);
}

Test(engine_query, reorder_without_sales_suggests_the_reorder_qty_when_low)
{
    reorder_setup(30, 50, 0);
    trastenda_reorder r = reorder_one(H.now);
    cr_assert_eq(r.velocity_milli, 0);
    cr_assert_eq(r.cover_days_milli, -1);
    cr_assert_eq(r.suggested_qty, 30);
}

Test(engine_query, reorder_velocity_counts_only_the_last_seven_days)
{
    reorder_setup(1, 200, 7);
    h_advance(2 * H_DAY_MS);
    h_place("o-2", "tee", 14, "web");
    ship_all("o-2");
    cr_assert_eq(reorder_one(H.now).velocity_milli, 3000, "21 units over 7 days");
    cr_assert_eq(reorder_one(H.now + 4 * H_DAY_MS).velocity_milli, 3000, "day 6: both");
    cr_assert_eq(reorder_one(H.now + 5 * H_DAY_MS).velocity_milli, 2000, "day 7: first gone");
    cr_assert_eq(reorder_one(H.now + 7 * H_DAY_MS).velocity_milli, 0);
    /* The follower keeps the same velocity (it is part of the record's image). */
    trastenda_reorder lead = reorder_one(H.now);
    trastenda_reorder out[2];
    uint32_t n = 0;
    uint64_t next = 0;
    cr_assert_eq(trastenda_engine_reorder(H.follower, H.now, 0, 2, out, &n, &next), TRASTENDA_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(out[0].velocity_milli, lead.velocity_milli);
    cr_assert_eq(out[0].suggested_qty, lead.suggested_qty);
}

Test(engine_query, reorder_pages_like_low_stock)
{
    h_receive("tee", "madrid", 1);
    h_receive("tee", "lugo", 1);
    trastenda_reorder out[2];
    uint32_t n = 0;
    uint64_t next = 0;
    cr_assert_eq(trastenda_engine_reorder(H.e, H.now, 0, 1, out, &n, &next), TRASTENDA_OK);
    cr_assert_eq(n, 1);
    cr_assert_neq(next, 0);
    uint32_t first = out[0].stock.loc_ix;
    cr_assert_eq(trastenda_engine_reorder(H.e, H.now, next, 1, out, &n, &next), TRASTENDA_OK);
    cr_assert_eq(n, 1);
    cr_assert_neq(out[0].stock.loc_ix, first);
    cr_assert_eq(next, 0);
    cr_assert_eq(trastenda_engine_reorder(H.e, H.now, 0, 0, out, &n, &next), TRASTENDA_E_INVALID);
}

/* ---- views ---- */

Test(engine_query, hold_view_shows_lines_times_and_resolution)
{
    h_receive("tee", "madrid", 10);
    h_receive("tee", "lugo", 10);
    trastenda_line ln[] = {h_line("tee", "madrid", 2), h_line("tee", "lugo", 3)};
    trastenda_cmd c = h_cmd_reserve(ln, 2, 5000);
    trastenda_result r = H_OK(&c);
    trastenda_hold_view v;
    cr_assert_eq(trastenda_engine_hold_get(H.e, r.id, &v), TRASTENDA_OK);
    cr_assert_eq(v.id, r.id);
    cr_assert_eq(v.state, TRASTENDA_HOLD_OPEN);
    cr_assert_eq(v.created_ms, H.now);
    cr_assert_eq(v.expires_ms, H.now + 5000);
    cr_assert_eq(v.resolved_ms, 0);
    cr_assert_eq(v.line_count, 2);
    cr_assert_eq(v.lines[0].loc_ix, h_loc_ix("madrid"));
    cr_assert_eq(v.lines[0].qty, 2);
    cr_assert_eq(v.lines[1].loc_ix, h_loc_ix("lugo"));
    cr_assert_eq(v.lines[1].qty, 3);
    h_advance(10);
    trastenda_cmd rel = h_cmd_hold(TRASTENDA_OP_RELEASE, r.id);
    H_OK(&rel);
    cr_assert_eq(trastenda_engine_hold_get(H.e, r.id, &v), TRASTENDA_OK);
    cr_assert_eq(v.state, TRASTENDA_HOLD_RELEASED);
    cr_assert_eq(v.resolved_ms, H.now);
    cr_assert_eq(trastenda_engine_hold_get(H.e, r.id + 1, &v), TRASTENDA_E_UNKNOWN_HOLD);
}

Test(engine_query, order_view_shows_allocations_and_state)
{
    h_receive("tee", "madrid", 10);
    uint64_t no = h_place("o-1", "tee", 4, "web");
    trastenda_order_view v;
    cr_assert_eq(trastenda_engine_order_get(H.e, h_s("o-1"), &v), TRASTENDA_OK);
    cr_assert_str_eq(v.id, "o-1");
    cr_assert_eq(v.no, no);
    cr_assert_eq(v.state, TRASTENDA_ORDER_ALLOCATED);
    cr_assert_neq(v.rule, TRASTENDA_RULE_NONE);
    cr_assert_eq(v.created_ms, H.now);
    cr_assert_eq(v.alloc_count, 1);
    cr_assert_eq(v.allocs[0].loc_ix, h_loc_ix("madrid"));
    cr_assert_eq(v.allocs[0].qty, 4);
    cr_assert_eq(v.allocs[0].shipped, 0);
    h_advance(5);
    ship_all("o-1");
    cr_assert_eq(trastenda_engine_order_get(H.e, h_s("o-1"), &v), TRASTENDA_OK);
    cr_assert_eq(v.state, TRASTENDA_ORDER_SHIPPED);
    cr_assert_eq(v.updated_ms, H.now);
    cr_assert_eq(v.allocs[0].shipped, 4);
    cr_assert_eq(trastenda_engine_order_get(H.e, h_s("o-2"), &v), TRASTENDA_E_UNKNOWN_ORDER);
    cr_assert_eq(trastenda_engine_order_get(H.e, h_s(""), &v), TRASTENDA_E_INVALID);
}

Test(engine_query, po_view_shows_lines_and_receipts)
{
    trastenda_line ln = h_line("tee", "lugo", 9);
    trastenda_cmd c = h_cmd_po(TRASTENDA_OP_PO_CREATE, "po-1", &ln, 1);
    H_OK(&c);
    ln.qty = 4;
    c = h_cmd_po(TRASTENDA_OP_PO_RECEIVE, "po-1", &ln, 1);
    H_OK(&c);
    trastenda_po_view v;
    cr_assert_eq(trastenda_engine_po_get(H.e, h_s("po-1"), &v), TRASTENDA_OK);
    cr_assert_str_eq(v.id, "po-1");
    cr_assert_eq(v.open, 1);
    cr_assert_eq(v.line_count, 1);
    cr_assert_eq(v.lines[0].qty, 9);
    cr_assert_eq(v.lines[0].shipped, 4);
}

/* ---- stats ---- */

Test(engine_query, stats_count_each_table)
{
    h_receive("tee", "madrid", 10);
    h_hold("tee", "madrid", 1);
    uint64_t released = h_hold("tee", "madrid", 1);
    trastenda_cmd rel = h_cmd_hold(TRASTENDA_OP_RELEASE, released);
    H_OK(&rel);
    h_place("o-1", "tee", 2, "web");
    trastenda_line ln = h_line("tee", "lugo", 3);
    trastenda_cmd po = h_cmd_po(TRASTENDA_OP_PO_CREATE, "po-1", &ln, 1);
    po.key = h_s("k1");
    H_OK(&po);
    trastenda_engine_stats st;
    trastenda_engine_stats_get(H.e, &st);
    cr_assert_eq(st.locations, 2);
    cr_assert_eq(st.skus, 1);
    cr_assert_eq(st.stock, 2);
    cr_assert_eq(st.holds, 2, "resolved holds stay within retention");
    cr_assert_eq(st.holds_open, 1);
    cr_assert_eq(st.orders, 1);
    cr_assert_eq(st.pos, 1);
    cr_assert_eq(st.keys, 1);
    cr_assert_eq(st.lines, 4, "two hold lines, one allocation, one PO line");
    cr_assert_eq(st.seq, trastenda_engine_seq(H.e));
    cr_assert_eq(st.time_ms, H.now);
    cr_assert_eq(st.ledger_seq, h_ledger_one().seq);
    cr_assert_gt(st.memory_bytes, 0);
}
