/*
 * bench/wl_flash_sale.c - the flash-sale workload: N hot SKUs with U units each, sold out by C
 * callers taking one unit at a time, then checked against the server's state.
 *
 * Every take has its own idempotency key: a one-line `order.place` whose order id is the key
 * (--mode order), or a `reserve` with the key followed by a `confirm` of the hold into an order
 * of the same id (--mode hold; the hold's TTL outlasts the run, so nothing expires back into
 * stock). A take answered busy, timed out or unreachable is sent again with the same key (the
 * server applies a key once) until it gets an answer or --give-up-s passes. `E_SHORT` means the
 * SKU is sold out: nothing is ever returned to stock here, so callers stop picking it. The sale
 * ends when every SKU is sold out and no take is pending.
 *
 * At the end, from the server's state, for every SKU: sold (committed + held) must equal U -
 * nothing oversold, nothing left - and equal the takes acknowledged to the callers; and every
 * acknowledged order is read back (unless --no-readback). PASS, or FAIL and exit code 1.
 */
#include "harness.h"

#include <string.h>

enum {
    K_TAKE,
    K_CONFIRM
};

static struct {
    uint32_t skus;
    uint64_t units, ttl_ms;
    const char *mode;
    double give_up_s;
    bool no_readback;
} fs = {100, 10000, 3600000, "order", 60, false};

const struct bench_flag FLASH_SALE_FLAGS[] = {
    {"skus", FLAG_U32, &fs.skus, 1, 100000, "hot SKUs (100)"},
    {"units", FLAG_U64, &fs.units, 1, TRASTENDA_QTY_MAX, "units of each SKU (10000)"},
    {"mode", FLAG_STR, &fs.mode, 0, 0,
     "order: one-line order.place; hold: reserve, then confirm the hold (order)"},
    {"ttl-ms", FLAG_U64, &fs.ttl_ms, 1000, TRASTENDA_TTL_MS_MAX,
     "TTL of the holds in hold mode: longer than the sale (3600000)"},
    {"give-up-s", FLAG_F64, &fs.give_up_s, 0.1, 3600,
     "seconds a take is retried with its key before it is given up (60)"},
    {"no-readback", FLAG_BOOL, &fs.no_readback, 0, 0,
     "do not read back every acknowledged order at the end"},
    {0},
};

enum intent_state {
    I_FREE,
    I_TAKE,
    I_CONFIRM
};

/* One unit a caller is taking: its key and where it stands. */
struct intent {
    enum intent_state state;
    uint32_t sku;
    uint64_t seq; /* the key is bench_id(.., 'f', caller, seq) */
    uint64_t hold;
    uint64_t first_ns; /* first sent: retried until --give-up-s after it */
    char key[TRASTENDA_ID_BYTES_MAX + 1];
};

struct ack {
    uint64_t seq;
    uint32_t sku;
};

struct fs_caller {
    struct intent *intents; /* B */
    uint32_t *op_intent;    /* which intent each op of the call is for */
    trastenda_cline *lines;
    uint64_t seq, retries, given_up;
    struct ack *acks;
    uint64_t n_acks, cap_acks;
};

/* The sale's shared state and the final check's findings. */
static struct {
    bool hold_mode;
    char (*skus)[32];
    atomic_uchar *sold_out;
    atomic_uint_fast64_t *acked;
    atomic_bool aborted;
    char abort_msg[TRASTENDA_MESSAGE_BYTES + 64];
    pthread_mutex_t abort_mu;
    uint32_t writers; /* callers 0..writers-1 take part (0 until setup: every caller) */
    /* the check */
    int64_t sold, acked_total, oversold, unsold, unacked, missing, on_hand_changed;
    uint64_t readback, readback_bad, retries, given_up;
    bool checked, pass;
} st = {.abort_mu = PTHREAD_MUTEX_INITIALIZER};

uint32_t
flash_sale_ops_per_call(const struct bench *b)
{
    if (strcmp(fs.mode, "order") != 0 && strcmp(fs.mode, "hold") != 0)
        bench_usage_error("--mode: must be order or hold (got '%s')", fs.mode);
    st.hold_mode = strcmp(fs.mode, "hold") == 0;
    return b->o.batch;
}

/* ---- setup: the location and the hot SKUs of this run ---- */

void
flash_sale_setup(struct bench *b)
{
    static const char *const channels[] = {BENCH_CHANNEL};
    static trastenda_args a[BENCH_OPS_MAX];
    trastenda_args_init(&a[0], "location.upsert");
    a[0].loc = FLASH_SALE_LOCATION;
    a[0].channels = channels;
    a[0].n_channels = 1;
    a[0].lat_e6 = 40416800;
    a[0].lon_e6 = -3703800;
    bench_call_ok(b, a, 1, "flash sale: the location", "");
    st.skus = xcalloc(fs.skus, sizeof(*st.skus));
    st.sold_out = xcalloc(fs.skus, sizeof(*st.sold_out));
    st.acked = xcalloc(fs.skus, sizeof(*st.acked));
    /* receive takes at most TRASTENDA_LINE_QTY_MAX units a command */
    uint32_t per = 1 + (uint32_t)((fs.units + TRASTENDA_LINE_QTY_MAX - 1) / TRASTENDA_LINE_QTY_MAX);
    BENCH_ASSERT(per <= BENCH_OPS_MAX);
    uint32_t n = 0;
    for (uint32_t k = 0; k < fs.skus; k++) {
        if (n + per > BENCH_OPS_MAX) {
            bench_call_ok(b, a, n, "flash sale: the SKUs", "the server needs a larger --skus-max");
            n = 0;
        }
        snprintf(st.skus[k], sizeof(st.skus[k]), "F%s-%05u", b->run_id, k);
        trastenda_args_init(&a[n], "sku.upsert");
        a[n++].sku = st.skus[k];
        for (uint64_t left = fs.units; left > 0;) {
            uint64_t q = left < TRASTENDA_LINE_QTY_MAX ? left : TRASTENDA_LINE_QTY_MAX;
            trastenda_args_init(&a[n], "receive");
            a[n].sku = st.skus[k];
            a[n].loc = FLASH_SALE_LOCATION;
            a[n++].qty = (int64_t)q;
            left -= q;
        }
    }
    bench_call_ok(b, a, n, "flash sale: the SKUs", "the server needs a larger --skus-max");
    atomic_init(&st.aborted, false);
    if (st.writers == 0) st.writers = b->o.callers;
}

void
flash_sale_writers_set(const struct bench *b, uint32_t writers)
{
    BENCH_ASSERT(writers >= 1 && writers <= b->o.callers);
    BENCH_ASSERT(st.skus == NULL); /* before setup */
    st.writers = writers;
}

const char *
flash_sale_sku(uint32_t index)
{
    BENCH_ASSERT(index < fs.skus);
    BENCH_ASSERT(st.skus != NULL);
    return st.skus[index];
}

uint32_t
flash_sale_skus(void)
{
    return fs.skus;
}

void
flash_sale_caller_init(struct bench *b, struct caller *c)
{
    struct fs_caller *s = xcalloc(1, sizeof(*s));
    s->intents = xcalloc(b->o.batch, sizeof(*s->intents));
    s->op_intent = xcalloc(b->o.batch, sizeof(*s->op_intent));
    s->lines = xcalloc(b->o.batch, sizeof(*s->lines));
    c->wl = s;
}

/* ---- the sale ---- */

/* A SKU not known to be sold out, from a random start; UINT32_MAX when all are. */
static uint32_t
sku_pick(struct caller *c)
{
    uint32_t start = bench_rand_below(c, fs.skus);
    for (uint32_t k = 0; k < fs.skus; k++) {
        uint32_t i = start + k < fs.skus ? start + k : start + k - fs.skus;
        if (!atomic_load_explicit(&st.sold_out[i], memory_order_relaxed)) return i;
    }
    return UINT32_MAX;
}

static void
sale_abort(const char *what, const trastenda_reply *r)
{
    pthread_mutex_lock(&st.abort_mu);
    if (!atomic_load(&st.aborted))
        snprintf(st.abort_msg, sizeof(st.abort_msg), "%s: %s (%s)", what, r->msg, r->name);
    atomic_store(&st.aborted, true);
    pthread_mutex_unlock(&st.abort_mu);
}

/* Builds the call's ops from the pending intents (new ones first take a SKU); returns how many. */
static uint32_t
ops_build(struct bench *b, struct caller *c, struct fs_caller *s)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < b->o.batch; i++) {
        struct intent *it = &s->intents[i];
        if (it->state == I_FREE) {
            uint32_t sku = sku_pick(c);
            if (sku == UINT32_MAX) continue;
            *it = (struct intent){.state = I_TAKE, .sku = sku, .seq = ++s->seq};
            bench_id(b, it->key, sizeof(it->key), 'f', c->id, it->seq);
        }
        if (it->first_ns == 0) it->first_ns = now_ns();
        trastenda_args *a = &c->args[n];
        if (it->state == I_CONFIRM) {
            trastenda_args_init(a, "confirm");
            a->hold = (int64_t)it->hold;
            a->order = it->key;
        } else if (st.hold_mode) {
            trastenda_args_init(a, "reserve");
            s->lines[n] = (trastenda_cline){st.skus[it->sku], FLASH_SALE_LOCATION, 1, 0};
            a->lines = &s->lines[n];
            a->n_lines = 1;
            a->ttl_ms = (int64_t)fs.ttl_ms;
            a->key = it->key;
        } else {
            trastenda_args_init(a, "order.place");
            s->lines[n] = (trastenda_cline){st.skus[it->sku], NULL, 1, 0};
            a->lines = &s->lines[n];
            a->n_lines = 1;
            a->order = it->key;
            a->channel = BENCH_CHANNEL;
            a->lat_e6 = 40416800;
            a->lon_e6 = -3703800;
        }
        s->op_intent[n++] = i;
    }
    BENCH_ASSERT(n <= b->o.batch);
    return n;
}

static void
ack(struct fs_caller *s, struct intent *it)
{
    atomic_fetch_add_explicit(&st.acked[it->sku], 1, memory_order_relaxed);
    if (s->n_acks == s->cap_acks) {
        s->cap_acks = s->cap_acks ? s->cap_acks * 2 : 1024;
        s->acks = realloc(s->acks, s->cap_acks * sizeof(*s->acks));
        if (s->acks == NULL) die("out of memory (acknowledged takes)");
    }
    s->acks[s->n_acks++] = (struct ack){it->seq, it->sku};
    it->state = I_FREE;
}

static bool
retryable(trastenda_err code)
{
    return code == TRASTENDA_E_BUSY || code == TRASTENDA_E_TIMEOUT || code == TRASTENDA_E_IO ||
           code == TRASTENDA_E_CONNECT || code == TRASTENDA_E_CLOSED ||
           code == TRASTENDA_E_NOT_LEADER;
}

/* One result: the intent moves on, is retried, or the sale stops on an unexpected answer.
 * Returns the milliseconds to wait before the next call (0: none). */
static int64_t
result_apply(struct fs_caller *s, struct intent *it, const trastenda_reply *r)
{
    if (r->code == TRASTENDA_OK) {
        if (it->state == I_TAKE && st.hold_mode) {
            it->state = I_CONFIRM;
            it->hold = r->hold;
        } else {
            ack(s, it);
        }
        return 0;
    }
    if (r->code == TRASTENDA_E_SHORT && it->state == I_TAKE) {
        atomic_store_explicit(&st.sold_out[it->sku], 1, memory_order_relaxed);
        it->state = I_FREE;
        return 0;
    }
    if (retryable(r->code)) {
        s->retries++;
        if ((double)(now_ns() - it->first_ns) / 1e9 <= fs.give_up_s)
            return r->code == TRASTENDA_E_BUSY && r->retry_ms > 0 ? r->retry_ms : 2;
        s->given_up++;
        it->state = I_FREE;
        return 0;
    }
    sale_abort(it->state == I_CONFIRM ? "confirm" : st.hold_mode ? "reserve" : "order.place", r);
    it->state = I_FREE;
    return 0;
}

bool
flash_sale_step(struct bench *b, struct caller *c)
{
    struct fs_caller *s = c->wl;
    if (atomic_load(&st.aborted)) return false;
    uint32_t n = ops_build(b, c, s);
    if (n == 0) return false; /* sold out, nothing pending */
    uint32_t kinds = 0;
    for (uint32_t i = 0; i < n; i++)
        kinds |= s->intents[s->op_intent[i]].state == I_CONFIRM ? 1u << K_CONFIRM : 1u << K_TAKE;
    bench_call(c, kinds, n);
    int64_t wait_ms = 0;
    for (uint32_t i = 0; i < n; i++) {
        int64_t w = result_apply(s, &s->intents[s->op_intent[i]], &c->replies[i]);
        if (w > wait_ms) wait_ms = w;
    }
    bench_replies_clear(c, n);
    if (wait_ms > 0) bench_pause_ms(c, (uint32_t)(wait_ms < 100 ? wait_ms : 100));
    return true;
}

/* ---- the check ---- */

/* Sold (committed + held) and on hand of every SKU, from `stock` reads; the per-SKU findings. */
static void
check_state(struct bench *b)
{
    static trastenda_args a[BENCH_OPS_MAX];
    static trastenda_reply r[BENCH_OPS_MAX];
    for (uint32_t first = 0; first < fs.skus; first += BENCH_OPS_MAX) {
        uint32_t n = fs.skus - first < BENCH_OPS_MAX ? fs.skus - first : BENCH_OPS_MAX;
        for (uint32_t i = 0; i < n; i++) {
            trastenda_args_init(&a[i], "stock");
            a[i].sku = st.skus[first + i];
            a[i].loc = FLASH_SALE_LOCATION;
        }
        trastenda_err e = trastenda_call_batch(b->client, a, n, r);
        for (uint32_t i = 0; i < n; i++) {
            if (e != TRASTENDA_OK || r[i].code != TRASTENDA_OK)
                die("flash sale check: stock %s: %s", st.skus[first + i], r[i].msg);
            char *j = trastenda_result_json(&r[i]);
            if (j == NULL) die("flash sale check: a stock reply does not parse");
            int64_t sold = bench_json_sum(j, "committed") + bench_json_sum(j, "held");
            int64_t on_hand = bench_json_sum(j, "on_hand");
            int64_t acked = (int64_t)atomic_load(&st.acked[first + i]);
            int64_t u = (int64_t)fs.units;
            st.sold += sold;
            st.acked_total += acked;
            st.oversold += sold > u ? sold - u : 0;
            st.unsold += sold < u ? u - sold : 0;
            st.unacked += sold > acked ? sold - acked : 0;
            st.missing += acked > sold ? acked - sold : 0;
            st.on_hand_changed += on_hand != u;
            free(j);
            trastenda_reply_clear(&r[i]);
        }
    }
}

/* Rounds of re-reading the orders a busy server did not answer (20 ms apart). */
#define READBACK_BUSY_ROUNDS 100

struct readback {
    struct bench *b;
    atomic_uint_fast64_t bad, done;
};

/* Reads back the acknowledged orders of one caller: each exists, with one unit of its SKU. */
static void
readback_caller(void *arg, uint64_t index)
{
    struct readback *rb = arg;
    const struct caller *c = &rb->b->callers[index];
    const struct fs_caller *s = c->wl;
    enum {
        CHUNK = 256
    };
    trastenda_args *a = xcalloc(CHUNK, sizeof(*a));
    trastenda_reply *r = xcalloc(CHUNK, sizeof(*r));
    char(*ids)[TRASTENDA_ID_BYTES_MAX + 1] = xcalloc(CHUNK, sizeof(*ids));
    for (uint64_t first = 0; first < s->n_acks; first += CHUNK) {
        uint32_t n = (uint32_t)(s->n_acks - first < CHUNK ? s->n_acks - first : CHUNK);
        for (uint32_t i = 0; i < n; i++) {
            bench_id(rb->b, ids[i], sizeof(ids[i]), 'f', c->id, s->acks[first + i].seq);
            trastenda_args_init(&a[i], "order");
            a[i].order = ids[i];
        }
        trastenda_call_batch(rb->b->client, a, n, r);
        /* A busy server asks to be asked again: those reads go again (not a missing order). */
        for (uint32_t round = 0; round < READBACK_BUSY_ROUNDS; round++) {
            trastenda_args again[CHUNK];
            uint32_t at[CHUNK], k = 0;
            for (uint32_t i = 0; i < n; i++)
                if (r[i].code == TRASTENDA_E_BUSY) {
                    trastenda_reply_clear(&r[i]);
                    again[k] = a[i];
                    at[k++] = i;
                }
            if (k == 0) break;
            usleep(20000);
            trastenda_reply *r2 = xcalloc(k, sizeof(*r2));
            trastenda_call_batch(rb->b->client, again, k, r2);
            for (uint32_t j = 0; j < k; j++)
                r[at[j]] = r2[j];
            free(r2);
        }
        uint64_t bad = 0;
        for (uint32_t i = 0; i < n; i++) {
            const char *want = st.skus[s->acks[first + i].sku];
            bool good = r[i].code == TRASTENDA_OK && r[i].n_allocs == 1 &&
                        r[i].allocs[0].qty == 1 && strcmp(r[i].allocs[0].sku, want) == 0;
            if (!good && bad++ == 0)
                fprintf(stderr, BENCH_NAME ": acknowledged order %s: %s (%s)\n", ids[i],
                        r[i].code == TRASTENDA_OK ? "not one unit of its SKU" : r[i].msg,
                        trastenda_err_name(r[i].code));
            trastenda_reply_clear(&r[i]);
        }
        atomic_fetch_add(&rb->bad, bad);
        atomic_fetch_add(&rb->done, n);
    }
    free(a);
    free(r);
    free(ids);
}

int
flash_sale_finish(struct bench *b)
{
    BENCH_ASSERT(st.writers >= 1 && st.writers <= b->o.callers);
    for (uint32_t i = 0; i < st.writers; i++) {
        const struct fs_caller *s = b->callers[i].wl;
        st.retries += s->retries;
        st.given_up += s->given_up;
    }
    check_state(b);
    if (!fs.no_readback) {
        struct readback rb = {.b = b};
        atomic_init(&rb.bad, 0);
        atomic_init(&rb.done, 0);
        bench_parallel(4, st.writers, readback_caller, &rb);
        st.readback = atomic_load(&rb.done);
        st.readback_bad = atomic_load(&rb.bad);
    }
    st.checked = true;
    st.pass = !atomic_load(&st.aborted) && !b->limit_reached && st.oversold == 0 &&
              st.unsold == 0 && st.unacked == 0 && st.missing == 0 && st.on_hand_changed == 0 &&
              st.readback_bad == 0;
    BENCH_ASSERT(!st.pass || st.sold == (int64_t)(fs.units * fs.skus));
    return st.pass ? 0 : 1;
}

void
flash_sale_report_text(const struct bench *b, FILE *f)
{
    char a[40], d[40], e[40], g[40], h[40], k[40];
    double el = bench_elapsed_s(b);
    fprintf(f, "flash-sale: %s SKUs x %s units = %s units, %s; retried with the same key\n",
            num(a, fs.skus), num(d, (double)fs.units), num(e, (double)fs.units * fs.skus),
            st.hold_mode ? "reserve then confirm (hold mode)"
                         : "one-line order.place (order mode)");
    fprintf(f, "  %s units acknowledged/s (%s in %.2f s); retries %s, takes given up %s\n",
            num(a, (double)st.acked_total / el), num(d, (double)st.acked_total), el,
            num(e, (double)st.retries), num(g, (double)st.given_up));
    fprintf(f,
            "  server state: sold %s (committed + held), acknowledged %s; oversold %s, unsold "
            "%s, sold but not acknowledged %s, acknowledged but not in the state %s\n",
            num(a, (double)st.sold), num(d, (double)st.acked_total), num(e, (double)st.oversold),
            num(g, (double)st.unsold), num(h, (double)st.unacked), num(k, (double)st.missing));
    if (!fs.no_readback)
        fprintf(f, "  read back %s acknowledged orders: %s missing or wrong\n",
                num(a, (double)st.readback), num(d, (double)st.readback_bad));
    if (st.on_hand_changed)
        fprintf(f, "  on hand changed at %lld SKUs\n", (long long)st.on_hand_changed);
    if (atomic_load(&st.aborted)) fprintf(f, "  stopped: %s\n", st.abort_msg);
    if (b->limit_reached) fprintf(f, "  not sold out within --duration-s %.0f\n", b->o.duration_s);
    fprintf(f, "%s\n", st.pass ? "PASS" : "FAIL");
}

void
flash_sale_report_json(const struct bench *b, FILE *f)
{
    double el = bench_elapsed_s(b);
    fprintf(f,
            ",\"flash_sale\":{\"mode\":\"%s\",\"skus\":%u,\"units\":%llu,\"stock\":%llu,"
            "\"sold\":%lld,\"acknowledged\":%lld,\"acknowledged_per_s\":%.1f,\"oversold\":%lld,"
            "\"unsold\":%lld,\"unacknowledged\":%lld,\"missing\":%lld,\"on_hand_changed\":%lld,"
            "\"readback\":%llu,\"readback_bad\":%llu,\"retries\":%llu,\"given_up\":%llu,"
            "\"sold_out\":%s,\"stopped\":",
            fs.mode, fs.skus, (unsigned long long)fs.units,
            (unsigned long long)(fs.units * fs.skus), (long long)st.sold, (long long)st.acked_total,
            (double)st.acked_total / el, (long long)st.oversold, (long long)st.unsold,
            (long long)st.unacked, (long long)st.missing, (long long)st.on_hand_changed,
            (unsigned long long)st.readback, (unsigned long long)st.readback_bad,
            (unsigned long long)st.retries, (unsigned long long)st.given_up,
            b->limit_reached ? "false" : "true");
    bench_json_print_str(f, atomic_load(&st.aborted) ? st.abort_msg : "");
    fprintf(f, ",\"pass\":%s}", st.pass ? "true" : "false");
}

const struct workload wl_flash_sale = {
    .name = "flash-sale",
    .summary = "hot SKUs sold out one unit at a time with idempotency keys, then verified",
    .flag_sets = {FLASH_SALE_FLAGS},
    .kinds = {"take", "confirm"},
    .expected_codes = 1ull << TRASTENDA_E_SHORT,
    .runs_to_end = true,
    .ops_per_call = flash_sale_ops_per_call,
    .setup = flash_sale_setup,
    .caller_init = flash_sale_caller_init,
    .step = flash_sale_step,
    .finish = flash_sale_finish,
    .report_text = flash_sale_report_text,
    .report_json = flash_sale_report_json,
};
