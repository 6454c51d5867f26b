/*
 * tests/storage/faultfs.c - an LD_PRELOAD shim that makes syncs and writes fail on demand, for the
 * storage fault tests (tests/storage/plain_faults.c). Built as the module ts_faultfs.
 *
 * It wraps write, pwrite, pwrite64, writev, pwritev, fsync, fdatasync and sync_file_range (found
 * with dlsym(RTLD_NEXT); sync_file_range with flags 0 is a no-op probe and never fails). Only calls
 * on files whose path (readlink of /proc/self/fd/N) lies under TS_FAULT_DIR count and fail; every
 * other call passes through untouched, so the test harness, its pipes and stderr never see a fault.
 * Without TS_FAULT_DIR the shim does nothing.
 *
 * Environment:
 *   TS_FAULT_DIR=path         the files that count: under path (required)
 *   TS_FAULT_MATCH=str        ... and whose path contains str
 *   TS_FAULT_SUFFIX=str       ... and ends with str (".log": RocksDB's WAL files, not its LOG)
 *   TS_FAULT_SYNC_AFTER=N     the sync calls after the first N counted ones fail
 *   TS_FAULT_WRITE_AFTER=N    the write calls after the first N counted ones fail
 *   TS_FAULT_SYNC_PERMILLE=P  each counted sync call fails with probability P/1000 ...
 *   TS_FAULT_WRITE_PERMILLE=P ... each counted write call likewise ...
 *   TS_FAULT_SEED=S           ... drawn from this seed
 *   TS_FAULT_ERRNO=EIO|ENOSPC the error (default EIO)
 *   TS_FAULT_ONCE=1           only the first failure fails (Linux reports a writeback error once:
 *                             later syncs succeed); otherwise every later counted call fails too
 *   TS_FAULT_SHORT=1          the first failing write writes half its bytes and returns that
 *                             count (a torn write); the call that follows on that file fails
 *   TS_FAULT_WAIT_ARM=1       count nothing until the program calls ts_faultfs_arm() (looked up
 *                             with dlsym(RTLD_DEFAULT)): e.g. after the store has opened
 * Each injected failure is reported on stderr: "faultfs: fdatasync #3 on /x/log/000004.log: EIO".
 * ts_faultfs_fired() returns how many calls failed so far.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define PATH_BYTES 4096

enum kind {
    K_WRITE = 0,
    K_SYNC = 1
};

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*pwritev_fn)(int, const struct iovec *, int, off_t);
typedef int (*sync_fn)(int);
typedef int (*sfr_fn)(int, off_t, off_t, unsigned int);

static struct {
    write_fn write;
    pwrite_fn pwrite, pwrite64;
    writev_fn writev;
    pwritev_fn pwritev;
    sync_fn fsync, fdatasync;
    sfr_fn sync_file_range;
} real;

static struct {
    bool on;
    char dir[PATH_BYTES];
    size_t dir_len;
    const char *match, *suffix;
    uint64_t after[2]; /* UINT64_MAX: never by count */
    uint32_t permille[2];
    uint64_t seed;
    int err;
    bool once, short_write;
} cfg;

static uint32_t armed;      /* atomic */
static uint64_t counted[2]; /* atomic: counted calls since armed */
static uint32_t fired;      /* atomic: injected failures */
static int short_fd = -1;   /* atomic: the next write on it fails (after a short write) */
static uint64_t draws;      /* atomic */

static uint64_t
env_u64(const char *name, uint64_t def)
{
    const char *s = getenv(name);
    return s != NULL && *s != '\0' ? strtoull(s, NULL, 0) : def;
}

/* ISO C has no cast from dlsym's void * to a function pointer: copy the bits. */
#define RESOLVE(field, name)                                                                       \
    do {                                                                                           \
        void *p_ = dlsym(RTLD_NEXT, name);                                                         \
        memcpy(&real.field, &p_, sizeof(p_));                                                      \
    } while (0)

__attribute__((constructor)) static void
faultfs_init(void)
{
    RESOLVE(write, "write");
    RESOLVE(pwrite, "pwrite");
    RESOLVE(pwrite64, "pwrite64");
    RESOLVE(writev, "writev");
    RESOLVE(pwritev, "pwritev");
    RESOLVE(fsync, "fsync");
    RESOLVE(fdatasync, "fdatasync");
    RESOLVE(sync_file_range, "sync_file_range");
    const char *dir = getenv("TS_FAULT_DIR");
    if (dir == NULL || *dir == '\0') return;
    /* Compare against the resolved path: /proc/self/fd links are resolved. */
    if (realpath(dir, cfg.dir) == NULL) snprintf(cfg.dir, sizeof(cfg.dir), "%s", dir);
    cfg.dir_len = strlen(cfg.dir);
    cfg.match = getenv("TS_FAULT_MATCH");
    cfg.suffix = getenv("TS_FAULT_SUFFIX");
    cfg.after[K_WRITE] = env_u64("TS_FAULT_WRITE_AFTER", UINT64_MAX);
    cfg.after[K_SYNC] = env_u64("TS_FAULT_SYNC_AFTER", UINT64_MAX);
    cfg.permille[K_WRITE] = (uint32_t)env_u64("TS_FAULT_WRITE_PERMILLE", 0);
    cfg.permille[K_SYNC] = (uint32_t)env_u64("TS_FAULT_SYNC_PERMILLE", 0);
    cfg.seed = env_u64("TS_FAULT_SEED", 1);
    const char *e = getenv("TS_FAULT_ERRNO");
    cfg.err = e != NULL && strcmp(e, "ENOSPC") == 0 ? ENOSPC : EIO;
    cfg.once = env_u64("TS_FAULT_ONCE", 0) != 0;
    cfg.short_write = env_u64("TS_FAULT_SHORT", 0) != 0;
    cfg.on = true;
    if (env_u64("TS_FAULT_WAIT_ARM", 0) == 0) __atomic_store_n(&armed, 1, __ATOMIC_RELEASE);
}

/* Starts counting now (with TS_FAULT_WAIT_ARM=1). */
__attribute__((visibility("default"))) void
ts_faultfs_arm(void)
{
    __atomic_store_n(&counted[K_WRITE], 0, __ATOMIC_RELAXED);
    __atomic_store_n(&counted[K_SYNC], 0, __ATOMIC_RELAXED);
    __atomic_store_n(&armed, 1, __ATOMIC_RELEASE);
}

__attribute__((visibility("default"))) uint32_t
ts_faultfs_fired(void)
{
    return __atomic_load_n(&fired, __ATOMIC_ACQUIRE);
}

/* Before the constructor ran (another library's constructor writing): straight to the kernel. */
static ssize_t
raw_write(int fd, const void *buf, size_t n)
{
    if (real.write != NULL) return real.write(fd, buf, n);
    return syscall(SYS_write, fd, buf, n);
}

/* The file's path when it is one of those that count; false otherwise. */
static bool
watched(int fd, char *path, size_t cap)
{
    if (!cfg.on || !__atomic_load_n(&armed, __ATOMIC_ACQUIRE)) return false;
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, cap - 1);
    if (n <= 0) return false;
    path[n] = '\0';
    if ((size_t)n < cfg.dir_len || memcmp(path, cfg.dir, cfg.dir_len) != 0) return false;
    if (path[cfg.dir_len] != '/' && path[cfg.dir_len] != '\0') return false;
    if (cfg.match != NULL && strstr(path, cfg.match) == NULL) return false;
    if (cfg.suffix != NULL) {
        size_t s = strlen(cfg.suffix);
        if ((size_t)n < s || strcmp(path + n - s, cfg.suffix) != 0) return false;
    }
    return true;
}

static uint64_t
splitmix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void
report(const char *call, uint64_t nth, const char *path, bool torn)
{
    char msg[PATH_BYTES + 160];
    int n = snprintf(msg, sizeof(msg), "faultfs: %s #%llu on %s: %s%s\n", call,
                     (unsigned long long)nth, path, cfg.err == ENOSPC ? "ENOSPC" : "EIO",
                     torn ? " (half the bytes written first)" : "");
    if (n > 0) (void)!raw_write(2, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
}

/*
 * Whether this counted call fails: by count or by chance, once or from then on. *torn: the write
 * is to be cut short instead (and the next one on fd fails).
 */
static bool
should_fail(enum kind k, int fd, const char *call, const char *path, bool *torn)
{
    *torn = false;
    if (k == K_WRITE && __atomic_load_n(&short_fd, __ATOMIC_ACQUIRE) == fd) {
        __atomic_store_n(&short_fd, -1, __ATOMIC_RELEASE);
        report(call, __atomic_load_n(&counted[k], __ATOMIC_RELAXED), path, false);
        return true;
    }
    uint64_t nth = __atomic_add_fetch(&counted[k], 1, __ATOMIC_RELAXED);
    bool fail = nth > cfg.after[k];
    if (!fail && cfg.permille[k] > 0) {
        uint64_t d = __atomic_add_fetch(&draws, 1, __ATOMIC_RELAXED);
        fail = splitmix(cfg.seed ^ splitmix(d)) % 1000 < cfg.permille[k];
    }
    if (!fail) return false;
    uint32_t before = 0;
    if (cfg.once) { /* only the first one */
        if (!__atomic_compare_exchange_n(&fired, &before, 1, false, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE))
            return false;
    } else {
        before = __atomic_fetch_add(&fired, 1, __ATOMIC_ACQ_REL);
    }
    if (k == K_WRITE && cfg.short_write && before == 0) {
        *torn = true;
        __atomic_store_n(&short_fd, fd, __ATOMIC_RELEASE);
    }
    report(call, nth, path, *torn);
    return true;
}

ssize_t
write(int fd, const void *buf, size_t n)
{
    char path[PATH_BYTES];
    bool torn;
    if (watched(fd, path, sizeof(path)) && should_fail(K_WRITE, fd, "write", path, &torn)) {
        if (torn && n > 1) return raw_write(fd, buf, n / 2);
        errno = cfg.err;
        return -1;
    }
    return raw_write(fd, buf, n);
}

static ssize_t
positioned(pwrite_fn fn, long sys, const char *call, int fd, const void *buf, size_t n, off_t off)
{
    char path[PATH_BYTES];
    bool torn;
    if (watched(fd, path, sizeof(path)) && should_fail(K_WRITE, fd, call, path, &torn)) {
        if (torn && n > 1)
            n /= 2;
        else {
            errno = cfg.err;
            return -1;
        }
    }
    if (fn != NULL) return fn(fd, buf, n, off);
    return syscall(sys, fd, buf, n, off);
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
    return positioned(real.pwrite, SYS_pwrite64, "pwrite", fd, buf, n, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    return positioned(real.pwrite64, SYS_pwrite64, "pwrite64", fd, buf, n, off);
}

/* Vectored writes fail whole (never torn). */
ssize_t
writev(int fd, const struct iovec *iov, int cnt)
{
    char path[PATH_BYTES];
    bool torn;
    if (watched(fd, path, sizeof(path)) && should_fail(K_WRITE, fd, "writev", path, &torn)) {
        errno = cfg.err;
        return -1;
    }
    if (real.writev != NULL) return real.writev(fd, iov, cnt);
    return syscall(SYS_writev, fd, iov, cnt);
}

ssize_t
pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    char path[PATH_BYTES];
    bool torn;
    if (watched(fd, path, sizeof(path)) && should_fail(K_WRITE, fd, "pwritev", path, &torn)) {
        errno = cfg.err;
        return -1;
    }
    if (real.pwritev != NULL) return real.pwritev(fd, iov, cnt, off);
    return syscall(SYS_pwritev, fd, iov, cnt, off, 0);
}

static int
sync_call(sync_fn fn, long sys, const char *call, int fd)
{
    char path[PATH_BYTES];
    bool torn;
    if (watched(fd, path, sizeof(path)) && should_fail(K_SYNC, fd, call, path, &torn)) {
        errno = cfg.err;
        return -1;
    }
    if (fn != NULL) return fn(fd);
    return (int)syscall(sys, fd);
}

int
fsync(int fd)
{
    return sync_call(real.fsync, SYS_fsync, "fsync", fd);
}

int
fdatasync(int fd)
{
    return sync_call(real.fdatasync, SYS_fdatasync, "fdatasync", fd);
}

int
sync_file_range(int fd, off_t off, off_t n, unsigned int flags)
{
    char path[PATH_BYTES];
    bool torn;
    /* flags 0 is a no-op, which RocksDB calls to probe for support (and asserts it works). */
    if (flags != 0 && watched(fd, path, sizeof(path)) &&
        should_fail(K_SYNC, fd, "sync_file_range", path, &torn)) {
        errno = cfg.err;
        return -1;
    }
    if (real.sync_file_range != NULL) return real.sync_file_range(fd, off, n, flags);
    return (int)syscall(SYS_sync_file_range, fd, off, n, flags);
}
