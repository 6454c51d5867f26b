/*
 * bench/engine.c - trastenda-bench-engine: throughput and latency of the engine's apply path.
 *
 * Drives trastenda_engine_apply exactly as the server will: batches of commands, each batch
 * producing its log entry (post-images, ledger entries, events), idempotency keys on (every
 * reserve carries a unique key). Workloads:
 *   uniform  reserve+release pairs uniform over 1,000,000 stock records (200,000 SKUs x 5 locs);
 *            a batch holds the releases of the previous batch's reserves, then new reserves
 *   hot      the same over 100 hot SKUs at one location (100 records)
 *   routed   ORDER_PLACE of 3-line orders without locations (channel + ship-to) over the same
 *            catalog; orders are cancelled and purged outside the timed region when the orders
 *            table fills
 *   read     trastenda_engine_stock_read on random records from a reader thread while the
 *            writer runs `uniform`
 *   replay   trastenda_engine_apply_entry of uniform's log entries into a second engine, as a
 *            follower and recovery apply them (after the same catalogue and warm-up entries,
 *            untimed)
 *   checked  trastenda_engine_apply_entry_checked of the same entries, as the materializer
 *            applies its own node's log (no check pass); runs interleaved with replay's
 *   open     reserve+release pairs with 2,000,000 holds open (TTLs of 1-2 h): each batch releases
 *            holds chosen at random among the open ones and reserves as many, as a checkout's
 *            holds, open for minutes and resolved in any order, would
 *   memory   RSS per stock record before and after creating 10,000,000 records (2,000,000 SKUs
 *            x 5 locations) with RECEIVE commands, and the engine's table bytes per record
 *
 * Timing: clock_gettime(CLOCK_MONOTONIC) around each trastenda_engine_apply call only. Building
 * the command arrays (id lookups with trastenda_engine_sku_lookup/location_lookup, keys) is
 * outside the timed region, as the server's network threads will do it. The engine's clock is
 * simulated: +1 ms per batch. Latencies come from a log-bucketed histogram of every batch.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_NAME "trastenda-bench-engine"
#include "common.h"
#include "eng.h" /* table layouts, for the memory figures */
#include "trastenda/engine.h"
#include "trastenda/log.h"

/* ---- parameters ---- */

#define LOCS                5u
#define CAT_SKUS            200000u /* x 5 locations = 1,000,000 stock records */
#define HOT_SKUS            100u
#define OPEN_HOLDS          2000000u /* open holds of the open workload */
#define OPEN_HOLDS_QUICK    200000u
#define OPEN_TTL_MS         3600000  /* 1 h + up to 1 h more: none expires in a run */
#define MEM_SKUS            2000000u /* x 5 = 10,000,000 records */
#define MEM_SKUS_QUICK      200000u  /* --quick: 1,000,000 records */
#define UNITS_PER_RECORD    1000000
#define HOLD_TTL_MS         60000
#define HOLD_RETENTION_MS   1000
#define KEY_RETENTION_MS    2000
#define ORDER_RETENTION_MS  1000
#define ORDERS_MAX          524288u
#define ORDER_LINES         3u
#define SKU_ID_BYTES        12 /* "SKU-0000000" + NUL */
#define TEXT_BYTES          24 /* "k" + 16 hex digits */
#define DEFAULT_BATCH       1024u
#define DEFAULT_DURATION_S  3.0
#define QUICK_DURATION_S    0.25
#define RUNS                3
#define RUNS_MAX            15
#define TARGET_UNIFORM      4000000.0
#define TARGET_HOT          10000000.0
#define TARGET_ROUTED       1000000.0
#define TARGET_BYTES_RECORD 128.0

struct opts {
    uint32_t batch;
    double duration_s;
    bool json, quick;
    const char *only;
    uint32_t runs;
};

static const struct {
    const char *id, *name;
    int32_t lat_e6, lon_e6;
} LOC_INFO[LOCS] = {
    {"MAD", "Madrid", 40416800, -3703800},   {"BCN", "Barcelona", 41387400, 2168600},
    {"VLC", "Valencia", 39469900, -376300},  {"SVQ", "Sevilla", 37389100, -5984500},
    {"LCG", "A Coruna", 43362300, -8411500},
};

static const trastenda_str CHANNELS[2] = {{"web", 3}, {"store", 5}};

static uint64_t
clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The clock of the timed region: CLOCK_MONOTONIC, or with --cpu-clock the writer thread's CPU
 * time (for comparing builds on a machine shared with other work: time spent descheduled is
 * left out, cache contention is not). */
static clockid_t apply_clock = CLOCK_MONOTONIC;

/* ---- figures of one run, and their median over runs ---- */

struct run {
    double rate;                /* operations per second of engine (apply) time */
    double wall_rate;           /* operations per second of wall time, building included */
    double per_op_ns[Q_COUNT_]; /* batch latency / operations in the batch */
    double batch_us[Q_COUNT_];
    double ledger_per_op, events_per_op, bytes_per_op;
    double reads_per_s; /* read workload */
    double ops, batches, failures;
};

#define RUN_FIELDS (sizeof(struct run) / sizeof(double))

/* Median of each figure over the runs (each figure on its own). */
static struct run
run_median(const struct run *runs, uint32_t n)
{
    struct run m;
    double *out = (double *)&m;
    for (size_t f = 0; f < RUN_FIELDS; f++) {
        double v[16];
        for (uint32_t i = 0; i < n; i++)
            v[i] = ((const double *)&runs[i])[f];
        qsort(v, n, sizeof(double), dbl_cmp);
        out[f] = v[n / 2];
    }
    return m;
}

/* What a timed run adds up, turned into its figures by run_finish. */
struct run_totals {
    uint64_t engine_ns, ledger, events, bytes, failures;
    double wall_s;
};

static void
run_latencies(struct run *r, const struct hist *h, double ops_per_batch)
{
    double q[Q_COUNT_] = {hist_quantile(h, 0.50), hist_quantile(h, 0.99), hist_quantile(h, 0.999),
                          (double)h->max};
    for (int i = 0; i < Q_COUNT_; i++) {
        r->batch_us[i] = q[i] / 1000.0;
        r->per_op_ns[i] = q[i] / ops_per_batch;
    }
}

static void
run_finish(struct run *r, const struct hist *h, const struct run_totals *t, double ops_per_batch)
{
    r->batches = (double)h->count;
    r->rate = r->ops / ((double)t->engine_ns / 1e9);
    r->wall_rate = r->ops / t->wall_s;
    r->ledger_per_op = (double)t->ledger / r->ops;
    r->events_per_op = (double)t->events / r->ops;
    r->bytes_per_op = (double)t->bytes / r->ops;
    r->failures = (double)t->failures;
    run_latencies(r, h, ops_per_batch);
}

/* Counts one timed batch of ops operations into the run's histogram and totals. */
static void
run_add(struct hist *h, struct run_totals *t, struct run *r, uint64_t ns,
        const trastenda_batch_out *out, uint32_t ops)
{
    hist_add(h, ns);
    t->engine_ns += ns;
    t->ledger += out->ledger_count;
    t->events += out->event_count;
    t->bytes += out->entry_len;
    r->ops += ops;
}

/* ---- the engine and the batch being built ---- */

struct bench {
    const struct opts *o;
    trastenda_engine *e;
    uint32_t skus;
    char (*sku_id)[SKU_ID_BYTES];
    int64_t now_ms;
    uint64_t rng;
    uint64_t key_seq, order_seq;
    trastenda_cmd *cmds;
    trastenda_result *res;
    trastenda_line *lines;    /* ORDER_LINES per command */
    char (*text)[TEXT_BYTES]; /* per command: its idempotency key or order id */
    uint64_t *pending;        /* hold ids to release in the next batch */
    uint32_t n_pending;
    uint64_t failures;
    char first_failure[TRASTENDA_MESSAGE_BYTES + 64];
    bool capturing; /* replay: every entry is kept */
    uint8_t **cap_entry;
    uint32_t *cap_len, cap_n, cap_max;
};

/* Keeps a copy of the batch's log entry (replay). */
static void
capture(struct bench *b, const trastenda_batch_out *out)
{
    if (!b->capturing) return;
    if (b->cap_n == b->cap_max) {
        b->cap_max = b->cap_max ? 2 * b->cap_max : 4096;
        b->cap_entry = realloc(b->cap_entry, b->cap_max * sizeof(*b->cap_entry));
        b->cap_len = realloc(b->cap_len, b->cap_max * sizeof(*b->cap_len));
        if (b->cap_entry == NULL || b->cap_len == NULL) die("out of memory for the entries");
    }
    uint8_t *copy = malloc(out->entry_len);
    if (copy == NULL) die("out of memory for the entries");
    memcpy(copy, out->entry, out->entry_len);
    b->cap_entry[b->cap_n] = copy;
    b->cap_len[b->cap_n++] = (uint32_t)out->entry_len;
}

static void
bench_buffers(struct bench *b, const struct opts *o)
{
    b->o = o;
    b->rng = 0x7472617374656e64ull; /* fixed seed: every run sees the same commands */
    b->cmds = xcalloc(o->batch, sizeof(*b->cmds));
    b->res = xcalloc(o->batch, sizeof(*b->res));
    b->lines = xcalloc((size_t)o->batch * ORDER_LINES, sizeof(*b->lines));
    b->text = xcalloc(o->batch, sizeof(*b->text));
    b->pending = xcalloc(o->batch, sizeof(*b->pending));
}

static void
bench_free(struct bench *b)
{
    trastenda_engine_destroy(b->e);
    free(b->sku_id);
    free(b->cmds);
    free(b->res);
    free(b->lines);
    free(b->text);
    free(b->pending);
    for (uint32_t i = 0; i < b->cap_n; i++)
        free(b->cap_entry[i]);
    free(b->cap_entry);
    free(b->cap_len);
    memset(b, 0, sizeof(*b));
}

static void
sku_ids_make(struct bench *b, uint32_t skus)
{
    b->skus = skus;
    b->sku_id = xcalloc(skus, sizeof(*b->sku_id));
    for (uint32_t i = 0; i < skus; i++)
        snprintf(b->sku_id[i], SKU_ID_BYTES, "SKU-%07u", i);
}

static int huge_pages;        /* --huge-pages */
static uint64_t failed_total; /* commands that failed in any workload: exit 1 */

static void
config_make(trastenda_engine_config *cfg, uint32_t batch, uint32_t skus, bool sales)
{
    uint32_t half = batch / 2 > 0 ? batch / 2 : 1;
    trastenda_engine_config_default(cfg);
    cfg->huge_pages = huge_pages;
    cfg->locations_max = 16;
    cfg->skus_max = skus;
    cfg->stock_max = skus * LOCS;
    cfg->batch_cmds_max = batch;
    /* Resolved holds stay HOLD_RETENTION_MS (= batches), keys KEY_RETENTION_MS. */
    cfg->holds_max = sales ? half * (HOLD_RETENTION_MS + 64) + 4096 : 1024;
    cfg->keys_max = sales ? half * (KEY_RETENTION_MS + 64) + 4096 : 1024;
    cfg->orders_max = sales ? ORDERS_MAX : 1024;
    cfg->lines_max = cfg->holds_max + ORDER_LINES * cfg->orders_max + 4096;
    cfg->pos_max = 16;
    cfg->expire_per_batch_max = batch;
    cfg->purge_per_batch_max = batch * 2 > 4096 ? batch * 2 : 4096;
    cfg->hold_retention_ms = HOLD_RETENTION_MS;
    cfg->key_retention_ms = KEY_RETENTION_MS;
    cfg->order_retention_ms = ORDER_RETENTION_MS;
}

static void
cmd_clear(trastenda_cmd *c, uint32_t op)
{
    memset(c, 0, sizeof(*c));
    c->op = op;
    c->sku.ix = c->loc.ix = c->loc_to.ix = TRASTENDA_IX_NONE;
}

/* What the server's network threads do: resolve the ids to indices before the writer sees them. */
static trastenda_ref
sku_ref(const struct bench *b, uint32_t i)
{
    trastenda_ref r = {{b->sku_id[i], SKU_ID_BYTES - 1}, TRASTENDA_IX_NONE};
    if (trastenda_engine_sku_lookup(b->e, r.id, &r.ix) != TRASTENDA_OK)
        die("sku %s unknown", b->sku_id[i]);
    return r;
}

static trastenda_ref
loc_ref(const struct bench *b, uint32_t i)
{
    trastenda_ref r = {{LOC_INFO[i].id, (uint32_t)strlen(LOC_INFO[i].id)}, TRASTENDA_IX_NONE};
    if (trastenda_engine_location_lookup(b->e, r.id, &r.ix) != TRASTENDA_OK)
        die("location %s unknown", LOC_INFO[i].id);
    return r;
}

static void
note_failure(struct bench *b, const trastenda_result *r, const char *what)
{
    if (b->failures++ == 0)
        snprintf(b->first_failure, sizeof(b->first_failure), "%s: %s: %s", what,
                 trastenda_err_name(r->code), r->message);
}

/* Says on stderr how many commands of the bench's workloads failed, and counts them for the
 * exit code. */
static void
failures_report(const struct bench *b)
{
    if (b->failures > 0)
        fprintf(stderr, "trastenda-bench-engine: %llu commands failed; first: %s\n",
                (unsigned long long)b->failures, b->first_failure);
    failed_total += b->failures;
}

/* Applies the built batch outside any timing; every command must succeed unless told. */
static void
apply_untimed(struct bench *b, uint32_t n, trastenda_err tolerated, const char *what)
{
    trastenda_batch_out out;
    trastenda_err err = trastenda_engine_apply(b->e, ++b->now_ms, b->cmds, n, b->res, &out);
    if (err != TRASTENDA_OK) die("%s: apply: %s", what, trastenda_err_name(err));
    capture(b, &out);
    for (uint32_t i = 0; i < n; i++)
        if (b->res[i].code != TRASTENDA_OK && b->res[i].code != tolerated)
            die("%s: command %u: %s: %s", what, i, trastenda_err_name(b->res[i].code),
                b->res[i].message);
}

static uint64_t
apply_timed(struct bench *b, uint32_t n, trastenda_batch_out *out)
{
    uint64_t t0 = clock_ns(apply_clock);
    trastenda_err err = trastenda_engine_apply(b->e, ++b->now_ms, b->cmds, n, b->res, out);
    uint64_t t1 = clock_ns(apply_clock);
    if (err != TRASTENDA_OK) die("apply: %s", trastenda_err_name(err));
    capture(b, out);
    return t1 - t0;
}

/* ---- catalog: 5 locations, SKUs, one stock record per (SKU, location) ---- */

static void
catalog_locations(struct bench *b)
{
    for (uint32_t i = 0; i < LOCS; i++) {
        trastenda_cmd *c = &b->cmds[i];
        cmd_clear(c, TRASTENDA_OP_LOCATION_UPSERT);
        c->loc.id = (trastenda_str){LOC_INFO[i].id, (uint32_t)strlen(LOC_INFO[i].id)};
        c->name = (trastenda_str){LOC_INFO[i].name, (uint32_t)strlen(LOC_INFO[i].name)};
        c->lat_e6 = LOC_INFO[i].lat_e6;
        c->lon_e6 = LOC_INFO[i].lon_e6;
        c->priority = (int32_t)i;
        c->channels = CHANNELS;
        c->channel_count = 2;
        c->active = 1;
    }
    apply_untimed(b, LOCS, TRASTENDA_OK, "location upsert");
}

static void
catalog_skus(struct bench *b)
{
    for (uint32_t first = 0; first < b->skus; first += b->o->batch) {
        uint32_t n = b->skus - first < b->o->batch ? b->skus - first : b->o->batch;
        for (uint32_t i = 0; i < n; i++) {
            trastenda_cmd *c = &b->cmds[i];
            cmd_clear(c, TRASTENDA_OP_SKU_UPSERT);
            c->sku.id = (trastenda_str){b->sku_id[first + i], SKU_ID_BYTES - 1};
            c->active = 1;
        }
        apply_untimed(b, n, TRASTENDA_OK, "sku upsert");
    }
}

/* RECEIVE into every (SKU, location): creates the records. Returns the engine seconds. */
static double
catalog_stock(struct bench *b, int64_t units)
{
    uint64_t total = (uint64_t)b->skus * LOCS, engine_ns = 0;
    for (uint64_t first = 0; first < total; first += b->o->batch) {
        uint32_t n = (uint32_t)(total - first < b->o->batch ? total - first : b->o->batch);
        for (uint32_t i = 0; i < n; i++) {
            uint64_t k = first + i;
            trastenda_cmd *c = &b->cmds[i];
            cmd_clear(c, TRASTENDA_OP_RECEIVE);
            c->sku = sku_ref(b, (uint32_t)(k / LOCS));
            c->loc = loc_ref(b, (uint32_t)(k % LOCS));
            c->qty = units;
        }
        trastenda_batch_out out;
        engine_ns += apply_timed(b, n, &out);
        for (uint32_t i = 0; i < n; i++)
            if (b->res[i].code != TRASTENDA_OK)
                die("receive: %s: %s", trastenda_err_name(b->res[i].code), b->res[i].message);
    }
    return (double)engine_ns / 1e9;
}

/* open_holds: room for that many more holds (and their lines) that stay open. */
static void
bench_open(struct bench *b, const struct opts *o, uint32_t skus, bool sales, uint32_t open_holds)
{
    memset(b, 0, sizeof(*b));
    bench_buffers(b, o);
    sku_ids_make(b, skus);
    trastenda_engine_config cfg;
    config_make(&cfg, o->batch, skus, sales);
    cfg.holds_max += open_holds;
    cfg.lines_max += open_holds;
    trastenda_err err = trastenda_engine_create(&cfg, &b->e);
    if (err != TRASTENDA_OK) die("engine create: %s", trastenda_err_name(err));
    b->now_ms = 1700000000000ll; /* a plausible epoch time; +1 ms per batch from here */
}

/* ---- a, b, d: reserve + release pairs ---- */

static void
cmd_reserve(struct bench *b, uint32_t i, uint32_t sku, uint32_t loc)
{
    trastenda_cmd *c = &b->cmds[i];
    trastenda_line *ln = &b->lines[(size_t)i * ORDER_LINES];
    cmd_clear(c, TRASTENDA_OP_RESERVE);
    ln->sku = sku_ref(b, sku);
    ln->loc = loc_ref(b, loc);
    ln->qty = 1;
    ln->flags = 0;
    c->key = (trastenda_str){b->text[i], text_id(b->text[i], 'k', ++b->key_seq)};
    c->ttl_ms = HOLD_TTL_MS;
    c->lines = ln;
    c->line_count = 1;
}

static void
cmd_release(struct bench *b, uint32_t i, uint64_t hold)
{
    cmd_clear(&b->cmds[i], TRASTENDA_OP_RELEASE);
    b->cmds[i].hold_id = hold;
}

/* One batch: the releases of the previous batch's holds, then batch/2 new reserves. */
static uint32_t
pairs_build(struct bench *b, uint32_t sku_span, uint32_t loc_span)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < b->n_pending; i++)
        cmd_release(b, n++, b->pending[i]);
    uint32_t half = b->o->batch / 2;
    for (uint32_t i = 0; i < half; i++) {
        uint32_t sku = ts_rand_below(&b->rng, sku_span);
        cmd_reserve(b, n++, sku, ts_rand_below(&b->rng, loc_span));
    }
    return n;
}

/* Checks the results and keeps the new holds for the next batch. */
static void
pairs_collect(struct bench *b, uint32_t n, uint32_t n_release)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        const trastenda_result *r = &b->res[i];
        if (r->code != TRASTENDA_OK || r->duplicate) {
            note_failure(b, r, i < n_release ? "release" : "reserve");
            continue;
        }
        if (i >= n_release) b->pending[k++] = r->id;
    }
    b->n_pending = k;
}

static void
pairs_drain(struct bench *b)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < b->n_pending; i++)
        cmd_release(b, n++, b->pending[i]);
    if (n > 0) apply_untimed(b, n, TRASTENDA_OK, "release");
    b->n_pending = 0;
}

/* Batches of pairs outside any figure; the last batch's holds stay pending. */
static void
pairs_untimed(struct bench *b, uint32_t sku_span, uint32_t loc_span, uint32_t batches)
{
    for (uint32_t i = 0; i < batches; i++) {
        uint32_t n_release = b->n_pending;
        uint32_t n = pairs_build(b, sku_span, loc_span);
        trastenda_batch_out out;
        (void)apply_timed(b, n, &out);
        pairs_collect(b, n, n_release);
    }
}

/* Untimed batches until the hold and key tables hold their steady-state population. */
static void
pairs_warm(struct bench *b, uint32_t sku_span, uint32_t loc_span, uint32_t batches)
{
    pairs_untimed(b, sku_span, loc_span, batches);
    pairs_drain(b);
}

static struct run
run_pairs(struct bench *b, uint32_t sku_span, uint32_t loc_span, double secs)
{
    static struct hist h;
    memset(&h, 0, sizeof(h));
    struct run r;
    memset(&r, 0, sizeof(r));
    uint32_t half = b->o->batch / 2;
    struct run_totals t = {0};
    uint64_t failures0 = b->failures, start = now_ns(), end = start + (uint64_t)(secs * 1e9);
    b->n_pending = 0;
    while (now_ns() < end || h.count == 0) {
        uint32_t n_release = b->n_pending;
        uint32_t n = pairs_build(b, sku_span, loc_span);
        trastenda_batch_out out;
        uint64_t ns = apply_timed(b, n, &out);
        pairs_collect(b, n, n_release);
        if (n_release != half) continue; /* the first batch only reserves: warm-up */
        run_add(&h, &t, &r, ns, &out, half);
    }
    t.wall_s = (double)(now_ns() - start) / 1e9;
    pairs_drain(b);
    t.failures = b->failures - failures0;
    run_finish(&r, &h, &t, half);
    return r;
}

/* ---- c: routed 3-line orders ---- */

static void
cmd_order(struct bench *b, uint32_t i)
{
    trastenda_cmd *c = &b->cmds[i];
    trastenda_line *ln = &b->lines[(size_t)i * ORDER_LINES];
    cmd_clear(c, TRASTENDA_OP_ORDER_PLACE);
    uint32_t sku[ORDER_LINES];
    for (uint32_t k = 0; k < ORDER_LINES; k++) {
        bool again;
        do { /* three distinct SKUs */
            sku[k] = ts_rand_below(&b->rng, b->skus);
            again = false;
            for (uint32_t j = 0; j < k; j++)
                again |= sku[j] == sku[k];
        } while (again);
        ln[k].sku = sku_ref(b, sku[k]);
        ln[k].loc = (trastenda_ref){{NULL, 0}, TRASTENDA_IX_NONE};
        ln[k].qty = 1 + (int64_t)ts_rand_below(&b->rng, 2);
        ln[k].flags = 0;
    }
    c->order_id = (trastenda_str){b->text[i], text_id(b->text[i], 'o', ++b->order_seq)};
    c->channel = CHANNELS[0];
    c->has_ship_to = 1;
    /* Somewhere in peninsular Spain: 36.0..43.5 N, 9.0 W..3.0 E. */
    c->lat_e6 = 36000000 + (int32_t)ts_rand_below(&b->rng, 7500000);
    c->lon_e6 = -9000000 + (int32_t)ts_rand_below(&b->rng, 12000000);
    c->lines = ln;
    c->line_count = ORDER_LINES;
}

/* Cancels the orders placed since first_seq and lets retention purge them: all untimed. */
static void
orders_clear(struct bench *b, uint64_t first_seq)
{
    for (uint64_t s = first_seq + 1; s <= b->order_seq;) {
        uint32_t n = 0;
        for (; n < b->o->batch && s <= b->order_seq; n++, s++) {
            cmd_clear(&b->cmds[n], TRASTENDA_OP_ORDER_CANCEL);
            b->cmds[n].order_id = (trastenda_str){b->text[n], text_id(b->text[n], 'o', s)};
        }
        /* An order that failed to place is unknown: its failure was counted already. */
        apply_untimed(b, n, TRASTENDA_E_UNKNOWN_ORDER, "order cancel");
    }
    b->now_ms += ORDER_RETENTION_MS;
    trastenda_engine_stats st;
    for (uint32_t guard = 0;; guard++) {
        trastenda_engine_stats_get(b->e, &st);
        if (st.orders == 0) break;
        if (guard > 100000) die("orders were not purged");
        apply_untimed(b, 0, TRASTENDA_OK, "purge");
    }
}

/* Untimed: one full cycle of the orders table, so the timed runs find its pages touched. */
static void
routed_warm(struct bench *b)
{
    uint64_t cycle = b->order_seq;
    for (uint32_t k = 0; k < ORDERS_MAX / b->o->batch; k++) {
        for (uint32_t i = 0; i < b->o->batch; i++)
            cmd_order(b, i);
        apply_untimed(b, b->o->batch, TRASTENDA_OK, "order place (warm-up)");
    }
    orders_clear(b, cycle);
}

static struct run
run_routed(struct bench *b, double secs)
{
    static struct hist h;
    memset(&h, 0, sizeof(h));
    struct run r;
    memset(&r, 0, sizeof(r));
    uint32_t n = b->o->batch;
    struct run_totals t = {0};
    uint64_t failures0 = b->failures;
    uint64_t cycle = b->order_seq, start = now_ns(), end = start + (uint64_t)(secs * 1e9);
    while (now_ns() < end || h.count == 0) {
        if (b->order_seq - cycle + n > ORDERS_MAX) {
            orders_clear(b, cycle);
            cycle = b->order_seq;
        }
        for (uint32_t i = 0; i < n; i++)
            cmd_order(b, i);
        trastenda_batch_out out;
        uint64_t ns = apply_timed(b, n, &out);
        for (uint32_t i = 0; i < n; i++)
            if (b->res[i].code != TRASTENDA_OK || b->res[i].duplicate)
                note_failure(b, &b->res[i], "order place");
        run_add(&h, &t, &r, ns, &out, n);
    }
    t.wall_s = (double)(now_ns() - start) / 1e9;
    orders_clear(b, cycle);
    t.failures = b->failures - failures0;
    run_finish(&r, &h, &t, n);
    return r;
}

/* ---- d: stock reads from another thread while the writer runs uniform pairs ---- */

struct reader {
    const trastenda_engine *e;
    uint32_t skus;
    atomic_bool stop;
    uint64_t reads, ns, sink;
};

static void *
reader_main(void *arg)
{
    struct reader *rd = arg;
    uint64_t rng = 0x726561646572ull, reads = 0, sink = 0, t0 = now_ns();
    while (!atomic_load_explicit(&rd->stop, memory_order_relaxed)) {
        for (int i = 0; i < 1024; i++) {
            trastenda_stock st;
            uint32_t sku = ts_rand_below(&rng, rd->skus), loc = ts_rand_below(&rng, LOCS);
            if (trastenda_engine_stock_read(rd->e, sku, loc, &st) != TRASTENDA_OK)
                die("stock read %u/%u failed", sku, loc);
            sink += (uint64_t)st.available;
        }
        reads += 1024;
    }
    rd->ns = now_ns() - t0;
    rd->reads = reads;
    rd->sink = sink;
    return NULL;
}

static struct run
run_read(struct bench *b, double secs)
{
    struct reader rd = {.e = b->e, .skus = b->skus};
    atomic_init(&rd.stop, false);
    pthread_t t;
    if (pthread_create(&t, NULL, reader_main, &rd) != 0) die("pthread_create failed");
    struct run r = run_pairs(b, b->skus, LOCS, secs);
    atomic_store_explicit(&rd.stop, true, memory_order_relaxed);
    pthread_join(t, NULL);
    r.reads_per_s = (double)rd.reads / ((double)rd.ns / 1e9);
    return r;
}

/* ---- e: memory per stock record ---- */

struct mem_fig {
    double skus, records;
    double rss_created, rss_skus, rss_stock; /* bytes resident after each step */
    double rss_per_record;                   /* (after RECEIVEs - after SKUs) / records */
    double rss_per_record_with_skus;         /* (after RECEIVEs - after create) / records */
    double stock_b, vel_b, map_b, low_b, table_per_record; /* engine table bytes per record */
    double sku_table_bytes, sku_table_per_record;
    double receive_per_s;
};

static double
rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f == NULL || fscanf(f, "%lu %lu", &size, &resident) != 2) die("cannot read statm");
    fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

static struct mem_fig
run_memory(const struct opts *o)
{
    struct mem_fig m;
    memset(&m, 0, sizeof(m));
    struct bench b;
    memset(&b, 0, sizeof(b));
    bench_buffers(&b, o);
    sku_ids_make(&b, o->quick ? MEM_SKUS_QUICK : MEM_SKUS);
    trastenda_engine_config cfg;
    config_make(&cfg, o->batch, b.skus, false);
    if (trastenda_engine_create(&cfg, &b.e) != TRASTENDA_OK) die("engine create failed");
    b.now_ms = 1700000000000ll;
    m.rss_created = rss_bytes();
    catalog_locations(&b);
    catalog_skus(&b);
    m.rss_skus = rss_bytes();
    double receive_s = catalog_stock(&b, 100);
    m.rss_stock = rss_bytes();
    trastenda_engine_stats st;
    trastenda_engine_stats_get(b.e, &st);
    m.skus = st.skus;
    m.records = st.stock;
    if (st.stock != b.skus * LOCS) die("memory: %u records, expected %u", st.stock, b.skus * LOCS);
    m.rss_per_record = (m.rss_stock - m.rss_skus) / m.records;
    m.rss_per_record_with_skus = (m.rss_stock - m.rss_created) / m.records;
    /* What the engine preallocates per record (tables sized by stock_max = records). */
    m.stock_b = (double)sizeof(struct eng_stock);
    m.vel_b = (double)sizeof(struct eng_velocity);
    m.map_b = (double)eng_map_bytes(&b.e->stock_map) / cfg.stock_max;
    m.low_b = (double)(b.e->low.n0 + b.e->low.n1 + b.e->low.n2) * 8.0 / cfg.stock_max;
    m.table_per_record = m.stock_b + m.vel_b + m.map_b + m.low_b;
    m.sku_table_bytes =
        (double)sizeof(struct eng_sku) * cfg.skus_max + (double)eng_map_bytes(&b.e->sku_map);
    m.sku_table_per_record = m.sku_table_bytes / m.records;
    m.receive_per_s = m.records / receive_s;
    trastenda_engine_check(b.e);
    bench_free(&b);
    return m;
}

/* ---- output ---- */

enum {
    W_UNIFORM,
    W_HOT,
    W_ROUTED,
    W_READ,
    W_REPLAY,
    W_CHECKED,
    W_OPEN,
    W_MEMORY,
    W_COUNT_
};

struct figures {
    bool has[W_COUNT_];
    struct run med[W_MEMORY], all[W_MEMORY][RUNS_MAX]; /* memory has figures of its own */
    uint32_t n_runs;
    struct mem_fig mem;
    double catalog_s, catalog_rate;
    double open_holds; /* holds open throughout the open workload */
};

static const char *const W_NAMES[W_COUNT_] = {"uniform", "hot",     "routed", "read",
                                              "replay",  "checked", "open",   "memory"};
/* replay and open have no target of their own (0): the cost of following the log, and of holds
 * that stay open. */
static const double W_TARGETS[W_MEMORY] = {
    TARGET_UNIFORM, TARGET_HOT, TARGET_ROUTED, TARGET_UNIFORM, 0, 0, 0};
static const char *const W_UNITS[W_MEMORY] = {"pairs", "pairs", "orders", "pairs",
                                              "pairs", "pairs", "pairs"};

static void
print_run_text(int w, const struct figures *f, uint32_t batch)
{
    static const char *const what[W_MEMORY] = {
        "[a] uniform  reserve+release pairs uniform over 1,000,000 records (200,000 SKUs x 5 "
        "locations)",
        "[b] hot      reserve+release pairs over 100 hot SKUs at one location (100 records)",
        "[c] routed   ORDER_PLACE, 3 lines without location, channel 'web' + ship-to, 5 locations",
        "[d] read     trastenda_engine_stock_read on random records from a reader thread, writer "
        "running [a]",
        "[f] replay   trastenda_engine_apply_entry of [a]'s log entries into a second engine (as "
        "a follower\n             and recovery do)",
        "[h] checked  trastenda_engine_apply_entry_checked of the same entries (as the "
        "materializer does:\n             entries its process checked already)",
        "[g] open     reserve+release pairs over [a]'s records with holds open (TTLs 1-2 h), each "
        "batch releasing\n             open holds chosen at random"};
    const struct run *r = &f->med[w];
    char a[32], c[32], d[32], e[32];
    double ops_per_batch = w == W_ROUTED ? batch : batch / 2;
    const char *unit = W_UNITS[w], *one = w == W_ROUTED ? "order" : "pair";
    printf("\n%s\n", what[w]);
    if (w == W_READ) {
        printf("    reads     %s stock reads/s (one reader thread)\n", num(a, r->reads_per_s));
        printf("    writer    %s pairs/s at the same time   (alone: target >= %s/s)\n",
               num(a, r->rate), num(c, W_TARGETS[w]));
    } else if (w == W_REPLAY || w == W_CHECKED) {
        printf("    rate      %s %s/s   (%s entries/s; no target of its own)\n", num(a, r->rate),
               unit, num(c, r->batches / ((double)r->ops / r->rate)));
    } else if (w == W_OPEN) {
        printf("    rate      %s %s/s   (%s holds open throughout; no target of its own)\n",
               num(a, r->rate), unit, num(c, f->open_holds));
    } else {
        printf("    rate      %s %s/s   target >= %s/s   %.0f%% of target%s\n", num(a, r->rate),
               unit, num(c, W_TARGETS[w]), 100.0 * r->rate / W_TARGETS[w],
               r->rate >= W_TARGETS[w] ? " (met)" : " (not met)");
    }
    printf("    per %-5s p50 %s ns   p99 %s ns   p99.9 %s ns   max %s ns   (batch time / %.0f)\n",
           one, num(a, r->per_op_ns[Q_P50]), num(c, r->per_op_ns[Q_P99]),
           num(d, r->per_op_ns[Q_P999]), num(e, r->per_op_ns[Q_MAX]), ops_per_batch);
    printf("    batch     p50 %.1f us   p99 %.1f us   p99.9 %.1f us   max %.1f us   (%s batches)\n",
           r->batch_us[Q_P50], r->batch_us[Q_P99], r->batch_us[Q_P999], r->batch_us[Q_MAX],
           num(a, r->batches));
    if (w == W_REPLAY || w == W_CHECKED)
        printf("    log       %.0f entry bytes per %s read and applied\n", r->bytes_per_op, one);
    else
        printf("    log       %.2f ledger entries, %.2f events, %.0f entry bytes per %s\n",
               r->ledger_per_op, r->events_per_op, r->bytes_per_op, one);
    printf("    runs     ");
    for (uint32_t i = 0; i < f->n_runs; i++)
        printf(" %s%s", num(a, f->all[w][i].rate), i + 1 < f->n_runs ? " /" : "");
    printf(" %s/s (engine time); wall, building included: %s %s/s\n", unit, num(c, r->wall_rate),
           unit);
    if (r->failures > 0) printf("    FAILED COMMANDS: %s (median per run)\n", num(a, r->failures));
}

static void
print_memory_text(const struct mem_fig *m)
{
    char a[32], c[32], d[32];
    printf("\n[e] memory   %s stock records (%s SKUs x 5 locations) created with RECEIVE\n",
           num(a, m->records), num(c, m->skus));
    printf("    RSS       %s MB after create, %s MB after SKU upserts, %s MB after RECEIVEs\n",
           num(a, m->rss_created / 1048576.0), num(c, m->rss_skus / 1048576.0),
           num(d, m->rss_stock / 1048576.0));
    printf("    RSS/rec   %.1f bytes per stock record   target <= %.0f   %s\n", m->rss_per_record,
           TARGET_BYTES_RECORD, m->rss_per_record <= TARGET_BYTES_RECORD ? "(met)" : "(not met)");
    printf("              %.1f bytes per record counting the SKU upserts too\n",
           m->rss_per_record_with_skus);
    printf("    tables    %.1f bytes per record = stock %.0f + velocity %.0f + map %.1f + "
           "low-stock bits %.2f\n",
           m->table_per_record, m->stock_b, m->vel_b, m->map_b, m->low_b);
    printf("    SKU table %s MB (%.0f bytes per SKU with its map), %.1f bytes per record, apart\n",
           num(a, m->sku_table_bytes / 1048576.0), m->sku_table_bytes / m->skus,
           m->sku_table_per_record);
    printf("    create    %s RECEIVE/s (each creating its record)\n", num(a, m->receive_per_s));
}

static void
json_quantiles(const char *name, const double *q)
{
    printf("\"%s\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f}", name, q[Q_P50],
           q[Q_P99], q[Q_P999], q[Q_MAX]);
}

static void
json_run(int w, const struct figures *f)
{
    const struct run *r = &f->med[w];
    printf("\"%s\":{\"unit\":\"%s\",\"rate\":%.0f,\"target\":%.0f,\"wall_rate\":%.0f,", W_NAMES[w],
           W_UNITS[w], r->rate, W_TARGETS[w], r->wall_rate);
    if (w == W_READ) printf("\"reads_per_s\":%.0f,", r->reads_per_s);
    if (w == W_OPEN) printf("\"open_holds\":%.0f,", f->open_holds);
    json_quantiles("per_op_ns", r->per_op_ns);
    printf(",");
    json_quantiles("batch_us", r->batch_us);
    printf(",\"ledger_per_op\":%.3f,\"events_per_op\":%.3f,\"entry_bytes_per_op\":%.1f,"
           "\"batches\":%.0f,\"failures\":%.0f,\"runs\":[",
           r->ledger_per_op, r->events_per_op, r->bytes_per_op, r->batches, r->failures);
    for (uint32_t i = 0; i < f->n_runs; i++)
        printf("%s%.0f", i ? "," : "", f->all[w][i].rate);
    printf("]}");
}

static void
json_memory(const struct mem_fig *m)
{
    printf("\"memory\":{\"records\":%.0f,\"skus\":%.0f,\"rss_created\":%.0f,\"rss_skus\":%.0f,"
           "\"rss_stock\":%.0f,\"rss_per_record\":%.1f,\"rss_per_record_with_skus\":%.1f,"
           "\"target_per_record\":%.0f,\"table_per_record\":%.2f,\"stock_bytes\":%.0f,"
           "\"velocity_bytes\":%.0f,\"map_bytes\":%.2f,\"low_bits_bytes\":%.3f,"
           "\"sku_table_bytes\":%.0f,\"sku_table_per_record\":%.1f,\"receive_per_s\":%.0f}",
           m->records, m->skus, m->rss_created, m->rss_skus, m->rss_stock, m->rss_per_record,
           m->rss_per_record_with_skus, TARGET_BYTES_RECORD, m->table_per_record, m->stock_b,
           m->vel_b, m->map_b, m->low_b, m->sku_table_bytes, m->sku_table_per_record,
           m->receive_per_s);
}

static void
print_json(const struct opts *o, const struct figures *f, const char *cpu)
{
    printf("{\"build\":\"%s\",\"cores\":%ld,\"cpu\":\"%s\",\"batch\":%u,\"runs\":%u,"
           "\"duration_s\":%.2f,\"clock\":\"%s\",\"quick\":%s,\"ids_resolved_off_writer\":true,"
           "\"keys_on_reserves\":true,\"sim_ms_per_batch\":1,\"hold_retention_ms\":%d,"
           "\"key_retention_ms\":%d,\"catalog\":{\"skus\":%u,\"locations\":%u,\"records\":%u,"
           "\"create_s\":%.3f,\"receive_per_s\":%.0f},\"workloads\":{",
           build_type(), sysconf(_SC_NPROCESSORS_ONLN), cpu, o->batch, f->n_runs, o->duration_s,
           apply_clock == CLOCK_MONOTONIC ? "monotonic" : "thread_cpu", o->quick ? "true" : "false",
           HOLD_RETENTION_MS, KEY_RETENTION_MS, CAT_SKUS, LOCS, CAT_SKUS * LOCS, f->catalog_s,
           f->catalog_rate);
    bool first = true;
    for (int w = 0; w < W_MEMORY; w++) {
        if (!f->has[w]) continue;
        printf("%s", first ? "" : ",");
        json_run(w, f);
        first = false;
    }
    if (f->has[W_MEMORY]) {
        printf("%s", first ? "" : ",");
        json_memory(&f->mem);
    }
    printf("}}\n");
}

/* ---- main ---- */

static void
usage(FILE *to)
{
    fprintf(
        to,
        "usage: trastenda-bench-engine [--json] [--quick] [--only NAME[,NAME...]]\n"
        "                              [--duration-s N] [--batch N] [--runs N] [--cpu-clock]\n"
        "                              [--huge-pages]\n"
        "  NAME: uniform, hot, routed, read, replay, open, memory\n"
        "  --duration-s  seconds per run of each workload (default %.0f; --quick %.2f)\n"
        "  --batch       commands per batch (default %u)\n"
        "  --runs        runs per workload, median reported (default %d; --quick 1)\n"
        "  --cpu-clock   time apply with the writer thread's CPU time, not CLOCK_MONOTONIC\n"
        "                (to compare builds on a busy machine)\n"
        "  --huge-pages  tables on transparent huge pages (trastenda_engine_config.huge_pages)\n"
        "exit: 0; 1 when a command of a workload failed, or on an error; 2 on an unknown flag\n",
        DEFAULT_DURATION_S, QUICK_DURATION_S, DEFAULT_BATCH, RUNS);
}

static bool
selected(const char *only, const char *name)
{
    if (only == NULL) return true;
    size_t len = strlen(name);
    for (const char *p = only; *p;) {
        size_t n = strcspn(p, ",");
        if (n == len && strncmp(p, name, n) == 0) return true;
        p += n;
        if (*p == ',') p++;
    }
    return false;
}

static void
parse(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof(*o));
    o->batch = DEFAULT_BATCH;
    o->duration_s = -1;
    o->runs = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "--cpu-clock") == 0) {
            apply_clock = CLOCK_THREAD_CPUTIME_ID;
        } else if (strcmp(a, "--huge-pages") == 0) {
            huge_pages = 1;
        } else if (strcmp(a, "--quick") == 0) {
            o->quick = true;
        } else if (strcmp(a, "--only") == 0 && v != NULL) {
            o->only = v, i++;
        } else if (strcmp(a, "--duration-s") == 0 && v != NULL) {
            o->duration_s = atof(v), i++;
        } else if (strcmp(a, "--batch") == 0 && v != NULL) {
            o->batch = (uint32_t)strtoul(v, NULL, 10), i++;
        } else if (strcmp(a, "--runs") == 0 && v != NULL) {
            o->runs = (uint32_t)strtoul(v, NULL, 10), i++;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else {
            usage(stderr);
            exit(2);
        }
    }
    if (o->duration_s < 0) o->duration_s = o->quick ? QUICK_DURATION_S : DEFAULT_DURATION_S;
    if (o->runs == 0) o->runs = o->quick ? 1 : RUNS;
    if (o->batch < 2 || o->batch > 65536 || o->runs > RUNS_MAX || o->duration_s <= 0)
        die("--batch must be 2..65536, --runs 1..15, --duration-s > 0");
    for (const char *p = o->only; p != NULL && *p;) { /* every name must be a workload */
        size_t n = strcspn(p, ","), w = 0;
        while (w < W_COUNT_ && !(strlen(W_NAMES[w]) == n && strncmp(p, W_NAMES[w], n) == 0))
            w++;
        if (w == W_COUNT_) die("--only: unknown workload '%.*s'", (int)n, p);
        p += n + (p[n] == ',');
    }
}

static void
print_header(const struct opts *o, const char *cpu)
{
    printf("trastenda-bench-engine %s: build %s, %ld cores, CPU %s\n", TRASTENDA_VERSION_STRING,
           build_type(), sysconf(_SC_NPROCESSORS_ONLN), cpu);
    printf("batch %u commands; %u run%s x %.2f s per workload, %s; simulated clock +1 ms per "
           "batch\n",
           o->batch, o->runs, o->runs > 1 ? "s" : "", o->duration_s,
           o->runs > 1 ? "median of each figure over the runs" : "single run");
    printf("ids: SKU and location ids are resolved to indices (trastenda_engine_sku_lookup / "
           "location_lookup) while\n     building each batch, outside the timed region, as the "
           "server's network threads will\n");
    printf("timed: trastenda_engine_apply only (%s); each batch yields its log entry "
           "(post-images,\n       ledger entries, events); every reserve carries a unique "
           "idempotency key\n",
           apply_clock == CLOCK_MONOTONIC ? "CLOCK_MONOTONIC" : "thread CPU time, --cpu-clock");
    printf("tables: %s\n", huge_pages ? "transparent huge pages (--huge-pages)" : "4 KiB pages");
    printf("retention (simulated ms): holds %d, keys %d, orders %d\n", HOLD_RETENTION_MS,
           KEY_RETENTION_MS, ORDER_RETENTION_MS);
    fflush(stdout);
}

static void
run_sales(const struct opts *o, struct figures *f)
{
    struct bench b;
    bench_open(&b, o, CAT_SKUS, true, 0);
    catalog_locations(&b);
    catalog_skus(&b);
    f->catalog_s = catalog_stock(&b, UNITS_PER_RECORD);
    f->catalog_rate = (double)CAT_SKUS * LOCS / f->catalog_s;
    if (!o->json)
        printf("\ncatalog: %s SKUs x %u locations = %s stock records, %s units each (RECEIVE: %s "
               "records created/s)\n",
               num((char[32]){0}, CAT_SKUS), LOCS, num((char[32]){0}, CAT_SKUS * LOCS),
               num((char[32]){0}, UNITS_PER_RECORD), num((char[32]){0}, f->catalog_rate));
    /* Warm-up: the hold and key tables reach their steady-state population (retention). */
    uint32_t warm = o->quick ? 200 : KEY_RETENTION_MS + 100;
    if (f->has[W_UNIFORM] || f->has[W_HOT] || f->has[W_READ]) {
        pairs_warm(&b, b.skus, LOCS, warm);
        if (!o->json)
            printf("warm-up: %u untimed batches of [a] first, so hold and key tables are at "
                   "their steady-state size\n",
                   warm);
    }
    if (f->has[W_ROUTED] && !o->quick) {
        routed_warm(&b);
        if (!o->json)
            printf("warm-up: %u untimed orders placed and cancelled before [c], so the orders "
                   "table's pages are touched\n",
                   ORDERS_MAX / o->batch * o->batch);
    }
    fflush(stdout);
    for (int w = 0; w < W_MEMORY; w++) {
        if (!f->has[w] || w == W_REPLAY || w == W_CHECKED || w == W_OPEN)
            continue; /* their own engines */
        for (uint32_t i = 0; i < f->n_runs; i++) {
            if (w == W_UNIFORM) f->all[w][i] = run_pairs(&b, b.skus, LOCS, o->duration_s);
            if (w == W_HOT) f->all[w][i] = run_pairs(&b, HOT_SKUS, 1, o->duration_s);
            if (w == W_ROUTED) f->all[w][i] = run_routed(&b, o->duration_s);
            if (w == W_READ) f->all[w][i] = run_read(&b, o->duration_s);
        }
        trastenda_engine_check(b.e); /* the full invariant check, untimed */
        f->med[w] = run_median(f->all[w], f->n_runs);
        if (!o->json) print_run_text(w, f, o->batch);
        fflush(stdout);
    }
    failures_report(&b);
    bench_free(&b);
}

/* ---- f: replaying the log entries of uniform into a second engine ---- */

/* Entries of uniform's pairs captured per run of replay (after the catalogue and the warm-up). */
#define REPLAY_BATCHES       400u
#define REPLAY_BATCHES_QUICK 40u

static void
replay_untimed(trastenda_engine *e, const struct bench *b, uint32_t from, uint32_t to)
{
    for (uint32_t i = from; i < to; i++) {
        trastenda_err err = trastenda_engine_apply_entry(e, b->cap_entry[i], b->cap_len[i]);
        if (err != TRASTENDA_OK) die("replay: entry %u: %s", i, trastenda_err_name(err));
    }
}

/* One run of the captured entries into a fresh engine: replay (checked) or the materializer's
 * apply of entries checked before. */
static struct run
replay_run(const struct opts *o, const struct bench *b, const trastenda_engine_config *cfg,
           uint32_t first, bool checked)
{
    static struct hist h;
    uint32_t half = o->batch / 2;
    trastenda_engine *e;
    if (trastenda_engine_create(cfg, &e) != TRASTENDA_OK) die("engine create failed");
    replay_untimed(e, b, 0, first + 1); /* + 1: its first batch only reserves */
    memset(&h, 0, sizeof(h));
    struct run r;
    memset(&r, 0, sizeof(r));
    uint64_t engine_ns = 0, bytes = 0, start = now_ns();
    for (uint32_t i = first + 1; i < b->cap_n; i++) {
        uint64_t t0 = clock_ns(apply_clock);
        trastenda_err err =
            checked ? trastenda_engine_apply_entry_checked(e, b->cap_entry[i], b->cap_len[i])
                    : trastenda_engine_apply_entry(e, b->cap_entry[i], b->cap_len[i]);
        uint64_t ns = clock_ns(apply_clock) - t0;
        if (err != TRASTENDA_OK) die("replay: entry %u: %s", i, trastenda_err_name(err));
        hist_add(&h, ns);
        engine_ns += ns;
        bytes += b->cap_len[i];
        r.ops += half;
    }
    if (trastenda_engine_digest(e) != trastenda_engine_digest(b->e))
        die("replay: the second engine's state differs from the first's");
    struct run_totals t = {engine_ns, 0, 0, bytes, 0, (double)(now_ns() - start) / 1e9};
    run_finish(&r, &h, &t, half);
    trastenda_engine_destroy(e);
    return r;
}

static void
run_replay(const struct opts *o, struct figures *f)
{
    struct bench b;
    bench_open(&b, o, CAT_SKUS, true, 0);
    b.capturing = true;
    catalog_locations(&b);
    catalog_skus(&b);
    (void)catalog_stock(&b, UNITS_PER_RECORD);
    pairs_warm(&b, b.skus, LOCS, o->quick ? 200 : KEY_RETENTION_MS + 100);
    uint32_t first = b.cap_n, batches = o->quick ? REPLAY_BATCHES_QUICK : REPLAY_BATCHES;
    pairs_untimed(&b, b.skus, LOCS, batches); /* one run of uniform's batches, kept */
    b.capturing = false;
    trastenda_engine_config cfg;
    config_make(&cfg, o->batch, CAT_SKUS, true);
    /* The two kinds interleaved, run by run. */
    for (uint32_t run = 0; run < f->n_runs; run++) {
        if (f->has[W_REPLAY]) f->all[W_REPLAY][run] = replay_run(o, &b, &cfg, first, false);
        if (f->has[W_CHECKED]) f->all[W_CHECKED][run] = replay_run(o, &b, &cfg, first, true);
    }
    for (int w = W_REPLAY; w <= W_CHECKED; w++) {
        if (!f->has[w]) continue;
        f->med[w] = run_median(f->all[w], f->n_runs);
        if (!o->json) print_run_text(w, f, o->batch);
    }
    fflush(stdout);
    bench_free(&b);
}

/* ---- g: pairs with many holds open ---- */

static void
cmd_reserve_open(struct bench *b, uint32_t i)
{
    cmd_reserve(b, i, ts_rand_below(&b->rng, b->skus), ts_rand_below(&b->rng, LOCS));
    b->cmds[i].ttl_ms = OPEN_TTL_MS + (int64_t)ts_rand_below(&b->rng, OPEN_TTL_MS);
}

static void
run_open(const struct opts *o, struct figures *f)
{
    uint32_t n_open = o->quick ? OPEN_HOLDS_QUICK : OPEN_HOLDS, half = o->batch / 2;
    struct bench b;
    bench_open(&b, o, CAT_SKUS, true, n_open);
    catalog_locations(&b);
    catalog_skus(&b);
    (void)catalog_stock(&b, UNITS_PER_RECORD);
    /* The open holds, untimed: half a batch at a time, as the keys' table is sized for. */
    uint64_t *open = xcalloc(n_open, sizeof(*open));
    for (uint32_t k = 0; k < n_open;) {
        uint32_t n = TS_MIN(half, n_open - k);
        for (uint32_t i = 0; i < n; i++)
            cmd_reserve_open(&b, i);
        apply_untimed(&b, n, TRASTENDA_OK, "reserve (open holds)");
        for (uint32_t i = 0; i < n; i++)
            open[k++] = b.res[i].id;
    }
    f->open_holds = n_open;
    if (!o->json)
        printf("\nopen: %s holds open over [a]'s 1,000,000 records before the runs (untimed)\n",
               num((char[32]){0}, n_open));
    static struct hist h;
    for (uint32_t run = 0; run < f->n_runs; run++) {
        memset(&h, 0, sizeof(h));
        struct run r;
        memset(&r, 0, sizeof(r));
        struct run_totals t = {0};
        uint64_t failures0 = b.failures, start = now_ns();
        uint64_t end = start + (uint64_t)(o->duration_s * 1e9);
        while (now_ns() < end || h.count == 0) {
            /* Releases of distinct open holds; their slots take the new holds. */
            for (uint32_t i = 0; i < half; i++) {
                uint32_t j = ts_rand_below(&b.rng, n_open - i);
                /* open[j] goes; the last of the untaken moves into its place */
                cmd_release(&b, i, open[j]);
                open[j] = open[n_open - 1 - i];
                open[n_open - 1 - i] = b.cmds[i].hold_id;
            }
            for (uint32_t i = 0; i < half; i++)
                cmd_reserve_open(&b, half + i);
            trastenda_batch_out out;
            uint64_t ns = apply_timed(&b, 2 * half, &out);
            for (uint32_t i = 0; i < 2 * half; i++)
                if (b.res[i].code != TRASTENDA_OK || b.res[i].duplicate)
                    note_failure(&b, &b.res[i], i < half ? "release" : "reserve");
            for (uint32_t i = 0; i < half; i++) /* the released move to the end: replaced */
                open[n_open - 1 - i] = b.res[half + i].id;
            run_add(&h, &t, &r, ns, &out, half);
        }
        t.wall_s = (double)(now_ns() - start) / 1e9;
        t.failures = b.failures - failures0;
        run_finish(&r, &h, &t, half);
        f->all[W_OPEN][run] = r;
    }
    trastenda_engine_check(b.e);
    f->med[W_OPEN] = run_median(f->all[W_OPEN], f->n_runs);
    if (!o->json) print_run_text(W_OPEN, f, o->batch);
    fflush(stdout);
    failures_report(&b);
    free(open);
    bench_free(&b);
}

int
main(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o);
    char cpu[256];
    cpu_model(cpu, sizeof(cpu));
    static struct figures f;
    f.n_runs = o.runs;
    for (int w = 0; w < W_COUNT_; w++)
        f.has[w] = selected(o.only, W_NAMES[w]);
    if (!o.json) print_header(&o, cpu);
    /* Memory first, in a fresh process: no freed memory for the allocator to hand back. */
    if (f.has[W_MEMORY]) {
        f.mem = run_memory(&o);
        if (!o.json) print_memory_text(&f.mem);
        fflush(stdout);
    }
    if (f.has[W_UNIFORM] || f.has[W_HOT] || f.has[W_ROUTED] || f.has[W_READ]) run_sales(&o, &f);
    if (f.has[W_REPLAY] || f.has[W_CHECKED]) run_replay(&o, &f);
    if (f.has[W_OPEN]) run_open(&o, &f);
    if (o.json) print_json(&o, &f, cpu);
    return failed_total > 0 ? 1 : 0;
}
