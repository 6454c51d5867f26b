/*
 * tests/storage/plain_store_concurrency.c - many threads through one store (run under TSan too).
 *
 * Eight producer threads, each with a window of requests in flight, reserve one unit at a time
 * of ten SKUs with limited stock through trastenda_store_submit, while a reader thread checks
 * availability lock-free on the live engine and a query thread reads the digest through the
 * engine thread. Every request completes exactly once; the acknowledged reserves equal the stock
 * exactly (nothing oversold, nothing left); after close and reopen the held units are the same.
 * A plain executable (exit 0 = pass): Criterion aborts under TSan.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sthelp.h"

#define SKUS      10
#define STOCK     300
#define PRODUCERS 8
#define WINDOW    16

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "plain_store_concurrency: FAIL %s:%d: ", __FILE__, __LINE__);          \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static const char *const SKU[SKUS] = {"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"};

struct slot {
    trastenda_request req;
    trastenda_cmd cmd;
    trastenda_line line;
    trastenda_result res;
    char key[32];
    uint32_t done; /* atomic */
    trastenda_err status;
};

static trastenda_store *store;
static uint32_t stop_readers; /* atomic */
static uint64_t acked[SKUS];  /* atomic: OK reserves per SKU */
static uint64_t completions;  /* atomic */

static void
slot_done(trastenda_request *req, trastenda_err status)
{
    struct slot *s = req->ctx;
    s->status = status;
    __atomic_fetch_add(&completions, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
}

static trastenda_str
S(const char *s)
{
    return (trastenda_str){s, (uint32_t)strlen(s)};
}

static void
reserve_submit(struct slot *s, uint32_t thread, uint32_t n, uint32_t sku)
{
    memset(s, 0, sizeof(*s));
    int len = snprintf(s->key, sizeof(s->key), "t%u-%u", thread, n);
    s->line.sku = (trastenda_ref){S(SKU[sku]), TRASTENDA_IX_NONE};
    s->line.loc = (trastenda_ref){S("w1"), TRASTENDA_IX_NONE};
    s->line.qty = 1;
    s->cmd.op = TRASTENDA_OP_RESERVE;
    s->cmd.sku.ix = s->cmd.loc.ix = s->cmd.loc_to.ix = TRASTENDA_IX_NONE;
    s->cmd.key = (trastenda_str){s->key, (uint32_t)len};
    s->cmd.lines = &s->line;
    s->cmd.line_count = 1;
    s->cmd.ttl_ms = TRASTENDA_TTL_MS_MAX;
    s->req.cmds = &s->cmd;
    s->req.n = 1;
    s->req.results = &s->res;
    s->req.done = slot_done;
    s->req.ctx = s;
    trastenda_err err;
    while ((err = trastenda_store_submit(store, &s->req)) == TRASTENDA_E_BUSY)
        sched_yield();
    CHECK(err == TRASTENDA_OK, "submit: %s", trastenda_err_name(err));
}

static void *
producer(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    struct slot *w = calloc(WINDOW, sizeof(*w));
    uint32_t n = 0, sold_out = 0, in_flight = 0;
    uint64_t rng = 0x9e3779b97f4a7c15ull * (id + 1);
    for (uint32_t i = 0; i < WINDOW; i++) {
        reserve_submit(&w[i], id, n++, (uint32_t)(rng = rng * 6364136223846793005ull + 1) % SKUS);
        in_flight++;
    }
    /* Until a full round of SKUs says short: then every SKU is sold out. */
    while (in_flight > 0) {
        for (uint32_t i = 0; i < WINDOW; i++) {
            if (w[i].req.done == NULL || !__atomic_load_n(&w[i].done, __ATOMIC_ACQUIRE)) continue;
            CHECK(w[i].status == TRASTENDA_OK, "done status %s", trastenda_err_name(w[i].status));
            uint32_t sku = (uint32_t)(w[i].line.sku.id.ptr[1] - '0');
            if (w[i].res.code == TRASTENDA_OK) {
                __atomic_fetch_add(&acked[sku], 1, __ATOMIC_RELAXED);
                sold_out = 0;
            } else {
                CHECK(w[i].res.code == TRASTENDA_E_SHORT, "reserve: %s (%s)",
                      trastenda_err_name(w[i].res.code), w[i].res.message);
                sold_out++;
            }
            w[i].req.done = NULL;
            in_flight--;
            if (sold_out < 4 * SKUS) {
                reserve_submit(&w[i], id, n, (n + id) % SKUS);
                n++;
                in_flight++;
            }
        }
        usleep(50);
    }
    free(w);
    return NULL;
}

static void *
reader(void *arg)
{
    (void)arg;
    const trastenda_engine *e = trastenda_store_engine(store);
    uint64_t reads = 0;
    do { /* at least one pass, however late the thread is scheduled */
        for (uint32_t k = 0; k < SKUS; k++) {
            uint32_t ix;
            if (trastenda_engine_sku_lookup(e, S(SKU[k]), &ix) != TRASTENDA_OK) continue;
            int64_t avail = 0;
            uint32_t n = 0;
            trastenda_stock rec;
            trastenda_err err = trastenda_engine_availability(e, ix, TRASTENDA_SCOPE_ALL, S(""),
                                                              &avail, &rec, 1, &n);
            CHECK(err == TRASTENDA_OK, "availability: %s", trastenda_err_name(err));
            CHECK(avail >= 0 && avail <= STOCK, "available %" PRId64, avail);
            if (n == 1) CHECK(rec.held + rec.available <= STOCK, "held + available > stock");
            reads++;
        }
    } while (!__atomic_load_n(&stop_readers, __ATOMIC_ACQUIRE));
    CHECK(reads > 0, "the reader read nothing");
    return NULL;
}

static void *
querier(void *arg)
{
    (void)arg;
    do { /* at least one query, however late the thread is scheduled */
        (void)st_digest(store);
        usleep(500);
    } while (!__atomic_load_n(&stop_readers, __ATOMIC_ACQUIRE));
    return NULL;
}

static void
setup(void)
{
    trastenda_cmd c[1 + 2 * SKUS];
    memset(c, 0, sizeof(c));
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
        c[i].sku.ix = c[i].loc.ix = c[i].loc_to.ix = TRASTENDA_IX_NONE;
    c[0].op = TRASTENDA_OP_LOCATION_UPSERT;
    c[0].loc.id = S("w1");
    c[0].active = 1;
    for (uint32_t k = 0; k < SKUS; k++) {
        c[1 + 2 * k].op = TRASTENDA_OP_SKU_UPSERT;
        c[1 + 2 * k].sku.id = S(SKU[k]);
        c[1 + 2 * k].active = 1;
        c[2 + 2 * k].op = TRASTENDA_OP_RECEIVE;
        c[2 + 2 * k].sku.id = S(SKU[k]);
        c[2 + 2 * k].loc.id = S("w1");
        c[2 + 2 * k].qty = STOCK;
    }
    trastenda_result r[1 + 2 * SKUS];
    CHECK(st_run(store, c, 1 + 2 * SKUS, r, NULL) == TRASTENDA_OK, "setup batch");
    for (uint32_t i = 0; i < 1 + 2 * SKUS; i++)
        CHECK(r[i].code == TRASTENDA_OK, "setup #%u: %s", i, r[i].message);
}

static int64_t
held_total(void)
{
    const trastenda_engine *e = trastenda_store_engine(store);
    uint32_t loc;
    CHECK(trastenda_engine_location_lookup(e, S("w1"), &loc) == TRASTENDA_OK, "w1");
    int64_t held = 0;
    for (uint32_t k = 0; k < SKUS; k++) {
        uint32_t ix;
        trastenda_stock s;
        CHECK(trastenda_engine_sku_lookup(e, S(SKU[k]), &ix) == TRASTENDA_OK, "sku");
        CHECK(trastenda_engine_stock_read(e, ix, loc, &s) == TRASTENDA_OK, "stock");
        CHECK(s.held == STOCK && s.available == 0, "%s: held %" PRId64 ", available %" PRId64,
              SKU[k], s.held, s.available);
        held += s.held;
    }
    return held;
}

int
main(void)
{
    char dir[512], err[512];
    st_tmpdir(dir, sizeof(dir), "conc");
    trastenda_store_config cfg;
    trastenda_store_config_default(&cfg);
    cfg.dir = dir;
    cfg.queue_max = 64; /* small: producers meet E_BUSY */
    cfg.materialize_interval_ms = 5;
    cfg.log = st_log_quiet;
    cfg.engine.holds_max = 8192;
    cfg.engine.keys_max = 16384;
    CHECK(trastenda_store_open(&cfg, &store, err, sizeof(err)) == TRASTENDA_OK, "open: %s", err);
    setup();
    pthread_t p[PRODUCERS], rd, q;
    pthread_create(&rd, NULL, reader, NULL);
    pthread_create(&q, NULL, querier, NULL);
    for (uintptr_t i = 0; i < PRODUCERS; i++)
        pthread_create(&p[i], NULL, producer, (void *)i);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(p[i], NULL);
    __atomic_store_n(&stop_readers, 1, __ATOMIC_RELEASE);
    pthread_join(rd, NULL);
    pthread_join(q, NULL);
    uint64_t total = 0;
    for (uint32_t k = 0; k < SKUS; k++) {
        CHECK(acked[k] == STOCK, "%s: %" PRIu64 " reserves acknowledged, stock %d", SKU[k],
              acked[k], STOCK);
        total += acked[k];
    }
    CHECK(held_total() == (int64_t)total, "held differs from the acknowledged reserves");
    trastenda_store_stats stats;
    trastenda_store_stats_get(store, &stats);
    /* Every reserve completed once (the setup request is the one more). */
    CHECK(stats.requests == __atomic_load_n(&completions, __ATOMIC_RELAXED) + 1,
          "requests %" PRIu64 " vs completions %" PRIu64, stats.requests, completions);
    CHECK(stats.queries > 0, "no query ran");
    uint64_t seq = stats.durable_seq;
    trastenda_store_close(store);
    CHECK(trastenda_store_open(&cfg, &store, err, sizeof(err)) == TRASTENDA_OK, "reopen: %s", err);
    CHECK(trastenda_store_durable_seq(store) == seq, "sequence after reopening");
    CHECK(held_total() == (int64_t)total, "held after reopening");
    trastenda_store_close(store);
    st_rmdir(dir);
    printf("plain_store_concurrency: ok: %" PRIu64 " reserves in %" PRIu64
           " batches (largest %" PRIu64 " commands), %" PRIu64 " busy refusals\n",
           total, stats.batches, stats.batch_cmds_max, stats.busy);
    return 0;
}
