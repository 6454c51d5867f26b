/*
 * tests/net/plain_http.c - the real `trastenda` process over HTTP (docs/HTTP.md), with tokens
 * and TLS (docs/SECURITY.md).
 *
 * Servers run on loopback TCP ports picked free for the test, data in a temporary directory, and
 * are stopped by their PID whatever happens (atexit, a signal handler, and PR_SET_PDEATHSIG).
 * Checked:
 *   - every route: the dashboard's files, /health, /ready, /metrics, POST /v1/ops and each
 *     resource read, with their status codes and bodies;
 *   - every class of bad input (malformed JSON, envelope errors, wrong content type, no length,
 *     a body over the limit, unknown paths and methods, bad query, missing or wrong token) gets
 *     its 4xx and the msgpack path's code, changes nothing, and the server still answers;
 *   - the same batch (writes, reads and invalid ops) sent as msgpack to one server and as JSON to
 *     another, both started alike, gives the same reply;
 *   - tokens: writes without one are refused on both encodings, the ledger records the token's
 *     name as the actor, reads stay open;
 *   - /metrics passes `promtool check metrics`, and its counters move with a scripted workload;
 *   - a leader and its follower: /ready follows the link, the replication series, reads on the
 *     follower, writes refused naming the leader;
 *   - TLS with certificates made by openssl: the right CA and client certificate connect (msgpack
 *     and HTTPS), no CA, a wrong CA or no client certificate (mutual TLS required) are refused.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "trastenda/client.h"

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "plain_http: FAIL %s:%d: ", __FILE__, __LINE__);                       \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            failed = true;                                                                         \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define TOKEN_A  "alice"
#define SECRET_A "0123456789abcdef0123"
#define TOKEN_B  "bob"
#define SECRET_B "fedcba9876543210fedc"

static bool failed;
static char dir[256];

/* ---- server processes ---- */

struct server {
    pid_t pid;
    char name[32];
    char req[128];  /* msgpack address */
    char http[128]; /* HTTP base URL */
    int http_port;
};

#define SERVERS_MAX 4
static struct server servers[SERVERS_MAX];

static void
cleanup(void)
{
    for (int i = 0; i < SERVERS_MAX; i++)
        if (servers[i].pid > 0) {
            kill(servers[i].pid, SIGKILL);
            waitpid(servers[i].pid, NULL, 0);
            servers[i].pid = 0;
        }
    if (failed && dir[0] != '\0') {
        char cmd[600];
        snprintf(cmd, sizeof(cmd),
                 "for f in '%s'/*.log; do echo \"== $f\"; tail -n 30 \"$f\"; done >&2", dir);
        if (system(cmd) != 0) fprintf(stderr, "(no server logs)\n");
    }
    if (dir[0] != '\0') {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    }
}

static void
on_signal(int sig)
{
    (void)sig;
    failed = true;
    cleanup();
    _exit(1);
}

/* A TCP port nothing listens on now (bound, read, closed: the server binds it next). */
static int
free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0, "socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind");
    CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0, "getsockname");
    close(fd);
    return ntohs(a.sin_port);
}

/* Starts server i with its own data directory; extra flags NULL-terminated. Schemes: "tcp" or
 * "tls+tcp" for requests, "http" or "https". */
static struct server *
server_start(int i, const char *name, const char *req_scheme, const char *http_scheme,
             const char *const *extra)
{
    struct server *s = &servers[i];
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->http_port = free_port();
    snprintf(s->req, sizeof(s->req), "%s://127.0.0.1:%d", req_scheme, free_port());
    snprintf(s->http, sizeof(s->http), "%s://127.0.0.1:%d", http_scheme, s->http_port);
    char data[400], log[400];
    snprintf(data, sizeof(data), "%s/%s", dir, name);
    snprintf(log, sizeof(log), "%s/%s.log", dir, name);
    const char *argv[64] = {
        "trastenda", "--listen",        s->req,  "--http",      s->http, "--events",
        "none",      "--data",          data,    "--skus-max",  "64",    "--locations-max",
        "8",         "--stock-max",     "256",   "--holds-max", "4096",  "--orders-max",
        "1024",      "--keys-max",      "8192",  "--lines-max", "16384", "--pos-max",
        "16",        "--http-body-max", "65536", "--repl",      "none"};
    int n = 0;
    while (argv[n] != NULL)
        n++;
    for (int k = 0; extra != NULL && extra[k] != NULL && n < 62; k++)
        argv[n++] = extra[k];
    argv[n] = NULL;
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (freopen(log, "a", stderr) == NULL) _exit(126);
        execv(TS_SERVER_PATH, (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    return s;
}

static void
server_stop(struct server *s)
{
    CHECK(kill(s->pid, SIGTERM) == 0, "kill");
    int st;
    CHECK(waitpid(s->pid, &st, 0) == s->pid, "waitpid");
    s->pid = 0;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s did not stop cleanly (status %d)", s->name,
          st);
}

/* ---- a small HTTP/1.1 client (plain TCP) ---- */

struct resp {
    int status;
    char head[4096];
    char *body;
    size_t len;
};

static void
resp_free(struct resp *r)
{
    free(r->body);
    r->body = NULL;
}

static int
connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0, "socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void
send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0) return; /* the server may close early (refused bodies) */
        c += w;
        n -= (size_t)w;
    }
}

/* Reads one response: headers, then Content-Length bytes. false on EOF before a whole one. */
static bool
read_resp(int fd, struct resp *r)
{
    memset(r, 0, sizeof(*r));
    size_t hl = 0;
    while (hl + 1 < sizeof(r->head)) {
        ssize_t n = recv(fd, r->head + hl, 1, 0);
        if (n <= 0) return false;
        hl++;
        if (hl >= 4 && memcmp(r->head + hl - 4, "\r\n\r\n", 4) == 0) break;
    }
    r->head[hl] = '\0';
    CHECK(sscanf(r->head, "HTTP/1.1 %d", &r->status) == 1, "status line: %.60s", r->head);
    const char *cl = strcasestr(r->head, "\r\nContent-Length:");
    r->len = cl != NULL ? strtoul(cl + 17, NULL, 10) : 0;
    r->body = calloc(1, r->len + 1);
    for (size_t got = 0; got < r->len;) {
        ssize_t n = recv(fd, r->body + got, r->len - got, 0);
        if (n <= 0) return false;
        got += (size_t)n;
    }
    return true;
}

/* One request on a connection of its own. hdrs: extra header lines ("X: y\r\n"), may be "". */
static struct resp
http(const struct server *s, const char *method, const char *path, const char *hdrs,
     const char *body)
{
    int fd = -1;
    for (int k = 0; k < 100 && (fd = connect_to(s->http_port)) < 0; k++)
        usleep(50000);
    CHECK(fd >= 0, "%s: cannot connect to %s", s->name, s->http);
    char head[8192];
    size_t blen = body != NULL ? strlen(body) : 0;
    int n =
        snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s",
                 method, path, hdrs);
    if (body != NULL)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n", blen);
    n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
    send_all(fd, head, (size_t)n);
    if (blen > 0) send_all(fd, body, blen);
    struct resp r;
    CHECK(read_resp(fd, &r), "%s %s: no whole response", method, path);
    close(fd);
    return r;
}

static const char JSON_CT[] = "Content-Type: application/json\r\n";
static const char AUTH_A[] =
    "Content-Type: application/json\r\nAuthorization: Bearer " SECRET_A "\r\n";

static struct resp
post_ops(const struct server *s, const char *hdrs, const char *body)
{
    return http(s, "POST", "/v1/ops", hdrs, body);
}

static json_t *
parse(const struct resp *r)
{
    json_error_t e;
    json_t *j = json_loadb(r->body, r->len, 0, &e);
    CHECK(j != NULL, "not JSON (%s): %.200s", e.text, r->body);
    return j;
}

/* The response's error code (envelope error), or -1 when none. */
static int
error_code(const struct resp *r)
{
    json_t *j = parse(r);
    json_t *e = json_object_get(j, "error");
    int code = e != NULL ? (int)json_integer_value(json_object_get(e, "code")) : -1;
    json_decref(j);
    return code;
}

/* results[i].code of a /v1/ops reply, or `code` of a resource read. */
static int
result_code(const struct resp *r, int i)
{
    json_t *j = parse(r);
    json_t *res = json_object_get(j, "results");
    json_t *x = res != NULL ? json_array_get(res, (size_t)i) : j;
    CHECK(x != NULL, "no result %d: %.200s", i, r->body);
    int code = (int)json_integer_value(json_object_get(x, "code"));
    json_decref(j);
    return code;
}

static void
expect(const struct resp *r, int status, int code, const char *what)
{
    CHECK(r->status == status, "%s: HTTP %d, want %d: %.300s", what, r->status, status, r->body);
    if (code >= 0)
        CHECK(error_code(r) == code, "%s: error code %d, want %d: %.300s", what, error_code(r),
              code, r->body);
    CHECK(strstr(r->head, "Content-Type: application/json") != NULL, "%s: not JSON: %s", what,
          r->head);
}

/* ---- msgpack: the client library, and raw requests built from JSON text ---- */

static trastenda_client *
client(const struct server *s, const char *secret, const char *ca, const char *cert,
       const char *key, uint32_t timeout_ms)
{
    const char *nodes[] = {s->req};
    trastenda_client_config cfg;
    trastenda_client_config_default(&cfg);
    cfg.nodes = nodes;
    cfg.n_nodes = 1;
    cfg.timeout_ms = timeout_ms;
    cfg.retries = 0;
    cfg.token = secret;
    cfg.tls_ca_file = ca;
    cfg.tls_cert_file = cert;
    cfg.tls_key_file = key;
    trastenda_client *c = NULL;
    char err[256];
    CHECK(trastenda_client_open(&cfg, &c, err, sizeof(err)) == TRASTENDA_OK, "client: %s", err);
    return c;
}

/* A status call: TRASTENDA_OK when the server answered it. */
static trastenda_err
status_call(trastenda_client *c)
{
    trastenda_args a;
    trastenda_args_init(&a, "status");
    trastenda_reply r;
    trastenda_err e = trastenda_call(c, &a, &r);
    if (e == TRASTENDA_OK && r.code != TRASTENDA_OK) e = (trastenda_err)r.code;
    trastenda_reply_clear(&r);
    return e;
}

/* Waits until s answers /ready with 200 (and so serves msgpack too). */
static void
wait_ready(const struct server *s)
{
    for (int k = 0; k < 200; k++) {
        int fd = connect_to(s->http_port);
        if (fd >= 0) {
            close(fd);
            struct resp r = http(s, "GET", "/ready", "", NULL);
            int st = r.status;
            resp_free(&r);
            if (st == 200) return;
        }
        usleep(50000);
    }
    CHECK(0, "%s did not become ready", s->name);
}

static void
pack_json(msgpack_packer *pk, const json_t *v)
{
    const char *key;
    json_t *e;
    size_t i;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        msgpack_pack_map(pk, json_object_size(v));
        json_object_foreach((json_t *)v, key, e)
        {
            msgpack_pack_str(pk, strlen(key));
            msgpack_pack_str_body(pk, key, strlen(key));
            pack_json(pk, e);
        }
        return;
    case JSON_ARRAY:
        msgpack_pack_array(pk, json_array_size(v));
        json_array_foreach(v, i, e) pack_json(pk, e);
        return;
    case JSON_STRING:
        msgpack_pack_str(pk, json_string_length(v));
        msgpack_pack_str_body(pk, json_string_value(v), json_string_length(v));
        return;
    case JSON_INTEGER:
        msgpack_pack_int64(pk, json_integer_value(v));
        return;
    case JSON_REAL:
        msgpack_pack_double(pk, json_real_value(v));
        return;
    case JSON_TRUE:
        msgpack_pack_true(pk);
        return;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        return;
    default:
        msgpack_pack_nil(pk);
        return;
    }
}

/* The request in JSON text sent as msgpack on a raw REQ socket; the reply as JSON text. */
static char *
msgpack_roundtrip(const struct server *s, const char *json_text)
{
    json_error_t e;
    json_t *j = json_loads(json_text, 0, &e);
    CHECK(j != NULL, "test request: %s", e.text);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_json(&pk, j);
    json_decref(j);
    nng_socket sock;
    CHECK(nng_req0_open(&sock) == 0, "req socket");
    nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 10000);
    CHECK(nng_dial(sock, s->req, NULL, 0) == 0, "dial %s", s->req);
    CHECK(nng_send(sock, sb.data, sb.size, 0) == 0, "send");
    char *buf = NULL;
    size_t len = 0;
    CHECK(nng_recv(sock, &buf, &len, NNG_FLAG_ALLOC) == 0, "recv");
    char *out = trastenda_msgpack_json((const uint8_t *)buf, len);
    CHECK(out != NULL, "reply is not msgpack");
    nng_free(buf, len);
    nng_close(sock);
    msgpack_sbuffer_destroy(&sb);
    return out;
}

/* Times differ between two servers: every "..._ms": N becomes 0. */
static void
zero_times(char *s)
{
    for (char *p = s; (p = strstr(p, "_ms\":")) != NULL;) {
        p += 5;
        char *q = p;
        while (*q == '-' || (*q >= '0' && *q <= '9'))
            q++;
        if (q > p) {
            *p = '0';
            memmove(p + 1, q, strlen(q) + 1);
        }
    }
}

/* ---- the checks ---- */

/* Locations, SKUs and stock for the tests, through JSON (every server starts the same). */
static const char SETUP[] =
    "{\"v\":1,\"id\":1,\"ops\":["
    "{\"op\":\"location.upsert\",\"loc\":\"W1\",\"name\":\"North\",\"lat_e6\":43000000,"
    "\"lon_e6\":-8000000,\"channels\":[\"web\"]},"
    "{\"op\":\"location.upsert\",\"loc\":\"W2\",\"name\":\"South\",\"lat_e6\":37000000,"
    "\"lon_e6\":-6000000,\"channels\":[\"web\"]},"
    "{\"op\":\"sku.upsert\",\"sku\":\"TEE\",\"name\":\"T-shirt\",\"reorder_point\":5,"
    "\"reorder_qty\":20},"
    "{\"op\":\"sku.upsert\",\"sku\":\"CAP\",\"name\":\"Cap\",\"reorder_point\":50},"
    "{\"op\":\"receive\",\"sku\":\"TEE\",\"loc\":\"W1\",\"qty\":30},"
    "{\"op\":\"receive\",\"sku\":\"TEE\",\"loc\":\"W2\",\"qty\":4},"
    "{\"op\":\"receive\",\"sku\":\"CAP\",\"loc\":\"W2\",\"qty\":12}]}";

static void
setup_data(const struct server *s)
{
    struct resp r = post_ops(s, AUTH_A, SETUP);
    CHECK(r.status == 200, "setup: %d %.300s", r.status, r.body);
    for (int i = 0; i < 7; i++)
        CHECK(result_code(&r, i) == 0, "setup op %d: %.400s", i, r.body);
    resp_free(&r);
}

/* The batch both encodings carry: writes, reads, and ops that fail decode, validation and the
 * engine. */
static const char BATCH[] =
    "{\"v\":1,\"id\":77,\"ops\":["
    "{\"op\":\"reserve\",\"key\":\"cart-1\",\"ttl_ms\":600000,"
    "\"lines\":[{\"sku\":\"TEE\",\"loc\":\"W1\",\"qty\":2}]},"
    "{\"op\":\"reserve\",\"ttl_ms\":600000,\"lines\":[{\"sku\":\"TEE\",\"loc\":\"W2\",\"qty\":99}]}"
    ","
    "{\"op\":\"reserve\",\"ttl_ms\":600000,\"channel\":\"web\",\"lat_e6\":42000000,"
    "\"lon_e6\":-8000000,\"partial\":true,\"lines\":[{\"sku\":\"CAP\",\"qty\":3}]},"
    "{\"op\":\"order.place\",\"order\":\"O-1\",\"channel\":\"web\",\"lat_e6\":40000000,"
    "\"lon_e6\":-4000000,\"lines\":[{\"sku\":\"TEE\",\"qty\":1},{\"sku\":\"CAP\",\"qty\":1}]},"
    "{\"op\":\"adjust\",\"sku\":\"TEE\",\"loc\":\"W1\",\"qty\":-1,\"reason\":\"damage\"},"
    "{\"op\":\"receive\",\"sku\":\"TEE\",\"loc\":\"W1\",\"qty\":2.0},"
    "{\"op\":\"receive\",\"sku\":\"TEE\",\"loc\":\"W1\"},"
    "{\"op\":\"fly\"},"
    "{\"op\":\"receive\",\"sku\":\"TEE\",\"loc\":\"W1\",\"qty\":1,\"ttl_ms\":5},"
    "{\"op\":\"receive\",\"sku\":\"NOPE\",\"loc\":\"W1\",\"qty\":1},"
    "{\"op\":\"stock\",\"sku\":\"TEE\",\"loc\":\"W1\",\"unknown\":1},"
    "{\"op\":\"reserve\",\"ttl_ms\":999,\"lines\":[{\"sku\":\"TEE\",\"loc\":\"W1\",\"qty\":1}]},"
    "{\"op\":\"reserve\",\"ttl_ms\":60000,\"lines\":[{\"sku\":\"TEE\",\"qty\":1}]},"
    "{\"op\":\"sku.upsert\",\"sku\":\"\\u0001bad\"},"
    "{\"op\":\"stock\",\"sku\":\"TEE\"},"
    "{\"op\":\"order\",\"order\":\"O-1\"},"
    "{\"op\":\"hold\",\"hold\":1},"
    "{\"op\":\"low_stock\"},"
    "{\"op\":\"reorder\",\"limit\":5},"
    "{\"op\":\"holds.expiring\",\"limit\":5},"
    "{\"op\":\"ledger\",\"sku\":\"TEE\",\"limit\":3}]}";

static void
check_parity(const struct server *m, const struct server *j)
{
    char *a = msgpack_roundtrip(m, BATCH);
    struct resp r = post_ops(j, AUTH_A, BATCH);
    CHECK(r.status == 200, "batch over JSON: %d %.300s", r.status, r.body);
    char *b = strdup(r.body);
    size_t bl = strlen(b);
    while (bl > 0 && b[bl - 1] == '\n')
        b[--bl] = '\0';
    zero_times(a);
    zero_times(b);
    CHECK(strcmp(a, b) == 0, "the same batch differs:\nmsgpack %s\njson    %s", a, b);
    /* and the batch did what it says: a mix of successes and each error class */
    static const int want[] = {0,  2, 0,  0, 0, 32, 30, 29, 31, 3, 31,
                               33, 1, 34, 0, 0, 0,  0,  0,  0,  0};
    for (int i = 0; i < (int)(sizeof(want) / sizeof(want[0])); i++)
        CHECK(result_code(&r, i) == want[i], "batch op %d: code %d, want %d: %s", i,
              result_code(&r, i), want[i], b);
    resp_free(&r);
    free(a);
    free(b);
}

/* Every route answers, with the right type and status. */
static void
check_routes(const struct server *s)
{
    struct {
        const char *path;
        int status;
        const char *type, *contains;
    } get[] = {
        {"/", 200, "text/html", "<title>Trastenda"},
        {"/index.html", 200, "text/html", "sku-form"},
        {"/app.js", 200, "text/javascript", "refresh"},
        {"/style.css", 200, "text/css", "--accent"},
        {"/health", 200, "application/json", "\"alive\""},
        {"/ready", 200, "application/json", "\"ready\""},
        {"/metrics", 200, "text/plain; version=0.0.4", "trastenda_ops_total"},
        {"/v1/stock/TEE", 200, "application/json", "\"loc\":\"W1\""},
        {"/v1/stock/TEE?loc=W2", 200, "application/json", "\"on_hand\":4"},
        {"/v1/low-stock?limit=10", 200, "application/json", "\"sku\":\"CAP\""},
        {"/v1/reorder?limit=10", 200, "application/json", "\"suggested_qty\""},
        {"/v1/status", 200, "application/json", "\"role\":\"leader\""},
        {"/v1/ledger/TEE?limit=2", 200, "application/json", "\"move\":\"adjust\""},
        {"/v1/expiring-holds?limit=3", 200, "application/json", "\"rows\":["},
        {"/v1/holds/1", 200, "application/json", "\"state\":\"open\""},
        {"/v1/orders/O-1", 200, "application/json", "\"order\":\"O-1\""},
        {"/v1/stock/NOPE", 404, "application/json", "\"code\":3,"},
        {"/v1/holds/999999", 404, "application/json", "\"code\":5,"},
        {"/v1/orders/NOPE", 404, "application/json", "\"code\":6,"},
        {"/v1/stock/TEE?since=1", 400, "application/json", "\"code\":31,"},
        {"/v1/stock/TEE?limit=1", 200, "application/json", "\"next\":1,"},
        {"/v1/holds/abc", 400, "application/json", "\"code\":32,"},
        {"/v1/stock/TEE?loc=W1&loc=W2", 400, "application/json", "\"code\":27,"},
        {"/v1/stock/%zz", 400, "application/json", "\"code\":27,"},
        {"/nope", 404, "application/json", "\"code\":29,"},
        {"/v1/ops", 405, "application/json", "\"code\":29,"},
    };
    for (size_t i = 0; i < sizeof(get) / sizeof(get[0]); i++) {
        struct resp r = http(s, "GET", get[i].path, "", NULL);
        CHECK(r.status == get[i].status, "GET %s: %d, want %d: %.300s", get[i].path, r.status,
              get[i].status, r.body);
        char ct[128];
        snprintf(ct, sizeof(ct), "Content-Type: %s", get[i].type);
        CHECK(strstr(r.head, ct) != NULL, "GET %s: %s", get[i].path, r.head);
        CHECK(strstr(r.body, get[i].contains) != NULL, "GET %s: no '%s' in %.400s", get[i].path,
              get[i].contains, r.body);
        resp_free(&r);
    }
    /* a resource read answers its op's result and the node */
    struct resp r = http(s, "GET", "/v1/stock/TEE", "", NULL);
    json_t *j = parse(&r);
    CHECK(json_integer_value(json_object_get(j, "available")) > 0, "available: %s", r.body);
    CHECK(json_object_get(json_object_get(j, "node"), "epoch") != NULL, "node: %s", r.body);
    json_decref(j);
    resp_free(&r);
    /* HEAD: the headers of GET, no body */
    int fd = connect_to(s->http_port);
    const char head_req[] = "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send_all(fd, head_req, sizeof(head_req) - 1);
    char buf[2048] = "";
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_WAITALL);
    close(fd);
    CHECK(n > 0 && strncmp(buf, "HTTP/1.1 200", 12) == 0 && strstr(buf, "<html") == NULL,
          "HEAD /: %.200s", buf);
    /* methods other than GET on a read-only path */
    r = http(s, "DELETE", "/v1/stock/TEE", "", NULL);
    expect(&r, 405, 29, "DELETE /v1/stock");
    CHECK(strstr(r.head, "Allow: GET") != NULL, "405 without Allow: %s", r.head);
    resp_free(&r);
    r = http(s, "POST", "/metrics", JSON_CT, "{}");
    expect(&r, 405, 29, "POST /metrics");
    resp_free(&r);
}

/* Expect: 100-continue: the server says go on before the body is sent, then answers it. */
static void
check_continue(const struct server *s)
{
    static const char body[] = "{\"v\":1,\"id\":8,\"ops\":[{\"op\":\"stock\",\"sku\":\"TEE\"}]}";
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "POST /v1/ops HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Expect: 100-continue\r\nContent-Length: %zu\r\n\r\n",
                     sizeof(body) - 1);
    int fd = connect_to(s->http_port);
    CHECK(fd >= 0, "connect");
    send_all(fd, head, (size_t)n);
    char cont[64] = "";
    const char want[] = "HTTP/1.1 100 Continue\r\n\r\n";
    ssize_t got = recv(fd, cont, sizeof(want) - 1, MSG_WAITALL);
    CHECK(got == (ssize_t)sizeof(want) - 1 && memcmp(cont, want, sizeof(want) - 1) == 0,
          "no 100 Continue before the body: %.40s", cont);
    send_all(fd, body, sizeof(body) - 1);
    struct resp r;
    CHECK(read_resp(fd, &r), "no response after 100 Continue");
    close(fd);
    CHECK(r.status == 200 && result_code(&r, 0) == 0, "after 100 Continue: %.300s", r.body);
    resp_free(&r);
}

/* Keep-alive: several requests on one connection, answered in order. */
static void
check_keepalive(const struct server *s)
{
    int fd = connect_to(s->http_port);
    CHECK(fd >= 0, "connect");
    for (int i = 0; i < 20; i++) {
        char req[256];
        int n = snprintf(req, sizeof(req), "GET /v1/stock/TEE?loc=W%d HTTP/1.1\r\nHost: x\r\n\r\n",
                         1 + i % 2);
        send_all(fd, req, (size_t)n);
        struct resp r;
        CHECK(read_resp(fd, &r), "keep-alive response %d", i);
        CHECK(r.status == 200 && strstr(r.body, i % 2 ? "\"W2\"" : "\"W1\"") != NULL,
              "keep-alive %d: %.200s", i, r.body);
        resp_free(&r);
    }
    close(fd);
}

static int64_t
tee_w1(const struct server *s)
{
    struct resp r = http(s, "GET", "/v1/stock/TEE?loc=W1", "", NULL);
    CHECK(r.status == 200, "stock: %.200s", r.body);
    json_t *j = parse(&r);
    json_t *rec = json_array_get(json_object_get(j, "records"), 0);
    int64_t v = json_integer_value(json_object_get(rec, "on_hand"));
    json_decref(j);
    resp_free(&r);
    return v;
}

/* Every class of bad input: its status and code, nothing changed, the server still answers. */
static void
check_bad_input(const struct server *s)
{
    int64_t before = tee_w1(s);
    static const char RECV[] = "{\"v\":1,\"id\":5,\"ops\":[{\"op\":\"receive\",\"sku\":\"TEE\","
                               "\"loc\":\"W1\",\"qty\":1}]}";
    struct {
        const char *hdrs, *body;
        int status, code;
        const char *what;
    } bad[] = {
        {AUTH_A, "{\"v\":1,\"id\":5,\"ops\":[", 400, 27, "truncated JSON"},
        {AUTH_A, "[1,2]", 400, 27, "not an object"},
        {AUTH_A, "{\"v\":1} x", 400, 27, "garbage after the object"},
        {AUTH_A, "", 400, 27, "empty body"},
        {AUTH_A, "\"\xff\xfe\"", 400, 27, "not UTF-8"},
        {AUTH_A, "{\"v\":1,\"id\":5}", 400, 30, "no ops"},
        {AUTH_A, "{\"v\":2,\"id\":5,\"ops\":[]}", 400, 28, "version"},
        {AUTH_A, "{\"v\":1,\"id\":5,\"ops\":[]}", 400, 33, "no op"},
        {AUTH_A, "{\"v\":1,\"id\":-5,\"ops\":[{\"op\":\"noop\"}]}", 400, 33, "negative id"},
        {AUTH_A, "{\"v\":1,\"id\":5,\"ops\":{}}", 400, 32, "ops not an array"},
        {AUTH_A, "{\"v\":1,\"id\":5,\"ops\":[],\"x\":1}", 400, 31, "unknown envelope field"},
        {AUTH_A, "{\"v\":1,\"id\":5,\"id\":6,\"ops\":[{\"op\":\"noop\"}]}", 400, 35, "dup key"},
        {AUTH_A,
         "{\"v\":1,\"id\":5,\"ops\":[{\"op\":\"receive\",\"sku\":\"TEE\",\"loc\":\"W1\","
         "\"qty\":1,\"qty\":2}]}",
         400, 35, "dup key in an op"},
        {AUTH_A, "{\"v\":1,\"id\":99999999999999999999,\"ops\":[]}", 400, 33, "integer overflow"},
        {"Content-Type: text/plain\r\n", RECV, 415, 27, "content type"},
        {"", RECV, 415, 27, "no content type"},
        {JSON_CT, RECV, 401, 43, "no token"},
        {"Content-Type: application/json\r\nAuthorization: Bearer wrongwrongwrongwrong\r\n", RECV,
         401, 43, "wrong token"},
        {"Content-Type: application/json\r\nAuthorization: Basic abc\r\n", RECV, 401, 43,
         "not a bearer token"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct resp r = post_ops(s, bad[i].hdrs, bad[i].body);
        expect(&r, bad[i].status, bad[i].code, bad[i].what);
        resp_free(&r);
    }
    /* too many ops: 1025 noops */
    size_t cap = 32 + 1025 * 16;
    char *many = malloc(cap);
    size_t at = (size_t)snprintf(many, cap, "{\"v\":1,\"id\":5,\"ops\":[");
    for (int i = 0; i < 1025; i++)
        at += (size_t)snprintf(many + at, cap - at, "%s{\"op\":\"noop\"}", i ? "," : "");
    snprintf(many + at, cap - at, "]}");
    struct resp r = post_ops(s, AUTH_A, many);
    expect(&r, 400, 36, "too many ops");
    resp_free(&r);
    free(many);
    /* a body over --http-body-max (65536): refused before it is read */
    char *big = malloc(70001);
    memset(big, ' ', 70000);
    big[70000] = '\0';
    r = post_ops(s, AUTH_A, big);
    expect(&r, 413, 38, "body over the limit");
    CHECK(strstr(r.head, "Connection: close") != NULL, "413 keeps the connection: %s", r.head);
    resp_free(&r);
    free(big);
    /* no Content-Length (chunked) */
    int fd = connect_to(s->http_port);
    const char chunked[] = "POST /v1/ops HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    send_all(fd, chunked, sizeof(chunked) - 1);
    CHECK(read_resp(fd, &r), "chunked: no response");
    close(fd);
    expect(&r, 411, 27, "chunked body");
    resp_free(&r);
    /* a URI over 2048 bytes */
    char uri[3000] = "/v1/stock/";
    memset(uri + 10, 'A', 2500);
    uri[2510] = '\0';
    r = http(s, "GET", uri, "", NULL);
    expect(&r, 414, 38, "long URI");
    resp_free(&r);
    CHECK(tee_w1(s) == before, "bad input changed the stock: %lld -> %lld", (long long)before,
          (long long)tee_w1(s));
    r = post_ops(s, AUTH_A, RECV);
    CHECK(r.status == 200 && result_code(&r, 0) == 0, "after the bad input: %.300s", r.body);
    resp_free(&r);
    CHECK(tee_w1(s) == before + 1, "the receive did not apply");
}

/* Tokens: writes need one on both encodings; the ledger names the token; reads stay open. */
static void
check_tokens(const struct server *s)
{
    trastenda_client *none = client(s, NULL, NULL, NULL, NULL, 5000);
    trastenda_client *bob = client(s, SECRET_B, NULL, NULL, NULL, 5000);
    trastenda_args a;
    trastenda_args_init(&a, "receive");
    a.sku = "CAP";
    a.loc = "W2";
    a.qty = 3;
    a.actor = "mallory";
    trastenda_reply r;
    trastenda_err e = trastenda_call(none, &a, &r);
    CHECK(e == TRASTENDA_E_UNAUTHORIZED || r.code == TRASTENDA_E_UNAUTHORIZED,
          "msgpack write without a token: %s / %s", trastenda_err_name(e), r.name);
    trastenda_reply_clear(&r);
    CHECK(status_call(none) == TRASTENDA_OK, "reads are open");
    e = trastenda_call(bob, &a, &r);
    CHECK(e == TRASTENDA_OK && r.code == TRASTENDA_OK, "write with bob's token: %s %s",
          trastenda_err_name(e), r.msg);
    trastenda_reply_clear(&r);
    trastenda_client_close(none);
    trastenda_client_close(bob);
    /* the ledger's newest movement of CAP is bob's, whatever the op said */
    struct resp h = http(s, "GET", "/v1/ledger/CAP?limit=1", "", NULL);
    CHECK(strstr(h.body, "\"actor\":\"" TOKEN_B "\"") != NULL, "actor: %.400s", h.body);
    resp_free(&h);
    /* the envelope's token works on HTTP too */
    h = post_ops(s, JSON_CT,
                 "{\"v\":1,\"id\":3,\"token\":\"" SECRET_A "\",\"ops\":[{\"op\":\"receive\","
                 "\"sku\":\"CAP\",\"loc\":\"W2\",\"qty\":1}]}");
    CHECK(h.status == 200 && result_code(&h, 0) == 0, "envelope token: %.300s", h.body);
    resp_free(&h);
    h = http(s, "GET", "/v1/ledger/CAP?limit=1", "", NULL);
    CHECK(strstr(h.body, "\"actor\":\"" TOKEN_A "\"") != NULL, "actor: %.400s", h.body);
    resp_free(&h);
}

/* ---- metrics ---- */

/* The value of the series whose line starts with `series ` (name and labels), or -1. */
static double
metric(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ') return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p != NULL) p++;
    }
    return -1;
}

static char *
scrape(const struct server *s)
{
    struct resp r = http(s, "GET", "/metrics", "", NULL);
    CHECK(r.status == 200, "/metrics: %d", r.status);
    return r.body; /* the caller frees it */
}

static void
promtool(const char *text)
{
    char path[400], cmd[900];
    snprintf(path, sizeof(path), "%s/metrics.txt", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL && fputs(text, f) >= 0 && fclose(f) == 0, "write %s", path);
    snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s' > '%s/promtool.out' 2>&1", path, dir);
    int rc = system(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof(cmd), "cat '%s/promtool.out' >&2", dir);
        if (system(cmd) != 0) fprintf(stderr, "(no promtool output)\n");
    }
    CHECK(rc == 0, "promtool check metrics failed (exit %d); is the prometheus package installed?",
          rc);
}

/* A scripted workload moves the counters by what it did. */
static void
check_metrics(const struct server *s)
{
    char *m0 = scrape(s);
    promtool(m0);
    const char *ok_reserve = "trastenda_ops_total{op=\"reserve\",result=\"OK\"}";
    const char *short_reserve = "trastenda_ops_total{op=\"reserve\",result=\"E_SHORT\"}";
    const char *http_req = "trastenda_requests_total{transport=\"http\"}";
    const char *mp_req = "trastenda_requests_total{transport=\"msgpack\"}";
    const char *acks = "trastenda_durable_ack_seconds_count";
    const char *writes = "trastenda_log_write_seconds_count";
    const char *writes_sum = "trastenda_log_write_seconds_sum";
    const char *holds = "trastenda_table_entries{table=\"holds\"}";
    const char *bad_json =
        "trastenda_request_errors_total{transport=\"http\",result=\"E_MALFORMED\"}";
    double r0 = metric(m0, ok_reserve), s0 = metric(m0, short_reserve), h0 = metric(m0, http_req),
           p0 = metric(m0, mp_req), a0 = metric(m0, acks), t0 = metric(m0, holds),
           b0 = metric(m0, bad_json), w0 = metric(m0, writes), ws0 = metric(m0, writes_sum);
    CHECK(w0 >= 0 && ws0 >= 0, "log write series missing:\n%s", m0);
    CHECK(r0 >= 0 && h0 >= 0 && p0 >= 0 && a0 >= 0 && t0 >= 0, "series missing:\n%s", m0);
    CHECK(metric(m0, "trastenda_ready") == 1, "ready");
    CHECK(metric(m0, "trastenda_table_capacity{table=\"holds\"}") == 4096, "holds capacity");
    CHECK(metric(m0, "trastenda_process_resident_memory_bytes") > 1e6, "RSS");
    /* 10 reserves over JSON (one each), 5 over msgpack, 3 short, 2 malformed bodies */
    for (int i = 0; i < 10; i++) {
        struct resp r = post_ops(s, AUTH_A,
                                 "{\"v\":1,\"id\":9,\"ops\":[{\"op\":\"reserve\",\"ttl_ms\":60000,"
                                 "\"lines\":[{\"sku\":\"TEE\",\"loc\":\"W1\",\"qty\":1}]}]}");
        CHECK(r.status == 200 && result_code(&r, 0) == 0, "reserve: %.300s", r.body);
        resp_free(&r);
    }
    trastenda_client *c = client(s, SECRET_A, NULL, NULL, NULL, 5000);
    for (int i = 0; i < 8; i++) {
        trastenda_cline line = {"TEE", "W2", i < 5 ? 0 : 1000, 0};
        line.qty = i < 5 ? 0 : 1000;
        if (i < 5) line = (trastenda_cline){"CAP", "W2", 1, 0};
        trastenda_reply r;
        CHECK(trastenda_reserve(c, &line, 1, 60000, NULL, &r) == TRASTENDA_OK, "reserve");
        CHECK(r.code == (i < 5 ? TRASTENDA_OK : TRASTENDA_E_SHORT), "msgpack reserve %d: %s", i,
              r.name);
        trastenda_reply_clear(&r);
    }
    trastenda_client_close(c);
    for (int i = 0; i < 2; i++) {
        struct resp r = post_ops(s, AUTH_A, "{oops");
        resp_free(&r);
    }
    char *m1 = scrape(s);
    promtool(m1);
    CHECK(metric(m1, ok_reserve) == r0 + 15, "reserves OK: %g -> %g", r0, metric(m1, ok_reserve));
    CHECK(metric(m1, short_reserve) == (s0 < 0 ? 0 : s0) + 3, "reserves short: %g -> %g", s0,
          metric(m1, short_reserve));
    CHECK(metric(m1, http_req) >= h0 + 12, "http requests: %g -> %g", h0, metric(m1, http_req));
    CHECK(metric(m1, mp_req) >= p0 + 8, "msgpack requests: %g -> %g", p0, metric(m1, mp_req));
    CHECK(metric(m1, acks) >= a0 + 18, "durable acks: %g -> %g", a0, metric(m1, acks));
    /* each OK reserve came alone (one after the other): a log write each, which takes time */
    CHECK(metric(m1, writes) >= w0 + 15 && metric(m1, writes_sum) > ws0, "log writes: %g -> %g", w0,
          metric(m1, writes));
    CHECK(metric(m1, "trastenda_log_write_seconds_bucket{le=\"+Inf\"}") == metric(m1, writes),
          "the log write histogram's last bucket is its count");
    CHECK(metric(m1, holds) == t0 + 15, "holds: %g -> %g", t0, metric(m1, holds));
    CHECK(metric(m1, bad_json) == (b0 < 0 ? 0 : b0) + 2, "malformed: %g -> %g", b0,
          metric(m1, bad_json));
    free(m0);
    free(m1);
}

/* ---- a follower ---- */

/* A leader and its follower: the follower is ready once it reaches the leader, says so in its
 * metrics, and the leader's metrics list it with its lag; both pass promtool. */
static void
check_follower(void)
{
    char lrepl[64], frepl[64];
    snprintf(lrepl, sizeof(lrepl), "tcp://127.0.0.1:%d", free_port());
    snprintf(frepl, sizeof(frepl), "tcp://127.0.0.1:%d", free_port());
    const char *lx[] = {"--repl", lrepl, NULL};
    const char *fx[] = {"--repl", frepl, "--follow", lrepl, NULL};
    struct server *l = server_start(1, "leader", "tcp", "http", lx);
    wait_ready(l);
    setup_data(l);
    struct server *f = server_start(2, "follower", "tcp", "http", fx);
    wait_ready(f);
    char *fm = NULL, *lm = NULL;
    for (int k = 0; k < 200; k++) { /* until the follower has the leader's log */
        free(fm);
        fm = scrape(f);
        if (metric(fm, "trastenda_replication_connected") == 1 &&
            metric(fm, "trastenda_replication_lag_entries") == 0 &&
            metric(fm, "trastenda_table_entries{table=\"skus\"}") == 2)
            break;
        usleep(50000);
    }
    CHECK(metric(fm, "trastenda_replication_connected") == 1, "follower metrics:\n%s", fm);
    CHECK(metric(fm, "trastenda_table_entries{table=\"skus\"}") == 2, "the follower's tables");
    CHECK(strstr(fm, "trastenda_node_info{role=\"follower\"") != NULL, "follower role");
    promtool(fm);
    lm = scrape(l);
    char series[200];
    snprintf(series, sizeof(series), "trastenda_replication_follower_lag_entries{follower=\"%s\"}",
             f->req);
    CHECK(metric(lm, "trastenda_replication_followers") == 1 && metric(lm, series) >= 0,
          "leader metrics:\n%s", lm);
    promtool(lm);
    struct resp r = http(f, "GET", "/ready", "", NULL);
    CHECK(r.status == 200, "follower /ready: %d %s", r.status, r.body);
    resp_free(&r);
    r = http(f, "GET", "/v1/stock/TEE", "", NULL);
    CHECK(r.status == 200 && strstr(r.body, "\"role\":\"follower\"") != NULL,
          "a follower's read: %.300s", r.body);
    resp_free(&r);
    r = post_ops(f, AUTH_A, SETUP);
    CHECK(r.status == 200 && result_code(&r, 0) == 39, "a follower's write: %.300s", r.body);
    resp_free(&r);
    /* without its leader the follower stops being ready */
    server_stop(l);
    int st = 0;
    for (int k = 0; k < 200 && st != 503; k++) {
        r = http(f, "GET", "/ready", "", NULL);
        st = r.status;
        resp_free(&r);
        if (st != 503) usleep(50000);
    }
    CHECK(st == 503, "a follower without its leader stays ready");
    server_stop(f);
    free(fm);
    free(lm);
}

/* ---- TLS ---- */

static void
sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    CHECK(rc == 0, "command failed (%d): %s", rc, cmd);
}

/* A CA, a server certificate for 127.0.0.1 and a client certificate it signed; another CA and a
 * client certificate of that one. */
static void
make_certs(void)
{
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    sh("cd '%s' && openssl req -x509 %s -keyout ca.key -out ca.pem -days 2 -subj '/CN=Test CA' "
       "2>/dev/null",
       dir, ec);
    sh("cd '%s' && openssl req -x509 %s -keyout other.key -out other.pem -days 2 "
       "-subj '/CN=Other CA' 2>/dev/null",
       dir, ec);
    sh("cd '%s' && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext && "
       "openssl req %s -keyout server.key -out server.csr -subj '/CN=localhost' 2>/dev/null && "
       "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
       "-out server.pem -days 2 -extfile san.ext 2>/dev/null",
       dir, ec);
    sh("cd '%s' && openssl req %s -keyout client.key -out client.csr -subj '/CN=till' "
       "2>/dev/null && openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key "
       "-CAcreateserial -out client.pem -days 2 2>/dev/null",
       dir, ec);
    sh("cd '%s' && openssl req %s -keyout rogue.key -out rogue.csr -subj '/CN=rogue' "
       "2>/dev/null && openssl x509 -req -in rogue.csr -CA other.pem -CAkey other.key "
       "-CAcreateserial -out rogue.pem -days 2 2>/dev/null",
       dir, ec);
}

static int
curl_rc(const struct server *s, const char *opts)
{
    char cmd[1500];
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && curl -s -o /dev/null -m 10 -w '%%{http_code}' %s %s/health "
             "> curl.out 2>/dev/null",
             dir, opts, s->http);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void
check_tls(void)
{
    make_certs();
    char cert[400], key[400], ca[400], ca_arg[500], other[400], ccert[400], ckey[400], rcert[400],
        rkey[400];
    snprintf(cert, sizeof(cert), "%s/server.pem", dir);
    snprintf(key, sizeof(key), "%s/server.key", dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    snprintf(other, sizeof(other), "%s/other.pem", dir);
    snprintf(ccert, sizeof(ccert), "%s/client.pem", dir);
    snprintf(ckey, sizeof(ckey), "%s/client.key", dir);
    snprintf(rcert, sizeof(rcert), "%s/rogue.pem", dir);
    snprintf(rkey, sizeof(rkey), "%s/rogue.key", dir);
    snprintf(ca_arg, sizeof(ca_arg), "%s", ca);
    const char *extra[] = {"--tls-cert",        cert,       "--tls-key", key, "--tls-ca", ca_arg,
                           "--tls-client-auth", "required", NULL};
    struct server *s = server_start(3, "tls", "tls+tcp", "https", extra);
    /* HTTPS: the right CA and a client certificate */
    int rc = -1;
    for (int k = 0;
         k < 100 && (rc = curl_rc(s, "--cacert ca.pem --cert client.pem --key client.key")) != 0;
         k++)
        usleep(100000);
    CHECK(rc == 0, "https with the CA and a client certificate: curl exit %d", rc);
    CHECK(curl_rc(s, "--cert client.pem --key client.key") != 0, "https without the CA connected");
    CHECK(curl_rc(s, "--cacert other.pem --cert client.pem --key client.key") != 0,
          "https with another CA connected");
    CHECK(curl_rc(s, "--cacert ca.pem") != 0, "https without a client certificate connected");
    CHECK(curl_rc(s, "--cacert ca.pem --cert rogue.pem --key rogue.key") != 0,
          "https with a client certificate of another CA connected");
    /* msgpack over tls+tcp:// */
    trastenda_client *good = client(s, NULL, ca, ccert, ckey, 5000);
    CHECK(status_call(good) == TRASTENDA_OK, "tls+tcp with the CA and a client certificate");
    trastenda_client_close(good);
    struct {
        const char *ca, *cert, *key, *what;
    } refused[] = {
        {NULL, ccert, ckey, "no CA"},
        {other, ccert, ckey, "another CA"},
        {ca, NULL, NULL, "no client certificate"},
        {ca, rcert, rkey, "a client certificate of another CA"},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        trastenda_client *c = client(s, NULL, refused[i].ca, refused[i].cert, refused[i].key, 1500);
        trastenda_err e = status_call(c);
        CHECK(e == TRASTENDA_E_TIMEOUT || e == TRASTENDA_E_CONNECT,
              "tls+tcp with %s: %s (should be refused)", refused[i].what, trastenda_err_name(e));
        trastenda_client_close(c);
    }
    server_stop(s);
}

/* A listener beyond loopback without tokens: the server refuses to start, naming the fix. */
static void
check_loopback_rule(void)
{
    char data[400], log[400];
    snprintf(data, sizeof(data), "%s/open", dir);
    snprintf(log, sizeof(log), "%s/open.log", dir);
    char cmd[1200];
    snprintf(cmd, sizeof(cmd),
             "'%s' --listen tcp://0.0.0.0:%d --http none --events none --repl none --data '%s' "
             "2> '%s'",
             TS_SERVER_PATH, free_port(), data, log);
    int rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 2, "beyond loopback without tokens: exit %d", rc);
    snprintf(cmd, sizeof(cmd), "grep -q 'listens beyond loopback: set tokens' '%s'", log);
    CHECK(system(cmd) == 0, "the refusal does not say why");
}

int
main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/trastenda-plain-http-XXXXXX");
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    atexit(cleanup);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGALRM, on_signal);
    alarm(500);
    signal(SIGPIPE, SIG_IGN);

    const char *tokens[] = {"--tokens", TOKEN_A ":" SECRET_A "," TOKEN_B ":" SECRET_B, NULL};
    struct server *main_srv = server_start(0, "main", "tcp", "http", tokens);
    struct server *pm = server_start(1, "parity-msgpack", "tcp", "http", NULL);
    struct server *pj = server_start(2, "parity-json", "tcp", "http", NULL);
    wait_ready(main_srv);
    wait_ready(pm);
    wait_ready(pj);
    setup_data(main_srv);
    setup_data(pm);
    setup_data(pj);
    fprintf(stderr, "plain_http: servers up\n");

    check_parity(pm, pj);
    fprintf(stderr, "plain_http: the same batch over msgpack and JSON: the same reply\n");
    server_stop(pm);
    server_stop(pj);

    /* the main server gets the parity batch too (a hold, an order to read) */
    struct resp r = post_ops(main_srv, AUTH_A, BATCH);
    CHECK(r.status == 200, "batch: %.200s", r.body);
    resp_free(&r);
    check_routes(main_srv);
    check_keepalive(main_srv);
    check_continue(main_srv);
    fprintf(stderr, "plain_http: every route\n");
    check_bad_input(main_srv);
    fprintf(stderr, "plain_http: every class of bad input\n");
    check_tokens(main_srv);
    fprintf(stderr, "plain_http: tokens and actors\n");
    check_metrics(main_srv);
    fprintf(stderr, "plain_http: metrics pass promtool and move\n");
    server_stop(main_srv);

    check_follower();
    fprintf(stderr, "plain_http: a follower: ready, metrics with its lag, reads, writes refused\n");
    check_loopback_rule();
    check_tls();
    fprintf(stderr, "plain_http: TLS: right CA and client certificate in, the rest out\n");
    fprintf(stderr, "plain_http: ok\n");
    return 0;
}
