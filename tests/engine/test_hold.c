/*
 * tests/engine/test_hold.c - engine/hold.c: holds (checkout reservations). Reserve with explicit
 * and routed lines, summing of lines, all-or-nothing and partial, validation, extend, release,
 * confirm into an order, expiry (bounded per batch, in heap order, exactly once) and retention.
 */
#include "helpers.h"

/* Madrid and Lugo serve "web"; SKUs "tee" and "cap" (reorder point 0). No stock yet. */
static void
setup(void)
{
    h_setup();
    h_add_location_at("madrid", 40416800, -3703800, 0, "web");
    h_add_location_at("lugo", 43009700, -7556000, 0, "web");
    h_add_sku("tee", 0);
    h_add_sku("cap", 0);
}

TestSuite(engine_hold, .init = setup, .fini = h_teardown);

#define TTL INT64_C(60000)

/* The last batch changed nothing: no ledger entry, no event, no stock, hold or order image. */
static void
expect_no_trace(void)
{
    cr_assert_eq(H.out.ledger_count, 0, "ledger entries: %u", H.out.ledger_count);
    cr_assert_eq(H.out.event_count, 0, "events: %u", H.out.event_count);
    cr_assert_eq(h_records(TRASTENDA_REC_STOCK), 0);
    cr_assert_eq(h_records(TRASTENDA_REC_HOLD), 0);
    cr_assert_eq(h_records(TRASTENDA_REC_ORDER), 0);
}

static trastenda_hold_view
hold_view(uint64_t id)
{
    static trastenda_hold_view v;
    memset(&v, 0, sizeof(v));
    trastenda_err err = trastenda_engine_hold_get(H.e, id, &v);
    cr_assert_eq(err, TRASTENDA_OK, "hold %llu: %s", (unsigned long long)id,
                 trastenda_err_name(err));
    return v;
}

static int
hold_known(uint64_t id)
{
    trastenda_hold_view v;
    return trastenda_engine_hold_get(H.e, id, &v) == TRASTENDA_OK;
}

/* A routed RESERVE (lines without location) on "web", shipping near Madrid. */
static trastenda_cmd
routed_reserve(const trastenda_line *lines, uint32_t n)
{
    trastenda_cmd c = h_cmd_reserve(lines, n, TTL);
    c.channel = h_s("web");
    c.has_ship_to = 1;
    c.lat_e6 = 40400000;
    c.lon_e6 = -3700000;
    return c;
}

static trastenda_cmd
confirm_cmd(uint64_t hold_id, const char *order_id)
{
    trastenda_cmd c = h_cmd_hold(TRASTENDA_OP_CONFIRM, hold_id);
    c.order_id = h_s(order_id);
    return c;
}

/* HOLD_EXPIRED events of the last batch, their hold ids in out (max). */
static uint32_t
expired_ids(uint64_t *out, uint32_t max)
{
    static trastenda_event ev[H_DECODE_MAX];
    uint32_t n = h_events(ev, H_DECODE_MAX), k = 0;
    for (uint32_t i = 0; i < n; i++)
        if (ev[i].kind == TRASTENDA_EVENT_HOLD_EXPIRED) {
            cr_assert_lt(k, max);
            out[k++] = ev[i].hold_id;
        }
    return k;
}

static uint32_t
ledger_moves(uint8_t move)
{
    static trastenda_ledger_entry le[H_DECODE_MAX];
    uint32_t n = h_ledger(le, H_DECODE_MAX), k = 0;
    for (uint32_t i = 0; i < n; i++)
        k += le[i].move == move;
    return k;
}

/* ---- reserve: explicit lines ---- */

Test(engine_hold, reserve_explicit_line_holds_units_and_returns_the_placement)
{
    h_receive("tee", "madrid", 10);
    trastenda_line ln = h_line("tee", "madrid", 3);
    trastenda_cmd c = h_cmd_reserve(&ln, 1, TTL);
    trastenda_result r = H_OK(&c);
    cr_assert_neq(r.id, 0);
    cr_assert_eq(r.value, H.now + TTL, "value is the expiry");
    cr_assert_eq(r.state, TRASTENDA_HOLD_OPEN);
    cr_assert_eq(r.rule, TRASTENDA_RULE_EXPLICIT);
    cr_assert_eq(r.alloc_count, 1);
    cr_assert_eq(r.allocs[0].sku_ix, h_sku_ix("tee"));
    cr_assert_eq(r.allocs[0].loc_ix, h_loc_ix("madrid"));
    cr_assert_eq(r.allocs[0].qty, 3);
    cr_assert_eq(r.allocs[0].short_qty, 0);
    trastenda_stock s = h_stock("tee", "madrid");
    cr_assert_eq(s.held, 3);
    cr_assert_eq(s.on_hand, 10);
    cr_assert_eq(s.available, 7);
    trastenda_ledger_entry le = h_ledger_one();
    cr_assert_eq(le.move, TRASTENDA_MOVE_RESERVE);
    cr_assert_eq(le.delta[TRASTENDA_Q_HELD], 3);
    cr_assert_eq(le.delta[TRASTENDA_Q_ON_HAND], 0);
    cr_assert_eq(le.ref_kind, TRASTENDA_REFK_HOLD);
    cr_assert_eq(le.ref_id, r.id);
    trastenda_hold_view v = hold_view(r.id);
    cr_assert_eq(v.state, TRASTENDA_HOLD_OPEN);
    cr_assert_eq(v.created_ms, H.now);
    cr_assert_eq(v.expires_ms, H.now + TTL);
    cr_assert_eq(v.resolved_ms, 0);
    cr_assert_eq(v.line_count, 1);
    cr_assert_eq(v.lines[0].qty, 3);
}

Test(engine_hold, reserve_ids_increase)
{
    h_receive("tee", "madrid", 10);
    uint64_t a = h_hold("tee", "madrid", 1);
    uint64_t b = h_hold("tee", "madrid", 1);
    cr_assert_eq(b, a + 1);
}

Test(engine_hold, reserve_lines_at_two_locations_make_two_placements)
{
    h_receive("tee", "madrid", 5);
    h_receive("cap", "lugo", 5);
    trastenda_line ln[2] = {h_line("tee", "madrid", 2), h_line("cap", "lugo", 4)};
    trastenda_cmd c = h_cmd_reserve(ln, 2, TTL);
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.alloc_count, 2);
    cr_assert_eq(h_stock("tee", "madrid").held, 2);
    cr_assert_eq(h_stock("cap", "lugo").held, 4);
    cr_assert_eq(hold_view(r.id).line_count, 2);
    cr_assert_eq(H.out.ledger_count, 2);
}

Test(engine_hold, reserve_lines_of_the_same_record_become_one_placement)
{
    h_receive("tee", "madrid", 5);
    trastenda_line ln[2] = {h_line("tee", "madrid", 2), h_line("tee", "madrid", 3)};
    trastenda_cmd c = h_cmd_reserve(ln, 2, TTL);
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.alloc_count, 1);
    cr_assert_eq(r.allocs[0].qty, 5);
    cr_assert_eq(h_stock("tee", "madrid").held, 5);
    cr_assert_eq(h_stock("tee", "madrid").available, 0);
}

Test(engine_hold, reserve_lines_of_the_same_sku_are_summed_before_the_check)
{
    h_receive("tee", "madrid", 1);
    trastenda_line ln[2] = {h_line("tee", "madrid", 1), h_line("tee", "madrid", 1)};
    trastenda_cmd c = h_cmd_reserve(ln, 2, TTL);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_SHORT);
    cr_assert_eq(r.alloc_count, 1, "one summed line");
    cr_assert_eq(r.allocs[0].sku_ix, h_sku_ix("tee"));
    cr_assert_eq(r.allocs[0].loc_ix, h_loc_ix("madrid"));
    cr_assert_eq(r.allocs[0].qty, 2);
    cr_assert_eq(r.allocs[0].short_qty, 1);
    cr_assert(strstr(r.message, "tee") != NULL, "%s", r.message);
    cr_assert_eq(h_stock("tee", "madrid").held, 0);
    expect_no_trace();
}

Test(engine_hold, reserve_at_a_location_without_a_record_is_short)
{
    h_receive("tee", "madrid", 5);
    trastenda_line ln = h_line("tee", "lugo", 1);
    trastenda_cmd c = h_cmd_reserve(&ln, 1, TTL);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_SHORT);
    cr_assert_eq(r.alloc_count, 1);
    cr_assert_eq(r.allocs[0].short_qty, 1);
    cr_assert_not(h_stock_exists("tee", "lugo"), "no record created");
}

Test(engine_hold, reserve_is_all_or_nothing_and_reports_the_shortage_per_line)
{
    h_receive("tee", "madrid", 5);
    h_receive("cap", "madrid", 3);
    trastenda_line ln[2] = {h_line("tee", "madrid", 2), h_line("cap", "madrid", 5)};
    trastenda_cmd c = h_cmd_reserve(ln, 2, TTL);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_SHORT);
    cr_assert_eq(r.alloc_count, 2);
    cr_assert_eq(r.allocs[0].sku_ix, h_sku_ix("tee"));
    cr_assert_eq(r.allocs[0].qty, 2);
    cr_assert_eq(r.allocs[0].short_qty, 0);
    cr_assert_eq(r.allocs[1].sku_ix, h_sku_ix("cap"));
    cr_assert_eq(r.allocs[1].qty, 5);
    cr_assert_eq(r.allocs[1].short_qty, 2);
    cr_assert(strstr(r.message, "cap") != NULL, "%s", r.message);
    cr_assert_eq(h_stock("tee", "madrid").held, 0, "the line that fitted is not held either");
    cr_assert_eq(h_stock("cap", "madrid").held, 0);
    expect_no_trace();
}

Test(engine_hold, reserve_partial_takes_what_is_available_per_line)
{
    h_receive("tee", "madrid", 5);
    h_receive("cap", "madrid", 3);
    trastenda_line ln[2] = {h_line("tee", "madrid", 2), h_line("cap", "madrid", 5)};
    trastenda_cmd c = h_cmd_reserve(ln, 2, TTL);
    c.partial = 1;
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.alloc_count, 2);
    cr_assert_eq(r.allocs[0].qty, 2);
    cr_assert_eq(r.allocs[1].qty, 3);
    cr_assert_eq(h_stock("tee", "madrid").held, 2);
    cr_assert_eq(h_stock("cap", "madrid").held, 3);
    cr_assert_eq(h_stock("cap", "madrid").available, 0);
}

Test(engine_hold, reserve_partial_drops_lines_with_nothing_available)
{
    h_receive("tee", "madrid", 5);
    trastenda_line ln[2] = {h_line("cap", "madrid", 2), h_line("tee", "madrid", 1)};
    trastenda_cmd c = h_cmd_reserve(ln, 2, TTL);
    c.partial = 1;
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.alloc_count, 1);
    cr_assert_eq(r.allocs[0].sku_ix, h_sku_ix("tee"));
    cr_assert_eq(hold_view(r.id).line_count, 1);
}

Test(engine_hold, reserve_partial_with_nothing_available_is_short)
{
    h_receive("tee", "madrid", 1);
    (void)h_hold("tee", "madrid", 1);
    trastenda_line ln = h_line("tee", "madrid", 3);
    trastenda_cmd c = h_cmd_reserve(&ln, 1, TTL);
    c.partial = 1;
    H_FAIL(&c, TRASTENDA_E_SHORT);
    cr_assert_eq(h_stock("tee", "madrid").held, 1);
    expect_no_trace();
}

Test(engine_hold, reserve_keeps_the_safety_stock_back)
{
    h_receive("tee", "madrid", 10);
    trastenda_cmd s = h_cmd_stock(TRASTENDA_OP_SET_SAFETY, "tee", "madrid", 4);
    H_OK(&s);
    trastenda_line ln = h_line("tee", "madrid", 7);
    trastenda_cmd c = h_cmd_reserve(&ln, 1, TTL);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_SHORT);
    cr_assert_eq(r.allocs[0].short_qty, 1);
    ln.qty = 6;
    H_OK(&c);
    cr_assert_eq(h_stock("tee", "madrid").available, 0);
}

Test(engine_hold, reserve_on_a_record_in_shortfall_is_refused)
{
    h_receive("tee", "madrid", 5);
    (void)h_hold("tee", "madrid", 5);
    trastenda_cmd a = h_cmd_adjust("tee", "madrid", -2, TRASTENDA_REASON_DAMAGE);
    H_OK(&a);
    cr_assert_lt(h_stock("tee", "madrid").available, 0, "the record is in shortfall");
    trastenda_line ln = h_line("tee", "madrid", 1);
    trastenda_cmd c = h_cmd_reserve(&ln, 1, TTL);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_SHORTFALL);
    cr_assert(strstr(r.message, "shortfall") != NULL, "%s", r.message);
    c.partial = 1;
    H_FAIL(&c, TRASTENDA_E_SHORT); /* partial: nothing sellable there */
    cr_assert_eq(h_stock("tee", "madrid").held, 5);
}

/* ---- reserve: routed lines ---- */

Test(engine_hold, reserve_routed_places_at_the_nearest_location)
{
    h_receive("tee", "madrid", 5);
    h_receive("tee", "lugo", 5);
    trastenda_line ln = h_line("tee", NULL, 2);
    trastenda_cmd c = routed_reserve(&ln, 1);
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.rule, TRASTENDA_RULE_SINGLE);
    cr_assert_eq(r.alloc_count, 1);
    cr_assert_eq(r.allocs[0].loc_ix, h_loc_ix("madrid"));
    cr_assert_eq(h_stock("tee", "madrid").held, 2);
    cr_assert_eq(h_stock("tee", "lugo").held, 0);
    trastenda_hold_view v = hold_view(r.id);
    cr_assert_eq(v.lines[0].loc_ix, h_loc_ix("madrid"));
}

Test(engine_hold, reserve_routed_without_channel_is_invalid_naming_channel)
{
    h_receive("tee", "madrid", 5);
    trastenda_line ln = h_line("tee", NULL, 1);
    trastenda_cmd c = routed_reserve(&ln, 1);
    c.channel = h_s(NULL);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "channel") != NULL, "%s", r.message);
    expect_no_trace();
}

Test(engine_hold, reserve_routed_without_ship_to_is_invalid_naming_ship_to)
{
    h_receive("tee", "madrid", 5);
    trastenda_line ln = h_line("tee", NULL, 1);
    trastenda_cmd c = routed_reserve(&ln, 1);
    c.has_ship_to = 0;
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "ship_to") != NULL, "%s", r.message);
    expect_no_trace();
}

Test(engine_hold, reserve_routed_with_ship_to_out_of_range_is_invalid)
{
    h_receive("tee", "madrid", 5);
    trastenda_line ln = h_line("tee", NULL, 1);
    trastenda_cmd c = routed_reserve(&ln, 1);
    c.lat_e6 = 90000001;
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "lat_e6") != NULL, "%s", r.message);
    c.lat_e6 = 0;
    c.lon_e6 = -180000001;
    r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "lon_e6") != NULL, "%s", r.message);
}

Test(engine_hold, reserve_routed_with_an_unknown_channel_is_invalid)
{
    h_receive("tee", "madrid", 5);
    trastenda_line ln = h_line("tee", NULL, 1);
    trastenda_cmd c = routed_reserve(&ln, 1);
    c.channel = h_s("marketplace");
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "marketplace") != NULL, "%s", r.message);
}

Test(engine_hold, reserve_explicit_lines_need_no_channel_nor_ship_to)
{
    h_receive("tee", "madrid", 5);
    trastenda_line ln = h_line("tee", "madrid", 1);
    trastenda_cmd c = h_cmd_reserve(&ln, 1, TTL);
    cr_assert_eq(c.has_ship_to, 0);
    cr_assert_eq(c.channel.len, 0);
    H_OK(&c);
}

Test(engine_hold, reserve_routed_lines_of_the_same_sku_are_summed_before_the_check)
{
    h_receive("tee", "madrid", 1);
    trastenda_line ln[2] = {h_line("tee", NULL, 1), h_line("tee", NULL, 1)};
    trastenda_cmd c = routed_reserve(ln, 2);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_SHORT);
    cr_assert_eq(r.alloc_count, 1);
    cr_assert_eq(r.allocs[0].sku_ix, h_sku_ix("tee"));
    cr_assert_eq(r.allocs[0].loc_ix, TRASTENDA_IX_NONE);
    cr_assert_eq(r.allocs[0].qty, 2);
    cr_assert_eq(r.allocs[0].short_qty, 1);
    expect_no_trace();
}

Test(engine_hold, reserve_routed_counts_units_taken_by_explicit_lines_of_the_same_command)
{
    h_receive("tee", "madrid", 3);
    trastenda_line ln[2] = {h_line("tee", "madrid", 2), h_line("tee", NULL, 2)};
    trastenda_cmd c = routed_reserve(ln, 2);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_SHORT);
    cr_assert_eq(r.allocs[0].short_qty, 1, "only 1 left after the explicit line");
    h_receive("tee", "lugo", 1);
    r = H_OK(&c);
    cr_assert_eq(h_stock("tee", "madrid").held, 3);
    cr_assert_eq(h_stock("tee", "lugo").held, 1);
    cr_assert_eq(r.alloc_count, 2, "one placement per record");
}

Test(engine_hold, reserve_routed_partial_takes_what_all_locations_have)
{
    h_receive("tee", "madrid", 2);
    h_receive("tee", "lugo", 1);
    trastenda_line ln = h_line("tee", NULL, 5);
    trastenda_cmd c = routed_reserve(&ln, 1);
    c.partial = 1;
    trastenda_result r = H_OK(&c);
    int64_t total = 0;
    for (uint32_t i = 0; i < r.alloc_count; i++)
        total += r.allocs[i].qty;
    cr_assert_eq(total, 3);
    cr_assert_eq(h_stock("tee", "madrid").available, 0);
    cr_assert_eq(h_stock("tee", "lugo").available, 0);
}

Test(engine_hold, reserve_routed_partial_with_nothing_anywhere_is_short)
{
    trastenda_line ln = h_line("tee", NULL, 5);
    trastenda_cmd c = routed_reserve(&ln, 1);
    c.partial = 1;
    H_FAIL(&c, TRASTENDA_E_SHORT);
    expect_no_trace();
}

/* ---- reserve: bad input ---- */

Test(engine_hold, reserve_inactive_sku_is_refused_naming_the_line)
{
    h_receive("tee", "madrid", 5);
    h_receive("cap", "madrid", 5);
    trastenda_cmd d = h_cmd(TRASTENDA_OP_SKU_DEACTIVATE);
    d.sku = h_ref("cap");
    H_OK(&d);
    trastenda_line ln[2] = {h_line("tee", "madrid", 1), h_line("cap", "madrid", 1)};
    trastenda_cmd c = h_cmd_reserve(ln, 2, TTL);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_INACTIVE);
    cr_assert_eq(r.line, 1);
    cr_assert(strstr(r.message, "cap") != NULL, "%s", r.message);
    expect_no_trace();
}

Test(engine_hold, reserve_at_an_inactive_location_is_refused)
{
    h_receive("tee", "lugo", 5);
    trastenda_cmd d = h_cmd(TRASTENDA_OP_LOCATION_DEACTIVATE);
    d.loc = h_ref("lugo");
    H_OK(&d);
    trastenda_line ln = h_line("tee", "lugo", 1);
    trastenda_cmd c = h_cmd_reserve(&ln, 1, TTL);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_INACTIVE);
    cr_assert_eq(r.line, 0);
    cr_assert(strstr(r.message, "lugo") != NULL, "%s", r.message);
    cr_assert_eq(h_stock("tee", "lugo").held, 0);
}

Test(engine_hold, reserve_routed_skips_inactive_locations)
{
    h_receive("tee", "madrid", 5);
    h_receive("tee", "lugo", 5);
    trastenda_cmd d = h_cmd(TRASTENDA_OP_LOCATION_DEACTIVATE);
    d.loc = h_ref("madrid");
    H_OK(&d);
    trastenda_line ln = h_line("tee", NULL, 2);
    trastenda_cmd c = routed_reserve(&ln, 1);
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.allocs[0].loc_ix, h_loc_ix("lugo"));
}

Test(engine_hold, reserve_unknown_sku_or_location_is_refused_naming_the_line)
{
    h_receive("tee", "madrid", 5);
    trastenda_line ln[2] = {h_line("tee", "madrid", 1), h_line("hat", "madrid", 1)};
    trastenda_cmd c = h_cmd_reserve(ln, 2, TTL);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_UNKNOWN_SKU);
    cr_assert_eq(r.line, 1);
    cr_assert(strstr(r.message, "hat") != NULL, "%s", r.message);
    ln[1] = h_line("tee", "vigo", 1);
    r = H_FAIL(&c, TRASTENDA_E_UNKNOWN_LOCATION);
    cr_assert_eq(r.line, 1);
    cr_assert(strstr(r.message, "vigo") != NULL, "%s", r.message);
    ln[1] = h_line("tee", "madrid", 1);
    ln[1].loc = h_ref_ix(77);
    r = H_FAIL(&c, TRASTENDA_E_UNKNOWN_LOCATION);
    cr_assert_eq(r.line, 1);
    expect_no_trace();
}

Test(engine_hold, reserve_zero_negative_or_huge_qty_is_invalid)
{
    h_receive("tee", "madrid", 5);
    int64_t bad[] = {0, -1, INT64_MIN, TRASTENDA_LINE_QTY_MAX + 1ll, INT64_MAX};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        trastenda_line ln[2] = {h_line("tee", "madrid", 1), h_line("tee", "madrid", bad[i])};
        trastenda_cmd c = h_cmd_reserve(ln, 2, TTL);
        trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
        cr_assert_eq(r.line, 1);
        cr_assert(strstr(r.message, "qty") != NULL, "%s", r.message);
    }
    cr_assert_eq(h_stock("tee", "madrid").held, 0);
}

Test(engine_hold, reserve_line_qty_max_is_accepted)
{
    h_receive("tee", "madrid", TRASTENDA_LINE_QTY_MAX);
    uint64_t id = h_hold("tee", "madrid", TRASTENDA_LINE_QTY_MAX);
    cr_assert_eq(hold_view(id).lines[0].qty, TRASTENDA_LINE_QTY_MAX);
}

Test(engine_hold, reserve_with_no_lines_or_too_many_is_a_limit)
{
    h_receive("tee", "madrid", 1000);
    trastenda_line ln[TRASTENDA_LINES_MAX + 1];
    for (uint32_t i = 0; i < TRASTENDA_LINES_MAX + 1; i++)
        ln[i] = h_line("tee", "madrid", 1);
    trastenda_cmd c = h_cmd_reserve(ln, 0, TTL);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_LIMIT);
    cr_assert(strstr(r.message, "lines") != NULL, "%s", r.message);
    c.line_count = TRASTENDA_LINES_MAX + 1;
    H_FAIL(&c, TRASTENDA_E_LIMIT);
    expect_no_trace();
    c.line_count = TRASTENDA_LINES_MAX;
    r = H_OK(&c);
    cr_assert_eq(h_stock("tee", "madrid").held, TRASTENDA_LINES_MAX);
}

Test(engine_hold, reserve_with_null_lines_is_invalid)
{
    trastenda_cmd c = h_cmd_reserve(NULL, 1, TTL);
    H_FAIL(&c, TRASTENDA_E_INVALID);
}

Test(engine_hold, reserve_ttl_must_be_within_bounds)
{
    h_receive("tee", "madrid", 10);
    trastenda_line ln = h_line("tee", "madrid", 1);
    int64_t bad[] = {0, -1, TRASTENDA_TTL_MS_MIN - 1, TRASTENDA_TTL_MS_MAX + 1ll};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        trastenda_cmd c = h_cmd_reserve(&ln, 1, bad[i]);
        trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
        cr_assert(strstr(r.message, "ttl_ms") != NULL, "%s", r.message);
    }
    expect_no_trace();
    trastenda_cmd c = h_cmd_reserve(&ln, 1, TRASTENDA_TTL_MS_MIN);
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.value, H.now + TRASTENDA_TTL_MS_MIN);
    c.ttl_ms = TRASTENDA_TTL_MS_MAX;
    r = H_OK(&c);
    cr_assert_eq(r.value, H.now + TRASTENDA_TTL_MS_MAX);
}

Test(engine_hold, reserve_with_a_key_replays_its_first_result)
{
    h_receive("tee", "madrid", 10);
    trastenda_line ln = h_line("tee", "madrid", 2);
    trastenda_cmd c = h_cmd_reserve(&ln, 1, TTL);
    c.key = h_s("checkout-1");
    trastenda_result first = H_OK(&c);
    trastenda_result again = H_OK(&c);
    cr_assert_eq(again.duplicate, 1);
    cr_assert_eq(again.id, first.id);
    cr_assert_eq(again.alloc_count, 1);
    cr_assert_eq(h_stock("tee", "madrid").held, 2, "held once");
    cr_assert_eq(H.out.ledger_count, 0);
    ln.qty = 3;
    H_FAIL(&c, TRASTENDA_E_IDEMPOTENCY_MISMATCH);
    cr_assert_eq(h_stock("tee", "madrid").held, 2);
}

/* ---- extend ---- */

Test(engine_hold, extend_moves_the_expiry_from_now)
{
    h_receive("tee", "madrid", 10);
    uint64_t id = h_hold("tee", "madrid", 1);
    h_advance(10000);
    trastenda_cmd c = h_cmd_hold(TRASTENDA_OP_EXTEND, id);
    c.ttl_ms = 120000;
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.value, H.now + 120000);
    cr_assert_eq(r.id, id);
    cr_assert_eq(r.state, TRASTENDA_HOLD_OPEN);
    cr_assert_eq(hold_view(id).expires_ms, H.now + 120000);
    cr_assert_eq(h_records(TRASTENDA_REC_HOLD), 1, "the new expiry is logged");
    cr_assert_eq(H.out.ledger_count, 0, "no quantity changed");
}

Test(engine_hold, extend_reorders_the_expiry_heap)
{
    h_receive("tee", "madrid", 10);
    trastenda_line ln = h_line("tee", "madrid", 1);
    trastenda_cmd ca = h_cmd_reserve(&ln, 1, 10000);
    uint64_t a = H_OK(&ca).id;
    trastenda_cmd cb = h_cmd_reserve(&ln, 1, 20000);
    uint64_t b = H_OK(&cb).id;
    int64_t t0 = H.now;
    /* a moves behind b: expires at t0 + 35 s. */
    h_advance(5000);
    trastenda_cmd e = h_cmd_hold(TRASTENDA_OP_EXTEND, a);
    e.ttl_ms = 30000;
    H_OK(&e);
    uint64_t ids[4];
    h_apply_at(t0 + 10000, &(trastenda_cmd){.op = TRASTENDA_OP_NOOP});
    cr_assert_eq(expired_ids(ids, 4), 0, "a no longer expires at its first time");
    h_apply_at(t0 + 20000, &(trastenda_cmd){.op = TRASTENDA_OP_NOOP});
    cr_assert_eq(expired_ids(ids, 4), 1);
    cr_assert_eq(ids[0], b);
    h_apply_at(t0 + 34999, &(trastenda_cmd){.op = TRASTENDA_OP_NOOP});
    cr_assert_eq(expired_ids(ids, 4), 0);
    cr_assert_eq(hold_view(a).state, TRASTENDA_HOLD_OPEN);
    h_apply_at(t0 + 35000, &(trastenda_cmd){.op = TRASTENDA_OP_NOOP});
    cr_assert_eq(expired_ids(ids, 4), 1);
    cr_assert_eq(ids[0], a);
}

Test(engine_hold, extend_can_shorten_and_move_a_hold_ahead)
{
    h_receive("tee", "madrid", 10);
    trastenda_line ln = h_line("tee", "madrid", 1);
    trastenda_cmd ca = h_cmd_reserve(&ln, 1, 10000);
    uint64_t a = H_OK(&ca).id;
    trastenda_cmd cb = h_cmd_reserve(&ln, 1, 60000);
    uint64_t b = H_OK(&cb).id;
    int64_t t0 = H.now;
    trastenda_cmd e = h_cmd_hold(TRASTENDA_OP_EXTEND, b);
    e.ttl_ms = 2000;
    H_OK(&e);
    uint64_t ids[4];
    h_apply_at(t0 + 2000, &(trastenda_cmd){.op = TRASTENDA_OP_NOOP});
    cr_assert_eq(expired_ids(ids, 4), 1);
    cr_assert_eq(ids[0], b);
    cr_assert_eq(hold_view(a).state, TRASTENDA_HOLD_OPEN);
}

Test(engine_hold, extend_with_a_bad_ttl_or_of_an_unknown_or_released_hold_is_refused)
{
    h_receive("tee", "madrid", 10);
    uint64_t id = h_hold("tee", "madrid", 1);
    trastenda_cmd c = h_cmd_hold(TRASTENDA_OP_EXTEND, id);
    c.ttl_ms = TRASTENDA_TTL_MS_MIN - 1;
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "ttl_ms") != NULL, "%s", r.message);
    c.ttl_ms = TRASTENDA_TTL_MS_MAX + 1ll;
    H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert_eq(hold_view(id).expires_ms, H_T0 + TTL, "unchanged");
    c.ttl_ms = TTL;
    c.hold_id = id + 100;
    H_FAIL(&c, TRASTENDA_E_UNKNOWN_HOLD);
    c.hold_id = 0;
    H_FAIL(&c, TRASTENDA_E_UNKNOWN_HOLD);
    trastenda_cmd rel = h_cmd_hold(TRASTENDA_OP_RELEASE, id);
    H_OK(&rel);
    c.hold_id = id;
    r = H_FAIL(&c, TRASTENDA_E_STATE);
    cr_assert_eq(r.state, TRASTENDA_HOLD_RELEASED);
}

Test(engine_hold, extend_of_an_expired_hold_is_refused)
{
    h_receive("tee", "madrid", 10);
    uint64_t id = h_hold("tee", "madrid", 1);
    h_advance(TTL);
    cr_assert_eq(hold_view(id).state, TRASTENDA_HOLD_EXPIRED);
    trastenda_cmd c = h_cmd_hold(TRASTENDA_OP_EXTEND, id);
    c.ttl_ms = TTL;
    H_FAIL(&c, TRASTENDA_E_HOLD_EXPIRED);
    cr_assert_eq(hold_view(id).state, TRASTENDA_HOLD_EXPIRED);
}

/* ---- release ---- */

Test(engine_hold, release_gives_the_units_back)
{
    h_receive("tee", "madrid", 10);
    h_receive("cap", "lugo", 10);
    trastenda_line ln[2] = {h_line("tee", "madrid", 3), h_line("cap", "lugo", 4)};
    trastenda_cmd rc = h_cmd_reserve(ln, 2, TTL);
    uint64_t id = H_OK(&rc).id;
    h_advance(1000);
    trastenda_cmd c = h_cmd_hold(TRASTENDA_OP_RELEASE, id);
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.id, id);
    cr_assert_eq(r.state, TRASTENDA_HOLD_RELEASED);
    cr_assert_eq(h_stock("tee", "madrid").held, 0);
    cr_assert_eq(h_stock("tee", "madrid").available, 10);
    cr_assert_eq(h_stock("cap", "lugo").held, 0);
    trastenda_ledger_entry le[4];
    cr_assert_eq(h_ledger(le, 4), 2);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(le[i].move, TRASTENDA_MOVE_RELEASE);
        cr_assert_eq(le[i].ref_kind, TRASTENDA_REFK_HOLD);
        cr_assert_eq(le[i].ref_id, id);
        cr_assert_lt(le[i].delta[TRASTENDA_Q_HELD], 0);
    }
    trastenda_hold_view v = hold_view(id);
    cr_assert_eq(v.state, TRASTENDA_HOLD_RELEASED);
    cr_assert_eq(v.resolved_ms, H.now);
}

Test(engine_hold, release_twice_or_unknown_is_refused)
{
    h_receive("tee", "madrid", 10);
    uint64_t id = h_hold("tee", "madrid", 3);
    trastenda_cmd c = h_cmd_hold(TRASTENDA_OP_RELEASE, id);
    H_OK(&c);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_STATE);
    cr_assert(strstr(r.message, "released") != NULL, "%s", r.message);
    expect_no_trace();
    cr_assert_eq(h_stock("tee", "madrid").available, 10, "units given back once");
    c.hold_id = id + 1;
    H_FAIL(&c, TRASTENDA_E_UNKNOWN_HOLD);
}

/* ---- confirm ---- */

Test(engine_hold, confirm_moves_held_to_committed_in_a_new_order)
{
    h_receive("tee", "madrid", 10);
    h_receive("cap", "lugo", 10);
    trastenda_line ln[2] = {h_line("tee", "madrid", 3), h_line("cap", "lugo", 4)};
    trastenda_cmd rc = h_cmd_reserve(ln, 2, TTL);
    uint64_t id = H_OK(&rc).id;
    trastenda_cmd c = confirm_cmd(id, "W-1");
    trastenda_result r = H_OK(&c);
    cr_assert_neq(r.id, 0, "order number");
    cr_assert_eq(r.state, TRASTENDA_ORDER_ALLOCATED);
    cr_assert_eq(r.duplicate, 0);
    cr_assert_eq(r.alloc_count, 2);
    trastenda_stock s = h_stock("tee", "madrid");
    cr_assert_eq(s.held, 0);
    cr_assert_eq(s.committed, 3);
    cr_assert_eq(s.available, 7, "available does not move");
    cr_assert_eq(h_stock("cap", "lugo").committed, 4);
    trastenda_ledger_entry le[4];
    cr_assert_eq(h_ledger(le, 4), 2);
    cr_assert_eq(le[0].move, TRASTENDA_MOVE_CONFIRM);
    cr_assert_eq(le[0].delta[TRASTENDA_Q_HELD], -3);
    cr_assert_eq(le[0].delta[TRASTENDA_Q_COMMITTED], 3);
    cr_assert_eq(le[0].ref_kind, TRASTENDA_REFK_ORDER);
    cr_assert_eq(le[0].ref_id, r.id);
    cr_assert(h_str_eq(le[0].ref, "W-1"));
    trastenda_event ev;
    cr_assert_eq(h_event_find(TRASTENDA_EVENT_ORDER_STATE, NULL, NULL, &ev), 1);
    cr_assert(h_str_eq(ev.order_id, "W-1"));
    cr_assert_eq(ev.state, TRASTENDA_ORDER_ALLOCATED);
    trastenda_order_view o;
    cr_assert_eq(trastenda_engine_order_get(H.e, h_s("W-1"), &o), TRASTENDA_OK);
    cr_assert_eq(o.no, r.id);
    cr_assert_eq(o.state, TRASTENDA_ORDER_ALLOCATED);
    cr_assert_eq(o.rule, TRASTENDA_RULE_EXPLICIT);
    cr_assert_eq(o.alloc_count, 2);
    cr_assert_eq(o.allocs[0].qty + o.allocs[1].qty, 7);
    for (uint32_t i = 0; i < 2; i++)
        cr_assert_eq(o.allocs[i].state, TRASTENDA_ORDER_ALLOCATED);
    trastenda_hold_view v = hold_view(id);
    cr_assert_eq(v.state, TRASTENDA_HOLD_CONFIRMED);
    cr_assert_eq(v.order_no, r.id);
    cr_assert_eq(v.resolved_ms, H.now);
}

Test(engine_hold, confirmed_order_ships_like_a_placed_one)
{
    h_receive("tee", "madrid", 10);
    uint64_t id = h_hold("tee", "madrid", 3);
    trastenda_cmd c = confirm_cmd(id, "W-1");
    H_OK(&c);
    trastenda_cmd s = h_cmd_order_step(TRASTENDA_OP_ORDER_SHIP, "W-1", NULL);
    H_OK(&s);
    trastenda_stock st = h_stock("tee", "madrid");
    cr_assert_eq(st.on_hand, 7);
    cr_assert_eq(st.committed, 0);
}

Test(engine_hold, confirm_of_an_expired_hold_is_refused)
{
    h_receive("tee", "madrid", 10);
    uint64_t id = h_hold("tee", "madrid", 3);
    h_advance(TTL);
    trastenda_cmd c = confirm_cmd(id, "W-1");
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_HOLD_EXPIRED);
    cr_assert_eq(r.state, TRASTENDA_HOLD_EXPIRED);
    expect_no_trace();
    trastenda_order_view o;
    cr_assert_eq(trastenda_engine_order_get(H.e, h_s("W-1"), &o), TRASTENDA_E_UNKNOWN_ORDER);
    cr_assert_eq(h_stock("tee", "madrid").committed, 0);
}

Test(engine_hold, confirm_of_a_released_hold_is_a_state_error)
{
    h_receive("tee", "madrid", 10);
    uint64_t id = h_hold("tee", "madrid", 3);
    trastenda_cmd rel = h_cmd_hold(TRASTENDA_OP_RELEASE, id);
    H_OK(&rel);
    trastenda_cmd c = confirm_cmd(id, "W-1");
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_STATE);
    cr_assert_eq(r.state, TRASTENDA_HOLD_RELEASED);
    expect_no_trace();
    trastenda_order_view o;
    cr_assert_eq(trastenda_engine_order_get(H.e, h_s("W-1"), &o), TRASTENDA_E_UNKNOWN_ORDER);
}

Test(engine_hold, confirm_of_an_unknown_hold_is_refused)
{
    trastenda_cmd c = confirm_cmd(42, "W-1");
    H_FAIL(&c, TRASTENDA_E_UNKNOWN_HOLD);
    trastenda_order_view o;
    cr_assert_eq(trastenda_engine_order_get(H.e, h_s("W-1"), &o), TRASTENDA_E_UNKNOWN_ORDER);
}

Test(engine_hold, confirm_again_with_the_same_order_and_hold_is_a_duplicate)
{
    h_receive("tee", "madrid", 10);
    uint64_t id = h_hold("tee", "madrid", 3);
    trastenda_cmd c = confirm_cmd(id, "W-1");
    trastenda_result first = H_OK(&c);
    trastenda_result again = H_OK(&c);
    cr_assert_eq(again.duplicate, 1);
    cr_assert_eq(again.id, first.id);
    cr_assert_eq(again.state, TRASTENDA_ORDER_ALLOCATED);
    cr_assert_eq(again.alloc_count, 1);
    cr_assert_eq(again.allocs[0].qty, 3);
    expect_no_trace();
    cr_assert_eq(h_stock("tee", "madrid").committed, 3);
}

Test(engine_hold, confirm_with_an_order_id_taken_by_another_hold_is_a_duplicate_id)
{
    h_receive("tee", "madrid", 10);
    uint64_t a = h_hold("tee", "madrid", 3);
    uint64_t b = h_hold("tee", "madrid", 2);
    trastenda_cmd c = confirm_cmd(a, "W-1");
    H_OK(&c);
    c = confirm_cmd(b, "W-1");
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_DUPLICATE);
    cr_assert(strstr(r.message, "W-1") != NULL, "%s", r.message);
    expect_no_trace();
    cr_assert_eq(hold_view(b).state, TRASTENDA_HOLD_OPEN, "the other hold stays open");
    cr_assert_eq(h_stock("tee", "madrid").held, 2);
}

Test(engine_hold, confirm_with_the_id_of_a_placed_order_is_a_duplicate_id)
{
    h_receive("tee", "madrid", 10);
    (void)h_place("P-1", "tee", 1, "web");
    uint64_t id = h_hold("tee", "madrid", 3);
    trastenda_cmd c = confirm_cmd(id, "P-1");
    H_FAIL(&c, TRASTENDA_E_DUPLICATE);
    cr_assert_eq(hold_view(id).state, TRASTENDA_HOLD_OPEN);
}

Test(engine_hold, confirm_needs_a_valid_order_id)
{
    h_receive("tee", "madrid", 10);
    uint64_t id = h_hold("tee", "madrid", 3);
    trastenda_cmd c = confirm_cmd(id, NULL);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "order_id") != NULL, "%s", r.message);
    c = confirm_cmd(id, "0123456789012345678901234567890123456789012345678901234567890123X");
    H_FAIL(&c, TRASTENDA_E_LIMIT);
    cr_assert_eq(hold_view(id).state, TRASTENDA_HOLD_OPEN);
}

Test(engine_hold, confirm_with_an_unknown_channel_is_invalid)
{
    h_receive("tee", "madrid", 10);
    uint64_t id = h_hold("tee", "madrid", 3);
    trastenda_cmd c = confirm_cmd(id, "W-1");
    c.channel = h_s("fax");
    H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert_eq(hold_view(id).state, TRASTENDA_HOLD_OPEN);
    c.channel = h_s("web");
    H_OK(&c);
    trastenda_order_view o;
    cr_assert_eq(trastenda_engine_order_get(H.e, h_s("W-1"), &o), TRASTENDA_OK);
    cr_assert_neq(o.channel, 0);
}

Test(engine_hold, confirm_keeps_the_routed_holds_channel_and_ship_to)
{
    h_receive("tee", "madrid", 10);
    trastenda_line ln = h_line("tee", NULL, 2);
    trastenda_cmd rc = routed_reserve(&ln, 1);
    uint64_t id = H_OK(&rc).id;
    trastenda_cmd c = confirm_cmd(id, "W-1");
    H_OK(&c);
    trastenda_order_view o;
    cr_assert_eq(trastenda_engine_order_get(H.e, h_s("W-1"), &o), TRASTENDA_OK);
    cr_assert_neq(o.channel, 0);
    cr_assert_eq(o.lat_e6, 40400000);
    cr_assert_eq(o.lon_e6, -3700000);
}

Test(engine_hold, confirm_when_the_orders_table_is_full_is_refused)
{
    h_teardown();
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    cfg.orders_max = 1;
    h_setup_with(&cfg, 1);
    h_add_location_at("madrid", 40416800, -3703800, 0, "web");
    h_add_sku("tee", 0);
    h_receive("tee", "madrid", 10);
    uint64_t a = h_hold("tee", "madrid", 1);
    uint64_t b = h_hold("tee", "madrid", 1);
    trastenda_cmd c = confirm_cmd(a, "W-1");
    H_OK(&c);
    c = confirm_cmd(b, "W-2");
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_TABLE_FULL);
    cr_assert(strstr(r.message, "orders_max") != NULL, "%s", r.message);
    cr_assert_eq(hold_view(b).state, TRASTENDA_HOLD_OPEN);
    cr_assert_eq(h_stock("tee", "madrid").held, 1);
}

/* ---- expiry ---- */

Test(engine_hold, expiry_gives_the_units_back_with_an_event)
{
    h_receive("tee", "madrid", 10);
    uint64_t id = h_hold("tee", "madrid", 4);
    int64_t t0 = H.now;
    h_advance(TTL - 1);
    cr_assert_eq(hold_view(id).state, TRASTENDA_HOLD_OPEN, "not yet due");
    cr_assert_eq(h_stock("tee", "madrid").held, 4);
    h_advance(1);
    uint64_t ids[4];
    cr_assert_eq(expired_ids(ids, 4), 1);
    cr_assert_eq(ids[0], id);
    trastenda_ledger_entry le = h_ledger_one();
    cr_assert_eq(le.move, TRASTENDA_MOVE_EXPIRE);
    cr_assert_eq(le.delta[TRASTENDA_Q_HELD], -4);
    cr_assert_eq(le.ref_kind, TRASTENDA_REFK_HOLD);
    cr_assert_eq(le.ref_id, id);
    trastenda_stock s = h_stock("tee", "madrid");
    cr_assert_eq(s.held, 0);
    cr_assert_eq(s.available, 10);
    trastenda_hold_view v = hold_view(id);
    cr_assert_eq(v.state, TRASTENDA_HOLD_EXPIRED);
    cr_assert_eq(v.resolved_ms, t0 + TTL);
}

Test(engine_hold, expiry_runs_before_the_commands_of_the_batch)
{
    h_receive("tee", "madrid", 4);
    (void)h_hold("tee", "madrid", 4);
    trastenda_line ln = h_line("tee", "madrid", 4);
    trastenda_cmd c = h_cmd_reserve(&ln, 1, TTL);
    trastenda_result r = h_apply_at(H.now + TTL, &c);
    cr_assert_eq(r.code, TRASTENDA_OK, "%s", r.message);
    cr_assert_eq(h_stock("tee", "madrid").held, 4);
}

Test(engine_hold, expiry_follows_the_expiry_order)
{
    h_receive("tee", "madrid", 100);
    int64_t ttls[] = {5000, 3000, 9000, 1000, 7000, 3000};
    uint64_t ids[6];
    trastenda_line ln = h_line("tee", "madrid", 1);
    for (int i = 0; i < 6; i++) {
        trastenda_cmd c = h_cmd_reserve(&ln, 1, ttls[i]);
        ids[i] = H_OK(&c).id;
    }
    int64_t t0 = H.now;
    uint32_t seen = 0;
    for (int64_t t = 1000; t <= 10000; t += 1000) {
        h_apply_at(t0 + t, &(trastenda_cmd){.op = TRASTENDA_OP_NOOP});
        uint64_t got[6];
        uint32_t n = expired_ids(got, 6);
        uint32_t want = 0;
        for (int i = 0; i < 6; i++)
            want += ttls[i] == t;
        cr_assert_eq(n, want, "at +%lld ms: %u expired, want %u", (long long)t, n, want);
        for (uint32_t k = 0; k < n; k++) {
            int found = 0;
            for (int i = 0; i < 6; i++)
                found |= got[k] == ids[i] && ttls[i] == t;
            cr_assert(found, "hold %llu expired at +%lld", (unsigned long long)got[k],
                      (long long)t);
        }
        if (n == 2) cr_assert_lt(got[0], got[1], "equal expiry: by id");
        seen += n;
    }
    cr_assert_eq(seen, 6);
    cr_assert_eq(h_stock("tee", "madrid").held, 0);
}

Test(engine_hold, expiry_is_bounded_per_batch)
{
    h_teardown();
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    cfg.expire_per_batch_max = 4;
    h_setup_with(&cfg, 1);
    h_add_location("madrid");
    h_add_sku("tee", 0);
    h_receive("tee", "madrid", 100);
    trastenda_line ln = h_line("tee", "madrid", 1);
    trastenda_cmd cmds[10];
    trastenda_result res[10];
    for (int i = 0; i < 10; i++)
        cmds[i] = h_cmd_reserve(&ln, 1, TTL);
    h_apply_batch_at(H.now, cmds, 10, res);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(res[i].code, TRASTENDA_OK);
    uint64_t first = res[0].id;
    h_advance(TTL);
    uint64_t got[10];
    cr_assert_eq(expired_ids(got, 10), 4);
    for (uint32_t k = 0; k < 4; k++)
        cr_assert_eq(got[k], first + k, "oldest ids first");
    cr_assert_eq(h_stock("tee", "madrid").held, 6);
    /* Due but not yet expired: it cannot be confirmed, extended or released any more. */
    trastenda_cmd c = confirm_cmd(first + 9, "W-1");
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_HOLD_EXPIRED);
    cr_assert_eq(H.out.event_count, 4, "the next 4 expired before the command ran");
    cr_assert_eq(r.state, TRASTENDA_HOLD_OPEN, "hold 10 is due, still open");
    c = h_cmd_hold(TRASTENDA_OP_RELEASE, first + 9);
    H_FAIL(&c, TRASTENDA_E_HOLD_EXPIRED);
    cr_assert_eq(expired_ids(got, 10), 2, "the last 2");
    cr_assert_eq(got[0], first + 8);
    cr_assert_eq(got[1], first + 9);
    h_advance(0);
    cr_assert_eq(expired_ids(got, 10), 0);
    cr_assert_eq(h_stock("tee", "madrid").held, 0);
}

Test(engine_hold, a_mass_expiry_spreads_over_batches)
{
    h_teardown();
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    cfg.holds_max = 64;
    cfg.expire_per_batch_max = 5;
    h_setup_with(&cfg, 1);
    h_add_location("madrid");
    h_add_sku("tee", 0);
    h_receive("tee", "madrid", 1000);
    trastenda_line ln = h_line("tee", "madrid", 1);
    trastenda_cmd cmds[48];
    trastenda_result res[48];
    for (int i = 0; i < 48; i++)
        cmds[i] = h_cmd_reserve(&ln, 1, TTL);
    h_apply_batch_at(H.now, cmds, 48, res);
    h_advance(TTL);
    uint32_t batches = 1, total = 0;
    uint64_t got[8];
    uint32_t n = expired_ids(got, 8);
    while (n > 0) {
        cr_assert_leq(n, 5);
        total += n;
        h_advance(1);
        n = expired_ids(got, 8);
        batches += n > 0;
    }
    cr_assert_eq(total, 48);
    cr_assert_eq(batches, 10, "48 holds at 5 per batch");
    cr_assert_eq(h_stock("tee", "madrid").held, 0);
}

Test(engine_hold, a_released_hold_does_not_expire_later)
{
    h_receive("tee", "madrid", 10);
    uint64_t id = h_hold("tee", "madrid", 4);
    h_advance(TTL / 2);
    trastenda_cmd c = h_cmd_hold(TRASTENDA_OP_RELEASE, id);
    H_OK(&c);
    h_advance(TTL / 2); /* its expiry time, within the retention window */
    uint64_t got[2];
    cr_assert_eq(expired_ids(got, 2), 0);
    cr_assert_eq(ledger_moves(TRASTENDA_MOVE_EXPIRE), 0);
    cr_assert_eq(hold_view(id).state, TRASTENDA_HOLD_RELEASED);
    cr_assert_eq(h_stock("tee", "madrid").available, 10);
}

Test(engine_hold, a_confirmed_hold_does_not_expire_later)
{
    h_receive("tee", "madrid", 10);
    uint64_t id = h_hold("tee", "madrid", 4);
    h_advance(TTL / 2);
    trastenda_cmd c = confirm_cmd(id, "W-1");
    H_OK(&c);
    h_advance(TTL / 2);
    uint64_t got[2];
    cr_assert_eq(expired_ids(got, 2), 0);
    cr_assert_eq(hold_view(id).state, TRASTENDA_HOLD_CONFIRMED);
    cr_assert_eq(h_stock("tee", "madrid").committed, 4);
    cr_assert_eq(h_stock("tee", "madrid").available, 6);
}

Test(engine_hold, an_expired_hold_resolves_once)
{
    h_receive("tee", "madrid", 10);
    uint64_t id = h_hold("tee", "madrid", 4);
    h_advance(TTL);
    cr_assert_eq(h_stock("tee", "madrid").available, 10);
    trastenda_cmd c = h_cmd_hold(TRASTENDA_OP_RELEASE, id);
    H_FAIL(&c, TRASTENDA_E_HOLD_EXPIRED);
    c = confirm_cmd(id, "W-1");
    H_FAIL(&c, TRASTENDA_E_HOLD_EXPIRED);
    h_advance(TTL);
    uint64_t got[2];
    cr_assert_eq(expired_ids(got, 2), 0, "no second expiry");
    cr_assert_eq(h_stock("tee", "madrid").available, 10, "units given back once");
    cr_assert_eq(h_stock("tee", "madrid").held, 0);
}

/* ---- retention ---- */

Test(engine_hold, a_resolved_hold_leaves_memory_after_the_retention_window)
{
    h_receive("tee", "madrid", 10);
    uint64_t id = h_hold("tee", "madrid", 4);
    trastenda_cmd c = h_cmd_hold(TRASTENDA_OP_RELEASE, id);
    H_OK(&c);
    h_advance(60000 - 1); /* h_config_small: hold_retention_ms = 60000 */
    cr_assert(hold_known(id));
    cr_assert_eq(h_records(TRASTENDA_REC_HOLD_REMOVED), 0);
    h_advance(1);
    cr_assert_eq(h_records(TRASTENDA_REC_HOLD_REMOVED), 1);
    cr_assert_not(hold_known(id));
    trastenda_engine_stats st;
    trastenda_engine_stats_get(H.e, &st);
    cr_assert_eq(st.holds, 0);
    cr_assert_eq(st.lines, 0);
    c = h_cmd_hold(TRASTENDA_OP_RELEASE, id);
    H_FAIL(&c, TRASTENDA_E_UNKNOWN_HOLD);
}

Test(engine_hold, an_expired_hold_is_retained_from_its_expiry)
{
    h_receive("tee", "madrid", 10);
    uint64_t id = h_hold("tee", "madrid", 4);
    h_advance(TTL);
    h_advance(60000 - 1);
    cr_assert(hold_known(id));
    h_advance(1);
    cr_assert_not(hold_known(id));
}

Test(engine_hold, an_open_hold_is_never_purged)
{
    h_receive("tee", "madrid", 10);
    trastenda_line ln = h_line("tee", "madrid", 1);
    trastenda_cmd c = h_cmd_reserve(&ln, 1, TRASTENDA_TTL_MS_MAX);
    uint64_t id = H_OK(&c).id;
    h_advance(10 * 60000);
    cr_assert(hold_known(id));
    cr_assert_eq(hold_view(id).state, TRASTENDA_HOLD_OPEN);
}

Test(engine_hold, a_confirmed_hold_leaves_memory_but_its_order_stays)
{
    h_receive("tee", "madrid", 10);
    uint64_t id = h_hold("tee", "madrid", 4);
    trastenda_cmd c = confirm_cmd(id, "W-1");
    trastenda_result first = H_OK(&c);
    h_advance(60000);
    cr_assert_eq(h_records(TRASTENDA_REC_HOLD_REMOVED), 1);
    cr_assert_not(hold_known(id));
    trastenda_order_view o;
    cr_assert_eq(trastenda_engine_order_get(H.e, h_s("W-1"), &o), TRASTENDA_OK);
    cr_assert_eq(o.alloc_count, 1);
    cr_assert_eq(h_stock("tee", "madrid").committed, 4);
    trastenda_result again = H_OK(&c);
    cr_assert_eq(again.duplicate, 1, "a retried confirm still finds its order");
    cr_assert_eq(again.id, first.id);
}

/* ---- full tables ---- */

Test(engine_hold, reserve_when_the_holds_table_is_full_is_refused)
{
    h_teardown();
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    cfg.holds_max = 2;
    h_setup_with(&cfg, 1);
    h_add_location("madrid");
    h_add_sku("tee", 0);
    h_receive("tee", "madrid", 10);
    uint64_t a = h_hold("tee", "madrid", 1);
    (void)h_hold("tee", "madrid", 1);
    trastenda_line ln = h_line("tee", "madrid", 1);
    trastenda_cmd c = h_cmd_reserve(&ln, 1, TTL);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_TABLE_FULL);
    cr_assert(strstr(r.message, "holds_max") != NULL, "%s", r.message);
    expect_no_trace();
    trastenda_cmd rel = h_cmd_hold(TRASTENDA_OP_RELEASE, a);
    H_OK(&rel);
    H_FAIL(&c, TRASTENDA_E_TABLE_FULL); /* a resolved hold stays for its retention window */
    h_advance(60000);                   /* a leaves memory; the other hold expired meanwhile */
    H_OK(&c);
    cr_assert_eq(h_stock("tee", "madrid").held, 1);
}

Test(engine_hold, reserve_when_the_lines_table_is_full_is_refused)
{
    h_teardown();
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    cfg.lines_max = 3;
    h_setup_with(&cfg, 1);
    h_add_location("madrid");
    h_add_location("lugo");
    h_add_sku("tee", 0);
    h_receive("tee", "madrid", 10);
    h_receive("tee", "lugo", 10);
    trastenda_line two[2] = {h_line("tee", "madrid", 1), h_line("tee", "lugo", 1)};
    trastenda_cmd c = h_cmd_reserve(two, 2, TTL);
    H_OK(&c);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_TABLE_FULL);
    cr_assert(strstr(r.message, "lines_max") != NULL, "%s", r.message);
    expect_no_trace();
    cr_assert_eq(h_stock("tee", "madrid").held, 1);
    c.line_count = 1;
    H_OK(&c); /* the third line fits */
    cr_assert_eq(h_stock("tee", "madrid").held, 2);
}

Test(engine_hold, a_hold_of_more_than_the_placement_limit_is_refused)
{
    h_teardown();
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    cfg.skus_max = 64;
    cfg.stock_max = 256;
    h_setup_with(&cfg, 1);
    h_add_location_at("a", 0, 100000, 0, "web");
    h_add_location_at("b", 0, 200000, 0, "web");
    h_add_location_at("c", 0, 300000, 0, "web");
    h_add_location_at("back", 0, 0, 0, NULL); /* serves no channel: explicit lines only */
    static char ids[42][8];
    static const char *const locs[] = {"a", "b", "c", "back"};
    for (uint32_t i = 0; i < 42; i++) {
        snprintf(ids[i], 8, "k%u", i);
        (void)h_add_sku(ids[i], 0);
        for (uint32_t l = 0; l < 4; l++)
            h_receive(ids[i], locs[l], 1);
    }
    /* 42 routed lines of 3 units take a, b and c each: 126 placements; then explicit lines at
     * "back", one placement each. */
    trastenda_line ln[TRASTENDA_LINES_MAX];
    for (uint32_t i = 0; i < 42; i++)
        ln[i] = h_line(ids[i], NULL, 3);
    for (uint32_t i = 42; i < TRASTENDA_LINES_MAX; i++)
        ln[i] = h_line(ids[i - 42], "back", 1);
    trastenda_cmd c = h_cmd_reserve(ln, 44, TTL);
    c.channel = h_s("web");
    c.has_ship_to = 1;
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.alloc_count, 128, "126 routed + 2 explicit: at the limit");
    trastenda_cmd rel = h_cmd_hold(TRASTENDA_OP_RELEASE, r.id);
    H_OK(&rel);
    c.line_count = 45;
    r = H_FAIL(&c, TRASTENDA_E_LIMIT);
    cr_assert(strstr(r.message, "placements") != NULL, "%s", r.message);
    expect_no_trace();
    cr_assert_eq(h_stock("k0", "a").held, 0);
}

/* ---- the holds that expire first ---- */

Test(engine_hold, holds_expiring_lists_open_holds_soonest_first)
{
    h_receive("tee", "madrid", 100);
    h_receive("cap", "lugo", 100);
    /* 24 holds (the test table has 32) with scrambled expiries: ttl 10..33 s, 7k mod 24. */
    uint64_t id_of_ttl[24];
    for (uint32_t k = 0; k < 24; k++) {
        uint32_t t = (7 * k) % 24;
        trastenda_line ln[2] = {h_line("tee", "madrid", 1), h_line("cap", "lugo", 2)};
        trastenda_cmd c = h_cmd_reserve(ln, k % 2 ? 2 : 1, 10000 + 1000 * (int64_t)t);
        id_of_ttl[t] = H_OK(&c).id;
    }
    /* One released: it is not open any more. */
    trastenda_cmd rel = h_cmd_hold(TRASTENDA_OP_RELEASE, id_of_ttl[3]);
    H_OK(&rel);
    static trastenda_hold_row rows[TRASTENDA_PAGE_MAX];
    uint32_t n = 0;
    cr_assert_eq(trastenda_engine_holds_expiring(H.e, 10, rows, &n), TRASTENDA_OK);
    cr_assert_eq(n, 10);
    uint32_t t = 0;
    for (uint32_t i = 0; i < n; i++, t++) {
        if (t == 3) t++;
        cr_assert_eq(rows[i].id, id_of_ttl[t], "row %u: hold %llu, want %llu", i,
                     (unsigned long long)rows[i].id, (unsigned long long)id_of_ttl[t]);
        cr_assert_eq(rows[i].first.sku_ix, h_sku_ix("tee"));
        cr_assert(i == 0 || rows[i].expires_ms >= rows[i - 1].expires_ms);
    }
    cr_assert(rows[0].line_count == 1 || rows[0].line_count == 2);
    cr_assert_eq(rows[0].units, rows[0].line_count == 2 ? 3 : 1);
    /* All of them: 23 open holds, whatever the limit above that. */
    cr_assert_eq(trastenda_engine_holds_expiring(H.e, TRASTENDA_PAGE_MAX, rows, &n), TRASTENDA_OK);
    cr_assert_eq(n, 23);
    for (uint32_t i = 1; i < n; i++)
        cr_assert_lt(rows[i - 1].expires_ms, rows[i].expires_ms);
}

Test(engine_hold, holds_expiring_with_none_open_is_empty_and_bad_limits_are_invalid)
{
    trastenda_hold_row row;
    uint32_t n = 7;
    cr_assert_eq(trastenda_engine_holds_expiring(H.e, 5, &row, &n), TRASTENDA_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(trastenda_engine_holds_expiring(H.e, 0, &row, &n), TRASTENDA_E_INVALID);
    cr_assert_eq(trastenda_engine_holds_expiring(H.e, TRASTENDA_PAGE_MAX + 1, &row, &n),
                 TRASTENDA_E_INVALID);
}
