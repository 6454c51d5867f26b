/*
 * engine/po.c - purchase orders: create (incoming goes up per line), receive lines partially or
 * fully (incoming -> on_hand), close (remaining incoming dropped). A fully received PO closes by
 * itself. Closed POs wait in a FIFO for the order retention window, then leave memory.
 */
#include <string.h>

#include "eng.h"

static int
po_eq(const void *ctx, uint32_t ix, const void *key)
{
    const trastenda_engine *e = ctx;
    return e->pos[ix].in_use && eng_id_eq(&e->pos[ix].id, *(const trastenda_str *)key);
}

uint32_t
eng_po_find(const trastenda_engine *e, trastenda_str id)
{
    uint32_t ix;
    ENG_MAP_FIND(&e->po_map, eng_str_hash(id), po_eq, e, &id, ix);
    return ix;
}

/* A closed purchase order enters its retention window (Design note 6). */
void
eng_po_retain(trastenda_engine *e, uint32_t p)
{
    eng_fifo_push(&e->po_fifo, p);
    eng_dirty_requeue(e, TRASTENDA_REC_PO, p, &e->pos[p].dirty);
}

void
eng_po_free(trastenda_engine *e, uint32_t p)
{
    struct eng_po *po = &e->pos[p];
    TS_ASSERT(po->in_use);
    eng_lines_free(e, po->lines_head);
    if (eng_fifo_has(&e->po_fifo, p)) eng_fifo_remove(&e->po_fifo, p);
    eng_map_remove(&e->po_map, eng_str_hash(eng_id_str(&po->id)), p);
    po->in_use = 0;
    eng_pool_give(&e->po_pool, p);
}

struct po_line {
    uint32_t sku, loc;
};

/* Resolves the lines; no (sku, location) twice. */
static trastenda_err
po_lines(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r, struct po_line *pl)
{
    trastenda_err lerr = eng_lines_check(c, r);
    if (lerr != TRASTENDA_OK) return lerr;
    for (uint32_t i = 0; i < c->line_count; i++) {
        const trastenda_line *ln = &c->lines[i];
        r->line = i;
        trastenda_err err = eng_sku_resolve(e, &ln->sku, "sku", r, &pl[i].sku);
        if (err == TRASTENDA_OK) err = eng_location_resolve(e, &ln->loc, "location", r, &pl[i].loc);
        if (err == TRASTENDA_OK) err = eng_qty_check(ln->qty, 1, TRASTENDA_QTY_MAX, "qty", r);
        if (err != TRASTENDA_OK) return err;
        for (uint32_t j = 0; j < i; j++)
            if (pl[j].sku == pl[i].sku && pl[j].loc == pl[i].loc)
                return eng_fail(r, TRASTENDA_E_INVALID, "line %u repeats line %u", i, j);
    }
    r->line = UINT32_MAX;
    return TRASTENDA_OK;
}

static void
po_move(trastenda_engine *e, uint32_t rec, uint32_t p, uint8_t move, int32_t incoming,
        int32_t on_hand)
{
    struct eng_move mv = {
        .move = move, .ref_kind = TRASTENDA_REFK_PO, .ref = eng_id_str(&e->pos[p].id)};
    int32_t d[TRASTENDA_Q_COUNT_] = {0};
    d[TRASTENDA_Q_INCOMING] = incoming;
    d[TRASTENDA_Q_ON_HAND] = on_hand;
    eng_stock_change(e, rec, d, &mv);
}

static trastenda_err
po_create_check(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r,
                struct po_line *pl)
{
    if (eng_po_find(e, c->po_id) != ENG_NONE)
        return eng_fail(r, TRASTENDA_E_DUPLICATE, "purchase order '%.*s' already exists",
                        (int)c->po_id.len, c->po_id.ptr);
    trastenda_err err = po_lines(e, c, r, pl);
    if (err != TRASTENDA_OK) return err;
    uint32_t fresh = 0;
    for (uint32_t i = 0; i < c->line_count; i++) {
        uint32_t rec = eng_stock_find(e, pl[i].sku, pl[i].loc);
        fresh += rec == ENG_NONE;
        int64_t inc = rec == ENG_NONE ? 0 : e->stock[rec].q[TRASTENDA_Q_INCOMING];
        if (inc + c->lines[i].qty > TRASTENDA_QTY_MAX)
            return eng_fail(r, TRASTENDA_E_LIMIT, "incoming would exceed %d", TRASTENDA_QTY_MAX);
    }
    if (e->po_pool.top == 0)
        return eng_fail(r, TRASTENDA_E_TABLE_FULL, "purchase orders table full (%u); raise pos_max",
                        e->cfg.pos_max);
    if (e->line_pool.top < c->line_count)
        return eng_fail(r, TRASTENDA_E_TABLE_FULL, "lines table full (%u); raise lines_max",
                        e->cfg.lines_max);
    if (e->stock_count + fresh > e->cfg.stock_max)
        return eng_fail(r, TRASTENDA_E_TABLE_FULL, "stock table full (%u); raise stock_max",
                        e->cfg.stock_max);
    return TRASTENDA_OK;
}

static trastenda_err
po_create(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r)
{
    struct po_line pl[TRASTENDA_LINES_MAX];
    trastenda_err err = po_create_check(e, c, r, pl);
    if (err != TRASTENDA_OK) return err;
    uint32_t p = eng_pool_take(&e->po_pool);
    struct eng_po *po = &e->pos[p];
    memset(po, 0, sizeof(*po));
    eng_id_set(&po->id, c->po_id);
    po->open = 1;
    po->in_use = 1;
    po->created_ms = po->updated_ms = e->time_ms;
    po->lines_head = ENG_NONE;
    eng_map_insert(&e->po_map, eng_str_hash(c->po_id), p);
    struct eng_line_list list = {ENG_NONE, ENG_NONE};
    for (uint32_t i = 0; i < c->line_count; i++) {
        eng_line_append(e, &list, ENG_LINE_PO, p, pl[i].sku, pl[i].loc, (int32_t)c->lines[i].qty,
                        0);
        uint32_t rec;
        TS_ASSERT(eng_stock_get(e, pl[i].sku, pl[i].loc, r, &rec) == TRASTENDA_OK);
        po_move(e, rec, p, TRASTENDA_MOVE_PO_CREATE, (int32_t)c->lines[i].qty, 0);
    }
    po->lines_head = list.head;
    po->line_count = c->line_count;
    eng_dirty_mark(e, TRASTENDA_REC_PO, p, &po->dirty);
    return TRASTENDA_OK;
}

static uint32_t
po_line_find(const trastenda_engine *e, uint32_t p, uint32_t sku, uint32_t loc)
{
    for (uint32_t l = e->pos[p].lines_head; l != ENG_NONE; l = e->lines[l].next)
        if (e->lines[l].sku_ix == sku && e->lines[l].loc_ix == loc) return l;
    return ENG_NONE;
}

static void
po_close(trastenda_engine *e, uint32_t p)
{
    struct eng_po *po = &e->pos[p];
    for (uint32_t l = po->lines_head; l != ENG_NONE; l = e->lines[l].next) {
        const struct eng_line *ln = &e->lines[l];
        if (ln->qty == ln->done) continue;
        uint32_t rec = eng_stock_find(e, ln->sku_ix, ln->loc_ix);
        po_move(e, rec, p, TRASTENDA_MOVE_PO_CLOSE, -(ln->qty - ln->done), 0);
    }
    po->open = 0;
    eng_po_retain(e, p);
}

static trastenda_err
po_receive(trastenda_engine *e, const trastenda_cmd *c, uint32_t p, trastenda_result *r)
{
    struct po_line pl[TRASTENDA_LINES_MAX];
    uint32_t ln_ix[TRASTENDA_LINES_MAX];
    trastenda_err err = po_lines(e, c, r, pl);
    if (err != TRASTENDA_OK) return err;
    for (uint32_t i = 0; i < c->line_count; i++) {
        r->line = i;
        ln_ix[i] = po_line_find(e, p, pl[i].sku, pl[i].loc);
        if (ln_ix[i] == ENG_NONE)
            return eng_fail(r, TRASTENDA_E_INVALID,
                            "purchase order has no line for this sku at "
                            "this location");
        const struct eng_line *ln = &e->lines[ln_ix[i]];
        if (c->lines[i].qty > ln->qty - ln->done)
            return eng_fail(r, TRASTENDA_E_INVALID, "receives %lld but only %d are still expected",
                            (long long)c->lines[i].qty, ln->qty - ln->done);
        uint32_t rec = eng_stock_find(e, pl[i].sku, pl[i].loc);
        if (e->stock[rec].q[TRASTENDA_Q_ON_HAND] + c->lines[i].qty > TRASTENDA_QTY_MAX)
            return eng_fail(r, TRASTENDA_E_LIMIT, "on_hand would exceed %d", TRASTENDA_QTY_MAX);
    }
    r->line = UINT32_MAX;
    bool complete = true;
    for (uint32_t i = 0; i < c->line_count; i++) {
        struct eng_line *ln = &e->lines[ln_ix[i]];
        int32_t q = (int32_t)c->lines[i].qty;
        ln->done += q;
        uint32_t rec = eng_stock_find(e, pl[i].sku, pl[i].loc);
        po_move(e, rec, p, TRASTENDA_MOVE_PO_RECEIVE, -q, q);
    }
    for (uint32_t l = e->pos[p].lines_head; l != ENG_NONE; l = e->lines[l].next)
        complete &= e->lines[l].done == e->lines[l].qty;
    if (complete) po_close(e, p);
    return TRASTENDA_OK;
}

trastenda_err
eng_cmd_po(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r)
{
    trastenda_err err = eng_id_check(c->po_id, "po_id", true, r);
    if (err != TRASTENDA_OK) return err;
    if (c->op == TRASTENDA_OP_PO_CREATE) return po_create(e, c, r);
    uint32_t p = eng_po_find(e, c->po_id);
    if (p == ENG_NONE)
        return eng_fail(r, TRASTENDA_E_UNKNOWN_PO, "purchase order '%.*s' is unknown",
                        (int)c->po_id.len, c->po_id.ptr);
    if (!e->pos[p].open)
        return eng_fail(r, TRASTENDA_E_STATE, "purchase order '%.*s' is closed", (int)c->po_id.len,
                        c->po_id.ptr);
    if (c->op == TRASTENDA_OP_PO_RECEIVE)
        err = po_receive(e, c, p, r);
    else
        po_close(e, p);
    if (err != TRASTENDA_OK) return err;
    e->pos[p].updated_ms = e->time_ms;
    eng_dirty_mark(e, TRASTENDA_REC_PO, p, &e->pos[p].dirty);
    return TRASTENDA_OK;
}
