/*
 * bench/common.h - what the benchmarks share: fatal errors and assertions, the monotonic clock, a
 * log-bucketed latency histogram, medians, number formatting, the machine's description, CPU time
 * of this process and of another one (from /proc).
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
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

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

/* Our own bugs, in every build (as TS_ASSERT, which the benchmarks linking only the public client
 * library cannot use). */
#define BENCH_ASSERT(x)                                                                            \
    do {                                                                                           \
        if (!(x)) die("assertion failed: %s:%d: %s", __FILE__, __LINE__, #x);                      \
    } while (0)

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

/* The values bucket b holds: low <= v < low + width. */
static uint64_t
hist_bucket_low(uint32_t b)
{
    if (b < HIST_SUB) return b;
    uint32_t shift = b / HIST_SUB - 1;
    return (uint64_t)(HIST_SUB + b % HIST_SUB) << shift;
}

static uint64_t
hist_bucket_width(uint32_t b)
{
    return b < HIST_SUB ? 1 : 1ull << (b / HIST_SUB - 1);
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
        double mid = (double)hist_bucket_low(b) + (double)hist_bucket_width(b) / 2;
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

static long
cpu_cores(void)
{
    return sysconf(_SC_NPROCESSORS_ONLN);
}

/* CPU time (user + system, every thread) of process pid so far, from /proc/<pid>/stat; -1 when
 * it cannot be read. Clock-tick resolution (10 ms at 100 Hz): meant for runs of seconds. */
static int64_t
proc_cpu_ns(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    /* The name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
     * utime and stime are fields 14 and 15. */
    const char *p = strrchr(buf, ')');
    if (p == NULL) return -1;
    unsigned long long utime = 0, stime = 0;
    if (sscanf(p + 2, "%*c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu", &utime, &stime) != 2)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0) return -1;
    return (int64_t)((utime + stime) * (1000000000ull / (unsigned long long)hz));
}

/* The name of process pid (/proc/<pid>/comm), "" when it cannot be read. */
static void
proc_name(pid_t pid, char *out, size_t cap)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL) return;
    if (fgets(out, (int)cap, f) == NULL) out[0] = 0;
    out[strcspn(out, "\n")] = 0;
    fclose(f);
}

/* CPU time of this process so far (every thread). */
static int64_t
self_cpu_ns(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif /* TRASTENDA_BENCH_COMMON_H */
