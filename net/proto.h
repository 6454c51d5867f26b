/*
 * net/proto.h - the request protocol (docs/PROTOCOL.md) as plain structures, in three layers:
 *
 *   decode   (proto_decode_msgpack): bytes -> struct proto_req. Checks the encoding only: well
 *            formed msgpack, the envelope's fields, each op's field names and value types,
 *            duplicates. A second encoding (JSON) will add its own decoder into the same struct.
 *   validate (proto_validate): the rules, for any encoding: known operation, required fields
 *            present, fields the operation does not take absent, numbers in range, ids valid
 *            UTF-8 within their lengths, limits (ops per request, lines per op and per request).
 *   convert  (proto_to_cmd): a valid engine op -> trastenda_cmd, ids resolved to table indices
 *            off the writer thread when the engine knows them.
 *
 * An op that fails decode or validation carries its own error (code, message naming the field);
 * the other ops of the request still run (docs/PROTOCOL.md: "a batch is validated op by op").
 * An envelope error (not msgpack, wrong version, too many ops) fails the whole request.
 *
 * Strings point into the message (zero copy): the message must outlive the struct's use.
 */
#ifndef TRASTENDA_NET_PROTO_H
#define TRASTENDA_NET_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trastenda.h"
#include "trastenda/engine.h"

#define PROTO_VERSION 1

/* Operations: engine ops keep their trastenda_op number; reads and admin ops follow. */
enum proto_kind {
    PK_NONE = 0,
    /* 1 .. TRASTENDA_OP_NOOP (26): the engine's ops */
    PK_STOCK = 64, /* availability of a SKU, per location */
    PK_HOLD = 65,  /* a hold (live, then archive) */
    PK_ORDER = 66, /* an order (live, then archive) */
    PK_PO = 67,    /* a purchase order */
    PK_LOW_STOCK = 68,
    PK_REORDER = 69,
    PK_LEDGER = 70,
    PK_STATUS = 71,
    PK_EVENTS = 72,        /* events since a log sequence */
    PK_BACKUP = 73,        /* a checkpoint of the running node into a directory */
    PK_STOCK_LIST = 74,    /* every stock record, page by page (exports) */
    PK_SKU_LIST = 75,      /* every SKU */
    PK_LOCATION_LIST = 76, /* every location */
    PK_PROMOTE = 77,       /* this follower becomes the leader (replication) */
    PK_DIGEST = 78         /* the state digest at the node's applied sequence */
};

static inline bool
proto_kind_is_write(uint32_t kind)
{
    return kind >= 1 && kind <= TRASTENDA_OP_NOOP;
}

/* Fields, as bits of proto_op.present. */
enum proto_field {
    PFD_OP = 0,
    PFD_KEY,
    PFD_ACTOR,
    PFD_REF,
    PFD_SKU,
    PFD_LOC,
    PFD_TO,
    PFD_ORDER,
    PFD_PO,
    PFD_NAME,
    PFD_CHANNEL,
    PFD_CHANNELS,
    PFD_HOLD,
    PFD_QTY,
    PFD_EXPECTED,
    PFD_TTL_MS,
    PFD_REORDER_POINT,
    PFD_REORDER_QTY,
    PFD_SAFETY_STOCK,
    PFD_LEAD_DAYS,
    PFD_PRIORITY,
    PFD_LAT_E6,
    PFD_LON_E6,
    PFD_REASON,
    PFD_PARTIAL,
    PFD_ACTIVE,
    PFD_LINES,
    PFD_CURSOR,
    PFD_LIMIT,
    PFD_FROM_MS,
    PFD_TO_MS,
    PFD_BEFORE,
    PFD_SINCE,
    PFD_DIR,
    PFD_FORCE,
    PFD_COUNT_
};

/* The wire name of a field ("ttl_ms"). */
const char *proto_field_name(enum proto_field f);

/* Limits (docs/PROTOCOL.md). */
#define PROTO_OPS_MAX         1024 /* operations in one request */
#define PROTO_LINES_TOTAL_MAX 8192 /* lines of all the ops of one request */
#define PROTO_CHANNELS_MAX    TRASTENDA_CHANNELS_MAX
#define PROTO_MSG_MAX         4194304 /* bytes of a request (NNG_OPT_RECVMAXSZ) */
#define PROTO_DIR_BYTES_MAX   1024

struct proto_line {
    trastenda_str sku, loc;
    int64_t qty;
    bool unsellable;
    uint8_t present; /* bits: 1 sku, 2 loc, 4 qty, 8 unsellable */
};

struct proto_op {
    uint32_t kind; /* enum proto_kind, or an engine op */
    uint64_t present;
    trastenda_str op_name; /* as sent */
    trastenda_str key, actor, ref, sku, loc, to, order, po, name, channel, reason, dir;
    int64_t qty, expected, ttl_ms, reorder_point, reorder_qty, safety_stock, lead_days, priority,
        lat_e6, lon_e6, from_ms, to_ms;
    uint64_t hold, cursor, limit, before, since;
    bool partial, active, force;
    uint32_t lines_at, lines_n;       /* in proto_req.lines */
    uint32_t channels_at, channels_n; /* in proto_req.channels */
    /* Decode or validation error of this op: code, and message naming the field. */
    trastenda_err err;
    uint32_t err_line; /* offending line, UINT32_MAX when none */
    char msg[TRASTENDA_MESSAGE_BYTES];
};

/* A decoded request. Arrays grow to the high-water mark and are kept for reuse (one per context).
 */
struct proto_req {
    uint32_t version;
    uint64_t id;
    uint64_t min_seq; /* reads wait until this sequence is applied (followers) */
    uint32_t present; /* envelope fields seen: 1 v, 2 id, 4 ops, 8 min_seq */
    /* An envelope error: the whole request fails with it. */
    trastenda_err err;
    char msg[TRASTENDA_MESSAGE_BYTES];
    struct proto_op *ops;
    uint32_t n_ops, cap_ops;
    struct proto_line *lines;
    uint32_t n_lines, cap_lines;
    trastenda_str *channels;
    uint32_t n_channels, cap_channels;
};

void proto_req_init(struct proto_req *q);
void proto_req_fini(struct proto_req *q);

/* Decodes a msgpack request. Returns false only on an envelope error (q->err, q->msg); op errors
 * are in the ops. */
bool proto_decode_msgpack(struct proto_req *q, const void *buf, size_t len);

/* Validates every op that decoded (sets its err and msg); envelope rules too. false on an
 * envelope error. */
bool proto_validate(struct proto_req *q);

/*
 * A valid write op as an engine command: cmd->lines point into lines (room for op->lines_n),
 * cmd->channels into chans (room for op->channels_n). SKU and location ids are resolved to
 * indices with e when it knows them (any thread); unknown ids stay ids (the engine reports them).
 */
void proto_to_cmd(const struct proto_req *q, const struct proto_op *op, const trastenda_engine *e,
                  trastenda_cmd *cmd, trastenda_line *lines, trastenda_str *chans);

/* Operation names: "reserve", "order.place", ... and back; NULL / PK_NONE when unknown. */
const char *proto_kind_name(uint32_t kind);
uint32_t proto_kind_of(trastenda_str name);

#endif /* TRASTENDA_NET_PROTO_H */
