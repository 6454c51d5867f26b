/*
 * net/client.c - the client library (include/trastenda/client.h).
 *
 * Automatic batching: a call encodes its op map in the caller's thread and queues it. If a
 * request slot is idle, the caller takes every queued op (up to batch_max) and sends them itself
 * as one request; otherwise the op waits and the next slot whose reply arrives sends it with the
 * others that queued meanwhile. Each reply's results are cut into per-op byte ranges and handed
 * to their callers, who decode them. A client-side mutex guards the queue: the client is not the
 * server's hot path, and the callers block anyway.
 *
 * A request carries calls of one kind: those made with a write (one trastenda_call, _batch or
 * _async: its calls stay together, in order, so its reads see its writes), or reads alone. A
 * server replies to a request with writes once they are durable, so other callers' stock checks
 * queued among writes would wait for an fsync with them; alone, they are answered at once. Writes
 * leave first (not twice in a row while reads wait); what a batch leaves of the other kind takes
 * the next idle slot. While a request of stock checks alone is in flight to a node, reads wait for
 * its reply (quick: no fsync, no min_seq wait, no slow read) unless their batch holds at least
 * batch_max / 4 calls: it sends what queued meanwhile as one request.
 *
 * With hold_ms set, while a request sent less than hold_ms ago is in flight to a node, a batch
 * for it that is still small (fewer than a quarter of batch_max calls) waits for that reply rather
 * than leaving at once on another slot: concurrent callers' calls then share one request (writes:
 * one fsync) instead of spreading over several that reach the server one fsync apart. Past
 * hold_ms it leaves with the next call made on the client. No timer bounds it: nng 1.5.2's
 * expiry thread spins on the clock until a millisecond deadline passes (measured: 13% of the
 * machine for a 2 ms timer re-armed), and a waiting caller cannot send for the client (a close
 * may free it meanwhile).
 *
 * Asynchronous calls (trastenda_call_async) queue the same way; the I/O thread that receives
 * their reply decodes their results straight from the message and calls their completion, with
 * the client corked for that thread, so that calls made by the completions leave together.
 */
#include <linux/futex.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "mp.h"
#include "mpjson.h"
#include "pem.h"
#include "sockclose.h"
#include "trastenda/client.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#define BATCH_HARD_MAX 1024

struct agroup;

struct call {
    uint8_t *op; /* the encoded op map */
    size_t op_len;
    uint32_t n_lines;
    bool write, keyed;
    /* Some call queued with this one (the same trastenda_call, _batch or _async) writes: they go
     * in requests that write, the calls of other callers' reads alone in requests of reads, whose
     * replies wait for no fsync. */
    bool unit_write;
    bool quick; /* a stock check without min_seq: answered at once, without an fsync */
    uint32_t tries;
    trastenda_err status;
    int nng_rv;   /* the transport's error, when status is one */
    uint8_t *res; /* the result map, copied */
    size_t res_len;
    uint64_t seq;
    uint64_t min_seq;
    uint32_t done;         /* synchronous calls: futex word, 1 once the result is in */
    struct agroup *group;  /* asynchronous calls: the call_async they belong to */
    uint32_t index;        /* ... and their place in it */
    const uint8_t *res_in; /* asynchronous: the result, inside the reply message */
    struct call *next;
};

/* The calls of one trastenda_call_async. */
struct agroup {
    trastenda_reply *replies;
    trastenda_done_fn done;
    void *arg;
    atomic_uint pending;
    _Atomic trastenda_err status; /* the last failure, OK when none */
    struct call calls[];
};

/* Calls whose reply came back, woken or completed after the lock is released. */
struct finished {
    struct call *c[BATCH_HARD_MAX]; /* asynchronous: their completions */
    uint32_t n;
    struct call *w[BATCH_HARD_MAX]; /* synchronous: their callers to wake */
    uint32_t nw;
};

struct slot {
    struct trastenda_client *cl;
    nng_ctx ctx;
    nng_aio *aio;
    bool busy;
    bool receiving; /* the request was sent: the aio now waits for the reply */
    struct call **calls;
    uint32_t n;
    uint32_t node; /* where the request went */
    uint64_t id;
    int64_t sent_ns; /* when it was filled (monotonic; with hold_ms only) */
    bool writes;     /* it carries calls made with a write */
    bool quick;      /* it carries stock checks alone, none waiting for a min_seq */
};

struct trastenda_client {
    trastenda_client_config cfg;
    char **nodes;
    nng_socket *socks;  /* one REQ socket per node */
    struct slot *slots; /* in_flight per node */
    uint32_t leader;    /* index of the node writes go to */
    uint32_t rr;        /* reads round robin */
    pthread_mutex_t mu;
    pthread_cond_t idle; /* signalled, once closing, when a slot is released */
    uint32_t n_busy;     /* slots taken */
    struct call *head, *tail;
    uint32_t queued;
    uint32_t queued_writes; /* of them, calls queued with a write (unit_write) */
    bool last_writes;       /* the last slot_fill took calls queued with a write */
    bool fill_skipped;      /* the last slot_fill left calls of the other kind queued */
    uint64_t next_id;
    bool closing;
    uint32_t fill_min; /* a batch this large leaves beside a request in flight */
    char *token;       /* the envelope's token, NULL when none */
};

void
trastenda_client_config_default(trastenda_client_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->timeout_ms = 5000;
    cfg->batch_max = 256;
    cfg->in_flight = 2;
    cfg->retries = 3;
}

void
trastenda_args_init(trastenda_args *a, const char *op)
{
    memset(a, 0, sizeof(*a));
    a->op = op;
    int64_t *nums[] = {&a->hold,          &a->qty,         &a->expected,     &a->ttl_ms,
                       &a->reorder_point, &a->reorder_qty, &a->safety_stock, &a->lead_days,
                       &a->priority,      &a->lat_e6,      &a->lon_e6,       &a->cursor,
                       &a->limit,         &a->from_ms,     &a->to_ms,        &a->before,
                       &a->since};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
        *nums[i] = TRASTENDA_UNSET;
    a->partial = a->active = a->force = -1;
}

void
trastenda_reply_clear(trastenda_reply *r)
{
    free(r->raw);
    r->raw = NULL;
    r->raw_len = 0;
}

/* ---- encoding an op ---- */

struct wbuf {
    uint8_t *p;
    size_t len, cap;
};

static int
wbuf_write(void *data, const char *buf, size_t len)
{
    struct wbuf *w = data;
    if (w->len + len > w->cap) {
        size_t c = w->cap == 0 ? 256 : w->cap;
        while (c < w->len + len)
            c *= 2;
        uint8_t *n = realloc(w->p, c);
        if (n == NULL) return -1;
        w->p = n;
        w->cap = c;
    }
    memcpy(w->p + w->len, buf, len);
    w->len += len;
    return 0;
}

static void
pk_s(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static bool
is_write_op(const char *op)
{
    static const char *const reads[] = {
        "stock",  "hold",   "order",  "po",         "low_stock", "reorder",      "ledger",
        "status", "events", "backup", "stock.list", "sku.list",  "location.list"};
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
        if (strcmp(op, reads[i]) == 0) return false;
    return true;
}

/* Encodes the op map; false on bad args. */
static bool
encode_op(const trastenda_args *a, struct wbuf *w)
{
    if (a->op == NULL || a->op[0] == '\0') return false;
    struct {
        const char *k;
        const char *v;
    } strs[] = {{"key", a->key},   {"actor", a->actor},     {"ref", a->ref},       {"sku", a->sku},
                {"loc", a->loc},   {"to", a->to},           {"order", a->order},   {"po", a->po},
                {"name", a->name}, {"channel", a->channel}, {"reason", a->reason}, {"dir", a->dir}};
    struct {
        const char *k;
        int64_t v;
    } nums[] = {{"hold", a->hold},
                {"qty", a->qty},
                {"expected", a->expected},
                {"ttl_ms", a->ttl_ms},
                {"reorder_point", a->reorder_point},
                {"reorder_qty", a->reorder_qty},
                {"safety_stock", a->safety_stock},
                {"lead_days", a->lead_days},
                {"priority", a->priority},
                {"lat_e6", a->lat_e6},
                {"lon_e6", a->lon_e6},
                {"cursor", a->cursor},
                {"limit", a->limit},
                {"from_ms", a->from_ms},
                {"to_ms", a->to_ms},
                {"before", a->before},
                {"since", a->since}};
    uint32_t n = 1;
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        n += strs[i].v != NULL;
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
        n += nums[i].v != TRASTENDA_UNSET;
    n += a->partial >= 0;
    n += a->active >= 0;
    n += a->force >= 0;
    n += a->lines != NULL;
    n += a->channels != NULL;
    msgpack_packer pk;
    msgpack_packer_init(&pk, w, wbuf_write);
    msgpack_pack_map(&pk, n);
    pk_s(&pk, "op");
    pk_s(&pk, a->op);
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        if (strs[i].v != NULL) {
            pk_s(&pk, strs[i].k);
            pk_s(&pk, strs[i].v);
        }
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
        if (nums[i].v != TRASTENDA_UNSET) {
            pk_s(&pk, nums[i].k);
            if (strcmp(nums[i].k, "hold") == 0 || strcmp(nums[i].k, "cursor") == 0 ||
                strcmp(nums[i].k, "limit") == 0 || strcmp(nums[i].k, "before") == 0 ||
                strcmp(nums[i].k, "since") == 0)
                msgpack_pack_uint64(&pk, (uint64_t)nums[i].v);
            else
                msgpack_pack_int64(&pk, nums[i].v);
        }
    if (a->partial >= 0) {
        pk_s(&pk, "partial");
        a->partial ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    }
    if (a->active >= 0) {
        pk_s(&pk, "active");
        a->active ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    }
    if (a->force >= 0) {
        pk_s(&pk, "force");
        a->force ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    }
    if (a->channels != NULL) {
        pk_s(&pk, "channels");
        msgpack_pack_array(&pk, a->n_channels);
        for (uint32_t i = 0; i < a->n_channels; i++)
            pk_s(&pk, a->channels[i]);
    }
    if (a->lines != NULL) {
        pk_s(&pk, "lines");
        msgpack_pack_array(&pk, a->n_lines);
        for (uint32_t i = 0; i < a->n_lines; i++) {
            const trastenda_cline *l = &a->lines[i];
            if (l->sku == NULL) return false;
            msgpack_pack_map(&pk, 2 + (l->loc != NULL) + (l->unsellable != 0));
            pk_s(&pk, "sku");
            pk_s(&pk, l->sku);
            if (l->loc != NULL) {
                pk_s(&pk, "loc");
                pk_s(&pk, l->loc);
            }
            pk_s(&pk, "qty");
            msgpack_pack_int64(&pk, l->qty);
            if (l->unsellable) {
                pk_s(&pk, "unsellable");
                msgpack_pack_true(&pk);
            }
        }
    }
    return w->p != NULL;
}

/* ---- decoding a result map ---- */

static void
copy_str(char *dst, size_t cap, const char *s, uint32_t n)
{
    if (n >= cap) n = (uint32_t)cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

static bool
key_is(const char *k, uint32_t n, const char *want)
{
    return n == strlen(want) && memcmp(k, want, n) == 0;
}

/* Clears a reply but for its allocation entries: 128 of them make 19 KB, which zeroing took
 * more CPU than decoding (a quarter of trastenda-bench's CPU in batches of 64 stock checks).
 * Entries are cleared one by one as they are filled; those past n_allocs are not read. */
static void
reply_reset(trastenda_reply *r)
{
    memset(r, 0, offsetof(trastenda_reply, allocs));
    r->seq = 0;
    r->raw = NULL;
    r->raw_len = 0;
    r->line = -1;
}

static trastenda_err
decode_result(const uint8_t *buf, size_t len, trastenda_reply *r)
{
    reply_reset(r);
    struct mp_rd rd;
    mp_rd_init(&rd, buf, len);
    uint32_t n;
    if (!mp_read_map(&rd, &n)) return TRASTENDA_E_MALFORMED;
    for (uint32_t i = 0; i < n && !rd.bad; i++) {
        const char *k, *s;
        uint32_t kl, sl;
        int64_t v;
        uint64_t u;
        if (!mp_read_str(&rd, &k, &kl)) break;
        if (key_is(k, kl, "code") && mp_read_u64(&rd, &u))
            r->code = (trastenda_err)u;
        else if (key_is(k, kl, "name") && mp_read_str(&rd, &s, &sl))
            copy_str(r->name, sizeof(r->name), s, sl);
        else if (key_is(k, kl, "msg") && mp_read_str(&rd, &s, &sl))
            copy_str(r->msg, sizeof(r->msg), s, sl);
        else if (key_is(k, kl, "state") && mp_peek(&rd) == MP_STR && mp_read_str(&rd, &s, &sl))
            copy_str(r->state, sizeof(r->state), s, sl);
        else if (key_is(k, kl, "rule") && mp_read_str(&rd, &s, &sl))
            copy_str(r->rule, sizeof(r->rule), s, sl);
        else if (key_is(k, kl, "leader") && mp_read_str(&rd, &s, &sl))
            copy_str(r->leader, sizeof(r->leader), s, sl);
        else if (key_is(k, kl, "line") && mp_read_i64(&rd, &v))
            r->line = v;
        else if (key_is(k, kl, "dup") && mp_peek(&rd) == MP_BOOL) {
            bool b;
            mp_read_bool(&rd, &b);
            r->dup = b;
        } else if (key_is(k, kl, "hold") && mp_peek(&rd) == MP_INT && mp_read_u64(&rd, &u))
            r->hold = u;
        else if (key_is(k, kl, "order_no") && mp_read_u64(&rd, &u))
            r->order_no = u;
        else if (key_is(k, kl, "expires_ms") && mp_read_i64(&rd, &v))
            r->expires_ms = v;
        else if (key_is(k, kl, "on_hand") && mp_read_i64(&rd, &v))
            r->on_hand = v;
        else if (key_is(k, kl, "available") && mp_read_i64(&rd, &v))
            r->available = v;
        else if (key_is(k, kl, "retry_ms") && mp_read_i64(&rd, &v))
            r->retry_ms = v;
        else if (key_is(k, kl, "allocs") && mp_peek(&rd) == MP_ARRAY) {
            uint32_t na;
            mp_read_array(&rd, &na);
            for (uint32_t j = 0; j < na && !rd.bad; j++) {
                trastenda_calloc *a =
                    r->n_allocs < TRASTENDA_CLIENT_ALLOCS_MAX ? &r->allocs[r->n_allocs++] : NULL;
                if (a != NULL) memset(a, 0, sizeof(*a));
                uint32_t m;
                if (!mp_read_map(&rd, &m)) break;
                for (uint32_t q = 0; q < m && !rd.bad; q++) {
                    if (!mp_read_str(&rd, &k, &kl)) break;
                    if (a != NULL && key_is(k, kl, "sku") && mp_read_str(&rd, &s, &sl))
                        copy_str(a->sku, sizeof(a->sku), s, sl);
                    else if (a != NULL && key_is(k, kl, "loc") && mp_read_str(&rd, &s, &sl))
                        copy_str(a->loc, sizeof(a->loc), s, sl);
                    else if (a != NULL && key_is(k, kl, "qty") && mp_read_i64(&rd, &v))
                        a->qty = v;
                    else if (a != NULL && key_is(k, kl, "short") && mp_read_i64(&rd, &v))
                        a->short_qty = v;
                    else
                        mp_skip(&rd, MP_DEPTH_MAX);
                }
            }
        } else
            mp_skip(&rd, MP_DEPTH_MAX);
    }
    if (rd.bad) return TRASTENDA_E_MALFORMED;
    r->raw = malloc(len);
    if (r->raw != NULL) {
        memcpy(r->raw, buf, len);
        r->raw_len = len;
    }
    return TRASTENDA_OK;
}

/* The code of a result map and the leader it names, without decoding the rest (the reply
 * thread's check before handing the result to its caller, who decodes it). */
static bool
result_route(const uint8_t *buf, size_t len, uint64_t *code, char *leader, size_t cap)
{
    struct mp_rd rd;
    mp_rd_init(&rd, buf, len);
    uint32_t n;
    if (!mp_read_map(&rd, &n)) return false;
    for (uint32_t i = 0; i < n; i++) {
        const char *k, *v;
        uint32_t kl, vl;
        if (!mp_read_str(&rd, &k, &kl)) return false;
        if (key_is(k, kl, "code")) {
            if (!mp_read_u64(&rd, code)) return false;
            /* only these two name a leader or are retried: the rest need not be read */
            if (*code != TRASTENDA_E_NOT_LEADER && *code != TRASTENDA_E_BUSY) return true;
        } else if (key_is(k, kl, "leader")) {
            if (!mp_read_str(&rd, &v, &vl)) return false;
            copy_str(leader, cap, v, vl);
        } else if (!mp_skip(&rd, MP_DEPTH_MAX)) {
            return false;
        }
    }
    return true;
}

/* ---- sending and receiving ---- */

static void slot_reply(struct trastenda_client *cl, struct slot *sl, nng_msg *m, int rv,
                       struct finished *fin);
static void async_complete(struct trastenda_client *cl, struct finished *fin);
static void async_run(struct trastenda_client *cl, struct finished *fin);
static void client_flush(struct trastenda_client *cl);
static void async_end(struct call *c);
static void wake_sync(struct finished *fin);

/* The clients this thread has corked (trastenda_client_cork); more than CORKS_MAX are not. */
#define CORKS_MAX 8
static __thread const struct trastenda_client *tl_corked[CORKS_MAX];
static __thread uint32_t tl_n_corked;

static bool
corked(const struct trastenda_client *cl)
{
    for (uint32_t i = 0; i < tl_n_corked; i++)
        if (tl_corked[i] == cl) return true;
    return false;
}

/* Corks cl for this thread; false when it already was (or cannot be). */
static bool
cork(const struct trastenda_client *cl)
{
    if (corked(cl) || tl_n_corked == CORKS_MAX) return false;
    tl_corked[tl_n_corked++] = cl;
    return true;
}

static void
uncork(const struct trastenda_client *cl)
{
    for (uint32_t i = 0; i < tl_n_corked; i++)
        if (tl_corked[i] == cl) {
            tl_corked[i] = tl_corked[--tl_n_corked];
            return;
        }
}

/* A slot is free again (lock held); a closing client waits for every slot to be. */
static void
slot_release(struct trastenda_client *cl, struct slot *sl)
{
    if (!sl->busy) return;
    sl->busy = false;
    cl->n_busy--;
    if (cl->closing && cl->n_busy == 0) pthread_cond_broadcast(&cl->idle);
}

static void
slot_send(struct trastenda_client *cl, struct slot *sl)
{
    /* envelope: {v:1, id, ops:[...]} with the ops' bytes spliced in */
    struct wbuf w = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &w, wbuf_write);
    uint64_t min_seq = 0;
    for (uint32_t i = 0; i < sl->n; i++)
        if (sl->calls[i]->min_seq > min_seq) min_seq = sl->calls[i]->min_seq;
    msgpack_pack_map(&pk, 3 + (min_seq > 0) + (cl->token != NULL));
    pk_s(&pk, "v");
    msgpack_pack_uint64(&pk, 1);
    pk_s(&pk, "id");
    msgpack_pack_uint64(&pk, sl->id);
    if (min_seq > 0) {
        pk_s(&pk, "min_seq");
        msgpack_pack_uint64(&pk, min_seq);
    }
    if (cl->token != NULL) {
        pk_s(&pk, "token");
        pk_s(&pk, cl->token);
    }
    pk_s(&pk, "ops");
    msgpack_pack_array(&pk, sl->n);
    for (uint32_t i = 0; i < sl->n; i++)
        wbuf_write(&w, (const char *)sl->calls[i]->op, sl->calls[i]->op_len);
    /* A call that alone exceeds a request's size (slot_fill keeps batches of several within it)
     * ends here with E_TOO_BIG: the server's transport would drop it unanswered. */
    int fail = w.p == NULL ? NNG_ENOMEM : w.len > TRASTENDA_REQUEST_BYTES_MAX ? NNG_EMSGSIZE : 0;
    nng_msg *m = NULL;
    if (fail == 0 && nng_msg_alloc(&m, w.len) != 0) fail = NNG_ENOMEM;
    if (fail != 0) {
        free(w.p);
        struct finished *fin = malloc(sizeof(*fin));
        if (fin == NULL) abort(); /* no memory for even the failure's bookkeeping */
        fin->n = fin->nw = 0;
        pthread_mutex_lock(&cl->mu);
        slot_reply(cl, sl, NULL, fail, fin);
        slot_release(cl, sl);
        pthread_mutex_unlock(&cl->mu);
        wake_sync(fin);
        async_complete(cl, fin);
        free(fin);
        return;
    }
    memcpy(nng_msg_body(m), w.p, w.len);
    free(w.p);
    sl->receiving = false;
    nng_aio_set_msg(sl->aio, m);
    nng_aio_set_timeout(sl->aio, (nng_duration)cl->cfg.timeout_ms);
    nng_ctx_send(sl->ctx, sl->aio);
}

static int64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Room for a request's envelope (version, id, token, min_seq) beside its ops. */
#define ENVELOPE_BYTES 4096

/* An idle slot of node for a batch of the given kind of `kind` calls, NULL when there is none,
 * or when the batch waits: reads while a request of stock checks alone is in flight to node, a
 * small batch while a request sent less than hold_ms ago is. */
static struct slot *
slot_on(struct trastenda_client *cl, uint32_t node, bool writes, uint32_t kind, int64_t *now)
{
    struct slot *sl = NULL;
    int64_t youngest = INT64_MIN; /* the last request that left for node, still in flight */
    bool checking = false;        /* a request of stock checks alone is in flight to node */
    for (uint32_t i = 0; i < cl->cfg.in_flight; i++) {
        struct slot *s = &cl->slots[node * cl->cfg.in_flight + i];
        if (!s->busy && sl == NULL) sl = s;
        if (s->busy && s->sent_ns > youngest) youngest = s->sent_ns;
        checking |= s->busy && s->quick;
    }
    if (sl == NULL) return NULL;
    /* Reads: one request of stock checks in flight to a node unless a batch is large. Its reply
     * comes at once (no fsync, no min_seq wait, no slow read) and sends what queued meanwhile as
     * one request instead of several small ones. */
    if (!writes && checking && kind < cl->fill_min) return NULL;
    *now = cl->cfg.hold_ms > 0 ? mono_ns() : 0;
    if (cl->cfg.hold_ms > 0 && youngest != INT64_MIN && kind < cl->fill_min &&
        *now - youngest < (int64_t)cl->cfg.hold_ms * 1000000)
        return NULL;
    sl->node = node;
    return sl;
}

/* An idle slot for a batch of the given kind: writes on the leader, reads on the next node round
 * robin that takes them. */
static struct slot *
slot_for(struct trastenda_client *cl, bool writes, int64_t *now)
{
    uint32_t kind = writes ? cl->queued_writes : cl->queued - cl->queued_writes;
    if (writes) return slot_on(cl, cl->leader, true, kind, now);
    uint32_t n = cl->cfg.n_nodes, first = cl->rr++ % n;
    for (uint32_t k = 0; k < n; k++) {
        struct slot *sl = slot_on(cl, (first + k) % n, false, kind, now);
        if (sl != NULL) return sl;
    }
    return NULL;
}

/* Takes up to batch_max queued calls of one kind into an idle slot (lock held), no more than one
 * request may carry (its lines and bytes: calls valid alone must not fail together). A small
 * batch for a node with a request in flight sent less than hold_ms ago waits (NULL): the reply
 * sends it, or a later call. */
static struct slot *
slot_fill(struct trastenda_client *cl)
{
    if (cl->head == NULL) return NULL;
    /* A batch of one kind: calls queued with a write, or reads alone. Writes first (their replies
     * wait for an fsync besides), but not twice in a row while reads wait; a kind that finds no
     * idle slot (a busy leader, a held batch) lets the other go. */
    uint32_t reads = cl->queued - cl->queued_writes;
    bool writes = cl->queued_writes > 0 && (!cl->last_writes || reads == 0);
    int64_t now = 0;
    struct slot *sl = slot_for(cl, writes, &now);
    if (sl == NULL && (writes ? reads > 0 : cl->queued_writes > 0)) {
        writes = !writes;
        sl = slot_for(cl, writes, &now);
    }
    if (sl == NULL) return NULL;
    sl->busy = true;
    sl->sent_ns = now;
    cl->n_busy++;
    sl->n = 0;
    uint32_t lines = 0;
    size_t bytes = ENVELOPE_BYTES;
    /* In queue order; calls of the other kind stay queued, in theirs. */
    struct call **pp = &cl->head, *prev = NULL;
    while (*pp != NULL && sl->n < cl->cfg.batch_max) {
        struct call *c = *pp;
        if (c->unit_write != writes) {
            prev = c;
            pp = &c->next;
            continue;
        }
        if (sl->n > 0 && (lines + c->n_lines > TRASTENDA_REQUEST_LINES_MAX ||
                          bytes + c->op_len > TRASTENDA_REQUEST_BYTES_MAX))
            break; /* the next request takes it */
        lines += c->n_lines;
        bytes += c->op_len;
        *pp = c->next;
        if (cl->tail == c) cl->tail = prev;
        sl->calls[sl->n++] = c;
    }
    cl->queued -= sl->n;
    if (writes) cl->queued_writes -= sl->n;
    cl->last_writes = writes;
    sl->writes = writes;
    sl->quick = !writes;
    for (uint32_t i = 0; i < sl->n && sl->quick; i++)
        sl->quick = sl->calls[i]->quick;
    cl->fill_skipped = writes ? cl->queued > cl->queued_writes : cl->queued_writes > 0;
    sl->id = ++cl->next_id;
    return sl;
}

/* A list of calls (linked by next, NULL-terminated) ahead of the queue, in its order. */
static void
enqueue_front(struct trastenda_client *cl, struct call *first)
{
    if (first == NULL) return;
    struct call *last = first;
    uint32_t n = 1, w = first->unit_write;
    for (; last->next != NULL; last = last->next) {
        n++;
        w += last->next->unit_write;
    }
    last->next = cl->head;
    cl->head = first;
    if (cl->tail == NULL) cl->tail = last;
    cl->queued += n;
    cl->queued_writes += w;
}

/* A call ends (lock held). It is kept in `fin`: a synchronous caller is woken once the lock is
 * released (woken under it, it would only block again on the lock), an asynchronous call is
 * completed then, its result still inside the reply message. */
static void
finish_call(struct call *c, trastenda_err status, struct finished *fin)
{
    c->status = status;
    if (c->group == NULL)
        fin->w[fin->nw++] = c;
    else
        fin->c[fin->n++] = c;
}

static void
futex_wait(uint32_t *word, uint32_t val)
{
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

/* Wakes the synchronous callers of `fin` (lock not held). A caller may return as soon as it sees
 * done, so its futex word may be gone by the wake: a stray wake-up of whoever waits there next,
 * which re-checks its own word, as every futex waiter does. */
static void
wake_one(struct call *c)
{
    __atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, &c->done, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void
wake_sync(struct finished *fin)
{
    for (uint32_t i = 0; i < fin->nw; i++)
        wake_one(fin->w[i]);
    fin->nw = 0;
}

/* Writes leave the node of sl for the next address, once per request: unless a reply moved them
 * meanwhile (lock held). */
static void
writes_move_on(struct trastenda_client *cl, const struct slot *sl)
{
    if (cl->cfg.n_nodes > 1 && cl->leader == sl->node)
        cl->leader = (sl->node + 1) % cl->cfg.n_nodes;
}

/* The reply of a slot: cut results, wake callers, retry what must be retried (lock held).
 * Asynchronous calls that ended are added to `fin`. */
static void
slot_reply(struct trastenda_client *cl, struct slot *sl, nng_msg *m, int rv, struct finished *fin)
{
    struct mp_rd rd;
    const uint8_t *body = m != NULL ? nng_msg_body(m) : NULL;
    size_t len = m != NULL ? nng_msg_len(m) : 0;
    const uint8_t *res_at[BATCH_HARD_MAX];
    size_t res_len[BATCH_HARD_MAX];
    uint32_t got = 0;
    uint64_t seq = 0;
    trastenda_err env_err = TRASTENDA_OK;
    if (rv == 0) {
        mp_rd_init(&rd, body, len);
        uint32_t n;
        if (!mp_read_map(&rd, &n)) env_err = TRASTENDA_E_MALFORMED;
        for (uint32_t i = 0; i < n && env_err == TRASTENDA_OK; i++) {
            const char *k;
            uint32_t kl;
            uint64_t u;
            if (!mp_read_str(&rd, &k, &kl)) {
                env_err = TRASTENDA_E_MALFORMED;
                break;
            }
            if (key_is(k, kl, "seq") && mp_read_u64(&rd, &u))
                seq = u;
            else if (key_is(k, kl, "results")) {
                uint32_t na;
                if (!mp_read_array(&rd, &na)) env_err = TRASTENDA_E_MALFORMED;
                for (uint32_t j = 0; j < na && env_err == TRASTENDA_OK; j++) {
                    const uint8_t *st = rd.p;
                    if (!mp_skip(&rd, MP_DEPTH_MAX + 4)) env_err = TRASTENDA_E_MALFORMED;
                    if (got < BATCH_HARD_MAX) {
                        res_at[got] = st;
                        res_len[got++] = (size_t)(rd.p - st);
                    }
                }
            } else if (key_is(k, kl, "error")) {
                /* envelope error: code inside */
                uint32_t em;
                if (mp_read_map(&rd, &em))
                    for (uint32_t q = 0; q < em; q++) {
                        if (!mp_read_str(&rd, &k, &kl)) break;
                        if (key_is(k, kl, "code") && mp_read_u64(&rd, &u))
                            env_err = (trastenda_err)u;
                        else
                            mp_skip(&rd, MP_DEPTH_MAX);
                    }
                if (env_err == TRASTENDA_OK) env_err = TRASTENDA_E_MALFORMED;
            } else if (!mp_skip(&rd, MP_DEPTH_MAX + 4))
                env_err = TRASTENDA_E_MALFORMED;
        }
        if (env_err == TRASTENDA_OK && got != sl->n) env_err = TRASTENDA_E_MALFORMED;
    }
    bool silent = rv == NNG_ETIMEDOUT || rv == NNG_ECONNREFUSED || rv == NNG_ECLOSED;
    /* The node writes went to did not answer (a dead leader, say): they try the next node; a
     * follower there redirects them to the leader it knows (not_leader), so an alive but slow
     * leader costs one round trip more. */
    if (silent) writes_move_on(cl, sl);
    struct call *again_head = NULL, **again_tail = &again_head; /* sent again, in their order */
    for (uint32_t i = 0; i < sl->n; i++) {
        struct call *c = sl->calls[i];
        if (rv != 0 || env_err != TRASTENDA_OK) {
            /* A keyed write (or any read) may go again; a write without a key may not. So may
             * a request the node refused as a whole for being one too many on its connection
             * (an envelope E_BUSY: nothing of it ran). */
            bool again = silent || (rv == 0 && env_err == TRASTENDA_E_BUSY);
            if (again && (!c->write || c->keyed) && c->tries < cl->cfg.retries && !cl->closing) {
                c->tries++;
                *again_tail = c;
                again_tail = &c->next;
                continue;
            }
            c->nng_rv = rv;
            finish_call(c,
                        rv == NNG_ETIMEDOUT  ? TRASTENDA_E_TIMEOUT
                        : rv == NNG_EMSGSIZE ? TRASTENDA_E_TOO_BIG
                        : rv != 0            ? TRASTENDA_E_CONNECT
                                             : env_err,
                        fin);
            continue;
        }
        /* Not the leader: follow the redirect, or try the next node when it names no leader (a
         * fenced old leader that does not know the new one; nothing ran); busy: again, when that
         * is safe. */
        uint64_t code = 0;
        char leader[128] = "";
        if (result_route(res_at[i], res_len[i], &code, leader, sizeof(leader)) &&
            ((code == TRASTENDA_E_NOT_LEADER && (leader[0] != '\0' || cl->cfg.n_nodes > 1)) ||
             (code == TRASTENDA_E_BUSY && (c->keyed || !c->write))) &&
            c->tries < cl->cfg.retries && !cl->closing) {
            for (uint32_t nd = 0; code == TRASTENDA_E_NOT_LEADER && nd < cl->cfg.n_nodes; nd++)
                if (strcmp(cl->nodes[nd], leader) == 0) cl->leader = nd;
            if (code == TRASTENDA_E_NOT_LEADER && leader[0] == '\0') writes_move_on(cl, sl);
            c->tries++;
            *again_tail = c;
            again_tail = &c->next;
            continue;
        }
        c->res_len = res_len[i];
        c->seq = seq;
        if (c->group != NULL) { /* decoded from the message before it is freed */
            c->res_in = res_at[i];
            finish_call(c, TRASTENDA_OK, fin);
            continue;
        }
        c->res = malloc(res_len[i]);
        if (c->res == NULL) {
            finish_call(c, TRASTENDA_E_NOMEM, fin);
            continue;
        }
        memcpy(c->res, res_at[i], res_len[i]);
        finish_call(c, TRASTENDA_OK, fin);
    }
    /* Ahead of the queue, in the order they were sent (a call's reads after its writes). */
    *again_tail = NULL;
    enqueue_front(cl, again_head);
    sl->n = 0;
}

static void
slot_cb(void *arg)
{
    struct slot *sl = arg;
    struct trastenda_client *cl = sl->cl;
    int rv = nng_aio_result(sl->aio);
    if (!sl->receiving) {
        if (rv == 0) { /* sent: now the reply */
            sl->receiving = true;
            nng_ctx_recv(sl->ctx, sl->aio);
            return;
        }
        nng_msg_free(nng_aio_get_msg(sl->aio)); /* not sent: still ours */
    }
    nng_msg *m = rv == 0 ? nng_aio_get_msg(sl->aio) : NULL;
    struct finished fin; /* 16 KB: I/O threads have full-size stacks */
    fin.n = fin.nw = 0;
    pthread_mutex_lock(&cl->mu);
    slot_reply(cl, sl, m, rv, &fin);
    /* Without asynchronous calls ended, the slot is free and sends what queued meanwhile, from
     * this thread. With them, it stays taken while their completions run (which may queue more),
     * so that no other thread starts an operation on this aio before its callback is over. */
    struct slot *next = NULL;
    bool other = false;
    if (fin.n == 0) {
        slot_release(cl, sl);
        next = cl->closing ? NULL : slot_fill(cl);
        other = next != NULL && cl->fill_skipped;
    }
    pthread_mutex_unlock(&cl->mu);
    wake_sync(&fin);
    if (fin.n > 0) {
        async_run(cl, &fin); /* their results are inside m */
        pthread_mutex_lock(&cl->mu);
        slot_release(cl, sl);
        pthread_mutex_unlock(&cl->mu);
        if (!corked(cl)) client_flush(cl);
    }
    if (m != NULL) nng_msg_free(m);
    if (next != NULL) slot_send(cl, next);
    if (other && !corked(cl)) client_flush(cl);
}

/* ---- open, close, call ---- */

/* The TLS configuration of a tls+tcp:// dialer: verify the server against the CA (always: with
 * no CA nothing verifies), and present a client certificate when one is configured. */
static int
tls_client_config(const trastenda_client_config *cfg, nng_tls_config **out)
{
    nng_tls_config *t;
    int rv = nng_tls_config_alloc(&t, NNG_TLS_MODE_CLIENT);
    if (rv != 0) return rv;
    rv = nng_tls_config_auth_mode(t, NNG_TLS_AUTH_MODE_REQUIRED);
    if (rv == 0 && cfg->tls_ca_file != NULL) rv = nng_tls_config_ca_file(t, cfg->tls_ca_file);
    if (rv == 0 && cfg->tls_cert_file != NULL && cfg->tls_key_file != NULL) {
        char *cert = pem_read(cfg->tls_cert_file), *key = pem_read(cfg->tls_key_file);
        rv =
            cert != NULL && key != NULL ? nng_tls_config_own_cert(t, cert, key, NULL) : NNG_ECRYPTO;
        free(cert);
        free(key);
    }
    if (rv != 0) {
        nng_tls_config_free(t);
        return rv == NNG_ENOENT || rv == NNG_EINVAL ? NNG_ECRYPTO : rv;
    }
    *out = t;
    return 0;
}

/* Dials a node (non-blocking: the connection comes up in the background, and again after a loss).
 */
static int
dial(const trastenda_client_config *cfg, nng_socket s, const char *url)
{
    if (strncmp(url, "tls+", 4) != 0) return nng_dial(s, url, NULL, NNG_FLAG_NONBLOCK);
    nng_dialer d;
    nng_tls_config *t = NULL;
    int rv = nng_dialer_create(&d, s, url);
    if (rv != 0) return rv;
    rv = tls_client_config(cfg, &t);
    if (rv == 0) {
        rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, t);
        nng_tls_config_free(t); /* the dialer holds its own reference */
    }
    if (rv == 0) rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
    if (rv != 0) nng_dialer_close(d);
    return rv;
}

trastenda_err
trastenda_client_open(const trastenda_client_config *cfg, trastenda_client **out, char *err,
                      size_t errlen)
{
    char dummy[8];
    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (cfg == NULL || out == NULL || cfg->n_nodes == 0 || cfg->nodes == NULL) {
        snprintf(err, errlen, "client: at least one node address is needed");
        return TRASTENDA_E_INVALID;
    }
    struct trastenda_client *cl = calloc(1, sizeof(*cl));
    if (cl == NULL) return TRASTENDA_E_NOMEM;
    cl->cfg = *cfg;
    cl->token = cfg->token != NULL && cfg->token[0] != '\0' ? strdup(cfg->token) : NULL;
    if (cl->cfg.timeout_ms == 0) cl->cfg.timeout_ms = 5000;
    if (cl->cfg.batch_max == 0) cl->cfg.batch_max = 256;
    if (cl->cfg.batch_max > BATCH_HARD_MAX) cl->cfg.batch_max = BATCH_HARD_MAX;
    if (cl->cfg.in_flight == 0) cl->cfg.in_flight = 2;
    cl->fill_min = cl->cfg.batch_max >= 4 ? cl->cfg.batch_max / 4 : 1;
    pthread_mutex_init(&cl->mu, NULL);
    mono_cond_init(&cl->idle);
    uint32_t nn = cfg->n_nodes;
    cl->nodes = calloc(nn, sizeof(char *));
    cl->socks = calloc(nn, sizeof(nng_socket));
    cl->slots = calloc((size_t)nn * cl->cfg.in_flight, sizeof(struct slot));
    if (cl->nodes == NULL || cl->socks == NULL || cl->slots == NULL) abort();
    for (uint32_t i = 0; i < nn; i++) {
        cl->nodes[i] = strdup(cfg->nodes[i]);
        int rv = nng_req0_open(&cl->socks[i]);
        if (rv == 0) rv = nng_socket_set_size(cl->socks[i], NNG_OPT_RECVMAXSZ, 64u << 20);
        /* nng's own resend would repeat a write without asking: we retry ourselves. */
        if (rv == 0)
            rv = nng_socket_set_ms(cl->socks[i], NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
        if (rv == 0) rv = dial(cfg, cl->socks[i], cfg->nodes[i]);
        if (rv != 0) {
            snprintf(err, errlen, "client: %s: %s", cfg->nodes[i],
                     rv == NNG_ECRYPTO ? "TLS: cannot read the CA, certificate or key (PEM)"
                                       : nng_strerror(rv));
            trastenda_client_close(cl);
            return TRASTENDA_E_CONNECT;
        }
        for (uint32_t k = 0; k < cl->cfg.in_flight; k++) {
            struct slot *sl = &cl->slots[i * cl->cfg.in_flight + k];
            sl->cl = cl;
            sl->calls = calloc(BATCH_HARD_MAX, sizeof(struct call *));
            if (sl->calls == NULL || nng_aio_alloc(&sl->aio, slot_cb, sl) != 0 ||
                nng_ctx_open(&sl->ctx, cl->socks[i]) != 0)
                abort();
        }
    }
    *out = cl;
    return TRASTENDA_OK;
}

void
trastenda_client_close(trastenda_client *cl)
{
    if (cl == NULL) return;
    uncork(cl); /* this thread's cork must not outlive the client */
    /* Requests in flight are answered before the sockets close (nothing new is sent once closing;
     * each request ends by its timeout at the latest, once to send and once to answer). nng 1.5.2
     * can hang forever in nng_close when a reply is still arriving on a connection it tears down
     * (the transport drops the read it re-arms on a stopped aio, and the pipe waits for it). */
    struct timespec until;
    mono_deadline(&until, 2 * (uint64_t)cl->cfg.timeout_ms + 1000);
    pthread_mutex_lock(&cl->mu);
    cl->closing = true;
    while (cl->n_busy > 0 && pthread_cond_timedwait(&cl->idle, &cl->mu, &until) == 0)
        ;
    pthread_mutex_unlock(&cl->mu);
    uint32_t nn = cl->cfg.n_nodes;
    for (uint32_t i = 0; i < nn * cl->cfg.in_flight; i++) {
        struct slot *sl = &cl->slots[i];
        if (sl->aio != NULL) nng_aio_stop(sl->aio);
    }
    /* No callback runs any more. A slot still taken had its request dropped by a stopped aio (a
     * send or receive started on it after its stop, by another slot's callback): its calls end. */
    struct finished *fin = malloc(sizeof(*fin));
    if (fin == NULL) abort(); /* no memory for even the failure's bookkeeping */
    for (uint32_t i = 0; i < nn * cl->cfg.in_flight; i++) {
        struct slot *sl = &cl->slots[i];
        fin->n = fin->nw = 0;
        pthread_mutex_lock(&cl->mu);
        if (sl->busy && sl->n > 0) slot_reply(cl, sl, NULL, NNG_ECLOSED, fin);
        slot_release(cl, sl);
        pthread_mutex_unlock(&cl->mu);
        wake_sync(fin);
        async_run(cl, fin);
    }
    free(fin);
    for (uint32_t i = 0; i < nn; i++) {
        if (cl->nodes != NULL && cl->nodes[i] != NULL &&
            !sock_close_bounded(cl->socks[i], SOCK_CLOSE_WAIT_MS))
            fprintf(stderr,
                    "trastenda client: closing the connection to %s did not finish in %u ms "
                    "(nng 1.5.2 defect); left to finish in the background\n",
                    cl->nodes[i], SOCK_CLOSE_WAIT_MS);
        if (cl->nodes != NULL) free(cl->nodes[i]);
    }
    /* Nothing is sent any more: calls still queued end here (asynchronous ones completed,
     * synchronous callers woken). */
    for (;;) {
        pthread_mutex_lock(&cl->mu);
        struct call *c = cl->head;
        if (c != NULL) {
            cl->head = c->next;
            if (cl->head == NULL) cl->tail = NULL;
            cl->queued--;
            cl->queued_writes -= c->unit_write;
        }
        pthread_mutex_unlock(&cl->mu);
        if (c == NULL) break;
        c->status = TRASTENDA_E_CONNECT;
        c->nng_rv = NNG_ECLOSED;
        if (c->group != NULL)
            async_end(c);
        else
            wake_one(c);
    }
    for (uint32_t i = 0; i < nn * cl->cfg.in_flight; i++) {
        if (cl->slots[i].aio != NULL) nng_aio_free(cl->slots[i].aio);
        free(cl->slots[i].calls);
    }
    free(cl->slots);
    free(cl->socks);
    free(cl->nodes);
    free(cl->token);
    pthread_cond_destroy(&cl->idle);
    pthread_mutex_destroy(&cl->mu);
    free(cl);
}

/* The calls of one trastenda_call, _batch or _async: whether any of them writes. */
static void
unit_mark(struct call *const *calls, struct call *arr, uint32_t n)
{
    bool w = false;
    for (uint32_t i = 0; i < n; i++)
        w |= (calls != NULL ? calls[i] : &arr[i])->write;
    for (uint32_t i = 0; i < n; i++)
        (calls != NULL ? calls[i] : &arr[i])->unit_write = w;
}

static void
enqueue_back(struct trastenda_client *cl, struct call *c)
{
    c->next = NULL;
    if (cl->tail != NULL)
        cl->tail->next = c;
    else
        cl->head = c;
    cl->tail = c;
    cl->queued++;
    cl->queued_writes += c->unit_write;
}

/* Queues calls, sends if a slot is idle, waits for all of them. */
static void
run_calls(struct trastenda_client *cl, struct call *const *calls, uint32_t n)
{
    pthread_mutex_lock(&cl->mu);
    if (cl->closing) { /* nothing is sent any more: they end at once */
        pthread_mutex_unlock(&cl->mu);
        for (uint32_t i = 0; i < n; i++) {
            calls[i]->status = TRASTENDA_E_CONNECT;
            calls[i]->nng_rv = NNG_ECLOSED;
        }
        return;
    }
    unit_mark(calls, NULL, n);
    for (uint32_t i = 0; i < n; i++)
        enqueue_back(cl, calls[i]);
    struct slot *sl = slot_fill(cl);
    bool other = sl != NULL && cl->fill_skipped;
    pthread_mutex_unlock(&cl->mu);
    if (sl != NULL) slot_send(cl, sl); /* an idle client: sent from this thread */
    if (other) client_flush(cl);       /* and the calls of the other kind, on the next idle slot */
    for (uint32_t i = 0; i < n; i++)
        while (__atomic_load_n(&calls[i]->done, __ATOMIC_ACQUIRE) == 0)
            futex_wait(&calls[i]->done, 0);
}

/* A call's reply, from its result bytes `res` or its failure. */
static trastenda_err
call_result(const struct call *c, const uint8_t *res, trastenda_reply *reply)
{
    trastenda_err st = c->status;
    if (st == TRASTENDA_OK) {
        st = decode_result(res, c->res_len, reply);
        reply->seq = c->seq;
    } else {
        reply_reset(reply);
        reply->code = st;
        snprintf(reply->name, sizeof(reply->name), "%s", trastenda_err_name(st));
        if (c->nng_rv != 0)
            snprintf(reply->msg, sizeof(reply->msg), "%s (%s)", trastenda_err_message(st),
                     nng_strerror(c->nng_rv));
        else
            snprintf(reply->msg, sizeof(reply->msg), "%s", trastenda_err_message(st));
    }
    return st;
}

static trastenda_err
call_finish(struct call *c, trastenda_reply *reply)
{
    trastenda_err st = call_result(c, c->res, reply);
    free(c->res);
    free(c->op);
    return st;
}

/* An asynchronous call's end: its reply is decoded (from c->res_in, inside the reply message,
 * when it has one), and the last call of its group calls the completion and frees the group. */
static void
async_end(struct call *c)
{
    struct agroup *g = c->group;
    trastenda_err st = call_result(c, c->res_in, &g->replies[c->index]);
    free(c->op);
    c->op = NULL;
    if (st != TRASTENDA_OK) atomic_store_explicit(&g->status, st, memory_order_relaxed);
    if (atomic_fetch_sub_explicit(&g->pending, 1, memory_order_acq_rel) == 1) {
        g->done(g->arg, atomic_load_explicit(&g->status, memory_order_relaxed));
        free(g);
    }
}

/* Sends what is queued on every idle slot. */
static void
client_flush(struct trastenda_client *cl)
{
    for (;;) {
        pthread_mutex_lock(&cl->mu);
        struct slot *sl = cl->closing ? NULL : slot_fill(cl);
        pthread_mutex_unlock(&cl->mu);
        if (sl == NULL) return;
        slot_send(cl, sl);
    }
}

/* The completions of asynchronous calls that ended, run with the client corked for this thread
 * (what they queue is sent afterwards, by the caller of this). */
static void
async_run(struct trastenda_client *cl, struct finished *fin)
{
    bool corked_here = cork(cl);
    for (uint32_t i = 0; i < fin->n; i++)
        async_end(fin->c[i]);
    fin->n = 0;
    if (corked_here) uncork(cl);
}

/* async_run, then what the completions queued is sent (unless this thread keeps the client
 * corked). */
static void
async_complete(struct trastenda_client *cl, struct finished *fin)
{
    async_run(cl, fin);
    if (!corked(cl)) client_flush(cl);
}

static trastenda_err
call_prepare(struct call *c, const trastenda_args *a, struct agroup *group, uint32_t index)
{
    memset(c, 0, sizeof(*c));
    struct wbuf w = {0};
    if (!encode_op(a, &w)) {
        free(w.p);
        return TRASTENDA_E_INVALID;
    }
    c->op = w.p;
    c->op_len = w.len;
    c->n_lines = a->lines != NULL ? a->n_lines : 0;
    c->write = is_write_op(a->op);
    c->min_seq = a->min_seq;
    c->quick = strcmp(a->op, "stock") == 0 && a->min_seq == 0;
    c->keyed = a->key != NULL || (a->order != NULL && strcmp(a->op, "order.place") == 0);
    c->group = group;
    c->index = index;
    return TRASTENDA_OK;
}

trastenda_err
trastenda_call(trastenda_client *cl, const trastenda_args *a, trastenda_reply *reply)
{
    if (cl == NULL || a == NULL || reply == NULL) return TRASTENDA_E_INVALID;
    struct call c;
    trastenda_err err = call_prepare(&c, a, NULL, 0);
    if (err != TRASTENDA_OK) return err;
    struct call *p = &c;
    run_calls(cl, &p, 1);
    return call_finish(&c, reply);
}

trastenda_err
trastenda_call_batch(trastenda_client *cl, const trastenda_args *args, uint32_t n,
                     trastenda_reply *replies)
{
    if (cl == NULL || args == NULL || replies == NULL || n == 0 || n > BATCH_HARD_MAX)
        return TRASTENDA_E_INVALID;
    struct call *calls = calloc(n, sizeof(*calls));
    struct call **ptrs = calloc(n, sizeof(*ptrs));
    if (calls == NULL || ptrs == NULL) {
        free(calls);
        free(ptrs);
        return TRASTENDA_E_NOMEM;
    }
    trastenda_err err = TRASTENDA_OK;
    uint32_t ready = 0;
    for (; ready < n && err == TRASTENDA_OK; ready++) {
        err = call_prepare(&calls[ready], &args[ready], NULL, 0);
        ptrs[ready] = &calls[ready];
    }
    if (err != TRASTENDA_OK) {
        for (uint32_t i = 0; i + 1 < ready; i++)
            free(calls[i].op);
        free(calls);
        free(ptrs);
        return err;
    }
    run_calls(cl, ptrs, n);
    trastenda_err worst = TRASTENDA_OK;
    for (uint32_t i = 0; i < n; i++) {
        trastenda_err e = call_finish(&calls[i], &replies[i]);
        if (e != TRASTENDA_OK) worst = e;
    }
    free(calls);
    free(ptrs);
    return worst;
}

trastenda_err
trastenda_call_async(trastenda_client *cl, const trastenda_args *args, uint32_t n,
                     trastenda_reply *replies, trastenda_done_fn done, void *arg)
{
    if (cl == NULL || args == NULL || replies == NULL || done == NULL || n == 0 ||
        n > BATCH_HARD_MAX)
        return TRASTENDA_E_INVALID;
    struct agroup *g = malloc(sizeof(*g) + (size_t)n * sizeof(struct call));
    if (g == NULL) return TRASTENDA_E_NOMEM;
    g->replies = replies;
    g->done = done;
    g->arg = arg;
    atomic_init(&g->pending, n);
    atomic_init(&g->status, TRASTENDA_OK);
    for (uint32_t i = 0; i < n; i++) {
        trastenda_err err = call_prepare(&g->calls[i], &args[i], g, i);
        if (err != TRASTENDA_OK) {
            for (uint32_t j = 0; j < i; j++)
                free(g->calls[j].op);
            free(g);
            return err;
        }
    }
    pthread_mutex_lock(&cl->mu);
    if (cl->closing) { /* nothing would send it: refused (a completion retrying at close) */
        pthread_mutex_unlock(&cl->mu);
        for (uint32_t i = 0; i < n; i++)
            free(g->calls[i].op);
        free(g);
        return TRASTENDA_E_CONNECT;
    }
    unit_mark(NULL, g->calls, n);
    for (uint32_t i = 0; i < n; i++)
        enqueue_back(cl, &g->calls[i]);
    /* g may end on another thread as soon as the lock is released */
    struct slot *sl = corked(cl) ? NULL : slot_fill(cl);
    bool other = sl != NULL && cl->fill_skipped;
    pthread_mutex_unlock(&cl->mu);
    if (sl != NULL) slot_send(cl, sl);
    if (other) client_flush(cl);
    return TRASTENDA_OK;
}

void
trastenda_client_cork(trastenda_client *c)
{
    if (c != NULL) cork(c);
}

void
trastenda_client_uncork(trastenda_client *c)
{
    if (c == NULL) return;
    uncork(c);
    client_flush(c);
}

/* ---- typed calls ---- */

trastenda_err
trastenda_reserve(trastenda_client *c, const trastenda_cline *lines, uint32_t n, int64_t ttl_ms,
                  const char *key, trastenda_reply *reply)
{
    trastenda_args a;
    trastenda_args_init(&a, "reserve");
    a.lines = lines;
    a.n_lines = n;
    a.ttl_ms = ttl_ms;
    a.key = key;
    return trastenda_call(c, &a, reply);
}

trastenda_err
trastenda_confirm(trastenda_client *c, uint64_t hold, const char *order, trastenda_reply *reply)
{
    trastenda_args a;
    trastenda_args_init(&a, "confirm");
    a.hold = (int64_t)hold;
    a.order = order;
    return trastenda_call(c, &a, reply);
}

trastenda_err
trastenda_release(trastenda_client *c, uint64_t hold, trastenda_reply *reply)
{
    trastenda_args a;
    trastenda_args_init(&a, "release");
    a.hold = (int64_t)hold;
    return trastenda_call(c, &a, reply);
}

trastenda_err
trastenda_receive(trastenda_client *c, const char *sku, const char *loc, int64_t qty,
                  const char *key, trastenda_reply *reply)
{
    trastenda_args a;
    trastenda_args_init(&a, "receive");
    a.sku = sku;
    a.loc = loc;
    a.qty = qty;
    a.key = key;
    return trastenda_call(c, &a, reply);
}

trastenda_err
trastenda_order_place(trastenda_client *c, const char *order, const trastenda_cline *lines,
                      uint32_t n, const char *channel, int32_t lat_e6, int32_t lon_e6,
                      trastenda_reply *reply)
{
    trastenda_args a;
    trastenda_args_init(&a, "order.place");
    a.order = order;
    a.channel = channel;
    a.lines = lines;
    a.n_lines = n;
    a.lat_e6 = lat_e6;
    a.lon_e6 = lon_e6;
    return trastenda_call(c, &a, reply);
}

trastenda_err
trastenda_stock(trastenda_client *c, const char *sku, trastenda_reply *reply)
{
    trastenda_args a;
    trastenda_args_init(&a, "stock");
    a.sku = sku;
    return trastenda_call(c, &a, reply);
}

trastenda_err
trastenda_status(trastenda_client *c, trastenda_reply *reply)
{
    trastenda_args a;
    trastenda_args_init(&a, "status");
    return trastenda_call(c, &a, reply);
}

/* The fields the typed calls below take; what they leave NULL or 0 stays unset, except the
 * quantity of the stock commands (0 is a value there: has_qty). */
struct typed {
    const char *sku, *loc, *to, *order, *po, *name, *reason, *key, *dir;
    int64_t qty, hold, ttl_ms, cursor, limit, before, since;
    bool has_qty;
    const trastenda_cline *lines;
    uint32_t n_lines;
};

static trastenda_err
typed_call(trastenda_client *c, const char *op, const struct typed *t, trastenda_reply *reply)
{
    trastenda_args a;
    trastenda_args_init(&a, op);
    a.sku = t->sku;
    a.loc = t->loc;
    a.to = t->to;
    a.order = t->order;
    a.po = t->po;
    a.name = t->name;
    a.reason = t->reason;
    a.key = t->key;
    a.dir = t->dir;
    a.lines = t->lines;
    a.n_lines = t->n_lines;
    if (t->has_qty) a.qty = t->qty;
    if (t->hold != 0) a.hold = t->hold;
    if (t->ttl_ms != 0) a.ttl_ms = t->ttl_ms;
    if (t->cursor != 0) a.cursor = t->cursor;
    if (t->limit != 0) a.limit = t->limit;
    if (t->before != 0) a.before = t->before;
    if (t->since != 0) a.since = t->since;
    return trastenda_call(c, &a, reply);
}

trastenda_err
trastenda_location_upsert(trastenda_client *c, const char *loc, const char *name, int32_t lat_e6,
                          int32_t lon_e6, trastenda_reply *reply)
{
    trastenda_args a;
    trastenda_args_init(&a, "location.upsert");
    a.loc = loc;
    a.name = name;
    a.lat_e6 = lat_e6;
    a.lon_e6 = lon_e6;
    return trastenda_call(c, &a, reply);
}

trastenda_err
trastenda_location_deactivate(trastenda_client *c, const char *loc, trastenda_reply *reply)
{
    return typed_call(c, "location.deactivate", &(struct typed){.loc = loc}, reply);
}

trastenda_err
trastenda_sku_upsert(trastenda_client *c, const char *sku, const char *name, trastenda_reply *reply)
{
    return typed_call(c, "sku.upsert", &(struct typed){.sku = sku, .name = name}, reply);
}

trastenda_err
trastenda_sku_deactivate(trastenda_client *c, const char *sku, trastenda_reply *reply)
{
    return typed_call(c, "sku.deactivate", &(struct typed){.sku = sku}, reply);
}

trastenda_err
trastenda_adjust(trastenda_client *c, const char *sku, const char *loc, int64_t delta,
                 const char *reason, const char *key, trastenda_reply *reply)
{
    const struct typed t = {
        .sku = sku, .loc = loc, .qty = delta, .has_qty = true, .reason = reason, .key = key};
    return typed_call(c, "adjust", &t, reply);
}

trastenda_err
trastenda_count(trastenda_client *c, const char *sku, const char *loc, int64_t qty,
                const char *reason, const char *key, trastenda_reply *reply)
{
    const struct typed t = {
        .sku = sku, .loc = loc, .qty = qty, .has_qty = true, .reason = reason, .key = key};
    return typed_call(c, "count", &t, reply);
}

trastenda_err
trastenda_unsellable(trastenda_client *c, const char *sku, const char *loc, int64_t qty,
                     const char *reason, const char *key, trastenda_reply *reply)
{
    const struct typed t = {
        .sku = sku, .loc = loc, .qty = qty, .has_qty = true, .reason = reason, .key = key};
    return typed_call(c, "unsellable", &t, reply);
}

trastenda_err
trastenda_safety(trastenda_client *c, const char *sku, const char *loc, int64_t qty,
                 const char *key, trastenda_reply *reply)
{
    const struct typed t = {.sku = sku, .loc = loc, .qty = qty, .has_qty = true, .key = key};
    return typed_call(c, "safety", &t, reply);
}

trastenda_err
trastenda_transfer_out(trastenda_client *c, const char *sku, const char *from, const char *to,
                       int64_t qty, const char *key, trastenda_reply *reply)
{
    const struct typed t = {
        .sku = sku, .loc = from, .to = to, .qty = qty, .has_qty = true, .key = key};
    return typed_call(c, "transfer.out", &t, reply);
}

trastenda_err
trastenda_transfer_in(trastenda_client *c, const char *sku, const char *loc, int64_t qty,
                      const char *key, trastenda_reply *reply)
{
    const struct typed t = {.sku = sku, .loc = loc, .qty = qty, .has_qty = true, .key = key};
    return typed_call(c, "transfer.in", &t, reply);
}

trastenda_err
trastenda_extend(trastenda_client *c, uint64_t hold, int64_t ttl_ms, trastenda_reply *reply)
{
    return typed_call(c, "extend", &(struct typed){.hold = (int64_t)hold, .ttl_ms = ttl_ms}, reply);
}

trastenda_err
trastenda_order_pick(trastenda_client *c, const char *order, const char *loc,
                     trastenda_reply *reply)
{
    return typed_call(c, "order.pick", &(struct typed){.order = order, .loc = loc}, reply);
}

trastenda_err
trastenda_order_pack(trastenda_client *c, const char *order, const char *loc,
                     trastenda_reply *reply)
{
    return typed_call(c, "order.pack", &(struct typed){.order = order, .loc = loc}, reply);
}

trastenda_err
trastenda_order_ship(trastenda_client *c, const char *order, const char *loc,
                     trastenda_reply *reply)
{
    return typed_call(c, "order.ship", &(struct typed){.order = order, .loc = loc}, reply);
}

trastenda_err
trastenda_order_deliver(trastenda_client *c, const char *order, trastenda_reply *reply)
{
    return typed_call(c, "order.deliver", &(struct typed){.order = order}, reply);
}

trastenda_err
trastenda_order_cancel(trastenda_client *c, const char *order, trastenda_reply *reply)
{
    return typed_call(c, "order.cancel", &(struct typed){.order = order}, reply);
}

trastenda_err
trastenda_order_return(trastenda_client *c, const char *order, const trastenda_cline *lines,
                       uint32_t n, const char *key, trastenda_reply *reply)
{
    const struct typed t = {.order = order, .lines = lines, .n_lines = n, .key = key};
    return typed_call(c, "order.return", &t, reply);
}

trastenda_err
trastenda_po_create(trastenda_client *c, const char *po, const trastenda_cline *lines, uint32_t n,
                    trastenda_reply *reply)
{
    return typed_call(c, "po.create", &(struct typed){.po = po, .lines = lines, .n_lines = n},
                      reply);
}

trastenda_err
trastenda_po_receive(trastenda_client *c, const char *po, const trastenda_cline *lines, uint32_t n,
                     const char *key, trastenda_reply *reply)
{
    const struct typed t = {.po = po, .lines = lines, .n_lines = n, .key = key};
    return typed_call(c, "po.receive", &t, reply);
}

trastenda_err
trastenda_po_close(trastenda_client *c, const char *po, trastenda_reply *reply)
{
    return typed_call(c, "po.close", &(struct typed){.po = po}, reply);
}

trastenda_err
trastenda_noop(trastenda_client *c, trastenda_reply *reply)
{
    return typed_call(c, "noop", &(struct typed){0}, reply);
}

trastenda_err
trastenda_hold_get(trastenda_client *c, uint64_t hold, trastenda_reply *reply)
{
    return typed_call(c, "hold", &(struct typed){.hold = (int64_t)hold}, reply);
}

trastenda_err
trastenda_order_get(trastenda_client *c, const char *order, trastenda_reply *reply)
{
    return typed_call(c, "order", &(struct typed){.order = order}, reply);
}

trastenda_err
trastenda_po_get(trastenda_client *c, const char *po, trastenda_reply *reply)
{
    return typed_call(c, "po", &(struct typed){.po = po}, reply);
}

trastenda_err
trastenda_stock_page(trastenda_client *c, const char *sku, int64_t cursor, int64_t limit,
                     trastenda_reply *reply)
{
    /* A limit always, so that even the first page comes by location index with its next. */
    return typed_call(
        c, "stock", &(struct typed){.sku = sku, .cursor = cursor, .limit = limit > 0 ? limit : 256},
        reply);
}

trastenda_err
trastenda_low_stock(trastenda_client *c, int64_t cursor, int64_t limit, trastenda_reply *reply)
{
    return typed_call(c, "low_stock", &(struct typed){.cursor = cursor, .limit = limit}, reply);
}

trastenda_err
trastenda_reorder_suggestions(trastenda_client *c, int64_t cursor, int64_t limit,
                              trastenda_reply *reply)
{
    return typed_call(c, "reorder", &(struct typed){.cursor = cursor, .limit = limit}, reply);
}

trastenda_err
trastenda_ledger(trastenda_client *c, const char *sku, const char *loc, int64_t before,
                 int64_t limit, trastenda_reply *reply)
{
    const struct typed t = {.sku = sku, .loc = loc, .before = before, .limit = limit};
    return typed_call(c, "ledger", &t, reply);
}

trastenda_err
trastenda_events(trastenda_client *c, int64_t since, int64_t limit, trastenda_reply *reply)
{
    return typed_call(c, "events", &(struct typed){.since = since, .limit = limit}, reply);
}

trastenda_err
trastenda_stock_list(trastenda_client *c, int64_t cursor, int64_t limit, trastenda_reply *reply)
{
    return typed_call(c, "stock.list", &(struct typed){.cursor = cursor, .limit = limit}, reply);
}

trastenda_err
trastenda_sku_list(trastenda_client *c, int64_t cursor, int64_t limit, trastenda_reply *reply)
{
    return typed_call(c, "sku.list", &(struct typed){.cursor = cursor, .limit = limit}, reply);
}

trastenda_err
trastenda_location_list(trastenda_client *c, int64_t cursor, int64_t limit, trastenda_reply *reply)
{
    return typed_call(c, "location.list", &(struct typed){.cursor = cursor, .limit = limit}, reply);
}

trastenda_err
trastenda_holds_expiring(trastenda_client *c, int64_t limit, trastenda_reply *reply)
{
    return typed_call(c, "holds.expiring", &(struct typed){.limit = limit}, reply);
}

trastenda_err
trastenda_digest(trastenda_client *c, trastenda_reply *reply)
{
    return typed_call(c, "digest", &(struct typed){0}, reply);
}

trastenda_err
trastenda_promote(trastenda_client *c, bool force, trastenda_reply *reply)
{
    trastenda_args a;
    trastenda_args_init(&a, "promote");
    if (force) a.force = 1;
    return trastenda_call(c, &a, reply);
}

trastenda_err
trastenda_backup(trastenda_client *c, const char *dir, trastenda_reply *reply)
{
    return typed_call(c, "backup", &(struct typed){.dir = dir}, reply);
}

/* ---- msgpack to JSON (net/mpjson.c) ---- */

char *
trastenda_msgpack_json(const uint8_t *buf, size_t len)
{
    struct mp_rd rd;
    mp_rd_init(&rd, buf, len);
    struct mpjson_buf w = {0};
    if (!mpjson_value(&rd, &w, 0) || rd.bad || !mpjson_write(&w, "", 1)) { /* with its NUL */
        free(w.p);
        return NULL;
    }
    return (char *)w.p;
}

char *
trastenda_result_json(const trastenda_reply *r)
{
    if (r->raw != NULL) return trastenda_msgpack_json(r->raw, r->raw_len);
    struct mpjson_buf w = {0};
    char head[64];
    int n = snprintf(head, sizeof(head), "{\"code\":%u,\"name\":", (unsigned)r->code);
    mpjson_write(&w, head, (size_t)n);
    mpjson_str(&w, r->name, (uint32_t)strlen(r->name));
    mpjson_write(&w, ",\"msg\":", 7);
    mpjson_str(&w, r->msg, (uint32_t)strlen(r->msg));
    if (!mpjson_write(&w, "}", 2)) { /* with its NUL */
        free(w.p);
        return NULL;
    }
    return (char *)w.p;
}
