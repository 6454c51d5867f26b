/*
 * tests/bench/bench_smoke.c - trastenda-bench against a real server, in a few seconds.
 *
 * Starts `trastenda` on an ipc:// path in a temporary directory (stopped by its PID whatever
 * happens: atexit, and the kernel kills it if this test dies, PR_SET_PDEATHSIG), then runs:
 *   - flash-sale in order mode and in hold mode (B = 4): exit 0, PASS, nothing oversold;
 *   - a flash sale that cannot sell out within its limit: FAIL and exit 1;
 *   - a flash sale whose SKU another client gives one unit more while it runs: the check finds
 *     the oversell (sold above the initial stock, on hand changed), FAIL and exit 1;
 *   - a flash sale during which the server is stopped (SIGSTOP) for 300 ms, with 50 ms client
 *     timeouts: the callers retry their takes with the same keys, and the sale still PASSes with
 *     every unit sold once and every acknowledged order read back;
 *   - short checkout and order-intake runs with --json: exit 0, operations counted, no errors;
 *   - a bad flag: exit 2 before anything connects;
 *   - replica-reads against a second server, a leader, and its follower (both on ipc:// paths,
 *     replication too): exit 0, reads counted on the follower, lag sampled, the sale PASS;
 *     a missing or bad --follower: exit 2 before anything connects.
 * The servers bind nothing but ipc:// paths in the temporary directory.
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "trastenda/client.h"

static char dir[256], addr[300];
static pid_t server_pid, repl_pids[2];
static char leader_addr[300], follower_addr[300];

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "bench_smoke: FAIL %s:%d: ", __FILE__, __LINE__);                      \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static void
cleanup(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
        server_pid = 0;
    }
    for (int i = 0; i < 2; i++)
        if (repl_pids[i] > 0) {
            kill(repl_pids[i], SIGKILL);
            waitpid(repl_pids[i], NULL, 0);
            repl_pids[i] = 0;
        }
    if (dir[0] != '\0') {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "bench_smoke: could not remove %s\n", dir);
    }
}

static void
on_signal(int sig)
{
    (void)sig;
    cleanup();
    _exit(1);
}

static void
server_start(void)
{
    char data[300], log[300];
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(log, sizeof(log), "%s/server.log", dir);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (freopen(log, "w", stderr) == NULL) _exit(126);
        /* Replication and HTTP listen on default TCP ports: off, so that the test binds nothing
         * but its ipc:// path. */
        const char *argv[] = {"trastenda", "--listen",    addr,    "--events",
                              "none",      "--repl",      "none",  "--http",
                              "none",      "--data",      data,    "--skus-max",
                              "10000",     "--stock-max", "20000", "--locations-max",
                              "16",        "--log-level", "warn",  NULL};
        execv(TS_SERVER_PATH, (char *const *)argv);
        _exit(127);
    }
    server_pid = pid;
}

/* Starts node n of the replicated pair: 0 the leader, 1 its follower; returns its PID. */
static pid_t
repl_node_start(int n)
{
    char data[300], log[300], repl[300], leader_repl[300];
    snprintf(data, sizeof(data), "%s/data-%s", dir, n == 0 ? "leader" : "follower");
    snprintf(log, sizeof(log), "%s/%s.log", dir, n == 0 ? "leader" : "follower");
    snprintf(repl, sizeof(repl), "ipc://%s/%s-repl.ipc", dir, n == 0 ? "leader" : "follower");
    snprintf(leader_repl, sizeof(leader_repl), "ipc://%s/leader-repl.ipc", dir);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (freopen(log, "w", stderr) == NULL) _exit(126);
        const char *argv[32] = {"trastenda",
                                "--listen",
                                n == 0 ? leader_addr : follower_addr,
                                "--repl",
                                repl,
                                "--http",
                                "none",
                                "--events",
                                "none",
                                "--data",
                                data,
                                "--skus-max",
                                "1000",
                                "--stock-max",
                                "2000",
                                "--locations-max",
                                "16",
                                "--log-level",
                                "warn"};
        int k = 19;
        if (n == 1) {
            argv[k++] = "--follow";
            argv[k++] = leader_repl;
        }
        argv[k] = NULL;
        execv(TS_SERVER_PATH, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static void
server_wait_at(const char *at)
{
    const char *nodes[] = {at};
    trastenda_client_config cfg;
    trastenda_client_config_default(&cfg);
    cfg.nodes = nodes;
    cfg.n_nodes = 1;
    cfg.timeout_ms = 500;
    trastenda_client *c = NULL;
    CHECK(trastenda_client_open(&cfg, &c, NULL, 0) == TRASTENDA_OK, "client");
    for (int i = 0; i < 100; i++) {
        trastenda_reply r;
        bool up = trastenda_status(c, &r) == TRASTENDA_OK && r.code == TRASTENDA_OK;
        trastenda_reply_clear(&r);
        if (up) {
            trastenda_client_close(c);
            return;
        }
        usleep(50000);
    }
    CHECK(0, "the server at %s did not come up (logs in %s)", at, dir);
}

static void
server_wait(void)
{
    server_wait_at(addr);
}

/* Runs trastenda-bench with args (NULL-terminated); its stdout in out; returns its exit code. */
static int
bench(char *out, size_t cap, const char *const *args)
{
    const char *argv[40] = {"trastenda-bench"};
    int n = 1;
    for (; args[n - 1] != NULL && n < 38; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    int fd[2];
    CHECK(pipe(fd) == 0, "pipe");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        execv(TS_BENCH_PATH, (char *const *)argv);
        _exit(127);
    }
    close(fd[1]);
    size_t len = 0;
    ssize_t got;
    while ((got = read(fd[0], out + len, cap - 1 - len)) > 0)
        len += (size_t)got;
    out[len] = '\0';
    close(fd[0]);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    CHECK(WIFEXITED(st), "trastenda-bench %s died (status %d)", args[0], st);
    return WEXITSTATUS(st);
}

/* The integer after "key": in a JSON report, after its configuration (which has keys of the
 * same names); -1 when absent. */
static long long
json_int(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *from = strstr(json, "\"elapsed_s\":");
    const char *p = from != NULL ? strstr(from, pat) : NULL;
    return p == NULL ? -1 : strtoll(p + strlen(pat), NULL, 10);
}

static char out[1 << 22];

/* What a failure message shows of a JSON report: from its errors on (the histograms come
 * before), or the start of the text. */
static const char *
tail(const char *s)
{
    const char *e = strstr(s, "\"errors\"");
    return e != NULL ? e : s;
}

static void
flash_sales(void)
{
    const char *order[] = {"flash-sale", "--addr",    addr, "--skus", "20", "--units",
                           "200",        "--callers", "16", "--json", NULL};
    int code = bench(out, sizeof(out), order);
    CHECK(code == 0 && strstr(out, "\"pass\":true") != NULL, "order mode: exit %d: %.2000s", code,
          out);
    CHECK(json_int(out, "sold") == 4000 && json_int(out, "acknowledged") == 4000 &&
              json_int(out, "oversold") == 0 && json_int(out, "readback") == 4000,
          "order mode: %.2000s", tail(out));
    const char *hold[] = {"flash-sale", "--addr",    addr,     "--skus", "10",
                          "--units",    "100",       "--mode", "hold",   "--batch",
                          "4",          "--callers", "8",      NULL};
    code = bench(out, sizeof(out), hold);
    CHECK(code == 0 && strstr(out, "\nPASS\n") != NULL, "hold mode: exit %d: %.2000s", code,
          tail(out));
    /* A sale that cannot end within its limit is a failure, with exit code 1. */
    const char *limit[] = {"flash-sale", "--addr",        addr,           "--skus", "2",
                           "--units",    "1000000",       "--duration-s", "0.3",    "--callers",
                           "4",          "--no-readback", "--json",       NULL};
    code = bench(out, sizeof(out), limit);
    CHECK(code == 1 && strstr(out, "\"pass\":false") != NULL &&
              strstr(out, "\"sold_out\":false") != NULL,
          "limit: exit %d: %.2000s", code, tail(out));
}

/* ---- a sale that another client oversells: the check must say so ---- */

#define KNOWN_MAX 256
static char known[KNOWN_MAX][32]; /* flash-sale SKUs of the earlier runs */
static uint32_t n_known;
static char sabotaged[32];

/* The flash-sale SKU ids ("F" + run id + "-NNNNN") of the server's SKU table, in out (cap). */
static uint32_t
flash_skus(trastenda_client *c, char (*ids)[32], uint32_t cap)
{
    uint32_t n = 0;
    int64_t cursor = 0;
    do {
        trastenda_reply r;
        if (trastenda_sku_list(c, cursor, 500, &r) != TRASTENDA_OK || r.code != TRASTENDA_OK) {
            trastenda_reply_clear(&r);
            return n;
        }
        char *j = trastenda_result_json(&r);
        trastenda_reply_clear(&r);
        CHECK(j != NULL, "sku.list: a reply that does not parse");
        for (const char *p = strstr(j, "\"sku\":\"F"); p != NULL && n < cap;
             p = strstr(p + 1, "\"sku\":\"F")) {
            const char *id = p + strlen("\"sku\":\"");
            size_t len = strcspn(id, "\"");
            if (len < sizeof(ids[0])) {
                memcpy(ids[n], id, len);
                ids[n++][len] = '\0';
            }
        }
        const char *nx = strstr(j, "\"next\":");
        cursor = nx != NULL ? strtoll(nx + strlen("\"next\":"), NULL, 10) : 0;
        free(j);
    } while (cursor != 0);
    return n;
}

/* A client of the test's server. */
static trastenda_client *
smoke_client(void)
{
    const char *nodes[] = {addr};
    trastenda_client_config cfg;
    trastenda_client_config_default(&cfg);
    cfg.nodes = nodes;
    cfg.n_nodes = 1;
    trastenda_client *c = NULL;
    CHECK(trastenda_client_open(&cfg, &c, NULL, 0) == TRASTENDA_OK, "client of %s", addr);
    return c;
}

/* Waits (up to ~10 s) for a flash-sale SKU that the earlier sales (known) did not have: the
 * running sale's; its id in sku. */
static bool
sale_sku_wait(trastenda_client *c, char sku[32])
{
    static char now[KNOWN_MAX][32];
    for (int i = 0; i < 1000; i++) {
        uint32_t n = flash_skus(c, now, KNOWN_MAX);
        for (uint32_t k = 0; k < n; k++) {
            bool old = false;
            for (uint32_t o = 0; o < n_known && !old; o++)
                old = strcmp(known[o], now[k]) == 0;
            if (!old) {
                memcpy(sku, now[k], 32);
                return true;
            }
        }
        usleep(10000);
    }
    return false;
}

/* Waits for the sale's SKU to appear, then receives one unit more of it. */
static void *
oversell(void *arg)
{
    (void)arg;
    trastenda_client *c = smoke_client();
    CHECK(sale_sku_wait(c, sabotaged), "oversell: the sale's SKU never appeared");
    trastenda_reply r;
    CHECK(trastenda_receive(c, sabotaged, "FS-1", 1, NULL, &r) == TRASTENDA_OK &&
              r.code == TRASTENDA_OK,
          "oversell: receive 1 of %s: %s", sabotaged, r.msg);
    trastenda_reply_clear(&r);
    trastenda_client_close(c);
    return NULL;
}

static void
oversold_sale(void)
{
    trastenda_client *c = smoke_client();
    n_known = flash_skus(c, known, KNOWN_MAX);
    trastenda_client_close(c);
    CHECK(n_known > 0 && n_known < KNOWN_MAX, "the earlier sales' SKUs: %u", n_known);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, oversell, NULL) == 0, "thread");
    /* Long enough for the other client to step in: ~20,000 single durable orders. */
    const char *sale[] = {"flash-sale",    "--addr", addr,        "--skus", "1",
                          "--units",       "20000",  "--callers", "4",      "--json",
                          "--no-readback", NULL};
    int code = bench(out, sizeof(out), sale);
    pthread_join(th, NULL);
    CHECK(code == 1 && strstr(out, "\"pass\":false") != NULL && json_int(out, "oversold") == 1 &&
              json_int(out, "sold") == 20001 && json_int(out, "on_hand_changed") == 1,
          "a sale oversold by another client (%s): exit %d: %.2000s", sabotaged, code, tail(out));
}

/* ---- a sale whose calls time out: retried with the same keys ---- */

static bool stalled;

/* Waits for the sale's SKU to appear, then stops the server for 300 ms. */
static void *
stall(void *arg)
{
    (void)arg;
    trastenda_client *c = smoke_client();
    char sku[32];
    bool seen = sale_sku_wait(c, sku);
    trastenda_client_close(c);
    CHECK(seen, "stall: the sale's SKU never appeared");
    usleep(100000); /* the sale under way */
    CHECK(kill(server_pid, SIGSTOP) == 0, "SIGSTOP");
    usleep(300000);
    CHECK(kill(server_pid, SIGCONT) == 0, "SIGCONT");
    stalled = true;
    return NULL;
}

static void
retried_sale(void)
{
    trastenda_client *c = smoke_client();
    n_known = flash_skus(c, known, KNOWN_MAX);
    trastenda_client_close(c);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, stall, NULL) == 0, "thread");
    /* The bench retries (the client's own retries off), with the same key, until an answer. */
    const char *sale[] = {"flash-sale", "--addr",    addr,        "--skus", "1",
                          "--units",    "20000",     "--callers", "4",      "--timeout-ms",
                          "50",         "--retries", "0",         "--json", NULL};
    int code = bench(out, sizeof(out), sale);
    pthread_join(th, NULL);
    CHECK(stalled, "the server was not stopped during the sale");
    CHECK(code == 0 && strstr(out, "\"pass\":true") != NULL && json_int(out, "retries") > 0 &&
              json_int(out, "sold") == 20000 && json_int(out, "acknowledged") == 20000 &&
              json_int(out, "readback") == 20000 && json_int(out, "readback_bad") == 0,
          "a sale whose calls time out and are retried: exit %d: %.2000s", code, tail(out));
    printf("bench_smoke: a sale stalled 300 ms: %lld retries with the same keys, nothing sold "
           "twice\n",
           json_int(out, "retries"));
}

static void
timed_runs(void)
{
    const char *checkout[] = {"checkout", "--addr",       addr, "--skus",     "2000", "--locations",
                              "3",        "--duration-s", "2",  "--warmup-s", "0.2",  "--callers",
                              "8",        "--json",       NULL};
    int code = bench(out, sizeof(out), checkout);
    CHECK(code == 0 && json_int(out, "ops") > 0 && strstr(out, "\"errors\":{}") != NULL,
          "checkout: exit %d: %.2000s", code, tail(out));
    /* The header (durability, build, machine) and the figures: percentiles, the histogram, the
     * server's CPU a op (the server runs here, so it is measured). */
    const char *keys[] = {"\"durability\":\"fsync\"",      "\"build\":", "\"machine\":{\"cores\":",
                          "\"latency_us\":{\"p50\":",      "\"p999\":",  "\"histogram_us\":",
                          "\"server_cpu\":{\"us_per_op\":"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        CHECK(strstr(out, keys[i]) != NULL, "checkout's JSON has no %s: %.2000s", keys[i],
              tail(out));
    const char *batched[] = {"checkout",    "--addr",  addr,          "--skus", "2000",
                             "--locations", "3",       "--check-pct", "0",      "--lines",
                             "1",           "--batch", "16",          "--ops",  "2000",
                             "--warmup-s",  "0",       "--json",      NULL};
    code = bench(out, sizeof(out), batched);
    CHECK(code == 0 && json_int(out, "ops") >= 2000 && strstr(out, "\"errors\":{}") != NULL,
          "checkout, holds in batches: exit %d: %.2000s", code, tail(out));
    const char *intake[] = {
        "order-intake", "--addr", addr,        "--skus", "2000",   "--locations", "3",
        "--duration-s", "2", /* an order takes four fsyncs: long enough for one to ship */
        "--warmup-s",   "0.2",    "--callers", "8",      "--json", NULL};
    code = bench(out, sizeof(out), intake);
    CHECK(code == 0 && json_int(out, "ops") > 0 && json_int(out, "shipped") > 0 &&
              strstr(out, "\"errors\":{}") != NULL,
          "order-intake: exit %d: %.2000s", code, tail(out));
    const char *bad[] = {"checkout", "--addr", addr, "--callers", "0", NULL};
    CHECK(bench(out, sizeof(out), bad) == 2, "a bad flag: exit 2");
}

/* A leader and its follower of their own. */
static void
replica_reads(void)
{
    snprintf(leader_addr, sizeof(leader_addr), "ipc://%s/leader.ipc", dir);
    snprintf(follower_addr, sizeof(follower_addr), "ipc://%s/follower.ipc", dir);
    const char *missing[] = {"replica-reads", "--addr", leader_addr, NULL};
    CHECK(bench(out, sizeof(out), missing) == 2, "replica-reads without --follower: exit 2");
    const char *bad[] = {"replica-reads", "--addr",        leader_addr,
                         "--follower",    "tcp://nowhere", NULL};
    CHECK(bench(out, sizeof(out), bad) == 2, "replica-reads, a bad --follower: exit 2");
    repl_pids[0] = repl_node_start(0);
    server_wait_at(leader_addr);
    repl_pids[1] = repl_node_start(1);
    server_wait_at(follower_addr);
    const char *run[] = {"replica-reads",
                         "--addr",
                         leader_addr,
                         "--follower",
                         follower_addr,
                         "--skus",
                         "10",
                         "--units",
                         "300",
                         "--callers",
                         "12",
                         "--readers",
                         "4",
                         "--json",
                         NULL};
    int code = bench(out, sizeof(out), run);
    CHECK(code == 0 && strstr(out, "\"pass\":true") != NULL, "replica-reads: exit %d: %.3000s",
          code, tail(out));
    CHECK(json_int(out, "reads") > 0 && json_int(out, "follower_reads") > 0 &&
              json_int(out, "samples") > 0 && json_int(out, "probes") > 0 &&
              json_int(out, "failed") == 0 && json_int(out, "oversold") == 0 &&
              json_int(out, "sold") == 3000 && strstr(out, "\"errors\":{}") != NULL,
          "replica-reads: %.3000s", tail(out));
    CHECK(strstr(out, "\"server_cpu\":{\"us_per_op\":") != NULL,
          "replica-reads: the leader's CPU a op: %.3000s", tail(out));
}

int
main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/ts-bench-smoke-XXXXXX");
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(addr, sizeof(addr), "ipc://%s/s.ipc", dir);
    atexit(cleanup);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    server_start();
    server_wait();
    flash_sales();
    oversold_sale();
    retried_sale();
    timed_runs();
    replica_reads();
    fprintf(stderr, "bench_smoke: ok\n");
    return 0;
}
