/*
 * tests/storage/plain_crash.c - kill -9 under load: every acknowledged change survives, and
 * nothing comes back half-applied.
 *
 * Each cycle forks a child that opens the store in one data directory, shared by every cycle so
 * that the state and the log accumulate. The child upserts a small catalog, then PRODUCERS threads
 * submit the load of stload.h through trastenda_store_submit, WINDOW requests in flight each: a
 * RECEIVE of one unit with a key unique to (cycle, thread, index), then a RESERVE of that unit for
 * a day, in one request. For every request whose done() runs with TRASTENDA_OK the child writes
 * to a pipe what was acknowledged: (thread, index), the hold id and the batch sequence. The parent
 * sends SIGKILL at a random moment: usually a random delay after the load started; sometimes at
 * once (often while the child is still opening the store); sometimes just after telling the child
 * to stop and close the store (SIGUSR1), so that the kill lands inside the close. It reads what
 * the pipe still holds, then reopens the store (in a child of its own: see plain.h) - open replays
 * the log and runs the full invariant check - and checks:
 *   (1) the recovered durable sequence >= the highest acknowledged one;
 *   (2) every acknowledged RECEIVE, resubmitted with its key, is a replay (duplicate = 1);
 *   (3) every acknowledged hold exists, open, one unit of the right SKU at the right location;
 *   (4) batches are atomic: the idempotency keys, the open holds, the units on hand and the units
 *       held are the same number (each request adds one of each), never fewer than before the
 *       cycle plus what it acknowledged, never more than what was submitted.
 * Then it closes the store (the close writes the state) and goes on. The child's durability
 * (FSYNC, ASYNC in a quarter of the cycles: both survive a process crash), materializer intervals
 * and log retention vary per cycle, so kills also land during state writes and log cuts.
 *
 * After the cycles, (5): a kill at a random point of the very first open of a fresh directory
 * must leave a directory that opens (TS_CRASH_SKIP_FIRST_OPEN=1 skips this part).
 *
 * Cycles: argv[1], else TS_CRASH_CYCLES, else 20 (10 under TSan); about 10 s in Release on 2
 * cores. TS_SEED replays a run; TS_TEST_LOG=1 prints each cycle. When the tables would fill up,
 * the next cycle starts a new directory.
 */
#include <pthread.h>
#include <sched.h>

#include "stload.h"

#define PRODUCERS        4
#define WINDOW           8
#define PER_THREAD_MAX   4000 /* requests per producer and cycle */
#define CYCLE_MAX        (PRODUCERS * PER_THREAD_MAX)
#define KILL_DELAY_MS    250 /* after the load started */
#define EARLY_KILL_PCT   12  /* cycles killed at once, most of them while the child opens */
#define EARLY_DELAY_MS   60
#define ASYNC_PCT        25 /* cycles whose child writes in ASYNC mode */
#define CLOSE_KILL_PCT   15 /* cycles killed while the child closes the store */
#define CLOSE_DELAY_MS   12 /* a close takes about 10 ms here */
#define READY_TIMEOUT_MS 60000
#define FIRST_OPEN_TRIES 16
#define FIRST_OPEN_US    4000 /* the first open takes about 3 ms */
#define REOPEN_OUT_BYTES 1024

/* ---- the child ---- */

static int child_fd = -1;
static uint32_t child_cycle;
static trastenda_store *child_st;
static struct ld_slot child_slots[PRODUCERS][WINDOW];
static volatile sig_atomic_t child_closing; /* SIGUSR1: stop the load and close the store */

static void
child_on_usr1(int sig)
{
    (void)sig;
    child_closing = 1;
}

static void
child_send(const struct ld_msg *m)
{
    if (write(child_fd, m, sizeof(*m)) != (ssize_t)sizeof(*m)) _exit(5);
}

static void
child_error(const char *what, uint32_t thread, uint32_t idx, trastenda_err code)
{
    fprintf(stderr, "plain_crash child: %s (thread %u, request %u): %s\n", what, thread, idx,
            trastenda_err_name(code));
    struct ld_msg m = {.type = LD_ERROR, .thread = thread, .idx = idx, .code = code};
    child_send(&m);
}

static void
child_done(trastenda_request *req, trastenda_err status)
{
    struct ld_slot *s = req->ctx;
    if (status == TRASTENDA_E_CLOSED && child_closing) {
        /* queued while the store closed: not applied, not acknowledged */
    } else if (status != TRASTENDA_OK) {
        child_error("a request failed", s->thread, s->idx, status);
    } else if (!ld_slot_ok(s)) {
        fprintf(stderr, "plain_crash child: receive: %s %s; reserve: %s %s\n",
                trastenda_err_name(s->res[0].code), s->res[0].message,
                trastenda_err_name(s->res[1].code), s->res[1].message);
        child_error("a command failed", s->thread, s->idx, s->res[1].code);
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

static void *
producer_main(void *arg)
{
    uint32_t t = (uint32_t)(uintptr_t)arg;
    for (uint32_t i = 0; i < PER_THREAD_MAX; i++) {
        struct ld_slot *s = &child_slots[t][i % WINDOW];
        /* Bounded: a request left undone for a minute is a hang the parent reports. */
        for (uint32_t w = 0; __atomic_load_n(&s->busy, __ATOMIC_ACQUIRE); w++) {
            if (w == 600000) child_error("a request was never completed", t, i, TRASTENDA_OK);
            if (child_closing) return NULL;
            usleep(100);
        }
        if (child_closing) return NULL;
        ld_slot_fill(s, child_cycle, t, i, child_done);
        __atomic_store_n(&s->busy, 1, __ATOMIC_RELEASE);
        trastenda_err err;
        while ((err = trastenda_store_submit(child_st, &s->req)) == TRASTENDA_E_BUSY)
            sched_yield();
        if (err != TRASTENDA_OK) {
            if (!child_closing) child_error("submit refused", t, i, err);
            return NULL;
        }
    }
    return NULL;
}

static void __attribute__((noreturn))
child_main(const trastenda_store_config *cfg, uint32_t cycle, int fd)
{
    pt_child_start();
    signal(SIGUSR1, child_on_usr1);
    child_fd = fd;
    child_cycle = cycle;
    char err[512];
    trastenda_err code = trastenda_store_open(cfg, &child_st, err, sizeof(err));
    if (code != TRASTENDA_OK) {
        fprintf(stderr, "plain_crash child: open: %s: %s\n", trastenda_err_name(code), err);
        child_error("open failed", 0, 0, code);
        _exit(2);
    }
    uint64_t seq = 0;
    if (ld_catalog(child_st, &seq) != 0) {
        child_error("the catalog failed", 0, 0, TRASTENDA_OK);
        _exit(3);
    }
    struct ld_msg ready = {.type = LD_READY, .seq = seq};
    child_send(&ready);
    pthread_t th[PRODUCERS];
    for (uint32_t t = 0; t < PRODUCERS; t++)
        if (pthread_create(&th[t], NULL, producer_main, (void *)(uintptr_t)t) != 0) _exit(4);
    for (uint32_t t = 0; t < PRODUCERS; t++)
        pthread_join(th[t], NULL);
    if (!child_closing) {
        struct ld_msg m = {.type = LD_LOADED};
        child_send(&m);
    }
    for (int i = 0; i < 120000 && !child_closing; i++)
        usleep(1000); /* the parent kills it long before */
    if (child_closing) {
        trastenda_store_close(child_st); /* the kill may land in the middle */
        struct ld_msg closed = {.type = LD_CLOSED};
        child_send(&closed);
        sleep(120);
    }
    _exit(6);
}

/* ---- the parent: one cycle ---- */

struct cycle_out {
    struct ld_ack *acks; /* CYCLE_MAX */
    uint32_t n;
    uint64_t seq_max;
    bool ready, loaded, early, closing, closed;
    int64_t kill_after_ms;
};

/* Reads the child's messages until the deadline (1), the end (0) or, when asked, READY (1). */
static int
drain_messages(int fd, struct cycle_out *out, int64_t deadline_ms, bool stop_at_ready)
{
    struct ld_msg m;
    for (;;) {
        ssize_t r = pt_read_full(fd, &m, sizeof(m), deadline_ms);
        if (r <= 0) return r == 0 ? 0 : 1;
        if (m.type == LD_ERROR)
            pt_fail("the child reported an error (thread %u, request %u, %s): see its stderr",
                    m.thread, m.idx, trastenda_err_name((trastenda_err)m.code));
        if (m.type == LD_READY) {
            out->ready = true;
            if (m.seq > out->seq_max) out->seq_max = m.seq;
            if (stop_at_ready) return 1;
        } else if (m.type == LD_LOADED) {
            out->loaded = true;
        } else if (m.type == LD_CLOSED) {
            out->closed = true;
        } else if (m.type == LD_ACK) {
            PT_CHECK(out->n < CYCLE_MAX && m.thread < PRODUCERS && m.idx < PER_THREAD_MAX,
                     "a malformed ack (thread %u, request %u)", m.thread, m.idx);
            out->acks[out->n++] = (struct ld_ack){m.thread, m.idx, m.hold, m.seq};
            if (m.seq > out->seq_max) out->seq_max = m.seq;
        } else {
            pt_fail("an unknown message type %u from the child", m.type);
        }
    }
}

static void
run_child(const trastenda_store_config *cfg, uint32_t cycle, struct rng *rng, struct cycle_out *out)
{
    int fds[2];
    PT_CHECK(pipe(fds) == 0, "pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    PT_CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        child_main(cfg, cycle, fds[1]);
    }
    pt_child_add(pid);
    close(fds[1]);
    int64_t start = pt_now_ms();
    /* Not in the first cycle: a kill during the very first open is first_open()'s case. */
    out->early = cycle > 0 && rng_pct(rng, EARLY_KILL_PCT);
    if (out->early) {
        out->kill_after_ms = rng_below(rng, EARLY_DELAY_MS);
        drain_messages(fds[0], out, start + out->kill_after_ms, false);
    } else {
        drain_messages(fds[0], out, start + READY_TIMEOUT_MS, true);
        PT_CHECK(out->ready, "cycle %u: the child never got ready", cycle);
        out->kill_after_ms = rng_below(rng, KILL_DELAY_MS + 1);
        drain_messages(fds[0], out, pt_now_ms() + out->kill_after_ms, false);
        out->closing = rng_pct(rng, CLOSE_KILL_PCT);
        if (out->closing) { /* stop the load, close, and kill during the close */
            kill(pid, SIGUSR1);
            drain_messages(fds[0], out, pt_now_ms() + rng_below(rng, CLOSE_DELAY_MS), false);
        }
    }
    kill(pid, SIGKILL);
    /* What the child wrote before it died is still in the pipe. */
    int r = drain_messages(fds[0], out, pt_now_ms() + 10000, false);
    PT_CHECK(r == 0, "the pipe stayed open after SIGKILL");
    close(fds[0]);
    bool forced;
    int status = pt_wait_child(pid, pt_now_ms() + 10000, &forced);
    char how[96];
    pt_describe_status(status, how, sizeof(how));
    PT_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
             "cycle %u: the child %s before it was killed", cycle, how);
}

struct reopen {
    const trastenda_store_config *cfg;
    uint32_t delay_us;
};

/* In a child: opens the directory; out: "" or what went wrong. */
static void
reopen_fn(void *arg, void *out)
{
    const struct reopen *r = arg;
    trastenda_store *st = NULL;
    char err[512];
    trastenda_err code = trastenda_store_open(r->cfg, &st, err, sizeof(err));
    ((char *)out)[0] = '\0';
    if (code != TRASTENDA_OK)
        snprintf(out, REOPEN_OUT_BYTES,
                 "killed %u us into the first open of a fresh directory (nothing acknowledged), "
                 "the directory no longer opens: %s: %s",
                 r->delay_us, trastenda_err_name(code), err);
    trastenda_store_close(st);
}

/* The check of a cycle, run in a child (pt_run_forked): the store's keys and sequence after. */
struct verify_arg {
    const trastenda_store_config *cfg;
    const char *what;
    uint32_t cycle;
    const struct ld_expect *x;
};

static void
verify_fn(void *arg, void *out)
{
    const struct verify_arg *v = arg;
    uint64_t *after = out;
    ld_verify(v->cfg, v->what, v->cycle, v->x, &after[0], &after[1]);
}

/*
 * (5) A kill during the very first open of a fresh directory, at a random point of the open:
 * nothing was acknowledged, and the directory must open afterwards (RocksDB writes its LOG and
 * LOCK files before CURRENT, so such a directory holds RocksDB's files but no database yet).
 */
static void
first_open(struct rng *rng)
{
    for (uint32_t i = 0; i < FIRST_OPEN_TRIES; i++) {
        char dir[PT_PATH_BYTES];
        st_tmpdir(dir, sizeof(dir), "crash-first");
        pt_dir_add(dir);
        trastenda_store_config cfg;
        ld_config(&cfg, dir);
        uint32_t delay_us = rng_below(rng, FIRST_OPEN_US);
        fflush(NULL);
        pid_t pid = fork();
        PT_CHECK(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0) {
            pt_child_start();
            trastenda_store *st = NULL;
            char err[512];
            _exit(trastenda_store_open(&cfg, &st, err, sizeof(err)) == TRASTENDA_OK ? 0 : 2);
        }
        pt_child_add(pid);
        usleep(delay_us);
        kill(pid, SIGKILL);
        bool forced;
        pt_wait_child(pid, pt_now_ms() + 10000, &forced);
        struct reopen r = {.cfg = &cfg, .delay_us = delay_us};
        char out[REOPEN_OUT_BYTES];
        pt_run_forked("reopening after a kill during the first open", reopen_fn, &r, out,
                      sizeof(out), 60000);
        PT_CHECK(out[0] == '\0', "%s", out);
        pt_dir_remove(dir);
    }
}

static uint32_t
cycles_wanted(int argc, char **argv)
{
    if (argc > 1) return (uint32_t)strtoul(argv[1], NULL, 10);
    /* ThreadSanitizer runs this several times slower. */
    return (uint32_t)pt_env_u64("TS_CRASH_CYCLES", PT_TSAN ? 10 : 20);
}

int
main(int argc, char **argv)
{
    pt_init("plain_crash");
    uint32_t cycles = cycles_wanted(argc, argv);
    struct rng rng = {pt_seed()};
    char dir[PT_PATH_BYTES];
    st_tmpdir(dir, sizeof(dir), "crash");
    pt_dir_add(dir);
    static struct ld_ack acks[CYCLE_MAX];
    uint64_t keys = 0, seq = 0, acked = 0, early = 0, loaded = 0, closing = 0;
    int64_t t0 = pt_now_ms();
    for (uint32_t cycle = 0; cycle < cycles; cycle++) {
        if (keys + CYCLE_MAX > LD_TABLE_MAX) { /* the tables would fill up: a new directory */
            pt_dir_remove(dir);
            st_tmpdir(dir, sizeof(dir), "crash");
            pt_dir_add(dir);
            keys = seq = 0;
        }
        trastenda_store_config cfg, child_cfg;
        ld_config(&cfg, dir);
        child_cfg = cfg;
        static const uint32_t intervals[] = {2, 20, 1000};
        child_cfg.materialize_interval_ms = intervals[rng_below(&rng, 3)];
        /* Half the cycles write the state at every interval (the longest = the shortest), the
         * others once the log has grown as large as the last write (the default longest). */
        child_cfg.materialize_interval_max_ms =
            rng_pct(&rng, 50) ? child_cfg.materialize_interval_ms : 0;
        child_cfg.log_retention_ms = rng_pct(&rng, 50) ? 0 : 3600 * 1000;
        /* ASYNC survives a process crash too: the write reached the kernel before the ack. */
        if (rng_pct(&rng, ASYNC_PCT)) child_cfg.durability = TRASTENDA_DURABILITY_ASYNC;
        struct cycle_out c = {.acks = acks};
        run_child(&child_cfg, cycle, &rng, &c);
        char what[32];
        snprintf(what, sizeof(what), "cycle %u", cycle);
        struct ld_expect x = {.acks = c.acks,
                              .n = c.n,
                              .seq_max = c.seq_max,
                              .submitted_max = CYCLE_MAX,
                              .keys_before = keys,
                              .seq_before = seq};
        struct verify_arg v = {&cfg, what, cycle, &x};
        uint64_t after[2];
        pt_run_forked(what, verify_fn, &v, after, sizeof(after), 120000);
        keys = after[0];
        seq = after[1];
        acked += c.n;
        early += !c.ready;
        loaded += c.loaded;
        closing += c.closing && !c.closed;
        if (getenv("TS_TEST_LOG") != NULL)
            fprintf(stderr,
                    "cycle %u: killed %s after %" PRId64
                    " ms, %u acknowledged (up to batch %" PRIu64 "), %" PRIu64
                    " keys in the store\n",
                    cycle,
                    !c.ready    ? "during open"
                    : c.early   ? "early"
                    : c.closed  ? "after the close"
                    : c.closing ? "during the close"
                                : "under load",
                    c.kill_after_ms, c.n, c.seq_max, keys);
    }
    if (getenv("TS_CRASH_SKIP_FIRST_OPEN") == NULL) first_open(&rng);
    fprintf(stderr,
            "plain_crash: %u cycles in %.1f s: %" PRIu64 " requests acknowledged and found after "
            "kill -9; %" PRIu64 " kills during open, %" PRIu64 " during close, %" PRIu64
            " after the load had ended\n",
            cycles, (double)(pt_now_ms() - t0) / 1000.0, acked, early, closing, loaded);
    pt_cleanup();
    return 0;
}
