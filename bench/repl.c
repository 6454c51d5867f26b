/*
 * bench/repl.c - trastenda-bench-repl: replication figures (the replication issue).
 *
 * Starts a leader and two followers of the real `trastenda` binary on loopback TCP, each with a
 * temporary data directory (fsync), loads a catalogue, and measures:
 *   1. lag under a paced write load (reserves in batches of 64 from several threads at --rate
 *      reserves/s): a probe thread writes one reserve on the leader, then reads on a follower with
 *      min_seq = that write's sequence; the time between the write's reply and the read's reply is
 *      the follower's lag (it includes one loopback round trip), p50/p99 over the run;
 *   2. stock checks served by the two followers (64 callers each) while the leader takes that load;
 *      (the callers of 2 and 5 are coroutines on one thread making asynchronous calls: coro.h)
 *   3. a follower stopped with SIGSTOP for --stop-seconds under the load: how long after SIGCONT
 *      it is back in sync (its durable sequence reaches the leader's of the previous poll);
 *   4. follower apply throughput: a third follower started from nothing after the runs above
 *      catches up on the leader's whole log: entries and reserves per second;
 *   5. the cost of --sync-replicas 1: durable single reserves from 64 callers sharing one client,
 *      with K = 0 and K = 1 (the leader restarted on the same data), throughput and p99.
 *
 *   trastenda-bench-repl [--seconds N] [--rate R] [--stop-seconds N] [--skus N] [--log-level L]
 *                        [--keep]
 *
 * --log-level sets the nodes' (warn); --keep leaves their data directories and logs (nodeN.log)
 * in the folder it names at the end, to see what a node did during a case.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_NAME "trastenda-bench-repl"
#include "common.h"
#include "coro.h"
#include "server_bench.h"

#define NODES 4

static double seconds = 5, stop_seconds = 10;
static double rate = 100000;
static int n_skus = 10000;
static char dir[256], bin[512];
static const char *node_log_level = "warn";
static bool keep;
static char req_addr[NODES][64], repl_addr[NODES][64];
static pid_t pids[NODES];

/* ---- processes ---- */

static void
node_kill(int n, int sig)
{
    if (pids[n] > 0) {
        kill(pids[n], SIGCONT);
        kill(pids[n], sig);
        waitpid(pids[n], NULL, 0);
        pids[n] = 0;
    }
}

static void
cleanup(void)
{
    for (int n = 0; n < NODES; n++)
        node_kill(n, SIGTERM);
    if (dir[0] && keep) {
        fprintf(stderr, "nodes' data and logs kept in %s\n", dir);
    } else if (dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    }
}

static void
node_start(int n, const char *follow, int sync)
{
    char data[300], skus[32], log[300], k[8];
    snprintf(data, sizeof(data), "%s/data%d", dir, n);
    snprintf(log, sizeof(log), "%s/node%d.log", dir, n);
    snprintf(skus, sizeof(skus), "%d", n_skus + 16);
    snprintf(k, sizeof(k), "%d", sync);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (freopen(log, "a", stderr) == NULL) _exit(126);
        const char *argv[] = {"trastenda",
                              "--listen",
                              req_addr[n],
                              "--repl",
                              repl_addr[n],
                              "--events",
                              "none",
                              "--http",
                              "none",
                              "--data",
                              data,
                              "--skus-max",
                              skus,
                              "--stock-max",
                              skus,
                              "--locations-max",
                              "16",
                              "--holds-max",
                              "12000000",
                              "--keys-max",
                              "12000000",
                              "--lines-max",
                              "12000000",
                              "--orders-max",
                              "1024",
                              "--contexts",
                              "128",
                              "--batch-max",
                              "16384",
                              "--log-level",
                              node_log_level,
                              "--sync-replicas",
                              k,
                              follow != NULL ? "--follow" : NULL,
                              follow,
                              NULL};
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    pids[n] = pid;
}

static trastenda_client *
client_of(int n, uint32_t in_flight)
{
    return sb_client(req_addr[n], in_flight);
}

/* The node's durable sequence (its status reply's envelope), 0 when it does not answer. */
static uint64_t
durable_of(trastenda_client *c)
{
    trastenda_reply r;
    memset(&r, 0, sizeof(r));
    uint64_t seq = 0;
    if (trastenda_status(c, &r) == TRASTENDA_OK && r.code == 0) seq = r.seq;
    trastenda_reply_clear(&r);
    return seq;
}

static void
node_wait(int n)
{
    char log[300];
    snprintf(log, sizeof(log), "%s/node%d.log", dir, n);
    sb_wait(req_addr[n], pids[n], log);
}

static void
wait_caught_up(int n, uint64_t seq, const char *what)
{
    trastenda_client *c = client_of(n, 1);
    for (int i = 0; i < 12000 && durable_of(c) < seq; i++)
        usleep(10000);
    if (durable_of(c) < seq) die("%s: node %d did not reach entry %" PRIu64, what, n, seq);
    trastenda_client_close(c);
}

static void
load_catalogue(void)
{
    trastenda_client *c = client_of(0, 4);
    sb_load(c, n_skus, 1000000000);
    trastenda_client_close(c);
}

/* ---- load: paced reserves in batches of 64 ---- */

#define WRITERS 4
#define BATCH   64

static uint64_t key_seq;
static volatile int load_stop;
static uint64_t load_ops, load_errors; /* atomic */

static void
reserve_args(trastenda_args *a, trastenda_cline *ln, char *sku, char *key, uint64_t *rng)
{
    *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
    snprintf(sku, 16, "S%d", (int)((*rng >> 33) % (uint64_t)n_skus));
    *ln = (trastenda_cline){sku, "W1", 1, 0};
    trastenda_args_init(a, "reserve");
    a->lines = ln;
    a->n_lines = 1;
    a->ttl_ms = 86400000;
    snprintf(key, 32, "k%" PRIu64, __atomic_fetch_add(&key_seq, 1, __ATOMIC_RELAXED));
    a->key = key;
}

static void *
writer_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    trastenda_client *c = client_of(0, 2);
    uint64_t rng = 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1);
    static __thread trastenda_args a[BATCH];
    static __thread trastenda_reply r[BATCH];
    static __thread trastenda_cline ln[BATCH];
    static __thread char skus[BATCH][16], keys[BATCH][32];
    double per_writer = rate / WRITERS;
    uint64_t t0 = now_ns(), sent = 0;
    while (!load_stop) {
        /* Paced: batch k leaves at t0 + k * BATCH / per_writer (no faster; late ones at once). */
        uint64_t due = t0 + (uint64_t)((double)sent / per_writer * 1e9);
        uint64_t now = now_ns();
        if (due > now) usleep((useconds_t)((due - now) / 1000));
        for (int i = 0; i < BATCH; i++)
            reserve_args(&a[i], &ln[i], skus[i], keys[i], &rng);
        trastenda_err e = trastenda_call_batch(c, a, BATCH, r);
        for (int i = 0; i < BATCH; i++) {
            if (e != TRASTENDA_OK || r[i].code != 0) __atomic_fetch_add(&load_errors, 1, 0);
            trastenda_reply_clear(&r[i]);
        }
        __atomic_fetch_add(&load_ops, BATCH, __ATOMIC_RELAXED);
        sent += BATCH;
    }
    trastenda_client_close(c);
    return NULL;
}

static pthread_t writers[WRITERS];

static void
load_start(void)
{
    load_stop = 0;
    __atomic_store_n(&load_ops, 0, __ATOMIC_RELAXED);
    for (int i = 0; i < WRITERS; i++)
        pthread_create(&writers[i], NULL, writer_main, (void *)(intptr_t)i);
}

static void
load_end(void)
{
    load_stop = 1;
    for (int i = 0; i < WRITERS; i++)
        pthread_join(writers[i], NULL);
}

/* ---- 1. lag probe ---- */

struct probe {
    int follower;
    struct hist h;
    uint64_t samples, errors;
};

static void *
probe_main(void *arg)
{
    struct probe *p = arg;
    trastenda_client *lc = client_of(0, 1), *fc = client_of(p->follower, 1);
    uint64_t rng = 12345;
    trastenda_args a;
    trastenda_cline ln;
    char sku[16], key[32];
    while (!load_stop) {
        reserve_args(&a, &ln, sku, key, &rng);
        trastenda_reply w;
        memset(&w, 0, sizeof(w));
        if (trastenda_call(lc, &a, &w) != TRASTENDA_OK || w.code != 0) {
            p->errors++;
            trastenda_reply_clear(&w);
            continue;
        }
        uint64_t t0 = now_ns();
        trastenda_args s;
        trastenda_args_init(&s, "stock");
        s.sku = sku;
        s.min_seq = w.seq;
        trastenda_reply rr;
        memset(&rr, 0, sizeof(rr));
        trastenda_err e = trastenda_call(fc, &s, &rr);
        uint64_t t1 = now_ns();
        if (e == TRASTENDA_OK && rr.code == 0 && rr.seq >= w.seq) {
            hist_add(&p->h, t1 - t0);
            p->samples++;
        } else {
            p->errors++;
        }
        trastenda_reply_clear(&w);
        trastenda_reply_clear(&rr);
        usleep(2000);
    }
    trastenda_client_close(lc);
    trastenda_client_close(fc);
    return NULL;
}

/* ---- 2. stock checks on followers ---- */

#define READERS 64

struct reader {
    trastenda_client *c;
    uint64_t ops, errors;
    int id;
};

/* The callers of cases 2 and 5 are coroutines on one thread (bench/coro.h), as in
 * trastenda-bench-server and trastenda-bench. */
static void
reader_run(void *arg)
{
    struct reader *k = arg;
    uint64_t rng = 0x51ed2701ull * (uint64_t)(k->id + 7);
    char sku[16];
    while (!load_stop) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        snprintf(sku, sizeof(sku), "S%d", (int)((rng >> 33) % (uint64_t)n_skus));
        trastenda_args a;
        trastenda_args_init(&a, "stock");
        a.sku = sku;
        trastenda_reply r;
        memset(&r, 0, sizeof(r));
        if (co_call(k->c, &a, 1, &r) == TRASTENDA_OK && r.code == 0)
            k->ops++;
        else
            k->errors++;
        trastenda_reply_clear(&r);
    }
}

/* ---- 5. single reserves from 64 callers ---- */

struct caller {
    trastenda_client *c;
    struct hist h;
    uint64_t ops, errors;
    int id;
};

static void
caller_run(void *arg)
{
    struct caller *k = arg;
    uint64_t rng = 0xabcdefull * (uint64_t)(k->id + 3);
    trastenda_args a;
    trastenda_cline ln;
    char sku[16], key[32];
    while (!load_stop) {
        reserve_args(&a, &ln, sku, key, &rng);
        trastenda_reply r;
        memset(&r, 0, sizeof(r));
        uint64_t t0 = now_ns();
        if (co_call(k->c, &a, 1, &r) == TRASTENDA_OK && r.code == 0) {
            hist_add(&k->h, now_ns() - t0);
            k->ops++;
        } else {
            k->errors++;
        }
        trastenda_reply_clear(&r);
    }
}

static void
single_reserves(double *ops_s, double *p99_us, uint64_t *errors)
{
    trastenda_client *c = client_of(0, 4);
    static struct caller cs[64];
    load_stop = 0;
    uint64_t t0 = now_ns();
    struct co_sched *sc = co_sched_new();
    co_sched_cork_client(sc, c);
    for (int i = 0; i < 64; i++) {
        memset(&cs[i], 0, sizeof(cs[i]));
        cs[i].c = c;
        cs[i].id = i;
        co_spawn(sc, caller_run, &cs[i]);
    }
    pthread_t th;
    co_sched_start(sc, &th);
    usleep((useconds_t)(seconds * 1e6));
    load_stop = 1;
    pthread_join(th, NULL);
    static struct hist h;
    memset(&h, 0, sizeof(h));
    uint64_t ops = 0;
    *errors = 0;
    for (int i = 0; i < 64; i++) {
        hist_merge(&h, &cs[i].h);
        ops += cs[i].ops;
        *errors += cs[i].errors;
    }
    *ops_s = (double)ops / ((double)(now_ns() - t0) / 1e9);
    *p99_us = hist_quantile(&h, 0.99) / 1e3;
    trastenda_client_close(c);
}

int
main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc)
            rate = atof(argv[++i]);
        else if (strcmp(argv[i], "--stop-seconds") == 0 && i + 1 < argc)
            stop_seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--skus") == 0 && i + 1 < argc)
            n_skus = atoi(argv[++i]);
        else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc)
            node_log_level = argv[++i];
        else if (strcmp(argv[i], "--keep") == 0)
            keep = true;
        else {
            fprintf(stderr, "usage: trastenda-bench-repl [--seconds N] [--rate R] "
                            "[--stop-seconds N] [--skus N] [--log-level L] [--keep]\n");
            return 2;
        }
    }
    if (seconds <= 0 || rate <= 0 || stop_seconds < 0 || n_skus < 1)
        die("--seconds, --rate and --skus must be positive");
    signal(SIGPIPE, SIG_IGN);
    sb_sibling(argv[0], "trastenda", bin, sizeof(bin));
    snprintf(dir, sizeof(dir), "/tmp/trastenda-bench-repl-XXXXXX");
    if (mkdtemp(dir) == NULL) die("mkdtemp");
    atexit(cleanup);
    int port = 20000 + (int)(getpid() % 15000);
    for (int n = 0; n < NODES; n++) {
        snprintf(req_addr[n], sizeof(req_addr[n]), "tcp://127.0.0.1:%d", port + 2 * n);
        snprintf(repl_addr[n], sizeof(repl_addr[n]), "tcp://127.0.0.1:%d", port + 2 * n + 1);
    }
    char model[200];
    cpu_model(model, sizeof(model));
    printf(BENCH_NAME ": %ld cores (%s), %s build, fsync, leader + 2 followers on loopback TCP, "
                      "%d SKUs, %.0f s per case\n\n",
           sysconf(_SC_NPROCESSORS_ONLN), model, build_type(), n_skus, seconds);
    node_start(0, NULL, 0);
    node_wait(0);
    node_start(1, repl_addr[0], 0);
    node_start(2, repl_addr[0], 0);
    node_wait(1);
    node_wait(2);
    load_catalogue();
    char a[40], b[40];

    /* 1: lag under the paced load. */
    trastenda_client *lead = client_of(0, 1);
    load_start();
    static struct probe pr;
    pr.follower = 1;
    pthread_t pth;
    pthread_create(&pth, NULL, probe_main, &pr);
    uint64_t t0 = now_ns();
    usleep((useconds_t)(seconds * 1e6));
    double el = (double)(now_ns() - t0) / 1e9;
    uint64_t writes = __atomic_load_n(&load_ops, __ATOMIC_RELAXED);
    load_end();
    pthread_join(pth, NULL);
    double write_rate = (double)writes / el;
    printf("paced writes (asked %s/s): %s reserves/s durable, %" PRIu64 " errors\n", num(a, rate),
           num(b, write_rate), __atomic_load_n(&load_errors, __ATOMIC_RELAXED));
    printf("  lag (write reply -> read with min_seq on a follower): p50 %.2f ms, p99 %.2f ms, "
           "max %.2f ms (%" PRIu64 " samples, %" PRIu64 " errors)\n",
           hist_quantile(&pr.h, 0.50) / 1e6, hist_quantile(&pr.h, 0.99) / 1e6,
           hist_quantile(&pr.h, 1.0) / 1e6, pr.samples, pr.errors);
    fflush(stdout);

    /* 2: stock checks on both followers while the leader takes the paced load. */
    load_start();
    static struct reader rd[2 * READERS];
    trastenda_client *fc[2] = {client_of(1, 4), client_of(2, 4)};
    struct co_sched *rs = co_sched_new();
    co_sched_cork_client(rs, fc[0]);
    co_sched_cork_client(rs, fc[1]);
    for (int i = 0; i < 2 * READERS; i++) {
        rd[i] = (struct reader){fc[i / READERS], 0, 0, i};
        co_spawn(rs, reader_run, &rd[i]);
    }
    pthread_t rth;
    co_sched_start(rs, &rth);
    t0 = now_ns();
    usleep((useconds_t)(seconds * 1e6));
    el = (double)(now_ns() - t0) / 1e9;
    uint64_t writes2 = __atomic_load_n(&load_ops, __ATOMIC_RELAXED);
    load_end();
    uint64_t reads = 0, rerr = 0;
    pthread_join(rth, NULL);
    for (int i = 0; i < 2 * READERS; i++) {
        reads += rd[i].ops;
        rerr += rd[i].errors;
    }
    writes += writes2;
    printf("stock checks served by 2 followers (64 callers each): %s/s (%" PRIu64
           " errors), while the leader took %s reserves/s\n",
           num(a, (double)reads / el), rerr, num(b, (double)writes2 / el));
    fflush(stdout);

    /* 3: a follower stopped under the load. */
    trastenda_client *f2 = client_of(2, 1);
    load_start();
    usleep(500000);
    kill(pids[2], SIGSTOP);
    usleep((useconds_t)(stop_seconds * 1e6));
    uint64_t lead_at = durable_of(lead);
    kill(pids[2], SIGCONT);
    uint64_t tc = now_ns(), prev = durable_of(lead);
    double back_s = -1;
    for (int i = 0; i < 6000; i++) {
        uint64_t f = durable_of(f2);
        if (f >= prev) {
            back_s = (double)(now_ns() - tc) / 1e9;
            break;
        }
        prev = durable_of(lead);
        usleep(5000);
    }
    double stop_rate = (double)__atomic_load_n(&load_ops, __ATOMIC_RELAXED) /
                       ((double)(now_ns() - tc) / 1e9 + stop_seconds + 0.5);
    uint64_t phase3 = __atomic_load_n(&load_ops, __ATOMIC_RELAXED);
    load_end();
    printf("follower stopped %.0f s under %s reserves/s (the leader at entry %" PRIu64
           " when it resumed): back in sync %.2f s after it resumed\n",
           stop_seconds, num(a, stop_rate), lead_at, back_s);
    fflush(stdout);

    /* 4: a new follower applies the whole log, timed from when it answers (its tables are made
     * before that). */
    uint64_t end = durable_of(lead);
    node_start(3, repl_addr[0], 0);
    node_wait(3);
    trastenda_client *f3 = client_of(3, 1);
    uint64_t d0 = durable_of(f3), t4 = now_ns();
    trastenda_client_close(f3);
    wait_caught_up(3, end, "catch-up");
    double el4 = (double)(now_ns() - t4) / 1e9;
    char c3[40];
    double per_entry = (double)(writes + phase3) / (double)end;
    printf("a new follower applied entries %" PRIu64 "..%" PRIu64 " in %.2f s: %s entries/s, "
           "~%s reserves/s (%.0f a entry; the leader took them at %s/s)\n",
           d0, end, el4, num(a, (double)(end - d0) / el4),
           num(b, per_entry * (double)(end - d0) / el4), per_entry, num(c3, write_rate));
    node_kill(3, SIGTERM);
    fflush(stdout);

    /* 5: --sync-replicas 1 against 0, the same 64 callers. */
    double k0, k1, p0, p1;
    uint64_t e0, e1;
    single_reserves(&k0, &p0, &e0);
    trastenda_client_close(lead);
    node_kill(0, SIGTERM);
    node_start(0, NULL, 1);
    node_wait(0);
    { /* the followers are back when a write is acknowledged (it waits for one of them) */
        trastenda_client *c = client_of(0, 1);
        uint64_t rng = 99;
        for (int i = 0; i < 100; i++) {
            trastenda_args w;
            trastenda_cline ln;
            char sku[16], key[32];
            reserve_args(&w, &ln, sku, key, &rng);
            trastenda_reply r;
            memset(&r, 0, sizeof(r));
            bool ok = trastenda_call(c, &w, &r) == TRASTENDA_OK && r.code == 0;
            trastenda_reply_clear(&r);
            if (ok) break;
        }
        trastenda_client_close(c);
    }
    single_reserves(&k1, &p1, &e1);
    printf("64 callers, single durable reserves: K=0 %s/s p99 %.2f ms (%" PRIu64
           " errors); --sync-replicas 1 %s/s p99 %.2f ms (%" PRIu64 " errors): %.0f%% kept\n",
           num(a, k0), p0 / 1e3, e0, num(b, k1), p1 / 1e3, e1, 100.0 * k1 / k0);
    printf("\ntargets: lag p99 <= 2 ms at 100,000 writes/s; follower apply > leader write rate; "
           "sync-replicas 1 keeps >= 70%%; back in sync <= 2 s after a 10 s stop\n");
    trastenda_client_close(fc[0]);
    trastenda_client_close(fc[1]);
    trastenda_client_close(f2);
    return 0;
}
