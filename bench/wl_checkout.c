/*
 * bench/wl_checkout.c - the checkout workload: what a shop's checkout service asks.
 *
 * Each call is, with probability --check-pct (95%), B stock checks of 1..--lines SKUs each (a
 * `stock` op per SKU, every location answered), and otherwise B holds: a `reserve` of
 * 1..--lines lines of one unit, each at a random location, with an idempotency key and a TTL.
 * SKUs are uniform over the catalogue (catalogue.c). With --lines 1 and --check-pct 100 or 0
 * it is the plain stock-check or reserve case of bench/compare.
 */
#include "harness.h"

#include <string.h>

enum {
    K_CHECK,
    K_HOLD
};

static struct {
    uint32_t check_pct, lines;
    uint64_t ttl_ms;
} co = {95, 5, 600000};

static const struct bench_flag FLAGS[] = {
    {"check-pct", FLAG_U32, &co.check_pct, 0, 100, "percent of calls that are stock checks (95)"},
    {"lines", FLAG_U32, &co.lines, 1, TRASTENDA_LINES_MAX,
     "SKUs per check and lines per hold: 1..N, uniform (5)"},
    {"ttl-ms", FLAG_U64, &co.ttl_ms, 1000, TRASTENDA_TTL_MS_MAX, "TTL of the holds (600000)"},
    {0},
};

struct checkout_caller {
    char (*skus)[16]; /* one per op or line of the call */
    char (*keys)[TRASTENDA_ID_BYTES_MAX + 1];
    trastenda_cline *lines;
    uint64_t seq;
    uint64_t checks, skus_checked, holds; /* succeeded, while the clock ran */
};

static char (*locs)[16];

static uint32_t
checkout_ops_per_call(const struct bench *b)
{
    catalogue_check();
    uint64_t checks = co.check_pct > 0 ? (uint64_t)b->o.batch * co.lines : 0;
    uint64_t n = checks > b->o.batch ? checks : b->o.batch;
    if (n > BENCH_OPS_MAX)
        bench_usage_error("--batch x --lines must be at most %d with checks (the ops of one "
                          "request; got %u x %u)",
                          BENCH_OPS_MAX, b->o.batch, co.lines);
    return (uint32_t)n;
}

static void
checkout_setup(struct bench *b)
{
    catalogue_setup(b);
    locs = xcalloc(catalogue.locations, sizeof(*locs));
    for (uint32_t l = 0; l < catalogue.locations; l++)
        catalogue_location(locs[l], sizeof(locs[l]), l);
}

static void
checkout_caller_init(struct bench *b, struct caller *c)
{
    struct checkout_caller *s = xcalloc(1, sizeof(*s));
    uint32_t lines = b->o.batch * co.lines;
    s->skus = xcalloc(lines, sizeof(*s->skus));
    s->keys = xcalloc(b->o.batch, sizeof(*s->keys));
    s->lines = xcalloc(lines, sizeof(*s->lines));
    c->wl = s;
}

static uint32_t
checks_build(struct bench *b, struct caller *c, struct checkout_caller *s)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < b->o.batch; i++) {
        uint32_t k = 1 + bench_rand_below(c, co.lines);
        for (uint32_t j = 0; j < k; j++, n++) {
            catalogue_sku(s->skus[n], sizeof(s->skus[n]), bench_rand_below(c, catalogue.skus));
            trastenda_args_init(&c->args[n], "stock");
            c->args[n].sku = s->skus[n];
        }
    }
    BENCH_ASSERT(n >= b->o.batch && n <= b->ops_per_call);
    return n;
}

static uint32_t
holds_build(struct bench *b, struct caller *c, struct checkout_caller *s)
{
    uint32_t l = 0;
    for (uint32_t i = 0; i < b->o.batch; i++) {
        uint32_t k = 1 + bench_rand_below(c, co.lines);
        trastenda_args_init(&c->args[i], "reserve");
        c->args[i].lines = &s->lines[l];
        c->args[i].n_lines = k;
        c->args[i].ttl_ms = (int64_t)co.ttl_ms;
        bench_id(b, s->keys[i], sizeof(s->keys[i]), 'h', c->id, ++s->seq);
        c->args[i].key = s->keys[i];
        for (uint32_t j = 0; j < k; j++, l++) {
            catalogue_sku(s->skus[l], sizeof(s->skus[l]), bench_rand_below(c, catalogue.skus));
            s->lines[l] =
                (trastenda_cline){s->skus[l], locs[bench_rand_below(c, catalogue.locations)], 1, 0};
        }
    }
    BENCH_ASSERT(l <= b->o.batch * co.lines);
    return b->o.batch;
}

static bool
checkout_step(struct bench *b, struct caller *c)
{
    struct checkout_caller *s = c->wl;
    bool check = bench_rand_below(c, 100) < co.check_pct;
    uint32_t n = check ? checks_build(b, c, s) : holds_build(b, c, s);
    bench_call(c, check ? 1u << K_CHECK : 1u << K_HOLD, n);
    if (c->recorded) {
        uint32_t ok = 0;
        for (uint32_t i = 0; i < n; i++)
            ok += c->replies[i].code == TRASTENDA_OK;
        if (check) {
            s->checks += b->o.batch; /* checks of several SKUs: counted once each */
            s->skus_checked += ok;
        } else {
            s->holds += ok;
        }
    }
    bench_replies_clear(c, n);
    return true;
}

static int
checkout_finish(struct bench *b)
{
    (void)b;
    return 0;
}

static void
totals(const struct bench *b, uint64_t *checks, uint64_t *skus, uint64_t *holds)
{
    *checks = *skus = *holds = 0;
    for (uint32_t i = 0; i < b->o.callers; i++) {
        const struct checkout_caller *s = b->callers[i].wl;
        *checks += s->checks;
        *skus += s->skus_checked;
        *holds += s->holds;
    }
}

static void
checkout_report_text(const struct bench *b, FILE *f)
{
    uint64_t checks, skus, holds;
    totals(b, &checks, &skus, &holds);
    double el = bench_elapsed_s(b);
    char a[40], d[40], e[40], g[40];
    fprintf(f,
            "checkout: %u%% checks of 1..%u SKUs, %u%% holds of 1..%u lines (TTL %llu ms), over "
            "%s SKUs x %u locations\n",
            co.check_pct, co.lines, 100 - co.check_pct, co.lines, (unsigned long long)co.ttl_ms,
            num(a, catalogue.skus), catalogue.locations);
    fprintf(f, "  %s checks/s (%s SKUs checked/s), %s holds/s\n", num(d, (double)checks / el),
            num(e, (double)skus / el), num(g, (double)holds / el));
}

static void
checkout_report_json(const struct bench *b, FILE *f)
{
    uint64_t checks, skus, holds;
    totals(b, &checks, &skus, &holds);
    double el = bench_elapsed_s(b);
    fprintf(f,
            ",\"checkout\":{\"check_pct\":%u,\"lines\":%u,\"ttl_ms\":%llu,\"skus\":%u,"
            "\"locations\":%u,\"checks\":%llu,\"skus_checked\":%llu,\"holds\":%llu,"
            "\"checks_per_s\":%.1f,\"holds_per_s\":%.1f}",
            co.check_pct, co.lines, (unsigned long long)co.ttl_ms, catalogue.skus,
            catalogue.locations, (unsigned long long)checks, (unsigned long long)skus,
            (unsigned long long)holds, (double)checks / el, (double)holds / el);
}

const struct workload wl_checkout = {
    .name = "checkout",
    .summary = "stock checks of 1-5 SKUs (95%) and holds with a TTL (5%) over the catalogue",
    .flag_sets = {CATALOGUE_FLAGS, FLAGS},
    .kinds = {"check", "hold"},
    .ops_per_call = checkout_ops_per_call,
    .setup = checkout_setup,
    .caller_init = checkout_caller_init,
    .step = checkout_step,
    .finish = checkout_finish,
    .report_text = checkout_report_text,
    .report_json = checkout_report_json,
};
