/*
 * bench/server.c - trastenda-bench-server: the server's first figures (the server issue).
 *
 * Starts the real `trastenda` binary on loopback TCP with a temporary data directory (fsync), loads
 * a catalogue, and drives it from C concurrent callers in this process sharing ONE client
 * (automatic batching), each waiting for its result before its next call; the callers are
 * coroutines on one thread making asynchronous calls (bench/coro.h), or with --caller-threads 0
 * a blocked thread each:
 *   - stock checks of a random SKU, C = 1, 16, 64;
 *   - durable single-line reserves (qty 1, an idempotency key each), C = 1, 16, 64;
 *   - the same reserves with an explicit batch of 64 operations per request, C = 1, 16, 64.
 * Beside them, a bare nng REQ/REP echo measured in the same run at the same concurrency (the
 * transport's own cost), so the server's overhead shows as a ratio. Latencies come from a
 * log-bucketed histogram (p50, p99), throughput from the wall clock.
 *
 *   trastenda-bench-server [--seconds N] [--skus N] [--caller-threads T] [--in-flight R]
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#define BENCH_NAME "trastenda-bench-server"
#include "common.h"
#include "coro.h"
#include "server_bench.h"

static double seconds = 5;
static int n_skus = 100000;
static bool huge_pages;                      /* --huge-pages: passed to the server */
static const char *server_cpus, *bench_cpus; /* --server-cpus (the server's --cpus), --bench-cpus */
static char dir[256], addr[64], echo_addr[64];
static pid_t server_pid;

/* ---- the server process ---- */

static void
server_stop(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
        server_pid = 0;
    }
    if (dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    }
}

static void
server_start(const char *self)
{
    char bin[512];
    sb_sibling(self, "trastenda", bin, sizeof(bin));
    snprintf(dir, sizeof(dir), "/tmp/trastenda-bench-server-XXXXXX");
    if (mkdtemp(dir) == NULL) exit(1);
    char data[300], skus[32];
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(skus, sizeof(skus), "%d", n_skus + 16);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        char log[300];
        snprintf(log, sizeof(log), "%s/server.log", dir);
        if (freopen(log, "w", stderr) == NULL) _exit(126);
        const char *args[40] = {
            "trastenda", "--listen",    addr,      "--events",        "none",    "--repl",
            "none",      "--http",      "none",    "--data",          data,      "--skus-max",
            skus,        "--stock-max", skus,      "--locations-max", "16",      "--holds-max",
            "8000000",   "--keys-max",  "8000000", "--lines-max",     "8000000", "--orders-max",
            "1024",      "--contexts",  "128",     "--batch-max",     "16384",   "--log-level",
            "warn"};
        int n = 31;
        if (huge_pages) {
            args[n++] = "--huge-pages";
            args[n++] = "true";
        }
        if (server_cpus != NULL) {
            args[n++] = "--cpus";
            args[n++] = server_cpus;
        }
        args[n] = NULL;
        execv(bin, (char *const *)args);
        _exit(127);
    }
    server_pid = pid;
    atexit(server_stop);
}

/* ---- the echo baseline ---- */

#define ECHO_CTX 128

struct echo_ctx {
    nng_socket s;
    nng_ctx ctx;
    nng_aio *aio;
    int sending;
};

static void
echo_cb(void *arg)
{
    struct echo_ctx *e = arg;
    if (nng_aio_result(e->aio) != 0) {
        if (e->sending) nng_msg_free(nng_aio_get_msg(e->aio));
        return;
    }
    if (!e->sending) {
        e->sending = 1;
        nng_ctx_send(e->ctx, e->aio); /* the same message back */
    } else {
        e->sending = 0;
        nng_ctx_recv(e->ctx, e->aio);
    }
}

static nng_socket echo_sock;
static struct echo_ctx echoes[ECHO_CTX];

static void
echo_start(void)
{
    if (nng_rep0_open(&echo_sock) != 0 || nng_listen(echo_sock, echo_addr, NULL, 0) != 0) exit(1);
    for (int i = 0; i < ECHO_CTX; i++) {
        nng_aio_alloc(&echoes[i].aio, echo_cb, &echoes[i]);
        nng_ctx_open(&echoes[i].ctx, echo_sock);
        nng_ctx_recv(echoes[i].ctx, echoes[i].aio);
    }
}

/* ---- the runs ---- */

enum work {
    ECHO,
    STOCK,
    RESERVE,
    RESERVE_B64
};

/* A caller's requests and replies: on the heap, since coroutine callers share their thread. */
struct calls {
    trastenda_args a[64];
    trastenda_reply r[64];
    trastenda_cline lines[64];
    char skus[64][16], keys[64][32];
};

struct worker {
    pthread_t th;
    int id;
    enum work w;
    trastenda_client *c;
    nng_socket echo;
    volatile int *stop;
    struct hist h;
    uint64_t ops, errors;
    struct calls *calls;
};

static uint64_t key_seq;
static const char *only;       /* --only: one case */
static int only_callers;       /* --callers: one concurrency; 0 all */
static uint32_t in_flight = 4; /* --in-flight: requests the shared client keeps in flight */
static uint32_t caller_threads = 1;

static void
work_run(void *arg)
{
    struct worker *k = arg;
    uint64_t rng = 0x9e3779b97f4a7c15ull * (uint64_t)(k->id + 1);
    nng_ctx ctx;
    if (k->w == ECHO) nng_ctx_open(&ctx, k->echo);
    trastenda_args *a = k->calls->a;
    trastenda_reply *r = k->calls->r;
    trastenda_cline *lines = k->calls->lines;
    char(*skus)[16] = k->calls->skus, (*keys)[32] = k->calls->keys;
    while (!*k->stop) {
        uint64_t t0 = now_ns();
        if (k->w == ECHO) {
            nng_aio *aio;
            nng_aio_alloc(&aio, NULL, NULL);
            nng_msg *m;
            nng_msg_alloc(&m, 64);
            nng_aio_set_msg(aio, m);
            nng_ctx_send(ctx, aio);
            nng_aio_wait(aio);
            nng_ctx_recv(ctx, aio);
            nng_aio_wait(aio);
            if (nng_aio_result(aio) == 0)
                nng_msg_free(nng_aio_get_msg(aio));
            else
                k->errors++;
            nng_aio_free(aio);
            k->ops++;
        } else {
            uint32_t n = k->w == RESERVE_B64 ? 64 : 1;
            for (uint32_t i = 0; i < n; i++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                snprintf(skus[i], sizeof(skus[i]), "S%d", (int)((rng >> 33) % (uint64_t)n_skus));
                if (k->w == STOCK) {
                    trastenda_args_init(&a[i], "stock");
                    a[i].sku = skus[i];
                } else {
                    trastenda_args_init(&a[i], "reserve");
                    lines[i] = (trastenda_cline){skus[i], "W1", 1, 0};
                    a[i].lines = &lines[i];
                    a[i].n_lines = 1;
                    a[i].ttl_ms = 86400000;
                    snprintf(keys[i], sizeof(keys[i]), "k%" PRIu64,
                             __atomic_fetch_add(&key_seq, 1, __ATOMIC_RELAXED));
                    a[i].key = keys[i];
                }
            }
            trastenda_err e = co_inside() ? co_call(k->c, a, n, r)
                              : n == 1    ? trastenda_call(k->c, &a[0], &r[0])
                                          : trastenda_call_batch(k->c, a, n, r);
            for (uint32_t i = 0; i < n; i++) {
                if (e != TRASTENDA_OK || r[i].code != TRASTENDA_OK) k->errors++;
                trastenda_reply_clear(&r[i]);
            }
            k->ops += n;
        }
        hist_add(&k->h, now_ns() - t0);
    }
    if (k->w == ECHO) nng_ctx_close(ctx);
}

static void *
work_main(void *arg)
{
    work_run(arg);
    return NULL;
}

struct result {
    double ops_s, p50, p99;
    uint64_t errors;
};

static struct result
run(enum work w, int callers, trastenda_client *c, nng_socket echo)
{
    static struct worker ws[64];
    static struct calls *calls[64];
    volatile int stop = 0;
    for (int i = 0; i < callers; i++) {
        memset(&ws[i], 0, sizeof(ws[i]));
        ws[i].id = i;
        ws[i].w = w;
        ws[i].c = c;
        ws[i].echo = echo;
        ws[i].stop = &stop;
        if (calls[i] == NULL && (calls[i] = calloc(1, sizeof(*calls[i]))) == NULL) exit(1);
        ws[i].calls = calls[i];
    }
    /* The client's callers as coroutines (bench/coro.h); the bare echo keeps a thread each. */
    uint32_t t = w == ECHO                            ? 0
                 : caller_threads < (uint32_t)callers ? caller_threads
                                                      : (uint32_t)callers;
    pthread_t sth[64];
    uint64_t t0 = now_ns();
    if (t == 0)
        for (int i = 0; i < callers; i++)
            pthread_create(&ws[i].th, NULL, work_main, &ws[i]);
    else {
        struct co_sched *sc[64];
        for (uint32_t j = 0; j < t; j++) {
            sc[j] = co_sched_new();
            co_sched_cork_client(sc[j], c);
        }
        for (int i = 0; i < callers; i++)
            co_spawn(sc[(uint32_t)i % t], work_run, &ws[i]);
        for (uint32_t j = 0; j < t; j++)
            co_sched_start(sc[j], &sth[j]);
    }
    usleep((useconds_t)(seconds * 1e6));
    stop = 1;
    static struct hist h;
    memset(&h, 0, sizeof(h));
    uint64_t ops = 0, errors = 0;
    for (uint32_t j = 0; j < t; j++)
        pthread_join(sth[j], NULL);
    for (int i = 0; i < callers; i++) {
        if (t == 0) pthread_join(ws[i].th, NULL);
        hist_merge(&h, &ws[i].h);
        ops += ws[i].ops;
        errors += ws[i].errors;
    }
    double el = (double)(now_ns() - t0) / 1e9;
    return (struct result){(double)ops / el, hist_quantile(&h, 0.50) / 1e3,
                           hist_quantile(&h, 0.99) / 1e3, errors};
}

int
main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--skus") == 0 && i + 1 < argc)
            n_skus = atoi(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strcmp(argv[i], "--callers") == 0 && i + 1 < argc && atoi(argv[i + 1]) >= 1 &&
                 atoi(argv[i + 1]) <= 64)
            only_callers = atoi(argv[++i]);
        else if (strcmp(argv[i], "--in-flight") == 0 && i + 1 < argc && atoi(argv[i + 1]) >= 1 &&
                 atoi(argv[i + 1]) <= 64)
            in_flight = (uint32_t)atoi(argv[++i]);
        else if (strcmp(argv[i], "--huge-pages") == 0)
            huge_pages = true;
        else if (strcmp(argv[i], "--server-cpus") == 0 && i + 1 < argc)
            server_cpus = argv[++i];
        else if (strcmp(argv[i], "--bench-cpus") == 0 && i + 1 < argc)
            bench_cpus = argv[++i];
        else if (strcmp(argv[i], "--caller-threads") == 0 && i + 1 < argc &&
                 atoi(argv[i + 1]) >= 0 && atoi(argv[i + 1]) <= 64)
            caller_threads = (uint32_t)atoi(argv[++i]);
        else {
            fprintf(
                stderr,
                "usage: trastenda-bench-server [--seconds N] [--skus N] "
                "[--caller-threads T (1; 0: a thread per caller)]\n"
                "         [--only echo|stock|reserve|batch64] [--callers C (1..64)]\n"
                "         [--in-flight R (requests in flight in the shared client; 4)]\n"
                "         [--huge-pages] (the server's flag) [--server-cpus LIST (its --cpus)]\n"
                "         [--bench-cpus CPU (this process's CPU: one, or a first-last range)]\n"
                "  --only and --callers run one case or one concurrency (to profile it)\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    int port = 20000 + (int)(getpid() % 20000);
    snprintf(addr, sizeof(addr), "tcp://127.0.0.1:%d", port);
    snprintf(echo_addr, sizeof(echo_addr), "tcp://127.0.0.1:%d", port + 1);
    server_start(argv[0]);
    if (bench_cpus != NULL) { /* after the fork: the server does not inherit it */
        cpu_set_t set;
        CPU_ZERO(&set);
        int lo = -1, hi = -1;
        if (sscanf(bench_cpus, "%d-%d", &lo, &hi) == 1) hi = lo;
        if (lo < 0 || hi < lo || hi >= CPU_SETSIZE) die("--bench-cpus %s: N or N-M", bench_cpus);
        for (int k = lo; k <= hi; k++)
            CPU_SET(k, &set);
        if (sched_setaffinity(0, sizeof(set), &set) != 0) die("--bench-cpus %s", bench_cpus);
    }
    char log[300];
    snprintf(log, sizeof(log), "%s/server.log", dir);
    sb_wait(addr, server_pid, log);
    trastenda_client *c = sb_client(addr, in_flight);
    sb_load(c, n_skus, 1000000);
    sb_wait_materialized(c, log);
    echo_start();
    nng_socket echo;
    if (nng_req0_open(&echo) != 0 || nng_dial(echo, echo_addr, NULL, 0) != 0) return 1;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("trastenda-bench-server: %ld cores, server durability fsync, %d SKUs, %.0f s per case, "
           "loopback TCP, one shared client; %s",
           cores, n_skus, seconds, huge_pages ? "server --huge-pages; " : "");
    if (server_cpus != NULL) printf("server on CPUs %s; ", server_cpus);
    if (bench_cpus != NULL) printf("bench on CPUs %s; ", bench_cpus);
    if (caller_threads == 0)
        printf("a thread per caller\n\n");
    else
        printf("callers as coroutines on %u thread%s (the echo: a thread per caller)\n\n",
               caller_threads, caller_threads == 1 ? "" : "s");
    printf("%-34s %8s %12s %10s %10s %8s\n", "case", "callers", "ops/s", "p50 us", "p99 us",
           "errors");
    int cs[] = {1, 16, 64};
    size_t ncs = 3;
    if (only_callers != 0) {
        cs[0] = only_callers;
        ncs = 1;
    }
    const struct {
        enum work w;
        const char *name;
        const char *tag;
    } cases[] = {{ECHO, "bare nng REQ/REP echo", "echo"},
                 {STOCK, "stock checks", "stock"},
                 {RESERVE, "durable reserves", "reserve"},
                 {RESERVE_B64, "durable reserves, batches of 64", "batch64"}};
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
        for (size_t i = 0; i < ncs; i++) {
            if (only != NULL && strcmp(only, cases[k].tag) != 0) continue;
            struct result r = run(cases[k].w, cs[i], c, echo);
            printf("%-34s %8d %12.0f %10.1f %10.1f %8" PRIu64 "\n", cases[k].name, cs[i], r.ops_s,
                   r.p50, r.p99, r.errors);
            fflush(stdout);
        }
    printf("\ntargets (64 callers, fsync): stock checks >= 200,000/s; durable reserves >= "
           "120,000/s; batches of 64 >= 600,000 reserves/s; 1 caller: stock p99 <= 1.5x the "
           "echo's p99\n");
    trastenda_client_close(c);
    nng_close(echo);
    nng_close(echo_sock);
    return 0;
}
