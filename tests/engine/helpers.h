/*
 * tests/engine/helpers.h - shared helpers of the engine's Criterion tests (header-only).
 *
 * Every test binary includes this once. It keeps one engine per test (Criterion runs each test in
 * its own process, so the static state below is per test):
 *   - fixture: h_setup()/h_teardown() (.init/.fini) create an engine with small tables, and a
 *     follower engine that replays every batch's log entry; teardown runs the full invariant
 *     check on both and compares their digests.
 *   - builders: h_s(), h_ref(), h_line() and h_cmd_*() build commands from C strings (the strings
 *     must outlive the apply call; literals do).
 *   - apply: h_apply()/h_apply_at() apply one command as one batch and return its result;
 *     H_OK()/H_FAIL() also assert its code. The batch's log entry is copied (h_entry()), so the
 *     ledger entries and events of the last batch can be decoded with h_ledger()/h_events().
 *   - setup shortcuts: h_add_location(), h_add_sku(), h_receive(), h_stock(), h_sku_ix()...
 *
 * Every function is static inline so a test binary using only some of them compiles warning-free.
 */
#ifndef TRASTENDA_TESTS_ENGINE_HELPERS_H
#define TRASTENDA_TESTS_ENGINE_HELPERS_H

#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trastenda.h"
#include "trastenda/engine.h"
#include "trastenda/log.h"

/* A fixed start time (2023-11-14T22:13:20Z): day numbers are stable across runs. */
#define H_T0     INT64_C(1700000000000)
#define H_DAY_MS INT64_C(86400000)
/* Ledger entries / events decoded from one batch at most. */
#define H_DECODE_MAX 512

struct h_state {
    trastenda_engine *e;        /* engine under test */
    trastenda_engine *follower; /* replays every entry (NULL when disabled) */
    trastenda_engine *mat;      /* the same, without the check pass, as a materializer (idem) */
    int64_t now;                /* time of the last batch applied through the helpers */
    trastenda_batch_out out;    /* what the last batch produced (out.entry is stale: use entry) */
    uint8_t *entry;             /* copy of the last batch's log entry (owned here) */
    size_t entry_len;
    size_t entry_cap;
};

static struct h_state H __attribute__((unused));

/* ---- strings and refs ---- */

/* A slice of a C string; NULL gives the absent string. */
static inline trastenda_str
h_s(const char *s)
{
    return (trastenda_str){s, s == NULL ? 0u : (uint32_t)strlen(s)};
}

static inline trastenda_ref
h_ref(const char *id)
{
    return (trastenda_ref){h_s(id), TRASTENDA_IX_NONE};
}

/* A ref by index hint only (the id left empty). */
static inline trastenda_ref
h_ref_ix(uint32_t ix)
{
    return (trastenda_ref){{NULL, 0}, ix};
}

static inline int
h_str_eq(trastenda_str a, const char *b)
{
    size_t n = strlen(b);
    return a.len == n && (n == 0 || memcmp(a.ptr, b, n) == 0);
}

/* A line: sku at loc (loc may be NULL: routed), qty units. */
static inline trastenda_line
h_line(const char *sku, const char *loc, int64_t qty)
{
    trastenda_line l;
    memset(&l, 0, sizeof(l));
    l.sku = h_ref(sku);
    l.loc = h_ref(loc);
    l.qty = qty;
    return l;
}

/* ---- engine life ---- */

/* Small tables, long retention windows (tests that need short ones set them). */
static inline void
h_config_small(trastenda_engine_config *cfg)
{
    trastenda_engine_config_default(cfg);
    cfg->locations_max = 8;
    cfg->skus_max = 16;
    cfg->stock_max = 64;
    cfg->holds_max = 32;
    cfg->orders_max = 32;
    cfg->pos_max = 8;
    cfg->keys_max = 16;
    cfg->lines_max = 512;
    cfg->batch_cmds_max = 64;
    cfg->expire_per_batch_max = 16;
    cfg->purge_per_batch_max = 16;
    cfg->hold_retention_ms = 60000;
    cfg->order_retention_ms = 600000;
    cfg->key_retention_ms = 120000;
    cfg->review_days = 7;
    cfg->epoch = 1;
}

/* Creates H.e (and a follower unless follow is 0) from cfg, replacing any engine of an earlier
 * setup; time starts at H_T0. */
static inline void
h_setup_with(const trastenda_engine_config *cfg, int follow)
{
    /* Criterion runs a suite's .init and then a test's own: the later one replaces the engine. */
    trastenda_engine_destroy(H.e);
    trastenda_engine_destroy(H.follower);
    trastenda_engine_destroy(H.mat);
    free(H.entry);
    memset(&H, 0, sizeof(H));
    trastenda_err err = trastenda_engine_create(cfg, &H.e);
    cr_assert_eq(err, TRASTENDA_OK, "engine_create: %s", trastenda_err_name(err));
    if (follow) {
        err = trastenda_engine_create(cfg, &H.follower);
        cr_assert_eq(err, TRASTENDA_OK, "follower create: %s", trastenda_err_name(err));
        err = trastenda_engine_create(cfg, &H.mat);
        cr_assert_eq(err, TRASTENDA_OK, "materializer create: %s", trastenda_err_name(err));
    }
    H.now = H_T0;
}

/* .init of most tests: small tables, with a follower. */
static inline void
h_setup(void)
{
    trastenda_engine_config cfg;
    h_config_small(&cfg);
    h_setup_with(&cfg, 1);
}

/* .fini: invariant check; the follower and the materializer must have reached the same state.
 * Criterion reports assertions in .fini only as warnings, so a divergence here aborts: the binary
 * then exits 1. */
static inline void
h_teardown(void)
{
    if (H.e != NULL) {
        trastenda_engine_check(H.e);
        if (H.follower != NULL) {
            trastenda_engine_check(H.follower);
            if (trastenda_engine_seq(H.follower) != trastenda_engine_seq(H.e) ||
                trastenda_engine_digest(H.follower) != trastenda_engine_digest(H.e)) {
                fprintf(stderr, "helpers: the follower's state differs from the leader's\n");
                abort();
            }
        }
        if (H.mat != NULL) {
            trastenda_engine_check(H.mat);
            if (trastenda_engine_seq(H.mat) != trastenda_engine_seq(H.e) ||
                trastenda_engine_digest(H.mat) != trastenda_engine_digest(H.e)) {
                fprintf(stderr, "helpers: the materializer's state differs from the leader's\n");
                abort();
            }
        }
    }
    trastenda_engine_destroy(H.e);
    trastenda_engine_destroy(H.follower);
    trastenda_engine_destroy(H.mat);
    free(H.entry);
    memset(&H, 0, sizeof(H));
}

/* ---- applying commands ---- */

/* Applies n commands at now as one batch (results: n entries). Keeps a copy of the entry and
 * feeds it to the follower (checked) and the materializer (apply_entry_checked), whose digests
 * must then equal the leader's. The batch itself must be accepted. */
static inline void
h_apply_batch_at(int64_t now, const trastenda_cmd *cmds, uint32_t n, trastenda_result *results)
{
    trastenda_err err = trastenda_engine_apply(H.e, now, cmds, n, results, &H.out);
    cr_assert_eq(err, TRASTENDA_OK, "apply: %s", trastenda_err_name(err));
    H.now = now;
    if (H.out.entry_len > H.entry_cap) {
        free(H.entry);
        H.entry_cap = H.out.entry_len * 2;
        H.entry = malloc(H.entry_cap);
        cr_assert_not_null(H.entry);
    }
    if (H.out.entry_len > 0) memcpy(H.entry, H.out.entry, H.out.entry_len);
    H.entry_len = H.out.entry_len;
    if (H.follower != NULL) {
        err = trastenda_engine_apply_entry(H.follower, H.entry, H.entry_len);
        cr_assert_eq(err, TRASTENDA_OK, "follower apply_entry: %s", trastenda_err_name(err));
        cr_assert_eq(trastenda_engine_digest(H.follower), trastenda_engine_digest(H.e),
                     "batch %llu: the follower's digest differs from the leader's",
                     (unsigned long long)H.out.seq);
    }
    if (H.mat != NULL) {
        err = trastenda_engine_apply_entry_checked(H.mat, H.entry, H.entry_len);
        cr_assert_eq(err, TRASTENDA_OK, "materializer apply_entry_checked: %s",
                     trastenda_err_name(err));
        cr_assert_eq(trastenda_engine_digest(H.mat), trastenda_engine_digest(H.e),
                     "batch %llu: the materializer's digest differs from the leader's",
                     (unsigned long long)H.out.seq);
    }
}

/* Applies one command as one batch at now; returns its result (allocs borrowed until the next
 * apply). */
static inline trastenda_result
h_apply_at(int64_t now, const trastenda_cmd *c)
{
    trastenda_result r;
    memset(&r, 0, sizeof(r));
    h_apply_batch_at(now, c, 1, &r);
    return r;
}

/* Same, at the time of the previous batch. */
static inline trastenda_result
h_apply(const trastenda_cmd *c)
{
    return h_apply_at(H.now, c);
}

/* Advances time by ms with an empty NOOP batch (runs expiry and retention). */
static inline void
h_advance(int64_t ms)
{
    trastenda_cmd c;
    memset(&c, 0, sizeof(c));
    c.op = TRASTENDA_OP_NOOP;
    (void)h_apply_at(H.now + ms, &c);
}

/* After a promotion: the follower takes a NOOP batch at `at` on its own (its entry goes nowhere)
 * and so does the leader; their states can then be compared. */
static inline void
h_both_noop_at(int64_t at)
{
    trastenda_cmd c;
    memset(&c, 0, sizeof(c));
    c.op = TRASTENDA_OP_NOOP;
    trastenda_result r;
    trastenda_batch_out out;
    cr_assert_eq(trastenda_engine_apply(H.follower, at, &c, 1, &r, &out), TRASTENDA_OK);
    trastenda_engine *f = H.follower;
    H.follower = NULL; /* the leader's entry must not reach the promoted follower */
    h_apply_batch_at(at, &c, 1, &r);
    H.follower = f;
}

static inline trastenda_result
h_expect_code_(const trastenda_cmd *c, trastenda_err want, const char *file, int line)
{
    trastenda_result r = h_apply(c);
    cr_assert_eq(r.code, want, "%s:%d: op %u: want %s, got %s (%s)", file, line, c->op,
                 trastenda_err_name(want), trastenda_err_name(r.code), r.message);
    return r;
}

/* Applies c at the current time and asserts its code (the message of a surprise is shown). */
#define H_OK(c)         h_expect_code_((c), TRASTENDA_OK, __FILE__, __LINE__)
#define H_FAIL(c, code) h_expect_code_((c), (code), __FILE__, __LINE__)

/* ---- command builders ---- */

static inline trastenda_cmd
h_cmd(uint32_t op)
{
    trastenda_cmd c;
    memset(&c, 0, sizeof(c));
    c.op = op;
    c.sku.ix = c.loc.ix = c.loc_to.ix = TRASTENDA_IX_NONE;
    return c;
}

/* LOCATION_UPSERT, active, with the channels given (array borrowed until applied). */
static inline trastenda_cmd
h_cmd_location(const char *id, int32_t lat_e6, int32_t lon_e6, int32_t priority,
               const trastenda_str *channels, uint32_t channel_count)
{
    trastenda_cmd c = h_cmd(TRASTENDA_OP_LOCATION_UPSERT);
    c.loc = h_ref(id);
    c.lat_e6 = lat_e6;
    c.lon_e6 = lon_e6;
    c.priority = priority;
    c.channels = channels;
    c.channel_count = channel_count;
    c.active = 1;
    return c;
}

/* SKU_UPSERT, active. */
static inline trastenda_cmd
h_cmd_sku(const char *id, int64_t reorder_point, int64_t reorder_qty, int32_t lead_days,
          int64_t safety_stock)
{
    trastenda_cmd c = h_cmd(TRASTENDA_OP_SKU_UPSERT);
    c.sku = h_ref(id);
    c.reorder_point = reorder_point;
    c.reorder_qty = reorder_qty;
    c.lead_days = lead_days;
    c.safety_stock = safety_stock;
    c.active = 1;
    return c;
}

/* A single-record stock command: RECEIVE, ADJUST, COUNT, MOVE_UNSELLABLE, SET_SAFETY,
 * TRANSFER_IN (and TRANSFER_OUT with loc_to set by the caller). */
static inline trastenda_cmd
h_cmd_stock(uint32_t op, const char *sku, const char *loc, int64_t qty)
{
    trastenda_cmd c = h_cmd(op);
    c.sku = h_ref(sku);
    c.loc = h_ref(loc);
    c.qty = qty;
    return c;
}

static inline trastenda_cmd
h_cmd_adjust(const char *sku, const char *loc, int64_t qty, uint32_t reason)
{
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_ADJUST, sku, loc, qty);
    c.reason = reason;
    return c;
}

static inline trastenda_cmd
h_cmd_transfer_out(const char *sku, const char *from, const char *to, int64_t qty)
{
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_TRANSFER_OUT, sku, from, qty);
    c.loc_to = h_ref(to);
    return c;
}

/* RESERVE of n lines (array borrowed until applied). */
static inline trastenda_cmd
h_cmd_reserve(const trastenda_line *lines, uint32_t n, int64_t ttl_ms)
{
    trastenda_cmd c = h_cmd(TRASTENDA_OP_RESERVE);
    c.lines = lines;
    c.line_count = n;
    c.ttl_ms = ttl_ms;
    return c;
}

/* EXTEND, CONFIRM (order_id set by the caller), RELEASE. */
static inline trastenda_cmd
h_cmd_hold(uint32_t op, uint64_t hold_id)
{
    trastenda_cmd c = h_cmd(op);
    c.hold_id = hold_id;
    return c;
}

/* ORDER_PLACE of n lines (array borrowed until applied); channel may be NULL. */
static inline trastenda_cmd
h_cmd_order(const char *order_id, const trastenda_line *lines, uint32_t n, const char *channel)
{
    trastenda_cmd c = h_cmd(TRASTENDA_OP_ORDER_PLACE);
    c.order_id = h_s(order_id);
    c.lines = lines;
    c.line_count = n;
    c.channel = h_s(channel);
    return c;
}

/* ORDER_PICK/PACK/SHIP/DELIVER/CANCEL (loc NULL: every allocation), ORDER_RETURN (lines set by
 * the caller). */
static inline trastenda_cmd
h_cmd_order_step(uint32_t op, const char *order_id, const char *loc)
{
    trastenda_cmd c = h_cmd(op);
    c.order_id = h_s(order_id);
    c.loc = h_ref(loc);
    return c;
}

/* PO_CREATE, PO_RECEIVE (n lines, array borrowed until applied), PO_CLOSE (n = 0). */
static inline trastenda_cmd
h_cmd_po(uint32_t op, const char *po_id, const trastenda_line *lines, uint32_t n)
{
    trastenda_cmd c = h_cmd(op);
    c.po_id = h_s(po_id);
    c.lines = lines;
    c.line_count = n;
    return c;
}

/* ---- setup shortcuts (each asserts success) ---- */

/* Splits "web,store" into strs pointing into buf (caller-owned, at least strlen(csv)+1 bytes). */
static inline uint32_t
h_split_(const char *csv, char *buf, trastenda_str *out, uint32_t max)
{
    uint32_t n = 0;
    if (csv == NULL || csv[0] == '\0') return 0;
    strcpy(buf, csv);
    for (char *p = buf; n < max;) {
        char *comma = strchr(p, ',');
        out[n++] = (trastenda_str){p, (uint32_t)(comma ? (size_t)(comma - p) : strlen(p))};
        if (comma == NULL) break;
        p = comma + 1;
    }
    return n;
}

/* A location at (lat_e6, lon_e6) with priority and channels "a,b" (NULL: none). */
static inline uint32_t
h_add_location_at(const char *id, int32_t lat_e6, int32_t lon_e6, int32_t priority,
                  const char *channels_csv)
{
    char buf[TRASTENDA_CHANNELS_MAX * (TRASTENDA_ID_BYTES_MAX + 1) + 1];
    trastenda_str ch[TRASTENDA_CHANNELS_MAX];
    cr_assert(channels_csv == NULL || strlen(channels_csv) < sizeof(buf));
    uint32_t n = h_split_(channels_csv, buf, ch, TRASTENDA_CHANNELS_MAX);
    trastenda_cmd c = h_cmd_location(id, lat_e6, lon_e6, priority, ch, n);
    trastenda_result r = H_OK(&c);
    (void)r;
    uint32_t ix = TRASTENDA_IX_NONE;
    cr_assert_eq(trastenda_engine_location_lookup(H.e, h_s(id), &ix), TRASTENDA_OK);
    return ix;
}

/* A location at (0, 0), priority 0, no channels. */
static inline uint32_t
h_add_location(const char *id)
{
    return h_add_location_at(id, 0, 0, 0, NULL);
}

/* A SKU with a reorder point (reorder qty 0, lead 0 days, safety 0). */
static inline uint32_t
h_add_sku(const char *id, int64_t reorder_point)
{
    trastenda_cmd c = h_cmd_sku(id, reorder_point, 0, 0, 0);
    trastenda_result r = H_OK(&c);
    (void)r;
    uint32_t ix = TRASTENDA_IX_NONE;
    cr_assert_eq(trastenda_engine_sku_lookup(H.e, h_s(id), &ix), TRASTENDA_OK);
    return ix;
}

/* RECEIVE qty units of sku at loc. */
static inline void
h_receive(const char *sku, const char *loc, int64_t qty)
{
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_RECEIVE, sku, loc, qty);
    trastenda_result r = H_OK(&c);
    (void)r;
}

static inline uint32_t
h_sku_ix(const char *id)
{
    uint32_t ix = TRASTENDA_IX_NONE;
    trastenda_err err = trastenda_engine_sku_lookup(H.e, h_s(id), &ix);
    cr_assert_eq(err, TRASTENDA_OK, "sku '%s' unknown", id);
    return ix;
}

static inline uint32_t
h_loc_ix(const char *id)
{
    uint32_t ix = TRASTENDA_IX_NONE;
    trastenda_err err = trastenda_engine_location_lookup(H.e, h_s(id), &ix);
    cr_assert_eq(err, TRASTENDA_OK, "location '%s' unknown", id);
    return ix;
}

/* The stock record of (sku, loc); it must exist. */
static inline trastenda_stock
h_stock(const char *sku, const char *loc)
{
    trastenda_stock s;
    memset(&s, 0, sizeof(s));
    trastenda_err err = trastenda_engine_stock_read(H.e, h_sku_ix(sku), h_loc_ix(loc), &s);
    cr_assert_eq(err, TRASTENDA_OK, "stock (%s, %s): %s", sku, loc, trastenda_err_name(err));
    return s;
}

/* Whether (sku, loc) has a stock record. */
static inline int
h_stock_exists(const char *sku, const char *loc)
{
    trastenda_stock s;
    return trastenda_engine_stock_read(H.e, h_sku_ix(sku), h_loc_ix(loc), &s) == TRASTENDA_OK;
}

/* RESERVE qty of sku at loc (an explicit line) for a minute; returns the hold id. */
static inline uint64_t
h_hold(const char *sku, const char *loc, int64_t qty)
{
    trastenda_line ln = h_line(sku, loc, qty);
    trastenda_cmd c = h_cmd_reserve(&ln, 1, 60000);
    trastenda_result r = H_OK(&c);
    cr_assert_neq(r.id, 0);
    return r.id;
}

/* ORDER_PLACE of qty of sku (routed) on channel, ship-to (0, 0); returns the order number. */
static inline uint64_t
h_place(const char *order_id, const char *sku, int64_t qty, const char *channel)
{
    trastenda_line ln = h_line(sku, NULL, qty);
    trastenda_cmd c = h_cmd_order(order_id, &ln, 1, channel);
    c.has_ship_to = 1;
    trastenda_result r = H_OK(&c);
    cr_assert_neq(r.id, 0);
    return r.id;
}

/* ---- the last batch's log entry ---- */

/* The last batch's entry (a copy owned by the helpers, valid until the next apply). */
static inline const uint8_t *
h_entry(size_t *len)
{
    *len = H.entry_len;
    return H.entry;
}

/* Calls fn(ctx, type, body, len) for each record of the last entry; returns the record count. */
typedef void (*h_record_cb)(void *ctx, uint8_t type, const uint8_t *body, uint32_t len);

static inline uint32_t
h_records_each(h_record_cb cb, void *ctx)
{
    trastenda_entry_header hdr;
    trastenda_entry_iter it;
    trastenda_err err = trastenda_entry_open(H.entry, H.entry_len, &hdr, &it);
    cr_assert_eq(err, TRASTENDA_OK, "entry_open: %s", trastenda_err_name(err));
    uint32_t n = 0;
    for (;;) {
        uint8_t type;
        const uint8_t *body;
        uint32_t len;
        err = trastenda_entry_next(&it, &type, &body, &len);
        if (err == TRASTENDA_E_SEQUENCE) break;
        cr_assert_eq(err, TRASTENDA_OK, "entry_next: %s", trastenda_err_name(err));
        cr_assert_lt(n, hdr.record_count + 1, "more records than the header says");
        if (cb != NULL) cb(ctx, type, body, len);
        n++;
    }
    cr_assert_eq(n, hdr.record_count, "records read %u, header says %u", n, hdr.record_count);
    return n;
}

struct h_count_ctx_ {
    uint8_t type;
    uint32_t n;
};

static inline void
h_count_cb_(void *ctx, uint8_t type, const uint8_t *body, uint32_t len)
{
    struct h_count_ctx_ *c = ctx;
    (void)body;
    (void)len;
    if (c->type == type) c->n++;
}

/* Records of one trastenda_rec_type in the last entry. */
static inline uint32_t
h_records(uint8_t type)
{
    struct h_count_ctx_ c = {type, 0};
    (void)h_records_each(h_count_cb_, &c);
    return c.n;
}

struct h_ledger_ctx_ {
    trastenda_ledger_entry *out;
    uint32_t max, n;
};

static inline void
h_ledger_cb_(void *ctx, uint8_t type, const uint8_t *body, uint32_t len)
{
    struct h_ledger_ctx_ *c = ctx;
    if (type != TRASTENDA_REC_LEDGER) return;
    cr_assert_lt(c->n, c->max, "more ledger entries than room");
    trastenda_err err = trastenda_ledger_decode(body, len, &c->out[c->n]);
    cr_assert_eq(err, TRASTENDA_OK, "ledger_decode: %s", trastenda_err_name(err));
    c->n++;
}

/* Decodes the last batch's ledger entries into out (max entries); returns how many. Strings
 * point into the entry copy (valid until the next apply). */
static inline uint32_t
h_ledger(trastenda_ledger_entry *out, uint32_t max)
{
    struct h_ledger_ctx_ c = {out, max, 0};
    (void)h_records_each(h_ledger_cb_, &c);
    cr_assert_eq(c.n, H.out.ledger_count, "ledger records %u, batch says %u", c.n,
                 H.out.ledger_count);
    return c.n;
}

/* The last batch's only ledger entry (asserts there is exactly one). */
static inline trastenda_ledger_entry
h_ledger_one(void)
{
    trastenda_ledger_entry le[2];
    memset(le, 0, sizeof(le));
    uint32_t n = h_ledger(le, 2);
    cr_assert_eq(n, 1, "want one ledger entry, the batch has %u", n);
    return le[0];
}

struct h_event_ctx_ {
    trastenda_event *out;
    uint32_t max, n;
};

static inline void
h_event_cb_(void *ctx, uint8_t type, const uint8_t *body, uint32_t len)
{
    struct h_event_ctx_ *c = ctx;
    if (type != TRASTENDA_REC_EVENT) return;
    cr_assert_lt(c->n, c->max, "more events than room");
    trastenda_err err = trastenda_event_decode(body, len, &c->out[c->n]);
    cr_assert_eq(err, TRASTENDA_OK, "event_decode: %s", trastenda_err_name(err));
    c->n++;
}

/* Decodes the last batch's events into out (max entries); returns how many. */
static inline uint32_t
h_events(trastenda_event *out, uint32_t max)
{
    struct h_event_ctx_ c = {out, max, 0};
    (void)h_records_each(h_event_cb_, &c);
    cr_assert_eq(c.n, H.out.event_count, "event records %u, batch says %u", c.n, H.out.event_count);
    return c.n;
}

/* How many events of kind the last batch emitted for (sku, loc) (NULLs match any); the last
 * match is copied to *out when out is not NULL. */
static inline uint32_t
h_event_find(uint8_t kind, const char *sku, const char *loc, trastenda_event *out)
{
    static trastenda_event ev[64];
    uint32_t n = h_events(ev, 64);
    uint32_t hits = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (ev[i].kind != kind) continue;
        if (sku != NULL && !h_str_eq(ev[i].sku, sku)) continue;
        if (loc != NULL && !h_str_eq(ev[i].loc, loc)) continue;
        if (out != NULL) *out = ev[i];
        hits++;
    }
    return hits;
}

#endif /* TRASTENDA_TESTS_ENGINE_HELPERS_H */
