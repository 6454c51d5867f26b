/*
 * net/srv.h - the server's internals shared by net/server.c (sockets, contexts, lifecycle),
 * net/exec.c (running a request's ops) and net/reply.c (encoding replies).
 *
 * A request's life, on one nng context:
 *   RECV  -> decode + validate (network thread)
 *         -> writes and engine reads: one store request (engine thread; the reply waits for
 *            durability); stock checks alone: answered here, lock-free
 *         -> slow reads (ledger, events, archive lookups, backup): the slow worker thread
 *   REPLY -> encode, send (network thread: the store's completion only schedules it)
 */
#ifndef TRASTENDA_NET_SRV_H
#define TRASTENDA_NET_SRV_H

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "lwatch.h"
#include "metrics.h"
#include "proto.h"
#include "trastenda/log.h"
#include "trastenda/server.h"
#include "trastenda/storage.h"

#define SRV_STOCK_RECS_MAX 256  /* locations a stock reply lists without a limit (all summed) */
#define SRV_PIPE_SLOTS     4096 /* per-connection counters, by pipe id */

/* What a read op produced (in the context's arena; rows after it). */
struct op_out {
    trastenda_err err;
    char msg[TRASTENDA_MESSAGE_BYTES];
    bool slow;        /* runs on the slow worker */
    bool try_archive; /* hold/order not live: look in the archive (slow) */
    union {
        struct {
            int64_t available;
            uint32_t n, cap;
            trastenda_stock *recs;
            bool paged;    /* listed by location index, a page at a time (next) */
            uint64_t next; /* the cursor of the next page; 0 at the end */
        } stock;
        trastenda_hold_view hold;
        trastenda_order_view order;
        trastenda_po_view po;
        struct {
            uint32_t n;
            uint64_t next;
            trastenda_stock *rows;
        } low;
        struct {
            uint32_t n;
            uint64_t next;
            trastenda_reorder *rows;
        } reorder;
        struct {
            uint32_t n;
            uint64_t next;
            void *rows; /* trastenda_sku_view or trastenda_location_view */
        } list;
        struct {
            trastenda_ledger_page *page;
        } ledger;
        struct {
            uint64_t next; /* the last sequence covered: `since` of the next call */
            uint32_t n;    /* events encoded in ctx->ev from off, len bytes */
            size_t off, len;
        } events;
        struct {
            uint64_t seq;
        } backup;
        struct {
            uint64_t seq, digest;
        } digest;
        struct {
            uint64_t epoch, seq;
        } promote;
        struct {
            uint32_t n;
            trastenda_hold_row *rows;
        } holds;
        struct {
            trastenda_engine_stats eng;
            trastenda_store_stats st;
        } status;
    } u;
};

enum ctx_state {
    CTX_RECV = 1,
    CTX_WORK,  /* waiting for the store or the slow worker */
    CTX_REPLY, /* the reply is to be encoded and sent (scheduled on an nng thread) */
    CTX_SEND,
    CTX_RESUME, /* its min_seq was reached (or its wait timed out): run it */
    CTX_IDLE    /* stopped */
};

struct srv;

struct srv_ctx {
    struct srv *srv;
    /* Where the reply goes: NULL for the REP socket; net/http.c's for an HTTP request. Called
     * on an nng thread with the reply encoded in out (msgpack). */
    void (*on_reply)(struct srv_ctx *c);
    nng_ctx ctx;
    nng_aio *aio;
    enum ctx_state state;
    nng_msg *msg; /* the request: strings in q point into it */
    struct proto_req q;
    /* writes */
    trastenda_cmd *cmds;
    uint32_t *cmd_op; /* op index of each command */
    trastenda_result *results;
    trastenda_alloc *allocs;
    uint32_t cap_cmds, cap_allocs, n_cmds;
    trastenda_line *lines;
    uint32_t cap_lines;
    trastenda_str *chans;
    uint32_t cap_chans;
    trastenda_request sreq;
    trastenda_err store_status; /* the store's completion status */
    /* reads */
    struct op_out **outs; /* per op, NULL for writes and invalid ops */
    uint32_t cap_outs;
    uint8_t *arena;
    size_t arena_cap;
    uint8_t *ev; /* encoded events of an events op */
    size_t ev_len, ev_cap;
    /* the reply */
    uint8_t *out;
    size_t out_len, out_cap;
    struct srv_ctx *slow_next;
    struct srv_ctx *wait_next; /* in srv.waits */
    int64_t wait_deadline_ns;
    bool wait_ok;
    uint32_t pipe_slot; /* the request's connection, in srv.in_flight */
    nng_pipe pipe;      /* that connection */
    int64_t t_start_ns;
    int64_t t_submit_ns; /* handed to the store (durable ack latency) */
};

struct repl;

/* A request whose reads wait until the node has applied its min_seq (read-your-writes). */
struct srv_wait {
    struct srv_ctx *head;
    pthread_mutex_t mu; /* only requests carrying a min_seq ahead of the node take it */
    uint32_t n;         /* atomic: requests waiting */
    uint64_t min_seq;   /* atomic: the lowest min_seq waiting (UINT64_MAX: none): the engine
                         * thread walks the list only once that is applied */
};
struct http;

struct srv {
    trastenda_server_config cfg;
    struct repl *repl;       /* net/repl.c */
    uint32_t restart_wanted; /* atomic: a bootstrap, or a fenced leader's role to check */
    char follow[200];        /* cfg.follow when it comes from the data directory (net/repl.c) */
    uint64_t epoch_heard_at_start; /* the highest epoch its peers and FENCED told of */
    struct srv_wait waits;
    trastenda_store *store;
    const trastenda_engine *eng;
    nng_socket rep, pub;
    bool pub_open;
    struct srv_ctx *ctxs;
    uint32_t n_ctxs;
    uint32_t stopping;  /* atomic */
    uint32_t busy_ctxs; /* atomic: contexts between RECV done and SEND done */
    int64_t started_ns;
    /* slow worker */
    pthread_t slow_th;
    pthread_mutex_t slow_mu;
    pthread_cond_t slow_cv;
    struct srv_ctx *slow_head, *slow_tail;
    bool slow_stop;
    /* connections (atomic) */
    uint32_t conns;
    uint32_t in_flight[SRV_PIPE_SLOTS]; /* requests in flight per connection slot */
    uint32_t pipe_ids[SRV_PIPE_SLOTS];  /* the pipe counted in conns, per slot */
    /* counters (atomic) */
    uint64_t n_requests, n_ops, n_errors, n_bad_requests, n_events, n_refused_conns;
    uint64_t n_reply_timeouts; /* connections closed for not taking a reply */
    struct metrics metrics;
    struct auth auth;
    struct http *http;          /* net/http.c; NULL without an HTTP listener */
    uint32_t ready;             /* atomic: recovery finished, serving */
    struct lwatch lw;           /* its ipc:// listeners kept taking connections (net/lwatch.c) */
    struct lwatch_item *lw_req; /* atomic: the request socket's item, NULL when not watched */
};

/* server.c */
/* Runs a decoded and validated request of any encoding, once the node has applied its min_seq
 * (writes to the store, reads where they run); the reply comes back encoded through
 * c->on_reply, or the REP socket. A context whose aio completes in CTX_RESUME (its min_seq wait
 * is over) goes on with srv_resume. */
void srv_run(struct srv_ctx *c);
void srv_resume(struct srv_ctx *c);
/* Frees what a context holds (its aio included); the context's memory is the caller's. */
void srv_ctx_fini(struct srv_ctx *c);
int64_t srv_mono_ns(void);

/* http.c: started before the store opens (/health and /ready answer during recovery). */
trastenda_err http_start(struct srv *s, char *err, size_t errlen);
/* Refuses new requests, waits (bounded) for those in flight, closes the listener. */
void http_stop(struct srv *s);
void http_destroy(struct srv *s);
uint32_t http_in_flight(const struct srv *s);
uint64_t http_busy(const struct srv *s);

/* tls.c */
/* The server-side TLS configuration of cfg (certificate, key, CA, client auth); caller-owned. */
trastenda_err tls_server_config(const trastenda_server_config *cfg, nng_tls_config **out, char *err,
                                size_t errlen);
/* nng_listen, with cfg's TLS configuration when addr is tls+tcp:// or wss://; errors name
 * `what` ("requests", "events"). */
/* A client TLS configuration for dialing addr (tls+tcp://): the peer verified against tls_ca,
 * this node's tls_cert/tls_key sent when configured (mutual TLS). The name checked against the
 * certificate is the address's host (nng's default). */
trastenda_err tls_client_config(const trastenda_server_config *cfg, const char *addr,
                                nng_tls_config **out, char *err, size_t errlen);
trastenda_err tls_listen(const trastenda_server_config *cfg, nng_socket sock, const char *what,
                         const char *addr, char *err, size_t errlen);
/* The same, giving the listener (to close it and listen again: net/lwatch.c). */
trastenda_err tls_listen_l(const trastenda_server_config *cfg, nng_socket sock, const char *what,
                           const char *addr, nng_listener *out, char *err, size_t errlen);

/* exec.c */
/* Runs the reads of a request that need neither the store nor the slow worker (stock checks). */
void exec_fast_reads(struct srv_ctx *c);
/* The engine-thread part (a store query): every read except the slow ones. */
void exec_engine_reads(trastenda_request *req, const trastenda_engine *e);
/* The slow worker's part. */
void exec_slow_reads(struct srv_ctx *c);
/* Sizes and places the op_out of every read op; false when out of memory. */
bool exec_prepare(struct srv_ctx *c);
bool exec_has_slow(const struct srv_ctx *c);
bool exec_has_engine_reads(const struct srv_ctx *c);

/* reply.c */
/* Encodes the reply into c->out. */
void reply_encode(struct srv_ctx *c);
/* Encodes an envelope error reply. */
void reply_encode_error(struct srv_ctx *c, uint64_t id, trastenda_err err, const char *msg);
/* Publishes the events of a durable log entry on the PUB socket. */
void reply_publish_events(struct srv *s, uint64_t seq, const uint8_t *entry, size_t len);
const char *reply_event_name(uint8_t kind);
/* Appends the events of one log entry (after `since`) to c->ev; false to stop (limit). */
bool reply_events_of_entry(struct srv_ctx *c, uint64_t seq, const uint8_t *entry, size_t len,
                           uint32_t limit, uint32_t *n);

void srv_log(struct srv *s, trastenda_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* nng_close bounded to SOCK_CLOSE_WAIT_MS (net/sockclose.h says why), with a warning past it;
 * false then (the close goes on in the background). */
bool srv_close_sock(struct srv *s, nng_socket sock, const char *what);
/* Is this node a follower (writes refused), and the leader's address it names. Any thread. */
bool srv_is_follower(struct srv *s);
const char *srv_leader(struct srv *s);
/* Resumes the requests waiting for a min_seq now applied, or whose wait is over (now_ns; 0: only
 * the former). Any thread; the engine thread calls it after each batch (on_applied). */
void srv_waits_check(struct srv *s, int64_t now_ns);

#endif /* TRASTENDA_NET_SRV_H */
