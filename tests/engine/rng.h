/*
 * tests/engine/rng.h - the tests' deterministic PRNG (splitmix64), never rand(): a failing seed
 * replays the same sequence on every machine.
 */
#ifndef TRASTENDA_TESTS_ENGINE_RNG_H
#define TRASTENDA_TESTS_ENGINE_RNG_H

#include <stdbool.h>
#include <stdint.h>

struct rng {
    uint64_t s;
};

static inline uint64_t
rng_u64(struct rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* 0..n-1 */
static inline uint32_t
rng_below(struct rng *r, uint32_t n)
{
    return (uint32_t)(((rng_u64(r) >> 32) * (uint64_t)n) >> 32);
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
