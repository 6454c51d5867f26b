/*
 * include/trastenda/engine.h - the embeddable engine: Trastenda's deterministic state machine.
 *
 * One thread (the writer) applies batches of commands with trastenda_engine_apply(); each batch
 * yields one result per command and one log entry (docs/LOG.md) holding the batch's effects as
 * post-images, its ledger entries and its events. trastenda_engine_apply_entry() applies such an
 * entry to another engine: recovery, replication and the materializer share that one path.
 *
 * Threads: every function is for the writer thread unless it says "any thread". The "any thread"
 * functions (lookups, stock reads, availability) read the tables without locks while the writer
 * applies batches; they never see a torn or negative-by-tearing figure (a seqlock per record).
 *
 * Ownership: strings and arrays passed in are borrowed for the duration of the call. Pointers the
 * engine returns (result allocations, the log entry) are borrowed until the next apply call.
 */
#ifndef TRASTENDA_ENGINE_H
#define TRASTENDA_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trastenda.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct trastenda_engine trastenda_engine;

/* A string slice; not NUL-terminated. len 0 means absent where a field is optional. */
typedef struct trastenda_str {
    const char *ptr;
    uint32_t len;
} trastenda_str;

/* No index: the engine resolves the id itself. */
#define TRASTENDA_IX_NONE UINT32_MAX

/*
 * A SKU or location named by id. ix may carry the index from trastenda_engine_sku_lookup() /
 * trastenda_engine_location_lookup(), done off the writer thread (indices are stable: SKUs and
 * locations are never removed). With ix == TRASTENDA_IX_NONE the writer looks the id up.
 */
typedef struct trastenda_ref {
    trastenda_str id;
    uint32_t ix;
} trastenda_ref;

typedef struct trastenda_engine_config {
    uint32_t locations_max;  /* locations (warehouses, stores) */
    uint32_t skus_max;       /* SKUs */
    uint32_t stock_max;      /* stock records, one per (SKU, location) */
    uint32_t holds_max;      /* holds, open and resolved-within-retention */
    uint32_t orders_max;     /* orders, open and finished-within-retention */
    uint32_t pos_max;        /* purchase orders */
    uint32_t keys_max;       /* idempotency keys within retention */
    uint32_t lines_max;      /* lines of holds, order allocations and PO lines, all together */
    uint32_t batch_cmds_max; /* commands in one batch */
    uint32_t expire_per_batch_max; /* holds expired per batch (a mass expiry spreads out) */
    uint32_t purge_per_batch_max;  /* retention removals per batch, per table */
    int64_t hold_retention_ms;     /* resolved holds stay in memory this long */
    int64_t order_retention_ms;    /* finished orders stay in memory this long */
    int64_t key_retention_ms;      /* idempotency keys are remembered this long */
    uint32_t review_days;          /* review period of reorder suggestions */
    uint64_t epoch;                /* leader epoch stamped on every log entry */
    /* Tables of 2 MiB and more on transparent huge pages (MADV_HUGEPAGE): random lookups over
     * millions of entries rarely miss the TLB (+13% reserve+release pairs over 1,000,000
     * records), but the first write to each 2 MiB page zeroes it, and may compact memory, on the
     * writer: milliseconds of latency while the tables fill. 0 (default): 4 KiB pages. A store
     * sets it on its materializer's copy, which is off the reply path (docs/STORAGE.md). */
    int huge_pages;
    /* Slots a page of the materialized state holds (a power of two, 1..65536; 0: the default,
     * TRASTENDA_PAGE_SLOTS). A materializer writes whole pages, so under changes spread over a
     * large table it writes about this many records for each one that changed; a page is also
     * one RocksDB value to read at a load. */
    uint32_t page_slots;
} trastenda_engine_config;

/* Defaults sized for a mid-size shop: see docs/ENGINE.md for the memory each costs. */
void trastenda_engine_config_default(trastenda_engine_config *cfg);

/* Creates an engine with every table preallocated; *out is caller-owned (destroy it). */
trastenda_err trastenda_engine_create(const trastenda_engine_config *cfg, trastenda_engine **out);
/* Accepts NULL. */
void trastenda_engine_destroy(trastenda_engine *e);

typedef enum trastenda_op {
    TRASTENDA_OP_LOCATION_UPSERT = 1,
    TRASTENDA_OP_LOCATION_DEACTIVATE = 2,
    TRASTENDA_OP_SKU_UPSERT = 3,
    TRASTENDA_OP_SKU_DEACTIVATE = 4,
    TRASTENDA_OP_RECEIVE = 5,         /* ad hoc receipt: on_hand += qty */
    TRASTENDA_OP_ADJUST = 6,          /* on_hand += qty (signed), with a reason */
    TRASTENDA_OP_COUNT = 7,           /* on_hand = qty (cycle count), optional expected (CAS) */
    TRASTENDA_OP_MOVE_UNSELLABLE = 8, /* qty > 0: sellable -> unsellable; qty < 0: back */
    TRASTENDA_OP_SET_SAFETY = 9,      /* safety_stock = qty */
    TRASTENDA_OP_TRANSFER_OUT = 10,   /* on_hand -= qty at loc; in_transit += qty at loc_to */
    TRASTENDA_OP_TRANSFER_IN = 11,    /* in_transit -= qty, on_hand += qty at loc */
    TRASTENDA_OP_RESERVE = 12,        /* hold lines for ttl_ms */
    TRASTENDA_OP_EXTEND = 13,         /* hold expires at now + ttl_ms */
    TRASTENDA_OP_CONFIRM = 14,        /* hold -> order id (held -> committed) */
    TRASTENDA_OP_RELEASE = 15,
    TRASTENDA_OP_ORDER_PLACE = 16, /* route and commit */
    TRASTENDA_OP_ORDER_PICK = 17,  /* all allocations, or those at loc */
    TRASTENDA_OP_ORDER_PACK = 18,
    TRASTENDA_OP_ORDER_SHIP = 19, /* on_hand and committed go down */
    TRASTENDA_OP_ORDER_DELIVER = 20,
    TRASTENDA_OP_ORDER_CANCEL = 21, /* before anything shipped: committed back to available */
    TRASTENDA_OP_ORDER_RETURN = 22, /* lines: sku, restock loc, qty, unsellable flag */
    TRASTENDA_OP_PO_CREATE = 23,    /* lines: sku, loc, qty -> incoming */
    TRASTENDA_OP_PO_RECEIVE = 24,   /* lines: sku, loc, qty -> incoming to on_hand */
    TRASTENDA_OP_PO_CLOSE = 25,     /* remaining incoming dropped */
    TRASTENDA_OP_NOOP = 26,         /* advances time only (expiry, retention) */
    TRASTENDA_OP_COUNT_ = 27
} trastenda_op;

/* Reasons of ADJUST, COUNT and MOVE_UNSELLABLE. */
typedef enum trastenda_reason {
    TRASTENDA_REASON_NONE = 0,
    TRASTENDA_REASON_COUNT = 1,
    TRASTENDA_REASON_DAMAGE = 2,
    TRASTENDA_REASON_THEFT = 3,
    TRASTENDA_REASON_FOUND = 4,
    TRASTENDA_REASON_CORRECTION = 5,
    TRASTENDA_REASON_QUALITY = 6, /* quality control (MOVE_UNSELLABLE) */
    TRASTENDA_REASON_COUNT_ = 7
} trastenda_reason;

#define TRASTENDA_LINE_UNSELLABLE 1u /* return line: restock as unsellable */

typedef struct trastenda_line {
    trastenda_ref sku;
    trastenda_ref loc; /* optional for RESERVE (routed); required elsewhere it is used */
    int64_t qty;
    uint32_t flags;
} trastenda_line;

/*
 * One command. Fields not used by the op are ignored. Every field is validated before anything
 * changes: a failed command leaves no trace.
 */
typedef struct trastenda_cmd {
    uint32_t op;                   /* trastenda_op */
    uint32_t reason;               /* trastenda_reason: ADJUST, COUNT, MOVE_UNSELLABLE */
    trastenda_str key;             /* idempotency key, optional (ORDER_PLACE uses order_id) */
    trastenda_str actor;           /* who did it, optional; goes into the ledger */
    trastenda_str reference;       /* free reference (transfer number, note), optional */
    trastenda_ref sku;             /* single-record commands; SKU_UPSERT id */
    trastenda_ref loc;             /* single-record commands; LOCATION_UPSERT id; pick/pack/ship */
    trastenda_ref loc_to;          /* TRANSFER_OUT destination */
    trastenda_str order_id;        /* ORDER_*, CONFIRM (new order's id) */
    trastenda_str po_id;           /* PO_* */
    trastenda_str name;            /* upserts */
    trastenda_str channel;         /* RESERVE (routed lines), ORDER_PLACE, CONFIRM (optional) */
    const trastenda_str *channels; /* LOCATION_UPSERT: channels served */
    uint32_t channel_count;
    uint64_t hold_id;       /* EXTEND, CONFIRM, RELEASE */
    int64_t qty;            /* quantity, signed delta, absolute count or safety stock */
    int64_t expected;       /* COUNT: expected current on_hand when has_expected */
    int64_t ttl_ms;         /* RESERVE, EXTEND */
    int64_t reorder_point;  /* SKU_UPSERT */
    int64_t reorder_qty;    /* SKU_UPSERT */
    int64_t safety_stock;   /* SKU_UPSERT: default safety stock of new records */
    int32_t lead_days;      /* SKU_UPSERT */
    int32_t priority;       /* LOCATION_UPSERT: lower routes first */
    int32_t lat_e6, lon_e6; /* location, or ship-to when has_ship_to; micro-degrees */
    uint8_t has_ship_to;
    uint8_t has_expected;
    uint8_t partial; /* RESERVE: take what is available per line instead of all-or-nothing */
    uint8_t active;  /* upserts */
    const trastenda_line *lines;
    uint32_t line_count;
} trastenda_cmd;

typedef enum trastenda_route_rule {
    TRASTENDA_RULE_NONE = 0,
    TRASTENDA_RULE_EXPLICIT = 1, /* every line named its location */
    TRASTENDA_RULE_SINGLE = 2,   /* one location ships it all: nearest, priority, id */
    TRASTENDA_RULE_EXACT = 3,    /* fewest shipments, every combination searched */
    TRASTENDA_RULE_GREEDY = 4    /* fewest shipments, greedy cover (more than 8 candidates) */
} trastenda_route_rule;

/* Placements of one hold, allocations of one order: a routed line may be split. */
#define TRASTENDA_ALLOCS_MAX 128

/* A placement (sku at loc, qty), or on TRASTENDA_E_SHORT a requested line and its shortage. */
typedef struct trastenda_alloc {
    uint32_t sku_ix;
    uint32_t loc_ix; /* TRASTENDA_IX_NONE when a line had no location */
    int64_t qty;
    int64_t short_qty; /* units missing (E_SHORT), 0 otherwise */
} trastenda_alloc;

typedef struct trastenda_result {
    trastenda_err code;
    uint32_t op;
    uint32_t line;     /* index of the offending line on error, UINT32_MAX otherwise */
    uint8_t duplicate; /* replay of an idempotency key: first result, nothing changed */
    uint8_t rule;      /* trastenda_route_rule of RESERVE, ORDER_PLACE */
    uint8_t state;     /* hold or order state after the command */
    /* Hold id (RESERVE), order number (ORDER_PLACE, CONFIRM); on an error of a command naming a
     * hold or an order, that one's, with its current state in `state`. */
    uint64_t id;
    /* RESERVE/EXTEND: expiry ms; stock commands: on_hand after (the source's for TRANSFER_OUT);
     * CAS mismatch: the current on_hand. */
    int64_t value;
    const trastenda_alloc *allocs; /* placements, or shortages; borrowed until next apply */
    uint32_t alloc_count;
    char message[TRASTENDA_MESSAGE_BYTES]; /* names field, limit and value on error */
} trastenda_result;

/* What a batch produced. entry is borrowed until the next apply call. */
typedef struct trastenda_batch_out {
    uint64_t seq;         /* batch sequence number of this entry (1, 2, ...) */
    const uint8_t *entry; /* the log entry, docs/LOG.md */
    size_t entry_len;
    uint32_t ledger_count;
    uint32_t event_count;
} trastenda_batch_out;

/*
 * Applies n commands at time now_ms (must be >= the previous batch's time) as one batch.
 * Before the commands: due holds expire and retention windows are enforced (bounded per batch).
 * Writes one result per command (results: caller-owned, n entries). Returns TRASTENDA_OK when the
 * batch was applied (commands may have failed individually: see each result), or an error when
 * nothing was applied: E_BATCH_TOO_BIG, E_TIME, E_INVALID (NULL arguments).
 */
trastenda_err trastenda_engine_apply(trastenda_engine *e, int64_t now_ms, const trastenda_cmd *cmds,
                                     uint32_t n, trastenda_result *results,
                                     trastenda_batch_out *out);

/*
 * Applies a log entry produced by another engine's apply (recovery, replication). The entry must be
 * the next one (seq = applied seq + 1), or the very entry last applied by this function again (no
 * change). E_CORRUPT on a malformed entry or a time going backwards; E_SEQUENCE on a gap, on
 * another entry with the last sequence (a diverged history) or on an older epoch (a fenced
 * leader); nothing is applied then.
 */
trastenda_err trastenda_engine_apply_entry(trastenda_engine *e, const uint8_t *entry, size_t len);

/*
 * The same for an entry this process has checked already: one its writer produced, or one another
 * engine of the process accepted through trastenda_engine_apply_entry() (a follower's live engine,
 * before the entry was logged). The check pass (every record's shape and every id it names,
 * before anything changes) is skipped (docs/BENCHMARKS.md, "Replay"). An entry that does not
 * apply after all leaves e partly changed (E_CORRUPT), or stops the process when a record names
 * what e does not have: the caller must not use e again (the materializer's engine, fed only by
 * its own node's log, stops that node).
 */
trastenda_err trastenda_engine_apply_entry_checked(trastenda_engine *e, const uint8_t *entry,
                                                   size_t len);

/*
 * ---- Images: the state in pages (storage's materialized state) ----
 *
 * A materializer keeps its own engine, fed only by trastenda_engine_apply_entry(), and writes its
 * state out in pages: page p of a table holds the records in slots p * P .. (p + 1) * P - 1 of
 * that engine (P: its config's page_slots), encoded as log records (docs/LOG.md) after a
 * u32 record count. Tables are named by their record type: TRASTENDA_REC_CHANNEL (one page),
 * _LOCATION, _SKU, _STOCK, _HOLD, _ORDER, _PO, _KEY and _META (one page: the id counters).
 * Slot numbers are the materializer's own: pages are a local storage layout, never shipped.
 *
 * Loading: into a new engine, every page of every table in the order of TRASTENDA_IMAGE_TABLES
 * (records refer to earlier tables), then trastenda_engine_load_finish() with the sequence, time
 * and epoch the pages reflect. Retention queues are rebuilt in (time, id) order.
 */
#define TRASTENDA_PAGE_SLOTS 256 /* default of trastenda_engine_config.page_slots */
/* A page size the engine takes: a power of two in 1..65536 (0 in a config means the default). */
static inline bool
trastenda_page_slots_valid(uint32_t n)
{
    return n != 0 && n <= 65536 && (n & (n - 1)) == 0;
}
#define TRASTENDA_IMAGE_TABLES 9
extern const uint8_t trastenda_image_tables[TRASTENDA_IMAGE_TABLES];

/* Slots a page of e holds (its config's page_slots, the default resolved). */
uint32_t trastenda_engine_page_slots(const trastenda_engine *e);
/* From now on, pages that trastenda_engine_apply_entry() changes are marked. E_NOMEM. */
trastenda_err trastenda_engine_pages_track(trastenda_engine *e);
/* Marks every page that holds a record (a first full write). */
void trastenda_engine_pages_mark_all(trastenda_engine *e);
/* The same for one table; E_INVALID on an unknown table or before pages_track. */
trastenda_err trastenda_engine_pages_mark_table(trastenda_engine *e, uint8_t table);
/*
 * Does loading keep each record of this table in the slot (so the page) it had? Yes for
 * locations, SKUs and stock records (insert-only, no holes), channels and meta; no for holds,
 * orders, POs and keys, which a load packs from slot 0. A materializer that loaded its copy
 * must therefore rewrite those tables whole, without their old pages, at its first write: a page
 * of the old layout left beside the new ones would load a stale copy of a record (storage does
 * it, docs/STORAGE.md).
 */
bool trastenda_engine_load_keeps_slots(uint8_t table);
/* The next marked page >= from of a table, UINT32_MAX when none. */
uint32_t trastenda_engine_page_next(const trastenda_engine *e, uint8_t table, uint32_t from);
/*
 * Encodes a page and clears its mark. *out is borrowed until the next encode; *len is 0 when the
 * page holds no record (storage deletes it). E_INVALID on an unknown table or page.
 */
trastenda_err trastenda_engine_page_encode(trastenda_engine *e, uint8_t table, uint32_t page,
                                           const uint8_t **out, size_t *len);
/*
 * Loads one page into an engine that has applied nothing yet. E_CORRUPT when the page is
 * malformed, holds records of another table, names what earlier tables do not define, or holds
 * a hold, order, PO or key an earlier page loaded already; nothing of that page is loaded then.
 * E_INVALID after load_finish or on an engine that applied batches.
 */
trastenda_err trastenda_engine_load_page(trastenda_engine *e, uint8_t table, const uint8_t *page,
                                         size_t len);
/*
 * Before loading pages: about how many records of a table the pages hold (an estimate; one too
 * high may put a sparse table on huge pages). A table filled densely is loaded onto transparent
 * huge pages, then returned to 4 KiB pages for what is not mapped yet by load_finish (or by
 * destroy, when the load fails; engine/image.c says why). Optional; E_INVALID as load_page.
 */
trastenda_err trastenda_engine_load_expect(trastenda_engine *e, uint8_t table, uint64_t records);
/*
 * Faults in, ahead of the load, the memory a load of that many records of a table will write (the
 * start of its entries; its map was written whole at create), so that the loading thread does
 * not wait for page faults. It changes no byte and reads nothing the load writes: call it from
 * another thread while this engine loads pages (storage does). E_INVALID on an unknown table.
 */
trastenda_err trastenda_engine_load_prefault(trastenda_engine *e, uint8_t table, uint64_t records);
/* Ends a load: the engine continues from seq (its next batch or entry is seq + 1). */
trastenda_err trastenda_engine_load_finish(trastenda_engine *e, uint64_t seq, int64_t time_ms,
                                           uint64_t epoch);

/*
 * The earliest time at which a batch would have maintenance to do (a hold to expire, a record
 * whose retention window ends); INT64_MAX when none. A node that receives no commands applies an
 * empty batch (TRASTENDA_OP_NOOP) at that time so that expiries happen without traffic.
 */
int64_t trastenda_engine_next_due_ms(const trastenda_engine *e);

/* Sequence and time of the last applied batch, and the epoch of the last entry (or the
 * configured one). */
uint64_t trastenda_engine_seq(const trastenda_engine *e);
uint64_t trastenda_engine_epoch(const trastenda_engine *e);
int64_t trastenda_engine_time_ms(const trastenda_engine *e);

/*
 * Promotion (writer thread): the entries of the batches applied from now on carry this epoch,
 * which must be above the current one (E_INVALID otherwise). Entries of an older epoch are then
 * refused by trastenda_engine_apply_entry() (a fenced leader's).
 */
trastenda_err trastenda_engine_set_epoch(trastenda_engine *e, uint64_t epoch);

/* A digest of the whole state, independent of table slot order. */
uint64_t trastenda_engine_digest(const trastenda_engine *e);

/* Full O(n) invariant check; aborts with a message on a violation. */
void trastenda_engine_check(const trastenda_engine *e);

/* ---- Lookups and stock reads: any thread ---- */

/* Index of a SKU / location id; E_UNKNOWN_SKU / E_UNKNOWN_LOCATION when absent. Any thread. */
trastenda_err trastenda_engine_sku_lookup(const trastenda_engine *e, trastenda_str id,
                                          uint32_t *ix);
trastenda_err trastenda_engine_location_lookup(const trastenda_engine *e, trastenda_str id,
                                               uint32_t *ix);
/* The id of an index, borrowed for the engine's lifetime. Any thread. */
trastenda_str trastenda_engine_sku_id(const trastenda_engine *e, uint32_t ix);
trastenda_str trastenda_engine_location_id(const trastenda_engine *e, uint32_t ix);

typedef struct trastenda_stock {
    uint32_t sku_ix;
    uint32_t loc_ix;
    int64_t on_hand;
    int64_t committed;
    int64_t held;
    int64_t unsellable;
    int64_t safety_stock;
    int64_t incoming;
    int64_t in_transit;
    int64_t available; /* derived; negative only in shortfall */
} trastenda_stock;

/* One consistent snapshot of a stock record. E_NO_STOCK_RECORD when none. Any thread. */
trastenda_err trastenda_engine_stock_read(const trastenda_engine *e, uint32_t sku_ix,
                                          uint32_t loc_ix, trastenda_stock *out);

/* Which locations count for availability. */
typedef enum trastenda_scope {
    TRASTENDA_SCOPE_ALL = 0,     /* every active location */
    TRASTENDA_SCOPE_CHANNEL = 1, /* active locations serving the channel */
} trastenda_scope;

/*
 * Available units of a SKU summed over the scope (shortfalls count as 0), and per location in
 * recs (caller-owned, rec_max entries; *rec_count set; records beyond rec_max are summed but not
 * listed). Any thread.
 */
trastenda_err trastenda_engine_availability(const trastenda_engine *e, uint32_t sku_ix,
                                            trastenda_scope scope, trastenda_str channel,
                                            int64_t *available, trastenda_stock *recs,
                                            uint32_t rec_max, uint32_t *rec_count);
/* The same, and *in_scope: how many records the scope has (listed or not). Any thread. */
trastenda_err trastenda_engine_availability_all(const trastenda_engine *e, uint32_t sku_ix,
                                                trastenda_scope scope, trastenda_str channel,
                                                int64_t *available, trastenda_stock *recs,
                                                uint32_t rec_max, uint32_t *rec_count,
                                                uint32_t *in_scope);
/*
 * The same sum, with the records listed a page at a time in location index order: those at
 * location index from_loc and above, at most rec_max (> 0), *next_loc the from_loc of the next
 * page (0 when this one ends the list). Pages are stable while records are added (an index is
 * never reused); a record's figures are those of the moment its page was read. Any thread.
 */
trastenda_err trastenda_engine_availability_page(const trastenda_engine *e, uint32_t sku_ix,
                                                 trastenda_scope scope, trastenda_str channel,
                                                 uint32_t from_loc, int64_t *available,
                                                 trastenda_stock *recs, uint32_t rec_max,
                                                 uint32_t *rec_count, uint32_t *next_loc);

/*
 * Warms the cache for stock reads of these SKUs (a request's stock checks): their index slots,
 * entries and first stock records, each step for all of them before the next, so that the
 * memory misses of a large catalogue overlap instead of queueing one lookup after another.
 * Reads nothing back; ids that are not SKUs are skipped. Any thread.
 */
void trastenda_engine_stock_prefetch(const trastenda_engine *e, const trastenda_str *skus,
                                     uint32_t n);
/* The same for id lookups only (a request's writes, before trastenda_engine_sku_lookup of each
 * of their SKUs): index slots and entries, not the stock records. Any thread. */
void trastenda_engine_sku_prefetch(const trastenda_engine *e, const trastenda_str *skus,
                                   uint32_t n);

/* ---- Queries through the writer thread ---- */

typedef enum trastenda_hold_state {
    TRASTENDA_HOLD_OPEN = 1,
    TRASTENDA_HOLD_CONFIRMED = 2,
    TRASTENDA_HOLD_RELEASED = 3,
    TRASTENDA_HOLD_EXPIRED = 4
} trastenda_hold_state;

typedef enum trastenda_order_state {
    TRASTENDA_ORDER_PLACED = 1,
    TRASTENDA_ORDER_ALLOCATED = 2,
    TRASTENDA_ORDER_PICKING = 3,
    TRASTENDA_ORDER_PACKED = 4,
    TRASTENDA_ORDER_SHIPPED = 5,
    TRASTENDA_ORDER_DELIVERED = 6,
    TRASTENDA_ORDER_CANCELLED = 7,
    TRASTENDA_ORDER_RETURNED = 8 /* every shipped unit came back */
} trastenda_order_state;

typedef struct trastenda_hold_view {
    uint64_t id;
    uint8_t state; /* trastenda_hold_state */
    int64_t created_ms;
    int64_t expires_ms;
    int64_t resolved_ms; /* 0 while open */
    uint64_t order_no;   /* when confirmed */
    uint32_t line_count;
    trastenda_alloc lines[TRASTENDA_ALLOCS_MAX]; /* sku, loc, qty; none once confirmed */
} trastenda_hold_view;

typedef struct trastenda_order_alloc {
    uint32_t sku_ix;
    uint32_t loc_ix;
    int64_t qty;
    int64_t shipped;
    int64_t returned;
    uint8_t state; /* trastenda_order_state of this allocation */
} trastenda_order_alloc;

typedef struct trastenda_order_view {
    char id[TRASTENDA_ID_BYTES_MAX + 1];
    uint64_t no;
    uint8_t state; /* trastenda_order_state */
    uint8_t rule;  /* routing rule that placed it */
    uint32_t channel;
    int32_t lat_e6, lon_e6;
    int64_t created_ms;
    int64_t updated_ms;
    uint32_t alloc_count;
    trastenda_order_alloc allocs[TRASTENDA_ALLOCS_MAX];
} trastenda_order_view;

trastenda_err trastenda_engine_hold_get(const trastenda_engine *e, uint64_t id,
                                        trastenda_hold_view *out);

/* An open hold, as the list of those expiring first gives it. */
typedef struct trastenda_hold_row {
    uint64_t id;
    int64_t created_ms;
    int64_t expires_ms;
    uint32_t line_count;
    int64_t units;         /* held over all its lines */
    trastenda_alloc first; /* its first line (sku, loc, qty) */
} trastenda_hold_row;

/* The open holds that expire first, soonest first (ties by id): at most max (1 ..
 * TRASTENDA_PAGE_MAX) into out, *n of them. Writer thread. */
trastenda_err trastenda_engine_holds_expiring(const trastenda_engine *e, uint32_t max,
                                              trastenda_hold_row *out, uint32_t *n);
trastenda_err trastenda_engine_order_get(const trastenda_engine *e, trastenda_str order_id,
                                         trastenda_order_view *out);

/*
 * Archiving: a hold's or an order's record (type, length, body: docs/LOG.md) as it is now, for
 * storage to keep once retention removes it from memory. *out is borrowed until the next encode.
 * E_UNKNOWN_HOLD / E_UNKNOWN_ORDER when absent.
 */
trastenda_err trastenda_engine_hold_encode(trastenda_engine *e, uint64_t id, const uint8_t **out,
                                           size_t *len);
trastenda_err trastenda_engine_order_encode(trastenda_engine *e, trastenda_str order_id,
                                            const uint8_t **out, size_t *len);
/* Views of such records, with SKUs and locations resolved to this engine's indices. E_CORRUPT on
 * a malformed record. Any thread. */
trastenda_err trastenda_engine_hold_record_view(const trastenda_engine *e, const uint8_t *rec,
                                                size_t len, trastenda_hold_view *out);
trastenda_err trastenda_engine_order_record_view(const trastenda_engine *e, const uint8_t *rec,
                                                 size_t len, trastenda_order_view *out);

typedef struct trastenda_po_view {
    char id[TRASTENDA_ID_BYTES_MAX + 1];
    uint8_t open;
    uint32_t line_count;
    trastenda_order_alloc lines[TRASTENDA_LINES_MAX]; /* qty ordered, shipped = received */
} trastenda_po_view;

trastenda_err trastenda_engine_po_get(const trastenda_engine *e, trastenda_str po_id,
                                      trastenda_po_view *out);

/*
 * The low-stock list (available <= the SKU's reorder point), an index kept on every change.
 * Pages start at cursor 0; *next is the cursor of the next page, 0 at the end.
 */
trastenda_err trastenda_engine_low_stock(const trastenda_engine *e, uint64_t cursor, uint32_t limit,
                                         trastenda_stock *out, uint32_t *count, uint64_t *next);

typedef struct trastenda_reorder {
    trastenda_stock stock;
    int64_t velocity_milli;   /* units shipped per day over the last 7 days, x1000 */
    int64_t suggested_qty;    /* velocity x (lead + review) + safety - (available + incoming) */
    int64_t cover_days_milli; /* (available + incoming) / velocity, x1000; -1: no sales */
} trastenda_reorder;

/* Reorder suggestions over the low-stock index at time now_ms; paginated like low_stock. */
trastenda_err trastenda_engine_reorder(const trastenda_engine *e, int64_t now_ms, uint64_t cursor,
                                       uint32_t limit, trastenda_reorder *out, uint32_t *count,
                                       uint64_t *next);

/* ---- Whole tables, for exports (writer thread): slots 0 .. count-1, never reordered ---- */

typedef struct trastenda_sku_view {
    char id[TRASTENDA_ID_BYTES_MAX + 1];
    char name[TRASTENDA_NAME_BYTES_MAX + 1];
    int32_t reorder_point, reorder_qty, lead_days, safety_stock;
    uint8_t active;
} trastenda_sku_view;

typedef struct trastenda_location_view {
    char id[TRASTENDA_ID_BYTES_MAX + 1];
    char name[TRASTENDA_NAME_BYTES_MAX + 1];
    int32_t lat_e6, lon_e6, priority;
    uint32_t channels; /* bit i: channel i (trastenda_engine_channel_name) */
    uint8_t active;
} trastenda_location_view;

/* E_INVALID past the table's end. */
trastenda_err trastenda_engine_sku_at(const trastenda_engine *e, uint32_t ix,
                                      trastenda_sku_view *out);
trastenda_err trastenda_engine_location_at(const trastenda_engine *e, uint32_t ix,
                                           trastenda_location_view *out);
trastenda_err trastenda_engine_stock_at(const trastenda_engine *e, uint32_t rec,
                                        trastenda_stock *out);
/* The name of channel i, empty when none. */
trastenda_str trastenda_engine_channel_name(const trastenda_engine *e, uint32_t i);

typedef struct trastenda_engine_stats {
    uint32_t locations, skus, stock, holds, holds_open, orders, pos, keys, lines;
    uint64_t seq;
    uint64_t ledger_seq;
    int64_t time_ms;
    size_t memory_bytes; /* preallocated by the tables */
} trastenda_engine_stats;

void trastenda_engine_stats_get(const trastenda_engine *e, trastenda_engine_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* TRASTENDA_ENGINE_H */
