/*
 * tests/storage/plain_faults.c - storage faults: a failed sync or write stops the store
 * (fail-stop) without losing or inventing an acknowledged change; an unusable directory is a
 * clear error, not a crash.
 *
 * Faults: the parent runs this binary again as a child ("plain_faults child <dir> <fd> <run>
 * <flags>", fork + execve) with LD_PRELOAD=TS_FAULTFS_PATH (tests/storage/faultfs.c) in its
 * environment, set to fail the log database's WAL writes or syncs (or the syncs of the state
 * database's table files, which make the materializer's writes durable) after a random number of
 * them, counted from when the store has opened. The
 * child runs the load of stload.h (RECEIVE + RESERVE requests, FSYNC) from PRODUCERS threads and
 * reports through the pipe what was acknowledged and what failed. It checks the fail-stop rules
 * itself:
 *   (1) once a request has completed with E_IO, no request completes with OK (log faults: the
 *       state database's failure may still let a batch already durable complete);
 *   (2) a submit made after that returns E_IO, and so does one made at the end; stats say failed;
 *   (3) every submitted request completes exactly once (by the close at the latest); close returns.
 * The parent requires that the fault fired and the child passed, then reopens the directory
 * without the shim (open replays the log - a torn write leaves a torn WAL tail - and checks every
 * invariant) and runs ld_verify(): everything acknowledged is there, no batch came back in part.
 * Scenarios: fsync EIO, ENOSPC, EIO once (later syncs succeed), random syncs; write EIO, ENOSPC,
 * torn writes (half the bytes, then ENOSPC), torn once; the state database's sync.
 *
 * Unusable directories (in-process): a path under a regular file, a regular file, log/ being a
 * file, state/ holding foreign files, a directory already open, an empty or too long path, a
 * read-only directory (as nobody, in a fresh process, when the test runs as root); each gives its
 * error code and a message naming the path, and nothing crashes.
 *
 * Sanitizers: under ASan the child gets ASAN_OPTIONS=verify_asan_link_order=0 (the shim comes
 * before ASan's runtime in the library order); under TSan see plain.h (RocksDB is not
 * instrumented). TS_SEED replays a run. About 2 s in Release.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>

#include "stload.h"

#define PRODUCERS       2
#define WINDOW          4
#define PER_THREAD_MAX  4000
#define RUN_MAX         (PRODUCERS * PER_THREAD_MAX)
#define CHILD_TIMEOUT   60000
#define CALLS_AFTER_MAX 150 /* the fault fires after 0..this many counted calls */
/* The state is durable by flushes to table files, one file per state write: fewer calls. */
#define STATE_CALLS_AFTER_MAX 15
#define ENV_MAX               512

extern char **environ;

enum flags {
    F_STATE = 1 /* the fault is in the state database: the materializer writes often */
};

/* ---- the child: runs the load until the fault stops the store ---- */

static int child_fd = -1;
static uint32_t child_run, child_flags;
static trastenda_store *child_st;
static struct ld_slot child_slots[PRODUCERS][WINDOW];
static uint32_t failure_seen; /* atomic: a request completed with E_IO */
static uint64_t dones;        /* atomic */
static uint64_t submitted;    /* atomic */

static void
child_send(const struct ld_msg *m)
{
    if (write(child_fd, m, sizeof(*m)) != (ssize_t)sizeof(*m)) _exit(5);
}

static void
child_say(uint32_t type, const char *what, uint32_t thread, uint32_t idx, trastenda_err code)
{
    fprintf(stderr, "plain_faults child: %s (thread %u, request %u): %s\n", what, thread, idx,
            trastenda_err_name(code));
    struct ld_msg m = {.type = type, .thread = thread, .idx = idx, .code = code};
    child_send(&m);
}

static void
child_done(trastenda_request *req, trastenda_err status)
{
    struct ld_slot *s = req->ctx;
    __atomic_fetch_add(&dones, 1, __ATOMIC_RELAXED);
    if (!__atomic_load_n(&s->busy, __ATOMIC_ACQUIRE))
        child_say(LD_VIOLATION, "done() ran twice", s->thread, s->idx, status);
    if (status == TRASTENDA_E_IO) {
        __atomic_store_n(&failure_seen, 1, __ATOMIC_RELEASE);
        struct ld_msg m = {.type = LD_FAILED, .thread = s->thread, .idx = s->idx, .code = status};
        child_send(&m);
    } else if (status != TRASTENDA_OK) {
        child_say(LD_ERROR, "a request completed with an unexpected status", s->thread, s->idx,
                  status);
    } else if (__atomic_load_n(&failure_seen, __ATOMIC_ACQUIRE) && !(child_flags & F_STATE)) {
        child_say(LD_VIOLATION, "acknowledged after a request had failed with E_IO (1)", s->thread,
                  s->idx, status);
    } else if (!ld_slot_ok(s)) {
        child_say(LD_ERROR, "a command failed", s->thread, s->idx, s->res[1].code);
    } else {
        struct ld_msg m = {.type = LD_ACK,
                           .thread = s->thread,
                           .idx = s->idx,
                           .hold = s->res[1].id,
                           .seq = req->seq};
        child_send(&m);
    }
    __atomic_store_n(&s->busy, 0, __ATOMIC_RELEASE);
}

/* Submits until the store fails (or the load ends); a submit after a seen failure must fail. */
static void *
producer_main(void *arg)
{
    uint32_t t = (uint32_t)(uintptr_t)arg;
    for (uint32_t i = 0; i < PER_THREAD_MAX; i++) {
        struct ld_slot *s = &child_slots[t][i % WINDOW];
        /* After a failure the slot may stay busy until the close: stop waiting then. */
        for (uint32_t w = 0; __atomic_load_n(&s->busy, __ATOMIC_ACQUIRE); w++) {
            if (__atomic_load_n(&failure_seen, __ATOMIC_ACQUIRE)) return NULL;
            if (w == 600000) child_say(LD_ERROR, "a request was never completed", t, i, 0);
            usleep(100);
        }
        bool after = __atomic_load_n(&failure_seen, __ATOMIC_ACQUIRE);
        ld_slot_fill(s, child_run, t, i, child_done);
        __atomic_store_n(&s->busy, 1, __ATOMIC_RELEASE);
        trastenda_err err;
        while ((err = trastenda_store_submit(child_st, &s->req)) == TRASTENDA_E_BUSY)
            sched_yield();
        if (err == TRASTENDA_OK) {
            __atomic_fetch_add(&submitted, 1, __ATOMIC_RELAXED);
            if (after)
                child_say(LD_VIOLATION, "a submit after a failure was accepted (2)", t, i, 0);
            continue;
        }
        __atomic_store_n(&s->busy, 0, __ATOMIC_RELEASE); /* done() will not run */
        if (err != TRASTENDA_E_IO) child_say(LD_ERROR, "submit refused", t, i, err);
        return NULL;
    }
    return NULL;
}

/* The shim's functions, found in the process (the shim was preloaded). */
static void
shim_functions(void (**arm)(void), uint32_t (**fired)(void))
{
    void *a = dlsym(RTLD_DEFAULT, "ts_faultfs_arm");
    void *f = dlsym(RTLD_DEFAULT, "ts_faultfs_fired");
    if (a == NULL || f == NULL) {
        fprintf(stderr, "plain_faults child: the fault shim is not loaded (LD_PRELOAD=%s)\n",
                getenv("LD_PRELOAD") != NULL ? getenv("LD_PRELOAD") : "");
        _exit(7);
    }
    memcpy(arm, &a, sizeof(a));
    memcpy(fired, &f, sizeof(f));
}

/* After the producers: the store must have stopped; checks (2) and (3), closes. */
static void
child_after(uint32_t (*fired)(void))
{
    trastenda_store_stats stats;
    for (int i = 0; i < 10000 && !__atomic_load_n(&failure_seen, __ATOMIC_ACQUIRE); i++) {
        trastenda_store_stats_get(child_st, &stats);
        if (stats.failed) break;
        usleep(1000); /* the last requests are still being written */
    }
    trastenda_store_stats_get(child_st, &stats);
    if (!stats.failed) {
        child_say(LD_ERROR, "the fault never stopped the store (the load ended first)", 0, 0, 0);
        _exit(8);
    }
    struct ld_slot extra;
    ld_slot_fill(&extra, child_run, PRODUCERS, 0, child_done);
    trastenda_err err = trastenda_store_submit(child_st, &extra.req);
    if (err != TRASTENDA_E_IO) child_say(LD_VIOLATION, "a submit after the stop (2)", 0, 0, err);
    trastenda_store_close(child_st); /* completes what is left with E_IO */
    uint64_t d = __atomic_load_n(&dones, __ATOMIC_ACQUIRE);
    uint64_t n = __atomic_load_n(&submitted, __ATOMIC_ACQUIRE);
    if (d != n) child_say(LD_VIOLATION, "not every request completed once (3)", 0, (uint32_t)d, 0);
    struct ld_msg m = {.type = LD_SUMMARY, .idx = (uint32_t)n, .hold = d, .code = fired()};
    child_send(&m);
}

static int
child_main(int argc, char **argv)
{
    if (argc != 6) return 9;
    const char *dir = argv[2];
    child_fd = atoi(argv[3]);
    child_run = (uint32_t)atoi(argv[4]);
    child_flags = (uint32_t)atoi(argv[5]);
    void (*arm)(void);
    uint32_t (*fired)(void);
    shim_functions(&arm, &fired);
    /* Loaded: what this process starts (a sanitizer's symbolizer) runs without it. */
    unsetenv("LD_PRELOAD");
    trastenda_store_config cfg;
    ld_config(&cfg, dir);
    if (child_flags & F_STATE) cfg.materialize_interval_ms = 2;
    char err[512];
    trastenda_err code = trastenda_store_open(&cfg, &child_st, err, sizeof(err));
    if (code != TRASTENDA_OK) {
        fprintf(stderr, "plain_faults child: open: %s: %s\n", trastenda_err_name(code), err);
        return 2;
    }
    uint64_t seq = 0;
    if (ld_catalog(child_st, &seq) != 0) return 3;
    struct ld_msg ready = {.type = LD_READY, .seq = seq};
    child_send(&ready);
    arm(); /* the faults count from here: the open and the catalog went through */
    pthread_t th[PRODUCERS];
    for (uint32_t t = 0; t < PRODUCERS; t++)
        if (pthread_create(&th[t], NULL, producer_main, (void *)(uintptr_t)t) != 0) return 4;
    for (uint32_t t = 0; t < PRODUCERS; t++)
        pthread_join(th[t], NULL);
    child_after(fired);
    return 0;
}

/* ---- the parent: one fault scenario ---- */

struct scenario {
    const char *name;
    bool sync; /* syncs fail; else writes */
    const char *errno_name;
    bool once;         /* only the first failing call fails */
    bool torn;         /* the failing write writes half its bytes first */
    bool state;        /* the state database's WAL, not the log's */
    uint32_t permille; /* at random instead of after N calls */
};

static const struct scenario SCENARIOS[] = {
    {"fsync EIO", true, "EIO", false, false, false, 0},
    {"fsync EIO", true, "EIO", false, false, false, 0},
    {"fsync ENOSPC", true, "ENOSPC", false, false, false, 0},
    {"fsync EIO once (later syncs succeed)", true, "EIO", true, false, false, 0},
    {"fsync EIO at random (3%)", true, "EIO", false, false, false, 30},
    {"write EIO", false, "EIO", false, false, false, 0},
    {"write ENOSPC", false, "ENOSPC", false, false, false, 0},
    {"torn write (half written, then ENOSPC)", false, "ENOSPC", false, true, false, 0},
    {"torn write once (half written, EIO once)", false, "EIO", true, true, false, 0},
    {"state database fsync EIO (materializer)", true, "EIO", false, false, true, 0},
};
#define SCENARIO_COUNT (sizeof(SCENARIOS) / sizeof(SCENARIOS[0]))

struct env {
    char *v[ENV_MAX + 16];
    uint32_t n;
    char own[14][PT_PATH_BYTES + 64];
    uint32_t n_own;
};

static void env_add(struct env *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
env_add(struct env *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->own[e->n_own], sizeof(e->own[0]), fmt, ap);
    va_end(ap);
    e->v[e->n++] = e->own[e->n_own++];
}

/* The child's environment: ours without LD_PRELOAD and TS_FAULT_*, plus the shim's settings. */
static void
env_build(struct env *e, const struct scenario *sc, const char *dir, uint32_t after, uint64_t seed)
{
    const char *asan = "";
    e->n = e->n_own = 0;
    for (char **p = environ; *p != NULL && e->n < ENV_MAX; p++) {
        if (strncmp(*p, "ASAN_OPTIONS=", 13) == 0) asan = *p + 13;
        if (strncmp(*p, "LD_PRELOAD=", 11) == 0 || strncmp(*p, "TS_FAULT_", 9) == 0 ||
            strncmp(*p, "ASAN_OPTIONS=", 13) == 0)
            continue;
        e->v[e->n++] = *p;
    }
    env_add(e, "LD_PRELOAD=%s", TS_FAULTFS_PATH);
    env_add(e, "TS_FAULT_DIR=%s", dir);
    env_add(e, "TS_FAULT_MATCH=%s", sc->state ? "/state/" : "/log/");
    /* the log's WAL files (000004.log, not RocksDB's LOG); the state's table files */
    env_add(e, "TS_FAULT_SUFFIX=%s", sc->state ? ".sst" : ".log");
    env_add(e, "TS_FAULT_WAIT_ARM=1");
    env_add(e, "TS_FAULT_ERRNO=%s", sc->errno_name);
    if (sc->permille > 0) {
        env_add(e, "TS_FAULT_%s_PERMILLE=%u", sc->sync ? "SYNC" : "WRITE", sc->permille);
        env_add(e, "TS_FAULT_SEED=%" PRIu64, seed);
    } else {
        env_add(e, "TS_FAULT_%s_AFTER=%u", sc->sync ? "SYNC" : "WRITE", after);
    }
    if (sc->once) env_add(e, "TS_FAULT_ONCE=1");
    if (sc->torn) env_add(e, "TS_FAULT_SHORT=1");
    /* ASan checks that its runtime comes first among the libraries; the shim does. */
    if (PT_ASAN) env_add(e, "ASAN_OPTIONS=%s%sverify_asan_link_order=0", asan, *asan ? ":" : "");
    e->v[e->n] = NULL;
}

struct run_out {
    struct ld_ack *acks; /* RUN_MAX */
    uint32_t n, failed;
    uint64_t seq_max;
    bool ready, summary;
    struct ld_msg last; /* the summary */
};

/* Reads the child's messages until it closes the pipe; fails on an error or a violation. */
static void
read_child(int fd, const char *name, struct run_out *o)
{
    struct ld_msg m;
    int64_t deadline = pt_now_ms() + CHILD_TIMEOUT;
    ssize_t r;
    while ((r = pt_read_full(fd, &m, sizeof(m), deadline)) == (ssize_t)sizeof(m)) {
        if (m.type == LD_ERROR || m.type == LD_VIOLATION)
            pt_fail("%s: the child reported %s (thread %u, request %u, %s): see its stderr", name,
                    m.type == LD_ERROR ? "an error" : "a fail-stop violation", m.thread, m.idx,
                    trastenda_err_name((trastenda_err)m.code));
        if (m.type == LD_READY) o->ready = true;
        if (m.type == LD_FAILED) o->failed++;
        if (m.type == LD_SUMMARY) {
            o->summary = true;
            o->last = m;
        }
        if (m.type == LD_ACK) {
            PT_CHECK(o->n < RUN_MAX && m.thread < PRODUCERS && m.idx < PER_THREAD_MAX,
                     "%s: a malformed ack", name);
            o->acks[o->n++] = (struct ld_ack){m.thread, m.idx, m.hold, m.seq};
            if (m.seq > o->seq_max) o->seq_max = m.seq;
        }
    }
    PT_CHECK(r == 0, "%s: the child did not finish within %d s", name, CHILD_TIMEOUT / 1000);
}

static void
run_scenario(const struct scenario *sc, uint32_t run, struct rng *rng)
{
    char dir[PT_PATH_BYTES];
    st_tmpdir(dir, sizeof(dir), "faults");
    pt_dir_add(dir);
    uint32_t after = rng_below(rng, (sc->state ? STATE_CALLS_AFTER_MAX : CALLS_AFTER_MAX) + 1);
    uint64_t seed = rng_u64(rng);
    static struct env env;
    env_build(&env, sc, dir, after, seed);
    int fds[2];
    PT_CHECK(pipe(fds) == 0, "pipe: %s", strerror(errno));
    char fd_arg[16], run_arg[16], flags_arg[16];
    snprintf(fd_arg, sizeof(fd_arg), "%d", fds[1]);
    snprintf(run_arg, sizeof(run_arg), "%u", run);
    snprintf(flags_arg, sizeof(flags_arg), "%u", sc->state ? (unsigned)F_STATE : 0u);
    char *argv[] = {(char *)"plain_faults", (char *)"child", dir, fd_arg, run_arg, flags_arg, NULL};
    fflush(NULL);
    pid_t pid = fork();
    PT_CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        pt_child_start();
        close(fds[0]);
        execve("/proc/self/exe", argv, env.v);
        _exit(127);
    }
    pt_child_add(pid);
    close(fds[1]);
    static struct ld_ack acks[RUN_MAX];
    struct run_out o = {.acks = acks};
    read_child(fds[0], sc->name, &o);
    close(fds[0]);
    bool forced;
    int status = pt_wait_child(pid, pt_now_ms() + CHILD_TIMEOUT, &forced);
    char how[96];
    pt_describe_status(status, how, sizeof(how));
    char what[160];
    if (sc->permille > 0)
        snprintf(what, sizeof(what), "%s (shim seed %" PRIu64 ")", sc->name, seed);
    else
        snprintf(what, sizeof(what), "%s (after %u calls)", sc->name, after);
    PT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0 && o.summary,
             "%s: the child %s%s (see its stderr)", what, how,
             o.summary ? "" : " without its summary");
    PT_CHECK(o.last.code > 0, "%s: the shim injected no fault", what);
    trastenda_store_config cfg;
    ld_config(&cfg, dir);
    struct ld_expect x = {.acks = o.acks,
                          .n = o.n,
                          .seq_max = o.seq_max,
                          .submitted_max = o.last.idx,
                          .keys_before = 0,
                          .seq_before = 0};
    uint64_t keys, seq;
    ld_verify(&cfg, what, run, &x, &keys, &seq);
    if (getenv("TS_TEST_LOG") != NULL)
        fprintf(stderr,
                "%s: %u acknowledged, %u failed with E_IO, %u submitted; %" PRIu64
                " keys after the restart\n",
                what, o.n, o.failed, o.last.idx, keys);
    pt_dir_remove(dir);
}

/* ---- unusable directories ---- */

static void
expect_open_error(const char *dir, trastenda_err want, const char *mention, const char *what)
{
    trastenda_store_config cfg;
    ld_config(&cfg, dir);
    trastenda_store *st = (trastenda_store *)&cfg; /* must be reset to NULL */
    char err[512];
    memset(err, 'x', sizeof(err));
    trastenda_err code = trastenda_store_open(&cfg, &st, err, sizeof(err));
    if (code == TRASTENDA_OK) trastenda_store_close(st);
    PT_CHECK(code == want, "%s: open gave %s (%s), expected %s", what, trastenda_err_name(code),
             code == TRASTENDA_OK ? "it opened" : err, trastenda_err_name(want));
    PT_CHECK(st == NULL, "%s: *out not NULL after a failed open", what);
    PT_CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0' &&
                 (mention == NULL || strstr(err, mention) != NULL),
             "%s: the message \"%.200s\" should mention \"%s\"", what, err,
             mention != NULL ? mention : "");
    if (getenv("TS_TEST_LOG") != NULL)
        fprintf(stderr, "%s: %s: %s\n", what, trastenda_err_name(code), err);
}

static void
touch(const char *path)
{
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    PT_CHECK(fd >= 0 && write(fd, "not a database\n", 15) == 15, "create %s: %s", path,
             strerror(errno));
    close(fd);
}

/* snprintf into a path buffer of the test's own, failing when it does not fit. */
static void join(char out[2 * PT_PATH_BYTES], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
join(char out[2 * PT_PATH_BYTES], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, 2 * PT_PATH_BYTES, fmt, ap);
    va_end(ap);
    PT_CHECK(n >= 0 && n < 2 * PT_PATH_BYTES, "a path too long for the test's buffer");
}

static void
unusable_dirs(void)
{
    char base[PT_PATH_BYTES], path[2 * PT_PATH_BYTES], file[2 * PT_PATH_BYTES];
    st_tmpdir(base, sizeof(base), "faults-dirs");
    pt_dir_add(base);
    join(file, "%s/a-file", base);
    touch(file);
    join(path, "%s/data", file);
    expect_open_error(path, TRASTENDA_E_IO, "Not a directory", "a path under a regular file");
    expect_open_error(file, TRASTENDA_E_IO, file, "a regular file as the directory");
    join(path, "%s/d1", base);
    PT_CHECK(mkdir(path, 0755) == 0, "mkdir %s", path);
    join(file, "%s/log", path);
    touch(file);
    expect_open_error(path, TRASTENDA_E_IO, "log", "log/ a regular file");
    join(path, "%s/d2", base);
    join(file, "%s/d2/state", base);
    PT_CHECK(mkdir(path, 0755) == 0 && mkdir(file, 0755) == 0, "mkdir %s", file);
    join(file, "%s/d2/state/notes.txt", base);
    touch(file);
    expect_open_error(path, TRASTENDA_E_CORRUPT, "state", "state/ holding another program's files");
    expect_open_error("", TRASTENDA_E_INVALID, NULL, "an empty path");
    static char longpath[8192];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    expect_open_error(longpath, TRASTENDA_E_INVALID, NULL, "a path of 8 KiB");
    /* A directory another store has open: RocksDB's lock. */
    join(path, "%s/d3", base);
    trastenda_store_config cfg;
    ld_config(&cfg, path);
    trastenda_store *st = NULL;
    char err[512];
    trastenda_err code = trastenda_store_open(&cfg, &st, err, sizeof(err));
    PT_CHECK(code == TRASTENDA_OK, "open %s: %s", path, err);
    expect_open_error(path, TRASTENDA_E_IO, "lock", "a directory already open");
    uint64_t seq;
    PT_CHECK(ld_catalog(st, &seq) == 0, "the first store stopped working after the second open");
    trastenda_store_close(st);
    join(path, "%s/ro", base);
    if (geteuid() != 0) {
        PT_CHECK(mkdir(path, 0500) == 0, "mkdir %s", path);
        expect_open_error(path, TRASTENDA_E_IO, NULL, "a read-only directory");
    } else {
        /* Root writes anywhere: the case runs in a fresh process of this test, as nobody, on a
         * directory root owns that others may read and enter but not write. */
        PT_CHECK(mkdir(path, 0555) == 0 && chmod(path, 0555) == 0 && chmod(base, 0711) == 0,
                 "mkdir %s", path);
        pid_t pid = fork();
        PT_CHECK(pid >= 0, "fork");
        if (pid == 0) {
            char *const argv[] = {"plain_faults", "rochild", path, NULL};
            if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0)
                _exit(125);
            execv("/proc/self/exe", argv);
            _exit(126);
        }
        int status;
        PT_CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
        PT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                 "a read-only directory, opened as nobody: the child failed (status %d)", status);
    }
    PT_CHECK(trastenda_store_open(NULL, &st, err, sizeof(err)) == TRASTENDA_E_INVALID,
             "open(NULL config)");
    pt_dir_remove(base);
}

int
main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0) return child_main(argc, argv);
    if (argc == 3 && strcmp(argv[1], "rochild") == 0) { /* unusable_dirs, as root */
        expect_open_error(argv[2], TRASTENDA_E_IO, NULL, "a read-only directory (as nobody)");
        return 0;
    }
    pt_init("plain_faults");
    struct rng rng = {pt_seed()};
    int64_t t0 = pt_now_ms();
    unusable_dirs();
    for (uint32_t i = 0; i < SCENARIO_COUNT; i++)
        run_scenario(&SCENARIOS[i], i, &rng);
    fprintf(stderr,
            "plain_faults: %u fault scenarios and the unusable directories passed in %.1f s\n",
            (unsigned)SCENARIO_COUNT, (double)(pt_now_ms() - t0) / 1000.0);
    pt_cleanup();
    return 0;
}
