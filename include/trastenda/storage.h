/*
 * include/trastenda/storage.h - a durable Trastenda node: the engine behind a submit queue, one
 * RocksDB log entry per batch (group commit), a materialized state, recovery.
 *
 * The path of every change: trastenda_store_submit() (any thread) puts a request on a bounded
 * lock-free queue; the engine thread applies whatever has queued up as one batch; the log writer
 * writes the batch's log entry as one put (fsync'ed in TRASTENDA_DURABILITY_FSYNC); only then does
 * each request's done() run. While batch n is being written, batch n+1 is applied, so batches
 * grow with the load and a lone request waits for no company. docs/STORAGE.md has the design.
 *
 * Stock reads on trastenda_store_engine() (the "any thread" functions of engine.h) may see a batch
 * that is applied but not yet durable; trastenda_store_durable_seq() tells what is durable.
 */
#ifndef TRASTENDA_STORAGE_H
#define TRASTENDA_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trastenda.h"
#include "trastenda/engine.h"
#include "trastenda/log.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum trastenda_durability {
    /* Each batch's write is fsync'ed before its requests complete: survives a power loss. */
    TRASTENDA_DURABILITY_FSYNC = 0,
    /* Written to the operating system without fsync: survives a process crash, not a power loss. */
    TRASTENDA_DURABILITY_ASYNC = 1
} trastenda_durability;

typedef enum trastenda_log_level {
    TRASTENDA_LOG_ERROR = 0,
    TRASTENDA_LOG_WARN = 1,
    TRASTENDA_LOG_INFO = 2,
    TRASTENDA_LOG_DEBUG = 3
} trastenda_log_level;

/* A log line (no trailing newline). Called from any of the store's threads. */
typedef void (*trastenda_log_fn)(void *ctx, trastenda_log_level level, const char *msg);
/* The default: "2026-11-27T03:30:00.123Z INFO message" lines on stderr. */
void trastenda_log_stderr(void *ctx, trastenda_log_level level, const char *msg);

typedef struct trastenda_store_config {
    const char *dir; /* data directory; holds log/ and state/ (created when missing) */
    trastenda_engine_config engine;
    trastenda_durability durability;
    uint32_t queue_max;               /* requests waiting for the engine; a power of two */
    uint32_t materialize_interval_ms; /* the state is written at most this often */
    /* ... and at least this often while entries come (0: 10 x materialize_interval_ms, at most
     * an hour). In between, a state write waits until the log written since the last one is as
     * large as that write was: a write costs about what it writes, a restart replays the log. */
    uint32_t materialize_interval_max_ms;
    int64_t log_retention_ms;     /* log entries kept behind the materialized state */
    uint64_t log_retention_bytes; /* and at most about this many bytes of it; 0: no bound */
    /* Entries a known follower still needs (trastenda_store_log_keep) are kept past the two
     * bounds above while the log behind the state holds at most about this many bytes; beyond
     * it the log is cut and that follower must bootstrap. Default 1 GiB; 0: followers hold
     * nothing. */
    uint64_t log_follower_bytes_max;
    int64_t ledger_retention_ms; /* ledger index history kept; 0: all of it (default) */
    trastenda_log_level log_level;
    trastenda_log_fn log; /* NULL: timestamped lines on stderr */
    void *log_ctx;
    /* The batch clock, ms since the epoch; NULL: CLOCK_REALTIME. Batches are stamped
     * max(clock, last batch time), so a clock that steps back never breaks the log. */
    int64_t (*clock_ms)(void *ctx);
    void *clock_ctx;
    /* Called on the log writer thread with each entry once it is durable, before its requests
     * complete (events publishing, replication's live tail). Must be quick and must not block. */
    void (*on_durable)(void *ctx, uint64_t seq, const uint8_t *entry, size_t len);
    void *on_durable_ctx;
    /* Called on the engine thread once a batch (or a follower's entries, up to seq) is applied
     * to the live tables, before it is durable (reads waiting for a sequence). Must be quick
     * and must not block; NULL: none. on_durable_ctx is its context too. */
    void (*on_applied)(void *ctx, uint64_t seq);
    /*
     * Replication (docs/REPLICATION.md). A follower's store takes the leader's log entries
     * (trastenda_store_append), never commands (E_NOT_LEADER), and does no maintenance of its
     * own: expiries come from the leader's log. trastenda_store_promote() makes it a leader.
     */
    bool follower;
    /* As a leader: a batch's requests complete only once this many followers acknowledged it
     * (trastenda_store_ack); after sync_timeout_ms without that they complete with
     * E_NOT_REPLICATED (the batch is durable here, not on enough followers). 0: no wait. */
    uint32_t sync_replicas;
    uint32_t sync_timeout_ms; /* 0: 5000 */
    /* Anti-entropy: the materializer's digests, one per this much batch time (default 10000;
     * 0: none). Nodes that compare digests need the same value. */
    uint32_t digest_interval_ms;
} trastenda_store_config;

void trastenda_store_config_default(trastenda_store_config *cfg);
/* cfg's materialize_interval_max_ms with its default (0) resolved: the longest a durable entry
 * waits for the state to be written while entries come. */
uint32_t trastenda_store_interval_max_ms(const trastenda_store_config *cfg);

typedef struct trastenda_store trastenda_store;
typedef struct trastenda_request trastenda_request;

/* Runs on the engine thread between batches: for the engine queries that are not "any thread". */
typedef void (*trastenda_query_fn)(trastenda_request *req, const trastenda_engine *e);

/*
 * One submission: n commands applied in order within one batch, or a query. Caller-owned and
 * untouched by the caller from submit until done() runs; the commands and everything they point
 * to are borrowed for that long too.
 */
struct trastenda_request {
    const trastenda_cmd *cmds;
    uint32_t n;                /* 0 .. engine.batch_cmds_max (0: a query alone) */
    trastenda_result *results; /* n, filled before done() */
    trastenda_alloc *allocs;   /* results' placements are copied here (may be NULL) */
    uint32_t allocs_max;       /* placements beyond it are dropped (alloc_count says so) */
    /* Runs on the engine thread: alone (n == 0) between batches, or right after the batch that
     * applied the request's commands (it sees them; they are not durable yet). */
    trastenda_query_fn query;
    /*
     * Runs once, on a store thread: status TRASTENDA_OK when the batch holding the request is
     * durable (or the query ran); TRASTENDA_E_IO when its write failed: not acknowledged, and
     * the outcome is unknown (a failed fsync may still have reached the disk: after the restart
     * the change may be there or not; retry with the same idempotency key); the store has
     * stopped. TRASTENDA_E_CLOSED when the store closed before applying it.
     */
    void (*done)(trastenda_request *req, trastenda_err status);
    void *ctx;
    uint64_t seq;    /* out: the batch (log sequence) that holds the request */
    int64_t time_ms; /* out: that batch's time */
    /*
     * A follower's request: the leader's log entries, stored and applied as they are, instead of
     * commands (n == 0, no query): n_entries entries in entries_len bytes, each a u32
     * little-endian length then the entry. They make one batch of their own (one write). The
     * first must follow the store's last entry. Out: entries_applied (seq is the last one's) and
     * entry_err, the reason the entry after them was refused (TRASTENDA_OK when none was:
     * E_SEQUENCE for a gap or another history, E_CORRUPT for a malformed entry, and then
     * entry_version: the log format version the refused entry's header names, 0 when it has
     * none). done() runs once the applied ones are durable.
     */
    const uint8_t *entries;
    size_t entries_len;
    uint32_t n_entries;
    uint32_t entries_applied;
    trastenda_err entry_err;
    uint16_t entry_version;
    trastenda_request *next_; /* the store's */
};

/*
 * Opens (creating when missing) and recovers the data directory: loads the materialized state,
 * replays the log after it, checks every invariant, then starts the engine, log writer and
 * materializer threads. On failure returns an error and writes a message into err (errlen bytes):
 * E_CORRUPT for a damaged or foreign database or one of a newer format, E_IO for an unusable
 * directory, E_INVALID for a bad configuration (engine tables smaller than those
 * the directory was written with included: the message names the setting to raise).
 */
trastenda_err trastenda_store_open(const trastenda_store_config *cfg, trastenda_store **out,
                                   char *err, size_t errlen);

/*
 * Stops accepting requests, applies and makes durable what was queued, writes the state and
 * closes the databases. Accepts NULL.
 */
void trastenda_store_close(trastenda_store *st);

/*
 * Any thread. TRASTENDA_OK: done() will run. Otherwise done() will not run: E_BUSY (queue full:
 * retry later), E_BATCH_TOO_BIG, E_INVALID (malformed request), E_CLOSED, E_IO (the store stopped
 * after a storage failure).
 */
trastenda_err trastenda_store_submit(trastenda_store *st, trastenda_request *req);

/* The live engine, for the "any thread" reads of engine.h. */
const trastenda_engine *trastenda_store_engine(const trastenda_store *st);

#define TRASTENDA_BATCH_HIST_BUCKETS 16
#define TRASTENDA_WRITE_HIST_BUCKETS 20

typedef struct trastenda_store_stats {
    uint64_t applied_seq;      /* last batch applied in memory */
    uint64_t durable_seq;      /* last batch durable: the watermark */
    uint64_t materialized_seq; /* last batch in the materialized state */
    uint64_t log_first_seq;    /* oldest entry still in the log (0: none) */
    uint64_t log_keep_seq;     /* oldest entry a follower still needs (0: none) */
    uint64_t batches, commands, requests, queries;
    uint64_t busy;           /* submissions refused with E_BUSY */
    uint64_t log_bytes;      /* bytes of log entries written */
    uint64_t batch_cmds_max; /* largest batch, in commands */
    /* Batches by size: [i] counts those of at most 2^i commands (i < 15), [15] the larger ones. */
    uint64_t batch_cmds_hist[TRASTENDA_BATCH_HIST_BUCKETS];
    /* Log writes (one put, and its fsync in fsync mode) by duration: [i] counts those of at most
     * 2^i microseconds (i < 19), [19] the longer ones; their total time in ns. */
    uint64_t log_write_hist[TRASTENDA_WRITE_HIST_BUCKETS];
    uint64_t log_write_ns;
    uint64_t state_writes, pages_written, pages_deleted;
    uint64_t state_write_bytes; /* the last state write's size */
    uint64_t ledger_chunks;     /* ledger index chunks written (one per SKU per state write) */
    uint64_t ledger_chunks_cut; /* removed by ledger retention */
    uint64_t archived;          /* holds and orders archived after retention removed them */
    uint64_t recovered_entries; /* log entries replayed at open */
    double recovery_ms;         /* time open spent recovering */
    uint32_t queue_depth;
    uint8_t failed; /* a storage failure stopped the store */
    trastenda_durability durability;
    uint8_t follower;          /* takes entries, not commands */
    uint64_t epoch;            /* the epoch of the last durable entry (or the promotion's) */
    int64_t durable_time_ms;   /* the time of the last durable entry */
    uint64_t acked_seq;        /* sync replication: acknowledged by enough followers */
    uint64_t not_replicated;   /* batches completed with E_NOT_REPLICATED */
    uint64_t entries_appended; /* follower: leader entries stored */
} trastenda_store_stats;

/* Any thread. */
void trastenda_store_stats_get(trastenda_store *st, trastenda_store_stats *out);
uint64_t trastenda_store_durable_seq(const trastenda_store *st);
/* The last batch applied to the live tables (durable or being written). Any thread. */
uint64_t trastenda_store_applied_seq(const trastenda_store *st);

/*
 * A consistent copy of the running store in dir (which must not exist or be empty): the state
 * database at its materialized sequence first, then the log database, which holds everything
 * after it (the log is not cut meanwhile). The engine keeps running. Opening the directory as a
 * store (or a copy of it) restores exactly the state at *seq, the last entry in the copy. RocksDB
 * checkpoints hard-link files when dir is on the same filesystem.
 */
trastenda_err trastenda_store_checkpoint(trastenda_store *st, const char *dir, uint64_t *seq,
                                         char *err, size_t errlen);

typedef struct trastenda_verify_report {
    uint64_t log_first, log_last, log_entries, log_bytes;
    uint64_t state_seq, state_records; /* the materialized state */
    uint64_t replayed;                 /* log entries applied on top of it */
    uint64_t seq;                      /* the state verified */
    uint64_t stock_records;
    uint64_t digest;
} trastenda_verify_report;

/*
 * Verifies a data directory or checkpoint offline, without changing it: every log entry well
 * formed and gapless, the materialized state loads, the log replays on it to a consistent state,
 * and every invariant holds. engine: tables at least as large as the writer's, or NULL for the
 * capacities the directory records. E_CORRUPT with a message naming what is wrong.
 */
trastenda_err trastenda_store_verify(const char *dir, const trastenda_engine_config *engine,
                                     trastenda_verify_report *rep, char *err, size_t errlen);

/*
 * ---- Ledger queries ----
 *
 * The materializer indexes the ledger by SKU as it writes the state: every movement except hold
 * churn (reserve, release, expire: they never touch on_hand). A query first has the materializer
 * write everything durable so far (it waits at most timeout_ms for that: movements not yet
 * materialized are included by waiting for the materializer, not by reading the log), then reads
 * the index without loading history into memory. Newest first, paginated by ledger sequence.
 */
typedef struct trastenda_ledger_query {
    trastenda_str sku;   /* required */
    trastenda_str loc;   /* optional: one location */
    int64_t from_ms;     /* inclusive; 0: no bound */
    int64_t to_ms;       /* inclusive; 0: no bound */
    uint64_t before_seq; /* continue below this ledger sequence (a page's next); 0: the newest */
    uint32_t limit;      /* 1 .. TRASTENDA_PAGE_MAX */
    uint32_t timeout_ms; /* waiting for the materializer; 0: 5000 */
} trastenda_ledger_query;

typedef struct trastenda_ledger_row {
    int64_t time_ms; /* the batch's time */
    trastenda_ledger_entry e;
} trastenda_ledger_row;

typedef struct trastenda_ledger_page {
    uint32_t count;
    uint8_t complete; /* 0 when the materializer did not catch up within the timeout */
    uint64_t next;    /* before_seq of the next page; 0 when there is none */
    trastenda_ledger_row rows[TRASTENDA_PAGE_MAX]; /* strings point into the page */
    uint8_t *arena_;
    size_t arena_len_, arena_cap_;
} trastenda_ledger_page;

/* Any thread. *out is allocated; free it with trastenda_ledger_page_free. E_INVALID on a bad
 * query (message in err), E_IO on a read error. */
trastenda_err trastenda_store_ledger(trastenda_store *st, const trastenda_ledger_query *q,
                                     trastenda_ledger_page **out, char *err, size_t errlen);
void trastenda_ledger_page_free(trastenda_ledger_page *page);

/*
 * The archive: a hold or order that retention removed from memory, as it was when it left. Any
 * thread; waits for the materializer like a ledger query. E_UNKNOWN_HOLD / E_UNKNOWN_ORDER when
 * it is not archived (it may still be in memory: ask the engine first).
 */
trastenda_err trastenda_store_hold_archived(trastenda_store *st, uint64_t id,
                                            trastenda_hold_view *out);
trastenda_err trastenda_store_order_archived(trastenda_store *st, trastenda_str order_id,
                                             trastenda_order_view *out);

/*
 * Reading the log: calls visit(ctx, seq, entry, len) for the durable entries from from_seq on,
 * in order, at most max_entries, until visit returns false; *next is the sequence after the last
 * one visited. E_SEQUENCE when from_seq is older than the log still holds (retention cut it: the
 * caller must bootstrap from a checkpoint). Any thread; entries are borrowed during visit.
 */
typedef bool (*trastenda_log_visit_fn)(void *ctx, uint64_t seq, const uint8_t *entry, size_t len);
trastenda_err trastenda_store_log_scan(trastenda_store *st, uint64_t from_seq, uint64_t max_entries,
                                       trastenda_log_visit_fn visit, void *ctx, uint64_t *next);
/* The oldest entry the log holds or will hold next (0: nothing was ever written). Any thread. */
uint64_t trastenda_store_log_first(const trastenda_store *st);
/* The oldest entry that a follower known to this leader still needs (its last entry, which the
 * history check reads, and everything after it); 0: none. The log keeps it and what follows
 * past log_retention_ms and log_retention_bytes, up to log_follower_bytes_max. Any thread. */
void trastenda_store_log_keep(trastenda_store *st, uint64_t seq);

/*
 * ---- Replication (docs/REPLICATION.md) ----
 */

/* Is the store a follower (takes entries, not commands)? Any thread. */
bool trastenda_store_is_follower(const trastenda_store *st);
/* The epoch of the last durable entry. Any thread. */
uint64_t trastenda_store_epoch(const trastenda_store *st);
/* Commands in the batches made durable since the store opened (on_durable sees the count
 * including its entry's). Any thread. */
uint64_t trastenda_store_durable_commands(const trastenda_store *st);

/*
 * Promotion: a follower becomes the leader of epoch `epoch` (above every epoch it has seen). An
 * empty batch carrying the new epoch is logged and made durable before this returns, so the
 * epoch is persisted before the first write; commands are taken from then on. *seq: that batch.
 * E_INVALID (message in err) when the store is not a follower or the epoch is not higher; E_IO
 * when the write failed. Any thread except the store's.
 */
trastenda_err trastenda_store_promote(trastenda_store *st, uint64_t epoch, uint64_t *seq, char *err,
                                      size_t errlen);

/* A store opened as a follower that has taken no entry becomes the leader of its own epoch (no
 * new entry): a node that checked with its peers before it led (docs/REPLICATION.md, "The role
 * at start"). E_INVALID when it is not a follower or took entries since it opened. Any thread. */
trastenda_err trastenda_store_lead(trastenda_store *st);

/* Fencing: a leader that learnt of a higher epoch takes no more commands (E_NOT_LEADER), as a
 * follower. Requests already queued are still applied. Any thread. */
void trastenda_store_fence(trastenda_store *st);

/* Sync replication: enough followers have durably applied every entry up to seq. Any thread. */
void trastenda_store_ack(trastenda_store *st, uint64_t seq);

/*
 * Anti-entropy (docs/REPLICATION.md): the materializer takes the state digest of its copy after
 * each entry whose batch time enters a new digest_interval_ms (the rule reads only the log, so
 * every node takes it at the same entries). The last TRASTENDA_STORE_DIGESTS are kept; this
 * copies up to max of them, oldest first, and returns how many. Any thread.
 */
#define TRASTENDA_STORE_DIGESTS 16
typedef struct trastenda_store_digest {
    uint64_t seq, digest;
} trastenda_store_digest;
uint32_t trastenda_store_digests(trastenda_store *st, trastenda_store_digest *out, uint32_t max);

/*
 * Bootstrap: a checkpoint of the running store (trastenda_store_checkpoint) in dir, as files to
 * stream to a follower. Names are relative to dir ("log/000012.sst"); the checkpoint restores
 * the state at trastenda_snapshot_seq(). trastenda_snapshot_remove() deletes the files.
 */
typedef struct trastenda_snapshot trastenda_snapshot;
trastenda_err trastenda_snapshot_create(trastenda_store *st, const char *dir,
                                        trastenda_snapshot **out, char *err, size_t errlen);
uint64_t trastenda_snapshot_seq(const trastenda_snapshot *s);
uint64_t trastenda_snapshot_total(const trastenda_snapshot *s); /* bytes of all the files */
uint32_t trastenda_snapshot_files(const trastenda_snapshot *s);
/* File i's name and size; NULL past the last. */
const char *trastenda_snapshot_file(const trastenda_snapshot *s, uint32_t i, uint64_t *size);
/* Up to cap bytes of file i from off (*got: fewer at its end). */
trastenda_err trastenda_snapshot_read(const trastenda_snapshot *s, uint32_t i, uint64_t off,
                                      void *buf, size_t cap, size_t *got);
void trastenda_snapshot_remove(trastenda_snapshot *s);

/* The follower's side: writes a chunk of a file into the staging directory (names that would
 * leave it are refused), then swaps the staging directory in for dir once every file is there
 * (fsync'ed first; the old data is removed after the swap). */
trastenda_err trastenda_snapshot_write(const char *staging, const char *name, uint64_t off,
                                       const void *data, size_t len, char *err, size_t errlen);
trastenda_err trastenda_snapshot_install(const char *staging, const char *dir, char *err,
                                         size_t errlen);
/* A swap that a crash cut short (between install's two renames: dir gone, dir.old and the synced
 * staging directory there, with the LEADER file a complete download ends with) is finished:
 * staging becomes dir, dir.old is removed. *finished says whether there was one. Anything else
 * is left as it is. E_IO (message) when the rename fails. */
trastenda_err trastenda_snapshot_recover(const char *staging, const char *dir, bool *finished,
                                         char *err, size_t errlen);
/* Removes a file or a directory tree; 0 or an errno. */
int trastenda_rmtree(const char *path);

#ifdef __cplusplus
}
#endif
#endif /* TRASTENDA_STORAGE_H */
