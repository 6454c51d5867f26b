/*
 * bench/storage.c - trastenda-bench-storage: the durable store under load (issue 3).
 *
 * Everything goes through trastenda_store_submit: the engine thread, the log writer (one RocksDB
 * put per batch, fsync'ed in FSYNC mode) and the materializer all run as in production; nothing
 * is bypassed. Cases, each on a fresh store in its own temporary data directory:
 *   raw       the disk's own rate: 64-byte appends + fdatasync on a file in the same directory
 *   fsync     single-line reserves (RESERVE, qty 1 of a SKU at an explicit location, a ttl and an
 *             idempotency key each, as a checkout sends them), one command per request, from
 *             producer threads that each keep a window of requests in flight (closed loop),
 *             TRASTENDA_DURABILITY_FSYNC
 *   async     the same, TRASTENDA_DURABILITY_ASYNC
 *   paced     the same in FSYNC mode at a fixed offered rate (open loop: every request has its
 *             scheduled send time; a late producer does not slow the schedule down)
 *   recovery  a state of N stock records (N/5 SKUs x 5 locations) built through the store by a
 *             child process that ends without closing it (the state database stays empty), then
 *             reopened: recovery replays the whole log; closed (the state is written) and
 *             reopened again: recovery loads the materialized state
 *
 * Latency is submit -> done() (the durable acknowledgement), per request, in a log-bucketed
 * histogram (every request counted, no sampling). Throughput counts reserves acknowledged OK
 * within the measured window, after a warm-up. Holds never expire during a run (ttl 1 h) and
 * keys are kept for 2 h: the batches hold reserves and nothing else. The hold, key and line
 * tables are sized for the run (memory permitting); a run that fills them stops early and says
 * so rather than fail commands.
 *
 * Where the CPU goes: /proc/self/task/<tid>/stat of every thread before and after the window,
 * grouped by role (engine thread, log writer, materializer, producers, RocksDB's threads).
 */
#define BENCH_NAME "trastenda-bench-storage"
#include "trastenda/storage.h"
#include "common.h"
#include "trastenda.h"
#include "trastenda/engine.h"
#include "trastenda/log.h"

#ifndef TS_NO_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- parameters ---- */

#define RES_SKUS           100000u /* reserve catalogue: 100,000 SKUs x 1 location */
#define RES_UNITS          1000000 /* units received per SKU: no reserve ever runs short */
#define RES_TTL_MS         3600000 /* 1 h: no hold expires during a run */
#define RES_KEY_RETENT_MS  7200000 /* 2 h: no key is purged during a run */
#define LOC_ID             "WH1"
#define SKU_ID_BYTES       12 /* "SKU-0000000" + NUL */
#define KEY_BYTES          18 /* "k" + 16 hex digits + NUL */
#define DEFAULT_SECONDS    60.0
#define QUICK_SECONDS      5.0
#define DEFAULT_WARMUP_S   5.0
#define QUICK_WARMUP_S     2.0
#define DEFAULT_THREADS    4u
#define DEFAULT_WINDOW     2048u
#define DEFAULT_PACED_RATE 100000.0
#define RAW_FSYNC_S        2.0
#define RAW_WRITE_BYTES    64
#define REC_LOCS           5u
#define DEFAULT_RECORDS    10000000ull
#define QUICK_RECORDS      1000000ull
#define REC_BATCH          65536u /* commands per request (and batch_cmds_max) building the state */
#define REC_WINDOW         3u     /* big requests in flight while building */
#define REC_RECORDS_MAX    50000000ull /* SKU ids have 7 digits: 10,000,000 SKUs x 5 */
#define SAMPLE_MS          20
/* A paced producer sleeps at least this long, then sends what fell due meanwhile: fewer
 * wake-ups to take the store's CPU (one every 40 us each cost a core at 100,000/s). */
#define PACE_QUANTUM_NS   200000ull
#define LAG_OK_INTERVALS  3.0 /* the materializer keeps up: lag at the end <= 3 intervals */
#define TICKET_CHUNK      256u
#define CAPACITY_RATE     1200000.0 /* reserves/s the tables are sized for (target + 20%) */
#define BYTES_PER_RESERVE 700.0     /* RSS per reserve, both engines (live + materializer) */
#define MEM_SHARE         0.6       /* of MemAvailable the reserve tables may take */
#define RUNS_MAX          9u
#define TARGET_RATE       1000000.0
#define TARGET_P99_US     500.0
#define TARGET_RECOVERY_S 5.0
#define TARGET_LOG_BYTES  128.0
#define TARGET_RECORDS    10000000.0
#define ERR_SLOTS         32u
#define SLICES            10u

struct opts {
    double seconds, warmup_s, rate;
    uint32_t threads, window, runs, batch_max, materialize_ms;
    uint32_t page_slots; /* the engine's page_slots (0: its default) */
    bool timeline;       /* print every sample of the window to stderr */
    int mat_nice;        /* experiment: nice value of the materializer thread (0: untouched) */
    uint64_t records, capacity;
    bool json, quick;
    bool huge_pages; /* the engine's tables in transparent huge pages (the server's --huge-pages) */
    const char *only;
    const char *build_dir; /* child mode: build the recovery state here */
};

static char root_dir[4096]; /* removed at exit */

static void
sleep_until_ns(uint64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000000ull), (long)(t % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static void
sleep_ms(uint32_t ms)
{
    sleep_until_ns(now_ns() + (uint64_t)ms * 1000000ull);
}

static pid_t
thread_id(void)
{
    return (pid_t)syscall(SYS_gettid);
}

/* Sleeps while *word == expected, at most timeout_ms. Spurious returns happen. */
static void
futex_wait(uint32_t *word, uint32_t expected, uint32_t timeout_ms)
{
    struct timespec ts = {(time_t)(timeout_ms / 1000), (long)(timeout_ms % 1000) * 1000000l};
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, &ts, NULL, 0);
}

static void
futex_wake(uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

#define LOAD(p)        __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v)    __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define ADD(p, v)      __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define SC_LOAD(p)     __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define SC_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)

static uint64_t
rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void
hist_us(const struct hist *h, double out[Q_COUNT_])
{
    out[Q_P50] = hist_quantile(h, 0.50) / 1e3;
    out[Q_P99] = hist_quantile(h, 0.99) / 1e3;
    out[Q_P999] = hist_quantile(h, 0.999) / 1e3;
    out[Q_MAX] = (double)h->max / 1e3;
}

/* ---- temporary directories ---- */

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    if (remove(path) != 0 && errno != ENOENT)
        fprintf(stderr, "trastenda-bench-storage: cannot remove %s: %s\n", path, strerror(errno));
    return 0;
}

static void
rm_tree_quiet(const char *path)
{
    if (path[0] != '\0') nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
root_cleanup(void)
{
    rm_tree_quiet(root_dir);
    root_dir[0] = '\0';
}

static void
root_make(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(root_dir, sizeof(root_dir), "%s/trastenda-bench-storage-XXXXXX",
             base != NULL && base[0] != '\0' ? base : "/tmp");
    if (mkdtemp(root_dir) == NULL) die("mkdtemp %s: %s", root_dir, strerror(errno));
    atexit(root_cleanup);
}

static void
case_dir(char *out, size_t cap, const char *name, uint32_t run)
{
    snprintf(out, cap, "%s/%s-%u", root_dir, name, run);
}

/* ---- the store: configuration, quiet logs, synchronous requests ---- */

static void
store_log(void *ctx, trastenda_log_level level, const char *msg)
{
    (void)ctx;
    if (level <= TRASTENDA_LOG_WARN || getenv("TS_BENCH_LOG") != NULL)
        fprintf(stderr, "[store] %s\n", msg);
}

static uint32_t
pow2_at_least(uint64_t n)
{
    uint32_t p = 2;
    while (p < n && p < (1u << 24))
        p <<= 1;
    return p;
}

static trastenda_store *
store_open(const trastenda_store_config *cfg)
{
    trastenda_store *st = NULL;
    char err[1024];
    trastenda_err code = trastenda_store_open(cfg, &st, err, sizeof(err));
    if (code != TRASTENDA_OK) die("open %s: %s: %s", cfg->dir, trastenda_err_name(code), err);
    return st;
}

struct waiter {
    trastenda_request req;
    uint32_t done; /* futex word */
    trastenda_err status;
    uint64_t digest;
    pid_t tid;
};

static void
waiter_done(trastenda_request *req, trastenda_err status)
{
    struct waiter *w = req->ctx;
    w->status = status;
    STORE(&w->done, 1);
    futex_wake(&w->done);
}

static void
waiter_submit(trastenda_store *st, struct waiter *w)
{
    w->req.done = waiter_done;
    w->req.ctx = w;
    STORE(&w->done, 0);
    trastenda_err err;
    while ((err = trastenda_store_submit(st, &w->req)) == TRASTENDA_E_BUSY)
        sleep_ms(1);
    if (err != TRASTENDA_OK) die("submit: %s", trastenda_err_name(err));
}

static trastenda_err
waiter_wait(struct waiter *w)
{
    while (!LOAD(&w->done))
        futex_wait(&w->done, 0, 100);
    return w->status;
}

static void
query_digest(trastenda_request *req, const trastenda_engine *e)
{
    struct waiter *w = req->ctx;
    w->digest = trastenda_engine_digest(e);
    w->tid = thread_id();
}

static void
query_tid(trastenda_request *req, const trastenda_engine *e)
{
    (void)e;
    struct waiter *w = req->ctx;
    w->tid = thread_id();
}

/* The engine thread's id: a query runs there. */
static pid_t
store_engine_tid(trastenda_store *st)
{
    struct waiter w;
    memset(&w, 0, sizeof(w));
    w.req.query = query_tid;
    waiter_submit(st, &w);
    waiter_wait(&w);
    return w.tid;
}

/* The live engine's digest, read on the engine thread. */
static uint64_t
store_digest(trastenda_store *st)
{
    struct waiter w;
    memset(&w, 0, sizeof(w));
    w.req.query = query_digest;
    waiter_submit(st, &w);
    waiter_wait(&w);
    return w.digest;
}

/* Submits n commands in requests of at most chunk, one at a time; every command must succeed. */
static void
run_cmds(trastenda_store *st, const trastenda_cmd *cmds, uint32_t n, uint32_t chunk,
         const char *what)
{
    trastenda_result *res = xcalloc(chunk, sizeof(*res));
    for (uint32_t first = 0; first < n; first += chunk) {
        struct waiter w;
        memset(&w, 0, sizeof(w));
        w.req.cmds = &cmds[first];
        w.req.n = n - first < chunk ? n - first : chunk;
        w.req.results = res;
        waiter_submit(st, &w);
        trastenda_err err = waiter_wait(&w);
        if (err != TRASTENDA_OK) die("%s: request: %s", what, trastenda_err_name(err));
        for (uint32_t i = 0; i < w.req.n; i++)
            if (res[i].code != TRASTENDA_OK)
                die("%s: command %u: %s: %s", what, first + i, trastenda_err_name(res[i].code),
                    res[i].message);
    }
    free(res);
}

static void
cmd_clear(trastenda_cmd *c, uint32_t op)
{
    memset(c, 0, sizeof(*c));
    c->op = op;
    c->sku.ix = c->loc.ix = c->loc_to.ix = TRASTENDA_IX_NONE;
}

static void
sku_id(char out[SKU_ID_BYTES], uint32_t i)
{
    snprintf(out, SKU_ID_BYTES, "SKU-%07u", i % 10000000u);
}

static trastenda_str
str_of(const char *s)
{
    return (trastenda_str){s, (uint32_t)strlen(s)};
}

/* ---- per-thread CPU from /proc: where the time goes ---- */

enum role {
    R_ENGINE,
    R_WRITER,
    R_MAT,
    R_PRODUCERS,
    R_ROCKSDB,
    R_MAIN,
    R_OTHER,
    R_COUNT_
};

static const char *const ROLE_NAMES[R_COUNT_] = {
    "engine", "log writer", "materializer", "producers", "rocksdb", "main", "other"};
static const char *const ROLE_KEYS[R_COUNT_] = {"engine",  "writer", "materializer", "producers",
                                                "rocksdb", "main",   "other"};

#define TASKS_MAX 256

struct task {
    pid_t tid;
    uint64_t ticks; /* utime + stime */
    char comm[20];
};

struct tasks {
    struct task t[TASKS_MAX];
    uint32_t n;
};

static bool
task_read(pid_t tid, struct task *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
    FILE *f = fopen(path, "r");
    if (f == NULL) return false;
    size_t len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[len] = 0;
    char *open = strchr(buf, '('), *close = strrchr(buf, ')');
    if (open == NULL || close == NULL || close < open) return false;
    size_t clen = (size_t)(close - open - 1);
    if (clen >= sizeof(out->comm)) clen = sizeof(out->comm) - 1;
    memcpy(out->comm, open + 1, clen);
    out->comm[clen] = 0;
    unsigned long ut = 0, stt = 0;
    if (sscanf(close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stt) != 2)
        return false;
    out->tid = tid;
    out->ticks = (uint64_t)ut + stt;
    return true;
}

static void
tasks_read(struct tasks *ts)
{
    ts->n = 0;
    DIR *d = opendir("/proc/self/task");
    if (d == NULL) return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && ts->n < TASKS_MAX) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9') continue;
        if (task_read((pid_t)atoi(de->d_name), &ts->t[ts->n])) ts->n++;
    }
    closedir(d);
}

static const struct task *
tasks_find(const struct tasks *ts, pid_t tid)
{
    for (uint32_t i = 0; i < ts->n; i++)
        if (ts->t[i].tid == tid) return &ts->t[i];
    return NULL;
}

/* The threads a store runs: the engine thread answers a query, the log writer runs done(), and
 * the materializer is the store's thread named ts-materialize. */
struct store_threads {
    pid_t engine, writer, mat;
    struct tasks before_open; /* threads that existed before trastenda_store_open */
};

static void
mat_find(struct store_threads *th, const struct tasks *now)
{
    th->mat = 0;
    for (uint32_t i = 0; i < now->n; i++) {
        const struct task *t = &now->t[i];
        if (tasks_find(&th->before_open, t->tid) != NULL) continue;
        if (strcmp(t->comm, "ts-materialize") != 0) continue;
        if (th->mat == 0 || t->tid < th->mat) th->mat = t->tid;
    }
}

/* --- figures --- */

/* Every figure of one run is a double, so the median over runs is taken field by field. */
struct fig {
    double rate;               /* reserves acknowledged OK per second of the window */
    double window_s;           /* measured seconds */
    double reserves;           /* acknowledged OK in the window */
    double offered;            /* paced: the offered rate */
    double lat_us[Q_COUNT_];   /* submit -> done() */
    double sched_us[Q_COUNT_]; /* paced: scheduled send time -> done() */
    double batch_mean, batch_p50, batch_p99, batch_max, batches_per_s;
    double log_bytes_per_reserve;
    double disk_bytes_per_reserve; /* written to the disk by the process (/proc/self/io) */
    double lag_max_batches, lag_end_batches, lag_max_ms, lag_end_ms, catchup_ms;
    double ready_ms; /* open -> the materializer's copy loaded and the catalogue materialized */
    double state_writes, pages_written;
    double queue_depth_max;
    double cpu[R_COUNT_];      /* cores busy per role */
    double cpu_total;          /* cores busy, the whole process (getrusage) */
    double cpu_others;         /* cores busy in other processes meanwhile (/proc/stat) */
    double faults_per_reserve; /* minor page faults of the process per reserve */
    double slice_rate[SLICES]; /* reserves/s in each tenth of the window */
    double failed, busy, capacity_hit, capacity;
    double close_ms, rss_mb;
    double interval_ms; /* the store's longest state-write interval (materialize_interval_max_ms) */
};

#define FIG_FIELDS (sizeof(struct fig) / sizeof(double))

/* Commands that did not succeed, by code (summed over runs). */
struct errs {
    uint64_t result[ERR_SLOTS]; /* the reserve's result code */
    uint64_t status[ERR_SLOTS]; /* done()'s status (E_IO, E_CLOSED) */
    uint64_t duplicates;
};

static struct fig
fig_median(const struct fig *runs, uint32_t n)
{
    struct fig m;
    double *out = (double *)&m;
    for (size_t f = 0; f < FIG_FIELDS; f++) {
        double v[RUNS_MAX];
        for (uint32_t i = 0; i < n; i++)
            v[i] = ((const double *)&runs[i])[f];
        qsort(v, n, sizeof(double), dbl_cmp);
        out[f] = v[n / 2];
    }
    return m;
}

/* ---- producers: single-line reserves, a window of requests in flight each ---- */

struct runner;
struct producer;

struct rslot {
    trastenda_request req;
    trastenda_cmd cmd;
    trastenda_line line;
    trastenda_result res;
    trastenda_alloc alloc;
    uint64_t submit_ns, sched_ns;
    struct producer *p;
    uint32_t free; /* atomic: 1 when not in flight */
    char key[KEY_BYTES];
};

struct producer {
    struct runner *r;
    uint32_t ix;
    pid_t tid;
    pthread_t th;
    uint64_t rng, key_seq;
    struct rslot *slots;
    uint32_t next;
    uint32_t tickets;
    uint64_t busy;
    /* Written by done(), on the log writer thread. */
    _Alignas(64) uint64_t acked_ok; /* atomic */
    struct errs errs;
    struct hist lat, sched;
    /* The producer sleeps on wake when its next slot is still in flight. */
    _Alignas(64) uint32_t sleeping;
    uint32_t wake;
};

struct runner {
    trastenda_store *st;
    const trastenda_engine *eng;
    bool paced;
    double rate; /* paced: offered reserves/s, all producers together */
    uint32_t threads, window;
    struct producer *prods;
    char (*sku_ids)[SKU_ID_BYTES];
    uint64_t pace_start_ns;
    uint32_t stop, measuring, capacity_hit; /* atomic */
    uint64_t capacity, claimed;             /* atomic: reserves allowed, claimed */
    /* Batch sizes, counted in done() (the log writer runs every done() in batch order). */
    uint64_t cur_seq;
    uint32_t cur_n;
    struct hist batch;
    pid_t writer_tid;    /* atomic */
    uint64_t lat_max_ns; /* atomic: largest submit -> ack since the sampler last took it */
};

static void
slot_release(struct producer *p, struct rslot *s)
{
    SC_STORE(&s->free, 1);
    if (SC_LOAD(&p->sleeping)) {
        SC_STORE(&p->sleeping, 0);
        ADD(&p->wake, 1);
        futex_wake(&p->wake);
    }
}

static void
batch_count(struct runner *r, uint64_t seq)
{
    if (seq != r->cur_seq) {
        if (r->cur_n > 0) hist_add(&r->batch, r->cur_n);
        r->cur_seq = seq;
        r->cur_n = 0;
    }
    r->cur_n++;
}

/* done(): runs on the log writer thread once the batch holding the reserve is durable. */
static void
reserve_done(trastenda_request *req, trastenda_err status)
{
    uint64_t t = now_ns();
    struct rslot *s = req->ctx;
    struct producer *p = s->p;
    struct runner *r = p->r;
    if (LOAD(&r->writer_tid) == 0) STORE(&r->writer_tid, thread_id());
    bool ok = false;
    if (status != TRASTENDA_OK)
        p->errs.status[(uint32_t)status % ERR_SLOTS]++;
    else if (s->res.code != TRASTENDA_OK)
        p->errs.result[(uint32_t)s->res.code % ERR_SLOTS]++;
    else if (s->res.duplicate)
        p->errs.duplicates++;
    else
        ok = true;
    if (ok) ADD(&p->acked_ok, 1);
    uint64_t lat = t - s->submit_ns, seen = LOAD(&r->lat_max_ns);
    while (lat > seen && !__atomic_compare_exchange_n(&r->lat_max_ns, &seen, lat, true,
                                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    if (LOAD(&r->measuring)) {
        hist_add(&p->lat, lat);
        if (r->paced) hist_add(&p->sched, t - s->sched_ns);
        batch_count(r, req->seq);
    }
    slot_release(p, s);
}

/* Waits until s is no longer in flight (or a stop, or 50 ms). */
static void
slot_wait(struct producer *p, struct rslot *s)
{
    uint32_t w = LOAD(&p->wake);
    SC_STORE(&p->sleeping, 1);
    if (!SC_LOAD(&s->free) && !LOAD(&p->r->stop)) futex_wait(&p->wake, w, 50);
    SC_STORE(&p->sleeping, 0);
}

/* The capacity of the hold/key/line tables is shared out in chunks. false: none left. */
static bool
ticket_take(struct producer *p)
{
    if (p->tickets == 0) {
        struct runner *r = p->r;
        uint64_t first = __atomic_fetch_add(&r->claimed, TICKET_CHUNK, __ATOMIC_RELAXED);
        if (first >= r->capacity) {
            STORE(&r->capacity_hit, 1);
            return false;
        }
        uint64_t left = r->capacity - first;
        p->tickets = left < TICKET_CHUNK ? (uint32_t)left : TICKET_CHUNK;
    }
    p->tickets--;
    return true;
}

static void
slots_init(struct producer *p)
{
    struct runner *r = p->r;
    p->slots = xcalloc(r->window, sizeof(*p->slots));
    for (uint32_t i = 0; i < r->window; i++) {
        struct rslot *s = &p->slots[i];
        s->p = p;
        s->free = 1;
        cmd_clear(&s->cmd, TRASTENDA_OP_RESERVE);
        s->cmd.ttl_ms = RES_TTL_MS;
        s->cmd.lines = &s->line;
        s->cmd.line_count = 1;
        s->line.qty = 1;
        s->req.cmds = &s->cmd;
        s->req.n = 1;
        s->req.results = &s->res;
        s->req.allocs = &s->alloc;
        s->req.allocs_max = 1;
        s->req.done = reserve_done;
        s->req.ctx = s;
    }
}

/* A random SKU, its id resolved to an index as the server's network threads will do it. */
static void
reserve_build(struct producer *p, struct rslot *s)
{
    struct runner *r = p->r;
    uint32_t sku = (uint32_t)(rng_next(&p->rng) % RES_SKUS);
    s->line.sku.id = (trastenda_str){r->sku_ids[sku], SKU_ID_BYTES - 1};
    if (trastenda_engine_sku_lookup(r->eng, s->line.sku.id, &s->line.sku.ix) != TRASTENDA_OK)
        die("sku %s unknown", r->sku_ids[sku]);
    s->line.loc.id = str_of(LOC_ID);
    if (trastenda_engine_location_lookup(r->eng, s->line.loc.id, &s->line.loc.ix) != TRASTENDA_OK)
        die("location %s unknown", LOC_ID);
    uint64_t k = (uint64_t)p->ix << 48 | ++p->key_seq;
    s->cmd.key = (trastenda_str){s->key, text_id(s->key, 'k', k)};
}

static void
reserve_submit(struct producer *p, struct rslot *s)
{
    STORE(&s->free, 0);
    trastenda_err err;
    while ((err = trastenda_store_submit(p->r->st, &s->req)) == TRASTENDA_E_BUSY) {
        p->busy++;
        sched_yield();
    }
    if (err != TRASTENDA_OK) die("submit: %s", trastenda_err_name(err));
}

static void
closed_loop(struct producer *p)
{
    struct runner *r = p->r;
    while (!LOAD(&r->stop)) {
        struct rslot *s = &p->slots[p->next];
        if (!LOAD(&s->free)) {
            slot_wait(p, s);
            continue;
        }
        if (!ticket_take(p)) break;
        reserve_build(p, s);
        s->submit_ns = s->sched_ns = now_ns();
        reserve_submit(p, s);
        p->next = p->next + 1 == r->window ? 0 : p->next + 1;
    }
}

/* Open loop: request k of this producer is due at start + k * interval, whatever happened to the
 * earlier ones; its schedule -> ack latency counts any lateness of the producer. */
static void
paced_loop(struct producer *p)
{
    struct runner *r = p->r;
    double interval = (double)r->threads * 1e9 / r->rate;
    uint64_t start = r->pace_start_ns + (uint64_t)(interval * p->ix / r->threads);
    for (uint64_t k = 0; !LOAD(&r->stop);) {
        uint64_t due = start + (uint64_t)(interval * (double)k), now = now_ns();
        if (due > now) {
            sleep_until_ns(due > now + PACE_QUANTUM_NS ? due : now + PACE_QUANTUM_NS);
            continue;
        }
        struct rslot *s = &p->slots[p->next];
        if (!LOAD(&s->free)) {
            slot_wait(p, s);
            continue;
        }
        if (!ticket_take(p)) break;
        reserve_build(p, s);
        s->sched_ns = due;
        s->submit_ns = now_ns();
        reserve_submit(p, s);
        p->next = p->next + 1 == r->window ? 0 : p->next + 1;
        k++;
    }
}

static void *
producer_main(void *arg)
{
    struct producer *p = arg;
    char name[16];
    snprintf(name, sizeof(name), "bench-prod-%u", p->ix);
    pthread_setname_np(pthread_self(), name);
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL); /* paced sleeps end on time */
    STORE(&p->tid, thread_id());
    if (p->r->paced)
        paced_loop(p);
    else
        closed_loop(p);
    for (uint32_t i = 0; i < p->r->window; i++) /* everything in flight completes */
        while (!LOAD(&p->slots[i].free))
            slot_wait(p, &p->slots[i]);
    return NULL;
}

/* ---- one reserve case: a fresh store, the catalogue, producers, the measured window ---- */

enum case_kind {
    C_FSYNC,
    C_ASYNC,
    C_PACED,
    C_RESERVE_COUNT_
};

static const char *const CASE_NAMES[C_RESERVE_COUNT_] = {"fsync", "async", "paced"};

/* The number of the first line of a /proc file that matches fmt (one %llu); 0 when none. */
static unsigned long long
proc_number(const char *path, const char *fmt)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    char line[256];
    unsigned long long v = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, fmt, &v) == 1) break;
    fclose(f);
    return v;
}

static uint64_t
mem_available_bytes(void)
{
    unsigned long long kb = proc_number("/proc/meminfo", "MemAvailable: %llu kB");
    return kb > 0 ? kb * 1024ull : 8ull << 30;
}

static double
rss_mb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) return 0;
    unsigned long size = 0, res = 0;
    if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
    fclose(f);
    return (double)res * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

/* Memory of this process on transparent huge pages. */
static double
huge_mb(void)
{
    return (double)proc_number("/proc/self/smaps_rollup", "AnonHugePages: %llu kB") / 1024.0;
}

/* Hands freed memory back to the system between cases (jemalloc keeps it otherwise). */
static void
memory_purge(void)
{
#ifndef TS_NO_JEMALLOC
    char name[64];
    snprintf(name, sizeof(name), "arena.%d.purge", MALLCTL_ARENAS_ALL);
    mallctl(name, NULL, NULL, NULL, 0);
#endif
}

/* Reserves a run may make: what the seconds need at the target rate, within memory. */
static uint64_t
case_capacity(const struct opts *o, enum case_kind kind)
{
    if (o->capacity > 0) return o->capacity;
    double secs = o->seconds + o->warmup_s + 1.0;
    double need = kind == C_PACED ? o->rate * 1.05 * secs : CAPACITY_RATE * secs;
    double budget = (double)mem_available_bytes() * MEM_SHARE / BYTES_PER_RESERVE;
    double cap = need < budget ? need : budget;
    if (cap > (double)(1u << 30) - 65536) cap = (double)(1u << 30) - 65536;
    return (uint64_t)cap;
}

static void
reserve_config(trastenda_store_config *c, const char *dir, const struct opts *o,
               enum case_kind kind, uint64_t capacity)
{
    trastenda_store_config_default(c);
    c->dir = dir;
    c->durability = kind == C_ASYNC ? TRASTENDA_DURABILITY_ASYNC : TRASTENDA_DURABILITY_FSYNC;
    c->log = store_log;
    uint64_t inflight = (uint64_t)o->threads * o->window;
    if (c->queue_max < inflight) c->queue_max = pow2_at_least(inflight);
    trastenda_engine_config *e = &c->engine;
    e->locations_max = 16;
    e->skus_max = RES_SKUS;
    e->stock_max = RES_SKUS;
    e->holds_max = (uint32_t)capacity + 65536;
    e->keys_max = (uint32_t)capacity + 65536;
    e->lines_max = (uint32_t)capacity + 65536;
    e->orders_max = 1024;
    e->pos_max = 16;
    if (o->batch_max > 0) e->batch_cmds_max = o->batch_max;
    if (o->materialize_ms > 0) c->materialize_interval_ms = o->materialize_ms;
    e->key_retention_ms = RES_KEY_RETENT_MS;
    e->huge_pages = o->huge_pages;
    e->page_slots = o->page_slots;
}

/* 1 location, RES_SKUS SKUs, RES_UNITS units of each there. */
static void
reserve_catalogue(trastenda_store *st, char (*ids)[SKU_ID_BYTES], uint32_t chunk)
{
    trastenda_cmd *cmds = xcalloc(RES_SKUS, sizeof(*cmds));
    cmd_clear(&cmds[0], TRASTENDA_OP_LOCATION_UPSERT);
    cmds[0].loc.id = str_of(LOC_ID);
    cmds[0].name = str_of("Warehouse 1");
    cmds[0].active = 1;
    run_cmds(st, cmds, 1, chunk, "location upsert");
    for (uint32_t i = 0; i < RES_SKUS; i++) {
        cmd_clear(&cmds[i], TRASTENDA_OP_SKU_UPSERT);
        cmds[i].sku.id = (trastenda_str){ids[i], SKU_ID_BYTES - 1};
        cmds[i].active = 1;
    }
    run_cmds(st, cmds, RES_SKUS, chunk, "sku upsert");
    for (uint32_t i = 0; i < RES_SKUS; i++) {
        cmd_clear(&cmds[i], TRASTENDA_OP_RECEIVE);
        cmds[i].sku.id = (trastenda_str){ids[i], SKU_ID_BYTES - 1};
        cmds[i].loc.id = str_of(LOC_ID);
        cmds[i].qty = RES_UNITS;
    }
    run_cmds(st, cmds, RES_SKUS, chunk, "receive");
    free(cmds);
}

/* What the sampler and the snapshots at both ends of the window collect. */
struct sample {
    uint64_t t_ns, durable, materialized, ok;
    uint64_t lat_max_ns; /* largest submit -> ack since the previous sample */
    uint64_t state_writes, queue_depth;
};

struct window {
    trastenda_store_stats s0, s1;
    struct tasks t0, t1;
    struct rusage u0, u1;
    uint64_t ns0, ns1, ok0, ok1;
    uint64_t busy0, busy1;     /* /proc/stat: ticks every CPU was busy, all processes */
    uint64_t wbytes0, wbytes1; /* /proc/self/io: bytes this process sent to the disk */
    struct sample *samples;
    uint32_t n_samples, max_samples, first_in_window;
    uint32_t queue_depth_max;
};

static uint64_t
acked_sum(const struct runner *r)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < r->threads; i++)
        sum += LOAD(&r->prods[i].acked_ok);
    return sum;
}

static void
sample_take(struct runner *r, struct window *w)
{
    trastenda_store_stats s;
    trastenda_store_stats_get(r->st, &s);
    if (s.queue_depth > w->queue_depth_max) w->queue_depth_max = s.queue_depth;
    if (w->n_samples == w->max_samples) return;
    w->samples[w->n_samples++] =
        (struct sample){now_ns(),
                        s.durable_seq,
                        s.materialized_seq,
                        acked_sum(r),
                        __atomic_exchange_n(&r->lat_max_ns, 0, __ATOMIC_RELAXED),
                        s.state_writes,
                        s.queue_depth};
}

/* Ticks all CPUs spent busy (user, nice, system, irq, softirq), every process together. */
static uint64_t
machine_busy_ticks(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL) return 0;
    unsigned long long v[7] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                   &v[5], &v[6]);
    fclose(f);
    return n == 7 ? v[0] + v[1] + v[2] + v[5] + v[6] : 0;
}

/* Bytes this process caused to be written to the disk (write-back of what it dirtied). */
static uint64_t
disk_write_bytes(void)
{
    return proc_number("/proc/self/io", "write_bytes: %llu");
}

static void
window_edge(struct runner *r, struct window *w, bool end)
{
    *(end ? &w->busy1 : &w->busy0) = machine_busy_ticks();
    *(end ? &w->wbytes1 : &w->wbytes0) = disk_write_bytes();
    trastenda_store_stats_get(r->st, end ? &w->s1 : &w->s0);
    tasks_read(end ? &w->t1 : &w->t0);
    getrusage(RUSAGE_SELF, end ? &w->u1 : &w->u0);
    *(end ? &w->ns1 : &w->ns0) = now_ns();
    *(end ? &w->ok1 : &w->ok0) = acked_sum(r);
}

/* Warm-up, then the measured window; samples the store every SAMPLE_MS throughout. */
static void
window_run(struct runner *r, struct window *w, double warmup_s, double seconds,
           void (*at_start)(struct runner *, void *), void *ctx)
{
    uint64_t start = now_ns();
    uint64_t warm_end = start + (uint64_t)(warmup_s * 1e9);
    while (now_ns() < warm_end) {
        sample_take(r, w);
        sleep_ms(SAMPLE_MS);
    }
    if (at_start != NULL) at_start(r, ctx);
    window_edge(r, w, false);
    w->first_in_window = w->n_samples;
    STORE(&r->measuring, 1);
    uint64_t end = w->ns0 + (uint64_t)(seconds * 1e9);
    while (now_ns() < end && !LOAD(&r->capacity_hit)) {
        sleep_ms(SAMPLE_MS);
        sample_take(r, w);
    }
    window_edge(r, w, true);
    STORE(&r->measuring, 0);
}

/* The materializer's lag at each sample: batches behind the log, and how long ago the log was
 * where the materialized state is now (the earliest sample whose durable seq reached it). */
static void
lag_figures(const struct window *w, struct fig *f)
{
    uint32_t j = 0;
    for (uint32_t i = 0; i < w->n_samples; i++) {
        const struct sample *s = &w->samples[i];
        while (j < i && w->samples[j].durable < s->materialized)
            j++;
        double batches = s->durable > s->materialized ? (double)(s->durable - s->materialized) : 0;
        double ms = batches > 0 ? (double)(s->t_ns - w->samples[j].t_ns) / 1e6 : 0;
        if (i < w->first_in_window) continue;
        if (batches > f->lag_max_batches) f->lag_max_batches = batches;
        if (ms > f->lag_max_ms) f->lag_max_ms = ms;
        f->lag_end_batches = batches;
        f->lag_end_ms = ms;
    }
}

/* --timeline: one line per sample: reserves/s, batches behind, the worst latency. */
static void
timeline_print(const char *name, const struct window *w)
{
    fprintf(stderr,
            "# %s: t_ms reserves_per_s durable_seq materialized_seq lag_batches "
            "queue_depth state_writes lat_max_us\n",
            name);
    for (uint32_t i = w->first_in_window; i < w->n_samples; i++) {
        const struct sample *s = &w->samples[i], *p = i > 0 ? &w->samples[i - 1] : s;
        double dt = (double)(s->t_ns - p->t_ns) / 1e9;
        fprintf(stderr, "%s %.0f %.0f %llu %llu %llu %llu %llu %.0f\n", name,
                (double)(s->t_ns - w->ns0) / 1e6, dt > 0 ? (double)(s->ok - p->ok) / dt : 0,
                (unsigned long long)s->durable, (unsigned long long)s->materialized,
                (unsigned long long)(s->durable - s->materialized),
                (unsigned long long)s->queue_depth, (unsigned long long)s->state_writes,
                (double)s->lat_max_ns / 1e3);
    }
}

static void
cpu_figures(const struct runner *r, const struct store_threads *th, const struct window *w,
            struct fig *f)
{
    double secs = (double)(w->ns1 - w->ns0) / 1e9, hz = (double)sysconf(_SC_CLK_TCK);
    for (uint32_t i = 0; i < w->t1.n; i++) {
        const struct task *t = &w->t1.t[i], *b = tasks_find(&w->t0, t->tid);
        double d = (double)(t->ticks - (b != NULL ? b->ticks : 0));
        enum role role = R_OTHER;
        if (t->tid == th->engine)
            role = R_ENGINE;
        else if (t->tid == th->writer)
            role = R_WRITER;
        else if (t->tid == th->mat)
            role = R_MAT;
        else if (t->tid == getpid())
            role = R_MAIN;
        else if (strncmp(t->comm, "rocksdb", 7) == 0)
            role = R_ROCKSDB;
        for (uint32_t k = 0; k < r->threads; k++)
            if (t->tid == LOAD(&r->prods[k].tid)) role = R_PRODUCERS;
        f->cpu[role] += d / hz / secs;
    }
    double u0 = (double)w->u0.ru_utime.tv_sec + (double)w->u0.ru_utime.tv_usec / 1e6 +
                (double)w->u0.ru_stime.tv_sec + (double)w->u0.ru_stime.tv_usec / 1e6;
    double u1 = (double)w->u1.ru_utime.tv_sec + (double)w->u1.ru_utime.tv_usec / 1e6 +
                (double)w->u1.ru_stime.tv_sec + (double)w->u1.ru_stime.tv_usec / 1e6;
    f->cpu_total = (u1 - u0) / secs;
    f->cpu_others = (double)(w->busy1 - w->busy0) / hz / secs - f->cpu_total;
    if (f->cpu_others < 0) f->cpu_others = 0;
    double faults = (double)(w->u1.ru_minflt - w->u0.ru_minflt);
    f->faults_per_reserve = faults / (double)(w->ok1 - w->ok0 > 0 ? w->ok1 - w->ok0 : 1);
}

/* Reserves/s in each tenth of the window, from the samples: is the rate sustained? */
static void
slice_figures(const struct window *w, struct fig *f)
{
    double len = (double)(w->ns1 - w->ns0) / SLICES;
    uint32_t i = w->first_in_window;
    uint64_t t_prev = w->ns0, ok_prev = w->ok0;
    for (uint32_t k = 0; k < SLICES; k++) {
        uint64_t edge = w->ns0 + (uint64_t)(len * (k + 1));
        while (i < w->n_samples && w->samples[i].t_ns < edge)
            i++;
        uint64_t t = i < w->n_samples ? w->samples[i].t_ns : w->ns1;
        uint64_t ok = i < w->n_samples ? w->samples[i].ok : w->ok1;
        if (t > w->ns1) t = w->ns1, ok = w->ok1;
        f->slice_rate[k] = t > t_prev ? (double)(ok - ok_prev) / ((double)(t - t_prev) / 1e9) : 0;
        t_prev = t;
        ok_prev = ok;
    }
}

static void
store_figures(const struct runner *r, const struct window *w, struct fig *f)
{
    double secs = (double)(w->ns1 - w->ns0) / 1e9;
    double batches = (double)(w->s1.batches - w->s0.batches);
    double cmds = (double)(w->s1.commands - w->s0.commands);
    f->window_s = secs;
    f->reserves = (double)(w->ok1 - w->ok0);
    f->rate = f->reserves / secs;
    f->batches_per_s = batches / secs;
    f->batch_mean = batches > 0 ? cmds / batches : 0;
    f->batch_p50 = hist_quantile(&r->batch, 0.50);
    f->batch_p99 = hist_quantile(&r->batch, 0.99);
    f->batch_max = (double)r->batch.max;
    f->log_bytes_per_reserve = cmds > 0 ? (double)(w->s1.log_bytes - w->s0.log_bytes) / cmds : 0;
    f->disk_bytes_per_reserve = cmds > 0 ? (double)(w->wbytes1 - w->wbytes0) / cmds : 0;
    f->state_writes = (double)(w->s1.state_writes - w->s0.state_writes);
    f->pages_written = (double)(w->s1.pages_written - w->s0.pages_written);
    f->queue_depth_max = w->queue_depth_max;
    f->capacity_hit = LOAD(&r->capacity_hit);
    f->capacity = (double)r->capacity;
}

static void
producers_figures(struct runner *r, struct fig *f, struct errs *e)
{
    static struct hist lat, sched;
    memset(&lat, 0, sizeof(lat));
    memset(&sched, 0, sizeof(sched));
    for (uint32_t i = 0; i < r->threads; i++) {
        struct producer *p = &r->prods[i];
        hist_merge(&lat, &p->lat);
        hist_merge(&sched, &p->sched);
        f->busy += (double)p->busy;
        for (uint32_t c = 0; c < ERR_SLOTS; c++) {
            e->result[c] += p->errs.result[c];
            e->status[c] += p->errs.status[c];
            f->failed += (double)(p->errs.result[c] + p->errs.status[c]);
        }
        e->duplicates += p->errs.duplicates;
        f->failed += (double)p->errs.duplicates;
    }
    hist_us(&lat, f->lat_us);
    hist_us(&sched, f->sched_us);
}

/* After the load stops: how long until the materialized state reaches the durable log; -1 when
 * not within two minutes, -2 when not measured (a state-write interval over a minute). */
static double
catchup_ms(trastenda_store *st, uint32_t interval_ms)
{
    if (interval_ms > 60000) return -2;
    trastenda_store_stats s;
    trastenda_store_stats_get(st, &s);
    uint64_t target = s.durable_seq, t0 = now_ns();
    uint64_t wait_ms = (uint64_t)interval_ms + 120000;
    uint64_t limit = t0 + wait_ms * 1000000ull;
    while (s.materialized_seq < target && now_ns() < limit) {
        sleep_ms(2);
        trastenda_store_stats_get(st, &s);
    }
    if (s.materialized_seq < target) return -1;
    return (double)(now_ns() - t0) / 1e6;
}

static void
runner_start(struct runner *r, const struct opts *o, enum case_kind kind)
{
    r->paced = kind == C_PACED;
    r->rate = o->rate;
    r->threads = o->threads;
    r->window = o->window;
    r->prods = xcalloc(r->threads, sizeof(*r->prods));
    r->pace_start_ns = now_ns() + 1000000;
    for (uint32_t i = 0; i < r->threads; i++) {
        struct producer *p = &r->prods[i];
        p->r = r;
        p->ix = i;
        p->rng = 0x7472617374656e64ull ^ ((uint64_t)(i + 1) << 32);
        slots_init(p);
    }
    for (uint32_t i = 0; i < r->threads; i++)
        if (pthread_create(&r->prods[i].th, NULL, producer_main, &r->prods[i]) != 0)
            die("cannot start producer threads");
}

static void
runner_stop(struct runner *r)
{
    STORE(&r->stop, 1);
    for (uint32_t i = 0; i < r->threads; i++) {
        ADD(&r->prods[i].wake, 1);
        futex_wake(&r->prods[i].wake);
    }
    for (uint32_t i = 0; i < r->threads; i++)
        pthread_join(r->prods[i].th, NULL);
    if (r->cur_n > 0) hist_add(&r->batch, r->cur_n);
    r->cur_n = 0;
}

static void
runner_free(struct runner *r)
{
    for (uint32_t i = 0; i < r->threads; i++)
        free(r->prods[i].slots);
    free(r->prods);
}

/* Opens the store, noting which threads it started. */
static trastenda_store *
store_open_watched(const trastenda_store_config *cfg, struct store_threads *th)
{
    memset(th, 0, sizeof(*th));
    tasks_read(&th->before_open);
    return store_open(cfg);
}

struct renice {
    struct store_threads *th;
    int nice;
};

/* Experiment (--mat-nice): the materializer yields the CPU to the engine and the log writer. */
static void
mat_renice(struct runner *r, void *ctx)
{
    struct renice *rn = ctx;
    struct tasks now;
    tasks_read(&now);
    rn->th->writer = LOAD(&r->writer_tid);
    mat_find(rn->th, &now);
    if (rn->th->mat == 0 || setpriority(PRIO_PROCESS, (id_t)rn->th->mat, rn->nice) != 0)
        die("--mat-nice: cannot renice the materializer thread");
}

static struct fig
case_run(const struct opts *o, enum case_kind kind, uint32_t run, char (*ids)[SKU_ID_BYTES],
         struct errs *e)
{
    char dir[4200];
    case_dir(dir, sizeof(dir), CASE_NAMES[kind], run);
    static struct runner r;
    memset(&r, 0, sizeof(r));
    r.capacity = case_capacity(o, kind);
    r.sku_ids = ids;
    trastenda_store_config cfg;
    reserve_config(&cfg, dir, o, kind, r.capacity);
    struct store_threads th;
    uint64_t open_ns = now_ns();
    r.st = store_open_watched(&cfg, &th);
    r.eng = trastenda_store_engine(r.st);
    reserve_catalogue(r.st, ids, cfg.engine.batch_cmds_max);
    /* The materializer loads its copy (and creates its tables) in its own thread while the store
     * already serves: the window starts once it has, so that it measures a store in service, not
     * one still starting up (that time is reported on its own). */
    uint32_t longest_ms = trastenda_store_interval_max_ms(&cfg);
    double ready_wait_ms = catchup_ms(r.st, longest_ms);
    double ready_ms = ready_wait_ms < 0 ? ready_wait_ms : (double)(now_ns() - open_ns) / 1e6;
    th.engine = store_engine_tid(r.st);
    struct window w;
    memset(&w, 0, sizeof(w));
    w.max_samples = (uint32_t)((o->seconds + o->warmup_s) * 1000 / SAMPLE_MS) + 64;
    w.samples = xcalloc(w.max_samples, sizeof(*w.samples));
    runner_start(&r, o, kind);
    struct renice rn = {&th, o->mat_nice};
    window_run(&r, &w, o->warmup_s, o->seconds, o->mat_nice > 0 ? mat_renice : NULL, &rn);
    runner_stop(&r);
    struct fig f;
    memset(&f, 0, sizeof(f));
    f.offered = kind == C_PACED ? o->rate : 0;
    f.catchup_ms = catchup_ms(r.st, longest_ms);
    f.ready_ms = ready_ms;
    f.interval_ms = longest_ms;
    th.writer = LOAD(&r.writer_tid);
    mat_find(&th, &w.t1);
    store_figures(&r, &w, &f);
    lag_figures(&w, &f);
    cpu_figures(&r, &th, &w, &f);
    slice_figures(&w, &f);
    if (o->timeline) timeline_print(CASE_NAMES[kind], &w);
    producers_figures(&r, &f, e);
    f.rss_mb = rss_mb();
    uint64_t c0 = now_ns();
    trastenda_store_close(r.st);
    f.close_ms = (double)(now_ns() - c0) / 1e6;
    runner_free(&r);
    free(w.samples);
    rm_tree_quiet(dir);
    memory_purge();
    return f;
}

/* ---- raw fsync: the disk's own rate ---- */

struct raw_fig {
    double rate, seconds;
    double lat_us[Q_COUNT_];
};

static struct raw_fig
raw_fsync(double seconds)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/raw-fsync", root_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die("open %s: %s", path, strerror(errno));
    static struct hist h;
    memset(&h, 0, sizeof(h));
    char buf[RAW_WRITE_BYTES];
    memset(buf, 'x', sizeof(buf));
    uint64_t start = now_ns(), end = start + (uint64_t)(seconds * 1e9), t = start;
    off_t off = 0;
    while (t < end) {
        if (pwrite(fd, buf, sizeof(buf), off) != (ssize_t)sizeof(buf)) die("raw fsync: write");
        if (fdatasync(fd) != 0) die("raw fsync: fdatasync: %s", strerror(errno));
        off += (off_t)sizeof(buf);
        uint64_t t1 = now_ns();
        hist_add(&h, t1 - t);
        t = t1;
    }
    close(fd);
    unlink(path);
    struct raw_fig f;
    f.seconds = (double)(t - start) / 1e9;
    f.rate = (double)h.count / f.seconds;
    hist_us(&h, f.lat_us);
    return f;
}

/* ---- what a reserve writes to the log: one batch decoded record by record ---- */

#define COMP_RESERVES 4096u /* a batch of the closed-loop size, on distinct SKUs */
#define COMP_TYPES    16u

struct comp_fig {
    double bytes[COMP_TYPES]; /* per reserve, by record type (record header included) */
    double header, total;     /* the entry's 40-byte header per reserve; the whole entry */
};

static const char *const REC_NAMES[COMP_TYPES] = {
    "?",           "META",         "CHANNEL", "LOCATION",      "SKU", "STOCK",
    "HOLD",        "HOLD_REMOVED", "ORDER",   "ORDER_REMOVED", "PO",  "KEY",
    "KEY_REMOVED", "LEDGER",       "EVENT",   "PO_REMOVED"};

static void
comp_apply(trastenda_engine *e, int64_t *now, const trastenda_cmd *cmds, uint32_t n,
           trastenda_result *res, trastenda_batch_out *out)
{
    trastenda_err err = trastenda_engine_apply(e, ++*now, cmds, n, res, out);
    if (err != TRASTENDA_OK) die("log composition: apply: %s", trastenda_err_name(err));
    for (uint32_t i = 0; i < n; i++)
        if (res[i].code != TRASTENDA_OK)
            die("log composition: %s: %s", trastenda_err_name(res[i].code), res[i].message);
}

/* The same commands as the reserve cases, applied by a bare engine; its entry decoded. */
static struct comp_fig
log_composition(char (*ids)[SKU_ID_BYTES])
{
    trastenda_engine_config cfg;
    trastenda_engine_config_default(&cfg);
    trastenda_engine *e = NULL;
    if (trastenda_engine_create(&cfg, &e) != TRASTENDA_OK) die("log composition: engine create");
    static trastenda_cmd cmds[COMP_RESERVES];
    static trastenda_result res[COMP_RESERVES];
    static trastenda_line lines[COMP_RESERVES];
    static char keys[COMP_RESERVES][KEY_BYTES];
    int64_t now = 1700000000000ll;
    trastenda_batch_out out;
    cmd_clear(&cmds[0], TRASTENDA_OP_LOCATION_UPSERT);
    cmds[0].loc.id = str_of(LOC_ID);
    cmds[0].active = 1;
    comp_apply(e, &now, cmds, 1, res, &out);
    for (uint32_t op = 0; op < 2; op++) { /* the SKUs, then their stock */
        for (uint32_t i = 0; i < COMP_RESERVES; i++) {
            cmd_clear(&cmds[i], op == 0 ? TRASTENDA_OP_SKU_UPSERT : TRASTENDA_OP_RECEIVE);
            cmds[i].sku.id = (trastenda_str){ids[i], SKU_ID_BYTES - 1};
            cmds[i].loc.id = str_of(LOC_ID);
            cmds[i].qty = RES_UNITS;
            cmds[i].active = 1;
        }
        comp_apply(e, &now, cmds, COMP_RESERVES, res, &out);
    }
    for (uint32_t i = 0; i < COMP_RESERVES; i++) {
        cmd_clear(&cmds[i], TRASTENDA_OP_RESERVE);
        lines[i] = (trastenda_line){{{ids[i], SKU_ID_BYTES - 1}, TRASTENDA_IX_NONE},
                                    {str_of(LOC_ID), TRASTENDA_IX_NONE},
                                    1,
                                    0};
        cmds[i].lines = &lines[i];
        cmds[i].line_count = 1;
        cmds[i].ttl_ms = RES_TTL_MS;
        cmds[i].key = (trastenda_str){keys[i], text_id(keys[i], 'k', (uint64_t)i + 1)};
    }
    comp_apply(e, &now, cmds, COMP_RESERVES, res, &out);
    struct comp_fig f;
    memset(&f, 0, sizeof(f));
    trastenda_entry_header hdr;
    trastenda_entry_iter it;
    if (trastenda_entry_open(out.entry, out.entry_len, &hdr, &it) != TRASTENDA_OK)
        die("log composition: a bad entry");
    uint8_t type;
    const uint8_t *body;
    uint32_t blen;
    while (trastenda_entry_next(&it, &type, &body, &blen) == TRASTENDA_OK) {
        uint32_t hdr_bytes = 2; /* type and the body length, a varint (docs/LOG.md) */
        for (uint32_t v = blen; v >= 0x80; v >>= 7)
            hdr_bytes++;
        f.bytes[type % COMP_TYPES] += (double)(hdr_bytes + blen) / COMP_RESERVES;
    }
    f.header = (double)TRASTENDA_LOG_HEADER_BYTES / COMP_RESERVES;
    f.total = (double)out.entry_len / COMP_RESERVES;
    trastenda_engine_destroy(e);
    return f;
}

/* ---- recovery: a state of N stock records, replayed from the log, then loaded ---- */

static void
recovery_config(trastenda_store_config *c, const char *dir, uint64_t records, uint32_t page_slots)
{
    trastenda_store_config_default(c);
    c->dir = dir;
    c->log = store_log;
    c->durability = TRASTENDA_DURABILITY_FSYNC;
    /* Never written while the state is built: recovery will replay the whole log. */
    c->materialize_interval_ms = 3600000;
    trastenda_engine_config *e = &c->engine;
    e->locations_max = 16;
    e->skus_max = (uint32_t)(records / REC_LOCS);
    e->stock_max = (uint32_t)records;
    e->batch_cmds_max = REC_BATCH;
    e->page_slots = page_slots; /* the build writes no state: only the opens' pages use it */
}

/* Command k of the build: the locations, then the SKUs, then a RECEIVE per record. */
static void
build_cmd(trastenda_cmd *c, uint64_t k, uint64_t skus, char (*ids)[SKU_ID_BYTES])
{
    static const char *const LOCS[REC_LOCS] = {"MAD", "BCN", "VLC", "SVQ", "LCG"};
    if (k < REC_LOCS) {
        cmd_clear(c, TRASTENDA_OP_LOCATION_UPSERT);
        c->loc.id = str_of(LOCS[k]);
        c->name = str_of(LOCS[k]);
        c->priority = (int32_t)k;
        c->active = 1;
    } else if (k < REC_LOCS + skus) {
        cmd_clear(c, TRASTENDA_OP_SKU_UPSERT);
        c->sku.id = (trastenda_str){ids[k - REC_LOCS], SKU_ID_BYTES - 1};
        c->active = 1;
    } else {
        uint64_t rec = k - REC_LOCS - skus;
        cmd_clear(c, TRASTENDA_OP_RECEIVE);
        c->sku.id = (trastenda_str){ids[rec / REC_LOCS], SKU_ID_BYTES - 1};
        c->loc.id = str_of(LOCS[rec % REC_LOCS]);
        c->qty = 1000 + (int64_t)(rec % 1000);
    }
}

struct big_req {
    struct waiter w;
    trastenda_cmd *cmds;
    trastenda_result *res;
    bool busy;
};

static void
big_check(struct big_req *b)
{
    if (!b->busy) return;
    trastenda_err err = waiter_wait(&b->w);
    if (err != TRASTENDA_OK) die("build: request: %s", trastenda_err_name(err));
    for (uint32_t i = 0; i < b->w.req.n; i++)
        if (b->res[i].code != TRASTENDA_OK)
            die("build: %s: %s", trastenda_err_name(b->res[i].code), b->res[i].message);
    b->busy = false;
}

/* Child mode: builds the state, prints "seq digest seconds", ends without closing the store. */
_Noreturn static void
build_child(const char *dir, uint64_t records)
{
    uint64_t skus = records / REC_LOCS, total = REC_LOCS + skus + records;
    char(*ids)[SKU_ID_BYTES] = xcalloc(skus, sizeof(*ids));
    for (uint64_t i = 0; i < skus; i++)
        sku_id(ids[i], (uint32_t)i);
    trastenda_store_config cfg;
    recovery_config(&cfg, dir, records, 0);
    trastenda_store *st = store_open(&cfg);
    static struct big_req reqs[REC_WINDOW];
    for (uint32_t i = 0; i < REC_WINDOW; i++) {
        reqs[i].cmds = xcalloc(REC_BATCH, sizeof(trastenda_cmd));
        reqs[i].res = xcalloc(REC_BATCH, sizeof(trastenda_result));
    }
    uint64_t t0 = now_ns();
    for (uint64_t k = 0, r = 0; k < total; r++) {
        struct big_req *b = &reqs[r % REC_WINDOW];
        big_check(b);
        uint32_t n = total - k < REC_BATCH ? (uint32_t)(total - k) : REC_BATCH;
        for (uint32_t i = 0; i < n; i++)
            build_cmd(&b->cmds[i], k + i, skus, ids);
        memset(&b->w, 0, sizeof(b->w));
        b->w.req.cmds = b->cmds;
        b->w.req.n = n;
        b->w.req.results = b->res;
        waiter_submit(st, &b->w);
        b->busy = true;
        k += n;
    }
    for (uint32_t i = 0; i < REC_WINDOW; i++)
        big_check(&reqs[i]);
    double secs = (double)(now_ns() - t0) / 1e9;
    uint64_t digest = store_digest(st);
    printf("%llu %llu %.3f\n", (unsigned long long)trastenda_store_durable_seq(st),
           (unsigned long long)digest, secs);
    fflush(stdout);
    _exit(0); /* no close: the state database stays empty */
}

/* Runs this program again as the builder; reads its one line. */
static void
build_spawn(const char *dir, uint64_t records, uint64_t *seq, uint64_t *digest, double *secs)
{
    int fds[2];
    if (pipe(fds) != 0) die("pipe: %s", strerror(errno));
    char recs[32];
    snprintf(recs, sizeof(recs), "%llu", (unsigned long long)records);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) die("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl("/proc/self/exe", "trastenda-bench-storage", "--build-state", dir, "--records", recs,
              (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    unsigned long long s = 0, d = 0;
    int got = f != NULL ? fscanf(f, "%llu %llu %lf", &s, &d, secs) : 0;
    if (f != NULL) fclose(f);
    int status = 0;
    waitpid(pid, &status, 0);
    if (got != 3 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("the state builder failed (status %d)", status);
    *seq = s;
    *digest = d;
}

struct rec_fig {
    double records, build_s, build_rate, log_entries;
    double replay_ms, replay_open_ms, replay_rate, replayed_entries;
    double close_ms, state_ms, state_open_ms, state_rate, state_replayed;
    double rss_mb, state_rss_mb, state_huge_mb;
    double state_all_ms[RUNS_MAX]; /* each open from the state (--runs); state_ms is their median */
    uint32_t state_opens;
    bool digests_equal;
};

/* Opens the directory: recovery figures of the live engine, and the wall time of the open
 * (which recovers a second copy for the materializer). */
static trastenda_store *
recovery_open(const trastenda_store_config *cfg, uint64_t digest, double *rec_ms, double *open_ms,
              double *replayed, bool *equal)
{
    uint64_t t0 = now_ns();
    trastenda_store *st = store_open(cfg);
    *open_ms = (double)(now_ns() - t0) / 1e6;
    trastenda_store_stats s;
    trastenda_store_stats_get(st, &s);
    *rec_ms = s.recovery_ms;
    *replayed = (double)s.recovered_entries;
    *equal = *equal && store_digest(st) == digest;
    return st;
}

static struct rec_fig
recovery_run(const struct opts *o)
{
    char dir[4200];
    case_dir(dir, sizeof(dir), "recovery", 0);
    struct rec_fig f;
    memset(&f, 0, sizeof(f));
    f.records = (double)o->records;
    uint64_t seq = 0, digest = 0;
    build_spawn(dir, o->records, &seq, &digest, &f.build_s);
    f.build_rate = f.records / f.build_s;
    f.log_entries = (double)seq;
    trastenda_store_config cfg;
    recovery_config(&cfg, dir, o->records, o->page_slots);
    f.digests_equal = true;
    trastenda_store *st = recovery_open(&cfg, digest, &f.replay_ms, &f.replay_open_ms,
                                        &f.replayed_entries, &f.digests_equal);
    f.rss_mb = rss_mb();
    uint64_t c0 = now_ns();
    trastenda_store_close(st); /* writes the whole state */
    f.close_ms = (double)(now_ns() - c0) / 1e6;
    memory_purge();
    /* Opened from the state --runs times (nothing changes in between): the median of the
     * recoveries, and the open and memory of the first. */
    f.state_opens = o->runs;
    for (uint32_t i = 0; i < f.state_opens; i++) {
        double open_ms, replayed;
        st = recovery_open(&cfg, digest, &f.state_all_ms[i], &open_ms, &replayed, &f.digests_equal);
        if (i == 0) {
            f.state_open_ms = open_ms;
            f.state_replayed = replayed;
            f.state_rss_mb = rss_mb();
            f.state_huge_mb = huge_mb();
        }
        trastenda_store_close(st);
        memory_purge();
    }
    double sorted[RUNS_MAX];
    memcpy(sorted, f.state_all_ms, f.state_opens * sizeof(double));
    qsort(sorted, f.state_opens, sizeof(double), dbl_cmp);
    f.state_ms = sorted[f.state_opens / 2];
    f.replay_rate = f.records / (f.replay_ms / 1e3);
    f.state_rate = f.records / (f.state_ms / 1e3);
    rm_tree_quiet(dir);
    memory_purge();
    return f;
}

/* ---- output ---- */

struct results {
    bool has_raw, has_case[C_RESERVE_COUNT_], has_rec;
    struct raw_fig raw;
    struct fig med[C_RESERVE_COUNT_], all[C_RESERVE_COUNT_][RUNS_MAX];
    struct errs errs[C_RESERVE_COUNT_];
    struct rec_fig rec;
    struct comp_fig comp; /* what a reserve writes to the log, decoded */
    uint32_t runs;
    uint32_t batch_cmds_max;
};

static const char *
met(bool ok)
{
    return ok ? "met" : "not met";
}

/* The materializer keeps up: its lag at the end of the window is a few of the longest state-write
 * intervals (a write waits for as much log as the last one wrote, up to that interval). */
static bool
keeps_up(const struct fig *f)
{
    return f->catchup_ms != -1 && f->lag_end_ms <= LAG_OK_INTERVALS * f->interval_ms;
}

static void
print_header(const struct opts *o, const char *cpu, uint32_t batch_max)
{
    char a[32], c[32];
    printf("trastenda-bench-storage %s: build %s, %ld cores, CPU %s\n", TRASTENDA_VERSION_STRING,
           build_type(), sysconf(_SC_NPROCESSORS_ONLN), cpu);
    char load[64] = "?";
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf != NULL) {
        if (fgets(load, sizeof(load), lf) == NULL) snprintf(load, sizeof(load), "?");
        load[strcspn(load, "\n")] = 0;
        fclose(lf);
    }
    printf("data: %s (temporary, removed at exit); loadavg at start %s\n", root_dir, load);
    printf("path: trastenda_store_submit -> engine thread -> log writer (one RocksDB put per "
           "batch) -> done();\n      materializer reading the log behind it; nothing bypassed\n");
    printf("reserves: RESERVE of 1 unit, one line with an explicit location, ttl %d s, a 17-byte "
           "idempotency key\n          each; %s SKUs x 1 location, %s units each; one command per "
           "request\n",
           RES_TTL_MS / 1000, num(a, RES_SKUS), num(c, RES_UNITS));
    printf("producers: %u threads x %u requests in flight (closed loop), SKU and location ids "
           "resolved per\n           command (trastenda_engine_sku_lookup) as the network threads "
           "will; batch_cmds_max %u\n",
           o->threads, o->window, batch_max);
    printf("runs: %u x %.0f s measured per case after %.0f s warm-up%s; latency: every request, "
           "log-bucketed\n",
           o->runs, o->seconds, o->warmup_s, o->runs > 1 ? ", median of each figure" : "");
    trastenda_store_config sc;
    trastenda_store_config_default(&sc);
    uint32_t interval = o->materialize_ms > 0 ? o->materialize_ms : sc.materialize_interval_ms;
    printf("store: materialize_interval_ms %u%s, log_retention_ms %lld, paced producers wake at "
           "most every %llu us",
           interval, o->materialize_ms > 0 ? " (--materialize-ms)" : "",
           (long long)sc.log_retention_ms, PACE_QUANTUM_NS / 1000);
    if (o->mat_nice > 0) printf("; EXPERIMENT: materializer thread at nice %d", o->mat_nice);
    if (o->huge_pages) printf("; tables in huge pages (--huge-pages)");
    if (o->page_slots > 0) printf("; pages of %u slots (--page-slots)", o->page_slots);
    printf("\n");
    fflush(stdout);
}

static void
print_raw(const struct raw_fig *f)
{
    char a[32];
    printf("\n[a] raw fsync   %d-byte append + fdatasync in a loop, %.1f s, same directory\n",
           RAW_WRITE_BYTES, f->seconds);
    printf("    rate          %s fsync/s   p50 %.0f us   p99 %.0f us   max %.0f us\n",
           num(a, f->rate), f->lat_us[Q_P50], f->lat_us[Q_P99], f->lat_us[Q_MAX]);
}

static void
print_cpu(const struct fig *f)
{
    printf("    cpu           %.2f cores busy:", f->cpu_total);
    for (int i = 0; i < R_COUNT_; i++)
        if (f->cpu[i] >= 0.005) printf(" %s %.2f", ROLE_NAMES[i], f->cpu[i]);
    printf("\n    per reserve  ");
    for (int i = 0; i < R_COUNT_; i++)
        if (f->cpu[i] >= 0.005 && f->rate > 0)
            printf(" %s %.2f", ROLE_NAMES[i], f->cpu[i] / f->rate * 1e6);
    printf(" us of CPU\n                  other processes %.2f cores%s; %.2f page faults per "
           "reserve\n",
           f->cpu_others, f->cpu_others > 0.1 ? " (the machine was shared: figures are low)" : "",
           f->faults_per_reserve);
}

static void
print_slices(const struct fig *f)
{
    char a[32];
    printf("    sustained     per tenth of the window:");
    for (uint32_t k = 0; k < SLICES; k++)
        printf(" %sk", num(a, f->slice_rate[k] / 1e3));
    printf(" reserves/s\n");
}

static void
print_errors(const struct errs *e, double busy)
{
    bool any = e->duplicates > 0;
    for (uint32_t c = 0; c < ERR_SLOTS; c++)
        any |= e->result[c] > 0 || e->status[c] > 0;
    if (!any && busy == 0) {
        printf("    errors        none\n");
        return;
    }
    printf("    errors       ");
    for (uint32_t c = 0; c < ERR_SLOTS; c++) {
        if (e->result[c] > 0)
            printf(" %s %llu", trastenda_err_name((trastenda_err)c),
                   (unsigned long long)e->result[c]);
        if (e->status[c] > 0)
            printf(" done():%s %llu", trastenda_err_name((trastenda_err)c),
                   (unsigned long long)e->status[c]);
    }
    if (e->duplicates > 0) printf(" duplicates %llu", (unsigned long long)e->duplicates);
    if (busy > 0) printf(" (E_BUSY retries %.0f)", busy);
    printf("\n");
}

static void
print_case(enum case_kind k, const struct results *res, const struct raw_fig *raw)
{
    static const char *const what[C_RESERVE_COUNT_] = {
        "[b] fsync       durable reserves, TRASTENDA_DURABILITY_FSYNC, closed loop",
        "[c] async       reserves, TRASTENDA_DURABILITY_ASYNC (no fsync), closed loop",
        "[d] paced       reserves offered at a fixed rate, FSYNC, open loop"};
    const struct fig *f = &res->med[k];
    char a[32], b[32], c[32];
    printf("\n%s\n", what[k]);
    if (k == C_PACED)
        printf("    offered       %s reserves/s; achieved %s reserves/s\n", num(a, f->offered),
               num(b, f->rate));
    else if (k == C_FSYNC)
        printf("    rate          %s durable reserves/s   target >= %s/s   %.0f%% of target (%s)\n",
               num(a, f->rate), num(b, TARGET_RATE), 100.0 * f->rate / TARGET_RATE,
               met(f->rate >= TARGET_RATE && keeps_up(f)));
    else
        printf("    rate          %s reserves/s (acknowledged when written, not fsync'ed)\n",
               num(a, f->rate));
    if (res->runs > 1) {
        printf("    runs         ");
        for (uint32_t i = 0; i < res->runs; i++)
            printf(" %s (others %.2f)%s", num(a, res->all[k][i].rate), res->all[k][i].cpu_others,
                   i + 1 < res->runs ? " /" : "");
        printf(" reserves/s (other processes' cores)\n");
    }
    if (raw != NULL && k == C_FSYNC)
        printf("    vs disk       raw fsync %s/s: %.1f reserves per raw fsync; the store's %s "
               "batches/s are %.0f%% of it\n",
               num(a, raw->rate), f->rate / raw->rate, num(b, f->batches_per_s),
               100.0 * f->batches_per_s / raw->rate);
    else
        printf("    batches/s     %s\n", num(a, f->batches_per_s));
    printf("    batch         mean %.1f commands (stats: commands/batches), p50 %s, p99 %s, max "
           "%s\n",
           f->batch_mean, num(a, f->batch_p50), num(b, f->batch_p99), num(c, f->batch_max));
    printf("    submit->ack   p50 %.0f us   p99 %.0f us   p99.9 %.0f us   max %.0f us%s\n",
           f->lat_us[Q_P50], f->lat_us[Q_P99], f->lat_us[Q_P999], f->lat_us[Q_MAX],
           k == C_PACED ? "" : "   (closed loop: queueing included)");
    if (k == C_PACED) {
        printf("    target        p99 <= %.0f us at %s reserves/s: %s\n", TARGET_P99_US,
               num(a, f->offered), met(f->lat_us[Q_P99] <= TARGET_P99_US));
        printf("    sched->ack    p50 %.0f us   p99 %.0f us   p99.9 %.0f us   max %.0f us   "
               "(from the scheduled send time)\n",
               f->sched_us[Q_P50], f->sched_us[Q_P99], f->sched_us[Q_P999], f->sched_us[Q_MAX]);
    }
    printf("    log           %.1f bytes per reserve   target <= %.0f (%s)\n",
           f->log_bytes_per_reserve, TARGET_LOG_BYTES,
           met(f->log_bytes_per_reserve <= TARGET_LOG_BYTES));
    printf("    disk          %.0f bytes written per reserve (/proc/self/io: log WAL, memtable "
           "flushes,\n                  compactions, state writes), %.1f x the log\n",
           f->disk_bytes_per_reserve, f->disk_bytes_per_reserve / f->log_bytes_per_reserve);
    printf("    materializer  lag max %s batches (%.0f ms), at end %s batches (%.0f ms): %s\n",
           num(a, f->lag_max_batches), f->lag_max_ms, num(b, f->lag_end_batches), f->lag_end_ms,
           keeps_up(f) ? "keeps up" : "FALLS BEHIND (lag at end > 3 state-write intervals)");
    if (f->catchup_ms >= 0)
        printf("                  state caught up %.0f ms after the load stopped", f->catchup_ms);
    else
        printf("                  state %s after the load stopped",
               f->catchup_ms == -1 ? "NOT caught up 2 minutes" : "catch-up not measured");
    printf("; %s state writes, %s pages\n", num(c, f->state_writes), num(a, f->pages_written));
    if (f->ready_ms >= 0)
        printf("                  ready %.0f ms after open (its copy loaded, the catalogue "
               "materialized; before the window)\n",
               f->ready_ms);
    else
        printf("                  NOT ready 2 minutes after open (the window ran anyway)\n");
    print_slices(f);
    print_cpu(f);
    printf("    window        %.1f s, %s reserves; queue depth max %s; RSS %s MB; close %.0f ms\n",
           f->window_s, num(a, f->reserves), num(b, f->queue_depth_max), num(c, f->rss_mb),
           f->close_ms);
    if (f->capacity_hit > 0)
        printf("    NOTE          stopped early: the %s reserves the tables were sized for were "
               "used (--capacity)\n",
               num(a, f->capacity));
    print_errors(&res->errs[k], f->busy);
}

static void
print_composition(const struct comp_fig *f)
{
    printf("\n    log composition: one entry of %u reserves on distinct SKUs, decoded (bytes per "
           "reserve,\n    record headers included):",
           COMP_RESERVES);
    for (uint32_t t = 0; t < COMP_TYPES; t++)
        if (f->bytes[t] >= 0.05) printf(" %s %.1f", REC_NAMES[t], f->bytes[t]);
    printf(" entry header %.2f = %.1f\n", f->header, f->total);
}

static void
print_recovery(const struct rec_fig *f)
{
    char a[32], b[32], c[32];
    printf("\n[e] recovery    %s stock records (%s SKUs x %u locations), built through the store\n",
           num(a, f->records), num(b, f->records / REC_LOCS), REC_LOCS);
    printf("    build         %.1f s, %s records/s (%s log entries, FSYNC, requests of %u "
           "commands)\n",
           f->build_s, num(a, f->build_rate), num(b, f->log_entries), REC_BATCH);
    printf("    from the log  recovery %.0f ms = %s records/s (%s entries replayed); open %.0f ms "
           "(two copies)\n",
           f->replay_ms, num(a, f->replay_rate), num(b, f->replayed_entries), f->replay_open_ms);
    printf(
        "    close         %.0f ms (writes the whole materialized state); RSS while open %s MB\n",
        f->close_ms, num(a, f->rss_mb));
    printf("    from state    recovery %.0f ms = %s records/s (%s entries replayed); open %.0f ms "
           "(two copies)\n",
           f->state_ms, num(a, f->state_rate), num(c, f->state_replayed), f->state_open_ms);
    if (f->state_opens > 1) {
        printf("                  opens        ");
        for (uint32_t i = 0; i < f->state_opens; i++)
            printf(" %.0f%s", f->state_all_ms[i],
                   i + 1 < f->state_opens ? " /" : " ms (median above)\n");
    }
    printf("                  RSS after the open %s MB, %s MB of it on huge pages\n",
           num(a, f->state_rss_mb), num(b, f->state_huge_mb));
    double scaled = f->state_ms / 1e3 * TARGET_RECORDS / f->records;
    printf("    target        %s records <= %.0f s: %s", num(a, TARGET_RECORDS), TARGET_RECOVERY_S,
           f->records >= TARGET_RECORDS ? met(f->state_ms / 1e3 <= TARGET_RECOVERY_S) : "");
    if (f->records < TARGET_RECORDS) printf("(scaled linearly: %.1f s)", scaled);
    printf("\n    digest        %s\n",
           f->digests_equal ? "equal after each reopen" : "DIFFERENT after a reopen");
}

static void
print_targets(const struct results *r)
{
    char a[32];
    printf("\ntargets (issue 3)\n");
    if (r->has_case[C_FSYNC]) {
        const struct fig *f = &r->med[C_FSYNC];
        printf("  durable fsync single-line reserves/s, materializer keeping up  >= 1,000,000  "
               "%12s  %s\n",
               num(a, f->rate), met(f->rate >= TARGET_RATE && keeps_up(f)));
    }
    if (r->has_case[C_PACED]) {
        const struct fig *f = &r->med[C_PACED];
        printf("  p99 submit->ack at %s reserves/s (fsync)                  <= 500 us  "
               "%9.0f us  %s\n",
               num(a, f->offered), f->lat_us[Q_P99], met(f->lat_us[Q_P99] <= TARGET_P99_US));
    }
    if (r->has_rec) {
        const struct rec_fig *f = &r->rec;
        printf("  recovery of %s stock records (from the state)          <= 5 s  %11.2f s  %s\n",
               num(a, f->records), f->state_ms / 1e3,
               f->records >= TARGET_RECORDS ? met(f->state_ms / 1e3 <= TARGET_RECOVERY_S)
                                            : "(fewer records than the target's)");
    }
    int k = r->has_case[C_FSYNC] ? C_FSYNC : r->has_case[C_PACED] ? C_PACED : -1;
    if (k >= 0)
        printf("  log bytes per single-line reserve ([%s])                       <= 128  %13.1f  "
               "%s\n",
               CASE_NAMES[k], r->med[k].log_bytes_per_reserve,
               met(r->med[k].log_bytes_per_reserve <= TARGET_LOG_BYTES));
}

static void
json_q(const char *name, const double *q)
{
    printf("\"%s\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f}", name, q[Q_P50],
           q[Q_P99], q[Q_P999], q[Q_MAX]);
}

static void
json_case(enum case_kind k, const struct results *r)
{
    const struct fig *f = &r->med[k];
    printf("\"%s\":{\"rate\":%.0f,\"offered\":%.0f,\"window_s\":%.2f,\"reserves\":%.0f,",
           CASE_NAMES[k], f->rate, f->offered, f->window_s, f->reserves);
    json_q("submit_ack_us", f->lat_us);
    printf(",");
    json_q("sched_ack_us", f->sched_us);
    printf(",\"batch\":{\"mean\":%.2f,\"p50\":%.0f,\"p99\":%.0f,\"max\":%.0f,\"per_s\":%.1f},"
           "\"log_bytes_per_reserve\":%.2f,\"disk_bytes_per_reserve\":%.1f,\"materializer\":{\"lag_"
           "max_batches\":%.0f,"
           "\"lag_max_ms\":%.1f,\"lag_end_batches\":%.0f,\"lag_end_ms\":%.1f,\"catchup_ms\":%.1f,"
           "\"ready_ms\":%.1f,\"state_writes\":%.0f,\"pages_written\":%.0f,\"keeps_up\":%s},\"cpu_"
           "cores\":{\"total\":"
           "%.3f",
           f->batch_mean, f->batch_p50, f->batch_p99, f->batch_max, f->batches_per_s,
           f->log_bytes_per_reserve, f->disk_bytes_per_reserve, f->lag_max_batches, f->lag_max_ms,
           f->lag_end_batches, f->lag_end_ms, f->catchup_ms, f->ready_ms, f->state_writes,
           f->pages_written, keeps_up(f) ? "true" : "false", f->cpu_total);
    printf(",\"others\":%.3f", f->cpu_others);
    for (int i = 0; i < R_COUNT_; i++)
        printf(",\"%s\":%.3f", ROLE_KEYS[i], f->cpu[i]);
    printf("},\"faults_per_reserve\":%.3f,\"slice_rate\":[", f->faults_per_reserve);
    for (uint32_t i = 0; i < SLICES; i++)
        printf("%s%.0f", i ? "," : "", f->slice_rate[i]);
    printf("],\"queue_depth_max\":%.0f,\"failed\":%.0f,\"busy\":%.0f,\"capacity\":%.0f,"
           "\"capacity_hit\":%s,\"rss_mb\":%.0f,\"close_ms\":%.1f,\"errors\":{",
           f->queue_depth_max, f->failed, f->busy, f->capacity,
           f->capacity_hit > 0 ? "true" : "false", f->rss_mb, f->close_ms);
    bool first = true;
    for (uint32_t c = 0; c < ERR_SLOTS; c++) {
        uint64_t n = r->errs[k].result[c] + r->errs[k].status[c];
        if (n == 0) continue;
        printf("%s\"%s\":%llu", first ? "" : ",", trastenda_err_name((trastenda_err)c),
               (unsigned long long)n);
        first = false;
    }
    printf("},\"runs\":[");
    for (uint32_t i = 0; i < r->runs; i++)
        printf("%s%.0f", i ? "," : "", r->all[k][i].rate);
    printf("]}");
}

static void
json_recovery(const struct rec_fig *f)
{
    printf("\"recovery\":{\"records\":%.0f,\"build_s\":%.3f,\"log_entries\":%.0f,"
           "\"from_log\":{\"recovery_ms\":%.1f,\"records_per_s\":%.0f,\"open_ms\":%.1f,"
           "\"replayed_entries\":%.0f},\"close_ms\":%.1f,\"from_state\":{\"recovery_ms\":%.1f,"
           "\"records_per_s\":%.0f,\"open_ms\":%.1f,\"replayed_entries\":%.0f,"
           "\"rss_mb\":%.0f,\"huge_pages_mb\":%.0f},\"rss_mb\":%.0f,\"digests_equal\":%s,"
           "\"target_s\":%.0f}",
           f->records, f->build_s, f->log_entries, f->replay_ms, f->replay_rate, f->replay_open_ms,
           f->replayed_entries, f->close_ms, f->state_ms, f->state_rate, f->state_open_ms,
           f->state_replayed, f->state_rss_mb, f->state_huge_mb, f->rss_mb,
           f->digests_equal ? "true" : "false", TARGET_RECOVERY_S);
}

static void
print_json(const struct opts *o, const struct results *r, const char *cpu)
{
    printf("{\"build\":\"%s\",\"cores\":%ld,\"cpu\":\"%s\",\"seconds\":%.1f,\"warmup_s\":%.1f,"
           "\"runs\":%u,\"threads\":%u,\"window\":%u,\"batch_cmds_max\":%u,\"quick\":%s,"
           "\"targets\":{\"rate\":%.0f,\"p99_us\":%.0f,\"recovery_s\":%.0f,\"log_bytes\":%.0f}",
           build_type(), sysconf(_SC_NPROCESSORS_ONLN), cpu, o->seconds, o->warmup_s, r->runs,
           o->threads, o->window, r->batch_cmds_max, o->quick ? "true" : "false", TARGET_RATE,
           TARGET_P99_US, TARGET_RECOVERY_S, TARGET_LOG_BYTES);
    if (r->has_raw)
        printf(",\"raw_fsync\":{\"rate\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f}", r->raw.rate,
               r->raw.lat_us[Q_P50], r->raw.lat_us[Q_P99]);
    bool any = false;
    for (int k = 0; k < C_RESERVE_COUNT_; k++) {
        if (!r->has_case[k]) continue;
        printf(",");
        json_case((enum case_kind)k, r);
        any = true;
    }
    if (any) {
        printf(",\"log_composition\":{\"reserves\":%u", COMP_RESERVES);
        for (uint32_t t = 0; t < COMP_TYPES; t++)
            if (r->comp.bytes[t] > 0) printf(",\"%s\":%.2f", REC_NAMES[t], r->comp.bytes[t]);
        printf(",\"header\":%.3f,\"total\":%.2f}", r->comp.header, r->comp.total);
    }
    if (r->has_rec) {
        printf(",");
        json_recovery(&r->rec);
    }
    printf("}\n");
}

/* ---- main ---- */

static const char *const SECTION_NAMES[] = {"raw", "fsync", "async", "paced", "recovery"};
#define SECTIONS (sizeof(SECTION_NAMES) / sizeof(SECTION_NAMES[0]))

static void
usage(FILE *to)
{
    fprintf(
        to,
        "usage: trastenda-bench-storage [--json] [--quick] [--only NAME[,NAME...]]\n"
        "         [--seconds N] [--warmup N] [--runs N] [--threads N] [--window N]\n"
        "         [--rate N] [--records N] [--capacity N] [--batch-max N]\n"
        "         [--materialize-ms N] [--mat-nice N] [--huge-pages] [--page-slots N]\n"
        "  NAME: raw, fsync, async, paced, recovery\n"
        "  --seconds    measured seconds per reserve case (default %.0f; --quick %.0f)\n"
        "  --warmup     unmeasured seconds before each (default %.0f; --quick %.0f)\n"
        "  --runs       runs of each reserve case, and opens from the state of the recovery case;\n"
        "               median reported (default 1, max %u)\n"
        "  --threads    producer threads (default %u); --window requests in flight each "
        "(default %u)\n"
        "  --rate       offered reserves/s of the paced case (default %.0f)\n"
        "  --records    stock records of the recovery case (default %llu; --quick %llu)\n"
        "  --capacity   reserves a case may make (hold/key/line tables; default: the seconds "
        "at\n"
        "               %.0f/s, within %.0f%% of MemAvailable at %.0f bytes each)\n"
        "  --batch-max  engine batch_cmds_max of the reserve cases (default: the engine's)\n"
        "  --materialize-ms  the store's materialize_interval_ms (default: the store's)\n"
        "  --mat-nice   experiment: renice the materializer thread (1..19) for the window\n"
        "  --timeline   print every %d-ms sample of each window on stderr\n"
        "  --huge-pages the engine's tables in transparent huge pages (as the server's flag;\n"
        "               the materializer's copy has them either way)\n"
        "  --page-slots records a page of the materialized state holds (the server's flag)\n",
        DEFAULT_SECONDS, QUICK_SECONDS, DEFAULT_WARMUP_S, QUICK_WARMUP_S, RUNS_MAX, DEFAULT_THREADS,
        DEFAULT_WINDOW, DEFAULT_PACED_RATE, DEFAULT_RECORDS, QUICK_RECORDS, CAPACITY_RATE,
        MEM_SHARE * 100, BYTES_PER_RESERVE, SAMPLE_MS);
}

static bool
selected(const char *only, const char *name)
{
    if (only == NULL) return true;
    size_t len = strlen(name);
    for (const char *p = only; *p;) {
        size_t n = strcspn(p, ",");
        if (n == len && strncmp(p, name, n) == 0) return true;
        p += n;
        if (*p == ',') p++;
    }
    return false;
}

static bool
parse_flag(struct opts *o, const char *a, const char *v)
{
    if (v == NULL) return false;
    if (strcmp(a, "--seconds") == 0)
        o->seconds = atof(v);
    else if (strcmp(a, "--warmup") == 0)
        o->warmup_s = atof(v);
    else if (strcmp(a, "--runs") == 0)
        o->runs = (uint32_t)strtoul(v, NULL, 10);
    else if (strcmp(a, "--threads") == 0)
        o->threads = (uint32_t)strtoul(v, NULL, 10);
    else if (strcmp(a, "--window") == 0)
        o->window = (uint32_t)strtoul(v, NULL, 10);
    else if (strcmp(a, "--rate") == 0)
        o->rate = atof(v);
    else if (strcmp(a, "--records") == 0)
        o->records = strtoull(v, NULL, 10);
    else if (strcmp(a, "--capacity") == 0)
        o->capacity = strtoull(v, NULL, 10);
    else if (strcmp(a, "--batch-max") == 0)
        o->batch_max = (uint32_t)strtoul(v, NULL, 10);
    else if (strcmp(a, "--materialize-ms") == 0)
        o->materialize_ms = (uint32_t)strtoul(v, NULL, 10);
    else if (strcmp(a, "--mat-nice") == 0)
        o->mat_nice = atoi(v);
    else if (strcmp(a, "--page-slots") == 0)
        o->page_slots = (uint32_t)strtoul(v, NULL, 10);
    else if (strcmp(a, "--only") == 0)
        o->only = v;
    else if (strcmp(a, "--build-state") == 0)
        o->build_dir = v;
    else
        return false;
    return true;
}

static void
parse_check(const struct opts *o)
{
    if (o->seconds <= 0 || o->seconds > 3000 || o->warmup_s < 0 || o->warmup_s > 600)
        die("--seconds must be in (0, 3000], --warmup in [0, 600]");
    if (o->runs < 1 || o->runs > RUNS_MAX) die("--runs must be 1..%u", RUNS_MAX);
    if (o->threads < 1 || o->threads > 64 || o->window < 1 || o->window > 65536)
        die("--threads must be 1..64, --window 1..65536");
    if (o->rate < 1 || o->rate > 1e8) die("--rate must be 1..100000000");
    if (o->records < 1000 || o->records > REC_RECORDS_MAX || o->records % REC_LOCS != 0)
        die("--records must be a multiple of %u in 1000..%llu", REC_LOCS, REC_RECORDS_MAX);
    if (o->capacity > (1u << 30) - 65536) die("--capacity must be at most %u", (1u << 30) - 65536);
    if (o->batch_max > (1u << 20)) die("--batch-max must be at most %u", 1u << 20);
    if (o->materialize_ms > 3600000) die("--materialize-ms must be at most 3600000");
    if (o->mat_nice < 0 || o->mat_nice > 19) die("--mat-nice must be 0..19");
    if (o->page_slots != 0 && !trastenda_page_slots_valid(o->page_slots))
        die("--page-slots must be a power of two in 1..65536");
    for (const char *p = o->only; p != NULL && *p;) { /* every name must be a section */
        size_t n = strcspn(p, ","), s = 0;
        while (s < SECTIONS &&
               !(strlen(SECTION_NAMES[s]) == n && strncmp(p, SECTION_NAMES[s], n) == 0))
            s++;
        if (s == SECTIONS) die("--only: unknown case '%.*s'", (int)n, p);
        p += n + (p[n] == ',');
    }
}

static void
parse(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof(*o));
    o->seconds = o->warmup_s = -1;
    o->runs = 1;
    o->threads = DEFAULT_THREADS;
    o->window = DEFAULT_WINDOW;
    o->rate = DEFAULT_PACED_RATE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "--quick") == 0) {
            o->quick = true;
        } else if (strcmp(a, "--timeline") == 0) {
            o->timeline = true;
        } else if (strcmp(a, "--huge-pages") == 0) {
            o->huge_pages = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (parse_flag(o, a, v)) {
            i++;
        } else {
            usage(stderr);
            exit(2);
        }
    }
    if (o->seconds < 0) o->seconds = o->quick ? QUICK_SECONDS : DEFAULT_SECONDS;
    if (o->warmup_s < 0) o->warmup_s = o->quick ? QUICK_WARMUP_S : DEFAULT_WARMUP_S;
    if (o->records == 0) o->records = o->quick ? QUICK_RECORDS : DEFAULT_RECORDS;
    parse_check(o);
}

static void
run_reserve_cases(const struct opts *o, struct results *res)
{
    char(*ids)[SKU_ID_BYTES] = xcalloc(RES_SKUS, sizeof(*ids));
    for (uint32_t i = 0; i < RES_SKUS; i++)
        sku_id(ids[i], i);
    res->comp = log_composition(ids);
    for (int k = 0; k < C_RESERVE_COUNT_; k++) {
        if (!res->has_case[k]) continue;
        for (uint32_t i = 0; i < res->runs; i++)
            res->all[k][i] = case_run(o, (enum case_kind)k, i, ids, &res->errs[k]);
        res->med[k] = fig_median(res->all[k], res->runs);
        if (!o->json) print_case((enum case_kind)k, res, res->has_raw ? &res->raw : NULL);
        if (!o->json && k == C_FSYNC) print_composition(&res->comp);
        fflush(stdout);
    }
    free(ids);
}

int
main(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o);
    if (o.build_dir != NULL) build_child(o.build_dir, o.records);
    char cpu[256];
    cpu_model(cpu, sizeof(cpu));
    static struct results res;
    res.runs = o.runs;
    trastenda_engine_config ec;
    trastenda_engine_config_default(&ec);
    res.batch_cmds_max = o.batch_max > 0 ? o.batch_max : ec.batch_cmds_max;
    res.has_raw = selected(o.only, "raw");
    for (int k = 0; k < C_RESERVE_COUNT_; k++)
        res.has_case[k] = selected(o.only, CASE_NAMES[k]);
    res.has_rec = selected(o.only, "recovery");
    root_make();
    if (!o.json) print_header(&o, cpu, res.batch_cmds_max);
    if (res.has_raw) {
        res.raw = raw_fsync(o.quick ? RAW_FSYNC_S / 2 : RAW_FSYNC_S);
        if (!o.json) print_raw(&res.raw);
        fflush(stdout);
    }
    run_reserve_cases(&o, &res);
    if (res.has_rec) {
        res.rec = recovery_run(&o);
        if (!o.json) print_recovery(&res.rec);
    }
    if (o.json)
        print_json(&o, &res, cpu);
    else
        print_targets(&res);
    return 0;
}
