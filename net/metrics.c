/*
 * net/metrics.c - counters, histograms and the Prometheus exposition (net/metrics.h).
 *
 * Names follow Prometheus' conventions: the trastenda_ prefix, _total on counters, base units
 * (seconds, bytes) in the name, histograms as _bucket{le}/_sum/_count. Series with a label per
 * error code are written only once they are non-zero (every op's "OK" series always, so that
 * rates start from zero), which keeps a scrape to a few hundred lines.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"

#define ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define GET(p)    __atomic_load_n((p), __ATOMIC_RELAXED)

/* Upper bounds of the latency buckets, in ns (the last bucket is +Inf). */
static const int64_t bounds_ns[METRICS_BUCKETS - 1] = {
    25000,    50000,    100000,   250000,    500000,    1000000,   2500000,   5000000,
    10000000, 25000000, 50000000, 100000000, 250000000, 500000000, 1000000000};

uint32_t
metrics_kind_ix(uint32_t kind)
{
    if (proto_kind_is_write(kind)) return kind;
    if (kind >= PK_STOCK && kind <= PK_LAST) return TRASTENDA_OP_NOOP + 1 + kind - PK_STOCK;
    return 0;
}

_Static_assert(TRASTENDA_OP_NOOP + 1 + PK_LAST - PK_STOCK < METRICS_KINDS, "kinds fit");

static uint32_t
code_ix(trastenda_err code)
{
    return (uint32_t)code < METRICS_CODES ? (uint32_t)code : METRICS_CODES - 1;
}

void
metrics_op(struct metrics *m, uint32_t kind, trastenda_err code)
{
    ADD(&m->ops[metrics_kind_ix(kind)][code_ix(code)], 1);
}

void
metrics_envelope_error(struct metrics *m, enum metrics_transport t, trastenda_err code)
{
    ADD(&m->envelope_errors[t][code_ix(code)], 1);
}

void
metrics_observe(struct metrics_hist *h, int64_t ns)
{
    int b = 0;
    while (b < METRICS_BUCKETS - 1 && ns > bounds_ns[b]) /* bound: the buckets */
        b++;
    ADD(&h->bucket[b], 1);
    ADD(&h->count, 1);
    ADD(&h->sum_ns, (uint64_t)(ns > 0 ? ns : 0));
}

void
metrics_request(struct metrics *m, enum metrics_transport t, uint32_t n_ops, int64_t ns)
{
    ADD(&m->requests[t], 1);
    metrics_observe(&m->latency[t], ns);
    if (n_ops == 0) return; /* refused as a whole: no ops */
    int b = 0;
    while (b < METRICS_OPS_HIST - 1 && n_ops > (1u << b)) /* bound: the buckets */
        b++;
    ADD(&m->request_ops[b], 1);
    ADD(&m->request_ops_sum, n_ops);
}

void
metrics_http_status(struct metrics *m, uint16_t status)
{
    if (status < 600) ADD(&m->http_status[status], 1);
}

/* ---- the exposition ---- */

static void __attribute__((format(printf, 2, 3))) pf(struct mpjson_buf *out, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0) mpjson_write(out, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void
head(struct mpjson_buf *out, const char *name, const char *type, const char *help)
{
    pf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
gauge(struct mpjson_buf *out, const char *name, const char *help, double v)
{
    head(out, name, "gauge", help);
    pf(out, "%s %.17g\n", name, v);
}

static void
counter(struct mpjson_buf *out, const char *name, const char *help, uint64_t v)
{
    head(out, name, "counter", help);
    pf(out, "%s %llu\n", name, (unsigned long long)v);
}

static const char *
code_name(uint32_t c)
{
    const char *n = trastenda_err_name((trastenda_err)c);
    return strncmp(n, "TRASTENDA_", 10) == 0 ? n + 10 : n; /* "E_SHORT", "OK" */
}

/* A latency histogram's series (labels: "" or `transport="http",`). */
static void
hist_lines(struct mpjson_buf *out, const char *name, const char *labels,
           const struct metrics_hist *h)
{
    uint64_t cum = 0;
    for (int b = 0; b < METRICS_BUCKETS; b++) {
        cum += GET(&h->bucket[b]);
        if (b < METRICS_BUCKETS - 1)
            pf(out, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels, (double)bounds_ns[b] / 1e9,
               (unsigned long long)cum);
        else
            pf(out, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cum);
    }
    size_t ll = strlen(labels);
    char braces[128] = "";
    if (ll > 0) snprintf(braces, sizeof(braces), "{%.*s}", (int)(ll - 1), labels); /* no comma */
    pf(out, "%s_sum%s %.9f\n", name, braces, (double)GET(&h->sum_ns) / 1e9);
    pf(out, "%s_count%s %llu\n", name, braces, (unsigned long long)GET(&h->count));
}

/* A histogram of counts in power-of-two buckets: [i] counts values <= 2^i units, the last the
 * rest; bounds and sum are written in units of `unit` (1, or 1e-6 for microseconds as seconds). */
static void
pow2_hist(struct mpjson_buf *out, const char *name, const char *help, const uint64_t *b, int n,
          double unit, double sum)
{
    head(out, name, "histogram", help);
    uint64_t cum = 0;
    for (int i = 0; i < n; i++) {
        cum += b[i];
        if (i < n - 1)
            pf(out, "%s_bucket{le=\"%g\"} %llu\n", name, (double)(1u << i) * unit,
               (unsigned long long)cum);
        else
            pf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    }
    pf(out, "%s_sum %.17g\n%s_count %llu\n", name, sum, name, (unsigned long long)cum);
}

static void
write_ops(const struct metrics *m, struct mpjson_buf *out)
{
    head(out, "trastenda_ops_total", "counter",
         "Operations answered, by operation and result (OK or the error's name).");
    for (uint32_t k = 1; k < METRICS_KINDS; k++) {
        uint32_t kind = k <= TRASTENDA_OP_NOOP ? k : PK_STOCK + (k - TRASTENDA_OP_NOOP - 1);
        const char *op = proto_kind_name(kind);
        for (uint32_t c = 0; c < METRICS_CODES; c++) {
            uint64_t v = GET(&m->ops[k][c]);
            if (v != 0 || c == 0)
                pf(out, "trastenda_ops_total{op=\"%s\",result=\"%s\"} %llu\n", op, code_name(c),
                   (unsigned long long)v);
        }
    }
    for (uint32_t c = 0; c < METRICS_CODES; c++) /* ops whose name was not an operation */
        if (GET(&m->ops[0][c]) != 0)
            pf(out, "trastenda_ops_total{op=\"unknown\",result=\"%s\"} %llu\n", code_name(c),
               (unsigned long long)GET(&m->ops[0][c]));
}

static void
write_requests(const struct metrics *m, struct mpjson_buf *out)
{
    static const char *const tn[MT_COUNT_] = {"msgpack", "http"};
    head(out, "trastenda_requests_total", "counter", "Requests answered, by transport.");
    for (int t = 0; t < MT_COUNT_; t++)
        pf(out, "trastenda_requests_total{transport=\"%s\"} %llu\n", tn[t],
           (unsigned long long)GET(&m->requests[t]));
    head(out, "trastenda_request_errors_total", "counter",
         "Requests refused as a whole (envelope errors), by transport and error.");
    for (int t = 0; t < MT_COUNT_; t++)
        for (uint32_t c = 1; c < METRICS_CODES; c++)
            if (GET(&m->envelope_errors[t][c]) != 0)
                pf(out, "trastenda_request_errors_total{transport=\"%s\",result=\"%s\"} %llu\n",
                   tn[t], code_name(c), (unsigned long long)GET(&m->envelope_errors[t][c]));
    head(out, "trastenda_request_duration_seconds", "histogram",
         "From a request's arrival to its reply, by transport (writes include durability).");
    for (int t = 0; t < MT_COUNT_; t++) {
        char labels[64];
        snprintf(labels, sizeof(labels), "transport=\"%s\",", tn[t]);
        hist_lines(out, "trastenda_request_duration_seconds", labels, &m->latency[t]);
    }
    uint64_t ops_b[METRICS_OPS_HIST];
    for (int b = 0; b < METRICS_OPS_HIST; b++)
        ops_b[b] = GET(&m->request_ops[b]);
    pow2_hist(out, "trastenda_request_ops", "Operations per request (the client's batches).", ops_b,
              METRICS_OPS_HIST, 1, (double)GET(&m->request_ops_sum));
    head(out, "trastenda_durable_ack_seconds", "histogram",
         "From handing a request's writes to the store to their durable acknowledgement.");
    hist_lines(out, "trastenda_durable_ack_seconds", "", &m->durable);
    head(out, "trastenda_http_responses_total", "counter", "HTTP responses, by status code.");
    for (int c = 100; c < 600; c++)
        if (GET(&m->http_status[c]) != 0)
            pf(out, "trastenda_http_responses_total{code=\"%d\"} %llu\n", c,
               (unsigned long long)GET(&m->http_status[c]));
}

static void
table(struct mpjson_buf *out, const char *name, uint64_t n, uint64_t cap, bool entries)
{
    pf(out, "trastenda_table_%s{table=\"%s\"} %llu\n", entries ? "entries" : "capacity", name,
       (unsigned long long)(entries ? n : cap));
}

static void
write_tables(const struct metrics_view *v, struct mpjson_buf *out)
{
    const trastenda_engine_stats *e = &v->es;
    const trastenda_engine_config *c = v->caps;
    for (int pass = 0; pass < 2; pass++) {
        bool entries = pass == 0;
        head(out, entries ? "trastenda_table_entries" : "trastenda_table_capacity", "gauge",
             entries ? "Entries in each engine table." : "Capacity of each engine table.");
        table(out, "locations", e->locations, c->locations_max, entries);
        table(out, "skus", e->skus, c->skus_max, entries);
        table(out, "stock", e->stock, c->stock_max, entries);
        table(out, "holds", e->holds, c->holds_max, entries);
        table(out, "orders", e->orders, c->orders_max, entries);
        table(out, "pos", e->pos, c->pos_max, entries);
        table(out, "keys", e->keys, c->keys_max, entries);
        table(out, "lines", e->lines, c->lines_max, entries);
    }
    gauge(out, "trastenda_holds_open", "Holds not yet confirmed, released or expired.",
          e->holds_open);
    gauge(out, "trastenda_idempotency_keys", "Idempotency keys held (within their retention).",
          e->keys);
    gauge(out, "trastenda_engine_memory_bytes", "Memory preallocated by the engine's tables.",
          (double)e->memory_bytes);
}

static void
write_store(const struct metrics_view *v, struct mpjson_buf *out)
{
    const trastenda_store_stats *st = &v->st;
    head(out, "trastenda_log_sequence", "gauge",
         "Log sequences: last applied in memory, last durable, last materialized, oldest kept, "
         "oldest a follower still needs (0: none).");
    pf(out, "trastenda_log_sequence{stage=\"applied\"} %llu\n",
       (unsigned long long)st->applied_seq);
    pf(out, "trastenda_log_sequence{stage=\"durable\"} %llu\n",
       (unsigned long long)st->durable_seq);
    pf(out, "trastenda_log_sequence{stage=\"materialized\"} %llu\n",
       (unsigned long long)st->materialized_seq);
    pf(out, "trastenda_log_sequence{stage=\"first\"} %llu\n",
       (unsigned long long)st->log_first_seq);
    pf(out, "trastenda_log_sequence{stage=\"follower_keep\"} %llu\n",
       (unsigned long long)st->log_keep_seq);
    gauge(out, "trastenda_log_lag_entries", "Batches applied in memory but not yet durable.",
          (double)(st->applied_seq -
                   (st->durable_seq < st->applied_seq ? st->durable_seq : st->applied_seq)));
    gauge(out, "trastenda_materializer_lag_entries",
          "Durable log entries not yet folded into the materialized state.",
          (double)(st->durable_seq - (st->materialized_seq < st->durable_seq ? st->materialized_seq
                                                                             : st->durable_seq)));
    counter(out, "trastenda_log_written_bytes_total", "Bytes of log entries written.",
            st->log_bytes);
    counter(out, "trastenda_state_writes_total", "Materialized state writes.", st->state_writes);
    gauge(out, "trastenda_state_write_bytes", "The last materialized state write's size.",
          (double)st->state_write_bytes);
    gauge(out, "trastenda_queue_depth", "Requests waiting for the engine thread.", st->queue_depth);
    counter(out, "trastenda_queue_busy_total",
            "Requests refused because the engine queue was full (E_BUSY).", st->busy);
    pow2_hist(out, "trastenda_engine_batch_commands",
              "Commands per engine batch (one log entry, one fsync each).", st->batch_cmds_hist,
              TRASTENDA_BATCH_HIST_BUCKETS, 1, (double)st->commands);
    pow2_hist(
        out, "trastenda_log_write_seconds",
        "Log writes (one entry or a follower's entries: one put, and its fsync in fsync mode).",
        st->log_write_hist, TRASTENDA_WRITE_HIST_BUCKETS, 1e-6, (double)st->log_write_ns / 1e9);
    gauge(out, "trastenda_recovery_seconds", "Time the last start spent recovering.",
          st->recovery_ms / 1000.0);
    gauge(out, "trastenda_storage_failed", "1 once a storage failure stopped the store.",
          st->failed);
}

/* A label value as the text format wants it: backslash, quote and newline escaped. */
static void
label(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s != '\0' && o + 3 < cap; s++) { /* bound: cap */
        if (*s == '\\' || *s == '"' || *s == '\n') out[o++] = '\\';
        out[o++] = *s == '\n' ? 'n' : *s;
    }
    out[o] = '\0';
}

/* Replication: a follower's lag behind its leader; on the leader, each follower's. */
static void
write_repl(const struct repl_view *r, struct mpjson_buf *out)
{
    if (r->follower) {
        gauge(out, "trastenda_replication_connected", "1 while this follower reaches its leader.",
              r->connected);
        gauge(out, "trastenda_replication_lag_entries",
              "Log entries the leader has durable that this follower has not.", (double)r->lag_ops);
        return;
    }
    gauge(out, "trastenda_replication_followers", "Followers the leader heard from.", r->n);
    head(out, "trastenda_replication_follower_lag_entries", "gauge",
         "Log entries durable on the leader that a follower has not acknowledged, by follower.");
    char node[260];
    for (uint32_t i = 0; i < r->n; i++) {
        label(node, sizeof(node), r->fol[i].node);
        pf(out, "trastenda_replication_follower_lag_entries{follower=\"%s\"} %llu\n", node,
           (unsigned long long)r->fol[i].lag_ops);
    }
    head(out, "trastenda_replication_follower_lag_seconds", "gauge",
         "Age of the oldest entry a follower has not acknowledged, by follower.");
    for (uint32_t i = 0; i < r->n; i++) {
        if (r->fol[i].lag_ms < 0) continue; /* older than the lag clock remembers */
        label(node, sizeof(node), r->fol[i].node);
        pf(out, "trastenda_replication_follower_lag_seconds{follower=\"%s\"} %.3f\n", node,
           (double)r->fol[i].lag_ms / 1000.0);
    }
}

/* Resident set size from /proc/self/statm, 0 when unreadable. */
static double
rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f == NULL) return 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    return n == 2 ? (double)resident * (double)sysconf(_SC_PAGESIZE) : 0;
}

void
metrics_write(const struct metrics *m, const struct metrics_view *v, struct mpjson_buf *out)
{
    head(out, "trastenda_node_info", "gauge", "The node: its role and version.");
    pf(out, "trastenda_node_info{role=\"%s\",version=\"%s\"} 1\n",
       v->follower ? "follower" : "leader", TRASTENDA_VERSION_STRING);
    gauge(out, "trastenda_ready", "1 once recovery finished and the node serves requests.",
          v->ready);
    gauge(out, "trastenda_uptime_seconds", "Time since the server started.", v->uptime_s);
    gauge(out, "trastenda_process_resident_memory_bytes", "Resident memory of the process.",
          rss_bytes());
    gauge(out, "trastenda_connections", "Open msgpack connections.", (double)v->connections);
    counter(out, "trastenda_refused_connections_total",
            "msgpack connections closed on arrival (over max_connections).",
            v->refused_connections);
    head(out, "trastenda_in_flight_requests", "gauge", "Requests being served, by transport.");
    pf(out, "trastenda_in_flight_requests{transport=\"msgpack\"} %u\n", v->msgpack_in_flight);
    pf(out, "trastenda_in_flight_requests{transport=\"http\"} %u\n", v->http_in_flight);
    counter(out, "trastenda_http_busy_total",
            "HTTP requests refused because every HTTP context was busy (E_BUSY).", v->http_busy);
    counter(out, "trastenda_events_published_total", "Events sent on the PUB socket.",
            v->events_published);
    write_ops(m, out);
    write_requests(m, out);
    if (!v->have_store) return; /* recovering: no store yet */
    gauge(out, "trastenda_epoch", "The node's leader epoch.", (double)v->epoch);
    write_tables(v, out);
    write_store(v, out);
    write_repl(&v->repl, out);
}
