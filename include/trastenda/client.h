/*
 * include/trastenda/client.h - the client library (libtrastenda): talk to Trastenda servers over
 * nng with the protocol of docs/PROTOCOL.md.
 *
 * One client is safe to share between threads. Calls made at the same time from many threads are
 * coalesced into one request while earlier ones are in flight (automatic batching), each caller
 * getting its own result; a call on an idle client is sent from the caller's own thread. Several
 * requests may be in flight (nng contexts). With several node addresses, reads go to any node and
 * writes follow not_leader redirects; when the node writes go to does not answer (timeout, refused
 * connection), or answers not_leader without naming a leader (a fenced old leader), they move to
 * the next address, whose not_leader names the leader if it is a follower; a write that timed out
 * is retried with its idempotency key (only writes that carry one: without a key a retry could
 * apply twice, so they report TRASTENDA_E_TIMEOUT).
 */
#ifndef TRASTENDA_CLIENT_H
#define TRASTENDA_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trastenda.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct trastenda_client trastenda_client;

typedef struct trastenda_client_config {
    const char *const *nodes; /* addresses, e.g. "tcp://127.0.0.1:7878"; the first is tried first */
    uint32_t n_nodes;
    uint32_t timeout_ms; /* per request (default 5000) */
    uint32_t batch_max;  /* ops coalesced into one request (default 256, at most 1024) */
    uint32_t in_flight;  /* requests in flight at once (default 2); while a request of stock
                          * checks alone (no min_seq) is in flight to a node, reads for it wait for
                          * its reply unless their batch holds batch_max / 4 calls or more */
    uint32_t retries;    /* of a keyed write after a timeout or a busy reply (default 3) */
    /* While a request sent less than hold_ms ago is in flight to a node, a batch for that node of
     * fewer than batch_max / 4 calls waits for its reply instead of leaving on another slot:
     * concurrent callers' calls then share one request, and writes one fsync (README.md, "Using
     * the client library from C"). Past hold_ms it leaves with the next call made on the client;
     * with none (as when every caller is synchronous and waiting), it waits for that reply (at
     * most twice timeout_ms: to send, then to answer); at close it ends as a queued call does.
     * 0 (the default): no holding. Set it after trastenda_client_config_default. */
    uint32_t hold_ms;
    /* Access (docs/SECURITY.md): sent as the envelope's `token` with every request; NULL: none. */
    const char *token;
    /* TLS, for tls+tcp:// nodes (PEM files): the CA that signed the server's certificate (none:
     * no server can be verified, so none is accepted), and a client certificate and key for
     * servers that ask for one (mutual TLS). */
    const char *tls_ca_file, *tls_cert_file, *tls_key_file;
} trastenda_client_config;

void trastenda_client_config_default(trastenda_client_config *cfg);
trastenda_err trastenda_client_open(const trastenda_client_config *cfg, trastenda_client **out,
                                    char *err, size_t errlen);
/* Sends nothing more and waits for the requests in flight to be answered (each at most twice
 * timeout_ms: to send, then to answer); calls still queued, and calls made meanwhile, end with
 * E_CONNECT. Must not be called from a completion (`done`) of the same client. Accepts NULL. */
void trastenda_client_close(trastenda_client *c);

/* A line of a reserve, order, return or purchase order. */
typedef struct trastenda_cline {
    const char *sku;
    const char *loc; /* NULL: routed (reserve) or not given */
    int64_t qty;
    int unsellable; /* returns */
} trastenda_cline;

#define TRASTENDA_UNSET INT64_MIN

/*
 * One operation, by its protocol name (`op`: "reserve", "order.place", "stock", ...). Strings
 * NULL and numbers TRASTENDA_UNSET are left out of the request. trastenda_args_init() sets
 * everything unset.
 */
typedef struct trastenda_args {
    const char *op;
    const char *key, *actor, *ref;
    const char *sku, *loc, *to, *order, *po, *name, *channel, *reason, *dir;
    const char *const *channels;
    uint32_t n_channels;
    int64_t hold, qty, expected, ttl_ms, reorder_point, reorder_qty, safety_stock, lead_days,
        priority, lat_e6, lon_e6, cursor, limit, from_ms, to_ms, before, since;
    int partial, active, force; /* -1: unset, 0 false, 1 true */
    /* Read-your-writes on a follower: the node answers once it has applied this sequence (a
     * write reply's seq); 0: no wait. Calls coalesced into one request wait for the highest. */
    uint64_t min_seq;
    const trastenda_cline *lines;
    uint32_t n_lines;
} trastenda_args;

void trastenda_args_init(trastenda_args *a, const char *op);

#define TRASTENDA_CLIENT_ALLOCS_MAX 128

typedef struct trastenda_calloc {
    char sku[TRASTENDA_ID_BYTES_MAX + 1];
    char loc[TRASTENDA_ID_BYTES_MAX + 1];
    int64_t qty, short_qty;
} trastenda_calloc;

/*
 * The result of one operation. The common fields are decoded; `raw` holds the result's msgpack
 * map for everything else (stock records, ledger rows, events, status: see docs/PROTOCOL.md and
 * trastenda_result_json()).
 */
typedef struct trastenda_reply {
    trastenda_err code;
    char name[48];
    char msg[TRASTENDA_MESSAGE_BYTES];
    int64_t line; /* -1 when none */
    int dup;
    uint64_t hold, order_no;
    int64_t expires_ms, on_hand, available, retry_ms;
    char state[16], rule[16];
    char leader[128];
    uint32_t n_allocs;
    trastenda_calloc allocs[TRASTENDA_CLIENT_ALLOCS_MAX]; /* the first n_allocs are set */
    uint64_t seq; /* the durable sequence of the reply (reads on followers: min_seq) */
    uint8_t *raw;
    size_t raw_len;
} trastenda_reply;

/* Frees reply->raw. */
void trastenda_reply_clear(trastenda_reply *r);

/*
 * One operation, coalesced with other threads' calls. Returns the transport status
 * (TRASTENDA_OK when a result came back; the operation's own outcome is reply->code), or
 * E_TIMEOUT, E_CONNECT, E_INVALID (bad args), E_MALFORMED (a reply that does not parse).
 */
trastenda_err trastenda_call(trastenda_client *c, const trastenda_args *a, trastenda_reply *reply);

/* An explicit batch: n operations, replies[i] for args[i], in one request when the limits allow
 * (batch_max operations, and a request's lines and bytes: TRASTENDA_REQUEST_*_MAX), else in as
 * few as they do. */
trastenda_err trastenda_call_batch(trastenda_client *c, const trastenda_args *args, uint32_t n,
                                   trastenda_reply *replies);

/*
 * Asynchronous calls, for callers that run on an event loop or as coroutines instead of one
 * blocked thread each: n operations (coalesced with other calls, like trastenda_call), their
 * results decoded into replies[0..n) as trastenda_call_batch does, then done(arg, status) is
 * called once, with the worst transport status of the n. `replies` must stay valid until then.
 * Returns E_INVALID (bad args), E_CONNECT (the client is closing) — done is not called then — or
 * OK: done will be called exactly once (with E_CONNECT when the client closes first).
 *
 * `done` runs on one of the client's I/O threads (or on the thread closing the client, for calls
 * it ends; or, when out of memory, on the calling thread). It must not block (no trastenda_call),
 * and may make more asynchronous calls: those are sent together once the callbacks of the same
 * reply have run, so callers that answer each other's completions are batched without waiting.
 */
typedef void (*trastenda_done_fn)(void *arg, trastenda_err status);
trastenda_err trastenda_call_async(trastenda_client *c, const trastenda_args *args, uint32_t n,
                                   trastenda_reply *replies, trastenda_done_fn done, void *arg);

/*
 * Corking, per thread: while the calling thread has corked the client, its asynchronous calls are
 * queued but not sent; uncorking sends everything queued. An event loop corks before it runs the
 * callers that became ready and uncorks after, so that their calls leave in one request instead
 * of one each. Synchronous calls are never held back by a cork (by hold_ms, above, they may be,
and reads behind a request of stock checks in flight: in_flight, above).
 * A thread corks at most 8 clients at once.
 * Uncork before another thread closes the client (closing uncorks it for the closing thread).
 */
void trastenda_client_cork(trastenda_client *c);
void trastenda_client_uncork(trastenda_client *c);

/* The result map as JSON text (malloc'ed; free it). */
char *trastenda_result_json(const trastenda_reply *r);
/* Any msgpack value as JSON text (malloc'ed). NULL when it does not parse. */
char *trastenda_msgpack_json(const uint8_t *buf, size_t len);

/* ---- typed calls (thin wrappers over trastenda_call) ---- */

trastenda_err trastenda_reserve(trastenda_client *c, const trastenda_cline *lines, uint32_t n,
                                int64_t ttl_ms, const char *key, trastenda_reply *reply);
trastenda_err trastenda_confirm(trastenda_client *c, uint64_t hold, const char *order,
                                trastenda_reply *reply);
trastenda_err trastenda_release(trastenda_client *c, uint64_t hold, trastenda_reply *reply);
trastenda_err trastenda_receive(trastenda_client *c, const char *sku, const char *loc, int64_t qty,
                                const char *key, trastenda_reply *reply);
trastenda_err trastenda_order_place(trastenda_client *c, const char *order,
                                    const trastenda_cline *lines, uint32_t n, const char *channel,
                                    int32_t lat_e6, int32_t lon_e6, trastenda_reply *reply);
/* Available units of a SKU over all locations (reply->available; records in raw). */
trastenda_err trastenda_stock(trastenda_client *c, const char *sku, trastenda_reply *reply);
/* The same with its records a page at a time, by location index: cursor 0 for the first page,
 * then the result's "next" (0: the last page); limit 1..TRASTENDA_PAGE_MAX, 0 for 256 (always
 * sent: the result has "next" even when one page holds every record).
 * reply->available is always the sum over every location. */
trastenda_err trastenda_stock_page(trastenda_client *c, const char *sku, int64_t cursor,
                                   int64_t limit, trastenda_reply *reply);
trastenda_err trastenda_status(trastenda_client *c, trastenda_reply *reply);

/*
 * Every other operation of docs/PROTOCOL.md as a typed call: its required fields as parameters
 * (a NULL `key` or `loc`, a `limit` of 0, a `cursor`, `before` or `since` of 0: left out). The
 * optional fields a typed call does not take (a location's channels, a count's `expected`, ...)
 * are set through trastenda_args and trastenda_call.
 */

/* Catalogue. */
trastenda_err trastenda_location_upsert(trastenda_client *c, const char *loc, const char *name,
                                        int32_t lat_e6, int32_t lon_e6, trastenda_reply *reply);
trastenda_err trastenda_location_deactivate(trastenda_client *c, const char *loc,
                                            trastenda_reply *reply);
trastenda_err trastenda_sku_upsert(trastenda_client *c, const char *sku, const char *name,
                                   trastenda_reply *reply);
trastenda_err trastenda_sku_deactivate(trastenda_client *c, const char *sku,
                                       trastenda_reply *reply);

/* Stock: delta is signed (adjust); count sets on_hand; unsellable moves qty > 0 out of sale and
 * qty < 0 back; safety sets the safety stock; a transfer leaves `from` and arrives at its
 * destination with transfer_in. */
trastenda_err trastenda_adjust(trastenda_client *c, const char *sku, const char *loc, int64_t delta,
                               const char *reason, const char *key, trastenda_reply *reply);
trastenda_err trastenda_count(trastenda_client *c, const char *sku, const char *loc, int64_t qty,
                              const char *reason, const char *key, trastenda_reply *reply);
trastenda_err trastenda_unsellable(trastenda_client *c, const char *sku, const char *loc,
                                   int64_t qty, const char *reason, const char *key,
                                   trastenda_reply *reply);
trastenda_err trastenda_safety(trastenda_client *c, const char *sku, const char *loc, int64_t qty,
                               const char *key, trastenda_reply *reply);
trastenda_err trastenda_transfer_out(trastenda_client *c, const char *sku, const char *from,
                                     const char *to, int64_t qty, const char *key,
                                     trastenda_reply *reply);
trastenda_err trastenda_transfer_in(trastenda_client *c, const char *sku, const char *loc,
                                    int64_t qty, const char *key, trastenda_reply *reply);

/* Holds and orders (loc of pick, pack, ship: NULL for all of the order's allocations). */
trastenda_err trastenda_extend(trastenda_client *c, uint64_t hold, int64_t ttl_ms,
                               trastenda_reply *reply);
trastenda_err trastenda_order_pick(trastenda_client *c, const char *order, const char *loc,
                                   trastenda_reply *reply);
trastenda_err trastenda_order_pack(trastenda_client *c, const char *order, const char *loc,
                                   trastenda_reply *reply);
trastenda_err trastenda_order_ship(trastenda_client *c, const char *order, const char *loc,
                                   trastenda_reply *reply);
trastenda_err trastenda_order_deliver(trastenda_client *c, const char *order,
                                      trastenda_reply *reply);
trastenda_err trastenda_order_cancel(trastenda_client *c, const char *order,
                                     trastenda_reply *reply);
trastenda_err trastenda_order_return(trastenda_client *c, const char *order,
                                     const trastenda_cline *lines, uint32_t n, const char *key,
                                     trastenda_reply *reply);

/* Purchase orders. */
trastenda_err trastenda_po_create(trastenda_client *c, const char *po, const trastenda_cline *lines,
                                  uint32_t n, trastenda_reply *reply);
trastenda_err trastenda_po_receive(trastenda_client *c, const char *po,
                                   const trastenda_cline *lines, uint32_t n, const char *key,
                                   trastenda_reply *reply);
trastenda_err trastenda_po_close(trastenda_client *c, const char *po, trastenda_reply *reply);
trastenda_err trastenda_noop(trastenda_client *c, trastenda_reply *reply);

/* Reads (results in reply->raw, trastenda_result_json for JSON). */
trastenda_err trastenda_hold_get(trastenda_client *c, uint64_t hold, trastenda_reply *reply);
trastenda_err trastenda_order_get(trastenda_client *c, const char *order, trastenda_reply *reply);
trastenda_err trastenda_po_get(trastenda_client *c, const char *po, trastenda_reply *reply);
trastenda_err trastenda_low_stock(trastenda_client *c, int64_t cursor, int64_t limit,
                                  trastenda_reply *reply);
trastenda_err trastenda_reorder_suggestions(trastenda_client *c, int64_t cursor, int64_t limit,
                                            trastenda_reply *reply);
trastenda_err trastenda_ledger(trastenda_client *c, const char *sku, const char *loc,
                               int64_t before, int64_t limit, trastenda_reply *reply);
trastenda_err trastenda_events(trastenda_client *c, int64_t since, int64_t limit,
                               trastenda_reply *reply);
trastenda_err trastenda_stock_list(trastenda_client *c, int64_t cursor, int64_t limit,
                                   trastenda_reply *reply);
trastenda_err trastenda_sku_list(trastenda_client *c, int64_t cursor, int64_t limit,
                                 trastenda_reply *reply);
trastenda_err trastenda_location_list(trastenda_client *c, int64_t cursor, int64_t limit,
                                      trastenda_reply *reply);
trastenda_err trastenda_holds_expiring(trastenda_client *c, int64_t limit, trastenda_reply *reply);
trastenda_err trastenda_digest(trastenda_client *c, trastenda_reply *reply);

/* Operations: promote this follower (force: even when a reachable follower has more), a
 * checkpoint of the node into a new directory on its machine. */
trastenda_err trastenda_promote(trastenda_client *c, bool force, trastenda_reply *reply);
trastenda_err trastenda_backup(trastenda_client *c, const char *dir, trastenda_reply *reply);

#ifdef __cplusplus
}
#endif
#endif /* TRASTENDA_CLIENT_H */
