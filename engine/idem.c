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
eng_key_find(const trastenda_engine *e, trastenda_str key)
{
    uint32_t ix;
    ENG_MAP_FIND(&e->key_map, eng_str_hash(key), key_eq, e, &key, ix);
    return ix;
}

static uint64_t
mix_str(uint64_t h, trastenda_str s)
{
    return ts_hash(s.ptr, s.len, h ^ s.len);
}

static uint64_t
mix_ref(uint64_t h, const trastenda_ref *ref)
{
    /* A ref is its id when given; an index-only ref hashes the index (ids never move). */
    if (ref->id.len > 0) return mix_str(h, ref->id);
    return ts_mix64(h ^ ref->ix);
}

/* The payload: every field a command's effect depends on (not the key, not the actor). */
uint64_t
eng_cmd_payload_hash(const trastenda_cmd *c)
{
    uint64_t h = ts_mix64(c->op * 0x9e3779b97f4a7c15ull + c->reason);
    h = mix_str(h, c->reference);
    h = mix_ref(h, &c->sku);
    h = mix_ref(h, &c->loc);
    h = mix_ref(h, &c->loc_to);
    h = mix_str(h, c->order_id);
    h = mix_str(h, c->po_id);
    h = mix_str(h, c->channel);
    h = mix_str(h, c->name);
    int64_t nums[] = {(int64_t)c->hold_id, c->qty,          c->has_expected ? c->expected : 0,
                      c->ttl_ms,           c->lat_e6,       c->lon_e6,
                      c->has_ship_to,      c->partial,      c->has_expected,
                      c->reorder_point,    c->reorder_qty,  c->safety_stock,
                      c->lead_days,        c->priority,     c->active,
                      c->line_count,       c->channel_count};
    h = ts_hash(nums, sizeof(nums), h);
    /* Upserts: the channels served are part of the payload too. */
    for (uint32_t i = 0; i < c->channel_count && c->channels != NULL; i++)
        h = mix_str(h, c->channels[i]);
    for (uint32_t i = 0; i < c->line_count && c->lines != NULL; i++) {
        h = mix_ref(h, &c->lines[i].sku);
        h = mix_ref(h, &c->lines[i].loc);
        int64_t q[2] = {c->lines[i].qty, c->lines[i].flags};
        h = ts_hash(q, sizeof(q), h);
    }
    return h;
}

bool
eng_key_replay(trastenda_engine *e, const trastenda_cmd *c, uint64_t payload_hash,
               trastenda_result *r)
{
    uint32_t k = eng_key_find(e, c->key);
    if (k == ENG_NONE) return false;
    const struct eng_key *kd = &e->keys[k];
    if (kd->payload_hash != payload_hash || kd->op != c->op) {
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
eng_key_remember(trastenda_engine *e, const trastenda_cmd *c, uint64_t payload_hash,
                 const trastenda_result *r)
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
    eng_map_insert(&e->key_map, eng_str_hash(c->key), k);
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
    eng_map_remove(&e->key_map, eng_str_hash(eng_id_str(&kd->key)), k);
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
