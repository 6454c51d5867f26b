/*
 * bench/http.c - trastenda-bench-http: what the JSON path costs next to msgpack (the operator
 * surface issue).
 *
 * Starts the real `trastenda` binary on loopback TCP (requests and HTTP) with a temporary data
 * directory (fsync), loads a catalogue, then drives it from N concurrent clients (default 16),
 * each waiting for its answer before its next request:
 *   - stock checks of a random SKU: msgpack, one client library instance and connection per
 *     client; msgpack, the N callers sharing one client (its automatic batching: the figure of
 *     trastenda-bench-server); HTTP GET /v1/stock/{sku}; HTTP POST /v1/ops with a stock op;
 *   - durable single-line reserves (qty 1): msgpack (a client each) and HTTP POST /v1/ops.
 * HTTP clients keep their connection alive (one TCP connection each). Each case runs `rounds`
 * times, the cases interleaved, and the median round is reported (the machine is shared), with
 * the server process's CPU time per operation over that round (/proc/PID/stat): the cost of each
 * path on the server, whatever the clients cost (they share the machine's cores).
 *
 *   trastenda-bench-http [--seconds N] [--skus N] [--clients N] [--rounds N]
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BENCH_NAME "trastenda-bench-http"
#include "common.h"
#include "server_bench.h"

#define CLIENTS_MAX 64
#define ROUNDS_MAX  9

static double seconds = 5;
static int n_skus = 100000, n_clients = 16, rounds = 3;
static char dir[256], addr[64];
static int http_port;
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

static int
free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        die("no free port");
    close(fd);
    return ntohs(a.sin_port);
}

static void
server_start(const char *self)
{
    char bin[512];
    sb_sibling(self, "trastenda", bin, sizeof(bin));
    snprintf(dir, sizeof(dir), "/tmp/trastenda-bench-http-XXXXXX");
    if (mkdtemp(dir) == NULL) die("mkdtemp");
    char data[300], skus[32], http[64];
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(skus, sizeof(skus), "%d", n_skus + 16);
    snprintf(addr, sizeof(addr), "tcp://127.0.0.1:%d", free_port());
    http_port = free_port();
    snprintf(http, sizeof(http), "http://127.0.0.1:%d", http_port);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        char log[300];
        snprintf(log, sizeof(log), "%s/server.log", dir);
        if (freopen(log, "w", stderr) == NULL) _exit(126);
        execl(bin, "trastenda", "--listen", addr, "--events", "none", "--repl", "none", "--http",
              http, "--data", data, "--skus-max", skus, "--stock-max", skus, "--locations-max",
              "16", "--holds-max", "8000000", "--keys-max", "1024", "--lines-max", "8000000",
              "--orders-max", "1024", "--contexts", "128", "--http-contexts", "128", "--batch-max",
              "16384", "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    server_pid = pid;
    atexit(server_stop);
}

/* ---- HTTP/1.1 keep-alive client ---- */

struct conn {
    int fd;
    char buf[65536];
    size_t have;
};

static void
conn_open(struct conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0) die("connect");
    c->have = 0;
}

/* Sends a request and reads its response; true when it is a 200 whose (first) result has code 0. */
static bool
conn_call(struct conn *c, const char *req, size_t len)
{
    for (size_t off = 0; off < len;) {
        ssize_t w = send(c->fd, req + off, len - off, MSG_NOSIGNAL);
        if (w <= 0) die("send");
        off += (size_t)w;
    }
    size_t head_end = 0, body_len = 0;
    for (;;) { /* bound: the buffer */
        if (head_end == 0) {
            char *e = memmem(c->buf, c->have, "\r\n\r\n", 4);
            if (e != NULL) {
                head_end = (size_t)(e - c->buf) + 4;
                char *cl = memmem(c->buf, head_end, "Content-Length: ", 16);
                body_len = cl != NULL ? strtoul(cl + 16, NULL, 10) : 0;
            }
        }
        if (head_end > 0 && c->have >= head_end + body_len) break;
        if (c->have == sizeof(c->buf)) die("response too large");
        ssize_t n = recv(c->fd, c->buf + c->have, sizeof(c->buf) - c->have, 0);
        if (n <= 0) die("recv");
        c->have += (size_t)n;
    }
    /* a resource read starts with its code; /v1/ops has its first result after the envelope */
    bool ok = strncmp(c->buf, "HTTP/1.1 200", 12) == 0 &&
              memmem(c->buf + head_end, body_len < 160 ? body_len : 160, "\"code\":0", 8) != NULL;
    size_t used = head_end + body_len;
    memmove(c->buf, c->buf + used, c->have - used);
    c->have -= used;
    return ok;
}

/* ---- the runs ---- */

enum work {
    MP_STOCK,        /* msgpack, a client each */
    MP_STOCK_SHARED, /* msgpack, one client shared (library batching) */
    HTTP_GET_STOCK,
    HTTP_POST_STOCK,
    MP_RESERVE,
    HTTP_RESERVE,
    WORK_COUNT_
};

static const char *const work_names[WORK_COUNT_] = {"stock checks, msgpack (a client each)",
                                                    "stock checks, msgpack (one shared client)",
                                                    "stock checks, HTTP GET /v1/stock/{sku}",
                                                    "stock checks, HTTP POST /v1/ops",
                                                    "durable reserves, msgpack",
                                                    "durable reserves, HTTP POST /v1/ops"};

struct worker {
    pthread_t th;
    int id;
    enum work w;
    trastenda_client *c;
    volatile int *stop;
    struct hist h;
    uint64_t ops, errors;
};

static void
one_call(struct worker *k, struct conn *hc, uint64_t *rng)
{
    char sku[16], req[1024];
    *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
    snprintf(sku, sizeof(sku), "S%d", (int)((*rng >> 33) % (uint64_t)n_skus));
    bool ok;
    if (k->w == HTTP_GET_STOCK || k->w == HTTP_POST_STOCK || k->w == HTTP_RESERVE) {
        char body[512];
        int bl =
            k->w == HTTP_POST_STOCK
                ? snprintf(body, sizeof(body),
                           "{\"v\":1,\"id\":1,\"ops\":[{\"op\":\"stock\",\"sku\":\"%s\"}]}", sku)
                : snprintf(body, sizeof(body),
                           "{\"v\":1,\"id\":1,\"ops\":[{\"op\":\"reserve\",\"ttl_ms\":86400000,"
                           "\"lines\":[{\"sku\":\"%s\",\"loc\":\"W1\",\"qty\":1}]}]}",
                           sku);
        int n =
            k->w == HTTP_GET_STOCK
                ? snprintf(req, sizeof(req), "GET /v1/stock/%s HTTP/1.1\r\nHost: b\r\n\r\n", sku)
                : snprintf(req, sizeof(req),
                           "POST /v1/ops HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
                           "Content-Length: %d\r\n\r\n%s",
                           bl, body);
        ok = conn_call(hc, req, (size_t)n);
    } else {
        trastenda_args a;
        trastenda_reply r;
        trastenda_cline line = {sku, "W1", 1, 0};
        trastenda_args_init(&a, k->w == MP_RESERVE ? "reserve" : "stock");
        a.sku = k->w == MP_RESERVE ? NULL : sku;
        if (k->w == MP_RESERVE) {
            a.lines = &line;
            a.n_lines = 1;
            a.ttl_ms = 86400000;
        }
        ok = trastenda_call(k->c, &a, &r) == TRASTENDA_OK && r.code == TRASTENDA_OK;
        trastenda_reply_clear(&r);
    }
    if (!ok) k->errors++;
    k->ops++;
}

static void *
work_main(void *arg)
{
    struct worker *k = arg;
    uint64_t rng = 0x9e3779b97f4a7c15ull * (uint64_t)(k->id + 1);
    static __thread struct conn hc;
    bool http = k->w == HTTP_GET_STOCK || k->w == HTTP_POST_STOCK || k->w == HTTP_RESERVE;
    if (http) conn_open(&hc);
    while (!*k->stop) {
        uint64_t t0 = now_ns();
        one_call(k, &hc, &rng);
        hist_add(&k->h, now_ns() - t0);
    }
    if (http) close(hc.fd);
    return NULL;
}

struct result {
    double ops_s, p50, p99;
    double cpu_us; /* the server's CPU time (user + system) per operation */
    uint64_t errors;
};

/* The server's CPU time so far, in seconds (utime + stime of /proc/PID/stat). */
static double
server_cpu_s(void)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)server_pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* after the command name, which may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static struct result
run(enum work w, trastenda_client *shared, trastenda_client **own)
{
    static struct worker ws[CLIENTS_MAX];
    volatile int stop = 0;
    for (int i = 0; i < n_clients; i++) {
        memset(&ws[i], 0, sizeof(ws[i]));
        ws[i].id = i;
        ws[i].w = w;
        ws[i].c = w == MP_STOCK_SHARED ? shared : own[i];
        ws[i].stop = &stop;
    }
    double cpu0 = server_cpu_s();
    uint64_t t0 = now_ns();
    for (int i = 0; i < n_clients; i++)
        pthread_create(&ws[i].th, NULL, work_main, &ws[i]);
    usleep((useconds_t)(seconds * 1e6));
    stop = 1;
    static struct hist h;
    memset(&h, 0, sizeof(h));
    uint64_t ops = 0, errors = 0;
    for (int i = 0; i < n_clients; i++) {
        pthread_join(ws[i].th, NULL);
        hist_merge(&h, &ws[i].h);
        ops += ws[i].ops;
        errors += ws[i].errors;
    }
    double el = (double)(now_ns() - t0) / 1e9;
    double cpu = server_cpu_s() - cpu0;
    return (struct result){(double)ops / el, hist_quantile(&h, 0.50) / 1e3,
                           hist_quantile(&h, 0.99) / 1e3, ops > 0 ? cpu * 1e6 / (double)ops : 0,
                           errors};
}

/* The round with the median throughput. */
static struct result
median(struct result *r, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && r[j].ops_s < r[j - 1].ops_s; j--) {
            struct result t = r[j];
            r[j] = r[j - 1];
            r[j - 1] = t;
        }
    return r[n / 2];
}

int
main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--skus") == 0 && i + 1 < argc)
            n_skus = atoi(argv[++i]);
        else if (strcmp(argv[i], "--clients") == 0 && i + 1 < argc)
            n_clients = atoi(argv[++i]);
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else
            die("usage: trastenda-bench-http [--seconds N] [--skus N] [--clients N] [--rounds N]");
    }
    if (n_clients < 1 || n_clients > CLIENTS_MAX || rounds < 1 || rounds > ROUNDS_MAX || n_skus < 1)
        die("--clients 1..%d, --rounds 1..%d, --skus >= 1", CLIENTS_MAX, ROUNDS_MAX);
    signal(SIGPIPE, SIG_IGN);
    server_start(argv[0]);
    char log[300];
    snprintf(log, sizeof(log), "%s/server.log", dir);
    sb_wait(addr, server_pid, log);
    trastenda_client *shared = sb_client(addr, 4);
    sb_load(shared, n_skus, 1000000);
    static trastenda_client *own[CLIENTS_MAX];
    for (int i = 0; i < n_clients; i++)
        own[i] = sb_client(addr, 1);
    printf("trastenda-bench-http: %ld cores, server durability fsync, %d SKUs, %d clients, "
           "%.0f s per case, median of %d interleaved rounds, loopback TCP\n\n",
           sysconf(_SC_NPROCESSORS_ONLN), n_skus, n_clients, seconds, rounds);
    static struct result res[WORK_COUNT_][ROUNDS_MAX];
    for (int r = 0; r < rounds; r++)
        for (int w = 0; w < WORK_COUNT_; w++)
            res[w][r] = run((enum work)w, shared, own);
    printf("%-44s %10s %9s %9s %14s %7s\n", "case", "ops/s", "p50 us", "p99 us", "server CPU us/op",
           "errors");
    struct result m[WORK_COUNT_];
    for (int w = 0; w < WORK_COUNT_; w++) {
        m[w] = median(res[w], rounds);
        printf("%-44s %10.0f %9.1f %9.1f %14.1f %7" PRIu64 "\n", work_names[w], m[w].ops_s,
               m[w].p50, m[w].p99, m[w].cpu_us, m[w].errors);
    }
    printf("\nHTTP GET stock checks / msgpack (a client each): %.0f%%; / msgpack (shared client): "
           "%.0f%% (target >= 50%%)\n",
           100 * m[HTTP_GET_STOCK].ops_s / m[MP_STOCK].ops_s,
           100 * m[HTTP_GET_STOCK].ops_s / m[MP_STOCK_SHARED].ops_s);
    printf("HTTP reserves / msgpack reserves: %.0f%%\n",
           100 * m[HTTP_RESERVE].ops_s / m[MP_RESERVE].ops_s);
    for (int i = 0; i < n_clients; i++)
        trastenda_client_close(own[i]);
    trastenda_client_close(shared);
    return 0;
}
