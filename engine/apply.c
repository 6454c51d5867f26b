/*
 * engine/apply.c - reading log entries and applying them: the one path that recovery,
 * replication and the materializer share (trastenda_engine_apply_entry), and the public readers
 * of entries, ledger entries and events (include/trastenda/log.h).
 *
 * An entry is read twice: first every record is decoded and checked for shape (bounds, string
 * lengths, enum ranges) without touching the engine, so a malformed entry changes nothing; then
 * the post-images replace the records they name. Post-images make the apply idempotent: the same
 * entry applied twice leaves the same state.
 */
#include <string.h>

#include "codec.h"
#include "eng.h"

struct img_line {
    trastenda_str sku, loc; /* empty when the line refers to a stock post-image */
    uint32_t ref;           /* that post-image's ordinal in the entry; ENG_NONE: sku and loc */
    int32_t qty, done, returned;
    uint8_t state;
};

/* How the post-images being read were written (docs/LOG.md): times relative to base_ms; lines
 * may refer to one of the `stocks` stock post-images read so far only when refs is set (log
 * entries; never pages or single records). */
struct img_ctx {
    int64_t base_ms;
    int32_t base_day;
    bool refs;
    uint32_t stocks;
};

/* Single records (the archive's) stand alone: times from 0, no references. */
static const struct img_ctx ALONE = {0, 0, false, 0};

/* Lines of a hold, order or PO post-image. */
static uint32_t
rd_lines(struct eng_rd *r, const struct img_ctx *c, struct img_line *out, uint32_t max)
{
    uint32_t n = rd_uv32(r);
    if (n > max) {
        r->bad = true;
        return 0;
    }
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        struct img_line *l = &out[i];
        l->ref = ENG_NONE;
        l->sku = l->loc = (trastenda_str){"", 0};
        if (rd_need(r, 1) && *r->p == LINE_REF) {
            r->p++;
            uint64_t k = rd_uv(r);
            if (!c->refs || k >= c->stocks) r->bad = true;
            l->ref = (uint32_t)k;
        } else {
            l->sku = rd_str(r, TRASTENDA_ID_BYTES_MAX);
            l->loc = rd_str(r, TRASTENDA_ID_BYTES_MAX);
            if (l->sku.len == 0 || l->loc.len == 0) r->bad = true;
        }
        l->qty = rd_sv32(r);
        l->done = rd_sv32(r);
        l->returned = rd_sv32(r);
        l->state = rd_u8(r);
        if (l->qty < 0 || l->done < 0 || l->returned < 0 || l->state > TRASTENDA_ORDER_RETURNED)
            r->bad = true;
    }
    return n;
}

static uint32_t
need_sku(trastenda_engine *e, trastenda_str id)
{
    uint32_t ix = eng_sku_find(e, id);
    TS_ASSERT(ix != ENG_NONE); /* fail-stop: the entry names a SKU nobody created */
    return ix;
}

static uint32_t
need_loc(trastenda_engine *e, trastenda_str id)
{
    uint32_t ix = eng_location_find(e, id);
    TS_ASSERT(ix != ENG_NONE);
    return ix;
}

/* The record of (sku, loc), created when the entry is the first to name it. */
static uint32_t
rec_of(trastenda_engine *e, uint32_t sku, uint32_t loc)
{
    uint32_t rec = eng_stock_find(e, sku, loc);
    if (rec == ENG_NONE) {
        rec = eng_stock_insert(e, sku, loc);
        eng_page_touch(e, TRASTENDA_REC_STOCK, rec);
    }
    return rec;
}

static uint32_t
need_rec(trastenda_engine *e, const struct img_line *l)
{
    return rec_of(e, need_sku(e, l->sku), need_loc(e, l->loc));
}

/* Records touched ahead together (the touch ahead is described below, before touch_slots). */
#define APPLY_TOUCH 32u

/* What the touch ahead found for one record of the chunk (guesses, checked before any use). */
struct touch {
    uint8_t type;      /* HOLD or KEY (removals included): their map; 0: none */
    bool line;         /* a stock record's (SKU, location), or a hold's first line's: below */
    uint32_t hash;     /* of the hold id or the key, for their maps */
    uint32_t sku_hash; /* of the line's SKU id */
    uint32_t sku;      /* the SKU the home slot names, ENG_NONE when none */
    uint32_t loc;      /* apply pass: the location's index, ENG_NONE when unknown */
    uint32_t rec;      /* apply pass: the record the stock map's home slot names */
    uint32_t hold;     /* apply pass: the hold the hold map's home slot names */
};

/*
 * The check pass. Besides the shape of every record it checks what records refer to: a SKU or
 * location must exist in the engine or be defined earlier in the same entry, a channel must be
 * the next one or an existing one with the same name. A corrupt entry that is well formed but
 * names what does not exist is refused (E_CORRUPT) before anything changes, never an abort.
 * Ids defined by the entry go into a small hash set, allocated only for entries that define some
 * (catalog changes).
 */
struct pass {
    bool apply;
    bool page; /* a state page into a fresh engine: each record must be new (put_hold etc.) */
    uint32_t next_channel;
    trastenda_str channels[TRASTENDA_CHANNELS_MAX];
    trastenda_str *defs; /* SKU and location ids the entry defines; type in the hash */
    uint8_t *def_type;
    uint32_t *slots; /* index + 1 */
    uint32_t n_defs, cap, mask;
    struct touch touch[APPLY_TOUCH]; /* the current chunk's */
    const struct touch *guess;       /* the record being read, NULL when none */
    struct img_ctx ctx;
    uint32_t *stock_recs; /* apply pass: the record of each stock post-image (ctx.refs only) */
};

static uint32_t first_line_rec(trastenda_engine *e, const struct pass *ps,
                               const struct img_line *l);

/* Replaces the lines of an owner with the image's; links those that count on their record. The
 * first line uses what the touch ahead found for it, when it names the same SKU. */
static uint32_t
lines_put(trastenda_engine *e, const struct pass *ps, uint32_t head, const struct img_line *img,
          uint32_t n, uint8_t kind, uint32_t owner,
          bool (*linked)(const struct img_line *, const void *), const void *ctx)
{
    eng_lines_free(e, head);
    struct eng_line_list list = {ENG_NONE, ENG_NONE};
    for (uint32_t i = 0; i < n; i++) {
        uint32_t rec = img[i].ref != ENG_NONE ? ps->stock_recs[img[i].ref]
                       : i == 0               ? first_line_rec(e, ps, &img[0])
                                              : need_rec(e, &img[i]);
        uint32_t l = eng_line_append(e, &list, kind, owner, e->stock[rec].sku_ix,
                                     e->stock[rec].loc_ix, img[i].qty, img[i].state);
        e->lines[l].done = img[i].done;
        e->lines[l].returned = img[i].returned;
        if (linked(&img[i], ctx)) eng_stock_line_link(e, rec, l);
    }
    return list.head;
}

static uint32_t
def_hash(uint8_t type, trastenda_str id)
{
    return eng_str_hash(id) ^ (type * 0x9e3779b9u);
}

static bool
def_has(const struct pass *ps, uint8_t type, trastenda_str id)
{
    if (ps->n_defs == 0) return false;
    for (uint32_t i = def_hash(type, id) & ps->mask, n = 0; n <= ps->mask; n++) {
        uint32_t d = ps->slots[i];
        if (d == 0) return false;
        if (ps->def_type[d - 1] == type && eng_str_cmp(ps->defs[d - 1], id) == 0) return true;
        i = (i + 1) & ps->mask;
    }
    return false;
}

/* Room for every SKU and location record of the entry (counted before the check pass). */
static trastenda_err
defs_init(struct pass *ps, uint32_t n)
{
    ps->cap = n;
    if (n == 0) return TRASTENDA_OK;
    uint32_t slots = 16;
    while (slots < 2 * n)
        slots <<= 1;
    ps->mask = slots - 1;
    ps->defs = ts_alloc((size_t)n * sizeof(*ps->defs));
    ps->def_type = ts_alloc(n);
    ps->slots = ts_alloc((size_t)slots * sizeof(uint32_t));
    return ps->defs && ps->def_type && ps->slots ? TRASTENDA_OK : TRASTENDA_E_NOMEM;
}

static void
defs_fini(struct pass *ps)
{
    ts_free(ps->defs, (size_t)ps->cap * sizeof(*ps->defs));
    ts_free(ps->def_type, ps->cap);
    ts_free(ps->slots, ((size_t)ps->mask + 1) * sizeof(uint32_t));
}

static void
def_add(struct pass *ps, uint8_t type, trastenda_str id)
{
    if (def_has(ps, type, id)) return;
    TS_ASSERT(ps->n_defs < ps->cap);
    uint32_t i = def_hash(type, id) & ps->mask;
    while (ps->slots[i] != 0)
        i = (i + 1) & ps->mask;
    ps->defs[ps->n_defs] = id;
    ps->def_type[ps->n_defs] = type;
    ps->slots[i] = ++ps->n_defs;
}

/* In the check pass: does the SKU / location exist, or does the entry define it before? */
static bool
known(const trastenda_engine *e, const struct pass *ps, uint8_t type, trastenda_str id)
{
    if (type == TRASTENDA_REC_SKU && eng_sku_find(e, id) != ENG_NONE) return true;
    if (type == TRASTENDA_REC_LOCATION && eng_location_find(e, id) != ENG_NONE) return true;
    return def_has(ps, type, id);
}

/* The SKU the touch ahead guessed for this record's (first) line, when it is the one the line
 * names (ids are unique: the same id is the same SKU); ENG_NONE otherwise. */
static uint32_t
guess_sku(const trastenda_engine *e, const struct pass *ps, trastenda_str id)
{
    const struct touch *g = ps->guess;
    if (g == NULL || !g->line || g->sku == ENG_NONE) return ENG_NONE;
    return eng_id_eq(&e->skus[g->sku].id, id) ? g->sku : ENG_NONE;
}

static void
check_lines(const trastenda_engine *e, const struct pass *ps, struct eng_rd *r,
            const struct img_line *lines, uint32_t n)
{
    for (uint32_t i = 0; i < n && !r->bad && !ps->apply; i++)
        if (lines[i].ref != ENG_NONE) /* rd_lines checked it names an earlier stock image */
            continue;
        else if (!((i == 0 && guess_sku(e, ps, lines[0].sku) != ENG_NONE) ||
                   known(e, ps, TRASTENDA_REC_SKU, lines[i].sku)) ||
                 !known(e, ps, TRASTENDA_REC_LOCATION, lines[i].loc))
            r->bad = true;
}

/* need_rec for a record's (first) line: the SKU, location and record the touch ahead guessed,
 * each when it is the one named, a search otherwise. */
static uint32_t
first_line_rec(trastenda_engine *e, const struct pass *ps, const struct img_line *l)
{
    uint32_t sku = guess_sku(e, ps, l->sku);
    if (sku == ENG_NONE) return need_rec(e, l);
    const struct touch *g = ps->guess;
    uint32_t loc =
        g->loc != ENG_NONE && eng_id_eq(&e->locs[g->loc].id, l->loc) ? g->loc : need_loc(e, l->loc);
    if (g->rec != ENG_NONE && e->stock[g->rec].sku_ix == sku && e->stock[g->rec].loc_ix == loc)
        return g->rec;
    return rec_of(e, sku, loc);
}

/* ---- per record type ---- */

static void
put_channel(trastenda_engine *e, struct eng_rd *r, struct pass *ps)
{
    uint8_t ix = rd_u8(r);
    trastenda_str name = rd_str(r, TRASTENDA_ID_BYTES_MAX);
    if (ix >= TRASTENDA_CHANNELS_MAX || name.len == 0) r->bad = true;
    if (!r->bad && !ps->apply) {
        /* An existing channel under its own name, or the next one under a new name. */
        if (ix < e->channel_count)
            r->bad = !eng_id_eq(&e->channels[ix], name);
        else if (ix == ps->next_channel && eng_channel_find(e, name) == ENG_NONE) {
            for (uint32_t i = e->channel_count; i < ix; i++)
                if (eng_str_cmp(ps->channels[i], name) == 0) r->bad = true;
            ps->channels[ix] = name;
            ps->next_channel++;
        } else
            r->bad = true;
    }
    if (r->bad || !ps->apply) return;
    if (ix < e->channel_count) {
        TS_ASSERT(eng_id_eq(&e->channels[ix], name));
        return;
    }
    TS_ASSERT(ix == e->channel_count);
    eng_channel_insert(e, name);
    eng_page_touch(e, TRASTENDA_REC_CHANNEL, 0);
}

static void
put_location(trastenda_engine *e, struct eng_rd *r, struct pass *ps)
{
    trastenda_str id = rd_str(r, TRASTENDA_ID_BYTES_MAX);
    trastenda_str name = rd_str(r, TRASTENDA_NAME_BYTES_MAX);
    int32_t lat = rd_sv32(r), lon = rd_sv32(r), pri = rd_sv32(r);
    uint32_t channels = rd_uv32(r);
    uint8_t active = rd_u8(r);
    if (id.len == 0 || lat < -90000000 || lat > 90000000 || lon < -180000000 || lon > 180000000)
        r->bad = true;
    if (!r->bad && !ps->apply) def_add(ps, TRASTENDA_REC_LOCATION, id);
    if (r->bad || !ps->apply) return;
    uint32_t ix = eng_location_find(e, id);
    if (ix == ENG_NONE) ix = eng_location_insert(e, id);
    eng_page_touch(e, TRASTENDA_REC_LOCATION, ix);
    struct eng_location *l = &e->locs[ix];
    eng_name_set(&l->name, name);
    l->lat_e6 = lat;
    l->lon_e6 = lon;
    l->priority = pri;
    eng_location_set_vec(l);
    __atomic_store_n(&l->channels, channels, __ATOMIC_RELEASE);
    __atomic_store_n(&l->active, active, __ATOMIC_RELEASE);
}

static void
put_sku(trastenda_engine *e, struct eng_rd *r, struct pass *ps)
{
    trastenda_str id = rd_str(r, TRASTENDA_ID_BYTES_MAX);
    trastenda_str name = rd_str(r, TRASTENDA_NAME_BYTES_MAX);
    int32_t v[4];
    for (int i = 0; i < 4; i++)
        v[i] = rd_sv32(r);
    uint8_t active = rd_u8(r);
    if (id.len == 0 || v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0) r->bad = true;
    if (!r->bad && !ps->apply) def_add(ps, TRASTENDA_REC_SKU, id);
    if (r->bad || !ps->apply) return;
    uint32_t ix = eng_sku_find(e, id);
    if (ix == ENG_NONE) ix = eng_sku_insert(e, id);
    eng_page_touch(e, TRASTENDA_REC_SKU, ix);
    struct eng_sku *s = &e->skus[ix];
    eng_name_set(&s->name, name);
    s->reorder_point = v[0];
    s->reorder_qty = v[1];
    s->lead_days = v[2];
    s->safety_default = v[3];
    s->active = active;
}

static void
put_stock(trastenda_engine *e, struct eng_rd *r, struct pass *ps)
{
    trastenda_str sku = rd_str(r, TRASTENDA_ID_BYTES_MAX);
    trastenda_str loc = rd_str(r, TRASTENDA_ID_BYTES_MAX);
    int32_t q[TRASTENDA_Q_COUNT_] = {0};
    uint8_t mask = rd_u8(r);
    for (int i = 0; i < TRASTENDA_Q_COUNT_; i++) {
        if (!(mask & (1u << i))) continue;
        q[i] = rd_sv32(r);
        if (q[i] <= 0 || q[i] > TRASTENDA_QTY_MAX) r->bad = true;
    }
    uint32_t flags = rd_uv32(r);
    struct eng_velocity v = {0};
    uint8_t units = rd_u8(r);
    if (units & 0x80) {
        int64_t d = rd_sv(r); /* bounded before the sum: no overflow */
        int64_t day = d > -(1ll << 40) && d < (1ll << 40) ? d + ps->ctx.base_day : 0;
        if (day == 0 || day < INT32_MIN || day > INT32_MAX) r->bad = true;
        v.day = r->bad ? 0 : (int32_t)day;
    }
    for (int i = 0; i < TRASTENDA_VELOCITY_DAYS; i++)
        if (units & (1u << i)) {
            v.units[i] = rd_uv32(r);
            if (v.units[i] == 0) r->bad = true;
        }
    if (sku.len == 0 || loc.len == 0 || flags > 7 || mask >= 1u << TRASTENDA_Q_COUNT_ ||
        (units & 0x7f) >= 1u << TRASTENDA_VELOCITY_DAYS)
        r->bad = true;
    struct img_line l = {.sku = sku, .loc = loc, .ref = ENG_NONE};
    check_lines(e, ps, r, &l, 1);
    if (r->bad) return;
    uint32_t k = ps->ctx.stocks++;
    if (!ps->apply) return;
    uint32_t rec = first_line_rec(e, ps, &l);
    if (ps->stock_recs != NULL) ps->stock_recs[k] = rec;
    eng_page_touch(e, TRASTENDA_REC_STOCK, rec);
    struct eng_stock *s = &e->stock[rec];
    eng_stock_publish(s, q);
    s->flags = flags;
    eng_bits_set(&e->low, rec, (flags & ENG_STOCK_LOW) != 0);
    /* Written only when it changes: most records never ship, and their velocity's page may be
     * the zero page still (the touch ahead reads it), which a write replaces with a TLB
     * shootdown on every CPU (engine/map.c says more). */
    if (memcmp(&e->vel[rec], &v, sizeof(v)) != 0) e->vel[rec] = v;
}

static bool
hold_line_linked(const struct img_line *l, const void *ctx)
{
    (void)l;
    return *(const uint8_t *)ctx == TRASTENDA_HOLD_OPEN;
}

/* A hold post-image up to its lines; the id 0 when malformed. */
static void
rd_hold_head(struct eng_rd *r, const struct img_ctx *c, struct eng_hold *img)
{
    memset(img, 0, sizeof(*img));
    img->id = rd_uv(r);
    img->state = rd_u8(r);
    img->channel = rd_u8(r);
    uint8_t flags = rd_u8(r);
    img->has_ship_to = (flags & IMG_SHIP_TO) != 0;
    img->created_ms = rd_time(r, c->base_ms);
    img->expires_ms = rd_time(r, img->created_ms);
    if (flags & IMG_RESOLVED) img->resolved_ms = rd_time(r, img->created_ms);
    if (flags & IMG_ORDER_NO) img->order_no = rd_uv(r);
    if (flags & IMG_COORDS) {
        img->lat_e6 = rd_sv32(r);
        img->lon_e6 = rd_sv32(r);
    }
    if (img->id == 0 || img->state < TRASTENDA_HOLD_OPEN || img->state > TRASTENDA_HOLD_EXPIRED ||
        img->channel > TRASTENDA_CHANNELS_MAX || flags > IMG_HOLD_FLAGS ||
        ((flags & IMG_RESOLVED) && img->resolved_ms == 0) ||
        ((flags & IMG_ORDER_NO) && img->order_no == 0) ||
        ((flags & IMG_COORDS) && img->lat_e6 == 0 && img->lon_e6 == 0))
        r->bad = true;
    if (r->bad) img->id = 0;
}

static void
put_hold(trastenda_engine *e, struct eng_rd *r, struct pass *ps)
{
    struct eng_hold img;
    struct img_line lines[TRASTENDA_ALLOCS_MAX];
    rd_hold_head(r, &ps->ctx, &img);
    uint32_t n = rd_lines(r, &ps->ctx, lines, TRASTENDA_ALLOCS_MAX);
    check_lines(e, ps, r, lines, n);
    if (ps->page && !ps->apply && !r->bad) r->bad = eng_hold_find(e, img.id) != ENG_NONE;
    if (r->bad || !ps->apply) return;
    uint32_t h = eng_hold_find(e, img.id);
    if (h == ENG_NONE) {
        h = eng_pool_take(&e->hold_pool);
        TS_ASSERT(h != ENG_NONE); /* fail-stop: this node's holds_max is below the leader's */
        memset(&e->holds[h], 0, sizeof(e->holds[h]));
        e->holds[h].lines_head = ENG_NONE;
        e->holds[h].heap_pos = ENG_NONE;
        e->holds[h].id = img.id;
        e->holds[h].in_use = 1;
        eng_map_insert(&e->hold_map, eng_hold_hash(img.id), h);
    }
    eng_page_touch(e, TRASTENDA_REC_HOLD, h);
    struct eng_hold *hd = &e->holds[h];
    /* A resolved hold already waiting keeps its place (Design note 6). */
    bool keep = eng_fifo_has(&e->hold_fifo, h) && img.state != TRASTENDA_HOLD_OPEN &&
                hd->resolved_ms == img.resolved_ms;
    if (hd->heap_pos != ENG_NONE) eng_hold_heap_remove(e, h);
    if (!keep && eng_fifo_has(&e->hold_fifo, h)) eng_fifo_remove(&e->hold_fifo, h);
    hd->lines_head =
        lines_put(e, ps, hd->lines_head, lines, n, ENG_LINE_HOLD, h, hold_line_linked, &img.state);
    hd->line_count = n;
    hd->state = img.state;
    hd->channel = img.channel;
    hd->has_ship_to = img.has_ship_to;
    hd->created_ms = img.created_ms;
    hd->expires_ms = img.expires_ms;
    hd->resolved_ms = img.resolved_ms;
    hd->order_no = img.order_no;
    hd->lat_e6 = img.lat_e6;
    hd->lon_e6 = img.lon_e6;
    if (hd->state == TRASTENDA_HOLD_OPEN)
        eng_hold_heap_push(e, h);
    else if (!keep)
        eng_hold_retain(e, h);
}

static bool
order_line_linked(const struct img_line *l, const void *ctx)
{
    (void)ctx;
    return l->state >= TRASTENDA_ORDER_ALLOCATED && l->state <= TRASTENDA_ORDER_PACKED;
}

/* An order post-image up to its lines: its id, empty when malformed. */
static trastenda_str
rd_order_head(struct eng_rd *r, const struct img_ctx *c, struct eng_order *img)
{
    memset(img, 0, sizeof(*img));
    trastenda_str id = rd_str(r, TRASTENDA_ID_BYTES_MAX);
    img->no = rd_uv(r);
    img->payload_hash = rd_u64(r);
    img->hold_id = rd_uv(r);
    img->state = rd_u8(r);
    img->rule = rd_u8(r);
    img->channel = rd_u8(r);
    uint8_t flags = rd_u8(r);
    img->created_ms = rd_time(r, c->base_ms);
    img->updated_ms = rd_time(r, img->created_ms);
    if (flags & IMG_RESOLVED) img->finished_ms = rd_time(r, img->created_ms);
    if (flags & IMG_COORDS) {
        img->lat_e6 = rd_sv32(r);
        img->lon_e6 = rd_sv32(r);
    }
    if (id.len == 0 || img->state < TRASTENDA_ORDER_PLACED ||
        img->state > TRASTENDA_ORDER_RETURNED || img->rule > TRASTENDA_RULE_GREEDY ||
        img->channel > TRASTENDA_CHANNELS_MAX || (flags & ~IMG_ORDER_FLAGS) != 0 ||
        ((flags & IMG_RESOLVED) && img->finished_ms == 0) ||
        ((flags & IMG_COORDS) && img->lat_e6 == 0 && img->lon_e6 == 0))
        r->bad = true;
    return r->bad ? (trastenda_str){"", 0} : id;
}

static void
put_order(trastenda_engine *e, struct eng_rd *r, struct pass *ps)
{
    struct eng_order img;
    struct img_line lines[TRASTENDA_ALLOCS_MAX];
    trastenda_str id = rd_order_head(r, &ps->ctx, &img);
    uint32_t n = rd_lines(r, &ps->ctx, lines, TRASTENDA_ALLOCS_MAX);
    check_lines(e, ps, r, lines, n);
    if (ps->page && !ps->apply && !r->bad) r->bad = eng_order_find(e, id) != ENG_NONE;
    if (r->bad || !ps->apply) return;
    uint32_t o = eng_order_find(e, id);
    if (o == ENG_NONE) {
        o = eng_pool_take(&e->order_pool);
        TS_ASSERT(o != ENG_NONE); /* fail-stop: this node's orders_max is below the leader's */
        memset(&e->orders[o], 0, sizeof(e->orders[o]));
        eng_id_set(&e->orders[o].id, id);
        e->orders[o].lines_head = ENG_NONE;
        e->orders[o].in_use = 1;
        eng_map_insert(&e->order_map, eng_str_hash(id), o);
    }
    eng_page_touch(e, TRASTENDA_REC_ORDER, o);
    struct eng_order *od = &e->orders[o];
    /* A finished order keeps its place in the retention FIFO while its window is unchanged (a
     * partial return after delivery): the writer did not move it either, and the FIFO must stay
     * in finish order for the purge to stop at the first order not yet due. */
    bool keep = eng_fifo_has(&e->order_fifo, o) && eng_order_finished(img.state) &&
                od->state == img.state && od->finished_ms == img.finished_ms;
    if (!keep && eng_fifo_has(&e->order_fifo, o)) eng_fifo_remove(&e->order_fifo, o);
    od->lines_head =
        lines_put(e, ps, od->lines_head, lines, n, ENG_LINE_ORDER, o, order_line_linked, NULL);
    od->alloc_count = n;
    od->no = img.no;
    od->payload_hash = img.payload_hash;
    od->hold_id = img.hold_id;
    od->created_ms = img.created_ms;
    od->updated_ms = img.updated_ms;
    od->finished_ms = img.finished_ms;
    od->lat_e6 = img.lat_e6;
    od->lon_e6 = img.lon_e6;
    od->state = img.state;
    od->rule = img.rule;
    od->channel = img.channel;
    if (eng_order_finished(od->state) && !keep) eng_order_retain(e, o);
}

static bool
never_linked(const struct img_line *l, const void *ctx)
{
    (void)l;
    (void)ctx;
    return false;
}

static void
put_po(trastenda_engine *e, struct eng_rd *r, struct pass *ps)
{
    struct img_line lines[TRASTENDA_LINES_MAX];
    trastenda_str id = rd_str(r, TRASTENDA_ID_BYTES_MAX);
    uint8_t open = rd_u8(r);
    int64_t created = rd_time(r, ps->ctx.base_ms);
    int64_t updated = rd_time(r, created);
    uint32_t n = rd_lines(r, &ps->ctx, lines, TRASTENDA_LINES_MAX);
    if (id.len == 0 || open > 1) r->bad = true;
    check_lines(e, ps, r, lines, n);
    if (ps->page && !ps->apply && !r->bad) r->bad = eng_po_find(e, id) != ENG_NONE;
    if (r->bad || !ps->apply) return;
    uint32_t p = eng_po_find(e, id);
    if (p == ENG_NONE) {
        p = eng_pool_take(&e->po_pool);
        TS_ASSERT(p != ENG_NONE);
        memset(&e->pos[p], 0, sizeof(e->pos[p]));
        eng_id_set(&e->pos[p].id, id);
        e->pos[p].lines_head = ENG_NONE;
        e->pos[p].in_use = 1;
        eng_map_insert(&e->po_map, eng_str_hash(id), p);
    }
    eng_page_touch(e, TRASTENDA_REC_PO, p);
    struct eng_po *po = &e->pos[p];
    bool keep = eng_fifo_has(&e->po_fifo, p) && !open; /* Design note (6) */
    if (!keep && eng_fifo_has(&e->po_fifo, p)) eng_fifo_remove(&e->po_fifo, p);
    po->lines_head = lines_put(e, ps, po->lines_head, lines, n, ENG_LINE_PO, p, never_linked, NULL);
    po->line_count = n;
    po->open = open;
    po->created_ms = created;
    po->updated_ms = updated;
    if (!open && !keep) eng_po_retain(e, p);
}

static void
put_key(trastenda_engine *e, struct eng_rd *r, struct pass *ps)
{
    struct eng_key img;
    trastenda_str key = rd_str(r, TRASTENDA_ID_BYTES_MAX);
    img.payload_hash = rd_u64(r);
    img.created_ms = rd_time(r, ps->ctx.base_ms);
    img.result_id = rd_uv(r);
    img.result_value = rd_sv(r);
    img.op = rd_u8(r);
    img.rule = rd_u8(r);
    img.state = rd_u8(r);
    if (key.len == 0 || img.op == 0 || img.op >= TRASTENDA_OP_COUNT_) r->bad = true;
    if (ps->page && !ps->apply && !r->bad)
        r->bad = eng_key_find_hashed(e, key, eng_str_hash(key)) != ENG_NONE;
    if (r->bad || !ps->apply) return;
    uint32_t hash = eng_str_hash(key);
    uint32_t k = eng_key_find_hashed(e, key, hash);
    img.hash = hash;
    if (k != ENG_NONE) eng_page_touch(e, TRASTENDA_REC_KEY, k);
    if (k == ENG_NONE) {
        k = eng_pool_take(&e->key_pool);
        TS_ASSERT(k != ENG_NONE);
        eng_id_set(&img.key, key);
        img.in_use = 1;
        img.dirty = 0;
        e->keys[k] = img;
        eng_page_touch(e, TRASTENDA_REC_KEY, k);
        eng_map_insert(&e->key_map, hash, k);
        eng_key_retain(e, k);
        return;
    }
    img.key = e->keys[k].key;
    img.in_use = 1;
    img.dirty = 0;
    e->keys[k] = img;
}

static void
put_removed(trastenda_engine *e, uint8_t type, struct eng_rd *r, struct pass *ps)
{
    uint64_t id = 0;
    trastenda_str s = {"", 0};
    if (type == TRASTENDA_REC_HOLD_REMOVED)
        id = rd_uv(r);
    else
        s = rd_str(r, TRASTENDA_ID_BYTES_MAX);
    if (r->bad || !ps->apply) return;
    uint32_t ix;
    switch (type) {
    case TRASTENDA_REC_HOLD_REMOVED:
        ix = eng_hold_find(e, id);
        if (ix == ENG_NONE) return;
        eng_page_touch(e, TRASTENDA_REC_HOLD, ix);
        if (e->holds[ix].heap_pos != ENG_NONE) eng_hold_heap_remove(e, ix);
        eng_hold_free(e, ix);
        return;
    case TRASTENDA_REC_ORDER_REMOVED:
        ix = eng_order_find(e, s);
        if (ix == ENG_NONE) return;
        eng_page_touch(e, TRASTENDA_REC_ORDER, ix);
        eng_order_free(e, ix);
        return;
    case TRASTENDA_REC_PO_REMOVED:
        ix = eng_po_find(e, s);
        if (ix == ENG_NONE) return;
        eng_page_touch(e, TRASTENDA_REC_PO, ix);
        eng_po_free(e, ix);
        return;
    default:
        ix = eng_key_find(e, s);
        if (ix == ENG_NONE) return;
        eng_page_touch(e, TRASTENDA_REC_KEY, ix);
        eng_key_free(e, ix);
    }
}

static void
put_meta(trastenda_engine *e, struct eng_rd *r, struct pass *ps)
{
    uint64_t hold = rd_uv(r), order = rd_uv(r), ledger = rd_uv(r);
    if (r->bad || !ps->apply) return;
    e->next_hold_id = hold;
    e->next_order_no = order;
    e->ledger_seq = ledger;
    eng_page_touch(e, TRASTENDA_REC_META, 0);
}

/* Decodes (and with apply, applies) one record body; false when malformed. */
static bool
put_record(trastenda_engine *e, uint8_t type, const uint8_t *body, uint32_t len, struct pass *ps)
{
    struct eng_rd r = {body, body + len, false};
    trastenda_ledger_entry le;
    trastenda_event ev;
    switch (type) {
    case TRASTENDA_REC_META:
        put_meta(e, &r, ps);
        break;
    case TRASTENDA_REC_CHANNEL:
        put_channel(e, &r, ps);
        break;
    case TRASTENDA_REC_LOCATION:
        put_location(e, &r, ps);
        break;
    case TRASTENDA_REC_SKU:
        put_sku(e, &r, ps);
        break;
    case TRASTENDA_REC_STOCK:
        put_stock(e, &r, ps);
        break;
    case TRASTENDA_REC_HOLD:
        put_hold(e, &r, ps);
        break;
    case TRASTENDA_REC_ORDER:
        put_order(e, &r, ps);
        break;
    case TRASTENDA_REC_PO:
        put_po(e, &r, ps);
        break;
    case TRASTENDA_REC_KEY:
        put_key(e, &r, ps);
        break;
    case TRASTENDA_REC_HOLD_REMOVED:
    case TRASTENDA_REC_ORDER_REMOVED:
    case TRASTENDA_REC_PO_REMOVED:
    case TRASTENDA_REC_KEY_REMOVED:
        put_removed(e, type, &r, ps);
        break;
    case TRASTENDA_REC_LEDGER: /* checked, never applied: the check pass decodes them */
        return ps->apply || trastenda_ledger_decode(body, len, &le) == TRASTENDA_OK;
    case TRASTENDA_REC_EVENT:
        return ps->apply || trastenda_event_decode(body, len, &ev) == TRASTENDA_OK;
    default:
        return false;
    }
    return !r.bad && r.p == r.end;
}

/*
 * Touching ahead, as the apply loop does for commands (engine.c). Over large tables an entry
 * spends its time in cache and TLB misses, a dependent chain of them per record: the SKU's map
 * slot, the SKU (its id compared), the stock map slot, the record; the hold's or the key's slot
 * and entry; the free entry a new hold or key takes. Taken one record after another they queue;
 * so before each chunk of APPLY_TOUCH records, four loops prefetch them for the whole chunk
 * (the slots, then the entries the slots name, then the stock records, then the line at the head
 * of each record's list), and the misses overlap.
 * Here prefetches beat loads (bench-engine replay: 436,000 pairs/s with loads, 541,000 with
 * prefetched slots, 555,000 with everything prefetched): the decoding between two records would
 * hold a load's stall in the reorder window. The check pass touches the SKUs only, the apply pass
 * everything. A stock record, and a hold's first line, then use what the touch found (the SKU,
 * location and record) once their ids are compared, instead of searching again. Nothing is trusted:
 * a malformed record or a wrong guess is a wasted prefetch (the check pass has not run yet when the
 * first touch does).
 */

/* A line's SKU and location for the stages that follow. */
static void
touch_line(const trastenda_engine *e, struct touch *x, trastenda_str sku, trastenda_str loc,
           bool all)
{
    if (sku.len == 0) return;
    x->line = true;
    x->sku_hash = eng_str_hash(sku);
    if (all && loc.len > 0) x->loc = eng_location_find(e, loc); /* a small table */
    __builtin_prefetch(&e->sku_map.slots[x->sku_hash & e->sku_map.mask]);
}

/* Stage 1: what each record names, the home slots of its maps. */
static void
touch_slots(const trastenda_engine *e, const struct pass *ps, trastenda_entry_iter it, bool all,
            struct touch *t, uint32_t *n_out, uint32_t *new_holds, uint32_t *new_keys)
{
    uint32_t n = 0;
    uint8_t type;
    const uint8_t *body;
    uint32_t blen;
    while (n < APPLY_TOUCH && trastenda_entry_next(&it, &type, &body, &blen) == TRASTENDA_OK) {
        struct eng_rd r = {body, body + blen, false};
        struct touch *x = &t[n++];
        x->type = 0;
        x->line = false;
        x->sku = x->loc = x->rec = x->hold = ENG_NONE;
        if (type == TRASTENDA_REC_STOCK) {
            trastenda_str sku = rd_str(&r, TRASTENDA_ID_BYTES_MAX);
            trastenda_str loc = rd_str(&r, TRASTENDA_ID_BYTES_MAX);
            if (!r.bad) touch_line(e, x, sku, loc, all);
        } else if (type == TRASTENDA_REC_HOLD || type == TRASTENDA_REC_HOLD_REMOVED) {
            struct eng_rd head = r;
            uint64_t id = rd_uv(&r);
            if (r.bad) continue;
            x->type = TRASTENDA_REC_HOLD;
            if (all) {
                x->hash = eng_hold_hash(id);
                __builtin_prefetch(&e->hold_map.slots[x->hash & e->hold_map.mask]);
                *new_holds += type == TRASTENDA_REC_HOLD;
            }
            if (type == TRASTENDA_REC_HOLD_REMOVED) continue;
            struct eng_hold img;
            rd_hold_head(&head, &ps->ctx, &img);
            /* A line naming a stock post-image of the entry needs no search (lines_put). */
            if (rd_uv(&head) == 0 || !rd_need(&head, 1) || *head.p == LINE_REF) continue;
            r = head;
            trastenda_str sku = rd_str(&r, TRASTENDA_ID_BYTES_MAX);
            trastenda_str loc = rd_str(&r, TRASTENDA_ID_BYTES_MAX);
            if (!r.bad) touch_line(e, x, sku, loc, all);
        } else if (all && (type == TRASTENDA_REC_KEY || type == TRASTENDA_REC_KEY_REMOVED)) {
            trastenda_str key = rd_str(&r, TRASTENDA_ID_BYTES_MAX);
            if (r.bad || key.len == 0) continue;
            x->hash = eng_str_hash(key);
            __builtin_prefetch(&e->key_map.slots[x->hash & e->key_map.mask]);
            x->type = TRASTENDA_REC_KEY;
            *new_keys += type == TRASTENDA_REC_KEY;
        }
    }
    *n_out = n;
}

/* The entries the next n takes of a pool will be. */
static void
touch_pool(const struct eng_pool *p, uint32_t n, const void *table, size_t size)
{
    for (uint32_t i = 0; i < n && i < p->top; i++)
        __builtin_prefetch((const char *)table + (size_t)p->stack[p->top - 1 - i] * size);
}

static void
touch_records(const trastenda_engine *e, const struct pass *ps, trastenda_entry_iter it, bool all,
              struct touch *t)
{
    uint32_t n, new_holds = 0, new_keys = 0;
    touch_slots(e, ps, it, all, t, &n, &new_holds, &new_keys);
    if (all) { /* a record not there yet takes the next free entry: a write to come */
        touch_pool(&e->hold_pool, new_holds, e->holds, sizeof(*e->holds));
        touch_pool(&e->key_pool, new_keys, e->keys, sizeof(*e->keys));
    }
    uint32_t skus = e->sku_count;
    for (uint32_t i = 0; i < n; i++) { /* stage 2: the entries the slots name */
        struct touch *x = &t[i];
        if (x->line) {
            uint32_t k = eng_map_home_entry(&e->sku_map, x->sku_hash);
            if (k < skus) {
                x->sku = k;
                __builtin_prefetch(&e->skus[k].id); /* compared with the line's id */
                if (x->loc != ENG_NONE)
                    __builtin_prefetch(
                        &e->stock_map.slots[eng_stock_hash(k, x->loc) & e->stock_map.mask]);
            }
        }
        if (x->type == TRASTENDA_REC_HOLD && all) {
            uint32_t h = eng_map_home_entry(&e->hold_map, x->hash);
            if (h < e->cfg.holds_max) {
                x->hold = h;
                __builtin_prefetch(&e->holds[h]);
            }
        } else if (x->type == TRASTENDA_REC_KEY) {
            uint32_t k = eng_map_home_entry(&e->key_map, x->hash);
            if (k < e->cfg.keys_max) __builtin_prefetch(&e->keys[k]);
        }
    }
    if (!all) return;
    for (uint32_t i = 0; i < n; i++) { /* stage 3: the stock records */
        struct touch *x = &t[i];
        if (x->hold != ENG_NONE) { /* a hold there: its heap entry and its first line */
            const struct eng_hold *hd = &e->holds[x->hold];
            uint32_t pos = hd->heap_pos;
            if (pos < e->heap_count) { /* with its parent and children: removing compares them */
                __builtin_prefetch(&e->heap[pos]);
                if (pos > 0) __builtin_prefetch(&e->heap[(pos - 1) / 2]);
                if (2 * pos + 1 < e->heap_count) __builtin_prefetch(&e->heap[2 * pos + 1]);
            }
            if (hd->lines_head < e->cfg.lines_max) __builtin_prefetch(&e->lines[hd->lines_head]);
        }
        if (!x->line || x->sku == ENG_NONE || x->loc == ENG_NONE) continue;
        uint32_t rec = eng_map_home_entry(&e->stock_map, eng_stock_hash(x->sku, x->loc));
        if (rec >= e->stock_count) continue;
        x->rec = rec;
        __builtin_prefetch(&e->stock[rec]);
        __builtin_prefetch(&e->vel[rec]);
    }
    /* Stage 4: a new hold's or order's line goes to the head of its stock record's list, and the
     * line there now (an older one, anywhere in the pool) learns its new neighbour; a hold's line
     * leaving its list writes the neighbours it had. */
    uint32_t lmax = e->cfg.lines_max;
    for (uint32_t i = 0; i < n; i++) {
        if (t[i].hold != ENG_NONE) { /* unlinking its first line writes that line's neighbours */
            uint32_t l = e->holds[t[i].hold].lines_head;
            if (l < lmax && e->lines[l].rec_prev < lmax)
                __builtin_prefetch(&e->lines[e->lines[l].rec_prev]);
            if (l < lmax && e->lines[l].rec_next < lmax)
                __builtin_prefetch(&e->lines[e->lines[l].rec_next]);
        }
        if (t[i].rec == ENG_NONE) continue;
        uint32_t head = e->stock[t[i].rec].lines_head;
        if (head < lmax) __builtin_prefetch(&e->lines[head]);
    }
}

/* SKU and location records of an entry (a bound for the check pass's set), and its stock
 * records. */
static uint32_t
count_defs(trastenda_entry_iter it, uint32_t *stocks)
{
    uint32_t n = 0;
    uint8_t type;
    const uint8_t *body;
    uint32_t blen;
    *stocks = 0;
    while (trastenda_entry_next(&it, &type, &body, &blen) == TRASTENDA_OK) {
        n += type == TRASTENDA_REC_SKU || type == TRASTENDA_REC_LOCATION;
        *stocks += type == TRASTENDA_REC_STOCK;
    }
    return n;
}

trastenda_err
eng_apply_records(trastenda_engine *e, trastenda_entry_iter it, uint8_t only_type, int64_t base_ms,
                  bool checked)
{
    struct pass ps;
    memset(&ps, 0, sizeof(ps));
    ps.next_channel = e->channel_count;
    /* A record of a state page already loaded came from another page too: a page left behind
     * by an older layout (storage's repack), or damage; refused rather than a silent choice. */
    ps.page = only_type != 0;
    uint32_t stocks;
    trastenda_err err = defs_init(&ps, count_defs(it, &stocks));
    if (!ps.page && stocks > 0) { /* lines of a log entry may refer to its stock images */
        eng_buf_reserve(&e->stock_refs, (size_t)stocks * sizeof(uint32_t));
        ps.stock_recs = (uint32_t *)(void *)e->stock_refs.p;
    }
    for (int pass = checked ? 1 : 0; pass < 2 && err == TRASTENDA_OK; pass++) {
        trastenda_entry_iter cur = it;
        uint8_t type;
        const uint8_t *body;
        uint32_t blen;
        ps.apply = pass == 1;
        ps.ctx = (struct img_ctx){base_ms, eng_day(base_ms), !ps.page, 0};
        for (uint32_t i = 0;; i++) {
            if (i % APPLY_TOUCH == 0) touch_records(e, &ps, cur, ps.apply, ps.touch);
            ps.guess = &ps.touch[i % APPLY_TOUCH];
            if ((err = trastenda_entry_next(&cur, &type, &body, &blen)) != TRASTENDA_OK) break;
            if (only_type != 0 && type != only_type) break;
            if (!put_record(e, type, body, blen, &ps)) break;
        }
        /* The apply pass cannot fail: the check pass saw every record (or, checked, the caller's
         * earlier check did, and a record that fails anyway is its E_CORRUPT below). */
        TS_ASSERT(!ps.apply || checked || err == TRASTENDA_E_SEQUENCE);
        err = err == TRASTENDA_E_SEQUENCE ? TRASTENDA_OK
              : err == TRASTENDA_OK       ? TRASTENDA_E_CORRUPT
                                          : err;
    }
    defs_fini(&ps);
    return err;
}

static trastenda_err
apply_entry(trastenda_engine *e, const uint8_t *entry, size_t len, bool checked)
{
    if (e == NULL || entry == NULL) return TRASTENDA_E_INVALID;
    TS_ASSERT(!e->building);
    trastenda_entry_header hdr;
    trastenda_entry_iter it;
    trastenda_err err = trastenda_entry_open(entry, len, &hdr, &it);
    if (err != TRASTENDA_OK) return err;
    if (hdr.seq != e->seq + 1 && hdr.seq != e->seq) return TRASTENDA_E_SEQUENCE;
    if (hdr.seq == e->seq + 1 && hdr.time_ms < e->time_ms) return TRASTENDA_E_CORRUPT;
    if (hdr.time_ms < 0 || hdr.time_ms > TRASTENDA_TIME_MS_MAX) return TRASTENDA_E_CORRUPT;
    /* An entry from an older epoch comes from a fenced leader. */
    if (hdr.epoch < e->cfg.epoch) return TRASTENDA_E_SEQUENCE;
    /* The same sequence again must be the same entry: another one is a diverged history. */
    uint64_t hash = ts_hash(entry, len, 0x656e747279ull);
    if (hdr.seq == e->seq && hash != e->last_entry_hash) return TRASTENDA_E_SEQUENCE;
    /* The same entry again: its effects are already here (applying them again would be harmless
     * for the records, but would move the records it created to the back of their retention
     * queues). */
    if (hdr.seq == e->seq) return TRASTENDA_OK;
    err = eng_apply_records(e, it, 0, hdr.time_ms, checked);
    if (err != TRASTENDA_OK) return err;
    e->seq = hdr.seq;
    e->time_ms = hdr.time_ms;
    e->cfg.epoch = hdr.epoch;
    e->last_entry_hash = hash;
    return TRASTENDA_OK;
}

trastenda_err
trastenda_engine_apply_entry(trastenda_engine *e, const uint8_t *entry, size_t len)
{
    return apply_entry(e, entry, len, false);
}

trastenda_err
trastenda_engine_apply_entry_checked(trastenda_engine *e, const uint8_t *entry, size_t len)
{
    return apply_entry(e, entry, len, true);
}

/* ---- views of single records (storage's archive) ---- */

/* The body of a record of the given type; NULL when the record is malformed. */
static const uint8_t *
record_body(const uint8_t *rec, size_t len, uint8_t type, uint32_t *blen)
{
    struct eng_rd r = {rec, rec + len, false};
    uint8_t t = rd_u8(&r);
    *blen = rd_uv32(&r);
    if (r.bad || t != type || *blen != (size_t)(r.end - r.p)) return NULL;
    return r.p;
}

static uint32_t
ix_or_none(uint32_t ix)
{
    return ix == ENG_NONE ? TRASTENDA_IX_NONE : ix;
}

trastenda_err
trastenda_engine_hold_record_view(const trastenda_engine *e, const uint8_t *rec, size_t len,
                                  trastenda_hold_view *out)
{
    if (e == NULL || rec == NULL || out == NULL) return TRASTENDA_E_INVALID;
    uint32_t blen;
    const uint8_t *body = record_body(rec, len, TRASTENDA_REC_HOLD, &blen);
    if (body == NULL) return TRASTENDA_E_CORRUPT;
    struct eng_rd r = {body, body + blen, false};
    struct img_line lines[TRASTENDA_ALLOCS_MAX];
    struct eng_hold img;
    rd_hold_head(&r, &ALONE, &img);
    uint32_t n = rd_lines(&r, &ALONE, lines, TRASTENDA_ALLOCS_MAX);
    if (r.bad || r.p != r.end) return TRASTENDA_E_CORRUPT;
    memset(out, 0, sizeof(*out));
    out->id = img.id;
    out->state = img.state;
    out->created_ms = img.created_ms;
    out->expires_ms = img.expires_ms;
    out->resolved_ms = img.resolved_ms;
    out->order_no = img.order_no;
    out->line_count = n;
    for (uint32_t i = 0; i < n; i++)
        out->lines[i] =
            (trastenda_alloc){ix_or_none(eng_sku_find(e, lines[i].sku)),
                              ix_or_none(eng_location_find(e, lines[i].loc)), lines[i].qty, 0};
    return TRASTENDA_OK;
}

trastenda_err
trastenda_engine_order_record_view(const trastenda_engine *e, const uint8_t *rec, size_t len,
                                   trastenda_order_view *out)
{
    if (e == NULL || rec == NULL || out == NULL) return TRASTENDA_E_INVALID;
    uint32_t blen;
    const uint8_t *body = record_body(rec, len, TRASTENDA_REC_ORDER, &blen);
    if (body == NULL) return TRASTENDA_E_CORRUPT;
    struct eng_rd r = {body, body + blen, false};
    struct img_line lines[TRASTENDA_ALLOCS_MAX];
    struct eng_order img;
    trastenda_str id = rd_order_head(&r, &ALONE, &img);
    uint32_t n = rd_lines(&r, &ALONE, lines, TRASTENDA_ALLOCS_MAX);
    if (r.bad || r.p != r.end || id.len == 0) return TRASTENDA_E_CORRUPT;
    memset(out, 0, sizeof(*out));
    out->no = img.no;
    out->created_ms = img.created_ms;
    out->updated_ms = img.updated_ms;
    out->lat_e6 = img.lat_e6;
    out->lon_e6 = img.lon_e6;
    out->state = img.state;
    out->rule = img.rule;
    out->channel = img.channel;
    memcpy(out->id, id.ptr, id.len);
    out->id[id.len] = 0;
    out->alloc_count = n;
    for (uint32_t i = 0; i < n; i++)
        out->allocs[i] = (trastenda_order_alloc){ix_or_none(eng_sku_find(e, lines[i].sku)),
                                                 ix_or_none(eng_location_find(e, lines[i].loc)),
                                                 lines[i].qty,
                                                 lines[i].done,
                                                 lines[i].returned,
                                                 lines[i].state};
    return TRASTENDA_OK;
}

/* ---- public readers ---- */

trastenda_err
trastenda_entry_open(const uint8_t *entry, size_t len, trastenda_entry_header *hdr,
                     trastenda_entry_iter *it)
{
    if (entry == NULL || hdr == NULL || it == NULL) return TRASTENDA_E_INVALID;
    struct eng_rd r = {entry, entry + len, false};
    uint32_t magic = rd_u32(&r);
    hdr->version = rd_u16(&r);
    (void)rd_u16(&r);
    hdr->seq = rd_u64(&r);
    hdr->time_ms = rd_i64(&r);
    hdr->epoch = rd_u64(&r);
    hdr->record_count = rd_u32(&r);
    uint32_t body = rd_u32(&r);
    if (r.bad || magic != TRASTENDA_LOG_MAGIC || hdr->version != TRASTENDA_LOG_VERSION ||
        body != len - TRASTENDA_LOG_HEADER_BYTES || hdr->seq == 0)
        return TRASTENDA_E_CORRUPT;
    it->next = r.p;
    it->end = r.end;
    it->remaining = hdr->record_count;
    return TRASTENDA_OK;
}

trastenda_err
trastenda_entry_next(trastenda_entry_iter *it, uint8_t *type, const uint8_t **body,
                     uint32_t *body_len)
{
    if (it->remaining == 0) return it->next == it->end ? TRASTENDA_E_SEQUENCE : TRASTENDA_E_CORRUPT;
    struct eng_rd r = {it->next, it->end, false};
    *type = rd_u8(&r);
    *body_len = rd_uv32(&r);
    if (r.bad || !rd_need(&r, *body_len)) return TRASTENDA_E_CORRUPT;
    *body = r.p;
    it->next = r.p + *body_len;
    it->remaining--;
    return TRASTENDA_OK;
}

trastenda_err
trastenda_removed_decode(uint8_t type, const uint8_t *body, uint32_t len, uint64_t *hold_id,
                         trastenda_str *id)
{
    if (body == NULL || hold_id == NULL || id == NULL) return TRASTENDA_E_INVALID;
    struct eng_rd r = {body, body + len, false};
    *hold_id = 0;
    *id = (trastenda_str){"", 0};
    if (type == TRASTENDA_REC_HOLD_REMOVED) {
        *hold_id = rd_uv(&r);
        if (*hold_id == 0) r.bad = true;
    } else if (type == TRASTENDA_REC_ORDER_REMOVED || type == TRASTENDA_REC_PO_REMOVED ||
               type == TRASTENDA_REC_KEY_REMOVED) {
        *id = rd_str(&r, TRASTENDA_ID_BYTES_MAX);
        if (id->len == 0) r.bad = true;
    } else
        r.bad = true;
    return r.bad || r.p != r.end ? TRASTENDA_E_CORRUPT : TRASTENDA_OK;
}

trastenda_err
trastenda_ledger_decode(const uint8_t *body, uint32_t len, trastenda_ledger_entry *out)
{
    struct eng_rd r = {body, body + len, false};
    memset(out, 0, sizeof(*out));
    out->seq = rd_uv(&r);
    out->sku = rd_str(&r, TRASTENDA_ID_BYTES_MAX);
    out->loc = rd_str(&r, TRASTENDA_ID_BYTES_MAX);
    out->move = rd_u8(&r);
    out->cause = rd_u8(&r);
    uint8_t mask = rd_u8(&r);
    for (int i = 0; i < TRASTENDA_Q_COUNT_; i++)
        if (mask & (1u << i)) out->delta[i] = rd_sv32(&r);
    out->ref_kind = rd_u8(&r);
    out->ref_id = rd_uv(&r);
    out->ref = rd_str(&r, TRASTENDA_ID_BYTES_MAX);
    out->actor = rd_str(&r, TRASTENDA_ID_BYTES_MAX);
    if (r.bad || r.p != r.end || out->move == 0 || out->move > TRASTENDA_MOVE_PO_CLOSE ||
        mask >= (1u << TRASTENDA_Q_COUNT_) || out->ref_kind > TRASTENDA_REFK_TEXT)
        return TRASTENDA_E_CORRUPT;
    return TRASTENDA_OK;
}

static void
rd_at_risk(struct eng_rd *r, trastenda_event *out)
{
    out->holds_at_risk = rd_uv32(r);
    out->holds_listed = rd_u8(r);
    if (out->holds_listed > TRASTENDA_AT_RISK_LISTED_MAX) r->bad = true;
    for (uint32_t i = 0; i < out->holds_listed && !r->bad; i++)
        out->holds[i] = rd_uv(r);
    out->orders_at_risk = rd_uv32(r);
    out->orders_listed = rd_u8(r);
    if (out->orders_listed > TRASTENDA_AT_RISK_LISTED_MAX) r->bad = true;
    for (uint32_t i = 0; i < out->orders_listed && !r->bad; i++)
        out->orders[i] = rd_str(r, TRASTENDA_ID_BYTES_MAX);
}

trastenda_err
trastenda_event_decode(const uint8_t *body, uint32_t len, trastenda_event *out)
{
    struct eng_rd r = {body, body + len, false};
    memset(out, 0, sizeof(*out));
    out->kind = rd_u8(&r);
    switch (out->kind) {
    case TRASTENDA_EVENT_LOW_STOCK:
    case TRASTENDA_EVENT_OUT_OF_STOCK:
    case TRASTENDA_EVENT_BACK_IN_STOCK:
    case TRASTENDA_EVENT_SHORTFALL:
        out->sku = rd_str(&r, TRASTENDA_ID_BYTES_MAX);
        out->loc = rd_str(&r, TRASTENDA_ID_BYTES_MAX);
        out->available = rd_sv(&r);
        if (out->kind == TRASTENDA_EVENT_SHORTFALL) rd_at_risk(&r, out);
        break;
    case TRASTENDA_EVENT_HOLD_EXPIRED:
        out->hold_id = rd_uv(&r);
        break;
    case TRASTENDA_EVENT_ORDER_STATE:
        out->order_id = rd_str(&r, TRASTENDA_ID_BYTES_MAX);
        out->state = rd_u8(&r);
        break;
    default:
        return TRASTENDA_E_CORRUPT;
    }
    if (r.bad || r.p != r.end) return TRASTENDA_E_CORRUPT;
    return TRASTENDA_OK;
}
