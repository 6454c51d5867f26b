/*
 * engine/engine.c - the engine's life and its batch loop: create/destroy (every table
 * preallocated), trastenda_engine_apply (maintenance, then each command, then the effects),
 * command dispatch with idempotency keys, and the full invariant check.
 *
 * Must not allocate after create (but for the entry buffers reaching a new high-water mark),
 * read a clock, or do I/O: time comes in with each batch.
 */
#include <string.h>

#include "eng.h"

void
trastenda_engine_config_default(trastenda_engine_config *cfg)
{
    TS_ASSERT(cfg != NULL);
    memset(cfg, 0, sizeof(*cfg));
    cfg->locations_max = 256;
    cfg->skus_max = 100000;
    cfg->stock_max = 1000000;
    cfg->holds_max = 1048576;
    cfg->orders_max = 262144;
    cfg->pos_max = 16384;
    cfg->keys_max = 2097152;
    cfg->lines_max = 2097152;
    cfg->batch_cmds_max = 8192;
    cfg->expire_per_batch_max = 1024;
    cfg->purge_per_batch_max = 1024;
    /* Memory holds what is live plus a window; storage keeps the rest (docs/ENGINE.md).
     * Sustained rates these defaults allow: table / window, e.g. 2,097,152 keys / 120 s =
     * 17,476 keyed commands/s; raise keys_max (about 150 bytes each) for more. */
    cfg->hold_retention_ms = 60000;
    cfg->order_retention_ms = 600000;
    cfg->key_retention_ms = 120000;
    cfg->review_days = 7;
    cfg->epoch = 1;
}

static trastenda_err
config_check(const trastenda_engine_config *c)
{
    if (c->locations_max == 0 || c->locations_max > TRASTENDA_LOCATIONS_MAX)
        return TRASTENDA_E_INVALID;
    uint32_t mins[] = {c->skus_max,           c->stock_max,      c->holds_max,
                       c->orders_max,         c->pos_max,        c->keys_max,
                       c->lines_max,          c->batch_cmds_max, c->expire_per_batch_max,
                       c->purge_per_batch_max};
    for (size_t i = 0; i < sizeof(mins) / sizeof(mins[0]); i++)
        if (mins[i] == 0 || mins[i] > (1u << 30)) return TRASTENDA_E_INVALID;
    /* The result arena holds 8 placements a command: keep its size within uint32. */
    if (c->batch_cmds_max > (1u << 20)) return TRASTENDA_E_INVALID;
    int64_t windows[] = {c->hold_retention_ms, c->order_retention_ms, c->key_retention_ms};
    for (size_t i = 0; i < 3; i++)
        if (windows[i] < 0 || windows[i] > TRASTENDA_RETENTION_MS_MAX) return TRASTENDA_E_INVALID;
    if (c->review_days > TRASTENDA_LEAD_DAYS_MAX) return TRASTENDA_E_INVALID;
    if (c->page_slots != 0 && !trastenda_page_slots_valid(c->page_slots))
        return TRASTENDA_E_INVALID;
    return TRASTENDA_OK;
}

#define ALLOC_ARRAY(ptr, n) ((ptr) = ts_alloc((size_t)(n) * sizeof(*(ptr)))) == NULL

static trastenda_err
tables_alloc(trastenda_engine *e)
{
    const trastenda_engine_config *c = &e->cfg;
    if (ALLOC_ARRAY(e->locs, c->locations_max) || ALLOC_ARRAY(e->skus, c->skus_max) ||
        ALLOC_ARRAY(e->stock, c->stock_max) || ALLOC_ARRAY(e->vel, c->stock_max) ||
        ALLOC_ARRAY(e->lines, c->lines_max) || ALLOC_ARRAY(e->holds, c->holds_max) ||
        ALLOC_ARRAY(e->heap, c->holds_max) || ALLOC_ARRAY(e->orders, c->orders_max) ||
        ALLOC_ARRAY(e->pos, c->pos_max) || ALLOC_ARRAY(e->keys, c->keys_max) ||
        ALLOC_ARRAY(e->route_loc_slot, c->locations_max) ||
        ALLOC_ARRAY(e->route_cand, c->locations_max) ||
        ALLOC_ARRAY(e->route_cand2, c->locations_max) ||
        ALLOC_ARRAY(e->route_sell, (size_t)c->locations_max * TRASTENDA_LINES_MAX) ||
        ALLOC_ARRAY(e->route_sell2, (size_t)c->locations_max * TRASTENDA_LINES_MAX))
        return TRASTENDA_E_NOMEM;
    e->arena_max = c->batch_cmds_max * 8u + (TRASTENDA_ALLOCS_MAX + TRASTENDA_LINES_MAX) * 2u;
    if (ALLOC_ARRAY(e->arena, e->arena_max)) return TRASTENDA_E_NOMEM;
    for (uint32_t i = 0; i < c->locations_max; i++)
        e->route_loc_slot[i] = ENG_NONE;
    for (uint32_t i = 0; i < c->holds_max; i++)
        e->holds[i].heap_pos = ENG_NONE;
    return TRASTENDA_OK;
}

static trastenda_err
indices_init(trastenda_engine *e)
{
    const trastenda_engine_config *c = &e->cfg;
    trastenda_err err = eng_map_init(&e->loc_map, c->locations_max);
    if (err == TRASTENDA_OK) err = eng_map_init(&e->sku_map, c->skus_max);
    if (err == TRASTENDA_OK) err = eng_map_init(&e->stock_map, c->stock_max);
    if (err == TRASTENDA_OK) err = eng_map_init(&e->hold_map, c->holds_max);
    if (err == TRASTENDA_OK) err = eng_map_init(&e->order_map, c->orders_max);
    if (err == TRASTENDA_OK) err = eng_map_init(&e->po_map, c->pos_max);
    if (err == TRASTENDA_OK) err = eng_map_init(&e->key_map, c->keys_max);
    if (err == TRASTENDA_OK) err = eng_bits_init(&e->low, c->stock_max);
    if (err == TRASTENDA_OK) err = eng_pool_init(&e->line_pool, c->lines_max);
    if (err == TRASTENDA_OK) err = eng_pool_init(&e->hold_pool, c->holds_max);
    if (err == TRASTENDA_OK) err = eng_pool_init(&e->order_pool, c->orders_max);
    if (err == TRASTENDA_OK) err = eng_pool_init(&e->po_pool, c->pos_max);
    if (err == TRASTENDA_OK) err = eng_pool_init(&e->key_pool, c->keys_max);
    if (err == TRASTENDA_OK) err = eng_fifo_init(&e->hold_fifo, c->holds_max);
    if (err == TRASTENDA_OK) err = eng_fifo_init(&e->order_fifo, c->orders_max);
    if (err == TRASTENDA_OK) err = eng_fifo_init(&e->po_fifo, c->pos_max);
    if (err == TRASTENDA_OK) err = eng_fifo_init(&e->key_fifo, c->keys_max);
    return err;
}

trastenda_err
trastenda_engine_create(const trastenda_engine_config *cfg, trastenda_engine **out)
{
    if (cfg == NULL || out == NULL) return TRASTENDA_E_INVALID;
    *out = NULL;
    trastenda_err err = config_check(cfg);
    if (err != TRASTENDA_OK) return err;
    trastenda_engine *e = ts_alloc(sizeof(*e));
    if (e == NULL) return TRASTENDA_E_NOMEM;
    e->cfg = *cfg;
    if (e->cfg.page_slots == 0) e->cfg.page_slots = TRASTENDA_PAGE_SLOTS;
    e->page_shift = (uint32_t)__builtin_ctz(e->cfg.page_slots);
    ts_alloc_huge_pages(cfg->huge_pages != 0);
    err = tables_alloc(e);
    if (err == TRASTENDA_OK) err = indices_init(e);
    ts_alloc_huge_pages(false);
    if (err != TRASTENDA_OK) {
        trastenda_engine_destroy(e);
        return err;
    }
    *out = e;
    return TRASTENDA_OK;
}

#define FREE_ARRAY(ptr, n)                                                                         \
    do {                                                                                           \
        if ((ptr) != NULL) ts_free((ptr), (size_t)(n) * sizeof(*(ptr)));                           \
    } while (0)

void
trastenda_engine_destroy(trastenda_engine *e)
{
    if (e == NULL) return;
    if (e->load_huge != 0) eng_load_huge_end(e);
    const trastenda_engine_config *c = &e->cfg;
    FREE_ARRAY(e->locs, c->locations_max);
    FREE_ARRAY(e->skus, c->skus_max);
    FREE_ARRAY(e->stock, c->stock_max);
    FREE_ARRAY(e->vel, c->stock_max);
    FREE_ARRAY(e->lines, c->lines_max);
    FREE_ARRAY(e->holds, c->holds_max);
    FREE_ARRAY(e->heap, c->holds_max);
    FREE_ARRAY(e->orders, c->orders_max);
    FREE_ARRAY(e->pos, c->pos_max);
    FREE_ARRAY(e->keys, c->keys_max);
    FREE_ARRAY(e->route_loc_slot, c->locations_max);
    FREE_ARRAY(e->route_cand, c->locations_max);
    FREE_ARRAY(e->route_cand2, c->locations_max);
    FREE_ARRAY(e->route_sell, (size_t)c->locations_max * TRASTENDA_LINES_MAX);
    FREE_ARRAY(e->route_sell2, (size_t)c->locations_max * TRASTENDA_LINES_MAX);
    FREE_ARRAY(e->arena, e->arena_max);
    struct eng_map *maps[] = {&e->loc_map,   &e->sku_map, &e->stock_map, &e->hold_map,
                              &e->order_map, &e->po_map,  &e->key_map};
    for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
        eng_map_fini(maps[i]);
    eng_bits_fini(&e->low);
    struct eng_pool *pools[] = {&e->line_pool, &e->hold_pool, &e->order_pool, &e->po_pool,
                                &e->key_pool};
    for (size_t i = 0; i < sizeof(pools) / sizeof(pools[0]); i++)
        eng_pool_fini(pools[i]);
    eng_fifo_fini(&e->hold_fifo, c->holds_max);
    eng_fifo_fini(&e->order_fifo, c->orders_max);
    eng_fifo_fini(&e->po_fifo, c->pos_max);
    eng_fifo_fini(&e->key_fifo, c->keys_max);
    eng_buf_fini(&e->entry);
    eng_buf_fini(&e->side);
    eng_buf_fini(&e->stock_refs);
    eng_pages_fini(e);
    for (int t = 0; t < 16; t++)
        eng_buf_fini(&e->dirty[t]);
    ts_free(e, sizeof(*e));
}

trastenda_alloc *
eng_arena_take(trastenda_engine *e, uint32_t n)
{
    /* The arena holds 8 placements per command on average; apply checks before each command that
     * its worst case fits (arena_need). */
    TS_ASSERT(e->arena_used + n <= e->arena_max);
    trastenda_alloc *a = &e->arena[e->arena_used];
    e->arena_used += n;
    return a;
}

/* ---- maintenance: retention and expiry, before the batch's commands ---- */

static void
maintenance(trastenda_engine *e)
{
    const trastenda_engine_config *c = &e->cfg;
    int64_t now = e->time_ms;
    for (uint32_t n = 0; n < c->purge_per_batch_max && e->hold_fifo.head != ENG_NONE; n++) {
        uint32_t h = e->hold_fifo.head;
        if (e->holds[h].resolved_ms + c->hold_retention_ms > now) break;
        eng_emit_removed(e, TRASTENDA_REC_HOLD_REMOVED, (trastenda_str){"", 0}, e->holds[h].id);
        eng_hold_free(e, h);
    }
    for (uint32_t n = 0; n < c->purge_per_batch_max && e->order_fifo.head != ENG_NONE; n++) {
        uint32_t o = e->order_fifo.head;
        if (e->orders[o].finished_ms + c->order_retention_ms > now) break;
        eng_emit_removed(e, TRASTENDA_REC_ORDER_REMOVED, eng_id_str(&e->orders[o].id), 0);
        eng_order_free(e, o);
    }
    for (uint32_t n = 0; n < c->purge_per_batch_max && e->po_fifo.head != ENG_NONE; n++) {
        uint32_t p = e->po_fifo.head;
        if (e->pos[p].updated_ms + c->order_retention_ms > now) break;
        eng_emit_removed(e, TRASTENDA_REC_PO_REMOVED, eng_id_str(&e->pos[p].id), 0);
        eng_po_free(e, p);
    }
    eng_keys_expire(e);
    eng_holds_expire(e);
}

static int64_t
due_min(int64_t a, int64_t b)
{
    return b < a ? b : a;
}

int64_t
trastenda_engine_next_due_ms(const trastenda_engine *e)
{
    const trastenda_engine_config *c = &e->cfg;
    int64_t due = INT64_MAX;
    if (e->heap_count > 0) due = e->heap[0].expires_ms;
    if (e->hold_fifo.head != ENG_NONE)
        due = due_min(due, e->holds[e->hold_fifo.head].resolved_ms + c->hold_retention_ms);
    if (e->order_fifo.head != ENG_NONE)
        due = due_min(due, e->orders[e->order_fifo.head].finished_ms + c->order_retention_ms);
    if (e->po_fifo.head != ENG_NONE)
        due = due_min(due, e->pos[e->po_fifo.head].updated_ms + c->order_retention_ms);
    if (e->key_fifo.head != ENG_NONE)
        due = due_min(due, e->keys[e->key_fifo.head].created_ms + c->key_retention_ms);
    return due;
}

/* ---- one command ---- */

static trastenda_err
dispatch(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r)
{
    switch (c->op) {
    case TRASTENDA_OP_LOCATION_UPSERT:
        return eng_cmd_location_upsert(e, c, r);
    case TRASTENDA_OP_LOCATION_DEACTIVATE:
        return eng_cmd_location_deactivate(e, c, r);
    case TRASTENDA_OP_SKU_UPSERT:
        return eng_cmd_sku_upsert(e, c, r);
    case TRASTENDA_OP_SKU_DEACTIVATE:
        return eng_cmd_sku_deactivate(e, c, r);
    case TRASTENDA_OP_RESERVE:
        return eng_cmd_reserve(e, c, r);
    case TRASTENDA_OP_EXTEND:
        return eng_cmd_extend(e, c, r);
    case TRASTENDA_OP_CONFIRM:
        return eng_cmd_confirm(e, c, r);
    case TRASTENDA_OP_RELEASE:
        return eng_cmd_release(e, c, r);
    case TRASTENDA_OP_ORDER_PLACE:
        return eng_cmd_order_place(e, c, r);
    case TRASTENDA_OP_ORDER_RETURN:
        return eng_cmd_order_return(e, c, r);
    case TRASTENDA_OP_ORDER_PICK:
    case TRASTENDA_OP_ORDER_PACK:
    case TRASTENDA_OP_ORDER_SHIP:
    case TRASTENDA_OP_ORDER_DELIVER:
    case TRASTENDA_OP_ORDER_CANCEL:
        return eng_cmd_order_step(e, c, r);
    case TRASTENDA_OP_PO_CREATE:
    case TRASTENDA_OP_PO_RECEIVE:
    case TRASTENDA_OP_PO_CLOSE:
        return eng_cmd_po(e, c, r);
    case TRASTENDA_OP_NOOP:
        return TRASTENDA_OK;
    default:
        return eng_cmd_stock(e, c, r);
    }
}

static void
result_init(trastenda_result *r, uint32_t op)
{
    r->code = TRASTENDA_OK;
    r->op = op;
    r->line = UINT32_MAX;
    r->duplicate = r->rule = r->state = 0;
    r->id = 0;
    r->value = 0;
    r->allocs = NULL;
    r->alloc_count = 0;
    memcpy(r->message, "ok", 3);
}

/* key_hash: eng_str_hash(c->key), computed by the touch pass whenever the key is hashable, which
 * a key passing eng_id_check is. */
static void
apply_one(trastenda_engine *e, const trastenda_cmd *c, uint32_t key_hash, trastenda_result *r)
{
    result_init(r, c->op);
    if (c->op < TRASTENDA_OP_LOCATION_UPSERT || c->op >= TRASTENDA_OP_COUNT_) {
        eng_fail(r, TRASTENDA_E_INVALID, "op must be 1..%d (got %u)", TRASTENDA_OP_COUNT_ - 1,
                 c->op);
        return;
    }
    if (eng_id_check(c->actor, "actor", false, r) != TRASTENDA_OK) return;
    bool keyed = c->key.len > 0 && c->op != TRASTENDA_OP_NOOP;
    uint64_t ph = 0;
    uint32_t kh = 0;
    if (keyed) {
        if (eng_id_check(c->key, "key", false, r) != TRASTENDA_OK) return;
        kh = key_hash;
        TS_DEBUG_ASSERT(kh == eng_str_hash(c->key));
        ph = eng_cmd_payload_hash(c);
        if (eng_key_replay(e, c, kh, ph, r)) return;
        if (e->key_pool.top == 0) {
            eng_fail(r, TRASTENDA_E_TABLE_FULL, "keys table full (%u); raise keys_max",
                     e->cfg.keys_max);
            return;
        }
    }
    e->cmd = c;
    trastenda_err err = dispatch(e, c, r);
    e->cmd = NULL;
    TS_ASSERT(err == r->code);
    if (err == TRASTENDA_OK && keyed && !r->duplicate) eng_key_remember(e, c, kh, ph, r);
}

/*
 * Touching ahead. A batch over large tables spends its time in cache and TLB misses (map slots,
 * records), taken one after another when each command finds its own. So before each chunk of
 * TOUCH_CHUNK commands two tight loops load what the chunk will use: first the map slots (the
 * stock record of each line, the hold of a hold id, the idempotency key, the order id, the slot
 * the chunk's next hold ids will take) and the SKUs, then the entries those slots name. The loads
 * of a loop do not depend on one another, so the core keeps many in flight. They are real loads:
 * on the machine we measured (a KVM guest with 4 KiB pages, where these misses are TLB misses
 * too) __builtin_prefetch of the records did not help, a load did (bench/engine.c). Then a
 * reserve's record's head line; a release's, confirm's or extend's expiry-heap entry and first
 * line, then that line's neighbours in its record's list (which unlinking it writes); routed
 * lines' SKU record chains. Nothing is changed: a wrong guess (a slot holding another entry, a
 * reserve that fails) is a wasted load, never a wrong result. The retention purges get the same
 * treatment (touch_purges, before maintenance).
 */
#define TOUCH_CHUNK      32u
#define TOUCH_LINES      4u    /* lines of one command worth touching */
#define TOUCH_PURGES_MAX 4096u /* removals touched ahead per table and batch */
#define TOUCH_CHAIN_MAX  16u   /* records of a routed line's chain touched ahead */

static bool
uses_hold_id(uint32_t op)
{
    return op == TRASTENDA_OP_RELEASE || op == TRASTENDA_OP_CONFIRM || op == TRASTENDA_OP_EXTEND;
}

static bool
has_lines(const trastenda_cmd *c)
{
    return (c->op == TRASTENDA_OP_RESERVE || c->op == TRASTENDA_OP_ORDER_PLACE) &&
           c->lines != NULL && c->line_count > 0;
}

static bool
str_hashable(trastenda_str s)
{
    return s.len > 0 && s.len <= TRASTENDA_ID_BYTES_MAX && s.ptr != NULL;
}

/* Stage 1: map slots and SKUs. hold_guess: the id the command's hold gets if it reserves. The
 * key's hash goes to key_hash (0 when the key cannot be hashed), for apply_one to reuse. */
static uint64_t
touch_slots(const trastenda_engine *e, const trastenda_cmd *c, uint64_t hold_guess,
            uint32_t *key_hash)
{
    uint64_t sum = 0;
    *key_hash = 0;
    if (str_hashable(c->key)) {
        *key_hash = eng_str_hash(c->key);
        sum += eng_map_home(&e->key_map, *key_hash);
    }
    if (uses_hold_id(c->op)) sum += eng_map_home(&e->hold_map, eng_hold_hash(c->hold_id));
    if (!has_lines(c)) return sum;
    if (c->op == TRASTENDA_OP_RESERVE) sum += eng_map_home(&e->hold_map, eng_hold_hash(hold_guess));
    if (c->op == TRASTENDA_OP_ORDER_PLACE && str_hashable(c->order_id))
        sum += eng_map_home(&e->order_map, eng_str_hash(c->order_id));
    for (uint32_t i = 0; i < c->line_count && i < TOUCH_LINES; i++) {
        const trastenda_line *ln = &c->lines[i];
        if (ln->sku.ix >= e->sku_count) continue;
        const struct eng_sku *k = &e->skus[ln->sku.ix];
        sum += k->id.len + k->first_stock; /* the id (ledger, post-images); flags and chain */
        if (ln->loc.ix < e->loc_count)
            sum += eng_map_home(&e->stock_map, eng_stock_hash(ln->sku.ix, ln->loc.ix));
    }
    return sum;
}

/* Stage 2: the entries the slots of stage 1 name. Routed lines (no location) leave the first
 * record of their SKU's chain in chain[] for stage 4; located reserves their stock records
 * in recs[] for stage 3. */
static uint64_t
touch_entries(const trastenda_engine *e, const trastenda_cmd *c, uint32_t *chain, uint32_t *n_chain,
              uint32_t *recs, uint32_t *n_recs, uint32_t *held, uint32_t *n_held)
{
    uint64_t sum = 0;
    if (uses_hold_id(c->op)) {
        uint32_t h = eng_map_home_entry(&e->hold_map, eng_hold_hash(c->hold_id));
        if (h < e->cfg.holds_max) {
            sum += e->holds[h].lines_head;
            held[(*n_held)++] = h;
        }
    }
    if (!has_lines(c)) return sum;
    for (uint32_t i = 0; i < c->line_count && i < TOUCH_LINES; i++) {
        const trastenda_line *ln = &c->lines[i];
        if (ln->sku.ix >= e->sku_count) continue;
        if (ln->loc.ix >= e->loc_count) {
            chain[(*n_chain)++] = e->skus[ln->sku.ix].first_stock;
            continue;
        }
        uint32_t rec = eng_map_home_entry(&e->stock_map, eng_stock_hash(ln->sku.ix, ln->loc.ix));
        if (rec >= e->stock_count) continue;
        sum += (uint64_t)e->stock[rec].seq + (uint64_t)e->vel[rec].day; /* vel: post-image */
        if (c->op == TRASTENDA_OP_RESERVE) recs[(*n_recs)++] = rec;
    }
    return sum;
}

/* Stage 3, reserves: a new line goes to the head of its stock record's list of lines, and the
 * line there now (an older hold's, anywhere in the pool) learns its new neighbour. */
static uint64_t
touch_heads(const trastenda_engine *e, const uint32_t *recs, uint32_t n)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t head = e->stock[recs[i]].lines_head;
        if (head < e->cfg.lines_max) sum += e->lines[head].rec_prev;
    }
    return sum;
}

/* Stage 3, commands naming a hold: its entry in the expiry heap (anywhere in it: removing or
 * moving it compares there, with its parent and children) and its first line; the line's number
 * goes to lines[] for stage 4. */
static uint64_t
touch_held(const trastenda_engine *e, const uint32_t *held, uint32_t n, uint32_t *lines,
           uint32_t *n_lines)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct eng_hold *hd = &e->holds[held[i]];
        uint32_t pos = hd->heap_pos, count = e->heap_count;
        if (pos < count) { /* the entry, then its parent and children: the heap's last entry
                            * takes its place and is compared with them */
            sum += (uint64_t)e->heap[pos].expires_ms;
            if (pos > 0) sum += (uint64_t)e->heap[(pos - 1) / 2].expires_ms;
            if (2 * pos + 1 < count) sum += (uint64_t)e->heap[2 * pos + 1].expires_ms;
        }
        if (hd->lines_head < e->cfg.lines_max) {
            sum += e->lines[hd->lines_head].rec_ix;
            lines[(*n_lines)++] = hd->lines_head;
        }
    }
    return sum;
}

/* Stage 4, those lines: unlinking one from its stock record's list writes its neighbours there
 * (lines of other holds, anywhere in the pool) and the record; the hold's next line too, and the
 * SKU whose id the ledger entry and the post-images write. */
static uint64_t
touch_unlinks(const trastenda_engine *e, const uint32_t *lines, uint32_t n)
{
    uint64_t sum = 0;
    uint32_t max = e->cfg.lines_max;
    for (uint32_t i = 0; i < n; i++) {
        const struct eng_line *l = &e->lines[lines[i]];
        if (l->rec_prev < max) sum += e->lines[l->rec_prev].rec_next;
        if (l->rec_next < max) sum += e->lines[l->rec_next].rec_prev;
        if (l->next < max) sum += e->lines[l->next].rec_ix;
        if (l->rec_ix < e->stock_count) sum += (uint64_t)e->stock[l->rec_ix].seq;
        if (l->sku_ix < e->sku_count) sum += e->skus[l->sku_ix].id.len; /* ledger, post-images */
    }
    return sum;
}

/* Stage 4, routed lines: routing walks each SKU's record chain, then placing looks up the map
 * slot of each (SKU, location) it chose. One link of every chain per round, so that the loads of
 * a round overlap; the slot of every candidate, since any may be chosen. */
static uint64_t
touch_chains(const trastenda_engine *e, uint32_t *chain, uint32_t n)
{
    uint64_t sum = 0;
    for (uint32_t round = 0; round < TOUCH_CHAIN_MAX; round++) {
        bool any = false;
        for (uint32_t k = 0; k < n; k++) {
            if (chain[k] >= e->stock_count) continue;
            const struct eng_stock *s = &e->stock[chain[k]];
            sum += eng_map_home(&e->stock_map, eng_stock_hash(s->sku_ix, s->loc_ix));
            sum += (uint64_t)e->vel[chain[k]].day; /* the post-image, when chosen */
            chain[k] = s->next_in_sku;
            any = true;
        }
        if (!any) break;
    }
    return sum;
}

static uint64_t
touch_cmds(const trastenda_engine *e, const trastenda_cmd *cmds, uint32_t from, uint32_t to,
           uint32_t key_hash[TOUCH_CHUNK])
{
    uint32_t chain[TOUCH_CHUNK * TOUCH_LINES], n_chain = 0;
    uint32_t recs[TOUCH_CHUNK * TOUCH_LINES], n_recs = 0;
    uint32_t held[TOUCH_CHUNK], n_held = 0, lines[TOUCH_CHUNK], n_lines = 0;
    uint64_t sum = 0, guess = e->next_hold_id + 1;
    TS_ASSERT(to - from <= TOUCH_CHUNK);
    for (uint32_t i = from; i < to; i++) {
        sum += touch_slots(e, &cmds[i], guess, &key_hash[i - from]);
        guess += cmds[i].op == TRASTENDA_OP_RESERVE;
    }
    for (uint32_t i = from; i < to; i++)
        sum += touch_entries(e, &cmds[i], chain, &n_chain, recs, &n_recs, held, &n_held);
    sum += touch_heads(e, recs, n_recs);
    sum += touch_held(e, held, n_held, lines, &n_lines);
    sum += touch_unlinks(e, lines, n_lines);
    return sum + touch_chains(e, chain, n_chain);
}

/* The map slots the due hold and key removals at the heads of their FIFOs will search. */
static uint64_t
touch_purges(const trastenda_engine *e)
{
    const trastenda_engine_config *c = &e->cfg;
    uint32_t max = TS_MIN(c->purge_per_batch_max, TOUCH_PURGES_MAX), n = 0;
    uint64_t sum = 0;
    for (uint32_t h = e->hold_fifo.head; h != ENG_NONE && n < max; h = e->hold_fifo.next[h], n++) {
        if (e->holds[h].resolved_ms + c->hold_retention_ms > e->time_ms) break;
        sum += eng_map_home(&e->hold_map, eng_hold_hash(e->holds[h].id));
    }
    n = 0;
    for (uint32_t k = e->key_fifo.head; k != ENG_NONE && n < max; k = e->key_fifo.next[k], n++) {
        if (e->keys[k].created_ms + c->key_retention_ms > e->time_ms) break;
        sum += eng_map_home(&e->key_map, e->keys[k].hash); /* kept with the key: no rehash */
    }
    return sum;
}

/* Placements a command may add to the result arena at most. */
static uint32_t
arena_need(const trastenda_cmd *c)
{
    return c->op == TRASTENDA_OP_RESERVE || c->op == TRASTENDA_OP_ORDER_PLACE ||
                   c->op == TRASTENDA_OP_CONFIRM
               ? TRASTENDA_ALLOCS_MAX + TRASTENDA_LINES_MAX
               : 0;
}

trastenda_err
trastenda_engine_apply(trastenda_engine *e, int64_t now_ms, const trastenda_cmd *cmds, uint32_t n,
                       trastenda_result *results, trastenda_batch_out *out)
{
    if (e == NULL || out == NULL || (n > 0 && (cmds == NULL || results == NULL)))
        return TRASTENDA_E_INVALID;
    if (n > e->cfg.batch_cmds_max) return TRASTENDA_E_BATCH_TOO_BIG;
    if (now_ms < e->time_ms || now_ms > TRASTENDA_TIME_MS_MAX) return TRASTENDA_E_TIME;
    e->seq++;
    e->time_ms = now_ms;
    e->last_entry_hash = 0;
    e->arena_used = 0;
    eng_effects_begin(e);
    volatile uint64_t touched = touch_purges(e); /* volatile: the loads must happen */
    uint32_t key_hash[TOUCH_CHUNK];
    maintenance(e);
    for (uint32_t i = 0; i < n; i++) {
        if (i % TOUCH_CHUNK == 0)
            touched += touch_cmds(e, cmds, i, TS_MIN(n, i + TOUCH_CHUNK), key_hash);
        if (e->arena_used + arena_need(&cmds[i]) > e->arena_max) {
            /* Placements of large orders filled the arena: the rest waits for the next batch. */
            result_init(&results[i], cmds[i].op);
            eng_fail(&results[i], TRASTENDA_E_BATCH_TOO_BIG,
                     "batch too large for its results; retry this command");
            continue;
        }
        apply_one(e, &cmds[i], key_hash[i % TOUCH_CHUNK], &results[i]);
    }
    (void)touched;
    eng_effects_end(e, out);
    e->cmds_since_check += n;
#ifdef TS_DEBUG
    if (e->cmds_since_check >= 1000) {
        e->cmds_since_check = 0;
        trastenda_engine_check(e);
    }
#endif
    return TRASTENDA_OK;
}

uint64_t
trastenda_engine_seq(const trastenda_engine *e)
{
    return e->seq;
}

uint64_t
trastenda_engine_epoch(const trastenda_engine *e)
{
    return e->cfg.epoch;
}

trastenda_err
trastenda_engine_set_epoch(trastenda_engine *e, uint64_t epoch)
{
    if (e == NULL || epoch <= e->cfg.epoch) return TRASTENDA_E_INVALID;
    e->cfg.epoch = epoch;
    return TRASTENDA_OK;
}

int64_t
trastenda_engine_time_ms(const trastenda_engine *e)
{
    return e->time_ms;
}
