/*
 * bench/common.h - what the benchmarks share: fatal errors, the monotonic clock, a log-bucketed
 * latency histogram, medians, number formatting, the machine's description.
 *
 * Header-only; the including file defines BENCH_NAME (its program name, for messages) first.
 */
#ifndef TRASTENDA_BENCH_COMMON_H
#define TRASTENDA_BENCH_COMMON_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef BENCH_NAME
#error "define BENCH_NAME before including bench/common.h"
#endif

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#endif

_Noreturn static void
die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, BENCH_NAME ": ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL) die("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- log-bucketed histogram: 32 sub-buckets per power of two (about 3% resolution) ---- */

#define HIST_SUB_BITS 5
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_BUCKETS  (64u * HIST_SUB)

struct hist {
    uint64_t n[HIST_BUCKETS];
    uint64_t count, max;
};

static uint32_t
hist_bucket(uint64_t v)
{
    if (v < HIST_SUB) return (uint32_t)v;
    uint32_t msb = 63u - (uint32_t)__builtin_clzll(v);
    uint32_t sub = (uint32_t)(v >> (msb - HIST_SUB_BITS)) & (HIST_SUB - 1);
    return (msb - HIST_SUB_BITS + 1) * HIST_SUB + sub;
}

static void
hist_add(struct hist *h, uint64_t v)
{
    h->n[hist_bucket(v)]++;
    h->count++;
    if (v > h->max) h->max = v;
}

static void
hist_merge(struct hist *into, const struct hist *h)
{
    for (uint32_t b = 0; b < HIST_BUCKETS; b++)
        into->n[b] += h->n[b];
    into->count += h->count;
    if (h->max > into->max) into->max = h->max;
}

/* The value at quantile q: the middle of its bucket, never above the largest value seen. */
static double
hist_quantile(const struct hist *h, double q)
{
    if (h->count == 0) return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (uint32_t b = 0; b < HIST_BUCKETS; b++) {
        seen += h->n[b];
        if (seen < rank) continue;
        if (b < HIST_SUB) return (double)b;
        uint32_t shift = b / HIST_SUB - 1;
        double low = (double)((uint64_t)(HIST_SUB + b % HIST_SUB) << shift);
        double mid = low + (double)(1ull << shift) / 2;
        return mid > (double)h->max ? (double)h->max : mid;
    }
    return (double)h->max;
}

enum {
    Q_P50,
    Q_P99,
    Q_P999,
    Q_MAX,
    Q_COUNT_
};

/* qsort order of doubles (medians). */
static int
dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* 12,345,678 */
static const char *
num(char *out, double v)
{
    char digits[40];
    snprintf(digits, sizeof(digits), "%.0f", v < 0 ? -v : v);
    size_t n = strlen(digits), o = 0;
    if (v <= -0.5) out[o++] = '-';
    for (size_t i = 0; i < n && o < 30; i++) {
        if (i > 0 && (n - i) % 3 == 0) out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = 0;
    return out;
}

/* prefix + 16 hex digits; returns the length. */
static uint32_t
text_id(char *dst, char prefix, uint64_t n)
{
    static const char hex[] = "0123456789abcdef";
    dst[0] = prefix;
    for (int i = 0; i < 16; i++)
        dst[1 + i] = hex[(n >> (60 - 4 * i)) & 15u];
    dst[17] = 0;
    return 17;
}

static const char *
build_type(void)
{
#ifdef NDEBUG
    return "Release";
#else
    return "Debug";
#endif
}

/* The CPU's model name from /proc/cpuinfo (quotes and backslashes replaced, for JSON). */
static void
cpu_model(char *out, size_t cap)
{
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL) return;
    char line[512];
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *v = strchr(line, ':');
        if (v == NULL) break;
        v++;
        while (*v == ' ' || *v == '\t')
            v++;
        snprintf(out, cap, "%s", v);
        out[strcspn(out, "\n")] = 0;
        for (char *p = out; *p; p++)
            if (*p == '"' || *p == '\\') *p = '\'';
        break;
    }
    fclose(f);
}

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif /* TRASTENDA_BENCH_COMMON_H */
