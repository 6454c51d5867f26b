/*
 * engine/image.c - the state in pages: what storage's materializer writes and recovery loads.
 *
 * The materializer's engine marks, per table, the pages (runs of cfg.page_slots slots)
 * that applying log entries changed; a page is encoded from the table as it is now, with the
 * same post-image encoders as the log, so the materializer writes each changed page once however
 * often its records changed (a hot SKU touched 10,000 times costs one page write). Loading reads
 * the pages back through the log's own checked apply path (eng_apply_records).
 *
 * The retention queues of a loaded engine are rebuilt in (time, id) order: the writer's queues
 * are in time order already (batch times are monotone); within one millisecond a loaded node may
 * purge in another order than the writer did, which is harmless: purges are decided only by the
 * leader and arrive at every other node as records of its log.
 */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "eng.h"

const uint8_t trastenda_image_tables[TRASTENDA_IMAGE_TABLES] = {
    TRASTENDA_REC_CHANNEL, TRASTENDA_REC_LOCATION, TRASTENDA_REC_SKU,
    TRASTENDA_REC_STOCK,   TRASTENDA_REC_HOLD,     TRASTENDA_REC_ORDER,
    TRASTENDA_REC_PO,      TRASTENDA_REC_KEY,      TRASTENDA_REC_META};

static bool
table_known(uint8_t t)
{
    for (int i = 0; i < TRASTENDA_IMAGE_TABLES; i++)
        if (trastenda_image_tables[i] == t) return true;
    return false;
}

/* Slots of a table (capacity; channels and meta have one page). */
static uint32_t
table_slots(const trastenda_engine *e, uint8_t t)
{
    const trastenda_engine_config *c = &e->cfg;
    switch (t) {
    case TRASTENDA_REC_LOCATION:
        return c->locations_max;
    case TRASTENDA_REC_SKU:
        return c->skus_max;
    case TRASTENDA_REC_STOCK:
        return c->stock_max;
    case TRASTENDA_REC_HOLD:
        return c->holds_max;
    case TRASTENDA_REC_ORDER:
        return c->orders_max;
    case TRASTENDA_REC_PO:
        return c->pos_max;
    case TRASTENDA_REC_KEY:
        return c->keys_max;
    default:
        return 1;
    }
}

/* Slots below which a table's records are: the slots ever handed out. Reading the slots above
 * would map never-written memory (the kernel's zero page) that a later write must fault in again
 * with a copy and a TLB flush on every CPU of the process. */
static uint32_t
slots_used(const trastenda_engine *e, uint8_t t)
{
    switch (t) {
    case TRASTENDA_REC_LOCATION:
        return e->loc_count;
    case TRASTENDA_REC_SKU:
        return e->sku_count;
    case TRASTENDA_REC_STOCK:
        return e->stock_count;
    case TRASTENDA_REC_HOLD:
        return e->hold_pool.hw;
    case TRASTENDA_REC_ORDER:
        return e->order_pool.hw;
    case TRASTENDA_REC_PO:
        return e->po_pool.hw;
    case TRASTENDA_REC_KEY:
        return e->key_pool.hw;
    default:
        return table_slots(e, t);
    }
}

uint32_t
eng_page_count(const trastenda_engine *e, uint8_t t)
{
    return (uint32_t)(((uint64_t)table_slots(e, t) + e->cfg.page_slots - 1) >> e->page_shift);
}

uint32_t
trastenda_engine_page_slots(const trastenda_engine *e)
{
    return e->cfg.page_slots;
}

trastenda_err
trastenda_engine_pages_track(trastenda_engine *e)
{
    if (e == NULL) return TRASTENDA_E_INVALID;
    for (int i = 0; i < TRASTENDA_IMAGE_TABLES; i++) {
        uint8_t t = trastenda_image_tables[i];
        if (e->page_bits[t] != NULL) continue;
        uint32_t words = (eng_page_count(e, t) + 63) / 64;
        e->page_bits[t] = ts_alloc((size_t)words * sizeof(uint64_t));
        if (e->page_bits[t] == NULL) return TRASTENDA_E_NOMEM;
        memset(e->page_bits[t], 0, (size_t)words * sizeof(uint64_t));
        e->page_words[t] = words;
    }
    return TRASTENDA_OK;
}

void
eng_pages_fini(trastenda_engine *e)
{
    for (int t = 0; t < 16; t++)
        if (e->page_bits[t] != NULL)
            ts_free(e->page_bits[t], (size_t)e->page_words[t] * sizeof(uint64_t));
    eng_buf_fini(&e->page_buf);
}

/* Is slot ix of table t a live record? */
static bool
slot_live(const trastenda_engine *e, uint8_t t, uint32_t ix)
{
    switch (t) {
    case TRASTENDA_REC_LOCATION:
        return ix < e->loc_count;
    case TRASTENDA_REC_SKU:
        return ix < e->sku_count;
    case TRASTENDA_REC_STOCK:
        return ix < e->stock_count;
    case TRASTENDA_REC_HOLD:
        return e->holds[ix].in_use != 0;
    case TRASTENDA_REC_ORDER:
        return e->orders[ix].in_use != 0;
    case TRASTENDA_REC_PO:
        return e->pos[ix].in_use != 0;
    case TRASTENDA_REC_KEY:
        return e->keys[ix].in_use != 0;
    case TRASTENDA_REC_CHANNEL:
        return e->channel_count > 0;
    default: /* meta */
        return true;
    }
}

trastenda_err
trastenda_engine_pages_mark_table(trastenda_engine *e, uint8_t table)
{
    if (e == NULL || table >= 16 || !table_known(table) || e->page_bits[table] == NULL)
        return TRASTENDA_E_INVALID;
    uint32_t slots = slots_used(e, table);
    for (uint32_t ix = 0; ix < slots; ix++)
        if (slot_live(e, table, ix)) eng_page_touch(e, table, ix);
    return TRASTENDA_OK;
}

void
trastenda_engine_pages_mark_all(trastenda_engine *e)
{
    for (int i = 0; i < TRASTENDA_IMAGE_TABLES; i++)
        if (e->page_bits[trastenda_image_tables[i]] != NULL)
            (void)trastenda_engine_pages_mark_table(e, trastenda_image_tables[i]);
}

bool
trastenda_engine_load_keeps_slots(uint8_t table)
{
    /* Insert-only tables have no holes: page p's records load, in order, into the slots they
     * had. Holds, orders, POs and keys take their slots from a pool: packed from slot 0. */
    return table != TRASTENDA_REC_HOLD && table != TRASTENDA_REC_ORDER &&
           table != TRASTENDA_REC_PO && table != TRASTENDA_REC_KEY;
}

uint32_t
trastenda_engine_page_next(const trastenda_engine *e, uint8_t table, uint32_t from)
{
    if (e == NULL || table >= 16 || e->page_bits[table] == NULL) return UINT32_MAX;
    const uint64_t *bits = e->page_bits[table];
    for (uint32_t w = from / 64; w < e->page_words[table]; w++) {
        uint64_t v = bits[w];
        if (w == from / 64) v &= ~0ull << (from % 64);
        if (v != 0) return w * 64 + (uint32_t)__builtin_ctzll(v);
    }
    return UINT32_MAX;
}

/* The first line of a hold, order or PO slot. */
static uint32_t
lines_head_of(const trastenda_engine *e, uint8_t table, uint32_t ix)
{
    return table == TRASTENDA_REC_HOLD    ? e->holds[ix].lines_head
           : table == TRASTENDA_REC_ORDER ? e->orders[ix].lines_head
                                          : e->pos[ix].lines_head;
}

#define TOUCH_LINES_MAX 8u /* lines of one record worth touching */

/*
 * A page of holds, orders or POs names lines taken from one pool at different times, and each
 * line names a SKU whose id the encoding writes: one dependent miss after another per record.
 * Load them for the whole page first, one line of every record per round, so that the misses of
 * a round overlap (engine.c's touching ahead). Changes nothing (eng.h).
 */
uint64_t
eng_touch_lines(const trastenda_engine *e, uint8_t table, uint32_t lo, uint32_t hi)
{
    uint32_t cur[ENG_TOUCH_WINDOW], n = 0;
    uint64_t sum = 0;
    TS_ASSERT(hi - lo <= ENG_TOUCH_WINDOW);
    for (uint32_t ix = lo; ix < hi; ix++) {
        if (!slot_live(e, table, ix)) continue;
        uint32_t head = lines_head_of(e, table, ix);
        if (head != ENG_NONE) cur[n++] = head;
    }
    for (uint32_t round = 0; round < TOUCH_LINES_MAX && n > 0; round++) {
        uint32_t k = 0;
        for (uint32_t i = 0; i < n; i++) {
            const struct eng_line *l = &e->lines[cur[i]];
            sum += e->skus[l->sku_ix].id.len;
            if (l->next != ENG_NONE) cur[k++] = l->next;
        }
        n = k;
    }
    return sum;
}

trastenda_err
trastenda_engine_page_encode(trastenda_engine *e, uint8_t table, uint32_t page, const uint8_t **out,
                             size_t *len)
{
    if (e == NULL || out == NULL || len == NULL || table >= 16 || !table_known(table) ||
        page >= eng_page_count(e, table))
        return TRASTENDA_E_INVALID;
    struct eng_buf *b = &e->page_buf;
    b->len = 0;
    eng_buf_reserve(b, 4);
    b->len = 4;
    uint32_t n = 0;
    if (table == TRASTENDA_REC_META) {
        eng_enc_meta(e, b);
        n = 1;
    } else if (table == TRASTENDA_REC_CHANNEL) {
        for (uint32_t i = 0; i < e->channel_count; i++, n++)
            eng_enc_channel(e, b, i);
    } else {
        uint32_t lo = page << e->page_shift, hi = lo + e->cfg.page_slots;
        uint32_t slots = slots_used(e, table);
        if (hi > slots) hi = slots;
        if (lo > hi) lo = hi;
        if (table == TRASTENDA_REC_HOLD || table == TRASTENDA_REC_ORDER ||
            table == TRASTENDA_REC_PO) {
            volatile uint64_t touched = 0; /* the loads must happen */
            for (uint32_t w = lo; w < hi; w += ENG_TOUCH_WINDOW)
                touched += eng_touch_lines(e, table, w, TS_MIN(hi, w + ENG_TOUCH_WINDOW));
            (void)touched;
        }
        for (uint32_t ix = lo; ix < hi; ix++) {
            if (!slot_live(e, table, ix)) continue;
            switch (table) {
            case TRASTENDA_REC_LOCATION:
                eng_enc_location(e, b, ix);
                break;
            case TRASTENDA_REC_SKU:
                eng_enc_sku(e, b, ix);
                break;
            case TRASTENDA_REC_STOCK:
                eng_enc_stock(e, b, ix);
                break;
            case TRASTENDA_REC_HOLD:
                eng_enc_hold(e, b, ix);
                break;
            case TRASTENDA_REC_ORDER:
                eng_enc_order(e, b, ix);
                break;
            case TRASTENDA_REC_PO:
                eng_enc_po(e, b, ix);
                break;
            default:
                eng_enc_key(e, b, ix);
            }
            n++;
        }
    }
    struct eng_wr w = {b->p};
    wr_u32(&w, n);
    if (e->page_bits[table] != NULL) e->page_bits[table][page / 64] &= ~(1ull << (page % 64));
    *out = b->p;
    *len = n == 0 ? 0 : b->len;
    return TRASTENDA_OK;
}

/*
 * Huge pages while loading. A large state loaded into 4 KiB pages spends much of its time in page
 * faults and TLB misses. So the entries of the tables the state fills densely (their maps are
 * written whole at create, engine/map.c: mapped already) are advised onto transparent huge pages
 * until load_finish, then back to 4 KiB pages for what is not mapped yet: the huge pages the load
 * faulted in stay (fewer TLB misses later too), and the writer never faults a 2 MiB page in while
 * it serves (what trastenda_engine_config.huge_pages costs). In the `madvise` mode of transparent
 * huge pages, that is; in `always` mode the advice off takes the tables off huge pages for what
 * is not mapped yet, as it says. Densely: at least one record per 4 KiB of the table's map, where
 * 4 KiB pages would map most of it anyway (63% of its pages at exactly one record per 4 KiB); a
 * sparse table stays on 4 KiB pages, as huge ones would map up to 512 times more memory for it.
 * With a second thread faulting the memory in meanwhile (load_prefault), 10,000,000 stock records
 * load in 3.9 s against 7.4 s on 4 KiB pages (median of 5 opens; huge pages without that thread:
 * 6.8 s; docs/BENCHMARKS.md).
 */
static uint32_t
table_regions(trastenda_engine *e, uint8_t t, void **p, size_t *size, const struct eng_map **map)
{
    const trastenda_engine_config *c = &e->cfg;
    uint32_t n = 0;
#define REGION(ptr, count) (p[n] = (ptr), size[n++] = (size_t)(count) * sizeof(*(ptr)))
    switch (t) {
    case TRASTENDA_REC_SKU:
        REGION(e->skus, c->skus_max);
        *map = &e->sku_map;
        break;
    case TRASTENDA_REC_STOCK:
        REGION(e->stock, c->stock_max);
        REGION(e->vel, c->stock_max);
        *map = &e->stock_map;
        break;
    case TRASTENDA_REC_HOLD:
        REGION(e->holds, c->holds_max);
        *map = &e->hold_map;
        break;
    case TRASTENDA_REC_ORDER:
        REGION(e->orders, c->orders_max);
        *map = &e->order_map;
        break;
    case TRASTENDA_REC_PO:
        REGION(e->pos, c->pos_max);
        *map = &e->po_map;
        break;
    case TRASTENDA_REC_KEY:
        REGION(e->keys, c->keys_max);
        *map = &e->key_map;
        break;
    default:
        return 0;
    }
#undef REGION
    return n;
}

/* The density rule above: at least one record per 4 KiB of the map. */
static bool
map_dense(const struct eng_map *map, uint64_t records)
{
    return records >= eng_map_bytes(map) / 4096;
}

static void
table_advise(trastenda_engine *e, uint8_t t, bool on)
{
    void *p[2];
    size_t size[2];
    const struct eng_map *map;
    uint32_t n = table_regions(e, t, p, size, &map);
    for (uint32_t i = 0; i < n; i++)
        ts_advise_huge(p[i], size[i], on);
}

void
eng_load_huge_end(trastenda_engine *e)
{
    for (uint8_t t = 0; t < 16; t++)
        if ((e->load_huge & 1u << t) != 0) table_advise(e, t, false);
    e->load_huge = 0;
}

trastenda_err
trastenda_engine_load_expect(trastenda_engine *e, uint8_t table, uint64_t records)
{
    if (e == NULL || table >= 16 || !table_known(table) || e->seq != 0 || e->building)
        return TRASTENDA_E_INVALID;
    void *p[2];
    size_t size[2];
    const struct eng_map *map;
    if (e->cfg.huge_pages || table_regions(e, table, p, size, &map) == 0) return TRASTENDA_OK;
    if (!map_dense(map, records) || (e->load_huge & 1u << table) != 0) return TRASTENDA_OK;
    table_advise(e, table, true);
    e->load_huge |= (uint16_t)(1u << table);
    return TRASTENDA_OK;
}

trastenda_err
trastenda_engine_load_prefault(trastenda_engine *e, uint8_t table, uint64_t records)
{
    if (e == NULL || table >= 16 || !table_known(table)) return TRASTENDA_E_INVALID;
    void *p[2];
    size_t size[2];
    const struct eng_map *map;
    uint32_t n = table_regions(e, table, p, size, &map);
    uint64_t slots = table_slots(e, table);
    if (records > slots) records = slots;
    for (uint32_t i = 0; i < n; i++) /* the prefix the records fill; the map is written already */
        ts_prefault(p[i], size[i] / slots * records);
    return TRASTENDA_OK;
}

trastenda_err
trastenda_engine_load_page(trastenda_engine *e, uint8_t table, const uint8_t *page, size_t len)
{
    if (e == NULL || page == NULL || table >= 16 || !table_known(table) || e->seq != 0 ||
        e->building)
        return TRASTENDA_E_INVALID;
    if (len < 4) return TRASTENDA_E_CORRUPT;
    struct eng_rd r = {page, page + len, false};
    trastenda_entry_iter it = {page + 4, page + len, rd_u32(&r)};
    if (it.remaining > len) return TRASTENDA_E_CORRUPT;
    return eng_apply_records(e, it, table, 0, false);
}

/* ---- single records, for storage's archive ---- */

trastenda_err
trastenda_engine_hold_encode(trastenda_engine *e, uint64_t id, const uint8_t **out, size_t *len)
{
    if (e == NULL || out == NULL || len == NULL) return TRASTENDA_E_INVALID;
    uint32_t h = eng_hold_find(e, id);
    if (h == ENG_NONE) return TRASTENDA_E_UNKNOWN_HOLD;
    e->page_buf.len = 0;
    eng_enc_hold(e, &e->page_buf, h);
    *out = e->page_buf.p;
    *len = e->page_buf.len;
    return TRASTENDA_OK;
}

trastenda_err
trastenda_engine_order_encode(trastenda_engine *e, trastenda_str order_id, const uint8_t **out,
                              size_t *len)
{
    if (e == NULL || out == NULL || len == NULL || order_id.len == 0 ||
        order_id.len > TRASTENDA_ID_BYTES_MAX)
        return TRASTENDA_E_INVALID;
    uint32_t o = eng_order_find(e, order_id);
    if (o == ENG_NONE) return TRASTENDA_E_UNKNOWN_ORDER;
    e->page_buf.len = 0;
    eng_enc_order(e, &e->page_buf, o);
    *out = e->page_buf.p;
    *len = e->page_buf.len;
    return TRASTENDA_OK;
}

/* ---- retention queues in (time, id) order ---- */

static int
cmp_hold(const void *a, const void *b, void *ctx)
{
    const trastenda_engine *e = ctx;
    const struct eng_hold *x = &e->holds[*(const uint32_t *)a],
                          *y = &e->holds[*(const uint32_t *)b];
    if (x->resolved_ms != y->resolved_ms) return x->resolved_ms < y->resolved_ms ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int
cmp_order(const void *a, const void *b, void *ctx)
{
    const trastenda_engine *e = ctx;
    const struct eng_order *x = &e->orders[*(const uint32_t *)a],
                           *y = &e->orders[*(const uint32_t *)b];
    if (x->finished_ms != y->finished_ms) return x->finished_ms < y->finished_ms ? -1 : 1;
    return x->no < y->no ? -1 : x->no > y->no;
}

static int
cmp_po(const void *a, const void *b, void *ctx)
{
    const trastenda_engine *e = ctx;
    const struct eng_po *x = &e->pos[*(const uint32_t *)a], *y = &e->pos[*(const uint32_t *)b];
    if (x->updated_ms != y->updated_ms) return x->updated_ms < y->updated_ms ? -1 : 1;
    return eng_str_cmp(eng_id_str(&x->id), eng_id_str(&y->id));
}

static int
cmp_key(const void *a, const void *b, void *ctx)
{
    const trastenda_engine *e = ctx;
    const struct eng_key *x = &e->keys[*(const uint32_t *)a], *y = &e->keys[*(const uint32_t *)b];
    if (x->created_ms != y->created_ms) return x->created_ms < y->created_ms ? -1 : 1;
    return eng_str_cmp(eng_id_str(&x->key), eng_id_str(&y->key));
}

static trastenda_err
fifo_sort(trastenda_engine *e, struct eng_fifo *f, int (*cmp)(const void *, const void *, void *))
{
    uint32_t n = f->count;
    if (n < 2) return TRASTENDA_OK;
    uint32_t *v = ts_alloc((size_t)n * sizeof(uint32_t));
    if (v == NULL) return TRASTENDA_E_NOMEM;
    uint32_t i = 0;
    for (uint32_t x = f->head; x != ENG_NONE; x = f->next[x])
        v[i++] = x;
    TS_ASSERT(i == n);
    qsort_r(v, n, sizeof(uint32_t), cmp, e);
    for (i = 0; i < n; i++)
        eng_fifo_remove(f, v[i]);
    for (i = 0; i < n; i++)
        eng_fifo_push(f, v[i]);
    ts_free(v, (size_t)n * sizeof(uint32_t));
    return TRASTENDA_OK;
}

trastenda_err
trastenda_engine_load_finish(trastenda_engine *e, uint64_t seq, int64_t time_ms, uint64_t epoch)
{
    if (e == NULL || e->seq != 0 || e->building || seq == 0 || time_ms < 0 ||
        time_ms > TRASTENDA_TIME_MS_MAX)
        return TRASTENDA_E_INVALID;
    eng_load_huge_end(e); /* first: a failed sort must not leave the advice on */
    trastenda_err err = fifo_sort(e, &e->hold_fifo, cmp_hold);
    if (err == TRASTENDA_OK) err = fifo_sort(e, &e->order_fifo, cmp_order);
    if (err == TRASTENDA_OK) err = fifo_sort(e, &e->po_fifo, cmp_po);
    if (err == TRASTENDA_OK) err = fifo_sort(e, &e->key_fifo, cmp_key);
    if (err != TRASTENDA_OK) return err;
    e->seq = seq;
    e->time_ms = time_ms;
    if (epoch > e->cfg.epoch) e->cfg.epoch = epoch;
    e->last_entry_hash = 0;
    return TRASTENDA_OK;
}
