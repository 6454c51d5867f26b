/*
 * storage/sys.h - what the storage threads need from the operating system: futex waits and
 * wakes, clocks, directories, and the store's log lines.
 */
#ifndef TRASTENDA_STORAGE_SYS_H
#define TRASTENDA_STORAGE_SYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

static inline void
sys_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

#endif /* TRASTENDA_STORAGE_SYS_H */
