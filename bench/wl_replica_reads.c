/*
 * bench/wl_replica_reads.c - the replica-reads workload: stock checks on one or two followers
 * while the leader takes the flash sale's load, with the followers' lag beside the reads.
 *
 * Of the C callers, the first C - R are the flash sale's writers (wl_flash_sale.c drives them,
 * on --addr, the leader) and the last R (--readers) read: each call is B `stock` checks of the
 * sale's hot SKUs on one follower (readers take the followers in turn). The run ends when the
 * sale is sold out, and the flash sale's verification runs on the leader as in flash-sale.
 *
 * Design notes:
 * (1) Before the clock starts, every follower has to reach the leader's durable sequence (the
 *     sale's SKUs are on it), or the run stops: a read of a SKU the follower does not have yet
 *     would count as an error of the follower rather than lag.
 * (2) Lag in entries: one sampler thread per follower, every --sample-ms, asks the leader for
 *     its status, then the follower; each reply's envelope `seq` is that node's durable
 *     sequence. The sample is leader - follower (0 when the follower answered with more): the
 *     entries the leader had durable when the sample began that the follower still lacked
 *     when it answered - never more than the true lag.
 * (3) Lag in milliseconds: the same thread then writes (a `receive` of one unit of a probe SKU
 *     of its own, outside the sale) on the leader and, once the write's reply is in, reads that
 *     SKU on the follower with `min_seq` = the write's `seq`: the follower answers once it has
 *     the write durable. The time from the write's reply to the read's reply is the time the
 *     write took to be readable on the follower, plus one read's round trip.
 * (4) Samplers use clients of their own, so that their calls do not queue behind the callers'.
 *     Only samples taken while the clock runs count (harness.h design note 2).
 */
#include "harness.h"

#include <string.h>
#include <unistd.h>

enum {
    K_TAKE, /* the flash sale's kinds come first: its writers' calls use them */
    K_CONFIRM,
    K_READ
};

#define RR_FOLLOWERS_MAX 2

static struct {
    struct bench_strs followers;
    uint32_t readers, sample_ms;
    double catch_up_s;
} rr = {.readers = 10, .sample_ms = 10, .catch_up_s = 30};

static const struct bench_flag FLAGS[] = {
    {"follower", FLAG_STRS, &rr.followers, 1, RR_FOLLOWERS_MAX,
     "a follower's request address, read by the readers; once or twice (required)"},
    {"readers", FLAG_U32, &rr.readers, 1, BENCH_CALLERS_MAX - 1,
     "R of the C callers read on the followers; the others take the flash sale (10)"},
    {"sample-ms", FLAG_U32, &rr.sample_ms, 1, 10000,
     "period of each follower's lag samples: status of both nodes, a min_seq read (10)"},
    {"catch-up-s", FLAG_F64, &rr.catch_up_s, 0.1, 3600,
     "seconds the followers have to catch up with the setup before the clock (30)"},
    {0},
};

struct follower {
    const char *addr;
    trastenda_client *client; /* the readers' shared client */
    trastenda_client *probe;  /* the sampler's (design note 4) */
    pthread_t sampler;
    char probe_sku[32];
    struct hist lag_entries, lag_ns;
    uint64_t status_errors, probe_errors;
    char probe_error[TRASTENDA_MESSAGE_BYTES + 96]; /* the last failure */
};

static struct {
    struct bench *b; /* the run, for the samplers */
    struct follower f[RR_FOLLOWERS_MAX];
    uint32_t n, writers;
    trastenda_client *leader_probe; /* the samplers' client of the leader */
    atomic_uint writers_done;
    atomic_bool samplers_stop;
    bool samplers_started;
} rs;

struct reader {
    uint32_t follower;
    bool own_client; /* --client-per-caller: c->client is this reader's own */
    uint64_t reads_ok;
};

/* ---- flags ---- */

/* True when addr is a transport the client dials, followed by something to dial. */
static bool
addr_valid(const char *addr)
{
    static const char *const stream[] = {"tcp://", "tls+tcp://"};
    static const char *const path[] = {"ipc://", "inproc://"};
    for (size_t i = 0; i < sizeof(path) / sizeof(path[0]); i++)
        if (strncmp(addr, path[i], strlen(path[i])) == 0) return addr[strlen(path[i])] != '\0';
    for (size_t i = 0; i < sizeof(stream) / sizeof(stream[0]); i++) {
        size_t n = strlen(stream[i]);
        if (strncmp(addr, stream[i], n) != 0) continue;
        const char *colon = strrchr(addr + n, ':');
        if (colon == NULL || colon == addr + n) return false;
        char *end = NULL;
        unsigned long port = strtoul(colon + 1, &end, 10);
        return colon[1] >= '0' && colon[1] <= '9' && *end == '\0' && port >= 1 && port <= 65535;
    }
    return false;
}

static uint32_t
rr_ops_per_call(const struct bench *b)
{
    if (rr.followers.n == 0)
        bench_usage_error("replica-reads needs --follower ADDR: the request address of a "
                          "follower of --addr (once or twice)");
    for (uint32_t i = 0; i < rr.followers.n; i++) {
        const char *a = rr.followers.v[i];
        if (!addr_valid(a))
            bench_usage_error("--follower: '%s' is not an address (tcp://HOST:PORT, "
                              "tls+tcp://HOST:PORT, ipc://PATH or inproc://NAME)",
                              a);
        if (strcmp(a, b->o.addr) == 0)
            bench_usage_error("--follower: '%s' is --addr, the leader the sale writes to", a);
        if (i == 1 && strcmp(a, rr.followers.v[0]) == 0)
            bench_usage_error("--follower: '%s' is given twice", a);
    }
    if (rr.readers >= b->o.callers)
        bench_usage_error("--readers must be below --callers: the other callers take the flash "
                          "sale (got %u of %u)",
                          rr.readers, b->o.callers);
    rs.n = rr.followers.n;
    rs.writers = b->o.callers - rr.readers;
    flash_sale_writers_set(b, rs.writers);
    return flash_sale_ops_per_call(b);
}

/* ---- setup ---- */

/* A node's durable sequence (its status reply's envelope seq) and role; false on no answer. */
static bool
node_status(trastenda_client *c, uint64_t *seq, char *role, size_t role_cap)
{
    trastenda_reply r;
    bool ok = trastenda_status(c, &r) == TRASTENDA_OK && r.code == TRASTENDA_OK;
    if (ok) *seq = r.seq;
    if (ok && role != NULL) {
        char *j = trastenda_result_json(&r);
        if (j == NULL || !bench_json_str(j, "role", role, role_cap))
            snprintf(role, role_cap, "node with no role");
        free(j);
    }
    trastenda_reply_clear(&r);
    return ok;
}

/* The follower is one, and has the leader's durable sequence as of now (design note 1). */
static void
follower_catch_up(struct follower *f)
{
    char role[32];
    uint64_t leader = 0, seq = 0;
    if (!node_status(rs.leader_probe, &leader, NULL, 0)) die("the leader stopped answering");
    uint64_t deadline = now_ns() + (uint64_t)(rr.catch_up_s * 1e9);
    if (!node_status(f->probe, &seq, role, sizeof(role)))
        die("--follower %s: no answer to status", f->addr);
    if (strcmp(role, "follower") != 0)
        die("--follower %s: is a %s, not a follower (start it with --follow)", f->addr, role);
    while (seq < leader) {
        if (now_ns() > deadline)
            die("--follower %s: at sequence %llu, the leader at %llu after %.1f s (--catch-up-s)",
                f->addr, (unsigned long long)seq, (unsigned long long)leader, rr.catch_up_s);
        usleep(10000);
        if (!node_status(f->probe, &seq, NULL, 0))
            die("--follower %s: stopped answering status", f->addr);
    }
}

static void *sampler_main(void *arg);

static void
rr_setup(struct bench *b)
{
    flash_sale_setup(b);
    rs.b = b;
    rs.leader_probe = bench_client_open(b, b->o.addr);
    static trastenda_args a[RR_FOLLOWERS_MAX * 2];
    for (uint32_t i = 0; i < rs.n; i++) {
        struct follower *f = &rs.f[i];
        f->addr = rr.followers.v[i];
        snprintf(f->probe_sku, sizeof(f->probe_sku), "P%s-%u", b->run_id, i);
        trastenda_args_init(&a[2 * i], "sku.upsert");
        a[2 * i].sku = f->probe_sku;
        trastenda_args_init(&a[2 * i + 1], "receive");
        a[2 * i + 1].sku = f->probe_sku;
        a[2 * i + 1].loc = FLASH_SALE_LOCATION;
        a[2 * i + 1].qty = 1;
    }
    bench_call_ok(b, a, 2 * rs.n, "replica reads: the probe SKUs",
                  "the server needs a larger --skus-max");
    for (uint32_t i = 0; i < rs.n; i++) {
        rs.f[i].client = bench_client_open(b, rs.f[i].addr);
        rs.f[i].probe = bench_client_open(b, rs.f[i].addr);
        follower_catch_up(&rs.f[i]);
    }
    atomic_init(&rs.writers_done, 0);
    atomic_init(&rs.samplers_stop, false);
    for (uint32_t i = 0; i < rs.n; i++)
        if (pthread_create(&rs.f[i].sampler, NULL, sampler_main, &rs.f[i]) != 0)
            die("cannot start a sampler");
    rs.samplers_started = true;
}

/* ---- the samplers (design notes 2, 3) ---- */

static bool
clock_running(const struct bench *b)
{
    return atomic_load_explicit(&b->recording, memory_order_acquire) &&
           !atomic_load_explicit(&b->stop, memory_order_acquire);
}

/* Writes on the leader, then reads on the follower with the write's seq: nanoseconds from the
 * write's reply to the read's; false (counted) when either fails. */
static bool
probe(struct follower *f, uint64_t *ns)
{
    trastenda_args a;
    trastenda_reply w, r;
    trastenda_args_init(&a, "receive");
    a.sku = f->probe_sku;
    a.loc = FLASH_SALE_LOCATION;
    a.qty = 1;
    trastenda_err e = trastenda_call(rs.leader_probe, &a, &w);
    uint64_t written = now_ns();
    uint64_t seq = w.seq;
    bool ok = e == TRASTENDA_OK && w.code == TRASTENDA_OK && seq > 0;
    if (!ok)
        snprintf(f->probe_error, sizeof(f->probe_error), "receive on the leader: %s (%s)", w.msg,
                 trastenda_err_name(e != TRASTENDA_OK ? e : w.code));
    trastenda_reply_clear(&w);
    if (!ok) return false;
    trastenda_args_init(&a, "stock");
    a.sku = f->probe_sku;
    a.loc = FLASH_SALE_LOCATION;
    a.min_seq = seq;
    e = trastenda_call(f->probe, &a, &r);
    *ns = now_ns() - written;
    ok = e == TRASTENDA_OK && r.code == TRASTENDA_OK;
    if (!ok)
        snprintf(f->probe_error, sizeof(f->probe_error), "stock with min_seq %llu: %s (%s)",
                 (unsigned long long)seq, r.msg,
                 trastenda_err_name(e != TRASTENDA_OK ? e : r.code));
    trastenda_reply_clear(&r);
    return ok;
}

static void
sample(struct bench *b, struct follower *f)
{
    uint64_t leader = 0, seq = 0, ns = 0;
    bool ok =
        node_status(rs.leader_probe, &leader, NULL, 0) && node_status(f->probe, &seq, NULL, 0);
    bool counted = clock_running(b);
    if (!ok && counted) f->status_errors++;
    if (ok && counted) hist_add(&f->lag_entries, leader > seq ? leader - seq : 0);
    ok = probe(f, &ns);
    counted = counted && clock_running(b);
    if (!ok && counted) f->probe_errors++;
    if (ok && counted) hist_add(&f->lag_ns, ns);
}

static void *
sampler_main(void *arg)
{
    struct follower *f = arg;
    struct bench *b = rs.b;
    BENCH_ASSERT(b != NULL);
    while (!atomic_load_explicit(&rs.samplers_stop, memory_order_acquire)) {
        uint64_t next = now_ns() + (uint64_t)rr.sample_ms * 1000000u;
        sample(b, f);
        uint64_t now = now_ns();
        if (now < next) usleep((useconds_t)((next - now) / 1000));
    }
    return NULL;
}

/* ---- the callers ---- */

static void
rr_caller_init(struct bench *b, struct caller *c)
{
    if (c->id < rs.writers) {
        flash_sale_caller_init(b, c);
        return;
    }
    struct reader *s = xcalloc(1, sizeof(*s));
    s->follower = (c->id - rs.writers) % rs.n;
    s->own_client = b->o.client_per_caller;
    /* With --client-per-caller the harness opened one on the leader: this reader's is on its
     * follower instead (the harness closes it at the end, as any caller's own). */
    if (s->own_client) {
        trastenda_client_close(c->client);
        c->client = bench_client_open(b, rs.f[s->follower].addr);
    } else {
        c->client = rs.f[s->follower].client;
    }
    c->wl = s;
}

static bool
rr_step(struct bench *b, struct caller *c)
{
    if (c->id < rs.writers) {
        if (flash_sale_step(b, c)) return true;
        atomic_fetch_add_explicit(&rs.writers_done, 1, memory_order_release);
        return false;
    }
    /* The readers stop with the sale. */
    if (atomic_load_explicit(&rs.writers_done, memory_order_acquire) == rs.writers) return false;
    struct reader *s = c->wl;
    uint32_t skus = flash_sale_skus();
    for (uint32_t i = 0; i < b->o.batch; i++) {
        trastenda_args_init(&c->args[i], "stock");
        c->args[i].sku = flash_sale_sku(bench_rand_below(c, skus));
        c->args[i].loc = FLASH_SALE_LOCATION;
    }
    bench_call(c, 1u << K_READ, b->o.batch);
    if (c->recorded)
        for (uint32_t i = 0; i < b->o.batch; i++)
            s->reads_ok += c->replies[i].code == TRASTENDA_OK;
    bench_replies_clear(c, b->o.batch);
    return true;
}

static int
rr_finish(struct bench *b)
{
    BENCH_ASSERT(rs.samplers_started);
    atomic_store_explicit(&rs.samplers_stop, true, memory_order_release);
    for (uint32_t i = 0; i < rs.n; i++)
        pthread_join(rs.f[i].sampler, NULL);
    /* The harness closes every caller's client but the shared one: readers on a follower's
     * shared client give it back before it is closed here. */
    for (uint32_t i = rs.writers; i < b->o.callers; i++) {
        const struct reader *s = b->callers[i].wl;
        if (!s->own_client) b->callers[i].client = b->client;
    }
    for (uint32_t i = 0; i < rs.n; i++) {
        trastenda_client_close(rs.f[i].client);
        trastenda_client_close(rs.f[i].probe);
    }
    trastenda_client_close(rs.leader_probe);
    return flash_sale_finish(b);
}

/* ---- the report ---- */

static uint64_t
reads_of(const struct bench *b, uint32_t follower)
{
    uint64_t n = 0;
    for (uint32_t i = rs.writers; i < b->o.callers; i++) {
        const struct reader *s = b->callers[i].wl;
        if (s->follower == follower) n += s->reads_ok;
    }
    return n;
}

/* p50, p99, max of the lag samples in entries, and in milliseconds. */
static void
lag_figures(const struct follower *f, double entries[3], double ms[3])
{
    entries[0] = hist_quantile(&f->lag_entries, 0.50);
    entries[1] = hist_quantile(&f->lag_entries, 0.99);
    entries[2] = (double)f->lag_entries.max;
    ms[0] = hist_quantile(&f->lag_ns, 0.50) / 1e6;
    ms[1] = hist_quantile(&f->lag_ns, 0.99) / 1e6;
    ms[2] = (double)f->lag_ns.max / 1e6;
}

static void
rr_report_text(const struct bench *b, FILE *f)
{
    double el = bench_elapsed_s(b);
    char a[40], d[40];
    fprintf(f,
            "replica-reads: %u readers (stock of the sale's hot SKUs, B per call) on %u "
            "follower%s, %u flash-sale writers on the leader; lag sampled every %u ms\n",
            rr.readers, rs.n, rs.n == 1 ? "" : "s", rs.writers, rr.sample_ms);
    for (uint32_t i = 0; i < rs.n; i++) {
        const struct follower *fo = &rs.f[i];
        double e[3], ms[3];
        lag_figures(fo, e, ms);
        uint64_t reads = reads_of(b, i);
        fprintf(f, "  follower %s: %s reads/s (%s reads answered ok)\n", fo->addr,
                num(a, (double)reads / el), num(d, (double)reads));
        fprintf(f,
                "    lag, entries behind the leader's durable: p50 %.0f, p99 %.0f, max %.0f "
                "(%llu samples, %llu unanswered)\n",
                e[0], e[1], e[2], (unsigned long long)fo->lag_entries.count,
                (unsigned long long)fo->status_errors);
        fprintf(f,
                "    lag, ms from a write's reply to a min_seq read of it here: p50 %.2f, p99 "
                "%.2f, max %.2f (%llu probes, %llu failed%s%s)\n",
                ms[0], ms[1], ms[2], (unsigned long long)fo->lag_ns.count,
                (unsigned long long)fo->probe_errors, fo->probe_errors ? ": " : "",
                fo->probe_errors ? fo->probe_error : "");
    }
    flash_sale_report_text(b, f);
}

static void
rr_report_json(const struct bench *b, FILE *f)
{
    double el = bench_elapsed_s(b);
    uint64_t total = 0;
    for (uint32_t i = 0; i < rs.n; i++)
        total += reads_of(b, i);
    fprintf(f,
            ",\"replica_reads\":{\"readers\":%u,\"writers\":%u,\"sample_ms\":%u,\"reads\":%llu,"
            "\"reads_per_s\":%.1f,\"followers\":[",
            rr.readers, rs.writers, rr.sample_ms, (unsigned long long)total, (double)total / el);
    for (uint32_t i = 0; i < rs.n; i++) {
        const struct follower *fo = &rs.f[i];
        double e[3], ms[3];
        lag_figures(fo, e, ms);
        uint64_t reads = reads_of(b, i);
        fprintf(f, "%s{\"addr\":", i ? "," : "");
        bench_json_print_str(f, fo->addr);
        fprintf(f,
                ",\"follower_reads\":%llu,\"follower_reads_per_s\":%.1f,\"lag_entries\":{"
                "\"samples\":%llu,\"unanswered\":%llu,\"p50\":%.0f,\"p99\":%.0f,\"max\":%.0f},"
                "\"lag_ms\":{\"probes\":%llu,\"failed\":%llu,\"p50\":%.3f,\"p99\":%.3f,"
                "\"max\":%.3f,\"failure\":",
                (unsigned long long)reads, (double)reads / el,
                (unsigned long long)fo->lag_entries.count, (unsigned long long)fo->status_errors,
                e[0], e[1], e[2], (unsigned long long)fo->lag_ns.count,
                (unsigned long long)fo->probe_errors, ms[0], ms[1], ms[2]);
        bench_json_print_str(f, fo->probe_errors ? fo->probe_error : "");
        fprintf(f, "}}");
    }
    fprintf(f, "]}");
    flash_sale_report_json(b, f);
}

const struct workload wl_replica_reads = {
    .name = "replica-reads",
    .summary = "stock checks on 1-2 followers while the leader takes the flash sale; their lag",
    .flag_sets = {FLASH_SALE_FLAGS, FLAGS},
    .kinds = {"take", "confirm", "read"},
    .server_kinds = 1u << 0 | 1u << 1, /* the leader's CPU, over the sale's ops */
    .expected_codes = 1ull << TRASTENDA_E_SHORT,
    .runs_to_end = true,
    .ops_per_call = rr_ops_per_call,
    .setup = rr_setup,
    .caller_init = rr_caller_init,
    .step = rr_step,
    .finish = rr_finish,
    .report_text = rr_report_text,
    .report_json = rr_report_json,
};
