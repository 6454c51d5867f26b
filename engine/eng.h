/*
 * engine/eng.h - the engine's internal state: tables, indices and the batch being built.
 *
 * Only the engine sources include this. The public face is include/trastenda/engine.h.
 *
 * Design notes (cited in the code as "Design note (n)"):
 * (1) Invariant: for every stock record, on_hand, committed, held, unsellable, safety, incoming
 *     and in_transit are >= 0; available = on_hand - committed - held - unsellable - safety may be
 *     negative only when the record is flagged in shortfall, and only a physical change (count,
 *     adjust, damage) can make it so. No sales command ever makes available negative.
 * (2) Invariant: a record's held equals the sum of its open hold lines, and committed equals the
 *     sum of the unshipped quantity of open order allocations at it. Both kinds of line are
 *     chained on the record (rec_prev/rec_next), which also names the holds and orders at risk in
 *     a shortfall.
 * (3) Single writer. Readers on other threads touch only the insert-only tables (locations, SKUs,
 *     stock records) and their maps; a stock record's quantities are published under its seqlock
 *     (stock.c), a location's active flag and channels with atomic stores.
 * (4) Determinism: nothing decided depends on slot numbers, pointers or hash order. Ids of holds,
 *     orders and ledger entries come from counters in the state (meta), ties end with the id,
 *     distances are integers (geo.c).
 * (6) Retention FIFOs are in the order records entered them (time order: batch times are
 *     monotone). A record entering one moves to the end of its batch's dirty list, so the log
 *     carries those post-images in FIFO order and a node applying it builds the same FIFOs and
 *     purges in the same order after a promotion.
 * (5) Effects: every record a batch changes is marked dirty once (its `dirty` field holds its
 *     position in the batch's dirty list + 1, 0 when clean) and its post-image is written at the
 *     end of the batch; removals are written when they happen, which is only in the maintenance
 *     phase before the commands. Stock records are never requeued, so the k-th stock post-image
 *     is the record whose mark is k + 1: lines of the same entry name it by k (docs/LOG.md).
 */
#ifndef TRASTENDA_ENGINE_ENG_H
#define TRASTENDA_ENGINE_ENG_H

#include <stdbool.h>
#include <stdint.h>

#include "base.h"
#include "map.h"
#include "trastenda.h"
#include "trastenda/engine.h"
#include "trastenda/log.h"

#define ENG_NONE UINT32_MAX

struct eng_id {
    uint8_t len;
    char s[TRASTENDA_ID_BYTES_MAX];
};

struct eng_name {
    uint8_t len;
    char s[TRASTENDA_NAME_BYTES_MAX];
};

struct eng_location {
    struct eng_id id;
    struct eng_name name;
    int32_t lat_e6, lon_e6;
    int32_t vec[3]; /* unit vector, Q28 fixed point (geo.c) */
    int32_t priority;
    uint32_t channels; /* bit set; atomic (Design note 3) */
    uint8_t active;    /* atomic (Design note 3) */
    uint32_t dirty;
};

/* What a stock change reads (reorder figures, the record chain, the id for the ledger and the
 * post-images) comes first, in the first 64 bytes for an id of up to 38 bytes: within one cache
 * line or across two (the 220-byte stride does not align entries to lines); the name, read by
 * queries only, after it. */
struct eng_sku {
    int32_t reorder_point, reorder_qty, lead_days, safety_default;
    uint32_t first_stock; /* chain of this SKU's records; atomic (Design note 3) */
    uint32_t dirty;
    uint8_t active;
    struct eng_id id;
    struct eng_name name;
};

enum {
    ENG_STOCK_SHORTFALL = 1,
    ENG_STOCK_LOW = 2,
    ENG_STOCK_OUT = 4
};

/* One cache line. Quantities are written only inside the seqlock (stock.c). */
struct eng_stock {
    uint32_t seq;
    uint32_t sku_ix;
    uint32_t loc_ix;
    uint32_t next_in_sku; /* atomic (Design note 3) */
    int32_t q[TRASTENDA_Q_COUNT_];
    uint32_t lines_head; /* Design note (2) */
    uint32_t dirty;
    uint32_t flags;
    uint32_t pad_[2];
};
_Static_assert(sizeof(struct eng_stock) == 64, "a stock record is one cache line");

/* Shipped units per day, rotated lazily when the record ships (never by a sweep). */
struct eng_velocity {
    int32_t day; /* day number of units[0] */
    uint32_t units[TRASTENDA_VELOCITY_DAYS];
};

enum {
    ENG_LINE_HOLD = 1,
    ENG_LINE_ORDER = 2,
    ENG_LINE_PO = 3
};

/* A hold line, an order allocation or a PO line, from one shared pool. */
struct eng_line {
    uint32_t sku_ix, loc_ix;
    int32_t qty;
    int32_t done;                        /* order: shipped; PO: received */
    int32_t returned;                    /* order only */
    uint32_t next;                       /* next line of the same owner, in order */
    uint32_t owner;                      /* hold, order or PO slot */
    uint32_t rec_prev, rec_next, rec_ix; /* Design note (2); rec_ix ENG_NONE when unlinked */
    uint8_t kind;
    uint8_t state; /* order allocations: trastenda_order_state */
};

struct eng_hold {
    uint64_t id;
    int64_t created_ms, expires_ms, resolved_ms;
    uint64_t order_no;
    int32_t lat_e6, lon_e6;
    uint32_t lines_head;
    uint32_t line_count;
    uint32_t heap_pos; /* in the expiry heap while open, ENG_NONE otherwise */
    uint32_t dirty;
    uint8_t state;
    uint8_t channel; /* channel bit + 1, 0 when none */
    uint8_t has_ship_to;
    uint8_t in_use;
};

/* An entry of the expiry heap: its hold's order key kept inline, so that sifting compares
 * adjacent entries instead of loading two holds from anywhere in the pool for each comparison. */
struct eng_heap_ent {
    int64_t expires_ms;
    uint64_t id;
    uint32_t hold;
};

/* The heap's order: expiry, then id (ids are unique: a total order). */
static inline bool
eng_heap_less(const struct eng_heap_ent *x, const struct eng_heap_ent *y)
{
    if (x->expires_ms != y->expires_ms) return x->expires_ms < y->expires_ms;
    return x->id < y->id;
}

struct eng_order {
    struct eng_id id;
    uint64_t no;
    uint64_t payload_hash; /* the order id is its idempotency key */
    uint64_t hold_id;      /* confirmed from this hold, 0 when placed directly */
    int64_t created_ms, updated_ms;
    int64_t finished_ms; /* when it entered its retention window */
    int32_t lat_e6, lon_e6;
    uint32_t lines_head;
    uint32_t alloc_count;
    uint32_t dirty;
    uint8_t state, rule, channel, in_use;
};

struct eng_po {
    struct eng_id id;
    int64_t created_ms, updated_ms;
    uint32_t lines_head;
    uint32_t line_count;
    uint32_t dirty;
    uint8_t open, in_use;
};

struct eng_key {
    struct eng_id key;
    uint64_t payload_hash;
    int64_t created_ms;
    uint64_t result_id;
    int64_t result_value;
    uint32_t dirty;
    uint32_t hash; /* of the key string, for the map */
    uint8_t op, rule, state, in_use;
};

/* Free slots of a table: a stack, preallocated. */
struct eng_pool {
    uint32_t *stack;
    uint32_t top; /* free slots on the stack */
    uint32_t max;
    uint32_t hw; /* slots below it were handed out at some point; none at or above it ever was */
};

/* Intrusive FIFO over a table's slots (retention order), removal anywhere in O(1). */
struct eng_fifo {
    uint32_t *prev, *next;
    uint32_t head, tail, count;
};

/* Growable byte buffer of the entry being built (grows to the batch's high-water mark). */
struct eng_buf {
    uint8_t *p;
    size_t len, cap;
};

/* Three-level bit set over stock slots: the low-stock index. */
struct eng_bits {
    uint64_t *l0, *l1, *l2;
    uint32_t n0, n1, n2;
};

struct cand {
    uint32_t loc;
    uint64_t chord2; /* ranks by distance (geo.c) */
    int64_t dist_m;  /* metres, computed only when the exact search sums them */
    int32_t priority;
};

struct trastenda_engine {
    trastenda_engine_config cfg;

    struct eng_location *locs;
    uint32_t loc_count; /* atomic (Design note 3) */
    struct eng_map loc_map;

    struct eng_sku *skus;
    uint32_t sku_count; /* atomic */
    struct eng_map sku_map;

    struct eng_stock *stock;
    struct eng_velocity *vel;
    uint32_t stock_count; /* atomic */
    struct eng_map stock_map;
    struct eng_bits low;

    struct eng_id channels[TRASTENDA_CHANNELS_MAX];
    uint32_t channel_count; /* atomic */
    uint32_t channel_dirty;

    struct eng_line *lines;
    struct eng_pool line_pool;

    struct eng_hold *holds;
    struct eng_pool hold_pool;
    struct eng_map hold_map;
    struct eng_fifo hold_fifo; /* resolved holds, by resolution time */
    struct eng_heap_ent *heap; /* open holds by (expires_ms, id) */
    uint32_t heap_count;

    struct eng_order *orders;
    struct eng_pool order_pool;
    struct eng_map order_map;
    struct eng_fifo order_fifo; /* finished orders, by finish time */

    struct eng_po *pos;
    struct eng_pool po_pool;
    struct eng_map po_map;
    struct eng_fifo po_fifo; /* closed POs */

    struct eng_key *keys;
    struct eng_pool key_pool;
    struct eng_map key_map;
    struct eng_fifo key_fifo; /* by creation time */

    /* meta: counters carried in every entry */
    uint64_t seq;
    int64_t time_ms;
    uint64_t next_hold_id;
    uint64_t next_order_no;
    uint64_t ledger_seq;
    uint64_t last_entry_hash; /* of the last entry applied by apply_entry; 0 after apply */

    /* pages changed since they were last encoded (image.c), per record type; NULL: untracked */
    uint64_t *page_bits[16];
    uint32_t page_words[16];
    uint32_t page_shift;       /* log2 of cfg.page_slots */
    struct eng_buf page_buf;   /* the page being encoded */
    struct eng_buf stock_refs; /* apply: record of each stock post-image of the entry (apply.c) */
    uint16_t load_huge;        /* tables advised onto huge pages while loading (image.c) */

    /* the batch being built */
    struct eng_buf entry;
    struct eng_buf side; /* ledger entries and events, appended after the post-images */
    uint32_t entry_records;
    uint32_t side_records;
    uint32_t ledger_count, event_count;
    struct eng_buf dirty[16]; /* per record type: slots (uint32) marked in this batch */
    bool building;            /* inside trastenda_engine_apply (effects are recorded) */
    const trastenda_cmd *cmd; /* command being applied (actor, reference) */
    trastenda_alloc *arena;   /* result placements of the batch */
    uint32_t arena_used, arena_max;
    uint32_t cmds_since_check;

    /* routing scratch (route.c), preallocated from locations_max */
    uint32_t *route_loc_slot; /* location -> candidate, ENG_NONE between calls */
    struct cand *route_cand, *route_cand2;
    int64_t *route_sell, *route_sell2; /* locations_max x TRASTENDA_LINES_MAX */
};

/* ---- ids and strings (str.c) ---- */
TS_MUST_USE trastenda_err eng_id_check(trastenda_str s, const char *field, bool required,
                                       trastenda_result *r);
void eng_id_set(struct eng_id *dst, trastenda_str s);
static inline trastenda_str
eng_id_str(const struct eng_id *id)
{
    return (trastenda_str){id->s, id->len};
}
bool eng_id_eq(const struct eng_id *id, trastenda_str s);
TS_MUST_USE trastenda_err eng_name_check(trastenda_str s, const char *field, trastenda_result *r);
void eng_name_set(struct eng_name *dst, trastenda_str s);
int eng_str_cmp(trastenda_str a, trastenda_str b);
uint32_t eng_str_hash(trastenda_str s);
/* Formats r->message and sets r->code; returns code. */
trastenda_err eng_fail(trastenda_result *r, trastenda_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Validates a quantity field: lo..hi. */
TS_MUST_USE trastenda_err eng_qty_check(int64_t v, int64_t lo, int64_t hi, const char *field,
                                        trastenda_result *r);

/* ---- pools, fifos, buffers (table.c) ---- */
TS_MUST_USE trastenda_err eng_pool_init(struct eng_pool *p, uint32_t max);
void eng_pool_fini(struct eng_pool *p);
uint32_t eng_pool_take(struct eng_pool *p); /* ENG_NONE when empty */
void eng_pool_give(struct eng_pool *p, uint32_t ix);
static inline uint32_t
eng_pool_used(const struct eng_pool *p)
{
    return p->max - p->top;
}
TS_MUST_USE trastenda_err eng_fifo_init(struct eng_fifo *f, uint32_t max);
void eng_fifo_fini(struct eng_fifo *f, uint32_t max);
void eng_fifo_push(struct eng_fifo *f, uint32_t ix);
void eng_fifo_remove(struct eng_fifo *f, uint32_t ix);
bool eng_fifo_has(const struct eng_fifo *f, uint32_t ix);
TS_MUST_USE trastenda_err eng_bits_init(struct eng_bits *b, uint32_t n);
void eng_bits_fini(struct eng_bits *b);
void eng_bits_set(struct eng_bits *b, uint32_t i, bool on);
bool eng_bits_get(const struct eng_bits *b, uint32_t i);
uint32_t eng_bits_next(const struct eng_bits *b, uint32_t from); /* ENG_NONE at the end */
void eng_buf_reserve(struct eng_buf *b, size_t more);
void eng_buf_fini(struct eng_buf *b);

/* ---- geo.c ---- */
void eng_geo_vec(int32_t lat_e6, int32_t lon_e6, int32_t vec[3]);
/* Great-circle distance in metres between two unit vectors. */
int64_t eng_geo_distance_m(const int32_t a[3], const int32_t b[3]);
/* The squared chord between two unit vectors (Q56): it orders points exactly as the great-circle
 * distance does, without a root. */
uint64_t eng_geo_chord2(const int32_t a[3], const int32_t b[3]);
/* Great-circle metres of a squared chord. */
int64_t eng_geo_metres(uint64_t chord2);

/* ---- catalog.c ---- */
uint32_t eng_sku_find(const trastenda_engine *e, trastenda_str id);
uint32_t eng_location_find(const trastenda_engine *e, trastenda_str id);
uint32_t eng_channel_find(const trastenda_engine *e, trastenda_str name);
/* Resolves a ref (index hint or id); sets r on failure. */
TS_MUST_USE trastenda_err eng_sku_resolve(const trastenda_engine *e, const trastenda_ref *ref,
                                          const char *field, trastenda_result *r, uint32_t *ix);
TS_MUST_USE trastenda_err eng_location_resolve(const trastenda_engine *e, const trastenda_ref *ref,
                                               const char *field, trastenda_result *r,
                                               uint32_t *ix);
TS_MUST_USE trastenda_err eng_channel_resolve(const trastenda_engine *e, trastenda_str name,
                                              bool required, trastenda_result *r, uint8_t *ch);
trastenda_err eng_cmd_location_upsert(trastenda_engine *e, const trastenda_cmd *c,
                                      trastenda_result *r);
trastenda_err eng_cmd_location_deactivate(trastenda_engine *e, const trastenda_cmd *c,
                                          trastenda_result *r);
trastenda_err eng_cmd_sku_upsert(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r);
trastenda_err eng_cmd_sku_deactivate(trastenda_engine *e, const trastenda_cmd *c,
                                     trastenda_result *r);
uint32_t eng_location_insert(trastenda_engine *e, trastenda_str id);
uint32_t eng_sku_insert(trastenda_engine *e, trastenda_str id);
void eng_location_set_vec(struct eng_location *l);
uint32_t eng_channel_insert(trastenda_engine *e, trastenda_str name);

/* ---- stock.c ---- */
/* Map hash of the stock record of (sku, location). */
static inline uint32_t
eng_stock_hash(uint32_t sku_ix, uint32_t loc_ix)
{
    return (uint32_t)ts_mix64(((uint64_t)sku_ix << 32) | loc_ix);
}
uint32_t eng_stock_find(const trastenda_engine *e, uint32_t sku_ix, uint32_t loc_ix);
uint32_t eng_stock_insert(trastenda_engine *e, uint32_t sku_ix, uint32_t loc_ix);
/* Finds or creates the record; E_TABLE_FULL into r when it cannot. */
TS_MUST_USE trastenda_err eng_stock_get(trastenda_engine *e, uint32_t sku_ix, uint32_t loc_ix,
                                        trastenda_result *r, uint32_t *rec);
/*
 * Design note (1), the derivation: free = on_hand - committed - held - unsellable. When free < 0
 * more is promised than is physically there (a shortfall) and available = free. Otherwise the
 * safety stock is held back: available = max(0, free - safety_stock). A safety stock above what
 * is free therefore never makes a record short.
 */
static inline int64_t
eng_free(const int32_t q[TRASTENDA_Q_COUNT_])
{
    return (int64_t)q[TRASTENDA_Q_ON_HAND] - q[TRASTENDA_Q_COMMITTED] - q[TRASTENDA_Q_HELD] -
           q[TRASTENDA_Q_UNSELLABLE];
}
static inline int64_t
eng_available(const int32_t q[TRASTENDA_Q_COUNT_])
{
    int64_t f = eng_free(q);
    if (f < 0) return f;
    int64_t a = f - q[TRASTENDA_Q_SAFETY];
    return a < 0 ? 0 : a;
}
/* Sellable now: available unless the record is in shortfall or the location inactive. */
int64_t eng_stock_sellable(const trastenda_engine *e, uint32_t rec);
struct eng_move {
    uint8_t move, cause, ref_kind;
    uint64_t ref_id;
    trastenda_str ref;
};
/* Applies deltas to a record (publishing under its seqlock), writes the ledger entry and the
 * events the change causes, marks it dirty. The caller checked every resulting figure. */
void eng_stock_change(trastenda_engine *e, uint32_t rec, const int32_t delta[TRASTENDA_Q_COUNT_],
                      const struct eng_move *mv);
struct eng_line_list {
    uint32_t head, tail;
};
/* Takes a line from the pool and appends it to an owner's list (the caller checked for room). */
uint32_t eng_line_append(trastenda_engine *e, struct eng_line_list *list, uint8_t kind,
                         uint32_t owner, uint32_t sku_ix, uint32_t loc_ix, int32_t qty,
                         uint8_t state);
/* Gives back every line of an owner's list, unlinking them from their records. */
void eng_lines_free(trastenda_engine *e, uint32_t head);
/* A command's lines: 1..TRASTENDA_LINES_MAX of them. */
TS_MUST_USE trastenda_err eng_lines_check(const trastenda_cmd *c, trastenda_result *r);
void eng_stock_line_link(trastenda_engine *e, uint32_t rec, uint32_t line);
void eng_stock_line_unlink(trastenda_engine *e, uint32_t line);
void eng_stock_view(const trastenda_engine *e, uint32_t rec, trastenda_stock *out);
void eng_stock_publish(struct eng_stock *s, const int32_t q[TRASTENDA_Q_COUNT_]);
void eng_stock_flags_update(trastenda_engine *e, uint32_t rec);
void eng_stock_check_one(const trastenda_engine *e, uint32_t rec);
void eng_velocity_add(struct eng_velocity *v, int32_t day, uint32_t units);
uint64_t eng_velocity_sum(const struct eng_velocity *v, int32_t day);
trastenda_err eng_cmd_stock(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r);

/* ---- hold.c ---- */
/* Map hash of a hold id. */
static inline uint32_t
eng_hold_hash(uint64_t id)
{
    return (uint32_t)ts_mix64(id);
}
trastenda_err eng_cmd_reserve(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r);
trastenda_err eng_cmd_extend(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r);
trastenda_err eng_cmd_release(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r);
trastenda_err eng_cmd_confirm(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r);
uint32_t eng_hold_find(const trastenda_engine *e, uint64_t id);
void eng_hold_heap_push(trastenda_engine *e, uint32_t h);
void eng_hold_heap_remove(trastenda_engine *e, uint32_t h);
void eng_holds_expire(trastenda_engine *e);
void eng_hold_free(trastenda_engine *e, uint32_t h);
void eng_hold_retain(trastenda_engine *e, uint32_t h);
void eng_hold_result_allocs(trastenda_engine *e, uint32_t h, trastenda_result *r);

TS_MUST_USE trastenda_err eng_ship_to_check(const trastenda_cmd *c, bool required,
                                            trastenda_result *r);

/* ---- order.c ---- */
trastenda_err eng_cmd_order_place(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r);
trastenda_err eng_cmd_order_step(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r);
trastenda_err eng_cmd_order_return(trastenda_engine *e, const trastenda_cmd *c,
                                   trastenda_result *r);
uint32_t eng_order_find(const trastenda_engine *e, trastenda_str id);
uint32_t eng_order_new(trastenda_engine *e, trastenda_str id, uint64_t payload_hash,
                       uint8_t channel, int32_t lat_e6, int32_t lon_e6, uint8_t rule);
void eng_order_free(trastenda_engine *e, uint32_t o);
void eng_order_retain(trastenda_engine *e, uint32_t o);
void eng_order_set_state(trastenda_engine *e, uint32_t o, uint8_t state);
bool eng_order_finished(uint8_t state);
void eng_order_result_allocs(trastenda_engine *e, uint32_t o, trastenda_result *r);

/* ---- route.c ---- */
struct eng_want {
    uint32_t sku_ix;
    int64_t qty;
};
struct eng_route {
    uint8_t rule;
    uint32_t count;
    trastenda_alloc allocs[TRASTENDA_ALLOCS_MAX];
};
/* Chooses locations for wants (distinct SKUs); E_SHORT (with r->allocs shortages) or
 * E_NO_ROUTE/E_LIMIT into r when it cannot. pending (n_pending) are units already taken at
 * (sku, loc) by earlier lines of the same command. */
TS_MUST_USE trastenda_err eng_route(trastenda_engine *e, const struct eng_want *wants,
                                    uint32_t n_wants, uint8_t channel, int32_t lat_e6,
                                    int32_t lon_e6, const trastenda_alloc *pending,
                                    uint32_t n_pending, trastenda_result *r, struct eng_route *out);

/* ---- po.c ---- */
trastenda_err eng_cmd_po(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r);
uint32_t eng_po_find(const trastenda_engine *e, trastenda_str id);
void eng_po_free(trastenda_engine *e, uint32_t p);
void eng_po_retain(trastenda_engine *e, uint32_t p);

/* ---- idem.c ---- */
uint64_t eng_cmd_payload_hash(const trastenda_cmd *c);
uint64_t eng_cmd_payload_hash_v1(const trastenda_cmd *c);
bool eng_payload_matches(uint64_t stored, uint64_t payload_hash, const trastenda_cmd *c);
uint32_t eng_key_find(const trastenda_engine *e, trastenda_str key);
uint32_t eng_key_find_hashed(const trastenda_engine *e, trastenda_str key, uint32_t hash);
/* Before a command with a key: a replay fills r and returns true (the command must not run). */
bool eng_key_replay(trastenda_engine *e, const trastenda_cmd *c, uint32_t key_hash,
                    uint64_t payload_hash, trastenda_result *r);
/* After a successful command with a key: remembers its result. */
void eng_key_remember(trastenda_engine *e, const trastenda_cmd *c, uint32_t key_hash,
                      uint64_t payload_hash, const trastenda_result *r);
void eng_key_free(trastenda_engine *e, uint32_t k);
void eng_key_retain(trastenda_engine *e, uint32_t k);
void eng_keys_expire(trastenda_engine *e);

/* ---- effects.c: post-images, ledger, events, apply ---- */
void eng_dirty_mark(trastenda_engine *e, uint8_t type, uint32_t ix, uint32_t *mark);
/* Marks dirty and moves the record's post-image to the end of the batch (Design note 6). */
void eng_dirty_requeue(trastenda_engine *e, uint8_t type, uint32_t ix, uint32_t *mark);
void eng_effects_begin(trastenda_engine *e);
void eng_effects_end(trastenda_engine *e, trastenda_batch_out *out);
void eng_emit_removed(trastenda_engine *e, uint8_t type, trastenda_str id, uint64_t num);
void eng_emit_ledger(trastenda_engine *e, uint32_t rec, const int32_t delta[TRASTENDA_Q_COUNT_],
                     const struct eng_move *mv);
void eng_emit_stock_event(trastenda_engine *e, uint8_t kind, uint32_t rec, int64_t available);
void eng_emit_hold_expired(trastenda_engine *e, uint32_t h);
void eng_emit_order_state(trastenda_engine *e, uint32_t o);
/* Post-image encoders: one record (type, length, body) appended to b. */
void eng_enc_location(const trastenda_engine *e, struct eng_buf *b, uint32_t ix);
void eng_enc_sku(const trastenda_engine *e, struct eng_buf *b, uint32_t ix);
void eng_enc_stock(const trastenda_engine *e, struct eng_buf *b, uint32_t ix);
void eng_enc_hold(const trastenda_engine *e, struct eng_buf *b, uint32_t ix);
void eng_enc_order(const trastenda_engine *e, struct eng_buf *b, uint32_t ix);
void eng_enc_po(const trastenda_engine *e, struct eng_buf *b, uint32_t ix);
void eng_enc_key(const trastenda_engine *e, struct eng_buf *b, uint32_t ix);
void eng_enc_meta(const trastenda_engine *e, struct eng_buf *b);
void eng_enc_channel(const trastenda_engine *e, struct eng_buf *b, uint32_t ix);

/* ---- apply.c ---- */
/* Checks every record of it (only records of only_type unless 0), then applies them all; nothing
 * is applied when one is malformed (E_CORRUPT). Times are relative to base_ms (docs/LOG.md); only
 * a log entry (only_type 0) may have lines that refer to its stock post-images. checked: the
 * records were checked before (trastenda_engine_apply_entry_checked): no check pass, and a record
 * that does not apply ends the apply with E_CORRUPT, the records before it applied. */
trastenda_err eng_apply_records(trastenda_engine *e, trastenda_entry_iter it, uint8_t only_type,
                                int64_t base_ms, bool checked);
/* Ends the huge-page advice of a load (image.c): load_finish, or an engine destroyed before it,
 * whose memory the allocator hands out again. */
void eng_load_huge_end(trastenda_engine *e);

/* ---- image.c: pages of the materialized state ---- */
/* With page tracking on, marks the page holding slot ix of a table (a record type) changed. */
static inline void
eng_page_touch(trastenda_engine *e, uint8_t type, uint32_t ix)
{
    if (e->page_bits[type] == NULL) return;
    uint32_t page = ix >> e->page_shift;
    e->page_bits[type][page / 64] |= 1ull << (page % 64);
}
uint32_t eng_page_count(const trastenda_engine *e, uint8_t type);
/* Records whose lines eng_touch_lines loads together at most (a page's, or a digest's window). */
#define ENG_TOUCH_WINDOW 256
/* Loads the lines of the live holds, orders or POs (type) in slots lo..hi (at most a window) and
 * the SKUs they name, one line of every record per round, so that their misses overlap before
 * those records are encoded (page writes, digests). Changes nothing; returns a sum to keep. */
uint64_t eng_touch_lines(const trastenda_engine *e, uint8_t type, uint32_t lo, uint32_t hi);
void eng_pages_fini(trastenda_engine *e);
void eng_emit_shortfall(trastenda_engine *e, uint32_t rec, int64_t available);

/* ---- result arena (engine.c) ---- */
trastenda_alloc *eng_arena_take(trastenda_engine *e, uint32_t n);

/* Day number of a time (UTC days since the epoch). */
static inline int32_t
eng_day(int64_t ms)
{
    return (int32_t)(ms / 86400000);
}

/* The entry sizes docs/ENGINE.md states (its memory table): change both together. */
_Static_assert(sizeof(struct eng_sku) == 220, "docs/ENGINE.md: a SKU is 220 bytes");
_Static_assert(sizeof(struct eng_location) == 232, "docs/ENGINE.md: a location is 232 bytes");
_Static_assert(sizeof(struct eng_hold) == 72, "docs/ENGINE.md: a hold is 72 bytes");
_Static_assert(sizeof(struct eng_heap_ent) == 24, "docs/ENGINE.md: a heap entry is 24 bytes");
_Static_assert(sizeof(struct eng_order) == 144, "docs/ENGINE.md: an order is 144 bytes");
_Static_assert(sizeof(struct eng_po) == 104, "docs/ENGINE.md: a purchase order is 104 bytes");
_Static_assert(sizeof(struct eng_key) == 120, "docs/ENGINE.md: a key is 120 bytes");
_Static_assert(sizeof(struct eng_line) == 44, "docs/ENGINE.md: a line is 44 bytes");

#endif /* TRASTENDA_ENGINE_ENG_H */
