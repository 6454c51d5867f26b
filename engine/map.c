/*
 * engine/map.c - open-addressing hash index (see map.h for the design notes).
 */
#include "map.h"

#include <string.h>

trastenda_err
eng_map_init(struct eng_map *m, uint32_t entries_max)
{
    TS_ASSERT(m != NULL);
    TS_ASSERT(entries_max > 0 && entries_max <= (1u << 30));
    uint64_t slots = 16;
    while (slots < 2ull * entries_max)
        slots <<= 1;
    memset(m, 0, sizeof(*m));
    m->slots = ts_alloc(slots * sizeof(uint64_t));
    if (m->slots == NULL) return TRASTENDA_E_NOMEM;
    /* Mapped for writing now. Inserts probe (read) a slot before they write it, so a page first
     * met by an insert would fault twice: the read maps the shared zero page, the write then
     * replaces it, which flushes that address from every CPU's TLB (an IPI to each, slow in a
     * VM: `perf` found it at 8% of a store's CPU). Hashing spreads inserts over the whole map, so
     * its pages are all written within the first few thousand inserts anyway. Being written
     * whole now, a map also goes onto transparent huge pages when the system has them (advice,
     * before the writes): its lookups land anywhere in it, and with 4 KiB pages each missed the
     * TLB too. The zeroing of huge pages that makes them a latency risk for tables filling at run
     * time (trastenda_engine_config.huge_pages) happens here, at create. */
    ts_advise_huge(m->slots, slots * sizeof(uint64_t), true);
    ts_prefault(m->slots, slots * sizeof(uint64_t));
    m->mask = (uint32_t)(slots - 1);
    m->entries_max = entries_max;
    return TRASTENDA_OK;
}

void
eng_map_fini(struct eng_map *m)
{
    if (m == NULL || m->slots == NULL) return;
    /* Back to 4 KiB pages first: the allocator may hand this memory to a table that fills at run
     * time (huge pages there are opt-in, trastenda_engine_config.huge_pages). */
    ts_advise_huge(m->slots, ((size_t)m->mask + 1) * sizeof(uint64_t), false);
    ts_free(m->slots, ((size_t)m->mask + 1) * sizeof(uint64_t));
    m->slots = NULL;
}

size_t
eng_map_bytes(const struct eng_map *m)
{
    return ((size_t)m->mask + 1) * sizeof(uint64_t);
}

void
eng_map_insert(struct eng_map *m, uint32_t hash, uint32_t ix)
{
    TS_ASSERT(m->count < m->entries_max);
    TS_ASSERT(ix < UINT32_MAX);
    uint32_t i = hash & m->mask;
    while (m->slots[i] != 0)
        i = (i + 1) & m->mask;
    /* Design note (1): the entry is complete before its slot appears. */
    __atomic_store_n(&m->slots[i], ((uint64_t)hash << 32) | (uint64_t)(ix + 1u), __ATOMIC_RELEASE);
    m->count++;
}

void
eng_map_remove(struct eng_map *m, uint32_t hash, uint32_t ix)
{
    TS_ASSERT(m->count > 0);
    uint64_t want = ((uint64_t)hash << 32) | (uint64_t)(ix + 1u);
    uint32_t i = hash & m->mask;
    uint32_t n = 0;
    while (m->slots[i] != want) {
        TS_ASSERT(m->slots[i] != 0);
        TS_ASSERT(n++ <= m->mask);
        i = (i + 1) & m->mask;
    }
    /* Backward shift: pull later members of the probe run into the hole. */
    uint32_t hole = i;
    uint32_t j = (i + 1) & m->mask;
    while (m->slots[j] != 0) {
        uint32_t home = (uint32_t)(m->slots[j] >> 32) & m->mask;
        /* j's entry may move to hole when home is not in (hole, j] cyclically. */
        uint32_t dist_hole = (hole - home) & m->mask;
        uint32_t dist_j = (j - home) & m->mask;
        if (dist_hole < dist_j) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
        j = (j + 1) & m->mask;
    }
    m->slots[hole] = 0;
    m->count--;
}
