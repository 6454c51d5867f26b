/*
 * bench/report.c - trastenda-bench's report: the callers' histograms and counters summed after
 * the run (harness.h design note 3), printed as text or as one JSON object (--json) that
 * bench/plot and bench/compare read.
 */
#include "harness.h"

#include <string.h>

struct totals {
    struct hist all;
    struct hist kind[BENCH_KINDS_MAX];
    uint64_t calls, ops, kind_calls[BENCH_KINDS_MAX], kind_ops[BENCH_KINDS_MAX];
    uint64_t codes[BENCH_CODES];
};

static void
totals_sum(const struct bench *b, struct totals *t)
{
    memset(t, 0, sizeof(*t));
    for (uint32_t i = 0; i < b->o.callers; i++) {
        const struct caller *c = &b->callers[i];
        hist_merge(&t->all, &c->all);
        t->calls += c->calls;
        t->ops += c->ops;
        for (uint32_t k = 0; k < BENCH_KINDS_MAX; k++) {
            hist_merge(&t->kind[k], &c->kind[k]);
            t->kind_calls[k] += c->kind_calls[k];
            t->kind_ops[k] += c->kind_ops[k];
        }
        for (uint32_t k = 0; k < BENCH_CODES; k++)
            t->codes[k] += c->codes[k];
    }
    BENCH_ASSERT(t->all.count == t->calls);
}

void
bench_quantiles_us(const struct hist *h, double out[5])
{
    const double q[4] = {0.50, 0.90, 0.99, 0.999};
    for (int i = 0; i < 4; i++)
        out[i] = hist_quantile(h, q[i]) / 1e3;
    out[4] = (double)h->max / 1e3;
}

double
bench_elapsed_s(const struct bench *b)
{
    BENCH_ASSERT(b->t1_ns >= b->t0_ns);
    double s = (double)(b->t1_ns - b->t0_ns) / 1e9;
    return s > 0 ? s : 1e-9;
}

/* The ops the measured server answered: those of the workload's server_kinds, else all. */
static uint64_t
server_ops(const struct bench *b, const struct totals *t)
{
    if (b->wl->server_kinds == 0) return t->ops;
    uint64_t n = 0;
    for (uint32_t k = 0; k < BENCH_KINDS_MAX; k++)
        if (b->wl->server_kinds & (1u << k)) n += t->kind_ops[k];
    return n;
}

/* CPU microseconds per op, and cores busy; false when it could not be measured. */
static bool
cpu_figures(int64_t cpu0, int64_t cpu1, uint64_t ops, double el, double *us_op, double *cores)
{
    if (cpu0 < 0 || cpu1 < cpu0 || ops == 0) return false;
    *us_op = (double)(cpu1 - cpu0) / 1e3 / (double)ops;
    *cores = (double)(cpu1 - cpu0) / 1e9 / el;
    return true;
}

static bool
code_expected(const struct bench *b, uint32_t code)
{
    return code < 64 && (b->wl->expected_codes & (1ull << code)) != 0;
}

static const char *
code_name(uint32_t code)
{
    return code == BENCH_CODES - 1 ? "other" : trastenda_err_name((trastenda_err)code);
}

/* ---- text ---- */

static void
text_header(const struct bench *b, FILE *f)
{
    char cpu[256];
    cpu_model(cpu, sizeof(cpu));
    fprintf(f, "trastenda-bench %s: server %s, trastenda %s (%s build), durability %s, %s\n",
            b->wl->name, b->o.addr, b->server_version, b->server_build, b->durability,
            b->server_pid_note);
    fprintf(f, "bench: %s build; machine: %ld cores, %s\n", build_type(), cpu_cores(), cpu);
    if (b->o.client_per_caller)
        fprintf(f, "%u callers, one client each", b->o.callers);
    else
        fprintf(f, "%u callers sharing one client (automatic batching)", b->o.callers);
    if (b->o.caller_threads == 0)
        fprintf(f, ", a thread each");
    else
        fprintf(f, ", as coroutines on %u thread%s", b->o.caller_threads,
                b->o.caller_threads == 1 ? "" : "s");
    fprintf(f, ", %u requests in flight per client", b->o.in_flight);
    if (b->o.hold_ms > 0) fprintf(f, " (small batches held up to %u ms)", b->o.hold_ms);
    fprintf(f, ", B = %u op%s per call; run %s\n", b->o.batch, b->o.batch == 1 ? "" : "s",
            b->run_id);
}

static void
text_row(FILE *f, const char *name, const struct hist *h, uint64_t calls, double el)
{
    double q[5];
    bench_quantiles_us(h, q);
    char a[40], r[40];
    fprintf(f, "%-10s %12s %11s %9.1f %9.1f %9.1f %9.1f %9.1f\n", name, num(a, (double)calls),
            num(r, (double)calls / el), q[0], q[1], q[2], q[3], q[4]);
}

static void
text_codes(const struct bench *b, const struct totals *t, FILE *f, bool expected)
{
    char a[40];
    bool any = false;
    for (uint32_t k = 1; k < BENCH_CODES; k++) {
        if (t->codes[k] == 0 || code_expected(b, k) != expected) continue;
        fprintf(f, "%s  %s %s (first: %s)", any ? "\n" : "", code_name(k),
                num(a, (double)t->codes[k]), bench_first_message(k));
        any = true;
    }
    if (any) fprintf(f, "\n");
    if (!any && !expected) fprintf(f, "  none\n");
}

static void
text_report(const struct bench *b, const struct totals *t, FILE *f)
{
    double el = bench_elapsed_s(b);
    text_header(b, f);
    if (b->wl->runs_to_end)
        fprintf(f, "measured %.2f s, from the first call to the last\n\n", el);
    else
        fprintf(f, "measured %.2f s after a %.1f s warm-up\n\n", el, b->o.warmup_s);
    fprintf(f, "%-10s %12s %11s %9s %9s %9s %9s %9s\n", "calls", "count", "per s", "p50 us",
            "p90 us", "p99 us", "p99.9 us", "max us");
    for (uint32_t k = 0; k < BENCH_KINDS_MAX && b->wl->kinds[k] != NULL; k++)
        if (t->kind_calls[k] > 0) text_row(f, b->wl->kinds[k], &t->kind[k], t->kind_calls[k], el);
    text_row(f, "all", &t->all, t->calls, el);
    char a[40], r[40];
    fprintf(f, "\noperations: %s in %.2f s = %s ops/s\n", num(a, (double)t->ops), el,
            num(r, (double)t->ops / el));
    fprintf(f, "errors:\n");
    text_codes(b, t, f, false);
    if (b->wl->expected_codes != 0) {
        fprintf(f, "outcomes (not errors):\n");
        text_codes(b, t, f, true);
    }
    double us, cores;
    if (cpu_figures(b->server_cpu0, b->server_cpu1, server_ops(b, t), el, &us, &cores))
        fprintf(f, "server CPU: %.2f us/op (%.2f cores busy)%s\n", us, cores,
                b->wl->server_kinds != 0 ? ", the leader's, per op it answered" : "");
    else
        fprintf(f, "server CPU: not measured (%s)\n", b->server_pid_note);
    if (cpu_figures(b->self_cpu0, b->self_cpu1, t->ops, el, &us, &cores))
        fprintf(f, "bench CPU:  %.2f us/op (%.2f cores busy)\n", us, cores);
    if (b->wl->report_text != NULL) b->wl->report_text(b, f);
}

/* ---- JSON ---- */

static void
json_quantiles(FILE *f, const struct hist *h)
{
    double q[5];
    bench_quantiles_us(h, q);
    fprintf(f, "{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f}", q[0], q[1],
            q[2], q[3], q[4]);
}

/* The non-empty buckets as [low_us, high_us, count]. */
static void
json_histogram(FILE *f, const struct hist *h)
{
    fprintf(f, "[");
    bool first = true;
    for (uint32_t k = 0; k < HIST_BUCKETS; k++) {
        if (h->n[k] == 0) continue;
        double lo = (double)hist_bucket_low(k) / 1e3;
        double hi = (double)(hist_bucket_low(k) + hist_bucket_width(k)) / 1e3;
        fprintf(f, "%s[%.3f,%.3f,%llu]", first ? "" : ",", lo, hi, (unsigned long long)h->n[k]);
        first = false;
    }
    fprintf(f, "]");
}

static void
json_codes(const struct bench *b, const struct totals *t, FILE *f, bool expected)
{
    fprintf(f, "{");
    bool first = true;
    for (uint32_t k = 1; k < BENCH_CODES; k++) {
        if (t->codes[k] == 0 || code_expected(b, k) != expected) continue;
        fprintf(f, "%s\"%s\":{\"count\":%llu,\"first\":", first ? "" : ",", code_name(k),
                (unsigned long long)t->codes[k]);
        bench_json_print_str(f, bench_first_message(k));
        fprintf(f, "}");
        first = false;
    }
    fprintf(f, "}");
}

static void
json_cpu(FILE *f, const char *name, int64_t cpu0, int64_t cpu1, uint64_t ops, double el)
{
    double us, cores;
    if (cpu_figures(cpu0, cpu1, ops, el, &us, &cores))
        fprintf(f, ",\"%s\":{\"us_per_op\":%.3f,\"cores_busy\":%.3f}", name, us, cores);
    else
        fprintf(f, ",\"%s\":null", name);
}

static void
json_header(const struct bench *b, FILE *f)
{
    char cpu[256];
    cpu_model(cpu, sizeof(cpu));
    fprintf(f, "{\"bench\":\"trastenda-bench\",\"workload\":\"%s\",\"run\":\"%s\",", b->wl->name,
            b->run_id);
    fprintf(f, "\"server\":{\"addr\":");
    bench_json_print_str(f, b->o.addr);
    fprintf(f, ",\"version\":");
    bench_json_print_str(f, b->server_version);
    fprintf(f, ",\"build\":");
    bench_json_print_str(f, b->server_build);
    fprintf(f, ",\"durability\":");
    bench_json_print_str(f, b->durability);
    fprintf(f, ",\"pid\":%d},\"bench_build\":\"%s\",", b->server_pid, build_type());
    fprintf(f, "\"machine\":{\"cores\":%ld,\"cpu\":", cpu_cores());
    bench_json_print_str(f, cpu);
    fprintf(f,
            "},\"config\":{\"callers\":%u,\"caller_threads\":%u,\"batch\":%u,\"shared_client\":%s,"
            "\"in_flight\":%u,\"hold_ms\":%u,"
            "\"client_batch_max\":%u,\"duration_s\":%.3f,\"warmup_s\":%.3f,\"ops\":%llu,"
            "\"seed\":%llu},",
            b->o.callers, b->o.caller_threads, b->o.batch,
            b->o.client_per_caller ? "false" : "true", b->o.in_flight, b->o.hold_ms,
            b->o.client_batch_max, b->o.duration_s, b->wl->runs_to_end ? 0.0 : b->o.warmup_s,
            (unsigned long long)b->o.ops, (unsigned long long)b->o.seed);
}

static void
json_report(const struct bench *b, const struct totals *t, FILE *f)
{
    double el = bench_elapsed_s(b);
    json_header(b, f);
    fprintf(f,
            "\"elapsed_s\":%.6f,\"calls\":%llu,\"ops\":%llu,\"calls_per_s\":%.1f,"
            "\"ops_per_s\":%.1f,\"latency_us\":",
            el, (unsigned long long)t->calls, (unsigned long long)t->ops, (double)t->calls / el,
            (double)t->ops / el);
    json_quantiles(f, &t->all);
    fprintf(f, ",\"kinds\":{");
    for (uint32_t k = 0; k < BENCH_KINDS_MAX && b->wl->kinds[k] != NULL; k++) {
        fprintf(f, "%s\"%s\":{\"calls\":%llu,\"calls_per_s\":%.1f,\"latency_us\":", k ? "," : "",
                b->wl->kinds[k], (unsigned long long)t->kind_calls[k],
                (double)t->kind_calls[k] / el);
        json_quantiles(f, &t->kind[k]);
        fprintf(f, ",\"histogram_us\":");
        json_histogram(f, &t->kind[k]);
        fprintf(f, "}");
    }
    fprintf(f, "},\"errors\":");
    json_codes(b, t, f, false);
    fprintf(f, ",\"outcomes\":");
    json_codes(b, t, f, true);
    json_cpu(f, "server_cpu", b->server_cpu0, b->server_cpu1, server_ops(b, t), el);
    json_cpu(f, "bench_cpu", b->self_cpu0, b->self_cpu1, t->ops, el);
    fprintf(f, ",\"histogram_us\":");
    json_histogram(f, &t->all);
    if (b->wl->report_json != NULL) b->wl->report_json(b, f);
    fprintf(f, "}\n");
}

uint64_t
bench_report(const struct bench *b, FILE *f)
{
    static struct totals t; /* 80 KiB of histograms: not on the stack */
    totals_sum(b, &t);
    if (b->o.json)
        json_report(b, &t, f);
    else
        text_report(b, &t, f);
    fflush(f);
    return t.codes[TRASTENDA_OK];
}
