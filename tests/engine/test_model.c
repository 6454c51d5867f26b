/*
 * tests/engine/test_model.c - model-based test: long random command sequences applied to the
 * engine and to a small reference model of its stock semantics, compared after every batch.
 *
 * The model (struct model, m_* functions) is written for clarity, not speed: plain arrays, linear
 * scans, one function per command that states the rules and the order in which the command checks
 * its fields (the first failing check decides the error code). It knows locations, SKUs, stock
 * records, holds (explicit and routed lines), orders (confirmed from holds, or placed and routed),
 * purchase orders, idempotency keys, hold expiry and the retention windows, all by batch time.
 *
 * Routing is modelled through the geometry of the fixture: every location sits on the equator at
 * longitude 2^i degrees and every ship-to is (0, 0), so ranking by distance is ranking by index,
 * and two different sets of locations always have different total distances, ordered like the
 * bit masks of their indices. The single rule then takes the first location that covers the
 * order; the exact rule the smallest covering set, and among those the smallest mask.
 *
 * The generator (gen_*) draws commands from a splitmix64 stream with a fixed seed per run,
 * weighted toward holds, orders and stock moves, with invalid commands mixed in: unknown ids,
 * zero and huge quantities, over-reservation, wrong states, idempotency keys reused with other
 * payloads. Batches of 1..64 commands run at a time that advances randomly, sometimes past every
 * TTL and retention window. After each batch every result (code, line, ids, values, states,
 * placements) is compared with the model's, and every stock record the batch touched is read
 * back; every ~1000 commands all records, the table sizes, availability and the engine's own
 * invariant check are compared too. A mismatch names the seed and the command index.
 *
 * Environment: TS_MODEL_COMMANDS sets the commands per seed (default 125000, 8 seeds; the
 * coverage checks at the end of a seed need at least half that);
 * TS_MODEL_SEED runs only that seed; TS_MODEL_TRACE prints every command and both results.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rng.h"
#include "trastenda.h"
#include "trastenda/engine.h"
#include "trastenda/log.h"

/* ---- the fixture ---- */

#define T0                 INT64_C(1700000000000)
#define N_LOCS             6
#define N_SKUS             10 /* ids s0..s9; at most SKUS_MAX of them can exist */
#define SKUS_MAX           8
#define SKUS_AT_START      6
#define QMAX               TRASTENDA_QTY_MAX
#define HOLD_RETENTION_MS  4000
#define ORDER_RETENTION_MS 20000
#define KEY_RETENTION_MS   10000
#define EXPIRE_PER_BATCH   8
#define PURGE_PER_BATCH    16
#define BATCH_MAX          64
#define GEN_LINES_MAX      6  /* lines of a generated hold, order, return or PO */
#define ALLOCS_MAX         64 /* placements or shortages of one model result */
#define COMMANDS_DEFAULT   125000
#define FULL_CHECK_EVERY   1000
#define NONE32             UINT32_MAX

static const char *const LOC_IDS[N_LOCS] = {"l0", "l1", "l2", "l3", "l4", "l5"};
static const char *const SKU_IDS[N_SKUS] = {"s0", "s1", "s2", "s3", "s4",
                                            "s5", "s6", "s7", "s8", "s9"};

/* Channels: "web" is registered first (bit 0), "store" second (bit 1). A model channel is the
 * bit index + 1, 0 for none, as the engine stores it. */
enum {
    CH_NONE = 0,
    CH_WEB = 1,
    CH_STORE = 2
};
/* Every location serves web; only l4 serves store (no route for store while l4 is inactive). */
static const uint32_t LOC_CHANNELS[N_LOCS] = {1u, 1u, 1u, 1u, 3u, 1u};

static int32_t
loc_lon_e6(int l)
{
    return (int32_t)((1 << l) * 1000000); /* 1, 2, 4, 8, 16, 32 degrees east */
}

static int32_t
loc_priority(int l)
{
    return N_LOCS - l; /* the opposite of the distance order: distance must win */
}

static char LONG_ID[TRASTENDA_ID_BYTES_MAX + 2]; /* 65 bytes: one over the limit */
static const char BAD_ID[] = "a\x01";            /* a control character */

static void
engine_config(trastenda_engine_config *cfg)
{
    trastenda_engine_config_default(cfg);
    cfg->locations_max = 8;
    cfg->skus_max = SKUS_MAX;
    cfg->stock_max = 128;
    cfg->holds_max = 16384;
    cfg->orders_max = 16384;
    cfg->pos_max = 2048;
    cfg->keys_max = 16384;
    cfg->lines_max = 131072;
    cfg->batch_cmds_max = 1024; /* the result arena grows with it: never full here */
    cfg->expire_per_batch_max = EXPIRE_PER_BATCH;
    cfg->purge_per_batch_max = PURGE_PER_BATCH;
    cfg->hold_retention_ms = HOLD_RETENTION_MS;
    cfg->order_retention_ms = ORDER_RETENTION_MS;
    cfg->key_retention_ms = KEY_RETENTION_MS;
}

/* ---- small containers ---- */

#define GROW(ptr, cap, need)                                                                       \
    do {                                                                                           \
        if ((size_t)(need) > (size_t)(cap)) {                                                      \
            size_t ncap_ = (size_t)(cap)*2 + 16;                                                   \
            while (ncap_ < (size_t)(need))                                                         \
                ncap_ *= 2;                                                                        \
            void *np_ = realloc((ptr), ncap_ * sizeof(*(ptr)));                                    \
            cr_assert_not_null(np_);                                                               \
            memset((char *)np_ + (size_t)(cap) * sizeof(*(ptr)), 0,                                \
                   (ncap_ - (size_t)(cap)) * sizeof(*(ptr)));                                      \
            (ptr) = np_;                                                                           \
            (cap) = ncap_;                                                                         \
        }                                                                                          \
    } while (0)

struct bytes {
    uint8_t *p;
    size_t len, cap;
};

static void
bytes_put(struct bytes *b, const void *p, size_t n)
{
    GROW(b->p, b->cap, b->len + n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static bool
bytes_eq(const struct bytes *a, const struct bytes *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

static void
bytes_copy(struct bytes *dst, const struct bytes *src)
{
    dst->len = 0;
    bytes_put(dst, src->p, src->len);
}

/* A set of numbers (hold ids, order or PO name numbers) with O(1) removal; each member remembers
 * its position through the pos pointer the caller keeps. */
struct idset {
    uint64_t *v;
    size_t n, cap;
};

/* Retention FIFO: (item, stamp) in push order. An entry whose item was pushed again later (a new
 * stamp) or removed is stale and skipped. */
struct fifo {
    struct fifo_ent {
        uint64_t item, stamp;
    } * v;
    size_t head, n, cap;
};

static void
fifo_push(struct fifo *f, uint64_t item, uint64_t stamp)
{
    GROW(f->v, f->cap, f->n + 1);
    f->v[f->n++] = (struct fifo_ent){item, stamp};
}

/* ---- the model ---- */

struct m_line {
    int sku, loc; /* indices into SKU_IDS / LOC_IDS */
    int64_t qty, done, returned;
    uint8_t state; /* order allocations */
};

struct m_rec {
    bool exists;
    int64_t q[TRASTENDA_Q_COUNT_];
};

struct m_hold {
    bool present;
    uint8_t state;
    bool has_ship_to;
    int64_t expires_ms, resolved_ms;
    struct m_line *lines;
    uint32_t n;
    size_t open_pos; /* in model.open while open */
};

struct m_order {
    bool present;
    uint8_t state, rule;
    uint64_t no, hold_id;
    int64_t finished_ms;
    uint64_t stamp; /* of its entry in the retention FIFO, 0 when none */
    struct bytes payload;
    struct m_line *lines;
    uint32_t n;
    size_t live_pos; /* in model.live_orders while present */
};

struct m_po {
    bool present, open;
    int64_t updated_ms;
    struct m_line *lines; /* qty ordered, done received */
    uint32_t n;
    size_t live_pos;
};

struct m_key {
    bool present;
    uint8_t op, rule, state;
    int64_t created_ms;
    uint64_t id;
    int64_t value;
    struct bytes payload;
};

struct model {
    int64_t now;
    bool loc_active[N_LOCS];
    struct {
        bool exists, active;
        uint32_t ix; /* the engine's index: creation order */
        int64_t safety_default;
    } sku[N_SKUS];
    uint32_t sku_count;
    struct m_rec rec[N_SKUS][N_LOCS];
    bool touched[N_SKUS][N_LOCS]; /* changed or created in the current batch */
    uint32_t rec_count;
    uint64_t next_hold_id, next_order_no;

    struct m_hold *holds; /* by hold id */
    size_t holds_cap;
    struct m_order *orders; /* by the number of the order id "o<n>" */
    size_t orders_cap;
    struct m_po *pos; /* by the number of the PO id "p<n>" */
    size_t pos_cap;
    struct m_key *keys; /* by the number of the key "k<n>" */
    size_t keys_cap;

    struct idset open;        /* open hold ids */
    struct idset live_orders; /* orders in memory */
    struct idset live_pos;    /* purchase orders in memory */
    struct fifo hold_q, order_q, po_q, key_q;
    uint64_t stamp;
    uint32_t n_holds, n_orders, n_pos, n_keys, n_lines;

    uint64_t expired, purged; /* coverage */
};

/* The number n of an id "<prefix><n>" (no leading zero), or -1 when it is not of that form. */
static int64_t
id_num(trastenda_str s, char prefix)
{
    if (s.len < 2 || s.len > 10 || s.ptr == NULL || s.ptr[0] != prefix) return -1;
    if (s.ptr[1] == '0' && s.len > 2) return -1;
    int64_t n = 0;
    for (uint32_t i = 1; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9') return -1;
        n = n * 10 + (s.ptr[i] - '0');
    }
    return n;
}

static bool
str_is(trastenda_str s, const char *c)
{
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

static void
set_add(struct idset *s, uint64_t item, size_t *pos)
{
    GROW(s->v, s->cap, s->n + 1);
    *pos = s->n;
    s->v[s->n++] = item;
}

static struct m_hold *
m_hold_at(struct model *m, uint64_t id)
{
    if (id == 0 || id >= m->holds_cap || !m->holds[id].present) return NULL;
    return &m->holds[id];
}

static struct m_order *
m_order_at(struct model *m, trastenda_str id)
{
    int64_t n = id_num(id, 'o');
    if (n < 0 || (size_t)n >= m->orders_cap || !m->orders[n].present) return NULL;
    return &m->orders[n];
}

static struct m_po *
m_po_at(struct model *m, trastenda_str id)
{
    int64_t n = id_num(id, 'p');
    if (n < 0 || (size_t)n >= m->pos_cap || !m->pos[n].present) return NULL;
    return &m->pos[n];
}

static struct m_key *
m_key_at(struct model *m, trastenda_str key)
{
    int64_t n = id_num(key, 'k');
    if (n < 0 || (size_t)n >= m->keys_cap || !m->keys[n].present) return NULL;
    return &m->keys[n];
}

static void
open_del(struct model *m, struct m_hold *h)
{
    size_t pos = h->open_pos;
    uint64_t last = m->open.v[--m->open.n];
    m->open.v[pos] = last;
    m->holds[last].open_pos = pos;
}

static void
live_order_del(struct model *m, struct m_order *o)
{
    size_t pos = o->live_pos;
    uint64_t last = m->live_orders.v[--m->live_orders.n];
    m->live_orders.v[pos] = last;
    m->orders[last].live_pos = pos;
}

static void
live_po_del(struct model *m, struct m_po *p)
{
    size_t pos = p->live_pos;
    uint64_t last = m->live_pos.v[--m->live_pos.n];
    m->live_pos.v[pos] = last;
    m->pos[last].live_pos = pos;
}

/* ---- the payload of a command: the fields its effect depends on (not the key, not the actor) */

static void
pay_i64(struct bytes *b, int64_t v)
{
    bytes_put(b, &v, sizeof(v));
}

static void
pay_str(struct bytes *b, trastenda_str s)
{
    pay_i64(b, s.len);
    if (s.len > 0) bytes_put(b, s.ptr, s.len);
}

/* A ref is its id when given, else its index (ids never move). */
static void
pay_ref(struct bytes *b, const trastenda_ref *r)
{
    if (r->id.len > 0) {
        pay_i64(b, 1);
        pay_str(b, r->id);
    } else {
        pay_i64(b, 2);
        pay_i64(b, r->ix);
    }
}

static void
payload(const trastenda_cmd *c, struct bytes *b)
{
    b->len = 0;
    pay_i64(b, c->op);
    pay_i64(b, c->reason);
    pay_str(b, c->reference);
    pay_ref(b, &c->sku);
    pay_ref(b, &c->loc);
    pay_ref(b, &c->loc_to);
    pay_str(b, c->order_id);
    pay_str(b, c->po_id);
    pay_str(b, c->channel);
    pay_str(b, c->name);
    int64_t nums[] = {(int64_t)c->hold_id, c->qty,          c->has_expected ? c->expected : 0,
                      c->ttl_ms,           c->lat_e6,       c->lon_e6,
                      c->has_ship_to,      c->partial,      c->has_expected,
                      c->reorder_point,    c->reorder_qty,  c->safety_stock,
                      c->lead_days,        c->priority,     c->active,
                      c->line_count,       c->channel_count};
    bytes_put(b, nums, sizeof(nums));
    for (uint32_t i = 0; i < c->channel_count && c->channels != NULL; i++)
        pay_str(b, c->channels[i]);
    for (uint32_t i = 0; i < c->line_count && c->lines != NULL; i++) {
        pay_ref(b, &c->lines[i].sku);
        pay_ref(b, &c->lines[i].loc);
        pay_i64(b, c->lines[i].qty);
        pay_i64(b, c->lines[i].flags);
    }
}

/* ---- expected results ---- */

struct m_result {
    trastenda_err code;
    uint32_t line;
    uint8_t duplicate, rule, state;
    uint64_t id;
    int64_t value;
    uint32_t alloc_count;
    trastenda_alloc allocs[ALLOCS_MAX];
};

static bool
failed(struct m_result *r, trastenda_err err)
{
    if (err == TRASTENDA_OK) return false;
    r->code = err;
    return true;
}

static void
result_alloc(struct m_result *r, uint32_t sku_ix, uint32_t loc_ix, int64_t qty, int64_t short_qty)
{
    cr_assert_lt(r->alloc_count, ALLOCS_MAX, "model: too many allocations in one result");
    r->allocs[r->alloc_count++] = (trastenda_alloc){sku_ix, loc_ix, qty, short_qty};
}

static void
result_lines(const struct model *m, struct m_result *r, const struct m_line *ln, uint32_t n)
{
    r->alloc_count = 0;
    for (uint32_t i = 0; i < n; i++)
        result_alloc(r, m->sku[ln[i].sku].ix, (uint32_t)ln[i].loc, ln[i].qty, 0);
}

/* ---- field checks, in the engine's words ---- */

/* Ids: UTF-8 without control characters, 1..64 bytes (the generator uses ASCII only). */
static trastenda_err
m_text_check(trastenda_str s, bool required, uint32_t max)
{
    if (s.len == 0) return required ? TRASTENDA_E_INVALID : TRASTENDA_OK;
    if (s.ptr == NULL) return TRASTENDA_E_INVALID;
    if (s.len > max) return TRASTENDA_E_LIMIT;
    for (uint32_t i = 0; i < s.len; i++) {
        uint8_t ch = (uint8_t)s.ptr[i];
        cr_assert_lt(ch, 0x80, "model: ids are ASCII");
        if (ch < 0x20 || ch == 0x7f) return TRASTENDA_E_INVALID;
    }
    return TRASTENDA_OK;
}

static trastenda_err
m_id_check(trastenda_str s, bool required)
{
    return m_text_check(s, required, TRASTENDA_ID_BYTES_MAX);
}

static bool
in_range(int64_t v, int64_t lo, int64_t hi)
{
    return v >= lo && v <= hi;
}

/* A SKU by index hint or id: unknown index or id -> E_UNKNOWN_SKU. */
static trastenda_err
m_sku_resolve(const struct model *m, const trastenda_ref *ref, int *out)
{
    if (ref->ix != TRASTENDA_IX_NONE) {
        for (int i = 0; i < N_SKUS; i++)
            if (m->sku[i].exists && m->sku[i].ix == ref->ix) {
                *out = i;
                return TRASTENDA_OK;
            }
        return TRASTENDA_E_UNKNOWN_SKU;
    }
    trastenda_err err = m_id_check(ref->id, true);
    if (err != TRASTENDA_OK) return err;
    for (int i = 0; i < N_SKUS; i++)
        if (m->sku[i].exists && str_is(ref->id, SKU_IDS[i])) {
            *out = i;
            return TRASTENDA_OK;
        }
    return TRASTENDA_E_UNKNOWN_SKU;
}

static trastenda_err
m_loc_resolve(const trastenda_ref *ref, int *out)
{
    if (ref->ix != TRASTENDA_IX_NONE) {
        if (ref->ix >= N_LOCS) return TRASTENDA_E_UNKNOWN_LOCATION;
        *out = (int)ref->ix;
        return TRASTENDA_OK;
    }
    trastenda_err err = m_id_check(ref->id, true);
    if (err != TRASTENDA_OK) return err;
    for (int i = 0; i < N_LOCS; i++)
        if (str_is(ref->id, LOC_IDS[i])) {
            *out = i;
            return TRASTENDA_OK;
        }
    return TRASTENDA_E_UNKNOWN_LOCATION;
}

static bool
ref_given(const trastenda_ref *ref)
{
    return ref->id.len > 0 || ref->ix != TRASTENDA_IX_NONE;
}

/* A channel name: "" is none (E_INVALID when required), unknown names are E_INVALID. */
static trastenda_err
m_channel_resolve(trastenda_str name, bool required, int *ch)
{
    *ch = CH_NONE;
    trastenda_err err = m_id_check(name, required);
    if (err != TRASTENDA_OK || name.len == 0) return err;
    if (str_is(name, "web"))
        *ch = CH_WEB;
    else if (str_is(name, "store"))
        *ch = CH_STORE;
    else
        return TRASTENDA_E_INVALID;
    return TRASTENDA_OK;
}

static bool
serves(int loc, int ch)
{
    return ch == CH_NONE || (LOC_CHANNELS[loc] & (1u << (ch - 1))) != 0;
}

/* The ship-to: required for routed lines; when given, within lat/lon ranges. */
static trastenda_err
m_ship_to_check(const trastenda_cmd *c, bool required)
{
    if (!c->has_ship_to) return required ? TRASTENDA_E_INVALID : TRASTENDA_OK;
    if (!in_range(c->lat_e6, -90000000, 90000000)) return TRASTENDA_E_INVALID;
    if (!in_range(c->lon_e6, -180000000, 180000000)) return TRASTENDA_E_INVALID;
    return TRASTENDA_OK;
}

/* ---- stock records ---- */

static int64_t
q(const struct model *m, int s, int l, int k)
{
    return m->rec[s][l].exists ? m->rec[s][l].q[k] : 0;
}

/* free = on_hand - committed - held - unsellable. Below 0 the record is in shortfall and its
 * available is that (negative) figure; otherwise safety stock is held back, floored at 0. */
static int64_t
rec_free(const struct m_rec *r)
{
    return r->q[TRASTENDA_Q_ON_HAND] - r->q[TRASTENDA_Q_COMMITTED] - r->q[TRASTENDA_Q_HELD] -
           r->q[TRASTENDA_Q_UNSELLABLE];
}

static int64_t
rec_available(const struct m_rec *r)
{
    int64_t f = rec_free(r);
    if (f < 0) return f;
    return f > r->q[TRASTENDA_Q_SAFETY] ? f - r->q[TRASTENDA_Q_SAFETY] : 0;
}

static bool
in_shortfall(const struct model *m, int s, int l)
{
    return m->rec[s][l].exists && rec_available(&m->rec[s][l]) < 0;
}

/* What can be sold now: 0 without a record, at an inactive location or in shortfall. */
static int64_t
sellable(const struct model *m, int s, int l)
{
    if (!m->rec[s][l].exists || !m->loc_active[l]) return 0;
    int64_t a = rec_available(&m->rec[s][l]);
    return a > 0 ? a : 0;
}

/* The record of (s, l), created with the SKU's default safety stock when absent; marked as
 * touched by the batch. */
static struct m_rec *
rec_get(struct model *m, int s, int l)
{
    struct m_rec *r = &m->rec[s][l];
    if (!r->exists) {
        memset(r, 0, sizeof(*r));
        r->exists = true;
        r->q[TRASTENDA_Q_SAFETY] = m->sku[s].safety_default;
        m->rec_count++;
    }
    m->touched[s][l] = true;
    return r;
}

/* ---- holds ---- */

static struct m_hold *
hold_new(struct model *m)
{
    uint64_t id = ++m->next_hold_id;
    GROW(m->holds, m->holds_cap, id + 1);
    struct m_hold *h = &m->holds[id];
    memset(h, 0, sizeof(*h));
    h->present = true;
    m->n_holds++;
    return h;
}

/* Release or expiry: the held units go back. */
static void
hold_resolve(struct model *m, uint64_t id, uint8_t state)
{
    struct m_hold *h = &m->holds[id];
    for (uint32_t i = 0; i < h->n; i++)
        rec_get(m, h->lines[i].sku, h->lines[i].loc)->q[TRASTENDA_Q_HELD] -= h->lines[i].qty;
    h->state = state;
    h->resolved_ms = m->now;
    open_del(m, h);
    fifo_push(&m->hold_q, id, ++m->stamp);
}

/* The hold a command names, open and not yet due (EXTEND, RELEASE, CONFIRM). The hold's state
 * is reported even when the command fails. */
static trastenda_err
open_hold(struct model *m, uint64_t id, struct m_result *r, struct m_hold **out)
{
    struct m_hold *h = m_hold_at(m, id);
    if (h == NULL) return TRASTENDA_E_UNKNOWN_HOLD;
    r->state = h->state;
    if (h->state == TRASTENDA_HOLD_EXPIRED ||
        (h->state == TRASTENDA_HOLD_OPEN && h->expires_ms <= m->now))
        return TRASTENDA_E_HOLD_EXPIRED;
    if (h->state != TRASTENDA_HOLD_OPEN) return TRASTENDA_E_STATE;
    *out = h;
    return TRASTENDA_OK;
}

/* ---- orders ---- */

static bool
order_finished(uint8_t st)
{
    return st == TRASTENDA_ORDER_DELIVERED || st == TRASTENDA_ORDER_CANCELLED ||
           st == TRASTENDA_ORDER_RETURNED;
}

/* A finished order (again, for a return after delivery) starts its retention window. */
static void
order_set_state(struct model *m, struct m_order *o, uint8_t st)
{
    if (o->state == st) return;
    o->state = st;
    if (!order_finished(st)) return;
    o->finished_ms = m->now;
    o->stamp = ++m->stamp;
    fifo_push(&m->order_q, (uint64_t)(o - m->orders), o->stamp);
}

static struct m_order *
order_new(struct model *m, trastenda_str id, const trastenda_cmd *c, uint8_t rule)
{
    int64_t n = id_num(id, 'o');
    cr_assert_geq(n, 0, "generator: orders are created with ids o<n>");
    GROW(m->orders, m->orders_cap, (size_t)n + 1);
    struct m_order *o = &m->orders[n];
    cr_assert(!o->present);
    struct bytes keep = o->payload;
    memset(o, 0, sizeof(*o));
    o->payload = keep;
    payload(c, &o->payload);
    o->present = true;
    o->no = ++m->next_order_no;
    o->rule = rule;
    o->state = TRASTENDA_ORDER_ALLOCATED; /* placed and allocated in one command */
    set_add(&m->live_orders, (uint64_t)n, &o->live_pos);
    m->n_orders++;
    return o;
}

/* The order a step names; its number and state are reported even when the step fails. */
static trastenda_err
order_get(struct model *m, const trastenda_cmd *c, struct m_result *r, struct m_order **out)
{
    trastenda_err err = m_id_check(c->order_id, true);
    if (err != TRASTENDA_OK) return err;
    struct m_order *o = m_order_at(m, c->order_id);
    if (o == NULL) return TRASTENDA_E_UNKNOWN_ORDER;
    r->id = o->no;
    r->state = o->state;
    *out = o;
    return TRASTENDA_OK;
}

static void
order_result(const struct model *m, const struct m_order *o, struct m_result *r)
{
    r->id = o->no;
    r->state = o->state;
    r->rule = o->rule;
    result_lines(m, r, o->lines, o->n);
}

/* ---- catalog commands ---- */

static void
m_location_upsert(struct model *m, const trastenda_cmd *c, struct m_result *r)
{
    if (failed(r, m_id_check(c->loc.id, true))) return;
    if (failed(r, m_text_check(c->name, false, TRASTENDA_NAME_BYTES_MAX))) return;
    if (!in_range(c->lat_e6, -90000000, 90000000) || !in_range(c->lon_e6, -180000000, 180000000) ||
        !in_range(c->priority, -1000000, 1000000)) {
        r->code = TRASTENDA_E_INVALID;
        return;
    }
    int l = -1;
    cr_assert_eq(m_loc_resolve(&(trastenda_ref){c->loc.id, TRASTENDA_IX_NONE}, &l), TRASTENDA_OK,
                 "generator: only the fixture's locations are upserted");
    /* The generator upserts a location with its own channels, position and priority. */
    m->loc_active[l] = c->active != 0;
}

static void
m_location_deactivate(struct model *m, const trastenda_cmd *c, struct m_result *r)
{
    int l;
    if (failed(r, m_loc_resolve(&c->loc, &l))) return;
    m->loc_active[l] = false;
}

static int
sku_by_id(trastenda_str id)
{
    for (int i = 0; i < N_SKUS; i++)
        if (str_is(id, SKU_IDS[i])) return i;
    return -1;
}

static void
m_sku_upsert(struct model *m, const trastenda_cmd *c, struct m_result *r)
{
    if (failed(r, m_id_check(c->sku.id, true))) return;
    if (failed(r, m_text_check(c->name, false, TRASTENDA_NAME_BYTES_MAX))) return;
    if (!in_range(c->reorder_point, 0, QMAX) || !in_range(c->reorder_qty, 0, QMAX) ||
        !in_range(c->lead_days, 0, TRASTENDA_LEAD_DAYS_MAX) ||
        !in_range(c->safety_stock, 0, QMAX)) {
        r->code = TRASTENDA_E_INVALID;
        return;
    }
    int s = sku_by_id(c->sku.id);
    cr_assert_geq(s, 0, "generator: SKU ids are s0..s9");
    if (!m->sku[s].exists) {
        if (m->sku_count >= SKUS_MAX) {
            r->code = TRASTENDA_E_TABLE_FULL;
            return;
        }
        m->sku[s].exists = true;
        m->sku[s].ix = m->sku_count++;
    }
    m->sku[s].active = c->active != 0;
    m->sku[s].safety_default = c->safety_stock; /* for records created from now on */
}

static void
m_sku_deactivate(struct model *m, const trastenda_cmd *c, struct m_result *r)
{
    int s;
    if (failed(r, m_sku_resolve(m, &c->sku, &s))) return;
    m->sku[s].active = false;
}

/* ---- stock commands ---- */

static bool
check_qty(struct m_result *r, int64_t v, int64_t lo, int64_t hi)
{
    if (in_range(v, lo, hi)) return true;
    r->code = TRASTENDA_E_INVALID;
    return false;
}

static bool
fits(struct m_result *r, int64_t v)
{
    if (v <= QMAX) return true;
    r->code = TRASTENDA_E_LIMIT;
    return false;
}

static bool
reject(struct m_result *r, trastenda_err err)
{
    r->code = err;
    return false;
}

/* RECEIVE, ADJUST, COUNT: the new on_hand, or false with the error in r. */
static bool
plan_on_hand(const struct model *m, const trastenda_cmd *c, int s, int l, struct m_result *r,
             int64_t *on_hand_to)
{
    int64_t on_hand = q(m, s, l, TRASTENDA_Q_ON_HAND);
    int64_t unsellable = q(m, s, l, TRASTENDA_Q_UNSELLABLE);
    switch (c->op) {
    case TRASTENDA_OP_RECEIVE:
        if (!check_qty(r, c->qty, 1, QMAX) || !fits(r, on_hand + c->qty)) return false;
        *on_hand_to = on_hand + c->qty;
        return true;
    case TRASTENDA_OP_ADJUST:
        if (!check_qty(r, c->qty, -QMAX, QMAX)) return false;
        if (c->qty == 0) return reject(r, TRASTENDA_E_INVALID);
        if (!in_range(c->reason, TRASTENDA_REASON_COUNT, TRASTENDA_REASON_CORRECTION))
            return reject(r, TRASTENDA_E_INVALID);
        if (on_hand + c->qty < 0) return reject(r, TRASTENDA_E_INVALID);
        if (on_hand + c->qty < unsellable) return reject(r, TRASTENDA_E_INVALID);
        if (!fits(r, on_hand + c->qty)) return false;
        *on_hand_to = on_hand + c->qty;
        return true;
    default: /* COUNT: on_hand = qty, optionally only if it still is `expected` */
        if (!check_qty(r, c->qty, 0, QMAX)) return false;
        if (c->reason > TRASTENDA_REASON_CORRECTION) return reject(r, TRASTENDA_E_INVALID);
        if (c->has_expected && c->expected != on_hand) {
            r->value = on_hand;
            return reject(r, TRASTENDA_E_CAS_MISMATCH);
        }
        if (c->qty < unsellable) return reject(r, TRASTENDA_E_INVALID);
        *on_hand_to = c->qty;
        return true;
    }
}

static void
m_transfer_out(struct model *m, const trastenda_cmd *c, int s, int l, int to, struct m_result *r)
{
    if (!check_qty(r, c->qty, 1, QMAX)) return;
    if (!m->rec[s][l].exists) {
        r->code = TRASTENDA_E_NO_STOCK_RECORD;
        return;
    }
    int64_t avail = rec_available(&m->rec[s][l]);
    if (avail >= 0 && avail < c->qty) {
        r->value = avail;
        r->code = TRASTENDA_E_SHORT;
        return;
    }
    if (avail < 0) {
        r->code = TRASTENDA_E_SHORTFALL;
        return;
    }
    if (!fits(r, q(m, s, to, TRASTENDA_Q_IN_TRANSIT) + c->qty)) return;
    rec_get(m, s, l)->q[TRASTENDA_Q_ON_HAND] -= c->qty;
    rec_get(m, s, to)->q[TRASTENDA_Q_IN_TRANSIT] += c->qty;
    r->value = m->rec[s][l].q[TRASTENDA_Q_ON_HAND]; /* on_hand left at the source */
}

static void
m_stock(struct model *m, const trastenda_cmd *c, struct m_result *r)
{
    int s, l, to = -1;
    if (failed(r, m_sku_resolve(m, &c->sku, &s))) return;
    if (failed(r, m_loc_resolve(&c->loc, &l))) return;
    if (c->op == TRASTENDA_OP_TRANSFER_OUT) {
        if (failed(r, m_loc_resolve(&c->loc_to, &to))) return;
        if (to == l) {
            r->code = TRASTENDA_E_INVALID;
            return;
        }
    }
    if (failed(r, m_id_check(c->reference, false))) return;
    if (c->op == TRASTENDA_OP_TRANSFER_OUT) {
        m_transfer_out(m, c, s, l, to, r);
        return;
    }
    bool exists = m->rec[s][l].exists;
    int64_t on_hand = q(m, s, l, TRASTENDA_Q_ON_HAND);
    switch (c->op) {
    case TRASTENDA_OP_RECEIVE:
    case TRASTENDA_OP_ADJUST:
    case TRASTENDA_OP_COUNT: {
        int64_t to_on_hand;
        if (!plan_on_hand(m, c, s, l, r, &to_on_hand)) return;
        rec_get(m, s, l)->q[TRASTENDA_Q_ON_HAND] = to_on_hand;
        break;
    }
    case TRASTENDA_OP_MOVE_UNSELLABLE: {
        /* qty > 0: sellable -> unsellable; qty < 0: back. */
        if (!check_qty(r, c->qty, -QMAX, QMAX)) return;
        if (c->qty == 0 ||
            (c->reason != TRASTENDA_REASON_DAMAGE && c->reason != TRASTENDA_REASON_QUALITY &&
             c->reason != TRASTENDA_REASON_CORRECTION)) {
            r->code = TRASTENDA_E_INVALID;
            return;
        }
        if (!exists) {
            r->code = TRASTENDA_E_NO_STOCK_RECORD;
            return;
        }
        int64_t un = q(m, s, l, TRASTENDA_Q_UNSELLABLE) + c->qty;
        if (!in_range(un, 0, on_hand)) {
            r->code = TRASTENDA_E_INVALID;
            return;
        }
        rec_get(m, s, l)->q[TRASTENDA_Q_UNSELLABLE] = un;
        break;
    }
    case TRASTENDA_OP_SET_SAFETY:
        if (!check_qty(r, c->qty, 0, QMAX)) return;
        rec_get(m, s, l)->q[TRASTENDA_Q_SAFETY] = c->qty;
        break;
    default: /* TRANSFER_IN: in_transit -> on_hand */
        if (!check_qty(r, c->qty, 1, QMAX)) return;
        if (!exists) {
            r->code = TRASTENDA_E_NO_STOCK_RECORD;
            return;
        }
        if (c->qty > q(m, s, l, TRASTENDA_Q_IN_TRANSIT)) {
            r->code = TRASTENDA_E_INVALID;
            return;
        }
        if (!fits(r, on_hand + c->qty)) return;
        rec_get(m, s, l)->q[TRASTENDA_Q_IN_TRANSIT] -= c->qty;
        rec_get(m, s, l)->q[TRASTENDA_Q_ON_HAND] += c->qty;
    }
    r->value = m->rec[s][l].q[TRASTENDA_Q_ON_HAND];
}

/* ---- routing ---- */

struct want {
    int sku;
    int64_t qty;
};

struct group {
    int sku, loc;
    int64_t qty;
};

struct route {
    uint8_t rule;
    uint32_t n;
    struct group a[ALLOCS_MAX];
};

/* Chooses locations for wants (distinct SKUs) on a channel. pending: units the same command
 * already takes at (sku, loc). E_SHORT (shortage per want in r) when some active location
 * serves the channel but the units are not there, E_NO_ROUTE when none serves it. */
static trastenda_err
m_route(const struct model *m, const struct want *w, uint32_t nw, int ch, const struct group *pend,
        uint32_t np, struct m_result *r, struct route *out)
{
    int64_t sell[N_LOCS][TRASTENDA_LINES_MAX];
    for (int l = 0; l < N_LOCS; l++)
        for (uint32_t i = 0; i < nw; i++) {
            int64_t v = 0;
            if (m->loc_active[l] && serves(l, ch)) {
                v = sellable(m, w[i].sku, l);
                for (uint32_t k = 0; k < np; k++)
                    if (pend[k].sku == w[i].sku && pend[k].loc == l) v -= pend[k].qty;
            }
            sell[l][i] = v > 0 ? v : 0;
        }
    /* Locations are numbered in distance order from the ship-to. */
    uint32_t mask = 0;
    for (int l = 0; l < N_LOCS && mask == 0; l++) {
        bool all = true;
        for (uint32_t i = 0; i < nw; i++)
            all &= sell[l][i] >= w[i].qty;
        if (all) mask = 1u << l;
    }
    out->rule = TRASTENDA_RULE_SINGLE;
    if (mask == 0) {
        bool short_any = false;
        for (uint32_t i = 0; i < nw; i++) {
            int64_t total = 0;
            for (int l = 0; l < N_LOCS; l++)
                total += sell[l][i];
            short_any |= total < w[i].qty;
        }
        if (short_any) {
            bool any_serves = false;
            for (int l = 0; l < N_LOCS; l++)
                any_serves |= m->loc_active[l] && serves(l, ch);
            if (!any_serves) return TRASTENDA_E_NO_ROUTE;
            r->alloc_count = 0;
            for (uint32_t i = 0; i < nw; i++) {
                int64_t total = 0;
                for (int l = 0; l < N_LOCS; l++)
                    total += sell[l][i];
                result_alloc(r, m->sku[w[i].sku].ix, TRASTENDA_IX_NONE, w[i].qty,
                             w[i].qty > total ? w[i].qty - total : 0);
            }
            return TRASTENDA_E_SHORT;
        }
        /* Fewest locations; then the smallest total distance, which is the smallest mask. */
        out->rule = TRASTENDA_RULE_EXACT;
        for (int k = 2; k <= N_LOCS && mask == 0; k++)
            for (uint32_t cand = 1; cand < (1u << N_LOCS) && mask == 0; cand++) {
                if (__builtin_popcount(cand) != k) continue;
                bool all = true;
                for (uint32_t i = 0; i < nw; i++) {
                    int64_t sum = 0;
                    for (int l = 0; l < N_LOCS; l++)
                        if (cand & (1u << l)) sum += sell[l][i];
                    all &= sum >= w[i].qty;
                }
                if (all) mask = cand;
            }
        cr_assert_neq(mask, 0, "model: no covering set although every want is covered");
    }
    /* Each want from the chosen locations, nearest first. */
    out->n = 0;
    for (uint32_t i = 0; i < nw; i++) {
        int64_t need = w[i].qty;
        for (int l = 0; l < N_LOCS && need > 0; l++) {
            if (!(mask & (1u << l)) || sell[l][i] == 0) continue;
            int64_t take = need < sell[l][i] ? need : sell[l][i];
            cr_assert_lt(out->n, ALLOCS_MAX);
            out->a[out->n++] = (struct group){w[i].sku, l, take};
            need -= take;
        }
    }
    return TRASTENDA_OK;
}

/* ---- holds: reserve, extend, release, confirm ---- */

/* Reads the lines of a RESERVE: explicit lines grouped by (sku, loc), routed ones by sku. */
static bool
reserve_lines(const struct model *m, const trastenda_cmd *c, struct m_result *r, struct group *ex,
              uint32_t *nex, struct want *w, uint32_t *nw)
{
    if (c->line_count == 0 || c->line_count > TRASTENDA_LINES_MAX)
        return reject(r, TRASTENDA_E_LIMIT);
    if (c->lines == NULL) return reject(r, TRASTENDA_E_INVALID);
    *nex = *nw = 0;
    for (uint32_t i = 0; i < c->line_count; i++) {
        const trastenda_line *ln = &c->lines[i];
        int s, l = -1;
        r->line = i;
        if (failed(r, m_sku_resolve(m, &ln->sku, &s))) return false;
        if (!check_qty(r, ln->qty, 1, TRASTENDA_LINE_QTY_MAX)) return false;
        if (!m->sku[s].active) return reject(r, TRASTENDA_E_INACTIVE);
        if (ref_given(&ln->loc)) {
            if (failed(r, m_loc_resolve(&ln->loc, &l))) return false;
            if (!m->loc_active[l]) return reject(r, TRASTENDA_E_INACTIVE);
        }
        if (l < 0) {
            uint32_t k = 0;
            while (k < *nw && w[k].sku != s)
                k++;
            if (k == *nw) w[(*nw)++] = (struct want){s, 0};
            w[k].qty += ln->qty;
        } else {
            uint32_t k = 0;
            while (k < *nex && !(ex[k].sku == s && ex[k].loc == l))
                k++;
            if (k == *nex) ex[(*nex)++] = (struct group){s, l, 0};
            ex[k].qty += ln->qty;
        }
    }
    r->line = NONE32;
    return true;
}

/* Explicit groups against their records: all or nothing (E_SHORT naming each group's
 * shortage), or with partial what is there. No new holds on a record in shortfall. */
static bool
reserve_explicit(const struct model *m, const trastenda_cmd *c, struct m_result *r,
                 struct group *ex, uint32_t nex)
{
    if (!c->partial)
        for (uint32_t i = 0; i < nex; i++)
            if (in_shortfall(m, ex[i].sku, ex[i].loc)) return reject(r, TRASTENDA_E_SHORTFALL);
    bool short_any = false;
    for (uint32_t i = 0; i < nex; i++)
        short_any |= ex[i].qty > sellable(m, ex[i].sku, ex[i].loc);
    if (c->partial) {
        for (uint32_t i = 0; i < nex; i++) {
            int64_t avail = sellable(m, ex[i].sku, ex[i].loc);
            if (ex[i].qty > avail) ex[i].qty = avail;
        }
        return true;
    }
    if (!short_any) return true;
    for (uint32_t i = 0; i < nex; i++) {
        int64_t avail = sellable(m, ex[i].sku, ex[i].loc);
        result_alloc(r, m->sku[ex[i].sku].ix, (uint32_t)ex[i].loc, ex[i].qty,
                     ex[i].qty > avail ? ex[i].qty - avail : 0);
    }
    return reject(r, TRASTENDA_E_SHORT);
}

/* Routed wants; with partial, a shortage trims each want to what is there and routes again. */
static bool
reserve_routed(const struct model *m, const trastenda_cmd *c, struct m_result *r, struct want *w,
               uint32_t nw, int ch, const struct group *ex, uint32_t nex, struct route *rt)
{
    rt->rule = TRASTENDA_RULE_EXPLICIT;
    rt->n = 0;
    if (nw == 0) return true;
    struct route tmp;
    trastenda_err err = m_route(m, w, nw, ch, ex, nex, r, &tmp);
    if (err == TRASTENDA_E_SHORT && c->partial) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < nw; i++) {
            int64_t there = r->allocs[i].qty - r->allocs[i].short_qty;
            if (there > 0) w[n++] = (struct want){w[i].sku, there};
        }
        r->alloc_count = 0;
        if (n == 0) return true;
        err = m_route(m, w, n, ch, ex, nex, r, &tmp);
    }
    if (failed(r, err)) return false;
    *rt = tmp;
    return true;
}

static void
m_reserve(struct model *m, const trastenda_cmd *c, struct m_result *r)
{
    struct group ex[TRASTENDA_LINES_MAX];
    struct want w[TRASTENDA_LINES_MAX];
    uint32_t nex, nw;
    struct route rt;
    int ch;
    if (!check_qty(r, c->ttl_ms, TRASTENDA_TTL_MS_MIN, TRASTENDA_TTL_MS_MAX)) return;
    if (!reserve_lines(m, c, r, ex, &nex, w, &nw)) return;
    if (failed(r, m_channel_resolve(c->channel, nw > 0, &ch))) return;
    if (failed(r, m_ship_to_check(c, nw > 0))) return;
    if (!reserve_explicit(m, c, r, ex, nex)) return;
    if (!reserve_routed(m, c, r, w, nw, ch, ex, nex, &rt)) return;
    /* Placements: one per (sku, loc), explicit groups first, then the routed allocations. */
    struct group place[ALLOCS_MAX];
    uint32_t np = 0;
    for (uint32_t i = 0; i < nex + rt.n; i++) {
        const struct group *g = i < nex ? &ex[i] : &rt.a[i - nex];
        if (g->qty == 0) continue;
        uint32_t k = 0;
        while (k < np && !(place[k].sku == g->sku && place[k].loc == g->loc))
            k++;
        if (k == np) place[np++] = (struct group){g->sku, g->loc, 0};
        place[k].qty += g->qty;
    }
    if (np == 0) {
        r->code = TRASTENDA_E_SHORT; /* partial, and nothing there for any line */
        return;
    }
    struct m_hold *h = hold_new(m);
    uint64_t id = m->next_hold_id;
    h->state = TRASTENDA_HOLD_OPEN;
    h->has_ship_to = c->has_ship_to;
    h->expires_ms = m->now + c->ttl_ms;
    h->lines = calloc(np, sizeof(*h->lines));
    cr_assert_not_null(h->lines);
    h->n = np;
    for (uint32_t i = 0; i < np; i++) {
        cr_assert(m->rec[place[i].sku][place[i].loc].exists, "model: a hold on no record");
        h->lines[i] =
            (struct m_line){.sku = place[i].sku, .loc = place[i].loc, .qty = place[i].qty};
        rec_get(m, place[i].sku, place[i].loc)->q[TRASTENDA_Q_HELD] += place[i].qty;
    }
    m->n_lines += np;
    set_add(&m->open, id, &h->open_pos);
    r->id = id;
    r->value = h->expires_ms;
    r->state = TRASTENDA_HOLD_OPEN;
    r->rule = rt.rule;
    result_lines(m, r, h->lines, h->n);
}

static void
m_extend(struct model *m, const trastenda_cmd *c, struct m_result *r)
{
    struct m_hold *h;
    if (!check_qty(r, c->ttl_ms, TRASTENDA_TTL_MS_MIN, TRASTENDA_TTL_MS_MAX)) return;
    if (failed(r, open_hold(m, c->hold_id, r, &h))) return;
    h->expires_ms = m->now + c->ttl_ms;
    r->id = c->hold_id;
    r->value = h->expires_ms;
    r->state = h->state;
}

static void
m_release(struct model *m, const trastenda_cmd *c, struct m_result *r)
{
    struct m_hold *h;
    if (failed(r, open_hold(m, c->hold_id, r, &h))) return;
    hold_resolve(m, c->hold_id, TRASTENDA_HOLD_RELEASED);
    r->id = c->hold_id;
    r->state = TRASTENDA_HOLD_RELEASED;
}

/* CONFIRM: the hold's lines become the allocations of a new order (held -> committed). The same
 * confirmation again (order id and hold id) answers with the order as it is now. */
static void
m_confirm(struct model *m, const trastenda_cmd *c, struct m_result *r)
{
    if (failed(r, m_id_check(c->order_id, true))) return;
    struct m_order *o = m_order_at(m, c->order_id);
    if (o != NULL) {
        if (o->hold_id != c->hold_id || c->hold_id == 0) {
            r->code = TRASTENDA_E_DUPLICATE;
            return;
        }
        r->duplicate = 1;
        order_result(m, o, r);
        return;
    }
    struct m_hold *h;
    int ch;
    if (failed(r, open_hold(m, c->hold_id, r, &h))) return;
    if (c->channel.len > 0 && failed(r, m_channel_resolve(c->channel, false, &ch))) return;
    if (!h->has_ship_to && failed(r, m_ship_to_check(c, false))) return;
    o = order_new(m, c->order_id, c, TRASTENDA_RULE_EXPLICIT);
    o->hold_id = c->hold_id;
    o->lines = h->lines;
    o->n = h->n;
    for (uint32_t i = 0; i < o->n; i++) {
        struct m_rec *rec = rec_get(m, o->lines[i].sku, o->lines[i].loc);
        rec->q[TRASTENDA_Q_HELD] -= o->lines[i].qty;
        rec->q[TRASTENDA_Q_COMMITTED] += o->lines[i].qty;
        o->lines[i].state = TRASTENDA_ORDER_ALLOCATED;
    }
    h->lines = NULL;
    h->n = 0;
    h->state = TRASTENDA_HOLD_CONFIRMED;
    h->resolved_ms = m->now;
    open_del(m, h);
    fifo_push(&m->hold_q, c->hold_id, ++m->stamp);
    order_result(m, o, r);
}

/* ---- orders: place, steps, cancel, deliver, return ---- */

static void
m_order_place(struct model *m, const trastenda_cmd *c, struct m_result *r)
{
    if (failed(r, m_id_check(c->order_id, true))) return;
    struct m_order *o = m_order_at(m, c->order_id);
    if (o != NULL) {
        /* The order id is the idempotency key of ORDER_PLACE. */
        struct bytes p = {0};
        payload(c, &p);
        bool same = bytes_eq(&p, &o->payload);
        free(p.p);
        if (!same) {
            r->code = TRASTENDA_E_IDEMPOTENCY_MISMATCH;
            return;
        }
        r->duplicate = 1;
        order_result(m, o, r);
        return;
    }
    if (c->line_count == 0 || c->line_count > TRASTENDA_LINES_MAX) {
        r->code = TRASTENDA_E_LIMIT;
        return;
    }
    if (c->lines == NULL) {
        r->code = TRASTENDA_E_INVALID;
        return;
    }
    struct want w[TRASTENDA_LINES_MAX];
    uint32_t nw = 0;
    for (uint32_t i = 0; i < c->line_count; i++) {
        const trastenda_line *ln = &c->lines[i];
        int s;
        r->line = i;
        if (failed(r, m_sku_resolve(m, &ln->sku, &s))) return;
        if (!check_qty(r, ln->qty, 1, TRASTENDA_LINE_QTY_MAX)) return;
        if (!m->sku[s].active) {
            r->code = TRASTENDA_E_INACTIVE;
            return;
        }
        if (ref_given(&ln->loc)) { /* orders are routed; reserve then confirm to choose */
            r->code = TRASTENDA_E_INVALID;
            return;
        }
        uint32_t k = 0;
        while (k < nw && w[k].sku != s)
            k++;
        if (k == nw) w[nw++] = (struct want){s, 0};
        w[k].qty += ln->qty;
    }
    r->line = NONE32;
    int ch;
    struct route rt;
    if (failed(r, m_channel_resolve(c->channel, true, &ch))) return;
    if (failed(r, m_ship_to_check(c, true))) return;
    if (failed(r, m_route(m, w, nw, ch, NULL, 0, r, &rt))) return;
    o = order_new(m, c->order_id, c, rt.rule);
    o->lines = calloc(rt.n, sizeof(*o->lines));
    cr_assert_not_null(o->lines);
    o->n = rt.n;
    for (uint32_t i = 0; i < rt.n; i++) {
        o->lines[i] = (struct m_line){.sku = rt.a[i].sku,
                                      .loc = rt.a[i].loc,
                                      .qty = rt.a[i].qty,
                                      .state = TRASTENDA_ORDER_ALLOCATED};
        rec_get(m, rt.a[i].sku, rt.a[i].loc)->q[TRASTENDA_Q_COMMITTED] += rt.a[i].qty;
    }
    m->n_lines += rt.n;
    order_result(m, o, r);
}

static uint8_t
step_target(uint32_t op)
{
    if (op == TRASTENDA_OP_ORDER_PICK) return TRASTENDA_ORDER_PICKING;
    if (op == TRASTENDA_OP_ORDER_PACK) return TRASTENDA_ORDER_PACKED;
    return TRASTENDA_ORDER_SHIPPED;
}

/* PICK, PACK, SHIP: every allocation, or those at loc; each must be below the target state.
 * Shipping takes the units out (on_hand and committed go down), and needs them on hand. The
 * order is at its least advanced allocation. */
static void
m_order_step(struct model *m, const trastenda_cmd *c, struct m_order *o, struct m_result *r)
{
    int loc = -1;
    if (ref_given(&c->loc) && failed(r, m_loc_resolve(&c->loc, &loc))) return;
    uint8_t target = step_target(c->op);
    if (o->state == TRASTENDA_ORDER_CANCELLED || o->state >= TRASTENDA_ORDER_DELIVERED) {
        r->code = TRASTENDA_E_STATE;
        return;
    }
    uint32_t hit = 0;
    for (uint32_t i = 0; i < o->n; i++) {
        const struct m_line *ln = &o->lines[i];
        if (loc >= 0 && ln->loc != loc) continue;
        hit++;
        if (ln->state >= target) {
            r->code = TRASTENDA_E_STATE;
            return;
        }
        /* Only sellable units ship: on_hand - unsellable must cover the allocation. */
        if (target == TRASTENDA_ORDER_SHIPPED &&
            q(m, ln->sku, ln->loc, TRASTENDA_Q_ON_HAND) -
                    q(m, ln->sku, ln->loc, TRASTENDA_Q_UNSELLABLE) <
                ln->qty) {
            r->code = TRASTENDA_E_SHORT;
            return;
        }
    }
    if (hit == 0) {
        r->code = TRASTENDA_E_INVALID;
        return;
    }
    uint8_t least = TRASTENDA_ORDER_SHIPPED;
    for (uint32_t i = 0; i < o->n; i++) {
        struct m_line *ln = &o->lines[i];
        if (loc < 0 || ln->loc == loc) {
            if (target == TRASTENDA_ORDER_SHIPPED) {
                struct m_rec *rec = rec_get(m, ln->sku, ln->loc);
                rec->q[TRASTENDA_Q_ON_HAND] -= ln->qty;
                rec->q[TRASTENDA_Q_COMMITTED] -= ln->qty;
                ln->done = ln->qty;
            }
            ln->state = target;
        }
        if (ln->state < least) least = ln->state;
    }
    order_set_state(m, o, least);
}

static void
m_order_cancel(struct model *m, struct m_order *o, struct m_result *r)
{
    if (o->state == TRASTENDA_ORDER_CANCELLED || o->state >= TRASTENDA_ORDER_SHIPPED) {
        r->code = TRASTENDA_E_STATE;
        return;
    }
    for (uint32_t i = 0; i < o->n; i++)
        if (o->lines[i].state == TRASTENDA_ORDER_SHIPPED) {
            r->code = TRASTENDA_E_STATE; /* part of it shipped */
            return;
        }
    for (uint32_t i = 0; i < o->n; i++) {
        rec_get(m, o->lines[i].sku, o->lines[i].loc)->q[TRASTENDA_Q_COMMITTED] -= o->lines[i].qty;
        o->lines[i].state = TRASTENDA_ORDER_CANCELLED;
    }
    order_set_state(m, o, TRASTENDA_ORDER_CANCELLED);
}

static void
m_order_steps(struct model *m, const trastenda_cmd *c, struct m_result *r)
{
    struct m_order *o;
    if (failed(r, order_get(m, c, r, &o))) return;
    if (c->op == TRASTENDA_OP_ORDER_CANCEL) {
        m_order_cancel(m, o, r);
    } else if (c->op == TRASTENDA_OP_ORDER_DELIVER) {
        if (o->state != TRASTENDA_ORDER_SHIPPED) {
            r->code = TRASTENDA_E_STATE;
            return;
        }
        order_set_state(m, o, TRASTENDA_ORDER_DELIVERED);
    } else {
        m_order_step(m, c, o, r);
    }
    r->state = o->state;
}

static int64_t
returnable(const struct m_order *o, int s)
{
    int64_t n = 0;
    for (uint32_t i = 0; i < o->n; i++)
        if (o->lines[i].sku == s) n += o->lines[i].done - o->lines[i].returned;
    return n;
}

/* RETURN of a shipped or delivered order: lines (sku, restock location, qty, unsellable flag),
 * never more than was shipped and not yet returned. Every unit back: the order is returned. */
static void
m_order_return(struct model *m, const trastenda_cmd *c, struct m_result *r)
{
    struct m_order *o;
    int skus[TRASTENDA_LINES_MAX], locs[TRASTENDA_LINES_MAX];
    if (failed(r, order_get(m, c, r, &o))) return;
    if (o->state != TRASTENDA_ORDER_SHIPPED && o->state != TRASTENDA_ORDER_DELIVERED) {
        r->code = TRASTENDA_E_STATE;
        return;
    }
    if (c->line_count == 0 || c->line_count > TRASTENDA_LINES_MAX) {
        r->code = TRASTENDA_E_LIMIT;
        return;
    }
    if (c->lines == NULL) {
        r->code = TRASTENDA_E_INVALID;
        return;
    }
    for (uint32_t i = 0; i < c->line_count; i++) {
        r->line = i;
        if (failed(r, m_sku_resolve(m, &c->lines[i].sku, &skus[i]))) return;
        if (failed(r, m_loc_resolve(&c->lines[i].loc, &locs[i]))) return;
        if (!check_qty(r, c->lines[i].qty, 1, TRASTENDA_LINE_QTY_MAX)) return;
        int64_t asked = 0;
        for (uint32_t j = 0; j <= i; j++)
            if (skus[j] == skus[i]) asked += c->lines[j].qty;
        if (asked > returnable(o, skus[i])) {
            r->code = TRASTENDA_E_INVALID;
            return;
        }
        if (!fits(r, q(m, skus[i], locs[i], TRASTENDA_Q_ON_HAND) + asked)) return;
    }
    r->line = NONE32;
    for (uint32_t i = 0; i < c->line_count; i++) {
        int64_t qty = c->lines[i].qty;
        struct m_rec *rec = rec_get(m, skus[i], locs[i]);
        rec->q[TRASTENDA_Q_ON_HAND] += qty;
        if (c->lines[i].flags & TRASTENDA_LINE_UNSELLABLE) rec->q[TRASTENDA_Q_UNSELLABLE] += qty;
        for (uint32_t k = 0; k < o->n && qty > 0; k++) {
            struct m_line *ln = &o->lines[k];
            if (ln->sku != skus[i]) continue;
            int64_t take = qty < ln->done - ln->returned ? qty : ln->done - ln->returned;
            ln->returned += take;
            qty -= take;
        }
    }
    bool all = true;
    for (uint32_t k = 0; k < o->n; k++)
        all &= o->lines[k].returned == o->lines[k].done;
    if (all) order_set_state(m, o, TRASTENDA_ORDER_RETURNED);
    r->state = o->state;
}

/* ---- purchase orders ---- */

/* Lines of a PO command: known sku and location, qty 1..QMAX, no (sku, loc) twice. */
static bool
po_lines(const struct model *m, const trastenda_cmd *c, struct m_result *r, int *skus, int *locs)
{
    if (c->line_count == 0 || c->line_count > TRASTENDA_LINES_MAX)
        return reject(r, TRASTENDA_E_LIMIT);
    if (c->lines == NULL) return reject(r, TRASTENDA_E_INVALID);
    for (uint32_t i = 0; i < c->line_count; i++) {
        r->line = i;
        if (failed(r, m_sku_resolve(m, &c->lines[i].sku, &skus[i]))) return false;
        if (failed(r, m_loc_resolve(&c->lines[i].loc, &locs[i]))) return false;
        if (!check_qty(r, c->lines[i].qty, 1, QMAX)) return false;
        for (uint32_t j = 0; j < i; j++)
            if (skus[j] == skus[i] && locs[j] == locs[i]) return reject(r, TRASTENDA_E_INVALID);
    }
    r->line = NONE32;
    return true;
}

/* Closing drops what is still expected from incoming; the PO then waits out its retention. */
static void
po_close(struct model *m, struct m_po *p)
{
    for (uint32_t i = 0; i < p->n; i++) {
        const struct m_line *ln = &p->lines[i];
        if (ln->qty > ln->done)
            rec_get(m, ln->sku, ln->loc)->q[TRASTENDA_Q_INCOMING] -= ln->qty - ln->done;
    }
    p->open = false;
    p->updated_ms = m->now;
    fifo_push(&m->po_q, (uint64_t)(p - m->pos), ++m->stamp);
}

static void
m_po_create(struct model *m, const trastenda_cmd *c, struct m_result *r)
{
    int skus[TRASTENDA_LINES_MAX], locs[TRASTENDA_LINES_MAX];
    if (m_po_at(m, c->po_id) != NULL) {
        r->code = TRASTENDA_E_DUPLICATE;
        return;
    }
    if (!po_lines(m, c, r, skus, locs)) return;
    for (uint32_t i = 0; i < c->line_count; i++)
        if (!fits(r, q(m, skus[i], locs[i], TRASTENDA_Q_INCOMING) + c->lines[i].qty)) return;
    int64_t n = id_num(c->po_id, 'p');
    cr_assert_geq(n, 0, "generator: POs are created with ids p<n>");
    GROW(m->pos, m->pos_cap, (size_t)n + 1);
    struct m_po *p = &m->pos[n];
    memset(p, 0, sizeof(*p));
    p->present = p->open = true;
    p->updated_ms = m->now;
    p->lines = calloc(c->line_count, sizeof(*p->lines));
    cr_assert_not_null(p->lines);
    p->n = c->line_count;
    for (uint32_t i = 0; i < c->line_count; i++) {
        p->lines[i] = (struct m_line){.sku = skus[i], .loc = locs[i], .qty = c->lines[i].qty};
        rec_get(m, skus[i], locs[i])->q[TRASTENDA_Q_INCOMING] += c->lines[i].qty;
    }
    set_add(&m->live_pos, (uint64_t)n, &p->live_pos);
    m->n_pos++;
    m->n_lines += p->n;
}

static void
m_po_receive(struct model *m, const trastenda_cmd *c, struct m_po *p, struct m_result *r)
{
    int skus[TRASTENDA_LINES_MAX], locs[TRASTENDA_LINES_MAX];
    struct m_line *target[TRASTENDA_LINES_MAX];
    if (!po_lines(m, c, r, skus, locs)) return;
    for (uint32_t i = 0; i < c->line_count; i++) {
        r->line = i;
        target[i] = NULL;
        for (uint32_t k = 0; k < p->n; k++)
            if (p->lines[k].sku == skus[i] && p->lines[k].loc == locs[i]) target[i] = &p->lines[k];
        if (target[i] == NULL || c->lines[i].qty > target[i]->qty - target[i]->done) {
            r->code = TRASTENDA_E_INVALID;
            return;
        }
        if (!fits(r, q(m, skus[i], locs[i], TRASTENDA_Q_ON_HAND) + c->lines[i].qty)) return;
    }
    r->line = NONE32;
    for (uint32_t i = 0; i < c->line_count; i++) {
        struct m_rec *rec = rec_get(m, skus[i], locs[i]);
        rec->q[TRASTENDA_Q_INCOMING] -= c->lines[i].qty;
        rec->q[TRASTENDA_Q_ON_HAND] += c->lines[i].qty;
        target[i]->done += c->lines[i].qty;
    }
    bool complete = true;
    for (uint32_t k = 0; k < p->n; k++)
        complete &= p->lines[k].done == p->lines[k].qty;
    if (complete) po_close(m, p); /* a fully received PO closes by itself */
    p->updated_ms = m->now;
}

static void
m_po(struct model *m, const trastenda_cmd *c, struct m_result *r)
{
    if (failed(r, m_id_check(c->po_id, true))) return;
    if (c->op == TRASTENDA_OP_PO_CREATE) {
        m_po_create(m, c, r);
        return;
    }
    struct m_po *p = m_po_at(m, c->po_id);
    if (p == NULL) {
        r->code = TRASTENDA_E_UNKNOWN_PO;
        return;
    }
    if (!p->open) {
        r->code = TRASTENDA_E_STATE;
        return;
    }
    if (c->op == TRASTENDA_OP_PO_RECEIVE)
        m_po_receive(m, c, p, r);
    else
        po_close(m, p);
}

/* ---- one command, with its idempotency key ---- */

static void
result_init(struct m_result *r)
{
    memset(r, 0, sizeof(*r));
    r->line = NONE32;
}

static void
m_dispatch(struct model *m, const trastenda_cmd *c, struct m_result *r)
{
    switch (c->op) {
    case TRASTENDA_OP_LOCATION_UPSERT:
        m_location_upsert(m, c, r);
        break;
    case TRASTENDA_OP_LOCATION_DEACTIVATE:
        m_location_deactivate(m, c, r);
        break;
    case TRASTENDA_OP_SKU_UPSERT:
        m_sku_upsert(m, c, r);
        break;
    case TRASTENDA_OP_SKU_DEACTIVATE:
        m_sku_deactivate(m, c, r);
        break;
    case TRASTENDA_OP_RESERVE:
        m_reserve(m, c, r);
        break;
    case TRASTENDA_OP_EXTEND:
        m_extend(m, c, r);
        break;
    case TRASTENDA_OP_CONFIRM:
        m_confirm(m, c, r);
        break;
    case TRASTENDA_OP_RELEASE:
        m_release(m, c, r);
        break;
    case TRASTENDA_OP_ORDER_PLACE:
        m_order_place(m, c, r);
        break;
    case TRASTENDA_OP_ORDER_RETURN:
        m_order_return(m, c, r);
        break;
    case TRASTENDA_OP_ORDER_PICK:
    case TRASTENDA_OP_ORDER_PACK:
    case TRASTENDA_OP_ORDER_SHIP:
    case TRASTENDA_OP_ORDER_DELIVER:
    case TRASTENDA_OP_ORDER_CANCEL:
        m_order_steps(m, c, r);
        break;
    case TRASTENDA_OP_PO_CREATE:
    case TRASTENDA_OP_PO_RECEIVE:
    case TRASTENDA_OP_PO_CLOSE:
        m_po(m, c, r);
        break;
    case TRASTENDA_OP_NOOP:
        break;
    default:
        m_stock(m, c, r);
    }
}

/* A keyed command seen before: the same payload answers with the first result and changes
 * nothing (a RESERVE shows its hold as it is now); another payload is refused. */
static void
key_replay(struct model *m, const struct m_key *k, const trastenda_cmd *c, const struct bytes *p,
           struct m_result *r)
{
    if (!bytes_eq(p, &k->payload) || k->op != c->op) {
        r->code = TRASTENDA_E_IDEMPOTENCY_MISMATCH;
        return;
    }
    r->duplicate = 1;
    r->id = k->id;
    r->value = k->value;
    r->rule = k->rule;
    r->state = k->state;
    if (c->op == TRASTENDA_OP_RESERVE) {
        struct m_hold *h = m_hold_at(m, k->id);
        if (h != NULL) {
            r->state = h->state;
            result_lines(m, r, h->lines, h->n);
        }
    }
}

static void
key_remember(struct model *m, const trastenda_cmd *c, const struct bytes *p,
             const struct m_result *r)
{
    int64_t n = id_num(c->key, 'k');
    cr_assert_geq(n, 0, "generator: keys are k<n>");
    GROW(m->keys, m->keys_cap, (size_t)n + 1);
    struct m_key *k = &m->keys[n];
    k->present = true;
    k->op = (uint8_t)c->op;
    k->created_ms = m->now;
    k->id = r->id;
    k->value = r->value;
    k->rule = r->rule;
    k->state = r->state;
    bytes_copy(&k->payload, p);
    fifo_push(&m->key_q, (uint64_t)n, ++m->stamp);
    m->n_keys++;
}

static void
m_apply(struct model *m, const trastenda_cmd *c, struct m_result *r)
{
    static struct bytes p; /* the payload of keyed commands */
    result_init(r);
    if (c->op < TRASTENDA_OP_LOCATION_UPSERT || c->op >= TRASTENDA_OP_COUNT_) {
        r->code = TRASTENDA_E_INVALID;
        return;
    }
    if (failed(r, m_id_check(c->actor, false))) return;
    bool keyed = c->key.len > 0 && c->op != TRASTENDA_OP_NOOP;
    if (keyed) {
        if (failed(r, m_id_check(c->key, false))) return;
        payload(c, &p);
        const struct m_key *k = m_key_at(m, c->key);
        if (k != NULL) {
            key_replay(m, k, c, &p, r);
            return;
        }
    }
    m_dispatch(m, c, r);
    if (r->code == TRASTENDA_OK && keyed && !r->duplicate) key_remember(m, c, &p, r);
}

/* ---- time: retention and expiry, before the commands of each batch ---- */

/* Pops due entries from a retention FIFO, at most PURGE_PER_BATCH live ones. */
typedef bool (*due_fn)(struct model *m, uint64_t item, uint64_t stamp, bool *stale);

static bool
hold_due(struct model *m, uint64_t id, uint64_t stamp, bool *stale)
{
    (void)stamp;
    *stale = !m->holds[id].present;
    return !*stale && m->holds[id].resolved_ms + HOLD_RETENTION_MS <= m->now;
}

static bool
order_due(struct model *m, uint64_t n, uint64_t stamp, bool *stale)
{
    *stale = !m->orders[n].present || m->orders[n].stamp != stamp;
    return !*stale && m->orders[n].finished_ms + ORDER_RETENTION_MS <= m->now;
}

static bool
po_due(struct model *m, uint64_t n, uint64_t stamp, bool *stale)
{
    (void)stamp;
    *stale = !m->pos[n].present;
    return !*stale && m->pos[n].updated_ms + ORDER_RETENTION_MS <= m->now;
}

static bool
key_due(struct model *m, uint64_t n, uint64_t stamp, bool *stale)
{
    (void)stamp;
    *stale = !m->keys[n].present;
    return !*stale && m->keys[n].created_ms + KEY_RETENTION_MS <= m->now;
}

static void
purge(struct model *m, struct fifo *f, due_fn due, void (*drop)(struct model *, uint64_t))
{
    uint32_t n = 0;
    while (n < PURGE_PER_BATCH && f->head < f->n) {
        bool stale;
        const struct fifo_ent *ent = &f->v[f->head];
        bool is_due = due(m, ent->item, ent->stamp, &stale);
        if (!stale && !is_due) break;
        f->head++;
        if (stale) continue;
        drop(m, ent->item);
        m->purged++;
        n++;
    }
}

static void
drop_hold(struct model *m, uint64_t id)
{
    struct m_hold *h = &m->holds[id];
    m->n_lines -= h->n;
    free(h->lines);
    memset(h, 0, sizeof(*h));
    m->n_holds--;
}

static void
drop_order(struct model *m, uint64_t n)
{
    struct m_order *o = &m->orders[n];
    m->n_lines -= o->n;
    free(o->lines);
    o->lines = NULL;
    o->n = 0;
    o->present = false;
    live_order_del(m, o);
    m->n_orders--;
}

static void
drop_po(struct model *m, uint64_t n)
{
    struct m_po *p = &m->pos[n];
    m->n_lines -= p->n;
    free(p->lines);
    p->lines = NULL;
    p->n = 0;
    p->present = false;
    live_po_del(m, p);
    m->n_pos--;
}

static void
drop_key(struct model *m, uint64_t n)
{
    m->keys[n].present = false;
    m->n_keys--;
}

static int
hold_expiry_cmp(const void *a, const void *b, void *ctx)
{
    const struct model *m = ctx;
    const struct m_hold *x = &m->holds[*(const uint64_t *)a], *y = &m->holds[*(const uint64_t *)b];
    if (x->expires_ms != y->expires_ms) return x->expires_ms < y->expires_ms ? -1 : 1;
    return *(const uint64_t *)a < *(const uint64_t *)b ? -1 : 1;
}

/* The batch's time: resolved holds, finished orders, closed POs and keys leave memory after
 * their retention window (at most PURGE_PER_BATCH each), then due holds expire in (expiry, id)
 * order, at most EXPIRE_PER_BATCH. */
static void
m_batch_begin(struct model *m, int64_t now)
{
    m->now = now;
    memset(m->touched, 0, sizeof(m->touched));
    purge(m, &m->hold_q, hold_due, drop_hold);
    purge(m, &m->order_q, order_due, drop_order);
    purge(m, &m->po_q, po_due, drop_po);
    purge(m, &m->key_q, key_due, drop_key);
    static uint64_t due[1 << 14];
    size_t n = 0;
    for (size_t i = 0; i < m->open.n; i++)
        if (m->holds[m->open.v[i]].expires_ms <= now) {
            cr_assert_lt(n, sizeof(due) / sizeof(due[0]));
            due[n++] = m->open.v[i];
        }
    qsort_r(due, n, sizeof(due[0]), hold_expiry_cmp, m);
    for (size_t i = 0; i < n && i < EXPIRE_PER_BATCH; i++) {
        hold_resolve(m, due[i], TRASTENDA_HOLD_EXPIRED);
        m->expired++;
    }
}

static void
model_free(struct model *m)
{
    for (size_t i = 0; i < m->holds_cap; i++)
        free(m->holds[i].lines);
    for (size_t i = 0; i < m->orders_cap; i++) {
        free(m->orders[i].lines);
        free(m->orders[i].payload.p);
    }
    for (size_t i = 0; i < m->pos_cap; i++)
        free(m->pos[i].lines);
    for (size_t i = 0; i < m->keys_cap; i++)
        free(m->keys[i].payload.p);
    free(m->holds);
    free(m->orders);
    free(m->pos);
    free(m->keys);
    free(m->open.v);
    free(m->live_orders.v);
    free(m->live_pos.v);
    free(m->hold_q.v);
    free(m->order_q.v);
    free(m->po_q.v);
    free(m->key_q.v);
}

/* ---- the generator ---- */

/* A command with its own storage: trastenda_cmd points into it (fixed up after a copy). */
struct gcmd {
    trastenda_cmd c;
    trastenda_line lines[TRASTENDA_LINES_MAX + 1];
    trastenda_str channels[2];
    char key[80], order_id[80], po_id[80];
};

#define RING 32

struct gen {
    struct rng rng;
    uint32_t next_order_name, next_po_name, next_key_name;
    struct gcmd keyed[RING]; /* recent keyed commands, to replay or reuse with another payload */
    uint32_t n_keyed;
    struct gcmd placed[RING]; /* recent ORDER_PLACE commands */
    uint32_t n_placed;
    struct {
        uint64_t hold_id;
        uint32_t order_name;
    } confirms[RING]; /* recent CONFIRM commands */
    uint32_t n_confirms;
};

static void
gcmd_rebase(struct gcmd *dst, const struct gcmd *src)
{
    if (src->c.key.ptr == src->key) dst->c.key.ptr = dst->key;
    if (src->c.order_id.ptr == src->order_id) dst->c.order_id.ptr = dst->order_id;
    if (src->c.po_id.ptr == src->po_id) dst->c.po_id.ptr = dst->po_id;
    if (src->c.lines == src->lines) dst->c.lines = dst->lines;
    if (src->c.channels == src->channels) dst->c.channels = dst->channels;
}

static void
gcmd_copy(struct gcmd *dst, const struct gcmd *src)
{
    memcpy(dst, src, sizeof(*dst));
    gcmd_rebase(dst, src);
}

static void
gcmd_init(struct gcmd *g, uint32_t op)
{
    memset(&g->c, 0, sizeof(g->c));
    g->c.op = op;
    g->c.sku.ix = g->c.loc.ix = g->c.loc_to.ix = TRASTENDA_IX_NONE;
    g->c.lines = g->lines;
}

static trastenda_str
S(const char *s)
{
    return (trastenda_str){s, (uint32_t)strlen(s)};
}

static trastenda_str
fmt_id(char *buf, size_t cap, char prefix, uint32_t n)
{
    int len = snprintf(buf, cap, "%c%u", prefix, n);
    return (trastenda_str){buf, (uint32_t)len};
}

static trastenda_ref
ref_of(const char *id)
{
    return (trastenda_ref){S(id), TRASTENDA_IX_NONE};
}

/* A bad id: unknown, empty, too long or with a control character. */
static trastenda_ref
bad_ref(struct gen *g, const char *unknown)
{
    switch (rng_below(&g->rng, 6)) {
    case 0:
        return (trastenda_ref){S(""), TRASTENDA_IX_NONE};
    case 1:
        return (trastenda_ref){S(LONG_ID), TRASTENDA_IX_NONE};
    case 2:
        return (trastenda_ref){S(BAD_ID), TRASTENDA_IX_NONE};
    case 3:
        return (trastenda_ref){{NULL, 0}, 77}; /* unknown index */
    default:
        return ref_of(unknown);
    }
}

static int
pick_sku(struct gen *g, const struct model *m)
{
    for (;;) {
        int s = (int)rng_below(&g->rng, N_SKUS);
        if (m->sku[s].exists) return s;
    }
}

/* A ref to a SKU: mostly by id, sometimes with the index hint, or by index alone. */
static trastenda_ref
sku_ref(struct gen *g, const struct model *m, int s)
{
    uint32_t how = rng_below(&g->rng, 100);
    if (how < 85) return ref_of(SKU_IDS[s]);
    if (how < 93) return (trastenda_ref){S(SKU_IDS[s]), m->sku[s].ix};
    return (trastenda_ref){{NULL, 0}, m->sku[s].ix};
}

static trastenda_ref
loc_ref(struct gen *g, int l)
{
    uint32_t how = rng_below(&g->rng, 100);
    if (how < 88) return ref_of(LOC_IDS[l]);
    if (how < 94) return (trastenda_ref){S(LOC_IDS[l]), (uint32_t)l};
    return (trastenda_ref){{NULL, 0}, (uint32_t)l};
}

/* An unknown SKU id: one of s0..s9 that does not exist yet, or one never created. */
static const char *
unknown_sku(struct gen *g, const struct model *m)
{
    for (int s = N_SKUS - 1; s >= 0; s--)
        if (!m->sku[s].exists && rng_pct(&g->rng, 70)) return SKU_IDS[s];
    return "zz";
}

static trastenda_ref
gen_sku(struct gen *g, const struct model *m, bool bad, int *s_out)
{
    int s = pick_sku(g, m);
    if (s_out != NULL) *s_out = s;
    return bad ? bad_ref(g, unknown_sku(g, m)) : sku_ref(g, m, s);
}

static trastenda_ref
gen_loc(struct gen *g, bool bad, int *l_out)
{
    int l = (int)rng_below(&g->rng, N_LOCS);
    if (l_out != NULL) *l_out = l;
    return bad ? bad_ref(g, "lx") : loc_ref(g, l);
}

/* A line quantity: mostly small, sometimes a crate; bad ones are 0, negative or too large. */
static int64_t
gen_line_qty(struct gen *g, bool bad)
{
    if (bad) {
        static const int64_t v[] = {0, -1, TRASTENDA_LINE_QTY_MAX + 1, INT64_MAX, INT64_MIN};
        return v[rng_below(&g->rng, 5)];
    }
    return rng_pct(&g->rng, 90) ? rng_range(&g->rng, 1, 6) : rng_range(&g->rng, 7, 40);
}

static int64_t
gen_ttl(struct gen *g, bool bad)
{
    if (bad) {
        static const int64_t v[] = {0, TRASTENDA_TTL_MS_MIN - 1, TRASTENDA_TTL_MS_MAX + 1, -5};
        return v[rng_below(&g->rng, 4)];
    }
    return rng_range(&g->rng, TRASTENDA_TTL_MS_MIN, 15000);
}

static void
gen_ship_to(struct gen *g, struct gcmd *x, bool bad)
{
    x->c.has_ship_to = 1;
    x->c.lat_e6 = x->c.lon_e6 = 0;
    if (!bad) return;
    switch (rng_below(&g->rng, 3)) {
    case 0:
        x->c.has_ship_to = 0;
        break;
    case 1:
        x->c.lat_e6 = 90000001;
        break;
    default:
        x->c.lon_e6 = -180000001;
    }
}

static trastenda_str
gen_channel(struct gen *g, bool bad)
{
    if (bad) return rng_pct(&g->rng, 50) ? S("") : S(rng_pct(&g->rng, 80) ? "fax" : LONG_ID);
    return S(rng_pct(&g->rng, 85) ? "web" : "store");
}

/* Faults are drawn per field: an invalid command usually has one bad field. */
#define FAULT_PCT 8

struct fault {
    bool on;
    uint32_t which; /* which field to break, 0..n-1 */
};

static struct fault
fault(struct gen *g, uint32_t fields)
{
    struct fault f = {rng_pct(&g->rng, FAULT_PCT), 0};
    f.which = rng_below(&g->rng, fields);
    return f;
}

static bool
bad(struct fault f, uint32_t field)
{
    return f.on && f.which == field;
}

/* A bad line count: none, or one over the limit (the lines array has room for it). */
static void
bad_line_count(struct gen *g, struct gcmd *x)
{
    x->c.line_count = rng_pct(&g->rng, 50) ? 0 : TRASTENDA_LINES_MAX + 1;
    for (uint32_t i = 0; i < x->c.line_count; i++) {
        memset(&x->lines[i], 0, sizeof(x->lines[i]));
        x->lines[i].sku = ref_of(SKU_IDS[0]);
        x->lines[i].loc = ref_of(LOC_IDS[0]);
        x->lines[i].qty = 1;
    }
}

static uint32_t
gen_n_lines(struct gen *g)
{
    return rng_pct(&g->rng, 80) ? 1 + rng_below(&g->rng, 3) : 1 + rng_below(&g->rng, GEN_LINES_MAX);
}

static void
gen_key(struct gen *g, struct gcmd *x, uint32_t pct)
{
    if (!rng_pct(&g->rng, pct)) return;
    x->c.key = fmt_id(x->key, sizeof(x->key), 'k', g->next_key_name++);
}

static void
gen_reserve(struct gen *g, const struct model *m, struct gcmd *x)
{
    struct fault f = fault(g, 7);
    gcmd_init(x, TRASTENDA_OP_RESERVE);
    x->c.ttl_ms = gen_ttl(g, bad(f, 0));
    bool routed_any = false;
    x->c.line_count = gen_n_lines(g);
    uint32_t routed_pct = rng_pct(&g->rng, 25) ? 60 : 0;
    for (uint32_t i = 0; i < x->c.line_count; i++) {
        trastenda_line *ln = &x->lines[i];
        memset(ln, 0, sizeof(*ln));
        bool this_line = f.on && rng_below(&g->rng, x->c.line_count) == i;
        ln->sku = gen_sku(g, m, this_line && bad(f, 1), NULL);
        ln->qty = gen_line_qty(g, this_line && bad(f, 2));
        if (rng_pct(&g->rng, routed_pct)) {
            ln->loc = (trastenda_ref){{NULL, 0}, TRASTENDA_IX_NONE};
            routed_any = true;
        } else {
            ln->loc = gen_loc(g, this_line && bad(f, 3), NULL);
        }
    }
    if (routed_any || rng_pct(&g->rng, 10)) x->c.channel = gen_channel(g, bad(f, 4));
    if (routed_any || rng_pct(&g->rng, 30)) gen_ship_to(g, x, bad(f, 5));
    if (bad(f, 6)) bad_line_count(g, x);
    x->c.partial = rng_pct(&g->rng, 15);
    gen_key(g, x, 25);
}

/* An open hold mostly; sometimes any hold seen, or an unknown id. */
static uint64_t
gen_hold_id(struct gen *g, const struct model *m)
{
    uint32_t how = rng_below(&g->rng, 100);
    if (how < 80 && m->open.n > 0) return m->open.v[rng_below(&g->rng, (uint32_t)m->open.n)];
    if (how < 95 && m->next_hold_id > 0)
        return m->next_hold_id -
               rng_below(&g->rng, (uint32_t)(m->next_hold_id < 200 ? m->next_hold_id : 200));
    return rng_pct(&g->rng, 50) ? 0 : m->next_hold_id + 1 + rng_below(&g->rng, 1000);
}

static void
gen_hold_cmd(struct gen *g, const struct model *m, struct gcmd *x, uint32_t op)
{
    struct fault f = fault(g, 1);
    gcmd_init(x, op);
    x->c.hold_id = gen_hold_id(g, m);
    if (op == TRASTENDA_OP_EXTEND) x->c.ttl_ms = gen_ttl(g, bad(f, 0));
    gen_key(g, x, 20);
}

/* A bad order or PO id: empty, too long, with a control character, or (when unknown is set) a
 * valid id that names nothing (not of the form <prefix><n>, so the model never stores it). */
static trastenda_str
bad_name(struct gen *g, bool unknown)
{
    switch (rng_below(&g->rng, unknown ? 4 : 3)) {
    case 0:
        return S("");
    case 1:
        return S(LONG_ID);
    case 2:
        return S(BAD_ID);
    default:
        return S("zz-none");
    }
}

static void
gen_confirm(struct gen *g, const struct model *m, struct gcmd *x)
{
    struct fault f = fault(g, 4);
    gcmd_init(x, TRASTENDA_OP_CONFIRM);
    uint32_t how = rng_below(&g->rng, 100);
    if (how < 8 && g->n_confirms > 0) {
        /* the same confirmation again */
        uint32_t i = rng_below(&g->rng, g->n_confirms < RING ? g->n_confirms : RING);
        x->c.hold_id = g->confirms[i].hold_id;
        x->c.order_id = fmt_id(x->order_id, sizeof(x->order_id), 'o', g->confirms[i].order_name);
    } else {
        x->c.hold_id = gen_hold_id(g, m);
        uint32_t name = g->next_order_name++;
        if (how < 13 && m->live_orders.n > 0) /* an order id in use */
            name = (uint32_t)m->live_orders.v[rng_below(&g->rng, (uint32_t)m->live_orders.n)];
        x->c.order_id = fmt_id(x->order_id, sizeof(x->order_id), 'o', name);
        uint32_t slot = g->n_confirms++ % RING;
        g->confirms[slot].hold_id = x->c.hold_id;
        g->confirms[slot].order_name = name;
    }
    if (bad(f, 0)) x->c.order_id = bad_name(g, false); /* CONFIRM creates what it names */
    if (rng_pct(&g->rng, 20) || bad(f, 1)) x->c.channel = gen_channel(g, bad(f, 1));
    if (rng_pct(&g->rng, 50) || bad(f, 2)) gen_ship_to(g, x, bad(f, 2));
    if (bad(f, 3)) x->c.hold_id = rng_pct(&g->rng, 50) ? 0 : UINT64_MAX;
    gen_key(g, x, 20);
}

static void
remember_placed(struct gen *g, const struct gcmd *x)
{
    gcmd_copy(&g->placed[g->n_placed++ % RING], x);
}

static void
gen_place(struct gen *g, const struct model *m, struct gcmd *x)
{
    if (rng_pct(&g->rng, 8) && g->n_placed > 0) {
        /* the same order again; sometimes with another payload */
        gcmd_copy(x, &g->placed[rng_below(&g->rng, g->n_placed < RING ? g->n_placed : RING)]);
        x->c.key = S("");
        if (rng_pct(&g->rng, 30) && x->c.line_count > 0 && in_range(x->lines[0].qty, 0, 1000))
            x->lines[0].qty += 1;
        return;
    }
    struct fault f = fault(g, 6);
    gcmd_init(x, TRASTENDA_OP_ORDER_PLACE);
    x->c.order_id = fmt_id(x->order_id, sizeof(x->order_id), 'o', g->next_order_name++);
    x->c.line_count = rng_pct(&g->rng, 85) ? 1 + rng_below(&g->rng, 2) : 1 + rng_below(&g->rng, 5);
    for (uint32_t i = 0; i < x->c.line_count; i++) {
        trastenda_line *ln = &x->lines[i];
        memset(ln, 0, sizeof(*ln));
        bool this_line = f.on && rng_below(&g->rng, x->c.line_count) == i;
        ln->sku = gen_sku(g, m, this_line && bad(f, 0), NULL);
        ln->qty = gen_line_qty(g, this_line && bad(f, 1));
        ln->loc = (trastenda_ref){{NULL, 0}, TRASTENDA_IX_NONE};
        if (this_line && bad(f, 2)) ln->loc = ref_of(LOC_IDS[0]);
    }
    x->c.channel = gen_channel(g, bad(f, 3));
    gen_ship_to(g, x, bad(f, 4));
    if (bad(f, 5)) bad_line_count(g, x);
    gen_key(g, x, 10);
    remember_placed(g, x);
}

static bool
order_suits(const struct m_order *o, uint32_t op)
{
    switch (op) {
    case TRASTENDA_OP_ORDER_PICK:
        return o->state == TRASTENDA_ORDER_ALLOCATED;
    case TRASTENDA_OP_ORDER_PACK:
        return o->state <= TRASTENDA_ORDER_PICKING;
    case TRASTENDA_OP_ORDER_SHIP:
        return o->state <= TRASTENDA_ORDER_PACKED;
    case TRASTENDA_OP_ORDER_DELIVER:
        return o->state == TRASTENDA_ORDER_SHIPPED;
    case TRASTENDA_OP_ORDER_CANCEL:
        return o->state < TRASTENDA_ORDER_SHIPPED;
    default: /* RETURN */
        return o->state == TRASTENDA_ORDER_SHIPPED || o->state == TRASTENDA_ORDER_DELIVERED;
    }
}

/* An order in memory, preferably one in a state the step suits; NULL when there is none. */
static const struct m_order *
pick_order(struct gen *g, const struct model *m, uint32_t op, uint32_t *name)
{
    if (m->live_orders.n == 0) return NULL;
    const struct m_order *o = NULL;
    for (int tries = 0; tries < 6; tries++) {
        *name = (uint32_t)m->live_orders.v[rng_below(&g->rng, (uint32_t)m->live_orders.n)];
        o = &m->orders[*name];
        if (order_suits(o, op)) break;
    }
    return o;
}

static void
gen_order_step(struct gen *g, const struct model *m, struct gcmd *x, uint32_t op)
{
    struct fault f = fault(g, 3);
    gcmd_init(x, op);
    uint32_t name = 0;
    const struct m_order *o = pick_order(g, m, op, &name);
    if (o == NULL || bad(f, 0)) {
        x->c.order_id = bad_name(g, true);
    } else {
        x->c.order_id = fmt_id(x->order_id, sizeof(x->order_id), 'o', name);
    }
    bool step = op == TRASTENDA_OP_ORDER_PICK || op == TRASTENDA_OP_ORDER_PACK ||
                op == TRASTENDA_OP_ORDER_SHIP;
    if (step && (rng_pct(&g->rng, 25) || bad(f, 1))) {
        if (o != NULL && o->n > 0 && rng_pct(&g->rng, 80) && !bad(f, 1))
            x->c.loc = loc_ref(g, o->lines[rng_below(&g->rng, o->n)].loc);
        else
            x->c.loc = gen_loc(g, bad(f, 1), NULL);
    }
    if (op == TRASTENDA_OP_ORDER_RETURN) {
        x->c.line_count = rng_pct(&g->rng, 75) ? 1 : 2;
        for (uint32_t i = 0; i < x->c.line_count; i++) {
            trastenda_line *ln = &x->lines[i];
            memset(ln, 0, sizeof(*ln));
            int s = pick_sku(g, m);
            if (o != NULL && o->n > 0 && rng_pct(&g->rng, 85))
                s = o->lines[rng_below(&g->rng, o->n)].sku;
            ln->sku = bad(f, 2) ? bad_ref(g, unknown_sku(g, m)) : sku_ref(g, m, s);
            ln->loc = gen_loc(g, false, NULL);
            int64_t max = o != NULL ? returnable(o, s) : 1;
            ln->qty = rng_pct(&g->rng, 90) && max > 0 ? rng_range(&g->rng, 1, max)
                                                      : rng_range(&g->rng, 1, 50);
            ln->flags = rng_pct(&g->rng, 30) ? TRASTENDA_LINE_UNSELLABLE : 0;
        }
    }
    gen_key(g, x, 15);
}

static void
gen_stock(struct gen *g, const struct model *m, struct gcmd *x, uint32_t op)
{
    struct fault f = fault(g, 4);
    gcmd_init(x, op);
    int s, l;
    x->c.sku = gen_sku(g, m, bad(f, 0), &s);
    x->c.loc = gen_loc(g, bad(f, 1), &l);
    int64_t on_hand = q(m, s, l, TRASTENDA_Q_ON_HAND);
    int64_t unsellable = q(m, s, l, TRASTENDA_Q_UNSELLABLE);
    bool bq = bad(f, 2);
    switch (op) {
    case TRASTENDA_OP_RECEIVE:
        x->c.qty = rng_range(&g->rng, 1, 40);
        if (rng_below(&g->rng, 1000) < 3) x->c.qty = QMAX; /* the limit: fits once */
        if (bq) x->c.qty = rng_pct(&g->rng, 50) ? 0 : (rng_pct(&g->rng, 50) ? -4 : QMAX + 1);
        break;
    case TRASTENDA_OP_ADJUST:
        x->c.qty = rng_range(&g->rng, 1, 15) * (rng_pct(&g->rng, 50) ? -1 : 1);
        x->c.reason =
            (uint32_t)rng_range(&g->rng, TRASTENDA_REASON_COUNT, TRASTENDA_REASON_CORRECTION);
        if (rng_pct(&g->rng, 15)) {
            /* a loss that leaves less than is promised (a shortfall), if unsellable allows */
            int64_t promised = q(m, s, l, TRASTENDA_Q_COMMITTED) + q(m, s, l, TRASTENDA_Q_HELD);
            int64_t to = promised - rng_range(&g->rng, 1, 3);
            if (promised > 0 && to >= unsellable && to < on_hand) x->c.qty = to - on_hand;
        }
        if (bq) x->c.qty = rng_pct(&g->rng, 50) ? 0 : -on_hand - 1; /* zero, or below nothing */
        if (bad(f, 3)) x->c.reason = rng_pct(&g->rng, 50) ? 0 : TRASTENDA_REASON_QUALITY;
        break;
    case TRASTENDA_OP_COUNT:
        x->c.qty = on_hand + rng_range(&g->rng, -4, 4);
        if (x->c.qty < 0) x->c.qty = 0;
        x->c.reason = (uint32_t)rng_below(&g->rng, TRASTENDA_REASON_CORRECTION + 1);
        if (rng_pct(&g->rng, 30)) {
            x->c.has_expected = 1;
            x->c.expected = rng_pct(&g->rng, 75) ? on_hand : on_hand + 1;
        }
        if (bq) x->c.qty = rng_pct(&g->rng, 50) ? -1 : QMAX + 1;
        if (bad(f, 3)) x->c.reason = 9;
        break;
    case TRASTENDA_OP_MOVE_UNSELLABLE: {
        static const uint32_t ok[] = {TRASTENDA_REASON_DAMAGE, TRASTENDA_REASON_QUALITY,
                                      TRASTENDA_REASON_CORRECTION};
        x->c.reason = ok[rng_below(&g->rng, 3)];
        x->c.qty = unsellable > 0 && rng_pct(&g->rng, 40) ? -rng_range(&g->rng, 1, unsellable)
                                                          : rng_range(&g->rng, 1, 4);
        if (bq) x->c.qty = rng_pct(&g->rng, 50) ? 0 : on_hand - unsellable + 1;
        if (bad(f, 3)) x->c.reason = TRASTENDA_REASON_THEFT;
        break;
    }
    case TRASTENDA_OP_SET_SAFETY:
        x->c.qty = rng_range(&g->rng, 0, 6);
        if (bq) x->c.qty = rng_pct(&g->rng, 50) ? -1 : QMAX + 1;
        break;
    case TRASTENDA_OP_TRANSFER_OUT: {
        int to = (l + 1 + (int)rng_below(&g->rng, N_LOCS - 1)) % N_LOCS;
        x->c.loc_to = bad(f, 3) ? (rng_pct(&g->rng, 50) ? loc_ref(g, l) : gen_loc(g, true, NULL))
                                : loc_ref(g, to);
        x->c.qty = rng_range(&g->rng, 1, 10);
        if (bq) x->c.qty = rng_pct(&g->rng, 50) ? 0 : QMAX + 1;
        break;
    }
    default: { /* TRANSFER_IN */
        int64_t in_transit = q(m, s, l, TRASTENDA_Q_IN_TRANSIT);
        x->c.qty = in_transit > 0 ? rng_range(&g->rng, 1, in_transit) : rng_range(&g->rng, 1, 3);
        if (bq) x->c.qty = rng_pct(&g->rng, 50) ? 0 : in_transit + 1;
    }
    }
    if (rng_pct(&g->rng, 15))
        x->c.reference = S(bad(f, 3) && rng_pct(&g->rng, 30) ? BAD_ID : "t-42");
    gen_key(g, x, 20);
}

/* A PO in memory, preferably open. */
static const struct m_po *
pick_po(struct gen *g, const struct model *m, uint32_t *name)
{
    const struct m_po *p = NULL;
    for (int tries = 0; tries < 4 && m->live_pos.n > 0; tries++) {
        *name = (uint32_t)m->live_pos.v[rng_below(&g->rng, (uint32_t)m->live_pos.n)];
        p = &m->pos[*name];
        if (p->open) break;
    }
    return p;
}

static void
gen_po(struct gen *g, const struct model *m, struct gcmd *x, uint32_t op)
{
    struct fault f = fault(g, 4);
    gcmd_init(x, op);
    uint32_t name = 0;
    const struct m_po *p = NULL;
    if (op == TRASTENDA_OP_PO_CREATE) {
        name = g->next_po_name++;
        if (rng_pct(&g->rng, 4) && m->live_pos.n > 0) p = pick_po(g, m, &name); /* duplicate */
        x->c.po_id = fmt_id(x->po_id, sizeof(x->po_id), 'p', name);
        x->c.line_count = 1 + rng_below(&g->rng, 4);
        for (uint32_t i = 0; i < x->c.line_count; i++) {
            trastenda_line *ln = &x->lines[i];
            memset(ln, 0, sizeof(*ln));
            int s, l;
            do { /* distinct (sku, loc), unless the fault repeats one */
                s = pick_sku(g, m);
                l = (int)rng_below(&g->rng, N_LOCS);
                bool dup = false;
                for (uint32_t j = 0; j < i; j++)
                    dup |= x->lines[j].sku.id.ptr == SKU_IDS[s] &&
                           x->lines[j].loc.id.ptr == LOC_IDS[l];
                if (!dup) break;
            } while (1);
            ln->sku = ref_of(SKU_IDS[s]);
            ln->loc = ref_of(LOC_IDS[l]);
            ln->qty = rng_range(&g->rng, 5, 60);
        }
    } else {
        p = pick_po(g, m, &name);
        if (rng_pct(&g->rng, 3)) p = NULL; /* a bad or unknown PO id */
        x->c.po_id = p != NULL ? fmt_id(x->po_id, sizeof(x->po_id), 'p', name) : bad_name(g, true);
        if (op == TRASTENDA_OP_PO_RECEIVE) {
            x->c.line_count = 0;
            for (uint32_t k = 0; p != NULL && k < p->n; k++) {
                const struct m_line *pl = &p->lines[k];
                if (pl->qty == pl->done || rng_pct(&g->rng, 40)) continue;
                trastenda_line *ln = &x->lines[x->c.line_count++];
                memset(ln, 0, sizeof(*ln));
                ln->sku = ref_of(SKU_IDS[pl->sku]);
                ln->loc = ref_of(LOC_IDS[pl->loc]);
                ln->qty = rng_pct(&g->rng, 50) ? pl->qty - pl->done
                                               : rng_range(&g->rng, 1, pl->qty - pl->done);
            }
            if (x->c.line_count == 0) { /* a line the PO does not have */
                memset(&x->lines[0], 0, sizeof(x->lines[0]));
                x->lines[0].sku = ref_of(SKU_IDS[pick_sku(g, m)]);
                x->lines[0].loc = ref_of(LOC_IDS[rng_below(&g->rng, N_LOCS)]);
                x->lines[0].qty = 1;
                x->c.line_count = 1;
            }
        }
    }
    if (op != TRASTENDA_OP_PO_CLOSE && f.on) {
        trastenda_line *ln = &x->lines[rng_below(&g->rng, x->c.line_count)];
        if (bad(f, 0)) ln->sku = bad_ref(g, unknown_sku(g, m));
        if (bad(f, 1)) ln->loc = bad_ref(g, "lx");
        if (bad(f, 2)) ln->qty = rng_pct(&g->rng, 50) ? 0 : ln->qty + 1000; /* over expected */
        if (bad(f, 3) && x->c.line_count < GEN_LINES_MAX)                   /* a line repeated */
            x->lines[x->c.line_count++] = x->lines[0];
    }
    if (op == TRASTENDA_OP_PO_CLOSE && bad(f, 0)) x->c.po_id = bad_name(g, true);
    gen_key(g, x, 15);
}

static void
gen_sku_upsert(struct gen *g, const struct model *m, struct gcmd *x)
{
    struct fault f = fault(g, 3);
    gcmd_init(x, TRASTENDA_OP_SKU_UPSERT);
    int s = (int)rng_below(&g->rng, N_SKUS), inactive[N_SKUS], n = 0;
    for (int i = 0; i < N_SKUS; i++)
        if (m->sku[i].exists && !m->sku[i].active) inactive[n++] = i;
    if (n > 0 && rng_pct(&g->rng, 80)) s = inactive[rng_below(&g->rng, (uint32_t)n)];
    x->c.sku = ref_of(SKU_IDS[s]);
    x->c.name = S(rng_pct(&g->rng, 50) ? "Mug" : "Lamp");
    x->c.reorder_point = rng_range(&g->rng, 0, 20);
    x->c.reorder_qty = rng_range(&g->rng, 0, 50);
    x->c.lead_days = (int32_t)rng_range(&g->rng, 0, 30);
    x->c.safety_stock = rng_range(&g->rng, 0, 4);
    x->c.active = rng_pct(&g->rng, 92);
    if (bad(f, 0)) x->c.reorder_point = -1;
    if (bad(f, 1)) x->c.lead_days = TRASTENDA_LEAD_DAYS_MAX + 1;
    if (bad(f, 2)) x->c.sku.id = rng_pct(&g->rng, 50) ? S("") : S(LONG_ID);
    gen_key(g, x, 10);
}

/* Mostly an inactive location (upserts bring them back), else any. */
static int
pick_inactive_loc(struct gen *g, const struct model *m)
{
    int inactive[N_LOCS], n = 0;
    for (int i = 0; i < N_LOCS; i++)
        if (!m->loc_active[i]) inactive[n++] = i;
    if (n > 0 && rng_pct(&g->rng, 90)) return inactive[rng_below(&g->rng, (uint32_t)n)];
    return (int)rng_below(&g->rng, N_LOCS);
}

static void
gen_location_upsert(struct gen *g, struct gcmd *x, int l)
{
    gcmd_init(x, TRASTENDA_OP_LOCATION_UPSERT);
    x->c.loc = ref_of(LOC_IDS[l]);
    x->c.name = S("Warehouse");
    x->c.lat_e6 = 0;
    x->c.lon_e6 = loc_lon_e6(l);
    x->c.priority = loc_priority(l);
    x->c.channel_count = 0;
    x->channels[x->c.channel_count++] = S("web");
    if (LOC_CHANNELS[l] & 2u) x->channels[x->c.channel_count++] = S("store");
    x->c.channels = x->channels;
    x->c.active = 1;
    if (g != NULL && rng_pct(&g->rng, FAULT_PCT)) x->c.lat_e6 = -90000001;
}

/* A keyed command again: the same (a retry) or with another payload (a client bug). */
static bool
gen_key_reuse(struct gen *g, struct gcmd *x)
{
    if (g->n_keyed == 0) return false;
    gcmd_copy(x, &g->keyed[rng_below(&g->rng, g->n_keyed < RING ? g->n_keyed : RING)]);
    if (rng_pct(&g->rng, 35)) {
        if (rng_pct(&g->rng, 20))
            x->c.op = x->c.op == TRASTENDA_OP_RECEIVE ? TRASTENDA_OP_ADJUST : TRASTENDA_OP_RECEIVE;
        else
            x->c.qty += 1; /* every op's payload has qty */
    }
    return true;
}

struct weighted {
    uint32_t weight;
    uint32_t op; /* 0: a keyed command again; 99: an unknown op */
};

static const struct weighted MIX[] = {
    {180, TRASTENDA_OP_RESERVE},
    {100, TRASTENDA_OP_CONFIRM},
    {40, TRASTENDA_OP_RELEASE},
    {30, TRASTENDA_OP_EXTEND},
    {80, TRASTENDA_OP_ORDER_PLACE},
    {45, TRASTENDA_OP_ORDER_PICK},
    {40, TRASTENDA_OP_ORDER_PACK},
    {60, TRASTENDA_OP_ORDER_SHIP},
    {30, TRASTENDA_OP_ORDER_DELIVER},
    {30, TRASTENDA_OP_ORDER_CANCEL},
    {30, TRASTENDA_OP_ORDER_RETURN},
    {90, TRASTENDA_OP_RECEIVE},
    {40, TRASTENDA_OP_ADJUST},
    {20, TRASTENDA_OP_COUNT},
    {20, TRASTENDA_OP_MOVE_UNSELLABLE},
    {15, TRASTENDA_OP_SET_SAFETY},
    {20, TRASTENDA_OP_TRANSFER_OUT},
    {20, TRASTENDA_OP_TRANSFER_IN},
    {20, TRASTENDA_OP_PO_CREATE},
    {30, TRASTENDA_OP_PO_RECEIVE},
    {8, TRASTENDA_OP_PO_CLOSE},
    {8, TRASTENDA_OP_SKU_UPSERT},
    {1, TRASTENDA_OP_SKU_DEACTIVATE},
    {1, TRASTENDA_OP_LOCATION_DEACTIVATE},
    {6, TRASTENDA_OP_LOCATION_UPSERT},
    {5, TRASTENDA_OP_NOOP},
    {40, 0},
    {2, 99},
};

static void
remember_keyed(struct gen *g, const struct gcmd *x)
{
    if (x->c.key.len > 0 && x->c.key.ptr == x->key) gcmd_copy(&g->keyed[g->n_keyed++ % RING], x);
}

static void
gen_cmd(struct gen *g, const struct model *m, struct gcmd *x)
{
    uint32_t total = 0;
    for (size_t i = 0; i < sizeof(MIX) / sizeof(MIX[0]); i++)
        total += MIX[i].weight;
    uint32_t pick = rng_below(&g->rng, total);
    size_t k = 0;
    while (pick >= MIX[k].weight)
        pick -= MIX[k++].weight;
    uint32_t op = MIX[k].op;
    switch (op) {
    case 0:
        if (gen_key_reuse(g, x)) return;
        op = TRASTENDA_OP_RECEIVE;
        gen_stock(g, m, x, op);
        break;
    case 99:
        gcmd_init(x, rng_pct(&g->rng, 50) ? 0 : TRASTENDA_OP_COUNT_ + rng_below(&g->rng, 100));
        break;
    case TRASTENDA_OP_RESERVE:
        gen_reserve(g, m, x);
        break;
    case TRASTENDA_OP_CONFIRM:
        gen_confirm(g, m, x);
        break;
    case TRASTENDA_OP_RELEASE:
    case TRASTENDA_OP_EXTEND:
        gen_hold_cmd(g, m, x, op);
        break;
    case TRASTENDA_OP_ORDER_PLACE:
        gen_place(g, m, x);
        break;
    case TRASTENDA_OP_ORDER_PICK:
    case TRASTENDA_OP_ORDER_PACK:
    case TRASTENDA_OP_ORDER_SHIP:
    case TRASTENDA_OP_ORDER_DELIVER:
    case TRASTENDA_OP_ORDER_CANCEL:
    case TRASTENDA_OP_ORDER_RETURN:
        gen_order_step(g, m, x, op);
        break;
    case TRASTENDA_OP_PO_CREATE:
    case TRASTENDA_OP_PO_RECEIVE:
    case TRASTENDA_OP_PO_CLOSE:
        gen_po(g, m, x, op);
        break;
    case TRASTENDA_OP_SKU_UPSERT:
        gen_sku_upsert(g, m, x);
        break;
    case TRASTENDA_OP_SKU_DEACTIVATE:
        gcmd_init(x, op);
        x->c.sku = gen_sku(g, m, rng_pct(&g->rng, FAULT_PCT), NULL);
        break;
    case TRASTENDA_OP_LOCATION_DEACTIVATE:
        gcmd_init(x, op);
        x->c.loc = gen_loc(g, rng_pct(&g->rng, FAULT_PCT), NULL);
        break;
    case TRASTENDA_OP_LOCATION_UPSERT:
        gen_location_upsert(g, x, pick_inactive_loc(g, m));
        break;
    case TRASTENDA_OP_NOOP:
        gcmd_init(x, op);
        if (rng_pct(&g->rng, 30)) x->c.key = S("k-noop"); /* NOOP ignores its key */
        break;
    default:
        gen_stock(g, m, x, op);
    }
    if (rng_pct(&g->rng, 10)) x->c.actor = S(rng_below(&g->rng, 100) < 3 ? BAD_ID : "clerk-7");
    if (rng_below(&g->rng, 1000) < 3 && x->c.key.len > 0) x->c.key = S(LONG_ID);
    remember_keyed(g, x);
}

/* ---- comparing the engine with the model ---- */

static const char *
op_name(uint32_t op)
{
    static const char *n[] = {"?",
                              "LOCATION_UPSERT",
                              "LOCATION_DEACTIVATE",
                              "SKU_UPSERT",
                              "SKU_DEACTIVATE",
                              "RECEIVE",
                              "ADJUST",
                              "COUNT",
                              "MOVE_UNSELLABLE",
                              "SET_SAFETY",
                              "TRANSFER_OUT",
                              "TRANSFER_IN",
                              "RESERVE",
                              "EXTEND",
                              "CONFIRM",
                              "RELEASE",
                              "ORDER_PLACE",
                              "ORDER_PICK",
                              "ORDER_PACK",
                              "ORDER_SHIP",
                              "ORDER_DELIVER",
                              "ORDER_CANCEL",
                              "ORDER_RETURN",
                              "PO_CREATE",
                              "PO_RECEIVE",
                              "PO_CLOSE",
                              "NOOP"};
    return op < sizeof(n) / sizeof(n[0]) ? n[op] : "(unknown op)";
}

struct run {
    uint64_t seed;
    uint64_t index; /* commands applied before the current batch */
    uint64_t batches;
    trastenda_engine *e;
    struct model m;
    struct gen g;
    uint64_t codes[TRASTENDA_E_BATCH_TOO_BIG + 1];
    uint64_t ok_ops[TRASTENDA_OP_COUNT_];
    uint64_t duplicates, rules[5];
};

/* Printed if the engine aborts (an engine assertion or trastenda_engine_check). */
static char g_context[160];

static void
on_abort(int sig)
{
    (void)sig;
    ssize_t w = write(2, g_context, strlen(g_context));
    (void)w;
}

/* TS_MODEL_TRACE=1 prints every command with both results (for reading a failure). */
static void
trace(const struct run *R, uint32_t i, const trastenda_cmd *c, const struct m_result *want,
      const trastenda_result *got)
{
    fprintf(stderr,
            "%" PRIu64 " t=%" PRId64 " %s key=%.*s sku=%.*s/%u loc=%.*s/%u to=%.*s qty=%" PRId64
            " hold=%" PRIu64 " order=%.*s po=%.*s lines=%u reason=%u partial=%u ->",
            R->index + i, R->m.now - T0, op_name(c->op), (int)c->key.len, c->key.ptr,
            (int)c->sku.id.len, c->sku.id.ptr, c->sku.ix, (int)c->loc.id.len, c->loc.id.ptr,
            c->loc.ix, (int)c->loc_to.id.len, c->loc_to.id.ptr, c->qty, c->hold_id,
            (int)c->order_id.len, c->order_id.ptr, (int)c->po_id.len, c->po_id.ptr, c->line_count,
            c->reason, c->partial);
    for (uint32_t k = 0; k < c->line_count && k < 8 && c->lines != NULL; k++)
        fprintf(stderr, " [%.*s@%.*s x%" PRId64 "]", (int)c->lines[k].sku.id.len,
                c->lines[k].sku.id.ptr, (int)c->lines[k].loc.id.len, c->lines[k].loc.id.ptr,
                c->lines[k].qty);
    fprintf(stderr,
            " model %s id=%" PRIu64 " value=%" PRId64 " | engine %s id=%" PRIu64 " value=%" PRId64
            " dup=%u (%s)\n",
            trastenda_err_name(want->code), want->id, want->value, trastenda_err_name(got->code),
            got->id, got->value, got->duplicate, got->message);
}

static void
compare_result(struct run *R, uint32_t i, const trastenda_cmd *c, const struct m_result *want,
               const trastenda_result *got)
{
    const char *what = NULL;
    int64_t w = 0, g = 0;
#define FIELD(name, a, b)                                                                          \
    if (what == NULL && (int64_t)(a) != (int64_t)(b))                                              \
    what = name, w = (int64_t)(a), g = (int64_t)(b)
    FIELD("code", want->code, got->code);
    FIELD("line", want->line, got->line);
    FIELD("duplicate", want->duplicate, got->duplicate);
    FIELD("id", want->id, got->id);
    FIELD("value", want->value, got->value);
    FIELD("state", want->state, got->state);
    FIELD("rule", want->rule, got->rule);
    FIELD("alloc_count", want->alloc_count, got->alloc_count);
    for (uint32_t k = 0; what == NULL && k < want->alloc_count; k++) {
        FIELD("alloc sku_ix", want->allocs[k].sku_ix, got->allocs[k].sku_ix);
        FIELD("alloc loc_ix", want->allocs[k].loc_ix, got->allocs[k].loc_ix);
        FIELD("alloc qty", want->allocs[k].qty, got->allocs[k].qty);
        FIELD("alloc short_qty", want->allocs[k].short_qty, got->allocs[k].short_qty);
    }
#undef FIELD
    if (what == NULL && got->code != TRASTENDA_OK && strcmp(got->message, "ok") == 0)
        what = "message (a failure must say why)";
    if (what == NULL) return;
    cr_assert_fail("seed %" PRIu64 ", command %" PRIu64 " (batch %" PRIu64 ", #%u, %s): %s: "
                   "model says %" PRId64 ", engine says %" PRId64 " (engine: %s, \"%s\"; model "
                   "code %s)",
                   R->seed, R->index + i, R->batches, i, op_name(c->op), what, w, g,
                   trastenda_err_name(got->code), got->message, trastenda_err_name(want->code));
}

static void
compare_record(struct run *R, int s, int l, const char *when)
{
    const struct m_rec *mr = &R->m.rec[s][l];
    trastenda_stock st;
    trastenda_err err = trastenda_engine_stock_read(R->e, R->m.sku[s].ix, (uint32_t)l, &st);
    if (!mr->exists) {
        if (err != TRASTENDA_E_NO_STOCK_RECORD)
            cr_assert_fail("seed %" PRIu64 ", %s %" PRIu64 ": record (%s, %s) exists in the "
                           "engine, not in the model",
                           R->seed, when, R->index, SKU_IDS[s], LOC_IDS[l]);
        return;
    }
    if (err != TRASTENDA_OK)
        cr_assert_fail("seed %" PRIu64 ", %s %" PRIu64 ": record (%s, %s): %s", R->seed, when,
                       R->index, SKU_IDS[s], LOC_IDS[l], trastenda_err_name(err));
    int64_t got[] = {st.on_hand,      st.committed, st.held,       st.unsellable,
                     st.safety_stock, st.incoming,  st.in_transit, st.available};
    static const char *names[] = {"on_hand",      "committed", "held",       "unsellable",
                                  "safety_stock", "incoming",  "in_transit", "available"};
    for (int k = 0; k < 8; k++) {
        int64_t want = k < TRASTENDA_Q_COUNT_ ? mr->q[k] : rec_available(mr);
        if (k < TRASTENDA_Q_COUNT_ && (want < 0 || want > QMAX))
            cr_assert_fail("seed %" PRIu64 ", %s %" PRIu64 ": model record (%s, %s) has %s = "
                           "%" PRId64,
                           R->seed, when, R->index, SKU_IDS[s], LOC_IDS[l], names[k], want);
        if (want != got[k])
            cr_assert_fail("seed %" PRIu64 ", %s %" PRIu64 " (batch %" PRIu64 "): record (%s, "
                           "%s): %s: model says %" PRId64 ", engine says %" PRId64,
                           R->seed, when, R->index, R->batches, SKU_IDS[s], LOC_IDS[l], names[k],
                           want, got[k]);
    }
}

static void
compare_all(struct run *R)
{
    struct model *m = &R->m;
    trastenda_engine_check(R->e);
    for (int s = 0; s < N_SKUS; s++) {
        if (!m->sku[s].exists) {
            uint32_t ix;
            cr_assert_eq(trastenda_engine_sku_lookup(R->e, S(SKU_IDS[s]), &ix),
                         TRASTENDA_E_UNKNOWN_SKU, "seed %" PRIu64 ": sku %s should not exist",
                         R->seed, SKU_IDS[s]);
            continue;
        }
        int64_t avail_want = 0, avail_got = 0;
        for (int l = 0; l < N_LOCS; l++) {
            compare_record(R, s, l, "after command");
            if (m->rec[s][l].exists && m->loc_active[l] && rec_available(&m->rec[s][l]) > 0)
                avail_want += rec_available(&m->rec[s][l]);
        }
        cr_assert_eq(trastenda_engine_availability(R->e, m->sku[s].ix, TRASTENDA_SCOPE_ALL, S(""),
                                                   &avail_got, NULL, 0, NULL),
                     TRASTENDA_OK);
        cr_assert_eq(avail_got, avail_want,
                     "seed %" PRIu64 ", after command %" PRIu64 ": availability of %s: model "
                     "%" PRId64 ", engine %" PRId64,
                     R->seed, R->index, SKU_IDS[s], avail_want, avail_got);
    }
    trastenda_engine_stats st;
    trastenda_engine_stats_get(R->e, &st);
    uint32_t want[] = {m->sku_count, m->rec_count, m->n_holds, (uint32_t)m->open.n,
                       m->n_orders,  m->n_pos,     m->n_keys,  m->n_lines};
    uint32_t got[] = {st.skus,   st.stock, st.holds, st.holds_open,
                      st.orders, st.pos,   st.keys,  st.lines};
    static const char *names[] = {"skus",   "stock records", "holds", "open holds",
                                  "orders", "POs",           "keys",  "lines"};
    for (int k = 0; k < 8; k++)
        cr_assert_eq(got[k], want[k],
                     "seed %" PRIu64 ", after command %" PRIu64 ": %s in memory: model %u, engine "
                     "%u",
                     R->seed, R->index, names[k], want[k], got[k]);
    cr_assert_eq(st.time_ms, m->now);
}

/* Applies n commands (already applied to the model, expected results in want) as one batch. */
static void
run_batch(struct run *R, const trastenda_cmd *cmds, uint32_t n, const struct m_result *want)
{
    static trastenda_result got[BATCH_MAX];
    trastenda_batch_out out;
    snprintf(g_context, sizeof(g_context),
             "\nmodel test: engine aborted in seed %" PRIu64 ", batch %" PRIu64
             ", commands %" PRIu64 "..%" PRIu64 "\n",
             R->seed, R->batches, R->index, R->index + n - 1);
    trastenda_err err = trastenda_engine_apply(R->e, R->m.now, cmds, n, got, &out);
    cr_assert_eq(err, TRASTENDA_OK, "seed %" PRIu64 ", batch %" PRIu64 ": apply: %s", R->seed,
                 R->batches, trastenda_err_name(err));
    static int tracing = -1;
    if (tracing < 0) tracing = getenv("TS_MODEL_TRACE") != NULL;
    for (uint32_t i = 0; i < n; i++) {
        if (tracing) trace(R, i, &cmds[i], &want[i], &got[i]);
        compare_result(R, i, &cmds[i], &want[i], &got[i]);
        R->codes[got[i].code]++;
        if (got[i].code == TRASTENDA_OK && cmds[i].op < TRASTENDA_OP_COUNT_) {
            R->ok_ops[cmds[i].op]++;
            R->duplicates += got[i].duplicate;
            if (cmds[i].op == TRASTENDA_OP_RESERVE || cmds[i].op == TRASTENDA_OP_ORDER_PLACE)
                R->rules[got[i].rule < 5 ? got[i].rule : 0]++;
        }
    }
    R->index += n;
    for (int s = 0; s < N_SKUS; s++)
        for (int l = 0; l < N_LOCS; l++)
            if (R->m.touched[s][l]) compare_record(R, s, l, "batch ending at command");
    R->batches++;
}

static int64_t
time_step(struct rng *r)
{
    uint32_t how = rng_below(r, 100);
    if (how < 70) return rng_range(r, 0, 200);
    if (how < 95) return rng_range(r, 200, 3000);
    return rng_range(r, 3000, 40000); /* past every TTL, sometimes past retention */
}

/* The fixture: six locations on the equator, six SKUs with a default safety stock. */
static void
run_setup(struct run *R)
{
    static struct gcmd setup[N_LOCS + SKUS_AT_START];
    static trastenda_cmd cmds[N_LOCS + SKUS_AT_START];
    static struct m_result want[N_LOCS + SKUS_AT_START];
    uint32_t n = 0;
    for (int l = 0; l < N_LOCS; l++)
        gen_location_upsert(NULL, &setup[n++], l);
    for (int s = 0; s < SKUS_AT_START; s++) {
        struct gcmd *x = &setup[n++];
        gcmd_init(x, TRASTENDA_OP_SKU_UPSERT);
        x->c.sku = ref_of(SKU_IDS[s]);
        x->c.reorder_point = 5;
        x->c.safety_stock = s % 3;
        x->c.active = 1;
    }
    m_batch_begin(&R->m, T0);
    for (uint32_t i = 0; i < n; i++) {
        m_apply(&R->m, &setup[i].c, &want[i]);
        cmds[i] = setup[i].c;
        cr_assert_eq(want[i].code, TRASTENDA_OK);
    }
    run_batch(R, cmds, n, want);
}

static uint64_t
commands_per_seed(void)
{
    const char *s = getenv("TS_MODEL_COMMANDS");
    if (s == NULL || *s == '\0') return COMMANDS_DEFAULT;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    cr_assert(*end == '\0' && v > 0, "TS_MODEL_COMMANDS must be a positive number (got '%s')", s);
    return v;
}

static void
run_seed(uint64_t seed, uint64_t commands)
{
    static struct gcmd batch[BATCH_MAX];
    static trastenda_cmd cmds[BATCH_MAX];
    static struct m_result want[BATCH_MAX];
    static struct run R;
    memset(&R, 0, sizeof(R));
    memset(LONG_ID, 'x', TRASTENDA_ID_BYTES_MAX + 1);
    R.seed = seed;
    R.g.rng.s = seed;
    signal(SIGABRT, on_abort);
    trastenda_engine_config cfg;
    engine_config(&cfg);
    cr_assert_eq(trastenda_engine_create(&cfg, &R.e), TRASTENDA_OK);
    for (int l = 0; l < N_LOCS; l++)
        R.m.loc_active[l] = false;
    run_setup(&R);
    uint64_t next_full = FULL_CHECK_EVERY;
    int64_t now = T0;
    while (R.index < commands) {
        uint32_t n = 1 + rng_below(&R.g.rng, BATCH_MAX);
        now += time_step(&R.g.rng);
        m_batch_begin(&R.m, now);
        for (uint32_t i = 0; i < n; i++) {
            gen_cmd(&R.g, &R.m, &batch[i]);
            m_apply(&R.m, &batch[i].c, &want[i]);
            cmds[i] = batch[i].c;
        }
        run_batch(&R, cmds, n, want);
        if (R.index >= next_full) {
            compare_all(&R);
            next_full += FULL_CHECK_EVERY;
        }
    }
    compare_all(&R);

    uint64_t ok = R.codes[TRASTENDA_OK];
    fprintf(stderr,
            "model test: seed %" PRIu64 ": %" PRIu64 " commands in %" PRIu64 " batches, %" PRIu64
            " ok (%" PRIu64 " duplicates), %" PRIu64 " holds, %" PRIu64 " orders, %" PRIu64
            " expired, %" PRIu64 " purged, %" PRIu64 " shortfall refusals, %" PRIu64
            " ms simulated\n",
            seed, R.index, R.batches, ok, R.duplicates, R.m.next_hold_id, R.m.next_order_no,
            R.m.expired, R.m.purged, R.codes[TRASTENDA_E_SHORTFALL], (uint64_t)(R.m.now - T0));

    /* The sequence went where it should: every reachable error code, every op succeeding, key
     * replays, both routing rules, expiry and retention (checked on full-length runs only: a
     * short debugging run need not reach every path). */
    if (commands < COMMANDS_DEFAULT / 2) {
        trastenda_engine_destroy(R.e);
        model_free(&R.m);
        signal(SIGABRT, SIG_DFL);
        return;
    }
    static const trastenda_err reachable[] = {TRASTENDA_OK,
                                              TRASTENDA_E_INVALID,
                                              TRASTENDA_E_SHORT,
                                              TRASTENDA_E_UNKNOWN_SKU,
                                              TRASTENDA_E_UNKNOWN_LOCATION,
                                              TRASTENDA_E_UNKNOWN_HOLD,
                                              TRASTENDA_E_UNKNOWN_ORDER,
                                              TRASTENDA_E_UNKNOWN_PO,
                                              TRASTENDA_E_NO_STOCK_RECORD,
                                              TRASTENDA_E_TABLE_FULL,
                                              TRASTENDA_E_LIMIT,
                                              TRASTENDA_E_STATE,
                                              TRASTENDA_E_DUPLICATE,
                                              TRASTENDA_E_IDEMPOTENCY_MISMATCH,
                                              TRASTENDA_E_CAS_MISMATCH,
                                              TRASTENDA_E_SHORTFALL,
                                              TRASTENDA_E_INACTIVE,
                                              TRASTENDA_E_NO_ROUTE,
                                              TRASTENDA_E_HOLD_EXPIRED};
    for (size_t i = 0; i < sizeof(reachable) / sizeof(reachable[0]); i++)
        cr_expect_gt(R.codes[reachable[i]], 0, "seed %" PRIu64 ": no command ended in %s", seed,
                     trastenda_err_name(reachable[i]));
    for (uint32_t op = TRASTENDA_OP_LOCATION_UPSERT; op < TRASTENDA_OP_COUNT_; op++)
        cr_expect_gt(R.ok_ops[op], 0, "seed %" PRIu64 ": %s never succeeded", seed, op_name(op));
    cr_expect_gt(R.duplicates, 0, "seed %" PRIu64 ": no duplicate replies", seed);
    cr_expect_gt(R.rules[TRASTENDA_RULE_EXPLICIT], 0, "seed %" PRIu64 ": no explicit holds", seed);
    cr_expect_gt(R.rules[TRASTENDA_RULE_SINGLE], 0, "seed %" PRIu64 ": no single routes", seed);
    cr_expect_gt(R.rules[TRASTENDA_RULE_EXACT], 0, "seed %" PRIu64 ": no exact routes", seed);
    cr_expect_gt(R.m.expired, 0, "seed %" PRIu64 ": no hold expired", seed);
    cr_expect_gt(R.m.purged, 0, "seed %" PRIu64 ": nothing left memory", seed);

    trastenda_engine_destroy(R.e);
    model_free(&R.m);
    signal(SIGABRT, SIG_DFL);
}

static uint64_t SEEDS[] = {
    1, 2, 0x5eed, 0xdeadbeef, 0x123456789abcdefull, 20231114, 0xfeedfacecafebeefull, 42};

ParameterizedTestParameters(engine_model, engine_matches_model_on_random_sequences)
{
    return cr_make_param_array(uint64_t, SEEDS, sizeof(SEEDS) / sizeof(SEEDS[0]));
}

ParameterizedTest(uint64_t *seed, engine_model, engine_matches_model_on_random_sequences)
{
    const char *only = getenv("TS_MODEL_SEED"); /* to rerun one seed, e.g. with TS_MODEL_TRACE */
    if (only != NULL && strtoull(only, NULL, 0) != *seed) return;
    run_seed(*seed, commands_per_seed());
}
