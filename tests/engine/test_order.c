/*
 * tests/engine/test_order.c - engine/order.c: orders. Place (route and commit), pick, pack and
 * ship per location and for the whole order, deliver, cancel, partial and full returns, the
 * ORDER_STATE events, retention of finished orders and the full tables.
 */
#include "helpers.h"

/* Madrid serves "web" and "store", Lugo serves "web"; SKUs "tee" and "cap". No stock yet. */
static void
setup(void)
{
    h_setup();
    h_add_location_at("madrid", 40416800, -3703800, 0, "web,store");
    h_add_location_at("lugo", 43009700, -7556000, 0, "web");
    h_add_sku("tee", 0);
    h_add_sku("cap", 0);
}

TestSuite(engine_order, .init = setup, .fini = h_teardown);

/* ORDER_PLACE on "web", shipping near Madrid. */
static trastenda_cmd
place_cmd(const char *id, const trastenda_line *lines, uint32_t n)
{
    trastenda_cmd c = h_cmd_order(id, lines, n, "web");
    c.has_ship_to = 1;
    c.lat_e6 = 40400000;
    c.lon_e6 = -3700000;
    return c;
}

/* Places id: qty of sku near Madrid on "web"; asserts success; returns the order number. */
static uint64_t
place(const char *id, const char *sku, int64_t qty)
{
    trastenda_line ln = h_line(sku, NULL, qty);
    trastenda_cmd c = place_cmd(id, &ln, 1);
    trastenda_result r = H_OK(&c);
    return r.id;
}

static trastenda_result
step(uint32_t op, const char *id, const char *loc)
{
    trastenda_cmd c = h_cmd_order_step(op, id, loc);
    return h_apply(&c);
}

#define STEP_OK(op, id, loc)                                                                       \
    do {                                                                                           \
        trastenda_result r_ = step((op), (id), (loc));                                             \
        cr_assert_eq(r_.code, TRASTENDA_OK, "step %u: %s", (op), r_.message);                      \
    } while (0)

static trastenda_order_view
order_view(const char *id)
{
    static trastenda_order_view v;
    memset(&v, 0, sizeof(v));
    trastenda_err err = trastenda_engine_order_get(H.e, h_s(id), &v);
    cr_assert_eq(err, TRASTENDA_OK, "order %s: %s", id, trastenda_err_name(err));
    return v;
}

static int
order_known(const char *id)
{
    trastenda_order_view v;
    return trastenda_engine_order_get(H.e, h_s(id), &v) == TRASTENDA_OK;
}

/* The allocation of an order at a location (asserts there is one). */
static trastenda_order_alloc
alloc_at(const char *id, const char *loc)
{
    trastenda_order_view v = order_view(id);
    uint32_t ix = h_loc_ix(loc);
    for (uint32_t i = 0; i < v.alloc_count; i++)
        if (v.allocs[i].loc_ix == ix) return v.allocs[i];
    cr_assert_fail("order %s has no allocation at %s", id, loc);
    return v.allocs[0];
}

/* ORDER_STATE events of the last batch: how many, the last state in *state. */
static uint32_t
state_events(const char *id, uint8_t *state)
{
    static trastenda_event ev[H_DECODE_MAX];
    uint32_t n = h_events(ev, H_DECODE_MAX), k = 0;
    for (uint32_t i = 0; i < n; i++)
        if (ev[i].kind == TRASTENDA_EVENT_ORDER_STATE && h_str_eq(ev[i].order_id, id)) {
            if (state != NULL) *state = ev[i].state;
            k++;
        }
    return k;
}

static trastenda_cmd
return_cmd(const char *id, const trastenda_line *lines, uint32_t n)
{
    trastenda_cmd c = h_cmd_order_step(TRASTENDA_OP_ORDER_RETURN, id, NULL);
    c.lines = lines;
    c.line_count = n;
    return c;
}

/* The last batch changed nothing. */
static void
expect_no_trace(void)
{
    cr_assert_eq(H.out.ledger_count, 0, "ledger entries: %u", H.out.ledger_count);
    cr_assert_eq(H.out.event_count, 0, "events: %u", H.out.event_count);
    cr_assert_eq(h_records(TRASTENDA_REC_STOCK), 0);
    cr_assert_eq(h_records(TRASTENDA_REC_ORDER), 0);
}

/* Madrid 10 tee, Lugo 10 tee; order W-1 of 14 tee split: Madrid 10, Lugo 4. */
static void
split_order(void)
{
    h_receive("tee", "madrid", 10);
    h_receive("tee", "lugo", 10);
    (void)place("W-1", "tee", 14);
    cr_assert_eq(order_view("W-1").alloc_count, 2);
    cr_assert_eq(alloc_at("W-1", "madrid").qty, 10);
    cr_assert_eq(alloc_at("W-1", "lugo").qty, 4);
}

/* ---- place ---- */

Test(engine_order, place_routes_and_commits)
{
    h_receive("tee", "madrid", 10);
    h_receive("tee", "lugo", 10);
    trastenda_line ln = h_line("tee", NULL, 3);
    trastenda_cmd c = place_cmd("W-1", &ln, 1);
    trastenda_result r = H_OK(&c);
    cr_assert_neq(r.id, 0);
    cr_assert_eq(r.state, TRASTENDA_ORDER_ALLOCATED);
    cr_assert_eq(r.rule, TRASTENDA_RULE_SINGLE);
    cr_assert_eq(r.duplicate, 0);
    cr_assert_eq(r.alloc_count, 1);
    cr_assert_eq(r.allocs[0].loc_ix, h_loc_ix("madrid"), "the nearest");
    cr_assert_eq(r.allocs[0].qty, 3);
    trastenda_stock s = h_stock("tee", "madrid");
    cr_assert_eq(s.committed, 3);
    cr_assert_eq(s.on_hand, 10);
    cr_assert_eq(s.available, 7);
    cr_assert_eq(h_stock("tee", "lugo").committed, 0);
    trastenda_ledger_entry le = h_ledger_one();
    cr_assert_eq(le.move, TRASTENDA_MOVE_ALLOCATE);
    cr_assert_eq(le.delta[TRASTENDA_Q_COMMITTED], 3);
    cr_assert_eq(le.delta[TRASTENDA_Q_ON_HAND], 0);
    cr_assert_eq(le.ref_kind, TRASTENDA_REFK_ORDER);
    cr_assert_eq(le.ref_id, r.id);
    cr_assert(h_str_eq(le.ref, "W-1"));
    uint8_t st = 0;
    cr_assert_eq(state_events("W-1", &st), 1);
    cr_assert_eq(st, TRASTENDA_ORDER_ALLOCATED);
    trastenda_order_view v = order_view("W-1");
    cr_assert_str_eq(v.id, "W-1");
    cr_assert_eq(v.no, r.id);
    cr_assert_eq(v.state, TRASTENDA_ORDER_ALLOCATED);
    cr_assert_eq(v.rule, TRASTENDA_RULE_SINGLE);
    cr_assert_neq(v.channel, 0);
    cr_assert_eq(v.lat_e6, 40400000);
    cr_assert_eq(v.created_ms, H.now);
    cr_assert_eq(v.alloc_count, 1);
    cr_assert_eq(v.allocs[0].state, TRASTENDA_ORDER_ALLOCATED);
    cr_assert_eq(v.allocs[0].shipped, 0);
}

Test(engine_order, order_numbers_increase)
{
    h_receive("tee", "madrid", 10);
    uint64_t a = place("W-1", "tee", 1);
    uint64_t b = place("W-2", "tee", 1);
    cr_assert_eq(b, a + 1);
}

Test(engine_order, place_splits_when_no_location_has_it_all)
{
    split_order();
    cr_assert_eq(order_view("W-1").rule, TRASTENDA_RULE_EXACT);
    cr_assert_eq(h_stock("tee", "madrid").committed, 10);
    cr_assert_eq(h_stock("tee", "lugo").committed, 4);
    cr_assert_eq(H.out.ledger_count, 2);
}

Test(engine_order, place_with_several_skus_commits_each)
{
    h_receive("tee", "madrid", 10);
    h_receive("cap", "madrid", 10);
    trastenda_line ln[2] = {h_line("tee", NULL, 2), h_line("cap", NULL, 5)};
    trastenda_cmd c = place_cmd("W-1", ln, 2);
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.alloc_count, 2);
    cr_assert_eq(h_stock("tee", "madrid").committed, 2);
    cr_assert_eq(h_stock("cap", "madrid").committed, 5);
}

Test(engine_order, place_sums_lines_of_the_same_sku_before_the_check)
{
    h_receive("tee", "madrid", 1);
    trastenda_line ln[2] = {h_line("tee", NULL, 1), h_line("tee", NULL, 1)};
    trastenda_cmd c = place_cmd("W-1", ln, 2);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_SHORT);
    cr_assert_eq(r.alloc_count, 1);
    cr_assert_eq(r.allocs[0].qty, 2);
    cr_assert_eq(r.allocs[0].short_qty, 1);
    expect_no_trace();
    cr_assert_not(order_known("W-1"));
    c.line_count = 1;
    H_OK(&c); /* one unit is there */
}

Test(engine_order, place_short_commits_nothing)
{
    h_receive("tee", "madrid", 2);
    h_receive("cap", "madrid", 2);
    trastenda_line ln[2] = {h_line("tee", NULL, 2), h_line("cap", NULL, 3)};
    trastenda_cmd c = place_cmd("W-1", ln, 2);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_SHORT);
    cr_assert_eq(r.alloc_count, 2);
    cr_assert_eq(r.allocs[0].short_qty, 0);
    cr_assert_eq(r.allocs[1].short_qty, 1);
    cr_assert(strstr(r.message, "cap") != NULL, "%s", r.message);
    cr_assert_eq(h_stock("tee", "madrid").committed, 0);
    expect_no_trace();
    cr_assert_not(order_known("W-1"));
}

Test(engine_order, place_lines_naming_a_location_are_refused)
{
    h_receive("tee", "madrid", 10);
    trastenda_line ln[2] = {h_line("tee", NULL, 1), h_line("tee", "madrid", 1)};
    trastenda_cmd c = place_cmd("W-1", ln, 2);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert_eq(r.line, 1);
    cr_assert(strstr(r.message, "location") != NULL, "%s", r.message);
    ln[1] = h_line("tee", NULL, 1);
    ln[1].loc = h_ref_ix(0);
    r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert_eq(r.line, 1);
    expect_no_trace();
    cr_assert_not(order_known("W-1"));
}

Test(engine_order, place_needs_a_known_channel_and_a_ship_to)
{
    h_receive("tee", "madrid", 10);
    trastenda_line ln = h_line("tee", NULL, 1);
    trastenda_cmd c = place_cmd("W-1", &ln, 1);
    c.channel = h_s(NULL);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "channel") != NULL, "%s", r.message);
    c.channel = h_s("fax");
    r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "fax") != NULL, "%s", r.message);
    c = place_cmd("W-1", &ln, 1);
    c.has_ship_to = 0;
    r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "ship_to") != NULL, "%s", r.message);
    c = place_cmd("W-1", &ln, 1);
    c.lat_e6 = -90000001;
    r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "lat_e6") != NULL, "%s", r.message);
    expect_no_trace();
    cr_assert_not(order_known("W-1"));
}

Test(engine_order, place_needs_a_valid_order_id)
{
    h_receive("tee", "madrid", 10);
    trastenda_line ln = h_line("tee", NULL, 1);
    trastenda_cmd c = place_cmd(NULL, &ln, 1);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "order_id") != NULL, "%s", r.message);
    c = place_cmd("0123456789012345678901234567890123456789012345678901234567890123X", &ln, 1);
    H_FAIL(&c, TRASTENDA_E_LIMIT);
    c = place_cmd("bad\x01id", &ln, 1);
    H_FAIL(&c, TRASTENDA_E_INVALID);
    expect_no_trace();
}

Test(engine_order, place_line_count_and_qty_are_checked)
{
    h_receive("tee", "madrid", 1000);
    trastenda_line ln[TRASTENDA_LINES_MAX + 1];
    for (uint32_t i = 0; i <= TRASTENDA_LINES_MAX; i++)
        ln[i] = h_line("tee", NULL, 1);
    trastenda_cmd c = place_cmd("W-1", ln, 0);
    H_FAIL(&c, TRASTENDA_E_LIMIT);
    c.line_count = TRASTENDA_LINES_MAX + 1;
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_LIMIT);
    cr_assert(strstr(r.message, "lines") != NULL, "%s", r.message);
    c.lines = NULL;
    c.line_count = 1;
    H_FAIL(&c, TRASTENDA_E_INVALID);
    int64_t bad[] = {0, -5, TRASTENDA_LINE_QTY_MAX + 1ll};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ln[2].qty = bad[i];
        c = place_cmd("W-1", ln, 3);
        r = H_FAIL(&c, TRASTENDA_E_INVALID);
        cr_assert_eq(r.line, 2);
        cr_assert(strstr(r.message, "qty") != NULL, "%s", r.message);
    }
    expect_no_trace();
    ln[2].qty = 1;
    c = place_cmd("W-1", ln, TRASTENDA_LINES_MAX);
    H_OK(&c);
    cr_assert_eq(h_stock("tee", "madrid").committed, TRASTENDA_LINES_MAX);
}

Test(engine_order, place_unknown_or_inactive_sku_is_refused)
{
    h_receive("tee", "madrid", 10);
    h_receive("cap", "madrid", 10);
    trastenda_line ln[2] = {h_line("tee", NULL, 1), h_line("hat", NULL, 1)};
    trastenda_cmd c = place_cmd("W-1", ln, 2);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_UNKNOWN_SKU);
    cr_assert_eq(r.line, 1);
    trastenda_cmd d = h_cmd(TRASTENDA_OP_SKU_DEACTIVATE);
    d.sku = h_ref("cap");
    H_OK(&d);
    ln[1] = h_line("cap", NULL, 1);
    r = H_FAIL(&c, TRASTENDA_E_INACTIVE);
    cr_assert_eq(r.line, 1);
    cr_assert_not(order_known("W-1"));
}

Test(engine_order, place_with_no_active_location_for_the_channel_has_no_route)
{
    h_receive("tee", "madrid", 10);
    h_receive("tee", "lugo", 10);
    trastenda_cmd d = h_cmd(TRASTENDA_OP_LOCATION_DEACTIVATE);
    d.loc = h_ref("madrid");
    H_OK(&d);
    trastenda_line ln = h_line("tee", NULL, 1);
    trastenda_cmd c = place_cmd("S-1", &ln, 1);
    c.channel = h_s("store");
    H_FAIL(&c, TRASTENDA_E_NO_ROUTE);
    expect_no_trace();
    cr_assert_not(order_known("S-1"));
    c.channel = h_s("web");
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.allocs[0].loc_ix, h_loc_ix("lugo"));
}

Test(engine_order, place_again_with_the_same_payload_is_a_duplicate)
{
    h_receive("tee", "madrid", 10);
    trastenda_line ln = h_line("tee", NULL, 3);
    trastenda_cmd c = place_cmd("W-1", &ln, 1);
    trastenda_result first = H_OK(&c);
    trastenda_result again = H_OK(&c);
    cr_assert_eq(again.duplicate, 1);
    cr_assert_eq(again.id, first.id);
    cr_assert_eq(again.state, TRASTENDA_ORDER_ALLOCATED);
    cr_assert_eq(again.alloc_count, 1);
    cr_assert_eq(again.allocs[0].qty, 3);
    expect_no_trace();
    cr_assert_eq(h_stock("tee", "madrid").committed, 3, "committed once");
    ln.qty = 4;
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_IDEMPOTENCY_MISMATCH);
    cr_assert(strstr(r.message, "W-1") != NULL, "%s", r.message);
    cr_assert_eq(h_stock("tee", "madrid").committed, 3);
}

Test(engine_order, a_duplicate_place_reports_the_current_state)
{
    h_receive("tee", "madrid", 10);
    trastenda_line ln = h_line("tee", NULL, 3);
    trastenda_cmd c = place_cmd("W-1", &ln, 1);
    H_OK(&c);
    STEP_OK(TRASTENDA_OP_ORDER_SHIP, "W-1", NULL);
    trastenda_result again = H_OK(&c);
    cr_assert_eq(again.duplicate, 1);
    cr_assert_eq(again.state, TRASTENDA_ORDER_SHIPPED);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 7, "not placed again");
}

Test(engine_order, place_when_the_orders_table_is_full_is_refused)
{
    h_teardown();
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    cfg.orders_max = 2;
    h_setup_with(&cfg, 1);
    h_add_location_at("madrid", 40416800, -3703800, 0, "web");
    h_add_sku("tee", 0);
    h_receive("tee", "madrid", 10);
    (void)place("W-1", "tee", 1);
    (void)place("W-2", "tee", 1);
    trastenda_line ln = h_line("tee", NULL, 1);
    trastenda_cmd c = place_cmd("W-3", &ln, 1);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_TABLE_FULL);
    cr_assert(strstr(r.message, "orders_max") != NULL, "%s", r.message);
    expect_no_trace();
    cr_assert_eq(h_stock("tee", "madrid").committed, 2);
}

Test(engine_order, place_when_the_lines_table_is_full_is_refused)
{
    h_teardown();
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    cfg.lines_max = 2;
    h_setup_with(&cfg, 1);
    h_add_location_at("madrid", 40416800, -3703800, 0, "web");
    h_add_location_at("lugo", 43009700, -7556000, 0, "web");
    h_add_sku("tee", 0);
    h_receive("tee", "madrid", 1);
    h_receive("tee", "lugo", 10);
    (void)place("W-1", "tee", 1); /* Madrid: one line */
    trastenda_line ln = h_line("tee", NULL, 2);
    trastenda_cmd c = place_cmd("W-2", &ln, 1);
    H_OK(&c); /* Lugo: the second */
    c = place_cmd("W-3", &ln, 1);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_TABLE_FULL);
    cr_assert(strstr(r.message, "lines_max") != NULL, "%s", r.message);
    cr_assert_not(order_known("W-3"));
    cr_assert_eq(h_stock("tee", "lugo").committed, 2);
}

/* ---- pick, pack, ship, deliver ---- */

Test(engine_order, pick_pack_ship_deliver_the_whole_order)
{
    h_receive("tee", "madrid", 10);
    (void)place("W-1", "tee", 3);
    uint8_t st = 0;
    STEP_OK(TRASTENDA_OP_ORDER_PICK, "W-1", NULL);
    cr_assert_eq(order_view("W-1").state, TRASTENDA_ORDER_PICKING);
    cr_assert_eq(state_events("W-1", &st), 1);
    cr_assert_eq(st, TRASTENDA_ORDER_PICKING);
    cr_assert_eq(H.out.ledger_count, 0, "picking moves no units");
    STEP_OK(TRASTENDA_OP_ORDER_PACK, "W-1", NULL);
    cr_assert_eq(order_view("W-1").state, TRASTENDA_ORDER_PACKED);
    cr_assert_eq(state_events("W-1", &st), 1);
    cr_assert_eq(st, TRASTENDA_ORDER_PACKED);
    trastenda_result r = step(TRASTENDA_OP_ORDER_SHIP, "W-1", NULL);
    cr_assert_eq(r.code, TRASTENDA_OK, "%s", r.message);
    cr_assert_eq(r.state, TRASTENDA_ORDER_SHIPPED);
    cr_assert_eq(state_events("W-1", &st), 1);
    cr_assert_eq(st, TRASTENDA_ORDER_SHIPPED);
    trastenda_stock s = h_stock("tee", "madrid");
    cr_assert_eq(s.on_hand, 7);
    cr_assert_eq(s.committed, 0);
    cr_assert_eq(s.available, 7);
    trastenda_ledger_entry le = h_ledger_one();
    cr_assert_eq(le.move, TRASTENDA_MOVE_SHIP);
    cr_assert_eq(le.delta[TRASTENDA_Q_ON_HAND], -3);
    cr_assert_eq(le.delta[TRASTENDA_Q_COMMITTED], -3);
    cr_assert_eq(le.ref_kind, TRASTENDA_REFK_ORDER);
    cr_assert(h_str_eq(le.ref, "W-1"));
    trastenda_order_view v = order_view("W-1");
    cr_assert_eq(v.allocs[0].shipped, 3);
    cr_assert_eq(v.allocs[0].state, TRASTENDA_ORDER_SHIPPED);
    h_advance(1000);
    r = step(TRASTENDA_OP_ORDER_DELIVER, "W-1", NULL);
    cr_assert_eq(r.code, TRASTENDA_OK, "%s", r.message);
    cr_assert_eq(r.state, TRASTENDA_ORDER_DELIVERED);
    cr_assert_eq(state_events("W-1", &st), 1);
    cr_assert_eq(st, TRASTENDA_ORDER_DELIVERED);
    cr_assert_eq(H.out.ledger_count, 0);
    v = order_view("W-1");
    cr_assert_eq(v.state, TRASTENDA_ORDER_DELIVERED);
    cr_assert_eq(v.updated_ms, H.now);
}

Test(engine_order, ship_straight_from_allocated)
{
    h_receive("tee", "madrid", 10);
    (void)place("W-1", "tee", 3);
    STEP_OK(TRASTENDA_OP_ORDER_SHIP, "W-1", NULL);
    cr_assert_eq(order_view("W-1").state, TRASTENDA_ORDER_SHIPPED);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 7);
}

Test(engine_order, steps_per_location_move_the_order_at_its_least_advanced_allocation)
{
    split_order();
    uint8_t st = 0;
    STEP_OK(TRASTENDA_OP_ORDER_PICK, "W-1", "madrid");
    cr_assert_eq(alloc_at("W-1", "madrid").state, TRASTENDA_ORDER_PICKING);
    cr_assert_eq(alloc_at("W-1", "lugo").state, TRASTENDA_ORDER_ALLOCATED);
    cr_assert_eq(order_view("W-1").state, TRASTENDA_ORDER_ALLOCATED);
    cr_assert_eq(state_events("W-1", NULL), 0, "the order's state did not change");
    STEP_OK(TRASTENDA_OP_ORDER_SHIP, "W-1", "madrid");
    cr_assert_eq(alloc_at("W-1", "madrid").state, TRASTENDA_ORDER_SHIPPED);
    cr_assert_eq(alloc_at("W-1", "madrid").shipped, 10);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 0);
    cr_assert_eq(h_stock("tee", "madrid").committed, 0);
    cr_assert_eq(h_stock("tee", "lugo").on_hand, 10, "Lugo has not shipped");
    cr_assert_eq(h_stock("tee", "lugo").committed, 4);
    cr_assert_eq(order_view("W-1").state, TRASTENDA_ORDER_ALLOCATED);
    STEP_OK(TRASTENDA_OP_ORDER_PICK, "W-1", "lugo");
    cr_assert_eq(order_view("W-1").state, TRASTENDA_ORDER_PICKING);
    cr_assert_eq(state_events("W-1", &st), 1);
    cr_assert_eq(st, TRASTENDA_ORDER_PICKING);
    STEP_OK(TRASTENDA_OP_ORDER_PACK, "W-1", "lugo");
    cr_assert_eq(order_view("W-1").state, TRASTENDA_ORDER_PACKED);
    STEP_OK(TRASTENDA_OP_ORDER_SHIP, "W-1", "lugo");
    cr_assert_eq(order_view("W-1").state, TRASTENDA_ORDER_SHIPPED);
    cr_assert_eq(h_stock("tee", "lugo").on_hand, 6);
    cr_assert_eq(h_stock("tee", "lugo").committed, 0);
}

Test(engine_order, step_at_a_location_without_an_allocation_is_invalid)
{
    h_receive("tee", "madrid", 10);
    (void)place("W-1", "tee", 3);
    trastenda_result r = step(TRASTENDA_OP_ORDER_PICK, "W-1", "lugo");
    cr_assert_eq(r.code, TRASTENDA_E_INVALID, "%s", r.message);
    cr_assert(strstr(r.message, "location") != NULL, "%s", r.message);
    r = step(TRASTENDA_OP_ORDER_PICK, "W-1", "vigo");
    cr_assert_eq(r.code, TRASTENDA_E_UNKNOWN_LOCATION, "%s", r.message);
    cr_assert_eq(order_view("W-1").state, TRASTENDA_ORDER_ALLOCATED);
}

Test(engine_order, a_step_cannot_be_taken_twice_or_backwards)
{
    h_receive("tee", "madrid", 10);
    (void)place("W-1", "tee", 3);
    STEP_OK(TRASTENDA_OP_ORDER_PACK, "W-1", NULL);
    trastenda_result r = step(TRASTENDA_OP_ORDER_PACK, "W-1", NULL);
    cr_assert_eq(r.code, TRASTENDA_E_STATE, "%s", r.message);
    r = step(TRASTENDA_OP_ORDER_PICK, "W-1", NULL);
    cr_assert_eq(r.code, TRASTENDA_E_STATE, "%s", r.message);
    cr_assert_eq(r.state, TRASTENDA_ORDER_PACKED);
    STEP_OK(TRASTENDA_OP_ORDER_SHIP, "W-1", NULL);
    r = step(TRASTENDA_OP_ORDER_SHIP, "W-1", NULL);
    cr_assert_eq(r.code, TRASTENDA_E_STATE, "%s", r.message);
    expect_no_trace();
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 7, "shipped once");
    STEP_OK(TRASTENDA_OP_ORDER_DELIVER, "W-1", NULL);
    r = step(TRASTENDA_OP_ORDER_DELIVER, "W-1", NULL);
    cr_assert_eq(r.code, TRASTENDA_E_STATE, "%s", r.message);
    r = step(TRASTENDA_OP_ORDER_PICK, "W-1", NULL);
    cr_assert_eq(r.code, TRASTENDA_E_STATE, "%s", r.message);
}

Test(engine_order, a_step_on_one_location_checks_only_that_location)
{
    split_order();
    STEP_OK(TRASTENDA_OP_ORDER_PICK, "W-1", "madrid");
    STEP_OK(TRASTENDA_OP_ORDER_PICK, "W-1", "lugo"); /* madrid already picking: not in the way */
    trastenda_result r = step(TRASTENDA_OP_ORDER_PICK, "W-1", NULL);
    cr_assert_eq(r.code, TRASTENDA_E_STATE, "whole order: every allocation is picking");
}

Test(engine_order, ship_with_less_on_hand_than_committed_is_short)
{
    h_receive("tee", "madrid", 5);
    (void)place("W-1", "tee", 5);
    trastenda_cmd a = h_cmd_adjust("tee", "madrid", -2, TRASTENDA_REASON_DAMAGE);
    H_OK(&a);
    trastenda_result r = step(TRASTENDA_OP_ORDER_SHIP, "W-1", NULL);
    cr_assert_eq(r.code, TRASTENDA_E_SHORT, "%s", r.message);
    expect_no_trace();
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 3);
    cr_assert_eq(h_stock("tee", "madrid").committed, 5);
    cr_assert_eq(order_view("W-1").state, TRASTENDA_ORDER_ALLOCATED);
}

Test(engine_order, a_whole_order_ship_is_all_or_nothing)
{
    split_order();
    trastenda_cmd a = h_cmd_adjust("tee", "lugo", -7, TRASTENDA_REASON_THEFT);
    H_OK(&a); /* Lugo: on_hand 3 < committed 4 */
    trastenda_result r = step(TRASTENDA_OP_ORDER_SHIP, "W-1", NULL);
    cr_assert_eq(r.code, TRASTENDA_E_SHORT, "%s", r.message);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 10, "Madrid did not ship either");
    cr_assert_eq(alloc_at("W-1", "madrid").shipped, 0);
}

Test(engine_order, deliver_only_after_everything_shipped)
{
    split_order();
    trastenda_result r = step(TRASTENDA_OP_ORDER_DELIVER, "W-1", NULL);
    cr_assert_eq(r.code, TRASTENDA_E_STATE, "%s", r.message);
    STEP_OK(TRASTENDA_OP_ORDER_SHIP, "W-1", "madrid");
    r = step(TRASTENDA_OP_ORDER_DELIVER, "W-1", NULL);
    cr_assert_eq(r.code, TRASTENDA_E_STATE, "%s", r.message);
    cr_assert(strstr(r.message, "allocated") != NULL, "%s", r.message);
    expect_no_trace();
    STEP_OK(TRASTENDA_OP_ORDER_SHIP, "W-1", "lugo");
    STEP_OK(TRASTENDA_OP_ORDER_DELIVER, "W-1", NULL);
    cr_assert_eq(order_view("W-1").state, TRASTENDA_ORDER_DELIVERED);
}

/* ---- cancel ---- */

Test(engine_order, cancel_before_shipping_returns_committed_units)
{
    split_order();
    STEP_OK(TRASTENDA_OP_ORDER_PACK, "W-1", "madrid");
    trastenda_result r = step(TRASTENDA_OP_ORDER_CANCEL, "W-1", NULL);
    cr_assert_eq(r.code, TRASTENDA_OK, "%s", r.message);
    cr_assert_eq(r.state, TRASTENDA_ORDER_CANCELLED);
    cr_assert_eq(h_stock("tee", "madrid").committed, 0);
    cr_assert_eq(h_stock("tee", "madrid").available, 10);
    cr_assert_eq(h_stock("tee", "lugo").committed, 0);
    cr_assert_eq(h_stock("tee", "lugo").on_hand, 10);
    trastenda_ledger_entry le[4];
    cr_assert_eq(h_ledger(le, 4), 2);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(le[i].move, TRASTENDA_MOVE_CANCEL);
        cr_assert_lt(le[i].delta[TRASTENDA_Q_COMMITTED], 0);
        cr_assert_eq(le[i].delta[TRASTENDA_Q_ON_HAND], 0);
    }
    uint8_t st = 0;
    cr_assert_eq(state_events("W-1", &st), 1);
    cr_assert_eq(st, TRASTENDA_ORDER_CANCELLED);
    trastenda_order_view v = order_view("W-1");
    cr_assert_eq(v.state, TRASTENDA_ORDER_CANCELLED);
    for (uint32_t i = 0; i < v.alloc_count; i++)
        cr_assert_eq(v.allocs[i].state, TRASTENDA_ORDER_CANCELLED);
}

Test(engine_order, a_cancelled_order_takes_no_more_steps)
{
    h_receive("tee", "madrid", 10);
    (void)place("W-1", "tee", 3);
    STEP_OK(TRASTENDA_OP_ORDER_CANCEL, "W-1", NULL);
    uint32_t ops[] = {TRASTENDA_OP_ORDER_CANCEL, TRASTENDA_OP_ORDER_PICK, TRASTENDA_OP_ORDER_PACK,
                      TRASTENDA_OP_ORDER_SHIP, TRASTENDA_OP_ORDER_DELIVER};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        trastenda_result r = step(ops[i], "W-1", NULL);
        cr_assert_eq(r.code, TRASTENDA_E_STATE, "op %u: %s", ops[i], r.message);
        cr_assert_eq(r.state, TRASTENDA_ORDER_CANCELLED);
        expect_no_trace();
    }
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 10);
    cr_assert_eq(h_stock("tee", "madrid").committed, 0);
}

Test(engine_order, cancel_after_shipping_is_a_state_error)
{
    h_receive("tee", "madrid", 10);
    (void)place("W-1", "tee", 3);
    STEP_OK(TRASTENDA_OP_ORDER_SHIP, "W-1", NULL);
    trastenda_result r = step(TRASTENDA_OP_ORDER_CANCEL, "W-1", NULL);
    cr_assert_eq(r.code, TRASTENDA_E_STATE, "%s", r.message);
    cr_assert_eq(r.state, TRASTENDA_ORDER_SHIPPED);
    expect_no_trace();
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 7);
}

Test(engine_order, cancel_after_a_partial_shipment_is_a_state_error)
{
    split_order();
    STEP_OK(TRASTENDA_OP_ORDER_SHIP, "W-1", "lugo");
    trastenda_result r = step(TRASTENDA_OP_ORDER_CANCEL, "W-1", NULL);
    cr_assert_eq(r.code, TRASTENDA_E_STATE, "%s", r.message);
    cr_assert(strstr(r.message, "shipped") != NULL, "%s", r.message);
    expect_no_trace();
    cr_assert_eq(h_stock("tee", "madrid").committed, 10, "Madrid's units stay committed");
}

/* ---- return ---- */

Test(engine_order, return_partial_restocks_sellable_units)
{
    h_receive("tee", "madrid", 10);
    (void)place("W-1", "tee", 3);
    STEP_OK(TRASTENDA_OP_ORDER_SHIP, "W-1", NULL);
    trastenda_line ln = h_line("tee", "madrid", 1);
    trastenda_cmd c = return_cmd("W-1", &ln, 1);
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.state, TRASTENDA_ORDER_SHIPPED, "2 units still out");
    trastenda_stock s = h_stock("tee", "madrid");
    cr_assert_eq(s.on_hand, 8);
    cr_assert_eq(s.available, 8);
    cr_assert_eq(s.unsellable, 0);
    trastenda_ledger_entry le = h_ledger_one();
    cr_assert_eq(le.move, TRASTENDA_MOVE_RETURN);
    cr_assert_eq(le.delta[TRASTENDA_Q_ON_HAND], 1);
    cr_assert_eq(le.delta[TRASTENDA_Q_UNSELLABLE], 0);
    cr_assert_eq(le.ref_kind, TRASTENDA_REFK_ORDER);
    cr_assert(h_str_eq(le.ref, "W-1"));
    cr_assert_eq(state_events("W-1", NULL), 0);
    cr_assert_eq(order_view("W-1").allocs[0].returned, 1);
}

Test(engine_order, return_unsellable_units_does_not_raise_available)
{
    h_receive("tee", "madrid", 10);
    (void)place("W-1", "tee", 3);
    STEP_OK(TRASTENDA_OP_ORDER_SHIP, "W-1", NULL);
    trastenda_line ln = h_line("tee", "madrid", 2);
    ln.flags = TRASTENDA_LINE_UNSELLABLE;
    trastenda_cmd c = return_cmd("W-1", &ln, 1);
    H_OK(&c);
    trastenda_stock s = h_stock("tee", "madrid");
    cr_assert_eq(s.on_hand, 9);
    cr_assert_eq(s.unsellable, 2);
    cr_assert_eq(s.available, 7);
    trastenda_ledger_entry le = h_ledger_one();
    cr_assert_eq(le.delta[TRASTENDA_Q_ON_HAND], 2);
    cr_assert_eq(le.delta[TRASTENDA_Q_UNSELLABLE], 2);
}

Test(engine_order, return_of_every_shipped_unit_makes_the_order_returned)
{
    h_receive("tee", "madrid", 10);
    (void)place("W-1", "tee", 3);
    STEP_OK(TRASTENDA_OP_ORDER_SHIP, "W-1", NULL);
    trastenda_line ln[2] = {h_line("tee", "madrid", 1), h_line("tee", "madrid", 1)};
    ln[1].flags = TRASTENDA_LINE_UNSELLABLE;
    trastenda_cmd c = return_cmd("W-1", ln, 2);
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.state, TRASTENDA_ORDER_SHIPPED);
    ln[0].qty = 1;
    c.line_count = 1;
    r = H_OK(&c);
    cr_assert_eq(r.state, TRASTENDA_ORDER_RETURNED);
    uint8_t st = 0;
    cr_assert_eq(state_events("W-1", &st), 1);
    cr_assert_eq(st, TRASTENDA_ORDER_RETURNED);
    trastenda_order_view v = order_view("W-1");
    cr_assert_eq(v.state, TRASTENDA_ORDER_RETURNED);
    cr_assert_eq(v.allocs[0].returned, 3);
    trastenda_stock s = h_stock("tee", "madrid");
    cr_assert_eq(s.on_hand, 10);
    cr_assert_eq(s.unsellable, 1);
    cr_assert_eq(s.available, 9);
    r = H_FAIL(&c, TRASTENDA_E_STATE);
    cr_assert_eq(r.state, TRASTENDA_ORDER_RETURNED);
}

Test(engine_order, return_after_delivery_is_accepted)
{
    h_receive("tee", "madrid", 10);
    (void)place("W-1", "tee", 2);
    STEP_OK(TRASTENDA_OP_ORDER_SHIP, "W-1", NULL);
    STEP_OK(TRASTENDA_OP_ORDER_DELIVER, "W-1", NULL);
    trastenda_line ln = h_line("tee", "madrid", 1);
    trastenda_cmd c = return_cmd("W-1", &ln, 1);
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.state, TRASTENDA_ORDER_DELIVERED);
    r = H_OK(&c);
    cr_assert_eq(r.state, TRASTENDA_ORDER_RETURNED);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 10);
}

Test(engine_order, return_of_a_split_order_to_another_location_creates_its_record)
{
    split_order();
    STEP_OK(TRASTENDA_OP_ORDER_SHIP, "W-1", NULL);
    h_add_location_at("vigo", 42240600, -8720700, 0, "web");
    trastenda_line ln[2] = {h_line("tee", "vigo", 12), h_line("tee", "madrid", 2)};
    trastenda_cmd c = return_cmd("W-1", ln, 2);
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.state, TRASTENDA_ORDER_RETURNED, "14 of 14 back");
    cr_assert_eq(h_stock("tee", "vigo").on_hand, 12);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 2);
    trastenda_order_view v = order_view("W-1");
    for (uint32_t i = 0; i < v.alloc_count; i++)
        cr_assert_eq(v.allocs[i].returned, v.allocs[i].shipped);
}

Test(engine_order, return_of_more_than_shipped_is_invalid)
{
    h_receive("tee", "madrid", 10);
    h_receive("cap", "madrid", 10);
    (void)place("W-1", "tee", 3);
    STEP_OK(TRASTENDA_OP_ORDER_SHIP, "W-1", NULL);
    trastenda_line ln = h_line("tee", "madrid", 4);
    trastenda_cmd c = return_cmd("W-1", &ln, 1);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "shipped") != NULL, "%s", r.message);
    cr_assert_eq(r.line, 0);
    trastenda_line two[2] = {h_line("tee", "madrid", 2), h_line("tee", "lugo", 2)};
    c = return_cmd("W-1", two, 2);
    r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert_eq(r.line, 1, "lines of the same SKU are summed");
    ln = h_line("cap", "madrid", 1);
    c = return_cmd("W-1", &ln, 1);
    H_FAIL(&c, TRASTENDA_E_INVALID); /* never shipped in this order */
    expect_no_trace();
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 7);
    ln = h_line("tee", "madrid", 2);
    c = return_cmd("W-1", &ln, 1);
    H_OK(&c);
    ln.qty = 2;
    r = H_FAIL(&c, TRASTENDA_E_INVALID); /* 1 left to return */
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 9);
}

Test(engine_order, return_before_shipping_is_a_state_error)
{
    h_receive("tee", "madrid", 10);
    (void)place("W-1", "tee", 3);
    trastenda_line ln = h_line("tee", "madrid", 1);
    trastenda_cmd c = return_cmd("W-1", &ln, 1);
    H_FAIL(&c, TRASTENDA_E_STATE);
    STEP_OK(TRASTENDA_OP_ORDER_CANCEL, "W-1", NULL);
    H_FAIL(&c, TRASTENDA_E_STATE);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 10);
}

Test(engine_order, return_of_a_partly_shipped_order_is_a_state_error)
{
    split_order();
    STEP_OK(TRASTENDA_OP_ORDER_SHIP, "W-1", "lugo");
    trastenda_line ln = h_line("tee", "lugo", 1);
    trastenda_cmd c = return_cmd("W-1", &ln, 1);
    H_FAIL(&c, TRASTENDA_E_STATE);
}

Test(engine_order, return_lines_are_checked)
{
    h_receive("tee", "madrid", 10);
    (void)place("W-1", "tee", 3);
    STEP_OK(TRASTENDA_OP_ORDER_SHIP, "W-1", NULL);
    trastenda_line ln = h_line("tee", "madrid", 1);
    trastenda_cmd c = return_cmd("W-1", &ln, 0);
    H_FAIL(&c, TRASTENDA_E_LIMIT);
    c.line_count = TRASTENDA_LINES_MAX + 1;
    H_FAIL(&c, TRASTENDA_E_LIMIT);
    c = return_cmd("W-1", NULL, 1);
    H_FAIL(&c, TRASTENDA_E_INVALID);
    ln = h_line("hat", "madrid", 1);
    c = return_cmd("W-1", &ln, 1);
    H_FAIL(&c, TRASTENDA_E_UNKNOWN_SKU);
    ln = h_line("tee", "vigo", 1);
    H_FAIL(&c, TRASTENDA_E_UNKNOWN_LOCATION);
    ln = h_line("tee", NULL, 1);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "location") != NULL, "%s", r.message);
    ln = h_line("tee", "madrid", 0);
    r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "qty") != NULL, "%s", r.message);
    ln.qty = -1;
    H_FAIL(&c, TRASTENDA_E_INVALID);
    expect_no_trace();
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 7);
}

Test(engine_order, return_beyond_the_quantity_limit_is_refused)
{
    h_receive("tee", "madrid", 10);
    h_receive("tee", "lugo", TRASTENDA_QTY_MAX);
    (void)place("W-1", "tee", 3);
    cr_assert_eq(alloc_at("W-1", "madrid").qty, 3);
    STEP_OK(TRASTENDA_OP_ORDER_SHIP, "W-1", NULL);
    trastenda_line ln = h_line("tee", "lugo", 1);
    trastenda_cmd c = return_cmd("W-1", &ln, 1);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_LIMIT);
    cr_assert(strstr(r.message, "on_hand") != NULL, "%s", r.message);
    cr_assert_eq(h_stock("tee", "lugo").on_hand, TRASTENDA_QTY_MAX);
}

Test(engine_order, return_to_a_new_record_when_the_stock_table_is_full_is_refused)
{
    h_teardown();
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    cfg.stock_max = 1;
    h_setup_with(&cfg, 1);
    h_add_location_at("madrid", 40416800, -3703800, 0, "web");
    h_add_location("lugo");
    h_add_sku("tee", 0);
    h_receive("tee", "madrid", 10);
    (void)place("W-1", "tee", 3);
    STEP_OK(TRASTENDA_OP_ORDER_SHIP, "W-1", NULL);
    trastenda_line ln = h_line("tee", "lugo", 1);
    trastenda_cmd c = return_cmd("W-1", &ln, 1);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_TABLE_FULL);
    cr_assert(strstr(r.message, "stock_max") != NULL, "%s", r.message);
    cr_assert_not(h_stock_exists("tee", "lugo"));
    ln = h_line("tee", "madrid", 1);
    H_OK(&c);
}

/* ---- unknown orders ---- */

Test(engine_order, steps_on_an_unknown_order_are_refused)
{
    uint32_t ops[] = {TRASTENDA_OP_ORDER_PICK, TRASTENDA_OP_ORDER_PACK, TRASTENDA_OP_ORDER_SHIP,
                      TRASTENDA_OP_ORDER_DELIVER, TRASTENDA_OP_ORDER_CANCEL};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        trastenda_result r = step(ops[i], "nope", NULL);
        cr_assert_eq(r.code, TRASTENDA_E_UNKNOWN_ORDER, "op %u: %s", ops[i], r.message);
        cr_assert(strstr(r.message, "nope") != NULL, "%s", r.message);
    }
    trastenda_line ln = h_line("tee", "madrid", 1);
    trastenda_cmd c = return_cmd("nope", &ln, 1);
    H_FAIL(&c, TRASTENDA_E_UNKNOWN_ORDER);
    trastenda_result r = step(TRASTENDA_OP_ORDER_PICK, NULL, NULL);
    cr_assert_eq(r.code, TRASTENDA_E_INVALID, "missing order id: %s", r.message);
    trastenda_order_view v;
    cr_assert_eq(trastenda_engine_order_get(H.e, h_s("nope"), &v), TRASTENDA_E_UNKNOWN_ORDER);
    cr_assert_eq(trastenda_engine_order_get(H.e, h_s(""), &v), TRASTENDA_E_INVALID);
}

/* ---- retention ---- */

Test(engine_order, a_finished_order_leaves_memory_after_the_retention_window)
{
    h_receive("tee", "madrid", 10);
    (void)place("W-1", "tee", 3);
    STEP_OK(TRASTENDA_OP_ORDER_SHIP, "W-1", NULL);
    STEP_OK(TRASTENDA_OP_ORDER_DELIVER, "W-1", NULL);
    h_advance(600000 - 1); /* h_config_small: order_retention_ms = 600000 */
    cr_assert(order_known("W-1"));
    cr_assert_eq(h_records(TRASTENDA_REC_ORDER_REMOVED), 0);
    h_advance(1);
    cr_assert_eq(h_records(TRASTENDA_REC_ORDER_REMOVED), 1);
    cr_assert_not(order_known("W-1"));
    trastenda_engine_stats st;
    trastenda_engine_stats_get(H.e, &st);
    cr_assert_eq(st.orders, 0);
    cr_assert_eq(st.lines, 0);
    trastenda_result r = step(TRASTENDA_OP_ORDER_PICK, "W-1", NULL);
    cr_assert_eq(r.code, TRASTENDA_E_UNKNOWN_ORDER);
}

Test(engine_order, a_cancelled_order_leaves_memory_after_the_retention_window)
{
    h_receive("tee", "madrid", 10);
    (void)place("W-1", "tee", 3);
    STEP_OK(TRASTENDA_OP_ORDER_CANCEL, "W-1", NULL);
    h_advance(600000);
    cr_assert_eq(h_records(TRASTENDA_REC_ORDER_REMOVED), 1);
    cr_assert_not(order_known("W-1"));
    cr_assert_eq(h_stock("tee", "madrid").committed, 0);
}

Test(engine_order, an_open_order_is_never_purged)
{
    h_receive("tee", "madrid", 10);
    (void)place("W-1", "tee", 3);
    STEP_OK(TRASTENDA_OP_ORDER_SHIP, "W-1", NULL);
    h_advance(10 * 600000);
    cr_assert(order_known("W-1"));
    cr_assert_eq(order_view("W-1").state, TRASTENDA_ORDER_SHIPPED);
}

Test(engine_order, a_return_after_delivery_restarts_the_retention_window)
{
    h_receive("tee", "madrid", 10);
    (void)place("W-1", "tee", 3);
    STEP_OK(TRASTENDA_OP_ORDER_SHIP, "W-1", NULL);
    STEP_OK(TRASTENDA_OP_ORDER_DELIVER, "W-1", NULL);
    h_advance(300000);
    trastenda_line ln = h_line("tee", "madrid", 3);
    trastenda_cmd c = return_cmd("W-1", &ln, 1);
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.state, TRASTENDA_ORDER_RETURNED);
    h_advance(300000);
    cr_assert(order_known("W-1"), "the window restarted at the return");
    h_advance(300000);
    cr_assert_not(order_known("W-1"));
}

Test(engine_order, an_order_id_can_be_used_again_once_its_order_left_memory)
{
    h_receive("tee", "madrid", 10);
    uint64_t first = place("W-1", "tee", 3);
    STEP_OK(TRASTENDA_OP_ORDER_CANCEL, "W-1", NULL);
    h_advance(600000);
    uint64_t second = place("W-1", "tee", 3);
    cr_assert_gt(second, first);
    cr_assert_eq(h_stock("tee", "madrid").committed, 3);
}

Test(engine_order, a_finished_order_frees_its_slot_for_a_new_one)
{
    h_teardown();
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    cfg.orders_max = 1;
    h_setup_with(&cfg, 1);
    h_add_location_at("madrid", 40416800, -3703800, 0, "web");
    h_add_sku("tee", 0);
    h_receive("tee", "madrid", 10);
    (void)place("W-1", "tee", 3);
    STEP_OK(TRASTENDA_OP_ORDER_CANCEL, "W-1", NULL);
    trastenda_line ln = h_line("tee", NULL, 1);
    trastenda_cmd c = place_cmd("W-2", &ln, 1);
    H_FAIL(&c, TRASTENDA_E_TABLE_FULL);
    h_advance(600000);
    H_OK(&c);
}

/* Units marked unsellable stay behind: shipping takes only what is sellable on the shelf. */
Test(engine_order, ship_refuses_units_marked_unsellable)
{
    h_receive("tee", "madrid", 10);
    uint64_t hold = h_hold("tee", "madrid", 6);
    trastenda_cmd confirm = h_cmd_hold(TRASTENDA_OP_CONFIRM, hold);
    confirm.order_id = h_s("U-1");
    H_OK(&confirm);
    trastenda_cmd damage = h_cmd_stock(TRASTENDA_OP_MOVE_UNSELLABLE, "tee", "madrid", 8);
    damage.reason = TRASTENDA_REASON_DAMAGE;
    H_OK(&damage); /* 10 on hand, 8 unsellable, 6 committed: a shortfall */
    trastenda_cmd ship = h_cmd_order_step(TRASTENDA_OP_ORDER_SHIP, "U-1", NULL);
    trastenda_result r = H_FAIL(&ship, TRASTENDA_E_SHORT);
    cr_assert(strstr(r.message, "unsellable") != NULL, "%s", r.message);
    trastenda_stock s = h_stock("tee", "madrid");
    cr_assert_eq(s.on_hand, 10);
    cr_assert_eq(s.committed, 6);
    /* Two units back to sellable: 4 sellable units still do not cover 6. */
    trastenda_cmd restore = h_cmd_stock(TRASTENDA_OP_MOVE_UNSELLABLE, "tee", "madrid", -4);
    restore.reason = TRASTENDA_REASON_CORRECTION;
    H_OK(&restore);
    H_OK(&ship);
    s = h_stock("tee", "madrid");
    cr_assert_eq(s.on_hand, 4);
    cr_assert_eq(s.unsellable, 4);
}
