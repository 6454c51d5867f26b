/*
 * net/metrics.h - the server's counters and histograms, and their Prometheus text exposition
 * (GET /metrics, docs/HTTP.md).
 *
 * Updated on the request path with relaxed atomic adds only (no lock, no allocation, no clock
 * beyond the one the caller already read); read without stopping anything, so a scrape may see
 * one counter a request ahead of another. Histograms keep per-bucket counts (made cumulative
 * when written), their count and their sum.
 */
#ifndef TRASTENDA_NET_METRICS_H
#define TRASTENDA_NET_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "mpjson.h"
#include "repl.h"
#include "trastenda/engine.h"
#include "trastenda/storage.h"

#define METRICS_KINDS                                                                              \
    43 /* 0: unknown op; 1..26 the engine's; 27..42 the others (metrics_kind_ix) */
#define METRICS_CODES    64 /* trastenda_err values (they stay below it) */
#define METRICS_BUCKETS  16 /* latency buckets, the last one +Inf */
#define METRICS_OPS_HIST 12 /* ops per request: 1, 2, 4, ... 1024, +Inf */

enum metrics_transport {
    MT_MSGPACK = 0,
    MT_HTTP = 1,
    MT_COUNT_
};

struct metrics_hist {
    uint64_t bucket[METRICS_BUCKETS]; /* not cumulative */
    uint64_t count, sum_ns;
};

struct metrics {
    uint64_t ops[METRICS_KINDS][METRICS_CODES];              /* results by op and code */
    uint64_t envelope_errors[MT_COUNT_][METRICS_CODES];      /* whole requests refused */
    uint64_t requests[MT_COUNT_];                            /* requests answered */
    uint64_t request_ops[METRICS_OPS_HIST], request_ops_sum; /* ops per request */
    struct metrics_hist latency[MT_COUNT_];                  /* receive -> reply encoded */
    struct metrics_hist durable;                             /* store submit -> durable ack */
    uint64_t http_status[600];                               /* HTTP responses by status */
};

/* The index of an op kind in metrics.ops. */
uint32_t metrics_kind_ix(uint32_t kind);

void metrics_op(struct metrics *m, uint32_t kind, trastenda_err code);
void metrics_envelope_error(struct metrics *m, enum metrics_transport t, trastenda_err code);
void metrics_request(struct metrics *m, enum metrics_transport t, uint32_t n_ops, int64_t ns);
void metrics_observe(struct metrics_hist *h, int64_t ns);
void metrics_http_status(struct metrics *m, uint16_t status);

/* What a scrape reports besides the counters: read by the caller (the engine's stats on the
 * engine thread). */
struct metrics_view {
    bool ready;
    bool have_store; /* false while recovering: no store or engine figures */
    trastenda_store_stats st;
    trastenda_engine_stats es;
    const trastenda_engine_config *caps;
    uint64_t epoch;
    bool follower;
    double uptime_s;
    uint64_t connections, refused_connections, events_published, http_busy;
    uint32_t http_in_flight, msgpack_in_flight;
    struct repl_view repl; /* with the store */
};

/* Writes the exposition (Prometheus text format 0.0.4) into out. */
void metrics_write(const struct metrics *m, const struct metrics_view *v, struct mpjson_buf *out);

#endif /* TRASTENDA_NET_METRICS_H */
