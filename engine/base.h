/*
 * engine/base.h - the shared base: assertions, allocation, small helpers.
 *
 * Every allocation goes through ts_alloc/ts_free (jemalloc's mallocx/sdallocx unless
 * TS_NO_JEMALLOC, as in sanitizer builds): one seam for accounting and fault injection.
 */
#ifndef TRASTENDA_ENGINE_BASE_H
#define TRASTENDA_ENGINE_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TS_MUST_USE    __attribute__((warn_unused_result))
#define TS_UNUSED      __attribute__((unused))
#define TS_LIKELY(x)   __builtin_expect(!!(x), 1)
#define TS_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Prints file:line:expr and aborts. On in every build. */
_Noreturn void ts_assert_fail(const char *file, int line, const char *expr);

#define TS_ASSERT(x)                                                                               \
    do {                                                                                           \
        if (TS_UNLIKELY(!(x))) ts_assert_fail(__FILE__, __LINE__, #x);                             \
    } while (0)

/* O(n) checks, on in Debug and test builds. */
#ifdef TS_DEBUG
#define TS_DEBUG_ASSERT(x) TS_ASSERT(x)
#else
#define TS_DEBUG_ASSERT(x) ((void)0)
#endif

/* Zeroed memory of size bytes; NULL when out of memory (or when fault injection says so). */
void *ts_alloc(size_t size);
/* This thread's next ts_alloc calls of 2 MiB and more are advised into huge pages (or not). */
void ts_alloc_huge_pages(bool on);
/* Advises the whole 2 MiB pages inside [p, p + size) onto transparent huge pages (on), or keeps
 * what is not mapped yet on 4 KiB pages (off; huge pages already there stay). */
void ts_advise_huge(void *p, size_t size, bool on);
/* Faults the whole 4 KiB pages inside [p, p + size) in, writable, without changing a byte
 * (MADV_POPULATE_WRITE): safe while another thread writes there. */
void ts_prefault(void *p, size_t size);
/* size must be the size passed to ts_alloc. Accepts NULL. */
void ts_free(void *ptr, size_t size);

/* Bytes currently allocated through ts_alloc. */
size_t ts_allocated_bytes(void);

/* Fault injection for tests: the n-th next ts_alloc call (1 = the next) fails; 0 disables. */
void ts_alloc_fail_after(uint32_t n);

/* 64-bit hash of bytes (deterministic across runs and machines). */
uint64_t ts_hash(const void *data, size_t len, uint64_t seed);

static inline uint64_t
ts_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* One word folded into a running hash: a rotate, an xor and a multiply. */
static inline uint64_t
ts_fold(uint64_t h, uint64_t x)
{
    return ((h << 23 | h >> 41) ^ x) * 0x9e3779b97f4a7c15ull;
}

static inline uint64_t
ts_load_le(const uint8_t *p, uint32_t n)
{
    uint64_t w = 0;
    memcpy(&w, p, n);
    return w;
}

/* n bytes folded into h as whole words, the last one overlapping the one before (under 8 bytes:
 * two overlapping halves, or three bytes). Unambiguous only for a given n: the caller folds n in
 * first. Deterministic across runs and machines. */
static inline uint64_t
ts_fold_bytes(uint64_t h, const uint8_t *p, uint32_t n)
{
    if (n >= 8) {
        for (uint32_t i = 0; i + 8 < n; i += 8)
            h = ts_fold(h, ts_load_le(p + i, 8));
        return ts_fold(h, ts_load_le(p + n - 8, 8));
    }
    if (n >= 4) return ts_fold(h, ts_load_le(p, 4) | ts_load_le(p + n - 4, 4) << 32);
    if (n > 0)
        return ts_fold(h, (uint64_t)p[0] | (uint64_t)p[n / 2] << 8 | (uint64_t)p[n - 1] << 16);
    return h;
}

/* splitmix64: the deterministic PRNG of the tests, benches and demo (never rand(), so a seed
 * replays the same sequence everywhere). The engine itself draws no randomness. */
static inline uint64_t
ts_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* 0..n-1 from ts_splitmix64. */
static inline uint32_t
ts_rand_below(uint64_t *state, uint32_t n)
{
    return (uint32_t)(((ts_splitmix64(state) >> 32) * (uint64_t)n) >> 32);
}

#define TS_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TS_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif /* TRASTENDA_ENGINE_BASE_H */
