/*
 * tests/storage/sthelp.h - helpers of the storage tests: temporary data directories, waiting for
 * submissions, digests read on the engine thread.
 */
#ifndef TS_TESTS_STHELP_H
#define TS_TESTS_STHELP_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trastenda/storage.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#endif

/* A fresh directory under $TMPDIR (or /tmp); removed by st_rmdir. */
static void
st_tmpdir(char *out, size_t cap, const char *tag)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, cap, "%s/trastenda-%s-XXXXXX", base != NULL ? base : "/tmp", tag);
    if (mkdtemp(out) == NULL) abort();
}

static void
st_rmdir(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* Quiet logs unless TS_TEST_LOG is set. */
static void
st_log_quiet(void *ctx, trastenda_log_level level, const char *msg)
{
    (void)ctx;
    if (getenv("TS_TEST_LOG") != NULL || level == TRASTENDA_LOG_ERROR)
        fprintf(stderr, "[store] %s\n", msg);
}

/* A synchronous submission: waits for done(). */
struct st_wait {
    trastenda_request req;
    uint32_t done; /* futex-free: polled */
    trastenda_err status;
    uint64_t digest; /* query: the engine's digest */
};

static void
st_wait_done(trastenda_request *req, trastenda_err status)
{
    struct st_wait *w = req->ctx;
    w->status = status;
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
}

static trastenda_err
st_wait_for(struct st_wait *w)
{
    while (!__atomic_load_n(&w->done, __ATOMIC_ACQUIRE))
        usleep(20);
    return w->status;
}

/* One log entry, copied out of a log (trastenda_store_log_scan with st_keep_entry). */
struct st_entry {
    uint8_t buf[1 << 16];
    size_t len;
};

static bool
st_keep_entry(void *ctx, uint64_t seq, const uint8_t *entry, size_t len)
{
    struct st_entry *f = ctx;
    (void)seq;
    if (len > sizeof(f->buf)) abort();
    memcpy(f->buf, entry, len);
    f->len = len;
    return false;
}

/* A follower's request of one entry (u32 length, then the entry); waits for it (the request's
 * entries_applied and entry_err say how it went). */
static trastenda_request
st_follow_one(trastenda_store *st, const uint8_t *entry, size_t len)
{
    static uint8_t framed[4 + (1 << 16)];
    if (len > sizeof(framed) - 4) abort();
    for (int i = 0; i < 4; i++)
        framed[i] = (uint8_t)(len >> (8 * i));
    memcpy(framed + 4, entry, len);
    struct st_wait w;
    memset(&w, 0, sizeof(w));
    w.req.entries = framed;
    w.req.entries_len = 4 + len;
    w.req.n_entries = 1;
    w.req.done = st_wait_done;
    w.req.ctx = &w;
    trastenda_err err;
    while ((err = trastenda_store_submit(st, &w.req)) == TRASTENDA_E_BUSY)
        usleep(100);
    if (err != TRASTENDA_OK || st_wait_for(&w) != TRASTENDA_OK) abort();
    return w.req;
}

/* Submits n commands as one request and waits; retries while busy. */
static trastenda_err
st_run(trastenda_store *st, const trastenda_cmd *cmds, uint32_t n, trastenda_result *res,
       uint64_t *seq)
{
    struct st_wait w;
    memset(&w, 0, sizeof(w));
    w.req.cmds = cmds;
    w.req.n = n;
    w.req.results = res;
    w.req.done = st_wait_done;
    w.req.ctx = &w;
    trastenda_err err;
    while ((err = trastenda_store_submit(st, &w.req)) == TRASTENDA_E_BUSY)
        usleep(100);
    if (err != TRASTENDA_OK) return err;
    err = st_wait_for(&w);
    if (seq != NULL) *seq = w.req.seq;
    return err;
}

static void
st_digest_query(trastenda_request *req, const trastenda_engine *e)
{
    struct st_wait *w = req->ctx;
    w->digest = trastenda_engine_digest(e);
}

/* The live engine's digest, read on the engine thread between batches. */
static uint64_t
st_digest(trastenda_store *st)
{
    struct st_wait w;
    memset(&w, 0, sizeof(w));
    w.req.query = st_digest_query;
    w.req.done = st_wait_done;
    w.req.ctx = &w;
    while (trastenda_store_submit(st, &w.req) == TRASTENDA_E_BUSY)
        usleep(100);
    st_wait_for(&w);
    return w.digest;
}

/* How long a test's ledger query waits for the materializer (the store's default is 5 s; a
 * state write under a sanitizer on a loaded machine can take longer). */
#define ST_MAT_WAIT_MS 60000

/* Waits until the materializer has written everything durable (a ledger query waits for that). */
static void
st_mat_wait(trastenda_store *st)
{
    trastenda_ledger_query q = {.sku = {"-", 1}, .limit = 1, .timeout_ms = ST_MAT_WAIT_MS};
    trastenda_ledger_page *p = NULL;
    if (trastenda_store_ledger(st, &q, &p, NULL, 0) != TRASTENDA_OK || !p->complete) {
        fprintf(stderr, "the materializer did not catch up in %d ms\n", ST_MAT_WAIT_MS);
        abort();
    }
    trastenda_ledger_page_free(p);
}

struct st_state {
    struct st_wait w;
    uint64_t seq;
    bool left_over; /* maintenance is due at the engine's own time: more batches follow */
};

static void
st_state_query(trastenda_request *req, const trastenda_engine *e)
{
    struct st_state *s = req->ctx;
    s->w.digest = trastenda_engine_digest(e);
    s->seq = trastenda_engine_seq(e);
    s->left_over = trastenda_engine_next_due_ms(e) <= trastenda_engine_time_ms(e);
}

/*
 * The digest of the live engine and the sequence it is at (*seq), once the engine has settled and
 * that sequence is durable. Settled: after the last batch, maintenance batches may follow at the
 * same clock while expiries or purges are left over (expire_per_batch_max); a digest read and a
 * durable sequence read apart could then belong to two states. Polled until nothing is left due
 * at the engine's time and the sequence holds still for 20 ms.
 */
static uint64_t
st_settled(trastenda_store *st, uint64_t *seq)
{
    struct st_state s;
    uint64_t prev = UINT64_MAX;
    for (;;) {
        memset(&s, 0, sizeof(s));
        s.w.req.query = st_state_query;
        s.w.req.done = st_wait_done;
        s.w.req.ctx = &s;
        while (trastenda_store_submit(st, &s.w.req) == TRASTENDA_E_BUSY)
            usleep(100);
        st_wait_for(&s.w);
        if (s.seq == prev && !s.left_over) break;
        prev = s.seq;
        usleep(20000);
    }
    while (trastenda_store_durable_seq(st) < s.seq)
        usleep(100);
    *seq = s.seq;
    return s.w.digest;
}

#ifdef TS_WRITER_PATH
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

/*
 * Runs ts-store-writer (tests/storage/store_writer.c) with args (NULL-terminated, without the
 * program name) through posix_spawn - never fork: see the writer's header. Reads its "seq digest"
 * line; returns its exit status (0 ok), -1 when it could not be run or ended by a signal.
 */
static int
st_writer(const char *const *args, uint64_t *seq, uint64_t *digest)
{
    const char *argv[32];
    int n = 0;
    argv[n++] = TS_WRITER_PATH;
    for (int i = 0; args[i] != NULL && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int fds[2];
    if (pipe(fds) != 0) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    pid_t pid;
    int rc = posix_spawn(&pid, TS_WRITER_PATH, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return -1;
    }
    char line[128] = "";
    FILE *f = fdopen(fds[0], "r");
    if (f == NULL || fgets(line, sizeof(line), f) == NULL) line[0] = '\0';
    if (f != NULL) fclose(f);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    unsigned long long s = 0, d = 0;
    if (sscanf(line, "%llu %llu", &s, &d) != 2)
        return WEXITSTATUS(status) ? WEXITSTATUS(status) : -1;
    *seq = s;
    *digest = d;
    return WEXITSTATUS(status);
}
#endif

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif /* TS_TESTS_STHELP_H */
