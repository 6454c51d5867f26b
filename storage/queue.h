/*
 * storage/queue.h - the bounded lock-free queue from submitting threads to the engine thread.
 *
 * Many producers, one consumer, a ring of cells each with a sequence number (the bounded queue of
 * D. Vyukov): a producer claims a position with one CAS on the tail and publishes its cell with a
 * release store of the cell's sequence; the consumer alone advances the head. A full ring refuses
 * at once (the caller answers E_BUSY): nothing ever blocks or grows.
 */
#ifndef TRASTENDA_STORAGE_QUEUE_H
#define TRASTENDA_STORAGE_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

struct sq_cell {
    uint64_t seq; /* atomic */
    void *item;
};

struct sq {
    struct sq_cell *cells;
    uint64_t mask;
    _Alignas(64) uint64_t tail; /* atomic: producers */
    _Alignas(64) uint64_t head; /* consumer only */
};

/* cap: a power of two. Cells are caller-allocated (cap of them). */
static inline void
sq_init(struct sq *q, struct sq_cell *cells, uint64_t cap)
{
    q->cells = cells;
    q->mask = cap - 1;
    q->tail = q->head = 0;
    for (uint64_t i = 0; i < cap; i++) {
        __atomic_store_n(&cells[i].seq, i, __ATOMIC_RELAXED);
        cells[i].item = 0;
    }
}

/* Any thread. false when full. */
static inline bool
sq_push(struct sq *q, void *item)
{
    uint64_t pos = __atomic_load_n(&q->tail, __ATOMIC_RELAXED);
    for (;;) {
        struct sq_cell *c = &q->cells[pos & q->mask];
        uint64_t seq = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
        int64_t dif = (int64_t)(seq - pos);
        if (dif == 0) {
            if (__atomic_compare_exchange_n(&q->tail, &pos, pos + 1, true, __ATOMIC_RELAXED,
                                            __ATOMIC_RELAXED)) {
                c->item = item;
                __atomic_store_n(&c->seq, pos + 1, __ATOMIC_RELEASE);
                return true;
            }
        } else if (dif < 0) {
            return false; /* full: the consumer has not freed this cell yet */
        } else {
            pos = __atomic_load_n(&q->tail, __ATOMIC_RELAXED);
        }
    }
}

/* Consumer only. NULL when empty (or when the next producer has not published yet). */
static inline void *
sq_pop(struct sq *q)
{
    uint64_t head = __atomic_load_n(&q->head, __ATOMIC_RELAXED);
    struct sq_cell *c = &q->cells[head & q->mask];
    uint64_t seq = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
    if (seq != head + 1) return 0;
    void *item = c->item;
    __atomic_store_n(&c->seq, head + q->mask + 1, __ATOMIC_RELEASE);
    __atomic_store_n(&q->head, head + 1, __ATOMIC_RELAXED);
    return item;
}

/* Approximate depth, any thread. */
static inline uint64_t
sq_depth(const struct sq *q)
{
    uint64_t t = __atomic_load_n(&q->tail, __ATOMIC_RELAXED);
    uint64_t h = __atomic_load_n(&q->head, __ATOMIC_RELAXED);
    return t > h ? t - h : 0;
}

#endif /* TRASTENDA_STORAGE_QUEUE_H */
