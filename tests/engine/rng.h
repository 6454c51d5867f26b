/*
 * tests/engine/rng.h - the tests' deterministic PRNG (ts_splitmix64 of engine/base.h) behind a
 * small struct: never rand(), so a failing seed replays the same sequence on every machine.
 */
#ifndef TRASTENDA_TESTS_ENGINE_RNG_H
#define TRASTENDA_TESTS_ENGINE_RNG_H

#include <stdbool.h>
#include <stdint.h>

#include "base.h"

struct rng {
    uint64_t s;
};

static inline uint64_t
rng_u64(struct rng *r)
{
    return ts_splitmix64(&r->s);
}

/* 0..n-1 */
static inline uint32_t
rng_below(struct rng *r, uint32_t n)
{
    return ts_rand_below(&r->s, n);
}

static inline bool
rng_pct(struct rng *r, uint32_t pct)
{
    return rng_below(r, 100) < pct;
}

/* lo..hi inclusive */
static inline int64_t
rng_range(struct rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)rng_below(r, (uint32_t)(hi - lo + 1));
}

#endif /* TRASTENDA_TESTS_ENGINE_RNG_H */
