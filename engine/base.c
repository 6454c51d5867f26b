/*
 * engine/base.c - assertions, the allocation seam, hashing and error names.
 */
#include "base.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "trastenda.h"

#ifndef TS_NO_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

static _Atomic size_t allocated_bytes;
static _Atomic uint32_t fail_after;

void
ts_assert_fail(const char *file, int line, const char *expr)
{
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
    fflush(stderr);
    abort();
}

static int
injected_failure(void)
{
    uint32_t n = atomic_load_explicit(&fail_after, memory_order_relaxed);
    if (n == 0) return 0;
    atomic_store_explicit(&fail_after, n - 1, memory_order_relaxed);
    return n == 1;
}

/* Tables of millions of entries are read at random: with 4 KiB pages nearly every access also
 * misses the TLB. When asked (ts_alloc_huge_pages), allocations of 2 MiB and more are advised
 * into huge pages (transparent huge pages in `madvise` mode, the usual default; elsewhere a
 * no-op). Off by default: the first write to each 2 MiB page then zeroes it (and may compact
 * memory) on the writing thread, milliseconds of latency while tables fill. */
#define HUGE_PAGE_BYTES ((size_t)2 << 20)
static __thread bool huge_pages;

void
ts_alloc_huge_pages(bool on)
{
    huge_pages = on;
}

void
ts_advise_huge(void *p, size_t size, bool on)
{
    uintptr_t lo = ((uintptr_t)p + HUGE_PAGE_BYTES - 1) & ~(uintptr_t)(HUGE_PAGE_BYTES - 1);
    uintptr_t hi = ((uintptr_t)p + size) & ~(uintptr_t)(HUGE_PAGE_BYTES - 1);
    /* Advice: failure is fine. MADV_NOHUGEPAGE leaves the huge pages already mapped in place. */
    if (hi > lo) (void)madvise((void *)lo, hi - lo, on ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
}

void
ts_prefault(void *p, size_t size)
{
    uintptr_t lo = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
    uintptr_t hi = ((uintptr_t)p + size) & ~(uintptr_t)4095;
#ifdef MADV_POPULATE_WRITE
    /* Advice: older kernels refuse it (EINVAL), and the pages then fault in when written. */
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
#else
    (void)lo;
    (void)hi;
#endif
}

void *
ts_alloc(size_t size)
{
    TS_ASSERT(size > 0);
    if (injected_failure()) return NULL;
#ifdef TS_NO_JEMALLOC
    void *p = calloc(1, size);
#else
    void *p = mallocx(size, MALLOCX_ZERO);
#endif
    if (p != NULL) atomic_fetch_add_explicit(&allocated_bytes, size, memory_order_relaxed);
    if (p != NULL && huge_pages && size >= HUGE_PAGE_BYTES) ts_advise_huge(p, size, true);
    return p;
}

void
ts_free(void *ptr, size_t size)
{
    if (ptr == NULL) return;
    TS_ASSERT(size > 0);
    atomic_fetch_sub_explicit(&allocated_bytes, size, memory_order_relaxed);
    /* Back to 4 KiB pages: the allocator may hand this memory to a table that fills while it
     * serves, where huge pages are opt-in (the materializer's copy of an engine, destroyed at a
     * restart within the process, had them). */
    if (size >= HUGE_PAGE_BYTES) ts_advise_huge(ptr, size, false);
#ifdef TS_NO_JEMALLOC
    free(ptr);
#else
    sdallocx(ptr, size, 0);
#endif
}

size_t
ts_allocated_bytes(void)
{
    return atomic_load_explicit(&allocated_bytes, memory_order_relaxed);
}

void
ts_alloc_fail_after(uint32_t n)
{
    atomic_store_explicit(&fail_after, n, memory_order_relaxed);
}

/* A small, fast, seeded hash: 8 bytes at a time, each word mixed in (good enough for tables). */
uint64_t
ts_hash(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = data;
    uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ull);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ ts_mix64(w)) * 0x9e3779b97f4a7c15ull;
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < len; i++)
        w |= (uint64_t)p[i] << (8 * i);
    h = (h ^ ts_mix64(w)) * 0x9e3779b97f4a7c15ull;
    return ts_mix64(h);
}
