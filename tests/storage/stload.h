/*
 * tests/storage/stload.h - the load of the crash and fault tests (plain_crash.c, plain_faults.c)
 * and its check after a restart.
 *
 * A request is two commands in one batch: a RECEIVE of one unit carrying an idempotency key unique
 * to (run, thread, index), then a RESERVE of that unit for a day. Each request therefore adds one
 * key, one open hold, one unit on hand and one unit held: after any restart those four counts
 * must be equal (batches are atomic), and every acknowledged request must be there. A child
 * process submits them and tells its parent, through a pipe, what was acknowledged (struct
 * ld_msg); the parent reopens the store and runs ld_verify().
 */
#ifndef TS_TESTS_STLOAD_H
#define TS_TESTS_STLOAD_H

#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include "gen.h"
#include "plain.h"
#include "sthelp.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#endif

#define LD_TABLE_MAX   (1u << 18) /* keys, holds and lines */
#define LD_KEY_BYTES   40
#define LD_VERIFY_CMDS 256 /* resubmitted receives per request */
#define LD_DAY_MS      INT64_C(86400000)

enum ld_msg_type {
    LD_READY = 1,     /* the catalog is in: the load starts */
    LD_ACK = 2,       /* a request acknowledged: thread, idx, hold, seq */
    LD_ERROR = 3,     /* the child saw something wrong (details on its stderr) */
    LD_LOADED = 4,    /* every producer submitted all it had */
    LD_FAILED = 5,    /* a request completed with E_IO */
    LD_VIOLATION = 6, /* fail-stop broken (details on the child's stderr) */
    LD_SUMMARY = 7,   /* the fault child's last word: idx = submitted, hold = done() calls */
    LD_CLOSED = 8     /* the crash child closed its store before the kill came */
};

struct ld_msg {
    uint32_t type;
    uint32_t thread;
    uint32_t idx;
    uint32_t code;
    uint64_t hold;
    uint64_t seq;
};
_Static_assert(sizeof(struct ld_msg) <= 512, "one atomic pipe write (PIPE_BUF)");

struct ld_ack {
    uint32_t thread, idx;
    uint64_t hold, seq;
};

/* ---- the commands, built the same way by the child and by the parent ---- */

static int
ld_sku_of(uint32_t thread, uint32_t idx)
{
    return (int)((idx + thread) % N_SKUS);
}

static int
ld_loc_of(uint32_t thread)
{
    return (int)(thread % N_LOCS);
}

static void
ld_receive(trastenda_cmd *c, char key[LD_KEY_BYTES], uint32_t run, uint32_t thread, uint32_t idx)
{
    memset(c, 0, sizeof(*c));
    c->op = TRASTENDA_OP_RECEIVE;
    int len = snprintf(key, LD_KEY_BYTES, "c%u-t%u-%u", run, thread, idx);
    c->key = (trastenda_str){key, (uint32_t)len};
    c->sku = R(SKU_IDS[ld_sku_of(thread, idx)]);
    c->loc = R(LOC_IDS[ld_loc_of(thread)]);
    c->loc_to.ix = TRASTENDA_IX_NONE;
    c->qty = 1;
}

static void
ld_reserve(trastenda_cmd *c, trastenda_line *ln, uint32_t thread, uint32_t idx)
{
    memset(c, 0, sizeof(*c));
    memset(ln, 0, sizeof(*ln));
    c->op = TRASTENDA_OP_RESERVE;
    c->sku.ix = c->loc.ix = c->loc_to.ix = TRASTENDA_IX_NONE;
    ln->sku = R(SKU_IDS[ld_sku_of(thread, idx)]);
    ln->loc = R(LOC_IDS[ld_loc_of(thread)]);
    ln->qty = 1;
    c->lines = ln;
    c->line_count = 1;
    c->ttl_ms = TRASTENDA_TTL_MS_MAX; /* a day: nothing expires during a test */
}

static void
ld_config(trastenda_store_config *cfg, const char *dir)
{
    trastenda_store_config_default(cfg);
    cfg->dir = dir;
    gen_config(&cfg->engine, false);
    cfg->engine.stock_max = 64;
    cfg->engine.holds_max = LD_TABLE_MAX;
    cfg->engine.keys_max = LD_TABLE_MAX;
    cfg->engine.lines_max = LD_TABLE_MAX;
    cfg->engine.orders_max = 64;
    cfg->engine.pos_max = 64;
    cfg->engine.batch_cmds_max = 1024;
    /* Nothing may expire during the run: keys and holds are what the checks count. */
    cfg->engine.key_retention_ms = 365 * LD_DAY_MS;
    cfg->engine.hold_retention_ms = 365 * LD_DAY_MS;
    cfg->engine.order_retention_ms = LD_DAY_MS;
    cfg->durability = TRASTENDA_DURABILITY_FSYNC;
    cfg->queue_max = 1024;
    cfg->log = st_log_quiet;
}

/* One request of the load, with the storage its commands point to. */
struct ld_slot {
    trastenda_request req;
    trastenda_cmd cmds[2];
    trastenda_line line;
    trastenda_result res[2];
    char key[LD_KEY_BYTES];
    uint32_t busy; /* atomic: submitted, done() not run yet */
    uint32_t thread, idx;
};

static void
ld_slot_fill(struct ld_slot *s, uint32_t run, uint32_t thread, uint32_t idx,
             void (*done)(trastenda_request *, trastenda_err))
{
    ld_receive(&s->cmds[0], s->key, run, thread, idx);
    ld_reserve(&s->cmds[1], &s->line, thread, idx);
    memset(&s->req, 0, sizeof(s->req));
    s->req.cmds = s->cmds;
    s->req.n = 2;
    s->req.results = s->res;
    s->req.done = done;
    s->req.ctx = s;
    s->thread = thread;
    s->idx = idx;
}

/* Both commands succeeded, the receive for the first time. */
static bool
ld_slot_ok(const struct ld_slot *s)
{
    return s->res[0].code == TRASTENDA_OK && s->res[1].code == TRASTENDA_OK && !s->res[0].duplicate;
}

/* The catalog (every location and SKU, safety stock 0), as one request; 0 on success. */
static int
ld_catalog(trastenda_store *st, uint64_t *seq)
{
    struct gcmd x[N_LOCS + N_SKUS];
    trastenda_cmd cmds[N_LOCS + N_SKUS];
    trastenda_result res[N_LOCS + N_SKUS];
    for (int l = 0; l < N_LOCS; l++)
        cmd_location(&x[l], l);
    for (int s = 0; s < N_SKUS; s++) {
        cmd_sku(&x[N_LOCS + s], s);
        x[N_LOCS + s].c.safety_stock = 0; /* every received unit can be held */
    }
    for (int i = 0; i < N_LOCS + N_SKUS; i++) {
        cmds[i] = x[i].c;
        cmds[i].channels = x[i].channels;
    }
    trastenda_err err = st_run(st, cmds, N_LOCS + N_SKUS, res, seq);
    if (err != TRASTENDA_OK) return -1;
    for (int i = 0; i < N_LOCS + N_SKUS; i++)
        if (res[i].code != TRASTENDA_OK) {
            fprintf(stderr, "catalog command %d: %s\n", i, res[i].message);
            return -1;
        }
    return 0;
}

/* ---- the parent: checking the reopened store ---- */

struct ld_probe {
    struct st_wait w; /* first: the request's ctx is the probe */
    const struct ld_ack *acks;
    uint32_t n;
    trastenda_hold_view *view; /* scratch */
    char bad[256];             /* the first failure */
    trastenda_engine_stats stats;
    int64_t on_hand, held;
};

static void
ld_probe_query(trastenda_request *req, const trastenda_engine *e)
{
    struct ld_probe *p = req->ctx;
    for (uint32_t i = 0; i < p->n && p->bad[0] == '\0'; i++) {
        const struct ld_ack *a = &p->acks[i];
        trastenda_err err = trastenda_engine_hold_get(e, a->hold, p->view);
        uint32_t sku = UINT32_MAX, loc = UINT32_MAX;
        (void)trastenda_engine_sku_lookup(e, S(SKU_IDS[ld_sku_of(a->thread, a->idx)]), &sku);
        (void)trastenda_engine_location_lookup(e, S(LOC_IDS[ld_loc_of(a->thread)]), &loc);
        if (err != TRASTENDA_OK)
            snprintf(p->bad, sizeof(p->bad),
                     "acknowledged hold %" PRIu64 " (batch %" PRIu64 ") is gone: %s", a->hold,
                     a->seq, trastenda_err_name(err));
        else if (p->view->state != TRASTENDA_HOLD_OPEN || p->view->line_count != 1 ||
                 p->view->lines[0].qty != 1 || p->view->lines[0].sku_ix != sku ||
                 p->view->lines[0].loc_ix != loc)
            snprintf(p->bad, sizeof(p->bad),
                     "acknowledged hold %" PRIu64 ": state %u, %u lines, first qty %" PRId64,
                     a->hold, p->view->state, p->view->line_count, p->view->lines[0].qty);
    }
    trastenda_engine_stats_get(e, &p->stats);
    p->on_hand = p->held = 0;
    for (uint32_t s = 0; s < N_SKUS; s++)
        for (uint32_t l = 0; l < N_LOCS; l++) {
            uint32_t si, li;
            trastenda_stock rec;
            if (trastenda_engine_sku_lookup(e, S(SKU_IDS[s]), &si) != TRASTENDA_OK ||
                trastenda_engine_location_lookup(e, S(LOC_IDS[l]), &li) != TRASTENDA_OK ||
                trastenda_engine_stock_read(e, si, li, &rec) != TRASTENDA_OK)
                continue;
            p->on_hand += rec.on_hand;
            p->held += rec.held;
        }
    trastenda_engine_check(e);
}

/* Runs the probe on the engine thread. */
static void
ld_probe_run(trastenda_store *st, struct ld_probe *p)
{
    static trastenda_hold_view view;
    memset(&p->w, 0, sizeof(p->w));
    p->view = &view;
    p->bad[0] = '\0';
    p->w.req.query = ld_probe_query;
    p->w.req.done = st_wait_done;
    p->w.req.ctx = p;
    while (trastenda_store_submit(st, &p->w.req) == TRASTENDA_E_BUSY)
        usleep(100);
    PT_CHECK(st_wait_for(&p->w) == TRASTENDA_OK, "the probe query failed");
}

/* Every acknowledged receive is remembered: resubmitted with its key, it is a replay. */
static void
ld_check_replays(trastenda_store *st, const char *what, uint32_t run, const struct ld_ack *acks,
                 uint32_t n_acks)
{
    static trastenda_cmd cmds[LD_VERIFY_CMDS];
    static trastenda_result res[LD_VERIFY_CMDS];
    static char keys[LD_VERIFY_CMDS][LD_KEY_BYTES];
    for (uint32_t at = 0; at < n_acks; at += LD_VERIFY_CMDS) {
        uint32_t n = n_acks - at < LD_VERIFY_CMDS ? n_acks - at : LD_VERIFY_CMDS;
        for (uint32_t i = 0; i < n; i++)
            ld_receive(&cmds[i], keys[i], run, acks[at + i].thread, acks[at + i].idx);
        trastenda_err err = st_run(st, cmds, n, res, NULL);
        PT_CHECK(err == TRASTENDA_OK, "%s: resubmitting receives: %s", what,
                 trastenda_err_name(err));
        for (uint32_t i = 0; i < n; i++)
            PT_CHECK(res[i].code == TRASTENDA_OK && res[i].duplicate == 1,
                     "%s: acknowledged receive %s (batch %" PRIu64
                     ") is not remembered: %s, duplicate %u",
                     what, keys[i], acks[at + i].seq, trastenda_err_name(res[i].code),
                     res[i].duplicate);
    }
}

/* What a run acknowledged, and what the store held before it. */
struct ld_expect {
    const struct ld_ack *acks;
    uint32_t n;
    uint64_t seq_max;       /* the highest acknowledged batch */
    uint64_t submitted_max; /* requests submitted, at most */
    uint64_t keys_before;   /* keys present before the run */
    uint64_t seq_before;    /* durable sequence before the run */
};

/*
 * Reopens the store (open replays the log and checks every invariant) and checks: the durable
 * sequence reaches every acknowledged batch; every acknowledged hold exists, open, right; the keys,
 * open holds, units on hand and units held are equal (no half batch), at least what was there
 * plus what was acknowledged, at most that plus what was submitted; every acknowledged receive is
 * a replay when resubmitted, and the replays change nothing. Closes it. *keys, *seq: after.
 */
static void
ld_verify(const trastenda_store_config *cfg, const char *what, uint32_t run,
          const struct ld_expect *x, uint64_t *keys, uint64_t *seq)
{
    trastenda_store *st = NULL;
    char err[512];
    trastenda_err code = trastenda_store_open(cfg, &st, err, sizeof(err));
    PT_CHECK(code == TRASTENDA_OK, "%s: reopening: %s: %s", what, trastenda_err_name(code), err);
    uint64_t durable = trastenda_store_durable_seq(st);
    PT_CHECK(durable >= x->seq_max && durable >= x->seq_before,
             "%s: recovered at batch %" PRIu64 ", but batch %" PRIu64
             " was acknowledged (and %" PRIu64 " was there before)",
             what, durable, x->seq_max, x->seq_before);
    struct ld_probe p;
    memset(&p, 0, sizeof(p));
    p.acks = x->acks;
    p.n = x->n;
    ld_probe_run(st, &p); /* before the replays: they must find everything already there */
    PT_CHECK(p.bad[0] == '\0', "%s: %s", what, p.bad);
    uint64_t k = p.stats.keys;
    PT_CHECK(k == p.stats.holds_open && k == p.stats.holds && (int64_t)k == p.on_hand &&
                 (int64_t)k == p.held,
             "%s: a batch came back in part: %" PRIu64 " keys, %u holds (%u open), %" PRId64
             " units on hand, %" PRId64 " held",
             what, k, p.stats.holds, p.stats.holds_open, p.on_hand, p.held);
    PT_CHECK(k >= x->keys_before + x->n && k <= x->keys_before + x->submitted_max,
             "%s: %" PRIu64 " keys after the restart; %" PRIu64 " before, %u acknowledged, at "
             "most %" PRIu64 " submitted",
             what, k, x->keys_before, x->n, x->submitted_max);
    ld_check_replays(st, what, run, x->acks, x->n);
    ld_probe_run(st, &p);
    PT_CHECK(p.stats.keys == k && p.on_hand == (int64_t)k, "%s: a replay changed the state", what);
    *keys = k;
    *seq = trastenda_store_durable_seq(st);
    trastenda_store_close(st);
}

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif /* TS_TESTS_STLOAD_H */
