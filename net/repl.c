/*
 * net/repl.c - replication (net/repl.h, docs/REPLICATION.md).
 *
 * Every node listens on its replication address (a follower may be promoted). The protocol is a
 * pull, over nng REQ/REP with msgpack maps:
 *
 *   fetch {seq, epoch, ack, node, repl, wait, max, dg_seq, dg}
 *         seq/epoch: the last entry the follower has received (durable, or being written when
 *         it fetches ahead) and its epoch (the history check); ack: what it has durably applied
 *         (the acknowledgement, piggybacked: a fetch after a write acknowledges it); dg_seq/dg:
 *         its last anti-entropy digest (its materializer's, taken at the entries every node
 *         takes them at: trastenda_store_digests).
 *      -> entries {epoch, sync, leader, leader_repl, durable, time, dg_seq, dg, peers,
 *                  entries: [bin]}
 *         only durable entries, from seq + 1; when there is none yet the fetch waits (long poll)
 *         up to `wait` ms for the next one, so a caught-up follower gets an entry one hop after
 *         it became durable, without polling. sync: the leader's --sync-replicas (a follower of
 *         a leader that does not say is treated as one whose replies wait, K >= 1).
 *      -> bootstrap {epoch, why}  the follower's history is not the leader's (another entry or
 *         epoch at its seq, or a seq the leader does not have), or retention cut the entries it
 *         needs.
 *      -> not_leader {leader, leader_repl, epoch}
 *   snap {}            -> snap {id, seq, epoch, total, files: [[name, size]]} a checkpoint
 *   chunk {id, file, off} -> chunk {epoch, data}
 *   snap_done {id}     -> ok {epoch}
 *   who {node}         -> who {epoch, role, leader, leader_repl}  who leads, as the node knows it
 *                      (a starting node asks its peers: repl_role_at_start)
 *   anything else      -> error {epoch, why}
 * Every reply carries the answering node's epoch. The bootstrap requests (snap, chunk, snap_done)
 * carry none: the node asking has set its own state aside and vouches for no history.
 *
 * Threads. The endpoint's contexts only receive and send; one thread (the "repl" thread) parses,
 * reads the log, parks and answers fetches, tracks followers and acknowledgements, and compares
 * their digests with the leader's. The log writer wakes it with a futex when an entry is durable:
 * no lock on the write path. A follower has a second thread, the follower loop: fetch, hand the
 * entries to the store as one request (stored and applied as they are, one write), and fetch
 * again. With a leader at sync 0 the next fetch leaves while those entries are being written
 * (fetching ahead: its round trip overlaps their fsync; one append in flight, its buffer one of
 * two), names their last entry, and asks for no wait, so that an empty answer brings the loop
 * back to wait for the append and the fetch after it acknowledges the entries at once. With
 * K >= 1 the loop waits until the entries are durable before it fetches, so that the fetch
 * carries their acknowledgement to a leader whose replies wait for it.
 *
 * Sync replicas: the leader acknowledges a sequence to the store (trastenda_store_ack) once
 * K followers have acknowledged it; the store holds the batch's replies until then (or fails them
 * with E_NOT_REPLICATED after its timeout).
 *
 * Bootstrap: the follower writes a marker (its data directory's BOOTSTRAP file, holding the
 * leader's replication address) and asks the process to restart its server
 * (trastenda_server_wants_restart); the restart downloads the checkpoint before opening the
 * store (repl_bootstrap_pending). A follower killed meanwhile starts the download again.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "srv.h" /* nng.h before its protocol headers */

#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "auth.h"
#include "mp.h"
#include "peer.h"
#include "repl.h"
#include "trastenda/log.h"

#define LOAD(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define ADD(p, v)   __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)

#define RCTXS              16
#define FOLLOWERS_MAX      16
#define ADDR_BYTES         200
#define FETCH_BYTES        (1u << 20) /* entries per fetch reply, about */
#define FETCH_ENTRIES      4096
#define CHUNK_BYTES        (1u << 20)
#define SNAPS_MAX          4
#define SNAP_IDLE_NS       (120 * 1000000000ll)
#define DUR_RING           8192 /* durable times, for lag in ms */
#define SEEN_NS            (10 * 1000000000ll)
#define PEERS_MAX          16
#define BACKOFF_MAX_MS     500 /* a leader back (restarted, or promoted) is found within it */
#define REFUSED_BACKOFF_MS 2000

/* ---- messages ---- */

struct rmsg {
    char t[16];
    uint64_t seq, epoch, ack, wait, max, dg_seq, dg, id, file, off, durable, total;
    uint64_t sync; /* a leader's sync_replicas (entries); UINT64_MAX when it did not say */
    int64_t time;
    char node[ADDR_BYTES], repl[ADDR_BYTES], leader[ADDR_BYTES], leader_repl[ADDR_BYTES];
    char why[256], role[16];
    char token[AUTH_SECRET_BYTES_MAX + 1];
    struct mp_rd entries, files, peers; /* positioned at the array's elements */
    uint32_t n_entries, n_files, n_peers;
    const uint8_t *data;
    uint32_t data_len;
};

static void
rd_cstr(struct mp_rd *r, char *dst, size_t cap)
{
    const char *s;
    uint32_t n;
    if (!mp_read_str(r, &s, &n)) return;
    if (n >= cap) n = (uint32_t)cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* Array of any elements: remembers where they start, skips them. */
static void
rd_array(struct mp_rd *r, struct mp_rd *at, uint32_t *n)
{
    if (!mp_read_array(r, n)) return;
    *at = *r;
    for (uint32_t i = 0; i < *n && !r->bad; i++)
        mp_skip(r, 4);
}

static bool
rmsg_parse(struct rmsg *m, const void *buf, size_t len)
{
    memset(m, 0, sizeof(*m));
    m->sync = UINT64_MAX;
    struct mp_rd r;
    mp_rd_init(&r, buf, len);
    uint32_t n;
    if (!mp_read_map(&r, &n)) return false;
    for (uint32_t i = 0; i < n && !r.bad; i++) {
        const char *k;
        uint32_t kl;
        if (!mp_read_str(&r, &k, &kl)) return false;
#define KEY(s) (kl == sizeof(s) - 1 && memcmp(k, s, kl) == 0)
        if (KEY("t"))
            rd_cstr(&r, m->t, sizeof(m->t));
        else if (KEY("seq"))
            mp_read_u64(&r, &m->seq);
        else if (KEY("epoch"))
            mp_read_u64(&r, &m->epoch);
        else if (KEY("ack"))
            mp_read_u64(&r, &m->ack);
        else if (KEY("wait"))
            mp_read_u64(&r, &m->wait);
        else if (KEY("max"))
            mp_read_u64(&r, &m->max);
        else if (KEY("dg_seq"))
            mp_read_u64(&r, &m->dg_seq);
        else if (KEY("dg"))
            mp_read_u64(&r, &m->dg);
        else if (KEY("id"))
            mp_read_u64(&r, &m->id);
        else if (KEY("file"))
            mp_read_u64(&r, &m->file);
        else if (KEY("off"))
            mp_read_u64(&r, &m->off);
        else if (KEY("durable"))
            mp_read_u64(&r, &m->durable);
        else if (KEY("total"))
            mp_read_u64(&r, &m->total);
        else if (KEY("sync"))
            mp_read_u64(&r, &m->sync);
        else if (KEY("time"))
            mp_read_i64(&r, &m->time);
        else if (KEY("node"))
            rd_cstr(&r, m->node, sizeof(m->node));
        else if (KEY("repl"))
            rd_cstr(&r, m->repl, sizeof(m->repl));
        else if (KEY("leader"))
            rd_cstr(&r, m->leader, sizeof(m->leader));
        else if (KEY("leader_repl"))
            rd_cstr(&r, m->leader_repl, sizeof(m->leader_repl));
        else if (KEY("why"))
            rd_cstr(&r, m->why, sizeof(m->why));
        else if (KEY("role"))
            rd_cstr(&r, m->role, sizeof(m->role));
        else if (KEY("token"))
            rd_cstr(&r, m->token, sizeof(m->token));
        else if (KEY("entries"))
            rd_array(&r, &m->entries, &m->n_entries);
        else if (KEY("files"))
            rd_array(&r, &m->files, &m->n_files);
        else if (KEY("peers"))
            rd_array(&r, &m->peers, &m->n_peers);
        else if (KEY("data"))
            mp_read_bin(&r, &m->data, &m->data_len);
        else
            mp_skip(&r, 4);
#undef KEY
    }
    return !r.bad && m->t[0] != '\0';
}

/* Appends to a message, growing it by doubling (nng_msg_append alone grows it to the exact size:
 * a reply of thousands of entries would be copied thousands of times). */
static int
msg_write(void *data, const char *buf, size_t len)
{
    nng_msg *m = data;
    size_t need = nng_msg_len(m) + len;
    if (need > nng_msg_capacity(m)) {
        size_t cap = nng_msg_capacity(m) < 4096 ? 4096 : nng_msg_capacity(m);
        while (cap < need)
            cap *= 2;
        if (nng_msg_reserve(m, cap) != 0) return -1;
    }
    return nng_msg_append(m, buf, len) == 0 ? 0 : -1;
}

static void
pk_s(msgpack_packer *pk, const char *k, const char *v)
{
    msgpack_pack_str(pk, strlen(k));
    msgpack_pack_str_body(pk, k, strlen(k));
    msgpack_pack_str(pk, strlen(v));
    msgpack_pack_str_body(pk, v, strlen(v));
}

static void
pk_u(msgpack_packer *pk, const char *k, uint64_t v)
{
    msgpack_pack_str(pk, strlen(k));
    msgpack_pack_str_body(pk, k, strlen(k));
    msgpack_pack_uint64(pk, v);
}

static void
pk_i(msgpack_packer *pk, const char *k, int64_t v)
{
    msgpack_pack_str(pk, strlen(k));
    msgpack_pack_str_body(pk, k, strlen(k));
    msgpack_pack_int64(pk, v);
}

static void
pk_k(msgpack_packer *pk, const char *k)
{
    msgpack_pack_str(pk, strlen(k));
    msgpack_pack_str_body(pk, k, strlen(k));
}

static nng_msg *
msg_new(msgpack_packer *pk)
{
    nng_msg *m;
    if (nng_msg_alloc(&m, 0) != 0) abort();
    msgpack_packer_init(pk, m, msg_write);
    return m;
}

static void
futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ms)
{
    struct timespec ts = {.tv_sec = timeout_ms / 1000, .tv_nsec = (timeout_ms % 1000) * 1000000};
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, &ts, NULL, 0);
}

static void
futex_wake(uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

static int64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- state ---- */

enum {
    RC_RECV = 1,
    RC_READY, /* received: for the repl thread */
    RC_PARKED,
    RC_SEND
};

struct rctx {
    struct repl *r;
    nng_ctx ctx;
    nng_aio *aio;
    uint32_t state;
    nng_msg *req;
    struct rmsg m;
    int64_t deadline_ns;
    struct rctx *next;
};

struct follower {
    bool used;
    char node[ADDR_BYTES], repl[ADDR_BYTES];
    uint64_t acked; /* durable on it, history checked */
    uint64_t need;  /* the oldest log entry it still reads (its last one); 0: none */
    int64_t seen_ns;
    uint64_t dg_checks, dg_mismatches;
    uint64_t dg_last; /* the last sequence compared */
};

struct repl {
    struct srv *s;
    /* the endpoint */
    nng_socket rep;
    bool rep_open;
    struct rctx ctxs[RCTXS];
    pthread_t th;
    bool th_started;
    bool stopped;       /* repl_stop ran (it may run twice on a failed start) */
    uint32_t wake;      /* futex word: received requests, durable entries, stop */
    uint32_t stop;      /* atomic: everything stops */
    uint32_t fstop;     /* atomic: the follower's loop stops (promotion) */
    pthread_mutex_t mu; /* the inbox and what status reads (never on the write path) */
    struct rctx *inbox;
    /* the repl thread's */
    struct follower fol[FOLLOWERS_MAX];
    struct rctx *parked;
    uint32_t n_parked; /* atomic: the durable path wakes this thread only when some are */
    struct {
        trastenda_snapshot *snap;
        uint64_t id;
        int64_t used_ns;
        /* The log entry its follower reads on from (the checkpoint's last): the log keeps it while
         * the download runs and after it (until that follower fetches, or SNAP_IDLE_NS). */
        uint64_t keep;
        char node[ADDR_BYTES];
    } snaps[SNAPS_MAX];
    uint64_t snap_ids;
    uint8_t *chunk;
    /* durable times (writer thread writes, repl thread reads): seq -> monotonic ns */
    struct {
        uint64_t seq;
        int64_t ns;
        uint64_t cmds; /* commands durable up to seq (since this node opened) */
    } dur[DUR_RING];
    /* the follower's side */
    pthread_t fth;
    bool fth_started;
    nng_socket fsock; /* the follower's REQ socket, closed by stop and promotion (under mu) */
    bool fsock_open;
    char target[ADDR_BYTES]; /* the leader's replication address */
    const char *leader_req;  /* atomic: the leader's request address */
    char **old_leaders;      /* earlier leader_req strings, freed at stop */
    uint32_t n_old;
    char peers[PEERS_MAX][2][ADDR_BYTES];  /* request, replication addresses */
    uint32_t n_peers;                      /* under mu */
    uint32_t connected;                    /* atomic */
    uint64_t leader_durable, leader_epoch; /* the last reply's (atomic) */
    int64_t leader_durable_time;           /* atomic */
    uint64_t f_dg_checks, f_dg_mismatches; /* atomic */
    uint32_t append_done;                  /* futex word */
    /* One append at a time, in flight in the store while the next fetch is answered (it is
     * awaited before the next is submitted). */
    trastenda_request areq;
    uint8_t *abuf; /* its entries, read by the store until it completes */
    size_t abuf_cap;
    bool a_inflight;         /* areq is in the store, not yet completed */
    uint32_t a_w;            /* append_done before it was submitted */
    uint64_t a_seq, a_epoch; /* its last entry's sequence and epoch (0: unknown) */
    uint64_t epoch_seen;     /* atomic: the highest epoch heard of */
};

static void rlog(struct repl *r, trastenda_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
rlog(struct repl *r, trastenda_log_level level, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    srv_log(r->s, level, "replication: %s", msg);
}

static const char *
my_req_addr(struct srv *s)
{
    return s->cfg.advertise != NULL && s->cfg.advertise[0] ? s->cfg.advertise : s->cfg.listen;
}

static const char *
my_repl_addr(struct srv *s)
{
    return s->cfg.advertise_repl != NULL && s->cfg.advertise_repl[0] ? s->cfg.advertise_repl
                                                                     : s->cfg.repl;
}

const char *
repl_leader(struct srv *s)
{
    struct repl *r = LOAD(&s->repl);
    if (r == NULL) return "";
    const char *l = LOAD(&r->leader_req);
    return l != NULL ? l : "";
}

static void
set_leader(struct repl *r, const char *addr)
{
    const char *cur = LOAD(&r->leader_req);
    if (cur != NULL && strcmp(cur, addr) == 0) return;
    char *copy = strdup(addr);
    char **old = realloc(r->old_leaders, (r->n_old + 1) * sizeof(*old));
    if (copy == NULL || old == NULL) abort();
    r->old_leaders = old;
    if (cur != NULL) r->old_leaders[r->n_old++] = (char *)cur; /* readers may still hold it */
    STORE(&r->leader_req, copy);
}

static void
wake(struct repl *r)
{
    ADD(&r->wake, 1);
    futex_wake(&r->wake);
}

static void
epoch_heard(struct repl *r, uint64_t epoch)
{
    uint64_t cur = LOAD(&r->epoch_seen);
    while (cur < epoch && !__atomic_compare_exchange_n(&r->epoch_seen, &cur, epoch, false,
                                                       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    }
}

/* ---- the endpoint: contexts ---- */

static void
rctx_recv(struct rctx *c)
{
    c->state = RC_RECV;
    nng_ctx_recv(c->ctx, c->aio);
}

static void
rctx_cb(void *arg)
{
    struct rctx *c = arg;
    struct repl *r = c->r;
    int rv = nng_aio_result(c->aio);
    if (c->state == RC_RECV) {
        if (rv != 0) {
            if (rv == NNG_ECLOSED || rv == NNG_ECANCELED || LOAD(&r->stop)) return;
            rctx_recv(c);
            return;
        }
        c->req = nng_aio_get_msg(c->aio);
        pthread_mutex_lock(&r->mu);
        c->state = RC_READY;
        c->next = r->inbox;
        r->inbox = c;
        pthread_mutex_unlock(&r->mu);
        wake(r);
        return;
    }
    if (c->state == RC_SEND) {
        if (rv != 0) nng_msg_free(nng_aio_get_msg(c->aio));
        if (LOAD(&r->stop)) return;
        rctx_recv(c);
    }
}

/* Sends reply m on context c (repl thread). */
static void
rctx_reply(struct rctx *c, nng_msg *m)
{
    if (c->req != NULL) nng_msg_free(c->req);
    c->req = NULL;
    c->state = RC_SEND;
    nng_aio_set_msg(c->aio, m);
    nng_ctx_send(c->ctx, c->aio);
}

static nng_msg *
reply_simple(struct repl *r, const char *t, const char *why)
{
    msgpack_packer pk;
    nng_msg *m = msg_new(&pk);
    msgpack_pack_map(&pk, why != NULL ? 3 : 2);
    pk_s(&pk, "t", t);
    pk_u(&pk, "epoch", trastenda_store_epoch(r->s->store));
    if (why != NULL) pk_s(&pk, "why", why);
    return m;
}

static nng_msg *
reply_not_leader(struct repl *r)
{
    msgpack_packer pk;
    nng_msg *m = msg_new(&pk);
    msgpack_pack_map(&pk, 4);
    pk_s(&pk, "t", "not_leader");
    pk_s(&pk, "leader", repl_leader(r->s));
    /* As in reply_who: the address a follower tries is a leader's only while it answers. Naming
     * it otherwise sent followers whose leader had died after one another's guesses, a dead peer
     * among them, for seconds. */
    pthread_mutex_lock(&r->mu); /* before the flag: the loop clears it, then moves target */
    bool connected = LOAD(&r->connected) != 0;
    pk_s(&pk, "leader_repl", connected ? r->target : "");
    pthread_mutex_unlock(&r->mu);
    pk_u(&pk, "epoch", trastenda_store_epoch(r->s->store));
    return m;
}

/* ---- what a node keeps of its cluster (its data directory's files) ----
 *
 *   LEADER    the replication address it follows: a follower stays one across restarts, and
 *             goes back to that leader rather than to a --follow address that may be gone
 *   PEERS     the nodes it has known, one "REQUEST<TAB>REPLICATION" address pair a line: its
 *             followers while it led, its leader's list while it followed
 *   PROMOTED  it was promoted: a --follow on its command line no longer applies
 *   FENCED    a node of a higher epoch reached it while it led: it takes no writes until it
 *             follows a leader (or is promoted)
 * A node that would lead asks its PEERS first (repl_role_at_start).
 */

/* The directory's own entries (a rename, an unlink) made durable. */
static bool
dir_sync(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = fsync(fd) == 0;
    close(fd);
    return ok;
}

/* Replaces dir/name with text, durably (a temporary file, fsync, rename, the directory's fsync). */
static bool
dir_file_write(const char *dir, const char *name, const char *text)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) return false;
    bool ok = fputs(text, f) >= 0 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    fclose(f);
    return ok && rename(tmp, path) == 0 && dir_sync(dir);
}

static bool
dir_file_exists(const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void
dir_file_remove(const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (unlink(path) == 0) (void)dir_sync(dir);
}

/* Following a leader: its address kept, and the node is neither promoted nor fenced any more. */
static void
leader_file_write(const char *dir, const char *addr)
{
    char line[ADDR_BYTES + 2];
    snprintf(line, sizeof(line), "%s\n", addr);
    if (!dir_file_write(dir, "LEADER", line)) return;
    dir_file_remove(dir, "PROMOTED");
    dir_file_remove(dir, "FENCED");
}

static bool
leader_file_read(const char *dir, char *addr, size_t cap)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/LEADER", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) return false;
    bool ok = fgets(addr, (int)cap, f) != NULL;
    fclose(f);
    if (!ok) return false;
    addr[strcspn(addr, "\r\n")] = '\0';
    return addr[0] != '\0';
}

typedef char peer_pair[2][ADDR_BYTES]; /* request, replication addresses */

static uint32_t
peers_file_read(const char *dir, peer_pair *out)
{
    char path[4200], line[2 * ADDR_BYTES + 4];
    snprintf(path, sizeof(path), "%s/PEERS", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    uint32_t n = 0;
    while (n < PEERS_MAX && fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        char *tab = strchr(line, '\t');
        if (tab == NULL || tab[1] == '\0') continue;
        *tab = '\0';
        size_t a = strlen(line), b = strlen(tab + 1);
        if (a >= ADDR_BYTES || b >= ADDR_BYTES) continue; /* not an address this node writes */
        memcpy(out[n][0], line, a + 1);
        memcpy(out[n][1], tab + 1, b + 1);
        n++;
    }
    fclose(f);
    return n;
}

/* Adds the pairs the file does not have (request and replication address both), the oldest lines
 * dropped past PEERS_MAX; written only when something changed. Pairs without a replication
 * address and this node's own are left out. */
static void
peers_file_add(const char *dir, const char *self_repl, peer_pair *add, uint32_t n_add)
{
    peer_pair have[2 * PEERS_MAX];
    uint32_t n = peers_file_read(dir, have);
    bool changed = false;
    for (uint32_t i = 0; i < n_add; i++) {
        if (add[i][1][0] == '\0' || strcmp(add[i][1], self_repl) == 0) continue;
        bool known = false;
        for (uint32_t j = 0; j < n && !known; j++)
            known = strcmp(have[j][1], add[i][1]) == 0 && strcmp(have[j][0], add[i][0]) == 0;
        if (known) continue;
        memcpy(have[n++], add[i], sizeof(peer_pair));
        changed = true;
    }
    if (!changed) return;
    uint32_t from = n > PEERS_MAX ? n - PEERS_MAX : 0;
    char text[PEERS_MAX * (2 * ADDR_BYTES + 2) + 1];
    size_t len = 0;
    for (uint32_t i = from; i < n; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%s\t%s\n", have[i][0], have[i][1]);
    (void)dir_file_write(dir, "PEERS", text);
}

/* Who leads, as this node knows it: its role, its epoch, and its leader's replication address
 * (its own when it leads; "" when it follows none, as a fenced leader). */
static nng_msg *
reply_who(struct repl *r)
{
    struct srv *s = r->s;
    bool follower = trastenda_store_is_follower(s->store);
    msgpack_packer pk;
    nng_msg *m = msg_new(&pk);
    msgpack_pack_map(&pk, 5);
    pk_s(&pk, "t", "who");
    pk_u(&pk, "epoch", trastenda_store_epoch(s->store));
    pk_s(&pk, "role", follower ? "follower" : "leader");
    pk_s(&pk, "leader", repl_leader(s));
    /* A follower's target is the address it tries: a leader only while it answers. */
    pthread_mutex_lock(&r->mu); /* before the flag, as in reply_not_leader */
    bool connected = LOAD(&r->connected) != 0;
    pk_s(&pk, "leader_repl", !follower ? my_repl_addr(s) : connected ? r->target : "");
    pthread_mutex_unlock(&r->mu);
    return m;
}

/* ---- the leader: followers, acknowledgements, digests ---- */

static struct follower *
follower_of(struct repl *r, const struct rmsg *m)
{
    struct follower *free_f = NULL, *oldest = NULL;
    for (int i = 0; i < FOLLOWERS_MAX; i++) {
        struct follower *f = &r->fol[i];
        if (f->used && strcmp(f->repl, m->repl) == 0 && strcmp(f->node, m->node) == 0) return f;
        if (!f->used && free_f == NULL) free_f = f;
        if (f->used && (oldest == NULL || f->seen_ns < oldest->seen_ns)) oldest = f;
    }
    struct follower *f = free_f != NULL ? free_f : oldest;
    pthread_mutex_lock(&r->mu);
    memset(f, 0, sizeof(*f));
    f->used = true;
    snprintf(f->node, sizeof(f->node), "%s", m->node);
    snprintf(f->repl, sizeof(f->repl), "%s", m->repl);
    pthread_mutex_unlock(&r->mu);
    rlog(r, TRASTENDA_LOG_INFO, "follower %s (replication %s) connected", m->node, m->repl);
    peer_pair p;
    snprintf(p[0], ADDR_BYTES, "%s", m->node);
    snprintf(p[1], ADDR_BYTES, "%s", m->repl);
    peers_file_add(r->s->cfg.store.dir, my_repl_addr(r->s), &p, 1);
    return f;
}

static int
cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The K-th highest acknowledgement of the followers seen lately goes to the store. */
static void
acks_update(struct repl *r)
{
    uint32_t k = r->s->cfg.store.sync_replicas;
    if (k == 0) return;
    uint64_t v[FOLLOWERS_MAX];
    uint32_t n = 0;
    int64_t now = mono_ns();
    for (int i = 0; i < FOLLOWERS_MAX; i++)
        if (r->fol[i].used && now - r->fol[i].seen_ns < SEEN_NS) v[n++] = r->fol[i].acked;
    if (n < k) return;
    qsort(v, n, sizeof(v[0]), cmp_desc);
    trastenda_store_ack(r->s->store, v[k - 1]);
}

/* The log keeps what the slowest known follower still needs (up to log_follower_bytes_max), a
 * follower that bootstraps included (from its checkpoint's entry). */
static void
keep_update(struct repl *r)
{
    uint64_t keep = 0;
    for (int i = 0; i < FOLLOWERS_MAX; i++)
        if (r->fol[i].used && r->fol[i].need != 0 && (keep == 0 || r->fol[i].need < keep))
            keep = r->fol[i].need;
    for (int i = 0; i < SNAPS_MAX; i++)
        if (r->snaps[i].keep != 0 && (keep == 0 || r->snaps[i].keep < keep))
            keep = r->snaps[i].keep;
    trastenda_store_log_keep(r->s->store, keep);
}

/* A follower that fetches reads on from what its fetch names: a bootstrap's keep for it ends, and
 * so does a checkpoint it did not say it finished (a node downloads only before its store opens,
 * never while it fetches). */
static void
snaps_keep_end(struct repl *r, const char *node)
{
    for (int i = 0; i < SNAPS_MAX; i++) {
        if (strcmp(r->snaps[i].node, node) != 0) continue;
        if (r->snaps[i].snap != NULL) {
            trastenda_snapshot_remove(r->snaps[i].snap);
            r->snaps[i].snap = NULL;
        }
        r->snaps[i].keep = 0;
    }
}

/* A follower's digest at a sequence: compared with the leader's. */
static void
digest_compare(struct repl *r, struct follower *f, const struct rmsg *m)
{
    if (m->dg_seq == 0 || m->dg_seq == f->dg_last) return;
    trastenda_store_digest dg[TRASTENDA_STORE_DIGESTS];
    uint32_t n = trastenda_store_digests(r->s->store, dg, TRASTENDA_STORE_DIGESTS);
    for (uint32_t i = 0; i < n; i++) {
        if (dg[i].seq != m->dg_seq) continue;
        f->dg_last = m->dg_seq;
        ADD(&f->dg_checks, 1);
        if (dg[i].digest != m->dg) {
            ADD(&f->dg_mismatches, 1);
            rlog(r, TRASTENDA_LOG_ERROR,
                 "anti-entropy: follower %s has digest %016llx at entry %llu, the leader "
                 "%016llx: its state differs",
                 f->node, (unsigned long long)m->dg, (unsigned long long)m->dg_seq,
                 (unsigned long long)dg[i].digest);
        }
        return;
    }
}

/* The epoch of log entry seq (0 when the log does not hold it). */
struct epoch_visit {
    uint64_t epoch;
};

static bool
visit_epoch(void *ctx, uint64_t seq, const uint8_t *entry, size_t len)
{
    (void)seq;
    struct epoch_visit *v = ctx;
    trastenda_entry_header h;
    trastenda_entry_iter it;
    if (trastenda_entry_open(entry, len, &h, &it) == TRASTENDA_OK) v->epoch = h.epoch;
    return false;
}

static uint64_t
entry_epoch(struct repl *r, uint64_t seq)
{
    struct epoch_visit v = {0};
    uint64_t next;
    if (trastenda_store_log_scan(r->s->store, seq, 1, visit_epoch, &v, &next) != TRASTENDA_OK)
        return 0;
    return next == seq + 1 ? v.epoch : 0;
}

struct fill {
    msgpack_packer *pk;
    size_t bytes, max;
    uint32_t n;
};

static bool
visit_count(void *ctx, uint64_t seq, const uint8_t *entry, size_t len)
{
    (void)seq;
    (void)entry;
    struct fill *f = ctx;
    f->n++;
    f->bytes += len;
    return f->bytes < f->max && f->n < FETCH_ENTRIES;
}

static bool
visit_pack(void *ctx, uint64_t seq, const uint8_t *entry, size_t len)
{
    (void)seq;
    struct fill *f = ctx;
    if (f->n == 0) return false;
    msgpack_pack_bin(f->pk, len);
    msgpack_pack_bin_body(f->pk, entry, len);
    f->n--;
    return f->n > 0;
}

/* The entries reply for a fetch whose history was checked: from m->seq + 1 (durable only). */
static nng_msg *
reply_entries(struct repl *r, const struct rmsg *q)
{
    struct srv *s = r->s;
    trastenda_store_stats st;
    trastenda_store_stats_get(s->store, &st);
    uint64_t from = q->seq + 1;
    size_t max = q->max > 0 && q->max < FETCH_BYTES ? (size_t)q->max : FETCH_BYTES;
    struct fill count = {.max = max};
    uint64_t next = from;
    if (from <= st.durable_seq)
        (void)trastenda_store_log_scan(s->store, from, FETCH_ENTRIES, visit_count, &count, &next);
    msgpack_packer pk;
    nng_msg *m = msg_new(&pk);
    msgpack_pack_map(&pk, 11);
    pk_s(&pk, "t", "entries");
    pk_u(&pk, "epoch", st.epoch);
    /* Whether replies wait for followers' acknowledgements: a follower fetches ahead of its
     * writes only when they do not (follower_main). */
    pk_u(&pk, "sync", s->cfg.store.sync_replicas);
    pk_s(&pk, "leader", my_req_addr(s));
    pk_s(&pk, "leader_repl", my_repl_addr(s));
    pk_u(&pk, "durable", st.durable_seq);
    pk_i(&pk, "time", st.durable_time_ms);
    trastenda_store_digest last = {0, 0};
    (void)trastenda_store_digests(s->store, &last, 1);
    pk_u(&pk, "dg_seq", last.seq);
    pk_u(&pk, "dg", last.digest);
    pk_k(&pk, "peers");
    uint32_t np = 1;
    int64_t now = mono_ns();
    for (int i = 0; i < FOLLOWERS_MAX; i++)
        if (r->fol[i].used && now - r->fol[i].seen_ns < SEEN_NS) np++;
    msgpack_pack_array(&pk, np);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_str(&pk, strlen(my_req_addr(s)));
    msgpack_pack_str_body(&pk, my_req_addr(s), strlen(my_req_addr(s)));
    msgpack_pack_str(&pk, strlen(my_repl_addr(s)));
    msgpack_pack_str_body(&pk, my_repl_addr(s), strlen(my_repl_addr(s)));
    for (int i = 0; i < FOLLOWERS_MAX; i++) {
        struct follower *f = &r->fol[i];
        if (!f->used || now - f->seen_ns >= SEEN_NS) continue;
        msgpack_pack_array(&pk, 2);
        msgpack_pack_str(&pk, strlen(f->node));
        msgpack_pack_str_body(&pk, f->node, strlen(f->node));
        msgpack_pack_str(&pk, strlen(f->repl));
        msgpack_pack_str_body(&pk, f->repl, strlen(f->repl));
    }
    pk_k(&pk, "entries");
    msgpack_pack_array(&pk, count.n);
    if (count.n > 0) {
        struct fill f = {.pk = &pk, .n = count.n};
        (void)trastenda_store_log_scan(s->store, from, count.n, visit_pack, &f, &next);
        /* Entries the first scan counted that the second did not find were cut meanwhile: the
         * array would be short, so the follower is told to bootstrap instead. */
        if (f.n != 0) {
            nng_msg_free(m);
            return reply_simple(r, "bootstrap", "the log moved while it was read");
        }
    }
    return m;
}

/* A fetch (repl thread): answers it, or parks it until an entry is durable. */
static void
handle_fetch(struct repl *r, struct rctx *c)
{
    struct srv *s = r->s;
    struct rmsg *m = &c->m;
    epoch_heard(r, m->epoch);
    if (trastenda_store_is_follower(s->store)) {
        rctx_reply(c, reply_not_leader(r));
        return;
    }
    uint64_t my_epoch = trastenda_store_epoch(s->store);
    if (m->epoch > my_epoch) {
        rlog(r, TRASTENDA_LOG_WARN,
             "%s has entries of epoch %llu, above this leader's %llu: another node was promoted; "
             "this node takes no more writes",
             m->node, (unsigned long long)m->epoch, (unsigned long long)my_epoch);
        if (!trastenda_store_is_follower(s->store)) {
            /* Kept, so that a restart does not lead again (nor stays promoted); the restart asks
             * the peers it knows who leads now and follows that node (repl_role_at_start). */
            char why[ADDR_BYTES + 64];
            snprintf(why, sizeof(why), "%llu %s\n", (unsigned long long)m->epoch, m->node);
            if (dir_file_write(s->cfg.store.dir, "FENCED", why)) {
                dir_file_remove(s->cfg.store.dir, "PROMOTED");
                STORE(&s->restart_wanted, 1);
            } else {
                rlog(r, TRASTENDA_LOG_ERROR,
                     "cannot write %s/FENCED (%s): fenced until this process stops",
                     s->cfg.store.dir, strerror(errno));
            }
        }
        trastenda_store_fence(s->store);
        rctx_reply(c, reply_not_leader(r));
        return;
    }
    struct follower *f = follower_of(r, m);
    __atomic_store_n(&f->seen_ns, mono_ns(), __ATOMIC_RELAXED);
    /* The history check: the follower's last entry must be this log's entry at that seq. */
    uint64_t durable = trastenda_store_durable_seq(s->store);
    uint64_t first = trastenda_store_log_first(s->store);
    char why[256] = "";
    if (m->seq > durable)
        snprintf(why, sizeof(why),
                 "the follower is at entry %llu, past the leader's %llu: a history the leader "
                 "does not have",
                 (unsigned long long)m->seq, (unsigned long long)durable);
    else if (m->seq == 0 && first > 1)
        snprintf(why, sizeof(why), "a new follower, and the log starts at entry %llu",
                 (unsigned long long)first);
    else if (m->seq > 0) {
        uint64_t e = entry_epoch(r, m->seq);
        /* A log that an older build cut whole holds not even the entry its state is at: the
         * last durable entry's epoch is the node's. */
        if (e == 0 && m->seq == durable && m->seq < first) e = trastenda_store_epoch(s->store);
        if (e == 0)
            snprintf(why, sizeof(why), "entry %llu is no longer in the leader's log (retention)",
                     (unsigned long long)m->seq);
        else if (e != m->epoch)
            snprintf(why, sizeof(why),
                     "the follower's entry %llu is of epoch %llu, the leader's of epoch %llu",
                     (unsigned long long)m->seq, (unsigned long long)m->epoch,
                     (unsigned long long)e);
    }
    /* A follower that fetches ahead names the last entry it received (seq) and the last it has
     * durable (ack): after a crash it reads on from the latter. */
    uint64_t held = m->ack < m->seq ? m->ack : m->seq;
    f->need = why[0] != '\0' ? 0 : held > 0 ? held : first;
    if (why[0] == '\0') snaps_keep_end(r, m->node);
    keep_update(r);
    if (why[0] != '\0') {
        rlog(r, TRASTENDA_LOG_INFO, "follower %s must bootstrap: %s", m->node, why);
        rctx_reply(c, reply_simple(r, "bootstrap", why));
        return;
    }
    uint64_t ack = m->ack <= m->seq ? m->ack : m->seq;
    if (ack > f->acked) __atomic_store_n(&f->acked, ack, __ATOMIC_RELAXED);
    digest_compare(r, f, m);
    acks_update(r);
    if (m->seq >= durable && m->wait > 0) { /* nothing new: wait for the next entry */
        /* Counted before durable is read again: an entry made durable meanwhile either is seen
         * here or sees the count and wakes this thread (repl_on_durable). */
        __atomic_fetch_add(&r->n_parked, 1, __ATOMIC_SEQ_CST);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (m->seq < trastenda_store_durable_seq(r->s->store)) {
            __atomic_fetch_sub(&r->n_parked, 1, __ATOMIC_SEQ_CST);
            rctx_reply(c, reply_entries(r, m));
            return;
        }
        uint64_t w = m->wait > 10000 ? 10000 : m->wait;
        c->deadline_ns = mono_ns() + (int64_t)w * 1000000;
        c->state = RC_PARKED;
        c->next = r->parked;
        r->parked = c;
        return;
    }
    rctx_reply(c, reply_entries(r, m));
}

/* Parked fetches: answered when an entry is durable or their wait is over. */
static int64_t
parked_serve(struct repl *r)
{
    uint64_t durable = trastenda_store_durable_seq(r->s->store);
    int64_t now = mono_ns(), next = now + 50 * 1000000;
    struct rctx **pp = &r->parked;
    while (*pp != NULL) {
        struct rctx *c = *pp;
        bool fenced = trastenda_store_is_follower(r->s->store);
        if (fenced || c->m.seq < durable || now >= c->deadline_ns || LOAD(&r->stop)) {
            *pp = c->next;
            __atomic_fetch_sub(&r->n_parked, 1, __ATOMIC_SEQ_CST);
            rctx_reply(c, fenced ? reply_not_leader(r) : reply_entries(r, &c->m));
            continue;
        }
        if (c->deadline_ns < next) next = c->deadline_ns;
        pp = &c->next;
    }
    return next;
}

/* ---- the leader: snapshots for bootstrap ---- */

/* A checkpoint idle for SNAP_IDLE_NS is removed; a finished one's keep ends as long after. */
static void
snaps_expire(struct repl *r, bool all)
{
    int64_t now = mono_ns();
    bool changed = false;
    for (int i = 0; i < SNAPS_MAX; i++) {
        if (!all && now - r->snaps[i].used_ns <= SNAP_IDLE_NS) continue;
        if (r->snaps[i].snap != NULL) {
            trastenda_snapshot_remove(r->snaps[i].snap);
            r->snaps[i].snap = NULL;
        }
        if (r->snaps[i].keep != 0) {
            r->snaps[i].keep = 0;
            changed = true;
        }
    }
    if (changed && !all) keep_update(r);
}

static int
snap_find(struct repl *r, uint64_t id)
{
    for (int i = 0; i < SNAPS_MAX; i++)
        if (r->snaps[i].snap != NULL && r->snaps[i].id == id) return i;
    return -1;
}

static nng_msg *
handle_snap(struct repl *r, const struct rmsg *q)
{
    struct srv *s = r->s;
    if (strcmp(q->t, "snap") == 0) {
        /* The slot of this node's earlier bootstrap (a download started again), else a free
         * one, else the one whose finished download's keep is oldest. */
        int slot = -1;
        for (int i = 0; i < SNAPS_MAX && slot < 0; i++)
            if ((r->snaps[i].snap != NULL || r->snaps[i].keep != 0) &&
                strcmp(r->snaps[i].node, q->node) == 0)
                slot = i;
        if (slot >= 0 && r->snaps[slot].snap != NULL) {
            trastenda_snapshot_remove(r->snaps[slot].snap);
            r->snaps[slot].snap = NULL;
        }
        for (int i = 0; i < SNAPS_MAX && slot < 0; i++)
            if (r->snaps[i].snap == NULL && r->snaps[i].keep == 0) slot = i;
        if (slot < 0) /* none: the finished one whose keep is oldest */
            for (int i = 0; i < SNAPS_MAX; i++)
                if (r->snaps[i].snap == NULL &&
                    (slot < 0 || r->snaps[i].used_ns < r->snaps[slot].used_ns))
                    slot = i;
        if (slot < 0) return reply_simple(r, "error", "too many bootstraps at once: retry later");
        if (r->snaps[slot].keep != 0 && strcmp(r->snaps[slot].node, q->node) != 0)
            rlog(r, TRASTENDA_LOG_WARN,
                 "bootstrap of %s: the log is no longer kept from entry %llu for %s, which "
                 "downloaded a checkpoint and has not fetched since (%d bootstraps at most)",
                 q->node, (unsigned long long)r->snaps[slot].keep, r->snaps[slot].node, SNAPS_MAX);
        /* Kept from the durable entry (not above the checkpoint's last) while it is taken. */
        r->snaps[slot].keep = trastenda_store_durable_seq(s->store);
        snprintf(r->snaps[slot].node, sizeof(r->snaps[slot].node), "%s", q->node);
        r->snaps[slot].used_ns = mono_ns();
        keep_update(r);
        uint64_t id = ++r->snap_ids;
        char dir[4200], err[512];
        snprintf(dir, sizeof(dir), "%s/snapshots/%llu", s->cfg.store.dir, (unsigned long long)id);
        char parent[4200];
        snprintf(parent, sizeof(parent), "%s/snapshots", s->cfg.store.dir);
        (void)mkdir(parent, 0755);
        trastenda_snapshot *snap;
        if (trastenda_snapshot_create(s->store, dir, &snap, err, sizeof(err)) != TRASTENDA_OK) {
            rlog(r, TRASTENDA_LOG_ERROR, "cannot make a checkpoint for a bootstrap: %s", err);
            r->snaps[slot].keep = 0;
            keep_update(r);
            return reply_simple(r, "error", err);
        }
        r->snaps[slot].snap = snap;
        r->snaps[slot].id = id;
        r->snaps[slot].used_ns = mono_ns();
        r->snaps[slot].keep = trastenda_snapshot_seq(snap);
        keep_update(r);
        rlog(r, TRASTENDA_LOG_INFO,
             "bootstrap %llu: checkpoint at entry %llu, %u files, %llu bytes, for %s",
             (unsigned long long)id, (unsigned long long)trastenda_snapshot_seq(snap),
             trastenda_snapshot_files(snap), (unsigned long long)trastenda_snapshot_total(snap),
             q->node);
        msgpack_packer pk;
        nng_msg *m = msg_new(&pk);
        msgpack_pack_map(&pk, 6);
        pk_s(&pk, "t", "snap");
        pk_u(&pk, "id", id);
        pk_u(&pk, "seq", trastenda_snapshot_seq(snap));
        pk_u(&pk, "epoch", trastenda_store_epoch(s->store));
        pk_u(&pk, "total", trastenda_snapshot_total(snap));
        pk_k(&pk, "files");
        uint32_t n = trastenda_snapshot_files(snap);
        msgpack_pack_array(&pk, n);
        for (uint32_t i = 0; i < n; i++) {
            uint64_t size;
            const char *name = trastenda_snapshot_file(snap, i, &size);
            msgpack_pack_array(&pk, 2);
            msgpack_pack_str(&pk, strlen(name));
            msgpack_pack_str_body(&pk, name, strlen(name));
            msgpack_pack_uint64(&pk, size);
        }
        return m;
    }
    int i = snap_find(r, q->id);
    if (i < 0) return reply_simple(r, "error", "no such bootstrap (expired): start again");
    r->snaps[i].used_ns = mono_ns();
    if (strcmp(q->t, "snap_done") == 0) {
        rlog(r, TRASTENDA_LOG_INFO, "bootstrap %llu: downloaded", (unsigned long long)q->id);
        trastenda_snapshot_remove(r->snaps[i].snap);
        r->snaps[i].snap = NULL;
        return reply_simple(r, "ok", NULL);
    }
    if (r->chunk == NULL && (r->chunk = malloc(CHUNK_BYTES)) == NULL) abort();
    size_t got;
    if (q->file > UINT32_MAX ||
        trastenda_snapshot_read(r->snaps[i].snap, (uint32_t)q->file, q->off, r->chunk, CHUNK_BYTES,
                                &got) != TRASTENDA_OK)
        return reply_simple(r, "error", "cannot read that part of the checkpoint");
    msgpack_packer pk;
    nng_msg *m = msg_new(&pk);
    msgpack_pack_map(&pk, 3);
    pk_s(&pk, "t", "chunk");
    pk_u(&pk, "epoch", trastenda_store_epoch(r->s->store));
    pk_k(&pk, "data");
    msgpack_pack_bin(&pk, got);
    msgpack_pack_bin_body(&pk, r->chunk, got);
    return m;
}

/* ---- the repl thread ---- */

static void
handle(struct repl *r, struct rctx *c)
{
    if (!rmsg_parse(&c->m, nng_msg_body(c->req), nng_msg_len(c->req))) {
        rctx_reply(c, reply_simple(r, "error", "malformed replication message"));
        return;
    }
    /* With tokens configured, every replication message needs one: a stranger must neither pull
     * the log nor fake a follower's acknowledgement. */
    if (!auth_token_valid(&r->s->auth, c->m.token, strlen(c->m.token))) {
        rlog(r, TRASTENDA_LOG_WARN, "refused a %s from %s: %s", c->m.t,
             c->m.node[0] ? c->m.node : "a peer",
             c->m.token[0] ? "its token is not valid" : "it has no token");
        rctx_reply(c, reply_simple(r, "error",
                                   "unauthorized: a valid token is needed "
                                   "(--repl-token, docs/SECURITY.md)"));
        return;
    }
    if (strcmp(c->m.t, "fetch") == 0) {
        handle_fetch(r, c);
        return;
    }
    if (strcmp(c->m.t, "who") == 0) {
        rctx_reply(c, reply_who(r));
        return;
    }
    if (strcmp(c->m.t, "snap") == 0 || strcmp(c->m.t, "chunk") == 0 ||
        strcmp(c->m.t, "snap_done") == 0) {
        if (trastenda_store_is_follower(r->s->store)) {
            rctx_reply(c, reply_not_leader(r));
            return;
        }
        rctx_reply(c, handle_snap(r, &c->m));
        return;
    }
    rctx_reply(c, reply_simple(r, "error", "unknown replication message"));
}

static void *
repl_main(void *arg)
{
    struct repl *r = arg;
    while (!LOAD(&r->stop)) {
        uint32_t w = LOAD(&r->wake);
        pthread_mutex_lock(&r->mu);
        struct rctx *in = r->inbox;
        r->inbox = NULL;
        pthread_mutex_unlock(&r->mu);
        /* The inbox is newest first: answer in arrival order. */
        struct rctx *rev = NULL;
        while (in != NULL) {
            struct rctx *n = in->next;
            in->next = rev;
            rev = in;
            in = n;
        }
        while (rev != NULL) {
            struct rctx *n = rev->next;
            handle(r, rev);
            rev = n;
        }
        srv_waits_check(r->s, mono_ns()); /* reads whose min_seq wait is over */
        int64_t next = parked_serve(r);
        snaps_expire(r, false);
        int64_t wait_ms = (next - mono_ns()) / 1000000;
        if (wait_ms < 1) wait_ms = 1;
        if (wait_ms > 50) wait_ms = 50;
        futex_wait(&r->wake, w, wait_ms);
    }
    /* Stopping: parked fetches get what there is. */
    (void)parked_serve(r);
    return NULL;
}

void
repl_on_durable(struct srv *s, uint64_t seq)
{
    struct repl *r = LOAD(&s->repl);
    if (r == NULL) return;
    __atomic_store_n(&r->dur[seq % DUR_RING].ns, mono_ns(), __ATOMIC_RELAXED);
    __atomic_store_n(&r->dur[seq % DUR_RING].cmds, trastenda_store_durable_commands(s->store),
                     __ATOMIC_RELAXED);
    STORE(&r->dur[seq % DUR_RING].seq, seq);
    /* Parked fetches: a futex wake, no lock; none parked (no follower, or followers still busy
     * with earlier entries), no wake-up: a leader alone would switch threads once a batch. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&r->n_parked, __ATOMIC_SEQ_CST) > 0) wake(r);
}

/* ---- the follower ---- */

/* A REQ socket dialed to addr (the dialer retries in the background). */
static int
req_open(const trastenda_server_config *cfg, nng_socket *sock, const char *addr,
         uint32_t timeout_ms)
{
    nng_tls_config *tls = NULL;
    if (strncmp(addr, "tls+", 4) == 0) {
        char err[300];
        if (tls_client_config(cfg, addr, &tls, err, sizeof(err)) != TRASTENDA_OK) {
            cfg->log(cfg->log_ctx, TRASTENDA_LOG_ERROR, err);
            return NNG_EINVAL;
        }
    }
    int rv = nng_req0_open(sock);
    if (rv != 0) {
        if (tls != NULL) nng_tls_config_free(tls);
        return rv;
    }
    nng_socket_set_ms(*sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    nng_socket_set_ms(*sock, NNG_OPT_RECVTIMEO, (nng_duration)timeout_ms);
    /* A send waits for a connection: short, so that a dead leader is left for the next peer. */
    nng_socket_set_ms(*sock, NNG_OPT_SENDTIMEO, 500);
    nng_socket_set_ms(*sock, NNG_OPT_RECONNMINT, 20);
    nng_socket_set_ms(*sock, NNG_OPT_RECONNMAXT, 500);
    nng_socket_set_size(*sock, NNG_OPT_RECVMAXSZ, 64u << 20);
    nng_dialer d;
    rv = nng_dialer_create(&d, *sock, addr);
    if (rv == 0 && tls != NULL) rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls);
    if (tls != NULL) nng_tls_config_free(tls); /* the dialer holds its own reference */
    if (rv == 0) rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
    if (rv != 0) nng_close(*sock);
    return rv;
}

/* The follower's token, when it has one, as a key of its messages. */
static bool
has_token(const trastenda_server_config *cfg)
{
    return cfg->repl_token != NULL && cfg->repl_token[0] != '\0';
}

static void
pk_token(msgpack_packer *pk, const trastenda_server_config *cfg)
{
    if (has_token(cfg)) pk_s(pk, "token", cfg->repl_token);
}

/* One request, one reply. */
static int
req_call(nng_socket sock, nng_msg *m, nng_msg **reply)
{
    int rv = nng_sendmsg(sock, m, 0);
    if (rv != 0) {
        nng_msg_free(m);
        return rv;
    }
    return nng_recvmsg(sock, reply, 0);
}

static void
append_done(trastenda_request *req, trastenda_err status)
{
    struct repl *r = req->ctx;
    (void)status;
    __atomic_fetch_add(&r->append_done, 1, __ATOMIC_RELEASE); /* the request's outputs */
    futex_wake(&r->append_done);
}

/* Asks the process to restart this server into a bootstrap from the leader at r->target. */
static void
bootstrap_ask(struct repl *r, const char *why)
{
    struct srv *s = r->s;
    char path[4200];
    snprintf(path, sizeof(path), "%s/BOOTSTRAP", s->cfg.store.dir);
    FILE *f = fopen(path, "w");
    if (f == NULL || fprintf(f, "%s\n", r->target) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        rlog(r, TRASTENDA_LOG_ERROR, "cannot write %s: %s", path, strerror(errno));
        if (f != NULL) fclose(f);
        return;
    }
    fclose(f);
    rlog(r, TRASTENDA_LOG_WARN,
         "bootstrap needed (%s): the server restarts to download a checkpoint", why);
    STORE(&s->restart_wanted, 1);
}

/* Sleeps ms, or less when the follower's loop is to stop. */
static void
nap(struct repl *r, uint32_t ms)
{
    for (uint32_t t = 0; t < ms && !LOAD(&r->stop) && !LOAD(&r->fstop); t += 10)
        usleep(10 * 1000);
}

/* Hands the entries of a reply to the store (the engine thread applies them, the log writer
 * makes them durable): the append in flight, until follower_await. Nothing is in flight when the
 * store refused them (it stops or closes: the loop ends with it). false: the reply's entries do
 * not parse (nothing submitted). */
static bool
follower_submit(struct repl *r, struct rmsg *m)
{
    size_t need = 0;
    struct mp_rd rd = m->entries;
    const uint8_t *last = NULL;
    uint32_t last_len = 0;
    for (uint32_t k = 0; k < m->n_entries; k++) {
        const uint8_t *b;
        uint32_t len;
        if (!mp_read_bin(&rd, &b, &len)) return false;
        need += 4 + len;
        last = b;
        last_len = len;
    }
    if (need > r->abuf_cap) {
        uint8_t *p = realloc(r->abuf, need);
        if (p == NULL) abort();
        r->abuf = p;
        r->abuf_cap = need;
    }
    size_t at = 0;
    rd = m->entries;
    for (uint32_t k = 0; k < m->n_entries; k++) {
        const uint8_t *b;
        uint32_t len;
        mp_read_bin(&rd, &b, &len);
        for (int j = 0; j < 4; j++)
            r->abuf[at + (size_t)j] = (uint8_t)(len >> (8 * j));
        memcpy(r->abuf + at + 4, b, len);
        at += 4 + len;
    }
    /* The position the next fetch names while this append is in flight. */
    trastenda_entry_header hdr;
    trastenda_entry_iter it;
    r->a_seq = r->a_epoch = 0;
    if (last != NULL && trastenda_entry_open(last, last_len, &hdr, &it) == TRASTENDA_OK) {
        r->a_seq = hdr.seq;
        r->a_epoch = hdr.epoch;
    }
    trastenda_request *q = &r->areq;
    memset(q, 0, sizeof(*q));
    q->entries = r->abuf;
    q->entries_len = at;
    q->n_entries = m->n_entries;
    q->done = append_done;
    q->ctx = r;
    for (;;) {
        uint32_t w = LOAD(&r->append_done);
        trastenda_err e = trastenda_store_submit(r->s->store, q);
        if (e == TRASTENDA_E_BUSY) {
            usleep(200);
            continue;
        }
        if (e != TRASTENDA_OK) {
            rlog(r, TRASTENDA_LOG_ERROR, "the store refused the leader's entries: %s",
                 trastenda_err_message(e));
            nap(r, 100); /* a store that stopped refuses every time: no hot loop of fetches */
            return true;
        }
        r->a_inflight = true;
        r->a_w = w;
        return true;
    }
}

/* How the append in flight ended. */
enum await {
    AWAIT_DONE = 0,     /* durable, or none was in flight */
    AWAIT_SHORT = 1,    /* it stopped short of its last entry (the error is logged) */
    AWAIT_DIVERGED = 2, /* its entries do not continue this node's log: a bootstrap is needed */
};

/* Waits until the append in flight, if any, is durable or has failed. */
static enum await
follower_await(struct repl *r)
{
    if (!r->a_inflight) return AWAIT_DONE;
    while (LOAD(&r->append_done) == r->a_w)
        futex_wait(&r->append_done, r->a_w, 100);
    r->a_inflight = false;
    const trastenda_request *q = &r->areq;
    if (q->entry_err == TRASTENDA_OK) return AWAIT_DONE;
    if (q->entry_err == TRASTENDA_E_SEQUENCE) return AWAIT_DIVERGED;
    if (q->entry_version != 0 && q->entry_version != TRASTENDA_LOG_VERSION)
        rlog(r, TRASTENDA_LOG_ERROR,
             "the leader writes log format %u and this build reads format %u (docs/LOG.md): run "
             "the same Trastenda build on the leader and its followers",
             (unsigned)q->entry_version, (unsigned)TRASTENDA_LOG_VERSION);
    else
        rlog(r, TRASTENDA_LOG_ERROR, "an entry after %llu does not apply: %s",
             (unsigned long long)q->seq, trastenda_err_message(q->entry_err));
    return AWAIT_SHORT;
}

static void
peers_learn(struct repl *r, struct rmsg *m)
{
    struct mp_rd rd = m->peers;
    char tmp[PEERS_MAX][2][ADDR_BYTES];
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->n_peers && n < PEERS_MAX; i++) {
        uint32_t k;
        if (!mp_read_array(&rd, &k) || k != 2) return;
        rd_cstr(&rd, tmp[n][0], ADDR_BYTES);
        rd_cstr(&rd, tmp[n][1], ADDR_BYTES);
        if (rd.bad) return;
        n++;
    }
    pthread_mutex_lock(&r->mu);
    bool same = n == r->n_peers;
    for (uint32_t i = 0; i < n && same; i++)
        same = strcmp(r->peers[i][0], tmp[i][0]) == 0 && strcmp(r->peers[i][1], tmp[i][1]) == 0;
    memcpy(r->peers, tmp, sizeof(tmp[0]) * n);
    r->n_peers = n;
    pthread_mutex_unlock(&r->mu);
    if (!same) peers_file_add(r->s->cfg.store.dir, my_repl_addr(r->s), tmp, n);
}

/* The next replication address to try after failures: the peers in turn (not this node). */
static void
target_rotate(struct repl *r, uint32_t *turn)
{
    pthread_mutex_lock(&r->mu);
    uint32_t n = r->n_peers;
    for (uint32_t i = 0; i < n; i++) {
        const char *cand = r->peers[(*turn + i) % n][1];
        if (strcmp(cand, my_repl_addr(r->s)) == 0 || cand[0] == '\0') continue;
        if (strcmp(cand, r->target) == 0 && n > 2) continue;
        snprintf(r->target, sizeof(r->target), "%s", cand);
        *turn += i + 1;
        break;
    }
    pthread_mutex_unlock(&r->mu);
}

static void *
follower_main(void *arg)
{
    struct repl *r = arg;
    struct srv *s = r->s;
    nng_socket sock = NNG_SOCKET_INITIALIZER;
    bool open = false;
    char open_to[ADDR_BYTES] = "";
    uint32_t fails = 0, turn = 0, backoff_ms = 50;
    char home[ADDR_BYTES]; /* the last leader that answered: tried every other attempt */
    snprintf(home, sizeof(home), "%s", r->target);
    uint64_t want_dg_seq = 0, want_dg = 0, asked_dg = 0;
    bool warned = false;
    uint32_t timeout = s->cfg.repl_wait_ms + 3000;
    while (!LOAD(&r->stop) && !LOAD(&r->fstop) && !LOAD(&s->restart_wanted)) {
        if (!trastenda_store_is_follower(s->store)) break; /* promoted */
        pthread_mutex_lock(&r->mu);
        if (open && (strcmp(open_to, r->target) != 0 || !r->fsock_open)) {
            bool mine = r->fsock_open; /* who clears the flag closes the socket */
            r->fsock_open = open = false;
            if (mine) { /* not under the lock: nng's callbacks may need it to let the close end */
                pthread_mutex_unlock(&r->mu);
                srv_close_sock(s, sock, "replication");
                pthread_mutex_lock(&r->mu);
            }
        }
        bool stopping = LOAD(&r->stop) || LOAD(&r->fstop);
        int rv = 0;
        if (!open && !stopping) {
            rv = req_open(&s->cfg, &sock, r->target, timeout);
            if (rv == 0) {
                snprintf(open_to, sizeof(open_to), "%s", r->target);
                r->fsock = sock;
                r->fsock_open = open = true;
            }
        }
        pthread_mutex_unlock(&r->mu);
        if (stopping) break;
        if (rv != 0) {
            rlog(r, TRASTENDA_LOG_ERROR, "cannot dial %s: %s", open_to, nng_strerror(rv));
            nap(r, 500);
            continue;
        }
        trastenda_store_stats st;
        trastenda_store_stats_get(s->store, &st);
        /* The leader's last digest against this node's at the same entry, once both exist (each
         * node's materializer takes them at the same entries, at its own pace). */
        trastenda_store_digest mine[TRASTENDA_STORE_DIGESTS];
        uint32_t nd = trastenda_store_digests(s->store, mine, TRASTENDA_STORE_DIGESTS);
        for (uint32_t i = 0; i < nd && want_dg_seq != 0 && asked_dg != want_dg_seq; i++) {
            if (mine[i].seq != want_dg_seq) continue;
            asked_dg = want_dg_seq;
            ADD(&r->f_dg_checks, 1);
            if (mine[i].digest != want_dg) {
                ADD(&r->f_dg_mismatches, 1);
                rlog(r, TRASTENDA_LOG_ERROR,
                     "anti-entropy: this follower's digest at entry %llu is %016llx, the "
                     "leader's %016llx: its state differs",
                     (unsigned long long)want_dg_seq, (unsigned long long)mine[i].digest,
                     (unsigned long long)want_dg);
            }
        }
        uint64_t dg_seq = nd > 0 ? mine[nd - 1].seq : 0, dg = nd > 0 ? mine[nd - 1].digest : 0;
        /* With an append in flight (fetching ahead), the fetch names its last entry, acks what
         * is durable, and is answered at once, without waiting for new entries: an empty answer
         * sends this loop back to wait for the append, and the next fetch then carries its
         * acknowledgement instead of holding it for the leader's whole wait. */
        bool ahead = r->a_inflight && r->a_seq != 0;
        msgpack_packer pk;
        nng_msg *q = msg_new(&pk);
        msgpack_pack_map(&pk, 10 + has_token(&s->cfg));
        pk_s(&pk, "t", "fetch");
        pk_token(&pk, &s->cfg);
        pk_u(&pk, "seq", ahead ? r->a_seq : st.durable_seq);
        pk_u(&pk, "epoch", ahead ? r->a_epoch : st.epoch);
        pk_u(&pk, "ack", st.durable_seq);
        pk_s(&pk, "node", my_req_addr(s));
        pk_s(&pk, "repl", my_repl_addr(s));
        pk_u(&pk, "wait", ahead ? 0 : s->cfg.repl_wait_ms);
        pk_u(&pk, "max", FETCH_BYTES);
        pk_u(&pk, "dg_seq", dg_seq);
        pk_u(&pk, "dg", dg);
        nng_msg *rep = NULL;
        rv = req_call(sock, q, &rep);
        struct rmsg m;
        if (rv == 0 && !rmsg_parse(&m, nng_msg_body(rep), nng_msg_len(rep))) rv = NNG_EPROTO;
        /* Anything but entries: the append in flight ends first (the next fetch starts from
         * what is durable). */
        bool entries = rv == 0 && strcmp(m.t, "entries") == 0 && m.epoch >= st.epoch;
        if (!entries && follower_await(r) == AWAIT_DIVERGED) {
            if (rep != NULL) nng_msg_free(rep);
            bootstrap_ask(r, "the leader's entries do not continue this node's log");
            continue;
        }
        if (rv != 0) {
            if (rep != NULL) nng_msg_free(rep);
            STORE(&r->connected, 0);
            if (!warned)
                rlog(r, TRASTENDA_LOG_WARN, "the leader at %s does not answer (%s): retrying",
                     r->target, nng_strerror(rv));
            warned = true;
            fails++;
            if (fails % 2 == 1) {
                target_rotate(r, &turn);
            } else {
                pthread_mutex_lock(&r->mu);
                snprintf(r->target, sizeof(r->target), "%s", home);
                pthread_mutex_unlock(&r->mu);
            }
            nap(r, backoff_ms);
            backoff_ms = backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff_ms * 2;
            continue;
        }
        if (strcmp(m.t, "entries") == 0 && m.epoch < st.epoch) {
            /* A fenced leader (an older epoch) is no leader. */
            snprintf(m.t, sizeof(m.t), "not_leader");
            m.leader_repl[0] = '\0';
        }
        if (strcmp(m.t, "entries") == 0) {
            if (warned || !LOAD(&r->connected))
                rlog(r, TRASTENDA_LOG_INFO, "following %s (leader %s, epoch %llu) from entry %llu",
                     r->target, m.leader, (unsigned long long)m.epoch,
                     (unsigned long long)st.durable_seq);
            warned = false;
            fails = 0;
            backoff_ms = 50;
            char kept[ADDR_BYTES];
            if (!LOAD(&r->connected) && (!leader_file_read(s->cfg.store.dir, kept, sizeof(kept)) ||
                                         strcmp(kept, r->target) != 0))
                leader_file_write(s->cfg.store.dir, r->target);
            snprintf(home, sizeof(home), "%s", r->target);
            STORE(&r->connected, 1);
            set_leader(r, m.leader);
            epoch_heard(r, m.epoch);
            STORE(&r->leader_epoch, m.epoch);
            STORE(&r->leader_durable, m.durable);
            STORE(&r->leader_durable_time, m.time);
            peers_learn(r, &m);
            if (m.dg_seq != 0 && m.dg_seq != want_dg_seq) {
                want_dg_seq = m.dg_seq;
                want_dg = m.dg;
            }
            /* The append before ends first (one in flight, in order), then these entries go to
             * the store. When the leader's replies do not wait for acknowledgements (sync 0),
             * the next fetch leaves while they are written, so its round trip overlaps their
             * fsync; otherwise they are durable before it, and it carries their ack at once. */
            enum await before = follower_await(r);
            if (before == AWAIT_SHORT) {
                /* The append before stopped short (its error is logged): these entries, fetched
                 * ahead, do not follow what is durable, which the next fetch names. */
                nng_msg_free(rep);
                continue;
            }
            bool ok = before == AWAIT_DONE;
            if (ok && m.n_entries > 0) {
                ok = follower_submit(r, &m);
                if (ok && (m.sync != 0 || r->a_seq == 0)) ok = follower_await(r) != AWAIT_DIVERGED;
            }
            nng_msg_free(rep);
            if (!ok) bootstrap_ask(r, "the leader's entries do not continue this node's log");
            continue;
        }
        if (strcmp(m.t, "bootstrap") == 0) {
            nng_msg_free(rep);
            bootstrap_ask(r, m.why);
            break;
        }
        if (strcmp(m.t, "not_leader") == 0) {
            STORE(&r->connected, 0);
            epoch_heard(r, m.epoch);
            if (m.leader_repl[0] != '\0' && strcmp(m.leader_repl, r->target) != 0 &&
                strcmp(m.leader_repl, my_repl_addr(s)) != 0) {
                rlog(r, TRASTENDA_LOG_INFO, "%s is not the leader; following %s", r->target,
                     m.leader_repl);
                pthread_mutex_lock(&r->mu);
                snprintf(r->target, sizeof(r->target), "%s", m.leader_repl);
                pthread_mutex_unlock(&r->mu);
            } else {
                target_rotate(r, &turn);
            }
            nng_msg_free(rep);
            nap(r, backoff_ms);
            backoff_ms = backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff_ms * 2;
            continue;
        }
        if (!warned) rlog(r, TRASTENDA_LOG_WARN, "%s answered %s: %s", r->target, m.t, m.why);
        warned = true;
        nng_msg_free(rep);
        /* Refused (a token, an error): asking again soon changes nothing, and the other side
         * logs each refusal. */
        nap(r, backoff_ms > REFUSED_BACKOFF_MS ? backoff_ms : REFUSED_BACKOFF_MS);
        backoff_ms = backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff_ms * 2;
    }
    (void)follower_await(r); /* its buffers are this loop's: nothing left in the store */
    pthread_mutex_lock(&r->mu);
    bool mine = r->fsock_open;
    r->fsock_open = false;
    pthread_mutex_unlock(&r->mu);
    if (mine) srv_close_sock(s, sock, "replication");
    STORE(&r->connected, 0);
    return NULL;
}

/* Ends the follower's loop at once: its fetch in flight is cut short. */
static void
follower_stop(struct repl *r)
{
    STORE(&r->fstop, 1);
    pthread_mutex_lock(&r->mu);
    bool mine = r->fsock_open; /* who clears the flag closes the socket, outside the lock */
    nng_socket sock = r->fsock;
    r->fsock_open = false;
    pthread_mutex_unlock(&r->mu);
    if (mine) srv_close_sock(r->s, sock, "replication");
    if (r->fth_started) pthread_join(r->fth, NULL);
    r->fth_started = false;
}

/* ---- bootstrap (before the store opens) ---- */

static trastenda_err
boot_call(nng_socket sock, nng_msg *q, struct rmsg *m, nng_msg **rep, char *err, size_t errlen)
{
    int rv = req_call(sock, q, rep);
    if (rv == 0 && !rmsg_parse(m, nng_msg_body(*rep), nng_msg_len(*rep))) rv = NNG_EPROTO;
    if (rv != 0) {
        snprintf(err, errlen, "bootstrap: the leader does not answer: %s", nng_strerror(rv));
        return TRASTENDA_E_CONNECT;
    }
    if (strcmp(m->t, "error") == 0 || strcmp(m->t, "not_leader") == 0) {
        snprintf(err, errlen, "bootstrap: the leader answered %s %s", m->t, m->why);
        return TRASTENDA_E_CONNECT;
    }
    return TRASTENDA_OK;
}

static trastenda_err
bootstrap_from(const trastenda_server_config *cfg, const char *leader, char *err, size_t errlen)
{
    char staging[4200];
    snprintf(staging, sizeof(staging), "%s.bootstrap", cfg->store.dir);
    (void)trastenda_rmtree(staging);
    nng_socket sock;
    if (req_open(cfg, &sock, leader, 30000) != 0) {
        snprintf(err, errlen, "bootstrap: cannot dial %s", leader);
        return TRASTENDA_E_CONNECT;
    }
    msgpack_packer pk;
    nng_msg *q = msg_new(&pk);
    msgpack_pack_map(&pk, 2 + has_token(cfg));
    pk_s(&pk, "t", "snap");
    /* The name its fetches will carry (my_req_addr): the leader's keep for it ends at the first. */
    pk_s(&pk, "node", cfg->advertise != NULL && cfg->advertise[0] ? cfg->advertise : cfg->listen);
    pk_token(&pk, cfg);
    nng_msg *manifest = NULL;
    struct rmsg man;
    trastenda_err code = boot_call(sock, q, &man, &manifest, err, errlen);
    if (code != TRASTENDA_OK) {
        if (manifest != NULL) nng_msg_free(manifest);
        nng_close(sock);
        return code;
    }
    char msg[900];
    snprintf(msg, sizeof(msg),
             "replication: bootstrap from %s: checkpoint at entry %llu, %u files, %.1f MB", leader,
             (unsigned long long)man.seq, man.n_files, (double)man.total / 1e6);
    cfg->log(cfg->log_ctx, TRASTENDA_LOG_INFO, msg);
    uint64_t done = 0;
    int64_t last_log = mono_ns();
    struct mp_rd files = man.files;
    for (uint32_t i = 0; i < man.n_files && code == TRASTENDA_OK; i++) {
        uint32_t k;
        char name[512];
        uint64_t size;
        if (!mp_read_array(&files, &k) || k != 2) {
            code = TRASTENDA_E_MALFORMED;
            break;
        }
        rd_cstr(&files, name, sizeof(name));
        mp_read_u64(&files, &size);
        if (files.bad) {
            code = TRASTENDA_E_MALFORMED;
            break;
        }
        uint64_t off = 0;
        do {
            q = msg_new(&pk);
            msgpack_pack_map(&pk, 4 + has_token(cfg));
            pk_s(&pk, "t", "chunk");
            pk_token(&pk, cfg);
            pk_u(&pk, "id", man.id);
            pk_u(&pk, "file", i);
            pk_u(&pk, "off", off);
            nng_msg *rep = NULL;
            struct rmsg c;
            code = boot_call(sock, q, &c, &rep, err, errlen);
            if (code == TRASTENDA_OK && (c.data_len == 0 && off < size))
                code = TRASTENDA_E_MALFORMED;
            if (code == TRASTENDA_OK)
                code =
                    trastenda_snapshot_write(staging, name, off, c.data, c.data_len, err, errlen);
            off += c.data_len;
            done += c.data_len;
            if (rep != NULL) nng_msg_free(rep);
            if (code == TRASTENDA_OK && mono_ns() - last_log > 1000000000ll) {
                last_log = mono_ns();
                snprintf(msg, sizeof(msg), "replication: bootstrap: %.1f of %.1f MB (%.0f%%)",
                         (double)done / 1e6, (double)man.total / 1e6,
                         man.total > 0 ? 100.0 * (double)done / (double)man.total : 100.0);
                cfg->log(cfg->log_ctx, TRASTENDA_LOG_INFO, msg);
            }
        } while (code == TRASTENDA_OK && off < size);
    }
    if (code == TRASTENDA_E_MALFORMED) snprintf(err, errlen, "bootstrap: a malformed reply");
    if (code == TRASTENDA_OK) {
        q = msg_new(&pk);
        msgpack_pack_map(&pk, 2 + has_token(cfg));
        pk_s(&pk, "t", "snap_done");
        pk_token(&pk, cfg);
        pk_u(&pk, "id", man.id);
        nng_msg *rep = NULL;
        struct rmsg c;
        if (boot_call(sock, q, &c, &rep, msg, sizeof(msg)) != TRASTENDA_OK)
            cfg->log(cfg->log_ctx, TRASTENDA_LOG_WARN, msg); /* the leader expires it */
        if (rep != NULL) nng_msg_free(rep);
    }
    nng_msg_free(manifest);
    nng_close(sock);
    if (code == TRASTENDA_OK) {
        /* What the node knows of its cluster goes with the checkpoint, before the swap: a crash
         * right after it must not find a directory that neither follows nor asks. */
        peer_pair known[PEERS_MAX];
        uint32_t n_known = peers_file_read(cfg->store.dir, known);
        const char *self = cfg->advertise_repl != NULL && cfg->advertise_repl[0]
                               ? cfg->advertise_repl
                           : cfg->repl != NULL ? cfg->repl
                                               : "";
        if (n_known > 0) peers_file_add(staging, self, known, n_known);
        char line[700];
        snprintf(line, sizeof(line), "%s\n", leader);
        if (!dir_file_write(staging, "LEADER", line)) {
            snprintf(err, errlen, "bootstrap: cannot write %s/LEADER: %s", staging,
                     strerror(errno));
            code = TRASTENDA_E_IO;
        }
    }
    if (code == TRASTENDA_OK)
        code = trastenda_snapshot_install(staging, cfg->store.dir, err, errlen);
    if (code == TRASTENDA_OK) {
        snprintf(msg, sizeof(msg),
                 "replication: bootstrap: %.1f MB of %.1f MB (100%%), state at entry %llu",
                 (double)done / 1e6, (double)man.total / 1e6, (unsigned long long)man.seq);
        cfg->log(cfg->log_ctx, TRASTENDA_LOG_INFO, msg);
    } else {
        (void)trastenda_rmtree(staging);
    }
    return code;
}

trastenda_err
repl_bootstrap_finish(const trastenda_server_config *cfg, char *err, size_t errlen)
{
    char staging[4200];
    snprintf(staging, sizeof(staging), "%s.bootstrap", cfg->store.dir);
    bool finished = false;
    trastenda_err code =
        trastenda_snapshot_recover(staging, cfg->store.dir, &finished, err, errlen);
    if (code == TRASTENDA_OK && finished) {
        char msg[4400];
        snprintf(msg, sizeof(msg),
                 "replication: %s: the swap of a downloaded checkpoint, cut short by a crash, "
                 "is finished",
                 cfg->store.dir);
        cfg->log(cfg->log_ctx, TRASTENDA_LOG_WARN, msg);
    }
    return code;
}

trastenda_err
repl_bootstrap_pending(const trastenda_server_config *cfg, char *err, size_t errlen)
{
    if (cfg->follow == NULL || cfg->follow[0] == '\0') return TRASTENDA_OK;
    char path[4200], leader[ADDR_BYTES] = "";
    snprintf(path, sizeof(path), "%s/BOOTSTRAP", cfg->store.dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) return TRASTENDA_OK;
    if (fgets(leader, sizeof(leader), f) == NULL) leader[0] = '\0';
    fclose(f);
    leader[strcspn(leader, "\r\n")] = '\0';
    /* The leader named when the bootstrap was asked for, the one followed last, --follow: each
     * is tried once (a dead one fails within a second); E_CONNECT when none answered, which the
     * process meets by starting again later (net/cmd/trastenda.c), not by exiting. */
    char cand[3][ADDR_BYTES];
    uint32_t n = 0;
    snprintf(cand[n++], ADDR_BYTES, "%s", leader[0] != '\0' ? leader : cfg->follow);
    char last[ADDR_BYTES];
    if (leader_file_read(cfg->store.dir, last, sizeof(last)) && strcmp(last, cand[0]) != 0)
        snprintf(cand[n++], ADDR_BYTES, "%s", last);
    if (strcmp(cfg->follow, cand[0]) != 0 && (n < 2 || strcmp(cfg->follow, cand[1]) != 0))
        snprintf(cand[n++], ADDR_BYTES, "%s", cfg->follow);
    trastenda_err code = TRASTENDA_E_CONNECT;
    for (uint32_t i = 0; i < n && code != TRASTENDA_OK; i++) {
        code = bootstrap_from(cfg, cand[i], err, errlen);
        if (code != TRASTENDA_OK) cfg->log(cfg->log_ctx, TRASTENDA_LOG_WARN, err);
    }
    return code;
}

/* ---- the role at start ---- */

const char *
repl_follow_at_start(const trastenda_server_config *cfg, char *buf, size_t cap)
{
    const char *dir = cfg->store.dir;
    bool given = cfg->follow != NULL && cfg->follow[0] != '\0';
    if (dir_file_exists(dir, "PROMOTED")) {
        if (given) {
            char msg[600];
            snprintf(msg, sizeof(msg),
                     "replication: this node was promoted (%s/PROMOTED): --follow %s no longer "
                     "applies (remove that file to follow again)",
                     dir, cfg->follow);
            cfg->log(cfg->log_ctx, TRASTENDA_LOG_WARN, msg);
        }
        return NULL;
    }
    if (given) return cfg->follow;
    if (leader_file_read(dir, buf, cap)) return buf;
    return NULL;
}

bool
repl_role_to_check(const trastenda_server_config *cfg)
{
    return dir_file_exists(cfg->store.dir, "PEERS") || dir_file_exists(cfg->store.dir, "FENCED");
}

/* Asks the node at addr who leads. false when it does not answer, or refuses (why). */
static bool
who_ask(const trastenda_server_config *cfg, const char *self, const char *addr, struct rmsg *m,
        char *why, size_t whylen)
{
    nng_socket sock;
    if (req_open(cfg, &sock, addr, 500) != 0) {
        snprintf(why, whylen, "cannot dial it");
        return false;
    }
    msgpack_packer pk;
    nng_msg *q = msg_new(&pk);
    msgpack_pack_map(&pk, 2 + has_token(cfg));
    pk_s(&pk, "t", "who");
    pk_s(&pk, "node", self);
    pk_token(&pk, cfg);
    nng_msg *rep = NULL;
    int rv = req_call(sock, q, &rep);
    bool ok = rv == 0 && rmsg_parse(m, nng_msg_body(rep), nng_msg_len(rep));
    if (rv != 0)
        snprintf(why, whylen, "%s", nng_strerror(rv));
    else if (!ok)
        snprintf(why, whylen, "a malformed reply");
    else if (strcmp(m->t, "who") != 0) {
        snprintf(why, whylen, "it answered %s %s", m->t, m->why);
        ok = false;
    }
    if (rep != NULL) nng_msg_free(rep);
    nng_close(sock);
    return ok;
}

/* The epoch in the FENCED file (0: no file). */
static uint64_t
fenced_epoch(const char *dir)
{
    char path[4200], line[ADDR_BYTES + 64];
    snprintf(path, sizeof(path), "%s/FENCED", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    uint64_t e = fgets(line, sizeof(line), f) != NULL ? strtoull(line, NULL, 10) : 0;
    fclose(f);
    return e > 0 ? e : 1; /* a file that does not say still fences */
}

/* One peer asked on its own thread: the peers are asked at once, so dead ones cost the start
 * one timeout, not one each. */
struct who_job {
    const trastenda_server_config *cfg;
    const char *self, *addr;
    struct rmsg m;
    char why[300];
    bool ok, threaded;
    pthread_t th;
};

static void *
who_main(void *arg)
{
    struct who_job *j = arg;
    j->ok = who_ask(j->cfg, j->self, j->addr, &j->m, j->why, sizeof(j->why));
    return NULL;
}

enum repl_role
repl_role_at_start(struct srv *s, char *follow, size_t cap)
{
    const trastenda_server_config *cfg = &s->cfg;
    const char *dir = cfg->store.dir;
    peer_pair peers[PEERS_MAX];
    uint32_t n = peers_file_read(dir, peers);
    uint64_t own = trastenda_store_epoch(s->store), best = 0;
    uint64_t top = fenced_epoch(dir); /* the highest epoch heard of */
    char top_from[ADDR_BYTES] = "";
    bool found = false, refused = false;
    follow[0] = '\0';
    struct who_job *jobs = calloc(n > 0 ? n : 1, sizeof(*jobs));
    if (jobs == NULL) abort();
    for (uint32_t i = 0; i < n; i++) {
        jobs[i] = (struct who_job){.cfg = cfg, .self = my_req_addr(s), .addr = peers[i][1]};
        if (strcmp(peers[i][1], my_repl_addr(s)) == 0) continue;
        jobs[i].threaded = pthread_create(&jobs[i].th, NULL, who_main, &jobs[i]) == 0;
        if (!jobs[i].threaded) who_main(&jobs[i]);
    }
    for (uint32_t i = 0; i < n; i++)
        if (jobs[i].threaded) pthread_join(jobs[i].th, NULL);
    for (uint32_t i = 0; i < n; i++) {
        if (strcmp(peers[i][1], my_repl_addr(s)) == 0) continue;
        const struct rmsg m = jobs[i].m;
        if (!jobs[i].ok) {
            /* Alive but not saying (a token it refuses, say): it may be the leader. */
            bool alive = strncmp(jobs[i].why, "it answered", 11) == 0;
            refused = refused || alive;
            srv_log(s, alive ? TRASTENDA_LOG_ERROR : TRASTENDA_LOG_INFO,
                    "replication: peer %s does not say who leads (%s)", peers[i][1], jobs[i].why);
            continue;
        }
        if (m.epoch > top) {
            top = m.epoch;
            snprintf(top_from, sizeof(top_from), "%s", peers[i][1]);
        }
        /* A leader of this node's epoch or a later one leads instead of it (one leader an
         * epoch: were it this node, that peer would follow it). A follower of a later epoch
         * names its leader (while that leader answers it). */
        const char *cand = NULL;
        if (strcmp(m.role, "leader") == 0 && m.epoch >= own)
            cand = peers[i][1];
        else if (m.epoch > own && m.leader_repl[0] != '\0' &&
                 strcmp(m.leader_repl, my_repl_addr(s)) != 0)
            cand = m.leader_repl;
        if (cand == NULL || (found && m.epoch <= best)) continue;
        found = true;
        best = m.epoch;
        snprintf(follow, cap, "%s", cand);
    }
    free(jobs);
    s->epoch_heard_at_start = top; /* a later promotion goes above it (repl_start) */
    if (found) {
        srv_log(s, TRASTENDA_LOG_WARN,
                "replication: %s leads at epoch %llu (this node's log ends at epoch %llu): "
                "starting as its follower; entries of this node that it lacks are discarded "
                "by a bootstrap (docs/REPLICATION.md)",
                follow, (unsigned long long)best, (unsigned long long)own);
        leader_file_write(dir, follow);
        return REPL_ROLE_FOLLOW;
    }
    if (top > own && top_from[0] != '\0') {
        /* A later epoch exists and nobody names its leader: not this node's to lead. */
        char note[ADDR_BYTES + 32];
        snprintf(note, sizeof(note), "%llu %s\n", (unsigned long long)top, top_from);
        if (!dir_file_write(dir, "FENCED", note))
            srv_log(s, TRASTENDA_LOG_ERROR, "cannot write %s/FENCED: %s", dir, strerror(errno));
        dir_file_remove(dir, "PROMOTED");
    }
    if (top > own || fenced_epoch(dir) != 0) {
        srv_log(s, TRASTENDA_LOG_ERROR,
                "replication: fenced (%s/FENCED: a node of epoch %llu exists, this node's log "
                "ends at epoch %llu) and no known peer names a leader: it takes no writes; start "
                "it with --follow, or promote it",
                dir, (unsigned long long)top, (unsigned long long)own);
        return REPL_ROLE_FENCED;
    }
    if (refused) {
        srv_log(s, TRASTENDA_LOG_ERROR,
                "replication: a peer answers but does not say who leads (above): this node takes "
                "no writes until a restart can tell (give it the peers' repl-token and TLS files)");
        return REPL_ROLE_FENCED;
    }
    return REPL_ROLE_LEAD;
}

/* ---- start, stop ---- */

trastenda_err
repl_start(struct srv *s, char *err, size_t errlen)
{
    struct repl *r = calloc(1, sizeof(*r));
    if (r == NULL) return TRASTENDA_E_NOMEM;
    r->s = s;
    pthread_mutex_init(&r->mu, NULL);
    if (s->cfg.follow != NULL && s->cfg.follow[0] != '\0') {
        /* The leader it followed last, else --follow; both are candidates when one fails. */
        snprintf(r->target, sizeof(r->target), "%s", s->cfg.follow);
        snprintf(r->peers[r->n_peers++][1], ADDR_BYTES, "%s", s->cfg.follow);
        char last[ADDR_BYTES];
        if (leader_file_read(s->cfg.store.dir, last, sizeof(last)) &&
            strcmp(last, s->cfg.follow) != 0) {
            snprintf(r->target, sizeof(r->target), "%s", last);
            snprintf(r->peers[r->n_peers++][1], ADDR_BYTES, "%s", last);
        }
        /* And the peers it knew, for when those fail: the leader's list replaces them. */
        peer_pair known[PEERS_MAX];
        uint32_t n_known = peers_file_read(s->cfg.store.dir, known);
        for (uint32_t i = 0; i < n_known && r->n_peers < PEERS_MAX; i++) {
            bool dup = false;
            for (uint32_t j = 0; j < r->n_peers && !dup; j++)
                dup = strcmp(r->peers[j][1], known[i][1]) == 0;
            if (!dup) memcpy(r->peers[r->n_peers++], known[i], sizeof(peer_pair));
        }
    }
    epoch_heard(r, s->epoch_heard_at_start);
    STORE(&s->repl, r); /* the log writer's hook reads it (repl_on_durable) */
    if (s->cfg.repl != NULL && s->cfg.repl[0] != '\0') {
        int rv = nng_rep0_open(&r->rep);
        r->rep_open = rv == 0; /* closed by repl_stop whatever fails next */
        if (rv == 0) rv = nng_socket_set_size(r->rep, NNG_OPT_RECVMAXSZ, 64 * 1024);
        if (rv == 0) {
            for (int i = 0; i < RCTXS; i++) {
                struct rctx *c = &r->ctxs[i];
                c->r = r;
                if (nng_aio_alloc(&c->aio, rctx_cb, c) != 0 || nng_ctx_open(&c->ctx, r->rep) != 0)
                    abort();
            }
        }
        trastenda_err lc = TRASTENDA_E_IO;
        nng_listener rl;
        if (rv == 0)
            lc = tls_listen_l(&s->cfg, r->rep, "replication", s->cfg.repl, &rl, err, errlen);
        if (rv == 0 && lc == TRASTENDA_OK)
            lwatch_add(&s->lw, r->rep, rl, s->cfg.repl, "replication", nng_req0_open, true);
        if (rv != 0 || lc != TRASTENDA_OK) {
            if (rv != 0)
                snprintf(err, errlen, "replication: cannot listen on %s: %s", s->cfg.repl,
                         nng_strerror(rv));
            return rv != 0 ? TRASTENDA_E_IO : lc; /* the caller stops and frees it */
        }
        for (int i = 0; i < RCTXS; i++)
            rctx_recv(&r->ctxs[i]);
    }
    if (pthread_create(&r->th, NULL, repl_main, r) != 0) abort();
    r->th_started = true;
    if (r->target[0] != '\0' && trastenda_store_is_follower(s->store)) {
        if (pthread_create(&r->fth, NULL, follower_main, r) != 0) abort();
        r->fth_started = true;
    }
    srv_log(s, TRASTENDA_LOG_INFO, "replication: %s on %s%s%s%s",
            trastenda_store_is_follower(s->store) ? "follower" : "leader",
            r->rep_open ? s->cfg.repl : "(no endpoint)", r->target[0] ? ", following " : "",
            r->target,
            s->cfg.store.sync_replicas > 0 ? ", writes wait for followers' acknowledgements" : "");
    return TRASTENDA_OK;
}

void
repl_stop(struct srv *s)
{
    struct repl *r = LOAD(&s->repl);
    if (r == NULL || r->stopped) return;
    r->stopped = true;
    STORE(&r->stop, 1);
    wake(r);
    follower_stop(r);
    if (r->th_started) pthread_join(r->th, NULL);
    if (r->rep_open) {
        for (int i = 0; i < RCTXS; i++)
            if (r->ctxs[i].aio != NULL) nng_aio_stop(r->ctxs[i].aio);
        for (int i = 0; i < RCTXS; i++) {
            nng_ctx_close(r->ctxs[i].ctx);
            if (r->ctxs[i].aio != NULL) nng_aio_free(r->ctxs[i].aio);
            if (r->ctxs[i].req != NULL) nng_msg_free(r->ctxs[i].req);
        }
        srv_close_sock(r->s, r->rep, "replication");
    }
}

void
repl_free(struct srv *s)
{
    struct repl *r = LOAD(&s->repl);
    if (r == NULL) return;
    repl_stop(s);
    STORE(&s->repl, NULL);
    snaps_expire(r, true);
    free(r->chunk);
    free(r->abuf);
    for (uint32_t i = 0; i < r->n_old; i++)
        free(r->old_leaders[i]);
    free(r->old_leaders);
    free((char *)r->leader_req);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* ---- status ---- */

/* Milliseconds since entry seq + 1 became durable here (the age of the oldest entry a follower
 * at seq lacks); 0 when it is not behind; -1 when that is too long ago to tell. */
/* Operations (commands) in the leader's entries after seq up to durable; -1 when too far back
 * to tell. */
static int64_t
lag_ops(struct repl *r, uint64_t seq, uint64_t durable)
{
    if (seq >= durable) return 0;
    if (LOAD(&r->dur[seq % DUR_RING].seq) != seq ||
        LOAD(&r->dur[durable % DUR_RING].seq) != durable)
        return -1;
    uint64_t a = __atomic_load_n(&r->dur[seq % DUR_RING].cmds, __ATOMIC_RELAXED);
    uint64_t b = __atomic_load_n(&r->dur[durable % DUR_RING].cmds, __ATOMIC_RELAXED);
    return b >= a ? (int64_t)(b - a) : -1;
}

static int64_t
lag_ms(struct repl *r, uint64_t seq, uint64_t durable)
{
    if (seq >= durable) return 0;
    uint64_t want = seq + 1;
    if (LOAD(&r->dur[want % DUR_RING].seq) != want) return -1;
    int64_t ns = __atomic_load_n(&r->dur[want % DUR_RING].ns, __ATOMIC_RELAXED);
    return (mono_ns() - ns) / 1000000;
}

void
repl_view_get(struct srv *s, struct repl_view *v)
{
    struct repl *r = LOAD(&s->repl);
    trastenda_store_stats st;
    trastenda_store_stats_get(s->store, &st);
    memset(v, 0, sizeof(*v));
    v->follower = st.follower || (s->cfg.not_leader != NULL && s->cfg.not_leader[0]);
    if (r == NULL) return;
    if (v->follower) {
        uint64_t ld = LOAD(&r->leader_durable);
        v->connected = LOAD(&r->connected) != 0;
        v->lag_ops = ld > st.durable_seq ? ld - st.durable_seq : 0;
    }
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < FOLLOWERS_MAX && v->n < sizeof(v->fol) / sizeof(v->fol[0]); i++) {
        const struct follower *f = &r->fol[i];
        if (!f->used) continue;
        uint64_t acked = __atomic_load_n(&f->acked, __ATOMIC_RELAXED);
        snprintf(v->fol[v->n].node, sizeof(v->fol[v->n].node), "%s", f->node);
        v->fol[v->n].acked = acked;
        v->fol[v->n].lag_ops = st.durable_seq > acked ? st.durable_seq - acked : 0;
        v->fol[v->n].lag_ms = lag_ms(r, acked, st.durable_seq);
        v->n++;
    }
    pthread_mutex_unlock(&r->mu);
}

void
repl_status_pack(struct srv *s, msgpack_packer *pk)
{
    struct repl *r = LOAD(&s->repl);
    trastenda_store_stats st;
    trastenda_store_stats_get(s->store, &st);
    bool follower = st.follower || (s->cfg.not_leader != NULL && s->cfg.not_leader[0]);
    if (r == NULL) {
        msgpack_pack_map(pk, 2);
        pk_s(pk, "role", follower ? "follower" : "leader");
        pk_u(pk, "epoch", st.epoch);
        return;
    }
    int64_t now = mono_ns();
    msgpack_pack_map(pk, follower ? 13 : 9);
    pk_s(pk, "role", follower ? "follower" : "leader");
    pk_u(pk, "epoch", st.epoch);
    pk_u(pk, "epoch_seen", LOAD(&r->epoch_seen) > st.epoch ? LOAD(&r->epoch_seen) : st.epoch);
    pk_u(pk, "applied", st.applied_seq);
    pk_u(pk, "durable", st.durable_seq);
    pk_s(pk, "endpoint", r->rep_open ? s->cfg.repl : "");
    if (follower) {
        uint64_t ld = LOAD(&r->leader_durable);
        pk_s(pk, "leader", repl_leader(s));
        pthread_mutex_lock(&r->mu);
        pk_s(pk, "leader_repl", r->target);
        pthread_mutex_unlock(&r->mu);
        pk_u(pk, "connected", LOAD(&r->connected));
        /* A leader a higher epoch reached (its FENCED file): it takes no writes until it follows
         * a leader or is promoted (docs/REPLICATION.md, "The role at start"). */
        pk_u(pk, "fenced", dir_file_exists(s->cfg.store.dir, "FENCED"));
        pk_u(pk, "lag_entries", ld > st.durable_seq ? ld - st.durable_seq : 0);
        pk_k(pk, "anti_entropy");
        msgpack_pack_map(pk, 2);
        pk_u(pk, "checks", LOAD(&r->f_dg_checks));
        pk_u(pk, "mismatches", LOAD(&r->f_dg_mismatches));
    } else {
        pk_u(pk, "sync_replicas", s->cfg.store.sync_replicas);
        pk_u(pk, "acked", st.acked_seq);
    }
    pk_k(pk, "followers");
    pthread_mutex_lock(&r->mu);
    uint32_t n = 0;
    for (int i = 0; i < FOLLOWERS_MAX; i++)
        if (r->fol[i].used) n++;
    msgpack_pack_array(pk, n);
    for (int i = 0; i < FOLLOWERS_MAX; i++) {
        struct follower *f = &r->fol[i];
        if (!f->used) continue;
        /* Read racily by design: counters written by the repl thread only. */
        uint64_t acked = __atomic_load_n(&f->acked, __ATOMIC_RELAXED);
        int64_t seen = __atomic_load_n(&f->seen_ns, __ATOMIC_RELAXED);
        msgpack_pack_map(pk, 9);
        pk_s(pk, "node", f->node);
        pk_s(pk, "repl", f->repl);
        pk_u(pk, "acked", acked);
        pk_u(pk, "lag_entries", st.durable_seq > acked ? st.durable_seq - acked : 0);
        pk_i(pk, "lag_ops", lag_ops(r, acked, st.durable_seq));
        pk_i(pk, "lag_ms", lag_ms(r, acked, st.durable_seq));
        pk_i(pk, "seen_ms_ago", (now - seen) / 1000000);
        pk_u(pk, "digest_checks", __atomic_load_n(&f->dg_checks, __ATOMIC_RELAXED));
        pk_u(pk, "digest_mismatches", __atomic_load_n(&f->dg_mismatches, __ATOMIC_RELAXED));
    }
    pthread_mutex_unlock(&r->mu);
}

/* ---- promotion ---- */

trastenda_err
repl_promote(struct srv *s, bool force, uint64_t *epoch, uint64_t *seq, char *msg, size_t msglen)
{
    struct repl *r = LOAD(&s->repl);
    if (r == NULL || !trastenda_store_is_follower(s->store)) {
        snprintf(msg, msglen, "this node is the leader already");
        return TRASTENDA_E_INVALID;
    }
    trastenda_store_stats st;
    trastenda_store_stats_get(s->store, &st);
    uint64_t top_epoch = LOAD(&r->epoch_seen) > st.epoch ? LOAD(&r->epoch_seen) : st.epoch;
    /* The other followers it knows of: is any of them ahead? */
    char peers[PEERS_MAX][ADDR_BYTES];
    uint32_t n = 0;
    pthread_mutex_lock(&r->mu);
    for (uint32_t i = 0; i < r->n_peers; i++)
        if (strcmp(r->peers[i][0], my_req_addr(s)) != 0)
            snprintf(peers[n++], ADDR_BYTES, "%s", r->peers[i][0]);
    pthread_mutex_unlock(&r->mu);
    const struct peer_access access = {s->cfg.repl_token, s->cfg.tls_ca, s->cfg.tls_cert,
                                       s->cfg.tls_key};
    for (uint32_t i = 0; i < n; i++) {
        uint64_t their = 0;
        char why[300];
        enum peer_answer a = peer_durable_seq(peers[i], &access, 500, &their, why, sizeof(why));
        if (a == PEER_SILENT) {
            srv_log(s, TRASTENDA_LOG_INFO, "promotion: %s does not answer (%s): left out", peers[i],
                    why);
            continue;
        }
        /* Alive but not saying where it is (a token it refuses, TLS): it may be ahead. */
        if (a == PEER_REFUSED && !force) {
            snprintf(msg, msglen,
                     "refused: follower %s answers but does not say how far it is (%s): give "
                     "this node its repl-token and TLS files, or force",
                     peers[i], why);
            return TRASTENDA_E_INVALID;
        }
        if (a == PEER_REFUSED) {
            srv_log(s, TRASTENDA_LOG_WARN, "promotion (forced): %s: %s: left out", peers[i], why);
            continue;
        }
        if (their > st.durable_seq && !force) {
            snprintf(
                msg, msglen,
                "refused: a follower has entry %llu, this node %llu (promote it, or force): %s",
                (unsigned long long)their, (unsigned long long)st.durable_seq, peers[i]);
            return TRASTENDA_E_INVALID;
        }
    }
    /* Stop following, then promote: the new epoch's first entry is durable before any write. */
    follower_stop(r);
    STORE(&r->fstop, 0);
    uint64_t e = top_epoch + 1;
    trastenda_err code = trastenda_store_promote(s->store, e, seq, msg, msglen);
    if (code != TRASTENDA_OK) {
        /* Not promoted: follow again. */
        if (pthread_create(&r->fth, NULL, follower_main, r) != 0) abort();
        r->fth_started = true;
        return code;
    }
    set_leader(r, my_req_addr(s));
    pthread_mutex_lock(&r->mu);
    r->target[0] = '\0';
    pthread_mutex_unlock(&r->mu);
    /* A restart leads (after asking its peers), whatever --follow its command line still has. */
    char note[64];
    snprintf(note, sizeof(note), "epoch %llu\n", (unsigned long long)e);
    if (!dir_file_write(s->cfg.store.dir, "PROMOTED", note))
        srv_log(s, TRASTENDA_LOG_ERROR,
                "cannot write %s/PROMOTED (%s): a restart with --follow would follow again",
                s->cfg.store.dir, strerror(errno));
    dir_file_remove(s->cfg.store.dir, "LEADER");
    dir_file_remove(s->cfg.store.dir, "FENCED");
    *epoch = e;
    srv_log(s, TRASTENDA_LOG_INFO, "replication: promoted: leader of epoch %llu from entry %llu",
            (unsigned long long)e, (unsigned long long)*seq);
    return TRASTENDA_OK;
}
