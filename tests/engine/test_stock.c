/*
 * tests/engine/test_stock.c - engine/stock.c: stock records and the stock commands (receive,
 * adjust, count, unsellable, safety stock, transfers), shortfalls, stock events and their ledger
 * entries.
 */
#include "helpers.h"

#include <criterion/parameterized.h>

/* Madrid holds SKU "tee" (reorder point 5); Lugo is a second location. */
static void
setup(void)
{
    h_setup();
    h_add_location("madrid");
    h_add_location("lugo");
    h_add_sku("tee", 5);
}

TestSuite(engine_stock, .init = setup, .fini = h_teardown);

/* ---- receive ---- */

Test(engine_stock, receive_creates_the_record_and_adds_on_hand)
{
    cr_assert_not(h_stock_exists("tee", "madrid"));
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_RECEIVE, "tee", "madrid", 10);
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.value, 10, "result carries on_hand");
    trastenda_stock s = h_stock("tee", "madrid");
    cr_assert_eq(s.on_hand, 10);
    cr_assert_eq(s.available, 10);
    cr_assert_eq(h_records(TRASTENDA_REC_STOCK), 1);
    h_receive("tee", "madrid", 5);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 15);
}

Test(engine_stock, receive_ledger_entry_names_move_deltas_reference_and_actor)
{
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_RECEIVE, "tee", "madrid", 10);
    c.reference = h_s("ASN-42");
    c.actor = h_s("ana");
    H_OK(&c);
    trastenda_ledger_entry le = h_ledger_one();
    cr_assert_eq(le.move, TRASTENDA_MOVE_RECEIVE);
    cr_assert(h_str_eq(le.sku, "tee"));
    cr_assert(h_str_eq(le.loc, "madrid"));
    cr_assert_eq(le.delta[TRASTENDA_Q_ON_HAND], 10);
    for (int q = 1; q < TRASTENDA_Q_COUNT_; q++)
        cr_assert_eq(le.delta[q], 0, "delta %d", q);
    cr_assert_eq(le.ref_kind, TRASTENDA_REFK_TEXT);
    cr_assert(h_str_eq(le.ref, "ASN-42"));
    cr_assert(h_str_eq(le.actor, "ana"));
}

Test(engine_stock, ledger_sequence_is_gapless_across_batches)
{
    h_receive("tee", "madrid", 10);
    uint64_t first = h_ledger_one().seq;
    h_receive("tee", "lugo", 1);
    cr_assert_eq(h_ledger_one().seq, first + 1);
    trastenda_cmd c = h_cmd_transfer_out("tee", "madrid", "lugo", 2);
    H_OK(&c);
    trastenda_ledger_entry le[4];
    cr_assert_eq(h_ledger(le, 4), 2);
    cr_assert_eq(le[0].seq, first + 2);
    cr_assert_eq(le[1].seq, first + 3);
}

Test(engine_stock, receive_without_reference_has_no_reference)
{
    h_receive("tee", "madrid", 1);
    trastenda_ledger_entry le = h_ledger_one();
    cr_assert_eq(le.ref_kind, TRASTENDA_REFK_NONE);
    cr_assert_eq(le.ref.len, 0);
    cr_assert_eq(le.actor.len, 0);
}

Test(engine_stock, receive_qty_out_of_range_is_invalid)
{
    int64_t bad[] = {0, -1, TRASTENDA_QTY_MAX + 1ll};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_RECEIVE, "tee", "madrid", bad[i]);
        trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
        cr_assert(strstr(r.message, "qty") != NULL, "%s", r.message);
    }
    cr_assert_not(h_stock_exists("tee", "madrid"), "no record left behind");
}

Test(engine_stock, receive_beyond_qty_max_is_a_limit)
{
    h_receive("tee", "madrid", TRASTENDA_QTY_MAX);
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_RECEIVE, "tee", "madrid", 1);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_LIMIT);
    cr_assert(strstr(r.message, "on_hand") != NULL, "%s", r.message);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, TRASTENDA_QTY_MAX);
    cr_assert_eq(H.out.ledger_count, 0);
}

Test(engine_stock, bad_reference_or_actor_is_refused)
{
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_RECEIVE, "tee", "madrid", 1);
    c.reference = h_s("line\nbreak");
    H_FAIL(&c, TRASTENDA_E_INVALID);
    c = h_cmd_stock(TRASTENDA_OP_RECEIVE, "tee", "madrid", 1);
    c.actor = h_s("0123456789012345678901234567890123456789012345678901234567890123456789");
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_LIMIT);
    cr_assert(strstr(r.message, "actor") != NULL, "%s", r.message);
    cr_assert_not(h_stock_exists("tee", "madrid"));
}

Test(engine_stock, stock_command_without_sku_or_location_is_invalid)
{
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_RECEIVE, NULL, "madrid", 1);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "sku is required") != NULL, "%s", r.message);
    c = h_cmd_stock(TRASTENDA_OP_RECEIVE, "tee", NULL, 1);
    r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "location is required") != NULL, "%s", r.message);
}

/* ---- adjust ---- */

ParameterizedTestParameters(engine_stock, adjust_with_each_reason_changes_on_hand)
{
    static uint32_t reasons[] = {TRASTENDA_REASON_COUNT, TRASTENDA_REASON_DAMAGE,
                                 TRASTENDA_REASON_THEFT, TRASTENDA_REASON_FOUND,
                                 TRASTENDA_REASON_CORRECTION};
    return cr_make_param_array(uint32_t, reasons, sizeof(reasons) / sizeof(reasons[0]));
}

ParameterizedTest(uint32_t *reason, engine_stock, adjust_with_each_reason_changes_on_hand)
{
    h_receive("tee", "madrid", 10);
    trastenda_cmd c = h_cmd_adjust("tee", "madrid", -3, *reason);
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.value, 7);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 7);
    trastenda_ledger_entry le = h_ledger_one();
    cr_assert_eq(le.move, TRASTENDA_MOVE_ADJUST);
    cr_assert_eq(le.cause, *reason);
    cr_assert_eq(le.delta[TRASTENDA_Q_ON_HAND], -3);
    c = h_cmd_adjust("tee", "madrid", 4, *reason);
    H_OK(&c);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 11);
}

Test(engine_stock, adjust_without_a_valid_reason_is_invalid)
{
    h_receive("tee", "madrid", 10);
    uint32_t bad[] = {TRASTENDA_REASON_NONE, TRASTENDA_REASON_QUALITY, 99};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        trastenda_cmd c = h_cmd_adjust("tee", "madrid", -1, bad[i]);
        trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
        cr_assert(strstr(r.message, "reason") != NULL, "%s", r.message);
    }
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 10);
}

Test(engine_stock, adjust_zero_or_out_of_range_is_invalid)
{
    h_receive("tee", "madrid", 10);
    int64_t bad[] = {0, -TRASTENDA_QTY_MAX - 1ll, TRASTENDA_QTY_MAX + 1ll};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        trastenda_cmd c = h_cmd_adjust("tee", "madrid", bad[i], TRASTENDA_REASON_CORRECTION);
        H_FAIL(&c, TRASTENDA_E_INVALID);
    }
}

Test(engine_stock, adjust_below_zero_on_hand_is_invalid)
{
    h_receive("tee", "madrid", 10);
    trastenda_cmd c = h_cmd_adjust("tee", "madrid", -11, TRASTENDA_REASON_THEFT);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "below 0") != NULL, "%s", r.message);
    c = h_cmd_adjust("tee", "lugo", -1, TRASTENDA_REASON_THEFT);
    H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert_not(h_stock_exists("tee", "lugo"));
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 10);
}

Test(engine_stock, adjust_below_unsellable_is_invalid)
{
    h_receive("tee", "madrid", 10);
    trastenda_cmd m = h_cmd_stock(TRASTENDA_OP_MOVE_UNSELLABLE, "tee", "madrid", 4);
    m.reason = TRASTENDA_REASON_DAMAGE;
    H_OK(&m);
    trastenda_cmd c = h_cmd_adjust("tee", "madrid", -7, TRASTENDA_REASON_THEFT);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "unsellable") != NULL, "%s", r.message);
    c = h_cmd_adjust("tee", "madrid", -6, TRASTENDA_REASON_THEFT);
    H_OK(&c);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 4);
}

Test(engine_stock, adjust_positive_creates_a_record)
{
    trastenda_cmd c = h_cmd_adjust("tee", "lugo", 2, TRASTENDA_REASON_FOUND);
    H_OK(&c);
    cr_assert_eq(h_stock("tee", "lugo").on_hand, 2);
}

Test(engine_stock, adjust_beyond_qty_max_is_a_limit)
{
    h_receive("tee", "madrid", TRASTENDA_QTY_MAX - 1);
    trastenda_cmd c = h_cmd_adjust("tee", "madrid", 2, TRASTENDA_REASON_FOUND);
    H_FAIL(&c, TRASTENDA_E_LIMIT);
    c = h_cmd_adjust("tee", "madrid", 1, TRASTENDA_REASON_FOUND);
    H_OK(&c);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, TRASTENDA_QTY_MAX);
}

/* ---- count ---- */

Test(engine_stock, count_sets_on_hand_absolutely)
{
    h_receive("tee", "madrid", 10);
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_COUNT, "tee", "madrid", 7);
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.value, 7);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 7);
    trastenda_ledger_entry le = h_ledger_one();
    cr_assert_eq(le.move, TRASTENDA_MOVE_ADJUST);
    cr_assert_eq(le.cause, TRASTENDA_REASON_COUNT, "count is the default cause");
    cr_assert_eq(le.delta[TRASTENDA_Q_ON_HAND], -3);
    c = h_cmd_stock(TRASTENDA_OP_COUNT, "tee", "madrid", 12);
    c.reason = TRASTENDA_REASON_FOUND;
    H_OK(&c);
    le = h_ledger_one();
    cr_assert_eq(le.cause, TRASTENDA_REASON_FOUND);
    cr_assert_eq(le.delta[TRASTENDA_Q_ON_HAND], 5);
}

Test(engine_stock, count_equal_to_on_hand_writes_no_ledger_entry)
{
    h_receive("tee", "madrid", 10);
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_COUNT, "tee", "madrid", 10);
    H_OK(&c);
    cr_assert_eq(H.out.ledger_count, 0);
}

Test(engine_stock, count_of_a_new_record_creates_it)
{
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_COUNT, "tee", "lugo", 3);
    H_OK(&c);
    cr_assert_eq(h_stock("tee", "lugo").on_hand, 3);
}

Test(engine_stock, count_with_matching_expected_applies)
{
    h_receive("tee", "madrid", 10);
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_COUNT, "tee", "madrid", 8);
    c.has_expected = 1;
    c.expected = 10;
    H_OK(&c);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 8);
}

Test(engine_stock, count_with_stale_expected_returns_the_current_figure)
{
    h_receive("tee", "madrid", 10);
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_COUNT, "tee", "madrid", 8);
    c.has_expected = 1;
    c.expected = 9;
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_CAS_MISMATCH);
    cr_assert_eq(r.value, 10);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 10);
    cr_assert_eq(H.out.ledger_count, 0);
    /* An absent record counts as 0 on hand: expecting 1 there is stale too. */
    c = h_cmd_stock(TRASTENDA_OP_COUNT, "tee", "lugo", 2);
    c.has_expected = 1;
    c.expected = 1;
    r = H_FAIL(&c, TRASTENDA_E_CAS_MISMATCH);
    cr_assert_eq(r.value, 0);
    cr_assert_not(h_stock_exists("tee", "lugo"));
}

Test(engine_stock, count_out_of_range_or_bad_reason_is_invalid)
{
    h_receive("tee", "madrid", 10);
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_COUNT, "tee", "madrid", -1);
    H_FAIL(&c, TRASTENDA_E_INVALID);
    c = h_cmd_stock(TRASTENDA_OP_COUNT, "tee", "madrid", TRASTENDA_QTY_MAX + 1ll);
    H_FAIL(&c, TRASTENDA_E_INVALID);
    c = h_cmd_stock(TRASTENDA_OP_COUNT, "tee", "madrid", 3);
    c.reason = TRASTENDA_REASON_QUALITY;
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "reason") != NULL, "%s", r.message);
}

Test(engine_stock, count_below_unsellable_is_invalid)
{
    h_receive("tee", "madrid", 10);
    trastenda_cmd m = h_cmd_stock(TRASTENDA_OP_MOVE_UNSELLABLE, "tee", "madrid", 4);
    m.reason = TRASTENDA_REASON_QUALITY;
    H_OK(&m);
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_COUNT, "tee", "madrid", 3);
    H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 10);
}

/* ---- unsellable ---- */

Test(engine_stock, move_unsellable_takes_units_out_of_available_and_back)
{
    h_receive("tee", "madrid", 10);
    trastenda_cmd m = h_cmd_stock(TRASTENDA_OP_MOVE_UNSELLABLE, "tee", "madrid", 4);
    m.reason = TRASTENDA_REASON_DAMAGE;
    H_OK(&m);
    trastenda_stock s = h_stock("tee", "madrid");
    cr_assert_eq(s.on_hand, 10);
    cr_assert_eq(s.unsellable, 4);
    cr_assert_eq(s.available, 6);
    trastenda_ledger_entry le = h_ledger_one();
    cr_assert_eq(le.move, TRASTENDA_MOVE_UNSELLABLE);
    cr_assert_eq(le.cause, TRASTENDA_REASON_DAMAGE);
    cr_assert_eq(le.delta[TRASTENDA_Q_UNSELLABLE], 4);
    cr_assert_eq(le.delta[TRASTENDA_Q_ON_HAND], 0);
    m.qty = -3;
    m.reason = TRASTENDA_REASON_CORRECTION;
    H_OK(&m);
    s = h_stock("tee", "madrid");
    cr_assert_eq(s.unsellable, 1);
    cr_assert_eq(s.available, 9);
}

Test(engine_stock, move_unsellable_out_of_bounds_is_invalid)
{
    h_receive("tee", "madrid", 10);
    trastenda_cmd m = h_cmd_stock(TRASTENDA_OP_MOVE_UNSELLABLE, "tee", "madrid", 11);
    m.reason = TRASTENDA_REASON_DAMAGE;
    trastenda_result r = H_FAIL(&m, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "unsellable would be 11") != NULL, "%s", r.message);
    m.qty = -1;
    H_FAIL(&m, TRASTENDA_E_INVALID);
    m.qty = 0;
    H_FAIL(&m, TRASTENDA_E_INVALID);
    cr_assert_eq(h_stock("tee", "madrid").unsellable, 0);
}

Test(engine_stock, move_unsellable_needs_damage_quality_or_correction)
{
    h_receive("tee", "madrid", 10);
    uint32_t bad[] = {TRASTENDA_REASON_NONE, TRASTENDA_REASON_COUNT, TRASTENDA_REASON_THEFT,
                      TRASTENDA_REASON_FOUND, 42};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        trastenda_cmd m = h_cmd_stock(TRASTENDA_OP_MOVE_UNSELLABLE, "tee", "madrid", 1);
        m.reason = bad[i];
        H_FAIL(&m, TRASTENDA_E_INVALID);
    }
}

Test(engine_stock, move_unsellable_without_a_record_fails)
{
    trastenda_cmd m = h_cmd_stock(TRASTENDA_OP_MOVE_UNSELLABLE, "tee", "lugo", 1);
    m.reason = TRASTENDA_REASON_QUALITY;
    H_FAIL(&m, TRASTENDA_E_NO_STOCK_RECORD);
    cr_assert_not(h_stock_exists("tee", "lugo"));
}

/* ---- safety stock ---- */

Test(engine_stock, set_safety_holds_units_back_and_floors_available_at_zero)
{
    h_receive("tee", "madrid", 10);
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_SET_SAFETY, "tee", "madrid", 4);
    H_OK(&c);
    trastenda_stock s = h_stock("tee", "madrid");
    cr_assert_eq(s.safety_stock, 4);
    cr_assert_eq(s.available, 6);
    trastenda_ledger_entry le = h_ledger_one();
    cr_assert_eq(le.move, TRASTENDA_MOVE_SAFETY);
    cr_assert_eq(le.delta[TRASTENDA_Q_SAFETY], 4);
    c.qty = 25;
    H_OK(&c);
    s = h_stock("tee", "madrid");
    cr_assert_eq(s.available, 0, "floored at 0");
    cr_assert_eq(h_ledger_one().delta[TRASTENDA_Q_SAFETY], 21);
    cr_assert_eq(h_event_find(TRASTENDA_EVENT_SHORTFALL, NULL, NULL, NULL), 0);
    cr_assert_eq(h_event_find(TRASTENDA_EVENT_OUT_OF_STOCK, "tee", "madrid", NULL), 1);
}

Test(engine_stock, set_safety_above_free_units_is_never_a_shortfall)
{
    h_receive("tee", "madrid", 10);
    h_hold("tee", "madrid", 8);
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_SET_SAFETY, "tee", "madrid", 50);
    H_OK(&c);
    cr_assert_eq(h_stock("tee", "madrid").available, 0);
    cr_assert_eq(h_event_find(TRASTENDA_EVENT_SHORTFALL, NULL, NULL, NULL), 0);
    trastenda_line ln = h_line("tee", "madrid", 1);
    trastenda_cmd rv = h_cmd_reserve(&ln, 1, 60000);
    H_FAIL(&rv, TRASTENDA_E_SHORT);
}

Test(engine_stock, set_safety_out_of_range_is_invalid)
{
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_SET_SAFETY, "tee", "madrid", -1);
    H_FAIL(&c, TRASTENDA_E_INVALID);
    c.qty = TRASTENDA_QTY_MAX + 1ll;
    H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert_not(h_stock_exists("tee", "madrid"));
}

/* ---- transfers ---- */

Test(engine_stock, transfer_out_puts_units_in_transit_at_the_destination)
{
    h_receive("tee", "madrid", 10);
    trastenda_cmd c = h_cmd_transfer_out("tee", "madrid", "lugo", 4);
    c.reference = h_s("TR-7");
    H_OK(&c);
    trastenda_stock from = h_stock("tee", "madrid"), to = h_stock("tee", "lugo");
    cr_assert_eq(from.on_hand, 6);
    cr_assert_eq(to.on_hand, 0);
    cr_assert_eq(to.in_transit, 4);
    cr_assert_eq(to.available, 0, "in transit is not sellable");
    trastenda_ledger_entry le[4];
    cr_assert_eq(h_ledger(le, 4), 2);
    cr_assert(h_str_eq(le[0].loc, "madrid"));
    cr_assert_eq(le[0].move, TRASTENDA_MOVE_TRANSFER_OUT);
    cr_assert_eq(le[0].delta[TRASTENDA_Q_ON_HAND], -4);
    cr_assert(h_str_eq(le[1].loc, "lugo"));
    cr_assert_eq(le[1].delta[TRASTENDA_Q_IN_TRANSIT], 4);
    cr_assert(h_str_eq(le[1].ref, "TR-7"));

    trastenda_cmd in = h_cmd_stock(TRASTENDA_OP_TRANSFER_IN, "tee", "lugo", 3);
    H_OK(&in);
    to = h_stock("tee", "lugo");
    cr_assert_eq(to.in_transit, 1);
    cr_assert_eq(to.on_hand, 3);
    trastenda_ledger_entry li = h_ledger_one();
    cr_assert_eq(li.move, TRASTENDA_MOVE_TRANSFER_IN);
    cr_assert_eq(li.delta[TRASTENDA_Q_IN_TRANSIT], -3);
    cr_assert_eq(li.delta[TRASTENDA_Q_ON_HAND], 3);
}

Test(engine_stock, transfer_out_needs_available_units_at_the_source)
{
    h_receive("tee", "madrid", 10);
    h_hold("tee", "madrid", 7);
    trastenda_cmd c = h_cmd_transfer_out("tee", "madrid", "lugo", 4);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_SHORT);
    cr_assert_eq(r.value, 3, "value is what is available");
    cr_assert_not(h_stock_exists("tee", "lugo"), "no destination record left behind");
    c.qty = 3;
    H_OK(&c);
}

Test(engine_stock, transfer_out_to_the_same_location_is_invalid)
{
    h_receive("tee", "madrid", 10);
    trastenda_cmd c = h_cmd_transfer_out("tee", "madrid", "madrid", 1);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "location_to") != NULL, "%s", r.message);
}

Test(engine_stock, transfer_out_destination_must_be_known)
{
    h_receive("tee", "madrid", 10);
    trastenda_cmd c = h_cmd_transfer_out("tee", "madrid", NULL, 1);
    H_FAIL(&c, TRASTENDA_E_INVALID);
    c = h_cmd_transfer_out("tee", "madrid", "paris", 1);
    H_FAIL(&c, TRASTENDA_E_UNKNOWN_LOCATION);
}

Test(engine_stock, transfer_without_a_record_fails)
{
    trastenda_cmd c = h_cmd_transfer_out("tee", "madrid", "lugo", 1);
    H_FAIL(&c, TRASTENDA_E_NO_STOCK_RECORD);
    trastenda_cmd in = h_cmd_stock(TRASTENDA_OP_TRANSFER_IN, "tee", "lugo", 1);
    H_FAIL(&in, TRASTENDA_E_NO_STOCK_RECORD);
}

Test(engine_stock, transfer_in_more_than_in_transit_is_invalid)
{
    h_receive("tee", "madrid", 10);
    trastenda_cmd c = h_cmd_transfer_out("tee", "madrid", "lugo", 2);
    H_OK(&c);
    trastenda_cmd in = h_cmd_stock(TRASTENDA_OP_TRANSFER_IN, "tee", "lugo", 3);
    trastenda_result r = H_FAIL(&in, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "in_transit") != NULL, "%s", r.message);
    in.qty = 0;
    H_FAIL(&in, TRASTENDA_E_INVALID);
    cr_assert_eq(h_stock("tee", "lugo").in_transit, 2);
}

Test(engine_stock, transfer_qty_out_of_range_is_invalid)
{
    h_receive("tee", "madrid", 10);
    trastenda_cmd c = h_cmd_transfer_out("tee", "madrid", "lugo", 0);
    H_FAIL(&c, TRASTENDA_E_INVALID);
    c.qty = -2;
    H_FAIL(&c, TRASTENDA_E_INVALID);
}

Test(engine_stock, transfers_beyond_qty_max_are_a_limit)
{
    h_add_location("vigo");
    h_receive("tee", "madrid", TRASTENDA_QTY_MAX);
    h_receive("tee", "vigo", 1);
    trastenda_cmd c = h_cmd_transfer_out("tee", "madrid", "lugo", TRASTENDA_QTY_MAX);
    H_OK(&c);
    c = h_cmd_transfer_out("tee", "vigo", "lugo", 1);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_LIMIT);
    cr_assert(strstr(r.message, "in_transit") != NULL, "%s", r.message);
    /* on_hand at lugo full, one unit in transit there: receiving it would overflow. */
    trastenda_cmd in = h_cmd_stock(TRASTENDA_OP_TRANSFER_IN, "tee", "lugo", TRASTENDA_QTY_MAX);
    H_OK(&in);
    c = h_cmd_transfer_out("tee", "vigo", "lugo", 1);
    H_OK(&c);
    in.qty = 1;
    r = H_FAIL(&in, TRASTENDA_E_LIMIT);
    cr_assert(strstr(r.message, "on_hand") != NULL, "%s", r.message);
}

/* ---- full stock table ---- */

static void
setup_tiny_stock(void)
{
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    cfg.stock_max = 2;
    h_setup_with(&cfg, 1);
    h_add_location("madrid");
    h_add_location("lugo");
    h_add_location("vigo");
    h_add_sku("tee", 5);
}

Test(engine_stock, full_stock_table_names_the_setting, .init = setup_tiny_stock)
{
    h_receive("tee", "madrid", 10);
    h_receive("tee", "lugo", 10);
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_RECEIVE, "tee", "vigo", 1);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_TABLE_FULL);
    cr_assert(strstr(r.message, "stock_max") != NULL, "%s", r.message);
    trastenda_cmd s = h_cmd_stock(TRASTENDA_OP_SET_SAFETY, "tee", "vigo", 1);
    H_FAIL(&s, TRASTENDA_E_TABLE_FULL);
    trastenda_cmd t = h_cmd_transfer_out("tee", "madrid", "vigo", 1);
    H_FAIL(&t, TRASTENDA_E_TABLE_FULL);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 10, "the failed transfer left no trace");
    /* Existing records still work. */
    t = h_cmd_transfer_out("tee", "madrid", "lugo", 1);
    H_OK(&t);
}

/* ---- shortfall ---- */

Test(engine_stock, damage_under_open_holds_is_a_shortfall_naming_the_holds)
{
    h_receive("tee", "madrid", 10);
    uint64_t h1 = h_hold("tee", "madrid", 6);
    uint64_t h2 = h_hold("tee", "madrid", 2);
    trastenda_cmd c = h_cmd_adjust("tee", "madrid", -5, TRASTENDA_REASON_DAMAGE);
    H_OK(&c);
    trastenda_stock s = h_stock("tee", "madrid");
    cr_assert_eq(s.on_hand, 5);
    cr_assert_eq(s.held, 8);
    cr_assert_eq(s.available, -3, "in shortfall available is the (negative) free figure");

    trastenda_event ev;
    cr_assert_eq(h_event_find(TRASTENDA_EVENT_SHORTFALL, "tee", "madrid", &ev), 1);
    cr_assert_eq(ev.available, -3);
    cr_assert_eq(ev.holds_at_risk, 2);
    cr_assert_eq(ev.holds_listed, 2);
    cr_assert_eq(ev.holds[0], h1 < h2 ? h1 : h2, "listed smallest id first");
    cr_assert_eq(ev.holds[1], h1 < h2 ? h2 : h1);
    cr_assert_eq(ev.orders_at_risk, 0);
    cr_assert_eq(h_event_find(TRASTENDA_EVENT_OUT_OF_STOCK, "tee", "madrid", NULL), 1);
}

Test(engine_stock, shortfall_refuses_new_holds_and_transfers_until_resolved)
{
    h_receive("tee", "madrid", 10);
    uint64_t h1 = h_hold("tee", "madrid", 6);
    h_hold("tee", "madrid", 2);
    trastenda_cmd c = h_cmd_adjust("tee", "madrid", -5, TRASTENDA_REASON_THEFT);
    H_OK(&c);
    trastenda_line ln = h_line("tee", "madrid", 1);
    trastenda_cmd rv = h_cmd_reserve(&ln, 1, 60000);
    trastenda_result r = H_FAIL(&rv, TRASTENDA_E_SHORTFALL);
    cr_assert(strstr(r.message, "shortfall") != NULL, "%s", r.message);
    trastenda_cmd t = h_cmd_transfer_out("tee", "madrid", "lugo", 1);
    H_FAIL(&t, TRASTENDA_E_SHORTFALL);

    /* Receiving more does not yet cover the promises: still short. */
    h_receive("tee", "madrid", 2);
    cr_assert_eq(h_stock("tee", "madrid").available, -1);
    H_FAIL(&rv, TRASTENDA_E_SHORTFALL);

    /* Releasing a hold resolves it. */
    trastenda_cmd rel = h_cmd_hold(TRASTENDA_OP_RELEASE, h1);
    H_OK(&rel);
    trastenda_stock s = h_stock("tee", "madrid");
    cr_assert_eq(s.available, 5);
    cr_assert_eq(h_event_find(TRASTENDA_EVENT_BACK_IN_STOCK, "tee", "madrid", NULL), 1);
    H_OK(&rv);
}

Test(engine_stock, shortfall_names_the_orders_at_risk)
{
    h_add_location_at("web-dc", 0, 0, 0, "web");
    h_receive("tee", "web-dc", 5);
    h_place("order-1", "tee", 3, "web");
    trastenda_cmd c = h_cmd_adjust("tee", "web-dc", -4, TRASTENDA_REASON_DAMAGE);
    H_OK(&c);
    trastenda_event ev;
    cr_assert_eq(h_event_find(TRASTENDA_EVENT_SHORTFALL, "tee", "web-dc", &ev), 1);
    cr_assert_eq(ev.available, -2);
    cr_assert_eq(ev.holds_at_risk, 0);
    cr_assert_eq(ev.orders_at_risk, 1);
    cr_assert_eq(ev.orders_listed, 1);
    cr_assert(h_str_eq(ev.orders[0], "order-1"));
}

Test(engine_stock, count_or_unsellable_below_promises_is_a_shortfall)
{
    h_receive("tee", "madrid", 10);
    h_hold("tee", "madrid", 6);
    trastenda_cmd m = h_cmd_stock(TRASTENDA_OP_MOVE_UNSELLABLE, "tee", "madrid", 5);
    m.reason = TRASTENDA_REASON_DAMAGE;
    H_OK(&m);
    cr_assert_eq(h_stock("tee", "madrid").available, -1);
    cr_assert_eq(h_event_find(TRASTENDA_EVENT_SHORTFALL, "tee", "madrid", NULL), 1);
    /* Deeper into the shortfall: no second event for the same episode. */
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_COUNT, "tee", "madrid", 8);
    H_OK(&c);
    cr_assert_eq(h_stock("tee", "madrid").available, -3);
    cr_assert_eq(h_event_find(TRASTENDA_EVENT_SHORTFALL, NULL, NULL, NULL), 0);
}

Test(engine_stock, shortfall_counts_as_zero_in_availability)
{
    h_receive("tee", "madrid", 10);
    h_receive("tee", "lugo", 4);
    h_hold("tee", "madrid", 6);
    trastenda_cmd c = h_cmd_adjust("tee", "madrid", -8, TRASTENDA_REASON_THEFT);
    H_OK(&c);
    int64_t a = -1;
    trastenda_stock recs[4];
    uint32_t n = 0;
    cr_assert_eq(trastenda_engine_availability(H.e, h_sku_ix("tee"), TRASTENDA_SCOPE_ALL, h_s(NULL),
                                               &a, recs, 4, &n),
                 TRASTENDA_OK);
    cr_assert_eq(a, 4);
    cr_assert_eq(n, 2);
}

/* ---- stock events ---- */

Test(engine_stock, first_receipt_is_back_in_stock_only)
{
    h_receive("tee", "madrid", 10);
    trastenda_event ev[8];
    uint32_t n = h_events(ev, 8);
    cr_assert_eq(n, 1);
    cr_assert_eq(ev[0].kind, TRASTENDA_EVENT_BACK_IN_STOCK);
    cr_assert(h_str_eq(ev[0].sku, "tee"));
    cr_assert(h_str_eq(ev[0].loc, "madrid"));
    cr_assert_eq(ev[0].available, 10);
}

Test(engine_stock, falling_to_the_reorder_point_is_low_stock_once)
{
    h_receive("tee", "madrid", 10);
    trastenda_cmd c = h_cmd_adjust("tee", "madrid", -4, TRASTENDA_REASON_CORRECTION);
    H_OK(&c);
    cr_assert_eq(H.out.event_count, 0, "6 is above the reorder point 5");
    c.qty = -1;
    H_OK(&c);
    trastenda_event ev;
    cr_assert_eq(h_event_find(TRASTENDA_EVENT_LOW_STOCK, "tee", "madrid", &ev), 1);
    cr_assert_eq(ev.available, 5);
    cr_assert_eq(H.out.event_count, 1);
    H_OK(&c);
    cr_assert_eq(H.out.event_count, 0, "already low: no repeat");
}

Test(engine_stock, falling_to_zero_is_out_of_stock_and_rising_is_back_in_stock)
{
    h_receive("tee", "madrid", 10);
    trastenda_cmd c = h_cmd_adjust("tee", "madrid", -10, TRASTENDA_REASON_THEFT);
    H_OK(&c);
    cr_assert_eq(h_event_find(TRASTENDA_EVENT_LOW_STOCK, "tee", "madrid", NULL), 1);
    cr_assert_eq(h_event_find(TRASTENDA_EVENT_OUT_OF_STOCK, "tee", "madrid", NULL), 1);
    cr_assert_eq(h_event_find(TRASTENDA_EVENT_SHORTFALL, NULL, NULL, NULL), 0, "0 is not short");
    h_receive("tee", "madrid", 2);
    trastenda_event ev;
    cr_assert_eq(h_event_find(TRASTENDA_EVENT_BACK_IN_STOCK, "tee", "madrid", &ev), 1);
    cr_assert_eq(ev.available, 2);
    cr_assert_eq(H.out.event_count, 1, "still low: no low-stock event again");
}

Test(engine_stock, holds_taking_the_last_unit_are_out_of_stock)
{
    h_receive("tee", "madrid", 3);
    uint64_t h = h_hold("tee", "madrid", 3);
    cr_assert_eq(h_event_find(TRASTENDA_EVENT_OUT_OF_STOCK, "tee", "madrid", NULL), 1);
    trastenda_cmd rel = h_cmd_hold(TRASTENDA_OP_RELEASE, h);
    H_OK(&rel);
    cr_assert_eq(h_event_find(TRASTENDA_EVENT_BACK_IN_STOCK, "tee", "madrid", NULL), 1);
}

/* ---- reads ---- */

Test(engine_stock, stock_read_of_a_missing_record_fails)
{
    trastenda_stock s;
    cr_assert_eq(trastenda_engine_stock_read(H.e, h_sku_ix("tee"), h_loc_ix("madrid"), &s),
                 TRASTENDA_E_NO_STOCK_RECORD);
    cr_assert_eq(trastenda_engine_stock_read(H.e, 99, 99, &s), TRASTENDA_E_NO_STOCK_RECORD);
}

Test(engine_stock, failed_command_leaves_no_trace_in_the_entry)
{
    h_receive("tee", "madrid", 10);
    h_hold("tee", "madrid", 2);
    trastenda_stock before = h_stock("tee", "madrid");
    trastenda_cmd c = h_cmd_adjust("tee", "madrid", -11, TRASTENDA_REASON_THEFT);
    H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert_eq(h_records(TRASTENDA_REC_STOCK), 0);
    cr_assert_eq(H.out.ledger_count + H.out.event_count, 0);
    trastenda_stock after = h_stock("tee", "madrid");
    cr_assert_eq(memcmp(&before, &after, sizeof(before)), 0);
}
