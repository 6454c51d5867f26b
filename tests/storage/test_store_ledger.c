/*
 * tests/storage/test_store_ledger.c - ledger queries from the index the materializer writes.
 *
 * A random command sequence goes through a store whose clock stands still (so every batch is one
 * the test submitted) while a reference engine applies the same batches: the movements of each
 * SKU read back from the store - newest first, page by page, by location, by time - must be
 * exactly the reference's ledger records minus hold churn, including movements the materializer
 * had not written yet when the query came (the query has it write them). The index survives a
 * restart. Bad queries get E_INVALID and a message.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <sys/wait.h>

#include "gen.h"
#include "sthelp.h"
#include "trastenda/log.h"

#define T0      INT64_C(1700000000000)
#define BATCHES 250
#define ROWS    20000

static int64_t
fixed_clock(void *ctx)
{
    (void)ctx;
    return T0;
}

/* The reference: kept ledger records of every SKU, in log order. */
struct ref_row {
    uint64_t seq;
    int sku;
    char loc[8];
    uint8_t move;
    int64_t delta[TRASTENDA_Q_COUNT_];
};
static struct ref_row ref[ROWS];
static uint32_t n_ref;

static int
sku_index(trastenda_str s)
{
    for (int i = 0; i < N_SKUS; i++)
        if (s.len == strlen(SKU_IDS[i]) && memcmp(s.ptr, SKU_IDS[i], s.len) == 0) return i;
    return -1;
}

static void
ref_collect(const trastenda_batch_out *out)
{
    trastenda_entry_header hdr;
    trastenda_entry_iter it;
    cr_assert_eq(trastenda_entry_open(out->entry, out->entry_len, &hdr, &it), TRASTENDA_OK);
    uint8_t type;
    const uint8_t *body;
    uint32_t len;
    while (trastenda_entry_next(&it, &type, &body, &len) == TRASTENDA_OK) {
        if (type != TRASTENDA_REC_LEDGER) continue;
        trastenda_ledger_entry le;
        cr_assert_eq(trastenda_ledger_decode(body, len, &le), TRASTENDA_OK);
        if (le.move == TRASTENDA_MOVE_RESERVE || le.move == TRASTENDA_MOVE_RELEASE ||
            le.move == TRASTENDA_MOVE_EXPIRE)
            continue;
        cr_assert_lt(n_ref, ROWS);
        struct ref_row *r = &ref[n_ref++];
        r->seq = le.seq;
        r->sku = sku_index(le.sku);
        cr_assert_geq(r->sku, 0);
        snprintf(r->loc, sizeof(r->loc), "%.*s", (int)le.loc.len, le.loc.ptr);
        r->move = le.move;
        memcpy(r->delta, le.delta, sizeof(r->delta));
    }
}

static void
config(trastenda_store_config *cfg, const char *dir)
{
    trastenda_store_config_default(cfg);
    cfg->dir = dir;
    gen_config(&cfg->engine, false);
    cfg->queue_max = 64;
    cfg->materialize_interval_ms = 3600000; /* only queries (and close) make it write */
    cfg->log = st_log_quiet;
    cfg->clock_ms = fixed_clock;
}

/* Reads every movement of a SKU (optionally at one location) page by page; checks the order. */
static uint32_t
read_all(trastenda_store *st, int sku, const char *loc, uint32_t limit, struct ref_row *got,
         uint32_t max)
{
    trastenda_ledger_query q;
    memset(&q, 0, sizeof(q));
    q.sku = (trastenda_str){SKU_IDS[sku], (uint32_t)strlen(SKU_IDS[sku])};
    if (loc != NULL) q.loc = (trastenda_str){loc, (uint32_t)strlen(loc)};
    q.limit = limit;
    q.timeout_ms = ST_MAT_WAIT_MS;
    uint32_t n = 0;
    char err[256];
    for (int pages = 0;; pages++) {
        cr_assert_lt(pages, 100000);
        trastenda_ledger_page *p = NULL;
        cr_assert_eq(trastenda_store_ledger(st, &q, &p, err, sizeof(err)), TRASTENDA_OK, "%s", err);
        cr_assert(p->complete);
        cr_assert_leq(p->count, limit);
        for (uint32_t i = 0; i < p->count; i++) {
            const trastenda_ledger_entry *e = &p->rows[i].e;
            cr_assert_lt(n, max);
            cr_assert(n == 0 || e->seq < got[n - 1].seq, "newest first, no repeats");
            cr_assert_eq(p->rows[i].time_ms, T0);
            got[n].seq = e->seq;
            got[n].sku = sku_index(e->sku);
            snprintf(got[n].loc, sizeof(got[n].loc), "%.*s", (int)e->loc.len, e->loc.ptr);
            got[n].move = e->move;
            memcpy(got[n].delta, e->delta, sizeof(got[n].delta));
            n++;
        }
        uint64_t next = p->next;
        trastenda_ledger_page_free(p);
        if (next == 0) break;
        q.before_seq = next;
    }
    return n;
}

static void
compare(trastenda_store *st, uint32_t limit)
{
    static struct ref_row got[ROWS];
    for (int s = 0; s < N_SKUS; s++) {
        for (int l = -1; l < N_LOCS; l++) {
            const char *loc = l < 0 ? NULL : LOC_IDS[l];
            uint32_t n = read_all(st, s, loc, limit, got, ROWS);
            uint32_t k = 0;
            for (uint32_t i = n_ref; i-- > 0;) {
                const struct ref_row *r = &ref[i];
                if (r->sku != s || (loc != NULL && strcmp(r->loc, loc) != 0)) continue;
                cr_assert_lt(k, n, "sku %d loc %s: movement %" PRIu64 " missing", s,
                             loc ? loc : "*", r->seq);
                cr_assert(got[k].seq == r->seq && got[k].move == r->move &&
                              strcmp(got[k].loc, r->loc) == 0 &&
                              memcmp(got[k].delta, r->delta, sizeof(r->delta)) == 0,
                          "sku %d: row %u differs (seq %" PRIu64 " vs %" PRIu64 ")", s, k,
                          got[k].seq, r->seq);
                k++;
            }
            cr_assert_eq(k, n, "sku %d loc %s: %u rows, expected %u", s, loc ? loc : "*", n, k);
        }
    }
}

Test(store_ledger, movements_by_sku_equal_the_log_newest_first_paginated)
{
    char dir[512], err[512];
    st_tmpdir(dir, sizeof(dir), "ledger");
    trastenda_store_config cfg;
    config(&cfg, dir);
    trastenda_store *st = NULL;
    cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_OK, "%s", err);
    trastenda_engine *e = NULL;
    cr_assert_eq(trastenda_engine_create(&cfg.engine, &e), TRASTENDA_OK);
    static struct batch b;
    static trastenda_result res[BATCH_MAX], rres[BATCH_MAX];
    struct gen g = {.rng = {91}};
    trastenda_batch_out out;
    setup_batch(&b);
    for (uint32_t i = 0; i <= BATCHES; i++) {
        if (i > 0) next_batch(&g, &b);
        cr_assert_eq(st_run(st, b.cmds, b.n, res, NULL), TRASTENDA_OK);
        cr_assert_eq(trastenda_engine_apply(e, T0, b.cmds, b.n, rres, &out), TRASTENDA_OK);
        ref_collect(&out);
        learn(&g, b.g, res, b.n);
        if (i == BATCHES / 2) compare(st, 7); /* midway: nothing was materialized on its own */
    }
    cr_assert_gt(n_ref, 200, "the sequence made history (%u rows)", n_ref);
    compare(st, 3);
    compare(st, TRASTENDA_PAGE_MAX);
    trastenda_store_stats stats;
    trastenda_store_stats_get(st, &stats);
    cr_assert_gt(stats.ledger_chunks, 0);
    trastenda_store_close(st);
    cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_OK, "%s", err);
    compare(st, 50); /* the index survives a restart */
    trastenda_store_close(st);
    trastenda_engine_destroy(e);
    st_rmdir(dir);
}

Test(store_ledger, time_ranges_and_bad_queries)
{
    char dir[512], err[512];
    st_tmpdir(dir, sizeof(dir), "ledger2");
    trastenda_store_config cfg;
    config(&cfg, dir);
    cfg.clock_ms = NULL; /* real time: batches 5 ms apart */
    trastenda_store *st = NULL;
    cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_OK, "%s", err);
    static struct batch b;
    static trastenda_result res[BATCH_MAX];
    setup_batch(&b);
    cr_assert_eq(st_run(st, b.cmds, b.n, res, NULL), TRASTENDA_OK);
    int64_t times[10];
    for (int i = 0; i < 10; i++) {
        struct gcmd x;
        cmd_stock(&x, TRASTENDA_OP_RECEIVE, 0, 0, i + 1);
        cr_assert_eq(st_run(st, &x.c, 1, res, NULL), TRASTENDA_OK);
        cr_assert_eq(res[0].code, TRASTENDA_OK);
        usleep(5000);
        trastenda_ledger_query q = {.sku = {"s0", 2}, .limit = 1, .timeout_ms = ST_MAT_WAIT_MS};
        trastenda_ledger_page *p;
        cr_assert_eq(trastenda_store_ledger(st, &q, &p, err, sizeof(err)), TRASTENDA_OK);
        cr_assert_eq(p->count, 1);
        cr_assert_eq(p->rows[0].e.delta[TRASTENDA_Q_ON_HAND], i + 1, "the newest is the last");
        times[i] = p->rows[0].time_ms;
        trastenda_ledger_page_free(p);
    }
    /* Receipts 3..6 (times[2]..times[5]). */
    trastenda_ledger_query q = {.sku = {"s0", 2},
                                .from_ms = times[2],
                                .to_ms = times[5],
                                .limit = 100,
                                .timeout_ms = ST_MAT_WAIT_MS};
    trastenda_ledger_page *p;
    cr_assert_eq(trastenda_store_ledger(st, &q, &p, err, sizeof(err)), TRASTENDA_OK);
    cr_assert_eq(p->count, 4);
    for (uint32_t i = 0; i < 4; i++)
        cr_assert_eq(p->rows[i].e.delta[TRASTENDA_Q_ON_HAND], 6 - (int64_t)i);
    cr_assert_eq(p->next, 0);
    trastenda_ledger_page_free(p);
    /* An unknown SKU has no history; bad queries are refused with a message. */
    q = (trastenda_ledger_query){.sku = {"nope", 4}, .limit = 10};
    cr_assert_eq(trastenda_store_ledger(st, &q, &p, err, sizeof(err)), TRASTENDA_OK);
    cr_assert_eq(p->count, 0);
    trastenda_ledger_page_free(p);
    q.limit = 0;
    cr_assert_eq(trastenda_store_ledger(st, &q, &p, err, sizeof(err)), TRASTENDA_E_INVALID);
    cr_assert(strstr(err, "limit") != NULL, "%s", err);
    q = (trastenda_ledger_query){.sku = {"", 0}, .limit = 10};
    cr_assert_eq(trastenda_store_ledger(st, &q, &p, err, sizeof(err)), TRASTENDA_E_INVALID);
    cr_assert(strstr(err, "sku") != NULL, "%s", err);
    q = (trastenda_ledger_query){.sku = {"s0", 2}, .from_ms = 10, .to_ms = 5, .limit = 10};
    cr_assert_eq(trastenda_store_ledger(st, &q, &p, err, sizeof(err)), TRASTENDA_E_INVALID);
    trastenda_store_close(st);
    st_rmdir(dir);
}

static int64_t moving_ms = T0;

static int64_t
moving_clock(void *ctx)
{
    (void)ctx;
    return __atomic_load_n(&moving_ms, __ATOMIC_ACQUIRE);
}

static uint32_t
count_rows(trastenda_store *st)
{
    trastenda_ledger_query q = {.sku = {"s0", 2}, .limit = 100, .timeout_ms = ST_MAT_WAIT_MS};
    trastenda_ledger_page *p;
    char err[256];
    cr_assert_eq(trastenda_store_ledger(st, &q, &p, err, sizeof(err)), TRASTENDA_OK, "%s", err);
    cr_assert(p->complete);
    uint32_t n = p->count;
    trastenda_ledger_page_free(p);
    return n;
}

Test(store_ledger, retention_cuts_old_history_only)
{
    char dir[512], err[512];
    st_tmpdir(dir, sizeof(dir), "ledger3");
    trastenda_store_config cfg;
    config(&cfg, dir);
    cfg.clock_ms = moving_clock;
    cfg.ledger_retention_ms = 10000;
    trastenda_store *st = NULL;
    cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_OK, "%s", err);
    static struct batch b;
    static trastenda_result res[BATCH_MAX];
    setup_batch(&b);
    cr_assert_eq(st_run(st, b.cmds, b.n, res, NULL), TRASTENDA_OK);
    struct gcmd x;
    cmd_stock(&x, TRASTENDA_OP_RECEIVE, 0, 0, 5);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(st_run(st, &x.c, 1, res, NULL), TRASTENDA_OK);
    cr_assert_eq(count_rows(st), 3);
    /* The materializer may have split those three rows over one to three state writes, each a
     * chunk: every chunk written so far holds rows of T0 only, and all of them are cut below. */
    trastenda_store_stats stats;
    trastenda_store_stats_get(st, &stats);
    uint64_t old_chunks = stats.ledger_chunks;
    cr_assert(old_chunks >= 1 && old_chunks <= 3, "%llu", (unsigned long long)old_chunks);
    __atomic_store_n(&moving_ms, T0 + 5000, __ATOMIC_RELEASE); /* within the window */
    cr_assert_eq(st_run(st, &x.c, 1, res, NULL), TRASTENDA_OK);
    cr_assert_eq(count_rows(st), 4);
    __atomic_store_n(&moving_ms, T0 + 12000, __ATOMIC_RELEASE); /* the first three are out */
    cr_assert_eq(st_run(st, &x.c, 1, res, NULL), TRASTENDA_OK);
    cr_assert_eq(count_rows(st), 2);
    trastenda_store_stats_get(st, &stats);
    cr_assert_eq(stats.ledger_chunks_cut, old_chunks, "%llu",
                 (unsigned long long)stats.ledger_chunks_cut);
    trastenda_store_close(st);
    st_rmdir(dir);
}

Test(store_ledger, movements_of_a_run_that_ended_before_its_state_write_are_indexed)
{
    char dir[512], err[512];
    st_tmpdir(dir, sizeof(dir), "ledger4");
    trastenda_store_config cfg;
    config(&cfg, dir); /* the state is written only when asked, or at close */
    /* 25 receipts by a process that ends without close or state write (spawned: sthelp.h) */
    const char *args[] = {"--dir", dir, "--receipts", "25", "--crash", NULL};
    uint64_t wseq, wdigest;
    cr_assert_eq(st_writer(args, &wseq, &wdigest), 0, "the writer failed");
    trastenda_store *st = NULL;
    cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_OK, "%s", err);
    cr_assert_eq(count_rows(st), 25, "rows replayed at recovery are indexed too");
    trastenda_store_close(st);
    st_rmdir(dir);
}
