/*
 * tests/engine/test_apply.c - engine/apply.c and the log entries of engine/effects.c: header
 * fields, replay of every batch on an empty engine (same digest, same answers to queries),
 * idempotent re-apply, gaps, malformed entries of every kind (nothing changes), the batch-level
 * errors of trastenda_engine_apply, the ledger and event decoders, and the ledger as the audit
 * trail (gapless, and its deltas rebuild every stock record).
 *
 * Most tests run one mixed scenario that uses every command, expiry and every kind of retention
 * removal, keeping a copy of each batch's entry.
 */
#include "helpers.h"

#define EPOCH      UINT64_C(7)
#define ENTRIES    16
#define TYPES      16
#define LEDGER_MAX 256

static trastenda_engine_config CFG;

struct ent {
    uint8_t *p;
    size_t len;
    int64_t time_ms;
    uint64_t digest; /* the leader's digest after this batch */
};

static struct {
    struct ent e[ENTRIES];
    uint32_t n;
} S;

static void
setup(void)
{
    h_config_small(&CFG);
    CFG.epoch = EPOCH;
    h_setup_with(&CFG, 1);
    memset(&S, 0, sizeof(S));
}

static void
teardown(void)
{
    for (uint32_t i = 0; i < S.n; i++)
        free(S.e[i].p);
    memset(&S, 0, sizeof(S));
    h_teardown();
}

TestSuite(engine_apply, .init = setup, .fini = teardown);

static trastenda_engine *
fresh(void)
{
    trastenda_engine *f = NULL;
    cr_assert_eq(trastenda_engine_create(&CFG, &f), TRASTENDA_OK);
    return f;
}

/* A malloc'd copy of exactly len bytes, so a read past the end is a sanitizer error. */
static uint8_t *
copy_exact(const uint8_t *p, size_t len)
{
    uint8_t *c = malloc(len > 0 ? len : 1);
    cr_assert_not_null(c);
    if (len > 0) memcpy(c, p, len);
    return c;
}

/* ---- the scenario ---- */

/* Applies n commands as one batch dt ms after the previous one; each result must have the code
 * in want (NULL: all OK). The follower applies the entry and must reach the same digest. */
static void
batch(int64_t dt, const trastenda_cmd *cmds, uint32_t n, const trastenda_err *want)
{
    trastenda_result res[16];
    cr_assert_leq(n, 16);
    cr_assert_lt(S.n, ENTRIES);
    h_apply_batch_at(H.now + dt, cmds, n, res);
    for (uint32_t i = 0; i < n; i++) {
        trastenda_err w = want != NULL ? want[i] : TRASTENDA_OK;
        cr_assert_eq(res[i].code, w, "batch %u cmd %u (op %u): want %s, got %s (%s)", S.n + 1, i,
                     cmds[i].op, trastenda_err_name(w), trastenda_err_name(res[i].code),
                     res[i].message);
    }
    struct ent *en = &S.e[S.n++];
    en->p = copy_exact(H.entry, H.entry_len);
    en->len = H.entry_len;
    en->time_ms = H.now;
    en->digest = trastenda_engine_digest(H.e);
    cr_assert_eq(trastenda_engine_digest(H.follower), en->digest,
                 "batch %u: the follower's digest differs", S.n);
}

static trastenda_cmd
with_ship_to(trastenda_cmd c)
{
    c.has_ship_to = 1;
    c.lat_e6 = 40400000;
    c.lon_e6 = -3700000;
    return c;
}

static void
scenario_catalog(void)
{
    static const trastenda_str both[] = {{"web", 3}, {"store", 5}}, web[] = {{"web", 3}};
    trastenda_cmd c[6] = {
        h_cmd_location("madrid", 40416800, -3703800, 0, both, 2),
        h_cmd_location("lugo", 43009700, -7556000, 1, web, 1),
        h_cmd_location("vigo", 42240600, -8720700, 2, web, 1),
        h_cmd_sku("tee", 5, 20, 3, 0),
        h_cmd_sku("cap", 2, 10, 5, 0),
        h_cmd_sku("hat", 0, 0, 0, 2), /* new records of hat start with safety stock 2 */
    };
    c[0].name = h_s("Madrid DC");
    c[3].name = h_s("T-shirt");
    batch(0, c, 6, NULL);
}

static void
scenario_stock(void)
{
    trastenda_cmd c[8] = {
        h_cmd_stock(TRASTENDA_OP_RECEIVE, "tee", "madrid", 20),
        h_cmd_stock(TRASTENDA_OP_RECEIVE, "tee", "lugo", 10),
        h_cmd_stock(TRASTENDA_OP_RECEIVE, "cap", "madrid", 5),
        h_cmd_stock(TRASTENDA_OP_RECEIVE, "hat", "lugo", 4),
        h_cmd_adjust("tee", "lugo", 2, TRASTENDA_REASON_FOUND),
        h_cmd_stock(TRASTENDA_OP_COUNT, "cap", "madrid", 6),
        h_cmd_stock(TRASTENDA_OP_MOVE_UNSELLABLE, "tee", "madrid", 1),
        h_cmd_stock(TRASTENDA_OP_SET_SAFETY, "tee", "lugo", 1),
    };
    c[0].reference = h_s("ASN-1");
    c[0].actor = h_s("ana");
    c[0].key = h_s("rcv-1");
    c[5].has_expected = 1;
    c[5].expected = 5;
    c[6].reason = TRASTENDA_REASON_DAMAGE;
    batch(1000, c, 8, NULL);
}

static void
scenario_transfer(void)
{
    trastenda_cmd c[2] = {
        h_cmd_transfer_out("tee", "madrid", "vigo", 3),
        h_cmd_stock(TRASTENDA_OP_TRANSFER_IN, "tee", "vigo", 2),
    };
    c[0].reference = h_s("T-1");
    batch(1000, c, 2, NULL);
}

/* Holds 1 (keyed, 2 tee + 1 cap at Madrid), 2 (routed tee 2), 3 (tee at Lugo, 1 s). */
static void
scenario_reserve(void)
{
    static trastenda_line h1[2], h2[1], h3[1];
    h1[0] = h_line("tee", "madrid", 2);
    h1[1] = h_line("cap", "madrid", 1);
    h2[0] = h_line("tee", NULL, 2);
    h3[0] = h_line("tee", "lugo", 1);
    trastenda_cmd c[3] = {h_cmd_reserve(h1, 2, 60000), with_ship_to(h_cmd_reserve(h2, 1, 60000)),
                          h_cmd_reserve(h3, 1, 1000)};
    c[0].key = h_s("k1");
    c[1].channel = h_s("web");
    batch(1000, c, 3, NULL);
}

static void
scenario_hold_steps(void)
{
    trastenda_cmd c[4] = {h_cmd_hold(TRASTENDA_OP_EXTEND, 1), h_cmd_hold(TRASTENDA_OP_CONFIRM, 1),
                          h_cmd_hold(TRASTENDA_OP_RELEASE, 2),
                          h_cmd_hold(TRASTENDA_OP_RELEASE, 999)};
    c[0].ttl_ms = 120000;
    c[1].order_id = h_s("H-1");
    trastenda_err want[4] = {TRASTENDA_OK, TRASTENDA_OK, TRASTENDA_OK, TRASTENDA_E_UNKNOWN_HOLD};
    batch(500, c, 4, want);
}

/* Hold 3 expires before these commands. */
static void
scenario_place(void)
{
    static trastenda_line w1[1], w2[1];
    w1[0] = h_line("tee", NULL, 4);
    w2[0] = h_line("cap", NULL, 1);
    trastenda_cmd c[4] = {with_ship_to(h_cmd_order("W-1", w1, 1, "web")),
                          with_ship_to(h_cmd_order("W-2", w2, 1, "store")),
                          h_cmd_order_step(TRASTENDA_OP_ORDER_PICK, "W-1", NULL),
                          h_cmd_order_step(TRASTENDA_OP_ORDER_PACK, "W-1", "madrid")};
    batch(500, c, 4, NULL);
}

static void
scenario_ship(void)
{
    trastenda_cmd c[3] = {h_cmd_order_step(TRASTENDA_OP_ORDER_SHIP, "W-1", NULL),
                          h_cmd_order_step(TRASTENDA_OP_ORDER_CANCEL, "W-2", NULL),
                          h_cmd_order_step(TRASTENDA_OP_ORDER_SHIP, "H-1", NULL)};
    batch(1000, c, 3, NULL);
}

static void
scenario_return(void)
{
    static trastenda_line r1[2], r2[2];
    r1[0] = h_line("tee", "madrid", 1);
    r1[1] = h_line("tee", "madrid", 1);
    r1[1].flags = TRASTENDA_LINE_UNSELLABLE;
    r2[0] = h_line("tee", "madrid", 2);
    r2[1] = h_line("cap", "lugo", 1);
    trastenda_cmd c[3] = {h_cmd_order_step(TRASTENDA_OP_ORDER_DELIVER, "W-1", NULL),
                          h_cmd_order_step(TRASTENDA_OP_ORDER_RETURN, "W-1", NULL),
                          h_cmd_order_step(TRASTENDA_OP_ORDER_RETURN, "H-1", NULL)};
    c[1].lines = r1;
    c[1].line_count = 2;
    c[2].lines = r2;
    c[2].line_count = 2;
    batch(1000, c, 3, NULL);
}

static void
scenario_po(void)
{
    static trastenda_line p1[2], p2[1];
    p1[0] = h_line("tee", "madrid", 10);
    p1[1] = h_line("cap", "lugo", 5);
    p2[0] = h_line("tee", "madrid", 4);
    trastenda_cmd c[3] = {h_cmd_po(TRASTENDA_OP_PO_CREATE, "po-1", p1, 2),
                          h_cmd_po(TRASTENDA_OP_PO_RECEIVE, "po-1", p2, 1),
                          h_cmd_po(TRASTENDA_OP_PO_CLOSE, "po-1", NULL, 0)};
    batch(1000, c, 3, NULL);
}

/* Hold 4 on hat at Lugo, then a theft leaves it in shortfall; deactivations; a failure. */
static void
scenario_misc(void)
{
    static trastenda_line h4[1], big[1];
    h4[0] = h_line("hat", "lugo", 2);
    big[0] = h_line("tee", "madrid", 1000);
    trastenda_cmd c[6] = {h_cmd_reserve(h4, 1, 60000),
                          h_cmd_adjust("hat", "lugo", -3, TRASTENDA_REASON_THEFT),
                          h_cmd(TRASTENDA_OP_LOCATION_DEACTIVATE),
                          h_cmd(TRASTENDA_OP_SKU_DEACTIVATE),
                          h_cmd(TRASTENDA_OP_NOOP),
                          h_cmd_reserve(big, 1, 60000)};
    c[2].loc = h_ref("vigo");
    c[3].sku = h_ref("cap");
    trastenda_err want[6] = {TRASTENDA_OK, TRASTENDA_OK, TRASTENDA_OK,
                             TRASTENDA_OK, TRASTENDA_OK, TRASTENDA_E_SHORT};
    batch(1000, c, 6, want);
}

/* Past every retention window: holds, orders, the PO and the keys leave memory; hold 4 expires. */
static void
scenario_purge(void)
{
    trastenda_cmd c = h_cmd(TRASTENDA_OP_NOOP);
    batch(700000, &c, 1, NULL);
}

/* Slots freed by the purge are used again. */
static void
scenario_reuse(void)
{
    static trastenda_line h5[1], w3[1];
    h5[0] = h_line("tee", "madrid", 1);
    w3[0] = h_line("tee", NULL, 1);
    trastenda_cmd c[2] = {h_cmd_reserve(h5, 1, 60000),
                          with_ship_to(h_cmd_order("W-3", w3, 1, "web"))};
    batch(1000, c, 2, NULL);
}

typedef void (*step_fn)(void);
static const step_fn STEPS[] = {scenario_catalog, scenario_stock,      scenario_transfer,
                                scenario_reserve, scenario_hold_steps, scenario_place,
                                scenario_ship,    scenario_return,     scenario_po,
                                scenario_misc,    scenario_purge,      scenario_reuse};
#define STEP_COUNT (sizeof(STEPS) / sizeof(STEPS[0]))

/* Runs the first n batches of the scenario. */
static void
scenario(uint32_t n)
{
    for (uint32_t i = 0; i < n && i < STEP_COUNT; i++)
        STEPS[i]();
}

/* Applies entries [0, k) to f; each must succeed. */
static void
replay(trastenda_engine *f, uint32_t k)
{
    for (uint32_t i = 0; i < k; i++) {
        trastenda_err err = trastenda_engine_apply_entry(f, S.e[i].p, S.e[i].len);
        cr_assert_eq(err, TRASTENDA_OK, "entry %u: %s", i + 1, trastenda_err_name(err));
    }
}

/* ---- header ---- */

Test(engine_apply, entry_header_carries_seq_time_and_epoch)
{
    scenario(STEP_COUNT);
    for (uint32_t i = 0; i < S.n; i++) {
        trastenda_entry_header hdr;
        trastenda_entry_iter it;
        cr_assert_eq(trastenda_entry_open(S.e[i].p, S.e[i].len, &hdr, &it), TRASTENDA_OK);
        cr_assert_eq(hdr.version, TRASTENDA_LOG_VERSION);
        cr_assert_eq(hdr.seq, i + 1, "entry %u seq %llu", i, (unsigned long long)hdr.seq);
        cr_assert_eq(hdr.time_ms, S.e[i].time_ms);
        cr_assert_eq(hdr.epoch, EPOCH);
        uint32_t magic = (uint32_t)S.e[i].p[0] | (uint32_t)S.e[i].p[1] << 8 |
                         (uint32_t)S.e[i].p[2] << 16 | (uint32_t)S.e[i].p[3] << 24;
        cr_assert_eq(magic, TRASTENDA_LOG_MAGIC);
        uint32_t n = 0;
        uint8_t type;
        const uint8_t *body;
        uint32_t blen;
        while (trastenda_entry_next(&it, &type, &body, &blen) == TRASTENDA_OK)
            n++;
        cr_assert_eq(n, hdr.record_count);
    }
    cr_assert_eq(trastenda_engine_seq(H.e), S.n);
    cr_assert_eq(trastenda_engine_time_ms(H.e), S.e[S.n - 1].time_ms);
}

Test(engine_apply, batch_out_reports_seq_and_counts)
{
    scenario(2);
    cr_assert_eq(H.out.seq, 2);
    cr_assert_eq(H.out.entry_len, S.e[1].len);
    /* One per stock command, and one for the safety stock hat's new record starts with. */
    cr_assert_eq(H.out.ledger_count, 9);
    trastenda_ledger_entry le[16];
    cr_assert_eq(h_ledger(le, 16), 9);
    uint32_t hat_safety = 0;
    for (int i = 0; i < 9; i++)
        if (h_str_eq(le[i].sku, "hat") && le[i].move == TRASTENDA_MOVE_SAFETY) {
            hat_safety++;
            cr_assert_eq(le[i].delta[TRASTENDA_Q_SAFETY], 2);
            cr_assert_eq(le[i].delta[TRASTENDA_Q_ON_HAND], 0);
            cr_assert_lt(i + 1, 9);
            cr_assert_eq(le[i + 1].move, TRASTENDA_MOVE_RECEIVE, "then the receipt");
        }
    cr_assert_eq(hat_safety, 1);
}

Test(engine_apply, the_scenario_writes_every_record_type)
{
    scenario(STEP_COUNT);
    uint32_t seen[TYPES] = {0};
    for (uint32_t i = 0; i < S.n; i++) {
        trastenda_entry_header hdr;
        trastenda_entry_iter it;
        cr_assert_eq(trastenda_entry_open(S.e[i].p, S.e[i].len, &hdr, &it), TRASTENDA_OK);
        uint8_t type;
        const uint8_t *body;
        uint32_t blen;
        while (trastenda_entry_next(&it, &type, &body, &blen) == TRASTENDA_OK) {
            cr_assert(type >= 1 && type < TYPES, "type %u", type);
            seen[type]++;
        }
    }
    for (uint32_t t = TRASTENDA_REC_META; t <= TRASTENDA_REC_PO_REMOVED; t++)
        cr_assert_gt(seen[t], 0, "record type %u never written", t);
}

Test(engine_apply, the_scenario_emits_every_event_kind)
{
    scenario(STEP_COUNT);
    uint32_t seen[8] = {0};
    for (uint32_t i = 0; i < S.n; i++) {
        trastenda_entry_header hdr;
        trastenda_entry_iter it;
        cr_assert_eq(trastenda_entry_open(S.e[i].p, S.e[i].len, &hdr, &it), TRASTENDA_OK);
        uint8_t type;
        const uint8_t *body;
        uint32_t blen;
        while (trastenda_entry_next(&it, &type, &body, &blen) == TRASTENDA_OK) {
            if (type != TRASTENDA_REC_EVENT) continue;
            trastenda_event ev;
            cr_assert_eq(trastenda_event_decode(body, blen, &ev), TRASTENDA_OK);
            cr_assert_lt(ev.kind, 8);
            seen[ev.kind]++;
        }
    }
    for (uint32_t k = TRASTENDA_EVENT_LOW_STOCK; k <= TRASTENDA_EVENT_ORDER_STATE; k++)
        cr_assert_gt(seen[k], 0, "event kind %u never emitted", k);
}

/* ---- replay ---- */

Test(engine_apply, every_entry_applied_to_an_empty_engine_gives_the_same_digest)
{
    scenario(STEP_COUNT); /* batch() compares the follower after each batch */
    trastenda_engine *f = fresh();
    for (uint32_t i = 0; i < S.n; i++) {
        cr_assert_eq(trastenda_engine_apply_entry(f, S.e[i].p, S.e[i].len), TRASTENDA_OK);
        cr_assert_eq(trastenda_engine_digest(f), S.e[i].digest, "after entry %u", i + 1);
        cr_assert_eq(trastenda_engine_seq(f), i + 1);
        cr_assert_eq(trastenda_engine_time_ms(f), S.e[i].time_ms);
        trastenda_engine_check(f);
    }
    trastenda_engine_destroy(f);
}

Test(engine_apply, the_digest_tells_different_states_apart)
{
    scenario(3);
    trastenda_engine *f = fresh();
    replay(f, 2);
    cr_assert_neq(trastenda_engine_digest(f), S.e[2].digest);
    cr_assert_eq(trastenda_engine_digest(f), S.e[1].digest);
    trastenda_engine_destroy(f);
}

Test(engine_apply, applying_the_same_entry_twice_changes_nothing)
{
    scenario(STEP_COUNT);
    for (uint32_t i = 0; i < S.n; i++) {
        trastenda_engine *f = fresh();
        replay(f, i + 1);
        uint64_t d = trastenda_engine_digest(f);
        cr_assert_eq(d, S.e[i].digest);
        cr_assert_eq(trastenda_engine_apply_entry(f, S.e[i].p, S.e[i].len), TRASTENDA_OK,
                     "entry %u again", i + 1);
        cr_assert_eq(trastenda_engine_digest(f), d, "entry %u applied twice", i + 1);
        cr_assert_eq(trastenda_engine_seq(f), i + 1);
        trastenda_engine_check(f);
        if (i + 1 < S.n) {
            cr_assert_eq(trastenda_engine_apply_entry(f, S.e[i + 1].p, S.e[i + 1].len),
                         TRASTENDA_OK);
            cr_assert_eq(trastenda_engine_digest(f), S.e[i + 1].digest, "then the next one");
        }
        trastenda_engine_destroy(f);
    }
}

Test(engine_apply, a_gap_is_refused_and_changes_nothing)
{
    scenario(4);
    trastenda_engine *f = fresh();
    cr_assert_eq(trastenda_engine_apply_entry(f, S.e[1].p, S.e[1].len), TRASTENDA_E_SEQUENCE,
                 "an empty engine needs entry 1");
    replay(f, 1);
    uint64_t d = trastenda_engine_digest(f);
    cr_assert_eq(trastenda_engine_apply_entry(f, S.e[2].p, S.e[2].len), TRASTENDA_E_SEQUENCE);
    cr_assert_eq(trastenda_engine_apply_entry(f, S.e[3].p, S.e[3].len), TRASTENDA_E_SEQUENCE);
    cr_assert_eq(trastenda_engine_digest(f), d);
    cr_assert_eq(trastenda_engine_seq(f), 1);
    replay(f, 0);
    cr_assert_eq(trastenda_engine_apply_entry(f, S.e[1].p, S.e[1].len), TRASTENDA_OK);
    cr_assert_eq(trastenda_engine_apply_entry(f, S.e[2].p, S.e[2].len), TRASTENDA_OK);
    cr_assert_eq(trastenda_engine_apply_entry(f, S.e[0].p, S.e[0].len), TRASTENDA_E_SEQUENCE,
                 "an older entry");
    cr_assert_eq(trastenda_engine_digest(f), S.e[2].digest);
    trastenda_engine_destroy(f);
}

Test(engine_apply, an_entry_with_time_going_backwards_is_corrupt)
{
    scenario(3);
    trastenda_engine *f = fresh();
    replay(f, 2);
    uint64_t d = trastenda_engine_digest(f);
    uint8_t *p = copy_exact(S.e[2].p, S.e[2].len);
    int64_t t = S.e[1].time_ms - 1; /* header: time_ms at offset 16 */
    for (int i = 0; i < 8; i++)
        p[16 + i] = (uint8_t)((uint64_t)t >> (8 * i));
    cr_assert_eq(trastenda_engine_apply_entry(f, p, S.e[2].len), TRASTENDA_E_CORRUPT);
    cr_assert_eq(trastenda_engine_digest(f), d);
    free(p);
    trastenda_engine_destroy(f);
}

Test(engine_apply, a_follower_takes_the_leaders_epoch)
{
    scenario(2);
    trastenda_engine_config cfg = CFG;
    cfg.epoch = 1;
    trastenda_engine *f = NULL;
    cr_assert_eq(trastenda_engine_create(&cfg, &f), TRASTENDA_OK);
    replay(f, 2);
    trastenda_cmd c = h_cmd(TRASTENDA_OP_NOOP);
    trastenda_result r;
    trastenda_batch_out out;
    cr_assert_eq(trastenda_engine_apply(f, S.e[1].time_ms + 1, &c, 1, &r, &out), TRASTENDA_OK);
    trastenda_entry_header hdr;
    trastenda_entry_iter it;
    cr_assert_eq(trastenda_entry_open(out.entry, out.entry_len, &hdr, &it), TRASTENDA_OK);
    cr_assert_eq(hdr.epoch, EPOCH, "a promoted follower writes the epoch it applied");
    cr_assert_eq(hdr.seq, 3);
    trastenda_engine_destroy(f);
}

/* ---- malformed entries ---- */

/* f is at entry k - 1: p (len bytes) must be refused as corrupt, changing nothing. */
static void
expect_corrupt(trastenda_engine *f, const uint8_t *p, size_t len, const char *what)
{
    uint64_t d = trastenda_engine_digest(f);
    uint64_t seq = trastenda_engine_seq(f);
    uint8_t *c = copy_exact(p, len);
    trastenda_err err = trastenda_engine_apply_entry(f, c, len);
    free(c);
    cr_assert_eq(err, TRASTENDA_E_CORRUPT, "%s: got %s", what, trastenda_err_name(err));
    cr_assert_eq(trastenda_engine_digest(f), d, "%s changed the state", what);
    cr_assert_eq(trastenda_engine_seq(f), seq);
}

static void
put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Header: body length at offset 36, record count at 32. */
#define HDR_COUNT 32
#define HDR_BODY  36

/* A record's body length is a varint (docs/LOG.md). The tests that change lengths work on a copy
 * of an entry whose every length is padded to 5 bytes (a longer encoding of the same value, which
 * readers accept), so that any 32-bit length fits in place. */
#define PAD_HDR 6u /* type + 5-byte length */

static uint32_t
get_len5(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 5; i++)
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
    return (uint32_t)v;
}

static void
put_len5(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 5; i++)
        p[i] = (uint8_t)(((uint64_t)v >> (7 * i)) & 0x7f) | (i < 4 ? 0x80 : 0);
}

/* Entry k with padded lengths (malloc'd; *len its length). */
static uint8_t *
padded(uint32_t k, size_t *len)
{
    trastenda_entry_header hdr;
    trastenda_entry_iter it;
    cr_assert_eq(trastenda_entry_open(S.e[k].p, S.e[k].len, &hdr, &it), TRASTENDA_OK);
    uint8_t *p =
        malloc(TRASTENDA_LOG_HEADER_BYTES + (size_t)hdr.record_count * PAD_HDR + S.e[k].len);
    cr_assert_not_null(p);
    memcpy(p, S.e[k].p, TRASTENDA_LOG_HEADER_BYTES);
    size_t at = TRASTENDA_LOG_HEADER_BYTES;
    uint8_t type;
    const uint8_t *body;
    uint32_t blen;
    while (trastenda_entry_next(&it, &type, &body, &blen) == TRASTENDA_OK) {
        p[at] = type;
        put_len5(p + at + 1, blen);
        memcpy(p + at + PAD_HDR, body, blen);
        at += PAD_HDR + blen;
    }
    put_u32(p + HDR_BODY, (uint32_t)(at - TRASTENDA_LOG_HEADER_BYTES));
    *len = at;
    return p;
}

/* Length of the varint at p. */
static size_t
uv_at(const uint8_t *p)
{
    size_t n = 1;
    while (*p++ & 0x80)
        n++;
    return n;
}

Test(engine_apply, an_entry_truncated_at_any_length_is_corrupt)
{
    scenario(STEP_COUNT);
    trastenda_engine *f = fresh();
    for (uint32_t k = 0; k < S.n; k++) {
        for (size_t len = 0; len < S.e[k].len; len++) {
            expect_corrupt(f, S.e[k].p, len, "truncated");
            if (len < TRASTENDA_LOG_HEADER_BYTES) continue;
            /* The same prefix with a header that agrees with its length: the records must be
             * found short. */
            uint8_t *p = copy_exact(S.e[k].p, len);
            put_u32(p + HDR_BODY, (uint32_t)(len - TRASTENDA_LOG_HEADER_BYTES));
            expect_corrupt(f, p, len, "truncated, header fixed");
            free(p);
        }
        cr_assert_eq(trastenda_engine_apply_entry(f, S.e[k].p, S.e[k].len), TRASTENDA_OK);
        cr_assert_eq(trastenda_engine_digest(f), S.e[k].digest);
    }
    trastenda_engine_destroy(f);
}

Test(engine_apply, a_bad_magic_version_or_seq_is_corrupt)
{
    scenario(2);
    trastenda_engine *f = fresh();
    replay(f, 1);
    const struct ent *en = &S.e[1];
    uint8_t *p = copy_exact(en->p, en->len);
    size_t offsets[] = {0, 3, 4, 5}; /* magic, version */
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        p[offsets[i]] ^= 0x01;
        expect_corrupt(f, p, en->len, "flipped header byte");
        p[offsets[i]] ^= 0x01;
    }
    memset(p + 8, 0, 8); /* seq 0 */
    expect_corrupt(f, p, en->len, "seq 0");
    memcpy(p, en->p, en->len);
    cr_assert_eq(trastenda_engine_apply_entry(f, p, en->len), TRASTENDA_OK, "restored");
    free(p);
    trastenda_engine_destroy(f);
}

Test(engine_apply, bad_record_counts_and_lengths_are_corrupt)
{
    scenario(4);
    trastenda_engine *f = fresh();
    replay(f, 3);
    size_t len;
    uint8_t *p = padded(3, &len);
    uint32_t count = get_u32(p + HDR_COUNT);
    put_u32(p + HDR_COUNT, count + 1);
    expect_corrupt(f, p, len, "one record more than there are");
    put_u32(p + HDR_COUNT, count - 1);
    expect_corrupt(f, p, len, "one record less than there are");
    put_u32(p + HDR_COUNT, count);
    /* Every record's length, one more, one less, huge; and a length longer than 32 bits. */
    size_t off = TRASTENDA_LOG_HEADER_BYTES;
    for (uint32_t r = 0; r < count; r++) {
        uint32_t blen = get_len5(p + off + 1);
        uint32_t bad[] = {blen + 1, blen - 1, UINT32_MAX, 0x80000000u};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            if (bad[i] == blen) continue;
            put_len5(p + off + 1, bad[i]);
            expect_corrupt(f, p, len, "record length");
        }
        put_len5(p + off + 1, blen);
        p[off + 5] |= 0x10; /* bit 32 */
        expect_corrupt(f, p, len, "record length beyond 32 bits");
        put_len5(p + off + 1, blen);
        off += PAD_HDR + blen;
    }
    cr_assert_eq(off, len);
    /* The header's body length. */
    uint32_t body = get_u32(p + HDR_BODY);
    put_u32(p + HDR_BODY, body + 1);
    expect_corrupt(f, p, len, "body length");
    put_u32(p + HDR_BODY, body);
    cr_assert_eq(trastenda_engine_apply_entry(f, p, len), TRASTENDA_OK, "padded lengths read");
    cr_assert_eq(trastenda_engine_digest(f), S.e[3].digest);
    free(p);
    trastenda_engine_destroy(f);
}

/* Locates the nth record of a type in entry k: offset of its body and its length. */
static int
find_record(uint32_t k, uint8_t type, uint32_t nth, size_t *body_off, uint32_t *body_len)
{
    trastenda_entry_header hdr;
    trastenda_entry_iter it;
    cr_assert_eq(trastenda_entry_open(S.e[k].p, S.e[k].len, &hdr, &it), TRASTENDA_OK);
    uint8_t t;
    const uint8_t *body;
    uint32_t blen;
    while (trastenda_entry_next(&it, &t, &body, &blen) == TRASTENDA_OK) {
        if (t != type) continue;
        if (nth-- > 0) continue;
        *body_off = (size_t)(body - S.e[k].p);
        *body_len = blen;
        return 1;
    }
    return 0;
}

/* The first entry holding a record of type (entry index in *k). */
static void
find_any(uint8_t type, uint32_t *k, size_t *body_off, uint32_t *body_len)
{
    for (*k = 0; *k < S.n; (*k)++)
        if (find_record(*k, type, 0, body_off, body_len)) return;
    cr_assert_fail("no record of type %u in the scenario", type);
}

/* Length of the string at p (u8 length prefix) including its prefix. */
static size_t
str_at(const uint8_t *p)
{
    return 1u + p[0];
}

struct mutation {
    const char *what;
    uint8_t type;
    size_t (*field)(const uint8_t *body); /* offset of the byte to set */
    uint8_t value;
};

static size_t
at0(const uint8_t *b)
{
    (void)b;
    return 0;
}
static size_t
hold_state(const uint8_t *b)
{
    return uv_at(b); /* after the id */
}
static size_t
hold_channel(const uint8_t *b)
{
    return uv_at(b) + 1;
}
static size_t
hold_id_low(const uint8_t *b)
{
    (void)b;
    return 0; /* used with a body whose id is rewritten as 0 below */
}
static size_t
order_state(const uint8_t *b)
{
    /* id, number, payload hash, hold id */
    size_t off = str_at(b);
    off += uv_at(b + off) + 8;
    return off + uv_at(b + off);
}
static size_t
order_line_state(const uint8_t *b)
{
    /* after state, rule, channel, flags: created, updated, [finished], [lat, lon], line count;
     * then the first line: sku and loc (or a reference), qty, done, returned, state */
    size_t off = order_state(b) + 3;
    uint8_t flags = b[off++];
    off += uv_at(b + off);
    off += uv_at(b + off);
    if (flags & 2) off += uv_at(b + off);
    if (flags & 8) {
        off += uv_at(b + off);
        off += uv_at(b + off);
    }
    off += uv_at(b + off);
    if (b[off] == 0xff) {
        off++;
        off += uv_at(b + off);
    } else {
        off += str_at(b + off);
        off += str_at(b + off);
    }
    for (int i = 0; i < 3; i++)
        off += uv_at(b + off);
    return off;
}
static size_t
key_op(const uint8_t *b)
{
    /* key, payload hash, created, result id, result value */
    size_t off = str_at(b) + 8;
    for (int i = 0; i < 3; i++)
        off += uv_at(b + off);
    return off;
}
static size_t
ledger_move(const uint8_t *b)
{
    size_t off = uv_at(b);
    off += str_at(b + off);
    off += str_at(b + off);
    return off;
}
static size_t
ledger_mask(const uint8_t *b)
{
    return ledger_move(b) + 2;
}
static size_t
stock_flags(const uint8_t *b)
{
    size_t off = str_at(b);
    off += str_at(b + off);
    uint8_t mask = b[off++];
    for (int i = 0; i < TRASTENDA_Q_COUNT_; i++)
        if (mask & (1u << i)) off += uv_at(b + off);
    return off;
}
static size_t
stock_on_hand_sign(const uint8_t *b)
{
    size_t off = str_at(b);
    off += str_at(b + off);
    cr_assert(b[off] & 1, "the record has an on_hand");
    return off + 1; /* the zigzag varint's low bit is the sign */
}
static size_t
location_lat_top(const uint8_t *b)
{
    size_t off = str_at(b);
    off += str_at(b + off);
    cr_assert_eq(uv_at(b + off), 4, "a latitude of 4 varint bytes");
    return off + 3; /* its top byte: 0x7f makes it about 133,000,000 */
}
static size_t
po_open(const uint8_t *b)
{
    return str_at(b);
}
static size_t
sku_id_len(const uint8_t *b)
{
    (void)b;
    return 0;
}

static const struct mutation MUTATIONS[] = {
    {"hold state 0", TRASTENDA_REC_HOLD, hold_state, 0},
    {"hold state 5", TRASTENDA_REC_HOLD, hold_state, 5},
    {"hold channel 33", TRASTENDA_REC_HOLD, hold_channel, 33},
    {"order state 0", TRASTENDA_REC_ORDER, order_state, 0},
    {"order state 9", TRASTENDA_REC_ORDER, order_state, 9},
    {"order line state 9", TRASTENDA_REC_ORDER, order_line_state, 9},
    {"key op 0", TRASTENDA_REC_KEY, key_op, 0},
    {"key op 27", TRASTENDA_REC_KEY, key_op, TRASTENDA_OP_COUNT_},
    {"ledger move 0", TRASTENDA_REC_LEDGER, ledger_move, 0},
    {"ledger move 18", TRASTENDA_REC_LEDGER, ledger_move, TRASTENDA_MOVE_PO_CLOSE + 1},
    {"ledger mask bit 7", TRASTENDA_REC_LEDGER, ledger_mask, 0x80},
    {"event kind 0", TRASTENDA_REC_EVENT, at0, 0},
    {"event kind 7", TRASTENDA_REC_EVENT, at0, 7},
    {"stock flags 8", TRASTENDA_REC_STOCK, stock_flags, 8},
    {"stock on_hand negative", TRASTENDA_REC_STOCK, stock_on_hand_sign, 0},
    {"location latitude out of range", TRASTENDA_REC_LOCATION, location_lat_top, 0x7f},
    {"channel index 32", TRASTENDA_REC_CHANNEL, at0, TRASTENDA_CHANNELS_MAX},
    {"po open 2", TRASTENDA_REC_PO, po_open, 2},
    {"sku id longer than the limit", TRASTENDA_REC_SKU, sku_id_len, TRASTENDA_ID_BYTES_MAX + 1},
    {"hold id 0", TRASTENDA_REC_HOLD, hold_id_low, 0},
};

/* A fresh engine at the entry before the first with a record of mu's type (*k its index), and a
 * copy of that entry with mu's bad value written in (malloc'd). */
static uint8_t *
mutated_entry(const struct mutation *mu, trastenda_engine **f, uint32_t *k)
{
    size_t off;
    uint32_t blen;
    find_any(mu->type, k, &off, &blen);
    *f = fresh();
    replay(*f, *k);
    uint8_t *p = copy_exact(S.e[*k].p, S.e[*k].len);
    size_t at = mu->field(p + off);
    cr_assert_lt(at, blen, "%s: field beyond the body", mu->what);
    if (mu->field == hold_id_low) { /* the id's varint, same length, value 0 */
        size_t n = uv_at(p + off);
        memset(p + off, 0x80, n - 1);
        p[off + n - 1] = 0;
    } else if (mu->field == stock_on_hand_sign)
        p[off + at] |= 1;
    else
        p[off + at] = mu->value;
    return p;
}

Test(engine_apply, bad_values_in_records_are_corrupt)
{
    scenario(STEP_COUNT);
    for (size_t m = 0; m < sizeof(MUTATIONS) / sizeof(MUTATIONS[0]); m++) {
        const struct mutation *mu = &MUTATIONS[m];
        trastenda_engine *f;
        uint32_t k;
        uint8_t *p = mutated_entry(mu, &f, &k);
        expect_corrupt(f, p, S.e[k].len, mu->what);
        free(p);
        cr_assert_eq(trastenda_engine_apply_entry(f, S.e[k].p, S.e[k].len), TRASTENDA_OK);
        trastenda_engine_destroy(f);
    }
}

/* Without its check pass (entries its process checked already), a record with a bad value still
 * ends the apply in E_CORRUPT rather than a wrong state; the engine may have applied the records
 * before the bad one, and is not used again. Ledger entries and events change no table: only the
 * check pass reads them. */
Test(engine_apply, bad_values_without_the_check_pass_are_corrupt_too)
{
    scenario(STEP_COUNT);
    for (size_t m = 0; m < sizeof(MUTATIONS) / sizeof(MUTATIONS[0]); m++) {
        const struct mutation *mu = &MUTATIONS[m];
        if (mu->type == TRASTENDA_REC_LEDGER || mu->type == TRASTENDA_REC_EVENT) continue;
        trastenda_engine *f;
        uint32_t k;
        uint8_t *p = mutated_entry(mu, &f, &k);
        cr_assert_eq(trastenda_engine_apply_entry_checked(f, p, S.e[k].len), TRASTENDA_E_CORRUPT,
                     "%s", mu->what);
        cr_assert_eq(trastenda_engine_seq(f), k, "%s: the entry's sequence was not taken",
                     mu->what);
        free(p);
        trastenda_engine_destroy(f);
    }
}

Test(engine_apply, an_unknown_record_type_is_corrupt)
{
    scenario(2);
    trastenda_engine *f = fresh();
    replay(f, 1);
    size_t len;
    uint8_t *p = padded(1, &len);
    uint8_t *orig = copy_exact(p, len);
    uint8_t bad[] = {0, TRASTENDA_REC_PO_REMOVED + 1, 0xff};
    size_t last = 0, off = TRASTENDA_LOG_HEADER_BYTES;
    while (off < len) { /* the last record: the others must not have been applied */
        last = off;
        off += PAD_HDR + get_len5(p + off + 1);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t keep = p[last];
        p[last] = bad[i];
        expect_corrupt(f, p, len, "record type");
        p[TRASTENDA_LOG_HEADER_BYTES] = bad[i];
        p[last] = keep;
        expect_corrupt(f, p, len, "first record type");
        memcpy(p, orig, len);
    }
    free(orig);
    free(p);
    trastenda_engine_destroy(f);
}

/* Entry k with one byte inserted at the end of a record body (its length and the header's
 * adjusted): every record type must refuse trailing bytes. */
Test(engine_apply, a_record_with_trailing_bytes_is_corrupt)
{
    scenario(STEP_COUNT);
    for (uint8_t type = TRASTENDA_REC_META; type <= TRASTENDA_REC_PO_REMOVED; type++) {
        uint32_t k;
        size_t off;
        uint32_t blen;
        find_any(type, &k, &off, &blen);
        size_t plen;
        uint8_t *q = padded(k, &plen);
        off = TRASTENDA_LOG_HEADER_BYTES;
        while (q[off] != type) /* the same record in the padded copy */
            off += PAD_HDR + get_len5(q + off + 1);
        blen = get_len5(q + off + 1);
        off += PAD_HDR;
        size_t len = plen + 1;
        uint8_t *p = malloc(len);
        cr_assert_not_null(p);
        memcpy(p, q, off + blen);
        p[off + blen] = 0;
        memcpy(p + off + blen + 1, q + off + blen, plen - off - blen);
        free(q);
        put_len5(p + off - 5, blen + 1);
        put_u32(p + HDR_BODY, (uint32_t)(len - TRASTENDA_LOG_HEADER_BYTES));
        trastenda_engine *f = fresh();
        replay(f, k);
        char what[64];
        snprintf(what, sizeof(what), "record type %u with a trailing byte", type);
        expect_corrupt(f, p, len, what);
        free(p);
        trastenda_engine_destroy(f);
    }
}

/* Offset of the first line of a HOLD body (docs/LOG.md); 0 when the hold has no line. */
static size_t
hold_first_line(const uint8_t *b)
{
    size_t off = uv_at(b) + 2; /* id, state, channel */
    uint8_t flags = b[off++];
    off += uv_at(b + off); /* created */
    off += uv_at(b + off); /* expires */
    if (flags & 2) off += uv_at(b + off);
    if (flags & 4) off += uv_at(b + off);
    if (flags & 8) {
        off += uv_at(b + off);
        off += uv_at(b + off);
    }
    bool none = b[off] == 0;
    off += uv_at(b + off);
    return none ? 0 : off;
}

/* Copies every page of the given tables from src (which tracks pages) into dst. */
static void
pages_copy(trastenda_engine *src, trastenda_engine *dst, const uint8_t *tables, int n)
{
    for (int i = 0; i < n; i++)
        for (uint32_t pg = trastenda_engine_page_next(src, tables[i], 0); pg != UINT32_MAX;
             pg = trastenda_engine_page_next(src, tables[i], pg + 1)) {
            const uint8_t *bytes;
            size_t len;
            cr_assert_eq(trastenda_engine_page_encode(src, tables[i], pg, &bytes, &len),
                         TRASTENDA_OK);
            if (len > 0)
                cr_assert_eq(trastenda_engine_load_page(dst, tables[i], bytes, len), TRASTENDA_OK);
        }
}

/* A line of a log entry may name the stock record of an earlier stock post-image of the same
 * entry by its ordinal; an ordinal with no such image is corrupt, and so is the reference form
 * anywhere but in a log entry (a page of the state). */
Test(engine_apply, a_line_names_only_an_earlier_stock_image_of_its_entry)
{
    scenario(STEP_COUNT);
    bool found = false;
    for (uint32_t k = 0; k < S.n && !found; k++) {
        trastenda_entry_header hdr;
        trastenda_entry_iter it;
        cr_assert_eq(trastenda_entry_open(S.e[k].p, S.e[k].len, &hdr, &it), TRASTENDA_OK);
        uint8_t type;
        const uint8_t *body;
        uint32_t blen, stocks = 0;
        while (!found && trastenda_entry_next(&it, &type, &body, &blen) == TRASTENDA_OK) {
            stocks += type == TRASTENDA_REC_STOCK;
            size_t line = type == TRASTENDA_REC_HOLD ? hold_first_line(body) : 0;
            if (line == 0 || body[line] != 0xff) continue;
            found = true;
            cr_assert_lt(body[line + 1], stocks, "it names an earlier image");
            cr_assert_lt(stocks, 127);
            size_t at = (size_t)(body - S.e[k].p) + line + 1;
            trastenda_engine *f = fresh();
            replay(f, k);
            uint8_t *p = copy_exact(S.e[k].p, S.e[k].len);
            uint8_t bad[] = {(uint8_t)stocks, 127};
            for (int i = 0; i < 2; i++) {
                p[at] = bad[i];
                expect_corrupt(f, p, S.e[k].len, "a reference past the stock images");
            }
            free(p);
            /* The state before the entry as pages, then the hold record alone in a hold page. */
            cr_assert_eq(trastenda_engine_pages_track(f), TRASTENDA_OK);
            trastenda_engine_pages_mark_all(f);
            trastenda_engine *g = fresh();
            const uint8_t cat[] = {TRASTENDA_REC_CHANNEL, TRASTENDA_REC_LOCATION, TRASTENDA_REC_SKU,
                                   TRASTENDA_REC_STOCK};
            pages_copy(f, g, cat, 4);
            uint8_t page[4 + 2 + 128];
            cr_assert_lt(blen, 128);
            page[0] = 1;
            page[1] = page[2] = page[3] = 0;
            page[4] = TRASTENDA_REC_HOLD;
            page[5] = (uint8_t)blen; /* < 128: a one-byte varint */
            memcpy(page + 6, body, blen);
            uint64_t d = trastenda_engine_digest(g);
            cr_assert_eq(trastenda_engine_load_page(g, TRASTENDA_REC_HOLD, page, 6 + blen),
                         TRASTENDA_E_CORRUPT, "a reference in a page");
            cr_assert_eq(trastenda_engine_digest(g), d);
            trastenda_engine_destroy(g);
            cr_assert_eq(trastenda_engine_apply_entry(f, S.e[k].p, S.e[k].len), TRASTENDA_OK);
            trastenda_engine_destroy(f);
        }
    }
    cr_assert(found, "the scenario has a hold whose line names a stock image");
}

/* ---- decoders ---- */

Test(engine_apply, ledger_and_event_bodies_truncated_at_any_length_are_corrupt)
{
    scenario(STEP_COUNT);
    uint32_t ledgers = 0, events = 0;
    for (uint32_t k = 0; k < S.n; k++) {
        trastenda_entry_header hdr;
        trastenda_entry_iter it;
        cr_assert_eq(trastenda_entry_open(S.e[k].p, S.e[k].len, &hdr, &it), TRASTENDA_OK);
        uint8_t type;
        const uint8_t *body;
        uint32_t blen;
        while (trastenda_entry_next(&it, &type, &body, &blen) == TRASTENDA_OK) {
            if (type != TRASTENDA_REC_LEDGER && type != TRASTENDA_REC_EVENT) continue;
            for (uint32_t len = 0; len <= blen + 1; len++) {
                uint8_t *c = malloc(len + 1u);
                cr_assert_not_null(c);
                memcpy(c, body, len <= blen ? len : blen);
                if (len > blen) c[blen] = 0;
                trastenda_err want = len == blen ? TRASTENDA_OK : TRASTENDA_E_CORRUPT;
                trastenda_err err;
                if (type == TRASTENDA_REC_LEDGER) {
                    trastenda_ledger_entry le;
                    err = trastenda_ledger_decode(c, len, &le);
                } else {
                    trastenda_event ev;
                    err = trastenda_event_decode(c, len, &ev);
                }
                free(c);
                cr_assert_eq(err, want, "type %u body %u of %u bytes: %s", type, len, blen,
                             trastenda_err_name(err));
            }
            ledgers += type == TRASTENDA_REC_LEDGER;
            events += type == TRASTENDA_REC_EVENT;
        }
    }
    cr_assert_gt(ledgers, 20);
    cr_assert_gt(events, 10);
}

Test(engine_apply, a_shortfall_event_decodes_with_its_holds_at_risk)
{
    scenario(10);
    trastenda_event ev;
    cr_assert_eq(h_event_find(TRASTENDA_EVENT_SHORTFALL, "hat", "lugo", &ev), 1);
    cr_assert_eq(ev.holds_at_risk, 1);
    cr_assert_eq(ev.holds_listed, 1);
    cr_assert_eq(ev.holds[0], 4);
    cr_assert_eq(ev.orders_at_risk, 0);
    cr_assert_lt(ev.available, 0);
}

/* ---- apply: batch-level errors ---- */

Test(engine_apply, time_going_backwards_is_refused)
{
    scenario(2);
    uint64_t d = trastenda_engine_digest(H.e);
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_RECEIVE, "tee", "madrid", 1);
    trastenda_result r;
    trastenda_batch_out out;
    cr_assert_eq(trastenda_engine_apply(H.e, H.now - 1, &c, 1, &r, &out), TRASTENDA_E_TIME);
    cr_assert_eq(trastenda_engine_digest(H.e), d);
    cr_assert_eq(trastenda_engine_seq(H.e), 2);
    cr_assert_eq(trastenda_engine_time_ms(H.e), H.now);
    cr_assert_eq(trastenda_engine_apply(H.e, H.now, &c, 1, &r, &out), TRASTENDA_OK,
                 "the same time is fine");
    cr_assert_eq(r.code, TRASTENDA_OK);
    cr_assert_eq(trastenda_engine_apply_entry(H.follower, out.entry, out.entry_len), TRASTENDA_OK);
    cr_assert_eq(trastenda_engine_apply_entry_checked(H.mat, out.entry, out.entry_len),
                 TRASTENDA_OK);
}

Test(engine_apply, a_batch_larger_than_the_limit_is_refused)
{
    scenario(1);
    uint32_t n = CFG.batch_cmds_max + 1;
    trastenda_cmd *c = calloc(n, sizeof(*c));
    trastenda_result *r = calloc(n, sizeof(*r));
    cr_assert(c != NULL && r != NULL);
    for (uint32_t i = 0; i < n; i++)
        c[i] = h_cmd(TRASTENDA_OP_NOOP);
    uint64_t d = trastenda_engine_digest(H.e);
    trastenda_batch_out out;
    cr_assert_eq(trastenda_engine_apply(H.e, H.now + 1, c, n, r, &out), TRASTENDA_E_BATCH_TOO_BIG);
    cr_assert_eq(trastenda_engine_digest(H.e), d);
    cr_assert_eq(trastenda_engine_seq(H.e), 1);
    h_apply_batch_at(H.now + 1, c, n - 1, r);
    cr_assert_eq(trastenda_engine_seq(H.e), 2);
    free(c);
    free(r);
}

Test(engine_apply, null_arguments_are_invalid)
{
    scenario(1);
    uint64_t d = trastenda_engine_digest(H.e);
    trastenda_cmd c = h_cmd(TRASTENDA_OP_NOOP);
    trastenda_result r;
    trastenda_batch_out out;
    int64_t t = H.now + 1;
    cr_assert_eq(trastenda_engine_apply(NULL, t, &c, 1, &r, &out), TRASTENDA_E_INVALID);
    cr_assert_eq(trastenda_engine_apply(H.e, t, NULL, 1, &r, &out), TRASTENDA_E_INVALID);
    cr_assert_eq(trastenda_engine_apply(H.e, t, &c, 1, NULL, &out), TRASTENDA_E_INVALID);
    cr_assert_eq(trastenda_engine_apply(H.e, t, &c, 1, &r, NULL), TRASTENDA_E_INVALID);
    cr_assert_eq(trastenda_engine_digest(H.e), d);
    cr_assert_eq(trastenda_engine_seq(H.e), 1);
    cr_assert_eq(trastenda_engine_apply_entry(NULL, S.e[0].p, S.e[0].len), TRASTENDA_E_INVALID);
    trastenda_engine *f = fresh();
    cr_assert_eq(trastenda_engine_apply_entry(f, NULL, S.e[0].len), TRASTENDA_E_INVALID);
    cr_assert_eq(trastenda_engine_apply_entry_checked(NULL, S.e[0].p, S.e[0].len),
                 TRASTENDA_E_INVALID);
    cr_assert_eq(trastenda_engine_apply_entry_checked(f, NULL, S.e[0].len), TRASTENDA_E_INVALID);
    cr_assert_eq(trastenda_engine_seq(f), 0);
    trastenda_entry_header hdr;
    trastenda_entry_iter it;
    cr_assert_eq(trastenda_entry_open(NULL, 40, &hdr, &it), TRASTENDA_E_INVALID);
    cr_assert_eq(trastenda_entry_open(S.e[0].p, S.e[0].len, NULL, &it), TRASTENDA_E_INVALID);
    cr_assert_eq(trastenda_entry_open(S.e[0].p, S.e[0].len, &hdr, NULL), TRASTENDA_E_INVALID);
    trastenda_engine_destroy(f);
    /* An empty batch needs no commands: it only advances time. */
    cr_assert_eq(trastenda_engine_apply(H.e, t, NULL, 0, NULL, &out), TRASTENDA_OK);
    cr_assert_eq(out.seq, 2);
    cr_assert_eq(trastenda_engine_apply_entry(H.follower, out.entry, out.entry_len), TRASTENDA_OK);
    cr_assert_eq(trastenda_engine_apply_entry_checked(H.mat, out.entry, out.entry_len),
                 TRASTENDA_OK);
}

Test(engine_apply, an_unknown_op_fails_alone)
{
    trastenda_cmd c[3] = {h_cmd(0), h_cmd(TRASTENDA_OP_COUNT_), h_cmd(TRASTENDA_OP_NOOP)};
    trastenda_result r[3];
    h_apply_batch_at(H.now, c, 3, r);
    cr_assert_eq(r[0].code, TRASTENDA_E_INVALID);
    cr_assert_eq(r[1].code, TRASTENDA_E_INVALID);
    cr_assert(strstr(r[1].message, "op") != NULL, "%s", r[1].message);
    cr_assert_eq(r[2].code, TRASTENDA_OK);
    cr_assert_eq(r[1].op, TRASTENDA_OP_COUNT_);
}

/* ---- the ledger: the audit trail ---- */

struct rebuilt {
    char sku[TRASTENDA_ID_BYTES_MAX + 1], loc[TRASTENDA_ID_BYTES_MAX + 1];
    int64_t q[TRASTENDA_Q_COUNT_];
};

static struct rebuilt *
rebuilt_find(struct rebuilt *rb, uint32_t *n, trastenda_str sku, trastenda_str loc)
{
    for (uint32_t i = 0; i < *n; i++)
        if (h_str_eq(sku, rb[i].sku) && h_str_eq(loc, rb[i].loc)) return &rb[i];
    cr_assert_lt(*n, 64);
    struct rebuilt *r = &rb[(*n)++];
    memset(r, 0, sizeof(*r));
    memcpy(r->sku, sku.ptr, sku.len);
    memcpy(r->loc, loc.ptr, loc.len);
    return r;
}

/* Folds the ledger entries of every scenario entry; checks the sequence is 1..N. */
static uint32_t
ledger_fold(struct rebuilt *rb, uint64_t *last_seq)
{
    uint32_t n = 0;
    uint64_t seq = 0;
    for (uint32_t k = 0; k < S.n; k++) {
        trastenda_entry_header hdr;
        trastenda_entry_iter it;
        cr_assert_eq(trastenda_entry_open(S.e[k].p, S.e[k].len, &hdr, &it), TRASTENDA_OK);
        uint8_t type;
        const uint8_t *body;
        uint32_t blen;
        while (trastenda_entry_next(&it, &type, &body, &blen) == TRASTENDA_OK) {
            if (type != TRASTENDA_REC_LEDGER) continue;
            trastenda_ledger_entry le;
            cr_assert_eq(trastenda_ledger_decode(body, blen, &le), TRASTENDA_OK);
            cr_assert_eq(le.seq, seq + 1, "entry %u: ledger seq %llu after %llu", k + 1,
                         (unsigned long long)le.seq, (unsigned long long)seq);
            seq = le.seq;
            struct rebuilt *r = rebuilt_find(rb, &n, le.sku, le.loc);
            for (int q = 0; q < TRASTENDA_Q_COUNT_; q++)
                r->q[q] += le.delta[q];
        }
    }
    *last_seq = seq;
    return n;
}

Test(engine_apply, the_ledger_is_gapless_across_batches)
{
    scenario(STEP_COUNT);
    struct rebuilt rb[64];
    uint64_t last = 0;
    (void)ledger_fold(rb, &last);
    cr_assert_gt(last, 30);
    trastenda_engine_stats st;
    trastenda_engine_stats_get(H.e, &st);
    cr_assert_eq(st.ledger_seq, last);
    trastenda_engine_stats_get(H.follower, &st);
    cr_assert_eq(st.ledger_seq, last, "the follower's counter came with the entries");
}

Test(engine_apply, replaying_the_ledger_from_zero_rebuilds_every_stock_record)
{
    scenario(STEP_COUNT);
    struct rebuilt rb[64];
    uint64_t last = 0;
    uint32_t n = ledger_fold(rb, &last);
    static const char *skus[] = {"tee", "cap", "hat"};
    static const char *locs[] = {"madrid", "lugo", "vigo"};
    uint32_t records = 0;
    for (int s = 0; s < 3; s++)
        for (int l = 0; l < 3; l++) {
            if (!h_stock_exists(skus[s], locs[l])) continue;
            records++;
            trastenda_stock st = h_stock(skus[s], locs[l]);
            int64_t want[TRASTENDA_Q_COUNT_] = {st.on_hand,    st.committed,    st.held,
                                                st.unsellable, st.safety_stock, st.incoming,
                                                st.in_transit};
            struct rebuilt *r = rebuilt_find(rb, &n, h_s(skus[s]), h_s(locs[l]));
            for (int q = 0; q < TRASTENDA_Q_COUNT_; q++)
                cr_assert_eq(r->q[q], want[q], "(%s, %s) quantity %d: ledger %lld, record %lld",
                             skus[s], locs[l], q, (long long)r->q[q], (long long)want[q]);
        }
    cr_assert_eq(n, records, "the ledger names only existing records");
    cr_assert_geq(records, 6);
}

/* ---- the follower answers queries as the leader does ---- */

static void
expect_same_hold(uint64_t id)
{
    trastenda_hold_view a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    trastenda_err ea = trastenda_engine_hold_get(H.e, id, &a);
    trastenda_err eb = trastenda_engine_hold_get(H.follower, id, &b);
    cr_assert_eq(ea, eb, "hold %llu", (unsigned long long)id);
    if (ea != TRASTENDA_OK) return;
    cr_assert_eq(a.id, b.id);
    cr_assert_eq(a.state, b.state);
    cr_assert_eq(a.created_ms, b.created_ms);
    cr_assert_eq(a.expires_ms, b.expires_ms);
    cr_assert_eq(a.resolved_ms, b.resolved_ms);
    cr_assert_eq(a.order_no, b.order_no);
    cr_assert_eq(a.line_count, b.line_count);
    for (uint32_t i = 0; i < a.line_count; i++) {
        cr_assert(h_str_eq(trastenda_engine_sku_id(H.follower, b.lines[i].sku_ix),
                           trastenda_engine_sku_id(H.e, a.lines[i].sku_ix).ptr));
        trastenda_str la = trastenda_engine_location_id(H.e, a.lines[i].loc_ix);
        trastenda_str lb = trastenda_engine_location_id(H.follower, b.lines[i].loc_ix);
        cr_assert(la.len == lb.len && memcmp(la.ptr, lb.ptr, la.len) == 0);
        cr_assert_eq(a.lines[i].qty, b.lines[i].qty);
    }
}

static void
expect_same_order(const char *id)
{
    static trastenda_order_view a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    trastenda_err ea = trastenda_engine_order_get(H.e, h_s(id), &a);
    trastenda_err eb = trastenda_engine_order_get(H.follower, h_s(id), &b);
    cr_assert_eq(ea, eb, "order %s", id);
    if (ea != TRASTENDA_OK) return;
    cr_assert_str_eq(a.id, b.id);
    cr_assert_eq(a.no, b.no);
    cr_assert_eq(a.state, b.state);
    cr_assert_eq(a.rule, b.rule);
    cr_assert_eq(a.channel, b.channel);
    cr_assert_eq(a.lat_e6, b.lat_e6);
    cr_assert_eq(a.lon_e6, b.lon_e6);
    cr_assert_eq(a.created_ms, b.created_ms);
    cr_assert_eq(a.updated_ms, b.updated_ms);
    cr_assert_eq(a.alloc_count, b.alloc_count);
    for (uint32_t i = 0; i < a.alloc_count; i++) {
        trastenda_str la = trastenda_engine_location_id(H.e, a.allocs[i].loc_ix);
        trastenda_str lb = trastenda_engine_location_id(H.follower, b.allocs[i].loc_ix);
        cr_assert(la.len == lb.len && memcmp(la.ptr, lb.ptr, la.len) == 0);
        cr_assert_eq(a.allocs[i].qty, b.allocs[i].qty);
        cr_assert_eq(a.allocs[i].shipped, b.allocs[i].shipped);
        cr_assert_eq(a.allocs[i].returned, b.allocs[i].returned);
        cr_assert_eq(a.allocs[i].state, b.allocs[i].state);
    }
}

/* Low-stock list as sorted "sku@loc on_hand/committed/held/available" lines. */
static int
cmp_line(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static uint32_t
low_list(const trastenda_engine *e, char (*out)[96], uint32_t max)
{
    trastenda_stock page[2];
    uint64_t cursor = 0, next = 0;
    uint32_t n = 0, count = 0, pages = 0;
    do {
        cr_assert_eq(trastenda_engine_low_stock(e, cursor, 2, page, &count, &next), TRASTENDA_OK);
        for (uint32_t i = 0; i < count; i++) {
            cr_assert_lt(n, max);
            trastenda_str s = trastenda_engine_sku_id(e, page[i].sku_ix);
            trastenda_str l = trastenda_engine_location_id(e, page[i].loc_ix);
            snprintf(out[n++], 96, "%.*s@%.*s %lld/%lld/%lld/%lld", (int)s.len, s.ptr, (int)l.len,
                     l.ptr, (long long)page[i].on_hand, (long long)page[i].committed,
                     (long long)page[i].held, (long long)page[i].available);
        }
        cursor = next;
        cr_assert_lt(pages++, 100);
    } while (next != 0);
    qsort(out, n, 96, cmp_line);
    return n;
}

static void
expect_same_answers(void)
{
    for (uint64_t id = 1; id <= 6; id++)
        expect_same_hold(id);
    const char *orders[] = {"H-1", "W-1", "W-2", "W-3", "nope"};
    for (size_t i = 0; i < sizeof(orders) / sizeof(orders[0]); i++)
        expect_same_order(orders[i]);
    static char la[32][96], lb[32][96];
    uint32_t na = low_list(H.e, la, 32), nb = low_list(H.follower, lb, 32);
    cr_assert_eq(na, nb);
    for (uint32_t i = 0; i < na; i++)
        cr_assert_str_eq(la[i], lb[i]);
    trastenda_po_view pa, pb;
    trastenda_err ea = trastenda_engine_po_get(H.e, h_s("po-1"), &pa);
    cr_assert_eq(trastenda_engine_po_get(H.follower, h_s("po-1"), &pb), ea);
    if (ea == TRASTENDA_OK) {
        cr_assert_eq(pa.open, pb.open);
        cr_assert_eq(pa.line_count, pb.line_count);
    }
    trastenda_engine_stats sa, sb;
    trastenda_engine_stats_get(H.e, &sa);
    trastenda_engine_stats_get(H.follower, &sb);
    cr_assert_eq(sa.locations, sb.locations);
    cr_assert_eq(sa.skus, sb.skus);
    cr_assert_eq(sa.stock, sb.stock);
    cr_assert_eq(sa.holds, sb.holds);
    cr_assert_eq(sa.holds_open, sb.holds_open);
    cr_assert_eq(sa.orders, sb.orders);
    cr_assert_eq(sa.pos, sb.pos);
    cr_assert_eq(sa.keys, sb.keys);
    cr_assert_eq(sa.lines, sb.lines);
    cr_assert_eq(sa.seq, sb.seq);
    cr_assert_eq(sa.time_ms, sb.time_ms);
}

Test(engine_apply, the_follower_answers_queries_as_the_leader_after_each_batch)
{
    for (uint32_t i = 0; i < STEP_COUNT; i++) {
        STEPS[i]();
        expect_same_answers();
    }
    trastenda_hold_view v;
    cr_assert_eq(trastenda_engine_hold_get(H.follower, 5, &v), TRASTENDA_OK);
    cr_assert_eq(v.state, TRASTENDA_HOLD_OPEN);
}

Test(engine_apply, a_promoted_follower_remembers_keys_and_order_ids)
{
    scenario(6);
    trastenda_line h1[2] = {h_line("tee", "madrid", 2), h_line("cap", "madrid", 1)};
    trastenda_cmd c[2] = {h_cmd_reserve(h1, 2, 60000), h_cmd(TRASTENDA_OP_ORDER_PLACE)};
    c[0].key = h_s("k1");
    trastenda_line w1 = h_line("tee", NULL, 4);
    c[1] = with_ship_to(h_cmd_order("W-1", &w1, 1, "web"));
    trastenda_result r[2];
    trastenda_batch_out out;
    cr_assert_eq(trastenda_engine_apply(H.follower, H.now + 1, c, 2, r, &out), TRASTENDA_OK);
    cr_assert_eq(r[0].code, TRASTENDA_OK, "%s", r[0].message);
    cr_assert_eq(r[0].duplicate, 1, "key k1 came with the log");
    cr_assert_eq(r[0].id, 1);
    cr_assert_eq(r[1].code, TRASTENDA_OK, "%s", r[1].message);
    cr_assert_eq(r[1].duplicate, 1, "order W-1 came with the log");
    cr_assert_eq(out.ledger_count, 0);
    /* The follower no longer matches the leader: keep the teardown from comparing them. */
    trastenda_engine_destroy(H.follower);
    H.follower = NULL;
}

/* A promoted follower must purge what the leader would purge, when the leader would. */
static void
expect_same_purges(int64_t at)
{
    h_both_noop_at(at);
    cr_assert_eq(trastenda_engine_digest(H.follower), trastenda_engine_digest(H.e),
                 "at +%lld ms the promoted follower purged otherwise",
                 (long long)(at - S.e[0].time_ms));
}

Test(engine_apply, a_promoted_follower_purges_finished_orders_when_the_leader_would)
{
    scenario(2);
    static trastenda_line a[1], b[1], ret[1];
    a[0] = h_line("tee", NULL, 2);
    b[0] = h_line("tee", NULL, 1);
    ret[0] = h_line("tee", "madrid", 1);
    trastenda_cmd place[2] = {with_ship_to(h_cmd_order("A", a, 1, "web")),
                              with_ship_to(h_cmd_order("B", b, 1, "web"))};
    batch(1000, place, 2, NULL);
    trastenda_cmd ship[3] = {h_cmd_order_step(TRASTENDA_OP_ORDER_SHIP, "A", NULL),
                             h_cmd_order_step(TRASTENDA_OP_ORDER_SHIP, "B", NULL),
                             h_cmd_order_step(TRASTENDA_OP_ORDER_DELIVER, "A", NULL)};
    batch(1000, ship, 3, NULL);
    int64_t a_done = H.now;
    trastenda_cmd deliver_b = h_cmd_order_step(TRASTENDA_OP_ORDER_DELIVER, "B", NULL);
    batch(1000, &deliver_b, 1, NULL);
    /* A partial return after delivery: A stays delivered, its window does not restart. */
    trastenda_cmd give_back = h_cmd_order_step(TRASTENDA_OP_ORDER_RETURN, "A", NULL);
    give_back.lines = ret;
    give_back.line_count = 1;
    batch(1000, &give_back, 1, NULL);
    trastenda_order_view v;
    cr_assert_eq(trastenda_engine_order_get(H.e, h_s("A"), &v), TRASTENDA_OK);
    cr_assert_eq(v.state, TRASTENDA_ORDER_DELIVERED);
    /* The follower is promoted: from here both take the same batches on their own. */
    expect_same_purges(a_done + CFG.order_retention_ms);
    cr_assert_eq(trastenda_engine_order_get(H.e, h_s("A"), &v), TRASTENDA_E_UNKNOWN_ORDER,
                 "A's window ended");
    cr_assert_eq(trastenda_engine_order_get(H.e, h_s("B"), &v), TRASTENDA_OK);
    expect_same_purges(a_done + CFG.order_retention_ms + 1000);
    cr_assert_eq(trastenda_engine_order_get(H.e, h_s("B"), &v), TRASTENDA_E_UNKNOWN_ORDER);
}

Test(engine_apply, commands_whose_results_no_longer_fit_the_batch_are_deferred)
{
    /* 16 SKUs x 4 locations: a reserve of 64 lines takes 64 placements of results (and 64 of
     * shortage scratch); the batch's result space runs out after a few of them. */
    static const char *const locs[] = {"l0", "l1", "l2", "l3"};
    static char skus[16][8];
    for (uint32_t l = 0; l < 4; l++)
        (void)h_add_location(locs[l]);
    for (uint32_t s = 0; s < 16; s++) {
        snprintf(skus[s], 8, "s%u", s);
        (void)h_add_sku(skus[s], 0);
        for (uint32_t l = 0; l < 4; l++)
            h_receive(skus[s], locs[l], 100);
    }
    static trastenda_line ln[64];
    for (uint32_t i = 0; i < 64; i++)
        ln[i] = h_line(skus[i / 4], locs[i % 4], 1);
    trastenda_cmd c[12];
    trastenda_result r[12];
    for (int i = 0; i < 12; i++)
        c[i] = h_cmd_reserve(ln, 64, 60000);
    h_apply_batch_at(H.now + 1, c, 12, r);
    uint32_t ok = 0, deferred = 0;
    for (int i = 0; i < 12; i++) {
        if (r[i].code == TRASTENDA_OK) {
            cr_assert_eq(deferred, 0, "command %d ran after one was deferred", i);
            cr_assert_eq(r[i].alloc_count, 64);
            ok++;
        } else {
            cr_assert_eq(r[i].code, TRASTENDA_E_BATCH_TOO_BIG, "command %d: %s", i, r[i].message);
            deferred++;
        }
    }
    cr_assert_gt(ok, 0);
    cr_assert_gt(deferred, 0, "12 reserves of 64 lines must not all fit one small batch");
    cr_assert_eq(h_stock("s0", "l0").held, ok, "deferred commands changed nothing");
    trastenda_engine_stats st;
    trastenda_engine_stats_get(H.e, &st);
    cr_assert_eq(st.holds, ok);
    h_apply_batch_at(H.now + 1, c, 1, r);
    cr_assert_eq(r[0].code, TRASTENDA_OK, "retried in the next batch: %s", r[0].message);
}
