/*
 * net/server.c - the server: REP socket served through many nng contexts, the PUB socket for
 * events, the slow worker, start and graceful stop (include/trastenda/server.h, net/srv.h).
 *
 * Each context runs one request at a time: receive, decode and validate on the nng thread that
 * completed the receive, then hand writes and engine reads to the store as one request (the
 * engine thread applies it; the log writer completes it once durable), slow reads to the slow
 * worker, and send the reply. While the work is elsewhere the context's aio is held as a running
 * operation (nng_aio_begin/defer); the store's completion, on the log writer thread, only
 * finishes it (nng_aio_finish), so that encoding and sending happen on an nng thread, never on
 * the writer, and without a timer on the way.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "repl.h"
#include "sockclose.h"
#include "srv.h" /* nng.h before its protocol headers */

#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#define LOAD(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define ADD(p, v)   __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)

void
srv_log(struct srv *s, trastenda_log_level level, const char *fmt, ...)
{
    if (level > s->cfg.log_level) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    s->cfg.log(s->cfg.log_ctx, level, msg);
}

bool
srv_close_sock(struct srv *s, nng_socket sock, const char *what)
{
    if (sock_close_bounded(sock, SOCK_CLOSE_WAIT_MS)) return true;
    srv_log(s, TRASTENDA_LOG_WARN,
            "%s: the socket did not close in %u ms (an nng 1.5.2 defect when a message arrives "
            "while it closes); left to close in the background",
            what, SOCK_CLOSE_WAIT_MS);
    return false;
}

void
trastenda_server_config_default(trastenda_server_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    trastenda_store_config_default(&cfg->store);
    cfg->listen = TRASTENDA_DEFAULT_LISTEN;
    cfg->events = TRASTENDA_DEFAULT_EVENTS;
    cfg->contexts = 64;
    cfg->max_connections = 1024;
    cfg->max_in_flight_per_connection = 32;
    cfg->reply_timeout_ms = 5000;
    cfg->http = TRASTENDA_DEFAULT_HTTP;
    cfg->http_contexts = 64;
    cfg->http_body_max = 1 << 20;
    cfg->open_reads = true;
    cfg->ready_max_lag = 1000;
    cfg->log_level = TRASTENDA_LOG_INFO;
    cfg->repl = TRASTENDA_DEFAULT_REPL;
    cfg->repl_wait_ms = 500;
    cfg->digest_interval_ms = 10000;
    cfg->min_seq_timeout_ms = 2000;
}

bool
srv_is_follower(struct srv *s)
{
    return (s->cfg.not_leader != NULL && s->cfg.not_leader[0] != '\0') ||
           trastenda_store_is_follower(s->store);
}

const char *
srv_leader(struct srv *s)
{
    if (s->cfg.not_leader != NULL && s->cfg.not_leader[0] != '\0') return s->cfg.not_leader;
    return repl_leader(s);
}

bool
trastenda_server_wants_restart(trastenda_server *s)
{
    return __atomic_load_n(&s->restart_wanted, __ATOMIC_ACQUIRE) != 0;
}

bool
trastenda_server_failed(trastenda_server *s)
{
    trastenda_store_stats st;
    trastenda_store_stats_get(s->store, &st);
    return st.failed != 0;
}

static int64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
srv_mono_ns(void)
{
    return mono_ns();
}

/* ---- growing per-context arrays ---- */

static bool
grow(void **p, uint32_t *cap, uint32_t need, size_t elem)
{
    if (need <= *cap) return true;
    uint32_t c = *cap == 0 ? 16 : *cap;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (q == NULL) return false;
    *p = q;
    *cap = c;
    return true;
}

/* ---- the flow of one context ---- */

static void ctx_reply(struct srv_ctx *c);

static void
ctx_recv(struct srv_ctx *c)
{
    c->state = CTX_RECV;
    nng_ctx_recv(c->ctx, c->aio);
}

static void
slow_push(struct srv_ctx *c)
{
    struct srv *s = c->srv;
    pthread_mutex_lock(&s->slow_mu);
    c->slow_next = NULL;
    if (s->slow_tail != NULL)
        s->slow_tail->slow_next = c;
    else
        s->slow_head = c;
    s->slow_tail = c;
    pthread_cond_signal(&s->slow_cv);
    pthread_mutex_unlock(&s->slow_mu);
}

/* The work was handed off; the context's aio waits, as if nng were running an operation. */
static void
ctx_cancel(nng_aio *aio, void *arg, int rv)
{
    /* The store or the slow worker finishes the operation (exactly once) whatever happens. */
    (void)aio;
    (void)arg;
    (void)rv;
}

static void
work_begin(struct srv_ctx *c)
{
    c->state = CTX_WORK;
    if (nng_aio_begin(c->aio)) nng_aio_defer(c->aio, ctx_cancel, c);
}

/* From the store's or the slow worker's thread: nng runs the callback (CTX_REPLY) at once, on
 * its own thread (no timer on the way). */
static void
work_finish(struct srv_ctx *c)
{
    c->state = CTX_REPLY;
    nng_aio_finish(c->aio, 0);
}

/* After the store's part: on to the slow worker or to the reply. on_nng: called from the
 * context's own callback (nothing handed off yet). */
static void
after_engine(struct srv_ctx *c, bool on_nng)
{
    if (exec_has_slow(c)) {
        if (on_nng) work_begin(c);
        slow_push(c);
        return;
    }
    if (on_nng) {
        reply_encode(c);
        ctx_reply(c);
        return;
    }
    work_finish(c);
}

/* The store's completion (log writer thread, or engine thread for a lone query). */
static void
store_done(trastenda_request *req, trastenda_err status)
{
    struct srv_ctx *c = req->ctx;
    c->store_status = status;
    if (status == TRASTENDA_OK && c->n_cmds > 0)
        metrics_observe(&c->srv->metrics.durable, mono_ns() - c->t_submit_ns);
    after_engine(c, false);
}

/* Every write op of the request failed the same way before reaching the engine. */
static void
writes_fail(struct srv_ctx *c, trastenda_err err, const char *msg)
{
    for (uint32_t i = 0; i < c->n_cmds; i++) {
        trastenda_result *r = &c->results[i];
        memset(r, 0, sizeof(*r));
        r->code = err;
        r->op = c->cmds[i].op;
        r->line = UINT32_MAX;
        snprintf(r->message, sizeof(r->message), "%s", msg);
    }
}

/* Builds the commands of the valid write ops; false when out of memory. */
static bool
build_cmds(struct srv_ctx *c)
{
    struct proto_req *q = &c->q;
    uint32_t n = 0, lines = 0, chans = 0, allocs = 0;
    for (uint32_t i = 0; i < q->n_ops; i++) {
        const struct proto_op *op = &q->ops[i];
        if (!proto_op_is_command(op)) continue;
        n++;
        lines += op->lines_n;
        chans += op->channels_n;
        /* A routed line may split: the engine's bound per command. */
        allocs += op->lines_n > 0 ? TRASTENDA_ALLOCS_MAX : 0;
    }
    c->n_cmds = n;
    if (n == 0) return true;
    if (!grow((void **)&c->cmds, &c->cap_cmds, n, sizeof(*c->cmds))) return false;
    uint32_t cap = c->cap_cmds;
    c->cap_cmds = 0; /* the same capacity for the arrays that follow */
    bool ok = grow((void **)&c->cmd_op, &c->cap_cmds, cap, sizeof(*c->cmd_op));
    c->cap_cmds = 0;
    ok = ok && grow((void **)&c->results, &c->cap_cmds, cap, sizeof(*c->results));
    c->cap_cmds = cap;
    ok = ok && grow((void **)&c->lines, &c->cap_lines, lines + 1, sizeof(*c->lines)) &&
         grow((void **)&c->chans, &c->cap_chans, chans + 1, sizeof(*c->chans)) &&
         grow((void **)&c->allocs, &c->cap_allocs, allocs + 1, sizeof(*c->allocs));
    if (!ok) return false;
    /* In windows of up to 64 SKU ids: the window's SKUs are warmed together (a large catalogue
     * misses the cache at each lookup), then its ops converted, which looks them up. */
    uint32_t k = 0, at_line = 0, at_chan = 0, from = 0;
    while (from < q->n_ops) {
        trastenda_str ids[64];
        uint32_t n_ids = 0, to = from;
        for (; to < q->n_ops; to++) {
            const struct proto_op *op = &q->ops[to];
            if (!proto_op_is_command(op)) continue;
            if (n_ids + 1 + op->lines_n > sizeof(ids) / sizeof(ids[0]) && n_ids > 0) break;
            if (op->present & (1ull << PFD_SKU)) ids[n_ids++] = op->sku;
            for (uint32_t l = 0; l < op->lines_n && n_ids < sizeof(ids) / sizeof(ids[0]); l++)
                ids[n_ids++] = q->lines[op->lines_at + l].sku;
        }
        if (n_ids > 1) trastenda_engine_sku_prefetch(c->srv->eng, ids, n_ids);
        for (uint32_t i = from; i < to; i++) {
            const struct proto_op *op = &q->ops[i];
            if (!proto_op_is_command(op)) continue;
            proto_to_cmd(q, op, c->srv->eng, &c->cmds[k], c->lines + at_line, c->chans + at_chan);
            at_line += op->lines_n;
            at_chan += op->channels_n;
            c->cmd_op[k++] = i;
        }
        from = to;
    }
    return true;
}

/* ---- read-your-writes: requests waiting for their min_seq ---- */

/* Parks c until the node has applied its min_seq (the aio was begun). */
static void
wait_park(struct srv_ctx *c)
{
    struct srv *s = c->srv;
    __atomic_fetch_add(&s->waits.n, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&s->waits.mu);
    if (c->q.min_seq < __atomic_load_n(&s->waits.min_seq, __ATOMIC_RELAXED))
        __atomic_store_n(&s->waits.min_seq, c->q.min_seq, __ATOMIC_SEQ_CST);
    /* Published (n, min_seq) before the applied sequence is read; srv_waits_check stores in the
     * other order: one of the two sees the other's. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    bool now = trastenda_store_applied_seq(s->store) >= c->q.min_seq;
    if (!now) {
        c->wait_deadline_ns = mono_ns() + (int64_t)s->cfg.min_seq_timeout_ms * 1000000;
        c->wait_next = s->waits.head;
        s->waits.head = c;
    }
    pthread_mutex_unlock(&s->waits.mu);
    if (now) {
        __atomic_fetch_sub(&s->waits.n, 1, __ATOMIC_SEQ_CST);
        c->wait_ok = true;
        c->state = CTX_RESUME;
        nng_aio_finish(c->aio, 0);
    }
}

void
srv_waits_check(struct srv *s, int64_t now_ns)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&s->waits.n, __ATOMIC_SEQ_CST) == 0) return;
    uint64_t applied = trastenda_store_applied_seq(s->store);
    /* Nothing waiting is applied yet, and no deadline to look at: no walk. */
    if (now_ns == 0 && applied < __atomic_load_n(&s->waits.min_seq, __ATOMIC_SEQ_CST)) return;
    struct srv_ctx *go = NULL;
    uint64_t low = UINT64_MAX;
    pthread_mutex_lock(&s->waits.mu);
    struct srv_ctx **pp = &s->waits.head;
    while (*pp != NULL) {
        struct srv_ctx *c = *pp;
        if (applied >= c->q.min_seq || now_ns >= c->wait_deadline_ns) {
            *pp = c->wait_next;
            c->wait_ok = applied >= c->q.min_seq;
            c->wait_next = go;
            go = c;
            __atomic_fetch_sub(&s->waits.n, 1, __ATOMIC_SEQ_CST);
            continue;
        }
        if (c->q.min_seq < low) low = c->q.min_seq;
        pp = &c->wait_next;
    }
    __atomic_store_n(&s->waits.min_seq, low, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&s->waits.mu);
    while (go != NULL) {
        struct srv_ctx *c = go;
        go = c->wait_next;
        c->state = CTX_RESUME;
        nng_aio_finish(c->aio, 0);
    }
}

static void ctx_run(struct srv_ctx *c);

/* A request decoded: runs it, once the node has applied its min_seq. */
static void
ctx_start(struct srv_ctx *c)
{
    struct srv *s = c->srv;
    ADD(&s->n_requests, 1);
    size_t len = nng_msg_len(c->msg);
    if (!proto_decode_msgpack(&c->q, nng_msg_body(c->msg), len) || !proto_validate(&c->q)) {
        ADD(&s->n_bad_requests, 1);
        reply_encode_error(c, c->q.id, c->q.err, c->q.msg);
        ctx_reply(c);
        return;
    }
    srv_run(c);
}

void
srv_run(struct srv_ctx *c)
{
    struct srv *s = c->srv;
    char denied[TRASTENDA_MESSAGE_BYTES];
    if (auth_request(&s->auth, &c->q, denied, sizeof(denied)) != TRASTENDA_OK) {
        ADD(&s->n_bad_requests, 1);
        reply_encode_error(c, c->q.id, TRASTENDA_E_UNAUTHORIZED, denied);
        ctx_reply(c);
        return;
    }
    if (c->q.min_seq > trastenda_store_applied_seq(s->store)) {
        work_begin(c);
        wait_park(c);
        return;
    }
    ctx_run(c);
}

/* The min_seq wait is over: on with the request, or a timeout. */
void
srv_resume(struct srv_ctx *c)
{
    if (c->wait_ok) {
        ctx_run(c);
        return;
    }
    char msg[TRASTENDA_MESSAGE_BYTES];
    snprintf(msg, sizeof(msg),
             "this node has applied up to sequence %llu, not min_seq %llu, after %u ms: retry, "
             "or read from the leader",
             (unsigned long long)trastenda_store_applied_seq(c->srv->store),
             (unsigned long long)c->q.min_seq, c->srv->cfg.min_seq_timeout_ms);
    reply_encode_error(c, c->q.id, TRASTENDA_E_TIMEOUT, msg);
    ctx_reply(c);
}

static void
ctx_run(struct srv_ctx *c)
{
    struct srv *s = c->srv;
    ADD(&s->n_ops, c->q.n_ops);
    c->store_status = TRASTENDA_OK;
    if (!build_cmds(c) || !exec_prepare(c)) {
        reply_encode_error(c, c->q.id, TRASTENDA_E_NOMEM, "the server is out of memory");
        ctx_reply(c);
        return;
    }
    if (c->n_cmds > 0 && srv_is_follower(s)) {
        char msg[TRASTENDA_MESSAGE_BYTES];
        const char *l = srv_leader(s);
        snprintf(msg, sizeof(msg), "not the leader: the leader is %.100s",
                 l[0] ? l : "unknown (this node follows no reachable leader)");
        writes_fail(c, TRASTENDA_E_NOT_LEADER, msg);
        c->n_cmds = 0;
        c->store_status = TRASTENDA_E_NOT_LEADER;
    }
    bool engine_reads = exec_has_engine_reads(c);
    if (c->n_cmds == 0 && !engine_reads) {
        exec_fast_reads(c);
        after_engine(c, true);
        return;
    }
    /* Results read "not applied" (ok, no placements) until the engine writes them: a request the
     * store fails without applying it (a failed or closing store drains its queue) is answered
     * with the store's status (reply_encode), never with what an earlier request left here. */
    for (uint32_t i = 0; i < c->n_cmds; i++) {
        c->results[i].code = TRASTENDA_OK;
        c->results[i].alloc_count = 0;
        c->results[i].allocs = NULL;
    }
    memset(&c->sreq, 0, sizeof(c->sreq));
    c->sreq.cmds = c->cmds;
    c->sreq.n = c->n_cmds;
    c->sreq.results = c->results;
    c->sreq.allocs = c->allocs;
    c->sreq.allocs_max = c->cap_allocs;
    c->sreq.query = exec_engine_reads; /* every non-slow read, after the writes */
    c->sreq.done = store_done;
    c->sreq.ctx = c;
    c->t_submit_ns = mono_ns();
    work_begin(c);
    trastenda_err err = trastenda_store_submit(s->store, &c->sreq);
    if (err == TRASTENDA_OK) return;
    /* Not taken: every op that needed the engine thread gets the reason. */
    char nl[TRASTENDA_MESSAGE_BYTES];
    snprintf(nl, sizeof(nl), "not the leader: the leader is %.100s", srv_leader(s));
    const char *why = err == TRASTENDA_E_BUSY         ? "busy: the queue is full, retry in a few ms"
                      : err == TRASTENDA_E_NOT_LEADER ? nl
                                                      : trastenda_err_message(err);
    writes_fail(c, err, why);
    c->store_status = err;
    for (uint32_t i = 0; i < c->q.n_ops; i++) {
        struct op_out *o = c->outs[i];
        if (o != NULL && !o->slow) {
            o->err = err;
            snprintf(o->msg, sizeof(o->msg), "%s", why);
        }
    }
    after_engine(c, false); /* the aio was begun: finished through nng */
}

static void
ctx_reply(struct srv_ctx *c)
{
    if (c->on_reply != NULL) { /* not the REP socket's (net/http.c) */
        c->on_reply(c);
        return;
    }
    metrics_request(&c->srv->metrics, MT_MSGPACK, c->q.n_ops, mono_ns() - c->t_start_ns);
    nng_msg *m;
    if (nng_msg_alloc(&m, c->out_len) != 0) {
        srv_log(c->srv, TRASTENDA_LOG_ERROR, "server: out of memory for a reply");
        nng_msg_free(c->msg);
        c->msg = NULL;
        __atomic_fetch_sub(&c->srv->in_flight[c->pipe_slot], 1, __ATOMIC_ACQ_REL);
        __atomic_fetch_sub(&c->srv->busy_ctxs, 1, __ATOMIC_ACQ_REL);
        ctx_recv(c);
        return;
    }
    memcpy(nng_msg_body(m), c->out, c->out_len);
    nng_msg_free(c->msg); /* the request's strings are no longer needed */
    c->msg = NULL;
    c->state = CTX_SEND;
    nng_aio_set_msg(c->aio, m);
    uint32_t rt = c->srv->cfg.reply_timeout_ms; /* 0: no limit */
    nng_aio_set_timeout(c->aio, rt != 0 ? (nng_duration)rt : NNG_DURATION_INFINITE);
    nng_ctx_send(c->ctx, c->aio);
}

static void
ctx_cb(void *arg)
{
    struct srv_ctx *c = arg;
    struct srv *s = c->srv;
    int rv = nng_aio_result(c->aio);
    switch (c->state) {
    case CTX_RECV:
        if (rv != 0) {
            if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
                c->state = CTX_IDLE;
                return;
            }
            ctx_recv(c);
            return;
        }
        c->msg = nng_aio_get_msg(c->aio);
        c->t_start_ns = mono_ns();
        __atomic_fetch_add(&s->busy_ctxs, 1, __ATOMIC_ACQ_REL);
        /* Requests in flight per connection (pipes share a slot when their ids collide: the
         * cap only gets stricter). */
        c->pipe = nng_msg_get_pipe(c->msg);
        c->pipe_slot = nng_pipe_id(c->pipe) % SRV_PIPE_SLOTS;
        if (__atomic_add_fetch(&s->in_flight[c->pipe_slot], 1, __ATOMIC_ACQ_REL) >
            s->cfg.max_in_flight_per_connection) {
            char msg[TRASTENDA_MESSAGE_BYTES];
            snprintf(msg, sizeof(msg),
                     "busy: more than %u requests in flight on this connection; wait for replies",
                     s->cfg.max_in_flight_per_connection);
            reply_encode_error(c, 0, TRASTENDA_E_BUSY, msg);
            ctx_reply(c);
            return;
        }
        if (LOAD(&s->stopping)) { /* taken after the stop began: refuse, do not start */
            reply_encode_error(c, 0, TRASTENDA_E_CLOSED, "the server is stopping");
            ctx_reply(c);
            return;
        }
        ctx_start(c);
        return;
    case CTX_REPLY:
        reply_encode(c);
        ctx_reply(c);
        return;
    case CTX_RESUME:
        srv_resume(c);
        return;
    case CTX_SEND:
        nng_aio_set_timeout(c->aio, NNG_DURATION_DEFAULT); /* receives wait for ever */
        if (rv != 0) nng_msg_free(nng_aio_get_msg(c->aio));
        if (rv == NNG_ETIMEDOUT) {
            /* Its client does not read: cut it off, and every reply queued behind this one
             * with it (their sends end at once), before it holds every context. */
            ADD(&s->n_reply_timeouts, 1);
            srv_log(s, TRASTENDA_LOG_WARN,
                    "server: connection %u took no reply in %u ms: closed (--reply-timeout-ms)",
                    (unsigned)nng_pipe_id(c->pipe), s->cfg.reply_timeout_ms);
            nng_pipe_close(c->pipe);
        }
        __atomic_fetch_sub(&s->in_flight[c->pipe_slot], 1, __ATOMIC_ACQ_REL);
        __atomic_fetch_sub(&s->busy_ctxs, 1, __ATOMIC_ACQ_REL);
        if (LOAD(&s->stopping)) {
            c->state = CTX_IDLE;
            return;
        }
        ctx_recv(c);
        return;
    default:
        return;
    }
}

/* ---- the slow worker ---- */

static void *
slow_main(void *arg)
{
    struct srv *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->slow_mu);
        while (s->slow_head == NULL && !s->slow_stop)
            pthread_cond_wait(&s->slow_cv, &s->slow_mu);
        struct srv_ctx *c = s->slow_head;
        if (c != NULL) {
            s->slow_head = c->slow_next;
            if (s->slow_head == NULL) s->slow_tail = NULL;
        }
        bool stop = s->slow_stop && c == NULL;
        pthread_mutex_unlock(&s->slow_mu);
        if (stop) break;
        if (c == NULL) continue;
        exec_slow_reads(c);
        work_finish(c);
    }
    return NULL;
}

/* ---- connections ---- */

/* Caps the connections: a pipe over the cap is closed as it arrives. Only pipes that were added
 * are counted out again (a pipe closed in ADD_PRE may still report REM_POST). */
static void
pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    struct srv *s = arg;
    uint32_t id = nng_pipe_id(p), slot = id % SRV_PIPE_SLOTS;
    /* The listener watcher's probes (net/lwatch.c) come from this process over ipc: neither
     * capped nor counted as clients. */
    uint64_t pid = 0;
    bool own = nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_PID, &pid) == 0 && pid == (uint64_t)getpid();
    switch (ev) {
    case NNG_PIPE_EV_ADD_PRE:
        lwatch_pipe_added(LOAD(&s->lw_req)); /* it took a connection, whatever comes next */
        if (own) return;
        if (LOAD(&s->conns) >= s->cfg.max_connections) {
            ADD(&s->n_refused_conns, 1);
            nng_pipe_close(p);
        }
        return;
    case NNG_PIPE_EV_ADD_POST:
        if (own) return;
        __atomic_fetch_add(&s->conns, 1, __ATOMIC_ACQ_REL);
        STORE(&s->pipe_ids[slot], id);
        return;
    case NNG_PIPE_EV_REM_POST: {
        uint32_t want = id;
        if (__atomic_compare_exchange_n(&s->pipe_ids[slot], &want, 0, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            __atomic_fetch_sub(&s->conns, 1, __ATOMIC_ACQ_REL);
        return;
    }
    default:
        return;
    }
}

/* ---- events ---- */

static void
on_durable(void *ctx, uint64_t seq, const uint8_t *entry, size_t len)
{
    struct srv *s = ctx;
    if (__atomic_load_n(&s->pub_open, __ATOMIC_ACQUIRE)) reply_publish_events(s, seq, entry, len);
    repl_on_durable(s, seq);
}

/* The engine thread applied up to seq: reads waiting for it run (a follower's reads need the
 * leader's entries in its tables, not on its own disk: the leader has them durable already). */
static void
on_applied(void *ctx, uint64_t seq)
{
    (void)seq;
    srv_waits_check(ctx, 0);
}

/* ---- start, stop ---- */

static trastenda_err
fail(char *err, size_t errlen, trastenda_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return code;
}

void
srv_ctx_fini(struct srv_ctx *c)
{
    if (c->aio != NULL) nng_aio_free(c->aio);
    proto_req_fini(&c->q);
    free(c->cmds);
    free(c->cmd_op);
    free(c->results);
    free(c->allocs);
    free(c->lines);
    free(c->chans);
    free(c->outs);
    free(c->arena);
    free(c->ev);
    free(c->out);
    if (c->msg != NULL) nng_msg_free(c->msg);
}

static void
srv_free(struct srv *s)
{
    http_destroy(s);
    for (uint32_t i = 0; i < s->n_ctxs; i++)
        srv_ctx_fini(&s->ctxs[i]);
    free(s->ctxs);
    pthread_mutex_destroy(&s->waits.mu);
    pthread_mutex_destroy(&s->slow_mu);
    pthread_cond_destroy(&s->slow_cv);
    free(s);
}

trastenda_err
trastenda_server_start(const trastenda_server_config *cfg, trastenda_server **out, char *err,
                       size_t errlen)
{
    char dummy[8];
    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (cfg == NULL || out == NULL || cfg->listen == NULL || cfg->listen[0] == '\0')
        return fail(err, errlen, TRASTENDA_E_INVALID, "config: listen address needed");
    if (cfg->max_connections == 0 || cfg->max_in_flight_per_connection == 0)
        return fail(err, errlen, TRASTENDA_E_INVALID,
                    "config: max_connections and max_in_flight_per_connection must be > 0");
    if (cfg->contexts == 0 || cfg->contexts > 4096)
        return fail(err, errlen, TRASTENDA_E_INVALID, "config: contexts must be 1..4096, not %u",
                    cfg->contexts);
    *out = NULL;
    struct srv *s = calloc(1, sizeof(*s));
    if (s == NULL) return TRASTENDA_E_NOMEM;
    s->cfg = *cfg;
    if (s->cfg.log == NULL) s->cfg.log = trastenda_log_stderr;
    pthread_mutex_init(&s->slow_mu, NULL);
    pthread_cond_init(&s->slow_cv, NULL);
    pthread_mutex_init(&s->waits.mu, NULL);
    s->waits.min_seq = UINT64_MAX;
    s->started_ns = mono_ns();
    if (s->cfg.repl_wait_ms == 0) s->cfg.repl_wait_ms = 500;
    if (s->cfg.digest_interval_ms == 0) s->cfg.digest_interval_ms = 10000;
    if (s->cfg.min_seq_timeout_ms == 0) s->cfg.min_seq_timeout_ms = 2000;
    trastenda_err fc = repl_bootstrap_finish(&s->cfg, err, errlen);
    if (fc != TRASTENDA_OK) {
        srv_free(s);
        return fc;
    }
    s->cfg.follow = repl_follow_at_start(&s->cfg, s->follow, sizeof(s->follow));
    bool follow = s->cfg.follow != NULL;
    /* A node that would lead and knows peers asks them who leads before it takes a write: its
     * store opens as a follower's until then (no entry of its own, not even an expiry). */
    bool ask = !follow && repl_role_to_check(&s->cfg);
    if (follow) {
        /* A bootstrap asked for by the last run: the checkpoint comes before the store opens. */
        trastenda_err bc = repl_bootstrap_pending(&s->cfg, err, errlen);
        if (bc != TRASTENDA_OK) {
            srv_free(s);
            return bc;
        }
    }
    /* Access, then HTTP: it answers /health and /ready while the store recovers. */
    const char *listeners[] = {cfg->listen, cfg->events, cfg->http, cfg->repl, NULL};
    trastenda_err code = auth_init(&s->auth, cfg->tokens, cfg->open_reads, listeners, err, errlen);
    if (code == TRASTENDA_OK) code = http_start(s, err, errlen);
    if (code != TRASTENDA_OK) {
        srv_free(s);
        return code;
    }
    trastenda_store_config sc = cfg->store;
    sc.follower = follow || ask || sc.follower;
    if (sc.log == NULL) {
        sc.log = s->cfg.log;
        sc.log_ctx = s->cfg.log_ctx;
        sc.log_level = s->cfg.log_level;
    }
    sc.on_durable = on_durable;
    sc.on_applied = on_applied;
    sc.on_durable_ctx = s;
    sc.digest_interval_ms = s->cfg.digest_interval_ms;
    code = trastenda_store_open(&sc, &s->store, err, errlen);
    if (code != TRASTENDA_OK) {
        http_stop(s);
        srv_free(s);
        return code;
    }
    s->eng = trastenda_store_engine(s->store);
    if (ask) {
        enum repl_role role = repl_role_at_start(s, s->follow, sizeof(s->follow));
        if (role == REPL_ROLE_FOLLOW)
            __atomic_store_n(&s->cfg.follow, s->follow, __ATOMIC_RELEASE); /* /ready reads it */
        else if (role == REPL_ROLE_LEAD && !cfg->store.follower &&
                 trastenda_store_lead(s->store) != TRASTENDA_OK)
            srv_log(s, TRASTENDA_LOG_ERROR,
                    "replication: the store would not lead: it takes "
                    "no writes");
    }
    int rv = nng_rep0_open(&s->rep);
    if (rv == 0) rv = nng_socket_set_size(s->rep, NNG_OPT_RECVMAXSZ, PROTO_MSG_MAX);
    if (rv != 0) {
        http_stop(s);
        trastenda_store_close(s->store);
        srv_free(s);
        return fail(err, errlen, TRASTENDA_E_IO, "requests socket: %s", nng_strerror(rv));
    }
    if (cfg->events != NULL && cfg->events[0] != '\0') {
        rv = nng_pub0_open(&s->pub);
        if (rv == 0) rv = nng_socket_set_size(s->pub, NNG_OPT_RECVMAXSZ, 1024);
        nng_listener pl;
        code = rv == 0 ? tls_listen_l(cfg, s->pub, "events", cfg->events, &pl, err, errlen)
                       : fail(err, errlen, TRASTENDA_E_IO, "events: %s", nng_strerror(rv));
        if (code == TRASTENDA_OK)
            lwatch_add(&s->lw, s->pub, pl, cfg->events, "events", nng_sub0_open, true);
        if (code != TRASTENDA_OK) {
            nng_close(s->rep);
            http_stop(s);
            trastenda_store_close(s->store);
            srv_free(s);
            return code;
        }
        __atomic_store_n(&s->pub_open, true, __ATOMIC_RELEASE);
    }
    s->n_ctxs = cfg->contexts;
    s->ctxs = calloc(s->n_ctxs, sizeof(*s->ctxs));
    if (s->ctxs == NULL) abort();
    for (uint32_t i = 0; i < s->n_ctxs; i++) {
        struct srv_ctx *c = &s->ctxs[i];
        c->srv = s;
        proto_req_init(&c->q);
        if (nng_aio_alloc(&c->aio, ctx_cb, c) != 0 || nng_ctx_open(&c->ctx, s->rep) != 0) abort();
    }
    if (pthread_create(&s->slow_th, NULL, slow_main, s) != 0) abort();
    nng_pipe_notify(s->rep, NNG_PIPE_EV_ADD_PRE, pipe_cb, s);
    nng_pipe_notify(s->rep, NNG_PIPE_EV_ADD_POST, pipe_cb, s);
    nng_pipe_notify(s->rep, NNG_PIPE_EV_REM_POST, pipe_cb, s);
    nng_listener rl;
    code = tls_listen_l(cfg, s->rep, "requests", cfg->listen, &rl, err, errlen);
    if (code == TRASTENDA_OK) {
        lwatch_add(&s->lw, s->rep, rl, cfg->listen, "requests", nng_req0_open, false);
        STORE(&s->lw_req, lwatch_find(&s->lw, s->rep));
    }
    if (code != TRASTENDA_OK) {
        char keep[512];
        snprintf(keep, sizeof(keep), "%s", err);
        trastenda_server_stop(s);
        snprintf(err, errlen, "%s", keep);
        return code;
    }
    code = repl_start(s, err, errlen);
    if (code != TRASTENDA_OK) {
        trastenda_server_stop(s);
        return code;
    }
    for (uint32_t i = 0; i < s->n_ctxs; i++)
        ctx_recv(&s->ctxs[i]);
    lwatch_start(&s->lw, &s->cfg);
    STORE(&s->ready, 1);
    srv_log(s, TRASTENDA_LOG_INFO, "server: serving requests on %s, events on %s (%u contexts)%s",
            cfg->listen, s->pub_open ? cfg->events : "(none)", s->n_ctxs,
            cfg->not_leader != NULL && cfg->not_leader[0] ? " as a test follower" : "");
    *out = s;
    return TRASTENDA_OK;
}

void
trastenda_server_stop(trastenda_server *s)
{
    if (s == NULL) return;
    STORE(&s->stopping, 1);
    STORE(&s->ready, 0);
    lwatch_stop(&s->lw); /* before any socket it watches closes */
    STORE(&s->lw_req, NULL);
    http_stop(s);                  /* its requests in flight are answered first */
    srv_waits_check(s, INT64_MAX); /* reads waiting for a min_seq: answered now */
    /* Requests in flight finish: they are made durable and answered (bounded wait). */
    for (int i = 0; i < 1000 && LOAD(&s->busy_ctxs) > 0; i++)
        usleep(5000);
    if (LOAD(&s->busy_ctxs) > 0)
        srv_log(s, TRASTENDA_LOG_WARN, "server: %u requests still in flight at stop",
                LOAD(&s->busy_ctxs));
    for (uint32_t i = 0; i < s->n_ctxs; i++)
        nng_aio_stop(s->ctxs[i].aio);
    pthread_mutex_lock(&s->slow_mu);
    s->slow_stop = true;
    pthread_cond_signal(&s->slow_cv);
    pthread_mutex_unlock(&s->slow_mu);
    pthread_join(s->slow_th, NULL);
    for (uint32_t i = 0; i < s->n_ctxs; i++)
        nng_ctx_close(s->ctxs[i].ctx);
    /* Its pipe callbacks name s: none may run once s is freed, even from a close left behind. */
    nng_pipe_notify(s->rep, NNG_PIPE_EV_ADD_PRE, NULL, NULL);
    nng_pipe_notify(s->rep, NNG_PIPE_EV_ADD_POST, NULL, NULL);
    nng_pipe_notify(s->rep, NNG_PIPE_EV_REM_POST, NULL, NULL);
    bool rep_closed = srv_close_sock(s, s->rep, "server");
    repl_stop(s);
    trastenda_store_close(s->store); /* finishes and persists what was queued */
    repl_free(s);                    /* after the store's writer, whose hook reads it, stopped */
    if (s->pub_open) {
        __atomic_store_n(&s->pub_open, false, __ATOMIC_RELEASE);
        srv_close_sock(s, s->pub, "events");
    }
    srv_log(s, TRASTENDA_LOG_INFO, "server: stopped after %llu requests",
            (unsigned long long)LOAD(&s->n_requests));
    /* A close left behind may still run a callback fetched before the unregistering: s stays. */
    if (rep_closed) srv_free(s);
}
