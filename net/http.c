/*
 * net/http.c - HTTP in the server's process (docs/HTTP.md), on nng's HTTP server: the JSON API
 * (POST /v1/ops and the resource reads under /v1/), GET /metrics, /health, /ready and the
 * dashboard's files.
 *
 * Design notes
 *
 * (1) One path for both encodings. A JSON request is decoded into the same struct proto_req as a
 *     msgpack one (net/proto_json.c), validated by proto_validate and run by srv_run() on a
 *     struct srv_ctx of its own: writes go through the store's queue and are answered once
 *     durable, reads run where msgpack's run. The reply is encoded by net/reply.c in msgpack as
 *     always, then written out as JSON (net/mpjson.c), so that both encodings carry the same
 *     results, codes and messages. Resource reads (GET /v1/stock/X ...) are built as a one-op
 *     JSON request and take the same path; they answer with that op's result.
 *
 * (2) Bodies are read here, not by nng: nng answers an oversized body with its own HTML page, and
 *     reads any Content-Length it is given into memory. The handler asks nng for no body, checks
 *     the content type and length first (415, 411, 413 as JSON), then reads exactly that many
 *     bytes from the connection. A request whose body is left unread closes its connection.
 *
 * (3) A pool of http_contexts slots bounds the requests in flight (and the memory they hold:
 *     body, parsed document, reply); a request finding none gets 503 E_BUSY at once.
 *
 * (4) Lifetime. `active` counts handler calls in progress; stop sets `stopping` first, so that a
 *     call that counted itself after stop looked sees it and leaves at once (both sides use
 *     sequentially consistent atomics), waits for active to drain, then closes nng's server.
 *     nng calls the handler's destructor once no callback can run any more: only then is the
 *     pool freed.
 */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mpjson.h"
#include "proto_json.h"
#include "repl.h"
#include "srv.h" /* nng.h before its supplemental headers */
#include "web.h"

#include <nng/supplemental/http/http.h>

#define LOAD(p)     __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define ADD(p, v)   __atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST)

#define URI_BYTES_MAX 2048 /* path and query; longer is 414 */

struct http;

/* One request that needs the engine or the store: a slot of the pool (Design note (3)). */
struct hreq {
    struct srv_ctx c; /* decode, validate, run and encode as any request (Design note (1)) */
    struct http *h;
    nng_aio *uaio; /* nng's handler aio: finished with the response */
    nng_aio *rd;   /* reads the body */
    uint8_t *body;
    size_t body_len, body_cap;
    json_t *doc;                           /* the request: c.q's strings point into it */
    nng_http_conn *conn;                   /* the body's */
    bool continuing;                       /* rd writes "100 Continue", then reads the body */
    bool resource;                         /* answer with results[0] alone */
    bool close;                            /* Connection: close */
    char token[AUTH_SECRET_BYTES_MAX + 1]; /* a bearer token */
    size_t token_len;
    trastenda_request mreq; /* a /metrics scrape's engine query */
    trastenda_engine_stats es;
    bool scrape;
    struct mpjson_buf out;
    struct hreq *next;
};

struct http {
    struct srv *s;
    nng_http_server *server;
    nng_http_handler *handler;
    pthread_mutex_t mu; /* the free list */
    struct hreq *slots, *free;
    uint32_t n_slots;
    uint32_t active;   /* handler calls in progress (Design note (4)) */
    uint32_t stopping; /* no new request is served */
    uint32_t gone;     /* nng dropped the handler: no callback can run any more */
    uint64_t busy;     /* requests refused: no free slot */
};

/* ---- responses ---- */

static uint16_t
status_of(trastenda_err e)
{
    switch (e) {
    case TRASTENDA_OK:
        return 200;
    case TRASTENDA_E_UNAUTHORIZED:
        return 401;
    case TRASTENDA_E_UNKNOWN_SKU:
    case TRASTENDA_E_UNKNOWN_LOCATION:
    case TRASTENDA_E_UNKNOWN_HOLD:
    case TRASTENDA_E_UNKNOWN_ORDER:
    case TRASTENDA_E_UNKNOWN_PO:
    case TRASTENDA_E_NO_STOCK_RECORD:
        return 404;
    case TRASTENDA_E_TOO_BIG:
        return 413;
    case TRASTENDA_E_NOT_LEADER:
        return 421;
    case TRASTENDA_E_IO:
    case TRASTENDA_E_NOMEM:
        return 500;
    case TRASTENDA_E_BUSY:
    case TRASTENDA_E_CLOSED:
        return 503;
    case TRASTENDA_E_TIMEOUT:
        return 504;
    default:
        if (e == TRASTENDA_E_INVALID ||
            (e >= TRASTENDA_E_MALFORMED && e <= TRASTENDA_E_TOO_MANY_LINES))
            return 400;
        return 409; /* the state does not allow it */
    }
}

/* Reason phrases nng 1.5 does not know (it says "Unknown HTTP Status"). */
static const char *
reason_of(uint16_t status)
{
    switch (status) {
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 421:
        return "Misdirected Request";
    default:
        return NULL;
    }
}

/* Finishes nng's handler aio with a response; data is copied. allow: the Allow header of a 405. */
static void
respond_allow(struct http *h, nng_aio *aio, uint16_t status, const char *type, const void *data,
              size_t len, bool close, const char *allow)
{
    nng_http_res *res;
    if (nng_http_res_alloc(&res) != 0) {
        nng_aio_finish(aio, NNG_ENOMEM); /* nng closes the connection */
        return;
    }
    int rv = nng_http_res_set_status(res, status);
    if (rv == 0 && reason_of(status) != NULL) rv = nng_http_res_set_reason(res, reason_of(status));
    if (rv == 0 && allow != NULL) rv = nng_http_res_set_header(res, "Allow", allow);
    if (rv == 0) rv = nng_http_res_set_header(res, "Content-Type", type);
    if (rv == 0) rv = nng_http_res_set_header(res, "Cache-Control", "no-store");
    if (rv == 0 && status == 503) rv = nng_http_res_set_header(res, "Retry-After", "1");
    if (rv == 0 && close) rv = nng_http_res_set_header(res, "Connection", "close");
    if (rv == 0) rv = nng_http_res_copy_data(res, data, len);
    if (rv != 0) {
        nng_http_res_free(res);
        nng_aio_finish(aio, rv);
        return;
    }
    metrics_http_status(&h->s->metrics, status);
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

static void
respond(struct http *h, nng_aio *aio, uint16_t status, const char *type, const void *data,
        size_t len, bool close)
{
    respond_allow(h, aio, status, type, data, len, close, NULL);
}

/* The node's envelope fields, as JSON members (without braces). */
static void
node_fields(struct http *h, struct mpjson_buf *w)
{
    struct srv *s = h->s;
    bool ready = LOAD(&s->ready) != 0;
    bool follower = ready ? srv_is_follower(s)
                          : (s->cfg.not_leader != NULL && s->cfg.not_leader[0] != '\0') ||
                                __atomic_load_n(&s->cfg.follow, __ATOMIC_ACQUIRE) != NULL;
    char buf[160];
    int n;
    if (ready)
        n = snprintf(buf, sizeof(buf), "\"role\":\"%s\",\"epoch\":%llu,\"seq\":%llu",
                     follower ? "follower" : "leader",
                     (unsigned long long)trastenda_engine_epoch(s->eng),
                     (unsigned long long)trastenda_store_durable_seq(s->store));
    else
        n = snprintf(buf, sizeof(buf), "\"role\":\"%s\"", follower ? "follower" : "leader");
    mpjson_write(w, buf, (size_t)n);
}

/* An error before any request ran: the shape of an envelope error reply. */
static void
respond_error(struct http *h, nng_aio *aio, uint16_t status, trastenda_err code, const char *msg,
              bool close, const char *allow)
{
    struct mpjson_buf w = {0};
    char head[64];
    int n = snprintf(head, sizeof(head), "{\"v\":%d,\"id\":0,", PROTO_VERSION);
    mpjson_write(&w, head, (size_t)n);
    node_fields(h, &w);
    n = snprintf(head, sizeof(head), ",\"results\":[],\"error\":{\"code\":%d,\"name\":", (int)code);
    mpjson_write(&w, head, (size_t)n);
    const char *name = trastenda_err_name(code);
    mpjson_str(&w, name, (uint32_t)strlen(name));
    mpjson_write(&w, ",\"msg\":", 7);
    mpjson_str(&w, msg, (uint32_t)strlen(msg));
    mpjson_write(&w, "}}\n", 3);
    if (w.oom)
        nng_aio_finish(aio, NNG_ENOMEM);
    else
        respond_allow(h, aio, status, "application/json", w.p, w.len, close, allow);
    free(w.p);
}

static void
respond_json(struct http *h, nng_aio *aio, uint16_t status, const char *json)
{
    respond(h, aio, status, "application/json", json, strlen(json), false);
}

/* ---- the pool ---- */

static struct hreq *
slot_take(struct http *h)
{
    pthread_mutex_lock(&h->mu);
    struct hreq *r = h->free;
    if (r != NULL) h->free = r->next;
    pthread_mutex_unlock(&h->mu);
    return r;
}

/* After the response: the slot's request is dropped, the slot goes back, the call is over. */
static void
slot_give(struct hreq *r)
{
    struct http *h = r->h;
    if (r->doc != NULL) json_decref(r->doc);
    r->doc = NULL;
    r->uaio = NULL;
    pthread_mutex_lock(&h->mu);
    r->next = h->free;
    h->free = r;
    pthread_mutex_unlock(&h->mu);
    ADD(&h->active, -1u);
}

/* ---- replies (Design note (1)) ---- */

/* The reply's error map and first result, found in the msgpack envelope. */
struct env_view {
    const uint8_t *error, *result;
    size_t error_len, result_len;
    trastenda_err code; /* of the error, or of the first result */
};

static bool
result_code(const uint8_t *p, size_t len, trastenda_err *code)
{
    struct mp_rd rd;
    uint32_t n;
    mp_rd_init(&rd, p, len);
    if (!mp_read_map(&rd, &n)) return false;
    for (uint32_t k = 0; k < n; k++) { /* bound: n checked against the bytes left */
        const char *key;
        uint32_t kl;
        uint64_t v;
        if (!mp_read_str(&rd, &key, &kl)) return false;
        if (kl == 4 && memcmp(key, "code", 4) == 0) {
            if (!mp_read_u64(&rd, &v)) return false;
            *code = (trastenda_err)v;
            return true;
        }
        if (!mp_skip(&rd, MPJSON_DEPTH_MAX)) return false;
    }
    return false;
}

static bool
env_view(const uint8_t *p, size_t len, struct env_view *v)
{
    struct mp_rd rd;
    uint32_t n, m;
    memset(v, 0, sizeof(*v));
    mp_rd_init(&rd, p, len);
    if (!mp_read_map(&rd, &n)) return false;
    for (uint32_t k = 0; k < n; k++) { /* bound: n checked against the bytes left */
        const char *key;
        uint32_t kl;
        if (!mp_read_str(&rd, &key, &kl)) return false;
        const uint8_t *at = rd.p;
        if (!mp_skip(&rd, MPJSON_DEPTH_MAX)) return false;
        if (kl == 5 && memcmp(key, "error", 5) == 0) {
            v->error = at;
            v->error_len = (size_t)(rd.p - at);
        } else if (kl == 7 && memcmp(key, "results", 7) == 0) {
            struct mp_rd a;
            mp_rd_init(&a, at, (size_t)(rd.p - at));
            if (mp_read_array(&a, &m) && m > 0) {
                v->result = a.p;
                if (!mp_skip(&a, MPJSON_DEPTH_MAX)) return false;
                v->result_len = (size_t)(a.p - v->result);
            }
        }
    }
    if (v->error != NULL) return result_code(v->error, v->error_len, &v->code);
    return v->result == NULL || result_code(v->result, v->result_len, &v->code);
}

/* The JSON of c->out: the whole envelope, or the first result with the node's fields. */
static uint16_t
reply_json(struct hreq *r)
{
    struct srv_ctx *c = &r->c;
    struct env_view v;
    struct mp_rd rd;
    r->out.len = 0;
    r->out.oom = false;
    if (!env_view(c->out, c->out_len, &v)) return 500;
    bool whole = !r->resource || v.error != NULL || v.result == NULL;
    mp_rd_init(&rd, whole ? c->out : v.result, whole ? c->out_len : v.result_len);
    if (!mpjson_value(&rd, &r->out, 0) || r->out.len < 2) return 500;
    if (!whole) {     /* the node's fields in the result: {... ,"node":{...}} */
        r->out.len--; /* its closing brace */
        mpjson_write(&r->out, ",\"node\":{", 9);
        node_fields(r->h, &r->out);
        mpjson_write(&r->out, "}}", 2);
    }
    mpjson_write(&r->out, "\n", 1);
    if (r->out.oom) return 500;
    return v.error != NULL || r->resource ? status_of(v.code) : 200;
}

/* srv_ctx.on_reply: the reply is encoded (msgpack) in c->out. */
static void
on_reply(struct srv_ctx *c)
{
    struct hreq *r = (struct hreq *)c; /* c is the first member */
    struct http *h = r->h;
    metrics_request(&h->s->metrics, MT_HTTP, c->q.n_ops, srv_mono_ns() - c->t_start_ns);
    uint16_t status = reply_json(r);
    if (status == 500 && r->out.len == 0)
        respond_error(h, r->uaio, 500, TRASTENDA_E_NOMEM, "the reply could not be written",
                      r->close, NULL);
    else
        respond(h, r->uaio, status, "application/json", r->out.p, r->out.len, r->close);
    slot_give(r);
}

/* The context's aio: the store or the slow worker finished (CTX_REPLY), or a scrape's query. */
static void work_cb(void *arg);

/* ---- running a request ---- */

/* A decoded document: validate, then run as any request. */
static void
run(struct hreq *r, bool decoded)
{
    struct srv_ctx *c = &r->c;
    struct srv *s = r->h->s;
    __atomic_fetch_add(&s->n_requests, 1, __ATOMIC_RELAXED);
    if (decoded && r->token_len > 0 && c->q.token.len == 0)
        c->q.token = (trastenda_str){r->token, (uint32_t)r->token_len};
    if (!decoded || !proto_validate(&c->q)) {
        __atomic_fetch_add(&s->n_bad_requests, 1, __ATOMIC_RELAXED);
        reply_encode_error(c, c->q.id, c->q.err, c->q.msg);
        on_reply(c);
        return;
    }
    srv_run(c);
}

static void
body_cb(void *arg)
{
    struct hreq *r = arg;
    int rv = nng_aio_result(r->rd);
    if (rv != 0) { /* the connection went away: nothing to answer */
        nng_aio_finish(r->uaio, rv);
        slot_give(r);
        return;
    }
    if (r->continuing) { /* the client was told to send its body: read it */
        r->continuing = false;
        nng_iov iov = {r->body, r->body_len};
        nng_aio_set_iov(r->rd, 1, &iov);
        nng_http_conn_read_all(r->conn, r->rd);
        return;
    }
    r->body_len = nng_aio_count(r->rd);
    bool ok = proto_decode_json(&r->c.q, r->body, r->body_len, &r->doc);
    run(r, ok);
}

/* ---- /metrics ---- */

static void
scrape_query(trastenda_request *req, const trastenda_engine *e)
{
    struct hreq *r = req->ctx;
    trastenda_engine_stats_get(e, &r->es);
}

static void
scrape_done(trastenda_request *req, trastenda_err status)
{
    struct hreq *r = req->ctx;
    if (status != TRASTENDA_OK) memset(&r->es, 0, sizeof(r->es));
    r->mreq.seq = status == TRASTENDA_OK; /* whether es holds the engine's figures */
    nng_aio_finish(r->c.aio, 0);          /* on to work_cb, on an nng thread */
}

/* The exposition; r NULL (recovering) or a slot whose query ran. */
static void
write_metrics(struct http *h, const struct hreq *r, struct mpjson_buf *out)
{
    struct srv *s = h->s;
    struct metrics_view v;
    memset(&v, 0, sizeof(v));
    v.ready = LOAD(&s->ready) != 0;
    v.have_store = r != NULL && r->mreq.seq == 1;
    if (v.have_store) {
        trastenda_store_stats_get(s->store, &v.st);
        v.es = r->es;
        v.caps = &s->cfg.store.engine;
        v.epoch = trastenda_engine_epoch(s->eng);
    }
    if (v.have_store) repl_view_get(s, &v.repl);
    v.follower =
        v.have_store ? v.repl.follower : __atomic_load_n(&s->cfg.follow, __ATOMIC_ACQUIRE) != NULL;
    v.uptime_s = (double)(srv_mono_ns() - s->started_ns) / 1e9;
    v.connections = __atomic_load_n(&s->conns, __ATOMIC_RELAXED);
    v.refused_connections = __atomic_load_n(&s->n_refused_conns, __ATOMIC_RELAXED);
    v.events_published = __atomic_load_n(&s->n_events, __ATOMIC_RELAXED);
    v.http_busy = LOAD(&h->busy);
    v.http_in_flight = LOAD(&h->active);
    v.msgpack_in_flight = __atomic_load_n(&s->busy_ctxs, __ATOMIC_RELAXED);
    metrics_write(&s->metrics, &v, out);
}

static const char PROM_TYPE[] = "text/plain; version=0.0.4; charset=utf-8";

static void
ctx_cancel(nng_aio *aio, void *arg, int rv)
{
    /* The store finishes the operation (exactly once) whatever happens. */
    (void)aio;
    (void)arg;
    (void)rv;
}

/* A scrape: the engine's table figures come from a query on its thread. */
static void
scrape(struct http *h, nng_aio *aio, bool close)
{
    struct srv *s = h->s;
    struct hreq *r = LOAD(&s->ready) ? slot_take(h) : NULL;
    if (r == NULL) { /* recovering, or every slot busy: the counters alone */
        struct mpjson_buf w = {0};
        write_metrics(h, NULL, &w);
        if (w.oom)
            nng_aio_finish(aio, NNG_ENOMEM);
        else
            respond(h, aio, 200, PROM_TYPE, w.p, w.len, close);
        free(w.p);
        ADD(&h->active, -1u);
        return;
    }
    r->uaio = aio;
    r->close = close;
    r->scrape = true;
    memset(&r->mreq, 0, sizeof(r->mreq));
    r->mreq.query = scrape_query;
    r->mreq.done = scrape_done;
    r->mreq.ctx = r;
    r->c.state = CTX_WORK;
    if (nng_aio_begin(r->c.aio)) nng_aio_defer(r->c.aio, ctx_cancel, r);
    if (trastenda_store_submit(s->store, &r->mreq) != TRASTENDA_OK)
        scrape_done(&r->mreq, TRASTENDA_E_BUSY);
}

static void
work_cb(void *arg)
{
    struct hreq *r = arg;
    if (r->scrape) {
        r->scrape = false;
        r->out.len = 0;
        r->out.oom = false;
        write_metrics(r->h, r, &r->out);
        if (r->out.oom)
            nng_aio_finish(r->uaio, NNG_ENOMEM);
        else
            respond(r->h, r->uaio, 200, PROM_TYPE, r->out.p, r->out.len, r->close);
        slot_give(r);
        return;
    }
    if (r->c.state == CTX_RESUME) { /* its min_seq wait is over */
        srv_resume(&r->c);
        return;
    }
    if (r->c.state != CTX_REPLY) return; /* stopped */
    reply_encode(&r->c);
    on_reply(&r->c);
}

/* ---- requests: reading them ---- */

static int
hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decoding (and '+' as a space in a query); false on a bad escape. out: n bytes. */
static bool
unescape(const char *s, size_t n, bool query, char *out, size_t *len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) { /* bound: n */
        char c = s[i];
        if (c != '%') {
            out[o++] = query && c == '+' ? ' ' : c;
            continue;
        }
        int hi = n - i >= 3 ? hexval(s[i + 1]) : -1, lo = n - i >= 3 ? hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0) return false;
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    *len = o;
    return true;
}

/* A bearer token into r (or *bad when it cannot be one); absent leaves it empty. */
static void
bearer(nng_http_req *req, char *tok, size_t *len, bool *bad)
{
    const char *a = nng_http_req_get_header(req, "Authorization");
    *len = 0;
    *bad = false;
    if (a == NULL) return;
    size_t n = strlen(a);
    if (n < 7 || strncasecmp(a, "Bearer ", 7) != 0 || n - 7 > AUTH_SECRET_BYTES_MAX) {
        *bad = true;
        return;
    }
    memcpy(tok, a + 7, n - 7);
    *len = n - 7;
}

/* A query or path value as JSON: an integer when the field takes one and it reads as one (else
 * the string, which validation refuses with the field's own message). */
static json_t *
typed(const char *key, size_t klen, const char *v, size_t n)
{
    int f = proto_field_lookup(key, (uint32_t)klen);
    bool num = f >= 0 && (proto_field_value(f) == PV_INT || proto_field_value(f) == PV_UINT);
    if (num && n > 0 && n < 24) {
        char buf[24], *end;
        memcpy(buf, v, n);
        buf[n] = '\0';
        long long x = strtoll(buf, &end, 10);
        if (*end == '\0' && (buf[0] == '-' || (buf[0] >= '0' && buf[0] <= '9')) &&
            !(x == LLONG_MAX || x == LLONG_MIN))
            return json_integer(x);
    }
    return json_stringn_nocheck(v, n);
}

/* Adds key=value to the op map; false with msg on a duplicate, a bad escape or no memory. */
static bool
add_param(json_t *op, const char *k, size_t kl, const char *v, size_t vl, bool query, char *msg,
          size_t cap)
{
    char key[256], val[URI_BYTES_MAX];
    size_t klen, vlen;
    char qb[48];
    if (kl > sizeof(key) || vl > sizeof(val) || !unescape(k, kl, query, key, &klen) ||
        !unescape(v, vl, query, val, &vlen)) {
        snprintf(msg, cap, "query: bad parameter '%s'",
                 proto_quote(qb, sizeof(qb), k, (uint32_t)kl));
        return false;
    }
    if (json_object_getn(op, key, klen) != NULL) {
        snprintf(msg, cap, "query: '%s' is given twice",
                 proto_quote(qb, sizeof(qb), key, (uint32_t)klen));
        return false;
    }
    json_t *j = typed(key, klen, val, vlen);
    if (j == NULL || json_object_setn_new_nocheck(op, key, klen, j) != 0) {
        snprintf(msg, cap, "out of memory");
        return false;
    }
    return true;
}

/* The resource reads (docs/HTTP.md): path prefix, op, and the field the path segment fills. */
struct resource {
    const char *path;
    const char *op;
    const char *field; /* NULL: the path is exact */
};

static const struct resource resources[] = {
    {"/v1/stock/", "stock", "sku"},       {"/v1/orders/", "order", "order"},
    {"/v1/holds/", "hold", "hold"},       {"/v1/ledger/", "ledger", "sku"},
    {"/v1/low-stock", "low_stock", NULL}, {"/v1/reorder", "reorder", NULL},
    {"/v1/status", "status", NULL},       {"/v1/expiring-holds", "holds.expiring", NULL},
};

static const struct resource *
resource_of(const char *path, size_t n)
{
    for (size_t i = 0; i < sizeof(resources) / sizeof(resources[0]); i++) {
        const struct resource *rs = &resources[i];
        size_t pl = strlen(rs->path);
        if (rs->field == NULL ? n == pl && memcmp(path, rs->path, pl) == 0
                              : n > pl && memcmp(path, rs->path, pl) == 0 &&
                                    memchr(path + pl, '/', n - pl) == NULL)
            return rs;
    }
    return NULL;
}

/* The one-op request of a resource read; NULL with msg when the path or query is bad. */
static json_t *
resource_doc(const struct resource *rs, const char *path, size_t n, const char *query, char *msg,
             size_t cap)
{
    json_t *doc =
        json_pack("{s:i,s:i,s:[{s:s}]}", "v", PROTO_VERSION, "id", 0, "ops", "op", rs->op);
    json_t *op = doc != NULL ? json_array_get(json_object_get(doc, "ops"), 0) : NULL;
    bool ok = op != NULL;
    if (!ok) snprintf(msg, cap, "out of memory");
    if (ok && rs->field != NULL) {
        size_t pl = strlen(rs->path);
        ok = add_param(op, rs->field, strlen(rs->field), path + pl, n - pl, false, msg, cap);
    }
    for (const char *q = query; ok && q != NULL && *q != '\0';) { /* bound: the query */
        const char *amp = strchr(q, '&');
        size_t len = amp != NULL ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        if (len > 0)
            ok = eq != NULL ? add_param(op, q, (size_t)(eq - q), eq + 1, len - (size_t)(eq - q) - 1,
                                        true, msg, cap)
                            : add_param(op, q, len, "", 0, true, msg, cap);
        q = amp != NULL ? amp + 1 : q + len;
    }
    if (!ok && doc != NULL) json_decref(doc);
    return ok ? doc : NULL;
}

/* ---- requests: routing ---- */

/* What a request is, besides its route. */
struct call {
    struct http *h;
    nng_aio *aio;
    nng_http_req *req;
    nng_http_conn *conn;
    bool get;  /* GET or HEAD */
    bool body; /* it has a body (that nothing reads unless it is POST /v1/ops) */
    char token[AUTH_SECRET_BYTES_MAX + 1];
    size_t token_len;
    bool bad_token;
    const char *allow; /* the methods of the path (405) */
};

static void
done(struct http *h)
{
    ADD(&h->active, -1u);
}

static void
fail(struct call *k, uint16_t status, trastenda_err code, const char *msg)
{
    respond_error(k->h, k->aio, status, code, msg, k->body, status == 405 ? k->allow : NULL);
    done(k->h);
}

/* A slot for a request that runs: the token, the clock. NULL after answering 503. */
static struct hreq *
slot_for(struct call *k, bool resource)
{
    struct hreq *r = slot_take(k->h);
    if (r == NULL) {
        ADD(&k->h->busy, 1);
        fail(k, 503, TRASTENDA_E_BUSY,
             "busy: every HTTP context is serving a request; retry in a few ms");
        return NULL;
    }
    r->uaio = k->aio;
    r->resource = resource;
    r->close = k->body && resource;
    r->scrape = false;
    memcpy(r->token, k->token, k->token_len);
    r->token_len = k->token_len;
    r->c.t_start_ns = srv_mono_ns();
    r->c.state = CTX_WORK;
    return r;
}

static bool
is_json(const char *ct)
{
    if (ct == NULL) return false;
    while (*ct == ' ')
        ct++;
    size_t n = strlen("application/json");
    return strncasecmp(ct, "application/json", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* POST /v1/ops (Design note (2)): the body is checked, then read, then decoded. */
static void
post_ops(struct call *k)
{
    struct http *h = k->h;
    const char *ct = nng_http_req_get_header(k->req, "Content-Type");
    const char *cl = nng_http_req_get_header(k->req, "Content-Length");
    char msg[TRASTENDA_MESSAGE_BYTES], qb[48];
    if (!is_json(ct)) {
        snprintf(msg, sizeof(msg), "Content-Type must be application/json (got '%s')",
                 ct != NULL ? proto_quote(qb, sizeof(qb), ct, (uint32_t)strlen(ct)) : "none");
        fail(k, 415, TRASTENDA_E_MALFORMED, msg);
        return;
    }
    char *end = NULL;
    unsigned long long len = cl != NULL ? strtoull(cl, &end, 10) : 0;
    if (cl == NULL || nng_http_req_get_header(k->req, "Transfer-Encoding") != NULL || end == cl ||
        *end != '\0' || cl[0] == '-') {
        k->body = true;
        fail(k, 411, TRASTENDA_E_MALFORMED,
             "Content-Length is required (chunked bodies are not read)");
        return;
    }
    if (len > h->s->cfg.http_body_max) {
        snprintf(msg, sizeof(msg), "request body of %llu bytes, at most %u", len,
                 h->s->cfg.http_body_max);
        fail(k, 413, TRASTENDA_E_TOO_BIG, msg);
        return;
    }
    struct hreq *r = slot_for(k, false);
    if (r == NULL) return;
    if (len > r->body_cap) {
        uint8_t *b = realloc(r->body, len);
        if (b == NULL) {
            slot_give(r);
            ADD(&h->active, 1); /* fail() ends the call */
            fail(k, 500, TRASTENDA_E_NOMEM, "out of memory for the body");
            return;
        }
        r->body = b;
        r->body_cap = len;
    }
    if (len == 0) {
        run(r, proto_decode_json(&r->c.q, r->body, 0, &r->doc));
        return;
    }
    /* A client that asks whether to send its body (libcurl does for large ones) is told to go on,
     * else it waits a second before sending it anyway. */
    static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    const char *expect = nng_http_req_get_header(k->req, "Expect");
    r->conn = k->conn;
    r->body_len = (size_t)len;
    r->continuing = expect != NULL && strcasecmp(expect, "100-continue") == 0;
    nng_iov iov = {r->continuing ? (void *)cont : (void *)r->body,
                   r->continuing ? sizeof(cont) - 1 : (size_t)len};
    nng_aio_set_iov(r->rd, 1, &iov);
    if (r->continuing)
        nng_http_conn_write_all(k->conn, r->rd);
    else
        nng_http_conn_read_all(k->conn, r->rd);
}

static void
get_resource(struct call *k, const struct resource *rs, const char *path, size_t n,
             const char *query)
{
    char msg[TRASTENDA_MESSAGE_BYTES];
    json_t *doc = resource_doc(rs, path, n, query, msg, sizeof(msg));
    if (doc == NULL) {
        fail(k, 400, TRASTENDA_E_MALFORMED, msg);
        return;
    }
    struct hreq *r = slot_for(k, true);
    if (r == NULL) {
        json_decref(doc);
        return;
    }
    r->doc = doc;
    run(r, proto_decode_json_value(&r->c.q, doc));
}

static void
get_ready(struct call *k)
{
    struct srv *s = k->h->s;
    trastenda_store_stats st;
    const char *why = NULL;
    if (!LOAD(&s->ready)) why = "{\"status\":\"recovering\"}\n";
    if (why == NULL) {
        trastenda_store_stats_get(s->store, &st);
        if (st.failed) why = "{\"status\":\"failed\",\"reason\":\"storage failure\"}\n";
    }
    /* A follower serves reads only as fresh as its link to the leader: ready while it reaches
     * the leader and lags it by at most ready_max_lag entries (0: any lag). */
    struct repl_view rv;
    if (why == NULL) repl_view_get(s, &rv);
    if (why == NULL && rv.follower && s->repl != NULL && !rv.connected)
        why = "{\"status\":\"lagging\",\"reason\":\"the leader is not reachable\"}\n";
    char lag[160];
    if (why == NULL && rv.follower && s->cfg.ready_max_lag > 0 &&
        rv.lag_ops > s->cfg.ready_max_lag) {
        snprintf(lag, sizeof(lag),
                 "{\"status\":\"lagging\",\"lag_entries\":%llu,\"ready_max_lag\":%u}\n",
                 (unsigned long long)rv.lag_ops, s->cfg.ready_max_lag);
        why = lag;
    }
    respond_json(k->h, k->aio, why == NULL ? 200 : 503,
                 why == NULL ? "{\"status\":\"ready\"}\n" : why);
    done(k->h);
}

/* The dashboard's file at path ("/" is index.html), or NULL. */
static const struct web_file *
web_find(const char *path, size_t n)
{
    if (n == 1 && path[0] == '/') return web_find("/index.html", 11);
    for (const struct web_file *f = web_files; f->path != NULL; f++) /* bound: the files */
        if (strlen(f->path) == n && memcmp(f->path, path, n) == 0) return f;
    return NULL;
}

static void
get_static(struct call *k, const struct web_file *f)
{
    respond(k->h, k->aio, 200, f->type, f->data, f->len, k->body);
    done(k->h);
}

/* The API's routes; false when path is not one of them. */
static bool
route_api(struct call *k, const char *method, const char *path, size_t n, const char *query)
{
    const struct resource *rs = resource_of(path, n);
    bool ops = n == 7 && memcmp(path, "/v1/ops", 7) == 0;
    if (!ops && rs == NULL) return false;
    char msg[TRASTENDA_MESSAGE_BYTES];
    if (ops != (strcmp(method, "POST") == 0) || (!ops && !k->get)) {
        snprintf(msg, sizeof(msg), "%.*s takes %s only", (int)(n < 100 ? n : 100), path,
                 ops ? "POST" : "GET");
        k->allow = ops ? "POST" : "GET, HEAD";
        fail(k, 405, TRASTENDA_E_UNKNOWN_OP, msg);
        return true;
    }
    if (!LOAD(&k->h->s->ready)) {
        fail(k, 503, TRASTENDA_E_CLOSED, "not ready: the node is recovering");
        return true;
    }
    if (k->bad_token) {
        fail(k, 401, TRASTENDA_E_UNAUTHORIZED, "token: Authorization must be 'Bearer <token>'");
        return true;
    }
    if (ops)
        post_ops(k);
    else
        get_resource(k, rs, path, n, query);
    return true;
}

static void
route(struct call *k, const char *method, const char *path, size_t n, const char *query)
{
    struct http *h = k->h;
    if (route_api(k, method, path, n, query)) return;
    const struct web_file *f = web_find(path, n);
    bool health = n == 7 && memcmp(path, "/health", 7) == 0;
    bool ready = n == 6 && memcmp(path, "/ready", 6) == 0;
    bool metrics = n == 8 && memcmp(path, "/metrics", 8) == 0;
    char msg[TRASTENDA_MESSAGE_BYTES], qb[48];
    if (!health && !ready && !metrics && f == NULL) {
        snprintf(msg, sizeof(msg), "no such path: '%s' (docs/HTTP.md lists them)",
                 proto_quote(qb, sizeof(qb), path, (uint32_t)n));
        fail(k, 404, TRASTENDA_E_UNKNOWN_OP, msg);
        return;
    }
    if (!k->get) {
        snprintf(msg, sizeof(msg), "%s takes GET only",
                 proto_quote(qb, sizeof(qb), path, (uint32_t)n));
        k->allow = "GET, HEAD";
        fail(k, 405, TRASTENDA_E_UNKNOWN_OP, msg);
        return;
    }
    if (health) {
        respond_json(h, k->aio, 200, "{\"status\":\"alive\"}\n");
        done(h);
        return;
    }
    if (ready) {
        get_ready(k);
        return;
    }
    if (f != NULL) {
        get_static(k, f);
        return;
    }
    if (k->bad_token || !auth_read_allowed(&h->s->auth, k->token, k->token_len)) {
        fail(k, 401, TRASTENDA_E_UNAUTHORIZED,
             "token: a valid bearer token is needed for metrics (docs/SECURITY.md)");
        return;
    }
    scrape(h, k->aio, k->body);
}

/* nng's handler, for every path and method (Design note (4) for `active`). */
static void
handle(nng_aio *aio)
{
    nng_http_handler *hd = nng_aio_get_input(aio, 1);
    struct http *h = nng_http_handler_get_data(hd);
    ADD(&h->active, 1);
    if (LOAD(&h->stopping)) { /* h->s may be gone: touch nothing but h */
        nng_aio_finish(aio, NNG_ECLOSED);
        done(h);
        return;
    }
    struct call k = {.h = h, .aio = aio};
    k.req = nng_aio_get_input(aio, 0);
    k.conn = nng_aio_get_input(aio, 2);
    const char *method = nng_http_req_get_method(k.req);
    const char *cl = nng_http_req_get_header(k.req, "Content-Length");
    k.get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    k.body = (cl != NULL && strcmp(cl, "0") != 0) ||
             nng_http_req_get_header(k.req, "Transfer-Encoding") != NULL;
    bearer(k.req, k.token, &k.token_len, &k.bad_token);
    const char *uri = nng_http_req_get_uri(k.req);
    size_t ulen = strlen(uri);
    if (ulen >= URI_BYTES_MAX) {
        fail(&k, 414, TRASTENDA_E_TOO_BIG, "URI too long");
        return;
    }
    char path[URI_BYTES_MAX];
    const char *q = memchr(uri, '?', ulen);
    size_t plen = q != NULL ? (size_t)(q - uri) : ulen, n;
    if (!unescape(uri, plen, false, path, &n) || n == 0) {
        fail(&k, 400, TRASTENDA_E_MALFORMED, "bad percent-encoding in the path");
        return;
    }
    path[n] = '\0';
    route(&k, method, path, n, q != NULL ? q + 1 : NULL);
}

/* ---- start, stop ---- */

static void
handler_gone(void *arg)
{
    struct http *h = arg;
    STORE(&h->gone, 1);
}

static bool
slots_init(struct http *h)
{
    struct srv *s = h->s;
    h->n_slots = s->cfg.http_contexts;
    h->slots = calloc(h->n_slots, sizeof(*h->slots));
    if (h->slots == NULL) return false;
    for (uint32_t i = 0; i < h->n_slots; i++) {
        struct hreq *r = &h->slots[i];
        r->h = h;
        r->c.srv = s;
        r->c.on_reply = on_reply;
        proto_req_init(&r->c.q);
        if (nng_aio_alloc(&r->c.aio, work_cb, r) != 0 || nng_aio_alloc(&r->rd, body_cb, r) != 0)
            return false;
        r->next = h->free;
        h->free = r;
    }
    return true;
}

/* nng's server on cfg.http with the catch-all handler. */
static trastenda_err
server_open(struct http *h, char *err, size_t errlen)
{
    const trastenda_server_config *cfg = &h->s->cfg;
    nng_url *url = NULL;
    int rv = nng_url_parse(&url, cfg->http);
    if (rv == 0) rv = nng_http_server_hold(&h->server, url);
    if (url != NULL) nng_url_free(url);
    if (rv != 0) {
        snprintf(err, errlen, "http: cannot use %s: %s", cfg->http, nng_strerror(rv));
        return TRASTENDA_E_INVALID;
    }
    if (strncmp(cfg->http, "https://", 8) == 0) {
        nng_tls_config *t;
        trastenda_err code = tls_server_config(cfg, &t, err, errlen);
        if (code != TRASTENDA_OK) return code;
        rv = nng_http_server_set_tls(h->server, t);
        nng_tls_config_free(t); /* the server holds its own reference */
    }
    if (rv == 0) rv = nng_http_handler_alloc(&h->handler, "/", handle);
    if (rv == 0) rv = nng_http_handler_set_method(h->handler, NULL);
    if (rv == 0) rv = nng_http_handler_set_tree(h->handler);
    if (rv == 0) rv = nng_http_handler_collect_body(h->handler, false, 0);
    if (rv == 0) rv = nng_http_handler_set_data(h->handler, h, handler_gone);
    if (rv == 0) rv = nng_http_server_add_handler(h->server, h->handler);
    if (rv != 0 && h->handler != NULL) nng_http_handler_free(h->handler); /* not added: ours */
    if (rv == 0) rv = nng_http_server_start(h->server);
    if (rv != 0) {
        snprintf(err, errlen, "http: cannot listen on %s: %s", cfg->http, nng_strerror(rv));
        return TRASTENDA_E_IO;
    }
    return TRASTENDA_OK;
}

trastenda_err
http_start(struct srv *s, char *err, size_t errlen)
{
    const trastenda_server_config *cfg = &s->cfg;
    if (cfg->http == NULL || cfg->http[0] == '\0') return TRASTENDA_OK;
    if (cfg->http_contexts == 0 || cfg->http_contexts > 4096 || cfg->http_body_max == 0 ||
        cfg->http_body_max > PROTO_MSG_MAX) {
        snprintf(err, errlen, "config: http-contexts must be 1..4096 and http-body-max 1..%d",
                 PROTO_MSG_MAX);
        return TRASTENDA_E_INVALID;
    }
    struct http *h = calloc(1, sizeof(*h));
    if (h == NULL) return TRASTENDA_E_NOMEM;
    h->s = s;
    pthread_mutex_init(&h->mu, NULL);
    s->http = h;
    if (!slots_init(h)) {
        snprintf(err, errlen, "http: out of memory");
        return TRASTENDA_E_NOMEM; /* the caller's srv_free destroys h */
    }
    trastenda_err code = server_open(h, err, errlen);
    if (code != TRASTENDA_OK) {
        STORE(&h->stopping, 1);
        if (h->server != NULL) nng_http_server_release(h->server);
        h->server = NULL;
        return code;
    }
    srv_log(s, TRASTENDA_LOG_INFO, "server: serving HTTP on %s (%u contexts)", cfg->http,
            h->n_slots);
    return TRASTENDA_OK;
}

void
http_stop(struct srv *s)
{
    struct http *h = s->http;
    if (h == NULL || h->server == NULL) return;
    STORE(&h->stopping, 1);
    for (int i = 0; i < 1000 && LOAD(&h->active) > 0; i++) /* bound: 5 s */
        usleep(5000);
    if (LOAD(&h->active) > 0)
        srv_log(s, TRASTENDA_LOG_WARN, "server: %u HTTP requests still in flight at stop",
                LOAD(&h->active));
    nng_http_server_stop(h->server);
    nng_http_server_release(h->server);
    h->server = NULL;
}

uint32_t
http_in_flight(const struct srv *s)
{
    return s->http != NULL ? LOAD(&s->http->active) : 0;
}

uint64_t
http_busy(const struct srv *s)
{
    return s->http != NULL ? LOAD(&s->http->busy) : 0;
}

void
http_destroy(struct srv *s)
{
    struct http *h = s->http;
    if (h == NULL) return;
    http_stop(s);
    bool added = h->handler != NULL;
    for (int i = 0; added && i < 1000 && !LOAD(&h->gone); i++) /* bound: 5 s */
        usleep(5000);
    s->http = NULL;
    if (added && !LOAD(&h->gone)) { /* a callback could still run: leave h to the process */
        srv_log(s, TRASTENDA_LOG_WARN, "server: nng kept the HTTP handler; not freeing it");
        return;
    }
    for (uint32_t i = 0; h->slots != NULL && i < h->n_slots; i++) {
        struct hreq *r = &h->slots[i];
        if (r->c.aio != NULL) nng_aio_free(r->c.aio);
        if (r->rd != NULL) nng_aio_free(r->rd);
        r->c.aio = NULL;
        srv_ctx_fini(&r->c);
        if (r->doc != NULL) json_decref(r->doc);
        free(r->body);
        free(r->out.p);
    }
    free(h->slots);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
