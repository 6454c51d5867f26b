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
#define REC_HDR_B 5
#define LINE_B    (2 * ID_B + 4 * 4 + 1)

/* A record's mark is its position in the dirty list + 1 (0: clean); an earlier occurrence whose
 * position no longer matches the mark is skipped when the post-images are written. */
void
eng_dirty_requeue(trastenda_engine *e, uint8_t type, uint32_t ix, uint32_t *mark)
{
    if (!e->building) return;
    TS_ASSERT(type < 16);
    struct eng_buf *b = &e->dirty[type];
    eng_buf_reserve(b, sizeof(uint32_t));
    TS_ASSERT(b->len / sizeof(uint32_t) < UINT32_MAX - 1);
    *mark = (uint32_t)(b->len / sizeof(uint32_t)) + 1;
    memcpy(b->p + b->len, &ix, sizeof(ix));
    b->len += sizeof(ix);
}

void
eng_dirty_mark(trastenda_engine *e, uint8_t type, uint32_t ix, uint32_t *mark)
{
    if (!e->building || *mark != 0) return;
    eng_dirty_requeue(e, type, ix, mark);
}

static uint8_t *
rec_begin(struct eng_buf *b, uint8_t type, size_t bound, struct eng_wr *w)
{
    eng_buf_reserve(b, REC_HDR_B + bound);
    uint8_t *start = b->p + b->len;
    w->p = start;
    wr_u8(w, type);
    wr_u32(w, 0);
    return start;
}

static void
rec_end(struct eng_buf *b, uint8_t *start, struct eng_wr *w, size_t bound)
{
    size_t body = (size_t)(w->p - start) - REC_HDR_B;
    TS_ASSERT(body <= bound);
    struct eng_wr lw = {start + 1};
    wr_u32(&lw, (uint32_t)body);
    b->len += (size_t)(w->p - start);
}

static void
wr_id(struct eng_wr *w, const struct eng_id *id)
{
    wr_str(w, id->s, id->len);
}

/* ---- post-image encoders (also used by the digest) ---- */

void
eng_enc_location(const trastenda_engine *e, struct eng_buf *b, uint32_t ix)
{
    const struct eng_location *l = &e->locs[ix];
    struct eng_wr w;
    size_t bound = ID_B + STR_B + 4 * 4 + 1;
    uint8_t *st = rec_begin(b, TRASTENDA_REC_LOCATION, bound, &w);
    wr_id(&w, &l->id);
    wr_str(&w, l->name.s, l->name.len);
    wr_i32(&w, l->lat_e6);
    wr_i32(&w, l->lon_e6);
    wr_i32(&w, l->priority);
    wr_u32(&w, l->channels);
    wr_u8(&w, l->active);
    rec_end(b, st, &w, bound);
}

void
eng_enc_sku(const trastenda_engine *e, struct eng_buf *b, uint32_t ix)
{
    const struct eng_sku *s = &e->skus[ix];
    struct eng_wr w;
    size_t bound = ID_B + STR_B + 4 * 4 + 1;
    uint8_t *st = rec_begin(b, TRASTENDA_REC_SKU, bound, &w);
    wr_id(&w, &s->id);
    wr_str(&w, s->name.s, s->name.len);
    wr_i32(&w, s->reorder_point);
    wr_i32(&w, s->reorder_qty);
    wr_i32(&w, s->lead_days);
    wr_i32(&w, s->safety_default);
    wr_u8(&w, s->active);
    rec_end(b, st, &w, bound);
}

void
eng_enc_stock(const trastenda_engine *e, struct eng_buf *b, uint32_t ix)
{
    const struct eng_stock *s = &e->stock[ix];
    const struct eng_velocity *v = &e->vel[ix];
    struct eng_wr w;
    size_t bound = 2 * ID_B + 4 * (TRASTENDA_Q_COUNT_ + 2 + TRASTENDA_VELOCITY_DAYS);
    uint8_t *st = rec_begin(b, TRASTENDA_REC_STOCK, bound, &w);
    wr_id(&w, &e->skus[s->sku_ix].id);
    wr_id(&w, &e->locs[s->loc_ix].id);
    for (int i = 0; i < TRASTENDA_Q_COUNT_; i++)
        wr_i32(&w, s->q[i]);
    wr_u32(&w, s->flags);
    wr_i32(&w, v->day);
    for (int i = 0; i < TRASTENDA_VELOCITY_DAYS; i++)
        wr_u32(&w, v->units[i]);
    rec_end(b, st, &w, bound);
}

static void
enc_line(const trastenda_engine *e, struct eng_wr *w, const struct eng_line *l)
{
    wr_id(w, &e->skus[l->sku_ix].id);
    wr_id(w, &e->locs[l->loc_ix].id);
    wr_i32(w, l->qty);
    wr_i32(w, l->done);
    wr_i32(w, l->returned);
    wr_u8(w, l->state);
}

void
eng_enc_hold(const trastenda_engine *e, struct eng_buf *b, uint32_t ix)
{
    const struct eng_hold *h = &e->holds[ix];
    struct eng_wr w;
    size_t bound = 8 + 3 + 8 * 4 + 8 + 2 + (size_t)h->line_count * LINE_B;
    uint8_t *st = rec_begin(b, TRASTENDA_REC_HOLD, bound, &w);
    wr_u64(&w, h->id);
    wr_u8(&w, h->state);
    wr_u8(&w, h->channel);
    wr_u8(&w, h->has_ship_to);
    wr_i64(&w, h->created_ms);
    wr_i64(&w, h->expires_ms);
    wr_i64(&w, h->resolved_ms);
    wr_u64(&w, h->order_no);
    wr_i32(&w, h->lat_e6);
    wr_i32(&w, h->lon_e6);
    wr_u16(&w, (uint16_t)h->line_count);
    uint32_t n = 0;
    for (uint32_t l = h->lines_head; l != ENG_NONE; l = e->lines[l].next, n++)
        enc_line(e, &w, &e->lines[l]);
    TS_ASSERT(n == h->line_count);
    rec_end(b, st, &w, bound);
}

void
eng_enc_order(const trastenda_engine *e, struct eng_buf *b, uint32_t ix)
{
    const struct eng_order *o = &e->orders[ix];
    struct eng_wr w;
    size_t bound = ID_B + 8 * 6 + 8 + 3 + 2 + (size_t)o->alloc_count * LINE_B;
    uint8_t *st = rec_begin(b, TRASTENDA_REC_ORDER, bound, &w);
    wr_id(&w, &o->id);
    wr_u64(&w, o->no);
    wr_u64(&w, o->payload_hash);
    wr_u64(&w, o->hold_id);
    wr_i64(&w, o->created_ms);
    wr_i64(&w, o->updated_ms);
    wr_i64(&w, o->finished_ms);
    wr_i32(&w, o->lat_e6);
    wr_i32(&w, o->lon_e6);
    wr_u8(&w, o->state);
    wr_u8(&w, o->rule);
    wr_u8(&w, o->channel);
    wr_u16(&w, (uint16_t)o->alloc_count);
    uint32_t n = 0;
    for (uint32_t l = o->lines_head; l != ENG_NONE; l = e->lines[l].next, n++)
        enc_line(e, &w, &e->lines[l]);
    TS_ASSERT(n == o->alloc_count);
    rec_end(b, st, &w, bound);
}

void
eng_enc_po(const trastenda_engine *e, struct eng_buf *b, uint32_t ix)
{
    const struct eng_po *p = &e->pos[ix];
    struct eng_wr w;
    size_t bound = ID_B + 1 + 16 + 2 + (size_t)p->line_count * LINE_B;
    uint8_t *st = rec_begin(b, TRASTENDA_REC_PO, bound, &w);
    wr_id(&w, &p->id);
    wr_u8(&w, p->open);
    wr_i64(&w, p->created_ms);
    wr_i64(&w, p->updated_ms);
    wr_u16(&w, (uint16_t)p->line_count);
    uint32_t n = 0;
    for (uint32_t l = p->lines_head; l != ENG_NONE; l = e->lines[l].next, n++)
        enc_line(e, &w, &e->lines[l]);
    TS_ASSERT(n == p->line_count);
    rec_end(b, st, &w, bound);
}

void
eng_enc_key(const trastenda_engine *e, struct eng_buf *b, uint32_t ix)
{
    const struct eng_key *k = &e->keys[ix];
    struct eng_wr w;
    size_t bound = ID_B + 8 * 4 + 3;
    uint8_t *st = rec_begin(b, TRASTENDA_REC_KEY, bound, &w);
    wr_id(&w, &k->key);
    wr_u64(&w, k->payload_hash);
    wr_i64(&w, k->created_ms);
    wr_u64(&w, k->result_id);
    wr_i64(&w, k->result_value);
    wr_u8(&w, k->op);
    wr_u8(&w, k->rule);
    wr_u8(&w, k->state);
    rec_end(b, st, &w, bound);
}

void
eng_enc_meta(const trastenda_engine *e, struct eng_buf *b)
{
    struct eng_wr w;
    uint8_t *st = rec_begin(b, TRASTENDA_REC_META, 24, &w);
    wr_u64(&w, e->next_hold_id);
    wr_u64(&w, e->next_order_no);
    wr_u64(&w, e->ledger_seq);
    rec_end(b, st, &w, 24);
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
    uint8_t *st = rec_begin(&e->entry, type, ID_B + 8, &w);
    if (type == TRASTENDA_REC_HOLD_REMOVED)
        wr_u64(&w, num);
    else
        wr_str(&w, id.ptr, id.len);
    rec_end(&e->entry, st, &w, ID_B + 8);
    e->entry_records++;
}

typedef void (*enc_fn)(const trastenda_engine *e, struct eng_buf *b, uint32_t ix);

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

static void
post_images(trastenda_engine *e, uint8_t type, enc_fn enc)
{
    const struct eng_buf *d = &e->dirty[type];
    uint32_t n = (uint32_t)(d->len / sizeof(uint32_t));
    volatile uint64_t touched = 0; /* volatile: the loads must happen */
    for (uint32_t i = 0; i < n; i++) {
        if (type == TRASTENDA_REC_STOCK && i % IMAGE_TOUCH_CHUNK == 0)
            touched += touch_stock_images(e, d, i, TS_MIN(n, i + IMAGE_TOUCH_CHUNK));
        uint32_t ix = dirty_at(d, i);
        uint32_t *mark = mark_of(e, type, ix);
        TS_ASSERT(*mark != 0);
        if (*mark != i + 1) continue; /* requeued: its post-image comes later */
        *mark = 0;
        enc(e, &e->entry, ix);
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
    post_images(e, TRASTENDA_REC_LOCATION, eng_enc_location);
    post_images(e, TRASTENDA_REC_SKU, eng_enc_sku);
    post_images(e, TRASTENDA_REC_STOCK, eng_enc_stock);
    post_images(e, TRASTENDA_REC_HOLD, eng_enc_hold);
    post_images(e, TRASTENDA_REC_ORDER, eng_enc_order);
    post_images(e, TRASTENDA_REC_PO, eng_enc_po);
    post_images(e, TRASTENDA_REC_KEY, eng_enc_key);
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
    size_t bound = 8 + 2 * ID_B + 3 + 4 * TRASTENDA_Q_COUNT_ + 1 + 8 + 2 * ID_B;
    uint8_t *st = rec_begin(&e->side, TRASTENDA_REC_LEDGER, bound, &w);
    wr_u64(&w, ++e->ledger_seq);
    wr_id(&w, &e->skus[s->sku_ix].id);
    wr_id(&w, &e->locs[s->loc_ix].id);
    wr_u8(&w, mv->move);
    wr_u8(&w, mv->cause);
    uint8_t mask = 0;
    for (int i = 0; i < TRASTENDA_Q_COUNT_; i++)
        if (delta[i] != 0) mask |= (uint8_t)(1u << i);
    wr_u8(&w, mask);
    for (int i = 0; i < TRASTENDA_Q_COUNT_; i++)
        if (delta[i] != 0) wr_i32(&w, delta[i]);
    wr_u8(&w, mv->ref_kind);
    wr_u64(&w, mv->ref_id);
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
    size_t bound = 1 + 2 * ID_B + 8;
    uint8_t *st = event_begin(e, kind, bound, &w);
    wr_id(&w, &e->skus[s->sku_ix].id);
    wr_id(&w, &e->locs[s->loc_ix].id);
    wr_i64(&w, available);
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
    size_t bound = 1 + 2 * ID_B + 8 + 4 + 1 + 8 * TRASTENDA_AT_RISK_LISTED_MAX + 4 + 1 +
                   ID_B * TRASTENDA_AT_RISK_LISTED_MAX;
    uint8_t *st = event_begin(e, TRASTENDA_EVENT_SHORTFALL, bound, &w);
    const struct eng_stock *s = &e->stock[rec];
    wr_id(&w, &e->skus[s->sku_ix].id);
    wr_id(&w, &e->locs[s->loc_ix].id);
    wr_i64(&w, available);
    wr_u32(&w, th);
    wr_u8(&w, (uint8_t)nh);
    for (uint32_t i = 0; i < nh; i++)
        wr_u64(&w, holds[i]);
    wr_u32(&w, to);
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
    uint8_t *st = event_begin(e, TRASTENDA_EVENT_HOLD_EXPIRED, 9, &w);
    wr_u64(&w, e->holds[h].id);
    event_end(e, st, &w, 9);
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
