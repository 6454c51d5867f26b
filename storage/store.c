/*
 * storage/store.c - a durable node: submit queue -> engine thread -> log writer -> completions,
 * the materializer, and recovery (include/trastenda/storage.h, docs/STORAGE.md).
 *
 * Threads and what they own:
 *   engine thread  - the live engine; pops requests, applies them as one batch, copies the
 *                    batch's results and log entry into a free slot, hands the slot to the writer.
 *   log writer     - writes a full slot's entry as one put (fsync'ed in FSYNC mode), publishes
 *                    the durable sequence, runs the slot's completions in order, frees the slot.
 *   materializer   - its own engine, fed by log entries read back from the log database up to
 *                    the durable sequence; writes changed pages and the meta in one write to
 *                    the state's memtable, flushes it to a table file (durable, paced), then
 *                    cuts the log behind what it wrote and older than the retention window.
 *   prefault       - only while the live engine loads the state: faults its tables in ahead.
 * Two slots make the pipeline: while batch n is written, batch n+1 is applied; the batch after
 * that takes everything that queued up meanwhile, so batches grow with the load and a request
 * arriving at an idle node is applied at once. Hand-offs are futex waits on the slot states.
 *
 * Failure: a failed log write stops the node (fail-stop). The batch's requests complete with
 * E_IO (not acknowledged), so does everything after it, and the write is never retried: after a
 * failed fsync the kernel may have dropped the dirty pages, so only a restart (which recovers
 * from what is really on disk) is safe.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive.h"
#include "db.h"
#include "ledger.h"
#include "queue.h"
#include "sys.h"
#include "trastenda/log.h"
#include "trastenda/storage.h"

#define SLOTS 2
/* Rounds a waiting thread spins (a pause each) before it sleeps: with spare cores, 2000 (about
 * 100 us) saves a wake-up; on two cores the spinner takes the CPU from the threads it waits for
 * (the network threads, the client), so it barely spins. Set once at open. */
#define SPIN_ROUNDS_MANY_CORES 2000
#define SPIN_ROUNDS_FEW_CORES  32
#define IDLE_WAIT_MS           1000
#define TRUNC_RING             64
/* A state write's batch buffer up to this size is kept for the next one (page faults otherwise). */
#define STATE_WB_KEEP_BYTES (64u << 20)
#define PATH_BYTES          4096
#define INTERVAL_MS_MAX     3600000u /* the longest state-write interval, either bound: an hour */
#define ACK_RING            1024     /* batches waiting for followers' acknowledgements */

enum {
    SLOT_FREE = 0,
    SLOT_FULL = 1
};

/* One log entry of a slot: a batch applied here has one, a follower's slot the leader's. */
struct slot_ent {
    uint64_t seq;
    size_t off, len; /* in the slot's entry buffer */
};

struct slot {
    uint32_t state; /* futex word: FREE (engine's) or FULL (writer's) */
    uint64_t seq;   /* the last entry's */
    int64_t time_ms;
    uint64_t epoch;
    uint8_t *entry; /* the entries, back to back */
    size_t len, cap;
    struct slot_ent *ents;
    uint32_t nent, ents_cap;
    bool replicated;                /* a follower's entries: no acknowledgement wait */
    trastenda_request *head, *tail; /* the batch's requests, in order */
    uint32_t ncmds;
};

/* A durable batch whose requests wait for followers' acknowledgements. */
struct ack_wait {
    uint64_t seq;
    int64_t deadline_ns;
    trastenda_request *head;
};

struct trastenda_store {
    trastenda_store_config cfg;
    char dir[PATH_BYTES];
    struct db log, state;
    trastenda_engine *eng;

    struct sq q;
    struct sq_cell *cells;
    uint32_t submitting;        /* atomic: submitters between their closing check and push */
    uint32_t engine_sleeping;   /* atomic */
    uint32_t engine_wake;       /* futex word */
    trastenda_request *pending; /* popped, waits for the next batch (engine thread) */

    struct slot slots[SLOTS];
    uint64_t eng_slot;   /* slots filled (engine thread); the writer counts its own */
    trastenda_cmd *cmds; /* the batch being applied (engine thread) */
    trastenda_result *results;

    uint64_t applied_seq, durable_seq, materialized_seq, log_first_seq; /* atomic */
    uint64_t open_seq;    /* the live tables' sequence when the open recovered them */
    uint64_t log_keep;    /* atomic: the oldest entry a follower still needs (0: none) */
    uint64_t keep_told;   /* materializer: the last kept entry it logged cutting past */
    uint32_t mat_wake;    /* futex word */
    uint32_t spin_rounds; /* SPIN_ROUNDS_*, by the cores online */
    uint32_t closing, failed, engine_done, writer_done; /* atomic */

    /* replication (atomic) */
    uint32_t follower;
    uint64_t promote_req;  /* an epoch to promote to (0: none) */
    uint64_t promoted_seq; /* the promotion's batch, once applied */
    uint32_t promote_done; /* futex word: bumped when a promotion was handled */
    trastenda_err promote_err;
    uint64_t durable_epoch;
    int64_t durable_time_ms;
    uint64_t ack_seq;
    uint32_t ack_wake; /* futex word: acknowledgements, new waits, space */
    struct ack_wait ack_ring[ACK_RING];
    uint64_t ack_head, ack_tail; /* written by the writer, by the acker */
    pthread_t ack_th;
    bool ack_started;
    /* Anti-entropy: the materializer's digests, newest last (written by it, read under dg_lock). */
    pthread_mutex_t dg_lock;
    trastenda_store_digest dg[TRASTENDA_STORE_DIGESTS];
    uint32_t dg_n;

    pthread_t engine_th, writer_th, mat_th;
    bool threads_started;
    /* Held while the log is cut and while a checkpoint copies the databases, so that a
     * checkpoint's log always continues its state. Never on the request path. */
    pthread_mutex_t trunc_lock;

    /* materializer (its thread) */
    trastenda_engine *mat;
    struct ledger_acc lacc;  /* movements since the last state write */
    struct archive_acc aacc; /* holds and orders removed since the last state write */
    uint64_t flush_seq;      /* atomic: a ledger query wants the state written up to here */
    uint32_t mat_progress;   /* futex word: bumped after each state write */
    int64_t ledger_swept_ms; /* last ledger retention sweep */
    int64_t last_state_write_ns;
    rocksdb_writebatch_t *state_wb; /* kept between state writes: its buffer stays faulted in */
    struct {
        uint64_t seq;
        int64_t time_ms;
        uint64_t bytes;  /* mat_bytes when it was written */
    } trunc[TRUNC_RING]; /* materialized points, oldest first, for cutting the log */
    uint32_t trunc_n;
    uint64_t mat_bytes;        /* log bytes the materializer applied since open */
    uint64_t last_state_bytes; /* atomic: the last state write's size (its write batch) */

    /* stats (atomic) */
    uint64_t st_batches, st_commands, st_requests, st_queries, st_busy, st_log_bytes;
    uint64_t st_batch_max, st_state_writes, st_pages_written, st_pages_deleted;
    uint64_t st_recovered, st_ledger_chunks, st_ledger_cut, st_archived;
    uint64_t st_not_replicated, st_appended;
    uint64_t st_durable_cmds; /* commands in durable batches since open (writer) */
    uint64_t st_batch_hist[TRASTENDA_BATCH_HIST_BUCKETS];
    uint64_t st_write_hist[TRASTENDA_WRITE_HIST_BUCKETS], st_write_ns; /* writer */
    double recovery_ms;
    bool mat_repack;   /* materializer: its next state write rewrites the packed tables whole */
    bool mat_relayout; /* materializer: the state it loaded has pages of another size: all whole */
};

#define LOAD(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define ADD(p, v)   __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)

static void __attribute__((format(printf, 3, 4)))
slog(trastenda_store *st, trastenda_log_level level, const char *fmt, ...)
{
    if (level > st->cfg.log_level) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    st->cfg.log(st->cfg.log_ctx, level, msg);
}

void
trastenda_store_config_default(trastenda_store_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->dir = "./var/trastenda";
    trastenda_engine_config_default(&cfg->engine);
    cfg->durability = TRASTENDA_DURABILITY_FSYNC;
    cfg->queue_max = 1u << 16;
    cfg->materialize_interval_ms = 1000;
    cfg->log_retention_ms = 3600 * 1000;
    cfg->log_follower_bytes_max = 1ull << 30;
    cfg->digest_interval_ms = 10000;
    cfg->log_level = TRASTENDA_LOG_INFO;
}

static int64_t
clock_now(trastenda_store *st)
{
    return st->cfg.clock_ms != NULL ? st->cfg.clock_ms(st->cfg.clock_ctx) : sys_realtime_ms();
}

/* ---- loading: the materialized state, then the log after it ---- */

/* While the state loads: its tables' memory faulted in on another core. */
struct prefault {
    trastenda_engine *e;
    uint64_t records[TRASTENDA_IMAGE_TABLES];
};

static void *
prefault_main(void *arg)
{
    (void)pthread_setname_np(pthread_self(), "ts-prefault"); /* top -H, perf */
    struct prefault *pf = arg;
    for (uint8_t i = 0; i < TRASTENDA_IMAGE_TABLES; i++) /* in the order the load fills them */
        if (pf->records[i] > 0)
            (void)trastenda_engine_load_prefault(pf->e, trastenda_image_tables[i], pf->records[i]);
    return NULL;
}

/* Tells e about how many records of each table the state holds: the slots up to its last page
 * (trastenda_engine_load_expect), also kept in pf. */
static void
state_expect(rocksdb_iterator_t *it, trastenda_engine *e, uint32_t page_slots, struct prefault *pf)
{
    memset(pf, 0, sizeof(*pf));
    pf->e = e;
    for (uint8_t i = 0; i < TRASTENDA_IMAGE_TABLES; i++) {
        uint8_t k[DB_PAGE_KEY_BYTES];
        db_page_key(k, i, UINT32_MAX);
        rocksdb_iter_seek_for_prev(it, (const char *)k, sizeof(k));
        if (!rocksdb_iter_valid(it)) continue;
        size_t klen;
        const uint8_t *last = (const uint8_t *)rocksdb_iter_key(it, &klen);
        if (klen != DB_PAGE_KEY_BYTES || last[0] != 'P' || last[1] != i) continue;
        uint64_t pages = (uint64_t)db_page_key_page(last) + 1;
        pf->records[i] = pages * page_slots;
        (void)trastenda_engine_load_expect(e, trastenda_image_tables[i], pf->records[i]);
    }
}

/* Loads the state database's pages into e (fresh). *m is the sequence they reflect (0: none).
 * With prefault, a second thread faults the tables' memory in meanwhile: for the live engine,
 * while the other core has nothing else to do (not for the materializer's copy, loaded while
 * the node already serves). */
static trastenda_err
state_load(trastenda_store *st, trastenda_engine *e, bool prefault, uint64_t *m, uint64_t *records,
           uint32_t *page_slots, char *err, size_t errlen)
{
    *m = 0;
    *records = 0;
    *page_slots = trastenda_engine_page_slots(e);
    char *rerr = NULL;
    size_t vlen = 0;
    char *meta = rocksdb_get(st->state.db, st->state.ro, "M", 1, &vlen, &rerr);
    if (rerr != NULL) return db_error(rerr, "state: reading the meta", err, errlen);
    if (meta == NULL) return TRASTENDA_OK; /* nothing materialized yet */
    if (vlen != DB_META_BYTES && vlen != DB_META_BYTES_V1) {
        rocksdb_free(meta);
        snprintf(err, errlen, "state: the meta record is %zu bytes, not %d or %d", vlen,
                 DB_META_BYTES_V1, DB_META_BYTES);
        return TRASTENDA_E_CORRUPT;
    }
    /* Without its page size: pages of 256 slots (meta_encode). */
    *page_slots = DB_META_PAGE_SLOTS_V1;
    if (vlen == DB_META_BYTES) {
        const uint8_t *ps = (const uint8_t *)meta + DB_META_BYTES_V1;
        *page_slots = ps[0] | ps[1] << 8 | ps[2] << 16 | (uint32_t)ps[3] << 24;
        if (!trastenda_page_slots_valid(*page_slots)) {
            rocksdb_free(meta);
            snprintf(err, errlen, "state: the meta record names pages of %u slots", *page_slots);
            return TRASTENDA_E_CORRUPT;
        }
    }
    uint64_t v[3];
    for (int i = 0; i < 3; i++) {
        v[i] = 0;
        for (int b = 7; b >= 0; b--)
            v[i] = v[i] << 8 | (uint8_t)meta[8 * i + b];
    }
    rocksdb_free(meta);
    rocksdb_iterator_t *it = rocksdb_create_iterator(st->state.db, st->state.ro);
    struct prefault pf;
    state_expect(it, e, *page_slots, &pf);
    pthread_t pf_thread;
    /* Without the thread (it cannot start), the load faults its memory in itself. */
    bool pf_started = prefault && pthread_create(&pf_thread, NULL, prefault_main, &pf) == 0;
    trastenda_err code = TRASTENDA_OK;
    uint64_t pages = 0;
    int64_t t0 = sys_mono_ns(), last_report = t0;
    for (rocksdb_iter_seek(it, "P", 1); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, plen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen == 0 || k[0] != 'P') break;
        const uint8_t *page = (const uint8_t *)rocksdb_iter_value(it, &plen);
        if (klen != DB_PAGE_KEY_BYTES || (uint8_t)k[1] >= TRASTENDA_IMAGE_TABLES) {
            snprintf(err, errlen, "state: a malformed page key");
            code = TRASTENDA_E_CORRUPT;
            break;
        }
        uint8_t table = trastenda_image_tables[(uint8_t)k[1]];
        code = trastenda_engine_load_page(e, table, page, plen);
        if (code != TRASTENDA_OK) {
            snprintf(err, errlen, "state: page %u of table %u does not load: %s",
                     (unsigned)db_page_key_page((const uint8_t *)k), (unsigned)table,
                     trastenda_err_message(code));
            code = TRASTENDA_E_CORRUPT;
            break;
        }
        if (plen >= 4)
            *records +=
                (uint32_t)(page[0] | page[1] << 8 | page[2] << 16 | (uint32_t)page[3] << 24);
        pages++;
        int64_t now = sys_mono_ns();
        if (now - last_report > 2000000000) {
            last_report = now;
            slog(st, TRASTENDA_LOG_INFO, "recovery: loading the state: %llu pages, %llu records",
                 (unsigned long long)pages, (unsigned long long)*records);
        }
    }
    if (code == TRASTENDA_OK) {
        rocksdb_iter_get_error(it, &rerr);
        if (rerr != NULL) code = db_error(rerr, "state: reading pages", err, errlen);
    }
    rocksdb_iter_destroy(it);
    if (pf_started) pthread_join(pf_thread, NULL);
    if (code != TRASTENDA_OK) return code;
    code = trastenda_engine_load_finish(e, v[0], (int64_t)v[1], v[2]);
    if (code != TRASTENDA_OK) {
        snprintf(err, errlen, "state: bad meta (seq %llu, time %lld)", (unsigned long long)v[0],
                 (long long)v[1]);
        return TRASTENDA_E_CORRUPT;
    }
    *m = v[0];
    (void)t0;
    return TRASTENDA_OK;
}

/*
 * After the materializer applied an entry whose batch time t1 follows t0 (the time before it): when
 * the two fall in different digest intervals, the digest of the materializer's copy, which is fed
 * by the log alone. Every node takes it at the same entries (the rule reads only the log's times),
 * so a leader and its followers compare copies at the same sequence without asking each other,
 * and no engine thread pays for it: walking every table takes 100-250 ms at a million records.
 */
static void
digest_check(trastenda_store *st, const trastenda_engine *m, int64_t t0, int64_t t1)
{
    int64_t iv = st->cfg.digest_interval_ms;
    if (iv <= 0 || t0 / iv == t1 / iv) return;
    trastenda_store_digest d = {trastenda_engine_seq(m), trastenda_engine_digest(m)};
    pthread_mutex_lock(&st->dg_lock);
    if (st->dg_n == TRASTENDA_STORE_DIGESTS) {
        memmove(&st->dg[0], &st->dg[1], (TRASTENDA_STORE_DIGESTS - 1) * sizeof(st->dg[0]));
        st->dg_n--;
    }
    st->dg[st->dg_n++] = d;
    pthread_mutex_unlock(&st->dg_lock);
}

/*
 * One log entry into the materializer's copy e: the archive takes the records the entry removes
 * (before they go), the entry applies, the ledger index takes its movements, and with `digests` a
 * digest is taken where the log's times say; `checked`: this process checked the entry already
 * (trastenda_engine_apply_entry_checked). OK, the apply's error, or E_NOMEM with *what naming
 * what ran out of memory.
 */
static trastenda_err
mat_apply(trastenda_store *st, trastenda_engine *e, const uint8_t *v, size_t vlen, bool digests,
          bool checked, const char **what)
{
    *what = NULL;
    if (!archive_acc_entry(&st->aacc, e, v, vlen)) {
        *what = "the archive";
        return TRASTENDA_E_NOMEM;
    }
    int64_t t0 = trastenda_engine_time_ms(e);
    trastenda_err code = checked ? trastenda_engine_apply_entry_checked(e, v, vlen)
                                 : trastenda_engine_apply_entry(e, v, vlen);
    if (code != TRASTENDA_OK) return code;
    st->mat_bytes += vlen;
    if (!ledger_acc_entry(&st->lacc, v, vlen)) {
        *what = "the ledger index";
        return TRASTENDA_E_NOMEM;
    }
    if (digests) digest_check(st, e, t0, trastenda_engine_time_ms(e));
    return TRASTENDA_OK;
}

/*
 * Applies the log entries after e's sequence, up to `upto` (UINT64_MAX: all). The first one must
 * follow e's sequence: a log cut beyond the state is a gap, refused.
 */
static trastenda_err
log_replay(trastenda_store *st, trastenda_engine *e, bool materialize, uint64_t upto,
           uint64_t *applied, char *err, size_t errlen)
{
    *applied = 0;
    int64_t last_report = sys_mono_ns();
    uint64_t from = trastenda_engine_seq(e) + 1;
    uint8_t key[DB_LOG_KEY_BYTES];
    db_log_key(key, from);
    rocksdb_iterator_t *it = rocksdb_create_iterator(st->log.db, st->log.ro);
    trastenda_err code = TRASTENDA_OK;
    /* Read from `from` on: each entry must be the next (a gap is refused below). Entries before
     * it may still be in the log (cut lags the state): they are not read again. */
    for (rocksdb_iter_seek(it, (const char *)key, sizeof(key)); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        uint64_t seq = db_log_key_seq(k, klen);
        if (seq == 0) break; /* past the log keys */
        if (seq > upto) break;
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
        if (seq != trastenda_engine_seq(e) + 1) {
            snprintf(err, errlen,
                     "log: entry %llu follows %llu: entries are missing (the log was cut beyond "
                     "the materialized state, or damaged)",
                     (unsigned long long)seq, (unsigned long long)trastenda_engine_seq(e));
            code = TRASTENDA_E_CORRUPT;
            break;
        }
        if (materialize) {
            /* The materializer's replay also feeds its archive and ledger index: entries after M
             * were never indexed if the last run ended before its next state write. It takes the
             * digests of entries written since this node opened, as if it had been running (not
             * those of the recovery before). */
            const char *what;
            code = mat_apply(st, e, v, vlen, seq > st->open_seq, false, &what);
            if (what != NULL) {
                snprintf(err, errlen, "materializer: out of memory for %s", what);
                break;
            }
        } else {
            code = trastenda_engine_apply_entry(e, v, vlen);
        }
        if (code != TRASTENDA_OK) {
            snprintf(err, errlen, "log: entry %llu does not apply: %s", (unsigned long long)seq,
                     trastenda_err_message(code));
            code = TRASTENDA_E_CORRUPT;
            break;
        }
        (*applied)++;
        /* The clock every 256 entries; the materializer's replay is quiet. */
        int64_t now = !materialize && (*applied & 255) == 0 ? sys_mono_ns() : 0;
        if (now - last_report > 2000000000) {
            last_report = now;
            slog(st, TRASTENDA_LOG_INFO, "recovery: replaying the log: at entry %llu, %llu applied",
                 (unsigned long long)seq, (unsigned long long)*applied);
        }
    }
    if (code == TRASTENDA_OK) {
        char *rerr = NULL;
        rocksdb_iter_get_error(it, &rerr);
        if (rerr != NULL) code = db_error(rerr, "log: reading entries", err, errlen);
    }
    rocksdb_iter_destroy(it);
    return code;
}

/* The oldest log entry, 0 when the log is empty. */
static uint64_t
log_first(trastenda_store *st)
{
    uint8_t key[DB_LOG_KEY_BYTES];
    db_log_key(key, 0);
    rocksdb_iterator_t *it = rocksdb_create_iterator(st->log.db, st->log.ro);
    rocksdb_iter_seek(it, (const char *)key, sizeof(key));
    uint64_t seq = 0;
    if (rocksdb_iter_valid(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        seq = db_log_key_seq(k, klen);
    }
    rocksdb_iter_destroy(it);
    return seq;
}

/* ---- the capacities a data directory was written with ---- */

#define CAPS 8

static void
caps_of(const trastenda_engine_config *c, uint32_t v[CAPS])
{
    uint32_t x[CAPS] = {c->locations_max, c->skus_max, c->stock_max, c->holds_max,
                        c->orders_max,    c->pos_max,  c->keys_max,  c->lines_max};
    memcpy(v, x, sizeof(x));
}

static const char *const CAP_NAMES[CAPS] = {"locations_max", "skus_max", "stock_max", "holds_max",
                                            "orders_max",    "pos_max",  "keys_max",  "lines_max"};

/* Reads the 'C' record: false when absent. */
static bool
caps_read(struct db *state, uint32_t v[CAPS])
{
    char *rerr = NULL;
    size_t len = 0;
    char *val = rocksdb_get(state->db, state->ro, "C", 1, &len, &rerr);
    rocksdb_free(rerr);
    bool ok = val != NULL && len == 4 * CAPS;
    for (int i = 0; ok && i < CAPS; i++) {
        const uint8_t *p = (const uint8_t *)val + 4 * i;
        v[i] = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    }
    rocksdb_free(val);
    return ok;
}

/*
 * A data directory's tables must fit in this node's: applying entries into smaller tables would
 * stop the process half-way (fail-stop), so a configuration below the recorded one is refused at
 * open with the setting to raise. The configuration in use is then recorded.
 */
static trastenda_err
caps_check_and_record(trastenda_store *st, char *err, size_t errlen)
{
    uint32_t want[CAPS], had[CAPS];
    caps_of(&st->cfg.engine, want);
    if (caps_read(&st->state, had))
        for (int i = 0; i < CAPS; i++)
            if (want[i] < had[i]) {
                snprintf(err, errlen,
                         "config: engine %s is %u but %s was written with %u: raise it to at "
                         "least %u",
                         CAP_NAMES[i], want[i], st->dir, had[i], had[i]);
                return TRASTENDA_E_INVALID;
            }
    uint8_t rec[4 * CAPS];
    for (int i = 0; i < CAPS; i++)
        for (int b = 0; b < 4; b++)
            rec[4 * i + b] = (uint8_t)(want[i] >> (8 * b));
    char *rerr = NULL;
    rocksdb_put(st->state.db, st->state.wsync, "C", 1, (const char *)rec, sizeof(rec), &rerr);
    if (rerr != NULL) return db_error(rerr, "state: recording the capacities", err, errlen);
    return TRASTENDA_OK;
}

/* ---- the engine thread ---- */

static void
wake_engine(trastenda_store *st)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&st->engine_sleeping, __ATOMIC_SEQ_CST)) {
        __atomic_store_n(&st->engine_sleeping, 0, __ATOMIC_SEQ_CST);
        ADD(&st->engine_wake, 1);
        sys_futex_wake(&st->engine_wake);
    }
}

static trastenda_request *
next_request(trastenda_store *st)
{
    if (st->pending != NULL) {
        trastenda_request *r = st->pending;
        st->pending = NULL;
        return r;
    }
    return sq_pop(&st->q);
}

enum wait_result {
    W_WORK,
    W_TICK,
    W_PROMOTE,
    W_STOP
};

/* Waits for a request, for the next maintenance time, or for the end. */
static enum wait_result
engine_wait(trastenda_store *st)
{
    for (uint32_t spin = 0;; spin++) {
        if (LOAD(&st->promote_req) != 0) return W_PROMOTE;
        if (st->pending != NULL || sq_depth(&st->q) > 0) return W_WORK;
        if (LOAD(&st->failed)) return W_STOP;
        if (__atomic_load_n(&st->closing, __ATOMIC_SEQ_CST) &&
            __atomic_load_n(&st->submitting, __ATOMIC_SEQ_CST) == 0 && sq_depth(&st->q) == 0)
            return W_STOP;
        /* A follower does no maintenance of its own: its expiries come in the leader's log. */
        int64_t due = LOAD(&st->follower) ? INT64_MAX : trastenda_engine_next_due_ms(st->eng);
        int64_t now = clock_now(st);
        if (due <= now) return W_TICK;
        if (spin < st->spin_rounds) {
            sys_pause();
            continue;
        }
        uint32_t w = LOAD(&st->engine_wake);
        __atomic_store_n(&st->engine_sleeping, 1, __ATOMIC_SEQ_CST);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (sq_depth(&st->q) > 0 || LOAD(&st->closing) || LOAD(&st->failed) ||
            LOAD(&st->promote_req) != 0) {
            __atomic_store_n(&st->engine_sleeping, 0, __ATOMIC_SEQ_CST);
            continue;
        }
        int64_t wait = due == INT64_MAX ? IDLE_WAIT_MS : due - now;
        if (wait > IDLE_WAIT_MS) wait = IDLE_WAIT_MS;
        sys_futex_wait(&st->engine_wake, w, wait);
        __atomic_store_n(&st->engine_sleeping, 0, __ATOMIC_SEQ_CST);
        spin = st->spin_rounds; /* after a sleep, check and sleep again without spinning */
    }
}

static bool
slot_wait_free(trastenda_store *st, struct slot *s)
{
    for (uint32_t spin = 0; LOAD(&s->state) != SLOT_FREE; spin++) {
        if (LOAD(&st->failed)) return false;
        if (spin < st->spin_rounds)
            sys_pause();
        else
            sys_futex_wait(&s->state, SLOT_FULL, 100);
    }
    return true;
}

static void
complete_all(trastenda_request *r, trastenda_err status)
{
    while (r != NULL) {
        trastenda_request *next = r->next_;
        r->done(r, status);
        r = next;
    }
}

/* Fails every request still queued (after a storage failure, or at close). */
static void
drain_queue(trastenda_store *st, trastenda_err status)
{
    trastenda_request *r;
    while ((r = next_request(st)) != NULL)
        r->done(r, status);
}

static void
copy_results(trastenda_store *st, struct slot *s)
{
    uint32_t at = 0;
    for (trastenda_request *r = s->head; r != NULL; r = r->next_) {
        uint32_t used = 0;
        for (uint32_t i = 0; i < r->n; i++) {
            trastenda_result *dst = &r->results[i];
            *dst = st->results[at + i];
            uint32_t n = dst->alloc_count;
            if (r->allocs == NULL || used >= r->allocs_max) n = 0;
            if (n > r->allocs_max - used) n = r->allocs_max - used;
            if (n > 0) memcpy(&r->allocs[used], dst->allocs, n * sizeof(trastenda_alloc));
            dst->allocs = n > 0 ? &r->allocs[used] : NULL;
            dst->alloc_count = n;
            used += n;
        }
        at += r->n;
        r->seq = s->seq;
        r->time_ms = s->time_ms;
    }
}

/* The batch size histogram's bucket of n commands (trastenda_store_stats.batch_cmds_hist). */
static int
batch_bucket(uint32_t n)
{
    int b = 0;
    while (b < TRASTENDA_BATCH_HIST_BUCKETS - 1 && n > (1u << b)) /* bound: the buckets */
        b++;
    return b;
}

/* A query alone, between batches (engine thread). */
static void
run_query(trastenda_store *st, trastenda_request *r)
{
    r->query(r, st->eng);
    r->seq = trastenda_engine_seq(st->eng);
    r->time_ms = trastenda_engine_time_ms(st->eng);
    ADD(&st->st_queries, 1);
    r->done(r, TRASTENDA_OK);
}

/* Room for len more bytes of entries in a slot (engine thread; aborts when out of memory). */
static void
slot_reserve(struct slot *s, size_t len)
{
    if (s->len + len > s->cap) {
        size_t cap = s->cap == 0 ? 4096 : s->cap;
        while (cap < s->len + len)
            cap *= 2;
        uint8_t *p = realloc(s->entry, cap);
        if (p == NULL) abort();
        s->entry = p;
        s->cap = cap;
    }
    if (s->nent == s->ents_cap) {
        uint32_t cap = s->ents_cap == 0 ? 8 : s->ents_cap * 2;
        struct slot_ent *p = realloc(s->ents, cap * sizeof(*p));
        if (p == NULL) abort();
        s->ents = p;
        s->ents_cap = cap;
    }
}

static void
slot_add(struct slot *s, uint64_t seq, const uint8_t *entry, size_t len)
{
    slot_reserve(s, len);
    memcpy(s->entry + s->len, entry, len);
    s->ents[s->nent++] = (struct slot_ent){.seq = seq, .off = s->len, .len = len};
    s->len += len;
}

/* A follower's request: the leader's entries, applied as they are, into slot s (engine thread). */
static void
apply_entries(trastenda_store *st, struct slot *s, trastenda_request *r)
{
    r->entries_applied = 0;
    r->entry_err = TRASTENDA_OK;
    r->entry_version = 0;
    size_t at = 0;
    for (uint32_t i = 0; i < r->n_entries; i++) {
        if (r->entries_len - at < 4) {
            r->entry_err = TRASTENDA_E_CORRUPT;
            break;
        }
        uint32_t len = sys_get_u32(r->entries + at);
        at += 4;
        if (len > r->entries_len - at) {
            r->entry_err = TRASTENDA_E_CORRUPT;
            break;
        }
        const uint8_t *entry = r->entries + at;
        at += len;
        trastenda_entry_header hdr;
        trastenda_entry_iter it;
        trastenda_err err = trastenda_entry_open(entry, len, &hdr, &it);
        /* Only the next entry: the one already applied again is not written twice. */
        if (err == TRASTENDA_OK && hdr.seq != trastenda_engine_seq(st->eng) + 1)
            err = TRASTENDA_E_SEQUENCE;
        if (err == TRASTENDA_OK) err = trastenda_engine_apply_entry(st->eng, entry, len);
        if (err != TRASTENDA_OK) {
            r->entry_err = err;
            /* A leader of another build may write another log format: say which. */
            if (len >= 6 && sys_get_u32(entry) == TRASTENDA_LOG_MAGIC)
                r->entry_version = (uint16_t)(entry[4] | entry[5] << 8);
            break;
        }
        slot_add(s, hdr.seq, entry, len);
        s->seq = hdr.seq;
        s->time_ms = hdr.time_ms;
        s->epoch = hdr.epoch;
        r->entries_applied++;
    }
    r->seq = trastenda_engine_seq(st->eng);
    r->time_ms = trastenda_engine_time_ms(st->eng);
    ADD(&st->st_appended, r->entries_applied);
}

/* A promotion asked for: the new epoch, from the next batch on (engine thread). */
static bool
promote_begin(trastenda_store *st)
{
    uint64_t epoch = LOAD(&st->promote_req);
    trastenda_err err = TRASTENDA_OK;
    if (!LOAD(&st->follower))
        err = TRASTENDA_E_INVALID;
    else
        err = trastenda_engine_set_epoch(st->eng, epoch);
    if (err != TRASTENDA_OK) {
        STORE(&st->promote_err, err);
        STORE(&st->promote_req, 0);
        ADD(&st->promote_done, 1);
        sys_futex_wake(&st->promote_done);
        return false;
    }
    STORE(&st->follower, 0);
    return true;
}

static void *
engine_main(void *arg)
{
    (void)pthread_setname_np(pthread_self(), "ts-engine"); /* top -H, perf */
    trastenda_store *st = arg;
    for (;;) {
        enum wait_result w = engine_wait(st);
        if (w == W_STOP) break;
        bool promoting = w == W_PROMOTE && promote_begin(st);
        if (w == W_PROMOTE && !promoting) continue;
        /* Queries at the head of the queue run at once: a read waits for no slot, so never for
         * the durability of other requests' writes. */
        trastenda_request *head = NULL;
        while (!promoting && (head = next_request(st)) != NULL && head->query != NULL &&
               head->n == 0 && head->entries == NULL)
            run_query(st, head);
        if (!promoting && head != NULL) st->pending = head;
        if (!promoting && head == NULL && w != W_TICK) continue;
        struct slot *s = &st->slots[st->eng_slot % SLOTS];
        if (!slot_wait_free(st, s)) break;
        s->head = s->tail = NULL;
        s->ncmds = 0;
        s->nent = 0;
        s->len = 0;
        s->replicated = false;
        uint32_t max = st->cfg.engine.batch_cmds_max;
        trastenda_request *r;
        /* A promotion's batch is empty: the first entry of the new epoch. */
        while (!promoting && (r = next_request(st)) != NULL) {
            if (r->entries != NULL) { /* a batch of its own */
                if (s->ncmds > 0) {
                    st->pending = r;
                    break;
                }
                apply_entries(st, s, r);
                r->next_ = NULL;
                s->head = s->tail = r;
                s->replicated = true;
                ADD(&st->st_requests, 1);
                break;
            }
            if (r->query != NULL && r->n == 0) {
                if (s->ncmds > 0) { /* after the commands before it */
                    st->pending = r;
                    break;
                }
                run_query(st, r);
                continue;
            }
            if (s->ncmds + r->n > max) {
                st->pending = r;
                break;
            }
            memcpy(&st->cmds[s->ncmds], r->cmds, r->n * sizeof(trastenda_cmd));
            s->ncmds += r->n;
            r->next_ = NULL;
            if (s->tail != NULL)
                s->tail->next_ = r;
            else
                s->head = r;
            s->tail = r;
            ADD(&st->st_requests, 1);
        }
        if (s->replicated) {
            if (s->nent == 0) { /* nothing applied: nothing to write */
                s->head->done(s->head, TRASTENDA_OK);
                continue;
            }
            STORE(&st->applied_seq, s->seq);
            uint64_t seq = s->seq;
            st->eng_slot++;
            STORE(&s->state, SLOT_FULL);
            sys_futex_wake(&s->state);
            /* After the hand-off: the reads it wakes do not delay the log write. */
            if (st->cfg.on_applied != NULL) st->cfg.on_applied(st->cfg.on_durable_ctx, seq);
            continue;
        }
        uint32_t n = s->ncmds;
        if (n == 0 && w != W_TICK && !promoting) continue; /* only queries */
        if (n == 0) {
            memset(&st->cmds[0], 0, sizeof(st->cmds[0]));
            st->cmds[0].op = TRASTENDA_OP_NOOP;
            n = 1;
        }
        int64_t now = clock_now(st);
        if (now < trastenda_engine_time_ms(st->eng)) now = trastenda_engine_time_ms(st->eng);
        trastenda_batch_out out;
        trastenda_err err = trastenda_engine_apply(st->eng, now, st->cmds, n, st->results, &out);
        if (err != TRASTENDA_OK) { /* cannot happen: times are monotone, n is bounded */
            slog(st, TRASTENDA_LOG_ERROR, "engine: a batch was refused: %s",
                 trastenda_err_message(err));
            abort();
        }
        s->seq = out.seq;
        s->time_ms = now;
        s->epoch = trastenda_engine_epoch(st->eng);
        slot_add(s, out.seq, out.entry, out.entry_len);
        copy_results(st, s);
        /* Queries riding with commands see the state right after the batch. */
        for (trastenda_request *q = s->head; q != NULL; q = q->next_)
            if (q->query != NULL) q->query(q, st->eng);
        ADD(&st->st_batches, 1);
        ADD(&st->st_commands, s->ncmds);
        ADD(&st->st_batch_hist[batch_bucket(s->ncmds)], 1);
        if (s->ncmds > LOAD(&st->st_batch_max)) STORE(&st->st_batch_max, (uint64_t)s->ncmds);
        STORE(&st->applied_seq, out.seq);
        if (promoting) {
            STORE(&st->promoted_seq, out.seq);
            STORE(&st->promote_req, 0);
            ADD(&st->promote_done, 1);
            sys_futex_wake(&st->promote_done);
        }
        st->eng_slot++;
        STORE(&s->state, SLOT_FULL);
        sys_futex_wake(&s->state);
        /* After the hand-off: the reads it wakes do not delay the log write. */
        if (st->cfg.on_applied != NULL) st->cfg.on_applied(st->cfg.on_durable_ctx, out.seq);
    }
    /* Stopped: by close (queue empty) or by a failure (fail what is left). */
    if (LOAD(&st->failed)) drain_queue(st, TRASTENDA_E_IO);
    STORE(&st->engine_done, 1);
    for (int i = 0; i < SLOTS; i++)
        sys_futex_wake(&st->slots[i].state);
    return NULL;
}

/* ---- the log writer ---- */

static void
fail_stop(trastenda_store *st, const char *what)
{
    slog(st, TRASTENDA_LOG_ERROR,
         "storage: %s; the node stops: nothing more is acknowledged, restart to recover from the "
         "log",
         what);
    STORE(&st->failed, 1);
    wake_engine(st);
    ADD(&st->mat_wake, 1);
    sys_futex_wake(&st->mat_wake);
}

/* The batch's requests wait for followers' acknowledgements (sync replication): handed to the
 * acker, in order. Waits for room when ACK_RING batches already wait. */
static void
ack_push(trastenda_store *st, struct slot *s)
{
    uint64_t h = st->ack_head;
    for (;;) {
        uint32_t w = LOAD(&st->ack_wake);
        if (h - LOAD(&st->ack_tail) < ACK_RING) break;
        sys_futex_wait(&st->ack_wake, w, 10);
    }
    int64_t timeout_ms = st->cfg.sync_timeout_ms == 0 ? 5000 : st->cfg.sync_timeout_ms;
    st->ack_ring[h % ACK_RING] = (struct ack_wait){
        .seq = s->seq, .deadline_ns = sys_mono_ns() + timeout_ms * 1000000, .head = s->head};
    STORE(&st->ack_head, h + 1);
    ADD(&st->ack_wake, 1);
    sys_futex_wake(&st->ack_wake);
}

/* Writes a slot's entries: one put, or one write batch for a follower's several entries. */
static void
slot_write(trastenda_store *st, struct slot *s, char **rerr)
{
    bool sync = st->cfg.durability == TRASTENDA_DURABILITY_FSYNC;
    const rocksdb_writeoptions_t *wo = sync ? st->log.wsync : st->log.wnosync;
    uint8_t key[DB_LOG_KEY_BYTES];
    if (s->nent == 1) {
        db_log_key(key, s->ents[0].seq);
        rocksdb_put(st->log.db, wo, (const char *)key, sizeof(key), (const char *)s->entry,
                    s->ents[0].len, rerr);
        return;
    }
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    for (uint32_t i = 0; i < s->nent; i++) {
        db_log_key(key, s->ents[i].seq);
        rocksdb_writebatch_put(wb, (const char *)key, sizeof(key),
                               (const char *)s->entry + s->ents[i].off, s->ents[i].len);
    }
    rocksdb_write(st->log.db, wo, wb, rerr);
    rocksdb_writebatch_destroy(wb);
}

/* The log write histogram's bucket (trastenda_store_stats.log_write_hist). */
static void
write_observe(trastenda_store *st, int64_t ns)
{
    uint64_t us = ns > 0 ? (uint64_t)(ns + 999) / 1000 : 0;
    int b = 0;
    while (b < TRASTENDA_WRITE_HIST_BUCKETS - 1 && us > (1ull << b)) /* bound: the buckets */
        b++;
    ADD(&st->st_write_hist[b], 1);
    ADD(&st->st_write_ns, (uint64_t)(ns > 0 ? ns : 0));
}

static void *
writer_main(void *arg)
{
    (void)pthread_setname_np(pthread_self(), "ts-log"); /* top -H, perf */
    trastenda_store *st = arg;
    for (uint64_t next = 0;; next++) {
        struct slot *s = &st->slots[next % SLOTS];
        uint32_t spin = 0;
        while (LOAD(&s->state) != SLOT_FULL) {
            if (LOAD(&st->engine_done) && LOAD(&s->state) != SLOT_FULL) goto out;
            if (spin++ < st->spin_rounds)
                sys_pause();
            else
                sys_futex_wait(&s->state, SLOT_FREE, 100);
        }
        if (LOAD(&st->failed)) {
            complete_all(s->head, TRASTENDA_E_IO);
            STORE(&s->state, SLOT_FREE);
            sys_futex_wake(&s->state);
            continue;
        }
        char *rerr = NULL;
        int64_t t0 = sys_mono_ns();
        slot_write(st, s, &rerr);
        write_observe(st, sys_mono_ns() - t0);
        if (rerr != NULL) {
            char msg[600];
            snprintf(msg, sizeof(msg), "the write of log entry %llu failed (%s)",
                     (unsigned long long)s->seq, rerr);
            rocksdb_free(rerr);
            fail_stop(st, msg);
            complete_all(s->head, TRASTENDA_E_IO);
            STORE(&s->state, SLOT_FREE);
            sys_futex_wake(&s->state);
            continue;
        }
        ADD(&st->st_log_bytes, s->len);
        if (LOAD(&st->log_first_seq) == 0) STORE(&st->log_first_seq, s->ents[0].seq); /* first */
        STORE(&st->durable_epoch, s->epoch);
        STORE(&st->durable_time_ms, s->time_ms);
        STORE(&st->st_durable_cmds, LOAD(&st->st_durable_cmds) + s->ncmds);
        STORE(&st->durable_seq, s->seq);
        if (st->cfg.on_durable != NULL)
            for (uint32_t i = 0; i < s->nent; i++)
                st->cfg.on_durable(st->cfg.on_durable_ctx, s->ents[i].seq,
                                   s->entry + s->ents[i].off, s->ents[i].len);
        if (st->cfg.sync_replicas > 0 && !s->replicated && s->head != NULL)
            ack_push(st, s);
        else
            complete_all(s->head, TRASTENDA_OK);
        STORE(&s->state, SLOT_FREE);
        sys_futex_wake(&s->state);
        ADD(&st->mat_wake, 1);
        sys_futex_wake(&st->mat_wake);
    }
out:
    STORE(&st->writer_done, 1);
    ADD(&st->mat_wake, 1);
    sys_futex_wake(&st->mat_wake);
    ADD(&st->ack_wake, 1);
    sys_futex_wake(&st->ack_wake);
    return NULL;
}

/* ---- the acker (sync replication) ---- */

/* Completes the waiting batches in order: those acknowledged, those past their deadline. */
static void *
ack_main(void *arg)
{
    (void)pthread_setname_np(pthread_self(), "ts-acks"); /* top -H, perf */
    trastenda_store *st = arg;
    for (;;) {
        uint32_t w = LOAD(&st->ack_wake);
        uint64_t t = st->ack_tail;
        int64_t wait_ms = 100;
        while (t != LOAD(&st->ack_head)) {
            struct ack_wait *a = &st->ack_ring[t % ACK_RING];
            trastenda_err status;
            int64_t now = sys_mono_ns();
            if (a->seq <= LOAD(&st->ack_seq)) {
                status = TRASTENDA_OK;
            } else if (now >= a->deadline_ns) {
                status = TRASTENDA_E_NOT_REPLICATED;
                ADD(&st->st_not_replicated, 1);
            } else {
                wait_ms = (a->deadline_ns - now) / 1000000 + 1;
                break;
            }
            complete_all(a->head, status);
            STORE(&st->ack_tail, ++t);
            ADD(&st->ack_wake, 1);
            sys_futex_wake(&st->ack_wake); /* the writer may wait for room */
            w = LOAD(&st->ack_wake);
        }
        if (LOAD(&st->writer_done) && t == LOAD(&st->ack_head)) break;
        if (wait_ms > 100) wait_ms = 100;
        sys_futex_wait(&st->ack_wake, w, wait_ms);
    }
    return NULL;
}

/* ---- the materializer ---- */

static trastenda_err recover(trastenda_store *st, bool track_pages, trastenda_engine **out,
                             uint64_t *m, uint64_t *records, uint64_t *replayed, char *err,
                             size_t errlen);

/* Its length: pages of 256 slots keep the meta of before (24 bytes), which a build of before
 * 2026-11-29 still opens (a follower bootstrapped from this node, a downgrade); another size
 * writes the 28 bytes such a build refuses. */
static size_t
meta_encode(uint8_t out[DB_META_BYTES], uint64_t seq, int64_t time_ms, uint64_t epoch,
            uint32_t page_slots)
{
    uint64_t v[3] = {seq, (uint64_t)time_ms, epoch};
    for (int i = 0; i < 3; i++)
        for (int b = 0; b < 8; b++)
            out[8 * i + b] = (uint8_t)(v[i] >> (8 * b));
    if (page_slots == DB_META_PAGE_SLOTS_V1) return DB_META_BYTES_V1;
    for (int b = 0; b < 4; b++)
        out[DB_META_BYTES_V1 + b] = (uint8_t)(page_slots >> (8 * b));
    return DB_META_BYTES;
}

/*
 * Cuts log entries the state covers and that are older than the retention window, or beyond the
 * retention size, but not those a known follower still needs (log_keep) unless the log behind the
 * state holds more than log_follower_bytes_max. Cut points are the state writes, so the log keeps
 * up to log_retention_bytes plus about one gap between state writes (two once the ring thinned).
 * The entry a cut point's state is at stays: a follower that has everything up to it (a leader
 * restarted after the retention window) is checked against its epoch, not sent to bootstrap.
 */
static void
log_truncate(trastenda_store *st)
{
    int64_t horizon = clock_now(st) - st->cfg.log_retention_ms;
    uint64_t cap = st->cfg.log_retention_bytes, fcap = st->cfg.log_follower_bytes_max;
    uint64_t keep = LOAD(&st->log_keep);
    uint64_t cut = 0;
    uint32_t used = 0;
    bool past_keep = false;
    while (used < st->trunc_n) {
        uint64_t after = st->mat_bytes - st->trunc[used].bytes; /* log bytes past this point */
        if (st->trunc[used].time_ms > horizon && !(cap > 0 && after > cap)) break;
        if (keep != 0 && st->trunc[used].seq > keep) {
            if (after <= fcap) break; /* a follower still reads it */
            past_keep = true;
        }
        cut = st->trunc[used++].seq;
    }
    if (cut == 0) return;
    memmove(&st->trunc[0], &st->trunc[used], (st->trunc_n - used) * sizeof(st->trunc[0]));
    st->trunc_n -= used;
    uint8_t lo[DB_LOG_KEY_BYTES], hi[DB_LOG_KEY_BYTES];
    db_log_key(lo, 0);
    db_log_key(hi, cut); /* entry `cut` stays: the one the state is at */
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rocksdb_writebatch_delete_range(wb, (const char *)lo, sizeof(lo), (const char *)hi, sizeof(hi));
    char *rerr = NULL;
    pthread_mutex_lock(&st->trunc_lock);
    rocksdb_write(st->log.db, st->log.wnosync, wb, &rerr);
    pthread_mutex_unlock(&st->trunc_lock);
    rocksdb_writebatch_destroy(wb);
    if (rerr != NULL) {
        slog(st, TRASTENDA_LOG_WARN, "materializer: cutting the log failed: %s", rerr);
        rocksdb_free(rerr);
        return;
    }
    STORE(&st->log_first_seq, cut);
    slog(st, TRASTENDA_LOG_DEBUG, "materializer: log cut before entry %llu",
         (unsigned long long)cut);
    if (past_keep && keep != st->keep_told) {
        st->keep_told = keep;
        slog(st, TRASTENDA_LOG_WARN,
             "log cut before entry %llu, past entry %llu that a follower still needs: the log "
             "behind the state is above log_follower_bytes_max (%llu bytes); that follower must "
             "bootstrap",
             (unsigned long long)cut, (unsigned long long)keep, (unsigned long long)fcap);
    }
}

/* Writes the changed pages and the meta in one write. false on a write error. */
static bool
state_write(trastenda_store *st)
{
    trastenda_engine *m = st->mat;
    if (st->state_wb == NULL) st->state_wb = rocksdb_writebatch_create();
    rocksdb_writebatch_t *wb = st->state_wb;
    rocksdb_writebatch_clear(wb); /* keeps its buffer's capacity */
    uint64_t written = 0, deleted = 0;
    if (st->mat_repack) {
        /* The first write after the materializer loaded its copy: the tables the load packed
         * (trastenda_engine_load_keeps_slots) are written whole, their old pages deleted first
         * in the same batch (a later put of the same key wins). */
        for (uint8_t i = 0; i < TRASTENDA_IMAGE_TABLES; i++) {
            uint8_t t = trastenda_image_tables[i];
            if (trastenda_engine_load_keeps_slots(t) && !st->mat_relayout) continue;
            uint8_t lo[DB_PAGE_KEY_BYTES], hi[DB_PAGE_KEY_BYTES];
            db_page_key(lo, i, 0);
            db_page_key(hi, (uint8_t)(i + 1), 0);
            rocksdb_writebatch_delete_range(wb, (const char *)lo, sizeof(lo), (const char *)hi,
                                            sizeof(hi));
            if (trastenda_engine_pages_mark_table(m, t) != TRASTENDA_OK) abort(); /* tracked */
        }
    }
    for (uint8_t i = 0; i < TRASTENDA_IMAGE_TABLES; i++) {
        uint8_t t = trastenda_image_tables[i];
        for (uint32_t p = trastenda_engine_page_next(m, t, 0); p != UINT32_MAX;
             p = trastenda_engine_page_next(m, t, p + 1)) {
            const uint8_t *bytes;
            size_t len;
            trastenda_err err = trastenda_engine_page_encode(m, t, p, &bytes, &len);
            if (err != TRASTENDA_OK) abort(); /* pages come from page_next: cannot happen */
            uint8_t key[DB_PAGE_KEY_BYTES];
            db_page_key(key, i, p);
            if (len == 0) {
                rocksdb_writebatch_delete(wb, (const char *)key, sizeof(key));
                deleted++;
            } else {
                rocksdb_writebatch_put(wb, (const char *)key, sizeof(key), (const char *)bytes,
                                       len);
                written++;
            }
        }
    }
    uint8_t meta[DB_META_BYTES];
    uint64_t seq = trastenda_engine_seq(m);
    int64_t time_ms = trastenda_engine_time_ms(m);
    size_t meta_len =
        meta_encode(meta, seq, time_ms, trastenda_engine_epoch(m), trastenda_engine_page_slots(m));
    uint64_t chunks = ledger_acc_flush(&st->lacc, wb);
    uint64_t archived = archive_acc_flush(&st->aacc, st->state.db, st->state.ro, wb);
    /* Ledger retention: a sweep of the index at most every tenth of the window. */
    int64_t now_ms = clock_now(st);
    if (st->cfg.ledger_retention_ms > 0 &&
        now_ms - st->ledger_swept_ms >= st->cfg.ledger_retention_ms / 10) {
        st->ledger_swept_ms = now_ms;
        ADD(&st->st_ledger_cut,
            ledger_cut(st->state.db, st->state.ro, now_ms - st->cfg.ledger_retention_ms, wb));
    }
    char *rerr = NULL;
    rocksdb_writebatch_put(wb, "M", 1, (const char *)meta, meta_len);
    /* Into the memtable without the state's WAL, then durable by a flush to a table file (paced,
     * written back as it grows: db.c): the pages are written once instead of twice, and a crash
     * before the flush ends leaves the previous state and its M, whose log is not cut yet. */
    rocksdb_write(st->state.db, st->state.wnowal, wb, &rerr);
    size_t wb_bytes;
    (void)rocksdb_writebatch_data(wb, &wb_bytes);
    STORE(&st->last_state_bytes, (uint64_t)wb_bytes);
    if (wb_bytes > STATE_WB_KEEP_BYTES) { /* a whole state's (a close, a catch-up): not kept */
        rocksdb_writebatch_destroy(wb);
        st->state_wb = NULL;
    }
    if (rerr == NULL) rocksdb_flush(st->state.db, st->state.fwait, &rerr);
    if (rerr != NULL) {
        char msg[600];
        snprintf(msg, sizeof(msg), "writing the materialized state failed (%s)", rerr);
        rocksdb_free(rerr);
        fail_stop(st, msg);
        return false;
    }
    st->mat_repack = false;
    st->mat_relayout = false;
    ADD(&st->st_state_writes, 1);
    ADD(&st->st_pages_written, written);
    ADD(&st->st_pages_deleted, deleted);
    ADD(&st->st_ledger_chunks, chunks);
    ADD(&st->st_archived, archived);
    if (st->trunc_n == TRUNC_RING) {
        /* Full: keep every other point, so the ring still spans the whole window. */
        uint32_t k = 0;
        for (uint32_t i = 0; i < TRUNC_RING; i += 2)
            st->trunc[k++] = st->trunc[i];
        st->trunc_n = k;
    }
    st->trunc[st->trunc_n].seq = seq;
    st->trunc[st->trunc_n].time_ms = time_ms;
    st->trunc[st->trunc_n].bytes = st->mat_bytes;
    st->trunc_n++;
    log_truncate(st);
    /* Published last: a caller waiting for this write also sees the log cut that follows it. */
    STORE(&st->materialized_seq, seq);
    ADD(&st->mat_progress, 1);
    sys_futex_wake(&st->mat_progress);
    return true;
}

/* Applies the durable entries the materializer has not seen yet. false on an error. */
static bool
mat_catch_up(trastenda_store *st)
{
    uint64_t durable = LOAD(&st->durable_seq);
    while (trastenda_engine_seq(st->mat) < durable) {
        uint64_t seq = trastenda_engine_seq(st->mat) + 1;
        uint8_t key[DB_LOG_KEY_BYTES];
        db_log_key(key, seq);
        char *rerr = NULL;
        size_t vlen = 0;
        char *v = rocksdb_get(st->log.db, st->log.ro, (const char *)key, sizeof(key), &vlen, &rerr);
        if (rerr != NULL || v == NULL) {
            char msg[600];
            snprintf(msg, sizeof(msg), "the materializer cannot read log entry %llu (%s)",
                     (unsigned long long)seq, rerr != NULL ? rerr : "missing");
            rocksdb_free(rerr);
            fail_stop(st, msg);
            return false;
        }
        const char *what;
        /* Past its startup replay (checked) the materializer only sees entries logged since the
         * store opened: produced by this node's engine, or accepted by it (a follower's live
         * engine applies each entry, checked, before it is logged). */
        trastenda_err err = mat_apply(st, st->mat, (const uint8_t *)v, vlen, true, true, &what);
        rocksdb_free(v);
        if (what != NULL) {
            char msg[100];
            snprintf(msg, sizeof(msg), "the materializer ran out of memory for %s", what);
            fail_stop(st, msg);
            return false;
        }
        if (err != TRASTENDA_OK) {
            char msg[300];
            snprintf(msg, sizeof(msg), "the materializer cannot apply log entry %llu (%s)",
                     (unsigned long long)seq, trastenda_err_message(err));
            fail_stop(st, msg);
            return false;
        }
    }
    return true;
}

uint32_t
trastenda_store_interval_max_ms(const trastenda_store_config *c)
{
    if (c->materialize_interval_max_ms != 0) return c->materialize_interval_max_ms;
    uint64_t ten = 10ull * c->materialize_interval_ms;
    return ten > INTERVAL_MS_MAX ? INTERVAL_MS_MAX : (uint32_t)ten;
}

static void *
mat_main(void *arg)
{
    (void)pthread_setname_np(pthread_self(), "ts-materialize"); /* top -H, perf */
    trastenda_store *st = arg;
    /* Its own copy: the same state loaded again (it never reads the live tables). The log it
     * replays may grow meanwhile; what it misses, mat_catch_up applies. */
    uint64_t m, records, replayed;
    char err[512];
    int64_t t0 = sys_mono_ns();
    if (recover(st, true, &st->mat, &m, &records, &replayed, err, sizeof(err)) != TRASTENDA_OK) {
        char msg[700];
        snprintf(msg, sizeof(msg), "the materializer cannot load its copy of the state (%s)", err);
        fail_stop(st, msg);
        return NULL;
    }
    slog(st, TRASTENDA_LOG_DEBUG, "materializer: its copy loaded in %.1f ms",
         (double)(sys_mono_ns() - t0) / 1e6);
    st->mat_repack = true; /* the load moved records to other pages: state_write */
    st->last_state_write_ns = sys_mono_ns();
    int64_t min_ns = (int64_t)st->cfg.materialize_interval_ms * 1000000;
    int64_t max_ns = (int64_t)trastenda_store_interval_max_ms(&st->cfg) * 1000000;
    uint64_t log_at_write = st->mat_bytes; /* mat_bytes at the last state write */
    for (;;) {
        uint32_t w = LOAD(&st->mat_wake);
        if (LOAD(&st->failed)) break;
        if (!mat_catch_up(st)) break;
        bool done =
            LOAD(&st->writer_done) && trastenda_engine_seq(st->mat) == LOAD(&st->durable_seq);
        int64_t now = sys_mono_ns(), since = now - st->last_state_write_ns;
        bool behind = trastenda_engine_seq(st->mat) > LOAD(&st->materialized_seq);
        bool asked = LOAD(&st->flush_seq) > LOAD(&st->materialized_seq);
        /* Past the minimum interval, a write once the log since the last one is as large as
         * that write was (writing the state costs about its bytes, a restart replays the log),
         * or at the maximum interval. */
        bool due = since >= max_ns ||
                   (since >= min_ns && st->mat_bytes - log_at_write >= st->last_state_bytes);
        if (behind && (done || asked || due)) {
            if (!state_write(st)) break;
            st->last_state_write_ns = now;
            log_at_write = st->mat_bytes;
        }
        if (done) break;
        /* Nothing left to write: only a new entry (or a flush) wakes it, not the interval. Behind:
         * each new entry wakes it, and so does the next interval's end. */
        since = sys_mono_ns() - st->last_state_write_ns;
        int64_t wait_ms = ((since < min_ns ? min_ns : max_ns) - since) / 1000000;
        if (wait_ms < 1) wait_ms = 1;
        if (wait_ms > IDLE_WAIT_MS || !behind) wait_ms = IDLE_WAIT_MS;
        sys_futex_wait(&st->mat_wake, w, wait_ms);
    }
    return NULL;
}

/* ---- open, close, submit ---- */

static trastenda_err
config_check(const trastenda_store_config *c, char *err, size_t errlen)
{
    if (c->dir == NULL || c->dir[0] == '\0' || strlen(c->dir) > PATH_BYTES - 64) {
        snprintf(err, errlen, "config: dir must name a directory (at most %d bytes)",
                 PATH_BYTES - 64);
        return TRASTENDA_E_INVALID;
    }
    if (c->queue_max < 2 || (c->queue_max & (c->queue_max - 1)) != 0 || c->queue_max > (1u << 24)) {
        snprintf(err, errlen, "config: queue_max must be a power of two in 2..16777216, not %u",
                 c->queue_max);
        return TRASTENDA_E_INVALID;
    }
    if (c->durability != TRASTENDA_DURABILITY_FSYNC &&
        c->durability != TRASTENDA_DURABILITY_ASYNC) {
        snprintf(err, errlen, "config: durability must be fsync or async");
        return TRASTENDA_E_INVALID;
    }
    uint32_t ps = c->engine.page_slots;
    if (ps != 0 && !trastenda_page_slots_valid(ps)) {
        snprintf(err, errlen, "config: page_slots must be a power of two in 1..65536, not %u", ps);
        return TRASTENDA_E_INVALID;
    }
    if (c->materialize_interval_ms == 0 || c->materialize_interval_ms > INTERVAL_MS_MAX) {
        snprintf(err, errlen, "config: materialize_interval_ms must be 1..%u, not %u",
                 INTERVAL_MS_MAX, c->materialize_interval_ms);
        return TRASTENDA_E_INVALID;
    }
    if (c->materialize_interval_max_ms != 0 &&
        (c->materialize_interval_max_ms < c->materialize_interval_ms ||
         c->materialize_interval_max_ms > INTERVAL_MS_MAX)) {
        snprintf(err, errlen,
                 "config: materialize_interval_max_ms must be 0 (10 x materialize_interval_ms) or "
                 "%u..%u, not %u",
                 c->materialize_interval_ms, INTERVAL_MS_MAX, c->materialize_interval_max_ms);
        return TRASTENDA_E_INVALID;
    }
    if (c->ledger_retention_ms < 0 || c->ledger_retention_ms > TRASTENDA_RETENTION_MS_MAX) {
        snprintf(err, errlen, "config: ledger_retention_ms must be 0..%lld",
                 (long long)TRASTENDA_RETENTION_MS_MAX);
        return TRASTENDA_E_INVALID;
    }
    if (c->log_retention_ms < 0 || c->log_retention_ms > TRASTENDA_RETENTION_MS_MAX) {
        snprintf(err, errlen, "config: log_retention_ms must be 0..%lld",
                 (long long)TRASTENDA_RETENTION_MS_MAX);
        return TRASTENDA_E_INVALID;
    }
    return TRASTENDA_OK;
}

static void
store_free(trastenda_store *st)
{
    pthread_mutex_destroy(&st->trunc_lock);
    pthread_mutex_destroy(&st->dg_lock);
    trastenda_engine_destroy(st->eng);
    trastenda_engine_destroy(st->mat);
    if (st->state_wb != NULL) rocksdb_writebatch_destroy(st->state_wb);
    ledger_acc_fini(&st->lacc);
    archive_acc_fini(&st->aacc);
    db_close(&st->log);
    db_close(&st->state);
    free(st->cells);
    free(st->cmds);
    free(st->results);
    for (int i = 0; i < SLOTS; i++) {
        free(st->slots[i].entry);
        free(st->slots[i].ents);
    }
    free(st);
}

/* Loads the state and replays the log into a new engine. */
static trastenda_err
recover(trastenda_store *st, bool track_pages, trastenda_engine **out, uint64_t *m,
        uint64_t *records, uint64_t *replayed, char *err, size_t errlen)
{
    trastenda_engine *e = NULL;
    /* The materializer's copy (track_pages) takes its tables on huge pages: its random reads then
     * rarely miss the TLB, and the 2 MiB page faults as its tables fill cost no reply anything
     * (it is off the reply path; the writer's copy is not: engine_config.huge_pages). */
    trastenda_engine_config ec = st->cfg.engine;
    if (track_pages) ec.huge_pages = 1;
    trastenda_err code = trastenda_engine_create(&ec, &e);
    if (code != TRASTENDA_OK) {
        snprintf(err, errlen, "engine: cannot create the tables: %s", trastenda_err_message(code));
        return code;
    }
    uint32_t page_slots;
    code = state_load(st, e, !track_pages, m, records, &page_slots, err, errlen);
    /* Pages of another size than this build's (an older state): the materializer's first write
     * rewrites every table whole (state_write), in the same batch as the meta that names the size.
     */
    if (code == TRASTENDA_OK && track_pages)
        st->mat_relayout = page_slots != trastenda_engine_page_slots(e);
    /* The materializer marks what the replay changes: its next state write must carry it. */
    if (code == TRASTENDA_OK && track_pages) code = trastenda_engine_pages_track(e);
    if (code == TRASTENDA_OK)
        code = log_replay(st, e, track_pages, UINT64_MAX, replayed, err, errlen);
    if (code != TRASTENDA_OK) {
        trastenda_engine_destroy(e);
        return code;
    }
    *out = e;
    return TRASTENDA_OK;
}

trastenda_err
trastenda_store_open(const trastenda_store_config *cfg, trastenda_store **out, char *err,
                     size_t errlen)
{
    char dummy[8];
    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (cfg == NULL || out == NULL) {
        snprintf(err, errlen, "NULL argument");
        return TRASTENDA_E_INVALID;
    }
    *out = NULL;
    trastenda_err code = config_check(cfg, err, errlen);
    if (code != TRASTENDA_OK) return code;
    trastenda_store *st = calloc(1, sizeof(*st));
    if (st == NULL) return TRASTENDA_E_NOMEM;
    pthread_mutex_init(&st->trunc_lock, NULL);
    pthread_mutex_init(&st->dg_lock, NULL);
    st->spin_rounds =
        sysconf(_SC_NPROCESSORS_ONLN) > 2 ? SPIN_ROUNDS_MANY_CORES : SPIN_ROUNDS_FEW_CORES;
    st->cfg = *cfg;
    if (st->cfg.log == NULL) st->cfg.log = sys_log_stderr;
    snprintf(st->dir, sizeof(st->dir), "%s", cfg->dir);
    st->cfg.dir = st->dir;
    int e = sys_mkdirs(st->dir);
    if (e != 0) {
        snprintf(err, errlen, "%s: cannot create the data directory: %s", st->dir, strerror(e));
        store_free(st);
        return TRASTENDA_E_IO;
    }
    char path[PATH_BYTES + 16];
    snprintf(path, sizeof(path), "%s/state", st->dir);
    code = db_open(&st->state, path, DB_STATE, false, err, errlen);
    if (code == TRASTENDA_OK) {
        snprintf(path, sizeof(path), "%s/log", st->dir);
        code = db_open(&st->log, path, DB_LOG, false, err, errlen);
    }
    if (code == TRASTENDA_OK && st->log.created && !st->state.created) {
        char *rerr = NULL;
        size_t vlen;
        char *meta = rocksdb_get(st->state.db, st->state.ro, "M", 1, &vlen, &rerr);
        rocksdb_free(rerr);
        if (meta != NULL) {
            rocksdb_free(meta);
            snprintf(err, errlen,
                     "%s/log: the log database is missing but the state database has data: "
                     "acknowledged changes may be gone; refusing to start",
                     st->dir);
            code = TRASTENDA_E_CORRUPT;
        }
    }
    if (code == TRASTENDA_OK) code = caps_check_and_record(st, err, errlen);
    if (code != TRASTENDA_OK) {
        store_free(st);
        return code;
    }
    int64_t t0 = sys_mono_ns();
    uint64_t m = 0, records = 0, replayed = 0;
    code = recover(st, false, &st->eng, &m, &records, &replayed, err, errlen);
    if (code != TRASTENDA_OK) {
        store_free(st);
        return code;
    }
    trastenda_engine_check(st->eng);
    st->recovery_ms = (double)(sys_mono_ns() - t0) / 1e6;
    st->st_recovered = replayed;
    uint64_t seq = trastenda_engine_seq(st->eng);
    st->applied_seq = st->durable_seq = seq;
    st->open_seq = seq;
    st->durable_epoch = trastenda_engine_epoch(st->eng);
    st->durable_time_ms = trastenda_engine_time_ms(st->eng);
    st->follower = cfg->follower ? 1 : 0;
    st->materialized_seq = m;
    st->log_first_seq = log_first(st);
    if (st->log_first_seq == 0 && seq > 0) st->log_first_seq = seq + 1; /* all cut: next one */
    slog(st, TRASTENDA_LOG_INFO,
         "storage: %s recovered in %.1f ms: state at entry %llu (%llu records), %llu log entries "
         "replayed, now at entry %llu; durability %s",
         st->dir, st->recovery_ms, (unsigned long long)m, (unsigned long long)records,
         (unsigned long long)replayed, (unsigned long long)seq,
         cfg->durability == TRASTENDA_DURABILITY_FSYNC ? "fsync" : "async");

    /* The materializer loads its own copy in its thread, while this node already serves. */
    st->cells = calloc(cfg->queue_max, sizeof(*st->cells));
    st->cmds = calloc(cfg->engine.batch_cmds_max, sizeof(*st->cmds));
    st->results = calloc(cfg->engine.batch_cmds_max, sizeof(*st->results));
    if (code == TRASTENDA_OK && (st->cells == NULL || st->cmds == NULL || st->results == NULL))
        code = TRASTENDA_E_NOMEM;
    if (code != TRASTENDA_OK) {
        if (err[0] == '\0') snprintf(err, errlen, "out of memory");
        store_free(st);
        return code;
    }
    sq_init(&st->q, st->cells, cfg->queue_max);
    if (pthread_create(&st->engine_th, NULL, engine_main, st) != 0 ||
        pthread_create(&st->writer_th, NULL, writer_main, st) != 0 ||
        pthread_create(&st->mat_th, NULL, mat_main, st) != 0 ||
        (cfg->sync_replicas > 0 && pthread_create(&st->ack_th, NULL, ack_main, st) != 0)) {
        snprintf(err, errlen, "cannot start the storage threads");
        abort(); /* a half-started store cannot be unwound safely */
    }
    st->ack_started = cfg->sync_replicas > 0;
    st->threads_started = true;
    *out = st;
    return TRASTENDA_OK;
}

void
trastenda_store_close(trastenda_store *st)
{
    if (st == NULL) return;
    __atomic_store_n(&st->closing, 1, __ATOMIC_SEQ_CST);
    wake_engine(st);
    pthread_join(st->engine_th, NULL);
    pthread_join(st->writer_th, NULL);
    if (st->ack_started) pthread_join(st->ack_th, NULL);
    ADD(&st->mat_wake, 1);
    sys_futex_wake(&st->mat_wake);
    pthread_join(st->mat_th, NULL);
    if (st->pending != NULL) { /* only after a failure */
        st->pending->done(st->pending, TRASTENDA_E_IO);
        st->pending = NULL;
    }
    drain_queue(st, LOAD(&st->failed) ? TRASTENDA_E_IO : TRASTENDA_E_CLOSED);
    slog(st, TRASTENDA_LOG_INFO, "storage: %s closed at entry %llu (state at %llu)", st->dir,
         (unsigned long long)LOAD(&st->durable_seq),
         (unsigned long long)LOAD(&st->materialized_seq));
    store_free(st);
}

trastenda_err
trastenda_store_submit(trastenda_store *st, trastenda_request *req)
{
    if (st == NULL || req == NULL || req->done == NULL) return TRASTENDA_E_INVALID;
    if (req->entries != NULL) { /* a follower's entries: nothing else */
        if (req->n != 0 || req->query != NULL || req->n_entries == 0 || !LOAD(&st->follower))
            return TRASTENDA_E_INVALID;
    } else {
        if (req->n > 0 && (req->cmds == NULL || req->results == NULL)) return TRASTENDA_E_INVALID;
        if (req->n == 0 && req->query == NULL) return TRASTENDA_E_INVALID;
        if (req->n > st->cfg.engine.batch_cmds_max) return TRASTENDA_E_BATCH_TOO_BIG;
        if (req->n > 0 && LOAD(&st->follower)) return TRASTENDA_E_NOT_LEADER;
    }
    /* Paired with close: either close sees this submitter, or this submitter sees closing. */
    __atomic_fetch_add(&st->submitting, 1, __ATOMIC_SEQ_CST);
    trastenda_err code = TRASTENDA_OK;
    if (LOAD(&st->failed))
        code = TRASTENDA_E_IO;
    else if (__atomic_load_n(&st->closing, __ATOMIC_SEQ_CST))
        code = TRASTENDA_E_CLOSED;
    else if (!sq_push(&st->q, req)) {
        code = TRASTENDA_E_BUSY;
        ADD(&st->st_busy, 1);
    }
    __atomic_fetch_sub(&st->submitting, 1, __ATOMIC_RELEASE);
    if (code == TRASTENDA_OK) wake_engine(st);
    return code;
}

const trastenda_engine *
trastenda_store_engine(const trastenda_store *st)
{
    return st->eng;
}

uint64_t
trastenda_store_durable_seq(const trastenda_store *st)
{
    return LOAD(&st->durable_seq);
}

void
trastenda_store_stats_get(trastenda_store *st, trastenda_store_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->applied_seq = LOAD(&st->applied_seq);
    out->durable_seq = LOAD(&st->durable_seq);
    out->materialized_seq = LOAD(&st->materialized_seq);
    out->log_first_seq = LOAD(&st->log_first_seq);
    out->log_keep_seq = LOAD(&st->log_keep);
    out->batches = LOAD(&st->st_batches);
    out->commands = LOAD(&st->st_commands);
    out->requests = LOAD(&st->st_requests);
    out->queries = LOAD(&st->st_queries);
    out->busy = LOAD(&st->st_busy);
    out->log_bytes = LOAD(&st->st_log_bytes);
    out->batch_cmds_max = LOAD(&st->st_batch_max);
    for (int i = 0; i < TRASTENDA_BATCH_HIST_BUCKETS; i++)
        out->batch_cmds_hist[i] = LOAD(&st->st_batch_hist[i]);
    for (int i = 0; i < TRASTENDA_WRITE_HIST_BUCKETS; i++)
        out->log_write_hist[i] = LOAD(&st->st_write_hist[i]);
    out->log_write_ns = LOAD(&st->st_write_ns);
    out->state_writes = LOAD(&st->st_state_writes);
    out->pages_written = LOAD(&st->st_pages_written);
    out->pages_deleted = LOAD(&st->st_pages_deleted);
    out->state_write_bytes = LOAD(&st->last_state_bytes);
    out->ledger_chunks = LOAD(&st->st_ledger_chunks);
    out->ledger_chunks_cut = LOAD(&st->st_ledger_cut);
    out->archived = LOAD(&st->st_archived);
    out->recovered_entries = st->st_recovered;
    out->recovery_ms = st->recovery_ms;
    out->queue_depth = (uint32_t)sq_depth(&st->q);
    out->failed = (uint8_t)LOAD(&st->failed);
    out->durability = st->cfg.durability;
    out->follower = (uint8_t)LOAD(&st->follower);
    out->epoch = LOAD(&st->durable_epoch);
    out->durable_time_ms = LOAD(&st->durable_time_ms);
    out->acked_seq = LOAD(&st->ack_seq);
    out->not_replicated = LOAD(&st->st_not_replicated);
    out->entries_appended = LOAD(&st->st_appended);
}

/* ---- replication ---- */

bool
trastenda_store_is_follower(const trastenda_store *st)
{
    return LOAD(&st->follower) != 0;
}

uint64_t
trastenda_store_applied_seq(const trastenda_store *st)
{
    return LOAD(&st->applied_seq);
}

uint64_t
trastenda_store_durable_commands(const trastenda_store *st)
{
    return LOAD(&st->st_durable_cmds);
}

uint64_t
trastenda_store_epoch(const trastenda_store *st)
{
    return LOAD(&st->durable_epoch);
}

trastenda_err
trastenda_store_promote(trastenda_store *st, uint64_t epoch, uint64_t *seq, char *err,
                        size_t errlen)
{
    if (!LOAD(&st->follower)) {
        snprintf(err, errlen, "this node is already the leader");
        return TRASTENDA_E_INVALID;
    }
    if (epoch <= LOAD(&st->durable_epoch)) {
        snprintf(err, errlen, "epoch %llu is not above the node's epoch %llu",
                 (unsigned long long)epoch, (unsigned long long)LOAD(&st->durable_epoch));
        return TRASTENDA_E_INVALID;
    }
    uint32_t w = LOAD(&st->promote_done);
    STORE(&st->promote_err, TRASTENDA_OK);
    STORE(&st->promoted_seq, 0);
    STORE(&st->promote_req, epoch);
    wake_engine(st);
    while (LOAD(&st->promote_done) == w) {
        if (LOAD(&st->failed) || LOAD(&st->engine_done)) {
            snprintf(err, errlen, "the store stopped");
            return TRASTENDA_E_IO;
        }
        sys_futex_wait(&st->promote_done, w, 10);
    }
    trastenda_err code = LOAD(&st->promote_err);
    if (code != TRASTENDA_OK) {
        snprintf(err, errlen, "the engine refused epoch %llu", (unsigned long long)epoch);
        return code;
    }
    uint64_t s = LOAD(&st->promoted_seq);
    while (LOAD(&st->durable_seq) < s) { /* persisted before the first write is taken */
        if (LOAD(&st->failed)) {
            snprintf(err, errlen, "the write of the promotion's entry failed");
            return TRASTENDA_E_IO;
        }
        sys_futex_wait(&st->mat_wake, LOAD(&st->mat_wake), 5);
    }
    if (seq != NULL) *seq = s;
    slog(st, TRASTENDA_LOG_INFO, "storage: promoted to leader of epoch %llu at entry %llu",
         (unsigned long long)epoch, (unsigned long long)s);
    return TRASTENDA_OK;
}

trastenda_err
trastenda_store_lead(trastenda_store *st)
{
    if (!LOAD(&st->follower) || LOAD(&st->st_appended) != 0) return TRASTENDA_E_INVALID;
    STORE(&st->follower, 0);
    wake_engine(st); /* its maintenance (expiries) is due now */
    slog(st, TRASTENDA_LOG_INFO, "storage: leader of epoch %llu",
         (unsigned long long)LOAD(&st->durable_epoch));
    return TRASTENDA_OK;
}

void
trastenda_store_fence(trastenda_store *st)
{
    if (__atomic_exchange_n(&st->follower, 1, __ATOMIC_ACQ_REL) == 0)
        slog(st, TRASTENDA_LOG_WARN, "storage: fenced: no more writes are taken here");
}

void
trastenda_store_ack(trastenda_store *st, uint64_t seq)
{
    uint64_t cur = LOAD(&st->ack_seq);
    while (cur < seq && !__atomic_compare_exchange_n(&st->ack_seq, &cur, seq, false,
                                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    }
    ADD(&st->ack_wake, 1);
    sys_futex_wake(&st->ack_wake);
}

uint32_t
trastenda_store_digests(trastenda_store *st, trastenda_store_digest *out, uint32_t max)
{
    pthread_mutex_lock(&st->dg_lock);
    uint32_t n = st->dg_n < max ? st->dg_n : max;
    memcpy(out, &st->dg[st->dg_n - n], n * sizeof(*out));
    pthread_mutex_unlock(&st->dg_lock);
    return n;
}

/* ---- checkpoints and offline verification ---- */

/* The last log entry of a database, 0 when none. */
static uint64_t
log_last(struct db *log)
{
    uint8_t key[DB_LOG_KEY_BYTES];
    db_log_key(key, UINT64_MAX);
    rocksdb_iterator_t *it = rocksdb_create_iterator(log->db, log->ro);
    rocksdb_iter_seek_for_prev(it, (const char *)key, sizeof(key));
    uint64_t seq = 0;
    if (rocksdb_iter_valid(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        seq = db_log_key_seq(k, klen);
    }
    rocksdb_iter_destroy(it);
    return seq;
}

static trastenda_err
checkpoint_one(rocksdb_t *db, const char *path, char *err, size_t errlen)
{
    char *rerr = NULL;
    rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(db, &rerr);
    if (rerr != NULL) return db_error(rerr, path, err, errlen);
    rocksdb_checkpoint_create(cp, path, 0, &rerr);
    rocksdb_checkpoint_object_destroy(cp);
    if (rerr != NULL) return db_error(rerr, path, err, errlen);
    return TRASTENDA_OK;
}

trastenda_err
trastenda_store_checkpoint(trastenda_store *st, const char *dir, uint64_t *seq, char *err,
                           size_t errlen)
{
    char dummy[8];
    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (st == NULL || dir == NULL || strlen(dir) > PATH_BYTES - 64) {
        snprintf(err, errlen, "checkpoint: a directory path is needed");
        return TRASTENDA_E_INVALID;
    }
    if (sys_dir_nonempty(dir)) {
        snprintf(err, errlen, "checkpoint: %s exists and is not empty", dir);
        return TRASTENDA_E_INVALID;
    }
    int e = sys_mkdirs(dir);
    if (e != 0) {
        snprintf(err, errlen, "checkpoint: cannot create %s: %s", dir, strerror(e));
        return TRASTENDA_E_IO;
    }
    char path[PATH_BYTES + 16];
    /* The state first (at its M), then the log, which holds everything after M: the log is not
     * cut meanwhile. */
    pthread_mutex_lock(&st->trunc_lock);
    snprintf(path, sizeof(path), "%s/state", dir);
    trastenda_err code = checkpoint_one(st->state.db, path, err, errlen);
    if (code == TRASTENDA_OK) {
        snprintf(path, sizeof(path), "%s/log", dir);
        code = checkpoint_one(st->log.db, path, err, errlen);
    }
    pthread_mutex_unlock(&st->trunc_lock);
    if (code != TRASTENDA_OK) return code;
    struct db log;
    code = db_open(&log, path, DB_LOG, true, err, errlen);
    if (code != TRASTENDA_OK) return code;
    uint64_t last = log_last(&log);
    db_close(&log);
    if (seq != NULL) *seq = last;
    slog(st, TRASTENDA_LOG_INFO, "storage: checkpoint of %s in %s at entry %llu", st->dir, dir,
         (unsigned long long)last);
    return TRASTENDA_OK;
}

/* Every log entry: contiguous sequences and well-formed entries. */
static trastenda_err
verify_log(struct db *log, trastenda_verify_report *rep, char *err, size_t errlen)
{
    uint8_t key[DB_LOG_KEY_BYTES];
    db_log_key(key, 0);
    rocksdb_iterator_t *it = rocksdb_create_iterator(log->db, log->ro);
    trastenda_err code = TRASTENDA_OK;
    uint64_t prev = 0;
    for (rocksdb_iter_seek(it, (const char *)key, sizeof(key)); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        uint64_t seq = db_log_key_seq(k, klen);
        if (seq == 0) break;
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
        if (prev != 0 && seq != prev + 1) {
            snprintf(err, errlen, "log: entry %llu follows %llu: a gap", (unsigned long long)seq,
                     (unsigned long long)prev);
            code = TRASTENDA_E_CORRUPT;
            break;
        }
        trastenda_entry_header hdr;
        trastenda_entry_iter ei;
        memset(&hdr, 0, sizeof(hdr));
        code = trastenda_entry_open(v, vlen, &hdr, &ei);
        uint8_t type;
        const uint8_t *body;
        uint32_t blen;
        while (code == TRASTENDA_OK)
            code = trastenda_entry_next(&ei, &type, &body, &blen);
        if (code != TRASTENDA_E_SEQUENCE || hdr.seq != seq) {
            snprintf(err, errlen, "log: entry %llu is malformed", (unsigned long long)seq);
            code = TRASTENDA_E_CORRUPT;
            break;
        }
        code = TRASTENDA_OK;
        if (rep->log_first == 0) rep->log_first = seq;
        rep->log_last = seq;
        rep->log_entries++;
        rep->log_bytes += vlen;
        prev = seq;
    }
    if (code == TRASTENDA_OK) {
        char *rerr = NULL;
        rocksdb_iter_get_error(it, &rerr);
        if (rerr != NULL) code = db_error(rerr, "log: reading entries", err, errlen);
    }
    rocksdb_iter_destroy(it);
    return code;
}

trastenda_err
trastenda_store_verify(const char *dir, const trastenda_engine_config *engine,
                       trastenda_verify_report *rep, char *err, size_t errlen)
{
    char dummy[8];
    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (dir == NULL || rep == NULL || strlen(dir) > PATH_BYTES - 64) {
        snprintf(err, errlen, "verify: NULL argument or path too long");
        return TRASTENDA_E_INVALID;
    }
    memset(rep, 0, sizeof(*rep));
    /* A store that only reads: its databases, no threads. */
    trastenda_store *st = calloc(1, sizeof(*st));
    if (st == NULL) return TRASTENDA_E_NOMEM;
    pthread_mutex_init(&st->trunc_lock, NULL);
    pthread_mutex_init(&st->dg_lock, NULL);
    trastenda_store_config_default(&st->cfg);
    if (engine != NULL) st->cfg.engine = *engine;
    st->cfg.log = sys_log_stderr;
    st->cfg.log_level = TRASTENDA_LOG_WARN;
    snprintf(st->dir, sizeof(st->dir), "%s", dir);
    char path[PATH_BYTES + 16];
    snprintf(path, sizeof(path), "%s/state", dir);
    trastenda_err code = db_open(&st->state, path, DB_STATE, true, err, errlen);
    if (code == TRASTENDA_OK) {
        snprintf(path, sizeof(path), "%s/log", dir);
        code = db_open(&st->log, path, DB_LOG, true, err, errlen);
    }
    uint32_t had[CAPS];
    if (code == TRASTENDA_OK && engine == NULL && caps_read(&st->state, had)) {
        /* The tables the directory was written with. */
        trastenda_engine_config *c = &st->cfg.engine;
        c->locations_max = had[0];
        c->skus_max = had[1];
        c->stock_max = had[2];
        c->holds_max = had[3];
        c->orders_max = had[4];
        c->pos_max = had[5];
        c->keys_max = had[6];
        c->lines_max = had[7];
    }
    if (code == TRASTENDA_OK) code = verify_log(&st->log, rep, err, errlen);
    uint64_t replayed = 0;
    if (code == TRASTENDA_OK)
        code = recover(st, false, &st->eng, &rep->state_seq, &rep->state_records, &replayed, err,
                       errlen);
    if (code == TRASTENDA_OK && rep->log_first > rep->state_seq + 1) {
        snprintf(err, errlen, "the log starts at entry %llu but the state ends at %llu: a gap",
                 (unsigned long long)rep->log_first, (unsigned long long)rep->state_seq);
        code = TRASTENDA_E_CORRUPT;
    }
    if (code == TRASTENDA_OK) {
        trastenda_engine_check(st->eng); /* aborts with a message on a broken invariant */
        rep->seq = trastenda_engine_seq(st->eng);
        rep->replayed = replayed;
        rep->digest = trastenda_engine_digest(st->eng);
        trastenda_engine_stats es;
        trastenda_engine_stats_get(st->eng, &es);
        rep->stock_records = es.stock;
    }
    store_free(st);
    return code;
}

/* ---- ledger queries and the archive: after the materializer caught up ---- */

/* Has the materializer write everything durable now; false when it did not within timeout_ms
 * (0: 5000). */
static bool
mat_sync(trastenda_store *st, uint32_t timeout_ms)
{
    uint64_t target = LOAD(&st->durable_seq);
    int64_t deadline = sys_mono_ns() + (int64_t)(timeout_ms == 0 ? 5000 : timeout_ms) * 1000000;
    uint64_t cur = LOAD(&st->flush_seq);
    while (cur < target && !__atomic_compare_exchange_n(&st->flush_seq, &cur, target, false,
                                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        ;
    while (LOAD(&st->materialized_seq) < target && !LOAD(&st->failed)) {
        int64_t left = deadline - sys_mono_ns();
        if (left <= 0) break;
        uint32_t w = LOAD(&st->mat_progress);
        ADD(&st->mat_wake, 1);
        sys_futex_wake(&st->mat_wake);
        if (LOAD(&st->materialized_seq) >= target) break;
        sys_futex_wait(&st->mat_progress, w, left / 1000000 + 1);
    }
    return LOAD(&st->materialized_seq) >= target;
}

static trastenda_err
ledger_query_check(const trastenda_ledger_query *q, char *err, size_t errlen)
{
    if (q->sku.len == 0 || q->sku.len > TRASTENDA_ID_BYTES_MAX || q->sku.ptr == NULL) {
        snprintf(err, errlen, "ledger: sku must be 1..%d bytes", TRASTENDA_ID_BYTES_MAX);
        return TRASTENDA_E_INVALID;
    }
    if (q->loc.len > TRASTENDA_ID_BYTES_MAX || (q->loc.len > 0 && q->loc.ptr == NULL)) {
        snprintf(err, errlen, "ledger: loc must be at most %d bytes", TRASTENDA_ID_BYTES_MAX);
        return TRASTENDA_E_INVALID;
    }
    if (q->limit == 0 || q->limit > TRASTENDA_PAGE_MAX) {
        snprintf(err, errlen, "ledger: limit must be 1..%d, not %u", TRASTENDA_PAGE_MAX, q->limit);
        return TRASTENDA_E_INVALID;
    }
    if (q->from_ms < 0 || q->to_ms < 0 || (q->to_ms != 0 && q->from_ms > q->to_ms)) {
        snprintf(err, errlen, "ledger: from_ms and to_ms must be >= 0 and from_ms <= to_ms");
        return TRASTENDA_E_INVALID;
    }
    return TRASTENDA_OK;
}

trastenda_err
trastenda_store_ledger(trastenda_store *st, const trastenda_ledger_query *q,
                       trastenda_ledger_page **out, char *err, size_t errlen)
{
    char dummy[8];
    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (st == NULL || q == NULL || out == NULL) {
        snprintf(err, errlen, "ledger: NULL argument");
        return TRASTENDA_E_INVALID;
    }
    *out = NULL;
    trastenda_err code = ledger_query_check(q, err, errlen);
    if (code != TRASTENDA_OK) return code;
    bool complete = mat_sync(st, q->timeout_ms);
    trastenda_ledger_page *page = calloc(1, sizeof(*page));
    if (page == NULL) return TRASTENDA_E_NOMEM;
    page->complete = complete;
    code = ledger_read(st->state.db, st->state.ro, q, page, err, errlen);
    if (code != TRASTENDA_OK) {
        trastenda_ledger_page_free(page);
        return code;
    }
    *out = page;
    return TRASTENDA_OK;
}

trastenda_err
trastenda_store_hold_archived(trastenda_store *st, uint64_t id, trastenda_hold_view *out)
{
    if (st == NULL || out == NULL) return TRASTENDA_E_INVALID;
    mat_sync(st, 0);
    return archive_hold_get(st->state.db, st->state.ro, st->eng, id, out);
}

trastenda_err
trastenda_store_order_archived(trastenda_store *st, trastenda_str order_id,
                               trastenda_order_view *out)
{
    if (st == NULL || out == NULL) return TRASTENDA_E_INVALID;
    mat_sync(st, 0);
    return archive_order_get(st->state.db, st->state.ro, st->eng, order_id, out);
}

void
trastenda_ledger_page_free(trastenda_ledger_page *page)
{
    if (page == NULL) return;
    free(page->arena_);
    free(page);
}

/* ---- reading the log ---- */

trastenda_err
trastenda_store_log_scan(trastenda_store *st, uint64_t from_seq, uint64_t max_entries,
                         trastenda_log_visit_fn visit, void *ctx, uint64_t *next)
{
    if (st == NULL || visit == NULL || next == NULL || from_seq == 0) return TRASTENDA_E_INVALID;
    uint64_t durable = LOAD(&st->durable_seq);
    *next = from_seq;
    if (from_seq > durable) return TRASTENDA_OK;
    uint64_t first = LOAD(&st->log_first_seq);
    if (first != 0 && from_seq < first) return TRASTENDA_E_SEQUENCE;
    uint8_t key[DB_LOG_KEY_BYTES];
    db_log_key(key, from_seq);
    rocksdb_iterator_t *it = rocksdb_create_iterator(st->log.db, st->log.ro);
    trastenda_err code = TRASTENDA_OK;
    uint64_t n = 0, want = from_seq;
    for (rocksdb_iter_seek(it, (const char *)key, sizeof(key));
         rocksdb_iter_valid(it) && n < max_entries; rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        uint64_t seq = db_log_key_seq(k, klen);
        if (seq == 0 || seq > durable) break; /* only what is durable */
        if (seq != want) {
            code = TRASTENDA_E_SEQUENCE; /* cut meanwhile */
            break;
        }
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
        n++;
        want = seq + 1;
        if (!visit(ctx, seq, v, vlen)) break;
    }
    if (code == TRASTENDA_OK) {
        char *rerr = NULL;
        rocksdb_iter_get_error(it, &rerr);
        if (rerr != NULL) {
            rocksdb_free(rerr);
            code = TRASTENDA_E_IO;
        }
    }
    rocksdb_iter_destroy(it);
    if (code == TRASTENDA_OK && n == 0 && want <= durable) code = TRASTENDA_E_SEQUENCE;
    *next = want;
    return code;
}

void
trastenda_store_log_keep(trastenda_store *st, uint64_t seq)
{
    STORE(&st->log_keep, seq);
}

uint64_t
trastenda_store_log_first(const trastenda_store *st)
{
    return LOAD(&st->log_first_seq);
}
