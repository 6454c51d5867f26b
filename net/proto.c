/*
 * net/proto.c - the request protocol (docs/PROTOCOL.md): msgpack -> struct proto_req (decode),
 * the rules of every op (validate), and a valid write op -> trastenda_cmd (convert).
 * Allocates only when a request needs more ops, lines or channels than any before it on the same
 * struct (net/proto.h); never from a declared count that was not checked against a limit first.
 *
 * Design notes
 *
 * (1) Decode checks the encoding, validate checks the rules. Decode records what it saw (values,
 *     presence bits) and refuses only what it cannot record: malformed msgpack, a wrong msgpack
 *     type, an unknown or duplicate key, an integer that does not fit the field's C type. Every
 *     other rule (op name, required and refused fields, ranges, strings, counts) is in validate,
 *     which a second decoder (JSON) reuses as is.
 *
 * (2) Errors are per op. An op-level decode error rewinds the reader to the start of the op and
 *     skips the whole op with mp_skip (bounded nesting); its lines and channels are dropped. Only
 *     an error that leaves the next op unfindable (malformed msgpack, nesting beyond
 *     MP_DEPTH_MAX) or a request-wide limit fails the envelope.
 *
 * (3) Memory is bounded before it is taken: ops <= PROTO_OPS_MAX; lines over the request <=
 *     PROTO_LINES_TOTAL_MAX (checked against each declared lines count before growing); channels
 *     are stored only for an op that declares at most PROTO_CHANNELS_MAX of them (a longer list is
 *     read, counted in channels_n for validate to refuse, and not stored), so at most
 *     PROTO_OPS_MAX * PROTO_CHANNELS_MAX over a request. mp checks every count against the bytes
 *     left, so a 5-byte header claiming 2^32-1 elements fails before anything is allocated.
 *
 * (4) Nesting: the envelope is level 1, ops 2, an op 3, its values 4 (a line map 5). A value is
 *     skipped with at most MP_DEPTH_MAX levels in all.
 *
 * (5) Messages echo client text only through quote(): printable ASCII, the rest as \xNN, cut
 *     short. Every message is then ASCII and fits TRASTENDA_MESSAGE_BYTES.
 */
#include "proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp.h"

/* Assertions catch our bugs (STYLE.md 4), on in every build; net/ does not see engine/base.h. */
#define PROTO_ASSERT(x)                                                                            \
    do {                                                                                           \
        if (!(x)) assert_fail(__FILE__, __LINE__, #x);                                             \
    } while (0)

static _Noreturn void
assert_fail(const char *file, int line, const char *expr)
{
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
    abort();
}

#define BIT(f) (1ull << (f))

/* Design note (4): the mp_skip depth of an op (level 3): its values may nest to level 8. */
#define SKIP_DEPTH_OP (MP_DEPTH_MAX - 2)

/* Envelope and line presence bits (net/proto.h), by shorter names. */
enum {
    ENV_V = PROTO_ENV_V,
    ENV_ID = PROTO_ENV_ID,
    ENV_OPS = PROTO_ENV_OPS,
    ENV_MIN_SEQ = PROTO_ENV_MIN_SEQ
};

enum {
    LN_SKU = PROTO_LN_SKU,
    LN_LOC = PROTO_LN_LOC,
    LN_QTY = PROTO_LN_QTY,
    LN_UNSELLABLE = PROTO_LN_UNSELLABLE
};

/* ---- fields ---- */

enum fkind {
    FK_OP,      /* str: an operation name */
    FK_ID,      /* str: 1..TRASTENDA_ID_BYTES_MAX, UTF-8, no control characters */
    FK_NAME,    /* str: 0..TRASTENDA_NAME_BYTES_MAX, UTF-8, no control characters */
    FK_REASON,  /* str: a trastenda_reason name */
    FK_DIR,     /* str: 1..PROTO_DIR_BYTES_MAX, UTF-8, no control characters */
    FK_INT,     /* int64 within lo..hi */
    FK_UINT,    /* uint64 within ulo..uhi */
    FK_BOOL,    /* bool */
    FK_LINES,   /* array of line maps */
    FK_CHANNELS /* array of str (ids) */
};

struct field_info {
    uint8_t kind;      /* enum fkind */
    uint16_t off;      /* of the value in struct proto_op */
    int64_t lo, hi;    /* FK_INT */
    uint64_t ulo, uhi; /* FK_UINT */
};

#define OFF(m) ((uint16_t)offsetof(struct proto_op, m))
#define STR_F(k, m)                                                                                \
    {                                                                                              \
        k, OFF(m), 0, 0, 0, 0                                                                      \
    }
#define INT_F(m, lo, hi)                                                                           \
    {                                                                                              \
        FK_INT, OFF(m), lo, hi, 0, 0                                                               \
    }
#define UINT_F(m, lo, hi)                                                                          \
    {                                                                                              \
        FK_UINT, OFF(m), 0, 0, lo, hi                                                              \
    }
#define QTY_F(m) INT_F(m, -TRASTENDA_QTY_MAX, TRASTENDA_QTY_MAX)

static const struct field_info fields[PFD_COUNT_] = {
    [PFD_OP] = STR_F(FK_OP, op_name),
    [PFD_KEY] = STR_F(FK_ID, key),
    [PFD_ACTOR] = STR_F(FK_ID, actor),
    [PFD_REF] = STR_F(FK_ID, ref),
    [PFD_SKU] = STR_F(FK_ID, sku),
    [PFD_LOC] = STR_F(FK_ID, loc),
    [PFD_TO] = STR_F(FK_ID, to),
    [PFD_ORDER] = STR_F(FK_ID, order),
    [PFD_PO] = STR_F(FK_ID, po),
    [PFD_NAME] = STR_F(FK_NAME, name),
    [PFD_CHANNEL] = STR_F(FK_ID, channel),
    [PFD_CHANNELS] = {FK_CHANNELS, 0, 0, 0, 0, 0},
    [PFD_HOLD] = UINT_F(hold, 0, UINT64_MAX),
    [PFD_QTY] = QTY_F(qty),
    [PFD_EXPECTED] = QTY_F(expected),
    [PFD_TTL_MS] = INT_F(ttl_ms, TRASTENDA_TTL_MS_MIN, TRASTENDA_TTL_MS_MAX),
    [PFD_REORDER_POINT] = QTY_F(reorder_point),
    [PFD_REORDER_QTY] = QTY_F(reorder_qty),
    [PFD_SAFETY_STOCK] = QTY_F(safety_stock),
    [PFD_LEAD_DAYS] = INT_F(lead_days, 0, TRASTENDA_LEAD_DAYS_MAX),
    [PFD_PRIORITY] = INT_F(priority, INT32_MIN, INT32_MAX),
    [PFD_LAT_E6] = INT_F(lat_e6, -90000000, 90000000),
    [PFD_LON_E6] = INT_F(lon_e6, -180000000, 180000000),
    [PFD_REASON] = STR_F(FK_REASON, reason),
    [PFD_PARTIAL] = {FK_BOOL, OFF(partial), 0, 0, 0, 0},
    [PFD_ACTIVE] = {FK_BOOL, OFF(active), 0, 0, 0, 0},
    [PFD_LINES] = {FK_LINES, 0, 0, 0, 0, 0},
    [PFD_CURSOR] = UINT_F(cursor, 0, UINT64_MAX),
    [PFD_LIMIT] = UINT_F(limit, 1, TRASTENDA_PAGE_MAX),
    [PFD_FROM_MS] = INT_F(from_ms, 0, TRASTENDA_TIME_MS_MAX),
    [PFD_TO_MS] = INT_F(to_ms, 0, TRASTENDA_TIME_MS_MAX),
    [PFD_BEFORE] = UINT_F(before, 0, UINT64_MAX),
    [PFD_SINCE] = UINT_F(since, 0, UINT64_MAX),
    [PFD_DIR] = STR_F(FK_DIR, dir),
    [PFD_FORCE] = {FK_BOOL, OFF(force), 0, 0, 0, 0},
};

static const char *const field_names[PFD_COUNT_] = {
    [PFD_OP] = "op",
    [PFD_KEY] = "key",
    [PFD_ACTOR] = "actor",
    [PFD_REF] = "ref",
    [PFD_SKU] = "sku",
    [PFD_LOC] = "loc",
    [PFD_TO] = "to",
    [PFD_ORDER] = "order",
    [PFD_PO] = "po",
    [PFD_NAME] = "name",
    [PFD_CHANNEL] = "channel",
    [PFD_CHANNELS] = "channels",
    [PFD_HOLD] = "hold",
    [PFD_QTY] = "qty",
    [PFD_EXPECTED] = "expected",
    [PFD_TTL_MS] = "ttl_ms",
    [PFD_REORDER_POINT] = "reorder_point",
    [PFD_REORDER_QTY] = "reorder_qty",
    [PFD_SAFETY_STOCK] = "safety_stock",
    [PFD_LEAD_DAYS] = "lead_days",
    [PFD_PRIORITY] = "priority",
    [PFD_LAT_E6] = "lat_e6",
    [PFD_LON_E6] = "lon_e6",
    [PFD_REASON] = "reason",
    [PFD_PARTIAL] = "partial",
    [PFD_ACTIVE] = "active",
    [PFD_LINES] = "lines",
    [PFD_CURSOR] = "cursor",
    [PFD_LIMIT] = "limit",
    [PFD_FROM_MS] = "from_ms",
    [PFD_TO_MS] = "to_ms",
    [PFD_BEFORE] = "before",
    [PFD_SINCE] = "since",
    [PFD_DIR] = "dir",
    [PFD_FORCE] = "force",
};

_Static_assert(PFD_COUNT_ <= 64, "presence bits fit proto_op.present");

const char *
proto_field_name(enum proto_field f)
{
    PROTO_ASSERT((unsigned)f < PFD_COUNT_);
    PROTO_ASSERT(field_names[f] != NULL);
    return field_names[f];
}

/* The fields of each name length, so that a key costs at most seven memcmp of its own length
 * (a request may carry thousands of ops). 0xff ends a list. tests/net/test_proto.c decodes every
 * name. */
#define FIELD_LEN_MAX 13
static const uint8_t fields_by_len[FIELD_LEN_MAX + 1][8] = {
    [0] = {0xff},
    [1] = {0xff},
    [2] = {PFD_OP, PFD_TO, PFD_PO, 0xff},
    [3] = {PFD_KEY, PFD_REF, PFD_SKU, PFD_LOC, PFD_QTY, PFD_DIR, 0xff},
    [4] = {PFD_NAME, PFD_HOLD, 0xff},
    [5] = {PFD_ACTOR, PFD_ORDER, PFD_LINES, PFD_LIMIT, PFD_TO_MS, PFD_SINCE, PFD_FORCE, 0xff},
    [6] = {PFD_TTL_MS, PFD_LAT_E6, PFD_LON_E6, PFD_REASON, PFD_ACTIVE, PFD_CURSOR, PFD_BEFORE,
           0xff},
    [7] = {PFD_CHANNEL, PFD_PARTIAL, PFD_FROM_MS, 0xff},
    [8] = {PFD_CHANNELS, PFD_EXPECTED, PFD_PRIORITY, 0xff},
    [9] = {PFD_LEAD_DAYS, 0xff},
    [10] = {0xff},
    [11] = {PFD_REORDER_QTY, 0xff},
    [12] = {PFD_SAFETY_STOCK, 0xff},
    [13] = {PFD_REORDER_POINT, 0xff},
};

/* The field named s, or -1. */
static int
field_of(const char *s, uint32_t len)
{
    if (len < 2 || len > FIELD_LEN_MAX) return -1;
    const uint8_t *c = fields_by_len[len];
    for (int k = 0; k < 8 && c[k] != 0xff; k++)
        if (memcmp(field_names[c[k]], s, len) == 0) return c[k];
    return -1;
}

/* ---- operations ---- */

enum line_loc {
    LL_NONE = 0,     /* the op takes no lines */
    LL_OPTIONAL = 1, /* reserve: lines without loc are routed */
    LL_REQUIRED = 2, /* order.return, po.*: every line names its location */
    LL_REFUSED = 3   /* order.place: lines are routed (engine/order.c refuses a loc) */
};

struct op_spec {
    const char *name;
    uint64_t required, optional; /* fields besides op; writes also take key, actor, ref */
    uint8_t line_loc;            /* enum line_loc */
    bool unsellable;             /* lines may carry unsellable (returns) */
};

#define F(x) BIT(PFD_##x)
#define SHIP (F(LAT_E6) | F(LON_E6))

/* docs/PROTOCOL.md, "Writes" and "Reads", indexed by spec_index(). */
static const struct op_spec specs[] = {
    [TRASTENDA_OP_LOCATION_UPSERT] = {"location.upsert", F(LOC),
                                      F(NAME) | SHIP | F(PRIORITY) | F(CHANNELS) | F(ACTIVE), 0,
                                      false},
    [TRASTENDA_OP_LOCATION_DEACTIVATE] = {"location.deactivate", F(LOC), 0, 0, false},
    [TRASTENDA_OP_SKU_UPSERT] = {"sku.upsert", F(SKU),
                                 F(NAME) | F(REORDER_POINT) | F(REORDER_QTY) | F(LEAD_DAYS) |
                                     F(SAFETY_STOCK) | F(ACTIVE),
                                 0, false},
    [TRASTENDA_OP_SKU_DEACTIVATE] = {"sku.deactivate", F(SKU), 0, 0, false},
    [TRASTENDA_OP_RECEIVE] = {"receive", F(SKU) | F(LOC) | F(QTY), 0, 0, false},
    [TRASTENDA_OP_ADJUST] = {"adjust", F(SKU) | F(LOC) | F(QTY) | F(REASON), 0, 0, false},
    [TRASTENDA_OP_COUNT] = {"count", F(SKU) | F(LOC) | F(QTY), F(EXPECTED) | F(REASON), 0, false},
    /* The engine needs the reason of a move to or from unsellable (damage, quality, correction). */
    [TRASTENDA_OP_MOVE_UNSELLABLE] = {"unsellable", F(SKU) | F(LOC) | F(QTY) | F(REASON), 0, 0,
                                      false},
    [TRASTENDA_OP_SET_SAFETY] = {"safety", F(SKU) | F(LOC) | F(QTY), 0, 0, false},
    [TRASTENDA_OP_TRANSFER_OUT] = {"transfer.out", F(SKU) | F(LOC) | F(TO) | F(QTY), 0, 0, false},
    [TRASTENDA_OP_TRANSFER_IN] = {"transfer.in", F(SKU) | F(LOC) | F(QTY), 0, 0, false},
    [TRASTENDA_OP_RESERVE] = {"reserve", F(LINES) | F(TTL_MS), F(CHANNEL) | SHIP | F(PARTIAL),
                              LL_OPTIONAL, false},
    [TRASTENDA_OP_EXTEND] = {"extend", F(HOLD) | F(TTL_MS), 0, 0, false},
    /* The engine takes a ship-to on confirm for a hold that has none (engine/hold.c). */
    [TRASTENDA_OP_CONFIRM] = {"confirm", F(HOLD) | F(ORDER), F(CHANNEL) | SHIP, 0, false},
    [TRASTENDA_OP_RELEASE] = {"release", F(HOLD), 0, 0, false},
    /* Routed: the channel says which locations may ship it (engine/order.c). */
    [TRASTENDA_OP_ORDER_PLACE] = {"order.place", F(ORDER) | F(LINES) | F(CHANNEL) | SHIP, 0,
                                  LL_REFUSED, false},
    [TRASTENDA_OP_ORDER_PICK] = {"order.pick", F(ORDER), F(LOC), 0, false},
    [TRASTENDA_OP_ORDER_PACK] = {"order.pack", F(ORDER), F(LOC), 0, false},
    [TRASTENDA_OP_ORDER_SHIP] = {"order.ship", F(ORDER), F(LOC), 0, false},
    [TRASTENDA_OP_ORDER_DELIVER] = {"order.deliver", F(ORDER), 0, 0, false},
    [TRASTENDA_OP_ORDER_CANCEL] = {"order.cancel", F(ORDER), 0, 0, false},
    [TRASTENDA_OP_ORDER_RETURN] = {"order.return", F(ORDER) | F(LINES), 0, LL_REQUIRED, true},
    [TRASTENDA_OP_PO_CREATE] = {"po.create", F(PO) | F(LINES), 0, LL_REQUIRED, false},
    [TRASTENDA_OP_PO_RECEIVE] = {"po.receive", F(PO) | F(LINES), 0, LL_REQUIRED, false},
    [TRASTENDA_OP_PO_CLOSE] = {"po.close", F(PO), 0, 0, false},
    [TRASTENDA_OP_NOOP] = {"noop", 0, 0, 0, false},
    /* reads: PK_STOCK.. at TRASTENDA_OP_COUNT_ + (kind - PK_STOCK) */
    [TRASTENDA_OP_COUNT_ + 0] = {"stock", F(SKU), F(LOC) | F(CHANNEL) | F(CURSOR) | F(LIMIT), 0,
                                 false},
    [TRASTENDA_OP_COUNT_ + 1] = {"hold", F(HOLD), 0, 0, false},
    [TRASTENDA_OP_COUNT_ + 2] = {"order", F(ORDER), 0, 0, false},
    [TRASTENDA_OP_COUNT_ + 3] = {"po", F(PO), 0, 0, false},
    [TRASTENDA_OP_COUNT_ + 4] = {"low_stock", 0, F(CURSOR) | F(LIMIT), 0, false},
    [TRASTENDA_OP_COUNT_ + 5] = {"reorder", 0, F(CURSOR) | F(LIMIT), 0, false},
    [TRASTENDA_OP_COUNT_ + 6] = {"ledger", F(SKU),
                                 F(LOC) | F(FROM_MS) | F(TO_MS) | F(BEFORE) | F(LIMIT), 0, false},
    [TRASTENDA_OP_COUNT_ + 7] = {"status", 0, 0, 0, false},
    [TRASTENDA_OP_COUNT_ + 8] = {"events", 0, F(SINCE) | F(LIMIT), 0, false},
    [TRASTENDA_OP_COUNT_ + 9] = {"backup", F(DIR), 0, 0, false},
    [TRASTENDA_OP_COUNT_ + 10] = {"stock.list", 0, F(CURSOR) | F(LIMIT), 0, false},
    [TRASTENDA_OP_COUNT_ + 11] = {"sku.list", 0, F(CURSOR) | F(LIMIT), 0, false},
    [TRASTENDA_OP_COUNT_ + 12] = {"location.list", 0, F(CURSOR) | F(LIMIT), 0, false},
    [TRASTENDA_OP_COUNT_ + 13] = {"promote", 0, F(FORCE), 0, false},
    [TRASTENDA_OP_COUNT_ + 14] = {"digest", 0, 0, 0, false},
    [TRASTENDA_OP_COUNT_ + 15] = {"holds.expiring", 0, F(LIMIT), 0, false},
};

#define SPECS_N (sizeof(specs) / sizeof(specs[0]))
_Static_assert(SPECS_N == TRASTENDA_OP_COUNT_ + (PK_LAST - PK_STOCK + 1), "one spec per kind");

/* Index of a kind in specs, or 0 (no spec) when it is not an operation. */
static uint32_t
spec_index(uint32_t kind)
{
    if (proto_kind_is_write(kind)) return kind;
    if (kind >= PK_STOCK && kind <= PK_LAST) return TRASTENDA_OP_COUNT_ + (kind - PK_STOCK);
    return 0;
}

static const struct op_spec *
spec_of(uint32_t kind)
{
    uint32_t ix = spec_index(kind);
    return ix == 0 ? NULL : &specs[ix];
}

const char *
proto_kind_name(uint32_t kind)
{
    const struct op_spec *sp = spec_of(kind);
    return sp == NULL ? NULL : sp->name;
}

/* Operation names in byte order, for a binary search. tests/net/test_proto.c looks every one
 * up, which fails if this order is wrong. */
static const struct {
    const char *name;
    uint32_t kind;
} kinds_sorted[] = {
    {"adjust", TRASTENDA_OP_ADJUST},
    {"backup", PK_BACKUP},
    {"confirm", TRASTENDA_OP_CONFIRM},
    {"count", TRASTENDA_OP_COUNT},
    {"digest", PK_DIGEST},
    {"events", PK_EVENTS},
    {"extend", TRASTENDA_OP_EXTEND},
    {"hold", PK_HOLD},
    {"holds.expiring", PK_HOLDS_EXPIRING},
    {"ledger", PK_LEDGER},
    {"location.deactivate", TRASTENDA_OP_LOCATION_DEACTIVATE},
    {"location.list", PK_LOCATION_LIST},
    {"location.upsert", TRASTENDA_OP_LOCATION_UPSERT},
    {"low_stock", PK_LOW_STOCK},
    {"noop", TRASTENDA_OP_NOOP},
    {"order", PK_ORDER},
    {"order.cancel", TRASTENDA_OP_ORDER_CANCEL},
    {"order.deliver", TRASTENDA_OP_ORDER_DELIVER},
    {"order.pack", TRASTENDA_OP_ORDER_PACK},
    {"order.pick", TRASTENDA_OP_ORDER_PICK},
    {"order.place", TRASTENDA_OP_ORDER_PLACE},
    {"order.return", TRASTENDA_OP_ORDER_RETURN},
    {"order.ship", TRASTENDA_OP_ORDER_SHIP},
    {"po", PK_PO},
    {"po.close", TRASTENDA_OP_PO_CLOSE},
    {"po.create", TRASTENDA_OP_PO_CREATE},
    {"po.receive", TRASTENDA_OP_PO_RECEIVE},
    {"promote", PK_PROMOTE},
    {"receive", TRASTENDA_OP_RECEIVE},
    {"release", TRASTENDA_OP_RELEASE},
    {"reorder", PK_REORDER},
    {"reserve", TRASTENDA_OP_RESERVE},
    {"safety", TRASTENDA_OP_SET_SAFETY},
    {"sku.deactivate", TRASTENDA_OP_SKU_DEACTIVATE},
    {"sku.list", PK_SKU_LIST},
    {"sku.upsert", TRASTENDA_OP_SKU_UPSERT},
    {"status", PK_STATUS},
    {"stock", PK_STOCK},
    {"stock.list", PK_STOCK_LIST},
    {"transfer.in", TRASTENDA_OP_TRANSFER_IN},
    {"transfer.out", TRASTENDA_OP_TRANSFER_OUT},
    {"unsellable", TRASTENDA_OP_MOVE_UNSELLABLE},
};
_Static_assert(sizeof(kinds_sorted) / sizeof(kinds_sorted[0]) == SPECS_N - 1, "every name");

/* Byte order of a slice against a NUL-terminated name (a prefix sorts first). */
static int
name_cmp(trastenda_str s, const char *name)
{
    size_t n = strlen(name);
    size_t m = s.len < n ? s.len : n;
    int c = m ? memcmp(s.ptr, name, m) : 0;
    if (c != 0) return c;
    return (s.len > n) - (s.len < n);
}

uint32_t
proto_kind_of(trastenda_str name)
{
    if (name.len == 0 || name.ptr == NULL) return PK_NONE;
    uint32_t lo = 0, hi = sizeof(kinds_sorted) / sizeof(kinds_sorted[0]);
    while (lo < hi) { /* bound: log2(36) + 1 rounds */
        uint32_t mid = lo + (hi - lo) / 2;
        int c = name_cmp(name, kinds_sorted[mid].name);
        if (c == 0) return kinds_sorted[mid].kind;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return PK_NONE;
}

/* ---- reasons ---- */

static const char *const reason_names[TRASTENDA_REASON_COUNT_] = {
    [TRASTENDA_REASON_COUNT] = "count",           [TRASTENDA_REASON_DAMAGE] = "damage",
    [TRASTENDA_REASON_THEFT] = "theft",           [TRASTENDA_REASON_FOUND] = "found",
    [TRASTENDA_REASON_CORRECTION] = "correction", [TRASTENDA_REASON_QUALITY] = "quality",
};

/* The reason named s, or TRASTENDA_REASON_NONE. */
static uint32_t
reason_of(trastenda_str s)
{
    for (uint32_t k = 1; k < TRASTENDA_REASON_COUNT_; k++)
        if (name_cmp(s, reason_names[k]) == 0) return k;
    return TRASTENDA_REASON_NONE;
}

/* ---- messages ---- */

/* Design note (5): client text as printable ASCII, at most about 40 characters. */
static const char *
quote(char *buf, size_t cap, const char *s, uint32_t len)
{
    PROTO_ASSERT(cap >= 48);
    size_t o = 0;
    for (uint32_t k = 0; k < len; k++) {
        uint8_t c = (uint8_t)s[k];
        if (o + 8 > cap || o >= 40) {
            memcpy(buf + o, "...", 4);
            return buf;
        }
        if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\')
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
    }
    buf[o] = 0;
    return buf;
}

static trastenda_err
vfail(char *msg, trastenda_err *slot, trastenda_err code, const char *fmt, va_list ap)
{
    PROTO_ASSERT(code != TRASTENDA_OK);
    vsnprintf(msg, TRASTENDA_MESSAGE_BYTES, fmt, ap);
    *slot = code;
    return code;
}

/* An envelope error: the whole request fails. Returns false for the callers' convenience. */
static bool
env_fail(struct proto_req *q, trastenda_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(q->msg, &q->err, code, fmt, ap);
    va_end(ap);
    return false;
}

/* An op error; the first one stays. */
static trastenda_err
op_fail(struct proto_op *op, trastenda_err code, const char *fmt, ...)
{
    PROTO_ASSERT(op->err == TRASTENDA_OK);
    va_list ap;
    va_start(ap, fmt);
    vfail(op->msg, &op->err, code, fmt, ap);
    va_end(ap);
    return code;
}

static const char *
type_name(enum mp_type t)
{
    static const char *const names[] = {"nothing", "nil",         "a boolean", "an integer",
                                        "a float", "a string",    "binary",    "an array",
                                        "a map",   "an extension"};
    return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

/* ---- struct life ---- */

void
proto_req_init(struct proto_req *q)
{
    PROTO_ASSERT(q != NULL);
    memset(q, 0, sizeof(*q));
    PROTO_ASSERT(q->ops == NULL && q->lines == NULL && q->channels == NULL);
}

void
proto_req_fini(struct proto_req *q)
{
    if (q == NULL) return;
    free(q->ops);
    free(q->lines);
    free(q->channels);
    memset(q, 0, sizeof(*q));
}

/* Room for need elements of size bytes in *arr (capacity *cap). Design note (3): need is
 * bounded by a limit before the call. */
static bool
reserve_room(void **arr, uint32_t *cap, uint32_t need, size_t size)
{
    PROTO_ASSERT(need <= PROTO_OPS_MAX * PROTO_CHANNELS_MAX);
    if (need <= *cap) return true;
    uint32_t c = *cap > 0 ? *cap : 16;
    while (c < need) /* bound: need <= 2^15 */
        c *= 2;
    void *p = realloc(*arr, (size_t)c * size);
    if (p == NULL) return false;
    *arr = p;
    *cap = c;
    return true;
}

#define RESERVE(q, arr, cap, need)                                                                 \
    reserve_room_typed((void *)&(q)->arr, &(q)->cap, need, sizeof(*(q)->arr))

/* A typed front for reserve_room without casting T ** to void **. */
static bool
reserve_room_typed(void *arrp, uint32_t *cap, uint32_t need, size_t size)
{
    void *arr;
    memcpy(&arr, arrp, sizeof(arr));
    bool ok = reserve_room(&arr, cap, need, size);
    memcpy(arrp, &arr, sizeof(arr));
    return ok;
}

static void
req_reset(struct proto_req *q)
{
    q->version = 0;
    q->id = 0;
    q->min_seq = 0;
    q->token = (trastenda_str){NULL, 0};
    q->present = 0;
    q->err = TRASTENDA_OK;
    q->msg[0] = 0;
    q->n_ops = q->n_lines = q->n_channels = 0;
}

static void
op_reset(struct proto_op *op)
{
    memset(op, 0, offsetof(struct proto_op, msg));
    op->err_line = UINT32_MAX;
    op->msg[0] = 0;
}

/* ---- decode: what every decoder records (net/proto.h, "For decoders") ---- */

void
proto_req_reset(struct proto_req *q)
{
    PROTO_ASSERT(q != NULL);
    req_reset(q);
}

bool
proto_env_fail(struct proto_req *q, trastenda_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(q->msg, &q->err, code, fmt, ap);
    va_end(ap);
    return false;
}

const char *
proto_quote(char *buf, size_t cap, const char *s, uint32_t len)
{
    return quote(buf, cap, s, len);
}

int
proto_field_lookup(const char *s, uint32_t len)
{
    return field_of(s, len);
}

enum proto_value
proto_field_value(int f)
{
    PROTO_ASSERT(f >= 0 && f < PFD_COUNT_);
    switch (fields[f].kind) {
    case FK_INT:
        return PV_INT;
    case FK_UINT:
        return PV_UINT;
    case FK_BOOL:
        return PV_BOOL;
    case FK_LINES:
        return PV_LINES;
    case FK_CHANNELS:
        return PV_CHANNELS;
    default:
        return PV_STR;
    }
}

trastenda_err
proto_dec_type(struct proto_op *op, uint32_t i, int f, const char *got)
{
    static const char *const want[] = {[PV_STR] = "a string",
                                       [PV_INT] = "an integer",
                                       [PV_UINT] = "an integer",
                                       [PV_BOOL] = "a boolean",
                                       [PV_LINES] = "an array of line maps",
                                       [PV_CHANNELS] = "an array of strings"};
    return op_fail(op, TRASTENDA_E_TYPE, "ops[%u].%s: expected %s (got %s)", i, field_names[f],
                   want[proto_field_value(f)], got);
}

trastenda_err
proto_dec_op_type(struct proto_op *op, uint32_t i, const char *got)
{
    return op_fail(op, TRASTENDA_E_TYPE, "ops[%u]: expected a map (got %s)", i, got);
}

trastenda_err
proto_dec_key(struct proto_op *op, uint32_t i, const char *s, uint32_t len, int *f)
{
    char qb[48];
    *f = field_of(s, len);
    if (*f < 0)
        return op_fail(op, TRASTENDA_E_UNKNOWN_FIELD, "ops[%u]: unknown field '%s'", i,
                       quote(qb, sizeof(qb), s, len));
    if (op->present & BIT(*f))
        return op_fail(op, TRASTENDA_E_DUPLICATE_FIELD, "ops[%u].%s: given twice", i,
                       field_names[*f]);
    op->present |= BIT(*f);
    return TRASTENDA_OK;
}

/* Values the C type cannot hold are out of range (Design note (1)). */
trastenda_err
proto_dec_int(struct proto_op *op, uint32_t i, int f, bool neg, int64_t s, uint64_t u)
{
    const struct field_info *fi = &fields[f];
    PROTO_ASSERT(fi->kind == FK_INT || fi->kind == FK_UINT);
    PROTO_ASSERT(!neg || s < 0);
    char *at = (char *)op + fi->off;
    if (fi->kind == FK_INT) {
        if (!neg && u > (uint64_t)INT64_MAX)
            return op_fail(op, TRASTENDA_E_RANGE, "ops[%u].%s: must be %lld..%lld (got %llu)", i,
                           field_names[f], (long long)fi->lo, (long long)fi->hi,
                           (unsigned long long)u);
        int64_t v = neg ? s : (int64_t)u;
        memcpy(at, &v, sizeof(v));
        return TRASTENDA_OK;
    }
    if (neg)
        return op_fail(op, TRASTENDA_E_RANGE, "ops[%u].%s: must be %llu..%llu (got %lld)", i,
                       field_names[f], (unsigned long long)fi->ulo, (unsigned long long)fi->uhi,
                       (long long)s);
    memcpy(at, &u, sizeof(u));
    return TRASTENDA_OK;
}

void
proto_dec_str(struct proto_op *op, int f, trastenda_str v)
{
    PROTO_ASSERT(proto_field_value(f) == PV_STR);
    memcpy((char *)op + fields[f].off, &v, sizeof(v));
}

void
proto_dec_bool(struct proto_op *op, int f, bool v)
{
    PROTO_ASSERT(fields[f].kind == FK_BOOL);
    memcpy((char *)op + fields[f].off, &v, sizeof(v));
}

/* Design note (3): a list longer than PROTO_CHANNELS_MAX is counted but not stored (*keep). */
trastenda_err
proto_dec_channels(struct proto_req *q, struct proto_op *op, uint32_t n, bool *keep)
{
    *keep = n <= PROTO_CHANNELS_MAX;
    if (*keep && !RESERVE(q, channels, cap_channels, q->n_channels + n)) {
        env_fail(q, TRASTENDA_E_NOMEM, "out of memory for %u channels", q->n_channels + n);
        return TRASTENDA_E_NOMEM;
    }
    op->channels_at = q->n_channels;
    op->channels_n = n;
    return TRASTENDA_OK;
}

void
proto_dec_channel(struct proto_req *q, bool keep, trastenda_str v)
{
    if (!keep) return;
    PROTO_ASSERT(q->n_channels < q->cap_channels);
    q->channels[q->n_channels++] = v;
}

trastenda_err
proto_dec_channel_type(struct proto_op *op, uint32_t i, uint32_t k, const char *got)
{
    return op_fail(op, TRASTENDA_E_TYPE, "ops[%u].channels[%u]: expected a string (got %s)", i, k,
                   got);
}

/* The line key s as a PROTO_LN_ bit, or 0. */
static uint8_t
line_field_of(const char *s, uint32_t len)
{
    if (len == 3 && memcmp(s, "sku", 3) == 0) return LN_SKU;
    if (len == 3 && memcmp(s, "loc", 3) == 0) return LN_LOC;
    if (len == 3 && memcmp(s, "qty", 3) == 0) return LN_QTY;
    if (len == 10 && memcmp(s, "unsellable", 10) == 0) return LN_UNSELLABLE;
    return 0;
}

static const char *
line_field_name(uint8_t bit)
{
    return bit == LN_SKU ? "sku" : bit == LN_LOC ? "loc" : bit == LN_QTY ? "qty" : "unsellable";
}

/* The request's total is checked before growing (Design note (3)). */
trastenda_err
proto_dec_lines(struct proto_req *q, struct proto_op *op, uint32_t i, uint32_t n)
{
    if (n > PROTO_LINES_TOTAL_MAX - q->n_lines) {
        env_fail(q, TRASTENDA_E_TOO_MANY_LINES,
                 "ops[%u].lines: more than %d lines in the request (%u before this op, %u here)", i,
                 PROTO_LINES_TOTAL_MAX, q->n_lines, n);
        return TRASTENDA_E_TOO_MANY_LINES;
    }
    if (!RESERVE(q, lines, cap_lines, q->n_lines + n)) {
        env_fail(q, TRASTENDA_E_NOMEM, "out of memory for %u lines", q->n_lines + n);
        return TRASTENDA_E_NOMEM;
    }
    op->lines_at = q->n_lines;
    op->lines_n = n;
    return TRASTENDA_OK;
}

struct proto_line *
proto_dec_line_next(struct proto_req *q)
{
    PROTO_ASSERT(q->n_lines < q->cap_lines && q->n_lines < PROTO_LINES_TOTAL_MAX);
    struct proto_line *ln = &q->lines[q->n_lines++];
    memset(ln, 0, sizeof(*ln));
    return ln;
}

trastenda_err
proto_dec_line_map_type(struct proto_op *op, uint32_t i, uint32_t l, const char *got)
{
    op->err_line = l;
    return op_fail(op, TRASTENDA_E_TYPE, "ops[%u].lines[%u]: expected a map (got %s)", i, l, got);
}

trastenda_err
proto_dec_line_key(struct proto_op *op, uint32_t i, uint32_t l, struct proto_line *ln,
                   const char *s, uint32_t len, uint8_t *bit)
{
    char qb[48];
    *bit = line_field_of(s, len);
    op->err_line = l;
    if (*bit == 0)
        return op_fail(op, TRASTENDA_E_UNKNOWN_FIELD, "ops[%u].lines[%u]: unknown field '%s'", i, l,
                       quote(qb, sizeof(qb), s, len));
    if (ln->present & *bit)
        return op_fail(op, TRASTENDA_E_DUPLICATE_FIELD, "ops[%u].lines[%u].%s: given twice", i, l,
                       line_field_name(*bit));
    ln->present |= *bit;
    op->err_line = UINT32_MAX;
    return TRASTENDA_OK;
}

trastenda_err
proto_dec_line_type(struct proto_op *op, uint32_t i, uint32_t l, uint8_t bit, const char *got)
{
    const char *want = bit == LN_QTY          ? "an integer"
                       : bit == LN_UNSELLABLE ? "a boolean"
                                              : "a string";
    op->err_line = l;
    return op_fail(op, TRASTENDA_E_TYPE, "ops[%u].lines[%u].%s: expected %s (got %s)", i, l,
                   line_field_name(bit), want, got);
}

trastenda_err
proto_dec_line_qty(struct proto_op *op, uint32_t i, uint32_t l, struct proto_line *ln, bool neg,
                   int64_t s, uint64_t u)
{
    if (!neg && u > (uint64_t)INT64_MAX) {
        op->err_line = l;
        return op_fail(op, TRASTENDA_E_RANGE, "ops[%u].lines[%u].qty: must be %d..%d (got %llu)", i,
                       l, -TRASTENDA_QTY_MAX, TRASTENDA_QTY_MAX, (unsigned long long)u);
    }
    ln->qty = neg ? s : (int64_t)u;
    return TRASTENDA_OK;
}

bool
proto_dec_ops(struct proto_req *q, uint32_t n)
{
    /* Design note (3): the count is checked before anything is allocated for it. */
    if (n > PROTO_OPS_MAX)
        return env_fail(q, TRASTENDA_E_TOO_MANY_OPS, "ops: %u operations, at most %d", n,
                        PROTO_OPS_MAX);
    if (!RESERVE(q, ops, cap_ops, n))
        return env_fail(q, TRASTENDA_E_NOMEM, "out of memory for %u ops", n);
    return true;
}

struct proto_op *
proto_dec_op_begin(struct proto_req *q, uint32_t i)
{
    PROTO_ASSERT(i < q->cap_ops && i < PROTO_OPS_MAX);
    q->n_ops = i + 1;
    struct proto_op *op = &q->ops[i];
    op_reset(op);
    return op;
}

/* Design note (2): an op that failed to decode keeps its error and nothing else. */
void
proto_dec_op_drop(struct proto_req *q, struct proto_op *op, uint32_t lines0, uint32_t channels0)
{
    PROTO_ASSERT(op->err != TRASTENDA_OK);
    PROTO_ASSERT(lines0 <= q->n_lines && channels0 <= q->n_channels);
    q->n_lines = lines0;
    q->n_channels = channels0;
    op->lines_n = op->channels_n = 0;
    op->present = 0;
}

bool
proto_dec_env_key(struct proto_req *q, const char *s, uint32_t len, uint32_t *bit,
                  const char **name)
{
    static const char *const names[] = {"v", "id", "ops", "min_seq", "token"};
    char qb[48];
    *bit = 0;
    for (uint32_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
        if (strlen(names[k]) == len && memcmp(names[k], s, len) == 0) {
            *name = names[k];
            *bit = 1u << k;
        }
    if (*bit == 0)
        return env_fail(q, TRASTENDA_E_UNKNOWN_FIELD, "unknown request field '%s'",
                        quote(qb, sizeof(qb), s, len));
    if (q->present & *bit)
        return env_fail(q, TRASTENDA_E_DUPLICATE_FIELD, "%s: given twice", *name);
    q->present |= *bit;
    return true;
}

bool
proto_dec_env_type(struct proto_req *q, uint32_t bit, const char *got)
{
    if (bit == PROTO_ENV_OPS)
        return env_fail(q, TRASTENDA_E_TYPE, "ops: expected an array of op maps (got %s)", got);
    if (bit == PROTO_ENV_TOKEN)
        return env_fail(q, TRASTENDA_E_TYPE, "token: expected a string (got %s)", got);
    return env_fail(q, TRASTENDA_E_TYPE, "%s: expected an unsigned integer (got %s)",
                    bit == PROTO_ENV_V    ? "v"
                    : bit == PROTO_ENV_ID ? "id"
                                          : "min_seq",
                    got);
}

/* v, id or min_seq. v is checked at once: a later version may encode ops differently. */
bool
proto_dec_env_uint(struct proto_req *q, uint32_t bit, const char *name, bool neg, int64_t s,
                   uint64_t u)
{
    if (bit == ENV_V && (neg || u != PROTO_VERSION))
        return env_fail(q, TRASTENDA_E_VERSION, "v: version %s%llu is not supported (this is %d)",
                        neg ? "-" : "", neg ? 0ull - (unsigned long long)s : (unsigned long long)u,
                        PROTO_VERSION);
    if (neg)
        return env_fail(q, TRASTENDA_E_RANGE, "%s: must not be negative (got %lld)", name,
                        (long long)s);
    if (bit == ENV_V) q->version = (uint32_t)u;
    if (bit == ENV_ID) q->id = u;
    if (bit == ENV_MIN_SEQ) q->min_seq = u;
    return true;
}

void
proto_dec_env_token(struct proto_req *q, trastenda_str v)
{
    q->token = v;
}

/* ---- decode: msgpack ---- */

/* Any msgpack integer as a sign and a value: *neg with *s < 0, or *u. */
static bool
read_integer(struct mp_rd *r, bool *neg, int64_t *s, uint64_t *u)
{
    uint8_t b = *r->p; /* the caller peeked MP_INT */
    *neg = false;
    *s = 0;
    *u = 0;
    if (b >= 0xe0 || (b >= 0xd0 && b <= 0xd3)) {
        if (!mp_read_i64(r, s)) return false;
        *neg = *s < 0;
        *u = *neg ? 0 : (uint64_t)*s;
        return true;
    }
    return mp_read_u64(r, u);
}

static trastenda_err
decode_int(struct mp_rd *r, struct proto_op *op, uint32_t i, int f)
{
    enum mp_type t = mp_peek(r);
    if (t != MP_INT) return proto_dec_type(op, i, f, type_name(t));
    bool neg;
    int64_t s;
    uint64_t u;
    if (!read_integer(r, &neg, &s, &u))
        return op_fail(op, TRASTENDA_E_MALFORMED, "ops[%u].%s: malformed integer", i,
                       field_names[f]);
    return proto_dec_int(op, i, f, neg, s, u);
}

static trastenda_err
decode_str(struct mp_rd *r, struct proto_op *op, uint32_t i, int f)
{
    enum mp_type t = mp_peek(r);
    if (t != MP_STR) return proto_dec_type(op, i, f, type_name(t));
    trastenda_str v;
    if (!mp_read_str(r, &v.ptr, &v.len))
        return op_fail(op, TRASTENDA_E_MALFORMED, "ops[%u].%s: malformed string", i,
                       field_names[f]);
    proto_dec_str(op, f, v);
    return TRASTENDA_OK;
}

static trastenda_err
decode_bool(struct mp_rd *r, struct proto_op *op, uint32_t i, int f)
{
    enum mp_type t = mp_peek(r);
    bool v;
    if (t != MP_BOOL || !mp_read_bool(r, &v)) return proto_dec_type(op, i, f, type_name(t));
    proto_dec_bool(op, f, v);
    return TRASTENDA_OK;
}

static trastenda_err
decode_channels(struct proto_req *q, struct mp_rd *r, struct proto_op *op, uint32_t i)
{
    enum mp_type t = mp_peek(r);
    uint32_t n;
    bool keep;
    if (t != MP_ARRAY) return proto_dec_type(op, i, PFD_CHANNELS, type_name(t));
    if (!mp_read_array(r, &n))
        return op_fail(op, TRASTENDA_E_MALFORMED, "ops[%u].channels: malformed array", i);
    trastenda_err err = proto_dec_channels(q, op, n, &keep);
    if (err != TRASTENDA_OK) return err;
    for (uint32_t k = 0; k < n; k++) { /* bound: n checked against the bytes left */
        trastenda_str s;
        if ((t = mp_peek(r)) != MP_STR) return proto_dec_channel_type(op, i, k, type_name(t));
        if (!mp_read_str(r, &s.ptr, &s.len))
            return op_fail(op, TRASTENDA_E_MALFORMED, "ops[%u].channels[%u]: malformed", i, k);
        proto_dec_channel(q, keep, s);
    }
    PROTO_ASSERT(q->n_channels <= q->cap_channels || !keep);
    return TRASTENDA_OK;
}

/* One value of a line map, the key already read. */
static trastenda_err
decode_line_value(struct mp_rd *r, struct proto_op *op, uint32_t i, uint32_t l, uint8_t bit,
                  struct proto_line *ln)
{
    enum mp_type t = mp_peek(r);
    enum mp_type want = bit == LN_QTY ? MP_INT : bit == LN_UNSELLABLE ? MP_BOOL : MP_STR;
    if (t != want) return proto_dec_line_type(op, i, l, bit, type_name(t));
    bool ok, neg;
    int64_t s;
    uint64_t u;
    if (bit == LN_SKU)
        ok = mp_read_str(r, &ln->sku.ptr, &ln->sku.len);
    else if (bit == LN_LOC)
        ok = mp_read_str(r, &ln->loc.ptr, &ln->loc.len);
    else if (bit == LN_UNSELLABLE)
        ok = mp_read_bool(r, &ln->unsellable);
    else if ((ok = read_integer(r, &neg, &s, &u)))
        return proto_dec_line_qty(op, i, l, ln, neg, s, u);
    if (!ok)
        return op_fail(op, TRASTENDA_E_MALFORMED, "ops[%u].lines[%u].%s: malformed", i, l,
                       line_field_name(bit));
    return TRASTENDA_OK;
}

static trastenda_err
decode_line(struct mp_rd *r, struct proto_op *op, uint32_t i, uint32_t l, struct proto_line *ln)
{
    enum mp_type t = mp_peek(r);
    uint32_t n;
    if (t != MP_MAP) return proto_dec_line_map_type(op, i, l, type_name(t));
    if (!mp_read_map(r, &n))
        return op_fail(op, TRASTENDA_E_MALFORMED, "ops[%u].lines[%u]: malformed map", i, l);
    for (uint32_t k = 0; k < n; k++) { /* bound: n checked against the bytes left */
        const char *s;
        uint32_t len;
        uint8_t bit;
        if ((t = mp_peek(r)) != MP_STR)
            return op_fail(op, TRASTENDA_E_TYPE,
                           "ops[%u].lines[%u]: keys must be strings "
                           "(got %s)",
                           i, l, type_name(t));
        if (!mp_read_str(r, &s, &len))
            return op_fail(op, TRASTENDA_E_MALFORMED, "ops[%u].lines[%u]: malformed key", i, l);
        trastenda_err err = proto_dec_line_key(op, i, l, ln, s, len, &bit);
        if (err == TRASTENDA_OK) err = decode_line_value(r, op, i, l, bit, ln);
        if (err != TRASTENDA_OK) return err;
    }
    return TRASTENDA_OK;
}

static trastenda_err
decode_lines(struct proto_req *q, struct mp_rd *r, struct proto_op *op, uint32_t i)
{
    enum mp_type t = mp_peek(r);
    uint32_t n;
    if (t != MP_ARRAY) return proto_dec_type(op, i, PFD_LINES, type_name(t));
    if (!mp_read_array(r, &n))
        return op_fail(op, TRASTENDA_E_MALFORMED, "ops[%u].lines: malformed array", i);
    trastenda_err err = proto_dec_lines(q, op, i, n);
    if (err != TRASTENDA_OK) return err;
    for (uint32_t l = 0; l < n; l++) { /* bound: n <= PROTO_LINES_TOTAL_MAX */
        err = decode_line(r, op, i, l, proto_dec_line_next(q));
        if (err != TRASTENDA_OK) {
            op->err_line = l;
            return err;
        }
    }
    PROTO_ASSERT(q->n_lines <= PROTO_LINES_TOTAL_MAX && q->n_lines <= q->cap_lines);
    return TRASTENDA_OK;
}

static trastenda_err
decode_value(struct proto_req *q, struct mp_rd *r, struct proto_op *op, uint32_t i, int f)
{
    switch (fields[f].kind) {
    case FK_INT:
    case FK_UINT:
        return decode_int(r, op, i, f);
    case FK_BOOL:
        return decode_bool(r, op, i, f);
    case FK_LINES:
        return decode_lines(q, r, op, i);
    case FK_CHANNELS:
        return decode_channels(q, r, op, i);
    default:
        return decode_str(r, op, i, f);
    }
}

/* ---- decode: ops and envelope ---- */

/* The fields of op i; the first error returns (set in op, or in q for an envelope error). */
static trastenda_err
decode_op_map(struct proto_req *q, struct mp_rd *r, struct proto_op *op, uint32_t i)
{
    enum mp_type t = mp_peek(r);
    uint32_t n;
    if (t != MP_MAP) return proto_dec_op_type(op, i, type_name(t));
    if (!mp_read_map(r, &n)) return op_fail(op, TRASTENDA_E_MALFORMED, "ops[%u]: malformed map", i);
    for (uint32_t k = 0; k < n; k++) { /* bound: n checked against the bytes left */
        const char *s;
        uint32_t len;
        int f;
        if ((t = mp_peek(r)) != MP_STR)
            return op_fail(op, TRASTENDA_E_TYPE, "ops[%u]: keys must be strings (got %s)", i,
                           type_name(t));
        if (!mp_read_str(r, &s, &len))
            return op_fail(op, TRASTENDA_E_MALFORMED, "ops[%u]: malformed key", i);
        trastenda_err err = proto_dec_key(op, i, s, len, &f);
        if (err == TRASTENDA_OK) err = decode_value(q, r, op, i, f);
        if (err != TRASTENDA_OK) return err;
    }
    return TRASTENDA_OK;
}

/* Op i; false on an envelope error. Design note (2): an op error skips the op. */
static bool
decode_op(struct proto_req *q, struct mp_rd *r, uint32_t i)
{
    struct proto_op *op = proto_dec_op_begin(q, i);
    const uint8_t *start = r->p;
    uint32_t lines0 = q->n_lines, channels0 = q->n_channels;
    trastenda_err err = decode_op_map(q, r, op, i);
    if (err == TRASTENDA_OK) return true;
    if (q->err != TRASTENDA_OK) return false;
    PROTO_ASSERT(op->err == err);
    r->p = start;
    r->bad = false;
    if (!mp_skip(r, SKIP_DEPTH_OP))
        return env_fail(q, TRASTENDA_E_MALFORMED,
                        "ops[%u]: malformed msgpack, or nested deeper than %d levels", i,
                        MP_DEPTH_MAX);
    PROTO_ASSERT(r->p > start && !r->bad);
    proto_dec_op_drop(q, op, lines0, channels0);
    return true;
}

static bool
decode_ops(struct proto_req *q, struct mp_rd *r)
{
    enum mp_type t = mp_peek(r);
    uint32_t n;
    if (t == MP_NONE)
        return env_fail(q, TRASTENDA_E_MALFORMED, "ops: expected an array of op maps (got %s)",
                        type_name(t));
    if (t != MP_ARRAY) return proto_dec_env_type(q, PROTO_ENV_OPS, type_name(t));
    if (!mp_read_array(r, &n))
        return env_fail(q, TRASTENDA_E_MALFORMED,
                        "ops: malformed array (a count beyond the message?)");
    if (!proto_dec_ops(q, n)) return false;
    for (uint32_t i = 0; i < n; i++) /* bound: n <= PROTO_OPS_MAX */
        if (!decode_op(q, r, i)) return false;
    return true;
}

static bool
decode_env_value(struct proto_req *q, struct mp_rd *r, uint32_t bit, const char *name)
{
    enum mp_type t = mp_peek(r);
    if (bit == ENV_OPS) return decode_ops(q, r);
    if (t == MP_NONE)
        return env_fail(q, TRASTENDA_E_MALFORMED, "%s: expected %s (got %s)", name,
                        bit == PROTO_ENV_TOKEN ? "a string" : "an unsigned integer", type_name(t));
    if (bit == PROTO_ENV_TOKEN) {
        trastenda_str v;
        if (t != MP_STR) return proto_dec_env_type(q, bit, type_name(t));
        if (!mp_read_str(r, &v.ptr, &v.len))
            return env_fail(q, TRASTENDA_E_MALFORMED, "token: malformed string");
        proto_dec_env_token(q, v);
        return true;
    }
    bool neg;
    int64_t s;
    uint64_t u;
    if (t != MP_INT) return proto_dec_env_type(q, bit, type_name(t));
    if (!read_integer(r, &neg, &s, &u))
        return env_fail(q, TRASTENDA_E_MALFORMED, "%s: malformed integer", name);
    return proto_dec_env_uint(q, bit, name, neg, s, u);
}

static bool
decode_env_field(struct proto_req *q, struct mp_rd *r)
{
    enum mp_type t = mp_peek(r);
    const char *s, *name = NULL;
    uint32_t len, bit;
    if (t != MP_STR)
        return env_fail(q, t == MP_NONE ? TRASTENDA_E_MALFORMED : TRASTENDA_E_TYPE,
                        "request keys must be strings (got %s)", type_name(t));
    if (!mp_read_str(r, &s, &len))
        return env_fail(q, TRASTENDA_E_MALFORMED, "malformed request key");
    if (!proto_dec_env_key(q, s, len, &bit, &name)) return false;
    return decode_env_value(q, r, bit, name);
}

/* The envelope rules, for any decoder. */
static bool
envelope_check(struct proto_req *q)
{
    if (q->err != TRASTENDA_OK) return false;
    if (!(q->present & ENV_V)) return env_fail(q, TRASTENDA_E_MISSING_FIELD, "v: required");
    if (!(q->present & ENV_ID)) return env_fail(q, TRASTENDA_E_MISSING_FIELD, "id: required");
    if (!(q->present & ENV_OPS)) return env_fail(q, TRASTENDA_E_MISSING_FIELD, "ops: required");
    if (q->version != PROTO_VERSION)
        return env_fail(q, TRASTENDA_E_VERSION, "v: version %u is not supported (this is %d)",
                        q->version, PROTO_VERSION);
    if (q->n_ops == 0)
        return env_fail(q, TRASTENDA_E_RANGE, "ops: must hold 1..%d operations (got 0)",
                        PROTO_OPS_MAX);
    if (q->n_ops > PROTO_OPS_MAX)
        return env_fail(q, TRASTENDA_E_TOO_MANY_OPS, "ops: %u operations, at most %d", q->n_ops,
                        PROTO_OPS_MAX);
    if (q->n_lines > PROTO_LINES_TOTAL_MAX)
        return env_fail(q, TRASTENDA_E_TOO_MANY_LINES, "%u lines in the request, at most %d",
                        q->n_lines, PROTO_LINES_TOTAL_MAX);
    return true;
}

bool
proto_decode_msgpack(struct proto_req *q, const void *buf, size_t len)
{
    PROTO_ASSERT(q != NULL);
    PROTO_ASSERT(buf != NULL || len == 0);
    req_reset(q);
    if (len == 0) return env_fail(q, TRASTENDA_E_MALFORMED, "empty request");
    if (len > PROTO_MSG_MAX)
        return env_fail(q, TRASTENDA_E_TOO_BIG, "request of %zu bytes, at most %d", len,
                        PROTO_MSG_MAX);
    struct mp_rd r;
    mp_rd_init(&r, buf, len);
    enum mp_type t = mp_peek(&r);
    uint32_t n;
    if (t != MP_MAP)
        return env_fail(q, TRASTENDA_E_MALFORMED, "the request must be a msgpack map (got %s)",
                        t == MP_NONE ? "no msgpack value" : type_name(t));
    if (!mp_read_map(&r, &n)) return env_fail(q, TRASTENDA_E_MALFORMED, "malformed request map");
    for (uint32_t k = 0; k < n; k++)
        if (!decode_env_field(q, &r)) return false;
    if (mp_left(&r) != 0)
        return env_fail(q, TRASTENDA_E_MALFORMED, "%zu bytes after the request map", mp_left(&r));
    PROTO_ASSERT(q->n_ops <= PROTO_OPS_MAX);
    PROTO_ASSERT(q->n_lines <= PROTO_LINES_TOTAL_MAX);
    return envelope_check(q);
}

/* ---- validate ---- */

/* Offset of the first byte that is not UTF-8 (overlong, surrogate, beyond U+10FFFF, truncated)
 * or is a control character (C0, DEL, C1), or len when there is none. */
static uint32_t
text_bad_at(const uint8_t *p, uint32_t len)
{
    for (uint32_t k = 0; k < len;) {
        uint8_t c = p[k];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) return k;
            k++;
            continue;
        }
        uint32_t n = c >= 0xc2 && c <= 0xdf   ? 2
                     : c >= 0xe0 && c <= 0xef ? 3
                     : c >= 0xf0 && c <= 0xf4 ? 4
                                              : 0;
        if (n == 0 || n > len - k) return k;
        uint32_t cp = c & (n == 2 ? 0x1fu : n == 3 ? 0x0fu : 0x07u);
        for (uint32_t j = 1; j < n; j++) {
            if ((p[k + j] & 0xc0) != 0x80) return k;
            cp = cp << 6 | (p[k + j] & 0x3fu);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return k;
        if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return k;
        if (cp >= 0x80 && cp <= 0x9f) return k;
        k += n;
    }
    return len;
}

/* Where a value sits: ops[i], .lines[line], .field, [elem] (UINT32_MAX / NULL: none). Formatted
 * only for a message, so that valid ops cost no formatting. */
struct where {
    uint32_t i, line;
    const char *field;
    uint32_t elem;
};

/* A validation error at w: "ops[2].lines[0].sku: <fmt>". Returns false. */
static bool
fail_at(struct proto_op *op, trastenda_err code, const struct where *w, const char *fmt, ...)
{
    char head[80], tail[TRASTENDA_MESSAGE_BYTES];
    int n = snprintf(head, sizeof(head), "ops[%u]", w->i);
    if (w->line != UINT32_MAX)
        n += snprintf(head + n, sizeof(head) - (size_t)n, ".lines[%u]", w->line);
    if (w->field != NULL) n += snprintf(head + n, sizeof(head) - (size_t)n, ".%s", w->field);
    if (w->elem != UINT32_MAX) n += snprintf(head + n, sizeof(head) - (size_t)n, "[%u]", w->elem);
    PROTO_ASSERT(n > 0 && (size_t)n < sizeof(head));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tail, sizeof(tail), fmt, ap);
    va_end(ap);
    op_fail(op, code, "%s: %s", head, tail);
    return false;
}

/* A string of min..max bytes, UTF-8 without control characters. */
static bool
text_check(struct proto_op *op, trastenda_str s, uint32_t min, uint32_t max, const struct where *w)
{
    if (s.len < min || s.len > max)
        return fail_at(op, TRASTENDA_E_STRING, w, "must be %u..%u bytes (got %u)", min, max, s.len);
    uint32_t bad = text_bad_at((const uint8_t *)s.ptr, s.len);
    if (bad < s.len)
        return fail_at(op, TRASTENDA_E_STRING, w,
                       "must be UTF-8 without control characters (bad byte 0x%02x at %u)",
                       (uint8_t)s.ptr[bad], bad);
    return true;
}

static bool
int_check(struct proto_op *op, int64_t v, int64_t lo, int64_t hi, const struct where *w)
{
    if (v >= lo && v <= hi) return true;
    return fail_at(op, TRASTENDA_E_RANGE, w, "must be %lld..%lld (got %lld)", (long long)lo,
                   (long long)hi, (long long)v);
}

/* Which fields line l may and must have (spec), then their values. */
static bool
line_check(struct proto_op *op, const struct proto_line *ln, const struct op_spec *sp, uint32_t i,
           uint32_t l)
{
    PROTO_ASSERT(sp->line_loc != LL_NONE);
    PROTO_ASSERT(op->err == TRASTENDA_OK);
    struct where w = {i, l, NULL, UINT32_MAX};
    struct where sku = {i, l, "sku", UINT32_MAX}, loc = {i, l, "loc", UINT32_MAX};
    struct where qty = {i, l, "qty", UINT32_MAX};
    op->err_line = l;
    if (!(ln->present & LN_SKU)) return fail_at(op, TRASTENDA_E_MISSING_FIELD, &sku, "required");
    if (!(ln->present & LN_QTY)) return fail_at(op, TRASTENDA_E_MISSING_FIELD, &qty, "required");
    if (sp->line_loc == LL_REQUIRED && !(ln->present & LN_LOC))
        return fail_at(op, TRASTENDA_E_MISSING_FIELD, &loc, "required by %s", sp->name);
    if (sp->line_loc == LL_REFUSED && (ln->present & LN_LOC))
        return fail_at(op, TRASTENDA_E_UNKNOWN_FIELD, &w,
                       "%s does not take loc on lines (they are routed)", sp->name);
    if (!sp->unsellable && (ln->present & LN_UNSELLABLE))
        return fail_at(op, TRASTENDA_E_UNKNOWN_FIELD, &w,
                       "%s does not take unsellable (returns only)", sp->name);
    if (!text_check(op, ln->sku, 1, TRASTENDA_ID_BYTES_MAX, &sku)) return false;
    if ((ln->present & LN_LOC) && !text_check(op, ln->loc, 1, TRASTENDA_ID_BYTES_MAX, &loc))
        return false;
    if (!int_check(op, ln->qty, -TRASTENDA_QTY_MAX, TRASTENDA_QTY_MAX, &qty)) return false;
    op->err_line = UINT32_MAX;
    return true;
}

static bool
lines_check(const struct proto_req *q, struct proto_op *op, const struct op_spec *sp, uint32_t i)
{
    struct where w = {i, UINT32_MAX, "lines", UINT32_MAX};
    if (op->lines_n == 0 || op->lines_n > TRASTENDA_LINES_MAX)
        return fail_at(op, op->lines_n == 0 ? TRASTENDA_E_RANGE : TRASTENDA_E_TOO_MANY_LINES, &w,
                       "must hold 1..%d lines (got %u)", TRASTENDA_LINES_MAX, op->lines_n);
    PROTO_ASSERT(op->lines_at + op->lines_n <= q->n_lines);
    for (uint32_t l = 0; l < op->lines_n; l++) /* bound: TRASTENDA_LINES_MAX */
        if (!line_check(op, &q->lines[op->lines_at + l], sp, i, l)) return false;
    return true;
}

static bool
channels_check(const struct proto_req *q, struct proto_op *op, uint32_t i)
{
    struct where w = {i, UINT32_MAX, "channels", UINT32_MAX};
    if (op->channels_n > PROTO_CHANNELS_MAX)
        return fail_at(op, TRASTENDA_E_RANGE, &w, "at most %d (got %u)", PROTO_CHANNELS_MAX,
                       op->channels_n);
    PROTO_ASSERT(op->channels_at + op->channels_n <= q->n_channels);
    for (w.elem = 0; w.elem < op->channels_n; w.elem++) /* bound: PROTO_CHANNELS_MAX */
        if (!text_check(op, q->channels[op->channels_at + w.elem], 1, TRASTENDA_ID_BYTES_MAX, &w))
            return false;
    return true;
}

/* The value of field f against its rules. */
static bool
field_check(const struct proto_req *q, struct proto_op *op, const struct op_spec *sp, uint32_t i,
            int f)
{
    PROTO_ASSERT(f > PFD_OP && f < PFD_COUNT_);
    PROTO_ASSERT(op->present & BIT(f));
    const struct field_info *fi = &fields[f];
    const char *at = (const char *)op + fi->off;
    struct where w = {i, UINT32_MAX, field_names[f], UINT32_MAX};
    char qb[48];
    trastenda_str s;
    int64_t v;
    uint64_t u;
    switch (fi->kind) {
    case FK_ID:
    case FK_NAME:
    case FK_DIR:
        memcpy(&s, at, sizeof(s));
        return text_check(op, s, fi->kind == FK_NAME ? 0 : 1,
                          fi->kind == FK_ID     ? TRASTENDA_ID_BYTES_MAX
                          : fi->kind == FK_NAME ? TRASTENDA_NAME_BYTES_MAX
                                                : PROTO_DIR_BYTES_MAX,
                          &w);
    case FK_REASON:
        if (reason_of(op->reason) != TRASTENDA_REASON_NONE) return true;
        return fail_at(op, TRASTENDA_E_RANGE, &w,
                       "must be count, damage, theft, found, correction or quality (got '%s')",
                       quote(qb, sizeof(qb), op->reason.ptr, op->reason.len));
    case FK_INT:
        memcpy(&v, at, sizeof(v));
        return int_check(op, v, fi->lo, fi->hi, &w);
    case FK_UINT:
        memcpy(&u, at, sizeof(u));
        if (u >= fi->ulo && u <= fi->uhi) return true;
        return fail_at(op, TRASTENDA_E_RANGE, &w, "must be %llu..%llu (got %llu)",
                       (unsigned long long)fi->ulo, (unsigned long long)fi->uhi,
                       (unsigned long long)u);
    case FK_LINES:
        return lines_check(q, op, sp, i);
    case FK_CHANNELS:
        return channels_check(q, op, i);
    default: /* FK_OP, checked first; FK_BOOL has no rule */
        return true;
    }
}

static void
validate_op(const struct proto_req *q, struct proto_op *op, uint32_t i)
{
    char qb[48];
    PROTO_ASSERT(i < q->n_ops);
    if (op->err != TRASTENDA_OK) return; /* a decode error */
    if (!(op->present & BIT(PFD_OP))) {
        op_fail(op, TRASTENDA_E_MISSING_FIELD, "ops[%u].op: required", i);
        return;
    }
    op->kind = proto_kind_of(op->op_name);
    const struct op_spec *sp = spec_of(op->kind);
    if (sp == NULL) {
        op_fail(op, TRASTENDA_E_UNKNOWN_OP, "ops[%u].op: unknown operation '%s'", i,
                quote(qb, sizeof(qb), op->op_name.ptr, op->op_name.len));
        return;
    }
    uint64_t allowed = sp->required | sp->optional | BIT(PFD_OP);
    if (proto_kind_is_write(op->kind)) allowed |= F(KEY) | F(ACTOR) | F(REF);
    uint64_t missing = sp->required & ~op->present;
    uint64_t extra = op->present & ~allowed;
    if (missing != 0) {
        op_fail(op, TRASTENDA_E_MISSING_FIELD, "ops[%u].%s: required by %s", i,
                field_names[__builtin_ctzll(missing)], sp->name);
        return;
    }
    if (extra != 0) {
        op_fail(op, TRASTENDA_E_UNKNOWN_FIELD, "ops[%u]: %s does not take %s", i, sp->name,
                field_names[__builtin_ctzll(extra)]);
        return;
    }
    for (uint64_t m = op->present & ~BIT(PFD_OP); m != 0; m &= m - 1) /* bound: PFD_COUNT_ */
        if (!field_check(q, op, sp, i, __builtin_ctzll(m))) return;
    /* A position is both coordinates or neither. */
    bool lat = op->present & F(LAT_E6), lon = op->present & F(LON_E6);
    if (lat != lon)
        op_fail(op, TRASTENDA_E_MISSING_FIELD, "ops[%u].%s: required with %s", i,
                lat ? "lon_e6" : "lat_e6", lat ? "lat_e6" : "lon_e6");
    /* stock with loc reads one record: nothing to page. */
    if (op->kind == PK_STOCK && (op->present & F(LOC)) && (op->present & (F(CURSOR) | F(LIMIT))))
        op_fail(op, TRASTENDA_E_INVALID,
                "ops[%u].%s: stock with loc reads one record (cursor and "
                "limit page a SKU's records across locations)",
                i, (op->present & F(CURSOR)) ? "cursor" : "limit");
}

bool
proto_validate(struct proto_req *q)
{
    PROTO_ASSERT(q != NULL);
    PROTO_ASSERT(q->n_ops <= q->cap_ops);
    if (!envelope_check(q)) return false;
    for (uint32_t i = 0; i < q->n_ops; i++)
        validate_op(q, &q->ops[i], i);
    return true;
}

/* ---- convert ---- */

static trastenda_ref
ref_of(const trastenda_engine *e, trastenda_str id, bool sku)
{
    trastenda_ref ref = {id, TRASTENDA_IX_NONE};
    uint32_t ix;
    if (e == NULL || id.len == 0) return ref;
    trastenda_err err = sku ? trastenda_engine_sku_lookup(e, id, &ix)
                            : trastenda_engine_location_lookup(e, id, &ix);
    if (err == TRASTENDA_OK) ref.ix = ix;
    return ref;
}

static void
lines_to_cmd(const struct proto_req *q, const struct proto_op *op, const trastenda_engine *e,
             trastenda_cmd *cmd, trastenda_line *lines)
{
    PROTO_ASSERT(op->lines_n <= TRASTENDA_LINES_MAX);
    PROTO_ASSERT(op->lines_n == 0 || lines != NULL);
    for (uint32_t l = 0; l < op->lines_n; l++) {
        const struct proto_line *ln = &q->lines[op->lines_at + l];
        trastenda_str none = {NULL, 0};
        lines[l].sku = ref_of(e, ln->sku, true);
        lines[l].loc = ref_of(e, (ln->present & LN_LOC) ? ln->loc : none, false);
        lines[l].qty = ln->qty;
        lines[l].flags = ln->unsellable ? TRASTENDA_LINE_UNSELLABLE : 0;
    }
    cmd->lines = op->lines_n > 0 ? lines : NULL;
    cmd->line_count = op->lines_n;
}

static void
channels_to_cmd(const struct proto_req *q, const struct proto_op *op, trastenda_cmd *cmd,
                trastenda_str *chans)
{
    PROTO_ASSERT(op->channels_n <= PROTO_CHANNELS_MAX);
    PROTO_ASSERT(op->channels_n == 0 || chans != NULL);
    for (uint32_t k = 0; k < op->channels_n; k++)
        chans[k] = q->channels[op->channels_at + k];
    cmd->channels = op->channels_n > 0 ? chans : NULL;
    cmd->channel_count = op->channels_n;
}

/* Field f of op when present, else absent / dflt (a second decoder need not zero absent ones). */
static trastenda_str
str_of(const struct proto_op *op, int f)
{
    trastenda_str s = {NULL, 0};
    PROTO_ASSERT(fields[f].kind <= FK_DIR);
    if (op->present & BIT(f)) memcpy(&s, (const char *)op + fields[f].off, sizeof(s));
    return s;
}

static int64_t
int_of(const struct proto_op *op, int f)
{
    int64_t v = 0;
    PROTO_ASSERT(fields[f].kind == FK_INT);
    if (op->present & BIT(f)) memcpy(&v, (const char *)op + fields[f].off, sizeof(v));
    return v;
}

void
proto_to_cmd(const struct proto_req *q, const struct proto_op *op, const trastenda_engine *e,
             trastenda_cmd *cmd, trastenda_line *lines, trastenda_str *chans)
{
    PROTO_ASSERT(q != NULL && op != NULL && cmd != NULL);
    PROTO_ASSERT(op->err == TRASTENDA_OK);
    PROTO_ASSERT(proto_kind_is_write(op->kind));
    memset(cmd, 0, sizeof(*cmd));
    cmd->op = op->kind;
    cmd->key = str_of(op, PFD_KEY);
    cmd->actor = str_of(op, PFD_ACTOR);
    cmd->reference = str_of(op, PFD_REF);
    cmd->sku = ref_of(e, str_of(op, PFD_SKU), true);
    cmd->loc = ref_of(e, str_of(op, PFD_LOC), false);
    cmd->loc_to = ref_of(e, str_of(op, PFD_TO), false);
    cmd->order_id = str_of(op, PFD_ORDER);
    cmd->po_id = str_of(op, PFD_PO);
    cmd->name = str_of(op, PFD_NAME);
    cmd->channel = str_of(op, PFD_CHANNEL);
    cmd->hold_id = (op->present & F(HOLD)) ? op->hold : 0;
    cmd->qty = int_of(op, PFD_QTY);
    cmd->expected = int_of(op, PFD_EXPECTED);
    cmd->has_expected = (op->present & F(EXPECTED)) != 0;
    cmd->ttl_ms = int_of(op, PFD_TTL_MS);
    cmd->reorder_point = int_of(op, PFD_REORDER_POINT);
    cmd->reorder_qty = int_of(op, PFD_REORDER_QTY);
    cmd->safety_stock = int_of(op, PFD_SAFETY_STOCK);
    /* Validated ranges fit int32. */
    cmd->lead_days = (int32_t)int_of(op, PFD_LEAD_DAYS);
    cmd->priority = (int32_t)int_of(op, PFD_PRIORITY);
    cmd->lat_e6 = (int32_t)int_of(op, PFD_LAT_E6);
    cmd->lon_e6 = (int32_t)int_of(op, PFD_LON_E6);
    /* For location.upsert the coordinates are the location's own, not a ship-to. */
    cmd->has_ship_to = (op->present & SHIP) == SHIP && op->kind != TRASTENDA_OP_LOCATION_UPSERT;
    cmd->partial = (op->present & F(PARTIAL)) && op->partial;
    bool upsert = op->kind == TRASTENDA_OP_LOCATION_UPSERT || op->kind == TRASTENDA_OP_SKU_UPSERT;
    cmd->active = (op->present & F(ACTIVE)) ? op->active : upsert;
    cmd->reason = (op->present & F(REASON)) ? reason_of(op->reason) : TRASTENDA_REASON_NONE;
    lines_to_cmd(q, op, e, cmd, lines);
    channels_to_cmd(q, op, cmd, chans);
}
