/*
 * bench/wl_order_intake.c - the order-intake workload: a shop's order pipeline.
 *
 * Each step places B routed orders (`order.place`: 1..--lines lines of one unit of random SKUs,
 * channel "web", a random ship-to in Spain; the engine picks the locations among the
 * catalogue's), then moves the placed ones through `order.pick`, `order.pack` and `order.ship`:
 * four calls of up to B ops, each waiting for the one before. The order id is its idempotency
 * key, so the client may retry a placement that timed out.
 */
#include "harness.h"

#include <string.h>

enum {
    K_PLACE,
    K_PICK,
    K_PACK,
    K_SHIP
};

static struct {
    uint32_t lines;
} oi = {5};

static const struct bench_flag FLAGS[] = {
    {"lines", FLAG_U32, &oi.lines, 1, TRASTENDA_LINES_MAX, "lines per order: 1..N, uniform (5)"},
    {0},
};

struct intake_caller {
    char (*orders)[TRASTENDA_ID_BYTES_MAX + 1];
    char (*skus)[16];
    trastenda_cline *lines;
    uint32_t *live; /* indices of the orders still moving */
    uint64_t seq;
    uint64_t placed, shipped; /* succeeded, while the clock ran */
};

static uint32_t
intake_ops_per_call(const struct bench *b)
{
    catalogue_check();
    return b->o.batch;
}

static void
intake_setup(struct bench *b)
{
    catalogue_setup(b);
}

static void
intake_caller_init(struct bench *b, struct caller *c)
{
    struct intake_caller *s = xcalloc(1, sizeof(*s));
    s->orders = xcalloc(b->o.batch, sizeof(*s->orders));
    s->skus = xcalloc((size_t)b->o.batch * oi.lines, sizeof(*s->skus));
    s->lines = xcalloc((size_t)b->o.batch * oi.lines, sizeof(*s->lines));
    s->live = xcalloc(b->o.batch, sizeof(*s->live));
    c->wl = s;
}

static void
place_build(struct bench *b, struct caller *c, struct intake_caller *s)
{
    uint32_t l = 0;
    for (uint32_t i = 0; i < b->o.batch; i++) {
        uint32_t k = 1 + bench_rand_below(c, oi.lines);
        trastenda_args *a = &c->args[i];
        trastenda_args_init(a, "order.place");
        bench_id(b, s->orders[i], sizeof(s->orders[i]), 'o', c->id, ++s->seq);
        a->order = s->orders[i];
        a->channel = BENCH_CHANNEL;
        catalogue_ship_to(c, &a->lat_e6, &a->lon_e6);
        a->lines = &s->lines[l];
        a->n_lines = k;
        for (uint32_t j = 0; j < k; j++, l++) {
            catalogue_sku(s->skus[l], sizeof(s->skus[l]), bench_rand_below(c, catalogue.skus));
            s->lines[l] = (trastenda_cline){s->skus[l], NULL, 1, 0};
        }
    }
    BENCH_ASSERT(l >= b->o.batch && l <= b->o.batch * oi.lines);
}

/* One call of `op` over the live orders; those whose result is not OK leave the pipeline. */
static uint32_t
advance(struct caller *c, struct intake_caller *s, uint32_t n_live, const char *op, uint32_t kind)
{
    for (uint32_t i = 0; i < n_live; i++) {
        trastenda_args_init(&c->args[i], op);
        c->args[i].order = s->orders[s->live[i]];
    }
    bench_call(c, 1u << kind, n_live);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n_live; i++)
        if (c->replies[i].code == TRASTENDA_OK) s->live[kept++] = s->live[i];
    bench_replies_clear(c, n_live);
    BENCH_ASSERT(kept <= n_live);
    return kept;
}

static bool
intake_step(struct bench *b, struct caller *c)
{
    struct intake_caller *s = c->wl;
    place_build(b, c, s);
    bench_call(c, 1u << K_PLACE, b->o.batch);
    uint32_t n = 0;
    for (uint32_t i = 0; i < b->o.batch; i++)
        if (c->replies[i].code == TRASTENDA_OK) s->live[n++] = i;
    bench_replies_clear(c, b->o.batch);
    if (c->recorded) s->placed += n;
    static const char *const ops[] = {"order.pick", "order.pack", "order.ship"};
    for (uint32_t k = 0; k < 3 && n > 0; k++)
        n = advance(c, s, n, ops[k], K_PICK + k);
    if (c->recorded) s->shipped += n;
    return true;
}

static int
intake_finish(struct bench *b)
{
    (void)b;
    return 0;
}

static void
totals(const struct bench *b, uint64_t *placed, uint64_t *shipped)
{
    *placed = *shipped = 0;
    for (uint32_t i = 0; i < b->o.callers; i++) {
        const struct intake_caller *s = b->callers[i].wl;
        *placed += s->placed;
        *shipped += s->shipped;
    }
}

static void
intake_report_text(const struct bench *b, FILE *f)
{
    uint64_t placed, shipped;
    totals(b, &placed, &shipped);
    double el = bench_elapsed_s(b);
    char a[40], d[40], e[40];
    fprintf(f, "order-intake: routed orders of 1..%u lines over %s SKUs x %u locations\n", oi.lines,
            num(a, catalogue.skus), catalogue.locations);
    fprintf(f, "  %s orders placed/s, %s orders shipped/s (placed, picked, packed, shipped)\n",
            num(d, (double)placed / el), num(e, (double)shipped / el));
}

static void
intake_report_json(const struct bench *b, FILE *f)
{
    uint64_t placed, shipped;
    totals(b, &placed, &shipped);
    double el = bench_elapsed_s(b);
    fprintf(f,
            ",\"order_intake\":{\"lines\":%u,\"skus\":%u,\"locations\":%u,\"placed\":%llu,"
            "\"shipped\":%llu,\"placed_per_s\":%.1f,\"shipped_per_s\":%.1f}",
            oi.lines, catalogue.skus, catalogue.locations, (unsigned long long)placed,
            (unsigned long long)shipped, (double)placed / el, (double)shipped / el);
}

const struct workload wl_order_intake = {
    .name = "order-intake",
    .summary = "routed orders of 1-5 lines across the locations: placed, picked, packed, shipped",
    .flag_sets = {CATALOGUE_FLAGS, FLAGS},
    .kinds = {"place", "pick", "pack", "ship"},
    .ops_per_call = intake_ops_per_call,
    .setup = intake_setup,
    .caller_init = intake_caller_init,
    .step = intake_step,
    .finish = intake_finish,
    .report_text = intake_report_text,
    .report_json = intake_report_json,
};
