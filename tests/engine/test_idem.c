/*
 * tests/engine/test_idem.c - engine/idem.c: idempotency keys (replay, mismatch, failures leave no
 * key, expiry, a full keys table), the order id as the key of ORDER_PLACE, and the payload hash
 * (fixed values, every byte counted, keys made with the first hash still recognised).
 */
#include "eng.h"
#include "helpers.h"

/* Location "madrid" (channel web) holding 100 "tee". */
static void
setup(void)
{
    h_setup();
    h_add_location_at("madrid", 0, 0, 0, "web");
    h_add_location("lugo");
    h_add_sku("tee", 0);
    h_receive("tee", "madrid", 100);
}

TestSuite(engine_idem, .init = setup, .fini = h_teardown);

static trastenda_cmd
keyed_receive(const char *key, const char *loc, int64_t qty)
{
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_RECEIVE, "tee", loc, qty);
    c.key = h_s(key);
    return c;
}

static int64_t
on_hand(const char *loc)
{
    return h_stock("tee", loc).on_hand;
}

static uint32_t
keys_in_memory(void)
{
    trastenda_engine_stats st;
    trastenda_engine_stats_get(H.e, &st);
    return st.keys;
}

/* The keys named by KEY_REMOVED records of the last entry, joined by ',' into out. */
struct removed_ctx {
    char out[256];
    uint32_t n;
};

static void
removed_cb(void *ctx, uint8_t type, const uint8_t *body, uint32_t len)
{
    struct removed_ctx *c = ctx;
    if (type != TRASTENDA_REC_KEY_REMOVED) return;
    cr_assert_geq(len, 1);
    cr_assert_eq(body[0], len - 1, "a removal is the key, length-prefixed");
    size_t at = strlen(c->out);
    cr_assert_lt(at + len + 1, sizeof(c->out));
    if (c->n++ > 0) c->out[at++] = ',';
    memcpy(c->out + at, body + 1, body[0]);
    c->out[at + body[0]] = 0;
}

static struct removed_ctx
keys_removed(void)
{
    struct removed_ctx c;
    memset(&c, 0, sizeof(c));
    (void)h_records_each(removed_cb, &c);
    return c;
}

/* ---- replay ---- */

Test(engine_idem, first_use_of_a_key_runs_and_remembers_it)
{
    trastenda_cmd c = keyed_receive("k1", "madrid", 5);
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.duplicate, 0);
    cr_assert_eq(r.value, 105);
    cr_assert_eq(on_hand("madrid"), 105);
    cr_assert_eq(h_records(TRASTENDA_REC_KEY), 1);
    cr_assert_eq(keys_in_memory(), 1);
}

Test(engine_idem, same_key_same_payload_returns_the_first_result_and_changes_nothing)
{
    trastenda_cmd c = keyed_receive("k1", "madrid", 5);
    H_OK(&c);
    h_receive("tee", "madrid", 3);
    uint64_t ledger_before = h_ledger_one().seq;
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.duplicate, 1);
    cr_assert_eq(r.value, 105, "the first result, not the current 108");
    cr_assert_eq(on_hand("madrid"), 108);
    cr_assert_eq(H.out.ledger_count, 0);
    cr_assert_eq(h_records(TRASTENDA_REC_STOCK) + h_records(TRASTENDA_REC_KEY), 0);
    h_receive("tee", "madrid", 1);
    cr_assert_eq(h_ledger_one().seq, ledger_before + 1, "the replay used no ledger number");
}

Test(engine_idem, replay_within_one_batch_runs_once)
{
    trastenda_cmd cmds[3] = {keyed_receive("k1", "madrid", 5), keyed_receive("k1", "madrid", 5),
                             keyed_receive("k2", "madrid", 5)};
    trastenda_result res[3];
    h_apply_batch_at(H.now, cmds, 3, res);
    cr_assert_eq(res[0].code, TRASTENDA_OK);
    cr_assert_eq(res[0].duplicate, 0);
    cr_assert_eq(res[1].code, TRASTENDA_OK);
    cr_assert_eq(res[1].duplicate, 1);
    cr_assert_eq(res[1].value, 105);
    cr_assert_eq(res[2].duplicate, 0);
    cr_assert_eq(H.out.ledger_count, 2);
    cr_assert_eq(on_hand("madrid"), 110);
}

Test(engine_idem, replay_with_another_actor_is_still_a_duplicate)
{
    trastenda_cmd c = keyed_receive("k1", "madrid", 5);
    c.actor = h_s("ana");
    H_OK(&c);
    c.actor = h_s("luis");
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.duplicate, 1, "the actor is not part of the payload");
}

Test(engine_idem, same_key_different_payload_is_a_mismatch)
{
    trastenda_cmd c = keyed_receive("k1", "madrid", 5);
    H_OK(&c);
    trastenda_cmd other[4] = {keyed_receive("k1", "madrid", 6), keyed_receive("k1", "lugo", 5),
                              keyed_receive("k1", "madrid", 5), keyed_receive("k1", "madrid", 5)};
    other[2].op = TRASTENDA_OP_ADJUST;
    other[2].reason = TRASTENDA_REASON_FOUND;
    other[3].reference = h_s("another note");
    for (int i = 0; i < 4; i++) {
        trastenda_result r = H_FAIL(&other[i], TRASTENDA_E_IDEMPOTENCY_MISMATCH);
        cr_assert(strstr(r.message, "k1") != NULL, "%s", r.message);
        cr_assert_eq(H.out.ledger_count, 0);
    }
    cr_assert_eq(on_hand("madrid"), 105);
    cr_assert_not(h_stock_exists("tee", "lugo"));
}

Test(engine_idem, upsert_with_the_same_key_and_other_fields_is_a_mismatch)
{
    trastenda_cmd c = h_cmd_sku("cap", 5, 10, 3, 0);
    c.key = h_s("sku-cap");
    H_OK(&c);
    trastenda_cmd d = c;
    d.reorder_point = 6;
    H_FAIL(&d, TRASTENDA_E_IDEMPOTENCY_MISMATCH);
    d = c;
    d.name = h_s("Cap, red");
    H_FAIL(&d, TRASTENDA_E_IDEMPOTENCY_MISMATCH);
    trastenda_str web[] = {h_s("web")};
    trastenda_cmd l = h_cmd_location("vigo", 0, 0, 1, web, 1);
    l.key = h_s("loc-vigo");
    H_OK(&l);
    trastenda_cmd m = l;
    m.priority = 2;
    H_FAIL(&m, TRASTENDA_E_IDEMPOTENCY_MISMATCH);
    m = l;
    m.channel_count = 0;
    H_FAIL(&m, TRASTENDA_E_IDEMPOTENCY_MISMATCH);
    trastenda_result r = H_OK(&l);
    cr_assert_eq(r.duplicate, 1);
}

/* ---- failures leave no key ---- */

Test(engine_idem, failed_command_leaves_no_key_so_a_retry_runs)
{
    trastenda_cmd bad = keyed_receive("k1", "madrid", 0);
    H_FAIL(&bad, TRASTENDA_E_INVALID);
    cr_assert_eq(h_records(TRASTENDA_REC_KEY), 0);
    cr_assert_eq(keys_in_memory(), 0);
    trastenda_cmd good = keyed_receive("k1", "madrid", 4);
    trastenda_result r = H_OK(&good);
    cr_assert_eq(r.duplicate, 0);
    cr_assert_eq(on_hand("madrid"), 104);
    /* Failing again with the same payload as a stored key still runs (and fails). */
    trastenda_cmd t = h_cmd_transfer_out("tee", "madrid", "lugo", 1000);
    t.key = h_s("t1");
    H_FAIL(&t, TRASTENDA_E_SHORT);
    h_receive("tee", "madrid", 1000);
    r = H_OK(&t);
    cr_assert_eq(r.duplicate, 0);
    cr_assert_eq(h_stock("tee", "lugo").in_transit, 1000);
}

Test(engine_idem, bad_key_is_refused)
{
    trastenda_cmd c = keyed_receive(
        "0123456789012345678901234567890123456789012345678901234567890123X", "madrid", 1);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_LIMIT);
    cr_assert(strstr(r.message, "key") != NULL, "%s", r.message);
    c = keyed_receive("k\x1b", "madrid", 1);
    H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert_eq(on_hand("madrid"), 100);
}

Test(engine_idem, noop_with_a_key_remembers_nothing)
{
    trastenda_cmd c = h_cmd(TRASTENDA_OP_NOOP);
    c.key = h_s("k1");
    H_OK(&c);
    cr_assert_eq(keys_in_memory(), 0);
    trastenda_cmd r = keyed_receive("k1", "madrid", 1);
    cr_assert_eq(H_OK(&r).duplicate, 0);
}

/* ---- expiry ---- */

Test(engine_idem, key_expires_after_key_retention_ms)
{
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    int64_t t0 = H.now;
    trastenda_cmd c = keyed_receive("k1", "madrid", 5);
    H_OK(&c);
    trastenda_result r = h_apply_at(t0 + cfg.key_retention_ms - 1, &c);
    cr_assert_eq(r.duplicate, 1, "still remembered just before the window ends");
    cr_assert_eq(keys_removed().n, 0);
    h_advance(1);
    struct removed_ctx rm = keys_removed();
    cr_assert_eq(rm.n, 1);
    cr_assert_str_eq(rm.out, "k1");
    cr_assert_eq(keys_in_memory(), 0);
    r = H_OK(&c);
    cr_assert_eq(r.duplicate, 0, "a forgotten key runs again");
    cr_assert_eq(on_hand("madrid"), 110);
}

Test(engine_idem, keys_expire_in_creation_order)
{
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    int64_t t0 = H.now;
    trastenda_cmd a = keyed_receive("a", "madrid", 1), b = keyed_receive("b", "madrid", 1);
    H_OK(&a);
    (void)h_apply_at(t0 + 10, &b);
    h_advance(cfg.key_retention_ms - 10);
    cr_assert_str_eq(keys_removed().out, "a");
    cr_assert_eq(keys_in_memory(), 1);
    h_advance(10);
    cr_assert_str_eq(keys_removed().out, "b");
}

static void
setup_short_purge(void)
{
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    cfg.purge_per_batch_max = 2;
    h_setup_with(&cfg, 1);
    h_add_location("madrid");
    h_add_sku("tee", 0);
}

Test(engine_idem, key_expiry_is_bounded_per_batch, .init = setup_short_purge)
{
    char key[8];
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        trastenda_cmd c = keyed_receive(key, "madrid", 1);
        H_OK(&c);
    }
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    h_advance(cfg.key_retention_ms);
    cr_assert_str_eq(keys_removed().out, "k0,k1");
    h_advance(0);
    cr_assert_str_eq(keys_removed().out, "k2,k3");
    h_advance(0);
    cr_assert_str_eq(keys_removed().out, "k4");
    cr_assert_eq(keys_in_memory(), 0);
}

/* ---- full table ---- */

Test(engine_idem, keys_table_full_names_the_setting)
{
    char key[8];
    for (int i = 0; i < 16; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        trastenda_cmd c = keyed_receive(key, "madrid", 1);
        H_OK(&c);
    }
    trastenda_cmd c = keyed_receive("k16", "madrid", 1);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_TABLE_FULL);
    cr_assert(strstr(r.message, "keys_max") != NULL, "%s", r.message);
    cr_assert_eq(on_hand("madrid"), 116, "the command did not run");
    /* Replays and unkeyed commands still work. */
    trastenda_cmd old = keyed_receive("k3", "madrid", 1);
    cr_assert_eq(H_OK(&old).duplicate, 1);
    h_receive("tee", "madrid", 1);
    /* Room again once keys expire. */
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    h_advance(cfg.key_retention_ms);
    cr_assert_eq(H_OK(&c).duplicate, 0);
}

/* ---- the order id is the key of ORDER_PLACE ---- */

static trastenda_cmd
order_cmd(trastenda_line *ln, int64_t qty)
{
    *ln = h_line("tee", NULL, qty);
    trastenda_cmd c = h_cmd_order("order-1", ln, 1, "web");
    c.has_ship_to = 1;
    return c;
}

Test(engine_idem, order_place_again_with_the_same_payload_is_a_duplicate)
{
    trastenda_line ln;
    trastenda_cmd c = order_cmd(&ln, 3);
    trastenda_result first = H_OK(&c);
    cr_assert_eq(first.duplicate, 0);
    cr_assert_eq(h_stock("tee", "madrid").committed, 3);
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.duplicate, 1);
    cr_assert_eq(r.id, first.id, "same order number");
    cr_assert_eq(r.alloc_count, 1);
    cr_assert_eq(r.allocs[0].qty, 3);
    cr_assert_eq(r.allocs[0].loc_ix, h_loc_ix("madrid"));
    cr_assert_eq(H.out.ledger_count, 0);
    cr_assert_eq(h_stock("tee", "madrid").committed, 3);
}

Test(engine_idem, order_place_again_with_another_payload_is_a_mismatch)
{
    trastenda_line ln;
    trastenda_cmd c = order_cmd(&ln, 3);
    H_OK(&c);
    trastenda_line ln2;
    trastenda_cmd d = order_cmd(&ln2, 4);
    trastenda_result r = H_FAIL(&d, TRASTENDA_E_IDEMPOTENCY_MISMATCH);
    cr_assert(strstr(r.message, "order-1") != NULL, "%s", r.message);
    d = order_cmd(&ln2, 3);
    d.lat_e6 = 1000000;
    H_FAIL(&d, TRASTENDA_E_IDEMPOTENCY_MISMATCH);
    cr_assert_eq(h_stock("tee", "madrid").committed, 3);
}

Test(engine_idem, reserve_replay_returns_the_same_hold_and_placements)
{
    trastenda_line ln = h_line("tee", "madrid", 2);
    trastenda_cmd c = h_cmd_reserve(&ln, 1, 60000);
    c.key = h_s("cart-1");
    trastenda_result first = H_OK(&c);
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.duplicate, 1);
    cr_assert_eq(r.id, first.id);
    cr_assert_eq(r.value, first.value, "same expiry");
    cr_assert_eq(r.alloc_count, 1);
    cr_assert_eq(r.allocs[0].qty, 2);
    cr_assert_eq(h_stock("tee", "madrid").held, 2);
}

/* ---- the payload hash ---- */

static trastenda_cmd
hash_cmd(trastenda_line *ln)
{
    *ln = h_line("tee", "madrid", 2);
    trastenda_cmd c = h_cmd_reserve(ln, 1, 60000);
    c.key = h_s("cart-1");
    c.reference = h_s("checkout 7");
    return c;
}

/* A stored hash is compared with a retry's, possibly by another build: its value must never
 * change by accident (a retry would be refused as a mismatch). */
Test(engine_idem, payload_hash_values_are_fixed)
{
    trastenda_line ln;
    trastenda_cmd c = hash_cmd(&ln);
    cr_assert_eq(eng_cmd_payload_hash(&c), UINT64_C(0x3ef65ba140c13920), "%#llx",
                 (unsigned long long)eng_cmd_payload_hash(&c));
    cr_assert_eq(eng_cmd_payload_hash_v1(&c), UINT64_C(0x616e6df9fea1b3f1), "%#llx",
                 (unsigned long long)eng_cmd_payload_hash_v1(&c));
    trastenda_cmd o = order_cmd(&ln, 3);
    cr_assert_eq(eng_cmd_payload_hash(&o), UINT64_C(0xf1abf01e514b512d), "%#llx",
                 (unsigned long long)eng_cmd_payload_hash(&o));
}

/* Every byte of a string of any length counts, and so does its length: a string is read as
 * whole words with an overlapping last one, or in pieces below 8 bytes. */
Test(engine_idem, payload_hash_counts_every_byte_and_the_length)
{
    char buf[130];
    trastenda_cmd c = h_cmd(TRASTENDA_OP_RECEIVE);
    for (uint32_t n = 0; n < 128; n++) { /* 128 bytes and more count as 128 (ids are <= 64) */
        memset(buf, 'a', sizeof(buf));
        c.reference = (trastenda_str){buf, n};
        uint64_t base = eng_cmd_payload_hash(&c);
        c.reference.len = n + 1;
        cr_assert_neq(eng_cmd_payload_hash(&c), base, "length %u and %u", n, n + 1);
        c.reference.len = n;
        for (uint32_t i = 0; i < n; i++) {
            buf[i] = 'b';
            cr_assert_neq(eng_cmd_payload_hash(&c), base, "byte %u of %u", i, n);
            buf[i] = 'a';
        }
    }
    /* A ref by index is not a ref by an id, nor a string in the next field. */
    trastenda_cmd a = h_cmd(TRASTENDA_OP_RECEIVE), b = a;
    a.sku = h_ref_ix(3);
    b.loc = h_ref_ix(3);
    cr_assert_neq(eng_cmd_payload_hash(&a), eng_cmd_payload_hash(&b));
    b = a;
    b.sku = h_ref("\x03");
    cr_assert_neq(eng_cmd_payload_hash(&a), eng_cmd_payload_hash(&b));
}

/* As a key or an order loaded from an image of an earlier build would hold it (on the engine
 * under test and on the follower and materializer that check it). */
static void
set_key_hash(trastenda_engine *e, trastenda_str key, uint64_t hash)
{
    if (e == NULL) return;
    uint32_t k = eng_key_find(e, key);
    cr_assert_neq(k, ENG_NONE);
    e->keys[k].payload_hash = hash;
}

static void
set_order_hash(trastenda_engine *e, trastenda_str id, uint64_t hash)
{
    if (e == NULL) return;
    uint32_t o = eng_order_find(e, id);
    cr_assert_neq(o, ENG_NONE);
    e->orders[o].payload_hash = hash;
}

/* Keys and orders made before the payload hash changed (2026-11-29) hold the first hash: a retry
 * of theirs is still a duplicate, another payload still a mismatch. */
Test(engine_idem, keys_and_orders_made_with_the_first_hash_are_still_recognised)
{
    trastenda_line ln;
    trastenda_cmd c = hash_cmd(&ln);
    trastenda_result first = H_OK(&c);
    cr_assert_eq(H.e->keys[eng_key_find(H.e, c.key)].payload_hash, eng_cmd_payload_hash(&c));
    set_key_hash(H.e, c.key, eng_cmd_payload_hash_v1(&c));
    set_key_hash(H.follower, c.key, eng_cmd_payload_hash_v1(&c));
    set_key_hash(H.mat, c.key, eng_cmd_payload_hash_v1(&c));
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.duplicate, 1);
    cr_assert_eq(r.id, first.id);
    trastenda_line ln2;
    trastenda_cmd d = hash_cmd(&ln2);
    ln2.qty = 3;
    H_FAIL(&d, TRASTENDA_E_IDEMPOTENCY_MISMATCH);
    cr_assert_eq(h_stock("tee", "madrid").held, 2);

    trastenda_cmd o = order_cmd(&ln, 3);
    trastenda_result placed = H_OK(&o);
    set_order_hash(H.e, o.order_id, eng_cmd_payload_hash_v1(&o));
    set_order_hash(H.follower, o.order_id, eng_cmd_payload_hash_v1(&o));
    set_order_hash(H.mat, o.order_id, eng_cmd_payload_hash_v1(&o));
    r = H_OK(&o);
    cr_assert_eq(r.duplicate, 1);
    cr_assert_eq(r.id, placed.id);
    trastenda_cmd o4 = order_cmd(&ln2, 4);
    H_FAIL(&o4, TRASTENDA_E_IDEMPOTENCY_MISMATCH);
    cr_assert_eq(h_stock("tee", "madrid").committed, 3);
}
