/*
 * tests/engine/test_replica.c - a node that applies the log behaves as the writer would once it is
 * promoted: its retention queues are in the writer's order, and apply_entry refuses entries that
 * would fork its history (another entry under the same sequence, an older epoch).
 */
#include <criterion/criterion.h>

#include "helpers.h"

TestSuite(engine_replica, .init = h_setup, .fini = h_teardown);

Test(engine_replica, holds_released_out_of_order_are_purged_in_the_writers_order)
{
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    cfg.purge_per_batch_max = 1; /* one purge a batch: the queue's order decides which */
    h_setup_with(&cfg, 1);
    (void)h_add_location("madrid");
    (void)h_add_sku("tee", 0);
    h_receive("tee", "madrid", 100);
    trastenda_line ln = h_line("tee", "madrid", 1);
    trastenda_cmd take[6];
    trastenda_result r[6];
    for (int i = 0; i < 6; i++)
        take[i] = h_cmd_reserve(&ln, 1, 60000);
    h_apply_batch_at(H.now + 1, take, 6, r);
    /* Touch every hold first (extend, in id order), then release them newest first, in one
     * batch: the order they were first changed in differs from the order they resolved in. */
    trastenda_cmd mix[12];
    for (int i = 0; i < 6; i++) {
        mix[i] = h_cmd_hold(TRASTENDA_OP_EXTEND, r[i].id);
        mix[i].ttl_ms = 30000;
        mix[6 + i] = h_cmd_hold(TRASTENDA_OP_RELEASE, r[5 - i].id);
    }
    trastenda_result rr[12];
    h_apply_batch_at(H.now + 1, mix, 12, rr);
    for (int i = 0; i < 12; i++)
        cr_assert_eq(rr[i].code, TRASTENDA_OK, "%s", rr[i].message);
    int64_t done = H.now;
    /* Promoted: both purge one hold a batch once the window is over. */
    for (int step = 0; step < 6; step++) {
        h_both_noop_at(done + cfg.hold_retention_ms + step);
        cr_assert_eq(trastenda_engine_digest(H.follower), trastenda_engine_digest(H.e),
                     "purge %d: the promoted follower purged another hold", step);
        trastenda_hold_view v;
        uint64_t gone = r[5 - step].id; /* released first, purged first */
        cr_assert_eq(trastenda_engine_hold_get(H.e, gone, &v), TRASTENDA_E_UNKNOWN_HOLD);
        cr_assert_eq(trastenda_engine_hold_get(H.follower, gone, &v), TRASTENDA_E_UNKNOWN_HOLD);
    }
}

Test(engine_replica, the_same_entry_again_is_accepted_and_changes_nothing)
{
    (void)h_add_location("madrid");
    uint64_t d = trastenda_engine_digest(H.follower);
    cr_assert_eq(trastenda_engine_apply_entry(H.follower, H.entry, H.entry_len), TRASTENDA_OK);
    cr_assert_eq(trastenda_engine_digest(H.follower), d);
}

Test(engine_replica, another_entry_under_the_last_sequence_is_refused)
{
    (void)h_add_location("madrid");
    /* A second writer at the same sequence writes another history. */
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    trastenda_engine *other;
    cr_assert_eq(trastenda_engine_create(&cfg, &other), TRASTENDA_OK);
    trastenda_cmd c = h_cmd_location("lugo", 43000000, -7500000, 0, NULL, 0);
    trastenda_result r;
    trastenda_batch_out out;
    cr_assert_eq(trastenda_engine_apply(other, H.now, &c, 1, &r, &out), TRASTENDA_OK);
    cr_assert_eq(out.seq, trastenda_engine_seq(H.follower));
    uint64_t d = trastenda_engine_digest(H.follower);
    cr_assert_eq(trastenda_engine_apply_entry(H.follower, out.entry, out.entry_len),
                 TRASTENDA_E_SEQUENCE);
    cr_assert_eq(trastenda_engine_digest(H.follower), d, "a refused entry changed nothing");
    trastenda_engine_destroy(other);
}

Test(engine_replica, an_entry_of_an_older_epoch_is_refused)
{
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    cfg.epoch = 2;
    h_setup_with(&cfg, 0);
    trastenda_engine *old_leader;
    cfg.epoch = 1;
    cr_assert_eq(trastenda_engine_create(&cfg, &old_leader), TRASTENDA_OK);
    trastenda_cmd c = h_cmd_location("lugo", 43000000, -7500000, 0, NULL, 0);
    trastenda_result r;
    trastenda_batch_out out;
    cr_assert_eq(trastenda_engine_apply(old_leader, H.now, &c, 1, &r, &out), TRASTENDA_OK);
    cr_assert_eq(trastenda_engine_apply_entry(H.e, out.entry, out.entry_len), TRASTENDA_E_SEQUENCE,
                 "epoch 1 is fenced by epoch 2");
    cr_assert_eq(trastenda_engine_seq(H.e), 0);
    trastenda_engine_destroy(old_leader);
}

Test(engine_replica, retention_windows_and_times_are_bounded)
{
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    cfg.key_retention_ms = INT64_MAX; /* "forever" would overflow created + window */
    trastenda_engine *e;
    cr_assert_eq(trastenda_engine_create(&cfg, &e), TRASTENDA_E_INVALID);
    cfg.key_retention_ms = TRASTENDA_RETENTION_MS_MAX;
    cr_assert_eq(trastenda_engine_create(&cfg, &e), TRASTENDA_OK);
    trastenda_cmd c = h_cmd(TRASTENDA_OP_NOOP);
    trastenda_result r;
    trastenda_batch_out out;
    cr_assert_eq(trastenda_engine_apply(e, TRASTENDA_TIME_MS_MAX + 1, &c, 1, &r, &out),
                 TRASTENDA_E_TIME);
    cr_assert_eq(trastenda_engine_apply(e, TRASTENDA_TIME_MS_MAX, &c, 1, &r, &out), TRASTENDA_OK);
    trastenda_engine_destroy(e);
}

Test(engine_replica, a_null_string_in_an_unused_field_is_harmless)
{
    (void)h_add_location("madrid");
    (void)h_add_sku("tee", 0);
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_RECEIVE, "tee", "madrid", 5);
    c.key = h_s("k1");
    c.name = (trastenda_str){NULL, 4}; /* RECEIVE ignores name; the payload hash reads it */
    trastenda_result r = H_OK(&c);
    cr_assert_eq(r.value, 5);
    c.reference = (trastenda_str){NULL, 3}; /* used by RECEIVE: refused, not a crash */
    c.key = h_s("k2");
    r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "reference") != NULL, "%s", r.message);
    uint32_t ix;
    cr_assert_eq(trastenda_engine_sku_lookup(H.e, (trastenda_str){NULL, 3}, &ix),
                 TRASTENDA_E_INVALID);
}

Test(engine_replica, an_entry_naming_a_sku_nobody_created_is_corrupt_not_fatal)
{
    (void)h_add_location("madrid");
    (void)h_add_sku("SKU-A", 0);
    trastenda_engine *f = H.follower;
    H.follower = NULL; /* the receive's entry goes to f by hand, first altered */
    h_receive("SKU-A", "madrid", 5);
    H.follower = f;
    uint8_t *bad = malloc(H.entry_len);
    cr_assert_not_null(bad);
    memcpy(bad, H.entry, H.entry_len);
    uint32_t renamed = 0;
    for (size_t i = 0; i + 5 <= H.entry_len; i++)
        if (memcmp(bad + i, "SKU-A", 5) == 0) bad[i + 4] = 'Z', renamed++;
    cr_assert_gt(renamed, 0);
    uint64_t d = trastenda_engine_digest(f);
    cr_assert_eq(trastenda_engine_apply_entry(f, bad, H.entry_len), TRASTENDA_E_CORRUPT);
    cr_assert_eq(trastenda_engine_digest(f), d, "a refused entry changed nothing");
    free(bad);
    cr_assert_eq(trastenda_engine_apply_entry(f, H.entry, H.entry_len), TRASTENDA_OK);
    cr_assert_eq(trastenda_engine_digest(f), trastenda_engine_digest(H.e));
}

/* An entry of many records (chunks of the apply's touch ahead), some naming SKUs the same entry
 * creates, over maps small enough that home slots collide: the follower's guesses must fall back
 * to searches, and its state must equal the writer's after each batch (h_apply_batch_at). */
Test(engine_replica, long_entries_with_new_skus_and_colliding_slots_apply_alike)
{
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    cfg.skus_max = 64;
    cfg.stock_max = 256;
    cfg.holds_max = 256;
    cfg.keys_max = 256;
    cfg.lines_max = 2048;
    cfg.batch_cmds_max = 256;
    h_setup_with(&cfg, 1);
    (void)h_add_location("madrid");
    (void)h_add_location("sevilla");
    enum {
        N = 60
    };
    static char ids[N][16];
    trastenda_cmd cmds[3 * N];
    trastenda_result res[3 * N];
    uint32_t n = 0;
    for (int i = 0; i < N; i++) { /* each SKU, then its stock at both locations, in one entry */
        snprintf(ids[i], sizeof(ids[i]), "sku-%02d", i);
        cmds[n++] = h_cmd_sku(ids[i], 0, 0, 0, 0);
        cmds[n++] = h_cmd_stock(TRASTENDA_OP_RECEIVE, ids[i], "madrid", 10 + i);
        cmds[n++] = h_cmd_stock(TRASTENDA_OP_RECEIVE, ids[i], i % 2 ? "sevilla" : "madrid", 5);
    }
    h_apply_batch_at(H.now + 1, cmds, n, res);
    for (uint32_t i = 0; i < n; i++)
        cr_assert_eq(res[i].code, TRASTENDA_OK, "command %u: %s", i, res[i].message);
    trastenda_line lines[N];
    n = 0;
    for (int i = 0; i < N; i++) { /* holds across every SKU, keyed, then half released */
        lines[i] = h_line(ids[i], i % 2 ? "sevilla" : "madrid", 1);
        cmds[n] = h_cmd_reserve(&lines[i], 1, 60000);
        char key[16];
        snprintf(key, sizeof(key), "k-%02d", i);
        cmds[n].key = (trastenda_str){strdup(key), (uint32_t)strlen(key)};
        n++;
    }
    h_apply_batch_at(H.now + 1, cmds, n, res);
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        free((char *)cmds[i].key.ptr);
        if (res[i].code == TRASTENDA_OK && i % 2 == 0)
            cmds[m++] = h_cmd_hold(TRASTENDA_OP_RELEASE, res[i].id);
    }
    cr_assert_eq(m, N / 2, "holds refused: %s", res[0].message);
    h_apply_batch_at(H.now + 1, cmds, m, res);
    for (uint32_t i = 0; i < m; i++)
        cr_assert_eq(res[i].code, TRASTENDA_OK, "release %u: %s", i, res[i].message);
}
