/*
 * tests/storage/test_store_restart.c - a store reopened is the store it was.
 *
 * A random command sequence (tests/engine/gen.h) goes through trastenda_store_submit, one
 * request per generated batch, under a clock the test drives (so that TTLs and retention windows
 * pass). Then the store is closed - or its process ends abruptly, without close - and reopened:
 * the digest and sequence must be those it had, and open has checked every invariant. Variants:
 * both durability modes; the materializer fully caught up (close writes the state), far behind
 * (state never written: recovery replays the whole log), and the log cut exactly at the
 * materialized sequence (retention 0: recovery replays nothing).
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <rocksdb/c.h>
#include <sys/wait.h>

#include "gen.h"
#include "sthelp.h"

#define BATCHES 400

static int64_t clock_ms_now;

static int64_t
test_clock(void *ctx)
{
    (void)ctx;
    return __atomic_load_n(&clock_ms_now, __ATOMIC_ACQUIRE);
}

static void
config(trastenda_store_config *cfg, const char *dir, trastenda_durability mode)
{
    trastenda_store_config_default(cfg);
    cfg->dir = dir;
    gen_config(&cfg->engine, false);
    cfg->durability = mode;
    cfg->queue_max = 64;
    cfg->materialize_interval_ms = 5;
    cfg->log = st_log_quiet;
    cfg->clock_ms = test_clock;
}

static trastenda_store *
open_ok(const trastenda_store_config *cfg)
{
    trastenda_store *st = NULL;
    char err[512];
    trastenda_err code = trastenda_store_open(cfg, &st, err, sizeof(err));
    cr_assert_eq(code, TRASTENDA_OK, "open: %s: %s", trastenda_err_name(code), err);
    return st;
}

/* Runs the sequence; returns the digest and sequence at the end. */
static void
run_sequence(trastenda_store *st, uint64_t seed, uint64_t *digest, uint64_t *seq)
{
    static struct batch b;
    static trastenda_result res[BATCH_MAX];
    struct gen g = {.rng = {seed}};
    setup_batch(&b);
    for (uint32_t i = 0; i <= BATCHES; i++) {
        if (i > 0) next_batch(&g, &b);
        __atomic_store_n(&clock_ms_now, b.now, __ATOMIC_RELEASE);
        uint64_t s = 0;
        trastenda_err err = st_run(st, b.cmds, b.n, res, &s);
        cr_assert_eq(err, TRASTENDA_OK, "batch %u: %s", i, trastenda_err_name(err));
        learn(&g, b.g, res, b.n);
    }
    *digest = st_settled(st, seq);
    cr_assert_geq(*seq, BATCHES + 1);
}

enum ending {
    CLOSE,   /* close: the materializer catches up */
    CRASH,   /* the process ends without close; the state was never written */
    CUT_AT_M /* retention 0: close writes the state and cuts the log before its entry */
};

static void
restart(trastenda_durability mode, enum ending ending, uint64_t seed)
{
    char dir[512];
    st_tmpdir(dir, sizeof(dir), "restart");
    trastenda_store_config cfg;
    config(&cfg, dir, mode);
    if (ending == CRASH) cfg.materialize_interval_ms = 3600000;
    if (ending == CUT_AT_M) cfg.log_retention_ms = 0;
    uint64_t want[2] = {0, 0};
    if (ending == CRASH) {
        /* A process of its own that ends without close (spawned, not forked: sthelp.h). */
        char seed_s[32], batches_s[32];
        snprintf(seed_s, sizeof(seed_s), "%llu", (unsigned long long)seed);
        snprintf(batches_s, sizeof(batches_s), "%d", BATCHES);
        const char *args[] = {"--dir",
                              dir,
                              "--seed",
                              seed_s,
                              "--batches",
                              batches_s,
                              "--gen-clock",
                              "--crash",
                              mode == TRASTENDA_DURABILITY_ASYNC ? "--async" : "--gen-clock",
                              NULL};
        cr_assert_eq(st_writer(args, &want[1], &want[0]), 0, "the writer failed");
        cr_assert_geq(want[1], BATCHES + 1);
    } else {
        trastenda_store *st = open_ok(&cfg);
        run_sequence(st, seed, &want[0], &want[1]);
        trastenda_store_close(st);
    }
    __atomic_store_n(&clock_ms_now, 0, __ATOMIC_RELEASE); /* a clock that stepped back */
    trastenda_store *st = open_ok(&cfg);
    trastenda_store_stats stats;
    trastenda_store_stats_get(st, &stats);
    cr_assert_eq(stats.durable_seq, want[1], "sequence after reopening");
    cr_assert_eq(st_digest(st), want[0], "the state after reopening differs");
    if (ending == CRASH) cr_assert_eq(stats.recovered_entries, want[1], "replayed all the log");
    if (ending == CLOSE) cr_assert_eq(stats.materialized_seq, want[1], "close wrote the state");
    if (ending == CUT_AT_M) {
        cr_assert_eq(stats.recovered_entries, 0, "the log was cut at the state");
        cr_assert_eq(stats.materialized_seq, want[1]);
        cr_assert_eq(stats.log_first_seq, want[1], "the entry the state is at stays");
    }
    /* It goes on: one more batch lands after the recovered ones, and survives a close. */
    trastenda_cmd c;
    memset(&c, 0, sizeof(c));
    c.op = TRASTENDA_OP_NOOP;
    trastenda_result r;
    uint64_t seq = 0;
    cr_assert_eq(st_run(st, &c, 1, &r, &seq), TRASTENDA_OK);
    cr_assert_eq(seq, want[1] + 1);
    uint64_t d = st_digest(st);
    trastenda_store_close(st);
    st = open_ok(&cfg);
    cr_assert_eq(st_digest(st), d);
    trastenda_store_close(st);
    st_rmdir(dir);
}

Test(store_restart, fsync_close_reopen_equal_state)
{
    restart(TRASTENDA_DURABILITY_FSYNC, CLOSE, 21);
}

Test(store_restart, async_close_reopen_equal_state)
{
    restart(TRASTENDA_DURABILITY_ASYNC, CLOSE, 22);
}

Test(store_restart, fsync_crash_without_state_replays_the_whole_log)
{
    restart(TRASTENDA_DURABILITY_FSYNC, CRASH, 23);
}

Test(store_restart, async_crash_without_state_replays_the_whole_log)
{
    restart(TRASTENDA_DURABILITY_ASYNC, CRASH, 24);
}

Test(store_restart, log_cut_exactly_at_the_state)
{
    restart(TRASTENDA_DURABILITY_ASYNC, CUT_AT_M, 25);
}

/* Applies n commands in batches of at most 256; results into res. */
static void
run_all(trastenda_store *st, const trastenda_cmd *cmds, uint32_t n, trastenda_result *res)
{
    for (uint32_t i = 0; i < n; i += 256) {
        uint32_t k = n - i < 256 ? n - i : 256;
        cr_assert_eq(st_run(st, cmds + i, k, res + i, NULL), TRASTENDA_OK);
        for (uint32_t j = 0; j < k; j++)
            cr_assert_eq(res[i + j].code, TRASTENDA_OK, "command %u: %s", i + j,
                         res[i + j].message);
    }
}

/*
 * A materializer that loaded its copy packs holds (and orders, POs, keys) from slot 0, so their
 * records move to other pages than the state database has them in. Here 300 holds fill pages 0
 * and 1; the first 256 are released and purged, leaving page 1; after a restart the 44 left sit
 * in page 0. A hold released then must not come back open from the old page 1 at the next open.
 */
Test(store_restart, a_reloaded_materializer_leaves_no_stale_page)
{
    char dir[512];
    st_tmpdir(dir, sizeof(dir), "repack");
    trastenda_store_config cfg;
    config(&cfg, dir, TRASTENDA_DURABILITY_ASYNC);
    cfg.engine.purge_per_batch_max = 1024;
    cfg.engine.page_slots = 256; /* the pages this scenario counts */
    __atomic_store_n(&clock_ms_now, 1000000, __ATOMIC_RELEASE);
    trastenda_store *st = open_ok(&cfg);
    static trastenda_cmd cmds[300];
    static trastenda_result res[300];
    trastenda_ref sku = {{"s0", 2}, TRASTENDA_IX_NONE}, loc = {{"l0", 2}, TRASTENDA_IX_NONE};
    memset(cmds, 0, 3 * sizeof(cmds[0]));
    cmds[0].op = TRASTENDA_OP_LOCATION_UPSERT;
    cmds[0].loc = loc;
    cmds[0].active = 1;
    cmds[1].op = TRASTENDA_OP_SKU_UPSERT;
    cmds[1].sku = sku;
    cmds[1].active = 1;
    cmds[2].op = TRASTENDA_OP_RECEIVE;
    cmds[2].sku = sku;
    cmds[2].loc = loc;
    cmds[2].qty = 1000;
    run_all(st, cmds, 3, res);
    static trastenda_line line;
    line = (trastenda_line){sku, loc, 1, 0};
    memset(cmds, 0, sizeof(cmds));
    for (uint32_t i = 0; i < 300; i++) {
        cmds[i].op = TRASTENDA_OP_RESERVE;
        cmds[i].lines = &line;
        cmds[i].line_count = 1;
        cmds[i].ttl_ms = 3600000;
    }
    run_all(st, cmds, 300, res);
    static uint64_t holds[300];
    for (uint32_t i = 0; i < 300; i++)
        holds[i] = res[i].id;
    memset(cmds, 0, sizeof(cmds));
    for (uint32_t i = 0; i < 256; i++) {
        cmds[i].op = TRASTENDA_OP_RELEASE;
        cmds[i].hold_id = holds[i];
    }
    run_all(st, cmds, 256, res);
    /* Past the retention window: the released holds leave the table. */
    __atomic_store_n(&clock_ms_now, 1000000 + cfg.engine.hold_retention_ms + 1000,
                     __ATOMIC_RELEASE);
    memset(cmds, 0, sizeof(cmds[0]));
    cmds[0].op = TRASTENDA_OP_NOOP;
    run_all(st, cmds, 1, res);
    trastenda_store_close(st); /* writes the state: page 1 only */

    st = open_ok(&cfg); /* the materializer's 44 holds now in page 0 */
    memset(cmds, 0, sizeof(cmds[0]));
    cmds[0].op = TRASTENDA_OP_RELEASE;
    cmds[0].hold_id = holds[260];
    run_all(st, cmds, 1, res);
    uint64_t want = st_digest(st);
    trastenda_store_close(st);
    for (int i = 0; i < 2; i++) {
        st = open_ok(&cfg);
        cr_assert_eq(st_digest(st), want, "open %d: a stale page came back", i + 1);
        trastenda_store_close(st);
    }
    st_rmdir(dir);
}

/*
 * Reads the closed state database at dir: the meta's length and page size, and checks that each
 * table whose records keep their slots (locations, SKUs, stock: dense, insert-only) is stored in
 * pages of exactly P slots: pages 0..n-1, every one full but the last. A page of another
 * numbering left beside them breaks that (a page with more records than P, a gap, one too many).
 */
static void
state_pages_check(const char *dir, uint32_t want_slots, int c)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/state", dir);
    rocksdb_options_t *o = rocksdb_options_create();
    char *err = NULL;
    rocksdb_t *db = rocksdb_open_for_read_only(o, path, 0, &err);
    cr_assert_null(err, "%s", err);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    size_t len = 0;
    char *meta = rocksdb_get(db, ro, "M", 1, &len, &err);
    cr_assert_null(err, "%s", err);
    uint32_t slots = 256;
    if (len == 28)
        slots = (uint8_t)meta[24] | (uint32_t)(uint8_t)meta[25] << 8 |
                (uint32_t)(uint8_t)meta[26] << 16 | (uint32_t)(uint8_t)meta[27] << 24;
    cr_assert_eq(len, want_slots == 256 ? 24u : 28u, "case %d: a meta of %zu bytes", c, len);
    cr_assert_eq(slots, want_slots, "case %d: the meta names pages of %u", c, slots);
    rocksdb_free(meta);
    rocksdb_iterator_t *it = rocksdb_create_iterator(db, ro);
    for (uint8_t t = 1; t <= 3; t++) { /* positions of location, SKU, stock in image_tables */
        cr_assert(trastenda_engine_load_keeps_slots(trastenda_image_tables[t]));
        const char lo[2] = {'P', (char)t};
        uint32_t next = 0, last_count = want_slots;
        for (rocksdb_iter_seek(it, lo, 2); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
            size_t klen, vlen;
            const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
            if (klen != 6 || k[0] != 'P' || k[1] != t) break;
            uint32_t page =
                (uint32_t)k[2] << 24 | (uint32_t)k[3] << 16 | (uint32_t)k[4] << 8 | k[5];
            const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
            cr_assert_geq(vlen, 4);
            uint32_t count =
                v[0] | (uint32_t)v[1] << 8 | (uint32_t)v[2] << 16 | (uint32_t)v[3] << 24;
            cr_assert_eq(page, next, "case %d, table %u: page %u where %u was due", c, t, page,
                         next);
            cr_assert_eq(last_count, want_slots,
                         "case %d, table %u: page %u follows a page not full", c, t, page);
            cr_assert(count >= 1 && count <= want_slots, "case %d, table %u: page %u holds %u", c,
                      t, page, count);
            last_count = count;
            next++;
        }
        cr_assert_gt(next, 0, "case %d, table %u: no page", c, t);
    }
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    rocksdb_close(db);
    rocksdb_options_destroy(o);
}

/*
 * A state written with pages of one size and opened by a store whose pages hold another: the
 * load does not depend on the size, and the materializer's first write must replace every page
 * of the old layout. Growing the size, a page of the old numbering left beside the new ones
 * would load stale records at a later open; shrinking it, a new page 0 would replace the old
 * page 0 and lose the records of the old one that the new pages did not rewrite. The random
 * sequence leaves up to 36 stock records, 6 locations and SKUs, holds, orders and keys: several
 * pages of 4 in each table. Then one stock record changes (growing: every one, so that the new
 * pages are written over some of the old ones' keys). The third case starts from pages of 256,
 * whose meta is the 24 bytes of before the size was recorded.
 */
Test(store_restart, pages_of_another_size_are_rewritten_whole)
{
    static const uint32_t sizes[3][2] = {{4, 64}, {64, 4}, {256, 4}};
    {
        char dir[512];
        st_tmpdir(dir, sizeof(dir), "relayout");
        trastenda_store_config cfg;
        config(&cfg, dir, TRASTENDA_DURABILITY_ASYNC);
        cfg.engine.page_slots = 48; /* not a power of two */
        trastenda_store *st = NULL;
        char err[512] = "";
        cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_E_INVALID);
        cr_assert_null(st);
        cr_assert(strstr(err, "page_slots") != NULL, "the error names the setting: %s", err);
        st_rmdir(dir);
    }
    for (int c = 0; c < 3; c++) {
        char dir[512];
        st_tmpdir(dir, sizeof(dir), "relayout");
        trastenda_store_config cfg;
        config(&cfg, dir, TRASTENDA_DURABILITY_ASYNC);
        cfg.engine.page_slots = sizes[c][0];
        trastenda_store *st = open_ok(&cfg);
        uint64_t want, seq;
        run_sequence(st, 0x5eed0 + (uint64_t)c, &want, &seq);
        trastenda_store_close(st); /* the state in pages of the first size */
        state_pages_check(dir, sizes[c][0], c);

        cfg.engine.page_slots = sizes[c][1];
        st = open_ok(&cfg);
        cr_assert_eq(st_digest(st), want, "case %d: the state loads with the other size", c);
        static trastenda_cmd rcv[N_SKUS * N_LOCS];
        static trastenda_result res[N_SKUS * N_LOCS];
        memset(rcv, 0, sizeof(rcv));
        uint32_t n = sizes[c][1] > sizes[c][0] ? N_SKUS * N_LOCS : 1;
        for (uint32_t k = 0; k < n; k++) {
            rcv[k].op = TRASTENDA_OP_RECEIVE;
            rcv[k].sku = R(SKU_IDS[k / N_LOCS]);
            rcv[k].loc = R(LOC_IDS[k % N_LOCS]);
            rcv[k].qty = 1;
        }
        uint64_t s = 0;
        cr_assert_eq(st_run(st, rcv, n, res, &s), TRASTENDA_OK);
        cr_assert_eq(res[0].code, TRASTENDA_OK, "case %d: %s", c, res[0].message);
        want = st_settled(st, &seq); /* written in pages of the second size */
        trastenda_store_close(st);
        state_pages_check(dir, sizes[c][1], c);
        for (int i = 0; i < 2; i++) {
            st = open_ok(&cfg);
            cr_assert_eq(st_digest(st), want, "case %d, open %d: a page of the old size came back",
                         c, i + 1);
            trastenda_store_close(st);
        }
        st_rmdir(dir);
    }
}
