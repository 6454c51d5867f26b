/*
 * tests/storage/plain.h - what the plain (own main()) storage tests share: failing with a message
 * after killing their children and removing their temporary directories (also on abort), reading
 * a pipe against a deadline, a seed that replays a run, and which sanitizer the build uses.
 *
 * Children are forked: pt_child_start() in the child forgets the parent's children and
 * directories (a child failing must not remove the parent's data) and asks the kernel to kill it
 * when the parent dies (a test killed by ctest leaves nothing running).
 *
 * The parent of a test that forks never opens a store itself: RocksDB starts background threads
 * that outlive the close (its Env's thread pool), and a child forked from a multi-threaded
 * process inherits a RocksDB whose pool believes in threads that do not exist in it (flushes and
 * compactions would never run; ThreadSanitizer refuses outright). pt_run_forked() runs such work
 * - reopening a store to check it - in a child of its own.
 */
#ifndef TS_TESTS_PLAIN_H
#define TS_TESTS_PLAIN_H

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#endif

/* The sanitizer of the build (CMakeLists.txt: TS_SANITIZE = ASan + UBSan, TS_TSAN). */
#if defined(__SANITIZE_THREAD__)
#define PT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PT_TSAN 1
#endif
#endif
#ifndef PT_TSAN
#define PT_TSAN 0
#endif
#if defined(__SANITIZE_ADDRESS__)
#define PT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PT_ASAN 1
#endif
#endif
#ifndef PT_ASAN
#define PT_ASAN 0
#endif

/*
 * Under ThreadSanitizer: RocksDB (Debian's librocksdb, not built with TSan) synchronises in code
 * TSan cannot see, so its internals show up as races, often with its frames unwound away. Accesses
 * made by uninstrumented libraries through TSan's interceptors (memcpy in RocksDB and libstdc++)
 * are ignored and reports with a RocksDB frame suppressed; races in instrumented code (store.c,
 * the engine, the tests) are still reported. No one-second sleep at each (child's) exit.
 */
#if PT_TSAN
const char *__tsan_default_options(void);
const char *
__tsan_default_options(void)
{
    return "ignore_noninstrumented_modules=1:atexit_sleep_ms=0";
}

const char *__tsan_default_suppressions(void);
const char *
__tsan_default_suppressions(void)
{
    return "race:librocksdb.so\n"
           "mutex:librocksdb.so\n"
           "called_from_lib:librocksdb.so\n";
}
#endif

#define PT_CHILDREN_MAX 8
#define PT_DIRS_MAX     8
#define PT_PATH_BYTES   512

static pid_t pt_children[PT_CHILDREN_MAX];
static char pt_dirs[PT_DIRS_MAX][PT_PATH_BYTES];
static const char *pt_name = "plain";
static bool pt_in_child;

static int64_t
pt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
pt_child_add(pid_t pid)
{
    for (int i = 0; i < PT_CHILDREN_MAX; i++)
        if (pt_children[i] == 0) {
            pt_children[i] = pid;
            return;
        }
    kill(pid, SIGKILL);
    fprintf(stderr, "%s: FAIL: more than %d children\n", pt_name, PT_CHILDREN_MAX);
    exit(1);
}

/* After waitpid: the pid may be reused, never kill it again. */
static void
pt_child_forget(pid_t pid)
{
    for (int i = 0; i < PT_CHILDREN_MAX; i++)
        if (pt_children[i] == pid) pt_children[i] = 0;
}

static void
pt_dir_add(const char *dir)
{
    for (int i = 0; i < PT_DIRS_MAX; i++)
        if (pt_dirs[i][0] == '\0') {
            snprintf(pt_dirs[i], PT_PATH_BYTES, "%s", dir);
            return;
        }
    fprintf(stderr, "%s: FAIL: more than %d temporary directories\n", pt_name, PT_DIRS_MAX);
    exit(1);
}

/* rm -rf without a shell and without malloc: usable from a signal handler. */
static void
pt_rm_rf(const char *dir)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/rm", "rm", "-rf", "--", dir, (char *)NULL);
        _exit(127);
    }
    if (pid > 0) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
}

static void
pt_dir_remove(const char *dir)
{
    for (int i = 0; i < PT_DIRS_MAX; i++)
        if (strcmp(pt_dirs[i], dir) == 0) pt_dirs[i][0] = '\0';
    pt_rm_rf(dir);
}

/* Kills the children, reaps them and removes the directories (unless TS_KEEP_DIRS is set). */
static void
pt_cleanup(void)
{
    for (int i = 0; i < PT_CHILDREN_MAX; i++)
        if (pt_children[i] > 0) {
            kill(pt_children[i], SIGKILL);
            waitpid(pt_children[i], NULL, 0);
            pt_children[i] = 0;
        }
    bool keep = getenv("TS_KEEP_DIRS") != NULL;
    for (int i = 0; i < PT_DIRS_MAX; i++)
        if (pt_dirs[i][0] != '\0') {
            if (keep)
                fprintf(stderr, "%s: kept %s\n", pt_name, pt_dirs[i]);
            else
                pt_rm_rf(pt_dirs[i]);
            pt_dirs[i][0] = '\0';
        }
}

static void pt_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void
pt_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: FAIL: ", pt_name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    if (pt_in_child) { /* no exit handlers of the parent's libraries in a forked child */
        fflush(stderr);
        _exit(1);
    }
    pt_cleanup();
    exit(1);
}

#define PT_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s: %s:%d: check failed: %s\n", pt_name, __FILE__, __LINE__, #cond);  \
            pt_fail(__VA_ARGS__);                                                                  \
        }                                                                                          \
    } while (0)

/* An abort (an invariant check of the store, an assertion) or a SIGTERM still cleans up, then
 * dies as it would have. */
static void
pt_on_fatal(int sig)
{
    for (int i = 0; i < PT_CHILDREN_MAX; i++)
        if (pt_children[i] > 0) kill(pt_children[i], SIGKILL);
    if (getenv("TS_KEEP_DIRS") == NULL)
        for (int i = 0; i < PT_DIRS_MAX; i++)
            if (pt_dirs[i][0] != '\0') pt_rm_rf(pt_dirs[i]);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void
pt_init(const char *name)
{
    pt_name = name;
    signal(SIGABRT, pt_on_fatal);
    signal(SIGSEGV, pt_on_fatal);
    signal(SIGBUS, pt_on_fatal);
    signal(SIGTERM, pt_on_fatal); /* timeout(1), an impatient user */
    signal(SIGINT, pt_on_fatal);
    signal(SIGPIPE, SIG_IGN);
}

/* In a forked child: the parent's children and directories are not its own; die with the
 * parent. */
static void
pt_child_start(void)
{
    pt_in_child = true;
    memset(pt_children, 0, sizeof(pt_children));
    memset(pt_dirs, 0, sizeof(pt_dirs));
    signal(SIGABRT, SIG_DFL);
    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* Reads exactly n bytes: n, 0 at end of file (or a partial message at the end), -1 when the
 * deadline (pt_now_ms() time) passes first. */
static ssize_t
pt_read_full(int fd, void *buf, size_t n, int64_t deadline_ms)
{
    size_t got = 0;
    while (got < n) {
        int64_t left = deadline_ms - pt_now_ms();
        if (left <= 0) return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) pt_fail("poll: %s", strerror(errno));
        if (r == 0) continue;
        ssize_t k = read(fd, (char *)buf + got, n - got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) pt_fail("read: %s", strerror(errno));
        if (k == 0) return 0;
        got += (size_t)k;
    }
    return (ssize_t)n;
}

/* Waits for a child until the deadline, then kills it. Returns the wait status. */
static int
pt_wait_child(pid_t pid, int64_t deadline_ms, bool *killed)
{
    int status = 0;
    *killed = false;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) pt_fail("waitpid %d: %s", (int)pid, strerror(errno));
        if (pt_now_ms() > deadline_ms && !*killed) {
            kill(pid, SIGKILL);
            *killed = true;
        }
        usleep(1000);
    }
    pt_child_forget(pid);
    return status;
}

static void
pt_describe_status(int status, char *out, size_t cap)
{
    if (WIFEXITED(status))
        snprintf(out, cap, "exited with %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, cap, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(out, cap, "status 0x%x", (unsigned)status);
}

/*
 * Runs fn(arg, out) in a forked child and brings back its out (out_bytes, through a pipe), so that
 * this process stays single-threaded. A failure in fn (pt_fail) fails the test here too.
 */
static void
pt_run_forked(const char *what, void (*fn)(void *arg, void *out), void *arg, void *out,
              size_t out_bytes, int64_t timeout_ms)
{
    int fds[2];
    if (pipe(fds) != 0) pt_fail("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) pt_fail("fork: %s", strerror(errno));
    if (pid == 0) {
        pt_child_start();
        close(fds[0]);
        fn(arg, out);
        size_t done = 0;
        while (done < out_bytes) {
            ssize_t w = write(fds[1], (const char *)out + done, out_bytes - done);
            if (w <= 0) _exit(3);
            done += (size_t)w;
        }
        _exit(0);
    }
    pt_child_add(pid);
    close(fds[1]);
    int64_t deadline = pt_now_ms() + timeout_ms;
    ssize_t r = pt_read_full(fds[0], out, out_bytes, deadline);
    close(fds[0]);
    bool killed;
    int status = pt_wait_child(pid, deadline + 1000, &killed);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && r == (ssize_t)out_bytes) return;
    char how[96];
    pt_describe_status(status, how, sizeof(how));
    pt_fail("%s: the child doing it %s%s", what, how, killed ? " (timed out)" : "");
}

/* The run's seed: TS_SEED when set (to replay a failure), else from the clock; printed. */
static uint64_t
pt_seed(void)
{
    const char *s = getenv("TS_SEED");
    uint64_t seed;
    if (s != NULL) {
        seed = strtoull(s, NULL, 0);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
    }
    fprintf(stderr, "%s: seed %" PRIu64 " (TS_SEED=%" PRIu64 " replays it)\n", pt_name, seed, seed);
    return seed;
}

/* A number from the environment, or def. */
static uint64_t
pt_env_u64(const char *name, uint64_t def)
{
    const char *s = getenv(name);
    return s != NULL && *s != '\0' ? strtoull(s, NULL, 0) : def;
}

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif /* TS_TESTS_PLAIN_H */
