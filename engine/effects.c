/*
 * engine/effects.c - the effects of a batch, written as one log entry (docs/LOG.md): removals
 * as they happen, post-images of every record the batch changed (eng.h Design note 5), the
 * counters (meta), then the ledger entries and events in the order they happened.
 *
 * The same encoders feed the state digest, so the digest covers exactly what the log carries.
 */
#include <string.h>

#include "codec.h"
#include "eng.h"

/* Bounds of encoded records, used to reserve space before writing. */
#define STR_B     (1 + TRASTENDA_NAME_BYTES_MAX)
#define ID_B      (1 + TRASTENDA_ID_BYTES_MAX)
#define REC_HDR_B (1 + VU32_B)
#define LINE_B    (2 * ID_B + 3 * VU32_B + 1)

/* How post-images are written (docs/LOG.md): times as offsets from base_ms (the batch's time in
 * a log entry, 0 in pages, the digest and the archive); with refs (log entries only), a line
 * names a stock record whose post-image the entry carries by that post-image's ordinal. */
struct enc_ctx {
    int64_t base_ms;
    int32_t base_day;
    bool refs;
};

static const struct enc_ctx ALONE = {0, 0, false};

/* A stock post-image's masks: one bit per quantity, one per velocity day and bit 7 for the day. */
_Static_assert(TRASTENDA_Q_COUNT_ <= 8 && TRASTENDA_VELOCITY_DAYS <= 7, "masks of one byte");

/* A record's mark is its position in the dirty list + 1 (0: clean); an earlier occurrence whose
 * position no longer matches the mark is skipped when the post-images are written. Stock records
 * are never requeued: the k-th stock post-image of an entry is the record whose mark is k + 1,
 * which is what a line's reference uses (the marks stay until every post-image is written). */
static void
dirty_push(trastenda_engine *e, uint8_t type, uint32_t ix, uint32_t *mark)
{
    TS_ASSERT(type < 16);
    struct eng_buf *b = &e->dirty[type];
    eng_buf_reserve(b, sizeof(uint32_t));
    TS_ASSERT(b->len / sizeof(uint32_t) < UINT32_MAX - 1);
    *mark = (uint32_t)(b->len / sizeof(uint32_t)) + 1;
    memcpy(b->p + b->len, &ix, sizeof(ix));
    b->len += sizeof(ix);
}

void
eng_dirty_requeue(trastenda_engine *e, uint8_t type, uint32_t ix, uint32_t *mark)
{
    TS_ASSERT(type != TRASTENDA_REC_STOCK);
    if (e->building) dirty_push(e, type, ix, mark);
}

void
eng_dirty_mark(trastenda_engine *e, uint8_t type, uint32_t ix, uint32_t *mark)
{
    if (e->building && *mark == 0) dirty_push(e, type, ix, mark);
}

/* A record is its type, its body's length (varint) and its body. The body is written after a
 * one-byte length, and moved when its length needs more. */
static uint8_t *
rec_begin(struct eng_buf *b, uint8_t type, size_t bound, struct eng_wr *w)
{
    eng_buf_reserve(b, REC_HDR_B + bound);
    uint8_t *start = b->p + b->len;
    start[0] = type;
    w->p = start + 2;
    return start;
}

static void
rec_end(struct eng_buf *b, uint8_t *start, struct eng_wr *w, size_t bound)
{
    size_t body = (size_t)(w->p - start) - 2;
    TS_ASSERT(body <= bound && body <= UINT32_MAX);
    uint32_t n = uv_len(body);
    if (n > 1) memmove(start + 1 + n, start + 2, body);
    struct eng_wr lw = {start + 1};
    wr_uv(&lw, body);
    b->len += 1 + n + body;
}

static void
wr_id(struct eng_wr *w, const struct eng_id *id)
{
    wr_str(w, id->s, id->len);
}

/* ---- post-image encoders (also used by the digest, the pages and the archive) ---- */

void
eng_enc_location(const trastenda_engine *e, struct eng_buf *b, uint32_t ix)
{
    const struct eng_location *l = &e->locs[ix];
    struct eng_wr w;
    size_t bound = ID_B + STR_B + 4 * VU32_B + 1;
    uint8_t *st = rec_begin(b, TRASTENDA_REC_LOCATION, bound, &w);
    wr_id(&w, &l->id);
    wr_str(&w, l->name.s, l->name.len);
    wr_sv(&w, l->lat_e6);
    wr_sv(&w, l->lon_e6);
    wr_sv(&w, l->priority);
    wr_uv(&w, l->channels);
    wr_u8(&w, l->active);
    rec_end(b, st, &w, bound);
}

void
eng_enc_sku(const trastenda_engine *e, struct eng_buf *b, uint32_t ix)
{
    const struct eng_sku *s = &e->skus[ix];
    struct eng_wr w;
    size_t bound = ID_B + STR_B + 4 * VU32_B + 1;
    uint8_t *st = rec_begin(b, TRASTENDA_REC_SKU, bound, &w);
    wr_id(&w, &s->id);
    wr_str(&w, s->name.s, s->name.len);
    wr_sv(&w, s->reorder_point);
    wr_sv(&w, s->reorder_qty);
    wr_sv(&w, s->lead_days);
    wr_sv(&w, s->safety_default);
    wr_u8(&w, s->active);
    rec_end(b, st, &w, bound);
}

static void
enc_stock(const trastenda_engine *e, struct eng_buf *b, uint32_t ix, const struct enc_ctx *c)
{
    const struct eng_stock *s = &e->stock[ix];
    const struct eng_velocity *v = &e->vel[ix];
    struct eng_wr w;
    size_t bound = 2 * ID_B + 2 + VU32_B + VU64_B + VU32_B * (TRASTENDA_Q_COUNT_ + 7);
    uint8_t *st = rec_begin(b, TRASTENDA_REC_STOCK, bound, &w);
    wr_id(&w, &e->skus[s->sku_ix].id);
    wr_id(&w, &e->locs[s->loc_ix].id);
    uint8_t mask = 0;
    for (int i = 0; i < TRASTENDA_Q_COUNT_; i++)
        if (s->q[i] != 0) mask |= (uint8_t)(1u << i);
    wr_u8(&w, mask);
    for (int i = 0; i < TRASTENDA_Q_COUNT_; i++)
        if (s->q[i] != 0) wr_sv(&w, s->q[i]);
    wr_uv(&w, s->flags);
    uint8_t units = v->day != 0 ? 0x80 : 0;
    for (int i = 0; i < TRASTENDA_VELOCITY_DAYS; i++)
        if (v->units[i] != 0) units |= (uint8_t)(1u << i);
    wr_u8(&w, units);
    if (v->day != 0) wr_sv(&w, (int64_t)v->day - c->base_day);
    for (int i = 0; i < TRASTENDA_VELOCITY_DAYS; i++)
        if (v->units[i] != 0) wr_uv(&w, v->units[i]);
    rec_end(b, st, &w, bound);
}

void
eng_enc_stock(const trastenda_engine *e, struct eng_buf *b, uint32_t ix)
{
    enc_stock(e, b, ix, &ALONE);
}

static void
enc_line(const trastenda_engine *e, struct eng_wr *w, const struct eng_line *l,
         const struct enc_ctx *c)
{
    /* Only lines linked to their record know it without a search (open holds, allocations). */
    uint32_t mark = c->refs && l->rec_ix != ENG_NONE ? e->stock[l->rec_ix].dirty : 0;
    if (mark != 0) {
        wr_u8(w, LINE_REF);
        wr_uv(w, mark - 1);
    } else {
        wr_id(w, &e->skus[l->sku_ix].id);
        wr_id(w, &e->locs[l->loc_ix].id);
    }
    wr_sv(w, l->qty);
    wr_sv(w, l->done);
    wr_sv(w, l->returned);
    wr_u8(w, l->state);
}

static void
enc_hold(const trastenda_engine *e, struct eng_buf *b, uint32_t ix, const struct enc_ctx *c)
{
    const struct eng_hold *h = &e->holds[ix];
    struct eng_wr w;
    size_t bound =
        VU64_B + 3 + 3 * VU64_B + VU64_B + 2 * VU32_B + VU32_B + (size_t)h->line_count * LINE_B;
    uint8_t *st = rec_begin(b, TRASTENDA_REC_HOLD, bound, &w);
    bool coords = h->lat_e6 != 0 || h->lon_e6 != 0;
    wr_uv(&w, h->id);
    wr_u8(&w, h->state);
    wr_u8(&w, h->channel);
    wr_u8(&w, (uint8_t)((h->has_ship_to ? IMG_SHIP_TO : 0) | (h->resolved_ms ? IMG_RESOLVED : 0) |
                        (h->order_no ? IMG_ORDER_NO : 0) | (coords ? IMG_COORDS : 0)));
    wr_time(&w, h->created_ms, c->base_ms);
    wr_time(&w, h->expires_ms, h->created_ms);
    if (h->resolved_ms) wr_time(&w, h->resolved_ms, h->created_ms);
    if (h->order_no) wr_uv(&w, h->order_no);
    if (coords) {
        wr_sv(&w, h->lat_e6);
        wr_sv(&w, h->lon_e6);
    }
    wr_uv(&w, h->line_count);
    uint32_t n = 0;
    for (uint32_t l = h->lines_head; l != ENG_NONE; l = e->lines[l].next, n++)
        enc_line(e, &w, &e->lines[l], c);
    TS_ASSERT(n == h->line_count);
    rec_end(b, st, &w, bound);
}

void
eng_enc_hold(const trastenda_engine *e, struct eng_buf *b, uint32_t ix)
{
    enc_hold(e, b, ix, &ALONE);
}

static void
enc_order(const trastenda_engine *e, struct eng_buf *b, uint32_t ix, const struct enc_ctx *c)
{
    const struct eng_order *o = &e->orders[ix];
    struct eng_wr w;
    size_t bound = ID_B + 2 * VU64_B + 8 + 3 * VU64_B + 2 * VU32_B + 4 + VU32_B +
                   (size_t)o->alloc_count * LINE_B;
    uint8_t *st = rec_begin(b, TRASTENDA_REC_ORDER, bound, &w);
    bool coords = o->lat_e6 != 0 || o->lon_e6 != 0;
    wr_id(&w, &o->id);
    wr_uv(&w, o->no);
    wr_u64(&w, o->payload_hash);
    wr_uv(&w, o->hold_id);
    wr_u8(&w, o->state);
    wr_u8(&w, o->rule);
    wr_u8(&w, o->channel);
    wr_u8(&w, (uint8_t)((o->finished_ms ? IMG_RESOLVED : 0) | (coords ? IMG_COORDS : 0)));
    wr_time(&w, o->created_ms, c->base_ms);
    wr_time(&w, o->updated_ms, o->created_ms);
    if (o->finished_ms) wr_time(&w, o->finished_ms, o->created_ms);
    if (coords) {
        wr_sv(&w, o->lat_e6);
        wr_sv(&w, o->lon_e6);
    }
    wr_uv(&w, o->alloc_count);
    uint32_t n = 0;
    for (uint32_t l = o->lines_head; l != ENG_NONE; l = e->lines[l].next, n++)
        enc_line(e, &w, &e->lines[l], c);
    TS_ASSERT(n == o->alloc_count);
    rec_end(b, st, &w, bound);
}

void
eng_enc_order(const trastenda_engine *e, struct eng_buf *b, uint32_t ix)
{
    enc_order(e, b, ix, &ALONE);
}

static void
enc_po(const trastenda_engine *e, struct eng_buf *b, uint32_t ix, const struct enc_ctx *c)
{
    const struct eng_po *p = &e->pos[ix];
    struct eng_wr w;
    size_t bound = ID_B + 1 + 2 * VU64_B + VU32_B + (size_t)p->line_count * LINE_B;
    uint8_t *st = rec_begin(b, TRASTENDA_REC_PO, bound, &w);
    wr_id(&w, &p->id);
    wr_u8(&w, p->open);
    wr_time(&w, p->created_ms, c->base_ms);
    wr_time(&w, p->updated_ms, p->created_ms);
    wr_uv(&w, p->line_count);
    uint32_t n = 0;
    for (uint32_t l = p->lines_head; l != ENG_NONE; l = e->lines[l].next, n++)
        enc_line(e, &w, &e->lines[l], c);
    TS_ASSERT(n == p->line_count);
    rec_end(b, st, &w, bound);
}

void
eng_enc_po(const trastenda_engine *e, struct eng_buf *b, uint32_t ix)
{
    enc_po(e, b, ix, &ALONE);
}

static void
enc_key(const trastenda_engine *e, struct eng_buf *b, uint32_t ix, const struct enc_ctx *c)
{
    const struct eng_key *k = &e->keys[ix];
    struct eng_wr w;
    size_t bound = ID_B + 8 + 3 * VU64_B + 3;
    uint8_t *st = rec_begin(b, TRASTENDA_REC_KEY, bound, &w);
    wr_id(&w, &k->key);
    wr_u64(&w, k->payload_hash);
    wr_time(&w, k->created_ms, c->base_ms);
    wr_uv(&w, k->result_id);
    wr_sv(&w, k->result_value);
    wr_u8(&w, k->op);
    wr_u8(&w, k->rule);
    wr_u8(&w, k->state);
    rec_end(b, st, &w, bound);
}

void
eng_enc_key(const trastenda_engine *e, struct eng_buf *b, uint32_t ix)
{
    enc_key(e, b, ix, &ALONE);
}

void
eng_enc_meta(const trastenda_engine *e, struct eng_buf *b)
{
    struct eng_wr w;
    uint8_t *st = rec_begin(b, TRASTENDA_REC_META, 3 * VU64_B, &w);
    wr_uv(&w, e->next_hold_id);
    wr_uv(&w, e->next_order_no);
    wr_uv(&w, e->ledger_seq);
    rec_end(b, st, &w, 3 * VU64_B);
}

void
eng_enc_channel(const trastenda_engine *e, struct eng_buf *b, uint32_t ix)
{
    struct eng_wr w;
    uint8_t *st = rec_begin(b, TRASTENDA_REC_CHANNEL, 1 + ID_B, &w);
    wr_u8(&w, (uint8_t)ix);
    wr_id(&w, &e->channels[ix]);
    rec_end(b, st, &w, 1 + ID_B);
}

/* ---- the batch ---- */

static void
header_write(uint8_t *p, uint64_t seq, int64_t time_ms, uint64_t epoch, uint32_t records,
             uint32_t body)
{
    struct eng_wr w = {p};
    wr_u32(&w, TRASTENDA_LOG_MAGIC);
    wr_u16(&w, TRASTENDA_LOG_VERSION);
    wr_u16(&w, 0);
    wr_u64(&w, seq);
    wr_i64(&w, time_ms);
    wr_u64(&w, epoch);
    wr_u32(&w, records);
    wr_u32(&w, body);
    TS_ASSERT(w.p - p == TRASTENDA_LOG_HEADER_BYTES);
}

void
eng_effects_begin(trastenda_engine *e)
{
    TS_ASSERT(!e->building);
    e->entry.len = 0;
    e->side.len = 0;
    eng_buf_reserve(&e->entry, TRASTENDA_LOG_HEADER_BYTES);
    e->entry.len = TRASTENDA_LOG_HEADER_BYTES;
    e->entry_records = e->side_records = 0;
    e->ledger_count = e->event_count = 0;
    for (int t = 0; t < 16; t++)
        e->dirty[t].len = 0;
    e->channel_dirty = 0;
    e->building = true;
}

void
eng_emit_removed(trastenda_engine *e, uint8_t type, trastenda_str id, uint64_t num)
{
    TS_ASSERT(e->building);
    struct eng_wr w;
    uint8_t *st = rec_begin(&e->entry, type, ID_B + VU64_B, &w);
    if (type == TRASTENDA_REC_HOLD_REMOVED)
        wr_uv(&w, num);
    else
        wr_str(&w, id.ptr, id.len);
    rec_end(&e->entry, st, &w, ID_B + VU64_B);
    e->entry_records++;
}

typedef void (*enc_fn)(const trastenda_engine *e, struct eng_buf *b, uint32_t ix,
                       const struct enc_ctx *c);

static void
enc_location(const trastenda_engine *e, struct eng_buf *b, uint32_t ix, const struct enc_ctx *c)
{
    (void)c;
    eng_enc_location(e, b, ix);
}

static void
enc_sku(const trastenda_engine *e, struct eng_buf *b, uint32_t ix, const struct enc_ctx *c)
{
    (void)c;
    eng_enc_sku(e, b, ix);
}

static uint32_t *
mark_of(trastenda_engine *e, uint8_t type, uint32_t ix)
{
    switch (type) {
    case TRASTENDA_REC_LOCATION:
        return &e->locs[ix].dirty;
    case TRASTENDA_REC_SKU:
        return &e->skus[ix].dirty;
    case TRASTENDA_REC_STOCK:
        return &e->stock[ix].dirty;
    case TRASTENDA_REC_HOLD:
        return &e->holds[ix].dirty;
    case TRASTENDA_REC_ORDER:
        return &e->orders[ix].dirty;
    case TRASTENDA_REC_PO:
        return &e->pos[ix].dirty;
    case TRASTENDA_REC_KEY:
        return &e->keys[ix].dirty;
    }
    TS_ASSERT(0);
    return NULL;
}

static uint32_t
dirty_at(const struct eng_buf *d, uint32_t i)
{
    uint32_t ix;
    memcpy(&ix, d->p + (size_t)i * sizeof(uint32_t), sizeof(ix));
    return ix;
}

#define IMAGE_TOUCH_CHUNK 32u

/*
 * Loads, in tight loops, what the post-images of dirty stock records [from, to) read beyond the
 * record: its velocity and its SKU's id. Releases, expiries and order steps reach a record through
 * their lines, so nothing loaded those yet; the loads of a loop overlap instead of each image
 * waiting for its own misses (as the apply loop touches ahead, engine.c). Changes nothing.
 */
static uint64_t
touch_stock_images(const trastenda_engine *e, const struct eng_buf *d, uint32_t from, uint32_t to)
{
    uint64_t sum = 0;
    for (uint32_t i = from; i < to; i++) {
        uint32_t ix = dirty_at(d, i);
        sum += (uint64_t)e->vel[ix].day + e->stock[ix].seq;
    }
    for (uint32_t i = from; i < to; i++)
        sum += e->skus[e->stock[dirty_at(d, i)].sku_ix].id.len;
    return sum;
}

/*
 * The same for the post-images of dirty holds [from, to): the hold, then its first line, then
 * what that line's image reads (its record's mark when linked, its SKU's id when not). The
 * batch's other work since the hold changed has often pushed them out of the caches.
 */
static uint64_t
touch_hold_images(const trastenda_engine *e, const struct eng_buf *d, uint32_t from, uint32_t to)
{
    uint32_t first[IMAGE_TOUCH_CHUNK];
    uint64_t sum = 0;
    for (uint32_t i = from; i < to; i++)
        sum += first[i - from] = e->holds[dirty_at(d, i)].lines_head;
    for (uint32_t i = from; i < to; i++)
        if (first[i - from] != ENG_NONE) sum += e->lines[first[i - from]].rec_ix;
    for (uint32_t i = from; i < to; i++) {
        if (first[i - from] == ENG_NONE) continue;
        const struct eng_line *l = &e->lines[first[i - from]];
        sum += l->rec_ix != ENG_NONE ? e->stock[l->rec_ix].dirty : e->skus[l->sku_ix].id.len;
    }
    return sum;
}

static void
post_images(trastenda_engine *e, uint8_t type, enc_fn enc, const struct enc_ctx *c)
{
    const struct eng_buf *d = &e->dirty[type];
    uint32_t n = (uint32_t)(d->len / sizeof(uint32_t));
    volatile uint64_t touched = 0; /* volatile: the loads must happen */
    for (uint32_t i = 0; i < n; i++) {
        if (type == TRASTENDA_REC_STOCK && i % IMAGE_TOUCH_CHUNK == 0)
            touched += touch_stock_images(e, d, i, TS_MIN(n, i + IMAGE_TOUCH_CHUNK));
        if (type == TRASTENDA_REC_HOLD && i % IMAGE_TOUCH_CHUNK == 0)
            touched += touch_hold_images(e, d, i, TS_MIN(n, i + IMAGE_TOUCH_CHUNK));
        uint32_t ix = dirty_at(d, i);
        uint32_t *mark = mark_of(e, type, ix);
        TS_ASSERT(*mark != 0);
        /* A skipped stock image would shift the ordinals lines refer to (enc_line). */
        TS_ASSERT(type != TRASTENDA_REC_STOCK || *mark == i + 1);
        if (*mark != i + 1) continue;               /* requeued: its post-image comes later */
        if (type != TRASTENDA_REC_STOCK) *mark = 0; /* stock: lines refer to it (enc_line) */
        enc(e, &e->entry, ix, c);
        e->entry_records++;
    }
    (void)touched;
}

void
eng_effects_end(trastenda_engine *e, trastenda_batch_out *out)
{
    TS_ASSERT(e->building);
    if (e->channel_dirty) {
        for (uint32_t i = 0; i < e->channel_count; i++)
            eng_enc_channel(e, &e->entry, i);
        e->entry_records += e->channel_count;
    }
    /* Type order: what a record refers to comes before it (docs/LOG.md). */
    struct enc_ctx c = {e->time_ms, eng_day(e->time_ms), true};
    post_images(e, TRASTENDA_REC_LOCATION, enc_location, &c);
    post_images(e, TRASTENDA_REC_SKU, enc_sku, &c);
    post_images(e, TRASTENDA_REC_STOCK, enc_stock, &c);
    post_images(e, TRASTENDA_REC_HOLD, enc_hold, &c);
    post_images(e, TRASTENDA_REC_ORDER, enc_order, &c);
    post_images(e, TRASTENDA_REC_PO, enc_po, &c);
    post_images(e, TRASTENDA_REC_KEY, enc_key, &c);
    const struct eng_buf *sd = &e->dirty[TRASTENDA_REC_STOCK];
    for (size_t i = 0; i < sd->len / sizeof(uint32_t); i++) {
        uint32_t rec = dirty_at(sd, (uint32_t)i);
        e->stock[rec].dirty = 0;
#ifdef TS_DEBUG
        eng_stock_check_one(e, rec); /* the cheap checks, on every record the batch touched */
#endif
    }
    eng_enc_meta(e, &e->entry);
    e->entry_records++;
    eng_buf_reserve(&e->entry, e->side.len);
    if (e->side.len > 0) memcpy(e->entry.p + e->entry.len, e->side.p, e->side.len);
    e->entry.len += e->side.len;
    uint32_t records = e->entry_records + e->side_records;
    size_t body = e->entry.len - TRASTENDA_LOG_HEADER_BYTES;
    TS_ASSERT(body < UINT32_MAX);
    header_write(e->entry.p, e->seq, e->time_ms, e->cfg.epoch, records, (uint32_t)body);
    e->building = false;
    out->seq = e->seq;
    out->entry = e->entry.p;
    out->entry_len = e->entry.len;
    out->ledger_count = e->ledger_count;
    out->event_count = e->event_count;
}

/* ---- ledger entries and events (side buffer, in the order they happen) ---- */

void
eng_emit_ledger(trastenda_engine *e, uint32_t rec, const int32_t delta[TRASTENDA_Q_COUNT_],
                const struct eng_move *mv)
{
    if (!e->building) return;
    const struct eng_stock *s = &e->stock[rec];
    trastenda_str actor = e->cmd != NULL ? e->cmd->actor : (trastenda_str){"", 0};
    struct eng_wr w;
    size_t bound = VU64_B + 2 * ID_B + 3 + VU32_B * TRASTENDA_Q_COUNT_ + 1 + VU64_B + 2 * ID_B;
    uint8_t *st = rec_begin(&e->side, TRASTENDA_REC_LEDGER, bound, &w);
    wr_uv(&w, ++e->ledger_seq);
    wr_id(&w, &e->skus[s->sku_ix].id);
    wr_id(&w, &e->locs[s->loc_ix].id);
    wr_u8(&w, mv->move);
    wr_u8(&w, mv->cause);
    uint8_t mask = 0;
    for (int i = 0; i < TRASTENDA_Q_COUNT_; i++)
        if (delta[i] != 0) mask |= (uint8_t)(1u << i);
    wr_u8(&w, mask);
    for (int i = 0; i < TRASTENDA_Q_COUNT_; i++)
        if (delta[i] != 0) wr_sv(&w, delta[i]);
    wr_u8(&w, mv->ref_kind);
    wr_uv(&w, mv->ref_id);
    wr_str(&w, mv->ref.ptr, mv->ref.len);
    wr_str(&w, actor.ptr, actor.len);
    rec_end(&e->side, st, &w, bound);
    e->side_records++;
    e->ledger_count++;
}

static uint8_t *
event_begin(trastenda_engine *e, uint8_t kind, size_t bound, struct eng_wr *w)
{
    uint8_t *st = rec_begin(&e->side, TRASTENDA_REC_EVENT, bound, w);
    wr_u8(w, kind);
    return st;
}

static void
event_end(trastenda_engine *e, uint8_t *st, struct eng_wr *w, size_t bound)
{
    rec_end(&e->side, st, w, bound);
    e->side_records++;
    e->event_count++;
}

void
eng_emit_stock_event(trastenda_engine *e, uint8_t kind, uint32_t rec, int64_t available)
{
    if (!e->building) return;
    const struct eng_stock *s = &e->stock[rec];
    struct eng_wr w;
    size_t bound = 1 + 2 * ID_B + VU64_B;
    uint8_t *st = event_begin(e, kind, bound, &w);
    wr_id(&w, &e->skus[s->sku_ix].id);
    wr_id(&w, &e->locs[s->loc_ix].id);
    wr_sv(&w, available);
    event_end(e, st, &w, bound);
}

/* Keeps the n smallest values of a stream in v (sorted), n <= TRASTENDA_AT_RISK_LISTED_MAX. */
static void
smallest_keep(uint64_t *v, uint32_t *n, uint64_t x)
{
    uint32_t k = *n;
    if (k == TRASTENDA_AT_RISK_LISTED_MAX) {
        if (x >= v[k - 1]) return;
        k--;
    }
    uint32_t i = k;
    while (i > 0 && v[i - 1] > x) {
        v[i] = v[i - 1];
        i--;
    }
    v[i] = x;
    *n = k + 1;
}

void
eng_emit_shortfall(trastenda_engine *e, uint32_t rec, int64_t available)
{
    if (!e->building) return;
    uint64_t holds[TRASTENDA_AT_RISK_LISTED_MAX], orders[TRASTENDA_AT_RISK_LISTED_MAX];
    uint32_t nh = 0, no = 0, th = 0, to = 0, walked = 0;
    for (uint32_t l = e->stock[rec].lines_head; l != ENG_NONE; l = e->lines[l].rec_next) {
        TS_ASSERT(walked++ < e->cfg.lines_max);
        const struct eng_line *ln = &e->lines[l];
        if (ln->kind == ENG_LINE_HOLD) {
            th++;
            smallest_keep(holds, &nh, e->holds[ln->owner].id);
        } else {
            to++;
            smallest_keep(orders, &no, e->orders[ln->owner].no);
        }
    }
    struct eng_wr w;
    size_t bound = 1 + 2 * ID_B + VU64_B + VU32_B + 1 + VU64_B * TRASTENDA_AT_RISK_LISTED_MAX +
                   VU32_B + 1 + ID_B * TRASTENDA_AT_RISK_LISTED_MAX;
    uint8_t *st = event_begin(e, TRASTENDA_EVENT_SHORTFALL, bound, &w);
    const struct eng_stock *s = &e->stock[rec];
    wr_id(&w, &e->skus[s->sku_ix].id);
    wr_id(&w, &e->locs[s->loc_ix].id);
    wr_sv(&w, available);
    wr_uv(&w, th);
    wr_u8(&w, (uint8_t)nh);
    for (uint32_t i = 0; i < nh; i++)
        wr_uv(&w, holds[i]);
    wr_uv(&w, to);
    wr_u8(&w, (uint8_t)no);
    for (uint32_t i = 0; i < no; i++) {
        /* Order numbers are unique: find the order's id by walking the record's lines again. */
        for (uint32_t l = s->lines_head; l != ENG_NONE; l = e->lines[l].rec_next) {
            const struct eng_line *ln = &e->lines[l];
            if (ln->kind == ENG_LINE_ORDER && e->orders[ln->owner].no == orders[i]) {
                wr_id(&w, &e->orders[ln->owner].id);
                break;
            }
        }
    }
    event_end(e, st, &w, bound);
}

void
eng_emit_hold_expired(trastenda_engine *e, uint32_t h)
{
    if (!e->building) return;
    struct eng_wr w;
    uint8_t *st = event_begin(e, TRASTENDA_EVENT_HOLD_EXPIRED, 1 + VU64_B, &w);
    wr_uv(&w, e->holds[h].id);
    event_end(e, st, &w, 1 + VU64_B);
}

void
eng_emit_order_state(trastenda_engine *e, uint32_t o)
{
    if (!e->building) return;
    struct eng_wr w;
    size_t bound = 1 + ID_B + 1;
    uint8_t *st = event_begin(e, TRASTENDA_EVENT_ORDER_STATE, bound, &w);
    wr_id(&w, &e->orders[o].id);
    wr_u8(&w, e->orders[o].state);
    event_end(e, st, &w, bound);
}
