/*
 * tests/storage/test_store_archive.c - holds and orders that retention removed from memory stay
 * queryable in the archive, as they were when they left, across restarts.
 */
#include <criterion/criterion.h>

#include "gen.h"
#include "sthelp.h"

#define T0 INT64_C(1700000000000)

static int64_t now_ms = T0;

static int64_t
test_clock(void *ctx)
{
    (void)ctx;
    return __atomic_load_n(&now_ms, __ATOMIC_ACQUIRE);
}

struct q_hold {
    struct st_wait w;
    uint64_t id;
    trastenda_err code;
    trastenda_hold_view view;
};

static void
hold_query(trastenda_request *req, const trastenda_engine *e)
{
    struct q_hold *q = req->ctx;
    q->code = trastenda_engine_hold_get(e, q->id, &q->view);
}

static void
hold_done(trastenda_request *req, trastenda_err status)
{
    struct q_hold *q = req->ctx;
    q->w.status = status;
    __atomic_store_n(&q->w.done, 1, __ATOMIC_RELEASE);
}

/* The live engine's view of a hold (through the engine thread). */
static trastenda_err
live_hold(trastenda_store *st, uint64_t id, trastenda_hold_view *out)
{
    static struct q_hold q;
    memset(&q, 0, sizeof(q));
    q.id = id;
    q.w.req.query = hold_query;
    q.w.req.done = hold_done;
    q.w.req.ctx = &q;
    cr_assert_eq(trastenda_store_submit(st, &q.w.req), TRASTENDA_OK);
    while (!__atomic_load_n(&q.w.done, __ATOMIC_ACQUIRE))
        usleep(50);
    *out = q.view;
    return q.code;
}

static trastenda_result
run1(trastenda_store *st, const trastenda_cmd *c)
{
    trastenda_result r;
    cr_assert_eq(st_run(st, c, 1, &r, NULL), TRASTENDA_OK);
    return r;
}

Test(store_archive, removed_holds_and_orders_stay_queryable)
{
    char dir[512], err[512];
    st_tmpdir(dir, sizeof(dir), "archive");
    trastenda_store_config cfg;
    trastenda_store_config_default(&cfg);
    cfg.dir = dir;
    gen_config(&cfg.engine, false); /* holds kept 3 s, orders 10 s after they end */
    cfg.log = st_log_quiet;
    cfg.clock_ms = test_clock;
    cfg.materialize_interval_ms = 3600000;
    trastenda_store *st = NULL;
    cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_OK, "%s", err);
    static struct batch b;
    static trastenda_result res[BATCH_MAX];
    setup_batch(&b);
    cr_assert_eq(st_run(st, b.cmds, b.n, res, NULL), TRASTENDA_OK);
    struct gcmd x;
    cmd_stock(&x, TRASTENDA_OP_RECEIVE, 0, 0, 1000);
    cr_assert_eq(run1(st, &x.c).code, TRASTENDA_OK);

    /* 600 holds (more than two archive pages), every other one released. */
    enum {
        HOLDS = 600
    };
    static uint64_t ids[HOLDS];
    static trastenda_hold_view before[HOLDS];
    for (int i = 0; i < HOLDS; i++) {
        cmd_init(&x, TRASTENDA_OP_RESERVE);
        x.lines[0] = (trastenda_line){R(SKU_IDS[0]), R(LOC_IDS[0]), 1 + i % 3, 0};
        x.c.line_count = 1;
        x.c.ttl_ms = 60000;
        trastenda_result r = run1(st, &x.c);
        cr_assert_eq(r.code, TRASTENDA_OK, "%s", r.message);
        ids[i] = r.id;
        if (i % 2 == 0) {
            cmd_init(&x, TRASTENDA_OP_RELEASE);
            x.c.hold_id = ids[i];
            cr_assert_eq(run1(st, &x.c).code, TRASTENDA_OK);
        }
    }
    /* An order placed and cancelled. */
    cmd_init(&x, TRASTENDA_OP_ORDER_PLACE);
    x.c.order_id = S("order-1");
    x.lines[0] = (trastenda_line){R(SKU_IDS[0]), {{NULL, 0}, TRASTENDA_IX_NONE}, 2, 0};
    x.c.line_count = 1;
    x.c.channel = S("web");
    x.c.has_ship_to = 1;
    x.c.lat_e6 = 42880000;
    x.c.lon_e6 = -8540000;
    trastenda_result pr = run1(st, &x.c);
    cr_assert_eq(pr.code, TRASTENDA_OK, "%s", pr.message);
    cmd_init(&x, TRASTENDA_OP_ORDER_CANCEL);
    x.c.order_id = S("order-1");
    cr_assert_eq(run1(st, &x.c).code, TRASTENDA_OK);
    for (int i = 0; i < HOLDS; i++)
        cr_assert_eq(live_hold(st, ids[i], &before[i]), TRASTENDA_OK);

    /* Past every window (open holds expire first, then leave too). */
    for (int step = 1; step <= 12; step++) {
        __atomic_store_n(&now_ms, T0 + step * 20000, __ATOMIC_RELEASE);
        cmd_init(&x, TRASTENDA_OP_NOOP);
        for (int k = 0; k < 40; k++)
            run1(st, &x.c);
    }
    trastenda_hold_view v;
    for (int i = 0; i < HOLDS; i++)
        cr_assert_eq(live_hold(st, ids[i], &v), TRASTENDA_E_UNKNOWN_HOLD, "hold %d still live", i);
    for (int round = 0; round < 2; round++) {
        st_mat_wait(st); /* the archive is written with the state */
        for (int i = 0; i < HOLDS; i++) {
            cr_assert_eq(trastenda_store_hold_archived(st, ids[i], &v), TRASTENDA_OK, "hold %d", i);
            cr_assert_eq(v.id, ids[i]);
            if (i % 2 == 0) {
                /* Released: archived as it was. */
                cr_assert_eq(v.state, TRASTENDA_HOLD_RELEASED);
                cr_assert_eq(v.resolved_ms, before[i].resolved_ms);
            } else {
                cr_assert_eq(v.state, TRASTENDA_HOLD_EXPIRED, "open holds expired, then left");
            }
            cr_assert_eq(v.created_ms, before[i].created_ms);
            cr_assert_eq(v.line_count, 1);
            cr_assert_eq(v.lines[0].qty, 1 + i % 3);
            cr_assert_eq(v.lines[0].sku_ix, before[i].lines[0].sku_ix);
            cr_assert_eq(v.lines[0].loc_ix, before[i].lines[0].loc_ix);
        }
        trastenda_order_view ov;
        cr_assert_eq(trastenda_store_order_archived(st, S("order-1"), &ov), TRASTENDA_OK);
        cr_assert_str_eq(ov.id, "order-1");
        cr_assert_eq(ov.state, TRASTENDA_ORDER_CANCELLED);
        cr_assert_eq(ov.alloc_count, 1);
        cr_assert_eq(ov.allocs[0].qty, 2);
        cr_assert_eq(trastenda_store_order_archived(st, S("order-2"), &ov),
                     TRASTENDA_E_UNKNOWN_ORDER);
        cr_assert_eq(trastenda_store_hold_archived(st, 999999, &v), TRASTENDA_E_UNKNOWN_HOLD);
        trastenda_store_stats stats;
        trastenda_store_stats_get(st, &stats);
        if (round == 0) cr_assert_geq(stats.archived, HOLDS + 1);
        /* Again after a restart. */
        trastenda_store_close(st);
        cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_OK, "%s", err);
    }
    trastenda_store_close(st);
    st_rmdir(dir);
}
