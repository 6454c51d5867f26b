/*
 * engine/map.h - open-addressing hash index: 32-bit hash -> 32-bit table index.
 *
 * Each slot is one 64-bit word (hash << 32 | index + 1; 0 is empty), so a reader on another thread
 * sees a slot whole or not at all. Linear probing, at most half full (sized at init from the
 * table's maximum: it never grows).
 *
 * Design notes:
 * (1) Maps of insert-only tables (SKUs, locations, stock records) are read lock-free from any
 *     thread: the writer fills the entry, then publishes its slot with a release store.
 * (2) eng_map_remove (backward shift) is for writer-only maps (holds, orders, POs, keys): it moves
 *     slots and would confuse a concurrent reader.
 */
#ifndef TRASTENDA_ENGINE_MAP_H
#define TRASTENDA_ENGINE_MAP_H

#include <stdint.h>

#include "base.h"
#include "trastenda.h"

#define ENG_MAP_NONE UINT32_MAX

struct eng_map {
    uint64_t *slots;
    uint32_t mask;
    uint32_t count;
    uint32_t entries_max;
};

TS_MUST_USE trastenda_err eng_map_init(struct eng_map *m, uint32_t entries_max);
void eng_map_fini(struct eng_map *m);
size_t eng_map_bytes(const struct eng_map *m);

/* Inserts (hash, ix); the caller checked the key is absent and count < entries_max. */
void eng_map_insert(struct eng_map *m, uint32_t hash, uint32_t ix);
/* Removes the slot holding ix under hash; it must be there (Design note 2). */
void eng_map_remove(struct eng_map *m, uint32_t hash, uint32_t ix);

static inline uint64_t
eng_map_slot_load(const struct eng_map *m, uint32_t i)
{
    return __atomic_load_n(&m->slots[i], __ATOMIC_ACQUIRE);
}

/* The home slot of a hash, where a search or an insert starts: read ahead by the apply loop to
 * overlap cache misses (engine.c). Writer thread. */
static inline uint64_t
eng_map_home(const struct eng_map *m, uint32_t hash)
{
    return m->slots[hash & m->mask];
}

/* The entry the home slot names when it holds this hash; ENG_MAP_NONE otherwise (a guess). Any
 * thread for insert-only maps. */
static inline uint32_t
eng_map_home_entry(const struct eng_map *m, uint32_t hash)
{
    uint64_t s = eng_map_slot_load(m, hash & m->mask);
    return s != 0 && (uint32_t)(s >> 32) == hash ? (uint32_t)s - 1u : ENG_MAP_NONE;
}

/*
 * Finds the index whose entry eq() says matches key; ENG_MAP_NONE when absent. eq is inlined at
 * each call site (it is a static function there). Any thread for insert-only maps.
 */
#define ENG_MAP_FIND(m, hash, eq, ctx, key, out)                                                   \
    do {                                                                                           \
        const struct eng_map *m_ = (m);                                                            \
        uint32_t h_ = (hash);                                                                      \
        uint32_t i_ = h_ & m_->mask;                                                               \
        (out) = ENG_MAP_NONE;                                                                      \
        for (uint32_t n_ = 0; n_ <= m_->mask; n_++) {                                              \
            uint64_t s_ = eng_map_slot_load(m_, i_);                                               \
            if (s_ == 0) break;                                                                    \
            if ((uint32_t)(s_ >> 32) == h_ && eq((ctx), (uint32_t)s_ - 1u, (key))) {               \
                (out) = (uint32_t)s_ - 1u;                                                         \
                break;                                                                             \
            }                                                                                      \
            i_ = (i_ + 1) & m_->mask;                                                              \
        }                                                                                          \
    } while (0)

#endif /* TRASTENDA_ENGINE_MAP_H */
