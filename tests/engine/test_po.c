/*
 * tests/engine/test_po.c - engine/po.c: purchase orders (create, receive, close, retention).
 */
#include "helpers.h"

/* SKUs "tee" and "cap"; locations "madrid" and "lugo". */
static void
setup(void)
{
    h_setup();
    h_add_location("madrid");
    h_add_location("lugo");
    h_add_sku("tee", 0);
    h_add_sku("cap", 0);
}

TestSuite(engine_po, .init = setup, .fini = h_teardown);

static trastenda_po_view
po_view(const char *id)
{
    static trastenda_po_view v;
    memset(&v, 0, sizeof(v));
    trastenda_err err = trastenda_engine_po_get(H.e, h_s(id), &v);
    cr_assert_eq(err, TRASTENDA_OK, "po_get(%s): %s", id, trastenda_err_name(err));
    return v;
}

/* PO "po-1": 10 tee at madrid, 5 cap at lugo. */
static void
create_po1(void)
{
    trastenda_line ln[] = {h_line("tee", "madrid", 10), h_line("cap", "lugo", 5)};
    trastenda_cmd c = h_cmd_po(TRASTENDA_OP_PO_CREATE, "po-1", ln, 2);
    H_OK(&c);
}

static trastenda_result
receive(const char *po, const char *sku, const char *loc, int64_t qty, trastenda_err want)
{
    trastenda_line ln = h_line(sku, loc, qty);
    trastenda_cmd c = h_cmd_po(TRASTENDA_OP_PO_RECEIVE, po, &ln, 1);
    return H_FAIL(&c, want);
}

static trastenda_result
close_po(const char *po, trastenda_err want)
{
    trastenda_cmd c = h_cmd_po(TRASTENDA_OP_PO_CLOSE, po, NULL, 0);
    return H_FAIL(&c, want);
}

/* ---- create ---- */

Test(engine_po, create_raises_incoming_per_line)
{
    create_po1();
    cr_assert_eq(h_stock("tee", "madrid").incoming, 10);
    cr_assert_eq(h_stock("cap", "lugo").incoming, 5);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 0);
    cr_assert_eq(h_records(TRASTENDA_REC_PO), 1);
    trastenda_ledger_entry le[4];
    cr_assert_eq(h_ledger(le, 4), 2);
    cr_assert_eq(le[0].move, TRASTENDA_MOVE_PO_CREATE);
    cr_assert_eq(le[0].delta[TRASTENDA_Q_INCOMING], 10);
    cr_assert_eq(le[0].ref_kind, TRASTENDA_REFK_PO);
    cr_assert(h_str_eq(le[0].ref, "po-1"));
    cr_assert(h_str_eq(le[1].sku, "cap"));
    cr_assert_eq(le[1].delta[TRASTENDA_Q_INCOMING], 5);
    trastenda_po_view v = po_view("po-1");
    cr_assert_str_eq(v.id, "po-1");
    cr_assert_eq(v.open, 1);
    cr_assert_eq(v.line_count, 2);
    cr_assert_eq(v.lines[0].qty, 10);
    cr_assert_eq(v.lines[0].shipped, 0, "nothing received yet");
    cr_assert_eq(v.lines[1].sku_ix, h_sku_ix("cap"));
    cr_assert_eq(v.lines[1].loc_ix, h_loc_ix("lugo"));
}

Test(engine_po, create_of_a_duplicate_id_fails)
{
    create_po1();
    trastenda_line ln = h_line("tee", "lugo", 1);
    trastenda_cmd c = h_cmd_po(TRASTENDA_OP_PO_CREATE, "po-1", &ln, 1);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_DUPLICATE);
    cr_assert(strstr(r.message, "po-1") != NULL, "%s", r.message);
    cr_assert_not(h_stock_exists("tee", "lugo"));
    close_po("po-1", TRASTENDA_OK);
    H_FAIL(&c, TRASTENDA_E_DUPLICATE);
}

Test(engine_po, create_with_repeated_lines_names_the_line)
{
    trastenda_line ln[] = {h_line("tee", "madrid", 1), h_line("cap", "madrid", 1),
                           h_line("tee", "madrid", 2)};
    trastenda_cmd c = h_cmd_po(TRASTENDA_OP_PO_CREATE, "po-1", ln, 3);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert_eq(r.line, 2);
    cr_assert(strstr(r.message, "repeats line 0") != NULL, "%s", r.message);
    cr_assert_not(h_stock_exists("tee", "madrid"));
    cr_assert_eq(trastenda_engine_po_get(H.e, h_s("po-1"), &(trastenda_po_view){0}),
                 TRASTENDA_E_UNKNOWN_PO);
}

Test(engine_po, create_with_a_bad_line_names_it)
{
    trastenda_line ln[] = {h_line("tee", "madrid", 1), h_line("hat", "madrid", 1)};
    trastenda_cmd c = h_cmd_po(TRASTENDA_OP_PO_CREATE, "po-1", ln, 2);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_UNKNOWN_SKU);
    cr_assert_eq(r.line, 1);
    ln[1] = h_line("cap", "paris", 1);
    r = H_FAIL(&c, TRASTENDA_E_UNKNOWN_LOCATION);
    cr_assert_eq(r.line, 1);
    ln[1] = h_line("cap", "madrid", 0);
    r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert_eq(r.line, 1);
    ln[1] = h_line("cap", "madrid", TRASTENDA_QTY_MAX + 1ll);
    H_FAIL(&c, TRASTENDA_E_INVALID);
    ln[1] = h_line("cap", NULL, 1);
    H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert_not(h_stock_exists("tee", "madrid"), "line 0 left no trace");
}

Test(engine_po, create_line_count_out_of_range_is_a_limit)
{
    trastenda_cmd c = h_cmd_po(TRASTENDA_OP_PO_CREATE, "po-1", NULL, 0);
    H_FAIL(&c, TRASTENDA_E_LIMIT);
    static trastenda_line many[TRASTENDA_LINES_MAX + 1];
    for (int i = 0; i <= TRASTENDA_LINES_MAX; i++)
        many[i] = h_line("tee", "madrid", 1);
    c = h_cmd_po(TRASTENDA_OP_PO_CREATE, "po-1", many, TRASTENDA_LINES_MAX + 1);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_LIMIT);
    cr_assert(strstr(r.message, "lines must be 1..64") != NULL, "%s", r.message);
    c = h_cmd_po(TRASTENDA_OP_PO_CREATE, "po-1", NULL, 1);
    H_FAIL(&c, TRASTENDA_E_INVALID);
}

Test(engine_po, po_id_missing_or_too_long_is_refused)
{
    trastenda_line ln = h_line("tee", "madrid", 1);
    trastenda_cmd c = h_cmd_po(TRASTENDA_OP_PO_CREATE, NULL, &ln, 1);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "po_id") != NULL, "%s", r.message);
    c.po_id = h_s("0123456789012345678901234567890123456789012345678901234567890123456");
    H_FAIL(&c, TRASTENDA_E_LIMIT);
    c.po_id = h_s("po\x01");
    H_FAIL(&c, TRASTENDA_E_INVALID);
}

Test(engine_po, incoming_beyond_qty_max_is_a_limit)
{
    trastenda_line ln = h_line("tee", "madrid", TRASTENDA_QTY_MAX);
    trastenda_cmd c = h_cmd_po(TRASTENDA_OP_PO_CREATE, "po-1", &ln, 1);
    H_OK(&c);
    ln.qty = 1;
    c.po_id = h_s("po-2");
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_LIMIT);
    cr_assert(strstr(r.message, "incoming") != NULL, "%s", r.message);
}

/* ---- receive ---- */

Test(engine_po, partial_receive_moves_incoming_to_on_hand)
{
    create_po1();
    receive("po-1", "tee", "madrid", 4, TRASTENDA_OK);
    trastenda_stock s = h_stock("tee", "madrid");
    cr_assert_eq(s.incoming, 6);
    cr_assert_eq(s.on_hand, 4);
    cr_assert_eq(s.available, 4);
    trastenda_ledger_entry le = h_ledger_one();
    cr_assert_eq(le.move, TRASTENDA_MOVE_PO_RECEIVE);
    cr_assert_eq(le.delta[TRASTENDA_Q_INCOMING], -4);
    cr_assert_eq(le.delta[TRASTENDA_Q_ON_HAND], 4);
    cr_assert(h_str_eq(le.ref, "po-1"));
    trastenda_po_view v = po_view("po-1");
    cr_assert_eq(v.open, 1);
    cr_assert_eq(v.lines[0].shipped, 4, "received so far");
    cr_assert_eq(h_event_find(TRASTENDA_EVENT_BACK_IN_STOCK, "tee", "madrid", NULL), 1);
}

Test(engine_po, full_receive_closes_the_po)
{
    create_po1();
    receive("po-1", "tee", "madrid", 4, TRASTENDA_OK);
    trastenda_line ln[] = {h_line("cap", "lugo", 5), h_line("tee", "madrid", 6)};
    trastenda_cmd c = h_cmd_po(TRASTENDA_OP_PO_RECEIVE, "po-1", ln, 2);
    H_OK(&c);
    trastenda_ledger_entry le[4];
    cr_assert_eq(h_ledger(le, 4), 2, "two receipts, no close movement: nothing remained");
    cr_assert_eq(le[0].move, TRASTENDA_MOVE_PO_RECEIVE);
    cr_assert_eq(le[1].move, TRASTENDA_MOVE_PO_RECEIVE);
    cr_assert_eq(po_view("po-1").open, 0);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 10);
    cr_assert_eq(h_stock("tee", "madrid").incoming, 0);
    cr_assert_eq(h_stock("cap", "lugo").on_hand, 5);
    receive("po-1", "tee", "madrid", 1, TRASTENDA_E_STATE);
}

Test(engine_po, close_drops_the_remaining_incoming)
{
    create_po1();
    receive("po-1", "tee", "madrid", 4, TRASTENDA_OK);
    close_po("po-1", TRASTENDA_OK);
    trastenda_ledger_entry le[4];
    cr_assert_eq(h_ledger(le, 4), 2);
    cr_assert_eq(le[0].move, TRASTENDA_MOVE_PO_CLOSE);
    cr_assert(h_str_eq(le[0].sku, "tee"));
    cr_assert_eq(le[0].delta[TRASTENDA_Q_INCOMING], -6);
    cr_assert_eq(le[0].delta[TRASTENDA_Q_ON_HAND], 0);
    cr_assert(h_str_eq(le[1].sku, "cap"));
    cr_assert_eq(le[1].delta[TRASTENDA_Q_INCOMING], -5);
    trastenda_stock s = h_stock("tee", "madrid");
    cr_assert_eq(s.incoming, 0);
    cr_assert_eq(s.on_hand, 4, "what was received stays");
    cr_assert_eq(h_stock("cap", "lugo").incoming, 0);
    cr_assert_eq(po_view("po-1").open, 0);
}

Test(engine_po, closed_po_refuses_receive_and_close)
{
    create_po1();
    close_po("po-1", TRASTENDA_OK);
    trastenda_result r = receive("po-1", "tee", "madrid", 1, TRASTENDA_E_STATE);
    cr_assert(strstr(r.message, "closed") != NULL, "%s", r.message);
    close_po("po-1", TRASTENDA_E_STATE);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 0);
}

Test(engine_po, unknown_po_is_refused)
{
    trastenda_result r = receive("po-9", "tee", "madrid", 1, TRASTENDA_E_UNKNOWN_PO);
    cr_assert(strstr(r.message, "po-9") != NULL, "%s", r.message);
    close_po("po-9", TRASTENDA_E_UNKNOWN_PO);
    trastenda_po_view v;
    cr_assert_eq(trastenda_engine_po_get(H.e, h_s("po-9"), &v), TRASTENDA_E_UNKNOWN_PO);
    cr_assert_eq(trastenda_engine_po_get(H.e, h_s(""), &v), TRASTENDA_E_INVALID);
}

Test(engine_po, over_receipt_is_refused_naming_the_line)
{
    create_po1();
    receive("po-1", "tee", "madrid", 8, TRASTENDA_OK);
    trastenda_line ln[] = {h_line("cap", "lugo", 5), h_line("tee", "madrid", 3)};
    trastenda_cmd c = h_cmd_po(TRASTENDA_OP_PO_RECEIVE, "po-1", ln, 2);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert_eq(r.line, 1);
    cr_assert(strstr(r.message, "only 2") != NULL, "%s", r.message);
    cr_assert_eq(h_stock("cap", "lugo").on_hand, 0, "line 0 left no trace");
    cr_assert_eq(po_view("po-1").lines[1].shipped, 0);
}

Test(engine_po, receive_of_a_line_not_on_the_po_is_refused)
{
    create_po1();
    trastenda_result r = receive("po-1", "tee", "lugo", 1, TRASTENDA_E_INVALID);
    cr_assert_eq(r.line, 0);
    cr_assert(strstr(r.message, "no line") != NULL, "%s", r.message);
    cr_assert_not(h_stock_exists("tee", "lugo"));
}

Test(engine_po, receive_with_repeated_lines_is_refused)
{
    create_po1();
    trastenda_line ln[] = {h_line("tee", "madrid", 1), h_line("tee", "madrid", 1)};
    trastenda_cmd c = h_cmd_po(TRASTENDA_OP_PO_RECEIVE, "po-1", ln, 2);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert_eq(r.line, 1);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 0);
}

Test(engine_po, receive_beyond_qty_max_on_hand_is_a_limit)
{
    h_receive("tee", "madrid", TRASTENDA_QTY_MAX);
    create_po1();
    trastenda_result r = receive("po-1", "tee", "madrid", 1, TRASTENDA_E_LIMIT);
    cr_assert(strstr(r.message, "on_hand") != NULL, "%s", r.message);
    cr_assert_eq(h_stock("tee", "madrid").incoming, 10);
}

Test(engine_po, closed_po_leaves_memory_after_the_retention_window)
{
    create_po1();
    close_po("po-1", TRASTENDA_OK);
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    h_advance(cfg.order_retention_ms - 1);
    cr_assert_eq(h_records(TRASTENDA_REC_PO_REMOVED), 0);
    po_view("po-1");
    h_advance(1);
    cr_assert_eq(h_records(TRASTENDA_REC_PO_REMOVED), 1);
    trastenda_po_view v;
    cr_assert_eq(trastenda_engine_po_get(H.e, h_s("po-1"), &v), TRASTENDA_E_UNKNOWN_PO);
    trastenda_engine_stats st;
    trastenda_engine_stats_get(H.e, &st);
    cr_assert_eq(st.pos, 0);
    cr_assert_eq(st.lines, 0, "its lines went back to the pool");
    create_po1(); /* the id is free again */
}

Test(engine_po, open_po_stays_past_the_retention_window)
{
    create_po1();
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    h_advance(cfg.order_retention_ms * 2);
    cr_assert_eq(po_view("po-1").open, 1);
}

/* ---- full tables ---- */

Test(engine_po, po_table_full_names_the_setting)
{
    char id[16];
    trastenda_line ln = h_line("tee", "madrid", 1);
    for (int i = 0; i < 8; i++) {
        snprintf(id, sizeof(id), "po-%d", i);
        trastenda_cmd c = h_cmd_po(TRASTENDA_OP_PO_CREATE, id, &ln, 1);
        H_OK(&c);
    }
    trastenda_cmd c = h_cmd_po(TRASTENDA_OP_PO_CREATE, "po-8", &ln, 1);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_TABLE_FULL);
    cr_assert(strstr(r.message, "pos_max") != NULL, "%s", r.message);
    cr_assert_eq(h_stock("tee", "madrid").incoming, 8);
}

static void
setup_tiny(void)
{
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    cfg.lines_max = 3;
    cfg.stock_max = 3;
    h_setup_with(&cfg, 1);
    h_add_location("madrid");
    h_add_location("lugo");
    h_add_sku("tee", 0);
    h_add_sku("cap", 0);
}

Test(engine_po, lines_table_full_names_the_setting, .init = setup_tiny)
{
    create_po1();
    trastenda_line ln[] = {h_line("tee", "madrid", 1), h_line("cap", "madrid", 1)};
    trastenda_cmd c = h_cmd_po(TRASTENDA_OP_PO_CREATE, "po-2", ln, 2);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_TABLE_FULL);
    cr_assert(strstr(r.message, "lines_max") != NULL, "%s", r.message);
    c.line_count = 1;
    H_OK(&c);
}

Test(engine_po, stock_table_full_names_the_setting, .init = setup_tiny)
{
    h_receive("tee", "madrid", 1);
    h_receive("tee", "lugo", 1);
    trastenda_line ln[] = {h_line("cap", "madrid", 1), h_line("cap", "lugo", 1)};
    trastenda_cmd c = h_cmd_po(TRASTENDA_OP_PO_CREATE, "po-1", ln, 2);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_TABLE_FULL);
    cr_assert(strstr(r.message, "stock_max") != NULL, "%s", r.message);
    cr_assert_not(h_stock_exists("cap", "madrid"));
}
