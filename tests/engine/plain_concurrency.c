/*
 * tests/engine/plain_concurrency.c - lock-free stock reads during a flash sale.
 *
 * A plain executable (exit 0 = pass; Criterion does not run under ThreadSanitizer): the writer
 * (main thread) runs ROUNDS flash sales (12; 4 under TSan), each on ten new SKUs with 1,000 units
 * at one warehouse, while two reader threads call trastenda_engine_stock_read() and
 * trastenda_engine_availability() on the current round's SKUs in a loop. Each sale reserves then
 * confirms (or releases), and places routed orders, until every SKU is sold out; mixed in are
 * purchase-order receipts (incoming -> on_hand) and transfer arrivals (in_transit -> on_hand),
 * commands that change two figures at once. Each round's SKUs and records are created while readers
 * are running.
 *
 * Every snapshot a reader takes must be consistent:
 *   - no figure negative, available >= 0 (no physical change can leave a shortfall here);
 *   - on_hand = committed + held + unsellable + safety + available, or, when less than the safety
 *     stock is free, available = 0 (the floor rule);
 *   - on_hand + incoming + in_transit = 1,000 exactly (receipts and arrivals only move units
 *     between those figures: a torn read of one of them breaks the sum);
 *   - committed + held never above what can be sold (1,000 - unsellable - safety);
 *   - figures only move the way the sale allows: committed and on_hand never go down, incoming
 *     and in_transit never go up, unsellable and safety never change.
 * At the end of each round the writer checks that the units sold (the placements of successful
 * CONFIRM and ORDER_PLACE results) equal the sellable stock exactly: nothing oversold, nothing
 * left. Loops are bounded; the whole run takes well under a second in Release.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trastenda.h"
#include "trastenda/engine.h"

/* Rounds of the sale: fewer under ThreadSanitizer, which runs this about ten times slower. */
#if defined(__SANITIZE_THREAD__)
#define ROUNDS 4
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ROUNDS 4
#endif
#endif
#ifndef ROUNDS
#define ROUNDS 12
#endif
#define SKUS            10
#define UNITS           1000 /* per SKU: on_hand + incoming + in_transit at the warehouse */
#define PO_UNITS        60   /* of UNITS, still incoming at the start of the sale */
#define TRANSIT_UNITS   40   /* of UNITS, still in transit at the start of the sale */
#define UNSELLABLE      3    /* damaged units at the start */
#define SAFETY_ODD      5    /* safety stock of the odd SKUs */
#define BATCH_MAX       16
#define PENDING_MAX     4096
#define SALE_BATCHES    200000   /* bound of one sale's loop */
#define READER_LOOPS    5000000  /* rounds of reads, a bound: the writer ends them first */
#define READER_IDLE_MAX 50000000 /* yields while waiting for the first round */
#define READERS         2
#define T0              INT64_C(1700000000000)

static trastenda_engine *E;
static uint32_t WH, WH2;        /* location indices */
static atomic_uint round_ready; /* rounds whose SKUs readers may read (0: none) */
static atomic_bool writer_done;
static uint32_t sku_ix[ROUNDS][SKUS]; /* written before round_ready is released */

static int64_t
safety_of(int s)
{
    return (s % 2) ? SAFETY_ODD : 0;
}

static int64_t
sellable_of(int s)
{
    return UNITS - UNSELLABLE - safety_of(s);
}

static void
fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "plain_concurrency: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static trastenda_str
S(const char *s)
{
    return (trastenda_str){s, (uint32_t)strlen(s)};
}

/* ---- readers ---- */

struct seen {
    bool any;
    int64_t committed, on_hand, incoming, in_transit, unsellable, safety;
};

struct reader {
    pthread_t thread;
    int id;
    uint64_t snapshots;
    char error[256]; /* first inconsistency, empty when none */
    struct seen seen[ROUNDS][SKUS];
};

static bool
bad(struct reader *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
    return false;
}

/* One snapshot of (round, s) at the warehouse against the rules of the sale. */
static bool
check_snapshot(struct reader *r, uint32_t round, int s, const trastenda_stock *v)
{
    r->snapshots++;
    const char *where = "snapshot";
    if (v->on_hand < 0 || v->committed < 0 || v->held < 0 || v->unsellable < 0 ||
        v->safety_stock < 0 || v->incoming < 0 || v->in_transit < 0 || v->available < 0)
        return bad(r, "round %u sku %d: a negative figure (available %" PRId64 ")", round, s,
                   v->available);
    int64_t free_units = v->on_hand - v->committed - v->held - v->unsellable;
    bool exact =
        v->on_hand == v->committed + v->held + v->unsellable + v->safety_stock + v->available;
    bool floor = v->available == 0 && free_units >= 0 && free_units <= v->safety_stock;
    if (!exact && !floor)
        return bad(r,
                   "round %u sku %d: on_hand %" PRId64 " != committed %" PRId64 " + held %" PRId64
                   " + unsellable %" PRId64 " + safety %" PRId64 " + available %" PRId64,
                   round, s, v->on_hand, v->committed, v->held, v->unsellable, v->safety_stock,
                   v->available);
    if (v->on_hand + v->incoming + v->in_transit != UNITS)
        return bad(r,
                   "round %u sku %d: on_hand %" PRId64 " + incoming %" PRId64
                   " + in_transit %" PRId64 " != %d (a torn read?)",
                   round, s, v->on_hand, v->incoming, v->in_transit, UNITS);
    if (v->committed + v->held > sellable_of(s))
        return bad(r,
                   "round %u sku %d: committed %" PRId64 " + held %" PRId64 " oversells %" PRId64,
                   round, s, v->committed, v->held, sellable_of(s));
    struct seen *p = &r->seen[round - 1][s];
    if (p->any) {
        if (v->committed < p->committed) where = "committed went down";
        if (v->on_hand < p->on_hand) where = "on_hand went down";
        if (v->incoming > p->incoming) where = "incoming went up";
        if (v->in_transit > p->in_transit) where = "in_transit went up";
        if (v->unsellable != p->unsellable || v->safety_stock != p->safety) where = "changed";
        if (strcmp(where, "snapshot") != 0)
            return bad(r,
                       "round %u sku %d: %s (committed %" PRId64 " -> %" PRId64 ", on_hand %" PRId64
                       " -> %" PRId64 ")",
                       round, s, where, p->committed, v->committed, p->on_hand, v->on_hand);
    }
    *p = (struct seen){true,          v->committed,  v->on_hand,     v->incoming,
                       v->in_transit, v->unsellable, v->safety_stock};
    return true;
}

static bool
read_round(struct reader *r, uint32_t round)
{
    for (int s = 0; s < SKUS; s++) {
        uint32_t ix = sku_ix[round - 1][s];
        trastenda_stock v;
        trastenda_err err = trastenda_engine_stock_read(E, ix, WH, &v);
        if (err != TRASTENDA_OK)
            return bad(r, "round %u sku %d: stock_read: %s", round, s, trastenda_err_name(err));
        if (!check_snapshot(r, round, s, &v)) return false;
        /* Availability over the web channel: the warehouse only (WH2 serves no channel). */
        trastenda_stock recs[4];
        uint32_t n = 0;
        int64_t avail = -1;
        err = trastenda_engine_availability(E, ix, TRASTENDA_SCOPE_CHANNEL, S("web"), &avail, recs,
                                            4, &n);
        if (err != TRASTENDA_OK)
            return bad(r, "round %u sku %d: availability: %s", round, s, trastenda_err_name(err));
        if (n != 1 || recs[0].loc_ix != WH)
            return bad(r, "round %u sku %d: availability listed %u records", round, s, n);
        if (avail != recs[0].available)
            return bad(r, "round %u sku %d: availability %" PRId64 " vs its record's %" PRId64,
                       round, s, avail, recs[0].available);
        if (!check_snapshot(r, round, s, &recs[0])) return false;
    }
    return true;
}

static void *
reader_main(void *arg)
{
    struct reader *r = arg;
    uint64_t idle = 0;
    for (uint64_t loop = 0; loop < READER_LOOPS;) {
        bool done = atomic_load_explicit(&writer_done, memory_order_acquire);
        uint32_t round = atomic_load_explicit(&round_ready, memory_order_acquire);
        if (round == 0) { /* the first round is being set up */
            if (++idle > READER_IDLE_MAX) return NULL;
            sched_yield();
            continue;
        }
        loop++;
        if (!read_round(r, round)) return NULL;
        /* A finished round's SKUs are still readable: an older one, now and then. */
        if (round > 1 && loop % 7 == 0 && !read_round(r, 1 + (uint32_t)(loop / 7) % (round - 1)))
            return NULL;
        if (done) break;
    }
    return NULL;
}

/* ---- the writer ---- */

struct sale {
    uint32_t round;
    int64_t now;
    uint64_t pending[PENDING_MAX]; /* open holds */
    uint32_t n_pending;
    int64_t sold[SKUS];
    int64_t incoming[SKUS], in_transit[SKUS]; /* still to arrive */
    uint64_t orders, shorts;
    uint64_t rng;
};

static uint32_t
rnd(struct sale *s, uint32_t n)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (uint32_t)(((z >> 32) * n) >> 32);
}

/* A command and the storage its strings and lines point to. */
struct wcmd {
    trastenda_cmd c;
    trastenda_line lines[2];
    char id[32];
};

static trastenda_ref
ref_ix(uint32_t ix)
{
    return (trastenda_ref){{NULL, 0}, ix};
}

static void
wcmd_init(struct wcmd *w, uint32_t op)
{
    memset(w, 0, sizeof(*w));
    w->c.op = op;
    w->c.sku.ix = w->c.loc.ix = w->c.loc_to.ix = TRASTENDA_IX_NONE;
}

static void
apply_batch(struct sale *s, struct wcmd *w, uint32_t n, trastenda_result *res)
{
    trastenda_cmd cmds[64]; /* each points into its own w[i] */
    for (uint32_t i = 0; i < n; i++)
        cmds[i] = w[i].c;
    trastenda_batch_out out;
    trastenda_err err = trastenda_engine_apply(E, s->now, cmds, n, res, &out);
    if (err != TRASTENDA_OK) fail("apply: %s", trastenda_err_name(err));
    s->now += 1;
}

/* The round's catalog and stock: created while the readers read the previous rounds. */
static void
round_setup(struct sale *s)
{
    static struct wcmd w[64];
    static trastenda_result res[64];
    uint32_t n = 0;
    for (int k = 0; k < SKUS; k++) {
        wcmd_init(&w[n], TRASTENDA_OP_SKU_UPSERT);
        w[n].c.sku.id = (trastenda_str){
            w[n].id, (uint32_t)snprintf(w[n].id, sizeof(w[n].id), "r%u-sku%d", s->round, k)};
        w[n].c.safety_stock = safety_of(k);
        w[n].c.active = 1;
        n++;
    }
    apply_batch(s, w, n, res);
    for (uint32_t i = 0; i < n; i++)
        if (res[i].code != TRASTENDA_OK) fail("sku upsert: %s", res[i].message);
    for (int k = 0; k < SKUS; k++) {
        char id[32];
        snprintf(id, sizeof(id), "r%u-sku%d", s->round, k);
        if (trastenda_engine_sku_lookup(E, S(id), &sku_ix[s->round - 1][k]) != TRASTENDA_OK)
            fail("lookup %s", id);
    }
    n = 0;
    for (int k = 0; k < SKUS; k++) {
        uint32_t ix = sku_ix[s->round - 1][k];
        struct wcmd *x = &w[n++];
        wcmd_init(x, TRASTENDA_OP_RECEIVE);
        x->c.sku = ref_ix(ix);
        x->c.loc = ref_ix(WH);
        x->c.qty = UNITS - PO_UNITS - TRANSIT_UNITS;
        x = &w[n++];
        wcmd_init(x, TRASTENDA_OP_MOVE_UNSELLABLE);
        x->c.sku = ref_ix(ix);
        x->c.loc = ref_ix(WH);
        x->c.qty = UNSELLABLE;
        x->c.reason = TRASTENDA_REASON_DAMAGE;
        x = &w[n++];
        wcmd_init(x, TRASTENDA_OP_RECEIVE);
        x->c.sku = ref_ix(ix);
        x->c.loc = ref_ix(WH2);
        x->c.qty = TRANSIT_UNITS + safety_of(k); /* WH2's record holds back its safety too */
        x = &w[n++];
        wcmd_init(x, TRASTENDA_OP_TRANSFER_OUT);
        x->c.sku = ref_ix(ix);
        x->c.loc = ref_ix(WH2);
        x->c.loc_to = ref_ix(WH);
        x->c.qty = TRANSIT_UNITS;
        x = &w[n++];
        wcmd_init(x, TRASTENDA_OP_PO_CREATE);
        x->c.po_id = (trastenda_str){
            x->id, (uint32_t)snprintf(x->id, sizeof(x->id), "po-r%u-%d", s->round, k)};
        x->lines[0] = (trastenda_line){ref_ix(ix), ref_ix(WH), PO_UNITS, 0};
        x->c.lines = x->lines;
        x->c.line_count = 1;
        s->incoming[k] = PO_UNITS;
        s->in_transit[k] = TRANSIT_UNITS;
        s->sold[k] = 0;
    }
    apply_batch(s, w, n, res);
    for (uint32_t i = 0; i < n; i++)
        if (res[i].code != TRASTENDA_OK) fail("round setup #%u: %s", i, res[i].message);
    atomic_store_explicit(&round_ready, s->round, memory_order_release);
}

static bool
sold_out(struct sale *s)
{
    if (s->n_pending > 0) return false;
    for (int k = 0; k < SKUS; k++) {
        trastenda_stock v;
        if (trastenda_engine_stock_read(E, sku_ix[s->round - 1][k], WH, &v) != TRASTENDA_OK)
            fail("stock_read");
        if (v.available > 0 || s->incoming[k] > 0 || s->in_transit[k] > 0) return false;
    }
    return true;
}

/* One command of the sale. */
static void
sale_cmd(struct sale *s, struct wcmd *x)
{
    uint32_t k = rnd(s, SKUS), what = rnd(s, 100);
    uint32_t ix = sku_ix[s->round - 1][k];
    if (what < 3 && s->incoming[k] > 0) {
        int64_t q = s->incoming[k] < 10 ? s->incoming[k] : 10;
        wcmd_init(x, TRASTENDA_OP_PO_RECEIVE);
        x->c.po_id = (trastenda_str){
            x->id, (uint32_t)snprintf(x->id, sizeof(x->id), "po-r%u-%u", s->round, k)};
        x->lines[0] = (trastenda_line){ref_ix(ix), ref_ix(WH), q, 0};
        x->c.lines = x->lines;
        x->c.line_count = 1;
        s->incoming[k] -= q;
    } else if (what < 5 && s->in_transit[k] > 0) {
        wcmd_init(x, TRASTENDA_OP_TRANSFER_IN);
        x->c.sku = ref_ix(ix);
        x->c.loc = ref_ix(WH);
        x->c.qty = s->in_transit[k] < 5 ? s->in_transit[k] : 5;
        s->in_transit[k] -= x->c.qty;
    } else if (what < 40 && s->n_pending > 0) {
        /* confirm (or, one time in eight, abandon) an open hold */
        uint32_t i = rnd(s, s->n_pending);
        uint64_t id = s->pending[i];
        s->pending[i] = s->pending[--s->n_pending];
        wcmd_init(x, rnd(s, 8) == 0 ? TRASTENDA_OP_RELEASE : TRASTENDA_OP_CONFIRM);
        x->c.hold_id = id;
        if (x->c.op == TRASTENDA_OP_CONFIRM)
            x->c.order_id = (trastenda_str){
                x->id, (uint32_t)snprintf(x->id, sizeof(x->id), "r%u-h%" PRIu64, s->round, id)};
    } else if (what < 75) {
        wcmd_init(x, TRASTENDA_OP_RESERVE);
        x->lines[0] = (trastenda_line){ref_ix(ix), ref_ix(WH), 1 + rnd(s, 3), 0};
        x->c.lines = x->lines;
        x->c.line_count = 1;
        x->c.ttl_ms = 600000; /* no hold expires during a sale */
    } else {
        wcmd_init(x, TRASTENDA_OP_ORDER_PLACE);
        x->lines[0] = (trastenda_line){ref_ix(ix), ref_ix(TRASTENDA_IX_NONE), 1 + rnd(s, 3), 0};
        x->lines[1] = (trastenda_line){ref_ix(sku_ix[s->round - 1][(k + 1) % SKUS]),
                                       ref_ix(TRASTENDA_IX_NONE), 1, 0};
        x->c.lines = x->lines;
        x->c.line_count = rnd(s, 4) == 0 ? 2 : 1;
        x->c.channel = S("web");
        x->c.has_ship_to = 1;
        x->c.order_id =
            (trastenda_str){x->id, (uint32_t)snprintf(x->id, sizeof(x->id), "r%u-o%" PRIu64,
                                                      s->round, s->orders++)};
    }
}

static void
sale_results(struct sale *s, const struct wcmd *w, const trastenda_result *res, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        const trastenda_result *r = &res[i];
        uint32_t op = w[i].c.op;
        if (r->code == TRASTENDA_E_SHORT) {
            s->shorts++;
            continue;
        }
        if (r->code != TRASTENDA_OK)
            fail("round %u: %s failed: %s (%s)", s->round,
                 op == TRASTENDA_OP_CONFIRM ? "confirm" : "command", trastenda_err_name(r->code),
                 r->message);
        if (op == TRASTENDA_OP_RESERVE) {
            if (s->n_pending == PENDING_MAX) fail("too many open holds");
            s->pending[s->n_pending++] = r->id;
        }
        if (op != TRASTENDA_OP_CONFIRM && op != TRASTENDA_OP_ORDER_PLACE) continue;
        for (uint32_t a = 0; a < r->alloc_count; a++) {
            if (r->allocs[a].loc_ix != WH) fail("an order was routed away from the warehouse");
            int k = 0;
            while (k < SKUS && sku_ix[s->round - 1][k] != r->allocs[a].sku_ix)
                k++;
            if (k == SKUS) fail("an allocation of an unknown sku");
            s->sold[k] += r->allocs[a].qty;
            if (s->sold[k] > sellable_of(k)) fail("round %u sku %d oversold", s->round, k);
        }
    }
}

static void
run_sale(struct sale *s)
{
    static struct wcmd w[BATCH_MAX];
    static trastenda_result res[BATCH_MAX];
    uint32_t batches = 0;
    while (!sold_out(s)) {
        if (++batches > SALE_BATCHES) fail("round %u: the sale does not end", s->round);
        uint32_t n = 1 + rnd(s, BATCH_MAX);
        for (uint32_t i = 0; i < n; i++)
            sale_cmd(s, &w[i]);
        apply_batch(s, w, n, res);
        sale_results(s, w, res, n);
    }
    for (int k = 0; k < SKUS; k++) {
        trastenda_stock v;
        if (trastenda_engine_stock_read(E, sku_ix[s->round - 1][k], WH, &v) != TRASTENDA_OK)
            fail("stock_read");
        if (s->sold[k] != sellable_of(k) || v.committed != s->sold[k] || v.held != 0 ||
            v.available != 0 || v.on_hand != UNITS || v.incoming != 0 || v.in_transit != 0)
            fail("round %u sku %d: sold %" PRId64 " of %" PRId64 ", committed %" PRId64
                 ", held %" PRId64 ", available %" PRId64 ", on_hand %" PRId64,
                 s->round, k, s->sold[k], sellable_of(k), v.committed, v.held, v.available,
                 v.on_hand);
    }
    if (s->shorts == 0) fail("round %u: demand never met a sold-out SKU", s->round);
}

static void
setup_locations(void)
{
    trastenda_cmd c[2];
    trastenda_result res[2];
    trastenda_str web = S("web");
    memset(c, 0, sizeof(c));
    for (int i = 0; i < 2; i++) {
        c[i].op = TRASTENDA_OP_LOCATION_UPSERT;
        c[i].sku.ix = c[i].loc.ix = c[i].loc_to.ix = TRASTENDA_IX_NONE;
        c[i].loc.id = S(i == 0 ? "wh" : "wh2");
        c[i].active = 1;
    }
    c[0].channels = &web; /* wh2 serves no channel: orders never route there */
    c[0].channel_count = 1;
    trastenda_batch_out out;
    if (trastenda_engine_apply(E, T0, c, 2, res, &out) != TRASTENDA_OK ||
        res[0].code != TRASTENDA_OK || res[1].code != TRASTENDA_OK)
        fail("locations");
    if (trastenda_engine_location_lookup(E, S("wh"), &WH) != TRASTENDA_OK ||
        trastenda_engine_location_lookup(E, S("wh2"), &WH2) != TRASTENDA_OK)
        fail("location lookup");
}

int
main(void)
{
    trastenda_engine_config cfg;
    trastenda_engine_config_default(&cfg);
    cfg.locations_max = 4;
    cfg.skus_max = ROUNDS * SKUS;
    cfg.stock_max = ROUNDS * SKUS * 2;
    cfg.holds_max = 65536;
    cfg.orders_max = 65536;
    cfg.keys_max = 16;
    cfg.lines_max = 262144;
    if (trastenda_engine_create(&cfg, &E) != TRASTENDA_OK) fail("engine_create");
    setup_locations();

    static struct reader readers[READERS];
    for (int i = 0; i < READERS; i++) {
        readers[i].id = i;
        if (pthread_create(&readers[i].thread, NULL, reader_main, &readers[i]) != 0)
            fail("pthread_create");
    }
    static struct sale s;
    s.now = T0 + 1;
    s.rng = 0x5a1e;
    uint64_t shorts = 0, orders = 0;
    for (uint32_t round = 1; round <= ROUNDS; round++) {
        s.round = round;
        s.n_pending = 0;
        s.shorts = 0;
        round_setup(&s);
        run_sale(&s);
        shorts += s.shorts;
    }
    orders = s.orders;
    atomic_store_explicit(&writer_done, true, memory_order_release);
    uint64_t snapshots = 0;
    int failed = 0;
    for (int i = 0; i < READERS; i++) {
        pthread_join(readers[i].thread, NULL);
        snapshots += readers[i].snapshots;
        if (readers[i].error[0] != '\0') {
            fprintf(stderr, "plain_concurrency: FAIL: reader %d: %s\n", i, readers[i].error);
            failed = 1;
        }
    }
    trastenda_engine_check(E);
    trastenda_engine_destroy(E);
    if (failed) return 1;
    if (snapshots == 0) fail("the readers took no snapshot");
    printf("plain_concurrency: %d rounds of %d SKUs x %d units sold out exactly; %" PRIu64
           " orders placed, %" PRIu64 " refused short; readers checked %" PRIu64 " snapshots\n",
           ROUNDS, SKUS, UNITS, orders, shorts, snapshots);
    return 0;
}
