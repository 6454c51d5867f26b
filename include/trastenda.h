/*
 * include/trastenda.h - the public base of Trastenda: error codes and limits.
 *
 * Every other public header includes this one. Error values go on the wire
 * and into the log: they are explicit and never renumbered.
 */
#ifndef TRASTENDA_H
#define TRASTENDA_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TRASTENDA_VERSION_STRING "0.1.0"

/* X(name, value, message). Values are stable: they are part of the protocol and the log. */
#define TRASTENDA_ERRORS(X)                                                                        \
    X(TRASTENDA_OK, 0, "ok")                                                                       \
    X(TRASTENDA_E_INVALID, 1, "invalid argument")                                                  \
    X(TRASTENDA_E_SHORT, 2, "not enough available stock")                                          \
    X(TRASTENDA_E_UNKNOWN_SKU, 3, "unknown sku")                                                   \
    X(TRASTENDA_E_UNKNOWN_LOCATION, 4, "unknown location")                                         \
    X(TRASTENDA_E_UNKNOWN_HOLD, 5, "unknown hold")                                                 \
    X(TRASTENDA_E_UNKNOWN_ORDER, 6, "unknown order")                                               \
    X(TRASTENDA_E_UNKNOWN_PO, 7, "unknown purchase order")                                         \
    X(TRASTENDA_E_NO_STOCK_RECORD, 8, "no stock record for this sku at this location")             \
    X(TRASTENDA_E_TABLE_FULL, 9, "table full")                                                     \
    X(TRASTENDA_E_LIMIT, 10, "limit exceeded")                                                     \
    X(TRASTENDA_E_STATE, 11, "invalid state transition")                                           \
    X(TRASTENDA_E_DUPLICATE, 12, "duplicate id")                                                   \
    X(TRASTENDA_E_IDEMPOTENCY_MISMATCH, 13, "idempotency key reused with a different payload")     \
    X(TRASTENDA_E_CAS_MISMATCH, 14, "expected quantity does not match the current one")            \
    X(TRASTENDA_E_SHORTFALL, 15, "stock record is in shortfall")                                   \
    X(TRASTENDA_E_INACTIVE, 16, "inactive")                                                        \
    X(TRASTENDA_E_NO_ROUTE, 17, "no location can fulfil the order")                                \
    X(TRASTENDA_E_HOLD_EXPIRED, 18, "hold expired")                                                \
    X(TRASTENDA_E_CORRUPT, 19, "log entry is malformed")                                           \
    X(TRASTENDA_E_SEQUENCE, 20, "log entry out of sequence")                                       \
    X(TRASTENDA_E_NOMEM, 21, "out of memory")                                                      \
    X(TRASTENDA_E_TIME, 22, "batch time went backwards")                                           \
    X(TRASTENDA_E_BATCH_TOO_BIG, 23, "too many commands in one batch")                             \
    X(TRASTENDA_E_BUSY, 24, "busy: the queue is full, retry later")                                \
    X(TRASTENDA_E_IO, 25, "storage failure: outcome unknown, retry with the same key")             \
    X(TRASTENDA_E_CLOSED, 26, "closed: no longer accepting requests")                              \
    X(TRASTENDA_E_MALFORMED, 27, "malformed message")                                              \
    X(TRASTENDA_E_VERSION, 28, "unsupported protocol version")                                     \
    X(TRASTENDA_E_UNKNOWN_OP, 29, "unknown operation")                                             \
    X(TRASTENDA_E_MISSING_FIELD, 30, "a required field is missing")                                \
    X(TRASTENDA_E_UNKNOWN_FIELD, 31, "unknown field, or one this operation does not take")         \
    X(TRASTENDA_E_TYPE, 32, "a field has the wrong type")                                          \
    X(TRASTENDA_E_RANGE, 33, "a number is out of range")                                           \
    X(TRASTENDA_E_STRING, 34, "a string is too long or not valid UTF-8")                           \
    X(TRASTENDA_E_DUPLICATE_FIELD, 35, "a field is given twice")                                   \
    X(TRASTENDA_E_TOO_MANY_OPS, 36, "too many operations in one request")                          \
    X(TRASTENDA_E_TOO_MANY_LINES, 37, "too many lines")                                            \
    X(TRASTENDA_E_TOO_BIG, 38, "message too large")                                                \
    X(TRASTENDA_E_NOT_LEADER, 39, "not the leader: writes go to the leader")                       \
    X(TRASTENDA_E_TIMEOUT, 40, "timed out")                                                        \
    X(TRASTENDA_E_CONNECT, 41, "cannot reach the server")                                          \
    X(TRASTENDA_E_NOT_REPLICATED, 42,                                                              \
      "not acknowledged by enough followers in time: durable on the leader, not replicated")       \
    X(TRASTENDA_E_UNAUTHORIZED, 43, "unauthorized: a valid token is needed")

typedef enum trastenda_err {
#define TRASTENDA_ERR_ENUM_(name, value, msg) name = value,
    TRASTENDA_ERRORS(TRASTENDA_ERR_ENUM_)
#undef TRASTENDA_ERR_ENUM_
} trastenda_err;

/* Short stable name of an error ("TRASTENDA_E_SHORT"); "TRASTENDA_E_?" for unknown values. */
const char *trastenda_err_name(trastenda_err err);
/* Human message of an error ("not enough available stock"). Static storage. */
const char *trastenda_err_message(trastenda_err err);

/*
 * Limits. Each is checked on input and documented in docs/ENGINE.md (Limits and memory).
 */
/* Ids (SKU, location, order, PO, idempotency key, channel, actor, reference): UTF-8, no
 * control characters. 64 bytes covers every id scheme we know of (UUIDs are 36). */
#define TRASTENDA_ID_BYTES_MAX 64
/* Display names of SKUs and locations. */
#define TRASTENDA_NAME_BYTES_MAX 128
/* Units in one command line: a pallet-scale number, far above any checkout. */
#define TRASTENDA_LINE_QTY_MAX 1000000
/* Any stored quantity (on_hand, incoming, ...): fits in int32 with room for sums. */
#define TRASTENDA_QTY_MAX 1000000000
/* Lines in one hold, order, return or purchase order. */
#define TRASTENDA_LINES_MAX 64
/* One request (docs/PROTOCOL.md, Limits): its operations, their lines, its bytes. */
#define TRASTENDA_REQUEST_OPS_MAX   1024
#define TRASTENDA_REQUEST_LINES_MAX 8192
#define TRASTENDA_REQUEST_BYTES_MAX 4194304
/* Sales channels the engine knows (a location serves a bit set of them). */
#define TRASTENDA_CHANNELS_MAX 32
/* Locations: routing keeps per-candidate scratch of this many (locations_max may not exceed it). */
#define TRASTENDA_LOCATIONS_MAX 4096
/* Routing searches every combination up to this many candidate locations. */
#define TRASTENDA_ROUTE_EXACT_MAX 8
/* Hold TTL: at least one second, at most one day. */
#define TRASTENDA_TTL_MS_MIN 1000
#define TRASTENDA_TTL_MS_MAX 86400000
/* Lead time of a SKU, in days. */
#define TRASTENDA_LEAD_DAYS_MAX 3650
/* Days of shipped units kept per stock record for the sales velocity. */
#define TRASTENDA_VELOCITY_DAYS 7
/* Batch times: 0 .. year 10000 in ms since the epoch, so that time + any window never
 * overflows. */
#define TRASTENDA_TIME_MS_MAX 253402300800000ll
/* Retention windows: up to 100 years. */
#define TRASTENDA_RETENTION_MS_MAX 3155760000000ll
/* Bytes of a result's message (it names the field, the limit and the value). */
#define TRASTENDA_MESSAGE_BYTES 160
/* Page size of every list query. */
#define TRASTENDA_PAGE_MAX 1000

#ifdef __cplusplus
}
#endif
#endif /* TRASTENDA_H */
