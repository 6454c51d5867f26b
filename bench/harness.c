/*
 * bench/harness.c - trastenda-bench: a load generator for a running Trastenda server, with the
 * users' workloads (bench/harness.h says how the harness and a workload share the work).
 *
 *   trastenda-bench WORKLOAD [--addr ADDR] [--callers C] [--batch B] [--duration-s S | --ops N]
 *                   [--json] [...]          (trastenda-bench WORKLOAD --help lists every flag)
 *
 * Drives the server over nng through the public client library (libtrastenda): C callers share
 * one client with automatic batching, as a checkout service would, or have one client each; each
 * call carries B ops and waits for its results before the next. The callers are coroutines on a
 * few threads making asynchronous calls (bench/coro.h; as redis-benchmark and pgbench multiplex
 * their connections), or with --caller-threads 0 one blocked thread each.
 */
#include "harness.h"

#include "coro.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const struct workload wl_checkout, wl_flash_sale, wl_order_intake, wl_replica_reads;

/* Every workload, in the order --help lists them. */
static const struct workload *const WORKLOADS[] = {&wl_checkout, &wl_flash_sale, &wl_order_intake,
                                                   &wl_replica_reads};
#define N_WORKLOADS (sizeof(WORKLOADS) / sizeof(WORKLOADS[0]))

static struct bench B = {
    .o =
        {
            .addr = "tcp://127.0.0.1:7878",
            .callers = 50,
            .batch = 1,
            .in_flight = 4,
            .client_batch_max = 1024,
            .timeout_ms = 5000,
            .retries = 3,
            .caller_threads = 1,
            .duration_s = -1, /* defaults resolved once the workload is known */
            .warmup_s = -1,
        },
};

static const struct bench_flag COMMON_FLAGS[] = {
    {"addr", FLAG_STR, &B.o.addr, 0, 0, "server address (tcp://127.0.0.1:7878)"},
    {"callers", FLAG_U32, &B.o.callers, 1, BENCH_CALLERS_MAX, "C: concurrent callers (50)"},
    {"batch", FLAG_U32, &B.o.batch, 1, BENCH_OPS_MAX, "B: operations per call (1)"},
    {"duration-s", FLAG_F64, &B.o.duration_s, 0.1, 86400,
     "seconds measured after the warm-up (10); for flash-sale, a limit (600)"},
    {"warmup-s", FLAG_F64, &B.o.warmup_s, 0, 3600,
     "seconds run before measuring (1; flash-sale has none)"},
    {"ops", FLAG_U64, &B.o.ops, 1, 1e15, "stop after N operations instead of the duration"},
    {"client-per-caller", FLAG_BOOL, &B.o.client_per_caller, 0, 0,
     "one client per caller (default: all callers share one, with automatic batching)"},
    {"caller-threads", FLAG_U32, &B.o.caller_threads, 0, 64,
     "threads the callers run on as coroutines with asynchronous calls; 0: one blocked thread "
     "per caller (1)"},
    {"in-flight", FLAG_U32, &B.o.in_flight, 1, 64, "requests in flight per client (4)"},
    {"client-hold-ms", FLAG_U32, &B.o.hold_ms, 0, 60000,
     "how long a small batch waits for a request in flight (trastenda_client_config.hold_ms; 0)"},
    {"client-batch-max", FLAG_U32, &B.o.client_batch_max, 1, BENCH_OPS_MAX,
     "operations a client coalesces into one request (1024)"},
    {"timeout-ms", FLAG_U32, &B.o.timeout_ms, 10, 600000, "per request (5000)"},
    {"retries", FLAG_U32, &B.o.retries, 0, 100,
     "the client's own retries of a keyed write after a timeout or busy (3)"},
    {"server-pid", FLAG_U32, &B.o.server_pid, 1, 4194304,
     "the server's process, for its CPU time (default: from its status, when local)"},
    {"seed", FLAG_U64, &B.o.seed, 0, 1e19, "random seed (default: from the clock)"},
    {"json", FLAG_BOOL, &B.o.json, 0, 0, "one JSON object on stdout instead of the text report"},
    {0},
};

/* ---- flags ---- */

static void
usage(FILE *f, const struct workload *only)
{
    if (only == NULL) {
        fprintf(f, "usage: trastenda-bench WORKLOAD [flags]   (trastenda-bench WORKLOAD --help)\n"
                   "\nworkloads:\n");
        for (size_t i = 0; i < N_WORKLOADS; i++)
            fprintf(f, "  %-14s %s\n", WORKLOADS[i]->name, WORKLOADS[i]->summary);
    } else {
        fprintf(f, "usage: trastenda-bench %s [flags]\n  %s\n", only->name, only->summary);
    }
    fprintf(f, "\nflags (defaults in parentheses):\n");
    for (const struct bench_flag *fl = COMMON_FLAGS; fl->name != NULL; fl++)
        fprintf(f, "  --%-20s %s\n", fl->name, fl->help);
    for (size_t w = 0; w < N_WORKLOADS; w++) {
        const struct workload *wl = WORKLOADS[w];
        if (only != NULL && wl != only) continue;
        fprintf(f, "\n%s flags:\n", wl->name);
        for (int s = 0; s < BENCH_FLAG_SETS_MAX && wl->flag_sets[s] != NULL; s++)
            for (const struct bench_flag *fl = wl->flag_sets[s]; fl->name != NULL; fl++)
                fprintf(f, "  --%-20s %s\n", fl->name, fl->help);
    }
}

static const struct bench_flag *
flag_find(const struct bench_flag *set, const char *name)
{
    for (const struct bench_flag *fl = set; fl != NULL && fl->name != NULL; fl++)
        if (strcmp(fl->name, name) == 0) return fl;
    return NULL;
}

/* The flag `name` of the common set or of wl's; NULL (after a message) when there is none. */
static const struct bench_flag *
flag_lookup(const struct workload *wl, const char *name)
{
    const struct bench_flag *fl = flag_find(COMMON_FLAGS, name);
    for (int s = 0; fl == NULL && s < BENCH_FLAG_SETS_MAX && wl->flag_sets[s] != NULL; s++)
        fl = flag_find(wl->flag_sets[s], name);
    if (fl != NULL) return fl;
    for (size_t w = 0; w < N_WORKLOADS; w++)
        for (int s = 0; s < BENCH_FLAG_SETS_MAX && WORKLOADS[w]->flag_sets[s] != NULL; s++)
            if (flag_find(WORKLOADS[w]->flag_sets[s], name) != NULL) {
                fprintf(stderr, BENCH_NAME ": --%s is a flag of %s, not of %s\n", name,
                        WORKLOADS[w]->name, wl->name);
                return NULL;
            }
    fprintf(stderr, BENCH_NAME ": unknown flag --%s (trastenda-bench %s --help lists them)\n", name,
            wl->name);
    return NULL;
}

/* Sets a flag from its text; false after a message naming the flag, its range and the value. */
static bool
flag_set(const struct bench_flag *fl, const char *val)
{
    char *end = NULL;
    errno = 0;
    if (fl->kind == FLAG_STR) {
        if (val[0] == '\0') {
            fprintf(stderr, BENCH_NAME ": --%s: must not be empty\n", fl->name);
            return false;
        }
        *(const char **)fl->dst = val;
        return true;
    }
    if (fl->kind == FLAG_STRS) {
        struct bench_strs *l = fl->dst;
        BENCH_ASSERT(fl->max >= 1 && fl->max <= BENCH_STRS_MAX);
        if (val[0] == '\0') {
            fprintf(stderr, BENCH_NAME ": --%s: must not be empty\n", fl->name);
            return false;
        }
        if (l->n >= (uint32_t)fl->max) {
            fprintf(stderr, BENCH_NAME ": --%s: at most %.0f times (got '%s' as one more)\n",
                    fl->name, fl->max, val);
            return false;
        }
        l->v[l->n++] = val;
        return true;
    }
    if (fl->kind == FLAG_F64) {
        double v = strtod(val, &end);
        if (errno == 0 && end != val && *end == '\0' && isfinite(v) && v >= fl->min &&
            v <= fl->max) {
            *(double *)fl->dst = v;
            return true;
        }
        fprintf(stderr, BENCH_NAME ": --%s: must be a number %g..%g (got '%s')\n", fl->name,
                fl->min, fl->max, val);
        return false;
    }
    unsigned long long v = strtoull(val, &end, 10);
    bool digits = val[0] >= '0' && val[0] <= '9';
    if (digits && errno == 0 && *end == '\0' && (double)v >= fl->min && (double)v <= fl->max) {
        if (fl->kind == FLAG_U32)
            *(uint32_t *)fl->dst = (uint32_t)v;
        else
            *(uint64_t *)fl->dst = v;
        return true;
    }
    fprintf(stderr, BENCH_NAME ": --%s: must be a whole number %.0f..%.0f (got '%s')\n", fl->name,
            fl->min, fl->max, val);
    return false;
}

void
bench_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, BENCH_NAME ": ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

/* Parses the flags after the workload's name; exits 0 after --help, 2 on a bad flag. */
static void
flags_parse(const struct workload *wl, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout, wl);
            exit(0);
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, BENCH_NAME ": expected a flag, got '%s'\n", a);
            exit(2);
        }
        const struct bench_flag *fl = flag_lookup(wl, a + 2);
        if (fl == NULL) exit(2);
        if (fl->kind == FLAG_BOOL) {
            *(bool *)fl->dst = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, BENCH_NAME ": --%s needs a value\n", fl->name);
            exit(2);
        }
        if (!flag_set(fl, argv[++i])) exit(2);
    }
}

/* ---- messages kept for the report ---- */

static pthread_mutex_t msg_mu = PTHREAD_MUTEX_INITIALIZER;
static char first_msg[BENCH_CODES][TRASTENDA_MESSAGE_BYTES];

void
bench_note_message(trastenda_err code, const char *msg)
{
    uint32_t k = (uint32_t)code < BENCH_CODES ? (uint32_t)code : BENCH_CODES - 1;
    pthread_mutex_lock(&msg_mu);
    if (first_msg[k][0] == '\0') snprintf(first_msg[k], sizeof(first_msg[k]), "%s", msg);
    pthread_mutex_unlock(&msg_mu);
}

const char *
bench_first_message(uint32_t code)
{
    BENCH_ASSERT(code < BENCH_CODES);
    return first_msg[code];
}

/* ---- calls ---- */

trastenda_err
bench_call(struct caller *c, uint32_t kinds, uint32_t n)
{
    struct bench *b = c->b;
    BENCH_ASSERT(n >= 1 && n <= b->ops_per_call);
    BENCH_ASSERT(kinds != 0 && kinds < (1u << BENCH_KINDS_MAX));
    uint64_t t0 = now_ns();
    trastenda_err e = co_inside() ? co_call(c->client, c->args, n, c->replies)
                      : n == 1    ? trastenda_call(c->client, &c->args[0], &c->replies[0])
                                  : trastenda_call_batch(c->client, c->args, n, c->replies);
    uint64_t ns = now_ns() - t0;
    /* The client refuses only arguments it cannot encode: our bug, and no result was written. */
    if (e == TRASTENDA_E_INVALID || e == TRASTENDA_E_NOMEM)
        die("the client refused a %s call: %s", c->args[0].op, trastenda_err_name(e));
    c->recorded = atomic_load_explicit(&b->recording, memory_order_acquire) &&
                  !atomic_load_explicit(&b->stop, memory_order_acquire);
    if (!c->recorded) return e; /* design note 2 */
    hist_add(&c->all, ns);
    c->calls++;
    c->ops += n;
    bool first = true; /* a call's ops count once, under its first kind */
    for (uint32_t k = 0; k < BENCH_KINDS_MAX; k++)
        if (kinds & (1u << k)) {
            hist_add(&c->kind[k], ns);
            c->kind_calls[k]++;
            if (first) c->kind_ops[k] += n;
            first = false;
        }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t code = (uint32_t)c->replies[i].code;
        if (code >= BENCH_CODES) code = BENCH_CODES - 1;
        if (c->codes[code]++ == 0 && code != TRASTENDA_OK)
            bench_note_message((trastenda_err)code, c->replies[i].msg);
    }
    atomic_fetch_add_explicit(&b->ops_recorded, n, memory_order_relaxed);
    return e;
}

void
bench_pause_ms(struct caller *c, uint32_t ms)
{
    (void)c;
    if (co_inside())
        co_sleep_ms(ms); /* the other callers of the thread go on */
    else
        usleep((useconds_t)ms * 1000);
}

void
bench_replies_clear(struct caller *c, uint32_t n)
{
    BENCH_ASSERT(n <= c->b->ops_per_call);
    for (uint32_t i = 0; i < n; i++)
        trastenda_reply_clear(&c->replies[i]);
}

uint32_t
bench_rand_below(struct caller *c, uint32_t n)
{
    BENCH_ASSERT(n > 0);
    /* PCG-style LCG step, the high bits mixed (splitmix64 finaliser). */
    c->rng = c->rng * 6364136223846793005ull + 1442695040888963407ull;
    uint64_t z = c->rng;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (uint32_t)((z >> 32) * n >> 32);
}

void
bench_id(const struct bench *b, char *out, size_t cap, char prefix, uint32_t caller, uint64_t seq)
{
    int n = snprintf(out, cap, "%c%s-%u-%llu", prefix, b->run_id, caller, (unsigned long long)seq);
    BENCH_ASSERT(n > 0 && (size_t)n < cap);
    BENCH_ASSERT((size_t)n <= TRASTENDA_ID_BYTES_MAX);
}

void
bench_call_ok(struct bench *b, const trastenda_args *args, uint32_t n, const char *what,
              const char *hint)
{
    BENCH_ASSERT(n >= 1 && n <= BENCH_OPS_MAX);
    /* Results of 19 KB each (their allocation entries): one array per thread, kept. */
    static __thread trastenda_reply *r;
    if (r == NULL) r = xcalloc(BENCH_OPS_MAX, sizeof(*r));
    trastenda_err e = trastenda_call_batch(b->client, args, n, r);
    for (uint32_t i = 0; i < n; i++) {
        if (r[i].code != TRASTENDA_OK)
            die("%s: %s: %s (%s)%s%s", what, args[i].op, r[i].msg, trastenda_err_name(r[i].code),
                hint[0] ? "\n  " : "", hint);
        trastenda_reply_clear(&r[i]);
    }
    if (e != TRASTENDA_OK) die("%s: %s", what, trastenda_err_name(e));
}

/* ---- JSON of replies ---- */

/* The text after `"key":` at each occurrence; NULL when none is left. */
static const char *
json_next(const char *json, const char *key, const char **after)
{
    char pat[80];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (p == NULL) return NULL;
    *after = p + strlen(pat);
    return p;
}

int64_t
bench_json_sum(const char *json, const char *key)
{
    int64_t sum = 0;
    const char *v;
    for (const char *p = json; (p = json_next(p, key, &v)) != NULL; p = v)
        sum += strtoll(v, NULL, 10);
    return sum;
}

uint32_t
bench_json_count(const char *json, const char *key)
{
    uint32_t n = 0;
    const char *v;
    for (const char *p = json; (p = json_next(p, key, &v)) != NULL; p = v)
        n++;
    return n;
}

bool
bench_json_str(const char *json, const char *key, char *out, size_t cap)
{
    const char *v;
    if (json_next(json, key, &v) == NULL || *v != '"') return false;
    v++;
    size_t n = strcspn(v, "\"");
    if (n >= cap) n = cap - 1;
    memcpy(out, v, n);
    out[n] = 0;
    return true;
}

void
bench_json_print_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* ---- parallel helper ---- */

struct par {
    void (*fn)(void *arg, uint64_t index);
    void *arg;
    uint64_t n;
    atomic_uint_fast64_t next;
};

static void *
par_main(void *arg)
{
    struct par *p = arg;
    for (;;) {
        uint64_t i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (i >= p->n) return NULL;
        p->fn(p->arg, i);
    }
}

void
bench_parallel(uint32_t threads, uint64_t n, void (*fn)(void *arg, uint64_t index), void *arg)
{
    BENCH_ASSERT(threads >= 1 && threads <= 64);
    BENCH_ASSERT(fn != NULL);
    struct par p = {.fn = fn, .arg = arg, .n = n};
    atomic_init(&p.next, 0);
    pthread_t th[64];
    for (uint32_t i = 0; i < threads; i++)
        if (pthread_create(&th[i], NULL, par_main, &p) != 0) die("cannot start a thread");
    for (uint32_t i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
}

/* ---- the server ---- */

static bool
addr_is_local(const char *addr)
{
    static const char *const local[] = {"ipc://", "inproc://", "tcp://127.",
                                        "tcp://localhost:", "tcp://[::1]:"};
    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
        if (strncmp(addr, local[i], strlen(local[i])) == 0) return true;
    return false;
}

trastenda_client *
bench_client_open(const struct bench *b, const char *addr)
{
    BENCH_ASSERT(addr != NULL && addr[0] != '\0');
    const char *nodes[] = {addr};
    trastenda_client_config cfg;
    trastenda_client_config_default(&cfg);
    cfg.nodes = nodes;
    cfg.n_nodes = 1;
    cfg.timeout_ms = b->o.timeout_ms;
    cfg.batch_max = b->o.client_batch_max;
    cfg.in_flight = b->o.in_flight;
    cfg.hold_ms = b->o.hold_ms;
    cfg.retries = b->o.retries;
    trastenda_client *c = NULL;
    char err[256];
    if (trastenda_client_open(&cfg, &c, err, sizeof(err)) != TRASTENDA_OK)
        die("cannot open a client for %s: %s", addr, err);
    return c;
}

/* The server's version, build, durability and process (for its CPU time). */
static void
server_status(struct bench *b)
{
    trastenda_reply r;
    trastenda_err e = trastenda_status(b->client, &r);
    if (e != TRASTENDA_OK || r.code != TRASTENDA_OK)
        die("cannot reach the server at %s: %s (%s)", b->o.addr, r.msg,
            trastenda_err_name(e != TRASTENDA_OK ? e : r.code));
    char *j = trastenda_result_json(&r);
    if (j == NULL) die("status: the reply does not parse");
    if (!bench_json_str(j, "version", b->server_version, sizeof(b->server_version)))
        snprintf(b->server_version, sizeof(b->server_version), "?");
    if (!bench_json_str(j, "build", b->server_build, sizeof(b->server_build)))
        snprintf(b->server_build, sizeof(b->server_build), "unknown build");
    if (!bench_json_str(j, "durability", b->durability, sizeof(b->durability)))
        snprintf(b->durability, sizeof(b->durability), "?");
    int64_t pid = bench_json_count(j, "pid") > 0 ? bench_json_sum(j, "pid") : 0;
    free(j);
    trastenda_reply_clear(&r);
    char name[64];
    if (b->o.server_pid != 0) {
        b->server_pid = (int)b->o.server_pid;
        snprintf(b->server_pid_note, sizeof(b->server_pid_note), "pid %d (--server-pid)",
                 b->server_pid);
    } else if (pid <= 0) {
        snprintf(b->server_pid_note, sizeof(b->server_pid_note),
                 "no pid in its status: give --server-pid");
    } else if (!addr_is_local(b->o.addr)) {
        snprintf(b->server_pid_note, sizeof(b->server_pid_note), "not on this machine");
    } else if (proc_name((pid_t)pid, name, sizeof(name)), strcmp(name, "trastenda") != 0) {
        snprintf(b->server_pid_note, sizeof(b->server_pid_note),
                 "pid %lld is not a trastenda process here: give --server-pid", (long long)pid);
    } else {
        b->server_pid = (int)pid;
        snprintf(b->server_pid_note, sizeof(b->server_pid_note), "pid %d", b->server_pid);
    }
    if (b->server_pid != 0 && proc_cpu_ns(b->server_pid) < 0) {
        snprintf(b->server_pid_note, sizeof(b->server_pid_note), "cannot read /proc/%d/stat",
                 b->server_pid);
        b->server_pid = 0;
    }
}

/* Six base-36 characters from the clock and the process: ids of this run are new. */
static void
run_id_make(struct bench *b)
{
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    uint64_t v = now_ns() ^ ((uint64_t)getpid() << 40);
    v = (v ^ (v >> 31)) * 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 6; i++) {
        b->run_id[i] = digits[v % 36];
        v /= 36;
    }
    b->run_id[6] = 0;
}

/* ---- the run ---- */

static void
caller_run(void *arg)
{
    struct caller *c = arg;
    struct bench *b = c->b;
    while (!atomic_load_explicit(&b->stop, memory_order_acquire))
        if (!b->wl->step(b, c)) break;
    atomic_fetch_add_explicit(&b->callers_done, 1, memory_order_release);
}

static void *
caller_main(void *arg)
{
    caller_run(arg);
    return NULL;
}

static void
callers_start(struct bench *b)
{
    b->callers = xcalloc(b->o.callers, sizeof(*b->callers));
    for (uint32_t i = 0; i < b->o.callers; i++) {
        struct caller *c = &b->callers[i];
        c->id = i;
        c->b = b;
        c->client = b->o.client_per_caller ? bench_client_open(b, b->o.addr) : b->client;
        c->rng = b->o.seed * 0x9e3779b97f4a7c15ull + (uint64_t)(i + 1) * 0xd1b54a32d192ed03ull;
        c->args = xcalloc(b->ops_per_call, sizeof(*c->args));
        c->replies = xcalloc(b->ops_per_call, sizeof(*c->replies));
        if (b->wl->caller_init != NULL) b->wl->caller_init(b, c);
    }
    if (b->o.caller_threads == 0) {
        for (uint32_t i = 0; i < b->o.callers; i++)
            if (pthread_create(&b->callers[i].th, NULL, caller_main, &b->callers[i]) != 0)
                die("cannot start caller %u", i);
        return;
    }
    /* caller i runs on thread i mod T */
    uint32_t t = b->o.caller_threads < b->o.callers ? b->o.caller_threads : b->o.callers;
    b->sched_threads = xcalloc(t, sizeof(*b->sched_threads));
    b->n_sched_threads = t;
    struct co_sched **s = xcalloc(t, sizeof(*s));
    for (uint32_t k = 0; k < t; k++)
        s[k] = co_sched_new();
    for (uint32_t i = 0; i < b->o.callers; i++) {
        co_sched_cork_client(s[i % t], b->callers[i].client);
        co_spawn(s[i % t], caller_run, &b->callers[i]);
    }
    for (uint32_t k = 0; k < t; k++)
        co_sched_start(s[k], &b->sched_threads[k]);
    free(s);
}

static void
clock_start(struct bench *b)
{
    b->server_cpu0 = b->server_pid != 0 ? proc_cpu_ns(b->server_pid) : -1;
    b->self_cpu0 = self_cpu_ns();
    b->t0_ns = now_ns();
    atomic_store_explicit(&b->recording, true, memory_order_release);
}

static void
clock_stop(struct bench *b)
{
    atomic_store_explicit(&b->stop, true, memory_order_release);
    b->t1_ns = now_ns();
    b->server_cpu1 = b->server_pid != 0 ? proc_cpu_ns(b->server_pid) : -1;
    b->self_cpu1 = self_cpu_ns();
}

/* Sleeps until `until_ns`, or until every caller is done. */
static void
wait_until(struct bench *b, uint64_t until_ns, bool count_ops)
{
    while (now_ns() < until_ns) {
        if (atomic_load_explicit(&b->callers_done, memory_order_acquire) == b->o.callers) return;
        if (count_ops && b->o.ops != 0 &&
            atomic_load_explicit(&b->ops_recorded, memory_order_relaxed) >= b->o.ops)
            return;
        usleep(1000);
    }
}

static void
run(struct bench *b)
{
    atomic_init(&b->recording, false);
    atomic_init(&b->stop, false);
    atomic_init(&b->ops_recorded, 0);
    atomic_init(&b->callers_done, 0);
    if (b->wl->runs_to_end) clock_start(b); /* measured from its first call to its last */
    callers_start(b);
    if (!b->wl->runs_to_end) {
        if (b->o.warmup_s > 0) wait_until(b, now_ns() + (uint64_t)(b->o.warmup_s * 1e9), false);
        clock_start(b);
    }
    wait_until(b, b->t0_ns + (uint64_t)(b->o.duration_s * 1e9), true);
    b->limit_reached = atomic_load_explicit(&b->callers_done, memory_order_acquire) != b->o.callers;
    clock_stop(b);
    if (b->o.caller_threads == 0)
        for (uint32_t i = 0; i < b->o.callers; i++)
            pthread_join(b->callers[i].th, NULL);
    for (uint32_t k = 0; k < b->n_sched_threads; k++)
        pthread_join(b->sched_threads[k], NULL);
    free(b->sched_threads);
}

/* Defaults that depend on the workload; flags that do not apply to it are refused. */
static void
defaults_resolve(struct bench *b)
{
    if (b->wl->runs_to_end) {
        if (b->o.warmup_s > 0 || b->o.ops != 0) {
            fprintf(stderr, BENCH_NAME ": %s runs to its end: --warmup-s and --ops do not apply\n",
                    b->wl->name);
            exit(2);
        }
        b->o.warmup_s = 0;
        if (b->o.duration_s < 0) b->o.duration_s = 600;
    }
    if (b->o.warmup_s < 0) b->o.warmup_s = 1;
    if (b->o.duration_s < 0) b->o.duration_s = b->o.ops != 0 ? 86400 : 10;
    BENCH_ASSERT(b->o.duration_s > 0 && b->o.warmup_s >= 0);
}

static const struct workload *
workload_find(const char *name)
{
    for (size_t i = 0; i < N_WORKLOADS; i++)
        if (strcmp(WORKLOADS[i]->name, name) == 0) return WORKLOADS[i];
    fprintf(stderr, BENCH_NAME ": unknown workload '%s'; one of:", name);
    for (size_t i = 0; i < N_WORKLOADS; i++)
        fprintf(stderr, " %s", WORKLOADS[i]->name);
    fprintf(stderr, "\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout, NULL);
        return argc < 2 ? 2 : 0;
    }
    signal(SIGPIPE, SIG_IGN);
    struct bench *b = &B;
    b->wl = workload_find(argv[1]);
    b->o.seed = now_ns();
    flags_parse(b->wl, argc - 2, argv + 2);
    defaults_resolve(b);
    b->ops_per_call = b->wl->ops_per_call(b);
    BENCH_ASSERT(b->ops_per_call >= 1 && b->ops_per_call <= BENCH_OPS_MAX);
    run_id_make(b);
    b->client = bench_client_open(b, b->o.addr);
    server_status(b);
    b->wl->setup(b);
    run(b);
    int code = b->wl->finish(b);
    uint64_t ok = bench_report(b, stdout);
    if (code == 0 && ok == 0) {
        fprintf(stderr, BENCH_NAME ": no operation succeeded\n");
        code = 1;
    }
    for (uint32_t i = 0; i < b->o.callers; i++)
        if (b->callers[i].client != b->client) trastenda_client_close(b->callers[i].client);
    trastenda_client_close(b->client);
    return code;
}
