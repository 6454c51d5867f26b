/*
 * engine/idem.c - idempotency keys: a mutating command carrying a key already seen with the same
 * payload returns the first result and changes nothing; with another payload it is refused
 * (E_IDEMPOTENCY_MISMATCH). Only successful commands are remembered: a failed command leaves no
 * trace, so retrying it runs it again. Keys expire key_retention_ms after they were created, by
 * batch time; they are created in time order, so a FIFO finds the due ones without a scan.
 */
#include <string.h>

#include "eng.h"

static int
key_eq(const void *ctx, uint32_t ix, const void *key)
{
    const trastenda_engine *e = ctx;
    return e->keys[ix].in_use && eng_id_eq(&e->keys[ix].key, *(const trastenda_str *)key);
}

uint32_t
eng_key_find_hashed(const trastenda_engine *e, trastenda_str key, uint32_t hash)
{
    uint32_t ix;
    ENG_MAP_FIND(&e->key_map, hash, key_eq, e, &key, ix);
    return ix;
}

uint32_t
eng_key_find(const trastenda_engine *e, trastenda_str key)
{
    return eng_key_find_hashed(e, key, eng_str_hash(key));
}

/* The numbers of a payload, in the order both hashes take them. */
#define PAYLOAD_NUMS 17
static inline void
payload_nums(const trastenda_cmd *c, int64_t n[PAYLOAD_NUMS])
{
    const int64_t v[PAYLOAD_NUMS] = {
        (int64_t)c->hold_id, c->qty,          c->has_expected ? c->expected : 0,
        c->ttl_ms,           c->lat_e6,       c->lon_e6,
        c->has_ship_to,      c->partial,      c->has_expected,
        c->reorder_point,    c->reorder_qty,  c->safety_stock,
        c->lead_days,        c->priority,     c->active,
        c->line_count,       c->channel_count};
    memcpy(n, v, sizeof(v));
}

/*
 * The first payload hash (until 2026-11-29), kept to recognise the keys and orders it made: the
 * payload serialised into a small buffer (length-prefixed strings, a ref as its id or, without
 * one, its index: ids never move; then the numbers, channels and lines) and hashed with ts_hash.
 * It cost ~1,000 instructions a reserve, a sixth of a reserve + release pair.
 */
struct payload {
    uint8_t buf[1024];
    uint32_t len;
    uint64_t h;
};

static void
pl_flush(struct payload *p)
{
    p->h = ts_hash(p->buf, p->len, p->h);
    p->len = 0;
}

/* Inlined: most calls copy a constant number of bytes, which the compiler then does in a move or
 * two instead of a call to memcpy. */
static inline __attribute__((always_inline)) void
pl_put(struct payload *p, const void *data, uint32_t n)
{
    TS_ASSERT(n <= 256);
    if (p->len + n > sizeof(p->buf)) pl_flush(p);
    memcpy(p->buf + p->len, data, n);
    p->len += n;
}

static void
pl_str(struct payload *p, trastenda_str s)
{
    /* Fields are validated after hashing (and ignored ones never): hash what can be read. */
    uint8_t n = s.ptr == NULL ? 0 : (uint8_t)TS_MIN(s.len, 128u);
    pl_put(p, &n, 1);
    if (n > 0) pl_put(p, s.ptr, n);
}

static void
pl_ref(struct payload *p, const trastenda_ref *ref)
{
    if (ref->id.len > 0) {
        pl_str(p, ref->id);
        return;
    }
    uint8_t tag = 0xff;
    pl_put(p, &tag, 1);
    pl_put(p, &ref->ix, sizeof(ref->ix));
}

uint64_t
eng_cmd_payload_hash_v1(const trastenda_cmd *c)
{
    struct payload p;
    p.len = 0;
    p.h = 0x7061796c6f6164ull;
    uint32_t head[2] = {c->op, c->reason};
    pl_put(&p, head, sizeof(head));
    pl_str(&p, c->reference);
    pl_ref(&p, &c->sku);
    pl_ref(&p, &c->loc);
    pl_ref(&p, &c->loc_to);
    pl_str(&p, c->order_id);
    pl_str(&p, c->po_id);
    pl_str(&p, c->channel);
    pl_str(&p, c->name);
    int64_t nums[PAYLOAD_NUMS];
    payload_nums(c, nums);
    pl_put(&p, nums, sizeof(nums));
    /* Upserts: the channels served are part of the payload too. */
    for (uint32_t i = 0; i < c->channel_count && c->channels != NULL; i++)
        pl_str(&p, c->channels[i]);
    for (uint32_t i = 0; i < c->line_count && c->lines != NULL; i++) {
        pl_ref(&p, &c->lines[i].sku);
        pl_ref(&p, &c->lines[i].loc);
        int64_t q[2] = {c->lines[i].qty, c->lines[i].flags};
        pl_put(&p, q, sizeof(q));
    }
    pl_flush(&p);
    return p.h;
}

/*
 * The payload hash: every field a command's effect depends on (not the key, not the actor),
 * mixed in a fixed order straight from the command, a multiply a word: length-prefixed strings
 * (a ref is its id, or its index when it has no id: ids never move), then the numbers, channels
 * and lines. A string is read as whole words, its last word overlapping the one before (the
 * length mixed first makes that unambiguous). Deterministic across runs and machines.
 */
static uint64_t
ph_str(uint64_t h, trastenda_str s)
{
    /* Fields are validated after hashing (and ignored ones never): hash what can be read. */
    uint32_t n = s.ptr == NULL ? 0 : TS_MIN(s.len, 128u);
    return ts_fold_bytes(ts_fold(h, n), (const uint8_t *)s.ptr, n);
}

static uint64_t
ph_ref(uint64_t h, const trastenda_ref *ref)
{
    if (ref->id.len > 0) return ph_str(h, ref->id);
    return ts_fold(h, 1ull << 40 | ref->ix); /* never a string's length */
}

uint64_t
eng_cmd_payload_hash(const trastenda_cmd *c)
{
    uint64_t h = 0x7061796c6f616432ull;
    h = ts_fold(h, (uint64_t)c->op << 32 | c->reason);
    h = ph_str(h, c->reference);
    h = ph_ref(h, &c->sku);
    h = ph_ref(h, &c->loc);
    h = ph_ref(h, &c->loc_to);
    h = ph_str(h, c->order_id);
    h = ph_str(h, c->po_id);
    h = ph_str(h, c->channel);
    h = ph_str(h, c->name);
    int64_t nums[PAYLOAD_NUMS];
    payload_nums(c, nums);
    for (size_t i = 0; i < PAYLOAD_NUMS; i++)
        h = ts_fold(h, (uint64_t)nums[i]);
    /* Upserts: the channels served are part of the payload too. */
    for (uint32_t i = 0; i < c->channel_count && c->channels != NULL; i++)
        h = ph_str(h, c->channels[i]);
    for (uint32_t i = 0; i < c->line_count && c->lines != NULL; i++) {
        h = ph_ref(h, &c->lines[i].sku);
        h = ph_ref(h, &c->lines[i].loc);
        h = ts_fold(h, (uint64_t)c->lines[i].qty);
        h = ts_fold(h, (uint64_t)c->lines[i].flags);
    }
    return ts_mix64(h);
}

/* A stored payload hash matches a command's if it is its hash, or the first hash's: keys and
 * orders made before the change keep being recognised when retried. */
bool
eng_payload_matches(uint64_t stored, uint64_t payload_hash, const trastenda_cmd *c)
{
    return stored == payload_hash || stored == eng_cmd_payload_hash_v1(c);
}

bool
eng_key_replay(trastenda_engine *e, const trastenda_cmd *c, uint32_t key_hash,
               uint64_t payload_hash, trastenda_result *r)
{
    uint32_t k = eng_key_find_hashed(e, c->key, key_hash);
    if (k == ENG_NONE) return false;
    const struct eng_key *kd = &e->keys[k];
    if (kd->op != c->op || !eng_payload_matches(kd->payload_hash, payload_hash, c)) {
        eng_fail(r, TRASTENDA_E_IDEMPOTENCY_MISMATCH,
                 "idempotency key '%.*s' was used with a different payload", (int)c->key.len,
                 c->key.ptr);
        return true;
    }
    r->duplicate = 1;
    r->id = kd->result_id;
    r->value = kd->result_value;
    r->rule = kd->rule;
    r->state = kd->state;
    if (c->op == TRASTENDA_OP_RESERVE) {
        uint32_t h = eng_hold_find(e, kd->result_id);
        if (h != ENG_NONE) {
            r->state = e->holds[h].state;
            eng_hold_result_allocs(e, h, r);
        }
    }
    return true;
}

void
eng_key_remember(trastenda_engine *e, const trastenda_cmd *c, uint32_t key_hash,
                 uint64_t payload_hash, const trastenda_result *r)
{
    TS_ASSERT(r->code == TRASTENDA_OK);
    uint32_t k = eng_pool_take(&e->key_pool);
    TS_ASSERT(k != ENG_NONE); /* engine.c checked for room before the command ran */
    struct eng_key *kd = &e->keys[k];
    memset(kd, 0, sizeof(*kd));
    eng_id_set(&kd->key, c->key);
    kd->payload_hash = payload_hash;
    kd->created_ms = e->time_ms;
    kd->result_id = r->id;
    kd->result_value = r->value;
    kd->op = (uint8_t)c->op;
    kd->rule = r->rule;
    kd->state = r->state;
    kd->in_use = 1;
    kd->hash = key_hash;
    eng_map_insert(&e->key_map, key_hash, k);
    eng_key_retain(e, k);
    eng_dirty_mark(e, TRASTENDA_REC_KEY, k, &kd->dirty);
}

/* A key enters its retention window when it is made, and is never touched again until it
 * leaves: its post-image's place in the log is its place in the FIFO (Design note 6). */
void
eng_key_retain(trastenda_engine *e, uint32_t k)
{
    eng_fifo_push(&e->key_fifo, k);
}

void
eng_key_free(trastenda_engine *e, uint32_t k)
{
    struct eng_key *kd = &e->keys[k];
    TS_ASSERT(kd->in_use);
    eng_fifo_remove(&e->key_fifo, k);
    eng_map_remove(&e->key_map, kd->hash, k);
    kd->in_use = 0;
    eng_pool_give(&e->key_pool, k);
}

void
eng_keys_expire(trastenda_engine *e)
{
    for (uint32_t n = 0; n < e->cfg.purge_per_batch_max && e->key_fifo.head != ENG_NONE; n++) {
        uint32_t k = e->key_fifo.head;
        if (e->keys[k].created_ms + e->cfg.key_retention_ms > e->time_ms) return;
        eng_emit_removed(e, TRASTENDA_REC_KEY_REMOVED, eng_id_str(&e->keys[k].key), 0);
        eng_key_free(e, k);
    }
}
