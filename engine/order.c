/*
 * engine/order.c - orders: place (route and commit), pick, pack, ship, deliver, cancel, return.
 *
 * Lifecycle (per allocation, and the order is at its least advanced allocation):
 *   allocated -> picking -> packed -> shipped -> delivered (whole order)
 *   cancelled: only while nothing shipped; committed units go back to available.
 *   returned: when every shipped unit came back (partial returns keep the state).
 * An order is placed and allocated in one command, so `placed` is never observed in the table.
 * Finished orders (delivered, cancelled, returned) wait in a FIFO for their retention window.
 */
#include <string.h>

#include "eng.h"

static int
order_eq(const void *ctx, uint32_t ix, const void *key)
{
    const trastenda_engine *e = ctx;
    return e->orders[ix].in_use && eng_id_eq(&e->orders[ix].id, *(const trastenda_str *)key);
}

uint32_t
eng_order_find(const trastenda_engine *e, trastenda_str id)
{
    uint32_t ix;
    ENG_MAP_FIND(&e->order_map, eng_str_hash(id), order_eq, e, &id, ix);
    return ix;
}

bool
eng_order_finished(uint8_t state)
{
    return state == TRASTENDA_ORDER_DELIVERED || state == TRASTENDA_ORDER_CANCELLED ||
           state == TRASTENDA_ORDER_RETURNED;
}

uint32_t
eng_order_new(trastenda_engine *e, trastenda_str id, uint64_t payload_hash, uint8_t channel,
              int32_t lat_e6, int32_t lon_e6, uint8_t rule)
{
    uint32_t o = eng_pool_take(&e->order_pool);
    TS_ASSERT(o != ENG_NONE);
    /* Both callers (place, confirm) looked the id up just before: a second search in every build
     * costs a hash and a probe per order for a fact they established. */
    TS_DEBUG_ASSERT(eng_order_find(e, id) == ENG_NONE);
    struct eng_order *od = &e->orders[o];
    memset(od, 0, sizeof(*od));
    eng_id_set(&od->id, id);
    od->no = ++e->next_order_no;
    od->payload_hash = payload_hash;
    od->created_ms = od->updated_ms = e->time_ms;
    od->lat_e6 = lat_e6;
    od->lon_e6 = lon_e6;
    od->lines_head = ENG_NONE;
    od->state = TRASTENDA_ORDER_PLACED;
    od->rule = rule;
    od->channel = channel;
    od->in_use = 1;
    eng_map_insert(&e->order_map, eng_str_hash(id), o);
    eng_dirty_mark(e, TRASTENDA_REC_ORDER, o, &od->dirty);
    return o;
}

/* A finished order enters its retention window (Design note 6). */
void
eng_order_retain(trastenda_engine *e, uint32_t o)
{
    eng_fifo_push(&e->order_fifo, o);
    eng_dirty_requeue(e, TRASTENDA_REC_ORDER, o, &e->orders[o].dirty);
}

void
eng_order_free(trastenda_engine *e, uint32_t o)
{
    struct eng_order *od = &e->orders[o];
    TS_ASSERT(od->in_use);
    eng_lines_free(e, od->lines_head);
    if (eng_fifo_has(&e->order_fifo, o)) eng_fifo_remove(&e->order_fifo, o);
    eng_map_remove(&e->order_map, eng_str_hash(eng_id_str(&od->id)), o);
    od->in_use = 0;
    eng_pool_give(&e->order_pool, o);
}

void
eng_order_set_state(trastenda_engine *e, uint32_t o, uint8_t state)
{
    struct eng_order *od = &e->orders[o];
    od->updated_ms = e->time_ms;
    eng_dirty_mark(e, TRASTENDA_REC_ORDER, o, &od->dirty);
    if (od->state == state) return;
    bool was_finished = eng_order_finished(od->state);
    od->state = state;
    eng_emit_order_state(e, o);
    if (!eng_order_finished(state)) return;
    /* A finished order's retention window starts (again, for a return after delivery). */
    if (was_finished) eng_fifo_remove(&e->order_fifo, o);
    od->finished_ms = e->time_ms;
    eng_order_retain(e, o);
}

void
eng_order_result_allocs(trastenda_engine *e, uint32_t o, trastenda_result *r)
{
    const struct eng_order *od = &e->orders[o];
    trastenda_alloc *a = eng_arena_take(e, od->alloc_count);
    uint32_t n = 0;
    for (uint32_t l = od->lines_head; l != ENG_NONE; l = e->lines[l].next)
        a[n++] = (trastenda_alloc){e->lines[l].sku_ix, e->lines[l].loc_ix, e->lines[l].qty, 0};
    TS_ASSERT(n == od->alloc_count);
    r->allocs = a;
    r->alloc_count = n;
    r->rule = od->rule;
}

/* ---- place ---- */

static trastenda_err
place_lines(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r,
            struct eng_want *wants, uint32_t *n_wants)
{
    trastenda_err lerr = eng_lines_check(c, r);
    if (lerr != TRASTENDA_OK) return lerr;
    *n_wants = 0;
    for (uint32_t i = 0; i < c->line_count; i++) {
        const trastenda_line *ln = &c->lines[i];
        uint32_t sku;
        r->line = i;
        trastenda_err err = eng_sku_resolve(e, &ln->sku, "sku", r, &sku);
        if (err == TRASTENDA_OK) err = eng_qty_check(ln->qty, 1, TRASTENDA_LINE_QTY_MAX, "qty", r);
        if (err == TRASTENDA_OK && !e->skus[sku].active)
            err = eng_fail(r, TRASTENDA_E_INACTIVE, "sku '%.*s' is inactive", e->skus[sku].id.len,
                           e->skus[sku].id.s);
        if (err == TRASTENDA_OK && (ln->loc.id.len > 0 || ln->loc.ix != TRASTENDA_IX_NONE))
            err = eng_fail(r, TRASTENDA_E_INVALID,
                           "order lines are routed: location is not accepted (reserve then "
                           "confirm to choose locations)");
        if (err != TRASTENDA_OK) return err;
        uint32_t k = 0;
        while (k < *n_wants && wants[k].sku_ix != sku)
            k++;
        if (k == *n_wants) wants[(*n_wants)++] = (struct eng_want){sku, 0};
        wants[k].qty += ln->qty;
    }
    r->line = UINT32_MAX;
    return TRASTENDA_OK;
}

static uint32_t
place_apply(trastenda_engine *e, const trastenda_cmd *c, uint64_t payload_hash, uint8_t channel,
            const struct eng_route *rt)
{
    uint32_t o =
        eng_order_new(e, c->order_id, payload_hash, channel, c->lat_e6, c->lon_e6, rt->rule);
    struct eng_order *od = &e->orders[o];
    struct eng_move mv = {.move = TRASTENDA_MOVE_ALLOCATE,
                          .ref_kind = TRASTENDA_REFK_ORDER,
                          .ref_id = od->no,
                          .ref = c->order_id};
    struct eng_line_list list = {ENG_NONE, ENG_NONE};
    for (uint32_t i = 0; i < rt->count; i++) {
        const trastenda_alloc *a = &rt->allocs[i];
        uint32_t l = eng_line_append(e, &list, ENG_LINE_ORDER, o, a->sku_ix, a->loc_ix,
                                     (int32_t)a->qty, TRASTENDA_ORDER_ALLOCATED);
        uint32_t rec = eng_stock_find(e, a->sku_ix, a->loc_ix);
        TS_ASSERT(rec != ENG_NONE);
        eng_stock_line_link(e, rec, l);
        int32_t d[TRASTENDA_Q_COUNT_] = {0};
        d[TRASTENDA_Q_COMMITTED] = (int32_t)a->qty;
        eng_stock_change(e, rec, d, &mv);
    }
    od->lines_head = list.head;
    od->alloc_count = rt->count;
    eng_order_set_state(e, o, TRASTENDA_ORDER_ALLOCATED);
    return o;
}

trastenda_err
eng_cmd_order_place(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r)
{
    trastenda_err err = eng_id_check(c->order_id, "order_id", true, r);
    if (err != TRASTENDA_OK) return err;
    uint64_t ph = eng_cmd_payload_hash(c);
    uint32_t o = eng_order_find(e, c->order_id);
    if (o != ENG_NONE) {
        /* The order id is the idempotency key (Design: docs/ENGINE.md, idempotency). */
        if (!eng_payload_matches(e->orders[o].payload_hash, ph, c))
            return eng_fail(r, TRASTENDA_E_IDEMPOTENCY_MISMATCH,
                            "order '%.*s' exists with a different payload", (int)c->order_id.len,
                            c->order_id.ptr);
        r->duplicate = 1;
        r->id = e->orders[o].no;
        r->state = e->orders[o].state;
        eng_order_result_allocs(e, o, r);
        return TRASTENDA_OK;
    }
    struct eng_want wants[TRASTENDA_LINES_MAX];
    uint32_t n_wants = 0;
    uint8_t channel = 0;
    struct eng_route rt;
    rt.count = 0;
    err = place_lines(e, c, r, wants, &n_wants);
    if (err == TRASTENDA_OK) err = eng_channel_resolve(e, c->channel, true, r, &channel);
    if (err == TRASTENDA_OK) err = eng_ship_to_check(c, true, r);
    if (err == TRASTENDA_OK)
        err = eng_route(e, wants, n_wants, channel, c->lat_e6, c->lon_e6, NULL, 0, r, &rt);
    if (err == TRASTENDA_OK && e->order_pool.top == 0)
        err = eng_fail(r, TRASTENDA_E_TABLE_FULL, "orders table full (%u); raise orders_max",
                       e->cfg.orders_max);
    if (err == TRASTENDA_OK && e->line_pool.top < rt.count)
        err = eng_fail(r, TRASTENDA_E_TABLE_FULL, "lines table full (%u); raise lines_max",
                       e->cfg.lines_max);
    if (err != TRASTENDA_OK) return err;
    o = place_apply(e, c, ph, channel, &rt);
    r->id = e->orders[o].no;
    r->state = e->orders[o].state;
    eng_order_result_allocs(e, o, r);
    return TRASTENDA_OK;
}

/* ---- pick, pack, ship, deliver, cancel ---- */

static trastenda_err
order_get(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r, uint32_t *o)
{
    trastenda_err err = eng_id_check(c->order_id, "order_id", true, r);
    if (err != TRASTENDA_OK) return err;
    *o = eng_order_find(e, c->order_id);
    if (*o == ENG_NONE)
        return eng_fail(r, TRASTENDA_E_UNKNOWN_ORDER, "order '%.*s' is unknown",
                        (int)c->order_id.len, c->order_id.ptr);
    r->id = e->orders[*o].no;
    r->state = e->orders[*o].state;
    return TRASTENDA_OK;
}

static const char *
state_name(uint8_t s)
{
    static const char *names[] = {"?",       "placed",    "allocated", "picking", "packed",
                                  "shipped", "delivered", "cancelled", "returned"};
    return s <= TRASTENDA_ORDER_RETURNED ? names[s] : "?";
}

/* The state an allocation must be below to take this step, and the state it moves to. */
static uint8_t
step_target(uint32_t op)
{
    switch (op) {
    case TRASTENDA_OP_ORDER_PICK:
        return TRASTENDA_ORDER_PICKING;
    case TRASTENDA_OP_ORDER_PACK:
        return TRASTENDA_ORDER_PACKED;
    default:
        return TRASTENDA_ORDER_SHIPPED;
    }
}

/* Checks a pick/pack/ship over the targeted allocations; changes nothing. */
static trastenda_err
step_check(trastenda_engine *e, const trastenda_cmd *c, uint32_t o, uint32_t loc,
           trastenda_result *r)
{
    const struct eng_order *od = &e->orders[o];
    uint8_t target = step_target(c->op);
    if (od->state == TRASTENDA_ORDER_CANCELLED || od->state >= TRASTENDA_ORDER_DELIVERED)
        return eng_fail(r, TRASTENDA_E_STATE, "order is %s", state_name(od->state));
    uint32_t hit = 0;
    for (uint32_t l = od->lines_head; l != ENG_NONE; l = e->lines[l].next) {
        const struct eng_line *ln = &e->lines[l];
        if (loc != ENG_NONE && ln->loc_ix != loc) continue;
        hit++;
        if (ln->state >= target)
            return eng_fail(r, TRASTENDA_E_STATE, "allocation is already %s, cannot go to %s",
                            state_name(ln->state), state_name(target));
        /* Only sellable units ship: unsellable ones stay behind (unsellable <= on_hand). */
        const int32_t *q = e->stock[ln->rec_ix].q;
        if (target == TRASTENDA_ORDER_SHIPPED &&
            q[TRASTENDA_Q_ON_HAND] - q[TRASTENDA_Q_UNSELLABLE] < ln->qty)
            return eng_fail(r, TRASTENDA_E_SHORT,
                            "cannot ship %d: on_hand is %d, of which %d unsellable", ln->qty,
                            q[TRASTENDA_Q_ON_HAND], q[TRASTENDA_Q_UNSELLABLE]);
    }
    if (hit == 0) return eng_fail(r, TRASTENDA_E_INVALID, "order has no allocation at location");
    return TRASTENDA_OK;
}

static void
ship_line(trastenda_engine *e, uint32_t o, uint32_t l)
{
    struct eng_line *ln = &e->lines[l];
    const struct eng_order *od = &e->orders[o];
    struct eng_move mv = {.move = TRASTENDA_MOVE_SHIP,
                          .ref_kind = TRASTENDA_REFK_ORDER,
                          .ref_id = od->no,
                          .ref = eng_id_str(&od->id)};
    uint32_t rec = ln->rec_ix;
    eng_stock_line_unlink(e, l);
    int32_t d[TRASTENDA_Q_COUNT_] = {0};
    d[TRASTENDA_Q_ON_HAND] = -ln->qty;
    d[TRASTENDA_Q_COMMITTED] = -ln->qty;
    eng_velocity_add(&e->vel[rec], eng_day(e->time_ms), (uint32_t)ln->qty);
    eng_stock_change(e, rec, d, &mv);
    ln->done = ln->qty;
}

static uint8_t
least_state(const trastenda_engine *e, uint32_t o)
{
    uint8_t least = TRASTENDA_ORDER_SHIPPED;
    for (uint32_t l = e->orders[o].lines_head; l != ENG_NONE; l = e->lines[l].next)
        least = TS_MIN(least, e->lines[l].state);
    return least;
}

static trastenda_err
order_step(trastenda_engine *e, const trastenda_cmd *c, uint32_t o, trastenda_result *r)
{
    uint32_t loc = ENG_NONE;
    trastenda_err err = TRASTENDA_OK;
    if (c->loc.id.len > 0 || c->loc.ix != TRASTENDA_IX_NONE)
        err = eng_location_resolve(e, &c->loc, "location", r, &loc);
    if (err == TRASTENDA_OK) err = step_check(e, c, o, loc, r);
    if (err != TRASTENDA_OK) return err;
    uint8_t target = step_target(c->op);
    for (uint32_t l = e->orders[o].lines_head; l != ENG_NONE; l = e->lines[l].next) {
        if (loc != ENG_NONE && e->lines[l].loc_ix != loc) continue;
        if (target == TRASTENDA_ORDER_SHIPPED) ship_line(e, o, l);
        e->lines[l].state = target;
    }
    eng_order_set_state(e, o, least_state(e, o));
    return TRASTENDA_OK;
}

static trastenda_err
order_cancel(trastenda_engine *e, uint32_t o, trastenda_result *r)
{
    struct eng_order *od = &e->orders[o];
    if (od->state == TRASTENDA_ORDER_CANCELLED || od->state >= TRASTENDA_ORDER_SHIPPED)
        return eng_fail(r, TRASTENDA_E_STATE, "cannot cancel an order that is %s",
                        state_name(od->state));
    for (uint32_t l = od->lines_head; l != ENG_NONE; l = e->lines[l].next)
        if (e->lines[l].state == TRASTENDA_ORDER_SHIPPED)
            return eng_fail(r, TRASTENDA_E_STATE, "cannot cancel: part of the order shipped");
    struct eng_move mv = {.move = TRASTENDA_MOVE_CANCEL,
                          .ref_kind = TRASTENDA_REFK_ORDER,
                          .ref_id = od->no,
                          .ref = eng_id_str(&od->id)};
    for (uint32_t l = od->lines_head; l != ENG_NONE; l = e->lines[l].next) {
        struct eng_line *ln = &e->lines[l];
        uint32_t rec = ln->rec_ix;
        eng_stock_line_unlink(e, l);
        int32_t d[TRASTENDA_Q_COUNT_] = {0};
        d[TRASTENDA_Q_COMMITTED] = -ln->qty;
        eng_stock_change(e, rec, d, &mv);
        ln->state = TRASTENDA_ORDER_CANCELLED;
    }
    eng_order_set_state(e, o, TRASTENDA_ORDER_CANCELLED);
    return TRASTENDA_OK;
}

trastenda_err
eng_cmd_order_step(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r)
{
    uint32_t o;
    trastenda_err err = order_get(e, c, r, &o);
    if (err != TRASTENDA_OK) return err;
    switch (c->op) {
    case TRASTENDA_OP_ORDER_CANCEL:
        err = order_cancel(e, o, r);
        break;
    case TRASTENDA_OP_ORDER_DELIVER:
        if (e->orders[o].state != TRASTENDA_ORDER_SHIPPED)
            return eng_fail(r, TRASTENDA_E_STATE, "cannot deliver an order that is %s",
                            state_name(e->orders[o].state));
        eng_order_set_state(e, o, TRASTENDA_ORDER_DELIVERED);
        break;
    default:
        err = order_step(e, c, o, r);
    }
    r->state = e->orders[o].state;
    return err;
}

/* ---- return ---- */

static int64_t
returnable(const trastenda_engine *e, uint32_t o, uint32_t sku)
{
    int64_t n = 0;
    for (uint32_t l = e->orders[o].lines_head; l != ENG_NONE; l = e->lines[l].next)
        if (e->lines[l].sku_ix == sku) n += e->lines[l].done - e->lines[l].returned;
    return n;
}

static trastenda_err
return_check(trastenda_engine *e, const trastenda_cmd *c, uint32_t o, trastenda_result *r,
             uint32_t *skus, uint32_t *locs)
{
    uint8_t st = e->orders[o].state;
    if (st != TRASTENDA_ORDER_SHIPPED && st != TRASTENDA_ORDER_DELIVERED)
        return eng_fail(r, TRASTENDA_E_STATE, "cannot return an order that is %s", state_name(st));
    trastenda_err lerr = eng_lines_check(c, r);
    if (lerr != TRASTENDA_OK) return lerr;
    uint32_t fresh = 0;
    for (uint32_t i = 0; i < c->line_count; i++) {
        const trastenda_line *ln = &c->lines[i];
        r->line = i;
        trastenda_err err = eng_sku_resolve(e, &ln->sku, "sku", r, &skus[i]);
        if (err == TRASTENDA_OK) err = eng_location_resolve(e, &ln->loc, "location", r, &locs[i]);
        if (err == TRASTENDA_OK) err = eng_qty_check(ln->qty, 1, TRASTENDA_LINE_QTY_MAX, "qty", r);
        if (err != TRASTENDA_OK) return err;
        int64_t asked = 0;
        for (uint32_t j = 0; j <= i; j++)
            if (skus[j] == skus[i]) asked += c->lines[j].qty;
        if (asked > returnable(e, o, skus[i]))
            return eng_fail(r, TRASTENDA_E_INVALID,
                            "return of %lld units of '%.*s' is more than the %lld shipped and not "
                            "yet returned",
                            (long long)asked, e->skus[skus[i]].id.len, e->skus[skus[i]].id.s,
                            (long long)returnable(e, o, skus[i]));
        uint32_t rec = eng_stock_find(e, skus[i], locs[i]);
        int64_t on_hand = rec == ENG_NONE ? 0 : e->stock[rec].q[TRASTENDA_Q_ON_HAND];
        if (on_hand + asked > TRASTENDA_QTY_MAX)
            return eng_fail(r, TRASTENDA_E_LIMIT, "on_hand would exceed %d", TRASTENDA_QTY_MAX);
        bool new_rec = rec == ENG_NONE;
        for (uint32_t j = 0; j < i && new_rec; j++)
            if (skus[j] == skus[i] && locs[j] == locs[i]) new_rec = false;
        fresh += new_rec;
    }
    r->line = UINT32_MAX;
    if (e->stock_count + fresh > e->cfg.stock_max)
        return eng_fail(r, TRASTENDA_E_TABLE_FULL, "stock table full (%u); raise stock_max",
                        e->cfg.stock_max);
    return TRASTENDA_OK;
}

trastenda_err
eng_cmd_order_return(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r)
{
    uint32_t o, skus[TRASTENDA_LINES_MAX], locs[TRASTENDA_LINES_MAX];
    trastenda_err err = order_get(e, c, r, &o);
    if (err == TRASTENDA_OK) err = return_check(e, c, o, r, skus, locs);
    if (err != TRASTENDA_OK) return err;
    struct eng_order *od = &e->orders[o];
    struct eng_move mv = {.move = TRASTENDA_MOVE_RETURN,
                          .ref_kind = TRASTENDA_REFK_ORDER,
                          .ref_id = od->no,
                          .ref = eng_id_str(&od->id)};
    for (uint32_t i = 0; i < c->line_count; i++) {
        int32_t qty = (int32_t)c->lines[i].qty;
        uint32_t rec;
        TS_ASSERT(eng_stock_get(e, skus[i], locs[i], r, &rec) == TRASTENDA_OK);
        int32_t d[TRASTENDA_Q_COUNT_] = {0};
        d[TRASTENDA_Q_ON_HAND] = qty;
        if (c->lines[i].flags & TRASTENDA_LINE_UNSELLABLE) d[TRASTENDA_Q_UNSELLABLE] = qty;
        eng_stock_change(e, rec, d, &mv);
        int32_t left = qty;
        for (uint32_t l = od->lines_head; l != ENG_NONE && left > 0; l = e->lines[l].next) {
            struct eng_line *ln = &e->lines[l];
            if (ln->sku_ix != skus[i]) continue;
            int32_t take = TS_MIN(left, ln->done - ln->returned);
            ln->returned += take;
            left -= take;
        }
        TS_ASSERT(left == 0);
    }
    bool all = true;
    for (uint32_t l = od->lines_head; l != ENG_NONE; l = e->lines[l].next)
        all &= e->lines[l].returned == e->lines[l].done;
    eng_order_set_state(e, o, all ? TRASTENDA_ORDER_RETURNED : od->state);
    r->state = od->state;
    return TRASTENDA_OK;
}
