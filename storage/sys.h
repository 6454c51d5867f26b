/*
 * storage/sys.h - what the storage threads need from the operating system: futex waits and
 * wakes, clocks, directories, and the store's log lines.
 */
#ifndef TRASTENDA_STORAGE_SYS_H
#define TRASTENDA_STORAGE_SYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "trastenda/storage.h"

/* Sleeps while *word == expected, at most timeout_ms (< 0: no limit). Spurious returns happen. */
void sys_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ms);
/* Wakes every thread waiting on word. */
void sys_futex_wake(uint32_t *word);

/* CLOCK_REALTIME in ms (batch times), CLOCK_MONOTONIC in ns (durations). */
int64_t sys_realtime_ms(void);
int64_t sys_mono_ns(void);

/* mkdir -p; 0 or an errno value. */
int sys_mkdirs(const char *path);
/* A directory with at least one entry. */
bool sys_dir_nonempty(const char *path);
bool sys_file_exists(const char *path);

/* A timestamped line on stderr: "2026-11-27T03:30:00.123Z INFO message". */
void sys_log_stderr(void *ctx, trastenda_log_level level, const char *msg);
const char *sys_level_name(trastenda_log_level level);

/* Grows *p (cap elements of elem bytes) to hold need elements, doubling; false when out of memory.
 */
static inline bool
sys_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return true;
    size_t c = *cap == 0 ? 1024 : *cap;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (q == NULL) return false;
    *p = q;
    *cap = c;
    return true;
}

/* Little-endian fields of the storage formats. */
static inline uint32_t
sys_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t
sys_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static inline void
sys_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void
sys_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void
sys_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

#endif /* TRASTENDA_STORAGE_SYS_H */
