/*
 * net/proto.h - the request protocol (docs/PROTOCOL.md) as plain structures, in three layers:
 *
 *   decode   (proto_decode_msgpack, proto_decode_json in net/proto_json.c): bytes -> struct
 *            proto_req. Checks the encoding only: well formed input, the envelope's fields, each
 *            op's field names and value types, duplicates. Both decoders record what they read
 *            through the same functions ("For decoders" below), so names, errors and messages
 *            are the same whatever the encoding.
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
    PK_DIGEST = 78,        /* the state digest at the node's applied sequence */
    PK_HOLDS_EXPIRING = 79 /* the open holds that expire first */
};

#define PK_LAST PK_HOLDS_EXPIRING

static inline bool
proto_kind_is_write(uint32_t kind)
{
    return kind >= 1 && kind <= TRASTENDA_OP_NOOP;
}

/* Kinds that need a token whenever tokens are configured, open-reads or not (docs/SECURITY.md):
 * the writes, and what changes a node's role or writes files where it runs (promote, backup). */
static inline bool
proto_kind_needs_token(uint32_t kind)
{
    return proto_kind_is_write(kind) || kind == PK_PROMOTE || kind == PK_BACKUP;
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
#define PROTO_OPS_MAX         TRASTENDA_REQUEST_OPS_MAX   /* operations in one request */
#define PROTO_LINES_TOTAL_MAX TRASTENDA_REQUEST_LINES_MAX /* lines of all its ops */
#define PROTO_CHANNELS_MAX    TRASTENDA_CHANNELS_MAX
#define PROTO_MSG_MAX         TRASTENDA_REQUEST_BYTES_MAX /* bytes (NNG_OPT_RECVMAXSZ) */
#define PROTO_DIR_BYTES_MAX   1024

/* Envelope fields seen (proto_req.present). */
enum {
    PROTO_ENV_V = 1,
    PROTO_ENV_ID = 2,
    PROTO_ENV_OPS = 4,
    PROTO_ENV_MIN_SEQ = 8,
    PROTO_ENV_TOKEN = 16
};

/* Line fields seen (proto_line.present). */
enum {
    PROTO_LN_SKU = 1,
    PROTO_LN_LOC = 2,
    PROTO_LN_QTY = 4,
    PROTO_LN_UNSELLABLE = 8
};

struct proto_line {
    trastenda_str sku, loc;
    int64_t qty;
    bool unsellable;
    uint8_t present; /* PROTO_LN_ bits */
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

/* A valid write: the ops that become engine commands (and have a result of their own). */
static inline bool
proto_op_is_command(const struct proto_op *op)
{
    return op->err == TRASTENDA_OK && proto_kind_is_write(op->kind);
}

/* A decoded request. Arrays grow to the high-water mark and are kept for reuse (one per context).
 */
struct proto_req {
    uint32_t version;
    uint64_t id;
    uint64_t min_seq;    /* reads wait until this sequence is applied (followers) */
    trastenda_str token; /* access token (docs/SECURITY.md); empty when none */
    uint32_t present;    /* PROTO_ENV_ bits */
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

/*
 * ---- For decoders ----
 *
 * A decoder of an encoding reads the envelope and each op and records what it read with these;
 * they hold every message and rule of the decode layer (Design note (1) of net/proto.c), so two
 * decoders report the same codes and messages. An op-level error returns its code with the op's
 * err and msg set; an envelope error returns false (or an error code) with q->err and q->msg
 * set. `got` names the type that was found ("a string", "an integer", "nil", ...). Strings are
 * borrowed: they must outlive the struct's use.
 */
enum proto_value {
    PV_STR,
    PV_INT,  /* int64 */
    PV_UINT, /* uint64 */
    PV_BOOL,
    PV_LINES,   /* array of line maps */
    PV_CHANNELS /* array of strings */
};

void proto_req_reset(struct proto_req *q);
bool proto_env_fail(struct proto_req *q, trastenda_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Client text for a message: printable ASCII, cut short; cap >= 48. */
const char *proto_quote(char *buf, size_t cap, const char *s, uint32_t len);

/* Envelope: a key (unknown or duplicate: false), a value of the wrong type, v/id/min_seq, token. */
bool proto_dec_env_key(struct proto_req *q, const char *s, uint32_t len, uint32_t *bit,
                       const char **name);
bool proto_dec_env_type(struct proto_req *q, uint32_t bit, const char *got);
bool proto_dec_env_uint(struct proto_req *q, uint32_t bit, const char *name, bool neg, int64_t s,
                        uint64_t u);
void proto_dec_env_token(struct proto_req *q, trastenda_str v);

/* Ops: room for n (false on too many), op i begins, a failed op is dropped (its lines too). */
bool proto_dec_ops(struct proto_req *q, uint32_t n);
struct proto_op *proto_dec_op_begin(struct proto_req *q, uint32_t i);
void proto_dec_op_drop(struct proto_req *q, struct proto_op *op, uint32_t lines0,
                       uint32_t channels0);
trastenda_err proto_dec_op_type(struct proto_op *op, uint32_t i, const char *got);

/* Op fields: a key (sets *f and its presence bit), the kind of value it takes, a value of the
 * wrong type, and the values. neg with s < 0, or u. */
trastenda_err proto_dec_key(struct proto_op *op, uint32_t i, const char *s, uint32_t len, int *f);
enum proto_value proto_field_value(int f);
/* The field named s, or -1 (no presence bit is set). */
int proto_field_lookup(const char *s, uint32_t len);
trastenda_err proto_dec_type(struct proto_op *op, uint32_t i, int f, const char *got);
trastenda_err proto_dec_int(struct proto_op *op, uint32_t i, int f, bool neg, int64_t s,
                            uint64_t u);
void proto_dec_str(struct proto_op *op, int f, trastenda_str v);
void proto_dec_bool(struct proto_op *op, int f, bool v);

/* Lines: n of them for op i (a request-wide limit: an envelope error), each one's slot, a line
 * that is not a map, its keys (*bit: a PROTO_LN_ bit), a value of the wrong type, its qty. */
trastenda_err proto_dec_lines(struct proto_req *q, struct proto_op *op, uint32_t i, uint32_t n);
struct proto_line *proto_dec_line_next(struct proto_req *q);
trastenda_err proto_dec_line_map_type(struct proto_op *op, uint32_t i, uint32_t l, const char *got);
trastenda_err proto_dec_line_key(struct proto_op *op, uint32_t i, uint32_t l, struct proto_line *ln,
                                 const char *s, uint32_t len, uint8_t *bit);
trastenda_err proto_dec_line_type(struct proto_op *op, uint32_t i, uint32_t l, uint8_t bit,
                                  const char *got);
trastenda_err proto_dec_line_qty(struct proto_op *op, uint32_t i, uint32_t l, struct proto_line *ln,
                                 bool neg, int64_t s, uint64_t u);

/* Channels: n of them (*keep false: too many to store, validate refuses the count), each one. */
trastenda_err proto_dec_channels(struct proto_req *q, struct proto_op *op, uint32_t n, bool *keep);
void proto_dec_channel(struct proto_req *q, bool keep, trastenda_str v);
trastenda_err proto_dec_channel_type(struct proto_op *op, uint32_t i, uint32_t k, const char *got);

/* Operation names: "reserve", "order.place", ... and back; NULL / PK_NONE when unknown. */
const char *proto_kind_name(uint32_t kind);
uint32_t proto_kind_of(trastenda_str name);

#endif /* TRASTENDA_NET_PROTO_H */
