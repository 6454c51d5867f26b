/*
 * include/trastenda/log.h - reading Trastenda log entries (format: docs/LOG.md).
 *
 * An engine batch yields one log entry: a header, then records (post-images, removals, ledger
 * entries, events). Storage, replication and the server read entries with these functions; the
 * engine applies them with trastenda_engine_apply_entry(). Every reader checks bounds: a
 * malformed entry gives TRASTENDA_E_CORRUPT, never a read past its end.
 *
 * Strings returned point into the entry buffer: borrowed while the caller keeps the buffer.
 */
#ifndef TRASTENDA_LOG_H
#define TRASTENDA_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "trastenda.h"
#include "trastenda/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TRASTENDA_LOG_MAGIC        0x474c5354u /* "TSLG" little-endian */
#define TRASTENDA_LOG_VERSION      2
#define TRASTENDA_LOG_HEADER_BYTES 40

typedef enum trastenda_rec_type {
    TRASTENDA_REC_META = 1,
    TRASTENDA_REC_CHANNEL = 2,
    TRASTENDA_REC_LOCATION = 3,
    TRASTENDA_REC_SKU = 4,
    TRASTENDA_REC_STOCK = 5,
    TRASTENDA_REC_HOLD = 6,
    TRASTENDA_REC_HOLD_REMOVED = 7,
    TRASTENDA_REC_ORDER = 8,
    TRASTENDA_REC_ORDER_REMOVED = 9,
    TRASTENDA_REC_PO = 10,
    TRASTENDA_REC_KEY = 11,
    TRASTENDA_REC_KEY_REMOVED = 12,
    TRASTENDA_REC_LEDGER = 13,
    TRASTENDA_REC_EVENT = 14,
    TRASTENDA_REC_PO_REMOVED = 15
} trastenda_rec_type;

typedef struct trastenda_entry_header {
    uint16_t version;
    uint64_t seq;
    int64_t time_ms;
    uint64_t epoch;
    uint32_t record_count;
} trastenda_entry_header;

typedef struct trastenda_entry_iter {
    const uint8_t *next;
    const uint8_t *end;
    uint32_t remaining;
} trastenda_entry_iter;

/* Reads and checks the header; positions the iterator on the first record. */
trastenda_err trastenda_entry_open(const uint8_t *entry, size_t len, trastenda_entry_header *hdr,
                                   trastenda_entry_iter *it);

/*
 * Next record: *type and its body. Returns TRASTENDA_OK with a record, TRASTENDA_E_SEQUENCE at
 * the end (no record), TRASTENDA_E_CORRUPT on a malformed entry.
 */
trastenda_err trastenda_entry_next(trastenda_entry_iter *it, uint8_t *type, const uint8_t **body,
                                   uint32_t *body_len);

/*
 * A removal record (HOLD_REMOVED, ORDER_REMOVED, PO_REMOVED, KEY_REMOVED): *hold_id for a hold,
 * *id (borrowed from body) for the others. TRASTENDA_E_CORRUPT when malformed or of another type.
 */
trastenda_err trastenda_removed_decode(uint8_t type, const uint8_t *body, uint32_t len,
                                       uint64_t *hold_id, trastenda_str *id);

/* Ledger movement kinds. */
typedef enum trastenda_move {
    TRASTENDA_MOVE_RECEIVE = 1,
    TRASTENDA_MOVE_ADJUST = 2, /* cause says count, damage, theft, found, correction */
    TRASTENDA_MOVE_RESERVE = 3,
    TRASTENDA_MOVE_RELEASE = 4,
    TRASTENDA_MOVE_EXPIRE = 5,
    TRASTENDA_MOVE_CONFIRM = 6,  /* held -> committed */
    TRASTENDA_MOVE_ALLOCATE = 7, /* order placed: committed */
    TRASTENDA_MOVE_SHIP = 8,
    TRASTENDA_MOVE_CANCEL = 9,
    TRASTENDA_MOVE_RETURN = 10,
    TRASTENDA_MOVE_TRANSFER_OUT = 11,
    TRASTENDA_MOVE_TRANSFER_IN = 12,
    TRASTENDA_MOVE_UNSELLABLE = 13, /* cause says damage or quality */
    TRASTENDA_MOVE_SAFETY = 14,
    TRASTENDA_MOVE_PO_CREATE = 15,
    TRASTENDA_MOVE_PO_RECEIVE = 16,
    TRASTENDA_MOVE_PO_CLOSE = 17
} trastenda_move;

typedef enum trastenda_ref_kind {
    TRASTENDA_REFK_NONE = 0,
    TRASTENDA_REFK_HOLD = 1,  /* ref_id */
    TRASTENDA_REFK_ORDER = 2, /* ref (order id) and ref_id (order number) */
    TRASTENDA_REFK_PO = 3,    /* ref */
    TRASTENDA_REFK_TEXT = 4   /* ref: the command's free reference */
} trastenda_ref_kind;

/* Deltas in this order. */
enum {
    TRASTENDA_Q_ON_HAND = 0,
    TRASTENDA_Q_COMMITTED = 1,
    TRASTENDA_Q_HELD = 2,
    TRASTENDA_Q_UNSELLABLE = 3,
    TRASTENDA_Q_SAFETY = 4,
    TRASTENDA_Q_INCOMING = 5,
    TRASTENDA_Q_IN_TRANSIT = 6,
    TRASTENDA_Q_COUNT_ = 7
};

typedef struct trastenda_ledger_entry {
    uint64_t seq; /* ledger sequence, global and gapless */
    trastenda_str sku;
    trastenda_str loc;
    int64_t delta[TRASTENDA_Q_COUNT_];
    uint8_t move;  /* trastenda_move */
    uint8_t cause; /* trastenda_reason */
    uint8_t ref_kind;
    uint64_t ref_id;
    trastenda_str ref;
    trastenda_str actor;
} trastenda_ledger_entry;

trastenda_err trastenda_ledger_decode(const uint8_t *body, uint32_t len,
                                      trastenda_ledger_entry *out);

typedef enum trastenda_event_kind {
    TRASTENDA_EVENT_LOW_STOCK = 1,     /* available fell to or below the reorder point */
    TRASTENDA_EVENT_OUT_OF_STOCK = 2,  /* available fell to 0 or below */
    TRASTENDA_EVENT_BACK_IN_STOCK = 3, /* available rose above 0 */
    TRASTENDA_EVENT_SHORTFALL = 4,     /* a physical change left less than promised */
    TRASTENDA_EVENT_HOLD_EXPIRED = 5,
    TRASTENDA_EVENT_ORDER_STATE = 6
} trastenda_event_kind;

#define TRASTENDA_AT_RISK_LISTED_MAX 16

typedef struct trastenda_event {
    uint8_t kind;
    trastenda_str sku; /* stock events */
    trastenda_str loc;
    int64_t available;
    uint64_t hold_id;       /* HOLD_EXPIRED */
    trastenda_str order_id; /* ORDER_STATE */
    uint8_t state;          /* ORDER_STATE: new trastenda_order_state */
    uint32_t holds_at_risk; /* SHORTFALL: how many; the first ones listed */
    uint32_t holds_listed;
    uint64_t holds[TRASTENDA_AT_RISK_LISTED_MAX];
    uint32_t orders_at_risk;
    uint32_t orders_listed;
    trastenda_str orders[TRASTENDA_AT_RISK_LISTED_MAX];
} trastenda_event;

trastenda_err trastenda_event_decode(const uint8_t *body, uint32_t len, trastenda_event *out);

#ifdef __cplusplus
}
#endif
#endif /* TRASTENDA_LOG_H */
